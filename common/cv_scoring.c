/* cv_scoring: the 3 x 5 lead scoring model with its knock-out phase. */
#include "cv_scoring.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the default rules: one table, replaced by a rules file later ---- */

static const cv_scoring_rate_t default_rates[] = {
    {"RUB", 1.0}, {"USD", 90.0}, {"EUR", 100.0}, {"GBP", 115.0}, {"CNY", 12.5},
    {"KZT", 0.2}, {"BYN", 28.0}, {"UAH", 2.2},   {NULL, 0.0},
};

static const char *const default_target_industries[] = {
    "it",        "software",     "saas",        "fintech",   "banking",
    "finance",   "retail",       "e-commerce",  "ecommerce", "manufacturing",
    "logistics", "telecom",      "healthcare",  "education", "ит",
    "розница",   "производство", "логистика",   "финансы",   "банки",
    "телеком",   "медицина",     "образование", NULL,
};

static const char *const default_served_regions[] = {
    "ru",
    "russia",
    "россия",
    "moscow",
    "москва",
    "ru-mow",
    "moscow region",
    "московская область",
    "ru-mos",
    "saint petersburg",
    "st. petersburg",
    "санкт-петербург",
    "ru-spe",
    "leningrad region",
    "ленинградская область",
    "ru-len",
    "novosibirsk",
    "новосибирск",
    "ekaterinburg",
    "yekaterinburg",
    "екатеринбург",
    "kazan",
    "казань",
    "nizhny novgorod",
    "нижний новгород",
    "krasnodar",
    "краснодар",
    "kz",
    "kazakhstan",
    "казахстан",
    "by",
    "belarus",
    "беларусь",
    NULL,
};

static const char *const default_blacklisted_domains[] = {
    "mailinator.com", "guerrillamail.com", "10minutemail.com",
    "tempmail.com",   "temp-mail.org",     "yopmail.com",
    "trashmail.com",  "sharklasers.com",   NULL,
};

static const char *const default_spam_markers[] = {
    "casino",
    "viagra",
    "porn",
    "crypto giveaway",
    "seo promotion",
    "buy followers",
    "loan approved",
    "казино",
    "ставки на спорт",
    "раскрутка сайта",
    "быстрый заработок",
    "онлайн займ",
    NULL,
};

static const cv_scoring_model_t default_model = {
    .version = CV_SCORING_MODEL_VERSION,
    .knockout_budget_rub = 10000.0,
    .budget_low_rub = 100000.0,
    .budget_high_rub = 1000000.0,
    .rates = default_rates,
    .detailed_message_chars = 80,
    .target_industries = default_target_industries,
    .served_regions = default_served_regions,
    .blacklisted_domains = default_blacklisted_domains,
    .spam_markers = default_spam_markers,
    .spam_max_links = 3,
};

/* The model's parameters, in the order of PRODUCT.md. */
static const struct {
    const char *name;  /* parameter name */
    const char *block; /* block it belongs to */
} param_table[CV_SCORING_PARAM_COUNT] = {
    {"budget", "request"},
    {"volume", "request"},
    {"profitability", "request"},
    {"timeline", "request"},
    {"clarity", "request"},
    {"positioning", "fit"},
    {"load", "fit"},
    {"industry_experience", "fit"},
    {"technologies", "fit"},
    {"geography", "fit"},
    {"adequacy", "communication"},
    {"digital_literacy", "communication"},
    {"brief_quality", "communication"},
    {"dm_access", "communication"},
    {"responsiveness", "communication"},
};

enum {
    P_BUDGET = 0,
    P_CLARITY = 4,
    P_INDUSTRY = 7,
    P_GEOGRAPHY = 9,
    P_DIGITAL = 11,
    P_BRIEF = 12,
    P_RESPONSIVENESS = 14,
};

const cv_scoring_model_t *cv_scoring_default_model(void)
{
    return &default_model;
}

/* ---- text helpers: UTF-8, case folding for ASCII and Cyrillic ---- */

/* Decodes one code point at `s` (not at its end); sets *len to its bytes.
 * A malformed byte decodes as itself, one byte long. */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((c & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) |
               (s[2] & 0x3F);
    }
    if ((c & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
        (s[3] & 0xC0) == 0x80) {
        *len = 4;
        return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    *len = 1;
    return c;
}

/* Lower case of a code point for Latin and Cyrillic letters. */
static uint32_t fold(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    return cp;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* The bytes of `s` without leading and trailing white space. */
static const char *trim(const char *s, size_t *len)
{
    if (s == NULL) {
        *len = 0;
        return "";
    }
    while (is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space((unsigned char)s[n - 1]))
        n--;
    *len = n;
    return s;
}

static bool present(const char *s)
{
    size_t len;
    trim(s, &len);
    return len > 0;
}

/* Length in bytes of the match of `needle` (lower case) at the start of
 * `h[0..hlen)`, ignoring case; 0 when it does not match there. */
static size_t match_at(const char *h, size_t hlen, const char *needle)
{
    const unsigned char *p = (const unsigned char *)h;
    const unsigned char *end = p + hlen;
    const unsigned char *n = (const unsigned char *)needle;
    while (*n != '\0') {
        if (p >= end)
            return 0;
        size_t plen, nlen;
        uint32_t a = fold(utf8_next(p, &plen));
        uint32_t b = fold(utf8_next(n, &nlen));
        if (plen > (size_t)(end - p) || a != b)
            return 0;
        p += plen;
        n += nlen;
    }
    return (size_t)(p - (const unsigned char *)h);
}

/* Longest needle (in code points) the folded search takes; longer ones
 * use contains(). */
#define NEEDLE_MAX 64

/* A text decoded once into folded code points, for searching it for many
 * needles without decoding it again for each. */
typedef struct {
    uint32_t *cps;   /* folded code points, in order */
    bool *starts;    /* the code point starts at a character's first byte
                        (contains() begins matches only there) */
    size_t count;    /* code points decoded */
    uint32_t cp_buf[256];  /* storage for short texts */
    bool start_buf[256];   /* storage for short texts */
    uint32_t *cp_heap;     /* storage for long texts (owned) */
    bool *start_heap;      /* storage for long texts (owned) */
} folded_t;

static bool contains(const char *text, const char *needle);

/* Decodes `text` into `f`; false when out of memory (then call
 * contains() instead). The decoding steps exactly as match_at() does. */
static bool folded_init(folded_t *f, const char *text)
{
    size_t hlen = text != NULL ? strlen(text) : 0;
    f->count = 0;
    f->cp_heap = NULL;
    f->start_heap = NULL;
    f->cps = f->cp_buf;
    f->starts = f->start_buf;
    if (hlen > sizeof(f->cp_buf) / sizeof(f->cp_buf[0])) {
        f->cp_heap = malloc(hlen * sizeof(*f->cp_heap));
        f->start_heap = malloc(hlen * sizeof(*f->start_heap));
        if (f->cp_heap == NULL || f->start_heap == NULL) {
            free(f->cp_heap);
            free(f->start_heap);
            f->cp_heap = NULL;
            f->start_heap = NULL;
            return false;
        }
        f->cps = f->cp_heap;
        f->starts = f->start_heap;
    }
    const unsigned char *p = (const unsigned char *)text;
    size_t at = 0;
    while (at < hlen) {
        size_t len;
        f->starts[f->count] = (p[at] & 0xC0) != 0x80;
        f->cps[f->count++] = fold(utf8_next(p + at, &len));
        at += len;
    }
    return true;
}

static void folded_clear(folded_t *f)
{
    free(f->cp_heap);
    free(f->start_heap);
    f->cp_heap = NULL;
    f->start_heap = NULL;
}

/* contains(text, needle) for the decoded text `f` of `text`. */
static bool folded_contains(const folded_t *f, const char *text,
                            const char *needle)
{
    if (text == NULL || needle[0] == '\0')
        return false;
    uint32_t want[NEEDLE_MAX];
    size_t n = 0;
    const unsigned char *q = (const unsigned char *)needle;
    while (*q != '\0') {
        if (n == NEEDLE_MAX)
            return contains(text, needle);
        size_t len;
        want[n++] = fold(utf8_next(q, &len));
        q += len;
    }
    if (n > f->count)
        return false;
    for (size_t i = 0; i + n <= f->count; i++) {
        if (!f->starts[i] || f->cps[i] != want[0])
            continue;
        size_t k = 1;
        while (k < n && f->cps[i + k] == want[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static bool contains(const char *text, const char *needle)
{
    if (text == NULL || needle[0] == '\0')
        return false;
    size_t hlen = strlen(text);
    for (size_t i = 0; i < hlen; i++) {
        if (((unsigned char)text[i] & 0xC0) == 0x80)
            continue; /* inside a character */
        if (match_at(text + i, hlen - i, needle) > 0)
            return true;
    }
    return false;
}

/* True when `value` (trimmed, any case) equals `entry` (lower case). */
static bool equals(const char *value, const char *entry)
{
    size_t len;
    const char *v = trim(value, &len);
    /* match_at is non-zero only when all of `entry` matched */
    return len > 0 && match_at(v, len, entry) == len;
}

/* The entry of `list` that `value` equals, or NULL. */
static const char *list_find(const char *const *list, const char *value)
{
    if (list == NULL)
        return NULL;
    for (size_t i = 0; list[i] != NULL; i++)
        if (equals(value, list[i]))
            return list[i];
    return NULL;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

/* ---- reason texts, built without printf where the format is fixed ---- */

/* A bounded text being appended to; truncates exactly as snprintf. */
typedef struct {
    char *buf;   /* NUL-terminated */
    size_t size; /* bytes of buf */
    size_t len;  /* bytes used, < size */
} text_t;

static void text_init(text_t *t, char *buf, size_t size)
{
    t->buf = buf;
    t->size = size;
    t->len = 0;
    buf[0] = '\0';
}

static void text_addn(text_t *t, const char *s, size_t n)
{
    size_t room = t->size - 1 - t->len;
    if (n > room)
        n = room;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_add(text_t *t, const char *s)
{
    text_addn(t, s, strlen(s));
}

static void text_add_uint(text_t *t, uint64_t v)
{
    char digits[24];
    size_t at = sizeof(digits);
    do {
        digits[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    text_addn(t, digits + at, sizeof(digits) - at);
}

/* "%.0f" of `x`: digits directly for whole non-negative amounts, printf
 * for the rest. */
static void text_add_amount(text_t *t, double x)
{
    if (x >= 0.0 && x < 1e15 && !signbit(x) && x == (double)(uint64_t)x) {
        text_add_uint(t, (uint64_t)x);
        return;
    }
    int n = snprintf(t->buf + t->len, t->size - t->len, "%.0f", x);
    if (n < 0)
        return;
    t->len += (size_t)n < t->size - 1 - t->len ? (size_t)n
                                                : t->size - 1 - t->len;
}

/* ---- the rules ---- */

/* Sets a parameter with a ready reason: "auto:<rule>" and `reason`,
 * truncated like the formatted ones. */
static void set_param_text(cv_scoring_result_t *out, int index, int value,
                           const char *rule, const char *reason)
{
    cv_scoring_param_t *p = &out->params[index];
    p->value = value;
    text_t t;
    text_init(&t, p->source, sizeof(p->source));
    text_addn(&t, "auto:", 5);
    text_add(&t, rule);
    text_init(&t, p->reason, sizeof(p->reason));
    text_add(&t, reason);
}

static void set_param(cv_scoring_result_t *out, int index, int value,
                      const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_param(cv_scoring_result_t *out, int index, int value,
                      const char *rule, const char *fmt, ...)
{
    cv_scoring_param_t *p = &out->params[index];
    p->value = value;
    snprintf(p->source, sizeof(p->source), "auto:%s", rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
}

/* Appends one knock-out reason, separated by "; ". */
static void add_knockout(cv_scoring_result_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_knockout(cv_scoring_result_t *out, const char *fmt, ...)
{
    size_t used = strlen(out->knockout_reason);
    size_t room = sizeof(out->knockout_reason);
    if (used > 0 && used + 2 < room) {
        memcpy(out->knockout_reason + used, "; ", 3);
        used += 2;
    }
    if (used + 1 < room) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->knockout_reason + used, room - used, fmt, ap);
        va_end(ap);
    }
    out->knocked_out = true;
}

typedef enum {
    BUDGET_NONE,     /* no budget given */
    BUDGET_KNOWN,    /* converted to roubles */
    BUDGET_CURRENCY, /* a currency the rate table does not know */
} budget_kind_t;

/* The lead's budget in roubles, with the currency code used. */
static budget_kind_t budget_rub(const cv_scoring_model_t *model,
                                const Conveyor__Lead *lead, double *rub,
                                const char **code, double *rate)
{
    *code = "RUB";
    *rate = 1.0;
    if (!lead->has_budget || !(lead->budget > 0.0))
        return BUDGET_NONE;
    size_t len;
    const char *cur = trim(lead->currency, &len);
    if (len > 0 && !(len == 3 && strncasecmp(cur, "RUB", 3) == 0)) {
        const cv_scoring_rate_t *found = NULL;
        for (size_t i = 0; model->rates != NULL && model->rates[i].code; i++) {
            if (strlen(model->rates[i].code) == len &&
                strncasecmp(cur, model->rates[i].code, len) == 0) {
                found = &model->rates[i];
                break;
            }
        }
        if (found == NULL)
            return BUDGET_CURRENCY;
        *code = found->code;
        *rate = found->rub;
    }
    *rub = lead->budget * *rate;
    return BUDGET_KNOWN;
}

/* "1500000 RUB" or "20000 USD (~1800000 RUB at the fixed rate 90
 * RUB/USD)". */
static void describe_budget(char *buf, size_t size, double amount,
                            const char *code, double rate)
{
    if (strcmp(code, "RUB") == 0) {
        text_t t;
        text_init(&t, buf, size);
        text_add_amount(&t, amount);
        text_addn(&t, " RUB", 4);
    } else
        snprintf(buf, size, "%.0f %s (~%.0f RUB at the fixed rate %g RUB/%s)",
                 amount, code, amount * rate, rate, code);
}

static const char *email_domain(const char *email)
{
    if (email == NULL)
        return NULL;
    const char *at = strrchr(email, '@');
    return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* The blacklist entry that `domain` is or is a subdomain of, or NULL. */
static const char *blacklisted(const cv_scoring_model_t *model,
                               const char *domain)
{
    if (!present(domain) || model->blacklisted_domains == NULL)
        return NULL;
    size_t len;
    const char *d = trim(domain, &len);
    for (size_t i = 0; model->blacklisted_domains[i] != NULL; i++) {
        const char *entry = model->blacklisted_domains[i];
        size_t elen = strlen(entry);
        if (len < elen || strncasecmp(d + len - elen, entry, elen) != 0)
            continue;
        if (len == elen || d[len - elen - 1] == '.')
            return entry;
    }
    return NULL;
}

static int count_links(const char *text)
{
    int links = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, "://")) != NULL;
         p += 3)
        links++;
    return links;
}

static void knockout_phase(const cv_scoring_model_t *model,
                           const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    double rub = 0.0, rate;
    const char *code;
    if (budget_rub(model, lead, &rub, &code, &rate) == BUDGET_KNOWN &&
        rub < model->knockout_budget_rub) {
        char what[128];
        describe_budget(what, sizeof(what), lead->budget, code, rate);
        add_knockout(out, "budget %s below the minimum %.0f RUB", what,
                     model->knockout_budget_rub);
    }
    const char *entry = blacklisted(model, lead->domain);
    if (entry == NULL)
        entry = blacklisted(model, email_domain(lead->email));
    if (entry != NULL)
        add_knockout(out, "blacklisted domain '%s'", entry);
    const char *fields[] = {lead->name, lead->company, lead->message};
    const char *names[] = {"name", "company", "message"};
    for (size_t f = 0; f < 3; f++) {
        folded_t *text = NULL;
        folded_t folded;
        if (fields[f] != NULL && model->spam_markers != NULL &&
            folded_init(&folded, fields[f]))
            text = &folded;
        for (size_t i = 0;
             model->spam_markers != NULL && model->spam_markers[i] != NULL;
             i++) {
            const char *marker = model->spam_markers[i];
            if (text != NULL ? folded_contains(text, fields[f], marker)
                             : contains(fields[f], marker)) {
                add_knockout(out, "spam marker '%s' in %s", marker,
                             names[f]);
                break;
            }
        }
        if (text != NULL)
            folded_clear(text);
    }
    int links = count_links(lead->message);
    if (links > model->spam_max_links)
        add_knockout(out, "spam: %d links in message (at most %d)", links,
                     model->spam_max_links);
}

static void score_budget(const cv_scoring_model_t *model,
                         const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    double rub = 0.0, rate;
    const char *code;
    char what[128];
    switch (budget_rub(model, lead, &rub, &code, &rate)) {
    case BUDGET_NONE:
        set_param_text(out, P_BUDGET, 0, "budget_band", "budget not given");
        return;
    case BUDGET_CURRENCY:
        set_param(out, P_BUDGET, 0, "budget_band",
                  "budget %.0f in currency '%s' that has no fixed rate",
                  lead->budget, lead->currency);
        return;
    case BUDGET_KNOWN:
        break;
    }
    describe_budget(what, sizeof(what), lead->budget, code, rate);
    char reason[CV_SCORING_REASON_SIZE];
    text_t t;
    text_init(&t, reason, sizeof(reason));
    text_addn(&t, "budget ", 7);
    text_add(&t, what);
    int value = 0;
    if (rub >= model->budget_high_rub) {
        value = 1;
        text_add(&t, " at or above ");
        text_add_amount(&t, model->budget_high_rub);
    } else if (rub < model->budget_low_rub) {
        value = -1;
        text_add(&t, " below ");
        text_add_amount(&t, model->budget_low_rub);
    } else {
        text_add(&t, " between ");
        text_add_amount(&t, model->budget_low_rub);
        text_add(&t, " and ");
        text_add_amount(&t, model->budget_high_rub);
    }
    text_addn(&t, " RUB", 4);
    set_param_text(out, P_BUDGET, value, "budget_band", reason);
}

static void score_clarity(const cv_scoring_model_t *model,
                          const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    size_t len;
    const char *msg = trim(lead->message, &len);
    size_t chars = utf8_chars(msg, len);
    if (chars == 0) {
        set_param_text(out, P_CLARITY, -1, "message_clarity",
                       "no message describing the task");
        return;
    }
    bool detailed = chars >= model->detailed_message_chars;
    char reason[CV_SCORING_REASON_SIZE];
    text_t t;
    text_init(&t, reason, sizeof(reason));
    text_add(&t, detailed ? "detailed message (" : "short message (");
    text_add_uint(&t, chars);
    text_add(&t, detailed ? " characters, at least " : " characters, under ");
    text_add_uint(&t, model->detailed_message_chars);
    text_addn(&t, ")", 1);
    set_param_text(out, P_CLARITY, detailed ? 1 : 0, "message_clarity",
                   reason);
}

static void score_fit(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    size_t len;
    char reason[CV_SCORING_REASON_SIZE];
    text_t t;
    const char *industry = trim(lead->industry, &len);
    if (len == 0) {
        set_param_text(out, P_INDUSTRY, 0, "target_industry",
                       "industry not given");
    } else {
        bool target = list_find(model->target_industries, industry) != NULL;
        text_init(&t, reason, sizeof(reason));
        text_add(&t, "industry '");
        text_addn(&t, industry, len);
        text_add(&t, target ? "' is a target industry"
                            : "' is not a target industry");
        set_param_text(out, P_INDUSTRY, target ? 1 : 0, "target_industry",
                       reason);
    }

    const char *region = trim(lead->region, &len);
    if (len == 0) {
        set_param_text(out, P_GEOGRAPHY, 0, "served_region",
                       "region not given");
    } else {
        bool served = list_find(model->served_regions, region) != NULL;
        text_init(&t, reason, sizeof(reason));
        text_add(&t, "region '");
        text_addn(&t, region, len);
        text_add(&t, served ? "' is served" : "' is not served");
        set_param_text(out, P_GEOGRAPHY, served ? 1 : -1, "served_region",
                       reason);
    }
}

static void score_communication(const Conveyor__Lead *lead,
                                cv_scoring_result_t *out)
{
    bool email = present(lead->email);
    bool telegram = present(lead->telegram);
    bool phone = present(lead->phone);
    if (email && telegram)
        set_param_text(out, P_DIGITAL, 1, "contact_channels",
                       "gave email and telegram");
    else if (email || telegram)
        set_param_text(out, P_DIGITAL, 1, "contact_channels",
                       email ? "gave an email address"
                             : "gave a telegram contact");
    else
        set_param_text(out, P_DIGITAL, 0, "contact_channels",
                       "no email or telegram given");

    const char *missing[4];
    int n_missing = 0;
    if (!present(lead->name))
        missing[n_missing++] = "name";
    if (!present(lead->company))
        missing[n_missing++] = "company";
    if (!present(lead->message))
        missing[n_missing++] = "message";
    if (!email && !telegram && !phone)
        missing[n_missing++] = "contact";
    if (n_missing == 0) {
        set_param_text(out, P_BRIEF, 1, "brief_completeness",
                       "complete brief: name, company, message and contact");
    } else {
        /* at most "name, company, message, contact": no truncation */
        char reason[CV_SCORING_REASON_SIZE];
        text_t t;
        text_init(&t, reason, sizeof(reason));
        text_add(&t, "brief lacks ");
        for (int i = 0; i < n_missing; i++) {
            if (i > 0)
                text_addn(&t, ", ", 2);
            text_add(&t, missing[i]);
        }
        set_param_text(out, P_BRIEF, n_missing == 1 ? 0 : -1,
                       "brief_completeness", reason);
    }

    size_t len;
    const char *channel = trim(lead->channel, &len);
    if (len == 5 && strncasecmp(channel, "phone", 5) == 0) {
        set_param_text(out, P_RESPONSIVENESS, 1, "channel_warmth",
                       "called in by phone (warm channel)");
    } else {
        char reason[CV_SCORING_REASON_SIZE];
        text_t t;
        text_init(&t, reason, sizeof(reason));
        text_add(&t, "not judged yet: set after the first call (channel '");
        if (len > 0)
            text_addn(&t, channel, len);
        else
            text_addn(&t, "web", 3);
        text_addn(&t, "')", 2);
        set_param_text(out, P_RESPONSIVENESS, 0, "channel_warmth", reason);
    }
}

void cv_scoring_score(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    if (model == NULL)
        model = &default_model;
    memset(out, 0, sizeof(*out));
    out->model_version =
        model->version != NULL ? model->version : CV_SCORING_MODEL_VERSION;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        out->params[i].name = param_table[i].name;
        out->params[i].block = param_table[i].block;
        set_param_text(out, i, 0, "not_judged",
                       "not judged yet: set after the first call");
    }
    knockout_phase(model, lead, out);
    score_budget(model, lead, out);
    score_clarity(model, lead, out);
    score_fit(model, lead, out);
    score_communication(lead, out);
    cv_scoring_recompute(out);
}

const char *cv_scoring_segment(int total, bool knocked_out)
{
    if (knocked_out || total <= CV_SCORING_SEGMENT_C_MAX)
        return "C";
    if (total >= CV_SCORING_SEGMENT_A_MIN)
        return "A";
    return "B";
}

void cv_scoring_recompute(cv_scoring_result_t *score)
{
    int total = 0;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        int v = score->params[i].value;
        score->params[i].value = v > 0 ? 1 : v < 0 ? -1 : 0;
        total += score->params[i].value;
    }
    score->total = total;
    /* one letter and its NUL */
    memcpy(score->segment, cv_scoring_segment(total, score->knocked_out), 2);
}

int cv_scoring_param_index(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++)
        if (strcmp(param_table[i].name, name) == 0)
            return i;
    return -1;
}

const char *cv_scoring_param_name(int index)
{
    if (index < 0 || index >= CV_SCORING_PARAM_COUNT)
        return NULL;
    return param_table[index].name;
}

const char *cv_scoring_param_block(int index)
{
    if (index < 0 || index >= CV_SCORING_PARAM_COUNT)
        return NULL;
    return param_table[index].block;
}

void cv_scoring_to_proto(const cv_scoring_result_t *score, Conveyor__Score *out,
                         Conveyor__ScoreParam *params,
                         Conveyor__ScoreParam **param_ptrs)
{
    conveyor__score__init(out);
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        const cv_scoring_param_t *p = &score->params[i];
        conveyor__score_param__init(&params[i]);
        params[i].name = (char *)p->name;
        params[i].block = (char *)p->block;
        params[i].value = p->value;
        params[i].source = (char *)p->source;
        params[i].reason = (char *)p->reason;
        param_ptrs[i] = &params[i];
    }
    out->total = score->total;
    out->segment = (char *)score->segment;
    out->n_params = CV_SCORING_PARAM_COUNT;
    out->params = param_ptrs;
    out->has_knocked_out = true;
    out->knocked_out = score->knocked_out;
    if (score->knocked_out)
        out->knockout_reason = (char *)score->knockout_reason;
    out->model_version = (char *)score->model_version;
}

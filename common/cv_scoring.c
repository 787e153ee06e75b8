/* cv_scoring: the 3 x 5 lead scoring model with its knock-out phase. */
#include "cv_scoring.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
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

/* ---- the rules ---- */

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
    if (strcmp(code, "RUB") == 0)
        snprintf(buf, size, "%.0f RUB", amount);
    else
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
        for (size_t i = 0;
             model->spam_markers != NULL && model->spam_markers[i] != NULL;
             i++) {
            if (contains(fields[f], model->spam_markers[i])) {
                add_knockout(out, "spam marker '%s' in %s",
                             model->spam_markers[i], names[f]);
                break;
            }
        }
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
        set_param(out, P_BUDGET, 0, "budget_band", "budget not given");
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
    if (rub >= model->budget_high_rub)
        set_param(out, P_BUDGET, 1, "budget_band",
                  "budget %s at or above %.0f RUB", what,
                  model->budget_high_rub);
    else if (rub < model->budget_low_rub)
        set_param(out, P_BUDGET, -1, "budget_band", "budget %s below %.0f RUB",
                  what, model->budget_low_rub);
    else
        set_param(out, P_BUDGET, 0, "budget_band",
                  "budget %s between %.0f and %.0f RUB", what,
                  model->budget_low_rub, model->budget_high_rub);
}

static void score_clarity(const cv_scoring_model_t *model,
                          const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    size_t len;
    const char *msg = trim(lead->message, &len);
    size_t chars = utf8_chars(msg, len);
    if (chars == 0)
        set_param(out, P_CLARITY, -1, "message_clarity",
                  "no message describing the task");
    else if (chars >= model->detailed_message_chars)
        set_param(out, P_CLARITY, 1, "message_clarity",
                  "detailed message (%zu characters, at least %zu)", chars,
                  model->detailed_message_chars);
    else
        set_param(out, P_CLARITY, 0, "message_clarity",
                  "short message (%zu characters, under %zu)", chars,
                  model->detailed_message_chars);
}

static void score_fit(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    size_t len;
    const char *industry = trim(lead->industry, &len);
    if (len == 0)
        set_param(out, P_INDUSTRY, 0, "target_industry", "industry not given");
    else if (list_find(model->target_industries, industry) != NULL)
        set_param(out, P_INDUSTRY, 1, "target_industry",
                  "industry '%.*s' is a target industry", (int)len, industry);
    else
        set_param(out, P_INDUSTRY, 0, "target_industry",
                  "industry '%.*s' is not a target industry", (int)len,
                  industry);

    const char *region = trim(lead->region, &len);
    if (len == 0)
        set_param(out, P_GEOGRAPHY, 0, "served_region", "region not given");
    else if (list_find(model->served_regions, region) != NULL)
        set_param(out, P_GEOGRAPHY, 1, "served_region",
                  "region '%.*s' is served", (int)len, region);
    else
        set_param(out, P_GEOGRAPHY, -1, "served_region",
                  "region '%.*s' is not served", (int)len, region);
}

static void score_communication(const Conveyor__Lead *lead,
                                cv_scoring_result_t *out)
{
    bool email = present(lead->email);
    bool telegram = present(lead->telegram);
    bool phone = present(lead->phone);
    if (email && telegram)
        set_param(out, P_DIGITAL, 1, "contact_channels",
                  "gave email and telegram");
    else if (email || telegram)
        set_param(out, P_DIGITAL, 1, "contact_channels", "gave %s",
                  email ? "an email address" : "a telegram contact");
    else
        set_param(out, P_DIGITAL, 0, "contact_channels",
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
        set_param(out, P_BRIEF, 1, "brief_completeness",
                  "complete brief: name, company, message and contact");
    } else {
        char list[64] = "";
        size_t used = 0;
        for (int i = 0; i < n_missing && used < sizeof(list); i++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s",
                             i > 0 ? ", " : "", missing[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        set_param(out, P_BRIEF, n_missing == 1 ? 0 : -1, "brief_completeness",
                  "brief lacks %s", list);
    }

    size_t len;
    const char *channel = trim(lead->channel, &len);
    if (len == 5 && strncasecmp(channel, "phone", 5) == 0)
        set_param(out, P_RESPONSIVENESS, 1, "channel_warmth",
                  "called in by phone (warm channel)");
    else
        set_param(out, P_RESPONSIVENESS, 0, "channel_warmth",
                  "not judged yet: set after the first call (channel '%.*s')",
                  (int)(len > 0 ? len : 3), len > 0 ? channel : "web");
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
        set_param(out, i, 0, "not_judged",
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
    snprintf(score->segment, sizeof(score->segment), "%s",
             cv_scoring_segment(total, score->knocked_out));
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

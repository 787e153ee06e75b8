/* cv_scoring: the 3 x 5 lead scoring model with its knock-out phase, run
 * over the rules of a model (cv_scoring_rules.h). */
#include "cv_scoring.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_clock.h"

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

/* A text decoded once into folded code points, for searching it for many
 * needles without decoding it again for each. */
typedef struct {
    uint32_t *cps;        /* folded code points, in order */
    bool *starts;         /* the code point starts at a character's first byte
                             (contains() begins matches only there) */
    size_t count;         /* code points decoded */
    uint32_t cp_buf[256]; /* storage for short texts */
    bool start_buf[256];  /* storage for short texts */
    uint32_t *cp_heap;    /* storage for long texts (owned) */
    bool *start_heap;     /* storage for long texts (owned) */
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

size_t cv_scoring_fold(const char *text, uint32_t *cps, size_t max)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t hlen = strlen(text);
    size_t at = 0;
    size_t n = 0;
    /* steps as match_at() and folded_init() do */
    while (at < hlen) {
        size_t len;
        uint32_t cp = fold(utf8_next(p + at, &len));
        if (n < max)
            cps[n] = cp;
        n++;
        at += len;
    }
    return n;
}

/* The first entry of a spam_markers rule's list (in list order) that the
 * decoded text `f` of `text` contains, or -1: what asking contains() of
 * each entry in turn answers, in one pass over the text. Each text position is tested against the first code points of
 * the rule's needles (needle_first) before any needle is compared. */
static int folded_first_marker(const cv_scoring_rule_t *rule,
                               const folded_t *f, const char *text)
{
    size_t best = rule->list_count; /* none yet */
    for (size_t i = 0; i < f->count && best > 0; i++) {
        uint32_t c = f->cps[i];
        uint32_t bit = c & 255;
        if (!f->starts[i] ||
            (rule->needle_first[bit / 32] & (1u << (bit % 32))) == 0)
            continue;
        for (size_t k = 0; k < best; k++) {
            const cv_scoring_needle_t *nd = &rule->needles[k];
            if (nd->cps == NULL || nd->cps[0] != c || nd->count > f->count - i)
                continue;
            size_t m = 1;
            while (m < nd->count && f->cps[i + m] == nd->cps[m])
                m++;
            if (m == nd->count) {
                best = k; /* later positions may hold an earlier entry */
                break;
            }
        }
    }
    /* entries too long to keep folded are searched for from their text */
    for (size_t k = 0; k < best; k++) {
        const cv_scoring_needle_t *nd = &rule->needles[k];
        if (nd->cps == NULL && nd->count > 0 &&
            contains(text, rule->list[k])) {
            best = k;
            break;
        }
    }
    return best < rule->list_count ? (int)best : -1;
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

/* A bounded text being appended to; truncates like snprintf, but never
 * inside a UTF-8 character. */
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
    if (n > room) {
        n = room;
        /* never cut a character in two: reasons go into JSON */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
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
    t->len +=
        (size_t)n < t->size - 1 - t->len ? (size_t)n : t->size - 1 - t->len;
}

/* ---- reading the lead ---- */

static const char *lead_text(const Conveyor__Lead *lead, cv_scoring_field_t f)
{
    switch (f) {
    case CV_SCORING_FIELD_NAME:
        return lead->name;
    case CV_SCORING_FIELD_COMPANY:
        return lead->company;
    case CV_SCORING_FIELD_PHONE:
        return lead->phone;
    case CV_SCORING_FIELD_EMAIL:
        return lead->email;
    case CV_SCORING_FIELD_TELEGRAM:
        return lead->telegram;
    case CV_SCORING_FIELD_MESSAGE:
        return lead->message;
    case CV_SCORING_FIELD_CHANNEL:
        return lead->channel;
    case CV_SCORING_FIELD_SOURCE:
        return lead->source;
    case CV_SCORING_FIELD_REGION:
        return lead->region;
    case CV_SCORING_FIELD_INDUSTRY:
        return lead->industry;
    case CV_SCORING_FIELD_PRODUCT:
        return lead->product;
    case CV_SCORING_FIELD_INN:
        return lead->inn;
    case CV_SCORING_FIELD_DOMAIN:
        return lead->domain;
    case CV_SCORING_FIELD_TIMEZONE:
        return lead->timezone;
    case CV_SCORING_FIELD_UTM_SOURCE:
        return lead->utm_source;
    default:
        return NULL;
    }
}

/* The field is given: text that is not blank, a positive budget, any
 * contact. */
static bool lead_has(const Conveyor__Lead *lead, cv_scoring_field_t f)
{
    if (f == CV_SCORING_FIELD_BUDGET)
        return lead->has_budget && lead->budget > 0.0;
    if (f == CV_SCORING_FIELD_CONTACT)
        return present(lead->phone) || present(lead->email) ||
               present(lead->telegram);
    return present(lead_text(lead, f));
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
        for (size_t i = 0; i < model->rate_count; i++) {
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

/* The entry of `list` that `domain` is or is a subdomain of, or NULL. */
static const char *domain_listed(const cv_scoring_rule_t *rule,
                                 const char *domain)
{
    if (!present(domain))
        return NULL;
    size_t len;
    const char *d = trim(domain, &len);
    for (size_t i = 0; i < rule->list_count; i++) {
        const char *entry = rule->list[i];
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

/* ---- reason templates ---- */

/* The values a template may name; NULL ones are written as "". */
typedef struct {
    const char *v[CV_SCORING_PH_COUNT_OF];
} values_t;

static bool uses(const cv_scoring_outcome_t *o, cv_scoring_placeholder_t ph)
{
    for (size_t i = 0; i < o->piece_count; i++)
        if (o->pieces[i].placeholder == (int)ph)
            return true;
    return false;
}

static void expand(text_t *t, const cv_scoring_outcome_t *o,
                   const values_t *values)
{
    for (size_t i = 0; i < o->piece_count; i++) {
        const cv_scoring_piece_t *p = &o->pieces[i];
        if (p->placeholder < 0)
            text_addn(t, p->text, p->length);
        else if (values != NULL && values->v[p->placeholder] != NULL)
            text_add(t, values->v[p->placeholder]);
    }
}

/* A "%.0f" amount into buf (at least 32 bytes), for a placeholder. */
static const char *amount_text(char *buf, size_t size, double x)
{
    text_t t;
    text_init(&t, buf, size);
    text_add_amount(&t, x);
    return buf;
}

static const char *uint_text(char *buf, size_t size, uint64_t v)
{
    text_t t;
    text_init(&t, buf, size);
    text_add_uint(&t, v);
    return buf;
}

/* Sets parameter `index` from a rule's outcome. */
static void set_param(cv_scoring_result_t *out, int index,
                      const cv_scoring_rule_t *rule,
                      const cv_scoring_outcome_t *o, const values_t *values)
{
    cv_scoring_param_t *p = &out->params[index];
    p->value = o->value;
    text_t t;
    text_init(&t, p->source, sizeof(p->source));
    text_addn(&t, "auto:", 5);
    text_add(&t, rule->name);
    text_init(&t, p->reason, sizeof(p->reason));
    expand(&t, o, values);
}

/* Appends one knock-out reason, separated by "; ", and names the first
 * rule that knocked the lead out. */
static void add_knockout(cv_scoring_result_t *out,
                         const cv_scoring_rule_t *rule, const values_t *values)
{
    text_t t;
    size_t used = strlen(out->knockout_reason);
    t.buf = out->knockout_reason;
    t.size = sizeof(out->knockout_reason);
    t.len = used;
    if (used > 0)
        text_addn(&t, "; ", 2);
    expand(&t, rule->knockout, values);
    if (!out->knocked_out) {
        text_init(&t, out->knockout_source, sizeof(out->knockout_source));
        text_addn(&t, "auto:", 5);
        text_add(&t, rule->name);
    }
    out->knocked_out = true;
}

/* ---- the knock-out rules ---- */

/* Fills the budget's placeholders; false when there is no known budget. */
static bool budget_values(const cv_scoring_model_t *model,
                          const Conveyor__Lead *lead, double *rub,
                          values_t *values, char (*bufs)[128])
{
    const char *code;
    double rate;
    if (budget_rub(model, lead, rub, &code, &rate) != BUDGET_KNOWN)
        return false;
    describe_budget(bufs[0], sizeof(bufs[0]), lead->budget, code, rate);
    values->v[CV_SCORING_PH_BUDGET] = bufs[0];
    values->v[CV_SCORING_PH_AMOUNT] =
        amount_text(bufs[1], sizeof(bufs[1]), lead->budget);
    values->v[CV_SCORING_PH_CURRENCY] = code;
    values->v[CV_SCORING_PH_RUB] = amount_text(bufs[2], sizeof(bufs[2]), *rub);
    return true;
}

static void knockout_rule(const cv_scoring_model_t *model,
                          const cv_scoring_rule_t *rule,
                          const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    values_t values = {0};
    char bufs[4][128];
    switch (rule->kind) {
    case CV_SCORING_RULE_BUDGET_BELOW: {
        double rub = 0.0;
        if (budget_values(model, lead, &rub, &values, bufs) &&
            rub < rule->min_rub) {
            values.v[CV_SCORING_PH_LIMIT] =
                amount_text(bufs[3], sizeof(bufs[3]), rule->min_rub);
            add_knockout(out, rule, &values);
        }
        return;
    }
    case CV_SCORING_RULE_BLOCKED_DOMAIN: {
        const char *domain = lead->domain;
        const char *entry = domain_listed(rule, domain);
        if (entry == NULL) {
            domain = email_domain(lead->email);
            entry = domain_listed(rule, domain);
        }
        if (entry != NULL) {
            values.v[CV_SCORING_PH_MATCH] = entry;
            values.v[CV_SCORING_PH_DOMAIN] = domain;
            add_knockout(out, rule, &values);
        }
        return;
    }
    case CV_SCORING_RULE_BLOCKED_INN: {
        const char *entry = list_find(rule->list, lead->inn);
        if (entry != NULL) {
            values.v[CV_SCORING_PH_MATCH] = entry;
            add_knockout(out, rule, &values);
        }
        return;
    }
    case CV_SCORING_RULE_COMPETITOR: {
        const char *entry = NULL;
        const char *field = NULL;
        for (size_t i = 0; entry == NULL && i < rule->list_count; i++)
            if (contains(lead->company, rule->list[i])) {
                entry = rule->list[i];
                field = "company";
            }
        if (entry == NULL && (entry = domain_listed(rule, lead->domain)))
            field = "domain";
        if (entry == NULL &&
            (entry = domain_listed(rule, email_domain(lead->email))))
            field = "email";
        if (entry != NULL) {
            values.v[CV_SCORING_PH_MATCH] = entry;
            values.v[CV_SCORING_PH_FIELD] = field;
            add_knockout(out, rule, &values);
        }
        return;
    }
    case CV_SCORING_RULE_SPAM_MARKERS:
        /* the loader gives every spam_markers rule its needles
         * (cv_scoring_rules.c, rules_needles), even for an empty list */
        assert(rule->needles != NULL);
        for (size_t f = 0; f < rule->field_count; f++) {
            const char *text = lead_text(lead, rule->fields[f]);
            if (text == NULL || rule->list_count == 0)
                continue;
            int hit = -1; /* the first marker the text holds */
            folded_t folded;
            if (folded_init(&folded, text)) {
                hit = folded_first_marker(rule, &folded, text);
                folded_clear(&folded);
            } else {
                /* no memory to decode the text: marker by marker, the
                 * slow way (the same answer, folded_first_marker says) */
                for (size_t i = 0; i < rule->list_count && hit < 0; i++)
                    if (contains(text, rule->list[i]))
                        hit = (int)i;
            }
            if (hit >= 0) {
                values.v[CV_SCORING_PH_MATCH] = rule->list[hit];
                values.v[CV_SCORING_PH_FIELD] =
                    cv_scoring_field_name(rule->fields[f]);
                add_knockout(out, rule, &values);
            }
        }
        return;
    case CV_SCORING_RULE_TOO_MANY_LINKS: {
        int links = count_links(lead->message);
        if (links > rule->max) {
            values.v[CV_SCORING_PH_COUNT] =
                uint_text(bufs[0], sizeof(bufs[0]), (uint64_t)links);
            values.v[CV_SCORING_PH_LIMIT] =
                uint_text(bufs[1], sizeof(bufs[1]), (uint64_t)rule->max);
            add_knockout(out, rule, &values);
        }
        return;
    }
    default:
        return; /* a parameter rule: the loader keeps them apart */
    }
}

/* ---- the parameter rules: each returns true when it judged ---- */

static bool rule_budget_bands(const cv_scoring_model_t *model,
                              const cv_scoring_rule_t *rule,
                              const Conveyor__Lead *lead, int index,
                              cv_scoring_result_t *out)
{
    values_t values = {0};
    char bufs[5][128];
    double rub = 0.0;
    const char *code;
    double rate;
    switch (budget_rub(model, lead, &rub, &code, &rate)) {
    case BUDGET_NONE:
        if (rule->missing == NULL)
            return false;
        set_param(out, index, rule, rule->missing, &values);
        return true;
    case BUDGET_CURRENCY: {
        if (rule->unknown_currency == NULL)
            return false;
        size_t len;
        const char *cur = trim(lead->currency, &len);
        if (len >= sizeof(bufs[1]))
            len = sizeof(bufs[1]) - 1;
        memcpy(bufs[1], cur, len);
        bufs[1][len] = '\0';
        values.v[CV_SCORING_PH_AMOUNT] =
            amount_text(bufs[0], sizeof(bufs[0]), lead->budget);
        values.v[CV_SCORING_PH_CURRENCY] = bufs[1];
        set_param(out, index, rule, rule->unknown_currency, &values);
        return true;
    }
    case BUDGET_KNOWN:
        break;
    }
    size_t band = rule->band_count;
    for (size_t i = 0; i < rule->band_count; i++)
        if (rule->bands[i].from_rub <= rub)
            band = i;
    if (band == rule->band_count)
        return false; /* below the first band */
    const cv_scoring_outcome_t *o = &rule->bands[band].outcome;
    if (uses(o, CV_SCORING_PH_BUDGET)) {
        describe_budget(bufs[0], sizeof(bufs[0]), lead->budget, code, rate);
        values.v[CV_SCORING_PH_BUDGET] = bufs[0];
    }
    values.v[CV_SCORING_PH_AMOUNT] =
        amount_text(bufs[1], sizeof(bufs[1]), lead->budget);
    values.v[CV_SCORING_PH_CURRENCY] = code;
    values.v[CV_SCORING_PH_RUB] = amount_text(bufs[2], sizeof(bufs[2]), rub);
    values.v[CV_SCORING_PH_FROM] =
        amount_text(bufs[3], sizeof(bufs[3]), rule->bands[band].from_rub);
    if (band + 1 < rule->band_count)
        values.v[CV_SCORING_PH_TO] = amount_text(
            bufs[4], sizeof(bufs[4]), rule->bands[band + 1].from_rub);
    set_param(out, index, rule, o, &values);
    return true;
}

static bool rule_in_list(const cv_scoring_rule_t *rule,
                         const Conveyor__Lead *lead, int index,
                         cv_scoring_result_t *out)
{
    values_t values = {0};
    char value[CV_SCORING_REASON_SIZE];
    size_t len;
    const char *text = trim(lead_text(lead, rule->field), &len);
    values.v[CV_SCORING_PH_FIELD] = cv_scoring_field_name(rule->field);
    if (len == 0) {
        if (rule->missing == NULL)
            return false;
        set_param(out, index, rule, rule->missing, &values);
        return true;
    }
    const cv_scoring_outcome_t *o =
        list_find(rule->list, text) != NULL ? rule->listed : rule->unlisted;
    if (o == NULL)
        return false;
    text_t t;
    text_init(&t, value, sizeof(value));
    text_addn(&t, text, len);
    values.v[CV_SCORING_PH_VALUE] = value;
    set_param(out, index, rule, o, &values);
    return true;
}

static bool rule_channel_warmth(const cv_scoring_rule_t *rule,
                                const Conveyor__Lead *lead, int index,
                                cv_scoring_result_t *out)
{
    values_t values = {0};
    char channel[CV_SCORING_REASON_SIZE];
    size_t len;
    const char *text = trim(lead->channel, &len);
    if (len == 0) {
        text = "web"; /* API.md: the channel when none is named */
        len = 3;
    }
    text_t t;
    text_init(&t, channel, sizeof(channel));
    text_addn(&t, text, len);
    values.v[CV_SCORING_PH_CHANNEL] = channel;
    const cv_scoring_outcome_t *o = rule->other;
    for (size_t i = 0; i < rule->channel_count; i++) {
        const char *name = rule->channels[i].channel;
        if (strlen(name) == len && strncasecmp(text, name, len) == 0) {
            o = &rule->channels[i].outcome;
            break;
        }
    }
    if (o == NULL)
        return false;
    set_param(out, index, rule, o, &values);
    return true;
}

static bool rule_message_length(const cv_scoring_rule_t *rule,
                                const Conveyor__Lead *lead, int index,
                                cv_scoring_result_t *out)
{
    values_t values = {0};
    char chars_text[24], min_text[24];
    size_t len;
    const char *msg = trim(lead->message, &len);
    size_t chars = utf8_chars(msg, len);
    values.v[CV_SCORING_PH_MIN] =
        uint_text(min_text, sizeof(min_text), rule->min_chars);
    values.v[CV_SCORING_PH_CHARS] =
        uint_text(chars_text, sizeof(chars_text), chars);
    const cv_scoring_outcome_t *o = chars == 0                ? rule->missing
                                    : chars < rule->min_chars ? rule->shorter
                                                              : rule->longer;
    if (o == NULL)
        return false;
    set_param(out, index, rule, o, &values);
    return true;
}

static bool rule_fields_present(const cv_scoring_rule_t *rule,
                                const Conveyor__Lead *lead, int index,
                                cv_scoring_result_t *out)
{
    values_t values = {0};
    char missing[CV_SCORING_REASON_SIZE], given[CV_SCORING_REASON_SIZE];
    text_t m, g;
    text_init(&m, missing, sizeof(missing));
    text_init(&g, given, sizeof(given));
    size_t n_missing = 0;
    for (size_t i = 0; i < rule->field_count; i++) {
        bool has = lead_has(lead, rule->fields[i]);
        text_t *t = has ? &g : &m;
        if (t->len > 0)
            text_addn(t, ", ", 2);
        text_add(t, cv_scoring_field_name(rule->fields[i]));
        n_missing += has ? 0 : 1;
    }
    values.v[CV_SCORING_PH_MISSING] = missing;
    values.v[CV_SCORING_PH_PRESENT] = given;
    const cv_scoring_outcome_t *o;
    if (n_missing == 0)
        o = rule->all;
    else if (n_missing == rule->field_count && rule->none != NULL)
        o = rule->none;
    else if (n_missing == 1)
        o = rule->one_missing;
    else
        o = rule->more_missing;
    if (o == NULL)
        return false;
    set_param(out, index, rule, o, &values);
    return true;
}

static bool param_rule(const cv_scoring_model_t *model,
                       const cv_scoring_rule_t *rule,
                       const Conveyor__Lead *lead, int index,
                       cv_scoring_result_t *out)
{
    switch (rule->kind) {
    case CV_SCORING_RULE_BUDGET_BANDS:
        return rule_budget_bands(model, rule, lead, index, out);
    case CV_SCORING_RULE_IN_LIST:
        return rule_in_list(rule, lead, index, out);
    case CV_SCORING_RULE_CHANNEL_WARMTH:
        return rule_channel_warmth(rule, lead, index, out);
    case CV_SCORING_RULE_MESSAGE_LENGTH:
        return rule_message_length(rule, lead, index, out);
    case CV_SCORING_RULE_FIELDS_PRESENT:
        return rule_fields_present(rule, lead, index, out);
    default:
        return false; /* a knock-out rule: the loader keeps them apart */
    }
}

/* ---- people over the rules ---- */

static const char *value_text(int value)
{
    return value > 0 ? "+1" : value < 0 ? "-1" : "0";
}

/* Parameter `index` as a person set it: "set by sales-anna at
 * 2026-11-22T15:41:18Z; auto:budget_band said 0: budget not given". */
static void set_manual(cv_scoring_result_t *out, int index,
                       const cv_scoring_override_t *o)
{
    cv_scoring_param_t *p = &out->params[index];
    char auto_source[CV_SCORING_SOURCE_SIZE];
    char auto_reason[CV_SCORING_REASON_SIZE];
    char when[40];
    memcpy(auto_source, p->source, sizeof(auto_source));
    memcpy(auto_reason, p->reason, sizeof(auto_reason));
    int auto_value = p->value;
    const char *actor = o->actor != NULL && o->actor[0] ? o->actor : "staff";
    p->value = o->value > 0 ? 1 : o->value < 0 ? -1 : 0;
    p->manual = true;
    text_t t;
    text_init(&t, p->source, sizeof(p->source));
    text_add(&t, actor);
    text_init(&t, p->reason, sizeof(p->reason));
    text_add(&t, "set by ");
    text_add(&t, actor);
    if (o->set_at > 0) {
        cv_clock_format(o->set_at, when, sizeof(when));
        text_add(&t, " at ");
        text_add(&t, when);
    }
    text_add(&t, "; ");
    text_add(&t, auto_source);
    text_add(&t, " said ");
    text_add(&t, value_text(auto_value));
    text_add(&t, ": ");
    text_add(&t, auto_reason);
}

static void knockout_manual(cv_scoring_result_t *out,
                            const cv_scoring_manual_t *manual)
{
    char rules_said[CV_SCORING_KNOCKOUT_SIZE];
    memcpy(rules_said, out->knockout_reason, sizeof(rules_said));
    bool rules_knocked = out->knocked_out;
    const char *actor =
        manual->knockout_actor != NULL && manual->knockout_actor[0]
            ? manual->knockout_actor
            : "staff";
    text_t t;
    text_init(&t, out->knockout_reason, sizeof(out->knockout_reason));
    if (manual->knockout == CV_SCORING_KNOCKOUT_SET) {
        out->knocked_out = true;
        text_add(&t,
                 manual->knockout_reason != NULL && manual->knockout_reason[0]
                     ? manual->knockout_reason
                     : "no reason given");
        text_add(&t, " (knocked out by ");
        text_add(&t, actor);
        text_add(&t, ")");
        if (rules_knocked) {
            text_add(&t, "; the rules say: ");
            text_add(&t, rules_said);
        }
    } else {
        out->knocked_out = false;
        if (rules_knocked) {
            text_add(&t, "lifted by ");
            text_add(&t, actor);
            text_add(&t, "; the rules said: ");
            text_add(&t, rules_said);
        }
    }
    text_init(&t, out->knockout_source, sizeof(out->knockout_source));
    if (out->knocked_out || rules_knocked)
        text_add(&t, actor);
}

/* ---- the whole score ---- */

const cv_scoring_model_t *cv_scoring_default_model(void)
{
    return cv_scoring_rules_builtin();
}

int cv_scoring_score_manual(const cv_scoring_model_t *model,
                            const Conveyor__Lead *lead,
                            const cv_scoring_manual_t *manual,
                            cv_scoring_result_t *out)
{
    if (model == NULL)
        model = cv_scoring_rules_builtin();
    memset(out, 0, sizeof(*out));
    out->segment_c_max = -10;
    out->segment_a_min = 10;
    if (lead->spam_reason != NULL && lead->spam_reason[0] != '\0') {
        /* intake's spam check comes first: no rule can rescue spam, only
         * a person lifting the knock-out */
        text_t t;
        text_init(&t, out->knockout_reason, sizeof(out->knockout_reason));
        text_addn(&t, "spam: ", 6);
        text_add(&t, lead->spam_reason);
        text_init(&t, out->knockout_source, sizeof(out->knockout_source));
        text_add(&t, "auto:spam");
        out->knocked_out = true;
    }
    if (model == NULL) {
        /* only when the compiled-in rules are broken (logged) */
        out->model_version = "";
        cv_scoring_recompute(out);
        return 0;
    }
    out->model_version = model->version;
    out->segment_c_max = model->segment_c_max;
    out->segment_a_min = model->segment_a_min;
    for (size_t i = 0; i < model->knockout_count; i++)
        knockout_rule(model, &model->knockout[i], lead, out);
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        const cv_scoring_param_def_t *def = &model->params[i];
        out->params[i].name = def->name;
        out->params[i].block = def->block;
        bool judged = false;
        for (size_t r = 0; !judged && r < def->rule_count; r++)
            judged = param_rule(model, &def->rules[r], lead, i, out);
        if (!judged) {
            cv_scoring_param_t *p = &out->params[i];
            p->value = 0;
            memcpy(p->source, "auto:not_judged", sizeof("auto:not_judged"));
            text_t t;
            text_init(&t, p->reason, sizeof(p->reason));
            text_add(&t, model->unjudged_reason);
        }
    }
    int unknown = 0;
    if (manual != NULL) {
        out->revision = manual->revision;
        for (size_t k = 0; k < manual->count; k++) {
            int i = cv_scoring_rules_param_index(model, manual->params[k].name);
            if (i < 0)
                unknown++;
            else
                set_manual(out, i, &manual->params[k]);
        }
        if (manual->knockout != CV_SCORING_KNOCKOUT_RULES)
            knockout_manual(out, manual);
    }
    cv_scoring_recompute(out);
    return unknown;
}

void cv_scoring_score(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out)
{
    cv_scoring_score_manual(model, lead, NULL, out);
}

static const char *segment_of(int c_max, int a_min, int total, bool knocked_out)
{
    if (knocked_out || total <= c_max)
        return "C";
    if (total >= a_min)
        return "A";
    return "B";
}

const char *cv_scoring_model_segment(const cv_scoring_model_t *model, int total,
                                     bool knocked_out)
{
    if (model == NULL)
        model = cv_scoring_rules_builtin();
    if (model == NULL)
        return segment_of(-10, 10, total, knocked_out);
    return segment_of(model->segment_c_max, model->segment_a_min, total,
                      knocked_out);
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
    int c_max = score->segment_c_max, a_min = score->segment_a_min;
    if (c_max >= a_min) {
        /* a score made by hand without thresholds: the usual ones */
        c_max = -10;
        a_min = 10;
    }
    /* one letter and its NUL */
    memcpy(score->segment, segment_of(c_max, a_min, total, score->knocked_out),
           2);
}

int cv_scoring_param_index(const char *name)
{
    return cv_scoring_rules_param_index(cv_scoring_rules_builtin(), name);
}

const char *cv_scoring_param_name(int index)
{
    const cv_scoring_model_t *model = cv_scoring_rules_builtin();
    if (model == NULL || index < 0 || index >= CV_SCORING_PARAM_COUNT)
        return NULL;
    return model->params[index].name;
}

const char *cv_scoring_param_block(int index)
{
    const cv_scoring_model_t *model = cv_scoring_rules_builtin();
    if (model == NULL || index < 0 || index >= CV_SCORING_PARAM_COUNT)
        return NULL;
    return model->params[index].block;
}

void cv_scoring_to_proto(const cv_scoring_result_t *score, Conveyor__Score *out,
                         Conveyor__ScoreParam *params,
                         Conveyor__ScoreParam **param_ptrs)
{
    conveyor__score__init(out);
    size_t n = 0;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        const cv_scoring_param_t *p = &score->params[i];
        if (p->name == NULL)
            continue; /* only in a score without a model */
        conveyor__score_param__init(&params[n]);
        params[n].name = (char *)p->name;
        params[n].block = (char *)p->block;
        params[n].value = p->value;
        params[n].source = (char *)p->source;
        params[n].reason = (char *)p->reason;
        param_ptrs[n] = &params[n];
        n++;
    }
    out->total = score->total;
    out->segment = (char *)score->segment;
    out->n_params = n;
    out->params = param_ptrs;
    out->has_knocked_out = true;
    out->knocked_out = score->knocked_out;
    if (score->knockout_reason[0] != '\0')
        out->knockout_reason = (char *)score->knockout_reason;
    if (score->knockout_source[0] != '\0')
        out->knockout_source = (char *)score->knockout_source;
    out->model_version = (char *)score->model_version;
    if (score->revision > 0) {
        out->has_revision = true;
        out->revision = score->revision;
    }
}

void cv_scoring_manual_from_proto(const Conveyor__Scorecard *card,
                                  cv_scoring_manual_t *out,
                                  cv_scoring_override_t *storage)
{
    memset(out, 0, sizeof(*out));
    out->params = storage;
    if (card == NULL)
        return;
    out->revision = card->revision;
    size_t n = 0;
    for (size_t i = 0; i < card->n_params; i++) {
        const Conveyor__ScorecardParam *p = card->params[i];
        if (p == NULL || p->name == NULL)
            continue;
        size_t at = 0;
        while (at < n && strcmp(storage[at].name, p->name) != 0)
            at++;
        if (at == n) {
            if (n == CV_SCORING_PARAM_COUNT)
                continue;
            n++;
        }
        storage[at].name = p->name;
        storage[at].value = p->value > 0 ? 1 : p->value < 0 ? -1 : 0;
        storage[at].actor = p->actor;
        storage[at].set_at = p->has_set_at ? p->set_at : 0;
    }
    out->count = n;
    if (card->knockout != NULL && strcmp(card->knockout, "set") == 0)
        out->knockout = CV_SCORING_KNOCKOUT_SET;
    else if (card->knockout != NULL && strcmp(card->knockout, "lifted") == 0)
        out->knockout = CV_SCORING_KNOCKOUT_LIFTED;
    out->knockout_reason = card->knockout_reason;
    out->knockout_actor = card->knockout_actor;
    out->knockout_at = card->has_knockout_at ? card->knockout_at : 0;
}

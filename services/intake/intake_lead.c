/* intake_lead: a lead as a channel posts it, read, checked and normalised. */
#include "intake_lead.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_clock.h"
#include "cv_contact.h"
#include "cv_form.h"
#include "cv_utf8.h"

#define INTAKE_FIELD_MAX 4096     /* bytes in any text field but message */
#define INTAKE_API_FIELDS 17      /* the leading text fields a client sets */

const intake_lead_field_t intake_lead_text_fields[] = {
    {"name", offsetof(intake_lead_t, name)},
    {"company", offsetof(intake_lead_t, company)},
    {"phone", offsetof(intake_lead_t, phone)},
    {"email", offsetof(intake_lead_t, email)},
    {"telegram", offsetof(intake_lead_t, telegram)},
    {"message", offsetof(intake_lead_t, message)},
    {"channel", offsetof(intake_lead_t, channel)},
    {"source", offsetof(intake_lead_t, source)},
    {"region", offsetof(intake_lead_t, region)},
    {"industry", offsetof(intake_lead_t, industry)},
    {"product", offsetof(intake_lead_t, product)},
    {"currency", offsetof(intake_lead_t, currency)},
    {"inn", offsetof(intake_lead_t, inn)},
    {"timezone", offsetof(intake_lead_t, timezone)},
    {"utm_source", offsetof(intake_lead_t, utm_source)},
    {"utm_medium", offsetof(intake_lead_t, utm_medium)},
    {"utm_campaign", offsetof(intake_lead_t, utm_campaign)},
    /* derived or composed by intake, never taken from the client as is */
    {"extra_json", offsetof(intake_lead_t, extra_json)},
    {"domain", offsetof(intake_lead_t, domain)},
};
const size_t intake_lead_text_field_count =
    sizeof(intake_lead_text_fields) / sizeof(intake_lead_text_fields[0]);

static const char *const intake_channels[] = {"web", "phone", "social",
                                              "email"};

char **intake_lead_text(intake_lead_t *lead, size_t index)
{
    return (char **)((char *)lead + intake_lead_text_fields[index].offset);
}

const char *intake_lead_text_get(const intake_lead_t *lead, size_t index)
{
    return *(char *const *)((const char *)lead +
                            intake_lead_text_fields[index].offset);
}

void intake_lead_clear(intake_lead_t *lead)
{
    if (lead == NULL)
        return;
    for (size_t i = 0; i < intake_lead_text_field_count; i++)
        free(*intake_lead_text(lead, i));
    free(lead->lead_id);
    free(lead->api_source);
    free(lead->spam_reason);
    free(lead->returning_of);
    free(lead->previous_owner);
    free(lead->previous_result);
    memset(lead, 0, sizeof(*lead));
}

static int intake_fail(intake_error_t *error, int status, const char *code,
                       const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int intake_fail(intake_error_t *error, int status, const char *code,
                       const char *field, const char *fmt, ...)
{
    error->status = status;
    snprintf(error->code, sizeof(error->code), "%s", code);
    snprintf(error->field, sizeof(error->field), "%s",
             field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof(error->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* Index of an API text field, or -1. */
static int intake_field_index(const char *name)
{
    /* the first byte first: a call per field and per name was a sixth of
     * reading the usual body */
    for (size_t i = 0; i < INTAKE_API_FIELDS; i++) {
        const char *field = intake_lead_text_fields[i].name;
        if (field[0] == name[0] && strcmp(field, name) == 0)
            return (int)i;
    }
    return -1;
}

/* A copy of `text` without surrounding white space; NULL when empty.
 * *oom is set when out of memory. */
static char *intake_trimmed(const char *text, size_t len, bool *oom)
{
    while (len > 0 && strchr(" \t\r\n", text[0]) != NULL) {
        text++;
        len--;
    }
    while (len > 0 && strchr(" \t\r\n", text[len - 1]) != NULL)
        len--;
    if (len == 0)
        return NULL;
    char *copy = strndup(text, len);
    if (copy == NULL)
        *oom = true;
    return copy;
}

/* Whether a text field of `len` bytes may be kept: every field but the
 * free-text message has a limit. */
static bool intake_field_fits(const char *name, size_t len)
{
    return strcmp(name, "message") == 0 || len <= INTAKE_FIELD_MAX;
}

static int intake_set_text(intake_lead_t *lead, int index, json_t *value,
                           intake_error_t *error)
{
    const char *name = intake_lead_text_fields[index].name;
    char number[64];
    const char *text = NULL;
    size_t len = 0;
    bool numeric_ok = strcmp(name, "phone") == 0 || strcmp(name, "inn") == 0;
    if (json_is_string(value)) {
        text = json_string_value(value);
        len = json_string_length(value);
        if (memchr(text, '\0', len) != NULL)
            return intake_fail(error, 400, "invalid_body", name,
                               "'%s' holds a NUL character", name);
    } else if (json_is_integer(value) && numeric_ok) {
        snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(value));
        text = number;
        len = strlen(number);
    } else {
        return intake_fail(error, 422, "invalid_field", name,
                           "'%s' must be a string", name);
    }
    if (!intake_field_fits(name, len))
        return intake_fail(error, 422, "invalid_field", name,
                           "'%s' is longer than %d bytes", name,
                           INTAKE_FIELD_MAX);
    bool oom = false;
    char *copy = intake_trimmed(text, len, &oom);
    if (oom)
        return intake_fail(error, 503, "out_of_memory", NULL,
                           "the server is out of memory");
    char **slot = intake_lead_text(lead, (size_t)index);
    free(*slot);
    *slot = copy;
    return 0;
}

static int intake_set_budget(intake_lead_t *lead, json_t *value,
                             bool from_form, intake_error_t *error)
{
    double budget = 0;
    if (json_is_number(value)) {
        budget = json_number_value(value);
    } else if (from_form && json_is_string(value)) {
        const char *text = json_string_value(value);
        bool oom = false;
        char *trimmed = intake_trimmed(text, strlen(text), &oom);
        if (trimmed == NULL)
            return oom ? intake_fail(error, 503, "out_of_memory", NULL,
                                     "the server is out of memory")
                       : 0;
        char *end = NULL;
        errno = 0;
        budget = strtod(trimmed, &end);
        bool ok = errno == 0 && end != trimmed && *end == '\0';
        free(trimmed);
        if (!ok)
            return intake_fail(error, 422, "invalid_field", "budget",
                               "'budget' must be a number");
    } else {
        return intake_fail(error, 422, "invalid_field", "budget",
                           "'budget' must be a number");
    }
    if (!isfinite(budget) || budget < 0)
        return intake_fail(error, 422, "invalid_field", "budget",
                           "'budget' must be a number of at least 0");
    lead->has_budget = true;
    lead->budget = budget;
    return 0;
}

/* `extra` from the client: an object, or (in a form) its JSON text. */
static int intake_set_extra(json_t *extra, json_t *value, bool from_form,
                            intake_error_t *error)
{
    json_t *object = NULL;
    if (json_is_object(value)) {
        object = json_incref(value);
    } else if (from_form && json_is_string(value)) {
        json_error_t parse_error;
        object = json_loads(json_string_value(value), JSON_REJECT_DUPLICATES,
                            &parse_error);
    }
    if (!json_is_object(object)) {
        json_decref(object);
        return intake_fail(error, 422, "invalid_field", "extra",
                           "'extra' must be a JSON object");
    }
    json_object_update(extra, object);
    json_decref(object);
    return 0;
}

/* Normalises one contact in place with `normalise`; 422 when it is not
 * such a contact. */
static int intake_normalise(char **slot, const char *field,
                            int (*normalise)(const char *, char *, size_t),
                            const char *want, intake_error_t *error)
{
    if (*slot == NULL)
        return 0;
    char canonical[CV_CONTACT_SIZE];
    if (normalise(*slot, canonical, sizeof(canonical)) != 0)
        return intake_fail(error, 422, "invalid_field", field,
                           "'%s' is not %s", field, want);
    char *copy = strdup(canonical);
    if (copy == NULL)
        return intake_fail(error, 503, "out_of_memory", NULL,
                           "the server is out of memory");
    free(*slot);
    *slot = copy;
    return 0;
}

/* Channel, currency, budget and contacts: the checks that make a lead
 * usable, and the canonical forms the rest of the conveyor relies on. */
static int intake_validate(intake_lead_t *lead, intake_error_t *error)
{
    if (lead->channel == NULL) {
        lead->channel = strdup("web");
    } else {
        for (char *p = lead->channel; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        bool known = false;
        for (size_t i = 0; i < 4; i++)
            known = known || strcmp(lead->channel, intake_channels[i]) == 0;
        if (!known)
            return intake_fail(error, 422, "invalid_field", "channel",
                               "'channel' must be one of web, phone, "
                               "social, email");
    }
    if (lead->currency == NULL) {
        lead->currency = strdup("RUB");
    } else {
        size_t len = strlen(lead->currency);
        bool ok = len == 3;
        for (size_t i = 0; i < len && ok; i++) {
            char c = lead->currency[i];
            if (c >= 'a' && c <= 'z')
                lead->currency[i] = (char)(c - 'a' + 'A');
            else if (!(c >= 'A' && c <= 'Z'))
                ok = false;
        }
        if (!ok)
            return intake_fail(error, 422, "invalid_field", "currency",
                               "'currency' must be a 3-letter ISO 4217 code");
    }
    if (lead->channel == NULL || lead->currency == NULL)
        return intake_fail(error, 503, "out_of_memory", NULL,
                           "the server is out of memory");
    if (lead->phone == NULL && lead->email == NULL && lead->telegram == NULL)
        return intake_fail(error, 422, "missing_contact", "phone",
                           "a lead needs at least one contact: 'phone', "
                           "'email' or 'telegram'");
    if (intake_normalise(&lead->phone, "phone", cv_contact_phone,
                         "a phone number (want +<country><number>, or a "
                         "Russian number)", error) != 0 ||
        intake_normalise(&lead->email, "email", cv_contact_email,
                         "an email address", error) != 0 ||
        intake_normalise(&lead->telegram, "telegram", cv_contact_telegram,
                         "a Telegram username", error) != 0 ||
        intake_normalise(&lead->inn, "inn", cv_contact_inn,
                         "an INN (10 or 12 digits)", error) != 0)
        return -1;
    char domain[CV_CONTACT_SIZE];
    if (lead->email != NULL &&
        cv_contact_company_domain(lead->email, domain, sizeof(domain))) {
        lead->domain = strdup(domain);
        if (lead->domain == NULL)
            return intake_fail(error, 503, "out_of_memory", NULL,
                               "the server is out of memory");
    }
    return 0;
}

/* Makes *object an empty JSON object unless it is one already; -1 with
 * `error` filled when out of memory. */
static int intake_object_made(json_t **object, intake_error_t *error)
{
    if (*object == NULL)
        *object = json_object();
    if (*object == NULL)
        return intake_fail(error, 503, "out_of_memory", NULL,
                           "the server is out of memory");
    return 0;
}

/* Reads the fields of a parsed body; unknown fields go to `extra`. The
 * objects for `extra` and the unknown fields are made only when a lead has
 * any: most have neither. */
static int intake_from_object(json_t *obj, bool from_form,
                              intake_lead_t *lead, intake_error_t *error)
{
    int rc = -1;
    json_t *extra = NULL;
    json_t *unknown = NULL;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (json_is_null(value))
            continue;
        int index = intake_field_index(key);
        if (index >= 0) {
            if (intake_set_text(lead, index, value, error) != 0)
                goto out;
        } else if (strcmp(key, "budget") == 0) {
            if (intake_set_budget(lead, value, from_form, error) != 0)
                goto out;
        } else if (strcmp(key, "extra") == 0) {
            if (intake_object_made(&extra, error) != 0 ||
                intake_set_extra(extra, value, from_form, error) != 0)
                goto out;
        } else {
            if (intake_object_made(&unknown, error) != 0)
                goto out;
            json_object_set(unknown, key, value);
        }
    }
    /* what `extra` says wins over an unknown field of the same name */
    if (extra == NULL) {
        extra = unknown;
        unknown = NULL;
    } else if (unknown != NULL) {
        json_object_update_missing(extra, unknown);
    }
    if (extra != NULL && json_object_size(extra) > 0) {
        lead->extra_json = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
        if (lead->extra_json == NULL) {
            intake_fail(error, 503, "out_of_memory", NULL,
                        "the server is out of memory");
            goto out;
        }
    }
    rc = intake_validate(lead, error);
out:
    json_decref(extra);
    json_decref(unknown);
    return rc;
}

int intake_lead_from_json(json_t *obj, intake_lead_t *lead,
                          intake_error_t *error)
{
    memset(lead, 0, sizeof(*lead));
    memset(error, 0, sizeof(*error));
    if (!json_is_object(obj))
        return intake_fail(error, 400, "invalid_json", NULL,
                           "a lead must be a JSON object");
    int rc = intake_from_object(obj, false, lead, error);
    if (rc != 0)
        intake_lead_clear(lead);
    return rc;
}

/* A form body (URL-encoded or multipart) as the object of its fields,
 * read by cv_form (files noted in `files`, later values of a repeated name
 * in `repeated`; both end up in `extra`). NULL with `error` filled. */
static json_t *intake_parse_form(const char *content_type_header,
                                 const char *body, size_t size,
                                 intake_error_t *error)
{
    cv_form_error_t form_error;
    cv_form_t *form = cv_form_parse(content_type_header, body, size,
                                    &form_error);
    if (form == NULL) {
        intake_fail(error, form_error.status,
                    form_error.status >= 500   ? "out_of_memory"
                    : form_error.status == 415 ? "unsupported_media_type"
                                               : "invalid_form",
                    form_error.field[0] != '\0' ? form_error.field : NULL,
                    form_error.field[0] != '\0' ? "'%.100s': %s" : "%s%s",
                    form_error.field, form_error.reason);
        return NULL;
    }
    json_t *obj = cv_form_to_json(form);
    cv_form_destroy(&form);
    if (obj == NULL)
        intake_fail(error, 503, "out_of_memory", NULL,
                    "the server is out of memory");
    return obj;
}

/* --- the usual JSON body, read without jansson ---
 *
 * Nearly every lead a site or CRM posts is one flat object of known text
 * fields (and maybe a numeric budget). jansson builds a tree of it (a
 * string, a key and a hash entry per field) only to be copied out again:
 * most of what reading a lead cost. intake_fast_json reads exactly that
 * shape straight into the lead and gives up on anything else — an unknown
 * field or `extra`, an escape it does not know, a \u escape of NUL or of
 * half a surrogate pair, a number that is not a plain integer, a
 * duplicate key, a field too long, anything that is not valid JSON — and
 * then jansson reads the body as before, so every error keeps its words
 * and every other lead its meaning. \u escapes of other characters are
 * read here: PHP's json_encode and Python's json.dumps write every
 * Cyrillic letter so by default, and jansson cost ~70k instructions per
 * such lead, more than storing it. */

typedef struct {
    const char *at;   /* next byte to read */
    const char *end;  /* one past the body */
} intake_scan_t;

static void intake_scan_blank(intake_scan_t *s)
{
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\t' ||
                              *s->at == '\n' || *s->at == '\r'))
        s->at++;
}

static bool intake_scan_byte(intake_scan_t *s, char c)
{
    intake_scan_blank(s);
    if (s->at >= s->end || *s->at != c)
        return false;
    s->at++;
    return true;
}

/* A string of printable bytes whose only escapes are the one-letter ones
 * and \u with four hex digits; s->at is past its opening quote.
 * [*start, *stop) is its raw text and *escaped says whether it holds a
 * backslash. false: not such a string. */
static bool intake_scan_string(intake_scan_t *s, const char **start,
                               const char **stop, bool *escaped)
{
    *start = s->at;
    *escaped = false;
    while (s->at < s->end) {
        unsigned char c = (unsigned char)*s->at;
        if (c == '"') {
            *stop = s->at++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            char next = s->end - s->at >= 2 ? s->at[1] : '\0';
            if (next == 'u') {
                if (cv_utf8_hex4(s->at + 2, (size_t)(s->end - s->at - 2)) < 0)
                    return false;
                s->at += 4; /* the digits; the 'u' is stepped below */
            } else if (next == '\0' ||
                       strchr("\"\\/bfnrt", next) == NULL) {
                return false;
            }
            *escaped = true;
            s->at++;
        }
        s->at++;
    }
    return false;
}

/* Decodes the \u escape at `*p` (its backslash), and the low half after
 * it when it is a high surrogate, as UTF-8 into `out` (at most 4 bytes,
 * fewer than the escape took); *p is left on its last byte. 0 when it is
 * NUL or half a pair, which jansson refuses with its own words. */
static size_t intake_unescape_u(const char **p, const char *stop, char *out)
{
    /* intake_scan_string checked every escape's four digits */
    unsigned cp = (unsigned)cv_utf8_hex4(*p + 2, 4);
    *p += 5;
    if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return 0;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        const char *low = *p + 1;
        if (stop - low < 6 || low[0] != '\\' || low[1] != 'u')
            return 0;
        unsigned lo = (unsigned)cv_utf8_hex4(low + 2, 4);
        if (lo < 0xdc00 || lo > 0xdfff)
            return 0;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        *p += 6;
    }
    return cv_utf8_encode(cp, out); /* never a surrogate by now */
}

/* The text of a string intake_scan_string accepted, escapes decoded, into
 * `out` (room for stop - start bytes); false when a \u escape is one the
 * fast path leaves to jansson (intake_unescape_u). */
static bool intake_unescape(const char *start, const char *stop, char *out,
                            size_t *out_len)
{
    size_t len = 0;
    for (const char *p = start; p < stop; p++) {
        if (*p != '\\') {
            out[len++] = *p;
            continue;
        }
        if (p[1] == 'u') {
            size_t n = intake_unescape_u(&p, stop, out + len);
            if (n == 0)
                return false;
            len += n;
            continue;
        }
        p++;
        switch (*p) {
        case 'b': out[len++] = '\b'; break;
        case 'f': out[len++] = '\f'; break;
        case 'n': out[len++] = '\n'; break;
        case 'r': out[len++] = '\r'; break;
        case 't': out[len++] = '\t'; break;
        default: out[len++] = *p; break; /* " \\ / */
        }
    }
    *out_len = len;
    return true;
}

/* A text field's string value into its slot, trimmed as intake_set_text
 * does. 1 done, 0 not the usual case, -1 out of memory. */
static int intake_fast_text(intake_scan_t *s, intake_lead_t *lead,
                            size_t index)
{
    const char *start;
    const char *stop;
    bool escaped;
    if (!intake_scan_byte(s, '"') ||
        !intake_scan_string(s, &start, &stop, &escaped))
        return 0;
    char *decoded = NULL;
    size_t len = (size_t)(stop - start);
    if (escaped) {
        decoded = malloc(len + 1);
        if (decoded == NULL)
            return -1;
        if (!intake_unescape(start, stop, decoded, &len)) {
            free(decoded);
            return 0;
        }
        start = decoded;
    }
    int rc = 0;
    if (intake_field_fits(intake_lead_text_fields[index].name, len)) {
        bool oom = false;
        *intake_lead_text(lead, index) = intake_trimmed(start, len, &oom);
        rc = oom ? -1 : 1;
    }
    free(decoded);
    return rc;
}

/* A budget that is a plain integer of up to 15 digits, at least 0. */
static bool intake_fast_budget(intake_scan_t *s, intake_lead_t *lead)
{
    intake_scan_blank(s);
    const char *start = s->at;
    while (s->at < s->end && *s->at >= '0' && *s->at <= '9')
        s->at++;
    size_t digits = (size_t)(s->at - start);
    if (digits == 0 || digits > 15 || (digits > 1 && *start == '0') ||
        (s->at < s->end && (*s->at == '.' || *s->at == 'e' ||
                            *s->at == 'E')))
        return false;
    long long value = 0;
    for (const char *p = start; p < s->at; p++)
        value = value * 10 + (*p - '0');
    lead->has_budget = true;
    lead->budget = (double)value;
    return true;
}

/* 1 with the body's fields in `lead`; 0 when the body is not the usual
 * flat object (the lead may hold some fields: clear it); -1 when out of
 * memory. */
static int intake_fast_json(const char *body, size_t size,
                            intake_lead_t *lead)
{
    if (!cv_utf8_valid(body, size))
        return 0;
    intake_scan_t s = {body, body + size};
    uint32_t seen = 0; /* bit per text field, then budget */
    if (!intake_scan_byte(&s, '{'))
        return 0;
    for (;;) {
        const char *start;
        const char *stop;
        bool escaped;
        char key[24];
        if (!intake_scan_byte(&s, '"') ||
            !intake_scan_string(&s, &start, &stop, &escaped) || escaped ||
            (size_t)(stop - start) >= sizeof(key))
            return 0;
        memcpy(key, start, (size_t)(stop - start));
        key[stop - start] = '\0';
        int index = intake_field_index(key);
        int bit = index >= 0 ? index : strcmp(key, "budget") == 0
                                           ? INTAKE_API_FIELDS
                                           : -1;
        if (bit < 0 || (seen & (1u << bit)) != 0 ||
            !intake_scan_byte(&s, ':'))
            return 0;
        seen |= 1u << bit;
        intake_scan_blank(&s);
        if (s.end - s.at >= 4 && memcmp(s.at, "null", 4) == 0) {
            s.at += 4; /* as absent */
        } else if (index >= 0) {
            int rc = intake_fast_text(&s, lead, (size_t)index);
            if (rc <= 0)
                return rc;
        } else if (!intake_fast_budget(&s, lead)) {
            return 0;
        }
        if (intake_scan_byte(&s, ','))
            continue;
        if (!intake_scan_byte(&s, '}'))
            return 0;
        intake_scan_blank(&s);
        return s.at == s.end ? 1 : 0;
    }
}

int intake_lead_parse(const char *media_type, const char *content_type_header,
                      const char *body, size_t size, intake_lead_t *lead,
                      intake_error_t *error)
{
    memset(lead, 0, sizeof(*lead));
    memset(error, 0, sizeof(*error));
    json_t *obj = NULL;
    bool from_form = false;
    if (strcmp(media_type, "application/json") == 0) {
        int fast = intake_fast_json(body, size, lead);
        if (fast == 1) {
            int rc = intake_validate(lead, error);
            if (rc != 0)
                intake_lead_clear(lead);
            return rc;
        }
        intake_lead_clear(lead);
        if (fast < 0)
            return intake_fail(error, 503, "out_of_memory", NULL,
                               "the server is out of memory");
        json_error_t parse_error;
        obj = json_loadb(body, size, JSON_REJECT_DUPLICATES, &parse_error);
        if (obj == NULL)
            return intake_fail(error, 400, "invalid_json", NULL,
                               "invalid JSON at line %d, column %d: %s",
                               parse_error.line, parse_error.column,
                               parse_error.text);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return intake_fail(error, 400, "invalid_json", NULL,
                               "the body must be a JSON object");
        }
    } else if (strcmp(media_type, "application/x-www-form-urlencoded") == 0 ||
               strcmp(media_type, "multipart/form-data") == 0) {
        from_form = true;
        obj = intake_parse_form(content_type_header, body, size, error);
    } else {
        return intake_fail(error, 415, "unsupported_media_type", NULL,
                           "send application/json, "
                           "application/x-www-form-urlencoded or "
                           "multipart/form-data, not '%.100s'",
                           media_type[0] != '\0' ? media_type : "nothing");
    }
    if (obj == NULL) {
        if (error->status == 0)
            intake_fail(error, 503, "out_of_memory", NULL,
                        "the server is out of memory");
        return -1;
    }
    int rc = intake_from_object(obj, from_form, lead, error);
    json_decref(obj);
    if (rc != 0)
        intake_lead_clear(lead);
    return rc;
}

int intake_lead_merge(intake_lead_t *into, const intake_lead_t *from)
{
    for (size_t i = 0; i < intake_lead_text_field_count; i++) {
        char **slot = intake_lead_text(into, i);
        const char *value = intake_lead_text_get(from, i);
        if (*slot != NULL || value == NULL)
            continue;
        *slot = strdup(value);
        if (*slot == NULL)
            return -1;
    }
    if (!into->has_budget && from->has_budget) {
        into->has_budget = true;
        into->budget = from->budget;
    }
    return 0;
}

void intake_lead_to_proto(const intake_lead_t *lead, Conveyor__Lead *out)
{
    out->lead_id = lead->lead_id;
    out->name = lead->name;
    out->company = lead->company;
    out->phone = lead->phone;
    out->email = lead->email;
    out->telegram = lead->telegram;
    out->message = lead->message;
    out->channel = lead->channel;
    out->source = lead->source != NULL ? lead->source : lead->api_source;
    out->region = lead->region;
    out->industry = lead->industry;
    out->product = lead->product;
    out->has_budget = lead->has_budget;
    out->budget = lead->budget;
    out->currency = lead->currency;
    out->inn = lead->inn;
    out->timezone = lead->timezone;
    out->utm_source = lead->utm_source;
    out->utm_medium = lead->utm_medium;
    out->utm_campaign = lead->utm_campaign;
    out->extra_json = lead->extra_json;
    out->has_received_at = true;
    out->received_at = lead->received_at;
    out->domain = lead->domain;
    out->spam_reason = lead->spam_reason;
    out->has_call_back = lead->call_back;
    out->call_back = lead->call_back;
    out->returning_of = lead->returning_of;
    out->previous_owner = lead->previous_owner;
    out->previous_result = lead->previous_result;
}

/* A growing text for intake_lead_to_json. */
typedef struct {
    char *text;      /* NUL-terminated once done (owned) */
    size_t len;      /* bytes used */
    size_t cap;      /* bytes allocated */
    bool oom;        /* an allocation failed */
} intake_buf_t;

static void intake_buf_put(intake_buf_t *b, const char *data, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 512;
        while (b->len + len + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->text, cap);
        if (grown == NULL) {
            b->oom = true;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
    memcpy(b->text + b->len, data, len);
    b->len += len;
}

/* A JSON string the way jansson dumps it without flags: only '"', '\\'
 * and control characters are escaped; UTF-8 passes as is. */
static void intake_buf_string(intake_buf_t *b, const char *text)
{
    intake_buf_put(b, "\"", 1);
    const char *run = text;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        intake_buf_put(b, run, (size_t)(p - run));
        char seq[8];
        const char *esc = seq;
        size_t len = 2;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            snprintf(seq, sizeof(seq), "\\u%04X", (unsigned)c);
            len = 6;
        }
        intake_buf_put(b, esc, len);
        run = p + 1;
    }
    intake_buf_put(b, run, strlen(run));
    intake_buf_put(b, "\"", 1);
}

/* ,"key": — every member but lead_id follows another. */
static void intake_buf_key(intake_buf_t *b, const char *key)
{
    intake_buf_put(b, ",\"", 2);
    intake_buf_put(b, key, strlen(key));
    intake_buf_put(b, "\":", 2);
}

/* A text member, left out when unset or empty (cv_event_put_text). */
static void intake_buf_text(intake_buf_t *b, const char *key,
                            const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    intake_buf_key(b, key);
    intake_buf_string(b, text);
}

/* An amount as cv_event_number makes it: an integer when whole. */
static void intake_buf_number(intake_buf_t *b, double value)
{
    char number[64];
    if (isfinite(value) && value == floor(value) && fabs(value) < 9.0e15) {
        int n = snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT,
                         (json_int_t)value);
        intake_buf_put(b, number, (size_t)n);
        return;
    }
    if (!isfinite(value)) {
        intake_buf_put(b, "null", 4);
        return;
    }
    /* jansson's own formatting of reals, to stay byte for byte */
    json_t *real = json_real(value);
    char *text = real != NULL ? json_dumps(real, JSON_ENCODE_ANY) : NULL;
    json_decref(real);
    if (text == NULL) {
        b->oom = true;
        return;
    }
    intake_buf_put(b, text, strlen(text));
    free(text);
}

char *intake_lead_to_json(const intake_lead_t *lead)
{
    intake_buf_t b = {0};
    intake_buf_put(&b, "{\"lead_id\":", 11);
    intake_buf_string(&b, lead->lead_id != NULL ? lead->lead_id : "");
    intake_buf_text(&b, "name", lead->name);
    intake_buf_text(&b, "company", lead->company);
    intake_buf_text(&b, "phone", lead->phone);
    intake_buf_text(&b, "email", lead->email);
    intake_buf_text(&b, "telegram", lead->telegram);
    intake_buf_text(&b, "message", lead->message);
    intake_buf_text(&b, "channel", lead->channel);
    intake_buf_text(&b, "source",
                    lead->source != NULL ? lead->source : lead->api_source);
    intake_buf_text(&b, "region", lead->region);
    intake_buf_text(&b, "industry", lead->industry);
    intake_buf_text(&b, "product", lead->product);
    if (lead->has_budget) {
        intake_buf_key(&b, "budget");
        intake_buf_number(&b, lead->budget);
    }
    intake_buf_text(&b, "currency", lead->currency);
    intake_buf_text(&b, "inn", lead->inn);
    intake_buf_text(&b, "timezone", lead->timezone);
    intake_buf_text(&b, "utm_source", lead->utm_source);
    intake_buf_text(&b, "utm_medium", lead->utm_medium);
    intake_buf_text(&b, "utm_campaign", lead->utm_campaign);
    /* extra_json is jansson's compact, key-sorted dump of an object, which
     * a parse and re-dump would give back unchanged */
    if (lead->extra_json != NULL && lead->extra_json[0] == '{') {
        intake_buf_key(&b, "extra");
        intake_buf_put(&b, lead->extra_json, strlen(lead->extra_json));
    }
    char when[40];
    cv_clock_format(lead->received_at, when, sizeof(when));
    intake_buf_text(&b, "received_at", when);
    intake_buf_text(&b, "domain", lead->domain);
    intake_buf_text(&b, "spam_reason", lead->spam_reason);
    if (lead->call_back)
        intake_buf_put(&b, ",\"call_back\":true", 17);
    intake_buf_text(&b, "returning_of", lead->returning_of);
    intake_buf_text(&b, "previous_owner", lead->previous_owner);
    intake_buf_text(&b, "previous_result", lead->previous_result);
    intake_buf_put(&b, "}", 1);
    if (b.oom) {
        free(b.text);
        return NULL;
    }
    b.text[b.len] = '\0';
    return b.text;
}

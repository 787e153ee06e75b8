/* cv_jsonw: JSON text written directly, byte for byte as jansson's
 * json_dumps(JSON_COMPACT) writes it, for the texts a stage writes for every
 * lead (a score, a notification payload): building and dumping jansson
 * trees was most of the work per event there. What the writer cannot
 * reproduce exactly (text that is not valid UTF-8, fractional numbers,
 * `extra` objects) marks the buffer failed, and the caller takes the
 * jansson path instead. */
#include "cv_jsonw.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"

void cv_jsonw_init(cv_jsonw_t *b)
{
    b->data = NULL;
    b->length = 0;
    b->capacity = 0;
    b->failed = false;
}

void cv_jsonw_clear(cv_jsonw_t *b)
{
    free(b->data);
    cv_jsonw_init(b);
}

void cv_jsonw_raw(cv_jsonw_t *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->length + n + 1 > b->capacity) {
        size_t cap = b->capacity > 0 ? b->capacity * 2 : 1024;
        while (cap < b->length + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->capacity = cap;
    }
    memcpy(b->data + b->length, text, n);
    b->length += n;
    b->data[b->length] = '\0';
}

void cv_jsonw_append(cv_jsonw_t *b, const char *text)
{
    cv_jsonw_raw(b, text, strlen(text));
}

/* Bytes of the UTF-8 sequence at `s` as jansson accepts it (no overlong
 * forms, surrogates or code points above U+10FFFF), or 0. */
size_t cv_jsonw_utf8_length(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
        cp = c & 0x1F;
    } else if (c < 0xF0) {
        n = 3;
        cp = c & 0x0F;
    } else if (c < 0xF5) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
        return 0;
    return n;
}

#define CV_JSONW_ONES 0x0101010101010101ULL
#define CV_JSONW_HIGHS 0x8080808080808080ULL

/* True when one of the eight bytes of `x` is zero. */
static bool cv_jsonw_has_zero(uint64_t x)
{
    return ((x - CV_JSONW_ONES) & ~x & CV_JSONW_HIGHS) != 0;
}

/* True when none of the eight bytes of `x` needs a look of its own: no
 * control character, '"', '\\' or byte of a multi-byte character. */
static bool cv_jsonw_plain8(uint64_t x)
{
    if (x & CV_JSONW_HIGHS)
        return false;
    /* every byte is below 0x80 here, so this finds a byte below 0x20 */
    if (((x - CV_JSONW_ONES * 0x20) & ~x & CV_JSONW_HIGHS) != 0)
        return false;
    return !cv_jsonw_has_zero(x ^ (CV_JSONW_ONES * '"')) &&
           !cv_jsonw_has_zero(x ^ (CV_JSONW_ONES * '\\'));
}

void cv_jsonw_string(cv_jsonw_t *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    if (text == NULL) {
        b->failed = true; /* json_string(NULL) is no value at all */
        return;
    }
    const unsigned char *p = (const unsigned char *)text;
    const unsigned char *end = p + strlen(text);
    const unsigned char *run = p;
    cv_jsonw_raw(b, "\"", 1);
    while (p < end) {
        /* plain text, eight bytes at a time (a lead's texts are mostly
         * plain: this was most of a snapshot's cost byte by byte) */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, sizeof(x));
            if (!cv_jsonw_plain8(x))
                break;
            p += 8;
        }
        if (p == end)
            break;
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = cv_jsonw_utf8_length(p);
            if (n == 0) {
                b->failed = true;
                return;
            }
            p += n;
            continue;
        }
        cv_jsonw_raw(b, (const char *)run, (size_t)(p - run));
        const char *esc = NULL;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            break;
        }
        if (esc != NULL) {
            cv_jsonw_raw(b, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            cv_jsonw_raw(b, u, sizeof(u));
        }
        p++;
        run = p;
    }
    cv_jsonw_raw(b, (const char *)run, (size_t)(p - run));
    cv_jsonw_raw(b, "\"", 1);
}

size_t cv_jsonw_format_int(char out[CV_JSONW_INT_SIZE], long long value)
{
    char digits[CV_JSONW_INT_SIZE];
    size_t at = sizeof(digits);
    unsigned long long magnitude =
        value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (value < 0)
        digits[--at] = '-';
    size_t length = sizeof(digits) - at;
    memcpy(out, digits + at, length);
    out[length] = '\0';
    return length;
}

void cv_jsonw_int(cv_jsonw_t *b, long long value)
{
    char text[CV_JSONW_INT_SIZE];
    cv_jsonw_raw(b, text, cv_jsonw_format_int(text, value));
}

void cv_jsonw_member(cv_jsonw_t *b, const char *key, bool first)
{
    if (!first)
        cv_jsonw_raw(b, ",", 1);
    cv_jsonw_string(b, key);
    cv_jsonw_raw(b, ":", 1);
}

void cv_jsonw_text_member(cv_jsonw_t *b, const char *key, const char *text)
{
    if (text != NULL && text[0] != '\0') {
        cv_jsonw_member(b, key, false);
        cv_jsonw_string(b, text);
    }
}

void cv_jsonw_lead(cv_jsonw_t *b, const Conveyor__Lead *lead)
{
    /* the members and their order of cv_event_lead_to_json */
    cv_jsonw_raw(b, "{", 1);
    cv_jsonw_member(b, "lead_id", true);
    cv_jsonw_string(b, lead->lead_id != NULL ? lead->lead_id : "");
    cv_jsonw_text_member(b, "name", lead->name);
    cv_jsonw_text_member(b, "company", lead->company);
    cv_jsonw_text_member(b, "phone", lead->phone);
    cv_jsonw_text_member(b, "email", lead->email);
    cv_jsonw_text_member(b, "telegram", lead->telegram);
    cv_jsonw_text_member(b, "message", lead->message);
    cv_jsonw_text_member(b, "channel", lead->channel);
    cv_jsonw_text_member(b, "source", lead->source);
    cv_jsonw_text_member(b, "region", lead->region);
    cv_jsonw_text_member(b, "industry", lead->industry);
    cv_jsonw_text_member(b, "product", lead->product);
    if (lead->has_budget) {
        double v = lead->budget;
        cv_jsonw_member(b, "budget", false);
        if (!isfinite(v))
            cv_jsonw_raw(b, "null", 4);
        else if (fabs(v) < 9.0e15 && v == floor(v))
            cv_jsonw_int(b, (long long)v);
        else
            b->failed = true; /* a real: jansson's own formatting */
    }
    cv_jsonw_text_member(b, "currency", lead->currency);
    cv_jsonw_text_member(b, "inn", lead->inn);
    cv_jsonw_text_member(b, "timezone", lead->timezone);
    cv_jsonw_text_member(b, "utm_source", lead->utm_source);
    cv_jsonw_text_member(b, "utm_medium", lead->utm_medium);
    cv_jsonw_text_member(b, "utm_campaign", lead->utm_campaign);
    if (lead->extra_json != NULL && lead->extra_json[0] != '\0')
        b->failed = true; /* re-encoded by jansson */
    if (lead->has_received_at) {
        char when[40];
        cv_clock_format(lead->received_at, when, sizeof(when));
        cv_jsonw_member(b, "received_at", false);
        cv_jsonw_string(b, when);
    }
    cv_jsonw_text_member(b, "domain", lead->domain);
    cv_jsonw_raw(b, "}", 1);
}

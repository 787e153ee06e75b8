/* cv_call: a call-tracking event from the phone channel. */
#include "cv_call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_clock.h"

#define CV_CALL_MAX_DURATION 1000000000LL /* seconds; ~31 years */

static int cv_call_fail(cv_call_error_t *err, int status, const char *field,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills `err` (when given). Returns -1. */
static int cv_call_fail(cv_call_error_t *err, int status, const char *field,
                        const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->status = status;
    snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return -1;
}

static int cv_call_nomem(cv_call_error_t *err)
{
    return cv_call_fail(err, 503, NULL, "out of memory");
}

void cv_call_clear(cv_call_t *call)
{
    if (call == NULL)
        return;
    free(call->call_id);
    free(call->caller);
    free(call->called);
    free(call->caller_name);
    free(call->status_text);
    free(call->recording_url);
    memset(call, 0, sizeof(*call));
}

const char *cv_call_status_name(cv_call_status_t status)
{
    switch (status) {
    case CV_CALL_ANSWERED:
        return "answered";
    case CV_CALL_MISSED:
        return "missed";
    case CV_CALL_PENDING:
        return "pending";
    }
    return "unknown";
}

static bool cv_call_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A value found under one of a field's names. */
typedef struct {
    const char *name; /* the name it was found under; NULL when absent */
    json_t *value;    /* borrowed; never JSON null */
    const char *text; /* string values: trimmed start, not terminated */
    size_t len;       /* ... and length; 0 for other types */
} cv_call_found_t;

/* The first of `names` (NULL-terminated) that `object` holds with a value
 * other than null or a blank string. */
static cv_call_found_t cv_call_find(json_t *object, const char *const *names)
{
    cv_call_found_t found = {0};
    for (size_t i = 0; names[i] != NULL; i++) {
        json_t *value = json_object_get(object, names[i]);
        if (value == NULL || json_is_null(value))
            continue;
        found = (cv_call_found_t){names[i], value, NULL, 0};
        if (!json_is_string(value))
            return found;
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        while (len > 0 && cv_call_space(text[0])) {
            text++;
            len--;
        }
        while (len > 0 && cv_call_space(text[len - 1]))
            len--;
        if (len == 0) {
            found = (cv_call_found_t){0};
            continue; /* an empty form field says nothing */
        }
        found.text = text;
        found.len = len;
        return found;
    }
    return found;
}

/* A text field into *out: a string, or (when `numbers_ok`) an integer as
 * its digits. Absent is fine unless `required`, then `names[0]` is the
 * field named in the error. */
static int cv_call_text(json_t *object, const char *const *names, bool required,
                        bool numbers_ok, size_t max, char **out,
                        cv_call_error_t *err)
{
    cv_call_found_t found = cv_call_find(object, names);
    char number[32];
    if (found.name == NULL)
        return required ? cv_call_fail(err, 422, names[0], "required") : 0;
    if (json_is_integer(found.value) && numbers_ok) {
        snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(found.value));
        found.text = number;
        found.len = strlen(number);
    } else if (!json_is_string(found.value)) {
        return cv_call_fail(err, 422, found.name, "must be a string");
    }
    if (found.len > max)
        return cv_call_fail(err, 422, found.name, "longer than %zu bytes", max);
    *out = strndup(found.text, found.len);
    return *out == NULL ? cv_call_nomem(err) : 0;
}

/* Whole seconds: a JSON integer or a string of digits. */
static int cv_call_duration(json_t *object, cv_call_t *call,
                            cv_call_error_t *err)
{
    static const char *const names[] = {"duration", "DialCallDuration",
                                        "CallDuration", NULL};
    cv_call_found_t found = cv_call_find(object, names);
    int64_t seconds = 0;
    if (found.name == NULL)
        return 0;
    if (json_is_integer(found.value)) {
        seconds = (int64_t)json_integer_value(found.value);
        if (seconds < 0 || seconds > CV_CALL_MAX_DURATION)
            goto bad;
    } else if (json_is_string(found.value)) {
        for (size_t i = 0; i < found.len; i++) {
            char c = found.text[i];
            if (c < '0' || c > '9')
                goto bad;
            seconds = seconds * 10 + (c - '0');
            if (seconds > CV_CALL_MAX_DURATION)
                goto bad;
        }
    } else {
        goto bad;
    }
    call->has_duration = true;
    call->duration_s = seconds;
    return 0;
bad:
    return cv_call_fail(err, 422, found.name,
                        "must be a whole number of seconds, at least 0");
}

/* Case-insensitive match of a counted text against a word. */
static bool cv_call_word_is(const char *text, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(text, word, len) == 0;
}

static int cv_call_status(json_t *object, cv_call_t *call, cv_call_error_t *err)
{
    static const char *const names[] = {"status", "DialCallStatus",
                                        "CallStatus", NULL};
    static const struct {
        const char *word;        /* as a tracker or Twilio sends it */
        cv_call_status_t status; /* what it means here */
    } words[] = {
        {"answered", CV_CALL_ANSWERED},    {"completed", CV_CALL_ANSWERED},
        {"in-progress", CV_CALL_ANSWERED}, {"missed", CV_CALL_MISSED},
        {"no-answer", CV_CALL_MISSED},     {"busy", CV_CALL_MISSED},
        {"failed", CV_CALL_MISSED},        {"canceled", CV_CALL_MISSED},
        {"cancelled", CV_CALL_MISSED},     {"ringing", CV_CALL_PENDING},
        {"queued", CV_CALL_PENDING},       {"initiated", CV_CALL_PENDING},
    };
    cv_call_found_t found = cv_call_find(object, names);
    if (found.name == NULL) {
        call->status = call->duration_s > 0 ? CV_CALL_ANSWERED : CV_CALL_MISSED;
        return 0;
    }
    if (!json_is_string(found.value))
        return cv_call_fail(err, 422, found.name, "must be a string");
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!cv_call_word_is(found.text, found.len, words[i].word))
            continue;
        call->status = words[i].status;
        call->status_text = strdup(words[i].word);
        return call->status_text == NULL ? cv_call_nomem(err) : 0;
    }
    return cv_call_fail(err, 422, found.name,
                        "must be answered or missed (or a Twilio call "
                        "status)");
}

/* An RFC 3339 date-time with a time and a zone (a bare date is not a
 * moment a call can start). */
static int cv_call_rfc3339(const char *text, int64_t *ms)
{
    if (strlen(text) <= 10)
        return -1;
    return cv_clock_parse(text, ms);
}

/* Reads `width` digits (exactly, or 1..width when !exact). */
static bool cv_call_digits(const char **pp, int width, bool exact, int *out)
{
    const char *p = *pp;
    int value = 0;
    int n = 0;
    while (n < width && *p >= '0' && *p <= '9') {
        value = value * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || (exact && n != width))
        return false;
    *pp = p;
    *out = value;
    return true;
}

static void cv_call_skip_space(const char **pp)
{
    while (**pp == ' ' || **pp == '\t')
        (*pp)++;
}

int cv_call_parse_rfc2822(const char *text, int64_t *ms)
{
    static const char months[12][4] = {"jan", "feb", "mar", "apr",
                                       "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"};
    static const struct {
        const char *name; /* an obsolete zone name (RFC 2822 4.3) */
        int minutes;      /* its offset from UTC */
    } zones[] = {{"UT", 0},        {"GMT", 0},       {"Z", 0},
                 {"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60},
                 {"CDT", -5 * 60}, {"MST", -7 * 60}, {"MDT", -6 * 60},
                 {"PST", -8 * 60}, {"PDT", -7 * 60}};
    if (text == NULL || ms == NULL)
        return -1;
    const char *p = text;
    int day, year, hour, minute, second = 0, month = 0, offset = 0;
    cv_call_skip_space(&p);
    if (strlen(p) >= 4 && p[3] == ',') {
        p += 4; /* the day name says nothing the date does not */
        cv_call_skip_space(&p);
    }
    if (!cv_call_digits(&p, 2, false, &day))
        return -1;
    cv_call_skip_space(&p);
    for (int i = 0; i < 12 && month == 0; i++)
        if (strncasecmp(p, months[i], 3) == 0)
            month = i + 1;
    if (month == 0)
        return -1;
    p += 3;
    cv_call_skip_space(&p);
    if (!cv_call_digits(&p, 4, true, &year))
        return -1;
    cv_call_skip_space(&p);
    if (!cv_call_digits(&p, 2, true, &hour) || *p++ != ':' ||
        !cv_call_digits(&p, 2, true, &minute))
        return -1;
    if (*p == ':') {
        p++;
        if (!cv_call_digits(&p, 2, true, &second))
            return -1;
    }
    cv_call_skip_space(&p);
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hhmm;
        p++;
        if (!cv_call_digits(&p, 4, true, &hhmm) || hhmm % 100 > 59)
            return -1;
        offset = sign * (hhmm / 100 * 60 + hhmm % 100);
    } else {
        size_t len = 0;
        while ((p[len] >= 'A' && p[len] <= 'Z') ||
               (p[len] >= 'a' && p[len] <= 'z'))
            len++;
        bool known = false;
        for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
            if (strlen(zones[i].name) == len &&
                strncasecmp(p, zones[i].name, len) == 0) {
                offset = zones[i].minutes;
                known = true;
                break;
            }
        }
        if (!known)
            return -1;
        p += len;
    }
    cv_call_skip_space(&p);
    if (*p != '\0')
        return -1;
    /* cv_clock checks the calendar (30 February, hour 24, ...) */
    char iso[96]; /* room for any int the compiler imagines */
    int abs_offset = offset < 0 ? -offset : offset;
    snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", year,
             month, day, hour, minute, second, offset < 0 ? '-' : '+',
             abs_offset / 60, abs_offset % 60);
    return cv_clock_parse(iso, ms);
}

/* started_at (RFC 3339) or Twilio's Timestamp (RFC 2822, or 3339). */
static int cv_call_started_at(json_t *object, cv_call_t *call,
                              cv_call_error_t *err)
{
    static const char *const names[] = {"started_at", "Timestamp", NULL};
    cv_call_found_t found = cv_call_find(object, names);
    bool twilio = found.name != NULL && strcmp(found.name, "Timestamp") == 0;
    const char *want = twilio ? "not an RFC 2822 or RFC 3339 time"
                              : "not an RFC 3339 time "
                                "(2026-11-22T15:41:18+03:00)";
    if (found.name == NULL)
        return 0;
    if (!json_is_string(found.value) || found.len > 64)
        return cv_call_fail(err, 422, found.name, "%s", want);
    char text[65];
    memcpy(text, found.text, found.len);
    text[found.len] = '\0';
    int64_t ms = 0;
    int rc = cv_call_rfc3339(text, &ms);
    if (rc != 0 && twilio)
        rc = cv_call_parse_rfc2822(text, &ms);
    if (rc != 0)
        return cv_call_fail(err, 422, found.name, "%s", want);
    call->has_started_at = true;
    call->started_at_ms = ms;
    return 0;
}

int cv_call_from_json(json_t *object, cv_call_t *call, cv_call_error_t *err)
{
    static const char *const id_names[] = {"call_id", "CallSid", NULL};
    static const char *const caller_names[] = {"caller", "From", "Caller",
                                               NULL};
    static const char *const called_names[] = {"called", "To", "Called", NULL};
    static const char *const name_names[] = {"caller_name", "CallerName", NULL};
    static const char *const url_names[] = {"recording_url", "RecordingUrl",
                                            NULL};
    memset(call, 0, sizeof(*call));
    if (!json_is_object(object)) {
        cv_call_fail(err, 400, NULL, "a call event must be a JSON object");
        return -1;
    }
    if (cv_call_text(object, id_names, true, true, CV_CALL_MAX_ID,
                     &call->call_id, err) != 0 ||
        cv_call_text(object, caller_names, true, true, CV_CALL_MAX_TEXT,
                     &call->caller, err) != 0 ||
        cv_call_text(object, called_names, false, true, CV_CALL_MAX_TEXT,
                     &call->called, err) != 0 ||
        cv_call_text(object, name_names, false, false, CV_CALL_MAX_TEXT,
                     &call->caller_name, err) != 0 ||
        cv_call_text(object, url_names, false, false, CV_CALL_MAX_TEXT,
                     &call->recording_url, err) != 0 ||
        cv_call_duration(object, call, err) != 0 ||
        cv_call_status(object, call, err) != 0 ||
        cv_call_started_at(object, call, err) != 0) {
        cv_call_clear(call);
        return -1;
    }
    call->missed = call->status == CV_CALL_MISSED;
    return 0;
}

int cv_call_parse_json(const char *body, size_t size, cv_call_t *call,
                       cv_call_error_t *err)
{
    memset(call, 0, sizeof(*call));
    json_error_t parse_error;
    json_t *object = NULL;
    if (body != NULL)
        object = json_loadb(body, size, JSON_REJECT_DUPLICATES, &parse_error);
    if (object == NULL) {
        if (body == NULL)
            return cv_call_fail(err, 400, NULL, "no body");
        return cv_call_fail(
            err, 400, NULL, "invalid JSON at line %d, column %d: %s",
            parse_error.line, parse_error.column, parse_error.text);
    }
    int rc = cv_call_from_json(object, call, err);
    json_decref(object);
    return rc;
}

int cv_call_from_form(const cv_form_t *form, cv_call_t *call,
                      cv_call_error_t *err)
{
    memset(call, 0, sizeof(*call));
    json_t *object = cv_form_to_json(form);
    if (object == NULL)
        return cv_call_nomem(err);
    int rc = cv_call_from_json(object, call, err);
    json_decref(object);
    return rc;
}

/* True when the media type of a Content-Type value is application/json
 * (any case, parameters allowed). */
static bool cv_call_is_json(const char *content_type)
{
    static const char json_type[] = "application/json";
    const char *p = content_type;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, json_type, sizeof(json_type) - 1) != 0)
        return false;
    p += sizeof(json_type) - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';';
}

int cv_call_parse(const char *content_type, const char *body, size_t size,
                  cv_call_t *call, cv_call_error_t *err)
{
    memset(call, 0, sizeof(*call));
    if (content_type != NULL && cv_call_is_json(content_type))
        return cv_call_parse_json(body, size, call, err);
    if (!cv_form_is_form_type(content_type))
        return cv_call_fail(err, 415, NULL,
                            "send application/json, "
                            "application/x-www-form-urlencoded or "
                            "multipart/form-data");
    cv_form_error_t form_error = {0};
    cv_form_t *form = cv_form_parse(content_type, body, size, &form_error);
    if (form == NULL)
        return cv_call_fail(err, form_error.status, form_error.field, "%s",
                            form_error.reason);
    int rc = cv_call_from_form(form, call, err);
    cv_form_destroy(&form);
    return rc;
}

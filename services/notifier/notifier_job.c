/* notifier_job: one delivery of a notification on its way, the channel
 * names, and the webhook body. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cv_jsonw.h"
#include "cv_log.h"
#include "cv_utf8.h"
#include "notifier.h"

/* The room a copy of `text` takes, its NUL included; 0 for NULL. */
static size_t notifier_job_room(const char *text)
{
    return text != NULL ? strlen(text) + 1 : 0;
}

/* Copies `text` to *at and moves *at past it; NULL stays NULL. */
static char *notifier_job_place(const char *text, char **at)
{
    if (text == NULL)
        return NULL;
    size_t size = strlen(text) + 1;
    char *copy = memcpy(*at, text, size);
    *at += size;
    return copy;
}

static const char *const notifier_channel_names[NOTIFIER_CHANNEL_COUNT] = {
    [NOTIFIER_CONSOLE] = "console", [NOTIFIER_TELEGRAM] = "telegram",
    [NOTIFIER_SLACK] = "slack",     [NOTIFIER_EMAIL] = "email",
    [NOTIFIER_WEBHOOK] = "webhook",
};

const char *notifier_channel_name(notifier_channel_t channel)
{
    if ((int)channel < 0 || channel >= NOTIFIER_CHANNEL_COUNT)
        return "unknown";
    return notifier_channel_names[channel];
}

int notifier_channel_parse(const char *name)
{
    for (int i = 0; name != NULL && i < NOTIFIER_CHANNEL_COUNT; i++)
        if (strcmp(name, notifier_channel_names[i]) == 0)
            return i;
    return -1;
}

/* A job and its strings are one allocation: a delivery is made and
 * freed per notification on the bus thread, and eight strdups each way
 * were most of its malloc traffic. The strings never change once made. */
notifier_job_t *notifier_job_new(const notifier_job_fields_t *fields)
{
    if (fields->notification_id == NULL || fields->destination == NULL ||
        fields->body == NULL)
        return NULL;
    size_t room =
        notifier_job_room(fields->notification_id) +
        notifier_job_room(fields->destination) +
        notifier_job_room(fields->lead_id) +
        notifier_job_room(fields->staff_id) +
        notifier_job_room(fields->subject) + notifier_job_room(fields->text) +
        notifier_job_room(fields->body) + notifier_job_room(fields->trace_id);
    notifier_job_t *self = malloc(sizeof(*self) + room);
    if (self == NULL)
        return NULL;
    memset(self, 0, sizeof(*self));
    char *at = (char *)(self + 1);
    self->notification_id = notifier_job_place(fields->notification_id, &at);
    self->channel = fields->channel;
    self->destination = notifier_job_place(fields->destination, &at);
    self->lead_id = notifier_job_place(fields->lead_id, &at);
    self->staff_id = notifier_job_place(fields->staff_id, &at);
    self->subject = notifier_job_place(fields->subject, &at);
    self->text = notifier_job_place(fields->text, &at);
    self->body = notifier_job_place(fields->body, &at);
    self->trace_id = notifier_job_place(fields->trace_id, &at);
    self->retry_after_ms = -1;
    return self;
}

void notifier_job_destroy(notifier_job_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free(*self_p); /* the strings live in the same block */
    *self_p = NULL;
}

void notifier_job_list_destroy(notifier_job_t **list_p)
{
    if (list_p == NULL)
        return;
    notifier_job_t *job = *list_p;
    while (job != NULL) {
        notifier_job_t *next = job->next;
        notifier_job_destroy(&job);
        job = next;
    }
    *list_p = NULL;
}

/* The length of the UTF-8 sequence a lead byte starts (1 for ASCII and
 * for bytes that cannot start one). */
static size_t notifier_job_utf8_length(unsigned char lead)
{
    if (lead >= 0xf0)
        return 4;
    if (lead >= 0xe0)
        return 3;
    if (lead >= 0xc0)
        return 2;
    return 1;
}

/* A copy of `text` with every byte that is not part of a valid UTF-8
 * sequence replaced by '?' (jansson decides what is valid). NULL when out
 * of memory. */
static char *notifier_job_utf8_repair(const char *text)
{
    size_t size = strlen(text);
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return NULL;
    size_t at = 0;
    while (at < size) {
        unsigned char lead = (unsigned char)text[at];
        size_t length = notifier_job_utf8_length(lead);
        bool valid = lead < 0x80;
        if (!valid && length > 1 && at + length <= size) {
            json_t *probe = json_stringn(text + at, length);
            valid = probe != NULL;
            json_decref(probe);
        }
        if (!valid)
            length = 1;
        for (size_t i = 0; i < length; i++)
            copy[at + i] = valid ? text[at + i] : '?';
        at += length;
    }
    copy[size] = '\0';
    return copy;
}

/* Sets `key` to the string `value` unless that is NULL. Text that is not
 * valid UTF-8 (the bus does not check) is sent with its invalid bytes as
 * '?', so the receiver still gets valid JSON. -1 when out of memory. */
static int notifier_job_set(json_t *object, const char *key, const char *value)
{
    if (value == NULL)
        return 0;
    json_t *text = json_string(value);
    if (text == NULL) {
        char *repaired = notifier_job_utf8_repair(value);
        if (repaired == NULL)
            return -1;
        text = json_string(repaired);
        free(repaired);
        if (text == NULL)
            return -1;
    }
    return json_object_set_new(object, key, text);
}

/* ---- a quick check of payload_json that never allocates ----
 *
 * json_loads was most of the handler's work per event, only to learn that
 * the payload parses. These functions accept a subset of what jansson
 * accepts (JSON_DECODE_ANY, no other flags): objects, arrays, strings of
 * valid UTF-8 with simple escapes, integers of up to 18 digits, decimals
 * without exponent, true, false and null, nested at most
 * NOTIFIER_JSON_DEPTH deep. Anything else, valid or not, is "unsure" and
 * goes to json_loads as before, so the outcome is always jansson's. */

#define NOTIFIER_JSON_DEPTH 64 /* deeper texts go to jansson */

/* The parse position; NULL once the text is outside the subset. */
typedef const unsigned char *notifier_json_at;

static notifier_json_at notifier_json_value(notifier_json_at p, int depth);

static notifier_json_at notifier_json_space(notifier_json_at p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A string at `p` (its opening quote). */
static notifier_json_at notifier_json_string(notifier_json_at p)
{
    p++;
    for (;;) {
        unsigned char c = *p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL; /* control character or the end of the text */
        if (c == '\\') {
            c = p[1];
            if (c == 'u') {
                /* the text ends in a NUL, which stops cv_utf8_hex4's read */
                int cp = cv_utf8_hex4((const char *)p + 2, 4);
                /* not hex, \u0000 and surrogate pairs: left to jansson */
                if (cp <= 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    return NULL;
                p += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' ||
                       c == 'f' || c == 'n' || c == 'r' || c == 't') {
                p += 2;
            } else {
                return NULL;
            }
        } else if (c < 0x80) {
            p++;
        } else {
            size_t n = cv_jsonw_utf8_length(p);
            if (n == 0)
                return NULL;
            p += n;
        }
    }
}

static bool notifier_json_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* A number: an integer of at most 18 digits, or one with a fraction and
 * at most 300 digits before the point (strtod cannot overflow). */
static notifier_json_at notifier_json_number(notifier_json_at p)
{
    if (*p == '-')
        p++;
    notifier_json_at digits = p;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (notifier_json_digit(*p))
            p++;
    } else {
        return NULL;
    }
    size_t whole = (size_t)(p - digits);
    if (*p == '.') {
        p++;
        if (!notifier_json_digit(*p) || whole > 300)
            return NULL;
        while (notifier_json_digit(*p))
            p++;
    } else if (whole > 18) {
        return NULL;
    }
    if (*p == 'e' || *p == 'E' || notifier_json_digit(*p))
        return NULL;
    return p;
}

static notifier_json_at notifier_json_word(notifier_json_at p, const char *word,
                                           size_t length)
{
    if (strncmp((const char *)p, word, length) != 0)
        return NULL;
    p += length;
    /* jansson reads a whole run of letters as one word */
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        return NULL;
    return p;
}

static notifier_json_at notifier_json_object(notifier_json_at p, int depth)
{
    p = notifier_json_space(p + 1);
    if (*p == '}')
        return p + 1;
    for (;;) {
        if (*p != '"')
            return NULL;
        p = notifier_json_string(p);
        if (p == NULL)
            return NULL;
        p = notifier_json_space(p);
        if (*p != ':')
            return NULL;
        p = notifier_json_value(notifier_json_space(p + 1), depth);
        if (p == NULL)
            return NULL;
        p = notifier_json_space(p);
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = notifier_json_space(p + 1);
    }
}

static notifier_json_at notifier_json_array(notifier_json_at p, int depth)
{
    p = notifier_json_space(p + 1);
    if (*p == ']')
        return p + 1;
    for (;;) {
        p = notifier_json_value(p, depth);
        if (p == NULL)
            return NULL;
        p = notifier_json_space(p);
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = notifier_json_space(p + 1);
    }
}

/* A value at `p` (no leading space). */
static notifier_json_at notifier_json_value(notifier_json_at p, int depth)
{
    switch (*p) {
    case '{':
        return depth < NOTIFIER_JSON_DEPTH ? notifier_json_object(p, depth + 1)
                                           : NULL;
    case '[':
        return depth < NOTIFIER_JSON_DEPTH ? notifier_json_array(p, depth + 1)
                                           : NULL;
    case '"':
        return notifier_json_string(p);
    case 't':
        return notifier_json_word(p, "true", 4);
    case 'f':
        return notifier_json_word(p, "false", 5);
    case 'n':
        return notifier_json_word(p, "null", 4);
    default:
        return notifier_json_number(p);
    }
}

/* True when `text` is surely JSON that json_loads accepts; false when it
 * is not or this check cannot tell. */
static bool notifier_json_surely_valid(const char *text)
{
    notifier_json_at p = notifier_json_space((notifier_json_at)text);
    p = notifier_json_value(p, 0);
    return p != NULL && *notifier_json_space(p) == '\0';
}

const char *notifier_job_body(const Conveyor__NotificationRequested *request,
                              char **owned)
{
    *owned = NULL;
    if (request->payload_json != NULL && request->payload_json[0] != '\0') {
        /* the payload itself, not a copy: the job copies it anyway */
        if (notifier_json_surely_valid(request->payload_json))
            return request->payload_json;
        json_error_t error;
        json_t *payload =
            json_loads(request->payload_json, JSON_DECODE_ANY, &error);
        if (payload != NULL) {
            json_decref(payload);
            return request->payload_json;
        }
        cv_log_warn("notification '%s': payload_json is not json (%s at "
                    "line %d); sending the default body",
                    request->notification_id, error.text, error.line);
    }
    char *text = NULL;
    json_t *body = json_object();
    if (body == NULL)
        goto out;
    if (notifier_job_set(body, "notification_id", request->notification_id) !=
            0 ||
        notifier_job_set(body, "lead_id", request->lead_id) != 0 ||
        notifier_job_set(body, "staff_id", request->staff_id) != 0 ||
        notifier_job_set(body, "subject", request->subject) != 0 ||
        notifier_job_set(body, "text", request->text) != 0)
        goto out;
    text = json_dumps(body, JSON_COMPACT);
out:
    json_decref(body);
    *owned = text;
    return text;
}

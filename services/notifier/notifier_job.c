/* notifier_job: a notification on its way to a webhook, and its body. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"
#include "notifier.h"

/* strdup that keeps NULL as NULL; sets *failed when out of memory. */
static char *notifier_job_copy(const char *text, bool *failed)
{
    if (text == NULL)
        return NULL;
    char *copy = strdup(text);
    if (copy == NULL)
        *failed = true;
    return copy;
}

notifier_job_t *notifier_job_new(const char *notification_id,
                                 const char *lead_id, const char *staff_id,
                                 const char *webhook_url, const char *body,
                                 const char *trace_id)
{
    notifier_job_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    bool failed = false;
    self->notification_id = notifier_job_copy(notification_id, &failed);
    self->lead_id = notifier_job_copy(lead_id, &failed);
    self->staff_id = notifier_job_copy(staff_id, &failed);
    self->webhook_url = notifier_job_copy(webhook_url, &failed);
    self->body = notifier_job_copy(body, &failed);
    self->trace_id = notifier_job_copy(trace_id, &failed);
    self->retry_after_ms = -1;
    if (failed || self->notification_id == NULL || self->webhook_url == NULL
        || self->body == NULL)
        notifier_job_destroy(&self);
    return self;
}

void notifier_job_destroy(notifier_job_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_job_t *self = *self_p;
    free(self->notification_id);
    free(self->lead_id);
    free(self->staff_id);
    free(self->webhook_url);
    free(self->body);
    free(self->trace_id);
    free(self);
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
static int notifier_job_set(json_t *object, const char *key,
                            const char *value)
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

char *notifier_job_body(const Conveyor__NotificationRequested *request)
{
    if (request->payload_json != NULL && request->payload_json[0] != '\0') {
        json_error_t error;
        json_t *payload = json_loads(request->payload_json, JSON_DECODE_ANY,
                                     &error);
        if (payload != NULL) {
            json_decref(payload);
            return strdup(request->payload_json);
        }
        cv_log_warn("notification '%s': payload_json is not json (%s at "
                    "line %d); sending the default body",
                    request->notification_id, error.text, error.line);
    }
    char *text = NULL;
    json_t *body = json_object();
    if (body == NULL)
        goto out;
    if (notifier_job_set(body, "notification_id", request->notification_id)
            != 0
        || notifier_job_set(body, "lead_id", request->lead_id) != 0
        || notifier_job_set(body, "staff_id", request->staff_id) != 0
        || notifier_job_set(body, "subject", request->subject) != 0
        || notifier_job_set(body, "text", request->text) != 0)
        goto out;
    text = json_dumps(body, JSON_COMPACT);
out:
    json_decref(body);
    return text;
}

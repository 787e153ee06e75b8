/* intake_channel: phone, Telegram and email bodies as lead objects. */
#include "intake_channel.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_call.h"
#include "cv_contact.h"
#include "cv_mail.h"
#include "cv_telegram.h"
#include "cv_sha256.h"

#define CHANNEL_MESSAGE_MAX 8192 /* bytes of a generated message text */

void intake_channel_event_clear(intake_channel_event_t *event)
{
    if (event == NULL)
        return;
    json_decref(event->lead);
    memset(event, 0, sizeof(*event));
}

static int channel_fail(intake_error_t *error, int status, const char *code,
                        const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int channel_fail(intake_error_t *error, int status, const char *code,
                        const char *field, const char *fmt, ...)
{
    va_list ap;

    error->status = status;
    snprintf(error->code, sizeof(error->code), "%s", code);
    snprintf(error->field, sizeof(error->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof(error->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int channel_out_of_memory(intake_error_t *error)
{
    return channel_fail(error, 503, "out_of_memory", NULL,
                        "the server is out of memory");
}

/* Sets obj[key] to the string `value` when it is not NULL or "". */
static int channel_set_text(json_t *obj, const char *key, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    return json_object_set_new(obj, key, json_string(value));
}

/* A sender's phone as sent, when it is one; otherwise it goes to `extra`
 * under `extra_key` and the lead keeps its other contacts (a channel's
 * event is never refused for a number the channel made up). */
static int channel_set_phone(json_t *lead, json_t *extra,
                             const char *extra_key, const char *phone)
{
    char canonical[CV_CONTACT_SIZE];

    if (phone == NULL || phone[0] == '\0')
        return 0;
    if (cv_contact_phone(phone, canonical, sizeof(canonical)) == 0)
        return json_object_set_new(lead, "phone", json_string(canonical));
    return json_object_set_new(extra, extra_key, json_string(phone));
}

/* Adds `extra` to `lead` unless it is empty (takes the reference). */
static int channel_attach_extra(json_t *lead, json_t *extra)
{
    if (json_object_size(extra) == 0) {
        json_decref(extra);
        return 0;
    }
    return json_object_set_new(lead, "extra", extra);
}

/* The end every channel shares: when all went well (`ok`) the extra
 * fields join the lead (an ignored event has neither), else the half-built
 * event is cleared. Takes `extra`. 0, or -1 with `error` filled. */
static int channel_finish(intake_channel_event_t *event, json_t *extra,
                          bool ok, intake_error_t *error)
{
    if (ok && event->lead != NULL) {
        ok = channel_attach_extra(event->lead, extra) == 0;
        extra = NULL; /* attached or freed */
        if (!ok)
            channel_out_of_memory(error);
    }
    json_decref(extra);
    if (!ok)
        intake_channel_event_clear(event);
    return ok ? 0 : -1;
}

/* "1 min 5 s", "45 s" */
static void channel_duration_text(int64_t s, char *out, size_t size)
{
    if (s >= 60)
        snprintf(out, size, "%" PRId64 " min %" PRId64 " s", s / 60, s % 60);
    else
        snprintf(out, size, "%" PRId64 " s", s);
}

int intake_channel_phone(const char *content_type, const char *body,
                         size_t size, intake_channel_event_t *event,
                         intake_error_t *error)
{
    cv_call_t call;
    cv_call_error_t call_error;
    json_t *extra = NULL;
    char message[512];
    char duration[64];
    int rc = -1;

    memset(event, 0, sizeof(*event));
    memset(error, 0, sizeof(*error));
    memset(&call, 0, sizeof(call));
    if (cv_call_parse(content_type, body, size, &call, &call_error) != 0)
        return channel_fail(error, call_error.status,
                            call_error.status == 415 ? "unsupported_media_type"
                            : call_error.status >= 500 ? "out_of_memory"
                                                       : "invalid_field",
                            call_error.field,
                            call_error.field[0] != '\0' ? "'%s': %s" : "%s%s",
                            call_error.field, call_error.reason);
    snprintf(event->event_key, sizeof(event->event_key), "call:%s",
             call.call_id);
    if (call.status == CV_CALL_PENDING) {
        event->ignored = "pending call";
        rc = 0;
        goto out;
    }
    event->urgent_callback = call.missed;
    event->lead = json_object();
    extra = json_object();
    if (event->lead == NULL || extra == NULL)
        goto oom;
    channel_duration_text(call.duration_s, duration, sizeof(duration));
    if (call.missed)
        snprintf(message, sizeof(message),
                 "Missed call from %s%s%s: call back", call.caller,
                 call.called ? " to " : "", call.called ? call.called : "");
    else
        snprintf(message, sizeof(message), "Answered call from %s%s%s, %s",
                 call.caller, call.called ? " to " : "",
                 call.called ? call.called : "", duration);
    if (json_object_set_new(event->lead, "channel", json_string("phone")) ||
        channel_set_text(event->lead, "name", call.caller_name) ||
        channel_set_text(event->lead, "message", message) ||
        channel_set_phone(event->lead, extra, "caller", call.caller) ||
        json_object_set_new(extra, "call_id", json_string(call.call_id)) ||
        json_object_set_new(extra, "call_status",
                            json_string(cv_call_status_name(call.status))) ||
        channel_set_text(extra, "called", call.called) ||
        channel_set_text(extra, "recording_url", call.recording_url))
        goto oom;
    if (call.has_duration &&
        json_object_set_new(extra, "duration_s", json_integer(call.duration_s)))
        goto oom;
    if (call.has_started_at &&
        json_object_set_new(extra, "started_at_ms",
                            json_integer(call.started_at_ms)))
        goto oom;
    if (!json_object_get(event->lead, "phone")) {
        /* a call without a usable number cannot be called back */
        channel_fail(error, 422, "invalid_field", "caller",
                     "'caller': not a phone number that can be called back");
        goto out;
    }
    rc = 0;
    goto out;
oom:
    channel_out_of_memory(error);
out:
    rc = channel_finish(event, extra, rc == 0, error);
    cv_call_clear(&call);
    return rc;
}

/* "Иван Петров" from a first and a last name, either may be missing. */
static void channel_full_name(const char *first, const char *last,
                              char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", first ? first : "",
             first && last ? " " : "", last ? last : "");
}

int intake_channel_telegram(const char *body, size_t size,
                            intake_channel_event_t *event,
                            intake_error_t *error)
{
    cv_telegram_update_t update;
    cv_telegram_error_t tg_error;
    json_t *extra = NULL;
    char name[512];
    char id_text[32];
    int rc = -1;

    memset(event, 0, sizeof(*event));
    memset(error, 0, sizeof(*error));
    if (cv_telegram_parse(body, size, &update, &tg_error) != 0)
        return channel_fail(error, tg_error.status,
                            tg_error.status >= 500 ? "out_of_memory"
                                                   : "invalid_update",
                            tg_error.field,
                            tg_error.field[0] != '\0' ? "'%s': %s" : "%s%s",
                            tg_error.field, tg_error.reason);
    snprintf(event->event_key, sizeof(event->event_key), "telegram:%" PRId64,
             update.update_id);
    if (update.kind != CV_TELEGRAM_MESSAGE || update.from_is_bot) {
        event->ignored = "not a message";
        rc = 0;
        goto out;
    }
    event->lead = json_object();
    extra = json_object();
    if (event->lead == NULL || extra == NULL)
        goto oom;
    /* the match key: the username when there is one (a web form may give
     * it too), else the numeric id, which never changes */
    snprintf(id_text, sizeof(id_text), "%" PRId64, update.from_id);
    channel_full_name(update.first_name, update.last_name, name, sizeof(name));
    if (json_object_set_new(event->lead, "channel", json_string("social")) ||
        json_object_set_new(event->lead, "telegram",
                            json_string(update.username ? update.username
                                                        : id_text)) ||
        channel_set_text(event->lead, "name", name) ||
        channel_set_text(event->lead, "message", update.text) ||
        json_object_set_new(extra, "telegram_user_id",
                            json_integer(update.from_id)) ||
        json_object_set_new(extra, "telegram_chat_id",
                            json_integer(update.chat_id)) ||
        json_object_set_new(extra, "telegram_update_id",
                            json_integer(update.update_id)))
        goto oom;
    if (update.edited &&
        json_object_set_new(extra, "edited", json_true()) != 0)
        goto oom;
    if (update.has_contact) {
        /* a contact card of somebody else is a referral, not the sender's
         * own number: kept, not used as the sender's phone */
        bool own = update.contact_user_id == 0 ||
                   update.contact_user_id == update.from_id;
        if (own) {
            if (channel_set_phone(event->lead, extra, "shared_phone",
                                  update.contact_phone) != 0)
                goto oom;
        } else if (channel_set_text(extra, "forwarded_contact_phone",
                                    update.contact_phone) != 0) {
            goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    channel_out_of_memory(error);
out:
    rc = channel_finish(event, extra, rc == 0, error);
    cv_telegram_update_clear(&update);
    return rc;
}

int intake_channel_email(const char *body, size_t size,
                         intake_channel_event_t *event,
                         intake_error_t *error)
{
    char reason[256];
    cv_mail_t *mail;
    json_t *extra = NULL;
    char *message = NULL;
    int rc = -1;

    memset(event, 0, sizeof(*event));
    memset(error, 0, sizeof(*error));
    mail = cv_mail_parse(body, size, reason, sizeof(reason));
    if (mail == NULL)
        return channel_fail(error, 400, "invalid_message", NULL,
                            "not a usable RFC 822 message: %s", reason);
    if (mail->message_id != NULL && mail->message_id[0] != '\0') {
        snprintf(event->event_key, sizeof(event->event_key), "email:%s",
                 mail->message_id);
    } else {
        /* no Message-ID: the same bytes are the same message */
        char hash[65];
        cv_sha256_hex("message/rfc822", 15, body, size, hash);
        snprintf(event->event_key, sizeof(event->event_key),
                 "email-sha256:%s", hash);
    }
    if (mail->not_a_lead_reason != NULL) {
        event->ignored = mail->not_a_lead_reason;
        rc = 0;
        goto out;
    }
    event->lead = json_object();
    extra = json_object();
    size_t len = strlen(mail->subject) + strlen(mail->text) + 3;
    if (len > CHANNEL_MESSAGE_MAX)
        len = CHANNEL_MESSAGE_MAX;
    message = malloc(len + 1);
    if (event->lead == NULL || extra == NULL || message == NULL)
        goto oom;
    /* the subject says what they want as much as the body does */
    snprintf(message, len + 1, "%s%s%s", mail->subject,
             mail->subject[0] && mail->text[0] ? "\n\n" : "", mail->text);
    if (json_object_set_new(event->lead, "channel", json_string("email")) ||
        channel_set_text(event->lead, "email", mail->from_address) ||
        channel_set_text(event->lead, "name", mail->from_name) ||
        channel_set_text(event->lead, "company", mail->company) ||
        channel_set_text(event->lead, "message", message) ||
        channel_set_text(extra, "message_id", mail->message_id) ||
        channel_set_text(extra, "subject", mail->subject) ||
        channel_set_text(extra, "reply_to", mail->reply_to))
        goto oom;
    if (mail->attachments > 0 &&
        json_object_set_new(extra, "attachments",
                            json_integer((json_int_t)mail->attachments)))
        goto oom;
    /* the first number in the signature that is a phone number */
    for (char **p = mail->phones; *p != NULL; p++) {
        char canonical[CV_CONTACT_SIZE];
        if (cv_contact_phone(*p, canonical, sizeof(canonical)) == 0) {
            if (json_object_set_new(event->lead, "phone",
                                    json_string(canonical)) != 0)
                goto oom;
            break;
        }
    }
    rc = 0;
    goto out;
oom:
    channel_out_of_memory(error);
out:
    free(message);
    rc = channel_finish(event, extra, rc == 0, error);
    cv_mail_destroy(&mail);
    return rc;
}

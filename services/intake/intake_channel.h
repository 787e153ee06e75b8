/* intake_channel: what the phone, Telegram and email channels post,
 * turned into the lead object a web form would have sent.
 *
 * Each function reads one channel's body with its parser from common/
 * (cv_call, cv_telegram, cv_mail) and builds a JSON object of lead fields
 * (name, phone, email, telegram, message, channel, extra…) that
 * intake_lead_from_json then checks and normalises exactly like
 * POST /v1/leads. Alongside it comes the channel's own event id (call_id,
 * update_id, Message-ID): the same event posted twice is one event. */
#ifndef INTAKE_CHANNEL_H
#define INTAKE_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "intake_lead.h"

#define INTAKE_CHANNEL_EVENT_MAX 320 /* bytes in an event key */

/* What a channel body came to. */
typedef struct {
    json_t *lead;         /* the lead's fields (owned), or NULL when the
                             event makes no lead */
    char event_key[INTAKE_CHANNEL_EVENT_MAX]; /* "call:<call_id>",
                             "telegram:<update_id>", "email:<Message-ID>" */
    bool urgent_callback; /* a missed call: call back at once */
    const char *ignored;  /* why the event makes no lead (static: "pending
                             call", "not a message", "auto_reply",
                             "bounce"), NULL when it makes one */
} intake_channel_event_t;

/* Frees the lead object and zeroes the event. NULL-safe. */
void intake_channel_event_clear(intake_channel_event_t *event);

/* A call-tracking event: JSON or a form, generic or Twilio names. A call
 * still ringing is ignored ("pending call"): its outcome comes later under
 * the same call_id. Returns 0, or -1 with `error` filled. */
int intake_channel_phone(const char *content_type, const char *body,
                         size_t size, intake_channel_event_t *event,
                         intake_error_t *error);

/* A Telegram Bot API Update. Updates other than (edited) messages are
 * ignored ("not a message"), as are messages from bots. A shared contact
 * adds its phone when it is the sender's own. */
int intake_channel_telegram(const char *body, size_t size,
                            intake_channel_event_t *event,
                            intake_error_t *error);

/* A raw RFC 822 message. Auto-replies and bounces are ignored (with that
 * reason) but still answered, so the mail server stops retrying. */
int intake_channel_email(const char *body, size_t size,
                         intake_channel_event_t *event,
                         intake_error_t *error);

#endif

/* cv_telegram: the Telegram Bot API `Update` a webhook receives.
 *
 * Intake's social channel is a Telegram bot. Telegram POSTs one Update (a
 * JSON object) per request; this module reads it strictly into a plain
 * struct. Only messages and edited messages are leads; every other kind of
 * update (callback_query, channel_post, my_chat_member, inline_query,
 * poll, ...) comes out as CV_TELEGRAM_OTHER, which intake answers with 200
 * and ignores. See https://core.telegram.org/bots/api#update. */
#ifndef CV_TELEGRAM_H
#define CV_TELEGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CV_TELEGRAM_MESSAGE, /* `message` or `edited_message` */
    CV_TELEGRAM_OTHER,   /* any other kind: not a lead */
} cv_telegram_kind_t;

/* An Update. Every text is owned (free with cv_telegram_update_clear) and
 * NULL when Telegram did not send it; ids are Telegram's, which can exceed
 * 32 bits. Only update_id, kind and other_kind are set for OTHER. */
typedef struct {
    int64_t update_id;        /* Telegram's id, for duplicate detection */
    cv_telegram_kind_t kind;  /* what the update carries */
    char *other_kind;         /* OTHER: its field name ("callback_query"),
                                 "unknown" when none is recognisable */
    bool edited;              /* an `edited_message` */
    int64_t message_id;       /* unique within the chat */
    int64_t chat_id;          /* where to answer */
    char *chat_type;          /* "private", "group", "supergroup", ... */
    int64_t from_id;          /* the sender's user id */
    bool from_is_bot;         /* the sender is a bot */
    char *first_name;         /* the sender's first name */
    char *last_name;          /* the sender's last name */
    char *username;           /* the sender's @username, without '@' */
    char *language_code;      /* IETF tag of the sender's client, "ru" */
    char *text;               /* `text`, or the `caption` of a photo or a
                                 document */
    int64_t date_ms;          /* when it was sent (ms since the epoch) */
    int64_t edit_date_ms;     /* when it was edited; 0 when not */
    bool has_contact;         /* the sender shared a contact */
    char *contact_phone;      /* contact.phone_number as sent
                                 ("79123456789", "+7 912 ...") */
    char *contact_first_name; /* contact.first_name */
    char *contact_last_name;  /* contact.last_name */
    int64_t contact_user_id;  /* contact.user_id; 0 when absent */
} cv_telegram_update_t;

/* Why an Update was refused. */
typedef struct {
    int status;       /* HTTP status it calls for: 400 malformed, 503
                         out of memory */
    char field[64];   /* dotted path of the offending field
                         ("message.from.id"), "" when none */
    char reason[192]; /* lower-case, no full stop: "required",
                         "must be an integer", "invalid JSON at ..." */
} cv_telegram_error_t;

/* Parses `body` (`size` bytes) into `update` (which it zeroes first).
 * Required: a JSON object with an integer `update_id` >= 0; for a
 * (edited) message, `message_id`, `date`, `chat.id` and `from.id` as
 * integers, and `contact.phone_number` when there is a contact. Texts that
 * are present must be strings, ids integers, `date` a time after 1970. Returns
 * 0, or -1 with `err` filled (when given) and `update` cleared. */
int cv_telegram_parse(const char *body, size_t size,
                      cv_telegram_update_t *update, cv_telegram_error_t *err);

/* Frees the texts and zeroes the struct. NULL-safe. */
void cv_telegram_update_clear(cv_telegram_update_t *update);

/* True when `header` (X-Telegram-Bot-Api-Secret-Token, NULL when absent)
 * equals `expected`. The comparison takes the same time wherever the two
 * differ, so a caller cannot guess the secret byte by byte. False when
 * either is NULL or `expected` is empty (no secret configured means no
 * request is trusted). */
bool cv_telegram_secret_ok(const char *expected, const char *header);

#endif

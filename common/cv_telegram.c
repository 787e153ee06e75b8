/* cv_telegram: the Telegram Bot API `Update` a webhook receives. */
#include "cv_telegram.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latest accepted `date`: year 9999, so ms stay far from overflow. */
#define CV_TELEGRAM_MAX_DATE 253402300799LL

static int cv_telegram_fail(cv_telegram_error_t *err, int status,
                            const char *path, const char *key, const char *fmt,
                            ...) __attribute__((format(printf, 5, 6)));

/* Fills `err` (when given) with the field `path`.`key` (either may be
 * NULL) and the reason. Returns -1. */
static int cv_telegram_fail(cv_telegram_error_t *err, int status,
                            const char *path, const char *key, const char *fmt,
                            ...)
{
    if (err == NULL)
        return -1;
    err->status = status;
    snprintf(err->field, sizeof(err->field), "%s%s%s", path != NULL ? path : "",
             path != NULL && key != NULL ? "." : "", key != NULL ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    return -1;
}

static int cv_telegram_nomem(cv_telegram_error_t *err)
{
    return cv_telegram_fail(err, 503, NULL, NULL, "out of memory");
}

void cv_telegram_update_clear(cv_telegram_update_t *update)
{
    if (update == NULL)
        return;
    free(update->other_kind);
    free(update->chat_type);
    free(update->first_name);
    free(update->last_name);
    free(update->username);
    free(update->language_code);
    free(update->text);
    free(update->contact_phone);
    free(update->contact_first_name);
    free(update->contact_last_name);
    memset(update, 0, sizeof(*update));
}

/* The object under `key` of `parent` into *out (NULL when absent). A
 * present non-object is an error. */
static int cv_telegram_object(json_t *parent, const char *path, const char *key,
                              bool required, json_t **out,
                              cv_telegram_error_t *err)
{
    json_t *value = json_object_get(parent, key);
    *out = NULL;
    if (value == NULL)
        return required ? cv_telegram_fail(err, 400, path, key, "required") : 0;
    if (!json_is_object(value))
        return cv_telegram_fail(err, 400, path, key, "must be an object");
    *out = value;
    return 0;
}

/* The integer under `key` into *out (left alone when absent). */
static int cv_telegram_int(json_t *parent, const char *path, const char *key,
                           bool required, int64_t *out,
                           cv_telegram_error_t *err)
{
    json_t *value = json_object_get(parent, key);
    if (value == NULL)
        return required ? cv_telegram_fail(err, 400, path, key, "required") : 0;
    if (!json_is_integer(value))
        return cv_telegram_fail(err, 400, path, key, "must be an integer");
    *out = (int64_t)json_integer_value(value);
    return 0;
}

/* A copy of the string under `key` into *out (NULL when absent). Strings
 * from jansson are valid UTF-8 without NUL (JSON_ALLOW_NUL is not set). */
static int cv_telegram_text(json_t *parent, const char *path, const char *key,
                            bool required, char **out, cv_telegram_error_t *err)
{
    json_t *value = json_object_get(parent, key);
    if (value == NULL)
        return required ? cv_telegram_fail(err, 400, path, key, "required") : 0;
    if (!json_is_string(value))
        return cv_telegram_fail(err, 400, path, key, "must be a string");
    free(*out);
    *out = strndup(json_string_value(value), json_string_length(value));
    return *out == NULL ? cv_telegram_nomem(err) : 0;
}

/* A Unix time in seconds under `key`, as ms, into *out. */
static int cv_telegram_date(json_t *parent, const char *path, const char *key,
                            bool required, int64_t *out,
                            cv_telegram_error_t *err)
{
    int64_t seconds = 0;
    if (cv_telegram_int(parent, path, key, required, &seconds, err) != 0)
        return -1;
    if (seconds < 0 || seconds > CV_TELEGRAM_MAX_DATE)
        return cv_telegram_fail(err, 400, path, key,
                                "not a plausible Unix time");
    *out = seconds * 1000;
    return 0;
}

/* The `contact` a user shared (the "share my phone number" button or a
 * contact card). */
static int cv_telegram_contact(json_t *contact, const char *path,
                               cv_telegram_update_t *update,
                               cv_telegram_error_t *err)
{
    char where[64];
    snprintf(where, sizeof(where), "%s.contact", path);
    update->has_contact = true;
    if (cv_telegram_text(contact, where, "phone_number", true,
                         &update->contact_phone, err) != 0 ||
        cv_telegram_text(contact, where, "first_name", false,
                         &update->contact_first_name, err) != 0 ||
        cv_telegram_text(contact, where, "last_name", false,
                         &update->contact_last_name, err) != 0 ||
        cv_telegram_int(contact, where, "user_id", false,
                        &update->contact_user_id, err) != 0)
        return -1;
    return 0;
}

/* A Message (https://core.telegram.org/bots/api#message) under `path`. */
static int cv_telegram_message(json_t *message, const char *path,
                               cv_telegram_update_t *update,
                               cv_telegram_error_t *err)
{
    char chat_path[48];
    char from_path[48];
    snprintf(chat_path, sizeof(chat_path), "%s.chat", path);
    snprintf(from_path, sizeof(from_path), "%s.from", path);
    json_t *chat = NULL;
    json_t *from = NULL;
    json_t *contact = NULL;
    if (cv_telegram_int(message, path, "message_id", true, &update->message_id,
                        err) != 0 ||
        cv_telegram_date(message, path, "date", true, &update->date_ms, err) !=
            0 ||
        cv_telegram_date(message, path, "edit_date", false,
                         &update->edit_date_ms, err) != 0 ||
        cv_telegram_object(message, path, "chat", true, &chat, err) != 0 ||
        cv_telegram_int(chat, chat_path, "id", true, &update->chat_id, err) !=
            0 ||
        cv_telegram_text(chat, chat_path, "type", false, &update->chat_type,
                         err) != 0 ||
        cv_telegram_object(message, path, "from", true, &from, err) != 0 ||
        cv_telegram_int(from, from_path, "id", true, &update->from_id, err) !=
            0 ||
        cv_telegram_text(from, from_path, "first_name", false,
                         &update->first_name, err) != 0 ||
        cv_telegram_text(from, from_path, "last_name", false,
                         &update->last_name, err) != 0 ||
        cv_telegram_text(from, from_path, "username", false, &update->username,
                         err) != 0 ||
        cv_telegram_text(from, from_path, "language_code", false,
                         &update->language_code, err) != 0)
        return -1;
    json_t *is_bot = json_object_get(from, "is_bot");
    if (is_bot != NULL && !json_is_boolean(is_bot))
        return cv_telegram_fail(err, 400, from_path, "is_bot",
                                "must be true or false");
    update->from_is_bot = json_is_true(is_bot);
    /* a photo or a document carries its words in `caption` */
    const char *text_key =
        json_object_get(message, "text") != NULL ? "text" : "caption";
    if (cv_telegram_text(message, path, text_key, false, &update->text, err) !=
            0 ||
        cv_telegram_object(message, path, "contact", false, &contact, err) != 0)
        return -1;
    if (contact != NULL)
        return cv_telegram_contact(contact, path, update, err);
    return 0;
}

/* The name of the kind an update other than a message carries. */
static int cv_telegram_other(json_t *root, cv_telegram_update_t *update,
                             cv_telegram_error_t *err)
{
    const char *kind = "unknown";
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "update_id") != 0) {
            kind = key;
            break;
        }
    }
    update->kind = CV_TELEGRAM_OTHER;
    update->other_kind = strdup(kind);
    return update->other_kind == NULL ? cv_telegram_nomem(err) : 0;
}

int cv_telegram_parse(const char *body, size_t size,
                      cv_telegram_update_t *update, cv_telegram_error_t *err)
{
    int rc = -1;
    memset(update, 0, sizeof(*update));
    json_error_t parse_error;
    json_t *root = NULL;
    if (body != NULL)
        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &parse_error);
    if (root == NULL) {
        if (body == NULL)
            cv_telegram_fail(err, 400, NULL, NULL, "no body");
        else
            cv_telegram_fail(
                err, 400, NULL, NULL, "invalid JSON at line %d, column %d: %s",
                parse_error.line, parse_error.column, parse_error.text);
        goto out;
    }
    if (!json_is_object(root)) {
        cv_telegram_fail(err, 400, NULL, NULL,
                         "an Update must be a JSON object");
        goto out;
    }
    if (cv_telegram_int(root, NULL, "update_id", true, &update->update_id,
                        err) != 0)
        goto out;
    if (update->update_id < 0) {
        cv_telegram_fail(err, 400, NULL, "update_id", "must not be negative");
        goto out;
    }
    json_t *message = json_object_get(root, "message");
    const char *path = "message";
    if (message == NULL) {
        message = json_object_get(root, "edited_message");
        path = "edited_message";
        update->edited = message != NULL;
    }
    if (message == NULL) {
        rc = cv_telegram_other(root, update, err);
        goto out;
    }
    if (!json_is_object(message)) {
        cv_telegram_fail(err, 400, NULL, path, "must be an object");
        goto out;
    }
    update->kind = CV_TELEGRAM_MESSAGE;
    rc = cv_telegram_message(message, path, update, err);
out:
    json_decref(root);
    if (rc != 0)
        cv_telegram_update_clear(update);
    return rc;
}

bool cv_telegram_secret_ok(const char *expected, const char *header)
{
    if (expected == NULL || header == NULL || expected[0] == '\0')
        return false;
    size_t want = strlen(expected);
    size_t got = strlen(header);
    /* always walk the whole expected secret; a byte past the end of the
     * header compares as NUL, which no secret byte is */
    volatile unsigned char diff = (unsigned char)(want != got);
    for (size_t i = 0; i < want; i++) {
        unsigned char h = i < got ? (unsigned char)header[i] : 0;
        diff |= (unsigned char)expected[i] ^ h;
    }
    return diff == 0;
}

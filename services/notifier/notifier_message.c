/* notifier_message: what each channel sends — the chat text, Telegram's
 * and Slack's JSON, the webhook signature and the e-mail. Pure functions
 * (no I/O), unit-tested in tests/unit/test_notifier_message.c. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_jsonw.h"
#include "cv_sha256.h"
#include "notifier.h"

#define NOTIFIER_TELEGRAM_MAX 4096 /* Telegram's limit, UTF-16 units */
#define NOTIFIER_MAIL_WORD_BYTES                                               \
    39                        /* UTF-8 bytes per encoded-word: 52              \
                                 base64 characters, a 64-character             \
                                 word, lines under 78 */
#define NOTIFIER_MAIL_LINE 76 /* base64 body line length */

/* Replaces every byte that is not part of a valid UTF-8 sequence with '?'
 * in place: the bus does not check text, JSON and mail need it valid. */
static void notifier_text_clean(char *text)
{
    unsigned char *p = (unsigned char *)text;
    while (*p != '\0') {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = cv_jsonw_utf8_length(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

char *notifier_message_text(const char *subject, const char *text,
                            const char *lead_id, const char *notification_id)
{
    bool has_subject = subject != NULL && subject[0] != '\0';
    bool has_text = text != NULL && text[0] != '\0';
    char *message = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&message, &size);
    if (out == NULL)
        return NULL;
    if (has_subject)
        fputs(subject, out);
    if (has_subject && has_text)
        fputs("\n\n", out);
    if (has_text)
        fputs(text, out);
    if (!has_subject && !has_text)
        fprintf(out, "Conveyor notification %s", notification_id);
    bool mentioned =
        (has_subject && lead_id != NULL && strstr(subject, lead_id) != NULL) ||
        (has_text && lead_id != NULL && strstr(text, lead_id) != NULL);
    if (lead_id != NULL && lead_id[0] != '\0' && !mentioned)
        fprintf(out, "\nLead id: %s", lead_id);
    if (fclose(out) != 0) {
        free(message);
        return NULL;
    }
    notifier_text_clean(message);
    return message;
}

/* True for "-123", "42": a chat id Telegram wants as a number. */
static bool notifier_chat_numeric(const char *chat_id)
{
    const char *p = chat_id[0] == '-' ? chat_id + 1 : chat_id;
    size_t digits = strspn(p, "0123456789");
    return digits > 0 && digits <= 18 && p[digits] == '\0';
}

/* The byte length of the longest prefix of valid UTF-8 `text` that is at
 * most `units` UTF-16 code units (Telegram counts those). */
static size_t notifier_utf16_prefix(const char *text, size_t units)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t used = 0;
    size_t at = 0;
    while (p[at] != '\0') {
        size_t n = p[at] < 0x80 ? 1 : cv_jsonw_utf8_length(p + at);
        if (n == 0)
            n = 1;
        size_t cost = n == 4 ? 2 : 1; /* above the BMP: a surrogate pair */
        if (used + cost > units)
            break;
        used += cost;
        at += n;
    }
    return at;
}

char *notifier_telegram_body(const char *chat_id, const char *text)
{
    char *body = NULL;
    json_t *object = json_object();
    char *copy = strdup(text);
    if (object == NULL || copy == NULL)
        goto out;
    notifier_text_clean(copy);
    copy[notifier_utf16_prefix(copy, NOTIFIER_TELEGRAM_MAX)] = '\0';
    json_t *chat = notifier_chat_numeric(chat_id)
                       ? json_integer(strtoll(chat_id, NULL, 10))
                       : json_string(chat_id);
    if (chat == NULL || json_object_set_new(object, "chat_id", chat) != 0 ||
        json_object_set_new(object, "text", json_string(copy)) != 0)
        goto out;
    body = json_dumps(object, JSON_COMPACT);
out:
    free(copy);
    json_decref(object);
    return body;
}

bool notifier_telegram_reply(const char *reply, size_t size, int *error_code,
                             int64_t *retry_after_ms, char *error,
                             size_t error_size)
{
    *error_code = 0;
    *retry_after_ms = -1;
    snprintf(error, error_size,
             "telegram answered something that is not "
             "its json");
    json_t *root = json_loadb(reply, size, 0, NULL);
    if (root == NULL)
        return false;
    bool ok = json_is_true(json_object_get(root, "ok"));
    if (!ok) {
        json_t *code = json_object_get(root, "error_code");
        if (json_is_integer(code))
            *error_code = (int)json_integer_value(code);
        const char *description =
            json_string_value(json_object_get(root, "description"));
        snprintf(error, error_size, "telegram: %s",
                 description != NULL ? description : "ok is false");
        json_t *retry =
            json_object_get(json_object_get(root, "parameters"), "retry_after");
        if (json_is_integer(retry) && json_integer_value(retry) >= 0 &&
            json_integer_value(retry) <= 86400)
            *retry_after_ms = (int64_t)json_integer_value(retry) * 1000;
    } else {
        error[0] = '\0';
    }
    json_decref(root);
    return ok;
}

/* Appends `text` to `out` with Slack's three control characters escaped
 * (https://api.slack.com/reference/surfaces/formatting#escaping). */
static void notifier_slack_escape(FILE *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '&')
            fputs("&amp;", out);
        else if (*p == '<')
            fputs("&lt;", out);
        else if (*p == '>')
            fputs("&gt;", out);
        else
            fputc(*p, out);
    }
}

char *notifier_slack_body(const char *subject, const char *text,
                          const char *lead_id, const char *notification_id)
{
    char *body = NULL;
    char *message = NULL;
    size_t size = 0;
    json_t *object = NULL;
    bool has_subject = subject != NULL && subject[0] != '\0';
    bool has_text = text != NULL && text[0] != '\0';
    FILE *out = open_memstream(&message, &size);
    if (out == NULL)
        return NULL;
    if (has_subject) {
        fputc('*', out);
        notifier_slack_escape(out, subject);
        fputc('*', out);
    }
    if (has_subject && has_text)
        fputc('\n', out);
    if (has_text)
        notifier_slack_escape(out, text);
    if (!has_subject && !has_text)
        fprintf(out, "Conveyor notification %s", notification_id);
    bool mentioned =
        (has_subject && lead_id != NULL && strstr(subject, lead_id) != NULL) ||
        (has_text && lead_id != NULL && strstr(text, lead_id) != NULL);
    if (lead_id != NULL && lead_id[0] != '\0' && !mentioned) {
        fputs("\nLead id: ", out);
        notifier_slack_escape(out, lead_id);
    }
    if (fclose(out) != 0)
        goto out;
    notifier_text_clean(message);
    object = json_object();
    if (object == NULL ||
        json_object_set_new(object, "text", json_string(message)) != 0)
        goto out;
    body = json_dumps(object, JSON_COMPACT);
out:
    json_decref(object);
    free(message);
    return body;
}

int notifier_sign(const char *secret, int64_t unix_seconds, const char *body,
                  char out[NOTIFIER_SIGNATURE_SIZE])
{
    char stamp[24];
    int stamp_length = snprintf(stamp, sizeof(stamp), "%" PRId64, unix_seconds);
    size_t body_length = strlen(body);
    size_t size = (size_t)stamp_length + 1 + body_length;
    char *signed_text = malloc(size);
    if (signed_text == NULL)
        return -1;
    memcpy(signed_text, stamp, (size_t)stamp_length);
    signed_text[stamp_length] = '.';
    memcpy(signed_text + stamp_length + 1, body, body_length);
    uint8_t mac[CV_SHA256_SIZE];
    cv_hmac_sha256(secret, strlen(secret), signed_text, size, mac);
    free(signed_text);
    char hex[CV_SHA256_HEX];
    cv_sha256_to_hex(mac, hex);
    snprintf(out, NOTIFIER_SIGNATURE_SIZE, "t=%s,v1=%s", stamp, hex);
    return 0;
}

/* ---- e-mail ---- */

static const char notifier_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of `size` bytes to `out`, a CRLF after every
 * `line` characters when line > 0. */
static void notifier_base64(FILE *out, const unsigned char *data, size_t size,
                            int line)
{
    int column = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t chunk = (uint32_t)data[i] << 16;
        if (i + 1 < size)
            chunk |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < size)
            chunk |= data[i + 2];
        char quad[4] = {
            notifier_base64_alphabet[(chunk >> 18) & 63],
            notifier_base64_alphabet[(chunk >> 12) & 63],
            i + 1 < size ? notifier_base64_alphabet[(chunk >> 6) & 63] : '=',
            i + 2 < size ? notifier_base64_alphabet[chunk & 63] : '=',
        };
        fwrite(quad, 1, 4, out);
        column += 4;
        if (line > 0 && column >= line) {
            fputs("\r\n", out);
            column = 0;
        }
    }
    if (line > 0 && column > 0)
        fputs("\r\n", out);
}

/* True when the header value can go as it is: printable ASCII only. */
static bool notifier_mail_plain(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return strlen(text) <= 900;
}

/* Writes "Subject: ..." with the text as RFC 2047 encoded-words when it
 * is not plain ASCII, each word whole UTF-8 characters, folded onto
 * continuation lines. `subject` is valid UTF-8 without CR or LF. */
static void notifier_mail_subject(FILE *out, const char *subject)
{
    fputs("Subject:", out);
    if (notifier_mail_plain(subject)) {
        fprintf(out, " %s\r\n", subject);
        return;
    }
    const unsigned char *p = (const unsigned char *)subject;
    size_t left = strlen(subject);
    bool first = true;
    while (left > 0) {
        /* The longest run of whole characters that fits a word, preferably
         * a multiple of 3 bytes: then only the last word has base64
         * padding, which readers that join the words before decoding
         * (GMime does) would take for the end of the text. */
        size_t take = 0;
        size_t whole = 0;
        while (take < left) {
            size_t n = p[take] < 0x80 ? 1 : cv_jsonw_utf8_length(p + take);
            if (n == 0)
                n = 1;
            if (take + n > NOTIFIER_MAIL_WORD_BYTES && take > 0)
                break;
            take += n;
            if (take % 3 == 0)
                whole = take;
        }
        if (take < left && whole > 0)
            take = whole;
        fputs(first ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?", out);
        notifier_base64(out, p, take, 0);
        fputs("?=", out);
        p += take;
        left -= take;
        first = false;
    }
    fputs("\r\n", out);
}

/* "Sun, 22 Nov 2026 18:50:19 +0000" (RFC 5322 §3.3), whatever the locale. */
static void notifier_mail_date(int64_t ms, char *buf, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm) == NULL) {
        snprintf(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int notifier_mail_address(const char *from, char *buf, size_t size)
{
    const char *open = strrchr(from, '<');
    const char *start = from;
    size_t length = strlen(from);
    if (open != NULL) {
        const char *close = strchr(open, '>');
        if (close == NULL)
            return -1;
        start = open + 1;
        length = (size_t)(close - start);
    }
    while (length > 0 && (*start == ' ' || *start == '\t')) {
        start++;
        length--;
    }
    while (length > 0 &&
           (start[length - 1] == ' ' || start[length - 1] == '\t'))
        length--;
    if (length == 0 || length >= size || memchr(start, '@', length) == NULL)
        return -1;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)start[i] <= ' ' || start[i] == '<' ||
            start[i] == '>' || start[i] == ',')
            return -1;
    memcpy(buf, start, length);
    buf[length] = '\0';
    return 0;
}

/* Copies `text` into a new string with every character that may not
 * appear in a dot-atom (RFC 5322 atext and '.') replaced by '_', for the
 * Message-ID. NULL when out of memory. */
static char *notifier_mail_atom(const char *text)
{
    static const char specials[] = "!#$%&'*+-/=?^_`{|}~.";
    char *atom = strdup(text);
    if (atom == NULL)
        return NULL;
    for (char *p = atom; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') ||
                  (c < 0x80 && strchr(specials, c) != NULL);
        if (!ok)
            *p = '_';
    }
    return atom;
}

char *notifier_mail_build(const notifier_mail_t *mail)
{
    char *message = NULL;
    char *subject = NULL;
    char *atom = NULL;
    size_t size = 0;
    FILE *out = NULL;
    char from_address[256];
    if (strpbrk(mail->from, "\r\n") != NULL ||
        notifier_mail_address(mail->from, from_address, sizeof(from_address)) !=
            0 ||
        strpbrk(mail->to, "\r\n<>, \t") != NULL ||
        strchr(mail->to, '@') == NULL)
        return NULL;
    const char *domain = strrchr(from_address, '@') + 1;
    subject = strdup(mail->subject != NULL && mail->subject[0] != '\0'
                         ? mail->subject
                         : "Conveyor notification");
    atom = notifier_mail_atom(mail->notification_id);
    if (subject == NULL || atom == NULL)
        goto fail;
    /* a header is one line: CR, LF and TAB become spaces */
    for (char *p = subject; *p != '\0'; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t')
            *p = ' ';
    notifier_text_clean(subject);
    char date[64];
    notifier_mail_date(mail->date_ms, date, sizeof(date));
    out = open_memstream(&message, &size);
    if (out == NULL)
        goto fail;
    fprintf(out, "From: %s\r\n", mail->from);
    fprintf(out, "To: <%s>\r\n", mail->to);
    notifier_mail_subject(out, subject);
    fprintf(out, "Date: %s\r\n", date);
    fprintf(out, "Message-ID: <%s@%s>\r\n", atom,
            domain[0] ? domain : "conveyor");
    fputs("MIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=UTF-8\r\n"
          "Content-Transfer-Encoding: base64\r\n"
          "Auto-Submitted: auto-generated\r\n",
          out);
    fprintf(out, "X-Conveyor-Notification-Id: %s\r\n\r\n", atom);
    const char *text = mail->text != NULL ? mail->text : "";
    notifier_base64(out, (const unsigned char *)text, strlen(text),
                    NOTIFIER_MAIL_LINE);
    if (fclose(out) != 0) {
        out = NULL;
        goto fail;
    }
    free(subject);
    free(atom);
    return message;
fail:
    if (out != NULL)
        fclose(out);
    free(message);
    free(subject);
    free(atom);
    return NULL;
}

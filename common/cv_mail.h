/* cv_mail: an inbound email reduced to what intake needs to make a lead.
 *
 * cv_mail_parse takes a raw RFC 822 message (as posted to
 * /v1/channels/email) and returns who wrote it, what they wrote and how to
 * reach them, all as valid UTF-8 whatever the charsets and transfer
 * encodings of the original (GMime does the MIME work):
 *
 *   - the sender's display name (RFC 2047 decoded) and address;
 *   - the body as plain text: text/plain preferred over text/html, HTML
 *     turned into readable lines, quoted reply history cut off;
 *   - the signature block split from the body, with the phone numbers and
 *     the company name found in it;
 *   - whether the message is an auto-reply or a bounce, which intake
 *     records but never turns into a lead.
 *
 * Untrusted input: any byte sequence gives either a cv_mail_t or NULL with
 * a reason, never a crash; nesting deeper than CV_MAIL_MAX_DEPTH is not
 * looked into. Safe to call from several threads at once. */
#ifndef CV_MAIL_H
#define CV_MAIL_H

#include <stdbool.h>
#include <stddef.h>

#define CV_MAIL_MAX_DEPTH  32 /* MIME nesting levels searched for the body */
#define CV_MAIL_MAX_PHONES 8  /* phone numbers kept at most */

/* A parsed message. Every string is valid UTF-8 without NUL or control
 * characters other than tab and line feed (line breaks are "\n"); all of
 * it is owned by the cv_mail_t and freed by cv_mail_destroy. */
typedef struct {
    char *message_id;   /* Message-ID without <>, or NULL */
    char *from_name;    /* From display name, decoded, or NULL */
    char *from_address; /* From addr-spec as written (not lower-cased),
                           with an '@'; when not_a_lead_reason is set it
                           may be "" or a bare "MAILER-DAEMON" */
    char *reply_to;     /* first Reply-To address, or NULL */
    char *subject;      /* decoded, on one line; "" when absent */
    char *text;         /* the body as plain text without the quoted
                           history and the signature (no-break spaces
                           become spaces, at most one blank line in a
                           row); may be "" */
    char *signature;    /* the signature block: after "-- ", or from a
                           closing line ("С уважением", "Best regards",
                           a lone "Спасибо!") near the end; or NULL */
    char **phones;      /* phone numbers as written (10-15 digits, not
                           normalised), NULL-terminated, never NULL
                           itself; from the signature, else (none there)
                           from the text; at most CV_MAIL_MAX_PHONES */
    char *company;   /* from the signature: "ООО «СтройИнвест»",
                        "ИП Кузнецов С.А.", "Acme Trading Ltd.",
                        else a name in «»; or NULL */
    bool auto_reply; /* an automatic reply (out of office, vacation,
                        read receipt, Auto-Submitted, Precedence) */
    bool bounce;     /* a delivery failure report */
    const char *not_a_lead_reason; /* "bounce", "auto_reply" or NULL
                                      (static; bounce wins) */
    size_t attachments;            /* parts ignored: files, images, forwarded
                                      messages */
} cv_mail_t;

/* Parses `size` bytes of a raw message. Returns a new cv_mail_t owned by
 * the caller (cv_mail_destroy), or NULL with a short reason written to
 * `error` (NUL-terminated, may be NULL; "" on success): "empty message",
 * "message too large" (over 256 MiB), "not a mail message", "no From
 * address" or "out of memory". A message without a From address is still
 * returned when it is an auto-reply or a bounce, so intake can record it. */
cv_mail_t *cv_mail_parse(const char *raw, size_t size, char *error,
                         size_t error_size);

/* NULL-safe; nulls *self_p. */
void cv_mail_destroy(cv_mail_t **self_p);

#endif

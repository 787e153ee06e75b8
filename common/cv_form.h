/* cv_form: an HTML form as a browser (or curl, or Twilio) posts it.
 *
 * Reads `application/x-www-form-urlencoded` and `multipart/form-data`
 * (RFC 7578) bodies into an ordered list of fields. Every name and every
 * text value comes out as strict UTF-8 without NUL bytes (cv_utf8_valid);
 * a body that breaks that, or is malformed, is refused with the field and
 * the reason. File parts are not kept: their field name, file name and
 * size are noted so the lead can say a file was attached.
 *
 * Parsing never reads outside the given body and never crashes on any
 * input; the work is linear in the body's size. */
#ifndef CV_FORM_H
#define CV_FORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CV_FORM_MAX_FIELDS   200 /* pairs or parts in one body */
#define CV_FORM_MAX_NAME     256 /* bytes in a field name */
#define CV_FORM_MAX_FILENAME 255 /* bytes kept of a file name (cut whole) */

typedef struct cv_form cv_form_t;

/* One field, in body order. All texts are owned by the form and live as
 * long as it does. */
typedef struct {
    const char *name;     /* decoded field name, never empty */
    const char *value;    /* decoded text value; "" for a file */
    size_t value_len;     /* bytes in value (it holds no NUL) */
    bool is_file;         /* a multipart part with a filename parameter */
    const char *filename; /* the file's name as sent ("" when the file
                             input was left empty); NULL for text */
    size_t size;          /* bytes of the file's content; 0 for text */
    bool repeated;        /* an earlier field has the same name */
} cv_form_field_t;

/* Why a body was refused. */
typedef struct {
    int status;       /* HTTP status it calls for: 400 malformed, 415 not
                         a form type, 503 out of memory */
    char field[128];  /* the offending field's name, "" when none (cut
                         at a character boundary when longer) */
    char reason[192]; /* lower-case, no full stop: "not valid UTF-8",
                         "multipart body has no closing boundary" */
} cv_form_error_t;

/* Parses `body` (`size` bytes, need not be NUL-terminated) according to
 * `content_type`, the whole Content-Type header value, e.g.
 * "multipart/form-data; boundary=----WebKitFormBoundaryX3b4...". The media
 * type is matched without regard to case; the boundary parameter may be
 * quoted. Returns a new form the caller owns (cv_form_destroy), or NULL
 * with `err` filled (err may be NULL when the caller does not care).
 *
 * URL-encoded: pairs split at '&', name and value at the first '='; '+' is
 * a space and %XX a byte; a '%' not followed by two hex digits is kept as
 * it is (as browsers and the WHATWG URL standard do); a pair without '='
 * has the value ""; empty pairs and pairs with an empty name are skipped.
 *
 * Multipart: CRLF or bare LF line ends; a preamble before the first and an
 * epilogue after the closing boundary are ignored; each part needs a
 * Content-Disposition with a name; a `filename` (or `filename*`) parameter
 * makes it a file. A body without the closing boundary is refused.
 *
 * Both: more than CV_FORM_MAX_FIELDS fields, or a name longer than
 * CV_FORM_MAX_NAME bytes, is refused. A name given again is kept in the
 * list with `repeated` set; cv_form_get returns the first. */
cv_form_t *cv_form_parse(const char *content_type, const char *body,
                         size_t size, cv_form_error_t *err);

/* As cv_form_parse for an URL-encoded body (also good for a query
 * string, without the '?'). */
cv_form_t *cv_form_parse_urlencoded(const char *body, size_t size,
                                    cv_form_error_t *err);

/* True when `content_type` (a header value, parameters allowed) names one
 * of the two form types cv_form_parse reads. NULL-safe. */
bool cv_form_is_form_type(const char *content_type);

/* NULL-safe; nulls *self_p. */
void cv_form_destroy(cv_form_t **self_p);

/* The value of the first text field called `name`, or NULL when there is
 * none (file fields are not returned). Owned by the form. */
const char *cv_form_get(const cv_form_t *self, const char *name);

/* The number of fields, and the i-th of them in body order (NULL when i is
 * out of range). The field is owned by the form. */
size_t cv_form_count(const cv_form_t *self);
const cv_form_field_t *cv_form_at(const cv_form_t *self, size_t i);

/* The form as a new JSON object (the caller owns the reference), shaped
 * for intake's lead reader:
 *   - each text field by its name, the first value, as a string (numbers
 *     such as `budget` stay strings: intake checks them);
 *   - "repeated": {"<name>": ["second value", ...]} when names repeat;
 *   - "files": [{"field": ..., "filename": ..., "size": n}, ...] for the
 *     file parts (file inputs left empty are left out).
 * A text field that is itself called "repeated" or "files" wins over the
 * note of that name, which is then left out. NULL when out of memory. */
json_t *cv_form_to_json(const cv_form_t *self);

#endif

/* cv_html: building an HTML document from untrusted text.
 *
 * A cv_html_t is a growing buffer of markup. Markup the caller writes
 * itself goes in with cv_html_raw; anything that came from outside (a
 * lead's name, a client's message) goes in with cv_html_text, which
 * escapes it and repairs it to valid UTF-8, so no input can open a tag,
 * break out of an attribute or leave a broken byte sequence in the page.
 *
 * Errors are sticky: when memory runs out every later append does nothing
 * and cv_html_take returns NULL, so a renderer checks once, at the end. */
#ifndef CV_HTML_H
#define CV_HTML_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cv_html cv_html_t;

/* An empty document. NULL when out of memory. */
cv_html_t *cv_html_new(void);

/* NULL-safe; nulls *self_p. */
void cv_html_destroy(cv_html_t **self_p);

/* Appends `markup` exactly as given (the caller's own tags). NULL appends
 * nothing. */
void cv_html_raw(cv_html_t *self, const char *markup);

/* Appends `text` escaped for element content and attribute values:
 * & < > " ' become entities; invalid UTF-8 and control characters other
 * than tab, newline and carriage return become U+FFFD. NULL appends
 * nothing. */
void cv_html_text(cv_html_t *self, const char *text);

/* As cv_html_text, and each line break (\n, \r\n or \r) becomes <br>. */
void cv_html_lines(cv_html_t *self, const char *text);

/* Formats with printf rules, then appends the result escaped. */
void cv_html_textf(cv_html_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends <tag>escaped text</tag>; nothing at all when `text` is NULL or
 * empty, so optional fields leave no empty elements. */
void cv_html_element(cv_html_t *self, const char *tag, const char *text);

/* True once an append has failed (out of memory). */
bool cv_html_failed(const cv_html_t *self);

/* The document so far (NUL-terminated, owned by `self`); NULL after a
 * failure. */
const char *cv_html_str(const cv_html_t *self);
size_t cv_html_length(const cv_html_t *self);

/* Hands the document to the caller (free()) and leaves `self` empty; NULL
 * after a failure. */
char *cv_html_take(cv_html_t *self);

/* Escapes `text` into `out` (as cv_html_text) and NUL-terminates it.
 * Returns the length the full result needs, without the NUL, like
 * snprintf: the result was cut short when it is >= `size`. */
size_t cv_html_escape(const char *text, char *out, size_t size);

#endif

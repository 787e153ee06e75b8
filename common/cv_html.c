/* cv_html: an HTML buffer that escapes and repairs untrusted text. */
#include "cv_html.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cv_html {
    char *data;      /* the document, NUL-terminated (owned) */
    size_t length;   /* bytes used, without the NUL */
    size_t capacity; /* bytes allocated */
    bool failed;     /* an append ran out of memory; sticky */
};

/* U+FFFD REPLACEMENT CHARACTER, in place of what cannot be shown. */
static const char html_replacement[] = "\xEF\xBF\xBD";

/* Output of the escaper: writes what fits into `out` and counts all. */
typedef struct {
    char *out;      /* destination, may be NULL when size is 0 */
    size_t size;    /* bytes available in out, including the NUL */
    size_t length;  /* bytes the full result needs, without the NUL */
    size_t written; /* bytes stored in out: whole pieces only, so a cut
                       result never ends inside an entity or a character */
    bool full;      /* a piece did not fit; nothing more is stored */
} html_sink_t;

static void html_sink_put(html_sink_t *sink, const char *bytes, size_t n)
{
    if (sink->out != NULL && !sink->full) {
        if (sink->size > 0 && n <= sink->size - 1 - sink->written) {
            memcpy(sink->out + sink->written, bytes, n);
            sink->written += n;
        } else {
            sink->full = true;
        }
    }
    sink->length += n;
}

/* Length of the valid UTF-8 sequence at `s` (1..4), or 0 when the bytes
 * there are not one (bad lead byte, truncated, overlong, surrogate, above
 * U+10FFFF). Sets *code to the code point. */
static size_t html_utf8_decode(const unsigned char *s, uint32_t *code)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    uint32_t min;
    if (c < 0x80) {
        *code = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        /* a NUL here ends the string: the sequence is truncated */
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *code = cp;
    return n;
}

/* Control characters HTML does not allow in text: C0 except tab, line
 * feed and carriage return, DEL, and the C1 range. */
static bool html_is_forbidden_control(uint32_t cp)
{
    if (cp < 0x20)
        return cp != '\t' && cp != '\n' && cp != '\r';
    return cp >= 0x7F && cp <= 0x9F;
}

/* The escaper behind cv_html_text, cv_html_lines and cv_html_escape.
 * With `breaks`, line breaks become <br> tags. */
static void html_escape_to(html_sink_t *sink, const char *text, bool breaks)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s != '\0') {
        uint32_t cp = 0;
        size_t n = html_utf8_decode(s, &cp);
        if (n == 0) {
            html_sink_put(sink, html_replacement, 3);
            s++;
            continue;
        }
        if (breaks && (cp == '\n' || cp == '\r')) {
            html_sink_put(sink, "<br>\n", 5);
            s += (cp == '\r' && s[1] == '\n') ? 2 : 1;
            continue;
        }
        switch (cp) {
        case '&':
            html_sink_put(sink, "&amp;", 5);
            break;
        case '<':
            html_sink_put(sink, "&lt;", 4);
            break;
        case '>':
            html_sink_put(sink, "&gt;", 4);
            break;
        case '"':
            html_sink_put(sink, "&quot;", 6);
            break;
        case '\'':
            html_sink_put(sink, "&#39;", 5);
            break;
        default:
            if (html_is_forbidden_control(cp))
                html_sink_put(sink, html_replacement, 3);
            else
                html_sink_put(sink, (const char *)s, n);
        }
        s += n;
    }
    if (sink->out != NULL && sink->size > 0)
        sink->out[sink->written] = '\0';
}

/* Makes room for `extra` more bytes plus the NUL. false (and the buffer
 * marked failed) when out of memory. */
static bool html_reserve(cv_html_t *self, size_t extra)
{
    if (self->failed)
        return false;
    if (extra > SIZE_MAX - self->length - 1)
        goto fail;
    size_t need = self->length + extra + 1;
    if (need <= self->capacity)
        return true;
    size_t capacity = self->capacity;
    while (capacity < need)
        capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
    char *data = realloc(self->data, capacity);
    if (data == NULL)
        goto fail;
    self->data = data;
    self->capacity = capacity;
    return true;
fail:
    self->failed = true;
    return false;
}

cv_html_t *cv_html_new(void)
{
    cv_html_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->capacity = 1024;
    self->data = malloc(self->capacity);
    if (self->data == NULL) {
        free(self);
        return NULL;
    }
    self->data[0] = '\0';
    return self;
}

void cv_html_destroy(cv_html_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->data);
    free(*self_p);
    *self_p = NULL;
}

void cv_html_raw(cv_html_t *self, const char *markup)
{
    if (markup == NULL)
        return;
    size_t n = strlen(markup);
    if (!html_reserve(self, n))
        return;
    memcpy(self->data + self->length, markup, n + 1);
    self->length += n;
}

static void html_append_escaped(cv_html_t *self, const char *text, bool breaks)
{
    if (text == NULL || self->failed)
        return;
    html_sink_t measure = {NULL, 0, 0, 0, false};
    html_escape_to(&measure, text, breaks);
    if (!html_reserve(self, measure.length))
        return;
    html_sink_t sink = {self->data + self->length, measure.length + 1, 0, 0,
                        false};
    html_escape_to(&sink, text, breaks);
    self->length += measure.length;
}

void cv_html_text(cv_html_t *self, const char *text)
{
    html_append_escaped(self, text, false);
}

void cv_html_lines(cv_html_t *self, const char *text)
{
    html_append_escaped(self, text, true);
}

void cv_html_textf(cv_html_t *self, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    if (self->failed)
        return;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        self->failed = true;
        return;
    }
    html_append_escaped(self, text, false);
    free(text);
}

void cv_html_element(cv_html_t *self, const char *tag, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    cv_html_raw(self, "<");
    cv_html_raw(self, tag);
    cv_html_raw(self, ">");
    cv_html_text(self, text);
    cv_html_raw(self, "</");
    cv_html_raw(self, tag);
    cv_html_raw(self, ">\n");
}

bool cv_html_failed(const cv_html_t *self)
{
    return self->failed;
}

const char *cv_html_str(const cv_html_t *self)
{
    return self->failed ? NULL : self->data;
}

size_t cv_html_length(const cv_html_t *self)
{
    return self->failed ? 0 : self->length;
}

char *cv_html_take(cv_html_t *self)
{
    if (self->failed)
        return NULL;
    char *fresh = malloc(1024);
    if (fresh == NULL) {
        /* hand over a copy instead and keep our buffer */
        return strdup(self->data);
    }
    char *document = self->data;
    fresh[0] = '\0';
    self->data = fresh;
    self->length = 0;
    self->capacity = 1024;
    return document;
}

size_t cv_html_escape(const char *text, char *out, size_t size)
{
    html_sink_t sink = {out, size, 0, 0, false};
    if (text == NULL) {
        if (out != NULL && size > 0)
            out[0] = '\0';
        return 0;
    }
    html_escape_to(&sink, text, false);
    return sink.length;
}

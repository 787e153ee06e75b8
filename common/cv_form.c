/* cv_form: an HTML form as a browser (or curl, or Twilio) posts it. */
#include "cv_form.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_utf8.h"

#define CV_FORM_MAX_BOUNDARY 200 /* RFC 2046 says 70; some clients exceed */

struct cv_form {
    cv_form_field_t *fields; /* body order; texts owned */
    size_t count;            /* fields in use */
    size_t cap;              /* fields allocated */
};

static const char cv_form_urlencoded[] = "application/x-www-form-urlencoded";
static const char cv_form_multipart[] = "multipart/form-data";

static void cv_form_fail(cv_form_error_t *err, int status, const char *field,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills `err` (when given); `field` is valid UTF-8 or NULL, and is cut at a
 * character boundary to fit. */
static void cv_form_fail(cv_form_error_t *err, int status, const char *field,
                         const char *fmt, ...)
{
    if (err == NULL)
        return;
    err->status = status;
    size_t len = 0;
    if (field != NULL)
        len = cv_utf8_prefix(field, strlen(field), sizeof(err->field) - 1);
    memcpy(err->field, field != NULL ? field : "", len);
    err->field[len] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
}

static void cv_form_nomem(cv_form_error_t *err)
{
    cv_form_fail(err, 503, NULL, "out of memory");
}

static cv_form_t *cv_form_new(void)
{
    return calloc(1, sizeof(cv_form_t));
}

void cv_form_destroy(cv_form_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_form_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free((void *)self->fields[i].name);
        free((void *)self->fields[i].value);
        free((void *)self->fields[i].filename);
    }
    free(self->fields);
    free(self);
    *self_p = NULL;
}

/* Checks a decoded field name: not too long, strict UTF-8. */
static int cv_form_check_name(const char *name, size_t len,
                              cv_form_error_t *err)
{
    if (len > CV_FORM_MAX_NAME) {
        cv_form_fail(err, 400, NULL, "a field name is longer than %d bytes",
                     CV_FORM_MAX_NAME);
        return -1;
    }
    if (!cv_utf8_valid(name, len)) {
        cv_form_fail(err, 400, NULL, "a field name is not valid UTF-8");
        return -1;
    }
    return 0;
}

/* Checks a text value of the field `name` (already checked). */
static int cv_form_check_value(const char *name, const char *value, size_t len,
                               cv_form_error_t *err)
{
    if (memchr(value, '\0', len) != NULL) {
        cv_form_fail(err, 400, name, "holds a NUL byte");
        return -1;
    }
    if (!cv_utf8_valid(value, len)) {
        cv_form_fail(err, 400, name, "not valid UTF-8");
        return -1;
    }
    return 0;
}

/* Refuses one field more than the limit allows. */
static int cv_form_check_room(const cv_form_t *form, cv_form_error_t *err)
{
    if (form->count >= CV_FORM_MAX_FIELDS) {
        cv_form_fail(err, 400, NULL, "the form has more than %d fields",
                     CV_FORM_MAX_FIELDS);
        return -1;
    }
    return 0;
}

/* Appends a field, taking `name`, `value` and `filename` (all NUL-
 * terminated, checked) whatever happens. -1 when out of memory. */
static int cv_form_add(cv_form_t *form, char *name, char *value,
                       size_t value_len, char *filename, size_t size,
                       cv_form_error_t *err)
{
    if (form->count == form->cap) {
        size_t cap = form->cap > 0 ? form->cap * 2 : 8;
        cv_form_field_t *grown = realloc(form->fields, cap * sizeof(*grown));
        if (grown == NULL) {
            free(name);
            free(value);
            free(filename);
            cv_form_nomem(err);
            return -1;
        }
        form->fields = grown;
        form->cap = cap;
    }
    bool repeated = false;
    for (size_t i = 0; i < form->count && !repeated; i++)
        repeated = strcmp(form->fields[i].name, name) == 0;
    form->fields[form->count++] = (cv_form_field_t){
        .name = name,
        .value = value,
        .value_len = value_len,
        .is_file = filename != NULL,
        .filename = filename,
        .size = size,
        .repeated = repeated,
    };
    return 0;
}

/* Decodes one URL-encoded component into a new NUL-terminated buffer and
 * its length; '+' is a space, %XX a byte, a stray '%' stays itself. NULL
 * when out of memory. */
static char *cv_form_unescape(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = -1;
        int lo = -1;
        if (text[i] == '%' && len - i > 2) {
            hi = cv_utf8_hex_value(text[i + 1]);
            lo = cv_utf8_hex_value(text[i + 2]);
        }
        if (text[i] == '+') {
            out[n++] = ' ';
        } else if (hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = text[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* One name=value pair of an URL-encoded body. */
static int cv_form_add_pair(cv_form_t *form, const char *pair, size_t len,
                            cv_form_error_t *err)
{
    const char *eq = memchr(pair, '=', len);
    size_t name_raw = eq != NULL ? (size_t)(eq - pair) : len;
    size_t name_len = 0;
    size_t value_len = 0;
    char *name = cv_form_unescape(pair, name_raw, &name_len);
    char *value = NULL;
    if (name == NULL)
        goto nomem;
    if (name_len == 0) {
        free(name);
        return 0; /* "=x" names nothing */
    }
    if (cv_form_check_name(name, name_len, err) != 0 ||
        cv_form_check_room(form, err) != 0)
        goto fail;
    if (eq != NULL)
        value = cv_form_unescape(eq + 1, len - name_raw - 1, &value_len);
    else
        value = strdup("");
    if (value == NULL)
        goto nomem;
    if (cv_form_check_value(name, value, value_len, err) != 0)
        goto fail;
    return cv_form_add(form, name, value, value_len, NULL, 0, err);
nomem:
    cv_form_nomem(err);
fail:
    free(name);
    free(value);
    return -1;
}

cv_form_t *cv_form_parse_urlencoded(const char *body, size_t size,
                                    cv_form_error_t *err)
{
    cv_form_t *form = cv_form_new();
    if (form == NULL) {
        cv_form_nomem(err);
        return NULL;
    }
    size_t at = 0;
    while (at < size) {
        const char *pair = body + at;
        const char *amp = memchr(pair, '&', size - at);
        size_t len = amp != NULL ? (size_t)(amp - pair) : size - at;
        at += len + 1;
        if (len > 0 && cv_form_add_pair(form, pair, len, err) != 0) {
            cv_form_destroy(&form);
            return NULL;
        }
    }
    return form;
}

/* One `attr=value` parameter of a header (Content-Type, Content-
 * Disposition), after the leading value. */
typedef struct {
    const char *attr;  /* parameter name, not terminated */
    size_t attr_len;   /* its length */
    const char *value; /* raw value (inside the quotes when quoted) */
    size_t value_len;  /* its length */
    bool quoted;       /* the value was a quoted string */
} cv_form_param_t;

static bool cv_form_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads the next parameter from *pp (up to `end`) and advances past it.
 * False when there are no more. */
static bool cv_form_param_next(const char **pp, const char *end,
                               cv_form_param_t *param)
{
    const char *p = *pp;
    while (p < end &&
           (cv_form_space(*p) || *p == ';' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end)
        return false;
    memset(param, 0, sizeof(*param));
    param->attr = p;
    while (p < end && *p != '=' && *p != ';' && !cv_form_space(*p))
        p++;
    param->attr_len = (size_t)(p - param->attr);
    while (p < end && cv_form_space(*p))
        p++;
    param->value = p;
    if (p < end && *p == '=') {
        p++;
        while (p < end && cv_form_space(*p))
            p++;
        param->value = p;
        if (p < end && *p == '"') {
            param->quoted = true;
            param->value = ++p;
            while (p < end && *p != '"') {
                bool escaped_quote = *p == '\\' && end - p > 1 && p[1] == '"';
                p += escaped_quote ? 2 : 1;
            }
            param->value_len = (size_t)(p - param->value);
            if (p < end)
                p++; /* the closing quote */
        } else {
            while (p < end && *p != ';' && !cv_form_space(*p))
                p++;
            param->value_len = (size_t)(p - param->value);
        }
    }
    *pp = p;
    return true;
}

static bool cv_form_param_is(const cv_form_param_t *param, const char *name)
{
    size_t len = strlen(name);
    return param->attr_len == len && strncasecmp(param->attr, name, len) == 0;
}

/* The value of a parameter as a new string: quoted strings lose their
 * quotes and a \" inside becomes ". (A lone backslash stays: browsers send
 * Windows paths and percent-encode quotes, so it is rarely an escape.) */
static char *cv_form_param_value(const cv_form_param_t *param, size_t *out_len)
{
    char *out = malloc(param->value_len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < param->value_len; i++) {
        if (param->quoted && param->value[i] == '\\' &&
            i + 1 < param->value_len && param->value[i + 1] == '"')
            i++;
        out[n++] = param->value[i];
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* An RFC 5987 ext-value (filename*=UTF-8''%D0%9E...) decoded, when its
 * charset is UTF-8; NULL otherwise or when out of memory (*nomem). */
static char *cv_form_ext_value(const cv_form_param_t *param, size_t *out_len,
                               bool *nomem)
{
    const char *v = param->value;
    size_t len = param->value_len;
    const char *q1 = memchr(v, '\'', len);
    if (q1 == NULL || (size_t)(q1 - v) != 5 || strncasecmp(v, "utf-8", 5))
        return NULL;
    const char *q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - v));
    if (q2 == NULL)
        return NULL;
    size_t rest = len - (size_t)(q2 + 1 - v);
    char *out = malloc(rest + 1);
    if (out == NULL) {
        *nomem = true;
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < rest; i++) {
        const char *c = q2 + 1 + i;
        int hi = *c == '%' && rest - i > 2 ? cv_utf8_hex_value(c[1]) : -1;
        int lo = *c == '%' && rest - i > 2 ? cv_utf8_hex_value(c[2]) : -1;
        if (hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = *c;
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* True when the media type of a Content-Type value (before any ';',
 * ignoring surrounding white space and case) is `type`. */
static bool cv_form_media_is(const char *content_type, const char *type)
{
    const char *p = content_type;
    while (cv_form_space(*p))
        p++;
    size_t len = strlen(type);
    if (strncasecmp(p, type, len) != 0)
        return false;
    p += len;
    while (cv_form_space(*p))
        p++;
    return *p == '\0' || *p == ';';
}

bool cv_form_is_form_type(const char *content_type)
{
    return content_type != NULL &&
           (cv_form_media_is(content_type, cv_form_urlencoded) ||
            cv_form_media_is(content_type, cv_form_multipart));
}

/* The boundary parameter of a multipart Content-Type as a new string, or
 * NULL with `err` filled. */
static char *cv_form_boundary(const char *content_type, cv_form_error_t *err)
{
    const char *p = strchr(content_type, ';');
    const char *end = content_type + strlen(content_type);
    cv_form_param_t param;
    while (p != NULL && cv_form_param_next(&p, end, &param)) {
        if (!cv_form_param_is(&param, "boundary"))
            continue;
        size_t len = 0;
        char *boundary = cv_form_param_value(&param, &len);
        if (boundary == NULL) {
            cv_form_nomem(err);
            return NULL;
        }
        bool ok = len > 0 && len <= CV_FORM_MAX_BOUNDARY &&
                  strpbrk(boundary, "\r\n") == NULL;
        if (ok)
            return boundary;
        free(boundary);
        break;
    }
    cv_form_fail(err, 400, NULL,
                 "multipart Content-Type has no usable boundary");
    return NULL;
}

/* A delimiter line found in a multipart body. */
typedef struct {
    size_t at;    /* offset of its "--boundary" */
    size_t next;  /* offset just after its line (or after "--") */
    bool closing; /* "--boundary--" */
} cv_form_delim_t;

/* Finds the first delimiter line at or after `from`: "--boundary" at the
 * start of a line, followed by "--", or by optional blanks and a line end
 * (CRLF or LF) or the end of the body. False when there is none. */
static bool cv_form_find_delim(const char *body, size_t size, size_t from,
                               const char *dash_boundary, size_t dlen,
                               cv_form_delim_t *delim)
{
    while (from < size) {
        const char *hit = memmem(body + from, size - from, dash_boundary, dlen);
        if (hit == NULL)
            return false;
        size_t at = (size_t)(hit - body);
        from = at + 1;
        if (at > 0 && body[at - 1] != '\n')
            continue;
        size_t p = at + dlen;
        if (size - p >= 2 && body[p] == '-' && body[p + 1] == '-') {
            *delim = (cv_form_delim_t){at, p + 2, true};
            return true;
        }
        while (p < size && cv_form_space(body[p]))
            p++;
        if (p < size && body[p] == '\r')
            p++;
        if (p < size && body[p] != '\n')
            continue;
        if (p < size)
            p++;
        *delim = (cv_form_delim_t){at, p, false};
        return true;
    }
    return false;
}

/* What a part's Content-Disposition says. */
typedef struct {
    char *name;          /* the name parameter (owned), NULL when none */
    size_t name_len;     /* its length */
    char *filename;      /* filename or filename* (owned), NULL for text */
    size_t filename_len; /* its length */
} cv_form_disposition_t;

static void cv_form_disposition_clear(cv_form_disposition_t *d)
{
    free(d->name);
    free(d->filename);
    memset(d, 0, sizeof(*d));
}

/* Reads `form-data; name="x"; filename="y"` (the value after the colon).
 * A later name or filename replaces an earlier one; filename* wins over
 * filename. -1 when out of memory. */
static int cv_form_disposition(const char *value, const char *end,
                               cv_form_disposition_t *d)
{
    const char *p = memchr(value, ';', (size_t)(end - value));
    bool ext_seen = false;
    cv_form_param_t param;
    while (p != NULL && cv_form_param_next(&p, end, &param)) {
        char *text = NULL;
        size_t len = 0;
        bool nomem = false;
        if (cv_form_param_is(&param, "name")) {
            text = cv_form_param_value(&param, &len);
            if (text == NULL)
                return -1;
            free(d->name);
            d->name = text;
            d->name_len = len;
        } else if (cv_form_param_is(&param, "filename") && !ext_seen) {
            text = cv_form_param_value(&param, &len);
            if (text == NULL)
                return -1;
            free(d->filename);
            d->filename = text;
            d->filename_len = len;
        } else if (cv_form_param_is(&param, "filename*")) {
            text = cv_form_ext_value(&param, &len, &nomem);
            if (nomem)
                return -1;
            if (text == NULL && d->filename == NULL)
                text = strdup(""); /* a file all the same */
            if (text == NULL && d->filename == NULL)
                return -1;
            if (text != NULL) {
                free(d->filename);
                d->filename = text;
                d->filename_len = len;
                ext_seen = true;
            }
        }
    }
    return 0;
}

/* One part: headers, a blank line, content; [start, end) excludes the line
 * break before the next delimiter. */
static int cv_form_add_part(cv_form_t *form, const char *start, const char *end,
                            cv_form_error_t *err)
{
    static const char header[] = "content-disposition:";
    const size_t header_len = sizeof(header) - 1;
    cv_form_disposition_t d = {0};
    const char *p = start;
    const char *content = end; /* no blank line: headers only, no content */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl != NULL ? nl : end;
        const char *next = nl != NULL ? nl + 1 : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (line_end == p) {
            content = next;
            break;
        }
        if ((size_t)(line_end - p) >= header_len &&
            strncasecmp(p, header, header_len) == 0 &&
            cv_form_disposition(p + header_len, line_end, &d) != 0)
            goto nomem;
        p = next;
    }
    if (d.name == NULL) {
        cv_form_fail(err, 400, NULL, "a multipart part has no field name");
        goto fail;
    }
    if (d.name_len == 0) {
        cv_form_disposition_clear(&d);
        return 0; /* like an unnamed input: nothing to submit */
    }
    if (cv_form_check_name(d.name, d.name_len, err) != 0 ||
        cv_form_check_room(form, err) != 0)
        goto fail;
    size_t content_len = (size_t)(end - content);
    char *value = NULL;
    if (d.filename != NULL) {
        if (!cv_utf8_valid(d.filename, d.filename_len)) {
            cv_form_fail(err, 400, d.name, "the file name is not valid UTF-8");
            goto fail;
        }
        d.filename[cv_utf8_prefix(d.filename, d.filename_len,
                                  CV_FORM_MAX_FILENAME)] = '\0';
        value = strdup("");
        if (value == NULL)
            goto nomem;
        int rc =
            cv_form_add(form, d.name, value, 0, d.filename, content_len, err);
        d.name = NULL;
        d.filename = NULL;
        return rc;
    }
    if (cv_form_check_value(d.name, content, content_len, err) != 0)
        goto fail;
    value = malloc(content_len + 1);
    if (value == NULL)
        goto nomem;
    memcpy(value, content, content_len);
    value[content_len] = '\0';
    int rc = cv_form_add(form, d.name, value, content_len, NULL, 0, err);
    d.name = NULL;
    return rc;
nomem:
    cv_form_nomem(err);
fail:
    cv_form_disposition_clear(&d);
    return -1;
}

static cv_form_t *cv_form_parse_multipart(const char *content_type,
                                          const char *body, size_t size,
                                          cv_form_error_t *err)
{
    cv_form_t *form = NULL;
    char *dash_boundary = NULL;
    char *boundary = cv_form_boundary(content_type, err);
    if (boundary == NULL)
        goto fail;
    size_t dlen = strlen(boundary) + 2;
    dash_boundary = malloc(dlen + 1);
    form = cv_form_new();
    if (dash_boundary == NULL || form == NULL) {
        cv_form_nomem(err);
        goto fail;
    }
    snprintf(dash_boundary, dlen + 1, "--%s", boundary);
    cv_form_delim_t delim;
    if (!cv_form_find_delim(body, size, 0, dash_boundary, dlen, &delim)) {
        cv_form_fail(err, 400, NULL, "multipart body has no boundary line");
        goto fail;
    }
    while (!delim.closing) {
        size_t start = delim.next;
        if (!cv_form_find_delim(body, size, start, dash_boundary, dlen,
                                &delim)) {
            cv_form_fail(err, 400, NULL,
                         "multipart body has no closing boundary");
            goto fail;
        }
        /* the line break before a delimiter belongs to the delimiter */
        size_t end = delim.at;
        if (end > start && body[end - 1] == '\n')
            end--;
        if (end > start && body[end - 1] == '\r')
            end--;
        if (cv_form_add_part(form, body + start, body + end, err) != 0)
            goto fail;
    }
    free(boundary);
    free(dash_boundary);
    return form;
fail:
    free(boundary);
    free(dash_boundary);
    cv_form_destroy(&form);
    return NULL;
}

cv_form_t *cv_form_parse(const char *content_type, const char *body,
                         size_t size, cv_form_error_t *err)
{
    if (body == NULL && size > 0) {
        cv_form_fail(err, 400, NULL, "no body");
        return NULL;
    }
    if (body == NULL)
        body = "";
    if (content_type != NULL &&
        cv_form_media_is(content_type, cv_form_urlencoded))
        return cv_form_parse_urlencoded(body, size, err);
    if (content_type != NULL &&
        cv_form_media_is(content_type, cv_form_multipart))
        return cv_form_parse_multipart(content_type, body, size, err);
    cv_form_fail(err, 415, NULL, "not a form content type");
    return NULL;
}

const char *cv_form_get(const cv_form_t *self, const char *name)
{
    if (self == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < self->count; i++) {
        const cv_form_field_t *field = &self->fields[i];
        if (!field->is_file && strcmp(field->name, name) == 0)
            return field->value;
    }
    return NULL;
}

size_t cv_form_count(const cv_form_t *self)
{
    return self != NULL ? self->count : 0;
}

const cv_form_field_t *cv_form_at(const cv_form_t *self, size_t i)
{
    if (self == NULL || i >= self->count)
        return NULL;
    return &self->fields[i];
}

/* Appends a new reference (taken even on failure) to the array under
 * `key` in `object`, creating it. -1 when out of memory. */
static int cv_form_json_append(json_t *object, const char *key, json_t *item)
{
    json_t *array = json_object_get(object, key);
    if (array == NULL) {
        array = json_array();
        if (array == NULL || json_object_set_new(object, key, array) != 0) {
            json_decref(item);
            return -1;
        }
    }
    return json_array_append_new(array, item);
}

json_t *cv_form_to_json(const cv_form_t *self)
{
    json_t *out = json_object();
    json_t *repeated = json_object();
    json_t *files = json_array();
    if (self == NULL || out == NULL || repeated == NULL || files == NULL)
        goto fail;
    for (size_t i = 0; i < self->count; i++) {
        const cv_form_field_t *field = &self->fields[i];
        if (field->is_file) {
            if (field->filename[0] == '\0' && field->size == 0)
                continue; /* a file input left empty */
            json_t *note =
                json_pack("{s:s, s:s, s:I}", "field", field->name, "filename",
                          field->filename, "size", (json_int_t)field->size);
            if (note == NULL || json_array_append_new(files, note) != 0)
                goto fail;
            continue;
        }
        json_t *value = json_stringn(field->value, field->value_len);
        if (value == NULL)
            goto fail;
        int rc = json_object_get(out, field->name) == NULL
                     ? json_object_set_new(out, field->name, value)
                     : cv_form_json_append(repeated, field->name, value);
        if (rc != 0)
            goto fail;
    }
    if (json_object_size(repeated) > 0 &&
        json_object_get(out, "repeated") == NULL &&
        json_object_set(out, "repeated", repeated) != 0)
        goto fail;
    if (json_array_size(files) > 0 && json_object_get(out, "files") == NULL &&
        json_object_set(out, "files", files) != 0)
        goto fail;
    json_decref(repeated);
    json_decref(files);
    return out;
fail:
    json_decref(out);
    json_decref(repeated);
    json_decref(files);
    return NULL;
}

/* cv_mail: a raw email reduced to a lead's sender, text and contacts.
 *
 * GMime parses the MIME structure, decodes headers (RFC 2047) and undoes
 * transfer encodings; everything after that is done here, on bytes that
 * are first made valid UTF-8: charset conversion, HTML to text, cutting
 * the quoted history, splitting off the signature and reading phones and a
 * company name out of it. */
#include "cv_mail.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "cv_utf8.h"

/* Larger inputs are refused before GMime copies them (its buffers count
 * bytes in 32 bits); intake's own body limit is far below this. */
#define MAIL_MAX_SIZE ((size_t)256 * 1024 * 1024)

/* A signature after "-- " has at most this many non-blank lines. */
#define MAIL_SIGNATURE_MAX_LINES 30

/* A closing phrase ("С уважением") is looked for among this many last
 * non-blank lines of the body. */
#define MAIL_CLOSING_WINDOW 15

/* The longest company name taken from a signature, in bytes. */
#define MAIL_COMPANY_MAX 200

/* U+FFFD REPLACEMENT CHARACTER, in place of bytes that are not text. */
#define MAIL_REPLACEMENT 0xFFFD

/* ---- GMime, once per process --------------------------------------- */

static pthread_once_t mail_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *mail_options; /* read-only after mail_init */

/* Raw 8-bit header text that declares no charset: UTF-8 when it is valid,
 * else windows-1251, the usual legacy charset of Russian mail. */
static const char *mail_fallback_charsets[] = {"utf-8", "windows-1251", NULL};

static void mail_init(void)
{
    g_mime_init();
    mail_options = g_mime_parser_options_new();
    if (mail_options == NULL)
        return;
    g_mime_parser_options_set_fallback_charsets(mail_options,
                                                mail_fallback_charsets);
    /* "From: MAILER-DAEMON" must still give an address to recognise */
    g_mime_parser_options_set_allow_addresses_without_domain(mail_options,
                                                             TRUE);
    /* real mailers break the RFCs; read what they meant */
    g_mime_parser_options_set_address_compliance_mode(
        mail_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(
        mail_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_rfc2047_compliance_mode(
        mail_options, GMIME_RFC_COMPLIANCE_LOOSE);
}

/* ---- a growing string ---------------------------------------------- */

typedef struct {
    char *data;      /* NUL-terminated once anything was put (owned) */
    size_t length;   /* bytes used, without the NUL */
    size_t capacity; /* bytes allocated */
    bool failed;     /* an allocation failed; sticky */
} mail_buf_t;

/* Makes room for `extra` more bytes and the NUL. False when out of
 * memory (the buffer is then failed). */
static bool buf_reserve(mail_buf_t *buf, size_t extra)
{
    if (buf->failed)
        return false;
    if (extra > SIZE_MAX / 2 - buf->length) {
        buf->failed = true;
        return false;
    }
    size_t need = buf->length + extra + 1;
    if (need <= buf->capacity)
        return true;
    size_t capacity = buf->capacity > 0 ? buf->capacity : 64;
    while (capacity < need)
        capacity *= 2;
    char *data = realloc(buf->data, capacity);
    if (data == NULL) {
        buf->failed = true;
        return false;
    }
    buf->data = data;
    buf->data[buf->length] = '\0';
    buf->capacity = capacity;
    return true;
}

static void buf_put(mail_buf_t *buf, const char *bytes, size_t n)
{
    if (!buf_reserve(buf, n))
        return;
    if (n > 0)
        memcpy(buf->data + buf->length, bytes, n);
    buf->length += n;
    buf->data[buf->length] = '\0';
}

static void buf_putc(mail_buf_t *buf, char c)
{
    buf_put(buf, &c, 1);
}

/* Appends code point `cp` as UTF-8; one that cannot exist becomes
 * U+FFFD. */
static void buf_put_code(mail_buf_t *buf, uint32_t cp)
{
    char bytes[4];
    size_t n = cv_utf8_encode(cp, bytes);
    if (n == 0)
        n = cv_utf8_encode(MAIL_REPLACEMENT, bytes);
    buf_put(buf, bytes, n);
}

/* Hands the string to the caller ("" when nothing was put); NULL when an
 * allocation failed. The buffer is left empty either way. */
static char *buf_take(mail_buf_t *buf)
{
    char *data = buf->data;
    bool failed = buf->failed;
    *buf = (mail_buf_t){0};
    if (failed) {
        free(data);
        return NULL;
    }
    return data != NULL ? data : strdup("");
}

static void buf_free(mail_buf_t *buf)
{
    free(buf->data);
    *buf = (mail_buf_t){0};
}

/* ---- UTF-8 --------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at `s` (1..4, within `n` bytes), or
 * 0 when the bytes there are not one (bad lead byte, truncated, overlong,
 * surrogate, above U+10FFFF). Sets *code to the code point. */
static size_t mail_utf8_decode(const unsigned char *s, size_t n, uint32_t *code)
{
    unsigned char c = s[0];
    size_t length;
    uint32_t cp;
    uint32_t min;
    if (c < 0x80) {
        *code = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (length > n)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *code = cp;
    return length;
}

static bool mail_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t length = mail_utf8_decode(p + i, n - i, &cp);
        if (length == 0)
            return false;
        i += length;
    }
    return true;
}

/* A copy of `n` bytes as clean text: invalid UTF-8 becomes U+FFFD, CRLF
 * and lone CR become LF, NUL and other control characters (but tab and
 * LF) are dropped, no-break spaces become plain spaces (so phone numbers
 * and words match), zero-width characters, soft hyphens and byte order
 * marks are dropped. NULL when out of memory. */
static char *mail_clean_text(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    mail_buf_t out = {0};
    size_t i = 0;
    buf_reserve(&out, n);
    while (i < n && !out.failed) {
        unsigned char c = p[i];
        if (c == '\r') {
            buf_putc(&out, '\n');
            i += (i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (c < 0x80) {
            if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7F))
                buf_putc(&out, (char)c);
            i++;
            continue;
        }
        uint32_t cp;
        size_t length = mail_utf8_decode(p + i, n - i, &cp);
        if (length == 0) {
            buf_put_code(&out, MAIL_REPLACEMENT);
            i++;
            continue;
        }
        if (cp == 0xA0 || cp == 0x2007 || cp == 0x202F)
            buf_putc(&out, ' ');
        else if (cp == 0xAD || cp == 0x200B || cp == 0xFEFF ||
                 (cp >= 0x80 && cp <= 0x9F))
            ; /* invisible or a C1 control: nothing to show */
        else
            buf_put(&out, s + i, length);
        i += length;
    }
    return buf_take(&out);
}

/* As mail_clean_text, on one line: each run of spaces, tabs and line
 * breaks becomes one space, with none at either end. */
static char *mail_clean_line(const char *s)
{
    char *clean = mail_clean_text(s, strlen(s));
    if (clean == NULL)
        return NULL;
    mail_buf_t out = {0};
    bool space = false;
    for (const char *p = clean; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            space = true;
            continue;
        }
        if (space && out.length > 0)
            buf_putc(&out, ' ');
        space = false;
        buf_putc(&out, *p);
    }
    free(clean);
    return buf_take(&out);
}

/* ---- charsets ------------------------------------------------------ */

/* Labels that mean the text is UTF-8 already (ASCII is a subset). */
static bool mail_charset_is_utf8(const char *charset)
{
    return g_ascii_strcasecmp(charset, "utf-8") == 0 ||
           g_ascii_strcasecmp(charset, "utf8") == 0 ||
           g_ascii_strcasecmp(charset, "us-ascii") == 0 ||
           g_ascii_strcasecmp(charset, "ascii") == 0;
}

/* The charset of 8-bit text that names none (or names one it is not in):
 * windows-1251 or koi8-r. Russian prose is mostly lower case, and lower
 * case Cyrillic is 0xE0-0xFF in windows-1251 but 0xC0-0xDF in koi8-r. */
static const char *mail_guess_charset(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t high = 0; /* 0xE0-0xFF */
    size_t low = 0;  /* 0xC0-0xDF */
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0xE0)
            high++;
        else if (p[i] >= 0xC0)
            low++;
    }
    return low > high ? "koi8-r" : "windows-1251";
}

/* Converts `n` bytes with `cd` (to UTF-8) onto `out`; a byte the charset
 * does not define, or a sequence cut short, becomes U+FFFD. */
static void mail_iconv(mail_buf_t *out, iconv_t cd, const char *s, size_t n)
{
    char *in = (char *)s;
    size_t in_left = n;
    while (in_left > 0) {
        if (!buf_reserve(out, in_left * 4 + 16))
            return;
        char *dst = out->data + out->length;
        size_t room = out->capacity - out->length - 1;
        size_t before = room;
        size_t rc = iconv(cd, &in, &in_left, &dst, &room);
        int saved = errno;
        out->length += before - room;
        out->data[out->length] = '\0';
        if (rc != (size_t)-1)
            break;
        if (saved == E2BIG)
            continue;
        /* EILSEQ (not in the charset) or EINVAL (cut short at the end) */
        buf_put_code(out, MAIL_REPLACEMENT);
        in++;
        in_left--;
    }
    /* stateful charsets may have a shift sequence to close */
    if (buf_reserve(out, 16)) {
        char *dst = out->data + out->length;
        size_t room = out->capacity - out->length - 1;
        size_t before = room;
        iconv(cd, NULL, NULL, &dst, &room);
        out->length += before - room;
        out->data[out->length] = '\0';
    }
}

/* `n` bytes of text in `charset` (may be NULL) as clean UTF-8 text (see
 * mail_clean_text). A missing, unknown or false UTF-8 label on bytes that
 * are not UTF-8 falls back to mail_guess_charset. NULL when out of
 * memory. */
static char *mail_decode_text(const char *bytes, size_t n, const char *charset)
{
    iconv_t cd = (iconv_t)-1;
    if (charset != NULL && !mail_charset_is_utf8(charset))
        cd = g_mime_iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        if (mail_utf8_valid(bytes, n))
            return mail_clean_text(bytes, n);
        cd = g_mime_iconv_open("UTF-8", mail_guess_charset(bytes, n));
        if (cd == (iconv_t)-1)
            return mail_clean_text(bytes, n); /* repaired, at least */
    }
    mail_buf_t converted = {0};
    mail_iconv(&converted, cd, bytes, n);
    g_mime_iconv_close(cd);
    if (converted.failed) {
        buf_free(&converted);
        return NULL;
    }
    char *text = mail_clean_text(converted.data != NULL ? converted.data : "",
                                 converted.length);
    buf_free(&converted);
    return text;
}

/* ---- HTML to text -------------------------------------------------- */

/* Output of the HTML reader. */
typedef struct {
    mail_buf_t out;  /* the text so far */
    int quote_depth; /* open <blockquote> elements: their lines get "> " */
    bool space;      /* whitespace seen since the last character put */
} html_text_t;

static bool html_at_line_start(const html_text_t *h)
{
    return h->out.length == 0 || h->out.data[h->out.length - 1] == '\n';
}

static void html_trim_spaces(html_text_t *h)
{
    while (h->out.length > 0 && h->out.data[h->out.length - 1] == ' ')
        h->out.data[--h->out.length] = '\0';
}

/* Puts visible characters: after "> " at the start of a quoted line, or
 * after one space when whitespace came before them. */
static void html_put(html_text_t *h, const char *bytes, size_t n)
{
    if (html_at_line_start(h)) {
        if (h->quote_depth > 0)
            buf_put(&h->out, "> ", 2);
    } else if (h->space) {
        buf_putc(&h->out, ' ');
    }
    h->space = false;
    buf_put(&h->out, bytes, n);
}

/* <br>: a line break, but never more than one blank line in a row. */
static void html_break(html_text_t *h)
{
    html_trim_spaces(h);
    size_t newlines = 0;
    while (newlines < h->out.length &&
           h->out.data[h->out.length - 1 - newlines] == '\n')
        newlines++;
    if (h->out.length > 0 && newlines < 2)
        buf_putc(&h->out, '\n');
    h->space = false;
}

/* A block element: what follows starts on a line of its own. */
static void html_block(html_text_t *h)
{
    html_trim_spaces(h);
    if (!html_at_line_start(h))
        buf_putc(&h->out, '\n');
    h->space = false;
}

/* Elements that start a new line. */
static const char *const html_block_names[] = {
    "p",       "div",     "ul",      "ol",       "table",   "tr",    "h1",
    "h2",      "h3",      "h4",      "h5",       "h6",      "pre",   "hr",
    "address", "section", "article", "header",   "footer",  "dl",    "dt",
    "dd",      "center",  "form",    "fieldset", "caption", "tbody", "thead",
    "tfoot",   "body",    "html",    "li"};

/* Acts on a tag named `name` (lower case). */
static void html_element(html_text_t *h, const char *name, bool closing)
{
    if (strcmp(name, "br") == 0) {
        html_break(h);
        return;
    }
    if (strcmp(name, "blockquote") == 0) {
        html_block(h);
        if (closing && h->quote_depth > 0)
            h->quote_depth--;
        else if (!closing && h->quote_depth < 100)
            h->quote_depth++;
        return;
    }
    if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0) {
        if (!closing)
            h->space = true; /* cells of a row stay apart */
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(html_block_names); i++) {
        if (strcmp(name, html_block_names[i]) == 0) {
            html_block(h);
            if (!closing && strcmp(name, "li") == 0) {
                html_put(h, "-", 1);
                h->space = true;
            }
            return;
        }
    }
}

/* The '>' that ends a tag whose attributes start at `p`, skipping quoted
 * attribute values; NULL when there is none. */
static const char *html_tag_end(const char *p)
{
    char quote = '\0';
    char previous = '\0'; /* last non-space outside quotes */
    for (const char *q = p; *q != '\0'; q++) {
        if (quote != '\0') {
            if (*q == quote)
                quote = '\0';
        } else if ((*q == '"' || *q == '\'') && previous == '=') {
            quote = *q;
        } else if (*q == '>') {
            return q;
        }
        if (quote == '\0' && *q != ' ' && *q != '\t' && *q != '\n')
            previous = *q;
    }
    /* an unclosed quote: take the first '>' after all */
    return strchr(p, '>');
}

/* Where the raw content of a <script>/<style>/<title> element that starts
 * at `p` ends: after its closing tag, or at the end of the input. */
static const char *html_skip_raw(const char *p, const char *name)
{
    size_t length = strlen(name);
    for (const char *s = strstr(p, "</"); s != NULL; s = strstr(s + 2, "</")) {
        if (g_ascii_strncasecmp(s + 2, name, length) == 0 &&
            !g_ascii_isalnum(s[2 + length])) {
            const char *end = strchr(s, '>');
            return end != NULL ? end + 1 : s + strlen(s);
        }
    }
    return p + strlen(p);
}

/* Reads the markup at `p` ('<') and returns where the text resumes. */
static const char *html_tag(html_text_t *h, const char *p)
{
    const char *q = p + 1;
    if (strncmp(q, "!--", 3) == 0) {
        const char *end = strstr(q + 3, "-->");
        return end != NULL ? end + 3 : q + strlen(q);
    }
    if (*q == '!' || *q == '?') { /* <!DOCTYPE …>, <?xml …?> */
        const char *end = strchr(q, '>');
        return end != NULL ? end + 1 : q + strlen(q);
    }
    bool closing = false;
    if (*q == '/') {
        closing = true;
        q++;
    }
    if (!g_ascii_isalpha(*q)) { /* "a < b": a plain character */
        html_put(h, "<", 1);
        return p + 1;
    }
    char name[16];
    size_t length = 0;
    while (g_ascii_isalnum(*q) || *q == ':' || *q == '-') {
        if (length < sizeof(name) - 1)
            name[length++] = g_ascii_tolower(*q);
        q++;
    }
    name[length] = '\0';
    const char *end = html_tag_end(q);
    if (end == NULL) /* the input ends inside a tag */
        return q + strlen(q);
    html_element(h, name, closing);
    if (!closing && (strcmp(name, "script") == 0 ||
                     strcmp(name, "style") == 0 || strcmp(name, "title") == 0))
        return html_skip_raw(end + 1, name);
    return end + 1;
}

/* Named character references worth knowing in mail. */
static const struct {
    const char *name; /* without & and ; (case matters, as in HTML) */
    uint32_t code;    /* the character */
} html_entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},
    {"quot", '"'},     {"apos", '\''},     {"nbsp", 0xA0},
    {"laquo", 0xAB},   {"raquo", 0xBB},    {"mdash", 0x2014},
    {"ndash", 0x2013}, {"hellip", 0x2026}, {"copy", 0xA9},
    {"reg", 0xAE},     {"trade", 0x2122},  {"euro", 0x20AC},
    {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"sbquo", 0x201A},
    {"ldquo", 0x201C}, {"rdquo", 0x201D},  {"bdquo", 0x201E},
    {"bull", 0x2022},  {"middot", 0xB7},   {"times", 0xD7},
    {"deg", 0xB0},     {"numero", 0x2116}, {"shy", 0xAD},
    {"ensp", 0x2002},  {"emsp", 0x2003},   {"thinsp", 0x2009},
    {"zwnj", 0x200C},  {"zwj", 0x200D},    {"lrm", 0x200E},
    {"rlm", 0x200F},   {"plusmn", 0xB1},   {"sect", 0xA7},
    {"para", 0xB6},    {"cent", 0xA2},     {"pound", 0xA3},
    {"yen", 0xA5},     {"rarr", 0x2192},   {"larr", 0x2190},
    {"minus", 0x2212}, {"AMP", '&'},       {"LT", '<'},
    {"GT", '>'},       {"QUOT", '"'},
};

/* &#128;-&#159; mean windows-1252 characters (as browsers read them). */
static const uint16_t html_windows_1252[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
    0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

/* Puts the character an entity stands for. */
static void html_put_code(html_text_t *h, uint32_t cp)
{
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == 0xA0 || cp == 0x2002 ||
        cp == 0x2003 || cp == 0x2009) {
        h->space = true;
        return;
    }
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0xAD ||
        (cp >= 0x200B && cp <= 0x200F) || cp == 0xFEFF)
        return; /* invisible */
    mail_buf_t one = {0};
    buf_put_code(&one, cp);
    if (one.failed) {
        h->out.failed = true;
        return;
    }
    html_put(h, one.data, one.length);
    buf_free(&one);
}

/* Reads the character reference at `p` ('&') and returns where the text
 * resumes; an unknown one is kept as written. */
static const char *html_entity(html_text_t *h, const char *p)
{
    const char *q = p + 1;
    uint32_t cp = 0;
    if (*q == '#') {
        q++;
        bool hex = *q == 'x' || *q == 'X';
        if (hex)
            q++;
        size_t digits = 0;
        while (hex ? g_ascii_isxdigit(*q) : g_ascii_isdigit(*q)) {
            if (cp <= 0x10FFFF) /* no overflow; too large stays large */
                cp = cp * (hex ? 16 : 10) +
                     (uint32_t)(hex ? g_ascii_xdigit_value(*q)
                                    : g_ascii_digit_value(*q));
            digits++;
            q++;
        }
        if (digits == 0) {
            html_put(h, "&", 1);
            return p + 1;
        }
        if (*q == ';')
            q++;
        if (cp >= 0x80 && cp <= 0x9F)
            cp = html_windows_1252[cp - 0x80];
        else if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            cp = MAIL_REPLACEMENT;
        html_put_code(h, cp);
        return q;
    }
    char name[12];
    size_t length = 0;
    while (g_ascii_isalnum(*q) && length < sizeof(name) - 1)
        name[length++] = *q++;
    name[length] = '\0';
    if (*q == ';') {
        for (size_t i = 0; i < G_N_ELEMENTS(html_entities); i++) {
            if (strcmp(name, html_entities[i].name) == 0) {
                html_put_code(h, html_entities[i].code);
                return q + 1;
            }
        }
    }
    html_put(h, "&", 1);
    return p + 1;
}

/* Readable text from an HTML document (clean UTF-8): tags dropped, the
 * content of <script>, <style> and <title> dropped, line breaks where
 * <br>, <p>, <div>, <li>, <tr>… put them, whitespace collapsed as a
 * browser does, entities decoded (&nbsp; as a plain space), <blockquote>
 * lines marked "> " like a quoted reply. NULL when out of memory. */
static char *mail_html_to_text(const char *html)
{
    html_text_t h = {0};
    const char *p = html;
    while (*p != '\0' && !h.out.failed) {
        unsigned char c = (unsigned char)*p;
        if (c == '<') {
            p = html_tag(&h, p);
        } else if (c == '&') {
            p = html_entity(&h, p);
        } else if (c == ' ' || c == '\t' || c == '\n') {
            h.space = true;
            p++;
        } else {
            /* the input is valid UTF-8: the lead byte gives the length */
            size_t length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            html_put(&h, p, length);
            p += length;
        }
    }
    html_trim_spaces(&h);
    return buf_take(&h.out);
}

/* ---- format=flowed ------------------------------------------------- */

/* Joins the soft line breaks of RFC 3676 text: a line ending in a space
 * continues on the next (the space is dropped with DelSp=yes), and a
 * leading space added by space-stuffing is removed. Quoted lines are left
 * alone (they are cut later anyway). NULL when out of memory. */
static char *mail_unflow(const char *text, bool delete_space)
{
    mail_buf_t out = {0};
    const char *line = text;
    for (;;) {
        const char *newline = strchr(line, '\n');
        size_t length =
            newline != NULL ? (size_t)(newline - line) : strlen(line);
        const char *s = line;
        bool quoted = length > 0 && s[0] == '>';
        if (!quoted && length > 0 && s[0] == ' ') {
            s++;
            length--;
        }
        bool soft = newline != NULL && !quoted && length > 0 &&
                    s[length - 1] == ' ' &&
                    !(length == 3 && memcmp(s, "-- ", 3) == 0);
        if (soft && delete_space)
            length--;
        buf_put(&out, s, length);
        if (newline == NULL)
            break;
        if (!soft)
            buf_putc(&out, '\n');
        line = newline + 1;
    }
    return buf_take(&out);
}

/* ---- lines: quoted history and signature ---------------------------- */

typedef struct {
    const char *start; /* first byte, inside the split text */
    size_t length;     /* bytes, without the '\n' */
} mail_line_t;

typedef struct {
    mail_line_t *items; /* owned */
    size_t count;
} mail_lines_t;

/* Splits `text` at '\n' (it keeps owning the bytes). -1 when out of
 * memory. */
static int mail_lines_split(const char *text, mail_lines_t *lines)
{
    size_t count = 1;
    for (const char *p = text; *p != '\0'; p++)
        if (*p == '\n')
            count++;
    lines->items = calloc(count, sizeof(*lines->items));
    lines->count = 0;
    if (lines->items == NULL)
        return -1;
    const char *start = text;
    for (;;) {
        const char *newline = strchr(start, '\n');
        size_t length =
            newline != NULL ? (size_t)(newline - start) : strlen(start);
        lines->items[lines->count++] = (mail_line_t){start, length};
        if (newline == NULL)
            break;
        start = newline + 1;
    }
    return 0;
}

static void mail_lines_free(mail_lines_t *lines)
{
    free(lines->items);
    *lines = (mail_lines_t){0};
}

/* The line without spaces and tabs at either end. */
static mail_line_t mail_line_trim(mail_line_t line)
{
    while (line.length > 0 && (line.start[0] == ' ' || line.start[0] == '\t')) {
        line.start++;
        line.length--;
    }
    while (line.length > 0 && (line.start[line.length - 1] == ' ' ||
                               line.start[line.length - 1] == '\t'))
        line.length--;
    return line;
}

static bool mail_line_blank(mail_line_t line)
{
    return mail_line_trim(line).length == 0;
}

static bool mail_line_starts(mail_line_t line, const char *prefix)
{
    size_t length = strlen(prefix);
    line = mail_line_trim(line);
    return line.length >= length && memcmp(line.start, prefix, length) == 0;
}

static bool mail_line_ends(mail_line_t line, const char *suffix)
{
    size_t length = strlen(suffix);
    line = mail_line_trim(line);
    return line.length >= length &&
           memcmp(line.start + line.length - length, suffix, length) == 0;
}

/* The line that introduces a quoted reply: "On Mon, … Ivan wrote:",
 * "03.06.2024 10:00, Иван Петров пишет:", "… Иван написал(а):", or the
 * Gmail/Yandex/Mail.ru form that ends with "<ivan@mail.ru>:". */
static bool mail_is_attribution(mail_line_t line)
{
    static const char *const endings[] = {
        "wrote:", "написал(а):", "написал:", "написала:",
        "пишет:", "писал(а):",   "schrieb:",
    };
    mail_line_t t = mail_line_trim(line);
    if (t.length == 0)
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(endings); i++)
        if (mail_line_ends(t, endings[i]))
            return true;
    return t.length >= 2 && t.start[t.length - 2] == '>' &&
           t.start[t.length - 1] == ':' && memchr(t.start, '@', t.length);
}

/* Where a client put the whole earlier message under the reply without
 * "> " marks: "-----Original Message-----" (and its Russian form), or an
 * Outlook header block ("From: …" then "Sent: …"), possibly under a line
 * of underscores. */
static bool mail_is_history_start(const mail_lines_t *lines, size_t i)
{
    mail_line_t line = mail_line_trim(lines->items[i]);
    if (line.length >= 3 && memcmp(line.start, "---", 3) == 0) {
        mail_line_t rest = line;
        while (rest.length > 0 &&
               (rest.start[0] == '-' || rest.start[0] == ' ')) {
            rest.start++;
            rest.length--;
        }
        if ((rest.length >= 16 &&
             g_ascii_strncasecmp(rest.start, "original message", 16) == 0) ||
            mail_line_starts(rest, "Исходное сообщение"))
            return true;
    }
    size_t next = i + 1;
    if (line.length >= 20 && strspn(line.start, "_") >= line.length) {
        while (next < lines->count && mail_line_blank(lines->items[next]))
            next++;
        return next < lines->count &&
               (mail_line_starts(lines->items[next], "From:") ||
                mail_line_starts(lines->items[next], "От:"));
    }
    if ((mail_line_starts(line, "From:") || mail_line_starts(line, "От:")) &&
        next < lines->count)
        return mail_line_starts(lines->items[next], "Sent:") ||
               mail_line_starts(lines->items[next], "Отправлено:") ||
               mail_line_starts(lines->items[next], "Date:") ||
               mail_line_starts(lines->items[next], "Дата:");
    return false;
}

/* Marks in `drop` the quoted history: "> " lines, the attribution line
 * above each quoted block (two lines when a client wrapped it), and
 * everything from an "Original Message" start on. */
static void mail_mark_history(const mail_lines_t *lines, bool *drop)
{
    size_t end = lines->count;
    for (size_t i = 0; i < lines->count; i++) {
        if (mail_is_history_start(lines, i)) {
            end = i;
            break;
        }
    }
    for (size_t i = end; i < lines->count; i++)
        drop[i] = true;
    for (size_t i = 0; i < end; i++) {
        const mail_line_t *line = &lines->items[i];
        if (line->length == 0 || line->start[0] != '>')
            continue;
        drop[i] = true;
        size_t above = i;
        while (above > 0 && mail_line_blank(lines->items[above - 1]))
            above--;
        if (above == 0 || drop[above - 1])
            continue;
        if (mail_is_attribution(lines->items[above - 1])) {
            drop[above - 1] = true;
            if (above >= 2 && !drop[above - 2] &&
                mail_line_starts(lines->items[above - 2], "On ") &&
                !mail_line_starts(lines->items[above - 1], "On "))
                drop[above - 2] = true;
        }
    }
}

/* Lines [from, to) not marked in `drop` (may be NULL), joined: no spaces
 * at line ends, no blank lines at either end, never two blank lines in a
 * row. "" when nothing is left; NULL when out of memory. */
static char *mail_join(const mail_lines_t *lines, size_t from, size_t to,
                       const bool *drop)
{
    mail_buf_t out = {0};
    bool blank = false;
    for (size_t i = from; i < to; i++) {
        if (drop != NULL && drop[i])
            continue;
        mail_line_t line = lines->items[i];
        while (line.length > 0 && (line.start[line.length - 1] == ' ' ||
                                   line.start[line.length - 1] == '\t'))
            line.length--;
        if (mail_line_blank(line)) {
            blank = out.length > 0;
            continue;
        }
        if (out.length > 0)
            buf_put(&out, blank ? "\n\n" : "\n", blank ? 2 : 1);
        blank = false;
        buf_put(&out, line.start, line.length);
    }
    return buf_take(&out);
}

/* Closing phrases that start a signature, lower case; a name may follow
 * on the same line ("С уважением, Иван"). */
static const char *const mail_regards[] = {
    "с уважением",      "с наилучшими пожеланиями",
    "всего доброго",    "всего наилучшего",
    "с почтением",      "best regards",
    "kind regards",     "warm regards",
    "regards",          "best wishes",
    "yours sincerely",  "sincerely",
    "yours faithfully",
};

/* Thanks that close a message when they stand alone on a line. */
static const char *const mail_thanks[] = {
    "заранее спасибо", "спасибо",   "благодарю",
    "many thanks",     "thank you", "thanks",
};

/* Words that may follow a thanks on its line. */
static const char *const mail_thanks_tails[] = {
    "заранее",
    "за внимание",
    "in advance",
};

static bool mail_is_punctuation(char c)
{
    return c == ' ' || c == ',' || c == '.' || c == '!' || c == ':' ||
           c == ';' || c == '-' || c == '\t';
}

/* True when `line` is a closing phrase from `phrases`; a regards line may
 * carry a short name after the phrase, a thanks line only punctuation or
 * one of mail_thanks_tails. */
static bool mail_is_closing(mail_line_t line, const char *const *phrases,
                            size_t count, bool regards)
{
    line = mail_line_trim(line);
    if (line.length == 0 || line.length > 160)
        return false;
    char *folded = g_utf8_casefold(line.start, (gssize)line.length);
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        size_t length = strlen(phrases[i]);
        if (strncmp(folded, phrases[i], length) != 0)
            continue;
        const char *rest = folded + length;
        if (*rest != '\0' && !mail_is_punctuation(*rest))
            continue; /* "спасибочки", "regardless" */
        while (mail_is_punctuation(*rest))
            rest++;
        size_t left = strlen(rest);
        while (left > 0 && mail_is_punctuation(rest[left - 1]))
            left--;
        if (regards) {
            found = left <= 60;
            continue;
        }
        found = left == 0;
        for (size_t t = 0; t < G_N_ELEMENTS(mail_thanks_tails) && !found; t++)
            found = left == strlen(mail_thanks_tails[t]) &&
                    memcmp(rest, mail_thanks_tails[t], left) == 0;
    }
    g_free(folded);
    return found;
}

/* Finds the signature: after the last "-- " line (RFC 3676; "--" too)
 * when what follows is short, else from the first closing phrase among
 * the last MAIL_CLOSING_WINDOW non-blank lines (regards before thanks).
 * Sets *body_end (the body is the lines before it) and *start (its first
 * line); false when there is none. */
static bool mail_find_signature(const mail_lines_t *lines, size_t *body_end,
                                size_t *start)
{
    for (size_t i = lines->count; i-- > 0;) {
        mail_line_t line = lines->items[i];
        if ((line.length == 3 && memcmp(line.start, "-- ", 3) == 0) ||
            (line.length == 2 && memcmp(line.start, "--", 2) == 0)) {
            size_t after = 0;
            for (size_t j = i + 1; j < lines->count; j++)
                after += !mail_line_blank(lines->items[j]);
            if (after > 0 && after <= MAIL_SIGNATURE_MAX_LINES) {
                *body_end = i;
                *start = i + 1;
                return true;
            }
            break;
        }
    }
    size_t regards = SIZE_MAX;
    size_t thanks = SIZE_MAX;
    size_t seen = 0;
    for (size_t i = lines->count; i-- > 0 && seen < MAIL_CLOSING_WINDOW;) {
        if (mail_line_blank(lines->items[i]))
            continue;
        seen++;
        if (mail_is_closing(lines->items[i], mail_regards,
                            G_N_ELEMENTS(mail_regards), true))
            regards = i;
        else if (mail_is_closing(lines->items[i], mail_thanks,
                                 G_N_ELEMENTS(mail_thanks), false))
            thanks = i;
    }
    size_t found = regards != SIZE_MAX ? regards : thanks;
    if (found == SIZE_MAX)
        return false;
    *body_end = found;
    *start = found;
    return true;
}

/* ---- phones -------------------------------------------------------- */

/* Labels after which a long number is a company or bank detail, not a
 * phone (matched inside the word just before the number). */
static const char *const mail_not_phone_labels[] = {
    "ИНН",   "инн",   "Инн",  "КПП", "ОГРН", "БИК",   "ОКПО", "ОКВЭД",
    "ОКАТО", "ОКТМО", "р/с",  "Р/с", "р/сч", "к/с",   "К/с",  "счет",
    "счёт",  "Счет",  "Счёт", "INN", "IBAN", "SWIFT", "№",
};

/* True when the word before position `at` in `text` (on the same line,
 * past spaces and ':') is one of mail_not_phone_labels. */
static bool mail_after_label(const char *text, size_t at)
{
    size_t end = at;
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == ':' ||
                       text[end - 1] == '.'))
        end--;
    size_t start = end;
    while (start > 0 && end - start < 32 && text[start - 1] != ' ' &&
           text[start - 1] != '\n' && text[start - 1] != '\t')
        start--;
    for (size_t i = 0; i < G_N_ELEMENTS(mail_not_phone_labels); i++)
        if (g_strstr_len(text + start, (gssize)(end - start),
                         mail_not_phone_labels[i]) != NULL)
            return true;
    return false;
}

/* True when the digits of `s` (n bytes) are only grouped by single spaces
 * into thousands ("1 500 000 000"): an amount of money, not a phone. */
static bool mail_is_amount(const char *s, size_t n)
{
    size_t group = 0;
    size_t groups = 0;
    for (size_t i = 0; i < n; i++) {
        if (g_ascii_isdigit(s[i])) {
            group++;
            continue;
        }
        if (s[i] != ' ')
            return false;
        if (groups > 0 && group != 3)
            return false;
        groups++;
        group = 0;
    }
    return groups > 0 && group == 3;
}

/* The digits of `s` (n bytes), up to `size` - 1 of them, NUL-terminated
 * in `out`; returns how many digits there are in all. */
static size_t mail_digits(const char *s, size_t n, char *out, size_t size)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isdigit(s[i]))
            continue;
        if (count + 1 < size)
            out[count] = s[i];
        count++;
    }
    out[count + 1 < size ? count : size - 1] = '\0';
    return count;
}

/* True when a number may start at `text[i]`: '+' or '(' before a digit,
 * or a digit, and not inside a word or right after a decimal point. */
static bool mail_phone_starts(const char *text, size_t i)
{
    char c = text[i];
    if (!g_ascii_isdigit(c) &&
        !((c == '+' || c == '(') && g_ascii_isdigit(text[i + 1])))
        return false;
    if (i == 0)
        return true;
    char before = text[i - 1];
    if (g_ascii_isalnum(before) || before == '+' || before == '/' ||
        before == '_' || before == '-')
        return false;
    return !(before == '.' && i >= 2 && g_ascii_isdigit(text[i - 2]));
}

/* Adds to `phones` (up to CV_MAIL_MAX_PHONES, each number once by its
 * digits) the phone numbers written in `text`: a run that starts with
 * '+', '(' or a digit and goes on with digits, '-', '(', ')' and single
 * spaces, up to its last digit, with 10 to 15 digits; not a bank or tax
 * detail (after "ИНН", "р/с"…), not an amount ("1 500 000 000"), not
 * glued to a word ("8912345678abc"). -1 when out of memory. */
static int mail_find_phones(const char *text, char **phones, size_t *count)
{
    size_t length = strlen(text);
    size_t i = 0;
    while (i < length && *count < CV_MAIL_MAX_PHONES) {
        if (!mail_phone_starts(text, i)) {
            i++;
            continue;
        }
        size_t end = i; /* after the last digit */
        size_t j = i;
        for (; j < length; j++) {
            char c = text[j];
            if (g_ascii_isdigit(c)) {
                end = j + 1;
            } else if (c == ' ') {
                char next = text[j + 1];
                if (!g_ascii_isdigit(next) && next != '(' && next != '-')
                    break;
            } else if (c != '-' && c != '(' && c != ')' &&
                       !(c == '+' && j == i)) {
                break;
            }
        }
        size_t from = i;
        if (text[from] == '(' && memchr(text + from, ')', end - from) == NULL)
            from++; /* "(8 912 345-67-89" inside a bracketed remark */
        char digits[16];
        size_t digit_count =
            mail_digits(text + from, end - from, digits, sizeof(digits));
        bool glued = end < length &&
                     (g_ascii_isalpha(text[end]) ||
                      (text[end] == '.' && g_ascii_isdigit(text[end + 1])));
        if (digit_count >= 10 && digit_count <= 15 && !glued &&
            !mail_after_label(text, i) &&
            !mail_is_amount(text + from, end - from)) {
            bool seen = false;
            for (size_t k = 0; k < *count && !seen; k++) {
                char other[16];
                mail_digits(phones[k], strlen(phones[k]), other, sizeof(other));
                seen = strcmp(digits, other) == 0;
            }
            if (!seen) {
                char *phone = strndup(text + from, end - from);
                if (phone == NULL)
                    return -1;
                phones[(*count)++] = phone;
            }
        }
        i = j > i ? j : i + 1;
    }
    return 0;
}

/* ---- company ------------------------------------------------------- */

/* Legal forms written before the name: ООО «Ромашка», ИП Иванов. */
static const char *const mail_forms_before[] = {
    "ООО", "ОАО", "ЗАО", "ПАО",  "НАО", "АО",  "ИП",  "ТОО",
    "ГК",  "НПО", "НПП", "ФГУП", "ГУП", "МУП", "JSC",
};

/* Legal forms written after the name: Acme Ltd. */
static const char *const mail_forms_after[] = {
    "LLC", "LLP", "Ltd", "Limited", "Inc", "GmbH", "Corp", "PLC",
};

/* Quotes around company names: opening and closing. */
static const char *const mail_quotes[][2] = {
    {"«", "»"}, {"“", "”"}, {"„", "“"}, {"\"", "\""}, {"'", "'"},
};

/* The index in mail_quotes of the opening quote at `s` (n bytes), or -1. */
static int mail_quote_at(const char *s, size_t n)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mail_quotes); i++) {
        size_t length = strlen(mail_quotes[i][0]);
        if (n >= length && memcmp(s, mail_quotes[i][0], length) == 0)
            return (int)i;
    }
    return -1;
}

/* The length of the quoted name opening at `s` (n bytes) up to and
 * including its closing quote («» may nest: «Компания «Ромашка»»); 0 when
 * `s` opens no quote or it is not closed. */
static size_t mail_quote_end(const char *s, size_t n)
{
    int kind = mail_quote_at(s, n);
    if (kind < 0)
        return 0;
    const char *open = mail_quotes[kind][0];
    const char *close = mail_quotes[kind][1];
    size_t open_length = strlen(open);
    size_t close_length = strlen(close);
    bool nests = strcmp(open, close) != 0;
    int depth = 1;
    size_t i = open_length;
    while (i < n) {
        if (n - i >= close_length && memcmp(s + i, close, close_length) == 0) {
            i += close_length;
            if (--depth == 0)
                return i;
        } else if (nests && n - i >= open_length &&
                   memcmp(s + i, open, open_length) == 0) {
            i += open_length;
            depth++;
        } else {
            i++;
        }
    }
    return 0;
}

/* True when `word` stands at `at` in `s` (n bytes) as a word of its own:
 * nothing letter-like right before it, and after it the end, an ASCII
 * non-letter or an opening quote. */
static bool mail_word_at(const char *s, size_t n, size_t at, const char *word)
{
    size_t length = strlen(word);
    if (n - at < length || memcmp(s + at, word, length) != 0)
        return false;
    if (at > 0) {
        unsigned char before = (unsigned char)s[at - 1];
        if (before >= 0x80 || g_ascii_isalnum(before) || before == '-')
            return false;
    }
    size_t after = at + length;
    if (after == n)
        return true;
    unsigned char next = (unsigned char)s[after];
    if (next < 0x80)
        return !g_ascii_isalnum(next) && next != '-';
    return mail_quote_at(s + after, n - after) >= 0;
}

static bool mail_is_separator(char c)
{
    return c == ',' || c == ';' || c == '|' || c == '\t' || c == '/';
}

/* The company name on one signature line, or an empty range: a legal
 * form with the name after it ("ООО «СтройИнвест»", "ИП Иванов И.И.") or
 * before it ("Acme Trading Ltd"), cut at ',', ';', '|' or '/'. */
static mail_line_t mail_company_on_line(mail_line_t line)
{
    const char *s = line.start;
    size_t n = line.length;
    for (size_t at = 0; at < n; at++) {
        const char *form = NULL;
        bool before = false; /* the form comes before the name */
        for (size_t f = 0; f < G_N_ELEMENTS(mail_forms_before) && !form; f++)
            if (mail_word_at(s, n, at, mail_forms_before[f])) {
                form = mail_forms_before[f];
                before = true;
            }
        for (size_t f = 0; f < G_N_ELEMENTS(mail_forms_after) && !form; f++)
            if (mail_word_at(s, n, at, mail_forms_after[f]))
                form = mail_forms_after[f];
        if (form == NULL)
            continue;
        size_t end = at + strlen(form);
        if (!before && end < n && s[end] == '.')
            end++; /* "Ltd.", "Inc." */
        size_t name = end;
        while (name < n && s[name] == ' ')
            name++;
        size_t quoted = name < n ? mail_quote_end(s + name, n - name) : 0;
        if (quoted > 0) /* ООО «Ромашка», LLC "Romashka" */
            return (mail_line_t){s + at, name + quoted - at};
        if (before) {
            while (end < n && !mail_is_separator(s[end]))
                end++;
            return mail_line_trim((mail_line_t){s + at, end - at});
        }
        size_t start = at;
        while (start > 0 && !mail_is_separator(s[start - 1]))
            start--;
        return mail_line_trim((mail_line_t){s + start, end - start});
    }
    /* no legal form: a name in «» is still a company */
    const char *open = g_strstr_len(s, (gssize)n, "«");
    if (open != NULL) {
        size_t quoted = mail_quote_end(open, n - (size_t)(open - s));
        if (quoted > 0)
            return (mail_line_t){open, quoted};
    }
    return (mail_line_t){s, 0};
}

/* The company named in a signature: the first line with a legal form,
 * else the first name in «». NULL when there is none (or out of memory,
 * which costs nothing but the guess). */
static char *mail_find_company(const mail_lines_t *lines)
{
    mail_line_t quoted = {NULL, 0};
    for (size_t i = 0; i < lines->count; i++) {
        mail_line_t company = mail_company_on_line(lines->items[i]);
        while (company.length > 0 &&
               (company.start[company.length - 1] == ',' ||
                company.start[company.length - 1] == ';' ||
                company.start[company.length - 1] == ':'))
            company.length--;
        if (company.length == 0 || company.length > MAIL_COMPANY_MAX)
            continue;
        bool only_quotes = strncmp(company.start, "«", strlen("«")) == 0;
        if (!only_quotes)
            return strndup(company.start, company.length);
        if (quoted.length == 0)
            quoted = company;
    }
    return quoted.length > 0 ? strndup(quoted.start, quoted.length) : NULL;
}

/* ---- the MIME tree ------------------------------------------------- */

static bool mail_part_is(GMimeObject *object, const char *type,
                         const char *subtype)
{
    GMimeContentType *content_type = g_mime_object_get_content_type(object);
    return content_type != NULL &&
           g_mime_content_type_is_type(content_type, type, subtype);
}

/* A part that can be the body: text/plain or text/html, not an
 * attachment (by disposition or by having a file name). */
static bool mail_is_text_body(GMimeObject *object)
{
    if (!GMIME_IS_PART(object))
        return false;
    if (!mail_part_is(object, "text", "plain") &&
        !mail_part_is(object, "text", "html"))
        return false;
    GMimePart *part = GMIME_PART(object);
    return !g_mime_part_is_attachment(part) &&
           g_mime_part_get_filename(part) == NULL;
}

/* Parts that belong to the message's structure, not files it carries:
 * signatures and the machine-readable halves of reports. */
static bool mail_is_machinery(GMimeObject *object)
{
    return mail_part_is(object, "application", "pgp-signature") ||
           mail_part_is(object, "application", "pkcs7-signature") ||
           mail_part_is(object, "application", "x-pkcs7-signature") ||
           mail_part_is(object, "message", "delivery-status") ||
           mail_part_is(object, "message", "disposition-notification") ||
           mail_part_is(object, "message", "feedback-report") ||
           mail_part_is(object, "text", "rfc822-headers");
}

/* The part to read the body from: in multipart/alternative the preferred
 * kind (text/html when `prefer_html`, else text/plain) or else the other,
 * in other multiparts the first one found, depth first. Attached messages
 * (message/rfc822) and encrypted parts are not looked into, nor anything
 * deeper than CV_MAIL_MAX_DEPTH. */
static GMimeObject *mail_find_body(GMimeObject *object, int depth,
                                   bool prefer_html)
{
    if (depth > CV_MAIL_MAX_DEPTH)
        return NULL;
    if (mail_is_text_body(object))
        return object;
    if (!GMIME_IS_MULTIPART(object) || GMIME_IS_MULTIPART_ENCRYPTED(object))
        return NULL;
    GMimeMultipart *multipart = GMIME_MULTIPART(object);
    bool alternative = mail_part_is(object, "multipart", "alternative");
    GMimeObject *other = NULL;
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; i++) {
        GMimeObject *found = mail_find_body(
            g_mime_multipart_get_part(multipart, i), depth + 1, prefer_html);
        if (found == NULL)
            continue;
        if (!alternative || mail_part_is(found, "text", "html") == prefer_html)
            return found;
        if (other == NULL)
            other = found;
    }
    return other;
}

/* Parts that are neither a text body nor structure: files, images,
 * attached messages (one each, not looked into). */
static size_t mail_count_attachments(GMimeObject *object, int depth)
{
    if (depth > CV_MAIL_MAX_DEPTH)
        return 0;
    if (GMIME_IS_MULTIPART(object)) {
        GMimeMultipart *multipart = GMIME_MULTIPART(object);
        size_t total = 0;
        int count = g_mime_multipart_get_count(multipart);
        for (int i = 0; i < count; i++)
            total += mail_count_attachments(
                g_mime_multipart_get_part(multipart, i), depth + 1);
        return total;
    }
    if (mail_is_text_body(object) || mail_is_machinery(object))
        return 0;
    return GMIME_IS_PART(object) || GMIME_IS_MESSAGE_PART(object) ? 1 : 0;
}

/* The text of a body part as clean UTF-8: transfer encoding undone,
 * converted from its charset, HTML made text, format=flowed joined; ""
 * for no part. NULL when out of memory. */
static char *mail_part_text(GMimeObject *object)
{
    if (object == NULL)
        return strdup("");
    GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(object));
    if (content == NULL)
        return strdup("");
    GMimeStream *stream = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(content, stream);
    GByteArray *bytes =
        g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    const char *charset =
        g_mime_object_get_content_type_parameter(object, "charset");
    char *text =
        bytes != NULL && bytes->len > 0
            ? mail_decode_text((const char *)bytes->data, bytes->len, charset)
            : strdup("");
    g_object_unref(stream);
    if (text == NULL)
        return NULL;
    char *result = text;
    if (mail_part_is(object, "text", "html")) {
        result = mail_html_to_text(text);
        free(text);
    } else {
        const char *format =
            g_mime_object_get_content_type_parameter(object, "format");
        const char *delsp =
            g_mime_object_get_content_type_parameter(object, "delsp");
        if (format != NULL && g_ascii_strcasecmp(format, "flowed") == 0) {
            result = mail_unflow(
                text, delsp != NULL && g_ascii_strcasecmp(delsp, "yes") == 0);
            free(text);
        }
    }
    return result;
}

static bool mail_blank(const char *text)
{
    for (const char *p = text; *p != '\0'; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n')
            return false;
    return true;
}

/* ---- auto-replies and bounces -------------------------------------- */

/* True when the header value's first token (before ';', ',' or space) is
 * `word`, ignoring case. */
static bool mail_token_is(const char *value, const char *word)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t length = strcspn(value, " \t;,");
    return length == strlen(word) &&
           g_ascii_strncasecmp(value, word, length) == 0;
}

/* Subject beginnings of automatic replies, lower case. */
static const char *const mail_auto_subjects[] = {
    "out of office",     "автоматический ответ", "automatic reply", "autoreply",
    "auto-reply",        "auto reply",           "auto:",           "автоответ",
    "abwesenheitsnotiz", "réponse automatique",
};

/* Subject words of delivery failure reports, lower case. */
static const char *const mail_bounce_subjects[] = {
    "undelivered",
    "undeliverable",
    "delivery status notification",
    "не доставлено",
    "недоставлен",
    "delivery failure",
    "mail delivery failed",
    "returned mail",
    "failure notice",
    "could not be delivered",
    "не может быть доставлено",
};

/* True when `folded` (a case-folded subject) starts with one of the
 * auto-reply beginnings as a whole word ("Автоответчик" is a product). */
static bool mail_subject_is_auto(const char *folded)
{
    while (*folded == ' ' || *folded == '[')
        folded++;
    for (size_t i = 0; i < G_N_ELEMENTS(mail_auto_subjects); i++) {
        size_t length = strlen(mail_auto_subjects[i]);
        if (strncmp(folded, mail_auto_subjects[i], length) != 0)
            continue;
        unsigned char next = (unsigned char)folded[length];
        if (next < 0x80 && !g_ascii_isalnum(next))
            return true;
    }
    return false;
}

static bool mail_subject_is_bounce(const char *folded)
{
    for (size_t i = 0; i < G_N_ELEMENTS(mail_bounce_subjects); i++)
        if (strstr(folded, mail_bounce_subjects[i]) != NULL)
            return true;
    return false;
}

/* Headers that mark a message sent by a program, present with any value
 * but "no". */
static const char *const mail_auto_headers[] = {
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Autogenerated",
};

/* Sets mail->auto_reply and mail->bounce from the headers, the top-level
 * content type, the sender and the subject. */
static void mail_classify(cv_mail_t *mail, GMimeMessage *message)
{
    GMimeObject *object = GMIME_OBJECT(message);
    for (size_t i = 0; i < G_N_ELEMENTS(mail_auto_headers); i++) {
        const char *value =
            g_mime_object_get_header(object, mail_auto_headers[i]);
        if (value != NULL && !mail_token_is(value, "no"))
            mail->auto_reply = true;
    }
    const char *precedence = g_mime_object_get_header(object, "Precedence");
    if (precedence != NULL && (mail_token_is(precedence, "auto_reply") ||
                               mail_token_is(precedence, "bulk") ||
                               mail_token_is(precedence, "junk")))
        mail->auto_reply = true;

    GMimeObject *top = g_mime_message_get_mime_part(message);
    if (top != NULL && mail_part_is(top, "multipart", "report")) {
        const char *type =
            g_mime_object_get_content_type_parameter(top, "report-type");
        if (type != NULL && g_ascii_strcasecmp(type, "delivery-status") == 0)
            mail->bounce = true;
        else if (type != NULL &&
                 g_ascii_strcasecmp(type, "disposition-notification") == 0)
            mail->auto_reply = true; /* a read receipt */
    }

    char *subject = g_utf8_casefold(mail->subject, -1);
    if (mail_subject_is_auto(subject))
        mail->auto_reply = true;
    bool failure = mail_subject_is_bounce(subject);
    g_free(subject);

    const char *address = mail->from_address != NULL ? mail->from_address : "";
    size_t local = strcspn(address, "@");
    if (local == strlen("mailer-daemon") &&
        g_ascii_strncasecmp(address, "mailer-daemon", local) == 0)
        mail->bounce = true;
    if (failure && local == strlen("postmaster") &&
        g_ascii_strncasecmp(address, "postmaster", local) == 0)
        mail->bounce = true;
    const char *return_path = g_mime_object_get_header(object, "Return-Path");
    if (failure && return_path != NULL) {
        char *path = mail_clean_line(return_path);
        if (path != NULL && strcmp(path, "<>") == 0)
            mail->bounce = true;
        free(path);
    }

    if (mail->bounce)
        mail->not_a_lead_reason = "bounce";
    else if (mail->auto_reply)
        mail->not_a_lead_reason = "auto_reply";
}

/* ---- putting it together ------------------------------------------- */

/* The first mailbox of an address list, looking into groups; NULL when
 * there is none with an address. */
static InternetAddressMailbox *mail_first_mailbox(InternetAddressList *list,
                                                  int depth)
{
    if (list == NULL || depth > 2)
        return NULL;
    int count = internet_address_list_length(list);
    for (int i = 0; i < count; i++) {
        InternetAddress *address = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(address)) {
            InternetAddressMailbox *mailbox = INTERNET_ADDRESS_MAILBOX(address);
            const char *addr = internet_address_mailbox_get_addr(mailbox);
            if (addr != NULL && addr[0] != '\0')
                return mailbox;
        } else if (INTERNET_ADDRESS_IS_GROUP(address)) {
            InternetAddressMailbox *member =
                mail_first_mailbox(internet_address_group_get_members(
                                       INTERNET_ADDRESS_GROUP(address)),
                                   depth + 1);
            if (member != NULL)
                return member;
        }
    }
    return NULL;
}

/* A header text as one clean line; NULL for no text or an empty one. Sets
 * *failed when out of memory. */
static char *mail_header_line(const char *value, bool *failed)
{
    if (value == NULL)
        return NULL;
    char *line = mail_clean_line(value);
    if (line == NULL) {
        *failed = true;
        return NULL;
    }
    if (line[0] == '\0') {
        free(line);
        return NULL;
    }
    return line;
}

/* Fills the header fields. Returns NULL or the reason for failing. */
static const char *mail_read_headers(cv_mail_t *mail, GMimeMessage *message)
{
    bool failed = false;
    mail->message_id =
        mail_header_line(g_mime_message_get_message_id(message), &failed);
    InternetAddressMailbox *from =
        mail_first_mailbox(g_mime_message_get_from(message), 0);
    if (from != NULL) {
        mail->from_name = mail_header_line(
            internet_address_get_name(INTERNET_ADDRESS(from)), &failed);
        mail->from_address =
            mail_header_line(internet_address_mailbox_get_addr(from), &failed);
    }
    InternetAddressMailbox *reply_to =
        mail_first_mailbox(g_mime_message_get_reply_to(message), 0);
    if (reply_to != NULL)
        mail->reply_to = mail_header_line(
            internet_address_mailbox_get_addr(reply_to), &failed);
    const char *subject = g_mime_message_get_subject(message);
    mail->subject = mail_clean_line(subject != NULL ? subject : "");
    if (mail->subject == NULL)
        failed = true;
    return failed ? "out of memory" : NULL;
}

/* Fills text, signature, phones, company and attachments. Returns NULL
 * or the reason for failing. */
static const char *mail_read_body(cv_mail_t *mail, GMimeMessage *message)
{
    const char *problem = "out of memory";
    char *text = NULL;
    char *kept = NULL;
    bool *drop = NULL;
    mail_lines_t lines = {0};
    mail_lines_t kept_lines = {0};
    mail_lines_t signature_lines = {0};

    GMimeObject *top = g_mime_message_get_mime_part(message);
    GMimeObject *body = top != NULL ? mail_find_body(top, 0, false) : NULL;
    text = mail_part_text(body);
    if (text == NULL)
        goto out;
    if (mail_blank(text) && top != NULL) {
        /* an empty text/plain beside a full HTML version */
        GMimeObject *html = mail_find_body(top, 0, true);
        if (html != NULL && html != body) {
            free(text);
            text = mail_part_text(html);
            if (text == NULL)
                goto out;
        }
    }
    mail->attachments = top != NULL ? mail_count_attachments(top, 0) : 0;

    if (mail_lines_split(text, &lines) != 0)
        goto out;
    drop = calloc(lines.count, sizeof(*drop));
    if (drop == NULL)
        goto out;
    mail_mark_history(&lines, drop);
    kept = mail_join(&lines, 0, lines.count, drop);
    if (kept == NULL || mail_lines_split(kept, &kept_lines) != 0)
        goto out;

    size_t body_end = kept_lines.count;
    size_t signature_start = kept_lines.count;
    if (mail_find_signature(&kept_lines, &body_end, &signature_start)) {
        mail->signature =
            mail_join(&kept_lines, signature_start, kept_lines.count, NULL);
        if (mail->signature == NULL)
            goto out;
        if (mail->signature[0] == '\0') {
            free(mail->signature);
            mail->signature = NULL;
        }
    }
    mail->text = mail_join(&kept_lines, 0, body_end, NULL);
    if (mail->text == NULL)
        goto out;

    size_t phone_count = 0;
    mail->phones = calloc(CV_MAIL_MAX_PHONES + 1, sizeof(*mail->phones));
    if (mail->phones == NULL)
        goto out;
    if (mail->signature != NULL &&
        mail_find_phones(mail->signature, mail->phones, &phone_count) != 0)
        goto out;
    if (phone_count == 0 &&
        mail_find_phones(mail->text, mail->phones, &phone_count) != 0)
        goto out;

    if (mail->signature != NULL) {
        if (mail_lines_split(mail->signature, &signature_lines) != 0)
            goto out;
        mail->company = mail_find_company(&signature_lines);
    }
    problem = NULL;
out:
    mail_lines_free(&signature_lines);
    mail_lines_free(&kept_lines);
    mail_lines_free(&lines);
    free(drop);
    free(kept);
    free(text);
    return problem;
}

static void mail_set_error(char *error, size_t error_size, const char *text)
{
    if (error != NULL && error_size > 0)
        snprintf(error, error_size, "%s", text);
}

cv_mail_t *cv_mail_parse(const char *raw, size_t size, char *error,
                         size_t error_size)
{
    const char *problem = NULL;
    cv_mail_t *mail = NULL;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *message = NULL;

    if (raw == NULL || size == 0) {
        problem = "empty message";
        goto out;
    }
    if (size > MAIL_MAX_SIZE) {
        problem = "message too large";
        goto out;
    }
    pthread_once(&mail_once, mail_init);
    if (mail_options == NULL) {
        problem = "out of memory";
        goto out;
    }
    stream = g_mime_stream_mem_new_with_buffer(raw, size);
    parser = g_mime_parser_new_with_stream(stream);
    message = g_mime_parser_construct_message(parser, mail_options);
    if (message == NULL) {
        problem = "not a mail message";
        goto out;
    }
    mail = calloc(1, sizeof(*mail));
    if (mail == NULL) {
        problem = "out of memory";
        goto out;
    }
    problem = mail_read_headers(mail, message);
    if (problem != NULL)
        goto out;
    mail_classify(mail, message);
    bool has_address =
        mail->from_address != NULL && strchr(mail->from_address, '@') != NULL;
    if (!has_address && mail->not_a_lead_reason == NULL) {
        problem = "no From address";
        goto out;
    }
    if (mail->from_address == NULL) {
        mail->from_address = strdup("");
        if (mail->from_address == NULL) {
            problem = "out of memory";
            goto out;
        }
    }
    problem = mail_read_body(mail, message);
out:
    if (problem != NULL) {
        cv_mail_destroy(&mail);
        mail_set_error(error, error_size, problem);
    } else {
        mail_set_error(error, error_size, "");
    }
    if (message != NULL)
        g_object_unref(message);
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream);
    return mail;
}

void cv_mail_destroy(cv_mail_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_mail_t *self = *self_p;
    free(self->message_id);
    free(self->from_name);
    free(self->from_address);
    free(self->reply_to);
    free(self->subject);
    free(self->text);
    free(self->signature);
    if (self->phones != NULL)
        for (char **phone = self->phones; *phone != NULL; phone++)
            free(*phone);
    free(self->phones);
    free(self->company);
    free(self);
    *self_p = NULL;
}

/* cv_utf8: strict UTF-8 checks for text that arrives from outside. */
#include "cv_utf8.h"

#include <stdint.h>

/* The length (1..4) of the valid character at `s`, of at most `n` bytes
 * available, or 0 when the bytes there are not one. The ranges are those
 * of Table 3-7 in the Unicode standard, which rules out overlong forms,
 * surrogates and code points above U+10FFFF. */
static size_t cv_utf8_char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0x01 && c <= 0x7F)
        return 1;
    size_t len = 0;
    unsigned char lo = 0x80; /* the allowed range of the second byte */
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c == 0xE0) {
        len = 3;
        lo = 0xA0;
    } else if (c == 0xED) {
        len = 3;
        hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
        len = 3;
    } else if (c == 0xF0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        len = 4;
    } else if (c == 0xF4) {
        len = 4;
        hi = 0x8F;
    } else {
        return 0; /* NUL, a continuation byte, C0, C1 or F5..FF */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

bool cv_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t at = 0;
    while (at < n) {
        /* plain ASCII, the bulk of most texts, eight bytes at a time */
        while (n - at >= 8) {
            uint64_t word = 0;
            for (size_t i = 0; i < 8; i++)
                word |= (uint64_t)p[at + i] << (8 * i);
            /* a byte >= 0x80, or a zero byte, ends the fast path */
            uint64_t high = word & 0x8080808080808080ULL;
            uint64_t zero =
                (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL;
            if (high != 0 || zero != 0)
                break;
            at += 8;
        }
        if (at >= n)
            break;
        size_t len = cv_utf8_char_len(p + at, n - at);
        if (len == 0)
            return false;
        at += len;
    }
    return true;
}

size_t cv_utf8_encode(unsigned long cp, char out[4])
{
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Each hex digit's value plus one, 0 for every other byte: a look-up
 * instead of three range tests, since JSON's \u escapes are read twice per
 * string on intake's fast path (checked, then decoded). */
static const unsigned char cv_utf8_hex_table[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
    ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int cv_utf8_hex_value(char c)
{
    return cv_utf8_hex_table[(unsigned char)c] - 1;
}

int cv_utf8_hex4(const char *s, size_t n)
{
    if (n < 4)
        return -1;
    /* each digit is tested before the next byte is read, so a NUL ends
     * the read; the table's values are one over the digits' (0x1111) */
    const unsigned char *p = (const unsigned char *)s;
    int d0 = cv_utf8_hex_table[p[0]];
    if (d0 == 0)
        return -1;
    int d1 = cv_utf8_hex_table[p[1]];
    if (d1 == 0)
        return -1;
    int d2 = cv_utf8_hex_table[p[2]];
    if (d2 == 0)
        return -1;
    int d3 = cv_utf8_hex_table[p[3]];
    if (d3 == 0)
        return -1;
    return (d0 << 12) + (d1 << 8) + (d2 << 4) + d3 - 0x1111;
}

size_t cv_utf8_prefix(const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t at = 0;
    if (n > max)
        n = max;
    while (at < n) {
        size_t len = cv_utf8_char_len(p + at, n - at);
        if (len == 0)
            break;
        at += len;
    }
    return at;
}

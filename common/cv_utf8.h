/* cv_utf8: strict UTF-8 checks for text that arrives from outside.
 *
 * "Strict" is the Unicode definition (Table 3-7 of the standard): no
 * overlong forms, no UTF-16 surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences. On top of that a NUL byte is refused,
 * because every text in the conveyor ends up as a C string. Nothing here
 * allocates; all functions take a length and never read past it. */
#ifndef CV_UTF8_H
#define CV_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the `n` bytes at `s` are strict UTF-8 without NUL bytes.
 * An empty text (n == 0) is valid; s may be NULL only when n is 0. */
bool cv_utf8_valid(const char *s, size_t n);

/* The length of the longest prefix of the `n` bytes at `s` that is at most
 * `max` bytes long, is valid as cv_utf8_valid says, and ends on a character
 * boundary. It stops at the first invalid byte, so for a valid text it is
 * where to cut the text to fit `max` bytes without splitting a character. */
size_t cv_utf8_prefix(const char *s, size_t n, size_t max);

/* Writes code point `cp` as UTF-8 into `out` and returns its length (1 to
 * 4); 0, writing nothing, for a UTF-16 surrogate (U+D800..U+DFFF) or
 * anything above U+10FFFF. For decoders of escapes (\u, RFC 2047). */
size_t cv_utf8_encode(unsigned long cp, char out[4]);

/* The value of hex digit `c` (0-9, a-f, A-F), or -1: for decoders of
 * escapes (JSON's \u and four hex digits, URL encoding's % and two). */
int cv_utf8_hex_value(char c);

/* The code unit (0..0xFFFF) the four hex digits at `s` spell, as after
 * JSON's \u; -1 when fewer than four bytes are left (n < 4) or one of the
 * four is not a hex digit. The digits are read in order and the first
 * that is not hex stops the read, so a NUL-terminated text may pass n = 4:
 * its NUL stops it. */
int cv_utf8_hex4(const char *s, size_t n);

#endif

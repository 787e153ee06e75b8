/* cv_utf8: which byte sequences count as text, and where a long text may
 * be cut. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cv_utf8.h"

static bool valid(const char *s)
{
    return cv_utf8_valid(s, strlen(s));
}

static void test_real_texts_are_valid(void **state)
{
    (void)state;
    assert_true(valid(""));
    assert_true(valid("Hello, world"));
    assert_true(valid("Иван Петров, ООО «Ромашка»")); /* 2 bytes */
    assert_true(valid("Preis: 100 € – sofort"));      /* 3 bytes */
    assert_true(valid("株式会社"));                   /* CJK */
    assert_true(valid("Спасибо \xF0\x9F\x98\x80"));   /* emoji, 4 */
    /* the edges of each range */
    assert_true(valid("\x7F"));
    assert_true(valid("\xC2\x80"));
    assert_true(valid("\xDF\xBF"));
    assert_true(valid("\xE0\xA0\x80"));
    assert_true(valid("\xED\x9F\xBF"));     /* U+D7FF */
    assert_true(valid("\xEE\x80\x80"));     /* U+E000 */
    assert_true(valid("\xEF\xBF\xBF"));     /* U+FFFF */
    assert_true(valid("\xF0\x90\x80\x80")); /* U+10000 */
    assert_true(valid("\xF4\x8F\xBF\xBF")); /* U+10FFFF */
    /* long ASCII runs go through the fast path, with a tail */
    assert_true(valid("The quick brown fox jumps over the lazy dog. "
                      "Съешь ещё этих мягких французских булок."));
}

static void test_legacy_encodings_are_refused(void **state)
{
    (void)state;
    /* "Иван" in windows-1251 and in KOI8-R */
    assert_false(valid("\xC8\xE2\xE0\xED"));
    assert_false(valid("\xE9\xD7\xC1\xCE"));
    /* Latin-1 "café" */
    assert_false(valid("caf\xE9"));
}

static void test_malformed_sequences_are_refused(void **state)
{
    (void)state;
    assert_false(valid("\xC0\xAF"));         /* overlong '/' */
    assert_false(valid("\xC1\xBF"));         /* overlong */
    assert_false(valid("\xE0\x80\xAF"));     /* overlong, 3 bytes */
    assert_false(valid("\xF0\x80\x80\xAF")); /* overlong, 4 bytes */
    assert_false(valid("\xED\xA0\x80"));     /* surrogate U+D800 */
    assert_false(valid("\xED\xBF\xBF"));     /* surrogate U+DFFF */
    assert_false(valid("\xF4\x90\x80\x80")); /* U+110000 */
    assert_false(valid("\xF5\x80\x80\x80"));
    assert_false(valid("\xFF"));
    assert_false(valid("\x80"));     /* lone continuation */
    assert_false(valid("\xD0"));     /* cut after one byte */
    assert_false(valid("\xE2\x82")); /* cut "€" */
    assert_false(valid("\xD0\x41")); /* second byte not 10xxxxxx */
    /* a bad byte after a long ASCII run is still found */
    assert_false(valid("abcdefghijklmnopqrstuvwxyz\xC8"));
}

static void test_nul_bytes_are_refused(void **state)
{
    (void)state;
    assert_false(cv_utf8_valid("ab\0cd", 5));
    assert_false(cv_utf8_valid("0123456789\0abcdef", 17)); /* fast path */
    assert_true(cv_utf8_valid("ab\0cd", 2)); /* only n bytes count */
    assert_true(cv_utf8_valid(NULL, 0));
}

static void test_prefix_cuts_whole_characters(void **state)
{
    (void)state;
    const char *name = "Иван"; /* 8 bytes, 2 per letter */
    assert_int_equal(cv_utf8_prefix(name, 8, 100), 8);
    assert_int_equal(cv_utf8_prefix(name, 8, 8), 8);
    assert_int_equal(cv_utf8_prefix(name, 8, 7), 6); /* not mid-"н" */
    assert_int_equal(cv_utf8_prefix(name, 8, 1), 0);
    assert_int_equal(cv_utf8_prefix("ab€", 5, 4), 2);
    assert_int_equal(cv_utf8_prefix("ab€", 5, 5), 5);
    /* stops at the first invalid byte */
    assert_int_equal(cv_utf8_prefix("ab\xC8\xE2", 4, 10), 2);
    assert_int_equal(cv_utf8_prefix("ab\0c", 4, 10), 2);
    assert_int_equal(cv_utf8_prefix("", 0, 10), 0);
}

/* Code points become the bytes cv_utf8_valid accepts, at every length
 * boundary; what UTF-8 cannot carry is refused. */
static void test_code_points_encode(void **state)
{
    (void)state;
    static const struct {
        unsigned long cp;
        const char *bytes;
    } cases[] = {
        {0x41, "A"},                 {0x7F, "\x7F"},
        {0x80, "\xC2\x80"},          {0x416, "\xD0\x96"}, /* Ж */
        {0x7FF, "\xDF\xBF"},         {0x800, "\xE0\xA0\x80"},
        {0x20BD, "\xE2\x82\xBD"},    /* ₽ */
        {0xFFFD, "\xEF\xBF\xBD"},    {0xFFFF, "\xEF\xBF\xBF"},
        {0x10000, "\xF0\x90\x80\x80"}, {0x1F600, "\xF0\x9F\x98\x80"},
        {0x10FFFF, "\xF4\x8F\xBF\xBF"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[4];
        size_t n = cv_utf8_encode(cases[i].cp, out);
        assert_int_equal(n, strlen(cases[i].bytes));
        assert_memory_equal(out, cases[i].bytes, n);
        assert_true(cv_utf8_valid(out, n));
    }
    char out[4] = {'x', 'x', 'x', 'x'};
    assert_int_equal(cv_utf8_encode(0xD800, out), 0); /* half a pair */
    assert_int_equal(cv_utf8_encode(0xDFFF, out), 0);
    assert_int_equal(cv_utf8_encode(0x110000, out), 0);
    assert_int_equal(out[0], 'x'); /* nothing written */
}

static void test_hex_digits(void **state)
{
    (void)state;
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(cv_utf8_hex_value(digits[i]), i);
        assert_int_equal(cv_utf8_hex_value((char)toupper(digits[i])), i);
    }
    assert_int_equal(cv_utf8_hex_value('g'), -1);
    assert_int_equal(cv_utf8_hex_value('G'), -1);
    assert_int_equal(cv_utf8_hex_value('%'), -1);
    assert_int_equal(cv_utf8_hex_value('\0'), -1);
}

/* The digits after JSON's \u, as PHP's json_encode and Python's
 * json.dumps write them ("\u0418\u0432\u0430\u043d" is "Иван"). */
static void test_hex4_reads_json_escapes(void **state)
{
    (void)state;
    assert_int_equal(cv_utf8_hex4("0418", 4), 0x0418); /* И */
    assert_int_equal(cv_utf8_hex4("043d", 4), 0x043D); /* н, lower case */
    assert_int_equal(cv_utf8_hex4("043D", 4), 0x043D); /* upper case */
    assert_int_equal(cv_utf8_hex4("00e9", 4), 0x00E9); /* é */
    assert_int_equal(cv_utf8_hex4("0000", 4), 0);      /* NUL */
    assert_int_equal(cv_utf8_hex4("ffff", 4), 0xFFFF); /* the largest */
    assert_int_equal(cv_utf8_hex4("d83d", 4), 0xD83D); /* half of 😀 */
    assert_int_equal(cv_utf8_hex4("dE00", 4), 0xDE00); /* mixed case */
    /* only four digits are read: "\u00e9t\u00e9" goes on after them */
    assert_int_equal(cv_utf8_hex4("00e9t", 5), 0x00E9);
    assert_int_equal(cv_utf8_hex4("12345", 5), 0x1234);

    /* every digit in every position, in both cases */
    const char *digits = "0123456789abcdef";
    for (int pos = 0; pos < 4; pos++) {
        for (int d = 0; d < 16; d++) {
            char text[5] = "0000";
            text[pos] = digits[d];
            int want = d << (4 * (3 - pos));
            assert_int_equal(cv_utf8_hex4(text, 4), want);
            text[pos] = (char)toupper(digits[d]);
            assert_int_equal(cv_utf8_hex4(text, 4), want);
        }
    }
}

static void test_hex4_refuses_bad_and_short_escapes(void **state)
{
    (void)state;
    /* a bad digit in each position: a typo, a letter past f, JSON's end */
    const char bad[] = {'g', 'G', 'x', ' ', '"', '\\', '-', '\0'};
    for (int pos = 0; pos < 4; pos++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            char text[5] = "0418";
            text[pos] = bad[b];
            assert_int_equal(cv_utf8_hex4(text, 4), -1);
        }
    }
    /* fewer than four bytes left: "\u04" at the end of a body */
    assert_int_equal(cv_utf8_hex4("0418", 3), -1);
    assert_int_equal(cv_utf8_hex4("04", 2), -1);
    assert_int_equal(cv_utf8_hex4("", 0), -1);
    assert_int_equal(cv_utf8_hex4(NULL, 0), -1);
    /* a NUL-terminated text cut short: its NUL stops the read */
    assert_int_equal(cv_utf8_hex4("04", 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_texts_are_valid),
        cmocka_unit_test(test_legacy_encodings_are_refused),
        cmocka_unit_test(test_malformed_sequences_are_refused),
        cmocka_unit_test(test_nul_bytes_are_refused),
        cmocka_unit_test(test_prefix_cuts_whole_characters),
        cmocka_unit_test(test_code_points_encode),
        cmocka_unit_test(test_hex_digits),
        cmocka_unit_test(test_hex4_reads_json_escapes),
        cmocka_unit_test(test_hex4_refuses_bad_and_short_escapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_html: untrusted text can neither open markup nor break UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cv_html.h"

/* Escapes `text` with a buffer and returns a copy of the document. */
static char *escaped(const char *text)
{
    cv_html_t *html = cv_html_new();
    assert_non_null(html);
    cv_html_text(html, text);
    char *document = cv_html_take(html);
    cv_html_destroy(&html);
    assert_non_null(document);
    return document;
}

static void test_markup_characters_become_entities(void **state)
{
    (void)state;
    char *out = escaped("<script>alert(\"x\" & 'y')</script>");
    assert_string_equal(out, "&lt;script&gt;alert(&quot;x&quot; &amp; "
                             "&#39;y&#39;)&lt;/script&gt;");
    free(out);
}

static void test_valid_utf8_passes_unchanged(void **state)
{
    (void)state;
    /* Cyrillic, a CJK character and an emoji (4 bytes) */
    const char *text = "ООО «Ромашка» 株 \xF0\x9F\x98\x80";
    char *out = escaped(text);
    assert_string_equal(out, text);
    free(out);
}

static void test_invalid_utf8_becomes_replacement(void **state)
{
    (void)state;
    struct {
        const char *in;   /* broken input */
        const char *want; /* what the page shows */
    } cases[] = {
        {"a\xFF"
         "b",
         "a\xEF\xBF\xBD"
         "b"},                                    /* stray byte */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong '/' */
        {"\xED\xA0\x80",
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"\xD0", "\xEF\xBF\xBD"},                 /* truncated */
        {"\xF4\x90\x80\x80x",
         "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx"}, /* > U+10FFFF */
        {"\xE2\x82<", "\xEF\xBF\xBD\xEF\xBF\xBD&lt;"},         /* cut, then < */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = escaped(cases[i].in);
        assert_string_equal(out, cases[i].want);
        free(out);
    }
}

static void
test_control_characters_are_replaced_but_not_whitespace(void **state)
{
    (void)state;
    char *out = escaped("a\x01"
                        "b\tc\nd\x7F"
                        "e\xC2\x85");
    assert_string_equal(out, "a\xEF\xBF\xBD"
                             "b\tc\nd\xEF\xBF\xBD"
                             "e\xEF\xBF\xBD");
    free(out);
}

static void test_lines_become_breaks(void **state)
{
    (void)state;
    cv_html_t *html = cv_html_new();
    assert_non_null(html);
    cv_html_lines(html, "one\ntwo\r\nthree\r<four>");
    assert_string_equal(cv_html_str(html),
                        "one<br>\ntwo<br>\nthree<br>\n&lt;four&gt;");
    cv_html_destroy(&html);
    assert_null(html);
}

static void test_element_skips_empty_and_escapes(void **state)
{
    (void)state;
    cv_html_t *html = cv_html_new();
    assert_non_null(html);
    cv_html_element(html, "h1", NULL);
    cv_html_element(html, "h1", "");
    assert_int_equal(cv_html_length(html), 0);
    cv_html_element(html, "p", "A & B");
    cv_html_textf(html, "%d<%s", 5, "6");
    assert_string_equal(cv_html_str(html), "<p>A &amp; B</p>\n5&lt;6");
    cv_html_destroy(&html);
}

static void test_large_documents_grow(void **state)
{
    (void)state;
    cv_html_t *html = cv_html_new();
    assert_non_null(html);
    for (int i = 0; i < 10000; i++) {
        cv_html_raw(html, "<b>");
        cv_html_text(html, "&");
    }
    assert_false(cv_html_failed(html));
    assert_int_equal(cv_html_length(html), 10000 * 8);
    const char *doc = cv_html_str(html);
    assert_memory_equal(doc + 79992, "<b>&amp;", 8);
    char *taken = cv_html_take(html);
    assert_non_null(taken);
    assert_int_equal(strlen(taken), 80000);
    assert_int_equal(cv_html_length(html), 0);
    assert_string_equal(cv_html_str(html), "");
    free(taken);
    cv_html_destroy(&html);
}

static void test_escape_into_buffer_measures_and_cuts_whole(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(cv_html_escape("a<b", buf, sizeof(buf)), 6);
    assert_string_equal(buf, "a&lt;b");
    /* "a&amp;b" needs 7 bytes; a 6-byte buffer keeps only whole pieces */
    char small[6];
    assert_int_equal(cv_html_escape("a&b", small, sizeof(small)), 7);
    assert_string_equal(small, "a");
    /* a two-byte character is never cut in half */
    char tiny[3];
    assert_int_equal(cv_html_escape("xЖ", tiny, sizeof(tiny)), 3);
    assert_string_equal(tiny, "x");
    assert_int_equal(cv_html_escape(NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(cv_html_escape("abc", NULL, 0), 3);
}

static void test_null_is_safe(void **state)
{
    (void)state;
    cv_html_destroy(NULL);
    cv_html_t *html = NULL;
    cv_html_destroy(&html);
    html = cv_html_new();
    assert_non_null(html);
    cv_html_raw(html, NULL);
    cv_html_text(html, NULL);
    cv_html_lines(html, NULL);
    assert_string_equal(cv_html_str(html), "");
    cv_html_destroy(&html);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markup_characters_become_entities),
        cmocka_unit_test(test_valid_utf8_passes_unchanged),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement),
        cmocka_unit_test(
            test_control_characters_are_replaced_but_not_whitespace),
        cmocka_unit_test(test_lines_become_breaks),
        cmocka_unit_test(test_element_skips_empty_and_escapes),
        cmocka_unit_test(test_large_documents_grow),
        cmocka_unit_test(test_escape_into_buffer_measures_and_cuts_whole),
        cmocka_unit_test(test_null_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The direct JSON writer writes what jansson would, or says it cannot. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cv_event.h"
#include "cv_jsonw.h"

static void test_strings_match_jansson(void **state)
{
    (void)state;
    const char *samples[] = {
        "plain", "Иван Петров, ООО «Ромашка»", "quote \" and \\ backslash",
        "tab\tnew\nline\r\x01\x1f", "emoji 😀 and € sign", "",
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        cv_jsonw_t b;
        cv_jsonw_init(&b);
        cv_jsonw_string(&b, samples[i]);
        assert_false(b.failed);
        json_t *value = json_string(samples[i]);
        char *expected = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_string_equal(b.data, expected);
        free(expected);
        json_decref(value);
        cv_jsonw_clear(&b);
    }
}

/* Long plain text is taken eight bytes at a time: each character that
 * needs escaping (or starts a multi-byte character, or is invalid) is still
 * found at every position within and across those eight-byte steps. */
static void test_every_special_character_at_every_position(void **state)
{
    (void)state;
    const char *specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "é",
                              "€", "😀", " ", "~"};
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        for (size_t at = 0; at < 24; at++) {
            char text[64];
            memset(text, 'a', 24);
            size_t len = strlen(specials[k]);
            memcpy(text + at, specials[k], len);
            memset(text + at + len, 'b', 9);
            text[at + len + 9] = '\0';
            cv_jsonw_t b;
            cv_jsonw_init(&b);
            cv_jsonw_string(&b, text);
            assert_false(b.failed);
            json_t *value = json_string(text);
            char *expected = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            assert_string_equal(b.data, expected);
            free(expected);
            json_decref(value);
            cv_jsonw_clear(&b);

            text[at] = (char)0xff; /* not UTF-8, wherever it is */
            cv_jsonw_init(&b);
            cv_jsonw_string(&b, text);
            assert_true(b.failed);
            cv_jsonw_clear(&b);
        }
    }
}

static void test_invalid_utf8_fails_the_buffer(void **state)
{
    (void)state;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_string(&b, "bad \xff byte");
    assert_true(b.failed);
    cv_jsonw_clear(&b);
}

/* Numbers as printf's %lld writes them: the ends of the range, zero,
 * and a spread of magnitudes of both signs. */
static void test_numbers_match_printf(void **state)
{
    (void)state;
    long long samples[200] = {0, 1, -1, 9, 10, -10, LLONG_MAX, LLONG_MIN,
                              LLONG_MIN + 1};
    size_t count = 9;
    long long v = 7;
    while (count + 2 <= sizeof(samples) / sizeof(samples[0])) {
        samples[count++] = v;
        samples[count++] = -v;
        v = v * 3 + 1;
        if (v < 0 || v > LLONG_MAX / 4)
            v = 11;
    }
    for (size_t i = 0; i < count; i++) {
        char want[32];
        int n = snprintf(want, sizeof(want), "%lld", samples[i]);
        char got[CV_JSONW_INT_SIZE];
        assert_int_equal(cv_jsonw_format_int(got, samples[i]), n);
        assert_string_equal(got, want);
    }
}

static void test_lead_matches_cv_event_lead_to_json(void **state)
{
    (void)state;
    Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
    lead.lead_id = "lead_019aac3f2e1b5d0c9a7e0001";
    lead.name = "Иван";
    lead.company = "Vector \"LLC\"";
    lead.phone = "+79123456789";
    lead.has_budget = true;
    lead.budget = 1500000;
    lead.has_received_at = true;
    lead.received_at = 1795365048139;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_lead(&b, &lead);
    assert_false(b.failed);
    json_t *value = cv_event_lead_to_json(&lead);
    char *expected = json_dumps(value, JSON_COMPACT);
    assert_string_equal(b.data, expected);
    free(expected);
    json_decref(value);
    cv_jsonw_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_match_jansson),
        cmocka_unit_test(test_every_special_character_at_every_position),
        cmocka_unit_test(test_invalid_utf8_fails_the_buffer),
        cmocka_unit_test(test_numbers_match_printf),
        cmocka_unit_test(test_lead_matches_cv_event_lead_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

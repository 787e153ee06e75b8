/* The direct JSON writer writes what jansson would, or says it cannot. */
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

static void test_invalid_utf8_fails_the_buffer(void **state)
{
    (void)state;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_string(&b, "bad \xff byte");
    assert_true(b.failed);
    cv_jsonw_clear(&b);
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
        cmocka_unit_test(test_invalid_utf8_fails_the_buffer),
        cmocka_unit_test(test_lead_matches_cv_event_lead_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

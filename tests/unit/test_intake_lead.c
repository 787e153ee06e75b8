/* intake_lead: a lead's JSON body read on the fast path (without jansson)
 * must give exactly what jansson gives, \u escapes included — PHP's
 * json_encode and Python's json.dumps send every Cyrillic letter so — and
 * escapes the fast path leaves alone must still get jansson's errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* the service's own API; the test links its objects (Makefile) */
#include "../../services/intake/intake_lead.h"

static int parse(const char *body, intake_lead_t *lead,
                 intake_error_t *error)
{
    return intake_lead_parse("application/json", "application/json", body,
                             strlen(body), lead, error);
}

/* The lead as JSON text, to compare two parses field by field. */
static char *dump(const char *body)
{
    intake_lead_t lead;
    intake_error_t error;
    assert_int_equal(parse(body, &lead, &error), 0);
    char *json = intake_lead_to_json(&lead);
    assert_non_null(json);
    intake_lead_clear(&lead);
    return json;
}

/* A site form sent by PHP: every letter escaped. */
static void test_php_escaped_form_reads_as_utf8(void **state)
{
    (void)state;
    char *escaped = dump(
        "{\"name\":\"\\u0418\\u0432\\u0430\\u043d \\u041f\\u0435\\u0442"
        "\\u0440\\u043e\\u0432\",\"phone\":\"+7 916 123-45-67\","
        "\"email\":\"Ivan@Example.ru\",\"company\":\"\\u041e\\u041e\\u041e "
        "\\u00abStroy\\u00bb\",\"message\":\"\\u041f\\u0435\\u0440\\u0435"
        "\\u0437\\u0432\\u043e\\u043d\\u0438\\u0442\\u0435 \\ud83d\\ude00"
        "\\n\\u0022\\u0441\\u0440\\u043e\\u0447\\u043d\\u043e\\u0022\","
        "\"budget\":150000}");
    char *raw = dump(
        "{\"name\":\"Иван Петров\",\"phone\":\"+7 916 123-45-67\","
        "\"email\":\"Ivan@Example.ru\",\"company\":\"ООО «Stroy»\","
        "\"message\":\"Перезвоните \xf0\x9f\x98\x80\\n\\\"срочно\\\"\","
        "\"budget\":150000}");
    assert_string_equal(escaped, raw);
    assert_non_null(strstr(raw, "\"name\":\"Иван Петров\""));
    free(escaped);
    free(raw);
}

/* The same escaped body read by jansson (a non-integer budget sends the
 * body there) gives the same lead. */
static void test_fast_path_matches_jansson(void **state)
{
    (void)state;
    char *fast = dump("{\"name\":\"\\u0410\\u043d\\u043d\\u0430\","
                      "\"telegram\":\"@Anna_K\",\"region\":\"\\u041a"
                      "\\u0430\\u0437\\u0430\\u043d\\u044c\","
                      "\"budget\":2}");
    char *slow = dump("{\"name\":\"\\u0410\\u043d\\u043d\\u0430\","
                      "\"telegram\":\"@Anna_K\",\"region\":\"\\u041a"
                      "\\u0430\\u0437\\u0430\\u043d\\u044c\","
                      "\"budget\":2.0}");
    assert_string_equal(fast, slow);
    free(fast);
    free(slow);
}

/* NUL and half a surrogate pair are left to jansson, which refuses them. */
static void test_bad_escapes_keep_jansson_errors(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"name\":\"a\\u0000b\",\"phone\":\"+79161234567\"}",
        "{\"name\":\"\\ud83d\",\"phone\":\"+79161234567\"}",
        "{\"name\":\"\\ud83d\\u0041\",\"phone\":\"+79161234567\"}",
        "{\"name\":\"\\ude00\",\"phone\":\"+79161234567\"}",
        "{\"name\":\"\\u12\",\"phone\":\"+79161234567\"}",
        "{\"name\":\"\\u12G4\",\"phone\":\"+79161234567\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        intake_lead_t lead;
        intake_error_t error;
        assert_int_equal(parse(bodies[i], &lead, &error), -1);
        assert_int_equal(error.status, 400);
        assert_string_equal(error.code, "invalid_json");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_php_escaped_form_reads_as_utf8),
        cmocka_unit_test(test_fast_path_matches_jansson),
        cmocka_unit_test(test_bad_escapes_keep_jansson_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

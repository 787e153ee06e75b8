/* Unit tests for cv_scoring_rules and cv_scoring_live: the rules file,
 * its errors (file, line, reason), the built-in copy, and reloading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cv_scoring.h"
#include "cv_scoring_live.h"
#include "cv_scoring_rules.h"

#define RULES_FILE "deploy/scoring-rules.yaml"

/* The whole of a file, NUL-terminated; NULL when it cannot be read. */
static char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = malloc(1 << 20);
    size_t n = text != NULL ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (text != NULL)
        text[n] = '\0';
    *size = n;
    return text;
}

static void write_all(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* The file in deploy/ with `old` replaced by `new` (once). */
static char *mutated(const char *old, const char *new)
{
    size_t size;
    char *text = read_all(RULES_FILE, &size);
    assert_non_null(text);
    char *at = strstr(text, old);
    if (at == NULL)
        fail_msg("'%s' is not in %s", old, RULES_FILE);
    size_t len = size - strlen(old) + strlen(new) + 1;
    char *out = malloc(len);
    assert_non_null(out);
    snprintf(out, len, "%.*s%s%s", (int)(at - text), text, new,
             at + strlen(old));
    free(text);
    return out;
}

/* Line number of the first line of `text` that contains `needle`. */
static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    if (at == NULL)
        fail_msg("'%s' is not in the file", needle);
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

/* The built-in rules are the file in deploy/, byte for byte: one source
 * of truth (a stale build shows here). */
static void test_builtin_is_the_deploy_file(void **state)
{
    (void)state;
    size_t size;
    char *text = read_all(RULES_FILE, &size);
    if (text == NULL)
        fail_msg("cannot read %s (run the tests from the project root)",
                 RULES_FILE);
    const char *builtin = cv_scoring_rules_builtin_text();
    if (strcmp(text, builtin) != 0)
        fail_msg("%s changed since the library was built: rebuild "
                 "common/cv_scoring_rules.c (touch it)",
                 RULES_FILE);
    free(text);
    const cv_scoring_model_t *m = cv_scoring_rules_builtin();
    assert_non_null(m);
    assert_ptr_equal(m, cv_scoring_default_model());
    assert_string_equal(m->version, "default-1");
}

/* The file loads into the model PRODUCT.md describes, and scores leads
 * exactly as the built-in rules do. */
static void test_deploy_file_is_the_model(void **state)
{
    (void)state;
    char error[700];
    cv_scoring_model_t *m =
        cv_scoring_rules_load(RULES_FILE, error, sizeof(error));
    if (m == NULL)
        fail_msg("%s", error);
    assert_string_equal(m->version, "default-1");
    assert_int_equal(m->segment_c_max, -10);
    assert_int_equal(m->segment_a_min, 10);
    assert_int_equal(m->knockout_count, 6);
    static const char *const names[CV_SCORING_PARAM_COUNT] = {
        "budget",        "volume",      "profitability", "timeline",
        "clarity",       "positioning", "load",          "industry_experience",
        "technologies",  "geography",   "adequacy",      "digital_literacy",
        "brief_quality", "dm_access",   "responsiveness"};
    static const char *const blocks[CV_SCORING_BLOCK_COUNT] = {"request", "fit",
                                                               "communication"};
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        assert_string_equal(m->params[i].name, names[i]);
        assert_string_equal(m->params[i].block, blocks[i / 5]);
        assert_true(strlen(m->params[i].description) > 0);
        assert_int_equal(cv_scoring_rules_param_index(m, names[i]), i);
    }
    assert_int_equal(cv_scoring_rules_param_index(m, "charisma"), -1);
    assert_int_equal(m->rate_count, 7);
    assert_string_equal(m->rates[0].code, "USD");

    /* leads of every kind score the same under the file and built-in */
    Conveyor__Lead leads[4];
    for (int i = 0; i < 4; i++) {
        Conveyor__Lead l = CONVEYOR__LEAD__INIT;
        l.lead_id = "lead_000000000000000000000001";
        leads[i] = l;
    }
    leads[0].name = "Ivan";
    leads[0].email = "ivan@romashka.ru";
    leads[0].region = "Москва";
    leads[0].has_budget = true;
    leads[0].budget = 150000;
    leads[1].phone = "+74951234567";
    leads[1].channel = "phone";
    leads[1].industry = "mining";
    leads[2].telegram = "@spam";
    leads[2].message = "Casino bonus http://a http://b http://c http://d";
    leads[3].email = "x@mailinator.com";
    leads[3].has_budget = true;
    leads[3].budget = 50;
    leads[3].currency = "EUR";
    for (int i = 0; i < 4; i++) {
        cv_scoring_result_t a, b;
        cv_scoring_score(m, &leads[i], &a);
        cv_scoring_score(NULL, &leads[i], &b);
        assert_int_equal(a.total, b.total);
        assert_string_equal(a.segment, b.segment);
        assert_int_equal(a.knocked_out, b.knocked_out);
        assert_string_equal(a.knockout_reason, b.knockout_reason);
        for (int p = 0; p < CV_SCORING_PARAM_COUNT; p++) {
            assert_int_equal(a.params[p].value, b.params[p].value);
            assert_string_equal(a.params[p].reason, b.params[p].reason);
            assert_string_equal(a.params[p].source, b.params[p].source);
        }
    }
    cv_scoring_result_t r;
    cv_scoring_score(m, &leads[0], &r);
    assert_string_equal(r.params[0].reason,
                        "budget 150000 RUB between 100000 and 1000000 RUB");
    cv_scoring_score(m, &leads[2], &r);
    assert_string_equal(r.knockout_reason,
                        "spam marker 'casino' in message; spam: 4 links in "
                        "message (at most 3)");
    cv_scoring_score(m, &leads[3], &r);
    assert_string_equal(r.knockout_reason,
                        "budget 50 EUR (~5000 RUB at the fixed rate 100 "
                        "RUB/EUR) below the minimum 10000 RUB; blacklisted "
                        "domain 'mailinator.com'");
    cv_scoring_rules_free(&m);
}

/* A broken file is refused with its name, the line and the reason. */
static void test_bad_files_name_line_and_reason(void **state)
{
    (void)state;
    static const struct {
        const char *old;    /* text of the good file ... */
        const char *new;    /* ... replaced by this */
        const char *at;     /* the line the error is on contains this */
        const char *reason; /* the error ends with this */
    } cases[] = {
        {"kind: budget_bands", "kind: budgte", "kind: budgte",
         "unknown rule kind 'budgte' (budget_bands, in_list, channel_warmth, "
         "message_length, fields_present, budget_below, blocked_domain, "
         "blocked_inn, competitor, spam_markers or too_many_links)"},
        {"    max: 3\n", "    max: 3\n    maximum: 4\n", "maximum: 4",
         "unknown key 'maximum'"},
        {"  c_max: -10", "  c_max: 10", "a_min: 10",
         "segments: c_max (10) must be below a_min (10) so that segment B "
         "lies between them"},
        {"  a_min: 10", "  a_min: 9.5", "a_min: 9.5",
         "'a_min' is 9.5, not a whole number from -15 to 15"},
        {"listed: {value: 1, reason: \"region",
         "listed: {value: 2, "
         "reason: \"region",
         "value: 2", "value '2' is not -1, 0 or 1"},
        {"at or above {from} RUB", "at or above {to} RUB", "above {to}",
         "out of place: placeholder '{to}' in 'reason'; this text may use "
         "{budget}, {amount}, {currency}, {rub}, {from}"},
        {"is served\"}", "is {served}\"}", "{served}",
         "unknown placeholder '{served}' in 'reason'; this text may use "
         "{value}, {field}"},
        {"      - name: timeline", "      - name: budget",
         "name: budget\n"
         "        description: whether",
         "parameter name 'budget' is "
         "used twice"},
        {"            field: region", "            field: regoin",
         "field: regoin",
         "unknown lead field 'regoin' (name, company, "
         "phone, email, telegram, message, channel, source, region, "
         "industry, product, inn, domain, timezone, utm_source, budget or "
         "contact)"},
        {"              - from_rub: 1000000", "              - from_rub: 1e4",
         "from_rub: 1e4",
         "bands go up: from_rub 1e4 is not above the band "
         "before it"},
        {"  - {code: CNY, rub: 12.5}", "  - {code: CNY, rub: 12.5.0}",
         "rub: 12.5.0",
         "'rub' is 12.5.0, not a number from 0 to "
         "1000000000"},
        {"    kind: blocked_inn", "    kind: in_list", "kind: in_list",
         "rule 'blocked_inn' of kind 'in_list' judges a parameter; the "
         "knockout list takes budget_below, blocked_domain, blocked_inn, "
         "competitor, spam_markers and too_many_links"},
        {"            min_chars: 80",
         "            min_chars: 80\n"
         "            listed: {value: 1, reason: x}",
         "listed: {value: 1, reason: x}",
         "'listed' does not apply to rule kind 'message_length'"},
        {"          - name: served_region", "          - name: budget_band",
         "name: budget_band\n            kind: in_list",
         "rule name 'budget_band' is used twice"},
        {"version: default-1", "version: default 1", "version: default 1",
         "version 'default 1' must be 1 to 64 of letters, digits, '.', '-' "
         "and '_'"},
        {"      - name: dm_access\n        description: access to the "
         "decision maker\n",
         "", "\n    parameters:\n      - name: adequacy",
         "a block has exactly 5 parameters"},
    };
    char path[] = "/tmp/test_scoring_rules_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char *text = mutated(cases[c].old, cases[c].new);
        write_all(path, text);
        char error[700];
        cv_scoring_model_t *m =
            cv_scoring_rules_load(path, error, sizeof(error));
        if (m != NULL)
            fail_msg("case %zu: '%s' was accepted", c, cases[c].new);
        int line = line_of(text, cases[c].at);
        line += cases[c].at[0] == '\n' ? 1 : 0;
        char want[900];
        snprintf(want, sizeof(want), "%s: line %d: %s", path, line,
                 cases[c].reason);
        if (strcmp(error, want) != 0)
            fail_msg("case %zu:\n got  '%s'\n want '%s'", c, error, want);
        free(text);
    }
    /* no line to name */
    write_all(path, "");
    char error[700];
    assert_null(cv_scoring_rules_load(path, error, sizeof(error)));
    char want[900];
    snprintf(want, sizeof(want), "%s: the file is empty", path);
    assert_string_equal(error, want);
    unlink(path);
    assert_null(cv_scoring_rules_load(path, error, sizeof(error)));
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory",
             path);
    assert_string_equal(error, want);
    /* not YAML at all */
    write_all(path, "version: [unclosed\n");
    assert_null(cv_scoring_rules_load(path, error, sizeof(error)));
    assert_true(strncmp(error, path, strlen(path)) == 0);
    unlink(path);
}

/* SIGHUP's reload: a good file replaces the model, a broken one is
 * refused and the model in force stays. */
static void test_reload_keeps_the_old_model_on_a_broken_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_scoring_reload_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char *v1 = mutated("version: default-1", "version: shop-2026.1");
    char *v2 = mutated("version: default-1\n\n# Segments",
                       "version: shop-2026.2\n\n# Segments");
    char *v2_c = mutated("  c_max: -10", "  c_max: -3");
    char *broken = mutated("kind: budget_bands", "kind: budgte");
    write_all(path, v1);
    char error[700];
    cv_scoring_live_t *live = cv_scoring_live_new(path, error, sizeof(error));
    if (live == NULL)
        fail_msg("%s", error);
    assert_string_equal(cv_scoring_live_path(live), path);
    const cv_scoring_model_t *m = cv_scoring_live_acquire(live);
    assert_string_equal(m->version, "shop-2026.1");
    cv_scoring_live_release(live);

    write_all(path, v2);
    assert_int_equal(cv_scoring_live_reload(live, error, sizeof(error)), 0);
    m = cv_scoring_live_acquire(live);
    assert_string_equal(m->version, "shop-2026.2");
    cv_scoring_live_release(live);

    write_all(path, broken);
    assert_int_equal(cv_scoring_live_reload(live, error, sizeof(error)), -1);
    char want[900];
    snprintf(want, sizeof(want), "%s: line %d: unknown rule kind 'budgte'",
             path, line_of(broken, "kind: budgte"));
    assert_true(strncmp(error, want, strlen(want)) == 0);
    m = cv_scoring_live_acquire(live);
    assert_string_equal(m->version, "shop-2026.2");
    /* and it still scores */
    Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
    lead.lead_id = "lead_000000000000000000000002";
    lead.phone = "+74951234567";
    lead.channel = "phone";
    cv_scoring_result_t r;
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(r.model_version, "shop-2026.2");
    cv_scoring_live_release(live);

    /* the thresholds change with the file too */
    write_all(path, v2_c);
    assert_int_equal(cv_scoring_live_reload(live, error, sizeof(error)), 0);
    m = cv_scoring_live_acquire(live);
    assert_int_equal(m->segment_c_max, -3);
    cv_scoring_live_release(live);

    unlink(path);
    assert_int_equal(cv_scoring_live_reload(live, error, sizeof(error)), -1);
    assert_non_null(strstr(error, "cannot read"));
    cv_scoring_live_destroy(&live);
    assert_null(live);
    /* a broken file at start: nothing to keep, so nothing starts */
    write_all(path, broken);
    assert_null(cv_scoring_live_new(path, error, sizeof(error)));
    assert_true(strncmp(error, want, strlen(want)) == 0);
    unlink(path);
    /* without a file: the built-in rules, and reloading is a no-op */
    live = cv_scoring_live_new("", error, sizeof(error));
    assert_non_null(live);
    assert_ptr_equal(cv_scoring_live_acquire(live), cv_scoring_default_model());
    cv_scoring_live_release(live);
    assert_int_equal(cv_scoring_live_reload(live, error, sizeof(error)), 0);
    cv_scoring_live_destroy(&live);
    free(v1);
    free(v2);
    free(v2_c);
    free(broken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_is_the_deploy_file),
        cmocka_unit_test(test_deploy_file_is_the_model),
        cmocka_unit_test(test_bad_files_name_line_and_reason),
        cmocka_unit_test(test_reload_keeps_the_old_model_on_a_broken_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

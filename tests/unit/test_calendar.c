/* cv_calendar: the Russian production calendar built in, files that
 * replace it, team overrides, and files that are refused with their line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_calendar.h"

#define CALENDAR_FILE "deploy/calendar-ru.yaml"

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int working_days(const cv_calendar_t *cal, const char *team, int y,
                        int m_from, int m_to)
{
    int n = 0;
    for (int m = m_from; m <= m_to; m++) {
        for (int d = 1; d <= days_in_month(y, m); d++)
            n += cv_calendar_is_workday(cal, team, y, m, d);
    }
    return n;
}

static void test_built_in_is_the_russian_production_calendar(void **state)
{
    (void)state;
    const cv_calendar_t *ru = cv_calendar_default();
    assert_non_null(ru);
    /* the official totals: 247 working days in 2025 and in 2026 */
    assert_int_equal(working_days(ru, NULL, 2025, 1, 12), 247);
    assert_int_equal(working_days(ru, NULL, 2026, 1, 12), 247);
    /* month totals a bookkeeper checks: January 2026 has 15, May 2025 18 */
    assert_int_equal(working_days(ru, NULL, 2026, 1, 1), 15);
    assert_int_equal(working_days(ru, NULL, 2025, 5, 5), 18);
    assert_int_equal(working_days(ru, NULL, 2025, 11, 11), 19);
    /* 2025: Saturday 1 November worked, its rest on Monday 3 November */
    assert_true(cv_calendar_is_workday(ru, NULL, 2025, 11, 1));
    assert_false(cv_calendar_is_workday(ru, NULL, 2025, 11, 3));
    assert_false(cv_calendar_is_workday(ru, NULL, 2025, 5, 8));
    assert_false(cv_calendar_is_workday(ru, NULL, 2025, 6, 13));
    assert_false(cv_calendar_is_workday(ru, NULL, 2025, 12, 31));
    /* 2026: holidays to 11 January, back on Monday 12 */
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 1, 9));
    assert_true(cv_calendar_is_workday(ru, NULL, 2026, 1, 12));
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 3, 9));
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 5, 11));
    assert_true(cv_calendar_is_workday(ru, NULL, 2026, 5, 12));
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 11, 4));
    assert_true(cv_calendar_is_workday(ru, NULL, 2026, 11, 20)); /* Friday */
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 11, 21));
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 12, 31));
    /* 2027: holidays on a weekend rest on Monday (art. 112) */
    assert_false(cv_calendar_is_workday(ru, NULL, 2027, 5, 3));
    assert_false(cv_calendar_is_workday(ru, NULL, 2027, 5, 10));
    assert_false(cv_calendar_is_workday(ru, NULL, 2027, 6, 14));
    assert_true(cv_calendar_is_workday(ru, NULL, 2027, 5, 4));
    /* how dates are listed, for people who work weekends by their hours */
    assert_int_equal(cv_calendar_mark(ru, NULL, 2025, 11, 1),
                     CV_CALENDAR_WORKDAY);
    assert_int_equal(cv_calendar_mark(ru, NULL, 2026, 1, 7),
                     CV_CALENDAR_HOLIDAY);
    assert_int_equal(cv_calendar_mark(ru, NULL, 2026, 1, 17),
                     CV_CALENDAR_REGULAR);
    /* not a date */
    assert_false(cv_calendar_is_workday(ru, NULL, 2026, 2, 30));
}

static void test_built_in_is_the_file_in_deploy(void **state)
{
    (void)state;
    FILE *f = fopen(CALENDAR_FILE, "rb");
    assert_non_null(f);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(n > 0);
    assert_string_equal(text, cv_calendar_builtin_text());
    free(text);
    char err[256];
    cv_calendar_t *cal = cv_calendar_load(CALENDAR_FILE, err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(working_days(cal, NULL, 2026, 1, 12), 247);
    cv_calendar_free(&cal);
    assert_null(cal);
    cv_calendar_free(&cal); /* NULL-safe */
}

static void test_team_overrides(void **state)
{
    (void)state;
    const char *text =
        "weekend: [sat, sun]\n"
        "holidays:\n"
        "- 2026-01-05\n"
        "workdays: ['2026-11-21']  # a Saturday worked\n"
        "teams:\n"
        "  dubai:\n"
        "    weekend: [fri, sat]\n"
        "    inherit: false\n"
        "  spb:\n"
        "    holidays: [2026-01-27]\n"
        "    workdays:\n"
        "      - 2026-11-28\n";
    char err[256];
    cv_calendar_t *cal = cv_calendar_parse(text, "teams.yaml", err, sizeof(err));
    if (cal == NULL)
        fail_msg("%s", err);
    /* the common calendar */
    assert_false(cv_calendar_is_workday(cal, NULL, 2026, 1, 5));
    assert_true(cv_calendar_is_workday(cal, NULL, 2026, 11, 21));
    assert_false(cv_calendar_is_workday(cal, NULL, 2026, 11, 28));
    /* Dubai: Sunday to Thursday, none of the common dates */
    assert_true(cv_calendar_is_workday(cal, "dubai", 2026, 1, 5));
    assert_false(cv_calendar_is_workday(cal, "dubai", 2026, 11, 20)); /* Fri */
    assert_true(cv_calendar_is_workday(cal, "dubai", 2026, 11, 22)); /* Sun */
    assert_false(cv_calendar_is_workday(cal, "dubai", 2026, 11, 21));
    /* St Petersburg: the common dates plus its own */
    assert_false(cv_calendar_is_workday(cal, "spb", 2026, 1, 5));
    assert_false(cv_calendar_is_workday(cal, "spb", 2026, 1, 27));
    assert_true(cv_calendar_is_workday(cal, "spb", 2026, 11, 28));
    assert_true(cv_calendar_is_workday(cal, "spb", 2026, 11, 21));
    /* a team the file does not name gets the common calendar */
    assert_false(cv_calendar_is_workday(cal, "kazan", 2026, 1, 5));
    assert_true(cv_calendar_is_weekend(cal, "dubai", 5));
    assert_false(cv_calendar_is_weekend(cal, "dubai", 0));
    cv_calendar_free(&cal);
}

static void expect_refused(const char *text, const char *want)
{
    char err[256];
    cv_calendar_t *cal = cv_calendar_parse(text, "cal.yaml", err, sizeof(err));
    if (cal != NULL || strcmp(err, want) != 0)
        fail_msg("for %s: got '%s', want '%s'", text, err, want);
    assert_null(cal);
}

static void test_bad_files_are_refused_with_their_line(void **state)
{
    (void)state;
    expect_refused("weekend: [sat, sun]\nholidays:\n  - 2026-02-30\n",
                   "cal.yaml:3: '2026-02-30' is not a date (YYYY-MM-DD)");
    expect_refused("holidays:\n  - 01.05.2026\n",
                   "cal.yaml:2: '01.05.2026' is not a date (YYYY-MM-DD)");
    expect_refused("weekend: [sat, sunday, funday]\n",
                   "cal.yaml:1: 'funday' is not a weekday (mon..sun)");
    expect_refused("holydays: [2026-01-01]\n",
                   "cal.yaml:1: unknown key 'holydays'");
    expect_refused("holidays:\n\t- 2026-01-01\n",
                   "cal.yaml:2: a tab (indent with spaces)");
    expect_refused("- 2026-01-01\n",
                   "cal.yaml:1: a list item with no list above it");
    expect_refused("holidays: [2026-01-01\n",
                   "cal.yaml:1: a list that does not end with ']' on its line");
    expect_refused("teams:\n  a:\n    weekend: [sat]\n  a:\n",
                   "cal.yaml:4: team 'a' is given twice");
    expect_refused("holidays: [2026-11-21]\nworkdays: [2026-11-21]\n",
                   "cal.yaml: 2026-11-21 is both a holiday and a workday");
    char err[256];
    assert_null(cv_calendar_load("/nonexistent/cal.yaml", err, sizeof(err)));
    assert_string_equal(err, "/nonexistent/cal.yaml: cannot read: No such "
                             "file or directory");
    /* an empty file is a plain Saturday-Sunday calendar */
    cv_calendar_t *cal = cv_calendar_parse("# nothing\n", "e", err, sizeof(err));
    assert_non_null(cal);
    assert_false(cv_calendar_is_workday(cal, NULL, 2026, 1, 1) == false);
    assert_false(cv_calendar_is_workday(cal, NULL, 2026, 1, 3));
    cv_calendar_free(&cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_built_in_is_the_russian_production_calendar),
        cmocka_unit_test(test_built_in_is_the_file_in_deploy),
        cmocka_unit_test(test_team_overrides),
        cmocka_unit_test(test_bad_files_are_refused_with_their_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

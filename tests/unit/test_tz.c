/* cv_tz: IANA zones from the system's zoneinfo, both directions, across
 * DST changes and after the zone files' last listed transition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cv_clock.h"
#include "cv_tz.h"

/* RFC 3339 text to ms, for readable expectations. */
static int64_t at(const char *text)
{
    int64_t ms = 0;
    assert_int_equal(cv_clock_parse(text, &ms), 0);
    return ms;
}

static struct tm wall(int y, int mon, int d, int h, int min)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = min;
    return tm;
}

/* The local wall time of `utc` in `zone` as "YYYY-MM-DD HH:MM +offset". */
static void local_text(const char *zone, const char *utc, char *buf,
                       size_t size)
{
    const cv_tz_t *tz = cv_tz_get(zone);
    assert_non_null(tz);
    struct tm tm;
    int off = 0;
    assert_int_equal(cv_tz_to_local(tz, at(utc), &tm, &off), 0);
    snprintf(buf, size, "%04d-%02d-%02d %02d:%02d %+d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, off / 3600);
}

static void test_moscow_and_novosibirsk_on_a_friday_evening(void **state)
{
    (void)state;
    char buf[64];
    /* a lead at 17:50 Moscow time is 21:50 in Novosibirsk */
    local_text("Europe/Moscow", "2026-11-20T14:50:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-20 17:50 +3");
    local_text("Asia/Novosibirsk", "2026-11-20T14:50:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-20 21:50 +7");
    struct tm tm;
    assert_int_equal(cv_tz_to_local(cv_tz_get("Europe/Moscow"),
                                     at("2026-11-20T14:50:00Z"), &tm, NULL),
                     0);
    assert_int_equal(tm.tm_wday, 5); /* Friday */
    /* Moscow was UTC+4 in 2012 (the table, not the rule) */
    local_text("Europe/Moscow", "2012-06-01T12:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2012-06-01 16:00 +4");
}

static void test_berlin_changes_clocks_twice_a_year(void **state)
{
    (void)state;
    char buf[64];
    /* 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC */
    local_text("Europe/Berlin", "2026-03-29T00:59:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-29 01:59 +1");
    local_text("Europe/Berlin", "2026-03-29T01:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-29 03:00 +2");
    local_text("Europe/Berlin", "2026-10-25T00:59:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-10-25 02:59 +2");
    local_text("Europe/Berlin", "2026-10-25T01:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-10-25 02:00 +1");
    /* far past the file's table, the POSIX rule answers: 2061 */
    local_text("Europe/Berlin", "2061-07-01T10:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2061-07-01 12:00 +2");
    local_text("Europe/Berlin", "2061-12-01T10:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2061-12-01 11:00 +1");
    /* last Sunday of March 2061 is the 27th */
    local_text("Europe/Berlin", "2061-03-27T01:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2061-03-27 03:00 +2");
}

static void test_from_local_in_gap_and_overlap(void **state)
{
    (void)state;
    const cv_tz_t *berlin = cv_tz_get("Europe/Berlin");
    assert_non_null(berlin);
    struct tm tm = wall(2026, 7, 15, 9, 0);
    assert_true(cv_tz_from_local(berlin, &tm) == at("2026-07-15T07:00:00Z"));
    tm = wall(2026, 1, 15, 9, 0);
    assert_true(cv_tz_from_local(berlin, &tm) == at("2026-01-15T08:00:00Z"));
    /* 02:30 does not exist on 29 March: it moves forward to 03:30 CEST */
    tm = wall(2026, 3, 29, 2, 30);
    assert_true(cv_tz_from_local(berlin, &tm) == at("2026-03-29T01:30:00Z"));
    /* 02:30 happens twice on 25 October: the earlier one (CEST) */
    tm = wall(2026, 10, 25, 2, 30);
    assert_true(cv_tz_from_local(berlin, &tm) == at("2026-10-25T00:30:00Z"));
    /* fields out of range normalise: 31 December 24:30 is 1 January */
    const cv_tz_t *moscow = cv_tz_get("Europe/Moscow");
    tm = wall(2026, 12, 31, 24, 30);
    assert_true(cv_tz_from_local(moscow, &tm) == at("2026-12-31T21:30:00Z"));
    tm = wall(2026, 13, 1, 0, 0); /* month 13 */
    assert_true(cv_tz_from_local(moscow, &tm) == at("2026-12-31T21:00:00Z"));
}

static void test_southern_and_american_rules(void **state)
{
    (void)state;
    char buf[64];
    /* Sydney: summer time spans the new year */
    local_text("Australia/Sydney", "2027-01-10T00:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2027-01-10 11:00 +11");
    local_text("Australia/Sydney", "2026-07-10T00:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-07-10 10:00 +10");
    /* New York 2026: second Sunday of March, 8 March 07:00 UTC */
    local_text("America/New_York", "2026-03-08T06:59:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-08 01:59 -5");
    local_text("America/New_York", "2026-03-08T07:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-08 03:00 -4");
    local_text("UTC", "2026-03-08T07:00:00Z", buf, sizeof(buf));
    assert_string_equal(buf, "2026-03-08 07:00 +0");
}

static void test_round_trip_every_hour_of_a_year(void **state)
{
    (void)state;
    const char *zones[] = {"Europe/Moscow", "Europe/Berlin", "Asia/Kolkata",
                           "America/Sao_Paulo", "Asia/Novosibirsk"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        const cv_tz_t *tz = cv_tz_get(zones[z]);
        assert_non_null(tz);
        int64_t start = at("2026-01-01T00:00:00Z");
        for (int64_t t = start; t < start + 366LL * 86400000; t += 3600000) {
            struct tm tm;
            int off = 0;
            assert_int_equal(cv_tz_to_local(tz, t, &tm, &off), 0);
            int64_t back = cv_tz_from_local(tz, &tm);
            /* an ambiguous hour maps back to its first instant */
            assert_true(back == t || back == t - 3600000);
        }
    }
}

static void test_unknown_and_hostile_names(void **state)
{
    (void)state;
    assert_null(cv_tz_get("Mars/Olympus_Mons"));
    assert_null(cv_tz_get("../../etc/passwd"));
    assert_null(cv_tz_get("/etc/localtime"));
    assert_null(cv_tz_get(""));
    assert_null(cv_tz_get(NULL));
    assert_null(cv_tz_get("Europe"));         /* a folder, not a zone */
    assert_null(cv_tz_get("Europe/Moscow x")); /* a space */
    /* cached: the same object every time */
    assert_ptr_equal(cv_tz_get("Europe/Moscow"), cv_tz_get("Europe/Moscow"));
    assert_string_equal(cv_tz_name(cv_tz_get("Asia/Novosibirsk")),
                        "Asia/Novosibirsk");
    struct tm tm;
    assert_int_equal(cv_tz_to_local(NULL, 0, &tm, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moscow_and_novosibirsk_on_a_friday_evening),
        cmocka_unit_test(test_berlin_changes_clocks_twice_a_year),
        cmocka_unit_test(test_from_local_in_gap_and_overlap),
        cmocka_unit_test(test_southern_and_american_rules),
        cmocka_unit_test(test_round_trip_every_hour_of_a_year),
        cmocka_unit_test(test_unknown_and_hostile_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_clock: RFC 3339 text both ways, and the clock file that moves time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cv_clock.h"
#include "test_db_dir.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_format_shows_utc_with_milliseconds(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(cv_clock_format(1795362078123LL, buf, sizeof(buf)),
                        "2026-11-22T15:41:18.123Z");
    assert_string_equal(cv_clock_format(0, buf, sizeof(buf)),
                        "1970-01-01T00:00:00.000Z");
    assert_string_equal(cv_clock_format(-500, buf, sizeof(buf)),
                        "1969-12-31T23:59:59.500Z");
}

/* The digit-by-digit writer against gmtime and strftime: the first and
 * last millisecond of years, leap days, a spread of times from year 0 to
 * 9999, and the fallback for buffers and years it does not take. */
static void test_format_agrees_with_gmtime(void **state)
{
    (void)state;
    int64_t samples[4000];
    size_t count = 0;
    const int64_t year_0 = -62167219200000LL;    /* 0000-01-01 */
    const int64_t year_10000 = 253402300800000LL; /* 10000-01-01 */
    samples[count++] = year_0;
    samples[count++] = year_10000 - 1;
    samples[count++] = 951782400000LL - 1; /* the last ms of 2000-02-28 */
    samples[count++] = 951868800000LL;     /* 2000-03-01 */
    uint64_t seed = 88172645463325252ULL;
    while (count < sizeof(samples) / sizeof(samples[0])) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        samples[count++] = year_0 + (int64_t)(seed % (uint64_t)(year_10000 -
                                                                year_0));
    }
    for (size_t i = 0; i < count; i++) {
        int64_t ms = samples[i];
        int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
        time_t t = (time_t)seconds;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[64];
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms - seconds * 1000));
        char got[CV_CLOCK_FORMAT_SIZE];
        assert_string_equal(cv_clock_format(ms, got, sizeof(got)), want);
    }
    /* a buffer too small is cut, not overrun; year 10000 needs more room */
    char small[11];
    assert_string_equal(cv_clock_format(0, small, sizeof(small)),
                        "1970-01-01");
    char wide[32];
    assert_string_equal(cv_clock_format(year_10000, wide, sizeof(wide)),
                        "10000-01-01T00:00:00.000Z");
}

static void test_parse_accepts_rfc3339_forms(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(cv_clock_parse("2026-11-22T15:41:18.123Z", &ms), 0);
    assert_int_equal(ms, 1795362078123LL);
    assert_int_equal(cv_clock_parse("2026-11-22T15:41:18Z", &ms), 0);
    assert_int_equal(ms, 1795362078000LL);
    /* Moscow time is three hours ahead of UTC */
    assert_int_equal(cv_clock_parse("2026-11-22T18:41:18.123+03:00", &ms), 0);
    assert_int_equal(ms, 1795362078123LL);
    assert_int_equal(cv_clock_parse("2026-11-22T10:41:18.123-05:00", &ms), 0);
    assert_int_equal(ms, 1795362078123LL);
    /* a plain date is midnight UTC; 2024 is a leap year */
    assert_int_equal(cv_clock_parse("2024-02-29", &ms), 0);
    assert_int_equal(ms, 1709164800000LL);
    /* more than three fraction digits are cut to milliseconds */
    assert_int_equal(cv_clock_parse("2026-11-22T15:41:18.123456Z", &ms), 0);
    assert_int_equal(ms, 1795362078123LL);
}

static void test_parse_round_trips_format(void **state)
{
    (void)state;
    char buf[32];
    int64_t samples[] = {0, 1, 999, 1795362078123LL, 951782400000LL, -500};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        int64_t back = 0;
        cv_clock_format(samples[i], buf, sizeof(buf));
        assert_int_equal(cv_clock_parse(buf, &back), 0);
        assert_int_equal(back, samples[i]);
    }
}

static void test_parse_refuses_what_is_not_a_time(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "yesterday",
        "2026-11-22T15:41:18",      /* no zone */
        "2026-02-30",               /* no such day */
        "2023-02-29",               /* not a leap year */
        "2026-13-01",
        "2026-11-22T24:00:00Z",
        "2026-11-22T15:61:00Z",
        "2026-11-22T15:41:18.Z",
        "2026-11-22T15:41:18+0300", /* offset needs a colon */
        "2026-11-22T15:41:18Z trailing",
        "26-11-22",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        if (cv_clock_parse(bad[i], &ms) != -1)
            fail_msg("'%s' parsed as a time", bad[i]);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(cv_clock_parse(NULL, NULL), -1);
}

static void test_clock_file_moves_time_forward(void **state)
{
    (void)state;
    test_db_dir_t dir; /* a fresh folder, its file the clock file */
    assert_int_equal(test_db_dir_make(&dir, "clock"), 0);
    const char *path = dir.path;

    /* no file yet: the conveyor clock is the wall clock */
    setenv("CONVEYOR_CLOCK_FILE", path, 1);
    int64_t before = wall_ms();
    int64_t now = cv_clock_now_ms();
    assert_true(now >= before && now - before < 1000);

    /* an hour ahead, seen within 100 ms */
    write_file(path, "3600\n");
    sleep_ms(150);
    before = wall_ms();
    now = cv_clock_now_ms();
    assert_true(now - before >= 3600 * 1000 - 5);
    assert_true(now - before < 3600 * 1000 + 1000);

    /* a day further, and the file is re-read */
    write_file(path, "90000");
    sleep_ms(150);
    before = wall_ms();
    now = cv_clock_now_ms();
    assert_true(now - before >= 90000LL * 1000 - 5);
    assert_true(now - before < 90000LL * 1000 + 1000);

    /* text that is not a whole number of seconds counts as 0 */
    write_file(path, "1.5 hours");
    sleep_ms(150);
    before = wall_ms();
    now = cv_clock_now_ms();
    assert_true(now - before < 1000);

    test_db_dir_remove(&dir);
    unsetenv("CONVEYOR_CLOCK_FILE");
}

/* How far the conveyor clock is ahead of the wall clock, the wall clock
 * read first (in `a() - b()` C leaves the order open). */
static int64_t clock_ahead_ms(void)
{
    int64_t wall = wall_ms();
    return cv_clock_now_ms() - wall;
}

/* A test harness that points the variable at another run's file, or
 * drops it: the clock follows within 100 ms, and a missing file is 0. */
static void test_clock_follows_the_variable(void **state)
{
    (void)state;
    test_db_dir_t dir; /* a fresh folder; its file is the first clock */
    assert_int_equal(test_db_dir_make(&dir, "first"), 0);
    const char *first = dir.path;
    char second[160];
    char missing[160];
    snprintf(second, sizeof(second), "%s/second", dir.dir);
    snprintf(missing, sizeof(missing), "%s/missing", dir.dir);
    write_file(first, "7200");
    write_file(second, "-86400\n");

    setenv("CONVEYOR_CLOCK_FILE", first, 1);
    sleep_ms(150);
    int64_t ahead = clock_ahead_ms();
    assert_true(ahead >= 7200 * 1000 - 5 && ahead < 7200 * 1000 + 1000);

    /* another file: a day back */
    setenv("CONVEYOR_CLOCK_FILE", second, 1);
    sleep_ms(150);
    ahead = clock_ahead_ms();
    assert_true(ahead >= -86400LL * 1000 - 5 && ahead < -86400LL * 1000 + 1000);

    /* a file that is not there counts as 0 */
    setenv("CONVEYOR_CLOCK_FILE", missing, 1);
    sleep_ms(150);
    ahead = clock_ahead_ms();
    assert_true(ahead > -1000 && ahead < 1000);

    /* back to the first file, then no variable: the wall clock */
    setenv("CONVEYOR_CLOCK_FILE", first, 1);
    sleep_ms(150);
    ahead = clock_ahead_ms();
    assert_true(ahead >= 7200 * 1000 - 5);
    unsetenv("CONVEYOR_CLOCK_FILE");
    sleep_ms(150);
    ahead = clock_ahead_ms();
    assert_true(ahead > -1000 && ahead < 1000);

    unlink(second);
    test_db_dir_remove(&dir);
}

/* A wait measured on the monotonic clock, said in conveyor time: the
 * deadline 500 ms ahead falls about 500 ms after now, one that has passed
 * falls now. */
static void test_monotonic_deadline_in_conveyor_time(void **state)
{
    (void)state;
    int64_t mono = cv_clock_monotonic_ms();
    int64_t now = cv_clock_now_ms();
    int64_t ahead = cv_clock_now_at_monotonic(mono + 500);
    assert_true(ahead >= now + 450 && ahead <= now + 600);
    int64_t passed = cv_clock_now_at_monotonic(mono - 10000);
    assert_true(passed >= now && passed <= now + 100);
}

static void test_monotonic_never_goes_back(void **state)
{
    (void)state;
    int64_t last = cv_clock_monotonic_ms();
    for (int i = 0; i < 1000; i++) {
        int64_t now = cv_clock_monotonic_ms();
        assert_true(now >= last);
        last = now;
    }
    int64_t start = cv_clock_monotonic_ms();
    sleep_ms(20);
    assert_true(cv_clock_monotonic_ms() - start >= 19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_shows_utc_with_milliseconds),
        cmocka_unit_test(test_format_agrees_with_gmtime),
        cmocka_unit_test(test_parse_accepts_rfc3339_forms),
        cmocka_unit_test(test_parse_round_trips_format),
        cmocka_unit_test(test_parse_refuses_what_is_not_a_time),
        cmocka_unit_test(test_clock_file_moves_time_forward),
        cmocka_unit_test(test_clock_follows_the_variable),
        cmocka_unit_test(test_monotonic_never_goes_back),
        cmocka_unit_test(test_monotonic_deadline_in_conveyor_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

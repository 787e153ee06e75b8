/* cv_workhours: a person's hours in their zone and the production
 * calendar: SLA arithmetic as a sales team lives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cv_calendar.h"
#include "cv_clock.h"
#include "cv_tz.h"
#include "cv_workhours.h"

#define OFFICE "{\"mon\":\"09:00-18:00\",\"tue\":\"09:00-18:00\"," \
               "\"wed\":\"09:00-18:00\",\"thu\":\"09:00-18:00\"," \
               "\"fri\":\"09:00-18:00\"}"

static int64_t at(const char *text)
{
    int64_t ms = 0;
    if (cv_clock_parse(text, &ms) != 0)
        fail_msg("bad time '%s'", text);
    return ms;
}

static void assert_time(int64_t got, const char *want)
{
    char buf[40];
    cv_clock_format(got, buf, sizeof(buf));
    if (got != at(want))
        fail_msg("got %s, want %s", buf, want);
}

static cv_workhours_t hours(const char *json)
{
    cv_workhours_t wh;
    char err[128];
    if (cv_workhours_parse(json, &wh, err, sizeof(err)) != 0)
        fail_msg("'%s': %s", json, err);
    return wh;
}

static void test_parse_and_refuse(void **state)
{
    (void)state;
    cv_workhours_t wh = hours("{\"tue\":\"09:00-13:00, 14:00-18:00\","
                              "\"sat\":\"\",\"sunday\":null}");
    assert_true(cv_workhours_is_set(&wh));
    assert_int_equal(wh.span_count[2], 2);
    assert_int_equal(wh.span[2][1].start_min, 14 * 60);
    assert_int_equal(wh.span_count[6], 0);
    wh = hours(NULL);
    assert_false(cv_workhours_is_set(&wh));
    wh = hours("");
    assert_false(cv_workhours_is_set(&wh));
    wh = hours("{\"fri\":\"20:00-24:00\"}");
    assert_int_equal(wh.span[5][0].end_min, 1440);

    char err[128];
    struct {
        const char *json;
        const char *err;
    } bad[] = {
        {"{\"mon\":\"9-18\"}", "'mon': '9-18' is not HH:MM-HH:MM"},
        {"{\"mon\":\"18:00-09:00\"}", "'mon': '18:00-09:00' is not HH:MM-HH:MM"},
        {"{\"mon\":\"09:00-13:00,12:00-18:00\"}", "'mon': intervals overlap"},
        {"{\"moon\":\"09:00-18:00\"}", "'moon' is not a day (mon..sun)"},
        {"{\"mon\":9}", "'mon': hours must be a string such as \"09:00-18:00\""},
        {"[1]", "working hours must be an object of days like "
                "{\"mon\":\"09:00-18:00\"}"},
        {"{\"mon\":\"24:00-24:00\"}", "'mon': '24:00-24:00' is not HH:MM-HH:MM"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cv_workhours_parse(bad[i].json, &wh, err, sizeof(err)) == 0)
            fail_msg("'%s' was accepted", bad[i].json);
        assert_string_equal(err, bad[i].err);
        assert_false(cv_workhours_is_set(&wh));
    }
}

/* The example: a lead at 17:50 on Friday, Moscow time. */
static void test_friday_evening_lead_moscow_and_novosibirsk(void **state)
{
    (void)state;
    cv_workhours_t wh = hours(OFFICE);
    const cv_calendar_t *ru = cv_calendar_default();
    const cv_tz_t *msk = cv_tz_get("Europe/Moscow");
    const cv_tz_t *nsk = cv_tz_get("Asia/Novosibirsk");
    int64_t lead = at("2026-11-20T17:50:00+03:00");
    /* a Moscow owner: 10 minutes on Friday, 20 on Monday */
    assert_time(cv_workhours_add_minutes(&wh, msk, ru, NULL, lead, 30),
                "2026-11-23T09:20:00+03:00");
    /* a Novosibirsk owner: it is already 21:50 there; all 30 on Monday */
    assert_time(cv_workhours_add_minutes(&wh, nsk, ru, NULL, lead, 30),
                "2026-11-23T09:30:00+07:00");
    assert_false(cv_workhours_open_at(&wh, nsk, ru, NULL, lead));
    assert_true(cv_workhours_open_at(&wh, msk, ru, NULL, lead));
    assert_time(cv_workhours_next_open(&wh, nsk, ru, NULL, lead),
                "2026-11-23T09:00:00+07:00");
    /* a lead at 23:00 is due 30 minutes after the next shift starts */
    assert_time(cv_workhours_add_minutes(&wh, msk, ru, NULL,
                                         at("2026-11-24T23:00:00+03:00"), 30),
                "2026-11-25T09:30:00+03:00");
    assert_time(cv_workhours_day_end(&wh, msk, ru, NULL,
                                     at("2026-11-21T12:00:00+03:00")),
                "2026-11-23T18:00:00+03:00");
}

static void test_holidays_and_a_worked_saturday(void **state)
{
    (void)state;
    cv_workhours_t wh = hours(OFFICE);
    const cv_calendar_t *ru = cv_calendar_default();
    const cv_tz_t *msk = cv_tz_get("Europe/Moscow");
    /* the new year holidays: nobody before Monday 12 January 2026 */
    assert_time(cv_workhours_add_minutes(&wh, msk, ru, NULL,
                                         at("2025-12-30T17:50:00+03:00"), 30),
                "2026-01-12T09:20:00+03:00");
    /* without the calendar only the weekend counts */
    assert_time(cv_workhours_add_minutes(&wh, msk, NULL, NULL,
                                         at("2025-12-30T17:50:00+03:00"), 30),
                "2025-12-31T09:20:00+03:00");
    /* Saturday 1 November 2025 was worked (with Monday's hours) */
    assert_time(cv_workhours_add_minutes(&wh, msk, ru, NULL,
                                         at("2025-10-31T17:50:00+03:00"), 30),
                "2025-11-01T09:20:00+03:00");
    /* 2 business days after a Thursday 15:00 presentation: Monday 15:00 */
    assert_time(cv_workhours_add_days(&wh, msk, ru, NULL,
                                      at("2026-11-19T15:00:00+03:00"), 2),
                "2026-11-23T15:00:00+03:00");
    /* ... and across the new year holidays */
    assert_time(cv_workhours_add_days(&wh, msk, ru, NULL,
                                      at("2025-12-30T15:00:00+03:00"), 2),
                "2026-01-13T15:00:00+03:00");
    /* an evening one lands at the end of that day */
    assert_time(cv_workhours_add_days(&wh, msk, ru, NULL,
                                      at("2026-11-19T20:00:00+03:00"), 2),
                "2026-11-23T18:00:00+03:00");
    /* a lunch break is not working time */
    cv_workhours_t lunch = hours("{\"mon\":\"09:00-13:00,14:00-18:00\"}");
    assert_time(cv_workhours_add_minutes(&lunch, msk, ru, NULL,
                                         at("2026-11-23T12:50:00+03:00"), 30),
                "2026-11-23T14:20:00+03:00");
}

static void test_berlin_across_dst(void **state)
{
    (void)state;
    cv_workhours_t wh = hours(OFFICE);
    const cv_tz_t *ber = cv_tz_get("Europe/Berlin");
    /* clocks go forward on Sunday 29 March 2026: Monday is 09:00 CEST */
    assert_time(cv_workhours_add_minutes(&wh, ber, NULL, NULL,
                                         at("2026-03-27T17:50:00+01:00"), 30),
                "2026-03-30T09:20:00+02:00");
    /* and back on Sunday 25 October: Monday is 09:00 CET */
    assert_time(cv_workhours_add_minutes(&wh, ber, NULL, NULL,
                                         at("2026-10-23T17:50:00+02:00"), 30),
                "2026-10-26T09:20:00+01:00");
    /* a night shift 00:00-04:00 on the short night has 3 hours, not 4 */
    cv_workhours_t night = hours("{\"sun\":\"00:00-04:00\"}");
    int64_t start = at("2026-03-29T00:00:00+01:00");
    assert_time(cv_workhours_add_minutes(&night, ber, NULL, NULL, start, 180),
                "2026-03-29T04:00:00+02:00");
    assert_time(cv_workhours_add_minutes(&night, ber, NULL, NULL, start, 181),
                "2026-04-05T00:01:00+02:00");
    /* and 5 hours on the long night */
    start = at("2026-10-25T00:00:00+02:00");
    assert_time(cv_workhours_add_minutes(&night, ber, NULL, NULL, start, 300),
                "2026-10-25T04:00:00+01:00");
}

static void test_no_hours_means_always_available(void **state)
{
    (void)state;
    cv_workhours_t wh = hours(NULL);
    const cv_calendar_t *ru = cv_calendar_default();
    const cv_tz_t *msk = cv_tz_get("Europe/Moscow");
    int64_t night = at("2026-01-01T03:00:00+03:00"); /* a holiday night */
    assert_true(cv_workhours_open_at(&wh, msk, ru, NULL, night));
    assert_time(cv_workhours_add_minutes(&wh, msk, ru, NULL, night, 30),
                "2026-01-01T03:30:00+03:00");
    /* business days still follow the calendar */
    assert_time(cv_workhours_add_days(&wh, msk, ru, NULL,
                                      at("2026-11-19T15:00:00+03:00"), 2),
                "2026-11-23T15:00:00+03:00");
    /* hours with no working day at all: never */
    cv_workhours_t none = hours("{\"mon\":\"\"}");
    assert_true(cv_workhours_add_minutes(&none, msk, ru, NULL, night, 30) ==
                INT64_MAX);
    assert_true(cv_workhours_next_open(&none, msk, ru, NULL, night) ==
                INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_refuse),
        cmocka_unit_test(test_friday_evening_lead_moscow_and_novosibirsk),
        cmocka_unit_test(test_holidays_and_a_worked_saturday),
        cmocka_unit_test(test_berlin_across_dst),
        cmocka_unit_test(test_no_hours_means_always_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_workhours: a person's weekly working hours, and arithmetic in them.
 *
 * Hours are given per weekday as JSON, in the person's local time:
 *
 *     {"mon":"09:00-18:00","tue":"09:00-13:00,14:00-18:00","sat":""}
 *
 * A missing or empty day is a day off; "24:00" ends a day at midnight. A
 * person with no hours at all (NULL or "" JSON) is "unset" and counts as
 * always available, every day, 0-24, holidays included.
 *
 * Times are computed in the person's IANA zone (cv_tz) against a business
 * calendar (cv_calendar): a holiday is off whatever the weekly hours say;
 * a transferred working day (a Saturday worked in Russia) is worked with
 * the hours of the weekday it stands in for — the first working weekday
 * that has hours (Monday's, usually). DST changes are handled by working
 * in wall time: a shift 09:00-18:00 is 09:00-18:00 local on both sides of
 * the change (one hour shorter or longer only when it spans the change).
 *
 * The struct is plain data with no heap; copy it freely. */
#ifndef CV_WORKHOURS_H
#define CV_WORKHOURS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_calendar.h"
#include "cv_tz.h"

#define CV_WORKHOURS_SPANS 4 /* intervals per day, "09-13,14-18" is 2 */

/* One interval of a day, in minutes from local midnight. */
typedef struct {
    int16_t start_min; /* 0..1439, inclusive */
    int16_t end_min;   /* start_min+1..1440, exclusive */
} cv_workhours_span_t;

typedef struct {
    bool set;                                   /* false: always open */
    uint8_t span_count[7];                      /* per day, 0 = Sunday */
    cv_workhours_span_t span[7][CV_WORKHOURS_SPANS]; /* sorted, disjoint */
} cv_workhours_t;

/* Parses the JSON above into *out. NULL or "" gives an unset (always open)
 * value. Returns 0, or -1 with a reason in err ("'tue': '9-18' is not
 * HH:MM-HH:MM"): unknown day names, overlapping or backwards intervals and
 * more than CV_WORKHOURS_SPANS intervals a day are refused. */
int cv_workhours_parse(const char *json, cv_workhours_t *out, char *err,
                       size_t err_size);

/* Whether the hours were set (false: always available). */
bool cv_workhours_is_set(const cv_workhours_t *wh);

/* Whether the person works at `utc_ms`. `cal` NULL: no holidays (weekly
 * hours only); `team` selects the calendar's team overrides (may be NULL).
 * An unset wh is always open. */
bool cv_workhours_open_at(const cv_workhours_t *wh, const cv_tz_t *tz,
                          const cv_calendar_t *cal, const char *team,
                          int64_t utc_ms);

/* The first instant at or after `utc_ms` when the person works: utc_ms
 * itself when open. Returns INT64_MAX when the hours have no working
 * minute in the next 400 days (every day empty). */
int64_t cv_workhours_next_open(const cv_workhours_t *wh, const cv_tz_t *tz,
                               const cv_calendar_t *cal, const char *team,
                               int64_t utc_ms);

/* The instant `minutes` working minutes after `from_ms`: a lead at Friday
 * 17:50 with hours 09:00-18:00 and 30 minutes is due Monday 09:20 (or the
 * next working day's 09:20 after holidays). minutes <= 0 gives
 * cv_workhours_next_open(from_ms). An unset wh counts every minute.
 * Returns INT64_MAX when there is no working time. */
int64_t cv_workhours_add_minutes(const cv_workhours_t *wh, const cv_tz_t *tz,
                                 const cv_calendar_t *cal, const char *team,
                                 int64_t from_ms, int64_t minutes);

/* The end of the person's working day containing (or, when closed, next
 * following) `utc_ms`: the end of the last interval of that local day.
 * For "by the end of the next business day" tasks. INT64_MAX when none. */
int64_t cv_workhours_day_end(const cv_workhours_t *wh, const cv_tz_t *tz,
                             const cv_calendar_t *cal, const char *team,
                             int64_t utc_ms);

/* The same local time of day `days` working days after `from_ms` (days
 * the person works: weekly hours less holidays; for unset hours, the
 * calendar's business days), kept within that day's hours (its start when
 * earlier, its end when later). "2 business days after a Thursday 15:00
 * presentation" is Monday 15:00 (Tuesday after a Monday holiday). days
 * <= 0 gives cv_workhours_next_open(from_ms). INT64_MAX when none. */
int64_t cv_workhours_add_days(const cv_workhours_t *wh, const cv_tz_t *tz,
                              const cv_calendar_t *cal, const char *team,
                              int64_t from_ms, int days);

#endif

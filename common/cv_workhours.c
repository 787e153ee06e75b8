/* cv_workhours: weekly hours in a zone and a calendar.
 *
 * Everything walks local days: for each local date from the one holding
 * the start instant, the day's intervals (weekly hours, less holidays,
 * plus stand-in hours on a worked weekend date) are turned into UTC
 * instants with cv_tz_from_local, so DST changes fall out of the zone's
 * own rules. */
#include "cv_workhours.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_clock.h"

#define WH_SEARCH_DAYS 400     /* how far to look for an open minute */
#define WH_ADD_DAYS_MAX 36600  /* how far add_minutes may walk (100 years) */
#define WH_MS_PER_MIN 60000LL

static const char *const wh_day_names[7] = {"sun", "mon", "tue", "wed",
                                            "thu", "fri", "sat"};

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

static int wh_fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int wh_fail(char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int wh_day_index(const char *key)
{
    static const char *const long_names[7] = {
        "sunday", "monday", "tuesday", "wednesday",
        "thursday", "friday", "saturday"};
    for (int i = 0; i < 7; i++) {
        if (strcasecmp(key, wh_day_names[i]) == 0 ||
            strcasecmp(key, long_names[i]) == 0)
            return i;
    }
    return -1;
}

/* "HH:MM" (or "H:MM") into minutes; "24:00" allowed only as an end. */
static int wh_clock(const char *s, size_t n, bool is_end, int *out)
{
    int h = 0;
    int m = 0;
    size_t i = 0;
    int digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 2) {
        h = h * 10 + (s[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || i >= n || s[i] != ':' || n - i != 3)
        return -1;
    if (s[i + 1] < '0' || s[i + 1] > '9' || s[i + 2] < '0' || s[i + 2] > '9')
        return -1;
    m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !is_end)))
        return -1;
    *out = h * 60 + m;
    return 0;
}

/* One "09:00-18:00" into a span. */
static int wh_span(const char *s, size_t n, cv_workhours_span_t *span)
{
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    const char *dash = memchr(s, '-', n);
    int start = 0;
    int end = 0;
    if (dash == NULL || wh_clock(s, (size_t)(dash - s), false, &start) != 0)
        return -1;
    dash++;
    while (*dash == ' ')
        dash++;
    if (wh_clock(dash, n - (size_t)(dash - s), true, &end) != 0 ||
        end <= start)
        return -1;
    span->start_min = (int16_t)start;
    span->end_min = (int16_t)end;
    return 0;
}

static int wh_cmp_span(const void *a, const void *b)
{
    const cv_workhours_span_t *x = a;
    const cv_workhours_span_t *y = b;
    return (x->start_min > y->start_min) - (x->start_min < y->start_min);
}

/* A day's text "09:00-13:00,14:00-18:00" ("" = off) into out->span[day]. */
static int wh_day(const char *name, const char *text, int day,
                  cv_workhours_t *out, char *err, size_t err_size)
{
    const char *p = text;
    uint8_t count = 0;
    while (*p == ' ')
        p++;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma == NULL ? strlen(p) : (size_t)(comma - p);
        if (count >= CV_WORKHOURS_SPANS)
            return wh_fail(err, err_size, "'%s': more than %d intervals", name,
                           CV_WORKHOURS_SPANS);
        if (wh_span(p, n, &out->span[day][count]) != 0)
            return wh_fail(err, err_size,
                           "'%s': '%.*s' is not HH:MM-HH:MM", name, (int)n, p);
        count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    qsort(out->span[day], count, sizeof(out->span[day][0]), wh_cmp_span);
    for (uint8_t i = 1; i < count; i++) {
        if (out->span[day][i].start_min < out->span[day][i - 1].end_min)
            return wh_fail(err, err_size, "'%s': intervals overlap", name);
    }
    out->span_count[day] = count;
    return 0;
}

int cv_workhours_parse(const char *json, cv_workhours_t *out, char *err,
                       size_t err_size)
{
    int rc = -1;
    json_t *root = NULL;
    memset(out, 0, sizeof(*out));
    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (json == NULL || json[0] == '\0')
        return 0;
    json_error_t jerr;
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        wh_fail(err, err_size, "working hours are not JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        wh_fail(err, err_size, "working hours must be an object of days "
                               "like {\"mon\":\"09:00-18:00\"}");
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        int day = wh_day_index(key);
        if (day < 0) {
            wh_fail(err, err_size, "'%s' is not a day (mon..sun)", key);
            goto out;
        }
        if (json_is_null(value))
            continue;
        if (!json_is_string(value)) {
            wh_fail(err, err_size, "'%s': hours must be a string such as "
                                   "\"09:00-18:00\"", key);
            goto out;
        }
        if (wh_day(key, json_string_value(value), day, out, err, err_size) !=
            0)
            goto out;
    }
    out->set = true;
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

bool cv_workhours_is_set(const cv_workhours_t *wh)
{
    return wh != NULL && wh->set;
}

/* ------------------------------------------------------------------ */
/* Local days                                                          */

/* cv_clock_civil_from_days with an int year (struct tm's range). */
static void wh_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t year;
    cv_clock_civil_from_days(z, &year, m, d);
    *y = (int)year;
}

/* One local day's working intervals as UTC instants. */
typedef struct {
    int count;                        /* intervals */
    int64_t start[CV_WORKHOURS_SPANS]; /* UTC ms, ascending */
    int64_t end[CV_WORKHOURS_SPANS];   /* UTC ms, each > its start */
} wh_day_t;

/* The day number of the local date holding `utc_ms`; -1 on failure
 * (reported as INT64_MIN). */
static int64_t wh_local_day(const cv_tz_t *tz, int64_t utc_ms)
{
    struct tm local;
    if (cv_tz_to_local(tz, utc_ms, &local, NULL) != 0)
        return INT64_MIN;
    return cv_clock_days_from_civil((int64_t)local.tm_year + 1900, local.tm_mon + 1,
                              local.tm_mday);
}

/* The weekly intervals that apply on local day `day_no`, in minutes. */
static int wh_day_spans(const cv_workhours_t *wh, const cv_calendar_t *cal,
                        const char *team, int64_t day_no,
                        const cv_workhours_span_t **spans)
{
    int y;
    int m;
    int d;
    wh_civil_from_days(day_no, &y, &m, &d);
    int64_t w64 = (day_no + 4) % 7;
    int wday = (int)(w64 < 0 ? w64 + 7 : w64);
    cv_calendar_mark_t mark = cal == NULL
                                  ? CV_CALENDAR_REGULAR
                                  : cv_calendar_mark(cal, team, y, m, d);
    if (mark == CV_CALENDAR_HOLIDAY)
        return 0;
    if (wh->span_count[wday] > 0) {
        *spans = wh->span[wday];
        return wh->span_count[wday];
    }
    if (mark != CV_CALENDAR_WORKDAY)
        return 0;
    /* a worked weekend date: the hours of the first working weekday */
    for (int i = 1; i <= 7; i++) {
        int w = i % 7; /* Monday first */
        if (wh->span_count[w] > 0 && !cv_calendar_is_weekend(cal, team, w)) {
            *spans = wh->span[w];
            return wh->span_count[w];
        }
    }
    return 0;
}

static int64_t wh_instant(const cv_tz_t *tz, int y, int m, int d, int minute)
{
    struct tm local;
    memset(&local, 0, sizeof(local));
    local.tm_year = y - 1900;
    local.tm_mon = m - 1;
    local.tm_mday = d;
    local.tm_hour = minute / 60;
    local.tm_min = minute % 60;
    return cv_tz_from_local(tz, &local);
}

static void wh_day_get(const cv_workhours_t *wh, const cv_tz_t *tz,
                       const cv_calendar_t *cal, const char *team,
                       int64_t day_no, wh_day_t *out)
{
    const cv_workhours_span_t *spans = NULL;
    int n = wh_day_spans(wh, cal, team, day_no, &spans);
    int y;
    int m;
    int d;
    wh_civil_from_days(day_no, &y, &m, &d);
    out->count = 0;
    for (int i = 0; i < n; i++) {
        int64_t s = wh_instant(tz, y, m, d, spans[i].start_min);
        int64_t e = wh_instant(tz, y, m, d, spans[i].end_min);
        if (e <= s)
            continue; /* an interval swallowed by a DST gap */
        out->start[out->count] = s;
        out->end[out->count] = e;
        out->count++;
    }
}

/* ------------------------------------------------------------------ */
/* Arithmetic                                                          */

/* The default zone when the caller has none: UTC. */
static const cv_tz_t *wh_zone(const cv_tz_t *tz)
{
    return tz != NULL ? tz : cv_tz_get("UTC");
}

int64_t cv_workhours_next_open(const cv_workhours_t *wh, const cv_tz_t *tz,
                               const cv_calendar_t *cal, const char *team,
                               int64_t utc_ms)
{
    if (!cv_workhours_is_set(wh))
        return utc_ms;
    tz = wh_zone(tz);
    int64_t first = wh_local_day(tz, utc_ms);
    if (tz == NULL || first == INT64_MIN)
        return INT64_MAX;
    for (int64_t k = 0; k <= WH_SEARCH_DAYS; k++) {
        wh_day_t day;
        wh_day_get(wh, tz, cal, team, first + k, &day);
        for (int i = 0; i < day.count; i++) {
            if (utc_ms < day.end[i])
                return utc_ms > day.start[i] ? utc_ms : day.start[i];
        }
    }
    return INT64_MAX;
}

bool cv_workhours_open_at(const cv_workhours_t *wh, const cv_tz_t *tz,
                          const cv_calendar_t *cal, const char *team,
                          int64_t utc_ms)
{
    return cv_workhours_next_open(wh, tz, cal, team, utc_ms) == utc_ms;
}

int64_t cv_workhours_add_minutes(const cv_workhours_t *wh, const cv_tz_t *tz,
                                 const cv_calendar_t *cal, const char *team,
                                 int64_t from_ms, int64_t minutes)
{
    if (minutes <= 0)
        return cv_workhours_next_open(wh, tz, cal, team, from_ms);
    if (minutes > INT64_MAX / WH_MS_PER_MIN / 2)
        return INT64_MAX;
    int64_t left = minutes * WH_MS_PER_MIN;
    if (!cv_workhours_is_set(wh))
        return from_ms > INT64_MAX - left ? INT64_MAX : from_ms + left;
    tz = wh_zone(tz);
    int64_t first = wh_local_day(tz, from_ms);
    if (tz == NULL || first == INT64_MIN)
        return INT64_MAX;
    int64_t idle = 0; /* days in a row with no working time */
    for (int64_t k = 0; k <= WH_ADD_DAYS_MAX && idle <= WH_SEARCH_DAYS; k++) {
        wh_day_t day;
        wh_day_get(wh, tz, cal, team, first + k, &day);
        bool used = false;
        for (int i = 0; i < day.count; i++) {
            if (from_ms >= day.end[i])
                continue;
            int64_t start = from_ms > day.start[i] ? from_ms : day.start[i];
            int64_t avail = day.end[i] - start;
            used = true;
            if (left <= avail)
                return start + left;
            left -= avail;
        }
        idle = used ? 0 : idle + 1;
    }
    return INT64_MAX;
}

int64_t cv_workhours_day_end(const cv_workhours_t *wh, const cv_tz_t *tz,
                             const cv_calendar_t *cal, const char *team,
                             int64_t utc_ms)
{
    tz = wh_zone(tz);
    int64_t first = tz == NULL ? INT64_MIN : wh_local_day(tz, utc_ms);
    if (first == INT64_MIN)
        return INT64_MAX;
    if (!cv_workhours_is_set(wh)) {
        /* always open: the end of the local day */
        int y;
        int m;
        int d;
        wh_civil_from_days(first, &y, &m, &d);
        return wh_instant(tz, y, m, d, 1440);
    }
    for (int64_t k = 0; k <= WH_SEARCH_DAYS; k++) {
        wh_day_t day;
        wh_day_get(wh, tz, cal, team, first + k, &day);
        if (day.count > 0 && day.end[day.count - 1] > utc_ms)
            return day.end[day.count - 1];
    }
    return INT64_MAX;
}

int64_t cv_workhours_add_days(const cv_workhours_t *wh, const cv_tz_t *tz,
                              const cv_calendar_t *cal, const char *team,
                              int64_t from_ms, int days)
{
    tz = wh_zone(tz);
    struct tm local;
    if (tz == NULL || cv_tz_to_local(tz, from_ms, &local, NULL) != 0)
        return INT64_MAX;
    int64_t day_no = cv_clock_days_from_civil((int64_t)local.tm_year + 1900,
                                        local.tm_mon + 1, local.tm_mday);
    int found = 0;
    for (int64_t k = 1; k <= WH_ADD_DAYS_MAX && found < days; k++) {
        int y;
        int m;
        int d;
        wh_civil_from_days(day_no + k, &y, &m, &d);
        bool working;
        if (cv_workhours_is_set(wh)) {
            const cv_workhours_span_t *spans = NULL;
            working = wh_day_spans(wh, cal, team, day_no + k, &spans) > 0;
        } else {
            working = cal == NULL || cv_calendar_is_workday(cal, team, y, m, d);
        }
        if (!working)
            continue;
        if (++found < days)
            continue;
        struct tm at = local;
        at.tm_year = y - 1900;
        at.tm_mon = m - 1;
        at.tm_mday = d;
        int64_t t = cv_tz_from_local(tz, &at);
        if (!cv_workhours_is_set(wh))
            return t;
        /* within that day's hours: its start when earlier, its end when
         * later, the next interval when between two */
        wh_day_t day;
        wh_day_get(wh, tz, cal, team, day_no + k, &day);
        for (int i = 0; i < day.count; i++) {
            if (t < day.end[i])
                return t > day.start[i] ? t : day.start[i];
        }
        return day.count > 0 ? day.end[day.count - 1] : t;
    }
    return days <= 0 ? cv_workhours_next_open(wh, tz, cal, team, from_ms)
                     : INT64_MAX;
}

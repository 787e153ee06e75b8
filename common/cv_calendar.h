/* cv_calendar: business days — weekends, public holidays and transferred
 * working days.
 *
 * The built-in calendar is the Russian production calendar
 * (deploy/calendar-ru.yaml, compiled into the library the way the scoring
 * rules are); a YAML file in the same format replaces it (config key
 * `calendar_file`). A calendar may carry per-team overrides: a team has its
 * own weekend days and extra holidays and working days on top of the
 * common ones (a team in Dubai works Sunday and rests Friday-Saturday).
 *
 * The file format (deploy/calendar-ru.yaml documents it):
 *
 *     weekend: [sat, sun]
 *     holidays:
 *       - 2026-01-01      # New Year holidays
 *     workdays:
 *       - 2025-11-01      # Saturday, working: its rest moved to 3 Nov
 *     teams:
 *       dubai:
 *         weekend: [fri, sat]
 *         holidays: [2026-03-20]
 *
 * Dates are local calendar dates, with no time zone: a date is a business
 * day or not wherever the person is; the caller converts instants to a
 * person's local date (cv_tz) first.
 *
 * A calendar is immutable once loaded and may be read from any thread. */
#ifndef CV_CALENDAR_H
#define CV_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cv_calendar cv_calendar_t;

/* Loads the calendar file at `path`, or the built-in one when `path` is
 * NULL. Returns a calendar the caller owns (free with cv_calendar_free),
 * or NULL with the reason in err, naming the file and line:
 *     "deploy/cal.yaml:12: '2026-02-30' is not a date" */
cv_calendar_t *cv_calendar_load(const char *path, char *err, size_t err_size);

/* Parses calendar text already in memory; `name` is used in errors. */
cv_calendar_t *cv_calendar_parse(const char *text, const char *name, char *err,
                                 size_t err_size);

/* Frees *cal_p and sets it to NULL; NULL-safe. */
void cv_calendar_free(cv_calendar_t **cal_p);

/* Whether year-month-day (month 1-12) is a working day for `team` (NULL or
 * a team the calendar does not name: the common calendar). A transferred
 * working day (a Saturday worked) is a working day; a holiday on a weekday
 * is not. Dates outside the years the file lists follow the weekend rule
 * only. */
bool cv_calendar_is_workday(const cv_calendar_t *cal, const char *team,
                            int year, int month, int day);

/* How the calendar lists a date, before the weekend rule is applied. */
typedef enum {
    CV_CALENDAR_REGULAR, /* not listed: the weekend rule decides */
    CV_CALENDAR_HOLIDAY, /* listed as a day off */
    CV_CALENDAR_WORKDAY, /* listed as a worked (weekend) day */
} cv_calendar_mark_t;

/* The listing of year-month-day for `team` (team lists first, then the
 * common ones unless the team has `inherit: false`). REGULAR for a NULL
 * calendar or an invalid date. */
cv_calendar_mark_t cv_calendar_mark(const cv_calendar_t *cal, const char *team,
                                    int year, int month, int day);

/* Whether weekday `wday` (0 = Sunday) is a regular day off for `team`
 * (NULL calendar: Saturday and Sunday). */
bool cv_calendar_is_weekend(const cv_calendar_t *cal, const char *team,
                            int wday);

/* The process's calendar: the file given to cv_calendar_use_file, else
 * the built-in one, loaded on first use and owned by the process. Never
 * NULL (the build checks the built-in file). Thread-safe. */
const cv_calendar_t *cv_calendar_default(void);

/* Makes the calendar file at `path` (config `calendar_file`; NULL or "":
 * keep the built-in one) the process's calendar. Call once at start,
 * before any cv_calendar_default (cv_service_new does). 0, or -1 with the
 * file, line and reason in err. */
int cv_calendar_use_file(const char *path, char *err, size_t err_size);

/* The text of the built-in calendar (deploy/calendar-ru.yaml as
 * compiled in); static, never freed. */
const char *cv_calendar_builtin_text(void);

#endif

/* cv_tz: IANA time zones, read from the system's zoneinfo files.
 *
 * A zone is loaded once per process from /usr/share/zoneinfo/<name> (the
 * TZif format, version 2 or later: the 64-bit transition table, then the
 * POSIX TZ string in the footer for instants after the last transition),
 * and kept for the life of the process; nothing here touches the TZ
 * environment variable or the C library's localtime state, so any number
 * of zones may be used at once from any thread.
 *
 * "Local" times are a struct tm read as a wall clock in the zone:
 * tm_year (years since 1900), tm_mon (0-11), tm_mday, tm_hour, tm_min,
 * tm_sec; cv_tz_to_local also fills tm_wday (0 = Sunday), tm_yday and
 * tm_isdst. */
#ifndef CV_TZ_H
#define CV_TZ_H

#include <stdint.h>
#include <time.h>

typedef struct cv_tz cv_tz_t;

/* The zone called `name` ("Europe/Moscow", "Asia/Novosibirsk", "UTC").
 * The zone is owned by the process-wide cache and lives until exit; the
 * caller never frees it. Thread-safe. Returns NULL when the name is not a
 * zone (unknown, not TZif, or a path that tries to leave the zoneinfo
 * folder such as "../etc/passwd"). */
const cv_tz_t *cv_tz_get(const char *name);

/* The zone's name as given to cv_tz_get. */
const char *cv_tz_name(const cv_tz_t *tz);

/* The wall time in `tz` at the instant `utc_ms` (milliseconds since the
 * Unix epoch); *offset_s (may be NULL) gets the offset from UTC in
 * seconds (10800 for Moscow). Returns 0, or -1 when an argument is NULL
 * or the instant is out of range. */
int cv_tz_to_local(const cv_tz_t *tz, int64_t utc_ms, struct tm *local,
                   int *offset_s);

/* The instant, in UTC milliseconds, of the wall time `local` in `tz`
 * (tm_wday, tm_yday and tm_isdst are ignored; fields out of range are
 * normalised as mktime does: 25:00 is 01:00 the next day). A wall time
 * inside a DST gap (02:30 on the night clocks go 02:00 -> 03:00) moves
 * forward by the gap (to 03:30); an ambiguous one (02:30 on the night
 * clocks go 03:00 -> 02:00) takes the earlier instant. Returns INT64_MIN
 * when an argument is NULL. */
int64_t cv_tz_from_local(const cv_tz_t *tz, const struct tm *local);

#endif

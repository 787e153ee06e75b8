/* cv_clock: the one clock every service reads.
 *
 * The conveyor's time is the wall clock plus a whole number of seconds read
 * from the file named by CONVEYOR_CLOCK_FILE (the variable and the file are
 * looked at again at most every 100 ms; a missing or unreadable file counts
 * as 0). Tests move time forward across
 * all processes at once by writing that file. Thread-safe. */
#ifndef CV_CLOCK_H
#define CV_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch on the conveyor clock. */
int64_t cv_clock_now_ms(void);

/* Milliseconds from an arbitrary start, never going backwards; for
 * timeouts and latency, not for business time. */
int64_t cv_clock_monotonic_ms(void);

/* The same clock in microseconds, for pauses too short to see in ms. */
int64_t cv_clock_monotonic_us(void);

/* The conveyor-clock time (ms) at which the monotonic deadline
 * `monotonic_ms` falls, or now when it has passed: for a source's next_due
 * when the wait itself must not follow a test clock that stands still. */
int64_t cv_clock_now_at_monotonic(int64_t monotonic_ms);

/* Bytes of "2026-11-22T15:41:18.123Z" with its NUL. */
#define CV_CLOCK_FORMAT_SIZE 25

/* Writes `ms` as RFC 3339 UTC with milliseconds ("2026-11-22T15:41:18.123Z")
 * into buf (at least CV_CLOCK_FORMAT_SIZE bytes; years outside 0-9999 need
 * more). Returns buf. */
char *cv_clock_format(int64_t ms, char *buf, size_t size);

/* Parses RFC 3339 ("2026-11-22T15:41:18Z", fractional seconds and
 * "+03:00" offsets allowed) or a plain date ("2026-11-22", midnight UTC).
 * Returns 0 and sets *ms, or -1 when the text is not such a time. */
int cv_clock_parse(const char *text, int64_t *ms);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12),
 * and back: the calendar arithmetic every time module shares (Howard
 * Hinnant's days_from_civil and civil_from_days). */
int64_t cv_clock_days_from_civil(int64_t y, int m, int d);
void cv_clock_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif

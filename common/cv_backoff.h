/* cv_backoff: when to try again after a failed delivery.
 *
 * Exponential backoff with jitter: the nominal delay before attempt n + 1
 * (after n failed attempts) is base * 2^(n - 1), capped; the actual delay
 * is drawn from the upper quarter below it, [3/4 d, d], so that many jobs
 * failing together do not retry in lock-step and the cap is never passed.
 * A server's `Retry-After: <seconds>` replaces the computed delay.
 * Pure functions: the caller supplies the random bits. */
#ifndef CV_BACKOFF_H
#define CV_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#define CV_BACKOFF_BASE_MS 250            /* the first retry's delay */
#define CV_BACKOFF_CAP_MS 60000           /* no computed delay is longer */
#define CV_BACKOFF_RETRY_AFTER_MAX_MS 3600000 /* a Retry-After is cut to 1 h */

/* The nominal delay (no jitter) after `failures` failed attempts (>= 1;
 * smaller counts as 1): min(base_ms * 2^(failures - 1), cap_ms). Returns
 * base_ms when base_ms >= cap_ms. */
int64_t cv_backoff_nominal_ms(int failures, int64_t base_ms, int64_t cap_ms);

/* The nominal delay with jitter taken from `random_bits`: a value in
 * [d - d/4, d] where d is cv_backoff_nominal_ms(failures, base, cap). */
int64_t cv_backoff_delay_ms(int failures, int64_t base_ms, int64_t cap_ms,
                            uint32_t random_bits);

/* Parses the value of a Retry-After header given in seconds (surrounding
 * blanks allowed). Sets *delay_ms to the delay, clamped to
 * [min_ms, CV_BACKOFF_RETRY_AFTER_MAX_MS], and returns true; returns false
 * (leaving *delay_ms alone) for NULL, an HTTP date or anything else. */
bool cv_backoff_parse_retry_after(const char *value, int64_t min_ms,
                                  int64_t *delay_ms);

#endif

/* cv_ratelimit: a token bucket per key (an intake source), so one noisy
 * sender cannot crowd out the others.
 *
 * Each key may make `rate` requests per second on average and `burst` at
 * once; a request that finds the bucket empty is refused with the time
 * until a token is back (the `Retry-After` of a 429). Time is the
 * monotonic clock in milliseconds, passed in so tests can drive it. Safe
 * to call from several threads (the HTTP server's). */
#ifndef CV_RATELIMIT_H
#define CV_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cv_ratelimit cv_ratelimit_t;

/* A limiter whose keys get `spec` ("RATE[/BURST]", e.g. "100/200"; "0" =
 * unlimited; BURST defaults to RATE, at least 1) unless `overrides`
 * ("key:RATE[/BURST],…", may be NULL or "") names them. Returns NULL after
 * logging why when a spec does not parse. The caller owns the limiter. */
cv_ratelimit_t *cv_ratelimit_new(const char *spec, const char *overrides);
/* NULL-safe; nulls *self_p. */
void cv_ratelimit_destroy(cv_ratelimit_t **self_p);

/* Takes one token from `key`'s bucket at time `now_ms`. Returns true when
 * the request may go ahead; false when the bucket is empty, with
 * *retry_after_ms (if not NULL) set to when the next token arrives. */
bool cv_ratelimit_take(cv_ratelimit_t *self, const char *key, int64_t now_ms,
                       int64_t *retry_after_ms);

/* Parses "RATE[/BURST]" into its numbers. Returns 0, or -1 when it is not
 * of that form (negative, not a number, trailing text). */
int cv_ratelimit_parse(const char *spec, double *rate, double *burst);

#endif

/* cv_backoff: exponential backoff with jitter, and Retry-After. */
#include "cv_backoff.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int64_t cv_backoff_nominal_ms(int failures, int64_t base_ms, int64_t cap_ms)
{
    if (base_ms <= 0)
        base_ms = 1;
    if (base_ms >= cap_ms)
        return base_ms;
    int64_t delay = base_ms;
    /* Doubling stops at the cap, so the loop runs at most ~63 times and
     * never overflows. */
    for (int i = 1; i < failures && delay < cap_ms; i++)
        delay *= 2;
    return delay < cap_ms ? delay : cap_ms;
}

int64_t cv_backoff_delay_ms(int failures, int64_t base_ms, int64_t cap_ms,
                            uint32_t random_bits)
{
    int64_t nominal = cv_backoff_nominal_ms(failures, base_ms, cap_ms);
    int64_t spread = nominal / 4;
    if (spread == 0)
        return nominal;
    return nominal - (int64_t)(random_bits % (uint64_t)(spread + 1));
}

bool cv_backoff_parse_retry_after(const char *value, int64_t min_ms,
                                  int64_t *delay_ms)
{
    if (value == NULL)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!isdigit((unsigned char)*value))
        return false;
    errno = 0;
    char *end = NULL;
    long long seconds = strtoll(value, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != '\0')
        return false;
    int64_t ms = CV_BACKOFF_RETRY_AFTER_MAX_MS;
    if (errno != ERANGE && seconds < CV_BACKOFF_RETRY_AFTER_MAX_MS / 1000)
        ms = (int64_t)seconds * 1000;
    if (ms < min_ms)
        ms = min_ms;
    *delay_ms = ms;
    return true;
}

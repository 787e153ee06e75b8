/* notifier_retry: what the outcome of an attempt means — delivered, try
 * again (and when a receiver asked us to), or a dead letter. Pure
 * functions, unit-tested in tests/unit/test_notifier_retry.c. */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "cv_backoff.h"
#include "notifier.h"

bool notifier_status_permanent(notifier_channel_t channel, int status)
{
    if (channel == NOTIFIER_EMAIL)
        return status >= 500 && status <= 599; /* SMTP: 5xx is final */
    /* HTTP: the request itself is wrong (bad chat id, unknown hook, bot
     * blocked) — except a timeout and "too many requests" */
    return status >= 400 && status <= 499 && status != 408 && status != 429;
}

notifier_verdict_t notifier_verdict(const notifier_job_t *job, int max_attempts)
{
    if (job->delivered)
        return NOTIFIER_VERDICT_DELIVERED;
    if (job->permanent ||
        notifier_status_permanent(job->channel, job->http_status))
        return NOTIFIER_VERDICT_DEAD;
    if (max_attempts > 0 && job->attempts >= max_attempts)
        return NOTIFIER_VERDICT_DEAD;
    return NOTIFIER_VERDICT_RETRY;
}

/* The forms of an HTTP date (RFC 9110 §5.6.7): the preferred IMF-fixdate
 * and the two obsolete ones a recipient must still accept. */
static const char *const notifier_http_date_formats[] = {
    "%a, %d %b %Y %H:%M:%S GMT", /* Sun, 06 Nov 1994 08:49:37 GMT */
    "%A, %d-%b-%y %H:%M:%S GMT", /* Sunday, 06-Nov-94 08:49:37 GMT */
    "%a %b %e %H:%M:%S %Y",      /* Sun Nov  6 08:49:37 1994 */
};

/* Seconds since the epoch of an HTTP date, or -1. strptime reads day and
 * month names in the C locale, which the services never leave. */
static int64_t notifier_http_date(const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    for (size_t i = 0; i < sizeof(notifier_http_date_formats) /
                               sizeof(notifier_http_date_formats[0]);
         i++) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(value, notifier_http_date_formats[i], &tm);
        if (end == NULL)
            continue;
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end != '\0')
            continue;
        time_t at = timegm(&tm);
        if (at == (time_t)-1)
            continue;
        return (int64_t)at;
    }
    return -1;
}

bool notifier_retry_after(const char *value, int64_t now_ms, int64_t min_ms,
                          int64_t *delay_ms)
{
    if (value == NULL)
        return false;
    if (cv_backoff_parse_retry_after(value, min_ms, delay_ms))
        return true;
    int64_t at = notifier_http_date(value);
    if (at < 0)
        return false;
    int64_t delay = at * 1000 - now_ms;
    if (delay < min_ms)
        delay = min_ms;
    if (delay > CV_BACKOFF_RETRY_AFTER_MAX_MS)
        delay = CV_BACKOFF_RETRY_AFTER_MAX_MS;
    *delay_ms = delay;
    return true;
}

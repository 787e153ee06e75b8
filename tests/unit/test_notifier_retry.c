/* When the notifier tries again and when it gives up (services/notifier/
 * notifier_retry.c): a receiver's Retry-After in seconds or as an HTTP
 * date, and the dead-letter decision after each attempt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* the service's own API; the test links its objects (Makefile) */
#include <jansson.h>

#include "cv_backoff.h"
#include "../../services/notifier/notifier.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date, in ms */
#define EXAMPLE_DATE_MS 784111777000LL

static void test_retry_after_in_seconds(void **state)
{
    (void)state;
    int64_t delay = -1;
    assert_true(notifier_retry_after("120", EXAMPLE_DATE_MS, 250, &delay));
    assert_int_equal(delay, 120000);
    assert_true(notifier_retry_after("0", EXAMPLE_DATE_MS, 250, &delay));
    assert_int_equal(delay, 250);
}

static void test_retry_after_as_http_date(void **state)
{
    (void)state;
    int64_t delay = -1;
    /* thirty seconds before the server's date */
    assert_true(notifier_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                     EXAMPLE_DATE_MS - 30000, 250, &delay));
    assert_int_equal(delay, 30000);
    /* the two obsolete forms a recipient must accept */
    assert_true(notifier_retry_after("Sunday, 06-Nov-94 08:49:37 GMT",
                                     EXAMPLE_DATE_MS - 2000, 250, &delay));
    assert_int_equal(delay, 2000);
    assert_true(notifier_retry_after("Sun Nov  6 08:49:37 1994",
                                     EXAMPLE_DATE_MS - 1500, 250, &delay));
    assert_int_equal(delay, 1500);
}

static void test_retry_after_date_in_the_past_or_far_future(void **state)
{
    (void)state;
    int64_t delay = -1;
    assert_true(notifier_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                     EXAMPLE_DATE_MS + 60000, 250, &delay));
    assert_int_equal(delay, 250);
    assert_true(notifier_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                     EXAMPLE_DATE_MS - 86400000LL, 250,
                                     &delay));
    assert_int_equal(delay, CV_BACKOFF_RETRY_AFTER_MAX_MS);
}

static void test_retry_after_garbage_is_ignored(void **state)
{
    (void)state;
    int64_t delay = 7;
    assert_false(notifier_retry_after(NULL, EXAMPLE_DATE_MS, 250, &delay));
    assert_false(notifier_retry_after("soon", EXAMPLE_DATE_MS, 250, &delay));
    assert_false(notifier_retry_after("-5", EXAMPLE_DATE_MS, 250, &delay));
    assert_false(notifier_retry_after("Sun, 06 Nov 1994 08:49:37 GMT junk",
                                      EXAMPLE_DATE_MS, 250, &delay));
    assert_int_equal(delay, 7);
}

/* A job after `attempts` attempts whose last one ended with `status`. */
static notifier_job_t attempt(notifier_channel_t channel, int attempts,
                              int status)
{
    notifier_job_t job;
    memset(&job, 0, sizeof(job));
    job.channel = channel;
    job.attempts = attempts;
    job.http_status = status;
    job.delivered = status >= 200 && status <= 299;
    return job;
}

static void test_server_errors_retry_until_attempts_run_out(void **state)
{
    (void)state;
    notifier_job_t job = attempt(NOTIFIER_WEBHOOK, 1, 500);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_RETRY);
    job = attempt(NOTIFIER_WEBHOOK, 4, 503);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_RETRY);
    job = attempt(NOTIFIER_WEBHOOK, 5, 500);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_DEAD);
    /* no answer at all (connection refused) counts the same */
    job = attempt(NOTIFIER_SLACK, 2, 0);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_RETRY);
    job = attempt(NOTIFIER_SLACK, 5, 0);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_DEAD);
}

static void test_client_errors_are_dead_at_once(void **state)
{
    (void)state;
    /* Telegram "chat not found", a deleted Slack hook, a gone endpoint */
    const int permanent[] = {400, 403, 404, 410, 422};
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
        notifier_job_t job = attempt(NOTIFIER_TELEGRAM, 1, permanent[i]);
        assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_DEAD);
    }
    /* a timeout and "too many requests" are worth another try */
    notifier_job_t job = attempt(NOTIFIER_TELEGRAM, 1, 429);
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_RETRY);
    job = attempt(NOTIFIER_WEBHOOK, 1, 408);
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_RETRY);
}

static void test_smtp_codes(void **state)
{
    (void)state;
    notifier_job_t job = attempt(NOTIFIER_EMAIL, 1, 550); /* no mailbox */
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_DEAD);
    job = attempt(NOTIFIER_EMAIL, 1, 451); /* greylisted, try later */
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_RETRY);
    job = attempt(NOTIFIER_EMAIL, 1, 421);
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_RETRY);
}

static void test_delivered_and_refused_for_good(void **state)
{
    (void)state;
    notifier_job_t job = attempt(NOTIFIER_WEBHOOK, 7, 204);
    assert_int_equal(notifier_verdict(&job, 5), NOTIFIER_VERDICT_DELIVERED);
    /* no bot token configured: no point trying again */
    job = attempt(NOTIFIER_TELEGRAM, 1, 0);
    job.permanent = true;
    assert_int_equal(notifier_verdict(&job, 20), NOTIFIER_VERDICT_DEAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_in_seconds),
        cmocka_unit_test(test_retry_after_as_http_date),
        cmocka_unit_test(test_retry_after_date_in_the_past_or_far_future),
        cmocka_unit_test(test_retry_after_garbage_is_ignored),
        cmocka_unit_test(test_server_errors_retry_until_attempts_run_out),
        cmocka_unit_test(test_client_errors_are_dead_at_once),
        cmocka_unit_test(test_smtp_codes),
        cmocka_unit_test(test_delivered_and_refused_for_good),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The notifier's per-destination rate limits (services/notifier/
 * notifier_limits.c): Telegram's 30 messages a second per bot and one a
 * second per chat, a budget per webhook host with per-host overrides, and
 * one for the mail server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* the service's own API; the test links its objects (Makefile) */
#include "../../services/notifier/notifier.h"

static notifier_job_t job_to(notifier_channel_t channel, char *destination)
{
    notifier_job_t job;
    memset(&job, 0, sizeof(job));
    job.channel = channel;
    job.destination = destination;
    return job;
}

static void test_one_message_a_second_per_chat(void **state)
{
    (void)state;
    notifier_limits_t *limits = notifier_limits_new("", "");
    assert_non_null(limits);
    notifier_job_t anna = job_to(NOTIFIER_TELEGRAM, "100200300");
    notifier_job_t boris = job_to(NOTIFIER_TELEGRAM, "100200301");
    assert_int_equal(notifier_limits_wait(limits, &anna, 10000), 0);
    int64_t wait = notifier_limits_wait(limits, &anna, 10000);
    assert_true(wait > 900 && wait <= 1000);
    /* another chat is not held up by Anna's */
    assert_int_equal(notifier_limits_wait(limits, &boris, 10000), 0);
    /* a second later Anna's chat takes one more */
    assert_int_equal(notifier_limits_wait(limits, &anna, 11000), 0);
    notifier_limits_destroy(&limits);
    assert_null(limits);
}

static void test_thirty_a_second_per_bot(void **state)
{
    (void)state;
    notifier_limits_t *limits = notifier_limits_new(NULL, NULL);
    assert_non_null(limits);
    char chats[31][16];
    for (int i = 0; i < 30; i++) {
        snprintf(chats[i], sizeof(chats[i]), "5550%03d", i);
        notifier_job_t job = job_to(NOTIFIER_TELEGRAM, chats[i]);
        assert_int_equal(notifier_limits_wait(limits, &job, 5000), 0);
    }
    snprintf(chats[30], sizeof(chats[30]), "5550999");
    notifier_job_t late = job_to(NOTIFIER_TELEGRAM, chats[30]);
    int64_t wait = notifier_limits_wait(limits, &late, 5000);
    assert_true(wait > 0 && wait <= 34);
    notifier_limits_destroy(&limits);
}

static void test_webhook_hosts_have_their_own_budget(void **state)
{
    (void)state;
    notifier_limits_t *limits =
        notifier_limits_new("host:5/5", "hooks.slack.com:1/2,crm.partner.ru:0");
    assert_non_null(limits);
    notifier_job_t slack =
        job_to(NOTIFIER_SLACK, "https://hooks.slack.com/services/T0451/B0452/sales-team");
    notifier_job_t slack_other =
        job_to(NOTIFIER_SLACK, "https://Hooks.Slack.com/services/T0453/B0454/head-of-sales");
    notifier_job_t partner =
        job_to(NOTIFIER_WEBHOOK, "http://crm.partner.ru/hook?x=1");
    assert_int_equal(notifier_limits_wait(limits, &slack, 1000), 0);
    assert_int_equal(notifier_limits_wait(limits, &slack_other, 1000), 0);
    /* the override's burst of 2 is used up: the whole host waits */
    assert_true(notifier_limits_wait(limits, &slack, 1000) > 0);
    /* an unlimited host never waits */
    for (int i = 0; i < 100; i++)
        assert_int_equal(notifier_limits_wait(limits, &partner, 1000), 0);
    notifier_limits_destroy(&limits);
}

static void test_mail_server_budget(void **state)
{
    (void)state;
    notifier_limits_t *limits = notifier_limits_new("smtp:2/2", NULL);
    assert_non_null(limits);
    notifier_job_t mail = job_to(NOTIFIER_EMAIL, "anna@example.com");
    assert_int_equal(notifier_limits_wait(limits, &mail, 0), 0);
    assert_int_equal(notifier_limits_wait(limits, &mail, 0), 0);
    int64_t wait = notifier_limits_wait(limits, &mail, 0);
    assert_true(wait > 400 && wait <= 500);
    notifier_limits_destroy(&limits);
}

static void test_bad_rates_are_refused(void **state)
{
    (void)state;
    assert_null(notifier_limits_new("telegram:fast", NULL));
    assert_null(notifier_limits_new("pigeon:1", NULL));
    assert_null(notifier_limits_new("host:1", "hooks.slack.com"));
}

static void test_url_host(void **state)
{
    (void)state;
    char host[64];
    assert_int_equal(notifier_url_host("https://user:pw@Hooks.Slack.com:443/"
                                       "services/T0/B0/x",
                                       host, sizeof(host)),
                     0);
    assert_string_equal(host, "hooks.slack.com:443");
    assert_int_equal(
        notifier_url_host("http://127.0.0.1:8080?x", host, sizeof(host)), 0);
    assert_string_equal(host, "127.0.0.1:8080");
    assert_int_equal(
        notifier_url_host("mailto:anna@example.com", host, sizeof(host)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_message_a_second_per_chat),
        cmocka_unit_test(test_thirty_a_second_per_bot),
        cmocka_unit_test(test_webhook_hosts_have_their_own_budget),
        cmocka_unit_test(test_mail_server_budget),
        cmocka_unit_test(test_bad_rates_are_refused),
        cmocka_unit_test(test_url_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_ratelimit: a source may post its burst at once, then its rate per
 * second; the refused request learns when to come back; one source's
 * flood leaves the others alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cv_ratelimit.h"

static void test_burst_then_rate(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new("10/20", NULL);
    int64_t retry = -1;
    int allowed = 0;

    assert_non_null(rl);
    for (int i = 0; i < 25; i++)
        allowed += cv_ratelimit_take(rl, "site-form", 1000, &retry);
    assert_int_equal(allowed, 20); /* the burst, all at once */
    assert_false(cv_ratelimit_take(rl, "site-form", 1000, &retry));
    assert_int_equal(retry, 100);  /* one token per 100 ms at 10/s */
    /* 550 ms later: five more tokens */
    allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += cv_ratelimit_take(rl, "site-form", 1550, &retry);
    assert_int_equal(allowed, 5);
    /* a second later the bucket never holds more than the burst */
    allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += cv_ratelimit_take(rl, "site-form", 100000, NULL);
    assert_int_equal(allowed, 20);
    cv_ratelimit_destroy(&rl);
    assert_null(rl);
}

static void test_sources_are_separate(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new("1/2", "partner:100/100");
    int partner = 0;

    assert_non_null(rl);
    assert_true(cv_ratelimit_take(rl, "site-form", 0, NULL));
    assert_true(cv_ratelimit_take(rl, "site-form", 0, NULL));
    assert_false(cv_ratelimit_take(rl, "site-form", 0, NULL));
    /* another source still has its own bucket */
    assert_true(cv_ratelimit_take(rl, "yandex-direct", 0, NULL));
    /* the override gives the partner a bigger one */
    for (int i = 0; i < 150; i++)
        partner += cv_ratelimit_take(rl, "partner", 0, NULL);
    assert_int_equal(partner, 100);
    cv_ratelimit_destroy(&rl);
}

static void test_unlimited(void **state)
{
    (void)state;
    cv_ratelimit_t *rl = cv_ratelimit_new("0", "bench:0,slow:1");
    int64_t retry = 0;

    assert_non_null(rl);
    for (int i = 0; i < 100000; i++)
        assert_true(cv_ratelimit_take(rl, "bench", 0, NULL));
    assert_true(cv_ratelimit_take(rl, "slow", 0, NULL));
    assert_false(cv_ratelimit_take(rl, "slow", 0, &retry));
    assert_int_equal(retry, 1000);
    cv_ratelimit_destroy(&rl);
    cv_ratelimit_destroy(&rl); /* NULL-safe */
}

static void test_bad_specs(void **state)
{
    (void)state;
    double rate, burst;

    assert_int_equal(cv_ratelimit_parse("100/200", &rate, &burst), 0);
    assert_true(rate == 100 && burst == 200);
    assert_int_equal(cv_ratelimit_parse("0.5", &rate, &burst), 0);
    assert_true(rate == 0.5 && burst == 1);
    assert_int_equal(cv_ratelimit_parse("-1", &rate, &burst), -1);
    assert_int_equal(cv_ratelimit_parse("ten", &rate, &burst), -1);
    assert_int_equal(cv_ratelimit_parse("10/", &rate, &burst), -1);
    assert_int_equal(cv_ratelimit_parse("10/0", &rate, &burst), -1);
    assert_int_equal(cv_ratelimit_parse("10 per s", &rate, &burst), -1);
    assert_null(cv_ratelimit_new("fast", NULL));
    assert_null(cv_ratelimit_new("10", "no-colon"));
    assert_null(cv_ratelimit_new("10", "site:lots"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_sources_are_separate),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_bad_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

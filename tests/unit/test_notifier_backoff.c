/* The notifier's retry schedule (common/cv_backoff): 250 ms doubling,
 * capped at 60 s, jittered downwards by at most a quarter, and a server's
 * Retry-After in seconds taking precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cv_backoff.h"

static void test_nominal_doubles_from_base(void **state)
{
    (void)state;
    assert_int_equal(cv_backoff_nominal_ms(1, 250, 60000), 250);
    assert_int_equal(cv_backoff_nominal_ms(2, 250, 60000), 500);
    assert_int_equal(cv_backoff_nominal_ms(3, 250, 60000), 1000);
    assert_int_equal(cv_backoff_nominal_ms(8, 250, 60000), 32000);
}

static void test_nominal_is_capped(void **state)
{
    (void)state;
    assert_int_equal(cv_backoff_nominal_ms(9, 250, 60000), 60000);
    assert_int_equal(cv_backoff_nominal_ms(1000, 250, 60000), 60000);
    assert_int_equal(cv_backoff_nominal_ms(2147483647, 250, 60000), 60000);
}

static void test_nominal_treats_zero_failures_as_one(void **state)
{
    (void)state;
    assert_int_equal(cv_backoff_nominal_ms(0, 250, 60000), 250);
    assert_int_equal(cv_backoff_nominal_ms(-5, 250, 60000), 250);
}

static void test_jitter_stays_within_upper_quarter(void **state)
{
    (void)state;
    const uint32_t samples[] = {0, 1, 62, 63, 64, 12345, 0x7fffffffu,
                                0xffffffffu};
    for (int failures = 1; failures <= 20; failures++) {
        int64_t nominal = cv_backoff_nominal_ms(failures, 250, 60000);
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
            int64_t d = cv_backoff_delay_ms(failures, 250, 60000, samples[i]);
            assert_true(d <= nominal);
            assert_true(d >= nominal - nominal / 4);
            assert_true(d <= 60000);
        }
    }
}

static void test_jitter_varies_with_random_bits(void **state)
{
    (void)state;
    assert_int_equal(cv_backoff_delay_ms(1, 250, 60000, 0), 250);
    assert_int_equal(cv_backoff_delay_ms(1, 250, 60000, 62), 188);
    assert_int_equal(cv_backoff_delay_ms(9, 250, 60000, 15000), 45000);
}

static void test_retry_after_seconds(void **state)
{
    (void)state;
    int64_t delay = -1;
    assert_true(cv_backoff_parse_retry_after("3", 250, &delay));
    assert_int_equal(delay, 3000);
    assert_true(cv_backoff_parse_retry_after(" 120 \r\n", 250, &delay));
    assert_int_equal(delay, 120000);
}

static void test_retry_after_is_clamped(void **state)
{
    (void)state;
    int64_t delay = -1;
    assert_true(cv_backoff_parse_retry_after("0", 250, &delay));
    assert_int_equal(delay, 250);
    assert_true(cv_backoff_parse_retry_after("86400", 250, &delay));
    assert_int_equal(delay, CV_BACKOFF_RETRY_AFTER_MAX_MS);
    assert_true(cv_backoff_parse_retry_after("99999999999999999999999", 250,
                                             &delay));
    assert_int_equal(delay, CV_BACKOFF_RETRY_AFTER_MAX_MS);
}

static void test_retry_after_rejects_other_forms(void **state)
{
    (void)state;
    int64_t delay = 777;
    assert_false(cv_backoff_parse_retry_after(NULL, 250, &delay));
    assert_false(cv_backoff_parse_retry_after("", 250, &delay));
    assert_false(cv_backoff_parse_retry_after("-3", 250, &delay));
    assert_false(cv_backoff_parse_retry_after("3s", 250, &delay));
    assert_false(cv_backoff_parse_retry_after(
        "Wed, 21 Oct 2015 07:28:00 GMT", 250, &delay));
    assert_int_equal(delay, 777);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nominal_doubles_from_base),
        cmocka_unit_test(test_nominal_is_capped),
        cmocka_unit_test(test_nominal_treats_zero_failures_as_one),
        cmocka_unit_test(test_jitter_stays_within_upper_quarter),
        cmocka_unit_test(test_jitter_varies_with_random_bits),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_is_clamped),
        cmocka_unit_test(test_retry_after_rejects_other_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

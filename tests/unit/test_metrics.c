/* cv_metrics: what /metrics shows after a service counts things. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_metrics.h"

static void assert_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("'%s' not found in:\n%s", part, text);
}

static void test_counter_renders_with_service_label(void **state)
{
    (void)state;
    cv_metric_t *in = cv_metrics_counter("conveyor_events_in_total",
                                         "events received from the broker");
    assert_non_null(in);
    cv_metric_add(in, 2);
    cv_metric_add(in, 1);
    assert_int_equal(cv_metric_value(in), 3);

    /* registering the same name again gives the same counter */
    cv_metric_t *again = cv_metrics_counter("conveyor_events_in_total", "x");
    assert_ptr_equal(in, again);
    cv_metric_add(again, 1);
    assert_int_equal(cv_metric_value(in), 4);

    char *text = cv_metrics_render("scoring");
    assert_non_null(text);
    assert_contains(text, "# HELP conveyor_events_in_total events received "
                          "from the broker\n");
    assert_contains(text, "# TYPE conveyor_events_in_total counter\n");
    assert_contains(text, "conveyor_events_in_total{service=\"scoring\"} 4\n");
    free(text);
}

static void test_gauge_is_set(void **state)
{
    (void)state;
    cv_metric_t *depth = cv_metrics_gauge("conveyor_outbox_depth",
                                          "events waiting to be sent");
    cv_metric_set(depth, 17);
    cv_metric_set(depth, 5);
    assert_int_equal(cv_metric_value(depth), 5);
    char *text = cv_metrics_render("routing");
    assert_contains(text, "# TYPE conveyor_outbox_depth gauge\n");
    assert_contains(text, "conveyor_outbox_depth{service=\"routing\"} 5\n");
    free(text);
}

static void test_labelled_names_share_one_family(void **state)
{
    (void)state;
    cv_metric_t *a = cv_metrics_counter(
        "conveyor_http_requests_total{code=\"202\"}", "HTTP requests");
    cv_metric_t *b = cv_metrics_counter(
        "conveyor_http_requests_total{code=\"401\"}", "HTTP requests");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    cv_metric_add(a, 10);
    cv_metric_add(b, 1);
    char *text = cv_metrics_render("intake");
    assert_contains(text, "conveyor_http_requests_total{service=\"intake\","
                          "code=\"202\"} 10\n");
    assert_contains(text, "conveyor_http_requests_total{service=\"intake\","
                          "code=\"401\"} 1\n");
    /* one HELP and one TYPE line for the family */
    const char *first = strstr(text, "# TYPE conveyor_http_requests_total");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE conveyor_http_requests_total"));
    free(text);
}

static void test_null_metric_is_ignored(void **state)
{
    (void)state;
    cv_metric_add(NULL, 1);
    cv_metric_set(NULL, 1);
    assert_int_equal(cv_metric_value(NULL), 0);
}

static void *add_many(void *arg)
{
    cv_metric_t *m = arg;
    for (int i = 0; i < 100000; i++)
        cv_metric_add(m, 1);
    return NULL;
}

static void test_concurrent_adds_are_not_lost(void **state)
{
    (void)state;
    cv_metric_t *m = cv_metrics_counter("conveyor_test_adds_total", "adds");
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, add_many, m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(cv_metric_value(m), 400000);
}

static void test_full_registry_returns_null(void **state)
{
    (void)state;
    int registered = 0;
    cv_metric_t *last = NULL;
    for (int i = 0; i < 2000; i++) {
        char name[64];
        snprintf(name, sizeof(name), "conveyor_filler_%d", i);
        last = cv_metrics_gauge(name, "filler");
        if (last == NULL)
            break;
        registered++;
    }
    assert_null(last);
    assert_true(registered > 100);
    /* what was there before is still found and still renders */
    assert_non_null(cv_metrics_counter("conveyor_events_in_total", ""));
    char *text = cv_metrics_render("scoring");
    assert_non_null(text);
    assert_contains(text, "conveyor_events_in_total{service=\"scoring\"} 4\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_renders_with_service_label),
        cmocka_unit_test(test_gauge_is_set),
        cmocka_unit_test(test_labelled_names_share_one_family),
        cmocka_unit_test(test_null_metric_is_ignored),
        cmocka_unit_test(test_concurrent_adds_are_not_lost),
        cmocka_unit_test(test_full_registry_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cv_routing_rr: smooth weighted round-robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cv_routing_rr.h"

#define MAX_MEMBERS 8

static void init_members(cv_routing_rr_member_t *m, const char *const *ids,
                         const int *weights, size_t count)
{
    memset(m, 0, sizeof(*m) * count);
    for (size_t i = 0; i < count; i++) {
        m[i].id = ids[i];
        m[i].weight = weights[i];
        m[i].available = true;
    }
}

/* Weights 1,2,3: 600 picks give exactly 100/200/300, and every aligned
 * window of 6 picks holds 1/2/3 in the same smooth order. */
static void test_weights_1_2_3_over_600(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const int weights[] = {1, 2, 3};
    cv_routing_rr_member_t m[3];
    init_members(m, ids, weights, 3);
    int count[3] = {0, 0, 0};
    char seq[601];
    for (int i = 0; i < 600; i++) {
        int k = cv_routing_rr_pick(m, 3);
        assert_in_range(k, 0, 2);
        count[k]++;
        seq[i] = m[k].id[0];
    }
    seq[600] = '\0';
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 200);
    assert_int_equal(count[2], 300);
    /* nginx's interleaving: no run of the heaviest member as a burst */
    assert_memory_equal(seq, "cbacbc", 6);
    for (int w = 0; w < 100; w++)
        assert_memory_equal(seq + w * 6, "cbacbc", 6);
    /* after a whole period the state is back at zero */
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i].current, 0);
    /* never three picks of one member in a row */
    for (int i = 2; i < 600; i++)
        assert_false(seq[i] == seq[i - 1] && seq[i] == seq[i - 2]);
}

/* The example from nginx's commit message: weights 5,1,1. */
static void test_nginx_example(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const int weights[] = {5, 1, 1};
    cv_routing_rr_member_t m[3];
    init_members(m, ids, weights, 3);
    char seq[8];
    for (int i = 0; i < 7; i++)
        seq[i] = m[cv_routing_rr_pick(m, 3)].id[0];
    seq[7] = '\0';
    assert_string_equal(seq, "aabacaa");
}

/* A member that leaves is never chosen again; the others share evenly. */
static void test_member_removed(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const int weights[] = {1, 1, 1};
    cv_routing_rr_member_t m[3];
    init_members(m, ids, weights, 3);
    for (int i = 0; i < 4; i++)
        cv_routing_rr_pick(m, 3);
    /* b leaves: the directory passes only a and c, with their state */
    cv_routing_rr_member_t rest[2] = {m[0], m[2]};
    int count[2] = {0, 0};
    int last = -1, run = 0;
    for (int i = 0; i < 100; i++) {
        int k = cv_routing_rr_pick(rest, 2);
        assert_in_range(k, 0, 1);
        run = k == last ? run + 1 : 1;
        assert_true(run <= 2); /* b's leftover state evens out at once */
        last = k;
        count[k]++;
    }
    assert_in_range(count[0], 49, 51);
    assert_int_equal(count[0] + count[1], 100);
    /* and from then on the two strictly alternate */
    for (int i = 0; i < 10; i++) {
        int k = cv_routing_rr_pick(rest, 2);
        assert_int_not_equal(k, last);
        last = k;
    }
}

/* A member that joins starts at zero and gets its share at once. */
static void test_member_added(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c", "d"};
    static const int weights[] = {1, 1, 1, 3};
    cv_routing_rr_member_t m[4];
    init_members(m, ids, weights, 4);
    for (int i = 0; i < 5; i++) /* a, b, c only: d not yet in the list */
        cv_routing_rr_pick(m, 3);
    int count[4] = {0, 0, 0, 0};
    for (int i = 0; i < 600; i++) {
        int k = cv_routing_rr_pick(m, 4);
        assert_in_range(k, 0, 3);
        count[k]++;
        /* every prefix stays within one pick of the exact share */
        for (int j = 0; j < 4; j++) {
            int expect6 = (i + 1) * weights[j]; /* six times the share */
            assert_true(count[j] * 6 - expect6 < 2 * 6);
            assert_true(expect6 - count[j] * 6 < 2 * 6);
        }
    }
    assert_int_equal(count[3], 300);
    assert_int_equal(count[0] + count[1] + count[2], 300);
    for (int j = 0; j < 3; j++)
        assert_in_range(count[j], 99, 101);
}

/* An unavailable member (over capacity) is skipped and keeps its state;
 * with nobody available the pick is -1 and nothing changes. */
static void test_unavailable(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b"};
    static const int weights[] = {1, 1};
    cv_routing_rr_member_t m[2];
    init_members(m, ids, weights, 2);
    m[0].current = 7;
    m[0].available = false;
    for (int i = 0; i < 5; i++)
        assert_int_equal(cv_routing_rr_pick(m, 2), 1);
    assert_int_equal(m[0].current, 7);
    m[1].available = false;
    int64_t before = m[1].current;
    assert_int_equal(cv_routing_rr_pick(m, 2), -1);
    assert_int_equal(m[1].current, before);
    assert_int_equal(cv_routing_rr_pick(NULL, 0), -1);
}

/* Saving `current` and starting again continues the very same sequence. */
static void test_restart_continues(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const int weights[] = {2, 3, 4};
    cv_routing_rr_member_t whole[3], first[3], second[3];
    init_members(whole, ids, weights, 3);
    init_members(first, ids, weights, 3);
    int expected[40];
    for (int i = 0; i < 40; i++)
        expected[i] = cv_routing_rr_pick(whole, 3);
    for (int i = 0; i < 13; i++)
        assert_int_equal(cv_routing_rr_pick(first, 3), expected[i]);
    init_members(second, ids, weights, 3);
    for (int i = 0; i < 3; i++)
        second[i].current = first[i].current; /* what the DB kept */
    for (int i = 13; i < 40; i++)
        assert_int_equal(cv_routing_rr_pick(second, 3), expected[i]);
}

static void test_weight_below_one_counts_as_one(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b"};
    static const int weights[] = {0, -4};
    cv_routing_rr_member_t m[2];
    init_members(m, ids, weights, 2);
    assert_int_equal(cv_routing_rr_weight(&m[0]), 1);
    int count[2] = {0, 0};
    for (int i = 0; i < 10; i++)
        count[cv_routing_rr_pick(m, 2)]++;
    assert_int_equal(count[0], 5);
    assert_int_equal(count[1], 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_1_2_3_over_600),
        cmocka_unit_test(test_nginx_example),
        cmocka_unit_test(test_member_removed),
        cmocka_unit_test(test_member_added),
        cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_restart_continues),
        cmocka_unit_test(test_weight_below_one_counts_as_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cv_routing_rr: smooth weighted round-robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cv_routing_rr.h"
#include "cv_store.h"

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

/* ---- the store half: availability and a rotation that persists ---- */

/* Wednesday 18 November 2026, 10:00 UTC (13:00 in Moscow, 20:00 in
 * Vladivostok): an ordinary working day in Russia. */
#define WED_10_UTC 1794996000000LL

static const char *const store_migrations[] = {cv_routing_rr_schema};

static cv_store_t *store_open(const char *path)
{
    cv_store_t *store = cv_store_open(path, store_migrations, 1);
    assert_non_null(store);
    return store;
}

static void temp_path(char *path, size_t size)
{
    snprintf(path, size, "/tmp/test_routing_rr_%d_%ld.db", (int)getpid(),
             random());
}

static void remove_db(const char *path)
{
    char extra[300];
    unlink(path);
    snprintf(extra, sizeof(extra), "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof(extra), "%s-shm", path);
    unlink(extra);
}

#define OFFICE_HOURS                                                           \
    "{\"mon\":\"09:00-18:00\",\"tue\":\"09:00-18:00\","                        \
    "\"wed\":\"09:00-18:00\",\"thu\":\"09:00-18:00\",\"fri\":\"09:00-18:00\"}"

/* Seven sales managers with weights 1-3: Dasha is on leave, Egor works
 * office hours in Vladivostok (20:00 there now: off shift), Fedor takes
 * at most 100 leads a day. */
static const cv_routing_person_t team7[7] = {
    {"anna", true, "Europe/Moscow", OFFICE_HOURS, "sales", 0, NULL},
    {"boris", true, "Europe/Moscow", OFFICE_HOURS, "sales", 0, NULL},
    {"vera", true, "Europe/Moscow", OFFICE_HOURS, "sales", 0, NULL},
    {"dasha", false, "Europe/Moscow", OFFICE_HOURS, "sales", 0, NULL},
    {"egor", true, "Asia/Vladivostok", OFFICE_HOURS, "sales", 0, NULL},
    {"fedor", true, "Europe/Moscow", OFFICE_HOURS, "sales", 100, NULL},
    {"galina", true, NULL, NULL, "sales", 0, NULL},
};
static const int team7_weights[7] = {1, 2, 3, 1, 2, 3, 2};

/* Routes `count` leads into the pool, 64 per transaction (a burst), and
 * counts who got them. Each lead: availability of everyone now, one
 * round-robin pick, the pick counted on the person's local day. */
static void route_leads(cv_store_t *store, int count, int *got, char *order,
                        int order_at)
{
    cv_routing_rr_member_t m[7];
    for (int n = 0; n < count; n++) {
        if (n % 64 == 0)
            assert_int_equal(cv_store_begin(store), 0);
        cv_routing_availability_t avail[7];
        for (int i = 0; i < 7; i++) {
            assert_int_equal(
                cv_routing_rr_availability(store, &team7[i], "Europe/Moscow",
                                           WED_10_UTC + n * 1000LL, &avail[i]),
                0);
            m[i].id = team7[i].staff_id;
            m[i].weight = team7_weights[i];
            m[i].available = avail[i].available;
        }
        int k = cv_routing_rr_choose(store, "rule:inbound", m, 7);
        assert_in_range(k, 0, 6);
        /* nobody unavailable or over their cap is ever chosen */
        assert_true(avail[k].available);
        assert_int_equal(cv_routing_rr_day_add(store, m[k].id, avail[k].day),
                         0);
        got[k]++;
        if (order != NULL)
            order[order_at + n] = m[k].id[0];
        if (n % 64 == 63 || n == count - 1)
            assert_int_equal(cv_store_commit(store), 0);
    }
}

/* 10,000 leads into the pool of 7, with a restart of the store half-way:
 * the shares of those available are within 1% of their weights (exactly,
 * in fact, to a lead), the capped one has exactly its cap, nobody on
 * leave or off shift gets one, and the sequence is the very one an
 * uninterrupted run produces. */
static void test_fairness_10000_leads_pool_of_7_with_restart(void **state)
{
    (void)state;
    char path[256], path2[256];
    temp_path(path, sizeof(path));
    temp_path(path2, sizeof(path2));
    static char with_restart[10001], without[10001];
    int got[7] = {0}, got2[7] = {0};

    cv_store_t *store = store_open(path);
    route_leads(store, 5000, got, with_restart, 0);
    cv_store_destroy(&store); /* routing restarts */
    store = store_open(path);
    route_leads(store, 5000, got, with_restart, 5000);
    cv_store_destroy(&store);

    cv_store_t *other = store_open(path2);
    route_leads(other, 10000, got2, without, 0);
    cv_store_destroy(&other);
    remove_db(path);
    remove_db(path2);

    assert_memory_equal(with_restart, without, 10000);
    assert_int_equal(got[3], 0);   /* dasha: on leave */
    assert_int_equal(got[4], 0);   /* egor: off shift */
    assert_int_equal(got[5], 100); /* fedor: his cap */
    int rest = 10000 - 100;
    int weights = 1 + 2 + 3 + 2; /* anna, boris, vera, galina */
    const int idx[4] = {0, 1, 2, 6};
    for (int j = 0; j < 4; j++) {
        double share = (double)got[idx[j]] / rest;
        double want = (double)team7_weights[idx[j]] / weights;
        assert_true(share > want - 0.01 && share < want + 0.01);
    }
    /* smooth round-robin is exact to a lead after the cap is reached */
    assert_in_range(got[0], 1225, 1250);
    assert_in_range(got[2], 3700, 3750);
}

/* Availability: the reasons a person is passed over, and the day a cap
 * counts in being the person's own. */
static void test_availability_reasons_and_local_day(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof(path));
    cv_store_t *store = store_open(path);
    cv_routing_availability_t a;

    assert_int_equal(
        cv_routing_rr_availability(store, &team7[3], "UTC", WED_10_UTC, &a), 0);
    assert_false(a.available);
    assert_non_null(strstr(a.why, "inactive"));

    assert_int_equal(
        cv_routing_rr_availability(store, &team7[4], "UTC", WED_10_UTC, &a), 0);
    assert_false(a.available);
    assert_non_null(strstr(a.why, "off shift"));
    assert_non_null(strstr(a.why, "Asia/Vladivostok 20:00"));

    /* 20:30 UTC on Wednesday is already Thursday 03:30 in Tomsk */
    cv_routing_person_t tomsk = {"ivan", true, "Asia/Tomsk", NULL, "sales", 2, NULL};
    int64_t late = WED_10_UTC + (int64_t)(10 * 60 + 30) * 60000;
    assert_int_equal(cv_routing_rr_availability(store, &tomsk, "UTC", late, &a),
                     0);
    assert_string_equal(a.day, "2026-11-19");
    assert_true(a.available);
    assert_int_equal(cv_routing_rr_day_add(store, "ivan", a.day), 0);
    assert_int_equal(cv_routing_rr_day_add(store, "ivan", a.day), 0);
    assert_int_equal(cv_routing_rr_availability(store, &tomsk, "UTC", late, &a),
                     0);
    assert_false(a.available);
    assert_string_equal(a.why, "at capacity 2/2 on 2026-11-19");
    /* the leads he took on Wednesday (his time) do not count */
    assert_int_equal(
        cv_routing_rr_availability(store, &tomsk, "UTC", WED_10_UTC, &a), 0);
    assert_string_equal(a.day, "2026-11-18");
    assert_true(a.available);

    /* hours that do not parse keep the person out, with the reason */
    cv_routing_person_t broken = {"olga", true, "UTC", "{\"mon\":\"9-6\"}",
                                  NULL,   0,     NULL};
    assert_int_equal(
        cv_routing_rr_availability(store, &broken, "UTC", WED_10_UTC, &a), 0);
    assert_false(a.available);
    assert_non_null(strstr(a.why, "working hours unreadable"));
    cv_store_destroy(&store);
    remove_db(path);
}

/* The rotation of a pool is one row: a member who leaves the pool (on
 * leave for a week, say) and comes back resumes where they were, also
 * after a restart, and the others continue their own rotation. */
static void test_pool_state_is_one_row_and_keeps_those_away(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof(path));
    cv_store_t *store = store_open(path);
    static const char *const ids[3] = {"anna", "boris", "vera"};
    cv_routing_rr_member_t m[3];
    init_members(m, ids, (const int[]){5, 1, 1}, 3);
    assert_int_equal(cv_store_begin(store), 0);
    for (int i = 0; i < 3; i++)
        assert_in_range(cv_routing_rr_choose(store, "rule:inbound", m, 3), 0,
                        2);
    /* vera leaves the pool: only anna and boris are passed */
    cv_routing_rr_member_t two[2] = {m[0], m[1]};
    int64_t vera_current = m[2].current;
    assert_in_range(cv_routing_rr_choose(store, "rule:inbound", two, 2), 0, 1);
    assert_int_equal(cv_store_commit(store), 0);
    cv_store_destroy(&store); /* routing restarts */

    store = store_open(path);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT count(*), max(state) FROM rr_pools");
    assert_non_null(stmt);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 1);
    assert_non_null(strstr((const char *)sqlite3_column_text(stmt, 1),
                           " vera\n"));
    sqlite3_reset(stmt);
    cv_routing_rr_member_t back[3];
    init_members(back, ids, (const int[]){5, 1, 1}, 3);
    assert_int_equal(cv_routing_rr_load(store, "rule:inbound", back, 3), 0);
    assert_int_equal(back[0].current, two[0].current);
    assert_int_equal(back[1].current, two[1].current);
    assert_int_equal(back[2].current, vera_current);
    /* another pool starts from nothing */
    assert_int_equal(cv_routing_rr_load(store, "rule:cold-lists", back, 3), 0);
    assert_int_equal(back[0].current + back[1].current + back[2].current, 0);
    cv_store_destroy(&store);
    remove_db(path);
}

/* A call centre of 150 operators with long directory ids (a state row of
 * several KB, more lines than a usual pool): across two transactions and
 * a restart, 300 leads go to every operator exactly twice, and the row
 * read back gives each operator the state the last pick left. */
static void test_a_big_pool_rotates_evenly_across_restarts(void **state)
{
    (void)state;
    enum { OPERATORS = 150 };
    char path[256];
    temp_path(path, sizeof(path));
    cv_store_t *store = store_open(path);
    static char ids[OPERATORS][64];
    const char *id_of[OPERATORS];
    for (int i = 0; i < OPERATORS; i++) {
        snprintf(ids[i], sizeof(ids[i]),
                 "call-centre-novosibirsk-operator-%03d", i);
        id_of[i] = ids[i];
    }
    static int ones[OPERATORS];
    for (int i = 0; i < OPERATORS; i++)
        ones[i] = 1;
    cv_routing_rr_member_t m[OPERATORS];
    int got[OPERATORS] = {0};
    for (int round = 0; round < 2; round++) {
        init_members(m, id_of, ones, OPERATORS); /* state from the row */
        assert_int_equal(cv_store_begin(store), 0);
        for (int n = 0; n < OPERATORS; n++) {
            int k = cv_routing_rr_choose(store, "rule:call-centre", m,
                                         OPERATORS);
            assert_in_range(k, 0, OPERATORS - 1);
            got[k]++;
        }
        assert_int_equal(cv_store_commit(store), 0);
        cv_store_destroy(&store); /* routing restarts */
        store = store_open(path);
    }
    for (int i = 0; i < OPERATORS; i++)
        assert_int_equal(got[i], 2);
    cv_routing_rr_member_t back[OPERATORS];
    init_members(back, id_of, ones, OPERATORS);
    assert_int_equal(
        cv_routing_rr_load(store, "rule:call-centre", back, OPERATORS), 0);
    for (int i = 0; i < OPERATORS; i++)
        assert_int_equal(back[i].current, m[i].current);
    cv_store_destroy(&store);
    remove_db(path);
}

/* Hours a caller parsed once give the very answers the JSON gives. */
static void test_parsed_hours_answer_as_the_json(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof(path));
    cv_store_t *store = store_open(path);
    cv_workhours_t office;
    char error[160];
    assert_int_equal(
        cv_workhours_parse(OFFICE_HOURS, &office, error, sizeof(error)), 0);
    for (int i = 0; i < 7; i++) {
        cv_routing_person_t cached = team7[i];
        if (cached.working_hours_json != NULL)
            cached.hours = &office;
        for (int h = 0; h < 24; h += 5) {
            int64_t at = WED_10_UTC + (int64_t)h * 3600000;
            cv_routing_availability_t a, b;
            assert_int_equal(cv_routing_rr_availability(
                                 store, &team7[i], "UTC", at, &a),
                             0);
            assert_int_equal(
                cv_routing_rr_availability(store, &cached, "UTC", at, &b), 0);
            assert_int_equal(a.available, b.available);
            assert_string_equal(a.why, b.why);
            assert_string_equal(a.day, b.day);
        }
    }
    cv_store_destroy(&store);
    remove_db(path);
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
        cmocka_unit_test(test_fairness_10000_leads_pool_of_7_with_restart),
        cmocka_unit_test(test_availability_reasons_and_local_day),
        cmocka_unit_test(test_pool_state_is_one_row_and_keeps_those_away),
        cmocka_unit_test(test_parsed_hours_answer_as_the_json),
        cmocka_unit_test(test_a_big_pool_rotates_evenly_across_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

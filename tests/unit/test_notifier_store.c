/* The notifier's table of deliveries (services/notifier/notifier_store.c):
 * a database written by an older notifier (schema v3, where
 * notifier_deliveries still had v2's state columns) migrates to v4 with
 * those columns gone and its deliveries where they stood; new rows and a
 * console resend work on the migrated schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

/* the service's own API; the test links its objects (Makefile) */
#include "cv_store.h"
#include "test_db_dir.h"
#include "../../services/notifier/notifier.h"

/* 2024-03-05 09:30:00 UTC in ms: when the old notifier stored its rows */
#define STORED_AT 1709631000000LL

/* v3 was the third migration: a database an older notifier left */
#define V3_MIGRATIONS 3

static int setup(void **state)
{
    return test_db_dir_setup(state, "notifier.db");
}

/* What notifier v3 wrote for one delivery: the row it sends, with the
 * constant 'pending' its insert put in the old state column, and the
 * state row where it really stands. */
static void store_v3_delivery(cv_store_t *store, const char *id,
                              const char *channel, const char *destination,
                              const char *state, int attempts,
                              int64_t next_attempt_at, int64_t delivered_at)
{
    char sql[2048];
    snprintf(sql, sizeof(sql),
             "INSERT INTO notifier_deliveries (notification_id, channel, "
             "destination, lead_id, staff_id, subject, text, body, trace_id, "
             "state, created_at) VALUES ('%s', '%s', '%s', "
             "'01HQZX3V8KJ2M4N6P8R0T2V4X6', 'staff-olga', 'New lead', "
             "'New lead: Anna Petrova, +49 30 901820', "
             "'{\"event\":\"lead.assigned\",\"lead_id\":"
             "\"01HQZX3V8KJ2M4N6P8R0T2V4X6\"}', "
             "'4bf92f3577b34da6a3ce929d0e0e4736', 'pending', %lld);",
             id, channel, destination, (long long)STORED_AT);
    assert_int_equal(cv_store_exec(store, sql), 0);
    char next[32] = "NULL";
    char done[32] = "NULL";
    if (next_attempt_at > 0)
        snprintf(next, sizeof(next), "%lld", (long long)next_attempt_at);
    if (delivered_at > 0)
        snprintf(done, sizeof(done), "%lld", (long long)delivered_at);
    snprintf(sql, sizeof(sql),
             "INSERT INTO notifier_states (notification_id, channel, state, "
             "attempts, next_attempt_at, last_status, last_error, "
             "delivered_at) VALUES ('%s', '%s', '%s', %d, %s, %d, %s, %s);",
             id, channel, state, attempts, next, attempts > 1 ? 503 : 200,
             attempts > 1 ? "'HTTP 503 Service Unavailable'" : "NULL", done);
    assert_int_equal(cv_store_exec(store, sql), 0);
}

/* A v3 database with one webhook delivery still pending (two attempts
 * failed with 503, the third due in five seconds) and one Telegram
 * message delivered. */
static void make_v3_database(const char *path)
{
    cv_store_t *store = cv_store_open(path, notifier_migrations, V3_MIGRATIONS);
    assert_non_null(store);
    store_v3_delivery(store, "01HQZX4A1B2C3D4E5F6G7H8J9K", "webhook",
                      "https://crm.example.com/hooks/conveyor", "pending", 2,
                      STORED_AT + 5000, 0);
    store_v3_delivery(store, "01HQZX4B9C8D7E6F5G4H3J2K1M", "telegram",
                      "-1001234567890", "delivered", 1, 0, STORED_AT + 800);
    cv_store_destroy(&store);
}

/* The v3 database above at `path`, opened with today's migrations. */
static cv_store_t *open_migrated_v3(const char *path)
{
    make_v3_database(path);
    cv_store_t *store =
        cv_store_open(path, notifier_migrations, notifier_migration_count);
    assert_non_null(store);
    return store;
}

/* The state column of a delivery's row in notifier_states, into buf. */
static void state_of(cv_store_t *store, const char *id, char *buf,
                     size_t size)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT state FROM notifier_states WHERE notification_id = ?1");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, id);
    assert_int_equal(cv_store_step_row(stmt), 0);
    cv_store_column_copy(stmt, 0, buf, size);
    sqlite3_reset(stmt);
}

/* Whether notifier_deliveries has a column of that name. */
static bool has_column(cv_store_t *store, const char *column)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT count(*) FROM pragma_table_info('notifier_deliveries') "
               "WHERE name = ?1");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, column);
    assert_int_equal(cv_store_step_row(stmt), 0);
    bool found = sqlite3_column_int(stmt, 0) > 0;
    sqlite3_reset(stmt);
    return found;
}

static void test_v3_database_migrates(void **state)
{
    test_db_dir_t *d = *state;
    cv_store_t *store = open_migrated_v3(d->path);
    assert_int_equal(test_db_query_int(store, "PRAGMA user_version"),
                     (int64_t)notifier_migration_count);

    /* v2's state columns are gone; what a delivery sends stays */
    static const char *const dropped[] = {
        "state",      "attempts",     "next_attempt_at", "last_status",
        "last_error", "delivered_at", "failed_at",       "resends"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (has_column(store, dropped[i]))
            fail_msg("notifier_deliveries still has '%s'", dropped[i]);
    }
    static const char *const kept[] = {
        "notification_id", "channel", "destination", "lead_id", "staff_id",
        "subject",         "text",    "body",        "trace_id", "created_at"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        if (!has_column(store, kept[i]))
            fail_msg("notifier_deliveries lost '%s'", kept[i]);
    }
    assert_int_equal(
        test_db_query_int(store, "SELECT count(*) FROM notifier_deliveries"),
        2);

    /* each delivery is where it stood */
    char st[16];
    state_of(store, "01HQZX4A1B2C3D4E5F6G7H8J9K", st, sizeof(st));
    assert_string_equal(st, "pending");
    state_of(store, "01HQZX4B9C8D7E6F5G4H3J2K1M", st, sizeof(st));
    assert_string_equal(st, "delivered");

    /* and the pending one loads as a job, due when it was due */
    notifier_job_t *jobs = NULL;
    size_t count = 0;
    assert_int_equal(notifier_store_load_pending(store, &jobs, &count), 0);
    assert_int_equal(count, 1);
    assert_non_null(jobs);
    assert_null(jobs->next);
    assert_string_equal(jobs->notification_id, "01HQZX4A1B2C3D4E5F6G7H8J9K");
    assert_int_equal(jobs->channel, NOTIFIER_WEBHOOK);
    assert_string_equal(jobs->destination,
                        "https://crm.example.com/hooks/conveyor");
    assert_string_equal(jobs->lead_id, "01HQZX3V8KJ2M4N6P8R0T2V4X6");
    assert_string_equal(jobs->staff_id, "staff-olga");
    assert_string_equal(jobs->subject, "New lead");
    assert_string_equal(jobs->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_non_null(strstr(jobs->body, "lead.assigned"));
    assert_int_equal(jobs->attempts, 2);
    assert_int_equal(jobs->next_attempt_at, STORED_AT + 5000);
    notifier_job_list_destroy(&jobs);
    cv_store_destroy(&store);

    /* opening again applies nothing more */
    store =
        cv_store_open(d->path, notifier_migrations, notifier_migration_count);
    assert_non_null(store);
    assert_int_equal(
        test_db_query_int(store, "SELECT count(*) FROM notifier_deliveries"),
        2);
    cv_store_destroy(&store);
}

/* A Telegram message to a chat, as the bus thread stores it. */
static notifier_job_t *telegram_job(const char *id)
{
    notifier_job_fields_t fields = {
        .notification_id = id,
        .channel = NOTIFIER_TELEGRAM,
        .destination = "-1001234567890",
        .lead_id = "01HQZX3V8KJ2M4N6P8R0T2V4X6",
        .staff_id = "staff-olga",
        .subject = "Lead waiting",
        .text = "Lead Anna Petrova waits for a first call (SLA 15 min)",
        .body = "{\"event\":\"sla.warning\"}",
        .trace_id = "0af7651916cd43dd8448eb211c80319c",
    };
    notifier_job_t *job = notifier_job_new(&fields);
    assert_non_null(job);
    return job;
}

/* On the migrated schema a delivery is stored, fails for good, and the
 * console's resend makes it pending again (and returns it to send). */
static void test_store_fail_and_resend_after_migration(void **state)
{
    test_db_dir_t *d = *state;
    cv_store_t *store = open_migrated_v3(d->path);

    notifier_job_t *job = telegram_job("01HQZX5C2D3E4F5G6H7J8K9M0N");
    bool inserted = false;
    assert_int_equal(
        notifier_store_insert(store, job, false, STORED_AT + 60000, &inserted),
        0);
    assert_true(inserted);
    /* the same request again (a redelivered event) is not stored twice */
    assert_int_equal(
        notifier_store_insert(store, job, false, STORED_AT + 61000, &inserted),
        0);
    assert_false(inserted);

    job->attempts = 1;
    job->http_status = 403;
    job->finished_at = STORED_AT + 62000;
    snprintf(job->error, sizeof(job->error), "%s",
             "HTTP 403 Forbidden: bot was kicked from the group chat");
    bool updated = false;
    assert_int_equal(notifier_store_mark_dead(store, job, &updated), 0);
    assert_true(updated);
    char st[16];
    state_of(store, job->notification_id, st, sizeof(st));
    assert_string_equal(st, "dead");

    notifier_job_t *jobs = NULL;
    size_t count = 0;
    assert_int_equal(notifier_store_resend(store, job->notification_id,
                                           STORED_AT + 900000, &jobs, &count),
                     0);
    assert_int_equal(count, 1);
    assert_non_null(jobs);
    assert_string_equal(jobs->notification_id, job->notification_id);
    assert_int_equal(jobs->attempts, 0);
    assert_int_equal(jobs->next_attempt_at, STORED_AT + 900000);
    notifier_job_list_destroy(&jobs);
    state_of(store, job->notification_id, st, sizeof(st));
    assert_string_equal(st, "pending");
    assert_int_equal(
        test_db_query_int(store,
                          "SELECT resends FROM notifier_states WHERE "
                          "notification_id = '01HQZX5C2D3E4F5G6H7J8K9M0N'"),
        1);

    /* a resend of a notification with no dead letters sends nothing */
    assert_int_equal(notifier_store_resend(store, "01HQZX4B9C8D7E6F5G4H3J2K1M",
                                           STORED_AT + 900000, &jobs, &count),
                     0);
    assert_int_equal(count, 0);
    assert_null(jobs);

    /* it and the old pending webhook are both due */
    assert_int_equal(notifier_store_load_pending(store, &jobs, &count), 0);
    assert_int_equal(count, 2);
    notifier_job_list_destroy(&jobs);

    notifier_job_destroy(&job);
    cv_store_destroy(&store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v3_database_migrates, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(
            test_store_fail_and_resend_after_migration, setup,
            test_db_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

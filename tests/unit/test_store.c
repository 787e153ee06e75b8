/* cv_store: durable settings, migrations, the statement cache and
 * transactions, as a service sees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_store.h"
#include "test_db_dir.h"

typedef test_db_dir_t fixture_t; /* dir and path of test.db */

static int setup(void **state)
{
    return test_db_dir_setup(state, "test.db");
}

static const char *const migrations[] = {
    "CREATE TABLE leads (id TEXT PRIMARY KEY, name TEXT);"
    "CREATE TABLE log (what TEXT);"
    "INSERT INTO log VALUES ('migration 1');",
    "CREATE TABLE tasks (id TEXT PRIMARY KEY,"
    " lead_id TEXT NOT NULL REFERENCES leads(id));"
    "INSERT INTO log VALUES ('migration 2');",
};

static void query_text(cv_store_t *store, const char *sql, char *buf,
                       size_t size)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    assert_non_null(stmt);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    cv_store_column_copy(stmt, 0, buf, size);
    sqlite3_reset(stmt);
}

static void insert_lead(cv_store_t *store, const char *id, const char *name)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO leads (id, name) VALUES (?1, ?2)");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, id);
    cv_store_bind_text(stmt, 2, name);
    assert_int_equal(cv_store_step_done(stmt), 0);
}

static void test_opens_durably(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    char mode[16];
    query_text(store, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    /* 2: FULL */
    assert_int_equal(test_db_query_int(store, "PRAGMA synchronous"), 2);
    assert_int_equal(test_db_query_int(store, "PRAGMA foreign_keys"), 1);
    assert_int_equal(test_db_query_int(store, "PRAGMA busy_timeout"), 10000);
    assert_string_equal(cv_store_path(store), f->path);
    assert_non_null(cv_store_db(store));
    cv_store_destroy(&store);
    assert_null(store);
    cv_store_destroy(&store); /* NULL-safe */
    cv_store_destroy(NULL);
}

static void test_migration_applies_once(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 1);
    assert_non_null(store);
    assert_int_equal(test_db_query_int(store, "PRAGMA user_version"), 1);
    cv_store_destroy(&store);

    /* a newer build adds the second migration; the first is not re-run */
    for (int round = 0; round < 3; round++) {
        store = cv_store_open(f->path, migrations, 2);
        assert_non_null(store);
        assert_int_equal(test_db_query_int(store, "PRAGMA user_version"), 2);
        assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM log"),
                         2);
        cv_store_destroy(&store);
    }
}

static void test_failed_migration_is_rolled_back(void **state)
{
    fixture_t *f = *state;
    const char *const broken[] = {
        migrations[0],
        "CREATE TABLE half (x INT); INSERT INTO no_such_table VALUES (1);",
    };
    assert_null(cv_store_open(f->path, broken, 2));

    /* the first migration stayed, the broken one left nothing behind */
    cv_store_t *store = cv_store_open(f->path, migrations, 1);
    assert_non_null(store);
    assert_int_equal(test_db_query_int(store, "PRAGMA user_version"), 1);
    assert_int_equal(
        test_db_query_int(store, "SELECT count(*) FROM sqlite_master"
                                 " WHERE name = 'half'"),
        0);
    cv_store_destroy(&store);
}

static void test_newer_database_is_refused(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    cv_store_destroy(&store);
    assert_null(cv_store_open(f->path, migrations, 1));
}

static void test_data_survives_reopen(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    assert_int_equal(cv_store_begin(store), 0);
    insert_lead(store, "lead_1", "Anna");
    assert_int_equal(cv_store_commit(store), 0);
    cv_store_destroy(&store);

    store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    char name[32];
    query_text(store, "SELECT name FROM leads WHERE id = 'lead_1'", name,
               sizeof(name));
    assert_string_equal(name, "Anna");
    cv_store_destroy(&store);
}

static void test_rollback_discards_and_is_safe_without_transaction(
    void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    assert_false(cv_store_in_transaction(store));
    assert_int_equal(cv_store_rollback(store), 0);

    assert_int_equal(cv_store_begin(store), 0);
    assert_true(cv_store_in_transaction(store));
    insert_lead(store, "lead_2", "Boris");
    assert_int_equal(cv_store_rollback(store), 0);
    assert_false(cv_store_in_transaction(store));
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM leads"), 0);
    cv_store_destroy(&store);
}

static void test_foreign_keys_are_enforced(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO tasks (id, lead_id) VALUES (?1, ?2)");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, "task_1");
    cv_store_bind_text(stmt, 2, "lead_missing");
    assert_int_equal(cv_store_step_done(stmt), -1);
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM tasks"), 0);
    cv_store_destroy(&store);
}

static void test_statements_are_cached_and_reset(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    const char *sql = "SELECT ?1";
    sqlite3_stmt *first = cv_store_prepare(store, sql);
    assert_non_null(first);
    cv_store_bind_text(first, 1, "bound");
    assert_int_equal(sqlite3_step(first), SQLITE_ROW);

    /* same text, same statement, bindings cleared */
    char copy[] = "SELECT ?1";
    sqlite3_stmt *again = cv_store_prepare(store, copy);
    assert_ptr_equal(first, again);
    assert_int_equal(sqlite3_step(again), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(again, 0), SQLITE_NULL);
    char text[8] = "junk";
    cv_store_column_copy(again, 0, text, sizeof(text));
    assert_string_equal(text, "");

    /* many different statements still come back from the cache */
    sqlite3_stmt *seen[200];
    for (int i = 0; i < 200; i++) {
        char q[64];
        snprintf(q, sizeof(q), "SELECT %d", i);
        seen[i] = cv_store_prepare(store, q);
        assert_non_null(seen[i]);
    }
    for (int i = 0; i < 200; i++) {
        char q[64];
        snprintf(q, sizeof(q), "SELECT %d", i);
        assert_ptr_equal(cv_store_prepare(store, q), seen[i]);
        assert_int_equal(test_db_query_int(store, q), i);
    }
    assert_ptr_equal(cv_store_prepare(store, sql), first);

    assert_null(cv_store_prepare(store, "SELEKT nonsense"));
    cv_store_destroy(&store);
}

static void test_bind_null_and_copy_truncates(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    insert_lead(store, "lead_3", NULL);
    assert_int_equal(
        test_db_query_int(store,
                          "SELECT count(*) FROM leads WHERE name IS NULL"),
        1);
    insert_lead(store, "lead_4", "Konstantin Konstantinopolsky");
    char small[8];
    query_text(store, "SELECT name FROM leads WHERE id = 'lead_4'", small,
               sizeof(small));
    assert_string_equal(small, "Konstan");
    /* the same id twice violates the primary key */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO leads (id, name) VALUES (?1, ?2)");
    cv_store_bind_text(stmt, 1, "lead_4");
    assert_int_equal(cv_store_step_done(stmt), -1);
    cv_store_destroy(&store);
}

static void test_second_connection_sees_commits(void **state)
{
    fixture_t *f = *state;
    cv_store_t *writer = cv_store_open(f->path, migrations, 2);
    cv_store_t *reader = cv_store_open(f->path, migrations, 2);
    assert_non_null(writer);
    assert_non_null(reader);
    assert_int_equal(cv_store_begin(writer), 0);
    insert_lead(writer, "lead_5", "Vera");
    assert_int_equal(test_db_query_int(reader, "SELECT count(*) FROM leads"),
                     0);
    assert_int_equal(cv_store_commit(writer), 0);
    assert_int_equal(test_db_query_int(reader, "SELECT count(*) FROM leads"),
                     1);
    assert_int_equal(cv_store_exec(reader, "DELETE FROM leads"), 0);
    assert_int_equal(test_db_query_int(writer, "SELECT count(*) FROM leads"),
                     0);
    assert_int_equal(cv_store_exec(reader, "DELETE FROM nowhere"), -1);
    cv_store_destroy(&reader);
    cv_store_destroy(&writer);
}

/* Rows a connection of the default VFS (the sqlite3 shell, a test) counts
 * in `path`; -1 when the file does not read or fails its integrity check. */
static int64_t plain_count(const char *path, const char *table)
{
    sqlite3 *db = NULL;
    int64_t count = -1;
    char sql[128];
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) !=
            SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0)
        goto out;
    sqlite3_finalize(stmt);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        count = sqlite3_column_int64(stmt, 0);
out:
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return count;
}

/* Inserts `count` leads named after `prefix`, each with a 2 KB name, in
 * the open transaction: enough pages to fill the WAL buffer several times. */
static void insert_many(cv_store_t *store, const char *prefix, int count)
{
    char name[2048];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    for (int i = 0; i < count; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s_%05d", prefix, i);
        insert_lead(store, id, name);
    }
}

/* The WAL frames of a commit are gathered and written together: a big
 * transaction (megabytes of frames) and many small ones all read back,
 * through another program's eyes, complete and intact. */
static void test_gathered_wal_writes_read_back_whole(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    assert_int_equal(cv_store_begin(store), 0);
    insert_many(store, "big", 3000);
    assert_int_equal(cv_store_commit(store), 0);
    assert_int_equal(plain_count(f->path, "leads"), 3000);
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof(id), "small_%03d", i);
        assert_int_equal(cv_store_begin(store), 0);
        insert_lead(store, id, "Olga");
        assert_int_equal(cv_store_commit(store), 0);
    }
    assert_int_equal(plain_count(f->path, "leads"), 3200);
    cv_store_destroy(&store);
    assert_int_equal(plain_count(f->path, "leads"), 3200);
}

/* A connection that does not sync at commit (synchronous=OFF) still puts
 * its commit in the file before publishing it: another connection reads
 * the new rows at once, and the file checks out. */
static void test_commit_without_sync_is_in_the_file(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    assert_int_equal(cv_store_exec(store, "PRAGMA synchronous = OFF"), 0);
    for (int round = 1; round <= 3; round++) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "r%d", round);
        assert_int_equal(cv_store_begin(store), 0);
        insert_many(store, prefix, 100);
        assert_int_equal(cv_store_commit(store), 0);
        assert_int_equal(plain_count(f->path, "leads"), 100 * round);
    }
    cv_store_destroy(&store);
}

/* kill -9 in the middle of a big transaction whose frames are partly
 * gathered, partly written: the committed rows are all there, none of the
 * unfinished transaction's, and the database is intact. */
static void test_kill_mid_transaction_keeps_commits_only(void **state)
{
    fixture_t *f = *state;
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        cv_store_t *store = cv_store_open(f->path, migrations, 2);
        if (store == NULL || cv_store_begin(store) != 0)
            _exit(1);
        insert_many(store, "kept", 500);
        if (cv_store_commit(store) != 0 || cv_store_begin(store) != 0)
            _exit(1);
        insert_many(store, "lost", 2500);
        ssize_t n = write(ready[1], "x", 1);
        (void)n;
        pause(); /* killed here, the transaction open */
        _exit(1);
    }
    char byte;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    assert_true(WIFSIGNALED(status));
    close(ready[0]);
    close(ready[1]);
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM leads"),
                     500);
    assert_int_equal(
        test_db_query_int(store,
                          "SELECT count(*) FROM leads WHERE id LIKE 'lost%'"),
        0);
    cv_store_destroy(&store);
    assert_int_equal(plain_count(f->path, "leads"), 500);
}

/* Deleting rows frees their pages without writing them again: an outbox
 * emptied of 200 acknowledged events of 2 KiB each (about 100 pages)
 * costs a handful of WAL frames, not one zeroed copy of every freed page
 * (Debian's SQLite is built with SECURE_DELETE on; cv_store sets FAST). */
static void test_freed_pages_are_not_rewritten(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = cv_store_open(f->path, migrations, 2);
    assert_non_null(store);
    /* 2: FAST */
    assert_int_equal(test_db_query_int(store, "PRAGMA secure_delete"), 2);
    assert_int_equal(
        cv_store_exec(store, "CREATE TABLE sent (id INTEGER PRIMARY KEY,"
                             " payload BLOB NOT NULL)"),
        0);
    assert_int_equal(cv_store_begin(store), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(cv_store_exec(store, "INSERT INTO sent (payload)"
                                              " VALUES (randomblob(2048))"),
                         0);
    assert_int_equal(cv_store_commit(store), 0);
    assert_int_equal(
        test_db_query_int(store, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_size, 0);

    assert_int_equal(cv_store_exec(store, "DELETE FROM sent"), 0);
    assert_int_equal(stat(wal, &st), 0);
    long long frames = (st.st_size - 32) / (4096 + 24);
    cv_log_info("deleting 200 rows of 2 KiB wrote %lld WAL frames", frames);
    assert_true(frames > 0);
    assert_true(frames < 10); /* with SECURE_DELETE on: 202 */
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM sent"), 0);
    cv_store_destroy(&store);
}

static void test_unopenable_path_is_refused(void **state)
{
    (void)state;
    assert_null(cv_store_open("/nonexistent-dir/sub/x.db", migrations, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_opens_durably, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_migration_applies_once, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_is_rolled_back,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_newer_database_is_refused, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_data_survives_reopen, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollback_discards_and_is_safe_without_transaction, setup,
            test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_foreign_keys_are_enforced, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_statements_are_cached_and_reset,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_bind_null_and_copy_truncates,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_second_connection_sees_commits,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(
            test_gathered_wal_writes_read_back_whole, setup,
            test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_commit_without_sync_is_in_the_file,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(
            test_kill_mid_transaction_keeps_commits_only, setup,
            test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_freed_pages_are_not_rewritten,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_path_is_refused, setup,
                                        test_db_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

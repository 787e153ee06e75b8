/* intake_seen: the in-memory filter of stored contact keys that spares a
 * new person's look-up. It may say "maybe" for a key never stored, but
 * must never say "no" for one that is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* the service's own API; the test links its objects (Makefile) */
#include "../../services/intake/intake_seen.h"
#include "test_db_dir.h"

static const char *const migrations[] = {
    "CREATE TABLE contact_keys ("
    "  kind TEXT NOT NULL, value TEXT NOT NULL, lead_id TEXT NOT NULL,"
    "  PRIMARY KEY (kind, value)) STRICT, WITHOUT ROWID;",
};

typedef struct {
    test_db_dir_t db;    /* intake.db in a folder of its own */
    cv_store_t *store;   /* intake.db with contact_keys */
    intake_seen_t *seen; /* the filter under test */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || test_db_dir_make(&f->db, "intake.db") != 0) {
        free(f);
        return -1;
    }
    f->store = cv_store_open(f->db.path, migrations, 1);
    f->seen = intake_seen_new();
    *state = f;
    return f->store != NULL && f->seen != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    intake_seen_destroy(&f->seen);
    cv_store_destroy(&f->store);
    test_db_dir_remove(&f->db);
    free(f);
    return 0;
}

static void store_key(cv_store_t *store, const char *kind, const char *value,
                      const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO contact_keys (kind, value, lead_id)"
               " VALUES (?1, ?2, ?3)");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, kind);
    cv_store_bind_text(stmt, 2, value);
    cv_store_bind_text(stmt, 3, lead_id);
    assert_int_equal(cv_store_step_done(stmt), 0);
}

/* Anna's phone and email were stored before intake started: her next
 * call is looked up, while a number nobody used is surely new. */
static void test_stored_contacts_are_maybe_new_ones_are_not(void **state)
{
    fixture_t *f = *state;
    store_key(f->store, "phone", "+79161234567", "lead_01anna");
    store_key(f->store, "email", "anna@example.ru", "lead_01anna");
    assert_int_equal(cv_store_begin(f->store), 0);
    assert_true(intake_seen_ready(f->seen, f->store));
    assert_true(intake_seen_maybe(f->seen, "phone", "+79161234567"));
    assert_true(intake_seen_maybe(f->seen, "email", "anna@example.ru"));
    assert_false(intake_seen_maybe(f->seen, "phone", "+79031112233"));
    assert_false(intake_seen_maybe(f->seen, "email", "boris@example.com"));
    /* the kind is part of the key: a phone is not a Telegram name */
    assert_false(intake_seen_maybe(f->seen, "telegram", "+79161234567"));
    assert_int_equal(cv_store_commit(f->store), 0);
}

/* A key written after loading (the lead before this one in the same
 * batch) is looked up for the next lead. */
static void test_keys_written_later_are_seen(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(cv_store_begin(f->store), 0);
    assert_true(intake_seen_ready(f->seen, f->store));
    assert_false(intake_seen_maybe(f->seen, "email", "boris@example.com"));
    store_key(f->store, "email", "boris@example.com", "lead_02boris");
    intake_seen_add(f->seen, "email", "boris@example.com");
    assert_true(intake_seen_maybe(f->seen, "email", "boris@example.com"));
    assert_int_equal(cv_store_commit(f->store), 0);
}

/* A cold call list of 120,000 numbers fills the first filter: it is
 * rebuilt larger from the table, and no stored number is ever "new". */
static void test_a_full_filter_reloads_and_forgets_nothing(void **state)
{
    fixture_t *f = *state;
    char value[32];
    assert_int_equal(cv_store_begin(f->store), 0);
    assert_true(intake_seen_ready(f->seen, f->store));
    for (int i = 0; i < 120000; i++) {
        snprintf(value, sizeof(value), "+7916%07d", i);
        store_key(f->store, "phone", value, "lead_03list");
        intake_seen_add(f->seen, "phone", value);
        if (i % 1000 == 0)
            assert_true(intake_seen_ready(f->seen, f->store));
    }
    assert_true(intake_seen_ready(f->seen, f->store));
    assert_true(intake_seen_bits(f->seen) >
                INTAKE_SEEN_MIN_BITS); /* reloaded */
    int missed = 0;
    int maybe = 0;
    for (int i = 0; i < 120000; i++) {
        snprintf(value, sizeof(value), "+7916%07d", i);
        missed += !intake_seen_maybe(f->seen, "phone", value);
        snprintf(value, sizeof(value), "+7903%07d", i);
        maybe += intake_seen_maybe(f->seen, "phone", value);
    }
    assert_int_equal(missed, 0);
    assert_true(maybe < 1200); /* under 1% of new numbers are looked up */
    assert_int_equal(cv_store_commit(f->store), 0);
}

/* Without a contact_keys table it cannot load: every lead is looked up
 * in the database, as without the filter. */
static void test_unloadable_filter_says_maybe(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(cv_store_exec(f->store, "DROP TABLE contact_keys"), 0);
    assert_false(intake_seen_ready(f->seen, f->store));
    assert_true(intake_seen_maybe(f->seen, "phone", "+79031112233"));
    intake_seen_add(f->seen, "phone", "+79031112233"); /* ignored */
    assert_true(intake_seen_maybe(NULL, "phone", "+79031112233"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_stored_contacts_are_maybe_new_ones_are_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_written_later_are_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_full_filter_reloads_and_forgets_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unloadable_filter_says_maybe,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

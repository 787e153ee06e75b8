/* console_known: the bus thread's cache of leads that have a traced card,
 * and console_lead_ensure, which every bus-thread handler goes through and
 * which asks it first. A turn that commits keeps what it learnt; a turn
 * that rolls back (or whose handler failed) must leave none of its leads
 * known, or a later event would skip creating a card that is not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../services/console/console.h"
#include "test_db_dir.h"

#define ANNA "lead_019aac3f2e1b5d0c9a7e0001"
#define ANNA_TRACE "evt_019aac3f2e1a5d0c9a7e0001"
#define BORIS "lead_019aac3f31075d0c9a7e0002"
#define BORIS_TRACE "evt_019aac3f31065d0c9a7e0002"

/* A lead id of the same form, numbered n. */
static void lead_id(char *buf, size_t size, unsigned n)
{
    snprintf(buf, size, "lead_019aac400000%08x%04x", 0x5d0c9a7eu, n);
}

/* The bus's turn_ended, as the cache's source gets it. */
static void turn_ended(console_known_t *known, bool ok)
{
    console_t console = {.known = known};
    console_known_turn_ended(&console, NULL, ok);
}

/* --- the cache alone --------------------------------------------------- */

/* Anna's LeadReceived gave her a traced card: her next events in the same
 * turn see it, and after the commit every later turn does. */
static void test_committed_turn_keeps_its_leads(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    assert_non_null(known);
    assert_false(console_known_has(known, ANNA));
    console_known_learn(known, ANNA, ANNA_TRACE);
    assert_true(console_known_has(known, ANNA));
    turn_ended(known, true);
    assert_true(console_known_has(known, ANNA));
    turn_ended(known, true); /* a later turn that learnt nothing */
    assert_true(console_known_has(known, ANNA));
    assert_false(console_known_has(known, BORIS));
    console_known_destroy(&known);
    assert_null(known);
}

/* The turn that created Anna's card rolled back: the card is not there,
 * so she must not stay known. */
static void test_rolled_back_turn_leaves_no_lead_known(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    console_known_learn(known, ANNA, ANNA_TRACE);
    console_known_learn(known, BORIS, BORIS_TRACE);
    turn_ended(known, false);
    assert_false(console_known_has(known, ANNA));
    assert_false(console_known_has(known, BORIS));
    console_known_destroy(&known);
}

/* A handler failed after Anna's card was made: her card goes with the
 * rollback. Boris's event, later in the same turn, commits. */
static void test_failed_handler_forgets_what_the_turn_learnt(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    console_known_learn(known, ANNA, ANNA_TRACE);
    console_known_forget_turn(known);
    assert_false(console_known_has(known, ANNA));
    console_known_learn(known, BORIS, BORIS_TRACE);
    turn_ended(known, true);
    assert_false(console_known_has(known, ANNA));
    assert_true(console_known_has(known, BORIS));
    console_known_destroy(&known);
}

/* Anna was committed earlier; a turn that sees her again and learns Boris
 * rolls back: Anna's committed card is still there, Boris's is not. */
static void test_rollback_keeps_earlier_commits(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    console_known_learn(known, ANNA, ANNA_TRACE);
    turn_ended(known, true);
    console_known_learn(known, ANNA, ANNA_TRACE);
    console_known_learn(known, BORIS, BORIS_TRACE);
    turn_ended(known, false);
    assert_true(console_known_has(known, ANNA));
    assert_false(console_known_has(known, BORIS));
    console_known_destroy(&known);
}

/* Two leads whose ids share a slot: the newer one takes it. When the turn
 * that wrote it rolls back, the newer one is not known (Anna's read comes
 * back; that is all the cache ever costs). */
static void test_slot_taken_by_a_rolled_back_lead(void **state)
{
    (void)state;
    /* found from outside: learning `other` makes Anna unknown */
    char other[48] = "";
    console_known_t *probe = console_known_new();
    console_known_learn(probe, ANNA, ANNA_TRACE);
    turn_ended(probe, true);
    for (unsigned n = 0; n < 1000000 && other[0] == '\0'; n++) {
        char id[48];
        lead_id(id, sizeof(id), n);
        console_known_learn(probe, id, BORIS_TRACE);
        if (!console_known_has(probe, ANNA))
            snprintf(other, sizeof(other), "%s", id);
        turn_ended(probe, false);
    }
    console_known_destroy(&probe);
    assert_true(other[0] != '\0');
    console_known_t *known = console_known_new();
    console_known_learn(known, ANNA, ANNA_TRACE);
    turn_ended(known, true);
    console_known_learn(known, other, BORIS_TRACE);
    assert_true(console_known_has(known, other));
    assert_false(console_known_has(known, ANNA));
    turn_ended(known, false);
    assert_false(console_known_has(known, other));
    /* committed, the newer lead stays */
    console_known_learn(known, other, BORIS_TRACE);
    turn_ended(known, true);
    assert_true(console_known_has(known, other));
    console_known_destroy(&known);
}

/* An import turn that touches more leads than a turn can list: a rollback
 * must still leave none of them known. */
static void test_rollback_of_a_turn_past_its_list(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    const unsigned leads = CONSOLE_KNOWN_PENDING + 1000;
    for (unsigned n = 0; n < leads; n++) {
        char id[48];
        lead_id(id, sizeof(id), n);
        console_known_learn(known, id, ANNA_TRACE);
    }
    turn_ended(known, false);
    for (unsigned n = 0; n < leads; n++) {
        char id[48];
        lead_id(id, sizeof(id), n);
        assert_false(console_known_has(known, id));
    }
    console_known_destroy(&known);
}

/* Nothing is learnt without a trace, nor for an id too long to keep. */
static void test_untraced_or_long_ids_are_not_learnt(void **state)
{
    (void)state;
    console_known_t *known = console_known_new();
    console_known_learn(known, ANNA, NULL);
    console_known_learn(known, BORIS, "");
    const char *longer = "lead_019aac3f2e1b5d0c9a7e0001-imported-from-crm-2019";
    console_known_learn(known, longer, ANNA_TRACE);
    turn_ended(known, true);
    assert_false(console_known_has(known, ANNA));
    assert_false(console_known_has(known, BORIS));
    assert_false(console_known_has(known, longer));
    assert_false(console_known_has(NULL, ANNA));
    console_known_destroy(&known);
}

/* --- console_lead_ensure asks the cache -------------------------------- */

typedef struct {
    test_db_dir_t db;         /* console.db in a folder of its own */
    cv_store_t *store;        /* with the console's schema */
    console_known_t *known;   /* the bus thread's cache */
    int statements;           /* statements SQLite started */
} fixture_t;

static int count_statement(unsigned type, void *arg, void *p, void *x)
{
    (void)type;
    (void)p;
    (void)x;
    ((fixture_t *)arg)->statements++;
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL || test_db_dir_make(&f->db, "console.db") != 0) {
        free(f);
        return -1;
    }
    f->store = cv_store_open(f->db.path, console_migrations,
                             console_migration_count);
    f->known = console_known_new();
    *state = f;
    if (f->store == NULL || f->known == NULL)
        return -1;
    sqlite3_trace_v2(cv_store_db(f->store), SQLITE_TRACE_STMT,
                     count_statement, f);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    console_known_destroy(&f->known);
    cv_store_destroy(&f->store);
    test_db_dir_remove(&f->db);
    free(f);
    return 0;
}

/* The card's trace: 1 with it in buf, 0 when there is no card. */
static int card_trace(fixture_t *f, const char *lead, char *buf,
                      size_t size)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        f->store, "SELECT coalesce(trace_id, '') FROM leads "
                  "WHERE lead_id = ?1");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, lead);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_reset(stmt);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    return rc == SQLITE_ROW;
}

/* A TaskCreated for Anna before her LeadReceived makes her card; once
 * that turn committed, console_lead_ensure for her costs no statement,
 * and without the cache it costs the read. Every handler that needs the
 * card (NotificationFailed and LeadOffered among them) calls it with the
 * cache; this checks the call, not each handler. */
static void test_known_lead_costs_no_statement(void **state)
{
    fixture_t *f = *state;
    int64_t at = 1763884800000;
    assert_int_equal(cv_store_begin(f->store), 0);
    f->statements = 0;
    assert_int_equal(
        console_lead_ensure(f->store, f->known, ANNA, at, ANNA_TRACE), 0);
    assert_int_equal(f->statements, 2); /* the read, the insert */
    assert_int_equal(cv_store_commit(f->store), 0);
    turn_ended(f->known, true);

    assert_int_equal(cv_store_begin(f->store), 0);
    f->statements = 0;
    assert_int_equal(console_lead_ensure(f->store, f->known, ANNA, at + 60000,
                                         ANNA_TRACE),
                     0);
    assert_int_equal(f->statements, 0);
    assert_int_equal(
        console_lead_ensure(f->store, NULL, ANNA, at + 60000, ANNA_TRACE), 0);
    assert_int_equal(f->statements, 1); /* the read alone */
    assert_int_equal(cv_store_commit(f->store), 0);
    turn_ended(f->known, true);
    char trace[64] = "";
    assert_int_equal(card_trace(f, ANNA, trace, sizeof(trace)), 1);
    assert_string_equal(trace, ANNA_TRACE);
}

/* The turn that made Anna's card rolled back: her next event must make
 * the card again, not trust the cache. */
static void test_card_of_a_rolled_back_turn_is_made_again(void **state)
{
    fixture_t *f = *state;
    int64_t at = 1763884800000;
    assert_int_equal(cv_store_begin(f->store), 0);
    assert_int_equal(
        console_lead_ensure(f->store, f->known, ANNA, at, ANNA_TRACE), 0);
    assert_int_equal(cv_store_rollback(f->store), 0);
    turn_ended(f->known, false);
    char trace[64] = "";
    assert_int_equal(card_trace(f, ANNA, trace, sizeof(trace)), 0);

    assert_int_equal(cv_store_begin(f->store), 0);
    assert_int_equal(console_lead_ensure(f->store, f->known, ANNA, at + 1000,
                                         ANNA_TRACE),
                     0);
    assert_int_equal(cv_store_commit(f->store), 0);
    turn_ended(f->known, true);
    assert_int_equal(card_trace(f, ANNA, trace, sizeof(trace)), 1);
    assert_string_equal(trace, ANNA_TRACE);
}

/* An event without a trace made Boris an untraced card: the next event,
 * which has his trace, must still reach the card to set it. */
static void test_untraced_card_gets_its_trace(void **state)
{
    fixture_t *f = *state;
    int64_t at = 1763884800000;
    assert_int_equal(cv_store_begin(f->store), 0);
    assert_int_equal(console_lead_ensure(f->store, f->known, BORIS, at, NULL),
                     0);
    assert_int_equal(cv_store_commit(f->store), 0);
    turn_ended(f->known, true);
    char trace[64] = "";
    assert_int_equal(card_trace(f, BORIS, trace, sizeof(trace)), 1);
    assert_string_equal(trace, "");

    assert_int_equal(cv_store_begin(f->store), 0);
    assert_int_equal(console_lead_ensure(f->store, f->known, BORIS, at + 1000,
                                         BORIS_TRACE),
                     0);
    assert_int_equal(cv_store_commit(f->store), 0);
    turn_ended(f->known, true);
    assert_int_equal(card_trace(f, BORIS, trace, sizeof(trace)), 1);
    assert_string_equal(trace, BORIS_TRACE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_turn_keeps_its_leads),
        cmocka_unit_test(test_rolled_back_turn_leaves_no_lead_known),
        cmocka_unit_test(test_failed_handler_forgets_what_the_turn_learnt),
        cmocka_unit_test(test_rollback_keeps_earlier_commits),
        cmocka_unit_test(test_slot_taken_by_a_rolled_back_lead),
        cmocka_unit_test(test_rollback_of_a_turn_past_its_list),
        cmocka_unit_test(test_untraced_or_long_ids_are_not_learnt),
        cmocka_unit_test_setup_teardown(test_known_lead_costs_no_statement,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_card_of_a_rolled_back_turn_is_made_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untraced_card_gets_its_trace,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

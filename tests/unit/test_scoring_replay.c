/* Unit tests for cv_scoring_replay: stored leads scored again under
 * another model, as `conveyorctl score` reports them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cv_scoring.h"
#include "cv_scoring_card.h"
#include "cv_scoring_replay.h"

/* The columns of the scoring stage's `scores` table that a replay reads
 * (services/scoring/scoring_schema.c, migrations 1 and 2). */
static const char scores_table[] =
    "CREATE TABLE scores (lead_id TEXT PRIMARY KEY, total INTEGER NOT NULL,"
    " segment TEXT NOT NULL, knocked_out INTEGER NOT NULL,"
    " knockout_reason TEXT, model_version TEXT NOT NULL,"
    " score_json TEXT NOT NULL, event_id TEXT, scored_at INTEGER NOT NULL,"
    " lead BLOB, scorecard BLOB, revision INTEGER NOT NULL DEFAULT 0,"
    " rescored_at INTEGER, decision TEXT, decided_at INTEGER) STRICT;";

/* Stores `lead` as the scoring stage would: scored with the built-in
 * model (and `card` when not NULL), with a decision. */
static void store(sqlite3 *db, const Conveyor__Lead *lead,
                  const cv_scoring_card_t *card, const char *decision,
                  int64_t at, bool keep_lead)
{
    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_result_t r;
    uint8_t *card_blob = NULL;
    size_t card_size = 0;
    if (card != NULL) {
        cv_scoring_card_manual(card, &manual, storage);
        card_blob =
            cv_scoring_card_pack(card, lead->lead_id, "sc_x", NULL, &card_size);
        assert_non_null(card_blob);
    }
    cv_scoring_score_manual(NULL, lead, card != NULL ? &manual : NULL, &r);
    size_t size = conveyor__lead__get_packed_size(lead);
    uint8_t *packed = malloc(size);
    assert_non_null(packed);
    conveyor__lead__pack(lead, packed);
    sqlite3_stmt *stmt;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "INSERT INTO scores (lead_id, total, segment,"
                           " knocked_out, model_version, score_json,"
                           " scored_at, lead, scorecard, decision)"
                           " VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?)",
                           -1, &stmt, NULL),
        SQLITE_OK);
    sqlite3_bind_text(stmt, 1, lead->lead_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, r.total);
    sqlite3_bind_text(stmt, 3, r.segment, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, r.knocked_out);
    sqlite3_bind_text(stmt, 5, r.model_version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, at);
    if (keep_lead)
        sqlite3_bind_blob(stmt, 7, packed, (int)size, SQLITE_STATIC);
    if (card_blob != NULL)
        sqlite3_bind_blob(stmt, 8, card_blob, (int)card_size, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 9, decision, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    free(packed);
    free(card_blob);
}

static Conveyor__Lead web_lead(const char *id)
{
    /* +5 by the built-in rules: budget, industry, region, email, brief */
    Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
    lead.lead_id = (char *)id;
    lead.name = "Olga";
    lead.company = "Vector LLC";
    lead.email = "olga@vector.ru";
    lead.message = "CRM for 12 people";
    lead.channel = "web";
    lead.region = "Kazan";
    lead.industry = "logistics";
    lead.has_budget = true;
    lead.budget = 2000000;
    return lead;
}

/* A model like the built-in one but stricter on budgets: +1 only from 5
 * million roubles. Written into `path`. */
static cv_scoring_model_t *strict_model(const char *path)
{
    const char *text = cv_scoring_rules_builtin_text();
    const char *old = "              - from_rub: 1000000";
    const char *at = strstr(text, old);
    assert_non_null(at);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%.*s              - from_rub: 5000000%s", (int)(at - text),
            text, at + strlen(old));
    fclose(f);
    char error[700];
    cv_scoring_model_t *m = cv_scoring_rules_load(path, error, sizeof(error));
    if (m == NULL)
        fail_msg("%s", error);
    return m;
}

static void test_replay_counts_moves_and_win_rates(void **state)
{
    (void)state;
    char db_path[] = "/tmp/test_scoring_replay_XXXXXX";
    int fd = mkstemp(db_path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, scores_table, NULL, NULL, NULL),
                     SQLITE_OK);
    const int64_t day = 86400000;
    const int64_t nov1 = 1761955200000; /* 2025-11-01 */

    /* four B leads of +5: with 2 million of budget each, the strict
     * model takes a point (budget +1 -> 0): +4, still B */
    char ids[6][32];
    for (int i = 0; i < 4; i++) {
        snprintf(ids[i], sizeof(ids[i]), "lead_b%d", i);
        Conveyor__Lead lead = web_lead(ids[i]);
        store(db, &lead, NULL,
              i < 2    ? "won"
              : i == 2 ? "lost"
                       : NULL,
              nov1 + i * day, true);
    }
    /* a lead its manager moved to A (+10): the strict model's budget
     * makes it +9, B; it was won */
    snprintf(ids[4], sizeof(ids[4]), "lead_a");
    Conveyor__Lead a = web_lead(ids[4]);
    cv_scoring_card_t card = {0};
    const cv_scoring_card_value_t said[] = {{"volume", 1},
                                            {"timeline", 1},
                                            {"positioning", 1},
                                            {"dm_access", 1},
                                            {"adequacy", 1}};
    cv_scoring_card_change_t change = {said,         5,   false, NULL,
                                       "sales-anna", nov1};
    assert_int_equal(cv_scoring_card_apply(&card, &change), 0);
    store(db, &a, &card, "won", nov1 + 5 * day, true);
    /* an old row without the lead: counted, not replayed */
    snprintf(ids[5], sizeof(ids[5]), "lead_old");
    Conveyor__Lead old = web_lead(ids[5]);
    store(db, &old, NULL, "lost", nov1 - day, false);
    sqlite3_close(db);

    char rules_path[] = "/tmp/test_scoring_replay_rules_XXXXXX";
    fd = mkstemp(rules_path);
    assert_true(fd >= 0);
    close(fd);
    cv_scoring_model_t *strict = strict_model(rules_path);
    cv_scoring_replay_t r;
    memset(&r, 0, sizeof(r));
    char error[700];
    assert_int_equal(
        cv_scoring_replay(db_path, strict, 0, &r, error, sizeof(error)), 0);
    assert_int_equal(r.leads, 6);
    assert_int_equal(r.replayed, 5);
    assert_int_equal(r.without_lead, 1);
    assert_int_equal(r.moved[1][1], 4); /* B stays B */
    assert_int_equal(r.moved[0][1], 1); /* A -> B */
    assert_int_equal(r.changed, 1);
    assert_int_equal(r.version_count, 1);
    assert_string_equal(r.versions[0], "default-1");
    assert_int_equal(r.version_leads[0], 6);
    /* now: A 1/1 won, B 2/3; under the strict model: B 3/4 */
    assert_int_equal(r.decided[0][0], 1);
    assert_int_equal(r.won[0][0], 1);
    assert_int_equal(r.decided[0][1], 3);
    assert_int_equal(r.won[0][1], 2);
    assert_int_equal(r.decided[1][0], 0);
    assert_int_equal(r.decided[1][1], 4);
    assert_int_equal(r.won[1][1], 3);

    /* the same model as stored moves nothing; --since leaves leads out */
    memset(&r, 0, sizeof(r));
    assert_int_equal(cv_scoring_replay(db_path, NULL, nov1 + 2 * day, &r, error,
                                       sizeof(error)),
                     0);
    assert_int_equal(r.leads, 3); /* lead_b2, lead_b3, lead_a */
    assert_int_equal(r.changed, 0);
    assert_int_equal(r.moved[0][0], 1);
    assert_int_equal(r.moved[1][1], 2);

    /* not a scoring database */
    assert_int_equal(
        cv_scoring_replay(rules_path, strict, 0, &r, error, sizeof(error)), -1);
    assert_non_null(strstr(error, rules_path));
    cv_scoring_rules_free(&strict);
    unlink(rules_path);
    unlink(db_path);
    assert_int_equal(cv_scoring_replay_segment("B"), 1);
    assert_int_equal(cv_scoring_replay_segment("D"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_counts_moves_and_win_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

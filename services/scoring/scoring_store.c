/* scoring_store: the score rows of var/scoring.db. */
#include "scoring.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

/* Texts are bound with cv_store_bind_static, without SQLite's copy: each
 * statement here is bound and stepped in one function, while the texts it
 * binds (arguments, or locals of that function) are still there. */

/* What score_json holds in rows written since migration 3: nothing. The
 * column was a ~2 KB copy of the score that nothing read; the console's
 * lead card keeps the score, and the row's lead, scorecard and
 * model_version make it again (scoring_schema.c). */
#define SCORING_SCORE_JSON ""

/* The lead packed for the row: into `local` when it fits, else into a
 * buffer the caller frees (*heap). NULL when out of memory. */
static uint8_t *scoring_pack_lead(const Conveyor__Lead *lead, uint8_t *local,
                                  size_t local_size, size_t *size,
                                  uint8_t **heap)
{
    *heap = NULL;
    *size = conveyor__lead__get_packed_size(lead);
    uint8_t *buf = local;
    if (*size > local_size) {
        *heap = malloc(*size);
        if (*heap == NULL)
            return NULL;
        buf = *heap;
    }
    conveyor__lead__pack(lead, buf);
    return buf;
}

/* Binds the columns ?1..?10 both score writes share: lead_id, total,
 * segment, knocked_out, knockout_reason (only while knocked out),
 * model_version, score_json, event_id, scored_at, lead. */
static void scoring_bind_score(sqlite3_stmt *stmt, const Conveyor__Lead *lead,
                               const cv_scoring_result_t *score,
                               const char *event_id, int64_t scored_at,
                               const uint8_t *packed, size_t lead_size)
{
    cv_store_bind_static(stmt, 1, lead->lead_id);
    sqlite3_bind_int(stmt, 2, score->total);
    cv_store_bind_static(stmt, 3, score->segment);
    sqlite3_bind_int(stmt, 4, score->knocked_out ? 1 : 0);
    cv_store_bind_static(stmt, 5,
                       score->knocked_out ? score->knockout_reason : NULL);
    cv_store_bind_static(stmt, 6, score->model_version);
    sqlite3_bind_text(stmt, 7, SCORING_SCORE_JSON, 0, SQLITE_STATIC);
    cv_store_bind_static(stmt, 8, event_id);
    sqlite3_bind_int64(stmt, 9, scored_at);
    sqlite3_bind_blob(stmt, 10, packed, (int)lead_size, SQLITE_STATIC);
}

int scoring_store_save(cv_store_t *store, const Conveyor__Lead *lead,
                       const cv_scoring_result_t *score, const char *event_id,
                       bool *fresh)
{
    int rc = -1;
    uint8_t local[1024];
    uint8_t *heap = NULL;
    size_t lead_size = 0;
    const uint8_t *packed =
        scoring_pack_lead(lead, local, sizeof(local), &lead_size, &heap);
    if (packed == NULL) {
        cv_error("cannot pack lead '%s' for its score: out of memory",
                 lead->lead_id);
        goto out;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT OR IGNORE INTO scores (lead_id, total, segment, knocked_out,"
        " knockout_reason, model_version, score_json, event_id, scored_at,"
        " lead) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (stmt == NULL)
        goto out;
    scoring_bind_score(stmt, lead, score, event_id, cv_clock_now_ms(), packed,
                       lead_size);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    *fresh = sqlite3_changes(cv_store_db(store)) > 0;
    rc = 0;
out:
    free(heap);
    return rc;
}

void scoring_row_clear(scoring_row_t *row)
{
    if (row == NULL)
        return;
    if (row->lead != NULL)
        conveyor__lead__free_unpacked(row->lead, NULL);
    memset(row, 0, sizeof(*row));
}

int scoring_store_load(cv_store_t *store, const char *lead_id,
                       scoring_row_t *row)
{
    memset(row, 0, sizeof(*row));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT total, segment, knocked_out, revision, lead"
               " FROM scores WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    int found = cv_store_step_row(stmt);
    if (found != 0)
        return found;
    row->total = sqlite3_column_int(stmt, 0);
    cv_store_column_copy(stmt, 1, row->segment, sizeof(row->segment));
    row->knocked_out = sqlite3_column_int(stmt, 2) != 0;
    row->revision = sqlite3_column_int64(stmt, 3);
    int size = sqlite3_column_bytes(stmt, 4);
    const void *blob = sqlite3_column_blob(stmt, 4);
    if (blob != NULL && size > 0) {
        row->lead = conveyor__lead__unpack(NULL, (size_t)size, blob);
        if (row->lead == NULL)
            cv_log_warn("the stored lead of '%s' does not parse; re-scoring "
                        "it needs the console's copy",
                        lead_id);
    }
    sqlite3_reset(stmt);
    return 0;
}

int scoring_store_rescore(cv_store_t *store, const Conveyor__Lead *lead,
                          const cv_scoring_result_t *score,
                          const Conveyor__Scorecard *card,
                          const scoring_row_t *before, const char *event_id)
{
    int rc = -1;
    uint8_t local[1024];
    uint8_t *heap = NULL;
    uint8_t *card_packed = NULL;
    size_t lead_size = 0;
    const uint8_t *packed =
        scoring_pack_lead(lead, local, sizeof(local), &lead_size, &heap);
    size_t card_size = conveyor__scorecard__get_packed_size(card);
    card_packed = malloc(card_size > 0 ? card_size : 1);
    if (packed == NULL || card_packed == NULL) {
        cv_error("cannot store the re-score of lead '%s': out of memory",
                 lead->lead_id);
        goto out;
    }
    conveyor__scorecard__pack(card, card_packed);
    int64_t now = cv_clock_now_ms();
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT INTO scores (lead_id, total, segment, knocked_out,"
        " knockout_reason, model_version, score_json, event_id, scored_at,"
        " lead, scorecard, revision, rescored_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?9)"
        " ON CONFLICT (lead_id) DO UPDATE SET total = excluded.total,"
        " segment = excluded.segment, knocked_out = excluded.knocked_out,"
        " knockout_reason = excluded.knockout_reason,"
        " model_version = excluded.model_version,"
        " score_json = excluded.score_json, lead = excluded.lead,"
        " scorecard = excluded.scorecard, revision = excluded.revision,"
        " rescored_at = excluded.rescored_at");
    if (stmt == NULL)
        goto out;
    scoring_bind_score(stmt, lead, score, event_id, now, packed, lead_size);
    sqlite3_bind_blob(stmt, 11, card_packed, (int)card_size, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 12, card->revision);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    stmt = cv_store_prepare(
        store, "INSERT INTO score_history (lead_id, revision, scorecard_id,"
               " actor, old_total, new_total, old_segment, new_segment,"
               " knocked_out, model_version, event_id, at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (stmt == NULL)
        goto out;
    cv_store_bind_static(stmt, 1, lead->lead_id);
    sqlite3_bind_int64(stmt, 2, card->revision);
    cv_store_bind_static(stmt, 3, card->scorecard_id);
    cv_store_bind_static(stmt, 4, card->actor);
    if (before != NULL) {
        sqlite3_bind_int(stmt, 5, before->total);
        cv_store_bind_static(stmt, 7, before->segment);
    }
    sqlite3_bind_int(stmt, 6, score->total);
    cv_store_bind_static(stmt, 8, score->segment);
    sqlite3_bind_int(stmt, 9, score->knocked_out ? 1 : 0);
    cv_store_bind_static(stmt, 10, score->model_version);
    cv_store_bind_static(stmt, 11, event_id);
    sqlite3_bind_int64(stmt, 12, now);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    rc = 0;
out:
    free(card_packed);
    free(heap);
    return rc;
}

int scoring_store_decision(cv_store_t *store, const char *lead_id,
                           const char *result, int64_t at, bool *kept)
{
    *kept = false;
    /* the later decision wins (a lost lead may be won after all) */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE scores SET decision = ?2, decided_at = ?3"
               " WHERE lead_id = ?1 AND (decided_at IS NULL OR"
               " decided_at <= ?3)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    cv_store_bind_static(stmt, 2, result);
    sqlite3_bind_int64(stmt, 3, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *kept = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

/* cv_scoring_replay: stored leads scored again under another model. */
#include "cv_scoring_replay.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "cv_scoring.h"

int cv_scoring_replay_segment(const char *segment)
{
    if (segment == NULL || segment[0] == '\0' || segment[1] != '\0')
        return -1;
    const char *at = strchr(CV_SCORING_SEGMENTS, segment[0]);
    return at != NULL ? (int)(at - CV_SCORING_SEGMENTS) : -1;
}

static void count_version(cv_scoring_replay_t *out, const char *version)
{
    if (version == NULL)
        version = "";
    for (size_t i = 0; i < out->version_count; i++) {
        if (strcmp(out->versions[i], version) == 0) {
            out->version_leads[i]++;
            return;
        }
    }
    if (out->version_count == CV_SCORING_REPLAY_VERSIONS) {
        out->other_versions++;
        return;
    }
    snprintf(out->versions[out->version_count], sizeof(out->versions[0]), "%s",
             version);
    out->version_leads[out->version_count++] = 1;
}

/* One stored score, scored again. */
static void replay_row(sqlite3_stmt *stmt, const cv_scoring_model_t *model,
                       cv_scoring_replay_t *out)
{
    const char *stored = (const char *)sqlite3_column_text(stmt, 0);
    int old_seg = cv_scoring_replay_segment(stored);
    bool old_knocked = sqlite3_column_int(stmt, 1) != 0;
    count_version(out, (const char *)sqlite3_column_text(stmt, 2));
    out->leads++;
    const void *lead_blob = sqlite3_column_blob(stmt, 3);
    int lead_size = sqlite3_column_bytes(stmt, 3);
    if (lead_blob == NULL || lead_size <= 0) {
        out->without_lead++;
        return;
    }
    Conveyor__Lead *lead =
        conveyor__lead__unpack(NULL, (size_t)lead_size, lead_blob);
    Conveyor__Scorecard *card = NULL;
    const void *card_blob = sqlite3_column_blob(stmt, 4);
    int card_size = sqlite3_column_bytes(stmt, 4);
    if (card_blob != NULL && card_size > 0)
        card = conveyor__scorecard__unpack(NULL, (size_t)card_size, card_blob);
    if (lead == NULL || old_seg < 0 ||
        (card_blob != NULL && card_size > 0 && card == NULL)) {
        out->unreadable++;
        goto out;
    }
    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_manual_from_proto(card, &manual, storage);
    cv_scoring_result_t score;
    cv_scoring_score_manual(model, lead, &manual, &score);
    int new_seg = cv_scoring_replay_segment(score.segment);
    out->replayed++;
    out->moved[old_seg][new_seg]++;
    out->changed += old_seg != new_seg ? 1 : 0;
    out->knocked_out[0] += old_knocked ? 1 : 0;
    out->knocked_out[1] += score.knocked_out ? 1 : 0;
    const char *decision = (const char *)sqlite3_column_text(stmt, 5);
    if (decision != NULL &&
        (strcmp(decision, "won") == 0 || strcmp(decision, "lost") == 0)) {
        int won = strcmp(decision, "won") == 0;
        out->decided[0][old_seg]++;
        out->decided[1][new_seg]++;
        out->won[0][old_seg] += won;
        out->won[1][new_seg] += won;
    }
out:
    if (card != NULL)
        conveyor__scorecard__free_unpacked(card, NULL);
    if (lead != NULL)
        conveyor__lead__free_unpacked(lead, NULL);
}

int cv_scoring_replay(const char *db_path, const cv_scoring_model_t *model,
                      int64_t since_ms, cv_scoring_replay_t *out, char *error,
                      size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int result = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
        SQLITE_OK) {
        snprintf(error, size, "cannot open '%s': %s", db_path,
                 db != NULL ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT segment, knocked_out, model_version, lead, scorecard,"
        " decision FROM scores WHERE scored_at >= ?1 ORDER BY scored_at",
        -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        snprintf(error, size,
                 "cannot read scores from '%s': %s (not the scoring "
                 "stage's database, or one from before leads were kept)",
                 db_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(stmt, 1, since_ms);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        replay_row(stmt, model, out);
    if (rc != SQLITE_DONE) {
        snprintf(error, size, "cannot read scores from '%s': %s", db_path,
                 sqlite3_errmsg(db));
        goto out;
    }
    result = 0;
out:
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
}

/* scoring_store: the score rows of var/scoring.db. */
#include "scoring.h"

#include <stdlib.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"

int scoring_store_save(cv_store_t *store, const Conveyor__Lead *lead,
                       const cv_scoring_result_t *score, const char *event_id,
                       bool *fresh)
{
    int rc = -1;
    char *text = NULL;
    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(score, &proto, params, ptrs);
    json_t *json = cv_event_score_to_json(&proto);
    if (json == NULL) {
        cv_error("cannot render the score of lead '%s': out of memory",
                 lead->lead_id);
        goto out;
    }
    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (text == NULL) {
        cv_error("cannot render the score of lead '%s': out of memory",
                 lead->lead_id);
        goto out;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT OR IGNORE INTO scores (lead_id, total, segment, knocked_out,"
        " knockout_reason, model_version, score_json, event_id, scored_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, lead->lead_id);
    sqlite3_bind_int(stmt, 2, score->total);
    cv_store_bind_text(stmt, 3, score->segment);
    sqlite3_bind_int(stmt, 4, score->knocked_out ? 1 : 0);
    cv_store_bind_text(stmt, 5,
                       score->knocked_out ? score->knockout_reason : NULL);
    cv_store_bind_text(stmt, 6, score->model_version);
    cv_store_bind_text(stmt, 7, text);
    cv_store_bind_text(stmt, 8, event_id);
    sqlite3_bind_int64(stmt, 9, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        goto out;
    *fresh = sqlite3_changes(cv_store_db(store)) > 0;
    rc = 0;
out:
    free(text);
    return rc;
}

/* scoring_store: the score rows of var/scoring.db. */
#include "scoring.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_jsonw.h"
#include "cv_log.h"

/* The score as JSON text built by jansson (cv_event_score_to_json), for
 * the texts scoring_json_score cannot write itself. Caller frees; NULL
 * when out of memory. */
static char *scoring_json_jansson(const cv_scoring_result_t *score)
{
    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(score, &proto, params, ptrs);
    json_t *json = cv_event_score_to_json(&proto);
    if (json == NULL)
        return NULL;
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    return text;
}

/* The score as the same JSON text that cv_event_score_to_json and
 * json_dumps(JSON_COMPACT) make, written directly: the jansson round
 * trip was half of the stage's work per lead. Caller frees; NULL when
 * out of memory. */
static char *scoring_json_score(const cv_scoring_result_t *score)
{
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_append(&b, "{\"total\":");
    cv_jsonw_int(&b, score->total);
    cv_jsonw_append(&b, ",\"segment\":");
    cv_jsonw_string(&b, score->segment);
    if (score->knocked_out)
        cv_jsonw_append(&b, ",\"knocked_out\":true");
    else
        cv_jsonw_append(&b, ",\"knocked_out\":false");
    if (score->knocked_out)
        cv_jsonw_text_member(&b, "knockout_reason", score->knockout_reason);
    cv_jsonw_text_member(&b, "model_version", score->model_version);
    cv_jsonw_append(&b, ",\"params\":{");
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        const cv_scoring_param_t *p = &score->params[i];
        if (i > 0)
            cv_jsonw_append(&b, ",");
        cv_jsonw_string(&b, p->name);
        cv_jsonw_append(&b, ":{\"value\":");
        cv_jsonw_int(&b, p->value);
        cv_jsonw_append(&b, ",\"block\":");
        cv_jsonw_string(&b, p->block);
        cv_jsonw_text_member(&b, "source", p->source);
        cv_jsonw_text_member(&b, "reason", p->reason);
        cv_jsonw_append(&b, "}");
    }
    cv_jsonw_append(&b, "}}");
    if (b.failed) {
        /* out of memory, or a text jansson treats its own way */
        cv_jsonw_clear(&b);
        return scoring_json_jansson(score);
    }
    return b.data;
}

int scoring_store_save(cv_store_t *store, const Conveyor__Lead *lead,
                       const cv_scoring_result_t *score, const char *event_id,
                       bool *fresh)
{
    int rc = -1;
    char *text = scoring_json_score(score);
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

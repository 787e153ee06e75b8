/* console_scorecard: people's values on a lead's score.
 *
 * PUT /v1/leads/{id}/scorecard sets parameters (-1, 0 or +1 each) and a
 * knock-out after the first call. The console keeps the lead's scorecard
 * (common/cv_scoring_card.h: per parameter the latest value, who and
 * when) and every change with old -> new per parameter, scores the lead
 * with the same model and rules file as the scoring stage to answer at
 * once with the new score, and sends the whole scorecard to the scoring
 * stage (ActivityRecorded of type "scorecard"), which owns the model:
 * its LeadScored with `rescore` then updates the card, routing and the
 * proposal generator. Both scores come from cv_scoring_score_manual over
 * the same lead and scorecard, so they agree while the two processes
 * run the same rules.
 *
 * Who may: the lead's owner, head and admin. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_scoring.h"
#include "cv_scoring_card.h"

#define SCORECARD_KNOCKOUT_MAX 500 /* bytes in a knock-out reason */

json_t *console_score_json(const Conveyor__Score *score)
{
    json_t *obj = cv_event_score_to_json(score);
    if (obj == NULL)
        return NULL;
    if (score->knockout_source != NULL && score->knockout_source[0] != '\0')
        json_object_set_new(obj, "knockout_source",
                            console_json_text(score->knockout_source));
    json_object_set_new(
        obj, "revision",
        json_integer(score->has_revision ? score->revision : 0));
    return obj;
}

/* What one request asks for, checked. */
typedef struct {
    cv_scoring_card_value_t values[CV_SCORING_PARAM_COUNT]; /* names
                                                  borrowed from the body */
    cv_scoring_card_change_t change; /* values, knock-out, actor, time */
} scorecard_request_t;

/* Reads the body against the model: {"params": {name: -1|0|1},
 * "knockout": "reason" | null}. false after replying 422 with the field
 * at fault. */
static bool scorecard_read(console_ctx_t *ctx, json_t *body,
                           const cv_scoring_model_t *model,
                           scorecard_request_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value)
    {
        if (strcmp(key, "params") != 0 && strcmp(key, "knockout") != 0) {
            cv_http_reply_error(ctx->req, 422, "invalid", key,
                                "unknown field '%s': a scorecard has "
                                "'params' and 'knockout'",
                                key);
            return false;
        }
    }
    json_t *params = json_object_get(body, "params");
    if (params != NULL && !json_is_object(params)) {
        cv_http_reply_error(ctx->req, 422, "invalid", "params",
                            "'params' is an object of parameter names "
                            "and values -1, 0 or 1");
        return false;
    }
    json_object_foreach(params, key, value)
    {
        char field[96];
        snprintf(field, sizeof(field), "params.%.80s", key);
        if (cv_scoring_rules_param_index(model, key) < 0) {
            cv_http_reply_error(ctx->req, 422, "invalid", field,
                                "unknown parameter '%.80s' (model '%s')", key,
                                model->version);
            return false;
        }
        json_int_t v = json_is_integer(value) ? json_integer_value(value) : 2;
        if (v < -1 || v > 1) {
            cv_http_reply_error(ctx->req, 422, "invalid", field,
                                "'%.80s' is -1, 0 or 1", key);
            return false;
        }
        /* a JSON object has each key once (duplicates are rejected) */
        out->values[out->change.count].name = key;
        out->values[out->change.count].value = (int)v;
        out->change.count++;
    }
    json_t *knockout = json_object_get(body, "knockout");
    if (knockout != NULL) {
        out->change.knockout_given = true;
        if (json_is_string(knockout)) {
            const char *reason = json_string_value(knockout);
            size_t len = json_string_length(knockout);
            if (len == 0 || len > SCORECARD_KNOCKOUT_MAX ||
                memchr(reason, '\0', len) != NULL) {
                cv_http_reply_error(ctx->req, 422, "invalid", "knockout",
                                    "'knockout' is the reason, 1 to %d "
                                    "bytes of text (null lifts a "
                                    "knock-out)",
                                    SCORECARD_KNOCKOUT_MAX);
                return false;
            }
            out->change.knockout_reason = reason;
        } else if (!json_is_null(knockout)) {
            cv_http_reply_error(ctx->req, 422, "invalid", "knockout",
                                "'knockout' is the reason as text, or null "
                                "to lift a knock-out");
            return false;
        }
    }
    if (out->change.count == 0 && !out->change.knockout_given) {
        cv_http_reply_error(ctx->req, 422, "invalid", "params",
                            "give at least one parameter in 'params', or a "
                            "'knockout'");
        return false;
    }
    out->change.values = out->values;
    return true;
}

/* The lead's scorecard as stored: 0, or -1 after logging. */
static int scorecard_load(cv_store_t *store, const char *lead_id,
                          cv_scoring_card_t *card)
{
    memset(card, 0, sizeof(*card));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT card FROM scorecards WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    int result = 0;
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(stmt, 0);
        int size = sqlite3_column_bytes(stmt, 0);
        if (cv_scoring_card_unpack(blob, size > 0 ? (size_t)size : 0, card) !=
            0)
            result = cv_error("the stored scorecard of '%s' does not parse",
                              lead_id);
    } else if (rc != SQLITE_DONE) {
        result = cv_error("cannot read the scorecard of '%s': %s", lead_id,
                          sqlite3_errmsg(cv_store_db(store)));
    }
    sqlite3_reset(stmt);
    return result;
}

/* Keeps the new card, the change and its values. 0 or -1. */
static int scorecard_store(cv_store_t *store, const char *lead_id,
                           const char *scorecard_id, const uint8_t *packed,
                           size_t size, const cv_scoring_card_t *card,
                           const cv_scoring_card_change_t *change,
                           const cv_scoring_result_t *before,
                           const cv_scoring_result_t *after)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO scorecards (lead_id, revision, card, updated_at)"
               " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (lead_id) DO UPDATE SET"
               " revision = excluded.revision, card = excluded.card,"
               " updated_at = excluded.updated_at");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    sqlite3_bind_int64(stmt, 2, card->revision);
    sqlite3_bind_blob(stmt, 3, packed, (int)size, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, change->at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    stmt = cv_store_prepare(
        store, "INSERT INTO scorecard_changes (scorecard_id, lead_id,"
               " revision, actor, at, old_total, new_total, old_segment,"
               " new_segment, knockout, knockout_reason, model_version)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, scorecard_id);
    cv_store_bind_text(stmt, 2, lead_id);
    sqlite3_bind_int64(stmt, 3, card->revision);
    cv_store_bind_text(stmt, 4, change->actor);
    sqlite3_bind_int64(stmt, 5, change->at);
    sqlite3_bind_int(stmt, 6, before->total);
    sqlite3_bind_int(stmt, 7, after->total);
    cv_store_bind_text(stmt, 8, before->segment);
    cv_store_bind_text(stmt, 9, after->segment);
    if (change->knockout_given) {
        cv_store_bind_text(stmt, 10,
                           change->knockout_reason != NULL ? "set" : "lifted");
        cv_store_bind_text(stmt, 11, change->knockout_reason);
    }
    cv_store_bind_text(stmt, 12, after->model_version);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    stmt = cv_store_prepare(
        store, "INSERT INTO scorecard_values (scorecard_id, param,"
               " old_value, new_value, old_source) VALUES (?1, ?2, ?3, ?4,"
               " ?5)");
    if (stmt == NULL)
        return -1;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        bool named = false;
        for (size_t k = 0; !named && k < change->count; k++)
            named = strcmp(change->values[k].name, after->params[i].name) == 0;
        if (!named)
            continue;
        cv_store_bind_text(stmt, 1, scorecard_id);
        cv_store_bind_text(stmt, 2, after->params[i].name);
        sqlite3_bind_int(stmt, 3, before->params[i].value);
        sqlite3_bind_int(stmt, 4, after->params[i].value);
        cv_store_bind_text(stmt, 5, before->params[i].source);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    return 0;
}

static const char *scorecard_value_text(int value)
{
    return value > 0 ? "+1" : value < 0 ? "-1" : "0";
}

/* "budget +1 → -1, dm_access 0 → +1; knocked out: ...; score +6 → +8,
 * segment B" for the timeline. */
static void scorecard_describe(char *buf, size_t size,
                               const cv_scoring_card_change_t *change,
                               const cv_scoring_result_t *before,
                               const cv_scoring_result_t *after)
{
    size_t used = 0;
    buf[0] = '\0';
#define ADD(...)                                                               \
    do {                                                                       \
        if (used < size) {                                                     \
            int n_ = snprintf(buf + used, size - used, __VA_ARGS__);           \
            used += n_ > 0 ? (size_t)n_ : 0;                                   \
        }                                                                      \
    } while (0)
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        for (size_t k = 0; k < change->count; k++) {
            if (strcmp(change->values[k].name, after->params[i].name) != 0)
                continue;
            ADD("%s%s %s → %s", used ? ", " : "", after->params[i].name,
                scorecard_value_text(before->params[i].value),
                scorecard_value_text(after->params[i].value));
        }
    }
    if (change->knockout_given && change->knockout_reason != NULL)
        ADD("%sknocked out: %s", used ? "; " : "", change->knockout_reason);
    else if (change->knockout_given)
        ADD("%sknock-out lifted", used ? "; " : "");
    ADD("; score %+d → %+d, segment %s", before->total, after->total,
        after->segment);
    if (strcmp(before->segment, after->segment) != 0)
        ADD(" (was %s)", before->segment);
#undef ADD
}

void console_scorecard_put(console_ctx_t *ctx, const char *lead_id)
{
    console_snapshot_t snap;
    memset(&snap, 0, sizeof(snap));
    const cv_scoring_model_t *model = NULL;
    Conveyor__Scorecard *msg = NULL;
    uint8_t *packed = NULL;
    json_t *body = console_read_json(ctx->req);
    if (body == NULL)
        return;
    model = cv_scoring_live_acquire(ctx->console->rules);
    scorecard_request_t request;
    if (!scorecard_read(ctx, body, model, &request))
        goto out;
    int rc = console_snapshot_load(ctx->store, lead_id, &snap);
    if (rc < 0)
        goto storage;
    if (rc > 0) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL, "no lead '%s'",
                            lead_id);
        goto out;
    }
    /* the owner, head and admin: console_may_see's rule */
    if (!console_may_see(ctx, snap.owner_id))
        goto out;

    cv_scoring_card_t card;
    if (scorecard_load(ctx->store, lead_id, &card) != 0)
        goto storage;
    cv_scoring_override_t storage_before[CV_SCORING_PARAM_COUNT];
    cv_scoring_override_t storage_after[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_result_t before, after;
    cv_scoring_card_manual(&card, &manual, storage_before);
    cv_scoring_score_manual(model, &snap.lead, &manual, &before);
    int64_t now = cv_clock_now_ms();
    const char *actor = console_caller_actor(&ctx->caller);
    request.change.actor = actor;
    request.change.at = now;
    if (cv_scoring_card_apply(&card, &request.change) != 0) {
        /* names and values were checked: only too many distinct names of
         * an older model could do this */
        cv_http_reply_error(ctx->req, 422, "invalid", "params",
                            "the scorecard cannot take these parameters");
        goto out;
    }
    cv_scoring_card_manual(&card, &manual, storage_after);
    cv_scoring_score_manual(model, &snap.lead, &manual, &after);

    char scorecard_id[CV_ID_SIZE];
    cv_id_new("sc", scorecard_id, sizeof(scorecard_id));
    size_t size = 0;
    packed = cv_scoring_card_pack(&card, lead_id, scorecard_id, &request.change,
                                  &size);
    msg =
        packed != NULL ? conveyor__scorecard__unpack(NULL, size, packed) : NULL;
    if (msg == NULL) {
        cv_error("cannot pack the scorecard of '%s': out of memory", lead_id);
        goto storage;
    }
    if (scorecard_store(ctx->store, lead_id, scorecard_id, packed, size, &card,
                        &request.change, &before, &after) != 0)
        goto storage;
    char detail[1500];
    scorecard_describe(detail, sizeof(detail), &request.change, &before,
                       &after);
    if (console_timeline_add(ctx->store, lead_id, now, actor, "scorecard",
                             scorecard_id, "scorecard by %s: %s", actor,
                             detail) < 0)
        goto storage;

    /* the scoring stage owns the model: it scores the lead again */
    Conveyor__ActivityRecorded activity = CONVEYOR__ACTIVITY_RECORDED__INIT;
    activity.activity_id = scorecard_id;
    activity.lead_id = (char *)lead_id;
    activity.type = "scorecard";
    activity.actor = (char *)actor;
    activity.lead = &snap.lead;
    activity.score = snap.score;
    activity.owner_id = snap.owner_id[0] ? snap.owner_id : NULL;
    activity.scorecard = msg;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.trace_id = snap.trace_id[0] ? snap.trace_id : NULL;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED;
    env.activity_recorded = &activity;
    if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env, "scoring", NULL) != 0)
        goto storage;
    if (console_commit_and_wake(ctx) != 0)
        goto out;
    cv_metric_add(cv_metrics_counter("conveyor_console_scorecards_total",
                                     "scorecard changes staff made"),
                  1);

    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(&after, &proto, params, ptrs);
    json_t *reply = json_object();
    json_object_set_new(reply, "lead_id", console_json_text(lead_id));
    json_object_set_new(reply, "scorecard_id", json_string(scorecard_id));
    json_object_set_new(reply, "revision", json_integer(card.revision));
    json_object_set_new(reply, "actor", console_json_text(actor));
    json_object_set_new(reply, "at", console_time_json(now));
    json_t *score = console_score_json(&proto);
    json_object_set_new(reply, "score", score != NULL ? score : json_null());
    json_t *previous = json_object();
    json_object_set_new(previous, "total", json_integer(before.total));
    json_object_set_new(previous, "segment", json_string(before.segment));
    json_object_set_new(previous, "knocked_out",
                        json_boolean(before.knocked_out));
    json_object_set_new(reply, "previous", previous);
    json_t *changes = json_array();
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++)
        for (size_t k = 0; k < request.change.count; k++)
            if (strcmp(request.change.values[k].name, after.params[i].name) ==
                0) {
                json_t *c = json_object();
                json_object_set_new(c, "param",
                                    json_string(after.params[i].name));
                json_object_set_new(c, "old",
                                    json_integer(before.params[i].value));
                json_object_set_new(c, "new",
                                    json_integer(after.params[i].value));
                json_array_append_new(changes, c);
            }
    json_object_set_new(reply, "changes", changes);
    /* the card follows when the scoring stage has scored it again */
    json_object_set_new(reply, "status", json_string("rescoring"));
    cv_http_reply_json(ctx->req, 200, reply);
    goto out;
storage:
    console_reply_storage(ctx->req);
out:
    if (model != NULL)
        cv_scoring_live_release(ctx->console->rules);
    if (msg != NULL)
        conveyor__scorecard__free_unpacked(msg, NULL);
    free(packed);
    console_snapshot_clear(&snap);
    json_decref(body);
}

/* The changes of one scorecard revision: [{"param", "old", "new",
 * "old_source"}]. */
static json_t *scorecard_values_json(cv_store_t *store,
                                     const char *scorecard_id, bool *failed)
{
    json_t *values = json_array();
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT param, old_value, new_value, old_source FROM"
               " scorecard_values WHERE scorecard_id = ?1 ORDER BY param");
    if (stmt == NULL) {
        *failed = true;
        return values;
    }
    cv_store_bind_text(stmt, 1, scorecard_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *v = json_object();
        console_put_column(v, "param", stmt, 0);
        json_object_set_new(v, "old",
                            json_integer(sqlite3_column_int(stmt, 1)));
        json_object_set_new(v, "new",
                            json_integer(sqlite3_column_int(stmt, 2)));
        console_put_column(v, "old_source", stmt, 3);
        json_array_append_new(values, v);
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) {
        cv_error("cannot read scorecard '%s': %s", scorecard_id,
                 sqlite3_errmsg(cv_store_db(store)));
        *failed = true;
    }
    return values;
}

json_t *console_scorecard_json(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT scorecard_id, revision, actor, at, old_total,"
               " new_total, old_segment, new_segment, knockout,"
               " knockout_reason, model_version FROM scorecard_changes"
               " WHERE lead_id = ?1 ORDER BY revision");
    if (stmt == NULL)
        return NULL;
    cv_store_bind_text(stmt, 1, lead_id);
    json_t *history = json_array();
    json_int_t revision = 0;
    bool failed = false;
    int rc;
    while (!failed && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *h = json_object();
        char id[CONSOLE_ID_SIZE];
        cv_store_column_copy(stmt, 0, id, sizeof(id));
        revision = sqlite3_column_int64(stmt, 1);
        json_object_set_new(h, "scorecard_id", json_string(id));
        json_object_set_new(h, "revision", json_integer(revision));
        console_put_column(h, "actor", stmt, 2);
        json_object_set_new(h, "at",
                            console_time_json(sqlite3_column_int64(stmt, 3)));
        json_t *total = json_object();
        json_object_set_new(total, "old",
                            json_integer(sqlite3_column_int(stmt, 4)));
        json_object_set_new(total, "new",
                            json_integer(sqlite3_column_int(stmt, 5)));
        json_object_set_new(h, "total", total);
        json_t *segment = json_object();
        console_put_column(segment, "old", stmt, 6);
        console_put_column(segment, "new", stmt, 7);
        json_object_set_new(h, "segment", segment);
        console_put_column(h, "knockout", stmt, 8);
        console_put_column(h, "knockout_reason", stmt, 9);
        console_put_column(h, "model_version", stmt, 10);
        json_object_set_new(h, "changes",
                            scorecard_values_json(store, id, &failed));
        json_array_append_new(history, h);
    }
    sqlite3_reset(stmt);
    if (failed || rc != SQLITE_DONE) {
        if (!failed)
            cv_error("cannot read the scorecard history of '%s': %s", lead_id,
                     sqlite3_errmsg(cv_store_db(store)));
        json_decref(history);
        return NULL;
    }
    json_t *obj = json_object();
    json_object_set_new(obj, "revision", json_integer(revision));
    json_object_set_new(obj, "history", history);
    return obj;
}

void console_scorecard_get(console_ctx_t *ctx, const char *lead_id)
{
    char owner[CONSOLE_ID_SIZE] = "";
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT owner_id, (SELECT score FROM lead_scores "
                    "WHERE lead_id = ?1) FROM leads WHERE lead_id = ?1");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    json_t *score = NULL;
    if (rc == SQLITE_ROW) {
        cv_store_column_copy(stmt, 0, owner, sizeof(owner));
        const void *blob = sqlite3_column_blob(stmt, 1);
        int size = sqlite3_column_bytes(stmt, 1);
        Conveyor__Score *unpacked =
            blob != NULL && size > 0
                ? conveyor__score__unpack(NULL, (size_t)size, blob)
                : NULL;
        if (unpacked != NULL) {
            score = console_score_json(unpacked);
            conveyor__score__free_unpacked(unpacked, NULL);
        }
    }
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL, "no lead '%s'",
                            lead_id);
        return;
    }
    if (rc != SQLITE_ROW) {
        cv_error("cannot read lead '%s': %s", lead_id,
                 sqlite3_errmsg(cv_store_db(ctx->store)));
        console_reply_storage(ctx->req);
        return;
    }
    if (!console_may_see(ctx, owner)) {
        json_decref(score);
        return;
    }
    cv_scoring_card_t card;
    json_t *history = NULL;
    if (scorecard_load(ctx->store, lead_id, &card) != 0 ||
        (history = console_scorecard_json(ctx->store, lead_id)) == NULL) {
        json_decref(score);
        console_reply_storage(ctx->req);
        return;
    }
    json_t *params = json_object();
    for (size_t i = 0; i < card.count; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "value", json_integer(card.params[i].value));
        json_object_set_new(p, "actor",
                            console_json_text(card.params[i].actor));
        json_object_set_new(p, "set_at",
                            console_time_json(card.params[i].set_at));
        json_object_set_new(params, card.params[i].name, p);
    }
    json_t *reply = json_object();
    json_object_set_new(reply, "lead_id", console_json_text(lead_id));
    json_object_set_new(reply, "revision", json_integer(card.revision));
    json_object_set_new(reply, "params", params);
    if (card.knockout == CV_SCORING_KNOCKOUT_RULES) {
        json_object_set_new(reply, "knockout", json_null());
    } else {
        json_t *k = json_object();
        json_object_set_new(k, "state",
                            json_string(card.knockout == CV_SCORING_KNOCKOUT_SET
                                            ? "set"
                                            : "lifted"));
        json_object_set_new(k, "reason",
                            card.knockout_reason[0]
                                ? console_json_text(card.knockout_reason)
                                : json_null());
        json_object_set_new(k, "actor", console_json_text(card.knockout_actor));
        json_object_set_new(k, "at", console_time_json(card.knockout_at));
        json_object_set_new(reply, "knockout", k);
    }
    json_object_set_new(reply, "score", score != NULL ? score : json_null());
    json_object_set_new(reply, "history",
                        json_incref(json_object_get(history, "history")));
    json_decref(history);
    cv_http_reply_json(ctx->req, 200, reply);
}

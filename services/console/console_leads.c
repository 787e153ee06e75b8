/* console_leads: the lead card, lead search, and what staff report on a
 * lead (activities and decisions), which the console passes down the belt
 * as ActivityRecorded and DecisionRecorded. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

#define CONSOLE_SEARCH_DEFAULT 50   /* leads per search page */
#define CONSOLE_SEARCH_MAX 500      /* most a search returns */
#define CONSOLE_TASKS_MAX 64        /* open tasks closed by one activity */

static json_t *console_owner_json(sqlite3_stmt *stmt, int id_col,
                                  int name_col)
{
    if (sqlite3_column_type(stmt, id_col) == SQLITE_NULL)
        return json_null();
    json_t *owner = json_object();
    console_put_column(owner, "staff_id", stmt, id_col);
    console_put_column(owner, "name", stmt, name_col);
    return owner;
}

/* The card's columns, in the order console_card_fields reads them (the
 * packed score lives in lead_scores). */
#define CONSOLE_CARD_COLUMNS                                                 \
    "l.lead_id, l.name, l.company, l.phone, l.email, l.telegram, "          \
    "l.message, l.channel, l.source, l.region, l.industry, l.product, "     \
    "l.budget, l.currency, l.inn, l.timezone, l.domain, l.utm_source, "     \
    "l.utm_medium, l.utm_campaign, l.extra, l.stage, l.stage_at, "          \
    "(SELECT score FROM lead_scores WHERE lead_id = l.lead_id), "           \
    "l.owner_id, coalesce(s.name, l.owner_name), l.account_id, "            \
    "l.account_company, l.account_owner_id, l.account_opened_at, "          \
    "l.created_at, l.updated_at, l.received_at "

/* Fills the card's own fields from a row of CONSOLE_CARD_COLUMNS. */
static void console_card_fields(json_t *card, sqlite3_stmt *stmt)
{
    console_put_column(card, "lead_id", stmt, 0);
    console_put_column(card, "name", stmt, 1);
    console_put_column(card, "company", stmt, 2);
    json_t *contacts = json_object();
    console_put_column(contacts, "phone", stmt, 3);
    console_put_column(contacts, "email", stmt, 4);
    console_put_column(contacts, "telegram", stmt, 5);
    json_object_set_new(card, "contacts", contacts);
    console_put_column(card, "message", stmt, 6);
    console_put_column(card, "channel", stmt, 7);
    console_put_column(card, "source", stmt, 8);
    console_put_column(card, "region", stmt, 9);
    console_put_column(card, "industry", stmt, 10);
    console_put_column(card, "product", stmt, 11);
    if (sqlite3_column_type(stmt, 12) == SQLITE_NULL)
        json_object_set_new(card, "budget", json_null());
    else
        json_object_set_new(card, "budget",
                            json_real(sqlite3_column_double(stmt, 12)));
    console_put_column(card, "currency", stmt, 13);
    console_put_column(card, "inn", stmt, 14);
    console_put_column(card, "timezone", stmt, 15);
    console_put_column(card, "domain", stmt, 16);
    json_t *utm = json_object();
    console_put_column(utm, "source", stmt, 17);
    console_put_column(utm, "medium", stmt, 18);
    console_put_column(utm, "campaign", stmt, 19);
    json_object_set_new(card, "utm", utm);
    const char *extra = (const char *)sqlite3_column_text(stmt, 20);
    json_t *extra_json = NULL;
    if (extra != NULL)
        extra_json = json_loads(extra, JSON_DECODE_ANY, NULL);
    json_object_set_new(card, "extra",
                        extra_json != NULL ? extra_json : json_null());
    console_put_column(card, "stage", stmt, 21);
    json_object_set_new(card, "stage_at",
                        console_time_json(sqlite3_column_int64(stmt, 22)));
    json_t *score = NULL;
    int score_size = sqlite3_column_bytes(stmt, 23);
    const void *packed = sqlite3_column_blob(stmt, 23);
    if (packed != NULL && score_size > 0) {
        Conveyor__Score *unpacked =
            conveyor__score__unpack(NULL, (size_t)score_size, packed);
        if (unpacked != NULL) {
            score = console_score_json(unpacked);
            conveyor__score__free_unpacked(unpacked, NULL);
        }
    }
    json_object_set_new(card, "score", score != NULL ? score : json_null());
    json_object_set_new(card, "owner", console_owner_json(stmt, 24, 25));
    if (sqlite3_column_type(stmt, 26) == SQLITE_NULL) {
        json_object_set_new(card, "account", json_null());
    } else {
        json_t *account = json_object();
        console_put_column(account, "account_id", stmt, 26);
        console_put_column(account, "company", stmt, 27);
        console_put_column(account, "owner_id", stmt, 28);
        json_object_set_new(
            account, "opened_at",
            console_time_json(sqlite3_column_int64(stmt, 29)));
        json_object_set_new(card, "account", account);
    }
    json_object_set_new(card, "created_at",
                        console_time_json(sqlite3_column_int64(stmt, 30)));
    json_object_set_new(card, "updated_at",
                        console_time_json(sqlite3_column_int64(stmt, 31)));
    json_object_set_new(card, "received_at",
                        console_time_json(sqlite3_column_int64(stmt, 32)));
}

/* Appends every row of `stmt` (bound, not yet stepped) to `array`, each
 * made by `row`. 0, or -1 after logging. */
static int console_collect(cv_store_t *store, sqlite3_stmt *stmt,
                           json_t *array, json_t *(*row)(sqlite3_stmt *))
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(array, row(stmt));
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return cv_error("cannot read '%.80s' from '%s': %s",
                        sqlite3_sql(stmt), cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    return 0;
}

static json_t *console_channel_row(sqlite3_stmt *stmt)
{
    return console_json_text((const char *)sqlite3_column_text(stmt, 0));
}

static json_t *console_message_row(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "at",
                        console_time_json(sqlite3_column_int64(stmt, 0)));
    console_put_column(obj, "channel", stmt, 1);
    console_put_column(obj, "text", stmt, 2);
    return obj;
}

static json_t *console_timeline_row(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "at",
                        console_time_json(sqlite3_column_int64(stmt, 0)));
    console_put_column(obj, "actor", stmt, 1);
    console_put_column(obj, "event", stmt, 2);
    console_put_column(obj, "detail", stmt, 3);
    return obj;
}

static json_t *console_proposal_row(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    const char *id = (const char *)sqlite3_column_text(stmt, 0);
    console_put_column(obj, "proposal_id", stmt, 0);
    console_put_column(obj, "kind", stmt, 1);
    console_put_column(obj, "title", stmt, 2);
    console_put_column(obj, "segment", stmt, 3);
    json_object_set_new(obj, "created_at",
                        console_time_json(sqlite3_column_int64(stmt, 4)));
    char url[CONSOLE_ID_SIZE + 32];
    snprintf(url, sizeof(url), "/v1/proposals/%s", id != NULL ? id : "");
    json_object_set_new(obj, "url", console_json_text(url));
    return obj;
}

/* Adds `key`: the rows of `sql` (one parameter, the lead id). */
static int console_card_list(cv_store_t *store, json_t *card, const char *key,
                             const char *sql, const char *lead_id,
                             json_t *(*row)(sqlite3_stmt *))
{
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    json_t *array = json_array();
    if (console_collect(store, stmt, array, row) != 0) {
        json_decref(array);
        return -1;
    }
    json_object_set_new(card, key, array);
    return 0;
}

void console_leads_get(console_ctx_t *ctx, const char *lead_id)
{
    cv_store_t *store = ctx->store;
    json_t *card = NULL;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT " CONSOLE_CARD_COLUMNS
               "FROM leads l LEFT JOIN staff s ON s.staff_id = l.owner_id "
               "WHERE l.lead_id = ?1");
    if (stmt == NULL)
        goto fail;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt);
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "no lead '%s'", lead_id);
        return;
    }
    if (rc != SQLITE_ROW) {
        cv_error("cannot read lead '%s': %s", lead_id,
                 sqlite3_errmsg(cv_store_db(store)));
        sqlite3_reset(stmt);
        goto fail;
    }
    const char *owner = (const char *)sqlite3_column_text(stmt, 24);
    if (!console_may_see(ctx, owner)) {
        sqlite3_reset(stmt);
        return;
    }
    card = json_object();
    console_card_fields(card, stmt);
    sqlite3_reset(stmt);
    if (console_card_list(store, card, "channels",
                          "SELECT channel FROM lead_channels WHERE "
                          "lead_id = ?1 ORDER BY first_at, channel",
                          lead_id, console_channel_row) != 0 ||
        console_card_list(store, card, "messages",
                          "SELECT at, channel, text FROM lead_messages "
                          "WHERE lead_id = ?1 ORDER BY at, rowid",
                          lead_id, console_message_row) != 0 ||
        console_card_list(store, card, "tasks",
                          "SELECT " CONSOLE_TASK_COLUMNS
                          "FROM tasks WHERE lead_id = ?1 AND status = "
                          "'open' AND kind <> '' ORDER BY due_at, task_id",
                          lead_id, console_task_json) != 0 ||
        console_card_list(store, card, "timeline",
                          "SELECT at, actor, event, detail FROM timeline "
                          "WHERE lead_id = ?1 ORDER BY at, id",
                          lead_id, console_timeline_row) != 0 ||
        console_card_list(store, card, "proposals",
                          "SELECT proposal_id, kind, title, segment, "
                          "created_at FROM proposals WHERE lead_id = ?1 "
                          "ORDER BY created_at, proposal_id",
                          lead_id, console_proposal_row) != 0)
        goto fail;
    /* who changed the score by hand, when, old -> new per parameter */
    json_t *scorecard = console_scorecard_json(store, lead_id);
    if (scorecard == NULL)
        goto fail;
    json_object_set_new(card, "scorecard", scorecard);
    cv_http_reply_json(ctx->req, 200, card);
    return;
fail:
    json_decref(card);
    console_reply_storage(ctx->req);
}

static json_t *console_search_row(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    console_put_column(obj, "lead_id", stmt, 0);
    console_put_column(obj, "name", stmt, 1);
    console_put_column(obj, "company", stmt, 2);
    console_put_column(obj, "channel", stmt, 3);
    console_put_column(obj, "source", stmt, 4);
    console_put_column(obj, "stage", stmt, 5);
    if (sqlite3_column_type(stmt, 6) == SQLITE_NULL) {
        json_object_set_new(obj, "score", json_null());
    } else {
        json_t *score = json_object();
        json_object_set_new(score, "total",
                            json_integer(sqlite3_column_int(stmt, 6)));
        console_put_column(score, "segment", stmt, 7);
        json_object_set_new(score, "knocked_out",
                            json_boolean(sqlite3_column_int(stmt, 8)));
        json_object_set_new(obj, "score", score);
    }
    json_object_set_new(obj, "owner", console_owner_json(stmt, 9, 10));
    json_object_set_new(obj, "created_at",
                        console_time_json(sqlite3_column_int64(stmt, 11)));
    json_object_set_new(obj, "updated_at",
                        console_time_json(sqlite3_column_int64(stmt, 12)));
    return obj;
}

/* A query argument, NULL when absent or empty. */
static const char *console_query(console_ctx_t *ctx, const char *name)
{
    const char *value = cv_http_query(ctx->req, name);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

void console_leads_search(console_ctx_t *ctx)
{
    const char *stage = console_query(ctx, "stage");
    const char *owner = console_query(ctx, "owner");
    const char *segment = console_query(ctx, "segment");
    const char *limit_text = console_query(ctx, "limit");
    if (stage != NULL && console_stage_rank(stage) < 0) {
        cv_http_reply_error(ctx->req, 422, "invalid", "stage",
                            "unknown stage '%s'", stage);
        return;
    }
    if (segment != NULL && strcmp(segment, "A") != 0 &&
        strcmp(segment, "B") != 0 && strcmp(segment, "C") != 0) {
        cv_http_reply_error(ctx->req, 422, "invalid", "segment",
                            "segment is A, B or C, not '%s'", segment);
        return;
    }
    long limit = CONSOLE_SEARCH_DEFAULT;
    if (limit_text != NULL) {
        char *end = NULL;
        limit = strtol(limit_text, &end, 10);
        if (end == limit_text || *end != '\0' || limit < 1 ||
            limit > CONSOLE_SEARCH_MAX) {
            cv_http_reply_error(ctx->req, 422, "invalid", "limit",
                                "limit is a whole number from 1 to %d",
                                CONSOLE_SEARCH_MAX);
            return;
        }
    }
    /* staff below head see their own leads only */
    if (!ctx->caller.manager) {
        if (owner != NULL && strcmp(owner, ctx->caller.staff_id) != 0) {
            console_may_see(ctx, owner);
            return;
        }
        owner = ctx->caller.staff_id;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store,
        "SELECT l.lead_id, l.name, l.company, l.channel, l.source, l.stage, "
        "  l.score_total, l.segment, l.knocked_out, l.owner_id, "
        "  coalesce(s.name, l.owner_name), l.created_at, l.updated_at "
        "FROM leads l LEFT JOIN staff s ON s.staff_id = l.owner_id "
        "WHERE (?1 IS NULL OR l.stage = ?1) AND "
        "  (?2 IS NULL OR l.owner_id = ?2) AND "
        "  (?3 IS NULL OR l.segment = ?3) "
        "ORDER BY l.created_at DESC, l.lead_id LIMIT ?4");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, stage);
    cv_store_bind_text(stmt, 2, owner);
    cv_store_bind_text(stmt, 3, segment);
    sqlite3_bind_int64(stmt, 4, limit);
    json_t *leads = json_array();
    if (console_collect(ctx->store, stmt, leads, console_search_row) != 0) {
        json_decref(leads);
        console_reply_storage(ctx->req);
        return;
    }
    json_t *reply = json_object();
    json_int_t count = (json_int_t)json_array_size(leads);
    json_object_set_new(reply, "count", json_integer(count));
    json_object_set_new(reply, "leads", leads);
    cv_http_reply_json(ctx->req, 200, reply);
}

/* ------------------------------------------------------------------ */
/* Activities                                                          */

static const struct {
    const char *type;   /* activity type from API.md */
    const char *stage;  /* the stage it moves the lead to */
    bool contact;       /* counts as the first contact */
} console_activity_types[] = {
    {"call", "contacted", true},
    {"meeting", "qualified", true},
    {"interview", "qualified", true},
    {"proposal_presented", "proposal", false},
    {"proposal_sent", "proposal", false},
};

/* Reads an optional string member; false after replying 422 when it is
 * there but not a string of at most `max` bytes. */
static bool console_opt_string(console_ctx_t *ctx, json_t *body,
                               const char *key, size_t max,
                               const char **out)
{
    *out = NULL;
    json_t *value = json_object_get(body, key);
    if (value == NULL || json_is_null(value))
        return true;
    if (!json_is_string(value) || json_string_length(value) > max) {
        cv_http_reply_error(ctx->req, 422, "invalid", key,
                            "'%s' is text of at most %zu bytes", key, max);
        return false;
    }
    if (memchr(json_string_value(value), '\0', json_string_length(value))) {
        cv_http_reply_error(ctx->req, 422, "invalid", key,
                            "'%s' must not contain NUL", key);
        return false;
    }
    *out = json_string_value(value);
    return true;
}

/* Closes the lead's open first-contact tasks after a contact activity and
 * tells the scheduler each is done. 0 or -1. */
static int console_close_first_contact(console_ctx_t *ctx,
                                       const char *lead_id,
                                       const char *trace_id, int64_t now)
{
    char ids[CONSOLE_TASKS_MAX][CONSOLE_ID_SIZE];
    char staff[CONSOLE_TASKS_MAX][CONSOLE_ID_SIZE];
    int count = 0;
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT task_id, staff_id FROM tasks WHERE lead_id = ?1 "
                    "AND kind = 'first_contact' AND status = 'open'");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = SQLITE_DONE;
    while (count < CONSOLE_TASKS_MAX &&
           (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cv_store_column_copy(stmt, 0, ids[count], sizeof(ids[count]));
        cv_store_column_copy(stmt, 1, staff[count], sizeof(staff[count]));
        count++;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cv_error("cannot list the open tasks of '%s': %s", lead_id,
                        sqlite3_errmsg(cv_store_db(ctx->store)));
    const char *actor = console_caller_actor(&ctx->caller);
    for (int i = 0; i < count; i++) {
        int changed = console_task_mark_done(ctx->store, ids[i], actor, now);
        if (changed < 0)
            return -1;
        if (changed == 0)
            continue;
        char fact[CONSOLE_ID_SIZE + 16];
        snprintf(fact, sizeof(fact), "done:%s", ids[i]);
        if (console_timeline_add(ctx->store, lead_id, now, actor,
                                 "task_completed", fact,
                                 "task %s done by the first contact",
                                 ids[i]) < 0)
            return -1;
        Conveyor__TaskCompleted done = CONVEYOR__TASK_COMPLETED__INIT;
        done.task_id = ids[i];
        done.lead_id = (char *)lead_id;
        done.staff_id = staff[i];
        done.actor = (char *)actor;
        done.has_completed_at = true;
        done.completed_at = now;
        Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
        env.trace_id = trace_id[0] ? (char *)trace_id : NULL;
        env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED;
        env.task_completed = &done;
        if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env,
                          "followup-scheduler", NULL) != 0)
            return -1;
    }
    return 0;
}

void console_leads_activity(console_ctx_t *ctx, const char *lead_id)
{
    console_snapshot_t snap;
    memset(&snap, 0, sizeof(snap));
    json_t *body = console_read_json(ctx->req);
    if (body == NULL)
        return;
    const char *type = json_string_value(json_object_get(body, "type"));
    size_t kind = 0;
    size_t kinds = sizeof(console_activity_types) /
                   sizeof(console_activity_types[0]);
    while (type != NULL && kind < kinds &&
           strcmp(console_activity_types[kind].type, type) != 0)
        kind++;
    if (type == NULL || kind == kinds) {
        cv_http_reply_error(ctx->req, 422, "invalid", "type",
                            "type is call, meeting, interview, "
                            "proposal_presented or proposal_sent");
        goto out;
    }
    json_t *duration_json = json_object_get(body, "duration");
    json_int_t duration = -1;
    if (duration_json != NULL && !json_is_null(duration_json)) {
        double seconds = json_is_number(duration_json)
                             ? json_number_value(duration_json)
                             : -1;
        if (seconds < 0 || seconds > 7 * 86400 ||
            seconds != (double)(json_int_t)seconds) {
            cv_http_reply_error(ctx->req, 422, "invalid", "duration",
                                "duration is whole seconds, 0 to 604800");
            goto out;
        }
        duration = (json_int_t)seconds;
    }
    const char *outcome = NULL;
    const char *note = NULL;
    if (!console_opt_string(ctx, body, "outcome", 500, &outcome) ||
        !console_opt_string(ctx, body, "note", 4000, &note))
        goto out;

    int rc = console_snapshot_load(ctx->store, lead_id, &snap);
    if (rc < 0) {
        console_reply_storage(ctx->req);
        goto out;
    }
    if (rc > 0) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL, "no lead '%s'",
                            lead_id);
        goto out;
    }
    if (!console_may_see(ctx, snap.owner_id))
        goto out;

    int64_t now = cv_clock_now_ms();
    const char *actor = console_caller_actor(&ctx->caller);
    char activity_id[CV_ID_SIZE];
    cv_id_new("act", activity_id, sizeof(activity_id));
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "INSERT INTO activities (activity_id, lead_id, type, "
                    "duration, outcome, note, actor, at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (stmt == NULL)
        goto storage;
    cv_store_bind_text(stmt, 1, activity_id);
    cv_store_bind_text(stmt, 2, lead_id);
    cv_store_bind_text(stmt, 3, type);
    if (duration >= 0)
        sqlite3_bind_int64(stmt, 4, duration);
    cv_store_bind_text(stmt, 5, outcome);
    cv_store_bind_text(stmt, 6, note);
    cv_store_bind_text(stmt, 7, actor);
    sqlite3_bind_int64(stmt, 8, now);
    if (cv_store_step_done(stmt) != 0)
        goto storage;

    /* a staff member working a lost or rejected lead reopens it; a won
     * lead stays won; otherwise the stage only moves forward */
    const char *target = console_activity_types[kind].stage;
    if (strcmp(snap.stage, "lost") == 0 || strcmp(snap.stage, "rejected") == 0)
        rc = console_stage_set(ctx->store, lead_id, target, now);
    else
        rc = console_stage_advance(ctx->store, lead_id, target, now);
    if (rc != 0)
        goto storage;
    char stage[32];
    if (console_lead_stage(ctx->store, lead_id, stage, sizeof(stage)) != 0)
        goto storage;

    char extra[64] = "";
    if (duration >= 0)
        snprintf(extra, sizeof(extra), " (%llds)", (long long)duration);
    if (console_timeline_add(ctx->store, lead_id, now, actor, "activity",
                             activity_id, "%s%s%s%s%s%s", type, extra,
                             outcome != NULL ? ": " : "",
                             outcome != NULL ? outcome : "",
                             note != NULL ? " - " : "",
                             note != NULL ? note : "") < 0)
        goto storage;
    if (console_activity_types[kind].contact &&
        console_close_first_contact(ctx, lead_id, snap.trace_id, now) != 0)
        goto storage;

    Conveyor__ActivityRecorded activity = CONVEYOR__ACTIVITY_RECORDED__INIT;
    activity.activity_id = activity_id;
    activity.lead_id = (char *)lead_id;
    activity.type = (char *)type;
    if (duration >= 0) {
        activity.has_duration = true;
        activity.duration = (int32_t)duration;
    }
    activity.outcome = (char *)outcome;
    activity.note = (char *)note;
    activity.actor = (char *)actor;
    activity.lead = &snap.lead;
    activity.score = snap.score;
    activity.owner_id = snap.owner_id[0] ? snap.owner_id : NULL;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.trace_id = snap.trace_id[0] ? snap.trace_id : NULL;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED;
    env.activity_recorded = &activity;
    if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env, "followup-scheduler",
                      "proposal-generator", NULL) != 0)
        goto storage;
    if (console_commit_and_wake(ctx) != 0)
        goto out;
    cv_metric_add(cv_metrics_counter(CONSOLE_METRIC_ACTIVITIES, NULL), 1);
    json_t *reply = json_object();
    json_object_set_new(reply, "activity_id", json_string(activity_id));
    json_object_set_new(reply, "lead_id", console_json_text(lead_id));
    json_object_set_new(reply, "type", json_string(type));
    json_object_set_new(reply, "stage", json_string(stage));
    json_object_set_new(reply, "at", console_time_json(now));
    cv_http_reply_json(ctx->req, 201, reply);
    goto out;
storage:
    console_reply_storage(ctx->req);
out:
    console_snapshot_clear(&snap);
    json_decref(body);
}

/* ------------------------------------------------------------------ */
/* Decisions                                                           */

static const char *const console_loss_reasons[] = {
    "postponed", "waiting_decision", "no_time", "chose_competitor",
    "still_choosing",
};

void console_leads_decision(console_ctx_t *ctx, const char *lead_id)
{
    console_snapshot_t snap;
    memset(&snap, 0, sizeof(snap));
    json_t *body = console_read_json(ctx->req);
    if (body == NULL)
        return;
    const char *result = json_string_value(json_object_get(body, "result"));
    if (result == NULL ||
        (strcmp(result, "won") != 0 && strcmp(result, "lost") != 0)) {
        cv_http_reply_error(ctx->req, 422, "invalid", "result",
                            "result is won or lost");
        goto out;
    }
    bool won = strcmp(result, "won") == 0;
    const char *reason = NULL;
    const char *until = NULL;
    if (!console_opt_string(ctx, body, "reason", 64, &reason) ||
        !console_opt_string(ctx, body, "until", 64, &until))
        goto out;
    if (reason != NULL) {
        bool known = false;
        for (size_t i = 0; i < sizeof(console_loss_reasons) /
                                   sizeof(console_loss_reasons[0]);
             i++)
            known = known || strcmp(console_loss_reasons[i], reason) == 0;
        if (!known || won) {
            cv_http_reply_error(
                ctx->req, 422, "invalid", "reason",
                won ? "a won decision takes no reason"
                    : "reason is postponed, waiting_decision, no_time, "
                      "chose_competitor or still_choosing");
            goto out;
        }
    }
    char until_text[40] = "";
    if (until != NULL) {
        int64_t until_ms = 0;
        if (won || cv_clock_parse(until, &until_ms) != 0) {
            cv_http_reply_error(
                ctx->req, 422, "invalid", "until",
                won ? "a won decision takes no 'until'"
                    : "until is a date (2026-12-01) or an RFC 3339 time");
            goto out;
        }
        cv_clock_format(until_ms, until_text, sizeof(until_text));
    }

    int rc = console_snapshot_load(ctx->store, lead_id, &snap);
    if (rc < 0) {
        console_reply_storage(ctx->req);
        goto out;
    }
    if (rc > 0) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL, "no lead '%s'",
                            lead_id);
        goto out;
    }
    if (!console_may_see(ctx, snap.owner_id))
        goto out;
    if (won && strcmp(snap.stage, "won") == 0) {
        cv_http_reply_error(ctx->req, 409, "conflict", "result",
                            "lead '%s' is won already", lead_id);
        goto out;
    }

    int64_t now = cv_clock_now_ms();
    const char *actor = console_caller_actor(&ctx->caller);
    char decision_id[CV_ID_SIZE];
    cv_id_new("dec", decision_id, sizeof(decision_id));
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "INSERT INTO decisions (decision_id, lead_id, result, "
                    "reason, until, actor, at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (stmt == NULL)
        goto storage;
    cv_store_bind_text(stmt, 1, decision_id);
    cv_store_bind_text(stmt, 2, lead_id);
    cv_store_bind_text(stmt, 3, result);
    cv_store_bind_text(stmt, 4, reason);
    cv_store_bind_text(stmt, 5, until_text[0] ? until_text : NULL);
    cv_store_bind_text(stmt, 6, actor);
    sqlite3_bind_int64(stmt, 7, now);
    if (cv_store_step_done(stmt) != 0)
        goto storage;
    /* a decision is the staff's word: it sets the stage outright */
    if (console_stage_set(ctx->store, lead_id, result, now) != 0)
        goto storage;
    if (console_timeline_add(ctx->store, lead_id, now, actor, "decision",
                             decision_id, "%s%s%s%s%s", result,
                             reason != NULL ? ": " : "",
                             reason != NULL ? reason : "",
                             until_text[0] ? ", until " : "",
                             until_text) < 0)
        goto storage;

    Conveyor__DecisionRecorded decision = CONVEYOR__DECISION_RECORDED__INIT;
    decision.decision_id = decision_id;
    decision.lead_id = (char *)lead_id;
    decision.result = (char *)result;
    decision.reason = (char *)reason;
    decision.until = until_text[0] ? until_text : NULL;
    decision.actor = (char *)actor;
    decision.lead = &snap.lead;
    decision.owner_id = snap.owner_id[0] ? snap.owner_id : NULL;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.trace_id = snap.trace_id[0] ? snap.trace_id : NULL;
    env.body_case = CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED;
    env.decision_recorded = &decision;
    /* scoring keeps outcomes beside scores (conveyorctl score); intake
     * marks the person's contacts as a decided lead, so the next contact
     * is a new lead flagged as a returning client; routing stops handing
     * a closed lead back when its owner leaves */
    if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env, "followup-scheduler",
                      "account-retention", "scoring", "intake", "routing",
                      NULL) != 0)
        goto storage;
    if (console_commit_and_wake(ctx) != 0)
        goto out;
    cv_metric_add(cv_metrics_counter(CONSOLE_METRIC_DECISIONS, NULL), 1);
    json_t *reply = json_object();
    json_object_set_new(reply, "decision_id", json_string(decision_id));
    json_object_set_new(reply, "lead_id", console_json_text(lead_id));
    json_object_set_new(reply, "result", json_string(result));
    json_object_set_new(reply, "reason", console_json_text(reason));
    json_object_set_new(reply, "until",
                        until_text[0] ? json_string(until_text) : json_null());
    json_object_set_new(reply, "stage", json_string(result));
    json_object_set_new(reply, "at", console_time_json(now));
    cv_http_reply_json(ctx->req, 201, reply);
    goto out;
storage:
    console_reply_storage(ctx->req);
out:
    console_snapshot_clear(&snap);
    json_decref(body);
}

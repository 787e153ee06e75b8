/* console_notifications: dead letters — notifications the notifier gave
 * up on (NotificationFailed), listed for the head of sales and admins and
 * sent again on request (NotificationResend to the notifier).
 *
 * One row per (notification id, channel), since a notification goes out
 * on each of its receiver's channels. status is 'dead' when it arrives,
 * 'resent' once someone asked for it again, 'delivered' when the notifier
 * reports the channel delivered after that; a resend that fails again
 * makes it 'dead' again. The lead's timeline shows each failure and
 * resend. */
#include "console.h"

#include <stdio.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

#define CONSOLE_DEAD_LIST_MAX 1000 /* most dead letters one list returns */

const char console_schema_notifications[] =
    "CREATE TABLE dead_letters ("
    "  notification_id TEXT NOT NULL,"
    "  channel TEXT NOT NULL," /* telegram | slack | email | */
                               /* webhook */
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  attempts INTEGER,"
    "  http_status INTEGER,"
    "  last_error TEXT,"
    "  subject TEXT,"
    "  text TEXT,"
    "  failed_at INTEGER NOT NULL," /* the latest failure */
    "  status TEXT NOT NULL,"       /* dead | resent | delivered */
    "  resends INTEGER NOT NULL DEFAULT 0,"
    "  resent_at INTEGER,"
    "  resent_by TEXT,"
    "  delivered_at INTEGER,"
    "  PRIMARY KEY (notification_id, channel)"
    ") STRICT;"
    "CREATE INDEX dead_letters_by_status ON dead_letters (status, failed_at);";

static const char *console_notify_or(const char *text, const char *fallback)
{
    return text != NULL && text[0] != '\0' ? text : fallback;
}

/* True while the database is known to hold no dead letter that a
 * delivery could still mark delivered (none with status other than
 * 'delivered'): then NotificationDelivered need not look. Only the bus
 * thread reads or writes it. It starts false (look every time) until
 * console_notifications_start has checked the table, and turns false for
 * good at the first NotificationFailed, whether or not its turn commits:
 * wrong only ever in the safe direction. No HTTP request makes a dead
 * letter: a resend only moves one that exists from dead to resent. */
static bool console_dead_letters_none;

int console_notifications_start(cv_store_t *store)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT NOT EXISTS (SELECT 1 FROM dead_letters "
               "WHERE status != 'delivered')");
    if (stmt == NULL)
        return -1;
    int rc = sqlite3_step(stmt);
    bool none = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) != 0;
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW)
        return cv_error("cannot read the dead letters in '%s': %s",
                        cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    console_dead_letters_none = none;
    return 0;
}

int console_notifications_failed(cv_store_t *store, console_known_t *known,
                                 const Conveyor__Envelope *ev)
{
    const Conveyor__NotificationFailed *body = ev->notification_failed;
    console_dead_letters_none = false;
    int64_t at =
        body->has_failed_at && body->failed_at > 0
            ? body->failed_at
            : (ev->occurred_at > 0 ? ev->occurred_at : cv_clock_now_ms());
    const char *channel = console_notify_or(body->channel, "webhook");
    /* a failure older than a delivery of the same channel changes
     * nothing */
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT INTO dead_letters (notification_id, channel, lead_id, "
        "  staff_id, attempts, http_status, last_error, subject, text, "
        "  failed_at, status) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'dead') "
        "ON CONFLICT (notification_id, channel) DO UPDATE SET "
        "  status = 'dead', attempts = excluded.attempts, "
        "  http_status = excluded.http_status, "
        "  last_error = excluded.last_error, failed_at = excluded.failed_at "
        "WHERE excluded.failed_at >= coalesce(dead_letters.delivered_at, 0)");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, body->notification_id);
    console_bind_text(stmt, 2, channel);
    console_bind_text(stmt, 3, body->lead_id);
    console_bind_text(stmt, 4, body->staff_id);
    if (body->has_attempts)
        sqlite3_bind_int(stmt, 5, body->attempts);
    if (body->has_http_status)
        sqlite3_bind_int(stmt, 6, body->http_status);
    console_bind_text(stmt, 7, body->last_error);
    console_bind_text(stmt, 8, body->subject);
    console_bind_text(stmt, 9, body->text);
    sqlite3_bind_int64(stmt, 10, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (body->lead_id == NULL || body->lead_id[0] == '\0')
        return 0;
    if (console_lead_ensure(store, known, body->lead_id, at,
                            console_notify_or(ev->trace_id, NULL)) != 0)
        return -1;
    char fact[300];
    snprintf(fact, sizeof(fact), "notify-failed:%s:%s:%lld",
             body->notification_id, channel, (long long)at);
    int attempts = body->has_attempts ? body->attempts : 0;
    return console_timeline_add(
               store, body->lead_id, at,
               console_notify_or(ev->producer, "notifier"),
               "notification_failed", fact,
               "notification %s to %s by %s failed after %d attempt%s: %s",
               body->notification_id,
               console_notify_or(body->staff_id, "staff"), channel, attempts,
               attempts == 1 ? "" : "s",
               console_notify_or(body->last_error, "no reason given")) < 0
               ? -1
               : 0;
}

int console_notifications_delivered(cv_store_t *store,
                                    const Conveyor__Envelope *ev)
{
    if (console_dead_letters_none)
        return 0;
    const Conveyor__NotificationDelivered *body = ev->notification_delivered;
    int64_t at = body->has_delivered_at && body->delivered_at > 0
                     ? body->delivered_at
                     : cv_clock_now_ms();
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "UPDATE dead_letters SET status = 'delivered', delivered_at = ?3 "
        "WHERE notification_id = ?1 AND channel = ?2 "
        "  AND status != 'delivered'");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, body->notification_id);
    console_bind_text(stmt, 2, console_notify_or(body->channel, "console"));
    sqlite3_bind_int64(stmt, 3, at);
    return cv_store_step_done(stmt);
}

/* Replies 403 and returns false unless the caller is head or admin. */
static bool console_notifications_manager(console_ctx_t *ctx)
{
    if (ctx->caller.manager)
        return true;
    cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                        "only the head of sales and admins see and resend "
                        "dead letters");
    return false;
}

/* An integer column as JSON, null for NULL. */
static json_t *console_notifications_int(sqlite3_stmt *stmt, int col)
{
    if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(stmt, col));
}

/* GET /v1/notifications?status=dead|resent|delivered|any: dead letters,
 * newest failure first. */
static void console_notifications_dead(console_ctx_t *ctx, const char *status)
{
    if (!console_notifications_manager(ctx))
        return;
    if (strcmp(status, "dead") != 0 && strcmp(status, "resent") != 0 &&
        strcmp(status, "delivered") != 0 && strcmp(status, "any") != 0) {
        cv_http_reply_error(ctx->req, 422, "invalid", "status",
                            "status is dead, resent, delivered or any");
        return;
    }
    const char *lead_id = cv_http_query(ctx->req, "lead_id");
    const char *staff_id = cv_http_query(ctx->req, "staff_id");
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store,
        "SELECT notification_id, channel, lead_id, staff_id, attempts, "
        "  http_status, last_error, subject, failed_at, status, resends, "
        "  resent_at, resent_by, delivered_at "
        "FROM dead_letters "
        "WHERE (?1 = 'any' OR status = ?1) AND (?2 IS NULL OR lead_id = ?2) "
        "  AND (?3 IS NULL OR staff_id = ?3) "
        "ORDER BY failed_at DESC, notification_id, channel LIMIT ?4");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, status);
    cv_store_bind_text(stmt, 2, lead_id != NULL && lead_id[0] ? lead_id : NULL);
    cv_store_bind_text(stmt, 3,
                       staff_id != NULL && staff_id[0] ? staff_id : NULL);
    sqlite3_bind_int(stmt, 4, CONSOLE_DEAD_LIST_MAX);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *obj = json_object();
        console_put_column(obj, "id", stmt, 0);
        console_put_column(obj, "notification_id", stmt, 0);
        console_put_column(obj, "channel", stmt, 1);
        console_put_column(obj, "lead_id", stmt, 2);
        console_put_column(obj, "staff_id", stmt, 3);
        json_object_set_new(obj, "attempts",
                            console_notifications_int(stmt, 4));
        json_object_set_new(obj, "http_status",
                            console_notifications_int(stmt, 5));
        console_put_column(obj, "last_error", stmt, 6);
        console_put_column(obj, "subject", stmt, 7);
        json_object_set_new(obj, "failed_at",
                            console_time_json(sqlite3_column_int64(stmt, 8)));
        console_put_column(obj, "status", stmt, 9);
        json_object_set_new(obj, "resends",
                            console_notifications_int(stmt, 10));
        json_object_set_new(obj, "resent_at",
                            console_time_json(sqlite3_column_int64(stmt, 11)));
        console_put_column(obj, "resent_by", stmt, 12);
        json_object_set_new(obj, "delivered_at",
                            console_time_json(sqlite3_column_int64(stmt, 13)));
        json_array_append_new(list, obj);
    }
    console_reply_list(ctx, stmt, rc, "notifications", list);
}

void console_notifications_get(console_ctx_t *ctx)
{
    const char *status = cv_http_query(ctx->req, "status");
    if (status == NULL || status[0] == '\0') {
        console_notifications_list(ctx); /* the staff inbox */
        return;
    }
    console_notifications_dead(ctx, status);
}

/* Copies what the timeline needs of a notification's dead letters: its
 * lead and how many channels are dead / known. 0, or -1 after logging. */
static int console_notifications_look(cv_store_t *store, const char *id,
                                      char *lead_id, size_t lead_size,
                                      int *dead, int *known)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT count(*), coalesce(sum(status = 'dead'), 0), "
               "  max(lead_id) FROM dead_letters WHERE notification_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        cv_error("cannot read dead letter '%s' in '%s': %s", id,
                 cv_store_path(store), sqlite3_errmsg(cv_store_db(store)));
        sqlite3_reset(stmt);
        return -1;
    }
    *known = sqlite3_column_int(stmt, 0);
    *dead = sqlite3_column_int(stmt, 1);
    const char *lead = (const char *)sqlite3_column_text(stmt, 2);
    snprintf(lead_id, lead_size, "%s", lead != NULL ? lead : "");
    sqlite3_reset(stmt);
    return 0;
}

void console_notifications_resend(console_ctx_t *ctx, const char *id)
{
    if (!console_notifications_manager(ctx))
        return;
    char lead_id[CONSOLE_ID_SIZE];
    int dead = 0;
    int known = 0;
    if (console_notifications_look(ctx->store, id, lead_id, sizeof(lead_id),
                                   &dead, &known) != 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (known == 0) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "no dead letter '%s'", id);
        return;
    }
    if (dead == 0) {
        cv_http_reply_error(ctx->req, 409, "not_dead", NULL,
                            "dead letter '%s' was already resent or "
                            "delivered",
                            id);
        return;
    }
    int64_t now = cv_clock_now_ms();
    const char *actor = console_caller_actor(&ctx->caller);
    json_t *channels = json_array();
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store,
        "UPDATE dead_letters SET status = 'resent', resends = resends + 1, "
        "  resent_at = ?2, resent_by = ?3 "
        "WHERE notification_id = ?1 AND status = 'dead' RETURNING channel");
    if (stmt == NULL)
        goto storage;
    cv_store_bind_text(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, now);
    cv_store_bind_text(stmt, 3, actor);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(
            channels,
            console_json_text((const char *)sqlite3_column_text(stmt, 0)));
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) {
        cv_error("cannot resend dead letter '%s' in '%s': %s", id,
                 cv_store_path(ctx->store),
                 sqlite3_errmsg(cv_store_db(ctx->store)));
        goto storage;
    }
    Conveyor__NotificationResend resend = CONVEYOR__NOTIFICATION_RESEND__INIT;
    resend.notification_id = (char *)id;
    resend.actor = (char *)actor;
    resend.has_requested_at = true;
    resend.requested_at = now;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_RESEND;
    env.notification_resend = &resend;
    if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env, "notifier", NULL) != 0)
        goto storage;
    if (lead_id[0] != '\0') {
        char fact[300];
        snprintf(fact, sizeof(fact), "notify-resend:%s:%lld", id,
                 (long long)now);
        if (console_timeline_add(
                ctx->store, lead_id, now, actor, "notification_resent", fact,
                "notification %s sent again by %s", id, actor) < 0)
            goto storage;
    }
    if (console_commit_and_wake(ctx) != 0) {
        json_decref(channels);
        return;
    }
    json_t *reply = json_object();
    json_object_set_new(reply, "notification_id", console_json_text(id));
    json_object_set_new(reply, "status", json_string("resent"));
    json_object_set_new(reply, "channels", channels);
    cv_http_reply_json(ctx->req, 202, reply);
    return;
storage:
    json_decref(channels);
    console_reply_storage(ctx->req);
}

/* console_tasks: staff tasks, rendered proposals and the staff inbox. */
#include "console.h"

#include <stdio.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

#define CONSOLE_LIST_MAX 1000 /* most rows one list returns */

json_t *console_task_json(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    console_put_column(obj, "id", stmt, 0);
    console_put_column(obj, "lead_id", stmt, 1);
    console_put_column(obj, "staff_id", stmt, 2);
    console_put_column(obj, "kind", stmt, 3);
    console_put_column(obj, "title", stmt, 4);
    json_object_set_new(obj, "due_at",
                        console_time_json(sqlite3_column_int64(stmt, 5)));
    console_put_column(obj, "status", stmt, 6);
    json_object_set_new(obj, "overdue",
                        json_boolean(sqlite3_column_int(stmt, 7)));
    json_object_set_new(obj, "escalation_level",
                        json_integer(sqlite3_column_int(stmt, 8)));
    json_object_set_new(obj, "created_at",
                        console_time_json(sqlite3_column_int64(stmt, 9)));
    json_object_set_new(obj, "completed_at",
                        console_time_json(sqlite3_column_int64(stmt, 10)));
    console_put_column(obj, "completed_by", stmt, 11);
    return obj;
}

/* The staff filter of a list: a manager may name anyone or nobody (all);
 * everyone else sees only their own. NULL and false after replying 403. */
static bool console_staff_filter(console_ctx_t *ctx, const char **staff_id)
{
    const char *asked = cv_http_query(ctx->req, "staff_id");
    if (asked != NULL && asked[0] == '\0')
        asked = NULL;
    if (ctx->caller.manager) {
        *staff_id = asked;
        return true;
    }
    if (asked != NULL && strcmp(asked, ctx->caller.staff_id) != 0) {
        console_may_see(ctx, asked);
        return false;
    }
    *staff_id = ctx->caller.staff_id;
    return true;
}

void console_tasks_list(console_ctx_t *ctx)
{
    const char *staff_id = NULL;
    if (!console_staff_filter(ctx, &staff_id))
        return;
    const char *status = cv_http_query(ctx->req, "status");
    if (status == NULL || status[0] == '\0')
        status = "open";
    if (strcmp(status, "open") != 0 && strcmp(status, "done") != 0 &&
        strcmp(status, "all") != 0) {
        cv_http_reply_error(ctx->req, 422, "invalid", "status",
                            "status is open, done or all");
        return;
    }
    const char *lead_id = cv_http_query(ctx->req, "lead_id");
    if (lead_id != NULL && lead_id[0] == '\0')
        lead_id = NULL;
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store,
        "SELECT " CONSOLE_TASK_COLUMNS "FROM tasks "
        "WHERE (?1 IS NULL OR staff_id = ?1) AND "
        "  (?2 = 'all' OR status = ?2) AND (?3 IS NULL OR lead_id = ?3) "
        "  AND kind <> '' "
        "ORDER BY due_at, task_id LIMIT ?4");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, staff_id);
    cv_store_bind_text(stmt, 2, status);
    cv_store_bind_text(stmt, 3, lead_id);
    sqlite3_bind_int(stmt, 4, CONSOLE_LIST_MAX);
    json_t *tasks = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(tasks, console_task_json(stmt));
    console_reply_list(ctx, stmt, rc, "tasks", tasks);
}

void console_tasks_done(console_ctx_t *ctx, const char *task_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT " CONSOLE_TASK_COLUMNS
                    "FROM tasks WHERE task_id = ?1 AND kind <> ''");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, task_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                                "no task '%s'", task_id);
        else
            console_reply_storage(ctx->req);
        return;
    }
    char lead_id[CONSOLE_ID_SIZE];
    char staff_id[CONSOLE_ID_SIZE];
    char status[16];
    cv_store_column_copy(stmt, 1, lead_id, sizeof(lead_id));
    cv_store_column_copy(stmt, 2, staff_id, sizeof(staff_id));
    cv_store_column_copy(stmt, 6, status, sizeof(status));
    sqlite3_reset(stmt);
    if (!console_may_see(ctx, staff_id))
        return;

    /* completing a completed task changes nothing and sends nothing */
    if (strcmp(status, "done") != 0) {
        int64_t now = cv_clock_now_ms();
        const char *actor = console_caller_actor(&ctx->caller);
        if (console_task_mark_done(ctx->store, task_id, actor, now) < 0)
            goto storage;
        char fact[CONSOLE_ID_SIZE + 16];
        snprintf(fact, sizeof(fact), "done:%s", task_id);
        if (console_timeline_add(ctx->store, lead_id, now, actor,
                                 "task_completed", fact, "task %s done",
                                 task_id) < 0)
            goto storage;
        Conveyor__TaskCompleted done = CONVEYOR__TASK_COMPLETED__INIT;
        done.task_id = (char *)task_id;
        done.lead_id = lead_id;
        done.staff_id = staff_id;
        done.actor = (char *)actor;
        done.has_completed_at = true;
        done.completed_at = now;
        char trace_id[CONSOLE_ID_SIZE];
        if (console_lead_get_trace(ctx->store, lead_id, trace_id,
                                   sizeof(trace_id)) != 0)
            goto storage;
        Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
        env.trace_id = trace_id[0] ? trace_id : NULL;
        env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED;
        env.task_completed = &done;
        if (cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env,
                          "followup-scheduler", NULL) != 0)
            goto storage;
    }
    /* read the row back inside the transaction for the reply */
    stmt = cv_store_prepare(ctx->store, "SELECT " CONSOLE_TASK_COLUMNS
                                        "FROM tasks WHERE task_id = ?1 "
                                        "AND kind <> ''");
    if (stmt == NULL)
        goto storage;
    cv_store_bind_text(stmt, 1, task_id);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_reset(stmt);
        goto storage;
    }
    json_t *task = console_task_json(stmt);
    sqlite3_reset(stmt);
    if (console_commit_and_wake(ctx) != 0) {
        json_decref(task);
        return;
    }
    cv_http_reply_json(ctx->req, 200, task);
    return;
storage:
    console_reply_storage(ctx->req);
}

void console_proposals_get(console_ctx_t *ctx, const char *proposal_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT p.html, l.owner_id FROM proposals p "
                    "LEFT JOIN leads l ON l.lead_id = p.lead_id "
                    "WHERE p.proposal_id = ?1");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, proposal_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt);
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "no proposal '%s'", proposal_id);
        return;
    }
    if (rc != SQLITE_ROW) {
        cv_error("cannot read proposal '%s': %s", proposal_id,
                 sqlite3_errmsg(cv_store_db(ctx->store)));
        sqlite3_reset(stmt);
        console_reply_storage(ctx->req);
        return;
    }
    if (console_may_see(ctx, (const char *)sqlite3_column_text(stmt, 1))) {
        const char *html = (const char *)sqlite3_column_text(stmt, 0);
        int size = sqlite3_column_bytes(stmt, 0);
        cv_http_reply(ctx->req, 200, "text/html; charset=utf-8",
                      html != NULL ? html : "", html != NULL ? (size_t)size
                                                             : 0);
    }
    sqlite3_reset(stmt);
}

void console_notifications_list(console_ctx_t *ctx)
{
    const char *staff_id = NULL;
    if (!console_staff_filter(ctx, &staff_id))
        return;
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store,
        "SELECT n.notification_id, n.lead_id, n.staff_id, n.channel, "
        "  n.attempts, n.http_status, n.delivered_at, l.name, l.company "
        "FROM notifications n LEFT JOIN leads l ON l.lead_id = n.lead_id "
        "WHERE (?1 IS NULL OR n.staff_id = ?1) "
        "ORDER BY n.delivered_at DESC, n.notification_id LIMIT ?2");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, staff_id);
    sqlite3_bind_int(stmt, 2, CONSOLE_LIST_MAX);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *obj = json_object();
        console_put_column(obj, "notification_id", stmt, 0);
        console_put_column(obj, "lead_id", stmt, 1);
        console_put_column(obj, "staff_id", stmt, 2);
        console_put_column(obj, "channel", stmt, 3);
        json_object_set_new(obj, "attempts",
                            sqlite3_column_type(stmt, 4) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int(stmt, 4)));
        json_object_set_new(obj, "http_status",
                            sqlite3_column_type(stmt, 5) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int(stmt, 5)));
        json_object_set_new(obj, "delivered_at",
                            console_time_json(sqlite3_column_int64(stmt, 6)));
        console_put_column(obj, "lead_name", stmt, 7);
        console_put_column(obj, "company", stmt, 8);
        json_array_append_new(list, obj);
    }
    console_reply_list(ctx, stmt, rc, "notifications", list);
}

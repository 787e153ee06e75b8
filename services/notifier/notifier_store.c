/* notifier_store: the notifier's table of notifications and their
 * delivery state. Bus thread only (its connection). */
#include <stdlib.h>

#include "cv_log.h"
#include "notifier.h"

/* One row per notification id. `state` is 'pending' until a delivery
 * succeeds, then 'delivered'; pending rows are what a restart loads. */
static const char notifier_schema_v1[] =
    "CREATE TABLE notifier_jobs ("
    "  notification_id TEXT PRIMARY KEY,"
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  channel TEXT NOT NULL,"          /* webhook | console */
    "  webhook_url TEXT,"
    "  subject TEXT,"
    "  text TEXT,"
    "  body TEXT NOT NULL,"             /* the JSON a webhook receives */
    "  trace_id TEXT,"
    "  state TEXT NOT NULL,"            /* pending | delivered */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER,"        /* ms; NULL once delivered */
    "  last_status INTEGER,"            /* the last HTTP status, 0 = none */
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  delivered_at INTEGER"
    ") STRICT;"
    "CREATE INDEX notifier_jobs_pending ON notifier_jobs (next_attempt_at)"
    "  WHERE state = 'pending';";

const char *const notifier_migrations[] = {notifier_schema_v1};
const size_t notifier_migration_count =
    sizeof(notifier_migrations) / sizeof(notifier_migrations[0]);

static const char notifier_sql_insert[] =
    "INSERT OR IGNORE INTO notifier_jobs (notification_id, lead_id, "
    "staff_id, channel, webhook_url, subject, text, body, trace_id, state, "
    "attempts, next_attempt_at, created_at, delivered_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

static const char notifier_sql_delivered[] =
    "UPDATE notifier_jobs SET state = 'delivered', attempts = ?2, "
    "next_attempt_at = NULL, last_status = ?3, last_error = NULL, "
    "delivered_at = ?4 WHERE notification_id = ?1 AND state = 'pending'";

static const char notifier_sql_retry[] =
    "UPDATE notifier_jobs SET attempts = ?2, next_attempt_at = ?3, "
    "last_status = ?4, last_error = ?5 "
    "WHERE notification_id = ?1 AND state = 'pending'";

static const char notifier_sql_pending[] =
    "SELECT notification_id, lead_id, staff_id, webhook_url, body, "
    "trace_id, attempts, coalesce(next_attempt_at, created_at) "
    "FROM notifier_jobs WHERE state = 'pending' "
    "ORDER BY next_attempt_at";

int notifier_store_insert(cv_store_t *store, const notifier_store_row_t *row,
                          bool *inserted)
{
    const Conveyor__NotificationRequested *request = row->request;
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_insert);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, request->notification_id);
    cv_store_bind_text(stmt, 2, request->lead_id);
    cv_store_bind_text(stmt, 3, request->staff_id);
    cv_store_bind_text(stmt, 4, row->channel);
    cv_store_bind_text(stmt, 5, row->webhook_url);
    cv_store_bind_text(stmt, 6, request->subject);
    cv_store_bind_text(stmt, 7, request->text);
    cv_store_bind_text(stmt, 8, row->body);
    cv_store_bind_text(stmt, 9, row->trace_id);
    cv_store_bind_text(stmt, 10, row->delivered ? "delivered" : "pending");
    sqlite3_bind_int(stmt, 11, row->delivered ? 1 : 0);
    if (row->delivered) {
        sqlite3_bind_null(stmt, 12);
        sqlite3_bind_int64(stmt, 14, row->now);
    } else {
        sqlite3_bind_int64(stmt, 12, row->now);
        sqlite3_bind_null(stmt, 14);
    }
    sqlite3_bind_int64(stmt, 13, row->now);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *inserted = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

int notifier_store_mark_delivered(cv_store_t *store,
                                  const notifier_job_t *job, bool *updated)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_delivered);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, job->notification_id);
    sqlite3_bind_int(stmt, 2, job->attempts);
    sqlite3_bind_int(stmt, 3, job->http_status);
    sqlite3_bind_int64(stmt, 4, job->finished_at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *updated = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

int notifier_store_schedule_retry(cv_store_t *store,
                                  const notifier_job_t *job, bool *updated)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_retry);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, job->notification_id);
    sqlite3_bind_int(stmt, 2, job->attempts);
    sqlite3_bind_int64(stmt, 3, job->next_attempt_at);
    sqlite3_bind_int(stmt, 4, job->http_status);
    cv_store_bind_text(stmt, 5, job->error);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *updated = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

/* NULL for an SQL NULL, else the column's text (valid until the next
 * step). */
static const char *notifier_store_text(sqlite3_stmt *stmt, int col)
{
    return (const char *)sqlite3_column_text(stmt, col);
}

int notifier_store_load_pending(cv_store_t *store, notifier_job_t **list_p,
                                size_t *count)
{
    int rc = -1;
    notifier_job_t *head = NULL;
    notifier_job_t **tail = &head;
    *count = 0;
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_pending);
    if (stmt == NULL)
        goto out;
    for (;;) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            cv_error("cannot load pending notifications from '%s': %s",
                     cv_store_path(store),
                     sqlite3_errmsg(cv_store_db(store)));
            goto out;
        }
        const char *id = notifier_store_text(stmt, 0);
        const char *url = notifier_store_text(stmt, 3);
        const char *body = notifier_store_text(stmt, 4);
        if (id == NULL || url == NULL || body == NULL) {
            cv_log_warn("pending notification '%s' has no webhook url or "
                        "body; left undelivered", id != NULL ? id : "");
            continue;
        }
        notifier_job_t *job = notifier_job_new(
            id, notifier_store_text(stmt, 1), notifier_store_text(stmt, 2),
            url, body, notifier_store_text(stmt, 5));
        if (job == NULL) {
            cv_error("cannot load pending notification '%s': out of memory",
                     id);
            goto out;
        }
        job->attempts = sqlite3_column_int(stmt, 6);
        job->next_attempt_at = sqlite3_column_int64(stmt, 7);
        *tail = job;
        tail = &job->next;
        (*count)++;
    }
    rc = 0;
out:
    if (stmt != NULL)
        sqlite3_reset(stmt);
    if (rc != 0) {
        notifier_job_list_destroy(&head);
        *count = 0;
    }
    *list_p = head;
    return rc;
}

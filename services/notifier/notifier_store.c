/* notifier_store: the notifier's table of deliveries and their state.
 * Bus thread only (its connection). */
#include <stdlib.h>

#include "cv_log.h"
#include "notifier.h"

/* One row per notification id (v1: webhook or console only). */
static const char notifier_schema_v1[] =
    "CREATE TABLE notifier_jobs ("
    "  notification_id TEXT PRIMARY KEY,"
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  channel TEXT NOT NULL," /* webhook | console */
    "  webhook_url TEXT,"
    "  subject TEXT,"
    "  text TEXT,"
    "  body TEXT NOT NULL," /* the JSON a webhook receives */
    "  trace_id TEXT,"
    "  state TEXT NOT NULL," /* pending | delivered */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER," /* ms; NULL once delivered */
    "  last_status INTEGER,"     /* the last HTTP status, 0 = none */
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  delivered_at INTEGER"
    ") STRICT;"
    "CREATE INDEX notifier_jobs_pending ON notifier_jobs (next_attempt_at)"
    "  WHERE state = 'pending';";

/* v2: one row per (notification, channel), since a request names several
 * targets; `state` is pending until delivered, or dead (a dead letter,
 * until the console asks for it again). v1's rows move over. */
static const char notifier_schema_v2[] =
    "CREATE TABLE notifier_deliveries ("
    "  notification_id TEXT NOT NULL,"
    "  channel TEXT NOT NULL," /* console | telegram | slack | */
                               /* email | webhook */
    "  destination TEXT,"      /* chat id, URL or address */
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  subject TEXT,"
    "  text TEXT,"
    "  body TEXT NOT NULL," /* the JSON a webhook receives */
    "  trace_id TEXT,"
    "  state TEXT NOT NULL," /* pending | delivered | dead */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER," /* ms; NULL unless pending */
    "  last_status INTEGER,"     /* HTTP or SMTP status, 0 = none */
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  delivered_at INTEGER,"
    "  failed_at INTEGER," /* when it became a dead letter */
    "  resends INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (notification_id, channel)"
    ") STRICT;"
    "INSERT INTO notifier_deliveries (notification_id, channel, destination,"
    "  lead_id, staff_id, subject, text, body, trace_id, state, attempts,"
    "  next_attempt_at, last_status, last_error, created_at, delivered_at) "
    "SELECT notification_id, channel, webhook_url, lead_id, staff_id,"
    "  subject, text, body, trace_id, state, attempts, next_attempt_at,"
    "  last_status, last_error, created_at, delivered_at "
    "FROM notifier_jobs;"
    "DROP TABLE notifier_jobs;"
    "CREATE INDEX notifier_deliveries_pending ON notifier_deliveries"
    "  (next_attempt_at) WHERE state = 'pending';";

/* v3: a delivery's state moves to a small row of its own. A delivery
 * is usually stored pending and marked delivered one commit later; with
 * the state in its ~1.4 KB row (subject, text and the webhook's body),
 * that mark rewrote every page the previous commit had filled, about
 * half of the notifier's WAL. Now the big row is written once and the
 * mark rewrites a row of ~60 bytes, on the few pages the newest states
 * share (keys from cv_id_new sort by time). notifier_deliveries keeps
 * what a delivery sends; its v2 state columns (state .. resends) are no
 * longer read (v4 drops them). */
static const char notifier_schema_v3[] =
    "CREATE TABLE notifier_states ("
    "  notification_id TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  state TEXT NOT NULL," /* pending | delivered | dead */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER," /* ms; NULL unless pending */
    "  last_status INTEGER,"     /* HTTP or SMTP status, 0 = none */
    "  last_error TEXT,"
    "  delivered_at INTEGER,"
    "  failed_at INTEGER," /* when it became a dead letter */
    "  resends INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (notification_id, channel)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO notifier_states (notification_id, channel, state, attempts,"
    "  next_attempt_at, last_status, last_error, delivered_at, failed_at,"
    "  resends) "
    "SELECT notification_id, channel, state, attempts, next_attempt_at,"
    "  last_status, last_error, delivered_at, failed_at, resends "
    "FROM notifier_deliveries;"
    "DROP INDEX notifier_deliveries_pending;"
    "CREATE INDEX notifier_states_pending ON notifier_states"
    "  (next_attempt_at) WHERE state = 'pending';";

/* v4: notifier_deliveries loses v2's state columns, unread since v3,
 * which new rows filled with a constant 'pending' (a delivered row said
 * "pending"). created_at stays: a pending job with no next_attempt_at is
 * due then. None of these columns is in an index (v3 dropped
 * notifier_deliveries_pending; the key is (notification_id, channel)),
 * a constraint or a view, so DROP COLUMN (SQLite 3.35+) can drop each. */
static const char notifier_schema_v4[] =
    "ALTER TABLE notifier_deliveries DROP COLUMN state;"
    "ALTER TABLE notifier_deliveries DROP COLUMN attempts;"
    "ALTER TABLE notifier_deliveries DROP COLUMN next_attempt_at;"
    "ALTER TABLE notifier_deliveries DROP COLUMN last_status;"
    "ALTER TABLE notifier_deliveries DROP COLUMN last_error;"
    "ALTER TABLE notifier_deliveries DROP COLUMN delivered_at;"
    "ALTER TABLE notifier_deliveries DROP COLUMN failed_at;"
    "ALTER TABLE notifier_deliveries DROP COLUMN resends;";

const char *const notifier_migrations[] = {
    notifier_schema_v1, notifier_schema_v2, notifier_schema_v3,
    notifier_schema_v4};
const size_t notifier_migration_count =
    sizeof(notifier_migrations) / sizeof(notifier_migrations[0]);

/* What a delivery sends, written once; where it stands is in
 * notifier_states (notifier_sql_insert_state). */
static const char notifier_sql_insert[] =
    "INSERT OR IGNORE INTO notifier_deliveries (notification_id, channel, "
    "destination, lead_id, staff_id, subject, text, body, trace_id, "
    "created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/* The state row of a delivery just stored (v3). */
static const char notifier_sql_insert_state[] =
    "INSERT INTO notifier_states (notification_id, channel, state, "
    "attempts, next_attempt_at, delivered_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static const char notifier_sql_delivered[] =
    "UPDATE notifier_states SET state = 'delivered', attempts = ?3, "
    "next_attempt_at = NULL, last_status = ?4, last_error = NULL, "
    "delivered_at = ?5 "
    "WHERE notification_id = ?1 AND channel = ?2 AND state = 'pending'";

static const char notifier_sql_retry[] =
    "UPDATE notifier_states SET attempts = ?3, next_attempt_at = ?4, "
    "last_status = ?5, last_error = ?6 "
    "WHERE notification_id = ?1 AND channel = ?2 AND state = 'pending'";

static const char notifier_sql_dead[] =
    "UPDATE notifier_states SET state = 'dead', attempts = ?3, "
    "next_attempt_at = NULL, last_status = ?4, last_error = ?5, "
    "failed_at = ?6 "
    "WHERE notification_id = ?1 AND channel = ?2 AND state = 'pending'";

/* The columns a job is made of, in the order notifier_store_job reads:
 * what it sends from d (notifier_deliveries), where it stands from s
 * (notifier_states). */
#define NOTIFIER_JOB_COLUMNS                                                   \
    "d.notification_id, d.channel, d.destination, d.lead_id, d.staff_id, "    \
    "d.subject, d.text, d.body, d.trace_id"
#define NOTIFIER_JOB_JOIN                                                      \
    " FROM notifier_states s JOIN notifier_deliveries d"                       \
    " ON d.notification_id = s.notification_id AND d.channel = s.channel "

static const char notifier_sql_pending[] =
    "SELECT " NOTIFIER_JOB_COLUMNS
    ", s.attempts, coalesce(s.next_attempt_at, d.created_at)" NOTIFIER_JOB_JOIN
    "WHERE s.state = 'pending' AND s.channel != 'console' "
    "ORDER BY s.next_attempt_at";

/* The dead letters of a notification as jobs with no attempts, due at
 * ?2; notifier_sql_revive then makes them pending. */
static const char notifier_sql_dead_letters[] =
    "SELECT " NOTIFIER_JOB_COLUMNS ", 0, ?2" NOTIFIER_JOB_JOIN
    "WHERE s.notification_id = ?1 AND s.state = 'dead'";

static const char notifier_sql_revive[] =
    "UPDATE notifier_states SET state = 'pending', attempts = 0, "
    "next_attempt_at = ?2, last_error = NULL, failed_at = NULL, "
    "resends = resends + 1 "
    "WHERE notification_id = ?1 AND state = 'dead'";

/* Binds the key of a job to ?1 and ?2, without a copy: the job and the
 * channel's name outlive the step. */
static void notifier_store_bind_key(sqlite3_stmt *stmt,
                                    const notifier_job_t *job)
{
    cv_store_bind_static(stmt, 1, job->notification_id);
    cv_store_bind_static(stmt, 2, notifier_channel_name(job->channel));
}

/* Binds where a delivery stored now stands to ?3 .. ?6 of
 * notifier_sql_insert_state: delivered at once (a console note) or
 * pending with its first attempt due now. */
static void notifier_store_bind_new_state(sqlite3_stmt *stmt, bool delivered,
                                          int64_t now)
{
    cv_store_bind_static(stmt, 3, delivered ? "delivered" : "pending");
    sqlite3_bind_int(stmt, 4, delivered ? 1 : 0);
    if (delivered) {
        sqlite3_bind_null(stmt, 5);
        sqlite3_bind_int64(stmt, 6, now);
    } else {
        sqlite3_bind_int64(stmt, 5, now);
        sqlite3_bind_null(stmt, 6);
    }
}

int notifier_store_insert(cv_store_t *store, const notifier_job_t *job,
                          bool delivered, int64_t now, bool *inserted)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_insert);
    if (stmt == NULL)
        return -1;
    /* the job's texts outlive the step: bound without a copy */
    notifier_store_bind_key(stmt, job);
    cv_store_bind_static(stmt, 3, job->destination);
    cv_store_bind_static(stmt, 4, job->lead_id);
    cv_store_bind_static(stmt, 5, job->staff_id);
    cv_store_bind_static(stmt, 6, job->subject);
    cv_store_bind_static(stmt, 7, job->text);
    cv_store_bind_static(stmt, 8, job->body);
    cv_store_bind_static(stmt, 9, job->trace_id);
    sqlite3_bind_int64(stmt, 10, now);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *inserted = sqlite3_changes(cv_store_db(store)) > 0;
    if (!*inserted)
        return 0; /* stored before: its state row is there too */
    stmt = cv_store_prepare(store, notifier_sql_insert_state);
    if (stmt == NULL)
        return -1;
    notifier_store_bind_key(stmt, job);
    notifier_store_bind_new_state(stmt, delivered, now);
    return cv_store_step_done(stmt);
}

int notifier_store_mark_delivered(cv_store_t *store, const notifier_job_t *job,
                                  bool *updated)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_delivered);
    if (stmt == NULL)
        return -1;
    notifier_store_bind_key(stmt, job);
    sqlite3_bind_int(stmt, 3, job->attempts);
    sqlite3_bind_int(stmt, 4, job->http_status);
    sqlite3_bind_int64(stmt, 5, job->finished_at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *updated = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

int notifier_store_schedule_retry(cv_store_t *store, const notifier_job_t *job,
                                  bool *updated)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_retry);
    if (stmt == NULL)
        return -1;
    notifier_store_bind_key(stmt, job);
    sqlite3_bind_int(stmt, 3, job->attempts);
    sqlite3_bind_int64(stmt, 4, job->next_attempt_at);
    sqlite3_bind_int(stmt, 5, job->http_status);
    cv_store_bind_text(stmt, 6, job->error);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *updated = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

int notifier_store_mark_dead(cv_store_t *store, const notifier_job_t *job,
                             bool *updated)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_dead);
    if (stmt == NULL)
        return -1;
    notifier_store_bind_key(stmt, job);
    sqlite3_bind_int(stmt, 3, job->attempts);
    sqlite3_bind_int(stmt, 4, job->http_status);
    cv_store_bind_text(stmt, 5, job->error);
    sqlite3_bind_int64(stmt, 6, job->finished_at);
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

/* The job of the current row of NOTIFIER_JOB_COLUMNS, or NULL (logged:
 * an unusable row is skipped, out of memory sets *failed). */
static notifier_job_t *notifier_store_job(sqlite3_stmt *stmt, bool *failed)
{
    const char *id = notifier_store_text(stmt, 0);
    int channel = notifier_channel_parse(notifier_store_text(stmt, 1));
    notifier_job_fields_t fields = {
        .notification_id = id,
        .channel = (notifier_channel_t)channel,
        .destination = notifier_store_text(stmt, 2),
        .lead_id = notifier_store_text(stmt, 3),
        .staff_id = notifier_store_text(stmt, 4),
        .subject = notifier_store_text(stmt, 5),
        .text = notifier_store_text(stmt, 6),
        .body = notifier_store_text(stmt, 7),
        .trace_id = notifier_store_text(stmt, 8),
    };
    if (id == NULL || channel <= NOTIFIER_CONSOLE ||
        fields.destination == NULL || fields.body == NULL) {
        cv_log_warn("notification '%s' has no channel, destination or "
                    "body; left undelivered",
                    id != NULL ? id : "");
        return NULL;
    }
    notifier_job_t *job = notifier_job_new(&fields);
    if (job == NULL) {
        cv_error("cannot load notification '%s': out of memory", id);
        *failed = true;
        return NULL;
    }
    job->attempts = sqlite3_column_int(stmt, 9);
    job->next_attempt_at = sqlite3_column_int64(stmt, 10);
    return job;
}

/* Steps `stmt` to the end, collecting a job per row. 0, or -1 after
 * logging (the list is then freed). The statement is reset. */
static int notifier_store_collect(cv_store_t *store, sqlite3_stmt *stmt,
                                  notifier_job_t **list_p, size_t *count)
{
    int rc = -1;
    notifier_job_t *head = NULL;
    notifier_job_t **tail = &head;
    *count = 0;
    for (;;) {
        int step = sqlite3_step(stmt);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            cv_error("cannot read notifications from '%s': %s",
                     cv_store_path(store), sqlite3_errmsg(cv_store_db(store)));
            goto out;
        }
        bool failed = false;
        notifier_job_t *job = notifier_store_job(stmt, &failed);
        if (failed)
            goto out;
        if (job == NULL)
            continue;
        *tail = job;
        tail = &job->next;
        (*count)++;
    }
    rc = 0;
out:
    sqlite3_reset(stmt);
    if (rc != 0) {
        notifier_job_list_destroy(&head);
        *count = 0;
    }
    *list_p = head;
    return rc;
}

int notifier_store_load_pending(cv_store_t *store, notifier_job_t **list_p,
                                size_t *count)
{
    *list_p = NULL;
    *count = 0;
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_pending);
    if (stmt == NULL)
        return -1;
    return notifier_store_collect(store, stmt, list_p, count);
}

int notifier_store_resend(cv_store_t *store, const char *notification_id,
                          int64_t now, notifier_job_t **list_p, size_t *count)
{
    int rc = -1;
    *list_p = NULL;
    *count = 0;
    sqlite3_stmt *stmt = cv_store_prepare(store, notifier_sql_dead_letters);
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, notification_id);
    sqlite3_bind_int64(stmt, 2, now);
    if (notifier_store_collect(store, stmt, list_p, count) != 0)
        goto out;
    stmt = cv_store_prepare(store, notifier_sql_revive);
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, notification_id);
    sqlite3_bind_int64(stmt, 2, now);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        /* no jobs for dead letters that are still dead */
        notifier_job_list_destroy(list_p);
        *count = 0;
    }
    return rc;
}

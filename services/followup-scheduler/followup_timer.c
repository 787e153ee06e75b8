/* SLA timers: rows in followup_timer, fired by a bus source.
 *
 * The source's work runs inside the bus's turn transaction, so marking a
 * timer fired and emitting its escalation commit together: a crash before
 * the commit leaves the timer pending (it fires after the restart, at once
 * when overdue), a crash after it leaves it fired with its events in the
 * outbox. Each timer therefore fires exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

#define TIMER_ID_SIZE 300

/* A pending timer whose time has come, copied out of the query. */
typedef struct {
    char *timer_id; /* tmr-<task_id> (owned) */
    char *task_id;  /* the task it guards (owned) */
    char *lead_id;  /* (owned) */
    char *kind;     /* sla_first_contact (owned) */
    int64_t due_at; /* when it was due, ms */
} timer_due_t;

/* The task a fired timer guards, as far as the escalation needs it. */
typedef struct {
    char *staff_id;         /* the owner (owned) */
    char *status;           /* open | done (owned) */
    char *title;            /* (owned) */
    char *lead_json;        /* the lead snapshot (owned) */
    char *webhook_url;      /* the owner's notify target, NULL when
                               unset (owned) */
    char *telegram_chat_id; /* (owned) */
    char *email;            /* (owned) */
} timer_task_t;

static void timer_due_clear(timer_due_t *due)
{
    free(due->timer_id);
    free(due->task_id);
    free(due->lead_id);
    free(due->kind);
    memset(due, 0, sizeof(*due));
}

static void timer_task_clear(timer_task_t *task)
{
    free(task->staff_id);
    free(task->status);
    free(task->title);
    free(task->lead_json);
    free(task->webhook_url);
    free(task->telegram_chat_id);
    free(task->email);
    memset(task, 0, sizeof(*task));
}

static void timer_forget_next_due(followup_t *self)
{
    self->next_due_known = false;
}

int followup_timer_insert(followup_t *self, cv_bus_t *bus, const char *timer_id,
                          const char *task_id, const char *lead_id,
                          const char *kind, int64_t due_at)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO followup_timer (timer_id, task_id, lead_id,"
        " kind, due_at) VALUES (?, ?, ?, ?, ?)";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, timer_id);
    cv_store_bind_text(stmt, 2, task_id);
    cv_store_bind_text(stmt, 3, lead_id);
    cv_store_bind_text(stmt, 4, kind);
    sqlite3_bind_int64(stmt, 5, due_at);
    timer_forget_next_due(self);
    return cv_store_step_done(stmt);
}

/* Runs one of the cancelling UPDATEs, with `key` as its last parameter. */
static int timer_cancel(followup_t *self, cv_bus_t *bus, const char *sql,
                        const char *key, const char *reason)
{
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, cv_clock_now_ms());
    cv_store_bind_text(stmt, 2, reason);
    cv_store_bind_text(stmt, 3, key);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    int cancelled = sqlite3_changes(cv_store_db(store));
    if (cancelled > 0) {
        timer_forget_next_due(self);
        cv_log(CV_LOG_INFO, "cancelled %d timer(s) of '%s': %s", cancelled, key,
               reason);
    }
    return 0;
}

int followup_timer_cancel_task(followup_t *self, cv_bus_t *bus,
                               const char *task_id, const char *reason)
{
    return timer_cancel(self, bus,
                        "UPDATE followup_timer SET state = 'cancelled',"
                        " cancelled_at = ?, cancel_reason = ?"
                        " WHERE task_id = ? AND state = 'pending'",
                        task_id, reason);
}

int followup_timer_cancel_lead(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *reason)
{
    return timer_cancel(self, bus,
                        "UPDATE followup_timer SET state = 'cancelled',"
                        " cancelled_at = ?, cancel_reason = ?"
                        " WHERE lead_id = ? AND state = 'pending'",
                        lead_id, reason);
}

/* Reads the task row behind a timer. Sets *found. 0 or -1. */
static int timer_load_task(cv_bus_t *bus, const char *task_id,
                           timer_task_t *task, bool *found)
{
    static const char sql[] =
        "SELECT staff_id, status, title, lead_json, notify_webhook_url,"
        " notify_telegram_chat_id, notify_email FROM followup_task"
        " WHERE task_id = ?";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, task_id);
    int rc = sqlite3_step(stmt);
    *found = false;
    if (rc == SQLITE_ROW) {
        task->staff_id = cv_store_column_dup(stmt, 0, NULL);
        task->status = cv_store_column_dup(stmt, 1, NULL);
        task->title = cv_store_column_dup(stmt, 2, NULL);
        task->lead_json = cv_store_column_dup(stmt, 3, NULL);
        task->webhook_url = cv_store_column_dup(stmt, 4, NULL);
        task->telegram_chat_id = cv_store_column_dup(stmt, 5, NULL);
        task->email = cv_store_column_dup(stmt, 6, NULL);
        *found = true;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return cv_error("cannot read task '%s': %s", task_id,
                        sqlite3_errstr(rc));
    if (*found && (task->staff_id == NULL || task->status == NULL ||
                   task->title == NULL || task->lead_json == NULL))
        return cv_error("out of memory reading task '%s'", task_id);
    return 0;
}

static int timer_emit_escalation(cv_bus_t *bus, const timer_due_t *due,
                                 const timer_task_t *task, int64_t now,
                                 const char *reason)
{
    Conveyor__Escalation escalation = CONVEYOR__ESCALATION__INIT;
    escalation.timer_id = due->timer_id;
    escalation.lead_id = due->lead_id;
    escalation.task_id = due->task_id;
    escalation.staff_id = task->staff_id;
    escalation.kind = due->kind;
    escalation.has_level = true;
    escalation.level = 1;
    escalation.has_due_at = true;
    escalation.due_at = due->due_at;
    escalation.has_fired_at = true;
    escalation.fired_at = now;
    escalation.reason = (char *)reason;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ESCALATION;
    env.escalation = &escalation;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* Level 1 of an escalation: remind the owner that the task is overdue. */
static int timer_notify_owner(cv_bus_t *bus, const timer_due_t *due,
                              const timer_task_t *task, int64_t now,
                              const char *reason)
{
    int rc = -1;
    json_t *lead = NULL;
    json_t *payload = NULL;
    char *summary = NULL;
    char *subject = NULL;
    char *text = NULL;
    char notification_id[TIMER_ID_SIZE + 8];
    char due_rfc3339[40];
    char fired_rfc3339[40];

    if ((size_t)snprintf(notification_id, sizeof(notification_id), "ntf-%s-L1",
                         due->timer_id) >= sizeof(notification_id)) {
        cv_log(CV_LOG_ERROR, "timer id '%s' too long", due->timer_id);
        goto out;
    }
    json_error_t error;
    lead = json_loads(task->lead_json, 0, &error);
    if (lead == NULL) {
        /* the snapshot was written by us; an empty one still escalates */
        cv_log(CV_LOG_WARN, "lead snapshot of task '%s' unreadable: %s",
               due->task_id, error.text);
        lead = json_object();
        if (lead == NULL)
            goto oom;
    }
    summary = followup_lead_summary(lead, due->lead_id);
    if (summary == NULL)
        goto oom;
    if (asprintf(&subject, "SLA missed: first contact with %s", summary) < 0) {
        subject = NULL;
        goto oom;
    }
    if (asprintf(&text, "%s\nTask: %s\nLead: %s\nLead id: %s", reason,
                 task->title, summary, due->lead_id) < 0) {
        text = NULL;
        goto oom;
    }
    cv_clock_format(due->due_at, due_rfc3339, sizeof(due_rfc3339));
    cv_clock_format(now, fired_rfc3339, sizeof(fired_rfc3339));
    payload = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s,"
        " s:I, s:s, s:O}",
        "notification_id", notification_id, "kind", "escalation",
        "escalation_kind", due->kind, "level", 1, "timer_id", due->timer_id,
        "task_id", due->task_id, "lead_id", due->lead_id, "staff_id",
        task->staff_id, "due_at", due_rfc3339, "due_at_ms",
        (json_int_t)due->due_at, "fired_at", fired_rfc3339, "lead", lead);
    if (payload == NULL)
        goto oom;
    Conveyor__NotifyTarget target = CONVEYOR__NOTIFY_TARGET__INIT;
    target.webhook_url = task->webhook_url;
    target.telegram_chat_id = task->telegram_chat_id;
    target.email = task->email;
    bool has_target = task->webhook_url != NULL ||
                      task->telegram_chat_id != NULL || task->email != NULL;
    rc = followup_notify(bus, notification_id, due->lead_id, task->staff_id,
                         has_target ? &target : NULL, subject, text, payload);
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory escalating '%s'", due->timer_id);
out:
    json_decref(payload);
    json_decref(lead);
    free(text);
    free(subject);
    free(summary);
    return rc;
}

/* Fires one timer: marks it fired and, while its task is open, escalates
 * to level 1. 0 or -1 (the turn is rolled back and retried). */
static int timer_fire(followup_t *self, cv_bus_t *bus, const timer_due_t *due,
                      int64_t now)
{
    static const char sql[] =
        "UPDATE followup_timer SET state = 'fired', fired_at = ?"
        " WHERE timer_id = ? AND state = 'pending'";
    cv_store_t *store = cv_bus_store(bus);
    timer_task_t task = {0};
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        goto out;
    sqlite3_bind_int64(stmt, 1, now);
    cv_store_bind_text(stmt, 2, due->timer_id);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    if (sqlite3_changes(cv_store_db(store)) == 0) {
        rc = 0; /* no longer pending */
        goto out;
    }
    cv_metric_add(self->timers_fired, 1);
    bool found = false;
    if (timer_load_task(bus, due->task_id, &task, &found) != 0)
        goto out;
    if (!found || strcmp(task.status, "open") != 0) {
        cv_log(CV_LOG_INFO, "timer '%s' fired, task '%s' %s: no escalation",
               due->timer_id, due->task_id, found ? task.status : "unknown");
        rc = 0;
        goto out;
    }
    char due_text[64];
    char reason[256];
    followup_format_time(due->due_at, due_text, sizeof(due_text));
    snprintf(reason, sizeof(reason),
             "first contact was due by %s and the task is still open: "
             "reminding the owner",
             due_text);
    if (timer_emit_escalation(bus, due, &task, now, reason) != 0 ||
        timer_notify_owner(bus, due, &task, now, reason) != 0)
        goto out;
    cv_metric_add(self->escalations, 1);
    cv_log(CV_LOG_INFO, "timer '%s' fired: '%s' reminded about '%s'",
           due->timer_id, task.staff_id, due->task_id);
    rc = 0;
out:
    timer_task_clear(&task);
    return rc;
}

/* Copies up to `max` timers due at `now` into `due`. Returns how many, or
 * -1 after logging. */
static int timer_collect_due(cv_bus_t *bus, int64_t now, timer_due_t *due,
                             int max)
{
    static const char sql[] =
        "SELECT timer_id, task_id, lead_id, kind, due_at FROM followup_timer"
        " WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT ?";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, now);
    sqlite3_bind_int(stmt, 2, max);
    int count = 0;
    int rc = SQLITE_DONE;
    while (count < max) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        timer_due_t *row = &due[count++];
        row->timer_id = cv_store_column_dup(stmt, 0, NULL);
        row->task_id = cv_store_column_dup(stmt, 1, NULL);
        row->lead_id = cv_store_column_dup(stmt, 2, NULL);
        row->kind = cv_store_column_dup(stmt, 3, NULL);
        row->due_at = sqlite3_column_int64(stmt, 4);
        if (row->timer_id == NULL || row->task_id == NULL ||
            row->lead_id == NULL || row->kind == NULL) {
            sqlite3_reset(stmt);
            cv_log(CV_LOG_ERROR, "out of memory reading due timers");
            return -1;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_reset(stmt);
        return cv_error("cannot read due timers: %s", sqlite3_errstr(rc));
    }
    sqlite3_reset(stmt);
    return count;
}

/* The source's work: fires every timer that has come due. */
static int timer_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    followup_t *self = arg;
    timer_due_t due[FOLLOWUP_FIRE_BATCH];
    memset(due, 0, sizeof(due));
    int rc = -1;
    int count = timer_collect_due(bus, now_ms, due, FOLLOWUP_FIRE_BATCH);
    if (count < 0)
        goto out;
    if (count > 0)
        timer_forget_next_due(self);
    for (int i = 0; i < count; i++) {
        if (timer_fire(self, bus, &due[i], now_ms) != 0)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < FOLLOWUP_FIRE_BATCH; i++)
        timer_due_clear(&due[i]);
    return rc;
}

/* Reads the earliest pending due time. 0 and *due_at (INT64_MAX when no
 * timer is pending), or -1 after logging. */
static int timer_read_next_due(cv_bus_t *bus, int64_t *due_at)
{
    static const char sql[] =
        "SELECT due_at FROM followup_timer WHERE state = 'pending'"
        " ORDER BY due_at LIMIT 1";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    int rc = sqlite3_step(stmt);
    *due_at = INT64_MAX;
    if (rc == SQLITE_ROW) {
        *due_at = sqlite3_column_int64(stmt, 0);
        rc = SQLITE_DONE;
    }
    /* reset at once: a stepped statement would hold a read snapshot */
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return cv_error("cannot read the next timer: %s", sqlite3_errstr(rc));
    return 0;
}

/* The source's next_due: the earliest pending timer, but never more than
 * FOLLOWUP_CLOCK_POLL_MS ahead while any is pending, since the conveyor
 * clock may jump forward at any moment. */
static int64_t timer_next_due(void *arg, cv_bus_t *bus)
{
    followup_t *self = arg;
    int64_t now = cv_clock_now_ms();
    if (!self->next_due_known) {
        int64_t due_at;
        if (timer_read_next_due(bus, &due_at) != 0)
            return now + 1000; /* try again in a second */
        self->next_due_ms = due_at;
        self->next_due_known = true;
    }
    if (self->next_due_ms == INT64_MAX)
        return INT64_MAX;
    int64_t poll = now + FOLLOWUP_CLOCK_POLL_MS;
    return self->next_due_ms < poll ? self->next_due_ms : poll;
}

int followup_timer_register(followup_t *self, cv_bus_t *bus)
{
    cv_bus_source_t source = {
        .fd = -1,
        .work = timer_work,
        .committed = NULL,
        .next_due = timer_next_due,
        .arg = self,
    };
    self->next_due_known = false;
    return cv_bus_add_source(bus, &source);
}

/* Timers: rows in followup_timer, fired by a bus source.
 *
 * The source's work runs inside the bus's turn transaction, so marking a
 * timer fired and emitting its escalation commit together: a crash before
 * the commit leaves the timer pending (it fires after the restart, at once
 * when overdue), a crash after it leaves it fired with its events in the
 * outbox. Each timer therefore fires exactly once. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

/* Texts are bound with cv_store_bind_static, without SQLite's copy: each
 * statement here is bound and stepped in one function, while the texts it
 * binds (arguments, or locals of that function) are still there. */

static void timer_forget_next_due(followup_t *self)
{
    self->next_due_known = false;
}

static void timer_clear(followup_timer_t *timer)
{
    free(timer->timer_id);
    free(timer->task_id);
    free(timer->lead_id);
    free(timer->kind);
    free(timer->staff_id);
    memset(timer, 0, sizeof(*timer));
}

int followup_timer_insert(followup_t *self, cv_bus_t *bus, const char *timer_id,
                          const char *task_id, const char *lead_id,
                          const char *kind, int level, const char *staff_id,
                          int64_t due_at)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO followup_timer (timer_id, task_id, lead_id,"
        " kind, due_at, level, staff_id) VALUES (?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, timer_id);
    cv_store_bind_static(stmt, 2, task_id);
    cv_store_bind_static(stmt, 3, lead_id);
    cv_store_bind_static(stmt, 4, kind);
    sqlite3_bind_int64(stmt, 5, due_at);
    sqlite3_bind_int(stmt, 6, level);
    cv_store_bind_static(stmt, 7, staff_id);
    /* the earliest pending due time moves no later; keeping it known
     * spares a read every turn. Should the insert be ignored or rolled
     * back, the kept time is early: the source then wakes, finds nothing
     * due and reads it again (timer_work) */
    if (self->next_due_known && due_at < self->next_due_ms)
        self->next_due_ms = due_at;
    return cv_store_step_done(stmt);
}

/* The cancelling UPDATE, written once: each statement below is this text
 * and its keys. ?1 now, ?2 reason, ?3 the key, ?4 the optional second
 * key. Every statement constrains lead_id by equality, so SQLite probes
 * the (lead_id, timer_id) primary key. */
#define TIMER_CANCEL_SQL                                                       \
    "UPDATE followup_timer SET state = 'cancelled',"                           \
    " cancelled_at = ?1, cancel_reason = ?2 WHERE state = 'pending'"

/* Runs one of the cancelling UPDATEs (TIMER_CANCEL_SQL and its keys). */
static int timer_cancel(followup_t *self, cv_bus_t *bus, const char *sql,
                        const char *key, const char *key2, const char *reason)
{
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, cv_clock_now_ms());
    cv_store_bind_static(stmt, 2, reason);
    cv_store_bind_static(stmt, 3, key);
    if (key2 != NULL)
        cv_store_bind_static(stmt, 4, key2);
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
                               const char *task_id, const char *lead_id,
                               const char *reason, bool keep_head)
{
    /* a task's timers are among its lead's (a timer's lead is its
     * task's): one probe of the (lead_id, timer_id) key, with the lead
     * the caller read from the task's row or, when it has none, the
     * task's row read here. Only a caller that read the row keeps the
     * head (task_close_known; followup_task_complete passes no lead and
     * never keeps it), so there is no fourth statement */
#define TIMER_OF_TASK_SQL TIMER_CANCEL_SQL " AND lead_id = ?4 AND task_id = ?3"
    static const char of_lead[] = TIMER_OF_TASK_SQL;
    static const char of_lead_keep_head[] = TIMER_OF_TASK_SQL " AND level < 3";
    static const char of_task_row[] =
        TIMER_CANCEL_SQL " AND lead_id = (SELECT lead_id FROM followup_task"
                         " WHERE task_id = ?3) AND task_id = ?3";
#undef TIMER_OF_TASK_SQL
    assert(lead_id != NULL || !keep_head);
    const char *sql = lead_id == NULL ? of_task_row
                      : keep_head     ? of_lead_keep_head
                                      : of_lead;
    return timer_cancel(self, bus, sql, task_id, lead_id, reason);
}

int followup_timer_cancel_lead(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *kind_prefix,
                               const char *reason)
{
    static const char all[] = TIMER_CANCEL_SQL " AND lead_id = ?3";
    static const char of_kind[] = TIMER_CANCEL_SQL
        " AND lead_id = ?3 AND substr(kind, 1, length(?4)) = ?4";
    return timer_cancel(self, bus, kind_prefix == NULL ? all : of_kind, lead_id,
                        kind_prefix, reason);
}

/* Fires one timer: marks it fired and runs its effect, in the turn's
 * transaction. 0 or -1 (the turn is rolled back and retried). */
static int timer_fire(followup_t *self, cv_bus_t *bus,
                      const followup_timer_t *timer, int64_t now)
{
    static const char sql[] =
        "UPDATE followup_timer SET state = 'fired', fired_at = ?"
        " WHERE lead_id = ? AND timer_id = ? AND state = 'pending'";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    /* the moment this timer's effects are written (a turn fires many) */
    now = cv_clock_now_ms();
    sqlite3_bind_int64(stmt, 1, now);
    /* (lead_id, timer_id) is the timer's key (migration 5) */
    cv_store_bind_static(stmt, 2, timer->lead_id);
    cv_store_bind_static(stmt, 3, timer->timer_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (sqlite3_changes(cv_store_db(store)) == 0)
        return 0; /* no longer pending */
    cv_metric_add(self->timers_fired, 1);
    if (now > timer->due_at)
        cv_metric_add(self->fire_lag, (uint64_t)(now - timer->due_at));
    size_t prefix = strlen(FOLLOWUP_TIMER_SLA_PREFIX);
    if (strncmp(timer->kind, FOLLOWUP_TIMER_SLA_PREFIX, prefix) == 0)
        return followup_escalate(self, bus, timer, now);
    if (strcmp(timer->kind, FOLLOWUP_TIMER_NO_DECISION) == 0)
        return followup_rules_no_decision(self, bus, timer->lead_id,
                                          timer->timer_id, timer->due_at, now);
    cv_log(CV_LOG_WARN, "timer '%s' of unknown kind '%s' fired, no effect",
           timer->timer_id, timer->kind);
    return 0;
}

/* Copies up to `max` timers due at `now` into `due`. Returns how many, or
 * -1 after logging. */
static int timer_collect_due(cv_bus_t *bus, int64_t now, followup_timer_t *due,
                             int max)
{
    static const char sql[] =
        "SELECT timer_id, task_id, lead_id, kind, due_at, level, staff_id"
        " FROM followup_timer WHERE state = 'pending' AND due_at <= ?"
        " ORDER BY due_at LIMIT ?";
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
        followup_timer_t *row = &due[count++];
        row->timer_id = cv_store_column_dup(stmt, 0, NULL);
        row->task_id = cv_store_column_dup(stmt, 1, NULL);
        row->lead_id = cv_store_column_dup(stmt, 2, NULL);
        row->kind = cv_store_column_dup(stmt, 3, NULL);
        row->due_at = sqlite3_column_int64(stmt, 4);
        row->level = sqlite3_column_int(stmt, 5);
        row->staff_id = cv_store_column_dup(stmt, 6, NULL);
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
    static followup_timer_t due[FOLLOWUP_FIRE_BATCH]; /* bus thread only */
    memset(due, 0, sizeof(due));
    int rc = -1;
    int count = timer_collect_due(bus, now_ms, due, FOLLOWUP_FIRE_BATCH);
    if (count < 0)
        goto out;
    /* fired timers leave the pending set, and a wake-up that found none
     * due had an early next_due_ms (followup_timer_insert): read it anew */
    timer_forget_next_due(self);
    for (int i = 0; i < count; i++) {
        if (timer_fire(self, bus, &due[i], now_ms) != 0)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < FOLLOWUP_FIRE_BATCH; i++)
        timer_clear(&due[i]);
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

/* After every turn, committed or rolled back: staff the turn wrote may be
 * cached again from now on. */
static void timer_turn_ended(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    (void)ok;
    followup_staff_settle(arg);
}

int followup_timer_register(followup_t *self, cv_bus_t *bus)
{
    cv_bus_source_t source = {
        .fd = -1,
        .work = timer_work,
        .committed = NULL,
        .next_due = timer_next_due,
        .turn_ended = timer_turn_ended,
        .arg = self,
    };
    self->next_due_known = false;
    return cv_bus_add_source(bus, &source);
}

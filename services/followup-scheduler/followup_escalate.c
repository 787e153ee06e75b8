/* The escalation ladder of a missed SLA (first contact, call-back, the
 * segment tasks): level 1 reminds the owner, level 2 asks routing to
 * re-assign the lead away from the owner, level 3 tells the head of sales.
 * Each level is a timer row; each step's delay is configurable
 * (escalation_delays). A step runs only while the lead still waits: a task
 * closed by the work (a call, a completed task) cancels the ladder; a task
 * closed by a re-assignment keeps the head-of-sales step, which then asks
 * whether the lead still has an open task of the same kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

/* The task behind an SLA timer. Strings owned. */
typedef struct {
    char *staff_id;  /* whose task */
    char *status;    /* open | done */
    char *kind;      /* first_contact, ... */
    char *title;
    char *lead_json;
    bool found;
} escalate_task_t;

static void escalate_task_clear(escalate_task_t *task)
{
    free(task->staff_id);
    free(task->status);
    free(task->kind);
    free(task->title);
    free(task->lead_json);
    memset(task, 0, sizeof(*task));
}

static int escalate_load_task(cv_bus_t *bus, const char *task_id,
                              escalate_task_t *task)
{
    /* lead_json '' refers to the lead row's snapshot (followup.h) */
    static const char sql[] =
        "SELECT t.staff_id, t.status, t.kind, t.title,"
        " CASE WHEN t.lead_json = '' THEN coalesce(l.lead_json, '{}')"
        " ELSE t.lead_json END FROM followup_task t"
        " LEFT JOIN followup_lead l ON l.lead_id = t.lead_id"
        " WHERE t.task_id = ?";
    memset(task, 0, sizeof(*task));
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, task_id);
    bool failed = false;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        task->staff_id = cv_store_column_dup(stmt, 0, &failed);
        task->status = cv_store_column_dup(stmt, 1, &failed);
        task->kind = cv_store_column_dup(stmt, 2, &failed);
        task->title = cv_store_column_dup(stmt, 3, &failed);
        task->lead_json = cv_store_column_dup(stmt, 4, &failed);
        task->found = !failed && task->staff_id != NULL &&
                      task->status != NULL && task->kind != NULL &&
                      task->title != NULL && task->lead_json != NULL;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE || failed)
        return cv_error("cannot read task '%s': %s", task_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    return 0;
}

/* The open task of the lead of `kinds` (its owner now), into *staff_id. */
static int escalate_current_owner(cv_bus_t *bus, const char *lead_id,
                                  const char *kind, char **staff_id)
{
    static const char sql[] =
        "SELECT staff_id FROM followup_task WHERE " FOLLOWUP_TASKS_OF_LEAD
        " AND kind = ?2 AND status = 'open' ORDER BY created_at DESC LIMIT 1";
    *staff_id = NULL;
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, kind);
    bool failed = false;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *staff_id = cv_store_column_dup(stmt, 0, &failed);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE || failed)
        return cv_error("cannot read the tasks of '%s': %s", lead_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    return 0;
}

static const char *escalate_what(const char *kind)
{
    if (strcmp(kind, FOLLOWUP_KIND_FIRST_CONTACT) == 0)
        return "first contact";
    if (strcmp(kind, FOLLOWUP_KIND_CALL_BACK) == 0)
        return "missed-call call-back";
    if (strcmp(kind, FOLLOWUP_KIND_VIP_REVIEW) == 0)
        return "segment A review";
    if (strcmp(kind, FOLLOWUP_KIND_SEND_REJECTION) == 0)
        return "rejection";
    return kind;
}

static int escalate_emit(cv_bus_t *bus, const followup_timer_t *timer,
                         const char *staff_id, int level, int64_t now,
                         const char *reason, bool to_routing)
{
    Conveyor__Escalation escalation = CONVEYOR__ESCALATION__INIT;
    escalation.timer_id = timer->timer_id;
    escalation.lead_id = timer->lead_id;
    escalation.task_id = timer->task_id;
    escalation.staff_id = (char *)staff_id;
    escalation.kind = timer->kind;
    escalation.has_level = true;
    escalation.level = level;
    escalation.has_due_at = true;
    escalation.due_at = timer->due_at;
    escalation.has_fired_at = true;
    escalation.fired_at = now;
    escalation.reason = (char *)reason;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ESCALATION;
    env.escalation = &escalation;
    if (to_routing)
        return cv_bus_emit(bus, &env, "routing", "console", NULL);
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* Notifies one person about an escalation step. */
static int escalate_notify(cv_bus_t *bus, const followup_timer_t *timer,
                           const escalate_task_t *task,
                           const followup_person_t *person,
                           const char *notification_id, int level,
                           const char *owner_id, int64_t now,
                           const char *subject_format, const char *reason)
{
    int rc = -1;
    json_t *lead = NULL;
    json_t *payload = NULL;
    char *summary = NULL;
    char *subject = NULL;
    char *text = NULL;
    char due_rfc3339[40];
    char fired_rfc3339[40];
    json_error_t error;
    lead = json_loads(task->lead_json, 0, &error);
    if (lead == NULL)
        lead = json_object(); /* an empty snapshot still escalates */
    if (lead == NULL)
        goto oom;
    summary = followup_lead_summary(lead, timer->lead_id);
    if (summary == NULL)
        goto oom;
    if (asprintf(&subject, subject_format, escalate_what(task->kind),
                 summary) < 0) {
        subject = NULL;
        goto oom;
    }
    if (asprintf(&text, "%s\nTask: %s\nOwner: %s\nLead: %s\nLead id: %s",
                 reason, task->title, owner_id, summary, timer->lead_id) < 0) {
        text = NULL;
        goto oom;
    }
    cv_clock_format(timer->due_at, due_rfc3339, sizeof(due_rfc3339));
    cv_clock_format(now, fired_rfc3339, sizeof(fired_rfc3339));
    payload = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:O}",
        "notification_id", notification_id, "kind", "escalation",
        "escalation_kind", timer->kind, "level", level, "timer_id",
        timer->timer_id, "task_id", timer->task_id, "lead_id", timer->lead_id,
        "staff_id", owner_id, "due_at", due_rfc3339, "due_at_ms",
        (json_int_t)timer->due_at, "fired_at", fired_rfc3339, "reason",
        reason, "lead", lead);
    if (payload == NULL)
        goto oom;
    rc = followup_notify(
        bus, notification_id, timer->lead_id, person->staff_id,
        followup_person_reachable(person)
            ? (Conveyor__NotifyTarget *)&person->notify
            : NULL,
        subject, text, payload);
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory escalating '%s'", timer->timer_id);
out:
    json_decref(payload);
    json_decref(lead);
    free(text);
    free(subject);
    free(summary);
    return rc;
}

/* Level 1: remind the owner; then the re-assignment timer. */
static int escalate_remind(followup_t *self, cv_bus_t *bus,
                           const followup_timer_t *timer,
                           const escalate_task_t *task, int64_t now)
{
    followup_person_t owner;
    int rc = -1;
    char due_text[96];
    char reason[320];
    char notification_id[FOLLOWUP_ID_SIZE + 16];
    char next_id[FOLLOWUP_ID_SIZE + 16];
    if (followup_staff_get(self, bus, task->staff_id, &owner) != 0)
        goto out;
    followup_format_local(&owner, timer->due_at, due_text, sizeof(due_text));
    snprintf(reason, sizeof(reason),
             "%s was due by %s and the task is still open: reminding the "
             "owner",
             escalate_what(task->kind), due_text);
    /* the owner's target as routing gave it wins over the directory's */
    followup_person_t target = owner;
    static const char sql[] =
        "SELECT notify_webhook_url, notify_telegram_chat_id, notify_email"
        " FROM followup_task WHERE task_id = ?";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, timer->task_id);
    char *hook = NULL;
    char *chat = NULL;
    char *mail = NULL;
    bool failed = false;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        hook = cv_store_column_dup(stmt, 0, &failed);
        chat = cv_store_column_dup(stmt, 1, &failed);
        mail = cv_store_column_dup(stmt, 2, &failed);
    }
    sqlite3_reset(stmt);
    if (hook != NULL || chat != NULL || mail != NULL) {
        target.webhook_url = hook;
        target.telegram_chat_id = chat;
        target.email = mail;
        target.slack_webhook_url = NULL;
        Conveyor__NotifyTarget init = CONVEYOR__NOTIFY_TARGET__INIT;
        target.notify = init;
        target.notify.webhook_url = hook;
        target.notify.telegram_chat_id = chat;
        target.notify.email = mail;
    }
    snprintf(notification_id, sizeof(notification_id), "ntf-%s-L1",
             timer->timer_id);
    snprintf(next_id, sizeof(next_id), "tmr-%s-L2", timer->task_id);
    int ok = !failed &&
             escalate_emit(bus, timer, task->staff_id, 1, now, reason,
                           false) == 0 &&
             escalate_notify(bus, timer, task, &target, notification_id, 1,
                             task->staff_id, now, "SLA missed: %s with %s",
                             reason) == 0 &&
             followup_timer_insert(
                 self, bus, next_id, timer->task_id, timer->lead_id,
                 timer->kind, 2, task->staff_id,
                 timer->due_at +
                     (int64_t)self->delays.reassign_minutes * 60000) == 0;
    free(hook);
    free(chat);
    free(mail);
    if (!ok)
        goto out;
    cv_log(CV_LOG_INFO, "timer '%s' fired: '%s' reminded about '%s'",
           timer->timer_id, task->staff_id, timer->task_id);
    rc = 0;
out:
    followup_person_clear(&owner);
    return rc;
}

/* Level 2: ask routing to re-assign away from the owner; then the
 * head-of-sales timer (one per lead and kind). */
static int escalate_reassign(followup_t *self, cv_bus_t *bus,
                             const followup_timer_t *timer,
                             const escalate_task_t *task, int64_t now)
{
    char reason[320];
    char next_id[FOLLOWUP_ID_SIZE + 16];
    snprintf(reason, sizeof(reason),
             "%s still not done %d min after the reminder: re-assign the lead "
             "away from %s",
             escalate_what(task->kind), self->delays.reassign_minutes,
             task->staff_id);
    snprintf(next_id, sizeof(next_id), "tmr-%s-%s-L3", timer->lead_id,
             task->kind);
    if (escalate_emit(bus, timer, task->staff_id, 2, now, reason, true) != 0 ||
        followup_timer_insert(self, bus, next_id, timer->task_id,
                              timer->lead_id, timer->kind, 3, task->staff_id,
                              timer->due_at +
                                  (int64_t)self->delays.head_minutes *
                                      60000) != 0)
        return -1;
    cv_log(CV_LOG_INFO, "timer '%s' fired: '%s' asked to re-assign from '%s'",
           timer->timer_id, timer->lead_id, task->staff_id);
    return 0;
}

/* Level 3: tell every head of sales. */
static int escalate_head(followup_t *self, cv_bus_t *bus,
                         const followup_timer_t *timer,
                         const escalate_task_t *task, const char *owner_id,
                         int64_t now)
{
    char **heads = NULL;
    int rc = -1;
    char due_text[96];
    char reason[400];
    if (followup_staff_heads(bus, &heads) != 0)
        goto out;
    followup_format_time(timer->due_at, due_text, sizeof(due_text));
    snprintf(reason, sizeof(reason),
             "%s was due by %s and is still not done (owner now %s): the "
             "head of sales is told",
             escalate_what(task->kind), due_text, owner_id);
    if (escalate_emit(bus, timer, owner_id, 3, now, reason, false) != 0)
        goto out;
    if (heads[0] == NULL)
        cv_log(CV_LOG_WARN, "timer '%s': no active head of sales (role "
                            "'head') in the directory to tell",
               timer->timer_id);
    for (size_t i = 0; heads[i] != NULL; i++) {
        followup_person_t head;
        char notification_id[FOLLOWUP_ID_SIZE + 80];
        if (followup_staff_get(self, bus, heads[i], &head) != 0)
            goto out;
        snprintf(notification_id, sizeof(notification_id), "ntf-%s-%s",
                 timer->timer_id, heads[i]);
        int ok = escalate_notify(bus, timer, task, &head, notification_id, 3,
                                 owner_id, now,
                                 "Escalation: %s missed for %s", reason);
        followup_person_clear(&head);
        if (ok != 0)
            goto out;
    }
    cv_log(CV_LOG_INFO, "timer '%s' fired: head of sales told about '%s'",
           timer->timer_id, timer->lead_id);
    rc = 0;
out:
    followup_ids_free(heads);
    return rc;
}

int followup_escalate(followup_t *self, cv_bus_t *bus,
                      const followup_timer_t *timer, int64_t now)
{
    escalate_task_t task;
    char *owner = NULL;
    int rc = -1;
    if (escalate_load_task(bus, timer->task_id, &task) != 0)
        goto out;
    if (!task.found) {
        cv_log(CV_LOG_INFO, "timer '%s' fired, task '%s' unknown: no "
                            "escalation", timer->timer_id, timer->task_id);
        rc = 0;
        goto out;
    }
    bool open = strcmp(task.status, "open") == 0;
    if (timer->level >= 3) {
        /* the lead may have a new owner by now: does it still wait? */
        if (escalate_current_owner(bus, timer->lead_id, task.kind, &owner) !=
            0)
            goto out;
        if (owner == NULL) {
            cv_log(CV_LOG_INFO, "timer '%s' fired, '%s' no longer waits: "
                                "no escalation", timer->timer_id,
                   timer->lead_id);
            rc = 0;
            goto out;
        }
        cv_metric_add(self->escalations, 1);
        rc = escalate_head(self, bus, timer, &task, owner, now);
        goto out;
    }
    if (!open) {
        cv_log(CV_LOG_INFO, "timer '%s' fired, task '%s' %s: no escalation",
               timer->timer_id, timer->task_id, task.status);
        rc = 0;
        goto out;
    }
    cv_metric_add(self->escalations, 1);
    rc = timer->level == 2 ? escalate_reassign(self, bus, timer, &task, now)
                           : escalate_remind(self, bus, timer, &task, now);
out:
    free(owner);
    escalate_task_clear(&task);
    return rc;
}

/* Tasks: the first contact with an assigned lead, the tasks a segment
 * brings (the head of sales' review of a segment A lead, the rejection of
 * a segment C lead), and their completion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

/* Room for identifiers built from a lead or task id. */
#define TASK_ID_SIZE 256

static const char *task_text_or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

static int64_t task_first_contact_ms(const followup_t *self)
{
    int minutes =
        self->config != NULL ? self->config->first_contact_minutes : 0;
    if (minutes <= 0)
        minutes = FOLLOWUP_FIRST_CONTACT_MINUTES;
    return (int64_t)minutes * 60 * 1000;
}

/* Hours to do a task a segment brings (no SLA timer guards it). */
#define TASK_SEGMENT_HOURS 24

/* Inserts the task row unless it exists. Sets *created. 0 or -1. */
static int task_insert(cv_bus_t *bus, const char *task_id, const char *kind,
                       const Conveyor__LeadAssigned *assigned,
                       const char *title, int64_t due_at, int64_t now,
                       const char *lead_json, bool *created)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO followup_task (task_id, lead_id, staff_id,"
        " kind, title, due_at, created_at, lead_json, notify_webhook_url,"
        " notify_telegram_chat_id, notify_email)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    const Conveyor__NotifyTarget *notify = assigned->notify;
    cv_store_bind_text(stmt, 1, task_id);
    cv_store_bind_text(stmt, 2, assigned->lead->lead_id);
    cv_store_bind_text(stmt, 3, assigned->staff_id);
    cv_store_bind_text(stmt, 4, kind);
    cv_store_bind_text(stmt, 5, title);
    sqlite3_bind_int64(stmt, 6, due_at);
    sqlite3_bind_int64(stmt, 7, now);
    cv_store_bind_text(stmt, 8, lead_json);
    if (notify != NULL) {
        cv_store_bind_text(stmt, 9, task_text_or_null(notify->webhook_url));
        cv_store_bind_text(stmt, 10,
                           task_text_or_null(notify->telegram_chat_id));
        cv_store_bind_text(stmt, 11, task_text_or_null(notify->email));
    }
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *created = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

static int task_emit_created(cv_bus_t *bus, const char *task_id,
                             const char *kind,
                             const Conveyor__LeadAssigned *assigned,
                             const char *title, int64_t due_at)
{
    Conveyor__TaskCreated created = CONVEYOR__TASK_CREATED__INIT;
    created.task_id = (char *)task_id;
    created.lead_id = assigned->lead->lead_id;
    created.staff_id = assigned->staff_id;
    created.kind = (char *)kind;
    created.due_at = due_at;
    created.title = (char *)title;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_CREATED;
    env.task_created = &created;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* The payload of the task_created notification as JSON text, written
 * directly when it can be (see followup_json.c), else through jansson as
 * json_pack + json_dumps would make it. Caller frees; NULL when out of
 * memory. */
static char *task_payload(const char *notification_id, const char *task_id,
                          const char *kind,
                          const Conveyor__LeadAssigned *assigned,
                          const char *title, int64_t due_at,
                          const char *due_rfc3339, const char *lead_text)
{
    const Conveyor__Lead *lead = assigned->lead;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_raw(&b, "{", 1);
    cv_jsonw_member(&b, "notification_id", true);
    cv_jsonw_string(&b, notification_id);
    cv_jsonw_member(&b, "kind", false);
    cv_jsonw_string(&b, "task_created");
    cv_jsonw_member(&b, "task_id", false);
    cv_jsonw_string(&b, task_id);
    cv_jsonw_member(&b, "task_kind", false);
    cv_jsonw_string(&b, kind);
    cv_jsonw_member(&b, "lead_id", false);
    cv_jsonw_string(&b, lead->lead_id);
    cv_jsonw_member(&b, "staff_id", false);
    cv_jsonw_string(&b, assigned->staff_id);
    cv_jsonw_member(&b, "due_at", false);
    cv_jsonw_string(&b, due_rfc3339);
    cv_jsonw_member(&b, "due_at_ms", false);
    cv_jsonw_int(&b, (long long)due_at);
    cv_jsonw_member(&b, "title", false);
    cv_jsonw_string(&b, title);
    cv_jsonw_member(&b, "lead", false);
    cv_jsonw_raw(&b, lead_text, strlen(lead_text));
    cv_jsonw_raw(&b, "}", 1);
    if (!b.failed)
        return b.data;
    cv_jsonw_clear(&b);

    char *text = NULL;
    json_error_t error;
    json_t *lead_json = json_loads(lead_text, 0, &error);
    json_t *payload = NULL;
    if (lead_json != NULL)
        payload = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:O}",
            "notification_id", notification_id, "kind", "task_created",
            "task_id", task_id, "task_kind", kind, "lead_id", lead->lead_id,
            "staff_id",
            assigned->staff_id, "due_at", due_rfc3339, "due_at_ms",
            (json_int_t)due_at, "title", title, "lead", lead_json);
    if (payload != NULL)
        text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    json_decref(lead_json);
    return text;
}

/* Tells the owner about the new task: who the lead is and by when.
 * `summary` is the lead's one-line description. */
static int task_notify_created(cv_bus_t *bus, const char *task_id,
                               const char *kind,
                               const Conveyor__LeadAssigned *assigned,
                               const char *title, int64_t due_at,
                               const char *lead_text, const char *summary)
{
    const Conveyor__Lead *lead = assigned->lead;
    int rc = -1;
    char *subject = NULL;
    char *text = NULL;
    char *payload = NULL;
    char notification_id[TASK_ID_SIZE];
    char due_text[64];
    char due_rfc3339[40];

    if ((size_t)snprintf(notification_id, sizeof(notification_id), "ntf-%s",
                         task_id) >= sizeof(notification_id)) {
        cv_log(CV_LOG_ERROR, "task id '%s' too long", task_id);
        goto out;
    }
    followup_format_time(due_at, due_text, sizeof(due_text));
    cv_clock_format(due_at, due_rfc3339, sizeof(due_rfc3339));
    int n;
    if (strcmp(kind, FOLLOWUP_KIND_FIRST_CONTACT) == 0)
        n = asprintf(&subject, "New lead: %s (first contact by %s)", summary,
                     due_text);
    else if (strcmp(kind, FOLLOWUP_KIND_VIP_REVIEW) == 0)
        n = asprintf(&subject, "Segment A lead to review: %s (by %s)",
                     summary, due_text);
    else
        n = asprintf(&subject, "Rejection to send: %s (by %s)", summary,
                     due_text);
    if (n < 0) {
        subject = NULL;
        goto oom;
    }
    const char *message = task_text_or_null(lead->message);
    if (asprintf(&text,
                 "%s\nLead: %s\nChannel: %s\nRequest: %s\nDue: %s\n"
                 "Lead id: %s",
                 title, summary, lead->channel != NULL ? lead->channel : "web",
                 message != NULL ? message : "(none)", due_text,
                 lead->lead_id) < 0) {
        text = NULL;
        goto oom;
    }
    payload = task_payload(notification_id, task_id, kind, assigned, title,
                           due_at, due_rfc3339, lead_text);
    if (payload == NULL)
        goto oom;
    rc = followup_notify_text(bus, notification_id, lead->lead_id,
                              assigned->staff_id, assigned->notify, subject,
                              text, payload);
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory notifying about '%s'", task_id);
out:
    free(payload);
    free(text);
    free(subject);
    return rc;
}

/* The lead's JSON snapshot (as json_dumps of cv_event_lead_to_json) and
 * its one-line summary, into *text and *summary (caller frees both).
 * 0, or -1 when out of memory. */
static int task_lead_snapshot(const Conveyor__Lead *lead, char **text,
                              char **summary)
{
    *text = NULL;
    *summary = NULL;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_lead(&b, lead);
    if (!b.failed) {
        /* every field went in as it is, so the summary can read them */
        *text = b.data;
        *summary = followup_lead_summary_fields(lead);
        return *summary != NULL ? 0 : -1;
    }
    cv_jsonw_clear(&b);
    json_t *json = cv_event_lead_to_json(lead);
    if (json == NULL)
        return -1;
    *text = json_dumps(json, JSON_COMPACT);
    *summary = followup_lead_summary(json, lead->lead_id);
    json_decref(json);
    return *text != NULL && *summary != NULL ? 0 : -1;
}

int followup_task_open_first_contact(followup_t *self, cv_bus_t *bus,
                                     const Conveyor__LeadAssigned *assigned)
{
    const Conveyor__Lead *lead = assigned->lead;
    int rc = -1;
    char *lead_text = NULL;
    char *summary = NULL;
    char *title = NULL;
    char task_id[TASK_ID_SIZE];
    char timer_id[TASK_ID_SIZE];

    if ((size_t)snprintf(task_id, sizeof(task_id), "%s-first-contact",
                         lead->lead_id) >= sizeof(task_id) ||
        (size_t)snprintf(timer_id, sizeof(timer_id), "tmr-%s", task_id) >=
            sizeof(timer_id)) {
        cv_log(CV_LOG_WARN, "lead id '%.64s...' too long, assignment dropped",
               lead->lead_id);
        return CV_BUS_DROP;
    }
    int64_t now = cv_clock_now_ms();
    int64_t due_at = now + task_first_contact_ms(self);
    if (task_lead_snapshot(lead, &lead_text, &summary) != 0)
        goto oom;
    title = followup_first_contact_title(lead->channel, lead->name);
    if (title == NULL)
        goto oom;

    bool created = false;
    if (task_insert(bus, task_id, FOLLOWUP_KIND_FIRST_CONTACT, assigned, title,
                    due_at, now, lead_text, &created) != 0)
        goto out;
    if (!created) {
        cv_log(CV_LOG_DEBUG, "task '%s' exists, assignment already handled",
               task_id);
        rc = 0;
        goto out;
    }
    if (followup_timer_insert(self, bus, timer_id, task_id, lead->lead_id,
                              FOLLOWUP_TIMER_FIRST_CONTACT, due_at) != 0 ||
        task_emit_created(bus, task_id, FOLLOWUP_KIND_FIRST_CONTACT, assigned,
                          title, due_at) != 0 ||
        task_notify_created(bus, task_id, FOLLOWUP_KIND_FIRST_CONTACT,
                            assigned, title, due_at, lead_text, summary) != 0)
        goto out;
    cv_metric_add(self->tasks_opened, 1);
    cv_log(CV_LOG_INFO, "task '%s' for '%s' due in %lld min", task_id,
           assigned->staff_id, (long long)((due_at - now) / 60000));
    rc = 0;
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory opening task '%s'", task_id);
out:
    free(title);
    free(summary);
    free(lead_text);
    return rc;
}

/* The title of a segment task. Caller frees; NULL when out of memory. */
static char *task_segment_title(const char *kind, const char *name)
{
    char *title = NULL;
    const char *who = name != NULL && name[0] != '\0' ? name : "the client";
    int n;
    if (strcmp(kind, FOLLOWUP_KIND_VIP_REVIEW) == 0)
        n = asprintf(&title,
                     "Review segment A lead %s: approve the proposal before "
                     "it goes out and bring in the working group (analyst, "
                     "marketer, team lead)",
                     who);
    else
        n = asprintf(&title,
                     "Send %s a polite rejection explaining why, with a "
                     "referral to a partner agency",
                     who);
    return n < 0 ? NULL : title;
}

int followup_task_open_segment(followup_t *self, cv_bus_t *bus,
                               const Conveyor__LeadAssigned *assigned)
{
    const Conveyor__Lead *lead = assigned->lead;
    const char *kind = assigned->task_kind;
    int rc = -1;
    char *lead_text = NULL;
    char *summary = NULL;
    char *title = NULL;
    char task_id[TASK_ID_SIZE];
    char first_contact[TASK_ID_SIZE];
    bool vip = strcmp(kind, FOLLOWUP_KIND_VIP_REVIEW) == 0;
    if ((size_t)snprintf(task_id, sizeof(task_id), "%s-%s", lead->lead_id,
                         vip ? "vip-review" : "send-rejection") >=
            sizeof(task_id) ||
        (size_t)snprintf(first_contact, sizeof(first_contact),
                         "%s-first-contact", lead->lead_id) >=
            sizeof(first_contact)) {
        cv_log(CV_LOG_WARN, "lead id '%.64s...' too long, assignment dropped",
               lead->lead_id);
        return CV_BUS_DROP;
    }
    int64_t now = cv_clock_now_ms();
    int64_t due_at = now + (int64_t)TASK_SEGMENT_HOURS * 3600 * 1000;
    if (task_lead_snapshot(lead, &lead_text, &summary) != 0)
        goto oom;
    title = task_segment_title(kind, lead->name);
    if (title == NULL)
        goto oom;
    /* the rejection replaces the first contact: its SLA no longer runs */
    if (!vip && followup_timer_cancel_task(self, bus, first_contact,
                                           "segment_c") != 0)
        goto out;
    bool created = false;
    if (task_insert(bus, task_id, kind, assigned, title, due_at, now,
                    lead_text, &created) != 0)
        goto out;
    if (!created) {
        cv_log(CV_LOG_DEBUG, "task '%s' exists, assignment already handled",
               task_id);
        rc = 0;
        goto out;
    }
    if (task_emit_created(bus, task_id, kind, assigned, title, due_at) != 0 ||
        task_notify_created(bus, task_id, kind, assigned, title, due_at,
                            lead_text, summary) != 0)
        goto out;
    cv_metric_add(self->tasks_opened, 1);
    cv_log(CV_LOG_INFO, "task '%s' for '%s' due in %d h", task_id,
           assigned->staff_id, TASK_SEGMENT_HOURS);
    rc = 0;
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory opening task '%s'", task_id);
out:
    free(title);
    free(summary);
    free(lead_text);
    return rc;
}

int followup_task_complete(followup_t *self, cv_bus_t *bus,
                           const Conveyor__TaskCompleted *completed)
{
    static const char sql[] =
        "UPDATE followup_task SET status = 'done', completed_at = ?,"
        " completed_by = ? WHERE task_id = ? AND status = 'open'";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    int64_t at = completed->has_completed_at ? completed->completed_at
                                             : cv_clock_now_ms();
    const char *by = task_text_or_null(completed->actor);
    if (by == NULL)
        by = task_text_or_null(completed->staff_id);
    sqlite3_bind_int64(stmt, 1, at);
    cv_store_bind_text(stmt, 2, by);
    cv_store_bind_text(stmt, 3, completed->task_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (sqlite3_changes(cv_store_db(store)) == 0)
        cv_log(CV_LOG_DEBUG, "task '%s' not open here, nothing to complete",
               completed->task_id);
    return followup_timer_cancel_task(self, bus, completed->task_id,
                                      "task_completed");
}

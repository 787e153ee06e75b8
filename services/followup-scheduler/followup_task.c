/* Tasks: opening one (row, SLA timer, TaskCreated, the person's
 * notification), closing the ones the rules say are satisfied, and the
 * console's TaskCompleted. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

/* Texts are bound with cv_store_bind_static, without SQLite's copy: each
 * statement here is bound and stepped in one function, while the texts it
 * binds (arguments, or locals of that function) are still there. */

static const char *task_text_or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* Appends `text` to a text being built, "(null)" for NULL as printf's %s
 * writes it. The texts of a new task are built by appending, not with
 * printf: every new lead makes them, and printf's format parsing was about
 * a tenth of the scheduler's own work per lead. */
static void task_put(cv_jsonw_t *b, const char *text)
{
    cv_jsonw_append(b, text != NULL ? text : "(null)");
}

/* Appends `text`, JSON text as it is (keys with their colons, a brace,
 * a fixed value): plain ASCII, written as json_dumps writes it. */
#define TASK_KEY(b, text) cv_jsonw_raw((b), (text), sizeof(text) - 1)

/* Appends the subject line of a new task's notification: the summary and
 * the due time in the kind's words. */
static void task_put_subject(cv_jsonw_t *b, const char *kind,
                             const char *summary, const char *due)
{
    static const struct {
        const char *kind;    /* task kind */
        const char *before;  /* text before the summary */
        const char *between; /* between the summary and the due time */
        const char *after;   /* after the due time */
    } subjects[] = {
        {FOLLOWUP_KIND_FIRST_CONTACT, "New lead: ", " (first contact by ",
         ")"},
        {FOLLOWUP_KIND_CALL_BACK, "Missed call: call back ", " by ", ""},
        {FOLLOWUP_KIND_COLD_CALL, "Cold call: ", " (by ", ")"},
        {FOLLOWUP_KIND_CLAIM_OFFER, "Lead on offer: ", " (claim it by ", ")"},
        {FOLLOWUP_KIND_VIP_REVIEW, "Segment A lead to review: ", " (by ",
         ")"},
        {FOLLOWUP_KIND_SEND_REJECTION, "Rejection to send: ", " (by ", ")"},
        {FOLLOWUP_KIND_PING, "Ping about the proposal: ", " (by ", ")"},
        {FOLLOWUP_KIND_PUSH, "Push for a decision: ", " (by ", ")"},
        {FOLLOWUP_KIND_CHECK_BACK, "Check back: ", " (on ", ")"},
        {FOLLOWUP_KIND_FIND_DM, "Find the decision maker: ", " (by ", ")"},
        {FOLLOWUP_KIND_BOOK_PRESENTATION, "Book a presentation: ", " (by ",
         ")"},
        {FOLLOWUP_KIND_DEBRIEF, "Debrief the loss: ", " (by ", ")"},
        {FOLLOWUP_KIND_RETURN, "Come back to a lost client: ", " (on ", ")"},
        {FOLLOWUP_KIND_DIRECT_QUESTIONS, "Ask direct questions: ", " (by ",
         ")"},
    };
    const char *before = "Task: ";
    const char *between = " (by ";
    const char *after = ")";
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        if (strcmp(kind, subjects[i].kind) == 0) {
            before = subjects[i].before;
            between = subjects[i].between;
            after = subjects[i].after;
            break;
        }
    }
    cv_jsonw_append(b, before);
    task_put(b, summary);
    cv_jsonw_append(b, between);
    task_put(b, due);
    cv_jsonw_append(b, after);
}

/* Appends the text of a new task's notification. */
static void task_put_text(cv_jsonw_t *b, const followup_task_spec_t *spec,
                          const char *due_local)
{
    const char *message = task_text_or_null(spec->message);
    task_put(b, spec->title);
    cv_jsonw_append(b, "\nLead: ");
    task_put(b, spec->summary);
    cv_jsonw_append(b, "\nChannel: ");
    task_put(b, spec->channel != NULL ? spec->channel : "web");
    cv_jsonw_append(b, "\nRequest: ");
    task_put(b, message != NULL ? message : "(none)");
    cv_jsonw_append(b, "\nDue: ");
    task_put(b, due_local);
    cv_jsonw_append(b, "\nLead id: ");
    task_put(b, spec->lead_id);
}

/* Appends the webhook payload of a new task's notification, as
 * json_dumps(..., JSON_COMPACT) writes it. */
static void task_put_payload(cv_jsonw_t *b, const char *notification_id,
                             const followup_task_spec_t *spec,
                             const char *due_rfc3339, const char *due_local)
{
    TASK_KEY(b, "{\"notification_id\":");
    cv_jsonw_string(b, notification_id);
    TASK_KEY(b, ",\"kind\":\"task_created\",\"task_id\":");
    cv_jsonw_string(b, spec->task_id);
    TASK_KEY(b, ",\"task_kind\":");
    cv_jsonw_string(b, spec->kind);
    TASK_KEY(b, ",\"lead_id\":");
    cv_jsonw_string(b, spec->lead_id);
    TASK_KEY(b, ",\"staff_id\":");
    cv_jsonw_string(b, spec->person->staff_id);
    TASK_KEY(b, ",\"due_at\":");
    cv_jsonw_string(b, due_rfc3339);
    TASK_KEY(b, ",\"due_at_ms\":");
    cv_jsonw_int(b, (long long)spec->due_at);
    TASK_KEY(b, ",\"due_local\":");
    cv_jsonw_string(b, due_local);
    TASK_KEY(b, ",\"title\":");
    cv_jsonw_string(b, spec->title);
    if (spec->stage != NULL) {
        TASK_KEY(b, ",\"stage\":");
        cv_jsonw_string(b, spec->stage);
    }
    TASK_KEY(b, ",\"lead\":");
    cv_jsonw_append(b, spec->lead_json != NULL ? spec->lead_json : "{}");
    cv_jsonw_raw(b, "}", 1);
}

/* Writes `prefix` then `id` into out (`size` bytes, more than the
 * prefix), cut to fit as snprintf cuts; false when it was cut. */
static bool task_prefixed_id(char *out, size_t size, const char *prefix,
                             const char *id)
{
    size_t p = strlen(prefix);
    size_t n = strlen(id);
    bool fits = p + n < size;
    if (!fits)
        n = size - 1 - p;
    memcpy(out, prefix, p);
    memcpy(out + p, id, n);
    out[p + n] = '\0';
    return fits;
}

/* Tells the person about the new task: who the lead is and by when
 * (`due_local`, followup_format_local of the due time). */
static int task_notify_created(cv_bus_t *bus, const followup_task_spec_t *spec,
                               const char *due_local)
{
    int rc = -1;
    char notification_id[FOLLOWUP_ID_SIZE + 8];
    char due_rfc3339[40];
    if (!task_prefixed_id(notification_id, sizeof(notification_id), "ntf-",
                          spec->task_id))
        return cv_error("task id '%s' too long", spec->task_id);
    cv_clock_format(spec->due_at, due_rfc3339, sizeof(due_rfc3339));
    /* one buffer holds the subject, the text and the payload, each ended
     * by its NUL: one allocation instead of three */
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    task_put_subject(&b, spec->kind, spec->summary, due_local);
    size_t text_at = b.length + 1;
    cv_jsonw_raw(&b, "", 1);
    task_put_text(&b, spec, due_local);
    size_t payload_at = b.length + 1;
    cv_jsonw_raw(&b, "", 1);
    task_put_payload(&b, notification_id, spec, due_rfc3339, due_local);
    if (b.failed) {
        /* out of memory, or a string that is not UTF-8 */
        cv_log(CV_LOG_ERROR, "cannot write the notification about '%s'",
               spec->task_id);
        goto out;
    }
    Conveyor__NotifyTarget *target =
        spec->notify != NULL ? (Conveyor__NotifyTarget *)spec->notify
        : followup_person_reachable(spec->person)
            ? (Conveyor__NotifyTarget *)&spec->person->notify
            : NULL;
    rc = followup_notify_text(bus, notification_id, spec->lead_id,
                              spec->person->staff_id, target, b.data,
                              b.data + text_at, b.data + payload_at);
out:
    cv_jsonw_clear(&b);
    return rc;
}

static int task_emit_created(cv_bus_t *bus, const followup_task_spec_t *spec)
{
    Conveyor__TaskCreated created = CONVEYOR__TASK_CREATED__INIT;
    created.task_id = (char *)spec->task_id;
    created.lead_id = (char *)spec->lead_id;
    created.staff_id = spec->person->staff_id;
    created.kind = (char *)spec->kind;
    created.due_at = spec->due_at;
    created.title = (char *)spec->title;
    created.stage = (char *)spec->stage;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_CREATED;
    env.task_created = &created;
    return cv_bus_emit(bus, &env, "console", NULL);
}

int followup_task_open(followup_t *self, cv_bus_t *bus,
                       const followup_task_spec_t *spec, bool *created)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO followup_task (task_id, lead_id, staff_id,"
        " kind, title, due_at, created_at, lead_json, notify_webhook_url,"
        " notify_telegram_chat_id, notify_email, stage)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    if (created != NULL)
        *created = false;
    /* a lead's tasks are found by this prefix (FOLLOWUP_TASKS_OF_LEAD);
     * every caller builds the id from the lead's */
    size_t lead_len = strlen(spec->lead_id);
    assert(strncmp(spec->task_id, spec->lead_id, lead_len) == 0 &&
           spec->task_id[lead_len] == '-');
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    const Conveyor__NotifyTarget *notify =
        spec->notify != NULL ? spec->notify : &spec->person->notify;
    int64_t now = spec->now != 0 ? spec->now : cv_clock_now_ms();
    cv_store_bind_static(stmt, 1, spec->task_id);
    cv_store_bind_static(stmt, 2, spec->lead_id);
    cv_store_bind_static(stmt, 3, spec->person->staff_id);
    cv_store_bind_static(stmt, 4, spec->kind);
    cv_store_bind_static(stmt, 5, spec->title);
    sqlite3_bind_int64(stmt, 6, spec->due_at);
    sqlite3_bind_int64(stmt, 7, now);
    /* '': the lead row's snapshot, not a second copy (followup.h) */
    cv_store_bind_static(stmt, 8,
                       spec->lead_json_is_row ? ""
                       : spec->lead_json != NULL ? spec->lead_json
                                                 : "{}");
    cv_store_bind_static(stmt, 9, task_text_or_null(notify->webhook_url));
    cv_store_bind_static(stmt, 10, task_text_or_null(notify->telegram_chat_id));
    cv_store_bind_static(stmt, 11, task_text_or_null(notify->email));
    cv_store_bind_static(stmt, 12, spec->stage);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (sqlite3_changes(cv_store_db(store)) == 0) {
        cv_log(CV_LOG_DEBUG, "task '%s' exists", spec->task_id);
        return 0;
    }
    if (spec->sla) {
        char timer_id[FOLLOWUP_ID_SIZE + 8];
        char kind[64];
        /* cut when too long, as snprintf did */
        task_prefixed_id(timer_id, sizeof(timer_id), "tmr-", spec->task_id);
        task_prefixed_id(kind, sizeof(kind), FOLLOWUP_TIMER_SLA_PREFIX,
                         spec->kind);
        int64_t at = spec->due_at +
                     (int64_t)self->delays.remind_minutes * 60000;
        if (followup_timer_insert(self, bus, timer_id, spec->task_id,
                                  spec->lead_id, kind, 1,
                                  spec->person->staff_id, at) != 0)
            return -1;
    }
    char due[96];
    followup_format_local(spec->person, spec->due_at, due, sizeof(due));
    if (task_emit_created(bus, spec) != 0 ||
        task_notify_created(bus, spec, due) != 0)
        return -1;
    cv_metric_add(self->tasks_opened, 1);
    if (created != NULL)
        *created = true;
    cv_log(CV_LOG_INFO, "task '%s' (%s) for '%s' due %s%s%s", spec->task_id,
           spec->kind, spec->person->staff_id, due,
           spec->stage != NULL ? ", stage " : "",
           spec->stage != NULL ? spec->stage : "");
    return 0;
}

/* Marks one task done (if open) with `reason`; sets *changed. */
static int task_mark_done(cv_bus_t *bus, const char *task_id,
                          const char *by, const char *reason, int64_t at,
                          bool *changed)
{
    static const char sql[] =
        "UPDATE followup_task SET status = 'done', completed_at = ?,"
        " completed_by = ?, closed_reason = ? WHERE task_id = ?"
        " AND status = 'open'";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, at);
    cv_store_bind_static(stmt, 2, by);
    cv_store_bind_static(stmt, 3, reason);
    cv_store_bind_static(stmt, 4, task_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *changed = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

/* Tells the console the scheduler closed a task. */
static int task_emit_completed(cv_bus_t *bus, const char *task_id,
                               const char *lead_id, const char *staff_id,
                               int64_t at)
{
    Conveyor__TaskCompleted done = CONVEYOR__TASK_COMPLETED__INIT;
    done.task_id = (char *)task_id;
    done.lead_id = (char *)lead_id;
    done.staff_id = (char *)staff_id;
    done.actor = FOLLOWUP_SERVICE;
    done.has_completed_at = true;
    done.completed_at = at;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED;
    env.task_completed = &done;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* Closes one task whose lead and owner the caller knows. */
static int task_close_known(followup_t *self, cv_bus_t *bus,
                            const char *task_id, const char *lead_id,
                            const char *staff_id, const char *reason,
                            bool keep_head)
{
    int64_t now = cv_clock_now_ms();
    bool changed = false;
    if (task_mark_done(bus, task_id, FOLLOWUP_SERVICE, reason, now,
                       &changed) != 0)
        return -1;
    if (!changed)
        return 0;
    if (followup_timer_cancel_task(self, bus, task_id, lead_id, reason,
                                   keep_head) !=
            0 ||
        task_emit_completed(bus, task_id, lead_id, staff_id, now) != 0)
        return -1;
    cv_metric_add(self->tasks_closed, 1);
    cv_log(CV_LOG_INFO, "task '%s' of '%s' closed: %s", task_id, staff_id,
           reason);
    return 0;
}

int followup_task_close(followup_t *self, cv_bus_t *bus, const char *task_id,
                        const char *reason, bool keep_head)
{
    static const char sql[] =
        "SELECT lead_id, staff_id FROM followup_task WHERE task_id = ?"
        " AND status = 'open'";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, task_id);
    char *lead_id = NULL;
    char *staff_id = NULL;
    bool failed = false;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        lead_id = cv_store_column_dup(stmt, 0, &failed);
        staff_id = cv_store_column_dup(stmt, 1, &failed);
    }
    sqlite3_reset(stmt);
    if ((rc != SQLITE_ROW && rc != SQLITE_DONE) || failed) {
        free(lead_id);
        free(staff_id);
        return cv_error("cannot read task '%s': %s", task_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    }
    rc = 0;
    if (lead_id != NULL && staff_id != NULL)
        rc = task_close_known(self, bus, task_id, lead_id, staff_id, reason,
                              keep_head);
    free(lead_id);
    free(staff_id);
    return rc;
}

static bool task_kind_in(const char *kind, const char *const *kinds)
{
    if (kinds == NULL)
        return true;
    for (size_t i = 0; kinds[i] != NULL; i++) {
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    }
    return false;
}

void followup_task_list_clear(followup_task_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->rows[i].task_id);
        free(list->rows[i].staff_id);
        free(list->rows[i].kind);
    }
    free(list->rows);
    memset(list, 0, sizeof(*list));
}

/* Oldest first, as the console saw them created. */
static int task_row_order(const void *a, const void *b)
{
    const followup_task_row_t *x = a;
    const followup_task_row_t *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return strcmp(x->task_id, y->task_id);
}

int followup_task_list(cv_bus_t *bus, const char *lead_id,
                       followup_task_list_t *list)
{
    /* one range of followup_task's key: a lead's task ids all start
     * with "<lead_id>-" (followup_task_open); a lead has a handful of
     * tasks, so they are put in order here rather than by an SQL sorter */
    static const char sql[] =
        "SELECT task_id, staff_id, kind, status = 'open', created_at,"
        " lead_json = '' FROM followup_task WHERE " FOLLOWUP_TASKS_OF_LEAD;
    memset(list, 0, sizeof(*list));
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    size_t room = 0;
    bool failed = false;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (list->count == room) {
            size_t more = room == 0 ? 8 : room * 2;
            followup_task_row_t *rows =
                realloc(list->rows, more * sizeof(*rows));
            if (rows == NULL) {
                failed = true;
                break;
            }
            list->rows = rows;
            room = more;
        }
        followup_task_row_t *row = &list->rows[list->count++];
        memset(row, 0, sizeof(*row));
        row->task_id = cv_store_column_dup(stmt, 0, &failed);
        row->staff_id = cv_store_column_dup(stmt, 1, &failed);
        row->kind = cv_store_column_dup(stmt, 2, &failed);
        row->open = sqlite3_column_int(stmt, 3) != 0;
        row->created_at = sqlite3_column_int64(stmt, 4);
        row->shares_lead = sqlite3_column_int(stmt, 5) != 0;
        if (failed || row->task_id == NULL || row->staff_id == NULL ||
            row->kind == NULL) {
            failed = true;
            break;
        }
    }
    sqlite3_reset(stmt);
    if ((rc != SQLITE_DONE && rc != SQLITE_ROW) || failed) {
        followup_task_list_clear(list);
        return cv_error("cannot list the tasks of '%s': %s", lead_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    }
    if (list->count > 1)
        qsort(list->rows, list->count, sizeof(list->rows[0]), task_row_order);
    return 0;
}

int followup_task_close_listed(followup_t *self, cv_bus_t *bus,
                               followup_task_list_t *list,
                               const char *lead_id, const char *const *kinds,
                               const char *except_staff, const char *reason,
                               bool keep_head, int *closed)
{
    int count = 0;
    int rc = 0;
    for (size_t i = 0; i < list->count; i++) {
        followup_task_row_t *row = &list->rows[i];
        if (!row->open || !task_kind_in(row->kind, kinds))
            continue;
        if (except_staff != NULL && strcmp(row->staff_id, except_staff) == 0)
            continue;
        if (task_close_known(self, bus, row->task_id, lead_id, row->staff_id,
                             reason, keep_head) != 0) {
            rc = -1;
            break;
        }
        row->open = false;
        count++;
    }
    if (closed != NULL)
        *closed = count;
    return rc;
}

bool followup_task_list_has_open(const followup_task_list_t *list,
                                 const char *const *kinds,
                                 const char *staff_id)
{
    for (size_t i = 0; i < list->count; i++) {
        const followup_task_row_t *row = &list->rows[i];
        if (row->open && task_kind_in(row->kind, kinds) &&
            (staff_id == NULL || strcmp(row->staff_id, staff_id) == 0))
            return true;
    }
    return false;
}

int followup_task_list_count(const followup_task_list_t *list,
                             const char *kind)
{
    int count = 0;
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->rows[i].kind, kind) == 0)
            count++;
    return count;
}

int followup_task_close_kinds(followup_t *self, cv_bus_t *bus,
                              const char *lead_id, const char *const *kinds,
                              const char *except_staff, const char *reason,
                              bool keep_head, int *closed)
{
    followup_task_list_t list;
    if (closed != NULL)
        *closed = 0;
    if (followup_task_list(bus, lead_id, &list) != 0)
        return -1;
    int rc = followup_task_close_listed(self, bus, &list, lead_id, kinds,
                                        except_staff, reason, keep_head,
                                        closed);
    followup_task_list_clear(&list);
    return rc;
}

int followup_task_count(cv_bus_t *bus, const char *lead_id, const char *kind)
{
    static const char sql[] =
        "SELECT count(*) FROM followup_task WHERE " FOLLOWUP_TASKS_OF_LEAD
        " AND kind = ?2";
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    cv_store_bind_static(stmt, 2, kind);
    int rc = sqlite3_step(stmt);
    int count = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_reset(stmt);
    if (count < 0)
        return cv_error("cannot count tasks of '%s': %s", lead_id,
                        sqlite3_errstr(rc));
    return count;
}

int followup_task_complete(followup_t *self, cv_bus_t *bus,
                           const Conveyor__TaskCompleted *completed)
{
    int64_t at = completed->has_completed_at ? completed->completed_at
                                             : cv_clock_now_ms();
    const char *by = task_text_or_null(completed->actor);
    if (by == NULL)
        by = task_text_or_null(completed->staff_id);
    bool changed = false;
    if (task_mark_done(bus, completed->task_id, by, "done", at, &changed) !=
        0)
        return -1;
    if (!changed)
        cv_log(CV_LOG_DEBUG, "task '%s' not open here, nothing to complete",
               completed->task_id);
    /* the event's lead_id is the console's word: the row's is read */
    return followup_timer_cancel_task(self, bus, completed->task_id, NULL,
                                      "task_completed", false);
}

/* The follow-up rules of PRODUCT.md section 5: which task each event
 * opens, which tasks and timers it closes, and when things are due in the
 * person's working time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

#define RULES_DAY_MS 86400000LL

/* Texts are bound with cv_store_bind_static, without SQLite's copy: each
 * statement here is bound and stepped in one function, while the texts it
 * binds (arguments, or locals of that function) are still there. */

/* First-contact kinds: what a call or meeting satisfies. */
static const char *const rules_first_kinds[] = {
    FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
    FOLLOWUP_KIND_COLD_CALL, NULL};

static const char *rules_text(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* ------------------------------------------------------------------ */
/* The lead row                                                        */

void followup_lead_clear(followup_lead_t *lead)
{
    free(lead->lead_id);
    free(lead->owner_id);
    free(lead->channel);
    free(lead->lead_json);
    free(lead->summary);
    free(lead->name);
    free(lead->message);
    free(lead->decided);
    memset(lead, 0, sizeof(*lead));
}

static char *rules_json_dup(const json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
}

int followup_lead_get(cv_bus_t *bus, const char *lead_id,
                      followup_lead_t *lead)
{
    static const char sql[] =
        "SELECT owner_id, channel, lead_json, decided FROM followup_lead"
        " WHERE lead_id = ?";
    memset(lead, 0, sizeof(*lead));
    lead->lead_id = strdup(lead_id);
    if (lead->lead_id == NULL)
        return cv_error("out of memory reading lead");
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    bool failed = false;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        lead->found = true;
        lead->owner_id = cv_store_column_dup(stmt, 0, &failed);
        lead->channel = cv_store_column_dup(stmt, 1, &failed);
        lead->lead_json = cv_store_column_dup(stmt, 2, &failed);
        lead->decided = cv_store_column_dup(stmt, 3, &failed);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE || failed)
        return cv_error("cannot read lead '%s': %s", lead_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    if (lead->lead_json == NULL) {
        lead->lead_json = strdup("{}");
        if (lead->lead_json == NULL)
            return cv_error("out of memory reading lead");
    }
    json_error_t error;
    json_t *json = json_loads(lead->lead_json, 0, &error);
    lead->summary = followup_lead_summary(json, lead_id);
    lead->name = rules_json_dup(json, "name");
    lead->message = rules_json_dup(json, "message");
    json_decref(json);
    if (lead->summary == NULL)
        return cv_error("out of memory reading lead");
    return 0;
}

/* Keeps the lead's snapshot `text` (and owner, when `owner` is not NULL).
 * Tasks that refer to the stored snapshot instead of keeping a copy
 * (lead_json '', followup.h) get the old text first when it changes, so
 * each still shows the lead as it was when the task was opened. `tasks`,
 * when not NULL, is the lead's listing in this transaction: when no task
 * in it refers to the snapshot (a new lead), there is nothing to copy. */
static int rules_lead_keep(cv_bus_t *bus, const Conveyor__Lead *lead,
                           const char *owner, const char *text,
                           const followup_task_list_t *tasks, int64_t now)
{
    static const char own_copy_sql[] =
        "UPDATE followup_task SET lead_json = (SELECT l.lead_json FROM"
        " followup_lead l WHERE l.lead_id = ?1) WHERE " FOLLOWUP_TASKS_OF_LEAD
        " AND lead_json = '' AND (SELECT l.lead_json FROM followup_lead l"
        " WHERE l.lead_id = ?1) <> ?2";
    static const char sql[] =
        "INSERT INTO followup_lead (lead_id, owner_id, channel, lead_json,"
        " updated_at) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (lead_id) DO UPDATE SET"
        " owner_id = coalesce(?2, owner_id), channel = ?3, lead_json = ?4,"
        " updated_at = ?5";
    cv_store_t *store = cv_bus_store(bus);
    bool shared = tasks == NULL;
    for (size_t i = 0; tasks != NULL && i < tasks->count; i++)
        shared = shared || tasks->rows[i].shares_lead;
    sqlite3_stmt *stmt;
    if (shared) {
        stmt = cv_store_prepare(store, own_copy_sql);
        if (stmt == NULL)
            return -1;
        cv_store_bind_static(stmt, 1, lead->lead_id);
        cv_store_bind_static(stmt, 2, text);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead->lead_id);
    cv_store_bind_static(stmt, 2, owner);
    cv_store_bind_static(stmt, 3, rules_text(lead->channel));
    cv_store_bind_static(stmt, 4, text);
    sqlite3_bind_int64(stmt, 5, now);
    return cv_store_step_done(stmt);
}

/* rules_lead_keep with the snapshot made from `lead`. */
static int rules_lead_put(cv_bus_t *bus, const Conveyor__Lead *lead,
                          const char *owner)
{
    char *text = NULL;
    char *summary = NULL;
    int rc = -1;
    if (followup_lead_snapshot(lead, &text, &summary) != 0)
        cv_log(CV_LOG_ERROR, "out of memory keeping lead '%s'", lead->lead_id);
    else
        rc = rules_lead_keep(bus, lead, owner, text, NULL, cv_clock_now_ms());
    free(text);
    free(summary);
    return rc;
}

static int rules_lead_set(cv_bus_t *bus, const char *lead_id,
                          const char *column_sql, const char *text,
                          int64_t number)
{
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), column_sql);
    if (stmt == NULL)
        return -1;
    if (text != NULL)
        cv_store_bind_static(stmt, 1, text);
    else
        sqlite3_bind_int64(stmt, 1, number);
    sqlite3_bind_int64(stmt, 2, cv_clock_now_ms());
    cv_store_bind_static(stmt, 3, lead_id);
    return cv_store_step_done(stmt);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* "<lead>-<slug>" for a lead that had `n` tasks of the kind before this
 * one (0: its first), "<lead>-<slug>-N" for the N-th. 0, or CV_BUS_DROP
 * when the lead id is too long for a task id. */
static int rules_task_id_format(const char *lead_id, const char *slug, int n,
                                char *out, size_t size)
{
    size_t lead_len = strlen(lead_id);
    size_t slug_len = strlen(slug);
    int w;
    if (n == 0 && lead_len + 1 + slug_len < size) {
        /* every new lead's first task: no printf for it */
        memcpy(out, lead_id, lead_len);
        out[lead_len] = '-';
        memcpy(out + lead_len + 1, slug, slug_len + 1);
        w = (int)(lead_len + 1 + slug_len);
    } else {
        w = n == 0 ? snprintf(out, size, "%s-%s", lead_id, slug)
                   : snprintf(out, size, "%s-%s-%d", lead_id, slug, n + 1);
    }
    if (w < 0 || (size_t)w >= size) {
        cv_log(CV_LOG_WARN, "lead id '%.64s...' too long for a task id",
               lead_id);
        return CV_BUS_DROP;
    }
    return 0;
}

/* The id of the lead's next task of `kind` (rules_task_id_format). */
static int rules_task_id(cv_bus_t *bus, const char *lead_id, const char *kind,
                         const char *slug, char *out, size_t size)
{
    int n = followup_task_count(bus, lead_id, kind);
    if (n < 0)
        return -1;
    return rules_task_id_format(lead_id, slug, n, out, size);
}

/* Opens a task from a stored lead for `person`. */
static int rules_open(followup_t *self, cv_bus_t *bus,
                      const followup_lead_t *lead,
                      const followup_person_t *person, const char *kind,
                      const char *slug, const char *title, int64_t due_at,
                      const char *stage, bool sla)
{
    char task_id[FOLLOWUP_ID_SIZE];
    int rc = rules_task_id(bus, lead->lead_id, kind, slug, task_id,
                           sizeof(task_id));
    if (rc != 0)
        return rc;
    followup_task_spec_t spec = {
        .task_id = task_id,
        .kind = kind,
        .lead_id = lead->lead_id,
        .lead_json = lead->lead_json,
        .lead_json_is_row = lead->found,
        .summary = lead->summary,
        .person = person,
        .title = title,
        .due_at = due_at,
        .stage = stage,
        .sla = sla,
        .channel = lead->channel,
        .message = lead->message,
    };
    return followup_task_open(self, bus, &spec, NULL);
}

/* The stored lead's client name, or a fallback. */
static const char *rules_who(const followup_lead_t *lead)
{
    return lead->name != NULL ? lead->name : "the client";
}

/* The text of a title, or NULL after logging (out of memory). */
static char *rules_format(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

static char *rules_format(const char *format, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, format);
    int n = vasprintf(&text, format, ap);
    va_end(ap);
    if (n < 0) {
        cv_log(CV_LOG_ERROR, "out of memory writing a task title");
        return NULL;
    }
    return text;
}

/* The on-duty person who works at `now`, from config on_duty_pool, into
 * *duty; *found false when none does. */
static int rules_on_duty(followup_t *self, cv_bus_t *bus, int64_t now,
                         followup_person_t *duty, bool *found)
{
    *found = false;
    const char *p = self->on_duty;
    while (*p != '\0') {
        size_t skip = strspn(p, ", ");
        p += skip;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        char id[128];
        if (n < sizeof(id)) {
            memcpy(id, p, n);
            id[n] = '\0';
            followup_person_t person;
            if (followup_staff_get(self, bus, id, &person) != 0)
                return -1;
            if (person.known && person.active &&
                followup_person_open(self, &person, now)) {
                *duty = person;
                *found = true;
                return 0;
            }
            followup_person_clear(&person);
        }
        p += n;
    }
    return 0;
}

/* A date ("2027-03-01", the start of that day in the person's zone) or an
 * RFC 3339 time, as ms; -1 when `text` is neither. */
static int64_t rules_until(const followup_person_t *person, const char *text)
{
    int y = 0;
    int m = 0;
    int d = 0;
    char extra = 0;
    if (text == NULL)
        return -1;
    if (strlen(text) == 10 &&
        sscanf(text, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = m - 1;
        tm.tm_mday = d;
        int64_t at = cv_tz_from_local(person->tz, &tm);
        return at == INT64_MIN ? -1 : at;
    }
    int64_t at = 0;
    return cv_clock_parse(text, &at) == 0 ? at : -1;
}

/* ------------------------------------------------------------------ */
/* Assignment                                                          */

static bool rules_is(const char *value, const char *want)
{
    return value != NULL && strcmp(value, want) == 0;
}

/* The tasks routing hands out beside (or instead of) the owner's first
 * contact: the head's review and the rejection of a segment, the working
 * group of a VIP lead, the head's manual assignment. */
typedef struct {
    const char *kind;       /* LeadAssigned.task_kind */
    const char *id_suffix;  /* the task id: <lead>-<suffix>[-<staff>] */
    bool per_person;        /* several people get one each (the group) */
    bool replaces_first;    /* closes the first contact and its SLA */
    const char *title;      /* printf format, %s: the client */
} rules_side_task_t;

static const rules_side_task_t rules_side_tasks[] = {
    {FOLLOWUP_KIND_VIP_REVIEW, "vip-review", false, false,
     "Review segment A lead %s: approve the proposal before it goes out "
     "and bring in the working group (analyst, marketer, team lead)"},
    {FOLLOWUP_KIND_SEND_REJECTION, "send-rejection", false, true,
     "Send %s a polite rejection explaining why, with a referral to a "
     "partner agency"},
    {FOLLOWUP_KIND_WORKING_GROUP, "working-group", true, false,
     "Join the working group on VIP lead %s: your part of the full "
     "package (analysis, marketing, delivery plan)"},
    {FOLLOWUP_KIND_MANUAL_ASSIGN, "manual-assign", false, false,
     "Assign lead %s by hand: no rule places it"},
};

static const rules_side_task_t *rules_side_task(const char *kind)
{
    for (size_t i = 0;
         i < sizeof(rules_side_tasks) / sizeof(rules_side_tasks[0]); i++)
        if (rules_is(kind, rules_side_tasks[i].kind))
            return &rules_side_tasks[i];
    return NULL;
}

/* Opens one of rules_side_tasks for the assigned person. */
static int rules_segment_task(followup_t *self, cv_bus_t *bus,
                              const Conveyor__LeadAssigned *assigned,
                              const rules_side_task_t *side)
{
    const Conveyor__Lead *lead = assigned->lead;
    const char *who = rules_text(lead->name) ? lead->name : "the client";
    followup_person_t person;
    memset(&person, 0, sizeof(person));
    char *text = NULL;
    char *summary = NULL;
    char *title = NULL;
    char task_id[FOLLOWUP_ID_SIZE];
    int rc = -1;
    if (followup_lead_snapshot(lead, &text, &summary) != 0)
        goto oom;
    /* a reviewer joins the lead; anyone else (the junior who sends the
     * rejection) becomes its owner */
    if (rules_lead_keep(bus, lead,
                        rules_is(assigned->role, "reviewer")
                            ? NULL
                            : assigned->staff_id,
                        text, NULL, cv_clock_now_ms()) != 0 ||
        followup_staff_get(self, bus, assigned->staff_id, &person) != 0)
        goto out;
    int n = side->per_person
                ? snprintf(task_id, sizeof(task_id), "%s-%s-%s",
                           lead->lead_id, side->id_suffix, assigned->staff_id)
                : snprintf(task_id, sizeof(task_id), "%s-%s", lead->lead_id,
                           side->id_suffix);
    if (n < 0 || (size_t)n >= sizeof(task_id)) {
        rc = CV_BUS_DROP;
        goto out;
    }
    title = rules_format(side->title, who);
    if (title == NULL)
        goto out;
    /* the rejection replaces the first contact: its SLA no longer runs */
    if (side->replaces_first &&
        (followup_task_close_kinds(self, bus, lead->lead_id, rules_first_kinds,
                                   NULL, "segment_c", false, NULL) != 0 ||
         followup_timer_cancel_lead(self, bus, lead->lead_id,
                                    FOLLOWUP_TIMER_FIRST_CONTACT,
                                    "segment_c") != 0))
        goto out;
    int64_t now = cv_clock_now_ms();
    followup_task_spec_t spec = {
        .task_id = task_id,
        .kind = side->kind,
        .lead_id = lead->lead_id,
        .lead_json = text,
        .lead_json_is_row = true, /* kept above */
        .summary = summary,
        .person = &person,
        .notify = assigned->notify,
        .title = title,
        .due_at = followup_after_working_minutes(
            self, &person, now, (int64_t)self->delays.segment_task_hours * 60),
        .sla = true,
        .channel = lead->channel,
        .message = lead->message,
    };
    rc = followup_task_open(self, bus, &spec, NULL);
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory opening a segment task");
out:
    free(title);
    free(text);
    free(summary);
    followup_person_clear(&person);
    return rc;
}

int followup_on_assigned(followup_t *self, cv_bus_t *bus,
                         const Conveyor__LeadAssigned *assigned)
{
    const Conveyor__Lead *lead = assigned->lead;
    if (rules_text(assigned->staff_id) == NULL ||
        rules_text(lead->lead_id) == NULL) {
        cv_log(CV_LOG_WARN, "assignment without a lead id or staff id, "
                            "dropped");
        return CV_BUS_DROP;
    }
    const rules_side_task_t *side = rules_side_task(assigned->task_kind);
    if (side != NULL)
        return rules_segment_task(self, bus, assigned, side);
    if (rules_is(assigned->role, "reviewer")) {
        cv_log(CV_LOG_DEBUG, "'%s' joins '%s' as a reviewer: no task",
               assigned->staff_id, lead->lead_id);
        return 0;
    }
    const char *owner = assigned->staff_id;
    char reason[200];
    /* the offer to a pool, and the head's task to assign by hand */
    static const char *const claim_kinds[] = {
        FOLLOWUP_KIND_CLAIM_OFFER, FOLLOWUP_KIND_MANUAL_ASSIGN, NULL};
    bool call_back = lead->has_call_back && lead->call_back;
    bool cold = rules_is(lead->channel, "cold");
    const char *kind = call_back ? FOLLOWUP_KIND_CALL_BACK
                       : cold    ? FOLLOWUP_KIND_COLD_CALL
                                 : FOLLOWUP_KIND_FIRST_CONTACT;
    const char *slug = call_back ? "call-back"
                       : cold    ? "cold-call"
                                 : "first-contact";
    followup_task_list_t tasks;
    followup_person_t person;
    followup_person_t duty;
    memset(&tasks, 0, sizeof(tasks));
    memset(&person, 0, sizeof(person));
    memset(&duty, 0, sizeof(duty));
    bool on_duty = false;
    char *text = NULL;
    char *summary = NULL;
    char *title = NULL;
    char *full_title = NULL;
    char task_id[FOLLOWUP_ID_SIZE];
    int rc = -1;
    /* one clock reading serves the whole assignment (the lead row, the
     * task's created_at, its due time) */
    int64_t now = cv_clock_now_ms();
    if (followup_lead_snapshot(lead, &text, &summary) != 0)
        goto oom;
    /* the lead has its owner: the pool's offer is over, and an earlier
     * owner's first contact passes to the new one with a fresh SLA; one
     * listing of the lead's tasks answers every question below (a new
     * lead has none) */
    if (followup_task_list(bus, lead->lead_id, &tasks) != 0 ||
        rules_lead_keep(bus, lead, owner, text, &tasks, now) != 0)
        goto out;
    if (tasks.count > 0) {
        snprintf(reason, sizeof(reason), "reassigned to %s", owner);
        if (followup_task_close_listed(self, bus, &tasks, lead->lead_id,
                                       claim_kinds, NULL, "assigned", false,
                                       NULL) != 0 ||
            followup_task_close_listed(self, bus, &tasks, lead->lead_id,
                                       rules_first_kinds, owner, reason, true,
                                       NULL) != 0)
            goto out;
    }
    if (followup_task_list_has_open(&tasks, rules_first_kinds, owner)) {
        rc = 0; /* this owner has it already */
        goto out;
    }
    if (followup_staff_get(self, bus, owner, &person) != 0)
        goto out;
    if (rules_task_id_format(lead->lead_id, slug,
                             followup_task_list_count(&tasks, kind), task_id,
                             sizeof(task_id)) != 0) {
        rc = CV_BUS_DROP;
        goto out;
    }
    const followup_person_t *doer = &person;
    const Conveyor__NotifyTarget *notify = assigned->notify;
    /* off shift: the on-duty pool, when there is one, takes the contact */
    if (!cold && !followup_person_open(self, &person, now) &&
        self->on_duty[0] != '\0') {
        if (rules_on_duty(self, bus, now, &duty, &on_duty) != 0)
            goto out;
        if (on_duty) {
            doer = &duty;
            notify = NULL;
        }
    }
    int64_t due_at;
    const char *who = rules_text(lead->name) ? lead->name : "the client";
    if (call_back) {
        /* a missed call is urgent: on shift, wall-clock minutes (even past
         * the shift's end); off shift, from the start of the next one */
        int64_t minutes = self->delays.call_back_minutes;
        due_at = followup_person_open(self, doer, now)
                     ? now + minutes * 60000
                     : followup_after_working_minutes(self, doer, now,
                                                      minutes);
        title = rules_format("Missed call: call back %s%s%s", who,
                             rules_text(lead->phone) ? " at " : "",
                             rules_text(lead->phone) ? lead->phone : "");
    } else if (cold) {
        /* an imported cold lead: no inbound SLA; by the end of the owner's
         * next business day */
        int64_t next = followup_after_business_days(self, doer, now, 1);
        due_at = cv_workhours_day_end(&doer->hours, doer->tz, self->calendar,
                                      doer->team, next);
        if (due_at == INT64_MAX)
            due_at = next;
        title = rules_format("Cold call %s%s%s: introduce us, find the "
                             "decision maker and whether they have a need",
                             who, rules_text(lead->phone) ? " at " : "",
                             rules_text(lead->phone) ? lead->phone : "");
    } else {
        due_at = followup_after_working_minutes(
            self, doer, now, self->delays.first_contact_minutes);
        title = followup_first_contact_title(lead->channel, lead->name);
    }
    if (title == NULL)
        goto oom;
    const char *shown = title;
    if (on_duty) {
        full_title = rules_format("On duty for %s (off shift): %s",
                                  person.name != NULL ? person.name : owner,
                                  title);
        if (full_title == NULL)
            goto out;
        shown = full_title;
    }
    followup_task_spec_t spec = {
        .task_id = task_id,
        .kind = kind,
        .lead_id = lead->lead_id,
        .lead_json = text,
        .lead_json_is_row = true, /* kept above */
        .summary = summary,
        .person = doer,
        .notify = notify,
        .title = shown,
        .due_at = due_at,
        .now = now,
        .sla = !cold,
        .channel = lead->channel,
        .message = lead->message,
    };
    rc = followup_task_open(self, bus, &spec, NULL);
    goto out;
oom:
    cv_log(CV_LOG_ERROR, "out of memory opening a task for '%s'",
           lead->lead_id);
out:
    free(full_title);
    free(title);
    free(text);
    free(summary);
    followup_task_list_clear(&tasks);
    followup_person_clear(&duty);
    followup_person_clear(&person);
    return rc;
}

/* ------------------------------------------------------------------ */
/* First-come offers and merged missed calls                          */

int followup_on_offered(followup_t *self, cv_bus_t *bus,
                        const Conveyor__LeadOffered *offered)
{
    if (rules_text(offered->lead_id) == NULL)
        return CV_BUS_DROP;
    if (offered->lead != NULL && rules_lead_put(bus, offered->lead, NULL) != 0)
        return -1;
    followup_lead_t lead;
    char *title = NULL;
    int rc = -1;
    if (followup_lead_get(bus, offered->lead_id, &lead) != 0)
        goto out;
    int64_t now = cv_clock_now_ms();
    int64_t due_at = offered->has_expires_at && offered->expires_at > now
                         ? offered->expires_at
                         : now + (int64_t)(self->config != NULL
                                               ? self->config->first_come_minutes
                                               : 15) *
                                     60000;
    title = rules_format("Claim %s first: the lead is offered to %zu people "
                         "and the first claim in the console wins",
                         rules_who(&lead), offered->n_staff_ids);
    if (title == NULL)
        goto out;
    for (size_t i = 0; i < offered->n_staff_ids; i++) {
        followup_person_t person;
        char task_id[FOLLOWUP_ID_SIZE];
        if ((size_t)snprintf(task_id, sizeof(task_id), "%s-claim-%s",
                             offered->lead_id, offered->staff_ids[i]) >=
            sizeof(task_id))
            continue;
        if (followup_staff_get(self, bus, offered->staff_ids[i], &person) != 0)
            goto out;
        followup_task_spec_t spec = {
            .task_id = task_id,
            .kind = FOLLOWUP_KIND_CLAIM_OFFER,
            .lead_id = offered->lead_id,
            .lead_json = lead.lead_json,
            .lead_json_is_row = lead.found,
            .summary = lead.summary,
            .person = &person,
            .title = title,
            .due_at = due_at,
            .channel = lead.channel,
            .message = lead.message,
        };
        int ok = followup_task_open(self, bus, &spec, NULL);
        followup_person_clear(&person);
        if (ok != 0)
            goto out;
    }
    rc = 0;
out:
    free(title);
    followup_lead_clear(&lead);
    return rc;
}

int followup_on_received(followup_t *self, cv_bus_t *bus,
                         const Conveyor__Envelope *event)
{
    const Conveyor__LeadReceived *received = event->lead_received;
    const Conveyor__Lead *in = received->lead;
    if (in == NULL || rules_text(in->lead_id) == NULL)
        return CV_BUS_DROP;
    if (!received->merged || !in->has_call_back || !in->call_back) {
        cv_log(CV_LOG_DEBUG, "lead '%s' received: nothing for the scheduler "
                             "until it is assigned", in->lead_id);
        return CV_BUS_DROP;
    }
    followup_lead_t lead;
    followup_person_t person;
    memset(&person, 0, sizeof(person));
    char *title = NULL;
    int rc = -1;
    if (rules_lead_put(bus, in, NULL) != 0 ||
        followup_lead_get(bus, in->lead_id, &lead) != 0)
        goto out;
    if (lead.owner_id == NULL) {
        /* not assigned yet: routing's LeadAssigned will carry call_back */
        cv_log(CV_LOG_INFO, "missed call merged into '%s', which has no "
                            "owner yet", in->lead_id);
        rc = 0;
        goto out;
    }
    if (followup_staff_get(self, bus, lead.owner_id, &person) != 0)
        goto out;
    int64_t now = cv_clock_now_ms();
    int64_t minutes = self->delays.call_back_minutes;
    int64_t due_at = followup_person_open(self, &person, now)
                         ? now + minutes * 60000
                         : followup_after_working_minutes(self, &person, now,
                                                          minutes);
    title = rules_format("Missed call: call back %s%s%s (called again)",
                         rules_who(&lead), rules_text(in->phone) ? " at " : "",
                         rules_text(in->phone) ? in->phone : "");
    if (title == NULL)
        goto out;
    rc = rules_open(self, bus, &lead, &person, FOLLOWUP_KIND_CALL_BACK,
                    "call-back", title, due_at, NULL, true);
out:
    free(title);
    followup_person_clear(&person);
    followup_lead_clear(&lead);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Activities                                                          */

/* What each activity type satisfies. */
static const struct {
    const char *type;              /* activity type */
    const char *const closes[8];   /* task kinds it closes */
    bool contact;                  /* the first contact happened */
} rules_activities[] = {
    {"call",
     {FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
      FOLLOWUP_KIND_COLD_CALL, FOLLOWUP_KIND_PING, NULL},
     true},
    {"meeting",
     {FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
      FOLLOWUP_KIND_COLD_CALL, FOLLOWUP_KIND_PING,
      FOLLOWUP_KIND_BOOK_PRESENTATION, FOLLOWUP_KIND_FIND_DM, NULL},
     true},
    {"interview",
     {FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
      FOLLOWUP_KIND_COLD_CALL, FOLLOWUP_KIND_FIND_DM, NULL},
     true},
    {"proposal_presented",
     {FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
      FOLLOWUP_KIND_COLD_CALL, FOLLOWUP_KIND_PING, FOLLOWUP_KIND_PUSH,
      FOLLOWUP_KIND_BOOK_PRESENTATION, NULL},
     true},
    {"proposal_sent",
     {FOLLOWUP_KIND_FIRST_CONTACT, FOLLOWUP_KIND_CALL_BACK,
      FOLLOWUP_KIND_COLD_CALL, FOLLOWUP_KIND_PING, FOLLOWUP_KIND_PUSH, NULL},
     true},
};

/* A proposal presented or sent: a ping task now-ish and the no-decision
 * timer; an earlier proposal's timer is replaced. */
static int rules_proposal(followup_t *self, cv_bus_t *bus,
                          const followup_lead_t *lead,
                          const followup_person_t *owner, const char *type)
{
    int64_t now = cv_clock_now_ms();
    char *title = NULL;
    int rc = -1;
    char timer_id[FOLLOWUP_ID_SIZE + 16];
    char ping_id[FOLLOWUP_ID_SIZE];
    bool presented = strcmp(type, "proposal_presented") == 0;
    if (followup_timer_cancel_lead(self, bus, lead->lead_id,
                                   FOLLOWUP_TIMER_NO_DECISION,
                                   "new_proposal") != 0 ||
        rules_lead_set(bus, lead->lead_id,
                       "UPDATE followup_lead SET proposal_at = ?1,"
                       " updated_at = ?2 WHERE lead_id = ?3",
                       NULL, now) != 0)
        goto out;
    title = rules_format("Ping %s about the proposal %s: did it answer "
                         "their questions, who else decides, and when will "
                         "they decide?",
                         rules_who(lead), presented ? "you presented"
                                                    : "you sent");
    if (title == NULL)
        goto out;
    rc = rules_task_id(bus, lead->lead_id, FOLLOWUP_KIND_PING, "ping",
                       ping_id, sizeof(ping_id));
    if (rc != 0)
        goto out;
    rc = -1;
    int64_t due = followup_after_business_days(
        self, owner, now, self->delays.ping_business_days);
    followup_task_spec_t spec = {
        .task_id = ping_id,
        .kind = FOLLOWUP_KIND_PING,
        .lead_id = lead->lead_id,
        .lead_json = lead->lead_json,
        .lead_json_is_row = lead->found,
        .summary = lead->summary,
        .person = owner,
        .title = title,
        .due_at = due,
        .channel = lead->channel,
        .message = lead->message,
    };
    snprintf(timer_id, sizeof(timer_id), "tmr-%s-no-decision", ping_id);
    if (followup_task_open(self, bus, &spec, NULL) != 0 ||
        followup_timer_insert(self, bus, timer_id, ping_id, lead->lead_id,
                              FOLLOWUP_TIMER_NO_DECISION, 1, owner->staff_id,
                              now + (int64_t)self->delays.no_decision_days *
                                        RULES_DAY_MS) != 0)
        goto out;
    rc = 0;
out:
    free(title);
    return rc;
}

/* The staff id who owns the lead: the row's, else the event's. */
static const char *rules_owner_of(const followup_lead_t *lead,
                                  const char *owner_id, const char *actor)
{
    if (lead->owner_id != NULL)
        return lead->owner_id;
    if (rules_text(owner_id) != NULL)
        return owner_id;
    return rules_text(actor);
}

int followup_on_activity(followup_t *self, cv_bus_t *bus,
                         const Conveyor__ActivityRecorded *activity)
{
    size_t which = sizeof(rules_activities) / sizeof(rules_activities[0]);
    for (size_t i = 0; i < which; i++) {
        if (rules_is(activity->type, rules_activities[i].type)) {
            which = i;
            break;
        }
    }
    if (which == sizeof(rules_activities) / sizeof(rules_activities[0])) {
        cv_log(CV_LOG_DEBUG, "activity '%s' of type '%s' leaves tasks as "
                             "they are", activity->activity_id,
               activity->type);
        return 0;
    }
    followup_lead_t lead;
    followup_person_t owner;
    memset(&owner, 0, sizeof(owner));
    int rc = -1;
    char reason[64];
    snprintf(reason, sizeof(reason), "activity_%s", activity->type);
    if (activity->lead != NULL && rules_text(activity->lead->lead_id) != NULL &&
        rules_lead_put(bus, activity->lead, rules_text(activity->owner_id)) !=
            0)
        goto out;
    if (followup_lead_get(bus, activity->lead_id, &lead) != 0 ||
        followup_task_close_kinds(self, bus, activity->lead_id,
                                  rules_activities[which].closes, NULL, reason,
                                  false, NULL) != 0)
        goto out;
    /* a contact ends every first-contact ladder of the lead, also the
     * head-of-sales step kept across a re-assignment */
    if (rules_activities[which].contact &&
        (followup_timer_cancel_lead(self, bus, activity->lead_id,
                                    FOLLOWUP_TIMER_FIRST_CONTACT, reason) !=
             0 ||
         followup_timer_cancel_lead(self, bus, activity->lead_id,
                                    "sla_call_back", reason) != 0))
        goto out;
    if (strncmp(activity->type, "proposal_", 9) == 0) {
        const char *owner_id =
            rules_owner_of(&lead, activity->owner_id, activity->actor);
        if (owner_id == NULL) {
            cv_log(CV_LOG_WARN, "proposal on '%s' with no owner: no ping task",
                   activity->lead_id);
            rc = 0;
            goto out;
        }
        if (followup_staff_get(self, bus, owner_id, &owner) != 0 ||
            rules_proposal(self, bus, &lead, &owner, activity->type) != 0)
            goto out;
    }
    rc = 0;
out:
    followup_person_clear(&owner);
    followup_lead_clear(&lead);
    return rc;
}

int followup_rules_no_decision(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *timer_id,
                               int64_t due_at, int64_t now)
{
    (void)due_at;
    followup_lead_t lead;
    followup_person_t owner;
    memset(&owner, 0, sizeof(owner));
    char *title = NULL;
    int rc = -1;
    if (followup_lead_get(bus, lead_id, &lead) != 0)
        goto out;
    if (lead.decided != NULL || lead.owner_id == NULL) {
        cv_log(CV_LOG_INFO, "timer '%s': '%s' is %s, no push", timer_id,
               lead_id, lead.decided != NULL ? lead.decided : "unowned");
        rc = 0;
        goto out;
    }
    static const char *const ping[] = {FOLLOWUP_KIND_PING, NULL};
    title = rules_format("Push %s for a decision: no answer %d days after the "
                         "proposal. Call, handle the objections and agree "
                         "the next step",
                         rules_who(&lead), self->delays.no_decision_days);
    if (title == NULL ||
        followup_staff_get(self, bus, lead.owner_id, &owner) != 0 ||
        followup_task_close_kinds(self, bus, lead_id, ping, NULL,
                                  "no_decision", false, NULL) != 0)
        goto out;
    rc = rules_open(self, bus, &lead, &owner, FOLLOWUP_KIND_PUSH, "push",
                    title,
                    followup_after_business_days(
                        self, &owner, now, self->delays.push_business_days),
                    "negotiation", false);
out:
    free(title);
    followup_person_clear(&owner);
    followup_lead_clear(&lead);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Decisions                                                           */

/* A lost lead's next step by its reason. */
static int rules_lost(followup_t *self, cv_bus_t *bus,
                      const followup_lead_t *lead,
                      const followup_person_t *owner,
                      const Conveyor__DecisionRecorded *decision)
{
    const char *reason = rules_text(decision->reason);
    const char *who = rules_who(lead);
    int64_t now = cv_clock_now_ms();
    int64_t until = rules_until(owner, rules_text(decision->until));
    int64_t next_day = followup_after_business_days(
        self, owner, now, self->delays.next_step_business_days);
    char until_text[96] = "";
    if (until >= 0)
        followup_format_local(owner, until, until_text, sizeof(until_text));
    char *title = NULL;
    char *title2 = NULL;
    int rc = -1;
    if (reason == NULL) {
        cv_log(CV_LOG_INFO, "'%s' lost without a reason: no next step",
               lead->lead_id);
        return 0;
    }
    if (strcmp(reason, "postponed") == 0) {
        int64_t due = until >= 0 ? until
                                 : now + (int64_t)self->delays
                                                 .postponed_default_days *
                                             RULES_DAY_MS;
        due = cv_workhours_next_open(&owner->hours, owner->tz,
                                     self->calendar, owner->team, due);
        title = rules_format("Check back with %s as agreed: find out why "
                             "they postponed and what changed, and offer a "
                             "smaller start (an MVP, a specification, an "
                             "analytics phase)",
                             who);
        if (title != NULL)
            rc = rules_open(self, bus, lead, owner, FOLLOWUP_KIND_CHECK_BACK,
                            "check-back", title, due, NULL, false);
    } else if (strcmp(reason, "waiting_decision") == 0) {
        title = rules_format("Find the person whose decision %s waits for, "
                             "make them the decision maker and hold the "
                             "interview again with them",
                             who);
        if (title != NULL)
            rc = rules_open(self, bus, lead, owner, FOLLOWUP_KIND_FIND_DM,
                            "find-dm", title, next_day, "qualified", false);
    } else if (strcmp(reason, "no_time") == 0) {
        title = rules_format("Book a presentation with %s: they had no time "
                             "to study the proposal, so walk them through it "
                             "in 30 minutes",
                             who);
        if (title != NULL)
            rc = rules_open(self, bus, lead, owner,
                            FOLLOWUP_KIND_BOOK_PRESENTATION,
                            "book-presentation", title, next_day, NULL, false);
    } else if (strcmp(reason, "chose_competitor") == 0) {
        int64_t back =
            until >= 0
                ? until - (int64_t)self->delays.return_before_days *
                              RULES_DAY_MS
                : now + (int64_t)self->delays.return_default_days *
                            RULES_DAY_MS;
        if (back < next_day)
            back = next_day;
        back = cv_workhours_next_open(&owner->hours, owner->tz,
                                      self->calendar, owner->team, back);
        title = rules_format("Debrief with %s: how close were we, and what "
                             "decided it for the other agency?",
                             who);
        title2 = rules_format(
            "Come back to %s%s%s: most projects run late, offer help before "
            "theirs with the competitor ends",
            who, until >= 0 ? ", their project ends " : "", until_text);
        if (title != NULL && title2 != NULL &&
            rules_open(self, bus, lead, owner, FOLLOWUP_KIND_DEBRIEF,
                       "debrief", title,
                       followup_after_working_minutes(
                           self, owner, now, self->delays.debrief_minutes),
                       NULL, false) == 0)
            rc = rules_open(self, bus, lead, owner, FOLLOWUP_KIND_RETURN,
                            "return", title2, back, NULL, false);
    } else if (strcmp(reason, "still_choosing") == 0) {
        title = rules_format("Ask %s direct questions: what would make you "
                             "choose us, and what is missing from our "
                             "proposal?",
                             who);
        if (title != NULL)
            rc = rules_open(self, bus, lead, owner,
                            FOLLOWUP_KIND_DIRECT_QUESTIONS, "direct-questions",
                            title, next_day, NULL, false);
    } else {
        cv_log(CV_LOG_INFO, "'%s' lost for '%s': no rule for that reason",
               lead->lead_id, reason);
        rc = 0;
    }
    free(title);
    free(title2);
    return rc;
}

int followup_on_decision(followup_t *self, cv_bus_t *bus,
                         const Conveyor__DecisionRecorded *decision)
{
    followup_lead_t lead;
    followup_person_t owner;
    memset(&owner, 0, sizeof(owner));
    int rc = -1;
    char reason[64];
    snprintf(reason, sizeof(reason), "decision_%s", decision->result);
    if (decision->lead != NULL && rules_text(decision->lead->lead_id) != NULL &&
        rules_lead_put(bus, decision->lead, rules_text(decision->owner_id)) !=
            0)
        goto out;
    /* the decision ends everything that was open about the lead */
    if (rules_lead_set(bus, decision->lead_id,
                       "UPDATE followup_lead SET decided = ?1,"
                       " updated_at = ?2 WHERE lead_id = ?3",
                       decision->result, 0) != 0 ||
        followup_task_close_kinds(self, bus, decision->lead_id, NULL, NULL,
                                  reason, false, NULL) != 0 ||
        followup_timer_cancel_lead(self, bus, decision->lead_id, NULL,
                                   reason) != 0 ||
        followup_lead_get(bus, decision->lead_id, &lead) != 0)
        goto out;
    if (!rules_is(decision->result, "lost")) {
        rc = 0;
        goto out;
    }
    const char *owner_id =
        rules_owner_of(&lead, decision->owner_id, decision->actor);
    if (owner_id == NULL) {
        cv_log(CV_LOG_WARN, "'%s' lost with no owner: no next step",
               decision->lead_id);
        rc = 0;
        goto out;
    }
    if (followup_staff_get(self, bus, owner_id, &owner) != 0)
        goto out;
    rc = rules_lost(self, bus, &lead, &owner, decision);
out:
    followup_person_clear(&owner);
    followup_lead_clear(&lead);
    return rc;
}

int followup_on_scored(followup_t *self, cv_bus_t *bus,
                       const Conveyor__LeadScored *scored)
{
    if (scored->lead == NULL || scored->lead->lead_id == NULL ||
        scored->score == NULL)
        return CV_BUS_DROP;
    if (!scored->score->has_knocked_out || !scored->score->knocked_out)
        return 0;
    /* knocked out on a re-score: rejected, so nothing about it is due */
    if (followup_task_close_kinds(self, bus, scored->lead->lead_id, NULL, NULL,
                                  "knocked_out", false, NULL) != 0)
        return -1;
    return followup_timer_cancel_lead(self, bus, scored->lead->lead_id, NULL,
                                      "knocked_out");
}

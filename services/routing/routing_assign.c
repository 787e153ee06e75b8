/* routing_assign: rule traces, the assignment of a lead to a person, the
 * events that tell the others, and the leads routing keeps. */
#include "routing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_jsonw.h"
#include "cv_log.h"

void routing_trace_reset(routing_trace_t *trace)
{
    trace->length = 0;
    trace->text[0] = '\0';
}

/* Marks a full trace: it ends in "...". */
static void trace_full(routing_trace_t *trace)
{
    trace->length = sizeof(trace->text) - 1;
    memcpy(trace->text + trace->length - 3, "...", 4);
}

void routing_trace_add(routing_trace_t *trace, const char *fmt, ...)
{
    size_t room = sizeof(trace->text) - trace->length;
    if (room <= 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(trace->text + trace->length, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        trace_full(trace);
        return;
    }
    trace->length += (size_t)n;
}

void routing_trace_put(routing_trace_t *trace, const char *text)
{
    size_t room = sizeof(trace->text) - trace->length;
    if (room <= 1)
        return;
    if (text == NULL)
        text = "(null)"; /* as glibc's printf writes it */
    size_t n = strlen(text);
    if (n >= room) {
        memcpy(trace->text + trace->length, text, room - 1);
        trace_full(trace);
        return;
    }
    memcpy(trace->text + trace->length, text, n + 1);
    trace->length += n;
}

void routing_trace_int(routing_trace_t *trace, long long value)
{
    char text[CV_JSONW_INT_SIZE];
    cv_jsonw_format_int(text, value);
    routing_trace_put(trace, text);
}

int routing_owner(cv_store_t *store, const char *lead_id, char *owner,
                  size_t size)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT staff_id FROM assignments WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return 0;
    if (owner != NULL)
        cv_store_column_copy(stmt, 0, owner, size);
    sqlite3_reset(stmt);
    return 1;
}

static int store_assignment(cv_store_t *store, const char *lead_id,
                            const char *staff_id, const routing_join_t *join,
                            const Conveyor__Score *score, const char *trace,
                            int64_t now_ms)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO assignments (lead_id, staff_id, tier, strategy,"
               " rule_trace, segment, total, assigned_at, rule)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (lead_id) DO UPDATE SET"
               " staff_id = excluded.staff_id, tier = excluded.tier,"
               " strategy = excluded.strategy,"
               " rule_trace = excluded.rule_trace,"
               " segment = excluded.segment, total = excluded.total,"
               " assigned_at = excluded.assigned_at, rule = excluded.rule,"
               " closed_at = NULL");
    if (stmt == NULL)
        return -1;
    /* every text outlives the step: bound without copies */
    cv_store_bind_static(stmt, 1, lead_id);
    cv_store_bind_static(stmt, 2, staff_id);
    sqlite3_bind_int(stmt, 3, join->tier);
    cv_store_bind_static(stmt, 4, join->strategy);
    cv_store_bind_static(stmt, 5, trace);
    cv_store_bind_static(stmt, 6, score ? score->segment : NULL);
    if (score != NULL)
        sqlite3_bind_int(stmt, 7, score->total);
    else
        sqlite3_bind_null(stmt, 7);
    sqlite3_bind_int64(stmt, 8, now_ms);
    cv_store_bind_static(stmt, 9, join->rule);
    return cv_store_step_done(stmt);
}

int routing_emit_assigned(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const routing_member_t *m, const routing_join_t *join,
                          const char *trace)
{
    Conveyor__NotifyTarget notify = CONVEYOR__NOTIFY_TARGET__INIT;
    notify.webhook_url = m->webhook_url;
    notify.telegram_chat_id = m->telegram_chat_id;
    notify.slack_webhook_url = m->slack_webhook_url;
    notify.email = m->email;
    Conveyor__LeadAssigned assigned = CONVEYOR__LEAD_ASSIGNED__INIT;
    assigned.lead = scored->lead;
    assigned.staff_id = m->staff_id;
    assigned.staff_name = m->name;
    assigned.notify = &notify;
    assigned.strategy = (char *)join->strategy;
    assigned.rule_trace = (char *)trace;
    if (join->tier > 0) {
        assigned.has_tier = true;
        assigned.tier = join->tier;
    }
    assigned.score = scored->score;
    assigned.role = (char *)join->role;
    assigned.task_kind = (char *)join->task_kind;
    /* The score (field 8, ~1.3 KB of params) as the bytes it arrived in
     * instead of checking, sizing and packing its ~80 fields again (~20k
     * instructions per lead): lent to protobuf-c as an unknown field,
     * which it copies as is after the known fields. That is where field 8
     * goes anyway when role (9) and task_kind (10) are unset, as for every
     * owner placed from a LeadScored being handled (join->arrived, found
     * once per lead by routing_handler.c's arrived_find), so the bytes
     * are the same (protobuf-c packs a message the same alone or nested).
     * Any other case packs the unpacked score as before. */
    ProtobufCMessageUnknownField raw_score;
    if (join->role == NULL && join->task_kind == NULL &&
        join->arrived != NULL && join->arrived->score != NULL) {
        assigned.score = NULL; /* else packed as well */
        cv_event_lend_field(&assigned.base, &raw_score,
                            8 /* LeadAssigned.score */, join->arrived->score,
                            join->arrived->score_size);
    }
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED;
    env.lead_assigned = &assigned;
    return cv_bus_emit(bus, &env, "followup-scheduler", "console", NULL);
}

int routing_give(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                 const routing_member_t *m, const routing_join_t *join,
                 const char *trace)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    int64_t now = cv_clock_now_ms();
    if (store_assignment(store, lead_id, m->staff_id, join, scored->score,
                         trace, now) != 0 ||
        cv_routing_rr_day_add(store, m->staff_id, m->avail.day) != 0 ||
        (!join->no_offer &&
         routing_offer_close(store, lead_id, "assigned") != 0) ||
        routing_emit_assigned(bus, scored, m, join, trace) != 0)
        return -1;
    cv_log_info("lead '%s' assigned to '%s' by %s: %s", lead_id, m->staff_id,
                join->strategy, trace);
    return 0;
}

const uint8_t *routing_lead_bytes(const routing_arrived_t *arrived,
                                  const Conveyor__LeadScored *scored,
                                  uint8_t *local, size_t local_size,
                                  size_t *size, uint8_t **owned)
{
    *owned = NULL;
    if (arrived != NULL) {
        *size = arrived->lead_scored_size;
        return arrived->lead_scored;
    }
    /* a lead read back from the tables, or an envelope the scanner does
     * not take (it parsed, so this is rare): pack it */
    /* (pack_to_buffer, which does not size the message first, measured
     * 70% slower here: a call per field) */
    *size = conveyor__lead_scored__get_packed_size(scored);
    uint8_t *payload = *size <= local_size ? local : malloc(*size ? *size : 1);
    if (payload == NULL) {
        cv_error("cannot keep lead '%s': out of memory",
                 scored->lead->lead_id);
        return NULL;
    }
    conveyor__lead_scored__pack(scored, payload);
    if (payload != local)
        *owned = payload;
    return payload;
}

/* Runs `sql`, an INSERT INTO leads (lead_id, lead_scored, updated_at),
 * for `scored`, kept from the bytes it arrived in when `arrived` has them
 * (routing_lead_bytes). *changed (may be NULL): whether a row was
 * written. */
static int lead_write(cv_store_t *store, const Conveyor__LeadScored *scored,
                      const routing_arrived_t *arrived, const char *sql,
                      bool *changed)
{
    uint8_t local[4096];
    size_t size = 0;
    uint8_t *owned = NULL;
    const uint8_t *payload = routing_lead_bytes(arrived, scored, local,
                                                sizeof(local), &size, &owned);
    if (payload == NULL)
        return -1;
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        goto out;
    cv_store_bind_static(stmt, 1, scored->lead->lead_id);
    sqlite3_bind_blob(stmt, 2, payload, (int)size, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        goto out;
    if (changed != NULL)
        *changed = sqlite3_changes(cv_store_db(store)) > 0;
    rc = 0;
out:
    free(owned);
    return rc;
}

int routing_lead_insert(cv_store_t *store, const Conveyor__LeadScored *scored,
                        const routing_arrived_t *arrived, bool *fresh)
{
    /* every lead comes through here */
    return lead_write(store, scored, arrived,
                      "INSERT INTO leads (lead_id, lead_scored, updated_at)"
                      " VALUES (?, ?, ?) ON CONFLICT (lead_id) DO NOTHING",
                      fresh);
}

int routing_lead_put(cv_store_t *store, const Conveyor__LeadScored *scored,
                     const routing_arrived_t *arrived)
{
    return lead_write(store, scored, arrived,
                      "INSERT INTO leads (lead_id, lead_scored, updated_at)"
                      " VALUES (?, ?, ?) ON CONFLICT (lead_id) DO UPDATE SET"
                      " lead_scored = excluded.lead_scored,"
                      " updated_at = excluded.updated_at",
                      NULL);
}

Conveyor__LeadScored *routing_lead_get(cv_store_t *store, const char *lead_id,
                                       bool *missing)
{
    *missing = false;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT lead_scored FROM leads WHERE lead_id = ?");
    if (stmt == NULL)
        return NULL;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc != 0) {
        *missing = rc == 1;
        return NULL;
    }
    const void *blob = sqlite3_column_blob(stmt, 0);
    size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
    if (size == 0) {
        /* an assignment older than this table (migration 9): its lead
         * was never kept, as before that row was added */
        sqlite3_reset(stmt);
        *missing = true;
        return NULL;
    }
    Conveyor__LeadScored *scored =
        conveyor__lead_scored__unpack(NULL, size, blob);
    sqlite3_reset(stmt);
    if (scored == NULL || scored->lead == NULL || scored->score == NULL) {
        conveyor__lead_scored__free_unpacked(scored, NULL);
        cv_log_warn("stored lead '%s' in '%s' does not parse", lead_id,
                    cv_store_path(store));
        *missing = true;
        return NULL;
    }
    return scored;
}

int routing_tell_heads(cv_bus_t *bus, const char *lead_id, const char *reason,
                       const char *what, int tier,
                       const Conveyor__Score *score)
{
    cv_store_t *store = cv_bus_store(bus);
    Conveyor__LeadUnassigned body = CONVEYOR__LEAD_UNASSIGNED__INIT;
    body.lead_id = (char *)lead_id;
    body.reason = (char *)reason;
    body.score = (Conveyor__Score *)score; /* copied through, not changed */
    if (tier > 0) {
        body.has_tier = true;
        body.tier = tier;
    }
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED;
    env.lead_unassigned = &body;
    if (cv_bus_emit(bus, &env, "console", NULL) != 0)
        return -1;
    /* every active head of sales with a way to reach them */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT staff_id, notify_webhook_url, notify_telegram_chat_id,"
               " notify_email, notify_slack_webhook_url FROM staff WHERE role = 'head' AND active = 1"
               " ORDER BY staff_id");
    if (stmt == NULL)
        return -1;
    typedef struct {
        char id[ROUTING_ID_SIZE]; /* staff id */
        char webhook[1024];       /* notify targets, "" when none */
        char telegram[128];
        char email[256];
        char slack[1024];
    } head_t;
    head_t heads[16];
    size_t count = 0;
    int rc;
    while (count < 16 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        head_t *h = &heads[count++];
        cv_store_column_copy(stmt, 0, h->id, sizeof(h->id));
        cv_store_column_copy(stmt, 1, h->webhook, sizeof(h->webhook));
        cv_store_column_copy(stmt, 2, h->telegram, sizeof(h->telegram));
        cv_store_column_copy(stmt, 3, h->email, sizeof(h->email));
        cv_store_column_copy(stmt, 4, h->slack, sizeof(h->slack));
    }
    sqlite3_reset(stmt);
    for (size_t i = 0; i < count; i++) {
        head_t *h = &heads[i];
        if (h->webhook[0] == '\0' && h->telegram[0] == '\0' &&
            h->email[0] == '\0' && h->slack[0] == '\0')
            continue;
        char id[ROUTING_ID_SIZE * 2 + 64];
        snprintf(id, sizeof(id), "ntf-%s-%s-%s", lead_id, what, h->id);
        char text[ROUTING_TRACE_SIZE + 200];
        snprintf(text, sizeof(text), "Lead %s: %s", lead_id, reason);
        Conveyor__NotifyTarget target = CONVEYOR__NOTIFY_TARGET__INIT;
        target.webhook_url = h->webhook[0] ? h->webhook : NULL;
        target.telegram_chat_id = h->telegram[0] ? h->telegram : NULL;
        target.email = h->email[0] ? h->email : NULL;
        target.slack_webhook_url = h->slack[0] ? h->slack : NULL;
        Conveyor__NotificationRequested note =
            CONVEYOR__NOTIFICATION_REQUESTED__INIT;
        note.notification_id = id;
        note.lead_id = (char *)lead_id;
        note.staff_id = h->id;
        note.target = &target;
        note.subject =
            (char *)(strcmp(what, "unassigned") == 0 ? "Nobody can take a lead"
                                                     : "A lead needs you");
        note.text = text;
        Conveyor__Envelope n_env = CONVEYOR__ENVELOPE__INIT;
        n_env.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED;
        n_env.notification_requested = &note;
        if (cv_bus_emit(bus, &n_env, "notifier", NULL) != 0)
            return -1;
    }
    return 0;
}

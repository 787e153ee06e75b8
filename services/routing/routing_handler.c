/* routing_handler: LeadScored and StaffUpdated in; LeadAssigned and
 * LeadUnassigned out. */
#include "routing.h"

#include <stdio.h>
#include <stdlib.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

static cv_metric_t *metric_assigned; /* leads given to somebody */
static cv_metric_t *metric_waiting;  /* leads that found nobody */
static cv_metric_t *metric_rejected; /* knocked-out leads kept back */
static cv_metric_t *metric_pending;  /* leads waiting now */
static cv_metric_t *metric_staff;    /* directory updates applied */

static void metrics_register(void)
{
    if (metric_assigned != NULL)
        return;
    metric_assigned = cv_metrics_counter("conveyor_routing_assigned_total",
                                         "leads assigned to a staff member");
    metric_waiting =
        cv_metrics_counter("conveyor_routing_unassigned_total",
                           "leads that found nobody available on arrival");
    metric_rejected =
        cv_metrics_counter("conveyor_routing_knocked_out_total",
                           "knocked-out leads not routed to sales");
    metric_pending = cv_metrics_gauge("conveyor_routing_pending",
                                      "leads waiting for somebody");
    metric_staff = cv_metrics_counter("conveyor_routing_staff_updates_total",
                                      "staff directory updates applied");
}

static void pending_gauge(cv_store_t *store)
{
    int64_t count = routing_pending_count(store);
    if (count >= 0)
        cv_metric_set(metric_pending, count);
}

static int emit_unassigned(cv_bus_t *bus, const char *lead_id,
                           const char *reason, int tier)
{
    Conveyor__LeadUnassigned body = CONVEYOR__LEAD_UNASSIGNED__INIT;
    body.lead_id = (char *)lead_id;
    body.reason = (char *)reason;
    if (tier > 0) {
        body.has_tier = true;
        body.tier = tier;
    }
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED;
    env.lead_unassigned = &body;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* 1 when the lead is kept as rejected, 0 when not, -1 on error. */
static int rejected_exists(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT 1 FROM rejected WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return cv_error("cannot look up rejected lead '%s': %s", lead_id,
                    sqlite3_errstr(rc));
}

/* Keeps a knocked-out lead for the rejection path (a later knock-out
 * replaces the reason); *fresh is false when it was kept before. */
static int reject(cv_store_t *store, const Conveyor__LeadScored *scored,
                  const char *reason, const char *trace_id, bool *fresh)
{
    int kept = rejected_exists(store, scored->lead->lead_id);
    if (kept < 0)
        return -1;
    size_t size = conveyor__lead_scored__get_packed_size(scored);
    uint8_t *payload = malloc(size > 0 ? size : 1);
    if (payload == NULL)
        return cv_error("cannot keep lead '%s': out of memory",
                        scored->lead->lead_id);
    conveyor__lead_scored__pack(scored, payload);
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO rejected (lead_id, reason, segment,"
               " total, lead_scored, trace_id, rejected_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (lead_id) DO UPDATE SET reason = excluded.reason,"
               " segment = excluded.segment, total = excluded.total,"
               " lead_scored = excluded.lead_scored");
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, scored->lead->lead_id);
    cv_store_bind_text(stmt, 2, reason);
    cv_store_bind_text(stmt, 3, scored->score->segment);
    sqlite3_bind_int(stmt, 4, scored->score->total);
    sqlite3_bind_blob(stmt, 5, payload, (int)size, SQLITE_STATIC);
    cv_store_bind_text(stmt, 6, trace_id);
    sqlite3_bind_int64(stmt, 7, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        goto out;
    *fresh = kept == 0;
    rc = 0;
out:
    free(payload);
    return rc;
}

/* A knock-out people lifted: the lead is no longer kept as rejected.
 * *lifted tells whether it was. 0 or -1. */
static int unreject(cv_store_t *store, const char *lead_id, bool *lifted)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "DELETE FROM rejected WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *lifted = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

static int on_lead_scored(cv_bus_t *bus, const Conveyor__Envelope *event)
{
    cv_store_t *store = cv_bus_store(bus);
    const Conveyor__LeadScored *scored = event->lead_scored;
    if (scored->lead == NULL || scored->lead->lead_id == NULL ||
        scored->lead->lead_id[0] == '\0' || scored->score == NULL) {
        cv_log_warn("dropping lead_scored event '%s': no lead id or score",
                    event->event_id);
        return CV_BUS_DROP;
    }
    const char *lead_id = scored->lead->lead_id;
    bool rescore = scored->has_rescore && scored->rescore;
    int owned = routing_is_assigned(store, lead_id);
    if (owned < 0)
        return -1;
    if (owned == 1 && !rescore) {
        cv_log_info("lead '%s' is already assigned; event '%s' ignored",
                    lead_id, event->event_id);
        return 0;
    }
    if (scored->score->has_knocked_out && scored->score->knocked_out) {
        char reason[700];
        snprintf(reason, sizeof(reason), "knocked out: %s",
                 scored->score->knockout_reason ? scored->score->knockout_reason
                                                : "no reason given");
        bool fresh = false;
        if (reject(store, scored, reason, event->trace_id, &fresh) != 0 ||
            routing_pending_remove(store, lead_id) != 0)
            return -1;
        if (rescore && (owned == 1 || fresh) &&
            routing_segment_record(store, lead_id, scored->previous_segment,
                                   scored->score->segment, "rejected", NULL,
                                   reason) != 0)
            return -1;
        if (owned == 1) {
            /* its owner sees the card closed as rejected; nobody else is
             * given it */
            cv_log_info("assigned lead '%s' knocked out by a re-score: %s",
                        lead_id, reason);
            return 0;
        }
        if (!fresh)
            return 0;
        if (emit_unassigned(bus, lead_id, reason, 0) != 0)
            return -1;
        cv_metric_add(metric_rejected, 1);
        cv_log_info("lead '%s' not routed to sales: %s", lead_id, reason);
        return 0;
    }
    if (rescore) {
        bool lifted = false;
        if (unreject(store, lead_id, &lifted) != 0)
            return -1;
        if (lifted)
            cv_log_info("lead '%s': knock-out lifted by people; it goes down "
                        "the belt again",
                        lead_id);
        if (owned == 1)
            return routing_segment_moved(bus, scored, event->trace_id);
    }
    bool assigned = false;
    routing_trace_t why;
    if (routing_assign(bus, scored, NULL, &assigned, &why) != 0)
        return -1;
    if (assigned) {
        cv_metric_add(metric_assigned, 1);
        return routing_pending_remove(store, lead_id);
    }
    bool fresh = false;
    if (routing_pending_put(store, scored, 2, why.text, event->trace_id,
                            &fresh) != 0)
        return -1;
    if (fresh) {
        char reason[ROUTING_TRACE_SIZE + 32];
        snprintf(reason, sizeof(reason), "nobody available: %s", why.text);
        if (emit_unassigned(bus, lead_id, reason, 2) != 0)
            return -1;
        cv_metric_add(metric_waiting, 1);
        cv_log_info("lead '%s' waits: %s", lead_id, reason);
    }
    return 0;
}

static int on_staff_updated(cv_bus_t *bus, const Conveyor__Envelope *event)
{
    const Conveyor__StaffMember *member = event->staff_updated->staff;
    if (member == NULL || member->staff_id == NULL ||
        member->staff_id[0] == '\0') {
        cv_log_warn("dropping staff_updated event '%s': no staff id",
                    event->event_id);
        return CV_BUS_DROP;
    }
    cv_store_t *store = cv_bus_store(bus);
    if (routing_staff_apply(store, member, cv_clock_now_ms()) != 0)
        return -1;
    cv_metric_add(metric_staff, 1);
    cv_log_info("staff member '%s' updated (%s, tier %d, %s)", member->staff_id,
                member->role ? member->role : "no role",
                member->has_tier ? member->tier : 0,
                member->has_active && !member->active ? "inactive" : "active");
    return routing_pending_retry(bus);
}

int routing_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    (void)arg;
    metrics_register();
    int rc;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        rc = on_lead_scored(bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED:
        rc = on_staff_updated(bus, event);
        break;
    default:
        cv_log_warn("dropping a '%s' event '%s': routing takes lead_scored "
                    "and staff_updated",
                    cv_event_type_name(event->type), event->event_id);
        return CV_BUS_DROP;
    }
    if (rc == 0)
        pending_gauge(cv_bus_store(bus));
    return rc;
}

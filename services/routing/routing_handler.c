/* routing_handler: the events routing takes — LeadScored, StaffUpdated,
 * AssignmentRequested (console: a claim or the head's choice), Escalation
 * (followup: level 2 re-assigns) and DecisionRecorded (a closed lead is
 * no longer handed back) — and what they do. */
#include "routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

static cv_metric_t *metric_assigned; /* leads given to somebody */
static cv_metric_t *metric_waiting;  /* leads that found nobody */
static cv_metric_t *metric_offered;  /* first-come offers and manual asks */
static cv_metric_t *metric_rejected; /* knocked-out leads kept back */
static cv_metric_t *metric_pending;  /* leads waiting now */
static cv_metric_t *metric_staff;    /* directory updates applied */
static cv_metric_t *metric_reassign; /* SLA and inactive re-assignments */

static void metrics_register(void)
{
    if (metric_assigned != NULL)
        return;
    metric_assigned = cv_metrics_counter("conveyor_routing_assigned_total",
                                         "leads assigned to a staff member");
    metric_waiting =
        cv_metrics_counter("conveyor_routing_unassigned_total",
                           "leads that found nobody available on arrival");
    metric_offered =
        cv_metrics_counter("conveyor_routing_offered_total",
                           "leads offered first-come or sent to the head");
    metric_rejected =
        cv_metrics_counter("conveyor_routing_knocked_out_total",
                           "knocked-out leads not routed to sales");
    metric_pending = cv_metrics_gauge("conveyor_routing_pending",
                                      "leads waiting for somebody");
    metric_staff = cv_metrics_counter("conveyor_routing_staff_updates_total",
                                      "staff directory updates applied");
    metric_reassign =
        cv_metrics_counter("conveyor_routing_reassigned_total",
                           "leads re-assigned after an SLA breach or a "
                           "person set inactive");
}

static void pending_gauge(cv_store_t *store)
{
    int64_t count = routing_pending_count(store);
    if (count >= 0)
        cv_metric_set(metric_pending, count);
}

int routing_place(routing_t *self, cv_bus_t *bus,
                  const Conveyor__LeadScored *scored,
                  const routing_route_opts_t *opts, bool *placed)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    *placed = false;
    routing_decision_t *d = malloc(sizeof(*d));
    if (d == NULL)
        return cv_error("cannot route lead '%s': out of memory", lead_id);
    int rc = -1;
    if (routing_route(self, store, bus, scored, opts, d) != 0)
        goto out;
    if (d->outcome == ROUTING_ASSIGNED) {
        cv_metric_add(metric_assigned, 1);
        *placed = true;
        if ((!opts->not_pending &&
             routing_pending_remove(store, lead_id) != 0) ||
            routing_vip(self, bus, scored) != 0)
            goto out;
        rc = 0;
        goto out;
    }
    if (d->outcome != ROUTING_NOBODY) {
        cv_metric_add(metric_offered, 1);
        *placed = true;
        rc = opts->not_pending ? 0 : routing_pending_remove(store, lead_id);
        goto out;
    }
    bool fresh = false;
    int tier = cv_routing_lead_tier(scored->lead->channel,
                                    scored->lead->previous_result);
    /* the lead's own trace, from the event that brought it, when it is
     * that event being handled */
    const Conveyor__Envelope *current = cv_bus_current(bus);
    const char *trace_id =
        current != NULL &&
                current->body_case == CONVEYOR__ENVELOPE__BODY_LEAD_SCORED
            ? current->trace_id
            : NULL;
    if (routing_pending_put(store, lead_id, tier, d->trace.text, trace_id,
                            &fresh) != 0)
        goto out;
    if (fresh) {
        char reason[ROUTING_TRACE_SIZE + 32];
        snprintf(reason, sizeof(reason), "nobody available: %s", d->trace.text);
        if (routing_tell_heads(bus, lead_id, reason, "unassigned", tier,
                               scored->score) != 0)
            goto out;
        cv_metric_add(metric_waiting, 1);
        cv_log_info("lead '%s' waits: %s", lead_id, reason);
    }
    rc = 0;
out:
    free(d);
    return rc;
}

/* 1 when the lead is kept as rejected, 0 when not, -1 on error. */
static int rejected_exists(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT 1 FROM rejected WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc == 0)
        sqlite3_reset(stmt);
    return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

/* Keeps a knocked-out lead for the rejection path (a later knock-out
 * replaces the reason); *fresh is false when it was kept before. */
static int reject(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                  const routing_arrived_t *arrived, const char *reason,
                  const char *trace_id, bool *fresh)
{
    cv_store_t *store = cv_bus_store(bus);
    int kept = rejected_exists(store, scored->lead->lead_id);
    if (kept < 0)
        return -1;
    uint8_t local[4096];
    size_t size = 0;
    uint8_t *owned = NULL;
    const uint8_t *payload = routing_lead_bytes(arrived, scored, local,
                                                sizeof(local), &size, &owned);
    if (payload == NULL)
        return -1;
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
    free(owned);
    return rc;
}

/* A knock-out people lifted: the lead is no longer kept as rejected. */
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

static int emit_rejected(cv_bus_t *bus, const char *lead_id, const char *reason)
{
    Conveyor__LeadUnassigned body = CONVEYOR__LEAD_UNASSIGNED__INIT;
    body.lead_id = (char *)lead_id;
    body.reason = (char *)reason;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED;
    env.lead_unassigned = &body;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* 1 when the lead waits for a claim or the head's choice, 0, -1. */
static int offer_open(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT 1 FROM offers WHERE lead_id = ? AND state = 'open'");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc == 0)
        sqlite3_reset(stmt);
    return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

/* Finds the bytes of `event`, a LeadScored that is the event `bus` is
 * handling, in the message it came in: one scan of the envelope (and of
 * the body for the score) per lead. 0, or -1 when they cannot be used
 * (another event, an envelope the scanner does not take): the lead is
 * packed then. */
static int arrived_find(cv_bus_t *bus, const Conveyor__Envelope *event,
                        routing_arrived_t *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *envelope = NULL;
    size_t envelope_size = 0;
    /* the event unpacked from the bytes the bus holds (and const since):
     * its body's bytes in the envelope are what packing it would write
     * (protobuf-c packs a message the same alone or nested;
     * tests/unit/test_event.c), without ~20k instructions of sizing and
     * packing per lead */
    if (event->body_case != CONVEYOR__ENVELOPE__BODY_LEAD_SCORED ||
        cv_bus_current(bus) != event ||
        cv_bus_current_packed(bus, &envelope, &envelope_size) != 0 ||
        cv_event_field_bytes(envelope, envelope_size,
                             CONVEYOR__ENVELOPE__BODY_LEAD_SCORED,
                             &out->lead_scored, &out->lead_scored_size) != 0)
        return -1; /* `out` stays empty: cv_event writes only on success */
    /* the score as protobuf-c keeps an unknown length-delimited field
     * (length prefix and bytes), for LeadAssigned to lend; not when the
     * score had fields of its own this build does not know (packing puts
     * those last, so its bytes could differ) */
    const Conveyor__Score *score = event->lead_scored->score;
    if (score != NULL && score->base.n_unknown_fields == 0)
        cv_event_field_span(out->lead_scored, out->lead_scored_size,
                            2 /* LeadScored.score */, CV_EVENT_SPAN_LENGTH,
                            &out->score, &out->score_size);
    return 0;
}

static int on_lead_scored(routing_t *self, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
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
    /* the bytes the lead arrived in, found once: every table keeps them
     * and LeadAssigned lends its score from them */
    routing_arrived_t found;
    const routing_arrived_t *arrived =
        arrived_find(bus, event, &found) == 0 ? &found : NULL;
    /* a lead never kept before (the usual one) has no owner, offer or
     * place in pending (routing_lead_insert): none is looked up */
    bool fresh_lead = false;
    if (routing_lead_insert(store, scored, arrived, &fresh_lead) != 0)
        return -1;
    int owned = 0;
    if (!fresh_lead) {
        owned = routing_owner(store, lead_id, NULL, 0);
        if (owned < 0)
            return -1;
        if (owned == 1 && !rescore) {
            cv_log_info("lead '%s' is already assigned; event '%s' ignored",
                        lead_id, event->event_id);
            return 0;
        }
        if (routing_lead_put(store, scored, arrived) != 0)
            return -1;
    }
    if (scored->score->has_knocked_out && scored->score->knocked_out) {
        char reason[700];
        snprintf(reason, sizeof(reason), "knocked out: %s",
                 scored->score->knockout_reason ? scored->score->knockout_reason
                                                : "no reason given");
        bool fresh = false;
        if (reject(bus, scored, arrived, reason, event->trace_id, &fresh) !=
                0 ||
            routing_pending_remove(store, lead_id) != 0 ||
            routing_offer_close(store, lead_id, "rejected") != 0)
            return -1;
        if (rescore && (owned == 1 || fresh) &&
            routing_segment_record(store, lead_id, scored->previous_segment,
                                   scored->score->segment, "rejected", NULL,
                                   reason) != 0)
            return -1;
        if (owned == 1) {
            cv_log_info("assigned lead '%s' knocked out by a re-score: %s",
                        lead_id, reason);
            return 0;
        }
        if (!fresh)
            return 0;
        if (emit_rejected(bus, lead_id, reason) != 0)
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
            return routing_segment_moved(self, bus, scored);
    }
    int waiting = fresh_lead ? 0 : offer_open(store, lead_id);
    if (waiting != 0)
        return waiting < 0 ? -1 : 0; /* people decide; the score is kept */
    routing_route_opts_t opts = {
        .no_offer = true,
        .not_pending = fresh_lead,
        .arrived = arrived,
    };
    bool placed = false;
    return routing_place(self, bus, scored, &opts, &placed);
}

/* Re-routes one lead away from its owner; when nobody else is available
 * the owner keeps it and the heads are told. */
static int reassign(routing_t *self, cv_bus_t *bus, const char *lead_id,
                    const char *from, const char *strategy, const char *why)
{
    cv_store_t *store = cv_bus_store(bus);
    bool missing = false;
    Conveyor__LeadScored *scored = routing_lead_get(store, lead_id, &missing);
    if (scored == NULL) {
        if (!missing)
            return -1;
        cv_log_warn("cannot re-assign lead '%s' (%s): routing does not know "
                    "it",
                    lead_id, why);
        return 0;
    }
    int rc = -1;
    routing_decision_t *d = malloc(sizeof(*d));
    if (d == NULL) {
        cv_error("cannot re-assign lead '%s': out of memory", lead_id);
        goto out;
    }
    routing_route_opts_t opts = {.exclude = from, .strategy = strategy};
    if (routing_route(self, store, bus, scored, &opts, d) != 0)
        goto out;
    if (d->outcome == ROUTING_ASSIGNED) {
        cv_metric_add(metric_reassign, 1);
        cv_log_info("lead '%s' re-assigned from '%s' to '%s' (%s)", lead_id,
                    from, d->staff_id, why);
        rc = routing_vip(self, bus, scored);
        goto out;
    }
    if (d->outcome != ROUTING_NOBODY) {
        rc = 0; /* offered, or the head assigns it */
        goto out;
    }
    char reason[ROUTING_TRACE_SIZE + 200];
    snprintf(reason, sizeof(reason),
             "%s: nobody else is available, %s keeps it for now: %s", why, from,
             d->trace.text);
    rc = routing_tell_heads(bus, lead_id, reason, strategy, 0, NULL);
out:
    free(d);
    conveyor__lead_scored__free_unpacked(scored, NULL);
    return rc;
}

int routing_hand_back(routing_t *self, cv_bus_t *bus, const char *staff_id)
{
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT lead_id FROM assignments WHERE staff_id = ?"
               " AND closed_at IS NULL ORDER BY assigned_at, lead_id");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    char **ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(ids, cap * sizeof(*grown));
            if (grown == NULL) {
                failed = true;
                break;
            }
            ids = grown;
        }
        ids[n] = cv_store_column_dup(stmt, 0, &failed);
        if (failed)
            break;
        n++;
    }
    sqlite3_reset(stmt);
    int result = failed || rc != SQLITE_DONE ? -1 : 0;
    if (result != 0)
        cv_error("cannot list the leads of '%s'", staff_id);
    for (size_t i = 0; i < n && result == 0; i++)
        result = reassign(self, bus, ids[i], staff_id, "reassign_inactive",
                          "the owner was set inactive");
    if (result == 0 && n > 0)
        cv_log_info("'%s' set inactive: %zu open leads handed back", staff_id,
                    n);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return result;
}

static int on_staff_updated(routing_t *self, cv_bus_t *bus,
                            const Conveyor__Envelope *event)
{
    const Conveyor__StaffMember *member = event->staff_updated->staff;
    if (member == NULL || member->staff_id == NULL ||
        member->staff_id[0] == '\0') {
        cv_log_warn("dropping staff_updated event '%s': no staff id",
                    event->event_id);
        return CV_BUS_DROP;
    }
    cv_store_t *store = cv_bus_store(bus);
    bool was_active = false;
    if (routing_staff_apply(store, member, cv_clock_now_ms(), &was_active) != 0)
        return -1;
    cv_metric_add(metric_staff, 1);
    bool active = !(member->has_active && !member->active);
    cv_log_info("staff member '%s' updated (%s, tier %d, %s)", member->staff_id,
                member->role ? member->role : "no role",
                member->has_tier ? member->tier : 0,
                active ? "active" : "inactive");
    if (was_active && !active) {
        const cv_routing_rules_t *rules = routing_rules_acquire(self);
        bool hand_back = rules->reassign_inactive;
        routing_rules_release(self);
        if (hand_back && routing_hand_back(self, bus, member->staff_id) != 0)
            return -1;
    }
    return routing_pending_retry(self, bus);
}

static int on_escalation(routing_t *self, cv_bus_t *bus,
                         const Conveyor__Envelope *event)
{
    const Conveyor__Escalation *esc = event->escalation;
    if (!esc->has_level || esc->level != 2) {
        cv_log_info("escalation '%s' level %d: routing acts on level 2 only",
                    event->event_id, esc->has_level ? esc->level : 0);
        return 0;
    }
    char owner[ROUTING_ID_SIZE];
    int owned =
        routing_owner(cv_bus_store(bus), esc->lead_id, owner, sizeof(owner));
    if (owned < 0)
        return -1;
    if (owned == 0) {
        cv_log_warn("escalation '%s': lead '%s' has no owner here",
                    event->event_id, esc->lead_id);
        return 0;
    }
    const char *from = esc->staff_id != NULL && esc->staff_id[0] != '\0'
                           ? esc->staff_id
                           : owner;
    if (strcmp(from, owner) != 0) {
        cv_log_info("escalation '%s' about '%s', but lead '%s' is with '%s' "
                    "now; nothing to do",
                    event->event_id, from, esc->lead_id, owner);
        return 0;
    }
    char why[300];
    snprintf(why, sizeof(why), "SLA '%s' missed by %s",
             esc->kind ? esc->kind : "?", from);
    return reassign(self, bus, esc->lead_id, from, "reassign_sla", why);
}

static int on_decision(cv_bus_t *bus, const Conveyor__Envelope *event)
{
    const Conveyor__DecisionRecorded *d = event->decision_recorded;
    sqlite3_stmt *stmt = cv_store_prepare(
        cv_bus_store(bus),
        "UPDATE assignments SET closed_at = ? WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, event->occurred_at);
    cv_store_bind_text(stmt, 2, d->lead_id);
    return cv_store_step_done(stmt);
}

int routing_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    routing_t *self = arg;
    metrics_register();
    int rc;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        rc = on_lead_scored(self, bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED:
        rc = on_staff_updated(self, bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_ASSIGNMENT_REQUESTED:
        rc = routing_offer_requested(self, bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_ESCALATION:
        rc = on_escalation(self, bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED:
        rc = on_decision(bus, event);
        break;
    default:
        cv_log_warn("dropping a '%s' event '%s': routing takes lead_scored, "
                    "staff_updated, assignment_requested, escalation and "
                    "decision_recorded",
                    cv_event_type_name(event->type), event->event_id);
        return CV_BUS_DROP;
    }
    /* counting the queue reads all of it: only when it changed */
    if (rc == 0 && routing_pending_changed())
        pending_gauge(cv_bus_store(bus));
    return rc;
}

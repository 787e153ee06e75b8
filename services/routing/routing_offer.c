/* routing_offer: leads that wait for people to decide — a first_come offer
 * (the console grants one claim; unclaimed by its deadline the chain goes
 * on after the offering rule) and the head of sales' manual task — and
 * the durable timer that expires offers and retries waiting leads.
 *
 * The console refuses claims after the deadline on the same clock, and a
 * claim it granted in time is honoured here even when the deadline passed
 * before the claim arrived (the claimer wins; a later LeadAssigned from
 * the next rule, if any, is superseded by this one). */
#include "routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"

#define RETRY_EVERY_MS 60000 /* pending leads are tried again this often */

static cv_metric_t *metric_offers_expired; /* offers nobody claimed */
static cv_metric_t *metric_requests;       /* claims and manual choices */

/* The earliest open deadline as last read, for the bus loop's next_due,
 * which asks once a turn: read again only after a write to the offers
 * table. Every write marks it unknown before it runs, so a write that is
 * rolled back leaves it unknown too; it is kept only when read outside a
 * transaction (what a rollback cannot take back), on the bus thread's
 * connection (the only one that writes offers). */
static struct {
    cv_store_t *store; /* the connection it was read on */
    bool known;        /* `due` is what the table says */
    int64_t due;       /* min(expires_at) of open offers, or INT64_MAX */
} offers_due_cache;

static void offers_changed(void)
{
    offers_due_cache.known = false;
}

int routing_offer_put(cv_store_t *store, const char *lead_id, const char *kind,
                      const char *rule, size_t rule_index, const char *staff,
                      int64_t expires_at, const char *trace)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO offers (lead_id, kind, rule, rule_index, staff,"
               " expires_at, state, trace, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)"
               " ON CONFLICT (lead_id) DO UPDATE SET kind = excluded.kind,"
               " rule = excluded.rule, rule_index = excluded.rule_index,"
               " staff = excluded.staff, expires_at = excluded.expires_at,"
               " state = 'open', trace = excluded.trace,"
               " created_at = excluded.created_at");
    if (stmt == NULL)
        return -1;
    offers_changed();
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, kind);
    cv_store_bind_text(stmt, 3, rule);
    sqlite3_bind_int64(stmt, 4, (int64_t)rule_index);
    cv_store_bind_text(stmt, 5, staff);
    if (expires_at > 0)
        sqlite3_bind_int64(stmt, 6, expires_at);
    cv_store_bind_text(stmt, 7, trace);
    sqlite3_bind_int64(stmt, 8, cv_clock_now_ms());
    return cv_store_step_done(stmt);
}

int routing_offer_close(cv_store_t *store, const char *lead_id,
                        const char *state)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE offers SET state = ? WHERE lead_id = ? AND state = "
               "'open'");
    if (stmt == NULL)
        return -1;
    offers_changed();
    cv_store_bind_text(stmt, 1, state);
    cv_store_bind_text(stmt, 2, lead_id);
    return cv_store_step_done(stmt);
}

/* The lead's offer, copied out. */
typedef struct {
    bool found;         /* there is one */
    char kind[16];      /* first_come | manual */
    char rule[80];      /* the rule that made it */
    size_t rule_index;  /* its place in the chain then */
    char staff[1024];   /* who may claim: "a,b" */
    int64_t expires_at; /* 0 for manual */
    char state[16];     /* open | claimed | assigned | expired */
} offer_row_t;

static int offer_get(cv_store_t *store, const char *lead_id, offer_row_t *o)
{
    memset(o, 0, sizeof(*o));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT kind, rule, rule_index, staff, coalesce(expires_at, 0),"
               " state FROM offers WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    o->found = true;
    cv_store_column_copy(stmt, 0, o->kind, sizeof(o->kind));
    cv_store_column_copy(stmt, 1, o->rule, sizeof(o->rule));
    o->rule_index = (size_t)sqlite3_column_int64(stmt, 2);
    cv_store_column_copy(stmt, 3, o->staff, sizeof(o->staff));
    o->expires_at = sqlite3_column_int64(stmt, 4);
    cv_store_column_copy(stmt, 5, o->state, sizeof(o->state));
    sqlite3_reset(stmt);
    return 0;
}

/* True when `id` is one of the comma-separated `list`. */
static bool list_has(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, id, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

int routing_offer_requested(routing_t *self, cv_bus_t *bus,
                            const Conveyor__Envelope *event)
{
    if (metric_requests == NULL)
        metric_requests =
            cv_metrics_counter("conveyor_routing_requests_total",
                               "first-come claims and manual assignments");
    const Conveyor__AssignmentRequested *req = event->assignment_requested;
    cv_store_t *store = cv_bus_store(bus);
    if (req->lead_id == NULL || req->lead_id[0] == '\0' ||
        req->staff_id == NULL || req->staff_id[0] == '\0') {
        cv_log_warn("dropping assignment_requested '%s': no lead or staff id",
                    event->event_id);
        return CV_BUS_DROP;
    }
    const char *kind = req->kind != NULL ? req->kind : "manual";
    bool claim = strcmp(kind, "claim") == 0;
    bool missing = false;
    Conveyor__LeadScored *scored =
        routing_lead_get(store, req->lead_id, &missing);
    if (scored == NULL) {
        if (!missing)
            return -1;
        cv_log_warn("dropping %s of lead '%s' by '%s': routing does not know "
                    "the lead",
                    kind, req->lead_id, req->actor ? req->actor : "?");
        return CV_BUS_DROP;
    }
    int rc = -1;
    routing_member_t m = {0};
    offer_row_t offer;
    if (offer_get(store, req->lead_id, &offer) != 0)
        goto out;
    int64_t at = req->has_requested_at ? req->requested_at : cv_clock_now_ms();
    routing_trace_t why;
    routing_trace_reset(&why);
    if (claim) {
        /* a claim stands when it answers this lead's first_come offer, in
         * time, by one it was offered to, and the offer is still open or
         * merely ran out meanwhile (not claimed, rejected, assigned) */
        if (!offer.found || strcmp(offer.kind, "first_come") != 0 ||
            !list_has(offer.staff, req->staff_id) ||
            (offer.expires_at > 0 && at > offer.expires_at) ||
            (strcmp(offer.state, "open") != 0 &&
             strcmp(offer.state, "expired") != 0)) {
            cv_log_warn("claim of lead '%s' by '%s' refused: no open offer to "
                        "them in time (offer %s, state %s)",
                        req->lead_id, req->staff_id,
                        offer.found ? offer.rule : "none",
                        offer.found ? offer.state : "-");
            rc = CV_BUS_DROP;
            goto out;
        }
        routing_trace_add(&why,
                          "rule '%s' (first_come): offered to [%s]; "
                          "claimed first by %s on the console",
                          offer.rule, offer.staff, req->staff_id);
        if (strcmp(offer.state, "expired") == 0)
            routing_trace_put(&why, " (granted before the deadline)");
    } else {
        routing_trace_add(&why, "assigned by hand by %s",
                          req->actor ? req->actor : "the head of sales");
        if (offer.found && strcmp(offer.state, "open") == 0)
            routing_trace_add(&why, " (rule '%s', %s)", offer.rule, offer.kind);
    }
    int found = routing_member_load(store, req->staff_id, self->default_tz,
                                    cv_clock_now_ms(), &m);
    if (found < 0)
        goto out;
    if (found == 1) {
        cv_log_warn("dropping %s of lead '%s': staff member '%s' unknown here",
                    kind, req->lead_id, req->staff_id);
        rc = CV_BUS_DROP;
        goto out;
    }
    if (!m.avail.available)
        routing_trace_add(&why, " (note: %s is %s)", m.staff_id, m.avail.why);
    routing_join_t join = {
        .strategy = claim ? "first_come" : "manual",
        .rule = offer.found ? offer.rule : NULL,
        .tier = cv_routing_lead_tier(scored->lead->channel,
                                     scored->lead->previous_result),
    };
    if (routing_give(bus, scored, &m, &join, why.text) != 0)
        goto out;
    if (claim) {
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "UPDATE offers SET state = 'claimed' WHERE lead_id = ?");
        if (stmt == NULL)
            goto out;
        offers_changed();
        cv_store_bind_text(stmt, 1, req->lead_id);
        if (cv_store_step_done(stmt) != 0)
            goto out;
    }
    if (routing_pending_remove(store, req->lead_id) != 0 ||
        routing_vip(self, bus, scored) != 0)
        goto out;
    cv_metric_add(metric_requests, 1);
    rc = 0;
out:
    routing_member_clear(&m);
    conveyor__lead_scored__free_unpacked(scored, NULL);
    return rc;
}

/* The earliest deadline of an open first_come offer, or INT64_MAX. */
static int64_t offers_next_due(cv_store_t *store)
{
    if (offers_due_cache.known && offers_due_cache.store == store)
        return offers_due_cache.due;
    bool keep = !cv_store_in_transaction(store);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT min(expires_at) FROM offers WHERE state = 'open'"
               " AND expires_at IS NOT NULL");
    if (stmt == NULL)
        return INT64_MAX;
    int64_t due = INT64_MAX;
    if (sqlite3_step(stmt) == SQLITE_ROW &&
        sqlite3_column_type(stmt, 0) != SQLITE_NULL)
        due = sqlite3_column_int64(stmt, 0);
    int rc = sqlite3_reset(stmt);
    if (keep && rc == SQLITE_OK) {
        offers_due_cache.store = store;
        offers_due_cache.due = due;
        offers_due_cache.known = true;
    }
    return due;
}

typedef struct {
    routing_t *routing; /* the process state */
    int64_t next_retry; /* when pending leads are tried again */
} timer_t_;

static timer_t_ timer_state;

static int64_t timer_next_due(void *arg, cv_bus_t *bus)
{
    timer_t_ *t = arg;
    int64_t due = offers_next_due(cv_bus_store(bus));
    if (t->next_retry < due && routing_pending_any(cv_bus_store(bus)) > 0)
        due = t->next_retry;
    return due;
}

/* An offer nobody claimed: the chain goes on after its rule. */
static int offer_expire(routing_t *self, cv_bus_t *bus, const char *lead_id,
                        const char *rule, size_t rule_index)
{
    cv_store_t *store = cv_bus_store(bus);
    if (routing_offer_close(store, lead_id, "expired") != 0)
        return -1;
    cv_metric_add(metric_offers_expired, 1);
    int owned = routing_owner(store, lead_id, NULL, 0);
    if (owned != 0)
        return owned < 0 ? -1 : 0;
    bool missing = false;
    Conveyor__LeadScored *scored = routing_lead_get(store, lead_id, &missing);
    if (scored == NULL)
        return missing ? 0 : -1;
    /* the chain may have been reloaded: find the rule by name */
    const cv_routing_rules_t *rules = routing_rules_acquire(self);
    size_t next = rule_index + 1;
    for (size_t i = 0; i < rules->rule_count; i++)
        if (strcmp(rules->rules[i].name, rule) == 0)
            next = i + 1;
    routing_rules_release(self);
    cv_log_info("offer of lead '%s' by rule '%s' expired unclaimed; the chain "
                "goes on from rule %zu",
                lead_id, rule, next + 1);
    routing_route_opts_t opts = {.first_rule = next};
    bool placed = false;
    int rc = routing_place(self, bus, scored, &opts, &placed);
    conveyor__lead_scored__free_unpacked(scored, NULL);
    return rc;
}

static int timer_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    timer_t_ *t = arg;
    cv_store_t *store = cv_bus_store(bus);
    for (int round = 0; round < 64; round++) {
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "SELECT lead_id, rule, rule_index FROM offers"
                   " WHERE state = 'open' AND expires_at IS NOT NULL"
                   " AND expires_at <= ? ORDER BY expires_at LIMIT 1");
        if (stmt == NULL)
            return -1;
        sqlite3_bind_int64(stmt, 1, now_ms);
        int rc = cv_store_step_row(stmt);
        if (rc < 0)
            return -1;
        if (rc == 1)
            break;
        char lead_id[ROUTING_ID_SIZE], rule[80];
        cv_store_column_copy(stmt, 0, lead_id, sizeof(lead_id));
        cv_store_column_copy(stmt, 1, rule, sizeof(rule));
        size_t index = (size_t)sqlite3_column_int64(stmt, 2);
        sqlite3_reset(stmt);
        if (offer_expire(t->routing, bus, lead_id, rule, index) != 0)
            return -1;
    }
    if (now_ms >= t->next_retry) {
        t->next_retry = now_ms + RETRY_EVERY_MS;
        if (routing_pending_any(store) > 0 &&
            routing_pending_retry(t->routing, bus) != 0)
            return -1;
    }
    return 0;
}

int routing_timer_watch(routing_t *self, cv_bus_t *bus)
{
    metric_offers_expired =
        cv_metrics_counter("conveyor_routing_offers_expired_total",
                           "first-come offers nobody claimed in time");
    timer_state.routing = self;
    timer_state.next_retry = cv_clock_now_ms() + RETRY_EVERY_MS;
    cv_bus_source_t source = {
        .fd = -1,
        .work = timer_work,
        .next_due = timer_next_due,
        .arg = &timer_state,
    };
    return cv_bus_add_source(bus, &source);
}

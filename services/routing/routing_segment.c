/* routing_segment: what a lead's segment makes routing do (PRODUCT.md
 * section 3): A brings the head of sales in as reviewer, C sends the lead
 * down the rejection path; and the same when people's scorecard moves a
 * lead that already has an owner. */
#include "routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"

/* The head of sales reviews VIP leads and approves their proposals; the
 * round-robin spreads them when there are several heads. */
static const routing_pool_spec_t pool_review = {
    .key = "segment-a-head",
    .role = "head",
};

/* A segment C lead taken over by a junior, who sends the rejection. */
static const routing_pool_spec_t pool_reject = {
    .key = "segment-c",
    .role = "telemarketer",
    .tier = 1,
};

static cv_metric_t *metric_reviews; /* heads asked to review */
static cv_metric_t *metric_rejects; /* leads sent down the rejection path */

static void metrics_register(void)
{
    if (metric_reviews != NULL)
        return;
    metric_reviews = cv_metrics_counter(
        "conveyor_routing_segment_a_reviews_total",
        "segment A leads the head of sales was asked to review");
    metric_rejects =
        cv_metrics_counter("conveyor_routing_segment_c_rejections_total",
                           "segment C leads sent to the rejection path");
}

int routing_segment_record(cv_store_t *store, const char *lead_id,
                           const char *old_segment, const char *new_segment,
                           const char *action, const char *staff_id,
                           const char *trace)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO segment_changes (lead_id, old_segment,"
               " new_segment, action, staff_id, rule_trace, at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, old_segment);
    cv_store_bind_text(stmt, 3, new_segment);
    cv_store_bind_text(stmt, 4, action);
    cv_store_bind_text(stmt, 5, staff_id);
    cv_store_bind_text(stmt, 6, trace);
    sqlite3_bind_int64(stmt, 7, cv_clock_now_ms());
    return cv_store_step_done(stmt);
}

int routing_review_put(cv_store_t *store, const char *lead_id,
                       const char *kind, const char *staff_id,
                       const char *trace)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT OR IGNORE INTO reviews (lead_id, kind, staff_id,"
               " rule_trace, at) VALUES (?, ?, ?, ?, ?)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, kind);
    cv_store_bind_text(stmt, 3, staff_id);
    cv_store_bind_text(stmt, 4, trace);
    sqlite3_bind_int64(stmt, 5, cv_clock_now_ms());
    return cv_store_step_done(stmt);
}

int routing_review_exists(cv_store_t *store, const char *lead_id,
                          const char *kind)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT 1 FROM reviews WHERE lead_id = ? AND kind = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, kind);
    int rc = cv_store_step_row(stmt);
    if (rc == 0)
        sqlite3_reset(stmt);
    return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

/* Picks an available member of `spec` now; *chosen -1 when nobody. The
 * caller clears `pool`. 0 or -1. */
static int segment_pick(cv_store_t *store, const routing_pool_spec_t *spec,
                        routing_pool_t *pool, int *chosen, routing_trace_t *why)
{
    if (routing_pool_load(store, spec, ROUTING_DEFAULT_TZ, cv_clock_now_ms(),
                          pool) != 0)
        return -1;
    *chosen = routing_pool_pick(store, spec, pool, false, why);
    return *chosen == -2 ? -1 : 0;
}

int routing_segment_review(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                           bool *joined_out)
{
    metrics_register();
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    *joined_out = false;
    int seen = routing_review_exists(store, lead_id, "vip_review");
    if (seen != 0) {
        *joined_out = seen > 0; /* the head knows this lead already */
        return seen < 0 ? -1 : 0;
    }
    routing_trace_t why;
    routing_trace_reset(&why);
    routing_trace_add(&why, "segment %s: the head of sales reviews it; ",
                      scored->score->segment);
    routing_pool_t pool = {0};
    int chosen = -1;
    int rc = -1;
    if (segment_pick(store, &pool_review, &pool, &chosen, &why) != 0)
        goto out;
    if (chosen < 0) {
        cv_log_warn("segment A lead '%s' has no reviewer: %s", lead_id,
                    why.text);
        rc = 0;
        goto out;
    }
    const routing_member_t *head = &pool.members[chosen];
    routing_join_t join = {
        .strategy = "segment_a",
        .role = "reviewer",
        .task_kind = "vip_review",
        .tier = 2,
    };
    if (routing_emit_assigned(bus, scored, head, &join, why.text) != 0)
        goto out;
    if (routing_review_put(store, lead_id, "vip_review", head->staff_id,
                           why.text) != 0)
        goto out;
    cv_metric_add(metric_reviews, 1);
    *joined_out = true;
    rc = 0;
out:
    routing_pool_clear(&pool);
    return rc;
}

/* The lead's owner here with their notify targets; 1 when none. */
static int owner_load(cv_store_t *store, const char *lead_id,
                      routing_member_t *m, int *tier)
{
    memset(m, 0, sizeof(*m));
    char staff[ROUTING_ID_SIZE];
    int owned = routing_owner(store, lead_id, staff, sizeof(staff));
    if (owned <= 0)
        return owned < 0 ? -1 : 1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT tier FROM assignments WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    if (cv_store_step_row(stmt) != 0)
        return -1;
    *tier = sqlite3_column_int(stmt, 0);
    sqlite3_reset(stmt);
    int rc = routing_member_load(store, staff, ROUTING_DEFAULT_TZ,
                                 cv_clock_now_ms(), m);
    if (rc == 1) {
        /* gone from the directory: a bare member still names them */
        m->staff_id = strdup(staff);
        m->name = strdup("");
        if (m->staff_id == NULL || m->name == NULL) {
            routing_member_clear(m);
            return cv_error("cannot read the owner of '%s': out of memory",
                            lead_id);
        }
        rc = 0;
    }
    return rc;
}

/* Segment C for a lead with an owner: a junior takes it over to send the
 * rejection; when no junior is available the owner gets that task. */
static int segment_to_c(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                        const char *previous)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    routing_trace_t why;
    routing_trace_reset(&why);
    routing_trace_add(&why,
                      "re-scored to segment C (was %s): juniors send "
                      "the rejection; ",
                      previous != NULL ? previous : "?");
    routing_pool_t pool = {0};
    routing_member_t owner = {0};
    int chosen = -1;
    int rc = -1;
    if (segment_pick(store, &pool_reject, &pool, &chosen, &why) != 0)
        goto out;
    routing_join_t join = {
        .strategy = "segment_c",
        .task_kind = "send_rejection",
        .tier = 1,
    };
    if (chosen >= 0) {
        const routing_member_t *junior = &pool.members[chosen];
        if (routing_give(bus, scored, junior, &join, why.text) != 0 ||
            routing_segment_record(store, lead_id, previous, "C", "reassign",
                                   junior->staff_id, why.text) != 0)
            goto out;
        cv_metric_add(metric_rejects, 1);
        rc = 0;
        goto out;
    }
    int tier = 0;
    int found = owner_load(store, lead_id, &owner, &tier);
    if (found != 0) {
        rc = found < 0 ? -1 : 0;
        goto out;
    }
    routing_trace_add(&why,
                      "; the owner %s keeps the lead and sends the "
                      "rejection",
                      owner.staff_id);
    join.tier = tier;
    if (routing_emit_assigned(bus, scored, &owner, &join, why.text) != 0 ||
        routing_segment_record(store, lead_id, previous, "C", "owner_rejects",
                               owner.staff_id, why.text) != 0)
        goto out;
    cv_metric_add(metric_rejects, 1);
    cv_log_info("lead '%s': %s", lead_id, why.text);
    rc = 0;
out:
    routing_member_clear(&owner);
    routing_pool_clear(&pool);
    return rc;
}

int routing_segment_moved(routing_t *self, cv_bus_t *bus,
                          const Conveyor__LeadScored *scored)
{
    metrics_register();
    cv_store_t *store = cv_bus_store(bus);
    const Conveyor__Score *score = scored->score;
    const char *lead_id = scored->lead->lead_id;
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "UPDATE assignments SET segment = ?, total = ?"
                                " WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, score->segment);
    sqlite3_bind_int(stmt, 2, score->total);
    cv_store_bind_text(stmt, 3, lead_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    const char *now = score->segment != NULL ? score->segment : "";
    const char *before = scored->previous_segment;
    if (before != NULL && strcmp(before, now) == 0)
        return 0; /* the same segment: nothing for routing to do */
    if (strcmp(now, "C") == 0)
        return segment_to_c(bus, scored, before);
    const cv_routing_rules_t *rules = routing_rules_acquire(self);
    bool vip = cv_routing_list_has(&rules->vip_segments, now);
    routing_rules_release(self);
    if (vip) {
        bool joined = false;
        if (routing_review_exists(store, lead_id, "vip_review") == 0 &&
            routing_vip(self, bus, scored) != 0)
            return -1;
        joined = routing_review_exists(store, lead_id, "vip_review") == 1;
        return routing_segment_record(
            store, lead_id, before, now, joined ? "review" : "no_reviewer",
            NULL,
            joined ? "the head of sales reviews it; the owner keeps it"
                   : "no active head of sales to review it");
    }
    return routing_segment_record(store, lead_id, before, now, "none", NULL,
                                  "the owner keeps the lead");
}

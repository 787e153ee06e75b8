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

/* The head of sales reviews segment A leads and approves their proposals;
 * the round-robin spreads them when there are several heads. */
static const routing_target_t target_review = {
    .pool = "segment-a-head",
    .role = "head",
    .tier = -1,
    .kind = "segment A review by the head of sales",
    .strategy = "segment_a",
    .assign_role = "reviewer",
    .task_kind = "vip_review",
};

/* A segment C lead taken over by a junior, who sends the rejection. */
static const routing_target_t target_reject = {
    .pool = "segment-c",
    .role = "telemarketer",
    .tier = 1,
    .kind = "segment C",
    .strategy = "segment_c",
    .task_kind = "send_rejection",
};

/* The owner keeps a segment C lead and sends the rejection. */
static const routing_target_t target_owner_rejects = {
    .pool = "",
    .role = "",
    .tier = -1,
    .kind = "segment C",
    .strategy = "segment_c",
    .task_kind = "send_rejection",
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

/* 1 when the lead had a review of `kind` already, 0 when not, -1. */
static int review_exists(cv_store_t *store, const char *lead_id,
                         const char *kind)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT 1 FROM reviews WHERE lead_id = ? AND kind = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, kind);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return cv_error("cannot read the reviews of '%s': %s", lead_id,
                    sqlite3_errstr(rc));
}

int routing_segment_review(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                           const char *trace_id, bool *joined_out)
{
    metrics_register();
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    *joined_out = false;
    int seen = review_exists(store, lead_id, target_review.task_kind);
    if (seen != 0) {
        *joined_out = seen > 0; /* the head knows this lead already */
        return seen < 0 ? -1 : 0;
    }
    routing_trace_t why = {.length = 0};
    why.text[0] = '\0';
    bool joined = false;
    if (routing_assign_to(bus, scored, &target_review, trace_id, &joined,
                          &why) != 0)
        return -1;
    if (!joined) {
        cv_log_warn("segment A lead '%s' has no reviewer: %s", lead_id,
                    why.text);
        return 0;
    }
    *joined_out = true;
    /* the staff id is the last "chose X" of the trace */
    const char *chose = strstr(why.text, "; chose ");
    char staff[256] = "";
    if (chose != NULL)
        snprintf(staff, sizeof(staff), "%.*s", (int)strcspn(chose + 8, " ;"),
                 chose + 8);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT OR IGNORE INTO reviews (lead_id, kind, staff_id,"
               " rule_trace, at) VALUES (?, ?, ?, ?, ?)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, target_review.task_kind);
    cv_store_bind_text(stmt, 3, staff);
    cv_store_bind_text(stmt, 4, why.text);
    sqlite3_bind_int64(stmt, 5, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        return -1;
    cv_metric_add(metric_reviews, 1);
    return 0;
}

static void owner_clear(routing_member_t *m)
{
    free(m->staff_id);
    free(m->name);
    free(m->webhook_url);
    free(m->telegram_chat_id);
    free(m->email);
    memset(m, 0, sizeof(*m));
}

/* The lead's owner here, as a member to notify; 1 when there is none. */
static int owner_load(cv_store_t *store, const char *lead_id,
                      routing_member_t *m, int *tier)
{
    memset(m, 0, sizeof(*m));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT a.staff_id, coalesce(s.name, ''), a.tier,"
               " s.notify_webhook_url, s.notify_telegram_chat_id,"
               " s.notify_email FROM assignments a LEFT JOIN staff s"
               " ON s.staff_id = a.staff_id WHERE a.lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            return 1;
        return cv_error("cannot read the owner of '%s': %s", lead_id,
                        sqlite3_errstr(rc));
    }
    bool failed = false;
    m->staff_id = cv_store_column_dup(stmt, 0, &failed);
    m->name = cv_store_column_dup(stmt, 1, &failed);
    *tier = sqlite3_column_int(stmt, 2);
    m->webhook_url = cv_store_column_dup(stmt, 3, &failed);
    m->telegram_chat_id = cv_store_column_dup(stmt, 4, &failed);
    m->email = cv_store_column_dup(stmt, 5, &failed);
    sqlite3_reset(stmt);
    if (failed || m->staff_id == NULL) {
        owner_clear(m);
        return cv_error("cannot read the owner of '%s': out of memory",
                        lead_id);
    }
    return 0;
}

/* Segment C for a lead with an owner: a junior takes it over to send the
 * rejection; when no junior is available the owner gets that task. */
static int segment_to_c(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                        const char *previous, const char *trace_id)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    routing_trace_t why = {.length = 0};
    why.text[0] = '\0';
    routing_trace_add(&why, "re-scored to segment C (was %s)",
                      previous != NULL ? previous : "?");
    bool assigned = false;
    if (routing_assign_to(bus, scored, &target_reject, trace_id, &assigned,
                          &why) != 0)
        return -1;
    if (assigned) {
        cv_metric_add(metric_rejects, 1);
        const char *chose = strstr(why.text, "; chose ");
        char staff[256] = "";
        if (chose != NULL)
            snprintf(staff, sizeof(staff), "%.*s",
                     (int)strcspn(chose + 8, " ;"), chose + 8);
        return routing_segment_record(store, lead_id, previous, "C", "reassign",
                                      staff, why.text);
    }
    routing_member_t owner;
    int tier = 0;
    int rc = owner_load(store, lead_id, &owner, &tier);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    routing_trace_put(&why, "; the owner ");
    routing_trace_put(&why, owner.staff_id);
    routing_trace_put(&why, " keeps the lead and sends the rejection");
    rc = -1;
    if (routing_emit_assigned(bus, scored, &owner, tier, &target_owner_rejects,
                              why.text, trace_id) != 0 ||
        routing_segment_record(store, lead_id, previous, "C", "owner_rejects",
                               owner.staff_id, why.text) != 0)
        goto out;
    cv_metric_add(metric_rejects, 1);
    cv_log_info("lead '%s': %s", lead_id, why.text);
    rc = 0;
out:
    owner_clear(&owner);
    return rc;
}

int routing_segment_moved(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const char *trace_id)
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
    if (strcmp(now, "A") == 0) {
        bool joined = false;
        if (routing_segment_review(bus, scored, trace_id, &joined) != 0)
            return -1;
        return routing_segment_record(
            store, lead_id, before, now, joined ? "review" : "no_reviewer",
            NULL,
            joined ? "the head of sales reviews it; the owner keeps it"
                   : "no active head of sales to review it");
    }
    if (strcmp(now, "C") == 0)
        return segment_to_c(bus, scored, before, trace_id);
    return routing_segment_record(store, lead_id, before, now, "none", NULL,
                                  "the owner keeps the lead");
}

/* routing_assign: gives one scored lead to one person of the right tier by
 * smooth weighted round-robin, and says why. */
#include "routing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_routing_rr.h"

#define DAY_MS   (24LL * 3600 * 1000)
#define STRATEGY "round_robin"

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
        trace->length = sizeof(trace->text) - 1;
        memcpy(trace->text + trace->length - 3, "...", 4);
        return;
    }
    trace->length += (size_t)n;
}

void routing_trace_put(routing_trace_t *trace, const char *text)
{
    size_t room = sizeof(trace->text) - trace->length;
    if (room <= 1)
        return;
    size_t n = strlen(text);
    if (n >= room) {
        /* as routing_trace_add: fill up, then end in "..." */
        memcpy(trace->text + trace->length, text, room - 1);
        trace->length = sizeof(trace->text) - 1;
        memcpy(trace->text + trace->length - 3, "...", 4);
        return;
    }
    memcpy(trace->text + trace->length, text, n + 1);
    trace->length += n;
}

void routing_trace_int(routing_trace_t *trace, int value)
{
    char digits[16];
    size_t at = sizeof(digits) - 1;
    digits[at] = '\0';
    unsigned int v = value < 0 ? 0u - (unsigned int)value : (unsigned int)value;
    do {
        digits[--at] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    if (value < 0)
        digits[--at] = '-';
    routing_trace_put(trace, digits + at);
}

int routing_is_assigned(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT 1 FROM assignments WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return cv_error("cannot look up lead '%s' in '%s': %s", lead_id,
                    cv_store_path(store), sqlite3_errstr(rc));
}

/* Inbound leads (everything scoring sends) go to tier 2, sales. Cold call
 * lists (tier 1) and won leads (tier 3) arrive by other events. */
static const routing_target_t target_inbound = {
    .pool = "tier2-inbound",
    .role = "sales",
    .tier = 2,
    .kind = "inbound",
    .strategy = STRATEGY,
};

/* Segment C: juniors send the rejection (PRODUCT.md section 3). */
static const routing_target_t target_segment_c = {
    .pool = "segment-c",
    .role = "telemarketer",
    .tier = 1,
    .kind = "segment C",
    .strategy = "segment_c",
    .task_kind = "send_rejection",
};

static bool member_available(const routing_member_t *m)
{
    return m->capacity_per_day <= 0 || m->assigned_today < m->capacity_per_day;
}

static int store_assignment(cv_store_t *store, const char *lead_id,
                            const routing_member_t *m, int tier,
                            const char *strategy, const Conveyor__Score *score,
                            const char *trace, int64_t now_ms)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO assignments (lead_id, staff_id, tier, strategy,"
               " rule_trace, segment, total, assigned_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (lead_id) DO UPDATE SET"
               " staff_id = excluded.staff_id, tier = excluded.tier,"
               " strategy = excluded.strategy,"
               " rule_trace = excluded.rule_trace,"
               " segment = excluded.segment, total = excluded.total,"
               " assigned_at = excluded.assigned_at");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, m->staff_id);
    sqlite3_bind_int(stmt, 3, tier);
    cv_store_bind_text(stmt, 4, strategy);
    cv_store_bind_text(stmt, 5, trace);
    cv_store_bind_text(stmt, 6, score ? score->segment : NULL);
    if (score != NULL)
        sqlite3_bind_int(stmt, 7, score->total);
    sqlite3_bind_int64(stmt, 8, now_ms);
    return cv_store_step_done(stmt);
}

int routing_emit_assigned(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const routing_member_t *m, int tier,
                          const routing_target_t *target, const char *trace,
                          const char *trace_id)
{
    Conveyor__NotifyTarget notify = CONVEYOR__NOTIFY_TARGET__INIT;
    notify.webhook_url = m->webhook_url;
    notify.telegram_chat_id = m->telegram_chat_id;
    notify.email = m->email;
    Conveyor__LeadAssigned assigned = CONVEYOR__LEAD_ASSIGNED__INIT;
    assigned.lead = scored->lead;
    assigned.staff_id = m->staff_id;
    assigned.staff_name = m->name;
    assigned.notify = &notify;
    assigned.strategy = (char *)target->strategy;
    assigned.rule_trace = (char *)trace;
    if (tier > 0) {
        assigned.has_tier = true;
        assigned.tier = tier;
    }
    assigned.score = scored->score;
    assigned.role = (char *)target->assign_role;
    assigned.task_kind = (char *)target->task_kind;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED;
    env.lead_assigned = &assigned;
    env.trace_id = (char *)trace_id;
    return cv_bus_emit(bus, &env, "followup-scheduler", "console", NULL);
}

/* Describes the pool and the round-robin's inputs, marking who is full. */
static void trace_pool(routing_trace_t *why, const routing_pool_t *pool,
                       const cv_routing_rr_member_t *rr, const char *strategy)
{
    /* plain appends: this runs for every member of every lead */
    routing_trace_put(why, "; ");
    routing_trace_put(why, strategy);
    routing_trace_put(why, " over [");
    bool first = true;
    for (size_t i = 0; i < pool->count; i++) {
        if (!rr[i].available)
            continue;
        if (!first)
            routing_trace_put(why, ",");
        routing_trace_put(why, pool->members[i].staff_id);
        first = false;
    }
    routing_trace_put(why, "] weights [");
    first = true;
    for (size_t i = 0; i < pool->count; i++) {
        if (!rr[i].available)
            continue;
        if (!first)
            routing_trace_put(why, ",");
        routing_trace_int(why, cv_routing_rr_weight(&rr[i]));
        first = false;
    }
    routing_trace_put(why, "]");
    first = true;
    for (size_t i = 0; i < pool->count; i++) {
        const routing_member_t *m = &pool->members[i];
        if (rr[i].available)
            continue;
        routing_trace_add(why, "%s%s %d/%d",
                          first ? "; at capacity today: " : ", ", m->staff_id,
                          m->assigned_today, m->capacity_per_day);
        first = false;
    }
}

int routing_assign_to(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                      const routing_target_t *target, const char *trace_id,
                      bool *assigned, routing_trace_t *why)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    const Conveyor__Score *score = scored->score;
    int rc = -1;
    routing_pool_t pool = {0};
    cv_routing_rr_member_t *rr = NULL;
    *assigned = false;

    if (why->length > 0)
        routing_trace_put(why, "; ");
    if (target->tier > 0)
        routing_trace_add(why, "tier %d %s", target->tier, target->kind);
    else
        routing_trace_add(why, "%s", target->kind);
    if (score != NULL)
        routing_trace_add(why, " (segment %s, score %d)",
                          score->segment ? score->segment : "?", score->total);
    int64_t now = cv_clock_now_ms();
    int64_t day_start = now - now % DAY_MS;
    if (routing_pool_load(store, target->pool, target->tier, target->role,
                          day_start, &pool) != 0)
        goto out;
    if (pool.count == 0) {
        if (target->tier > 0)
            routing_trace_add(why,
                              "; no active staff with role %s and "
                              "tier %d",
                              target->role, target->tier);
        else
            routing_trace_add(why, "; no active staff with role %s",
                              target->role);
        rc = 0;
        goto out;
    }
    rr = calloc(pool.count, sizeof(*rr));
    if (rr == NULL) {
        cv_error("cannot route lead '%s': out of memory", lead_id);
        goto out;
    }
    for (size_t i = 0; i < pool.count; i++) {
        rr[i].id = pool.members[i].staff_id;
        rr[i].weight = pool.members[i].weight;
        rr[i].current = pool.members[i].current;
        rr[i].available = member_available(&pool.members[i]);
    }
    trace_pool(why, &pool, rr, target->strategy);
    int chosen = cv_routing_rr_pick(rr, pool.count);
    if (chosen < 0) {
        routing_trace_add(why, "; nobody available");
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < pool.count; i++)
        pool.members[i].current = rr[i].current;
    const routing_member_t *m = &pool.members[chosen];
    routing_trace_put(why, "; chose ");
    routing_trace_put(why, m->staff_id);
    if (m->capacity_per_day > 0)
        routing_trace_add(why, " (%d/%d today)", m->assigned_today + 1,
                          m->capacity_per_day);
    if (routing_pool_save(store, target->pool, &pool) != 0)
        goto out;
    /* an owner is the lead's assignment; a reviewer is kept by the
     * caller */
    if (target->assign_role == NULL &&
        store_assignment(store, lead_id, m, target->tier, target->strategy,
                         score, why->text, now) != 0)
        goto out;
    if (routing_emit_assigned(bus, scored, m, target->tier, target, why->text,
                              trace_id) != 0)
        goto out;
    *assigned = true;
    cv_log_info("lead '%s' %s '%s': %s", lead_id,
                target->assign_role != NULL ? "joined by" : "assigned to",
                m->staff_id, why->text);
    rc = 0;
out:
    free(rr);
    routing_pool_clear(&pool);
    return rc;
}

static bool segment_is(const Conveyor__Score *score, const char *segment)
{
    return score != NULL && score->segment != NULL &&
           strcmp(score->segment, segment) == 0;
}

int routing_assign(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                   const char *trace_id, bool *assigned, routing_trace_t *why)
{
    why->length = 0;
    why->text[0] = '\0';
    *assigned = false;
    if (segment_is(scored->score, "C")) {
        if (routing_assign_to(bus, scored, &target_segment_c, trace_id,
                              assigned, why) != 0)
            return -1;
        if (*assigned)
            return 0;
        routing_trace_put(why, "; so to sales");
    }
    if (routing_assign_to(bus, scored, &target_inbound, trace_id, assigned,
                          why) != 0)
        return -1;
    bool joined = false;
    if (*assigned && segment_is(scored->score, "A"))
        return routing_segment_review(bus, scored, trace_id, &joined);
    return 0;
}

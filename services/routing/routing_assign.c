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
static int lead_tier(const Conveyor__LeadScored *scored, const char **role,
                     const char **pool, const char **kind)
{
    (void)scored;
    *role = "sales";
    *pool = "tier2-inbound";
    *kind = "inbound";
    return 2;
}

static bool member_available(const routing_member_t *m)
{
    return m->capacity_per_day <= 0 || m->assigned_today < m->capacity_per_day;
}

static int store_assignment(cv_store_t *store, const char *lead_id,
                            const routing_member_t *m, int tier,
                            const Conveyor__Score *score, const char *trace,
                            int64_t now_ms)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO assignments (lead_id, staff_id, tier, strategy,"
               " rule_trace, segment, total, assigned_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, m->staff_id);
    sqlite3_bind_int(stmt, 3, tier);
    cv_store_bind_text(stmt, 4, STRATEGY);
    cv_store_bind_text(stmt, 5, trace);
    cv_store_bind_text(stmt, 6, score ? score->segment : NULL);
    if (score != NULL)
        sqlite3_bind_int(stmt, 7, score->total);
    sqlite3_bind_int64(stmt, 8, now_ms);
    return cv_store_step_done(stmt);
}

static int emit_assigned(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                         const routing_member_t *m, int tier, const char *trace,
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
    assigned.strategy = STRATEGY;
    assigned.rule_trace = (char *)trace;
    assigned.has_tier = true;
    assigned.tier = tier;
    assigned.score = scored->score;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED;
    env.lead_assigned = &assigned;
    env.trace_id = (char *)trace_id;
    return cv_bus_emit(bus, &env, "followup-scheduler", "console", NULL);
}

/* Describes the pool and the round-robin's inputs, marking who is full. */
static void trace_pool(routing_trace_t *why, const routing_pool_t *pool,
                       const cv_routing_rr_member_t *rr)
{
    /* plain appends: this runs for every member of every lead */
    routing_trace_put(why, "; " STRATEGY " over [");
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

int routing_assign(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                   const char *trace_id, bool *assigned, routing_trace_t *why)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    const Conveyor__Score *score = scored->score;
    int rc = -1;
    routing_pool_t pool = {0};
    cv_routing_rr_member_t *rr = NULL;
    *assigned = false;
    why->length = 0;
    why->text[0] = '\0';

    const char *role, *pool_name, *kind;
    int tier = lead_tier(scored, &role, &pool_name, &kind);
    routing_trace_add(why, "tier %d %s", tier, kind);
    if (score != NULL)
        routing_trace_add(why, " (segment %s, score %d)",
                          score->segment ? score->segment : "?", score->total);
    int64_t now = cv_clock_now_ms();
    int64_t day_start = now - now % DAY_MS;
    if (routing_pool_load(store, pool_name, tier, role, day_start, &pool) != 0)
        goto out;
    if (pool.count == 0) {
        routing_trace_add(why, "; no active staff with role %s and tier %d",
                          role, tier);
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
    trace_pool(why, &pool, rr);
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
    if (routing_pool_save(store, pool_name, &pool) != 0 ||
        store_assignment(store, lead_id, m, tier, score, why->text, now) != 0 ||
        emit_assigned(bus, scored, m, tier, why->text, trace_id) != 0)
        goto out;
    *assigned = true;
    cv_log_info("lead '%s' assigned to '%s': %s", lead_id, m->staff_id,
                why->text);
    rc = 0;
out:
    free(rr);
    routing_pool_clear(&pool);
    return rc;
}

/* routing_staff: routing's copy of the staff directory, the pools of
 * members a rule chooses from, and who of them is available now. */
#include "routing.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

/* A JSON array of the strings, as text the caller frees; NULL when out of
 * memory. */
static char *strings_json(char **items, size_t count)
{
    json_t *array = json_array();
    if (array == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++)
        if (items[i] != NULL)
            json_array_append_new(array, json_string(items[i]));
    char *text = json_dumps(array, JSON_COMPACT);
    json_decref(array);
    return text;
}

/* NULL for a missing or empty text, so the column holds NULL. */
static const char *or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* Whether the member was active before this update (false when new). */
static int staff_was_active(cv_store_t *store, const char *staff_id,
                            bool *active)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT active FROM staff WHERE staff_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    int rc = cv_store_step_row(stmt);
    if (rc < 0)
        return -1;
    *active = rc == 0 && sqlite3_column_int(stmt, 0) != 0;
    sqlite3_reset(stmt);
    return 0;
}

int routing_staff_apply(cv_store_t *store, const Conveyor__StaffMember *member,
                        int64_t now_ms, bool *was_active)
{
    int rc = -1;
    char *lists[4] = {NULL, NULL, NULL, NULL};
    if (staff_was_active(store, member->staff_id, was_active) != 0)
        return -1;
    lists[0] = strings_json(member->channels, member->n_channels);
    lists[1] = strings_json(member->industries, member->n_industries);
    lists[2] = strings_json(member->regions, member->n_regions);
    lists[3] = strings_json(member->products, member->n_products);
    for (int i = 0; i < 4; i++) {
        if (lists[i] == NULL) {
            cv_error("cannot store staff member '%s': out of memory",
                     member->staff_id);
            goto out;
        }
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT INTO staff (staff_id, name, role, tier, team, channels_json,"
        " industries_json, regions_json, products_json, timezone,"
        " working_hours_json, capacity_per_day, weight, active,"
        " notify_webhook_url, notify_telegram_chat_id, notify_email,"
        " updated_at, notify_slack_webhook_url)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15, ?16, ?17, ?18, ?19)"
        " ON CONFLICT (staff_id) DO UPDATE SET name = excluded.name,"
        " role = excluded.role, tier = excluded.tier, team = excluded.team,"
        " channels_json = excluded.channels_json,"
        " industries_json = excluded.industries_json,"
        " regions_json = excluded.regions_json,"
        " products_json = excluded.products_json,"
        " timezone = excluded.timezone,"
        " working_hours_json = excluded.working_hours_json,"
        " capacity_per_day = excluded.capacity_per_day,"
        " weight = excluded.weight, active = excluded.active,"
        " notify_webhook_url = excluded.notify_webhook_url,"
        " notify_telegram_chat_id = excluded.notify_telegram_chat_id,"
        " notify_email = excluded.notify_email,"
        " notify_slack_webhook_url = excluded.notify_slack_webhook_url,"
        " updated_at = excluded.updated_at");
    if (stmt == NULL)
        goto out;
    const Conveyor__NotifyTarget *notify = member->notify;
    cv_store_bind_text(stmt, 1, member->staff_id);
    cv_store_bind_text(stmt, 2, member->name ? member->name : "");
    cv_store_bind_text(stmt, 3, member->role ? member->role : "");
    sqlite3_bind_int(stmt, 4, member->has_tier ? member->tier : 0);
    cv_store_bind_text(stmt, 5, or_null(member->team));
    for (int i = 0; i < 4; i++)
        cv_store_bind_text(stmt, 6 + i, lists[i]);
    cv_store_bind_text(stmt, 10, or_null(member->timezone));
    cv_store_bind_text(stmt, 11, or_null(member->working_hours_json));
    sqlite3_bind_int(stmt, 12,
                     member->has_capacity_per_day &&
                             member->capacity_per_day > 0
                         ? member->capacity_per_day
                         : 0);
    /* a missing weight means an equal share */
    sqlite3_bind_int(stmt, 13,
                     member->has_weight && member->weight > 0 ? member->weight
                                                              : 1);
    /* a member is active unless the directory says otherwise */
    sqlite3_bind_int(stmt, 14, member->has_active && !member->active ? 0 : 1);
    cv_store_bind_text(stmt, 15, notify ? or_null(notify->webhook_url) : NULL);
    cv_store_bind_text(stmt, 16,
                       notify ? or_null(notify->telegram_chat_id) : NULL);
    cv_store_bind_text(stmt, 17, notify ? or_null(notify->email) : NULL);
    sqlite3_bind_int64(stmt, 18, now_ms);
    cv_store_bind_text(stmt, 19,
                       notify ? or_null(notify->slack_webhook_url) : NULL);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    rc = 0;
out:
    for (int i = 0; i < 4; i++)
        free(lists[i]);
    return rc;
}

void routing_member_clear(routing_member_t *m)
{
    if (m == NULL)
        return;
    free(m->staff_id);
    free(m->name);
    free(m->role);
    free(m->team);
    free(m->timezone);
    free(m->working_hours);
    free(m->webhook_url);
    free(m->telegram_chat_id);
    free(m->email);
    free(m->slack_webhook_url);
    memset(m, 0, sizeof(*m));
}

void routing_pool_clear(routing_pool_t *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->count; i++)
        routing_member_clear(&pool->members[i]);
    free(pool->members);
    memset(pool, 0, sizeof(*pool));
}

#define MEMBER_COLUMNS                                                         \
    "s.staff_id, s.name, s.role, s.team, s.timezone, s.working_hours_json,"    \
    " s.notify_webhook_url, s.notify_telegram_chat_id, s.notify_email,"        \
    " s.tier, s.weight, s.capacity_per_day, s.active,"                        \
    " s.notify_slack_webhook_url"

/* Reads a row of MEMBER_COLUMNS (availability comes after). */
static int member_read(sqlite3_stmt *stmt, routing_member_t *m)
{
    bool failed = false;
    memset(m, 0, sizeof(*m));
    m->staff_id = cv_store_column_dup(stmt, 0, &failed);
    m->name = cv_store_column_dup(stmt, 1, &failed);
    m->role = cv_store_column_dup(stmt, 2, &failed);
    m->team = cv_store_column_dup(stmt, 3, &failed);
    m->timezone = cv_store_column_dup(stmt, 4, &failed);
    m->working_hours = cv_store_column_dup(stmt, 5, &failed);
    m->webhook_url = cv_store_column_dup(stmt, 6, &failed);
    m->telegram_chat_id = cv_store_column_dup(stmt, 7, &failed);
    m->email = cv_store_column_dup(stmt, 8, &failed);
    m->tier = sqlite3_column_int(stmt, 9);
    m->weight = sqlite3_column_int(stmt, 10);
    m->capacity_per_day = sqlite3_column_int(stmt, 11);
    m->active = sqlite3_column_int(stmt, 12) != 0;
    m->slack_webhook_url = cv_store_column_dup(stmt, 13, &failed);
    if (failed || m->staff_id == NULL) {
        routing_member_clear(m);
        return cv_error("cannot read a staff member: out of memory");
    }
    return 0;
}

static int member_availability(cv_store_t *store, routing_member_t *m,
                               const char *default_tz, int64_t now_ms)
{
    cv_routing_person_t person = {
        .staff_id = m->staff_id,
        .active = m->active,
        .timezone = m->timezone,
        .working_hours_json = m->working_hours,
        .team = m->team,
        .capacity_per_day = m->capacity_per_day,
    };
    return cv_routing_rr_availability(store, &person, default_tz, now_ms,
                                      &m->avail);
}

int routing_member_load(cv_store_t *store, const char *staff_id,
                        const char *default_tz, int64_t now_ms,
                        routing_member_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT " MEMBER_COLUMNS " FROM staff s WHERE s.staff_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    int rc = cv_store_step_row(stmt);
    if (rc != 0)
        return rc;
    rc = member_read(stmt, out);
    sqlite3_reset(stmt);
    if (rc != 0)
        return -1;
    if (member_availability(store, out, default_tz, now_ms) != 0) {
        routing_member_clear(out);
        return -1;
    }
    return 0;
}

int routing_pool_load(cv_store_t *store, const routing_pool_spec_t *spec,
                      const char *default_tz, int64_t now_ms,
                      routing_pool_t *out)
{
    routing_pool_clear(out);
    /* the "owns" list is one of four columns, chosen by name */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT " MEMBER_COLUMNS " FROM staff s"
               " WHERE (?1 IS NULL OR s.role = ?1)"
               " AND (?2 <= 0 OR s.tier = ?2)"
               " AND (?3 IS NULL OR lower(coalesce(s.team, '')) = lower(?3))"
               " AND (?4 IS NULL OR s.staff_id = ?4)"
               " AND (?5 IS NULL OR s.staff_id <> ?5)"
               " AND (?7 IS NULL OR EXISTS (SELECT 1 FROM json_each(CASE ?6"
               "   WHEN 'channels' THEN s.channels_json"
               "   WHEN 'industries' THEN s.industries_json"
               "   WHEN 'regions' THEN s.regions_json"
               "   ELSE s.products_json END) j"
               "  WHERE lower(j.value) = lower(?7)))"
               " ORDER BY s.staff_id");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, spec->role);
    sqlite3_bind_int(stmt, 2, spec->tier);
    cv_store_bind_text(stmt, 3, spec->team);
    cv_store_bind_text(stmt, 4, spec->only);
    cv_store_bind_text(stmt, 5, spec->exclude);
    cv_store_bind_text(stmt, 6, spec->owns_list ? spec->owns_list : "");
    cv_store_bind_text(stmt, 7, spec->owns_list ? spec->owns_value : NULL);
    if (spec->owns_list != NULL && spec->owns_value == NULL)
        cv_store_bind_text(stmt, 7, "\x01"); /* owns nothing: no match */
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        if (spec->staff != NULL && spec->staff->count > 0 &&
            !cv_routing_list_has(spec->staff, id))
            continue;
        if (out->count == out->capacity) {
            size_t cap = out->capacity ? out->capacity * 2 : 8;
            routing_member_t *grown =
                realloc(out->members, cap * sizeof(*grown));
            if (grown == NULL) {
                failed = true;
                break;
            }
            out->members = grown;
            out->capacity = cap;
        }
        if (member_read(stmt, &out->members[out->count]) != 0) {
            failed = true;
            break;
        }
        out->count++;
    }
    sqlite3_reset(stmt);
    if (failed) {
        routing_pool_clear(out);
        return cv_error("cannot load the '%s' pool: out of memory", spec->key);
    }
    if (rc != SQLITE_DONE) {
        routing_pool_clear(out);
        return cv_error("cannot load the '%s' pool from '%s': %s", spec->key,
                        cv_store_path(store), sqlite3_errstr(rc));
    }
    /* after the rows: the availability look-ups use statements of their
     * own */
    for (size_t i = 0; i < out->count; i++)
        if (member_availability(store, &out->members[i], default_tz, now_ms) !=
            0) {
            routing_pool_clear(out);
            return -1;
        }
    return 0;
}

void routing_pool_describe(const routing_pool_t *pool, routing_trace_t *why)
{
    bool first = true;
    routing_trace_put(why, "available [");
    for (size_t i = 0; i < pool->count; i++) {
        const routing_member_t *m = &pool->members[i];
        if (!m->avail.available)
            continue;
        routing_trace_add(why, "%s%s w%d", first ? "" : ", ", m->staff_id,
                          m->weight);
        if (m->capacity_per_day > 0)
            routing_trace_add(why, " %d/%d", m->avail.load,
                              m->capacity_per_day);
        first = false;
    }
    routing_trace_put(why, "]");
    first = true;
    for (size_t i = 0; i < pool->count; i++) {
        const routing_member_t *m = &pool->members[i];
        if (m->avail.available)
            continue;
        routing_trace_add(why, "%s%s %s", first ? "; unavailable: " : ", ",
                          m->staff_id, m->avail.why);
        first = false;
    }
}

int routing_pool_pick(cv_store_t *store, const routing_pool_spec_t *spec,
                      routing_pool_t *pool, bool dry, routing_trace_t *why)
{
    routing_pool_describe(pool, why);
    if (pool->count == 0) {
        routing_trace_put(why, "; nobody in the pool");
        return -1;
    }
    cv_routing_rr_member_t *rr = calloc(pool->count, sizeof(*rr));
    if (rr == NULL) {
        cv_error("cannot route: out of memory");
        return -2;
    }
    for (size_t i = 0; i < pool->count; i++) {
        rr[i].id = pool->members[i].staff_id;
        rr[i].weight = pool->members[i].weight;
        rr[i].available = pool->members[i].avail.available;
    }
    int chosen;
    if (dry) {
        chosen = cv_routing_rr_load(store, spec->key, rr, pool->count) != 0
                     ? -2
                     : cv_routing_rr_pick(rr, pool->count);
    } else {
        chosen = cv_routing_rr_choose(store, spec->key, rr, pool->count);
    }
    free(rr);
    if (chosen == -1)
        routing_trace_put(why, "; nobody available");
    else if (chosen >= 0)
        routing_trace_add(why, "; round-robin '%s' chose %s", spec->key,
                          pool->members[chosen].staff_id);
    return chosen;
}

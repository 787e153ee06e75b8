/* routing_staff: routing's copy of the staff directory, and the pools of
 * members that the round-robin chooses from. */
#include "routing.h"

#include <jansson.h>
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

int routing_staff_apply(cv_store_t *store, const Conveyor__StaffMember *member,
                        int64_t now_ms)
{
    int rc = -1;
    char *lists[4] = {NULL, NULL, NULL, NULL};
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
        " updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, ?15, ?16, ?17, ?18)"
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
    if (cv_store_step_done(stmt) != 0)
        goto out;
    rc = 0;
out:
    for (int i = 0; i < 4; i++)
        free(lists[i]);
    return rc;
}

static void member_free(routing_member_t *m)
{
    free(m->staff_id);
    free(m->name);
    free(m->webhook_url);
    free(m->telegram_chat_id);
    free(m->email);
    memset(m, 0, sizeof(*m));
}

void routing_pool_clear(routing_pool_t *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->count; i++)
        member_free(&pool->members[i]);
    free(pool->members);
    memset(pool, 0, sizeof(*pool));
}

int routing_pool_load(cv_store_t *store, const char *pool, int tier,
                      const char *role, int64_t day_start_ms,
                      routing_pool_t *out)
{
    routing_pool_clear(out);
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "SELECT s.staff_id, s.name, s.weight, s.capacity_per_day,"
        " COALESCE(r.current, 0),"
        /* counted only under a cap, where the cap bounds the count */
        " CASE WHEN s.capacity_per_day > 0 THEN"
        "  (SELECT count(*) FROM assignments a"
        "   WHERE a.staff_id = s.staff_id AND a.assigned_at >= ?3)"
        " ELSE 0 END,"
        " s.notify_webhook_url, s.notify_telegram_chat_id, s.notify_email"
        " FROM staff s LEFT JOIN rr_state r"
        "  ON r.pool = ?1 AND r.staff_id = s.staff_id"
        " WHERE s.active = 1 AND s.role = ?2 AND (?4 < 0 OR s.tier = ?4)"
        " ORDER BY s.staff_id");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, pool);
    cv_store_bind_text(stmt, 2, role);
    sqlite3_bind_int64(stmt, 3, day_start_ms);
    sqlite3_bind_int(stmt, 4, tier);
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
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
        routing_member_t *m = &out->members[out->count++];
        memset(m, 0, sizeof(*m));
        m->staff_id = cv_store_column_dup(stmt, 0, &failed);
        m->name = cv_store_column_dup(stmt, 1, &failed);
        m->weight = sqlite3_column_int(stmt, 2);
        m->capacity_per_day = sqlite3_column_int(stmt, 3);
        m->current = sqlite3_column_int64(stmt, 4);
        m->assigned_today = sqlite3_column_int(stmt, 5);
        m->webhook_url = cv_store_column_dup(stmt, 6, &failed);
        m->telegram_chat_id = cv_store_column_dup(stmt, 7, &failed);
        m->email = cv_store_column_dup(stmt, 8, &failed);
        if (failed || m->staff_id == NULL)
            break;
    }
    sqlite3_reset(stmt);
    if (failed) {
        routing_pool_clear(out);
        return cv_error("cannot load the '%s' pool: out of memory", pool);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        routing_pool_clear(out);
        return cv_error("cannot load the '%s' pool from '%s': %s", pool,
                        cv_store_path(store), sqlite3_errstr(rc));
    }
    return 0;
}

int routing_pool_save(cv_store_t *store, const char *pool,
                      const routing_pool_t *members)
{
    if (members->count == 0)
        return 0;
    /* looked up once: cv_store_step_done resets it for the next member */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO rr_state (pool, staff_id, current)"
               " VALUES (?, ?, ?) ON CONFLICT (pool, staff_id)"
               " DO UPDATE SET current = excluded.current");
    if (stmt == NULL)
        return -1;
    for (size_t i = 0; i < members->count; i++) {
        cv_store_bind_text(stmt, 1, pool);
        cv_store_bind_text(stmt, 2, members->members[i].staff_id);
        sqlite3_bind_int64(stmt, 3, members->members[i].current);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    return 0;
}

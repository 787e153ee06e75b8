/* cv_routing_rr: smooth weighted round-robin. */
#include "cv_routing_rr.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cv_calendar.h"
#include "cv_tz.h"
#include "cv_workhours.h"

int cv_routing_rr_weight(const cv_routing_rr_member_t *member)
{
    return member->weight < 1 ? 1 : member->weight;
}

int cv_routing_rr_pick(cv_routing_rr_member_t *members, size_t count)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        cv_routing_rr_member_t *m = &members[i];
        if (!m->available)
            continue;
        int w = cv_routing_rr_weight(m);
        m->current += w;
        total += w;
        if (best < 0 || m->current > members[best].current)
            best = (int)i;
    }
    if (best >= 0)
        members[best].current -= total;
    return best;
}

/* ------------------------------------------------------------------ */
/* The store half                                                      */

const char cv_routing_rr_schema[] = "CREATE TABLE IF NOT EXISTS rr_state ("
                                    "  pool TEXT NOT NULL,"
                                    "  staff_id TEXT NOT NULL,"
                                    "  current INTEGER NOT NULL,"
                                    "  PRIMARY KEY (pool, staff_id)"
                                    ") STRICT;"
                                    "CREATE TABLE IF NOT EXISTS rr_day_load ("
                                    "  staff_id TEXT NOT NULL,"
                                    "  day TEXT NOT NULL,"
                                    "  count INTEGER NOT NULL,"
                                    "  PRIMARY KEY (staff_id, day)"
                                    ") STRICT;";

int cv_routing_rr_load(cv_store_t *store, const char *pool,
                       cv_routing_rr_member_t *members, size_t count)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT current FROM rr_state WHERE pool = ? AND staff_id = ?");
    if (stmt == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        cv_store_bind_text(stmt, 1, pool);
        cv_store_bind_text(stmt, 2, members[i].id);
        int rc = cv_store_step_row(stmt);
        if (rc < 0)
            return -1;
        members[i].current = rc == 0 ? sqlite3_column_int64(stmt, 0) : 0;
        sqlite3_reset(stmt);
    }
    return 0;
}

int cv_routing_rr_save(cv_store_t *store, const char *pool,
                       const cv_routing_rr_member_t *members, size_t count)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "INSERT INTO rr_state (pool, staff_id, current)"
                                " VALUES (?, ?, ?) ON CONFLICT (pool, staff_id)"
                                " DO UPDATE SET current = excluded.current");
    if (stmt == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        cv_store_bind_text(stmt, 1, pool);
        cv_store_bind_text(stmt, 2, members[i].id);
        sqlite3_bind_int64(stmt, 3, members[i].current);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    return 0;
}

int cv_routing_rr_choose(cv_store_t *store, const char *pool,
                         cv_routing_rr_member_t *members, size_t count)
{
    if (cv_routing_rr_load(store, pool, members, count) != 0)
        return -2;
    int chosen = cv_routing_rr_pick(members, count);
    if (chosen < 0)
        return -1;
    if (cv_routing_rr_save(store, pool, members, count) != 0)
        return -2;
    return chosen;
}

static int rr_day_load(cv_store_t *store, const char *staff_id, const char *day,
                       int *load)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT count FROM rr_day_load WHERE staff_id = ? AND day = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    cv_store_bind_text(stmt, 2, day);
    int rc = cv_store_step_row(stmt);
    if (rc < 0)
        return -1;
    *load = rc == 0 ? sqlite3_column_int(stmt, 0) : 0;
    sqlite3_reset(stmt);
    return 0;
}

int cv_routing_rr_day_add(cv_store_t *store, const char *staff_id,
                          const char *day)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO rr_day_load (staff_id, day, count) VALUES (?, ?, 1)"
               " ON CONFLICT (staff_id, day) DO UPDATE SET count = count + 1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    cv_store_bind_text(stmt, 2, day);
    return cv_store_step_done(stmt);
}

int cv_routing_rr_availability(cv_store_t *store,
                               const cv_routing_person_t *person,
                               const char *default_tz, int64_t now_ms,
                               cv_routing_availability_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *zone = person->timezone != NULL && person->timezone[0] != '\0'
                           ? person->timezone
                           : default_tz;
    const cv_tz_t *tz = zone != NULL ? cv_tz_get(zone) : NULL;
    bool zone_unknown = tz == NULL;
    if (tz == NULL)
        tz = cv_tz_get(default_tz != NULL ? default_tz : "UTC");
    if (tz == NULL)
        tz = cv_tz_get("UTC");
    struct tm local;
    int offset = 0;
    memset(&local, 0, sizeof(local));
    if (tz == NULL || cv_tz_to_local(tz, now_ms, &local, &offset) != 0) {
        time_t secs = (time_t)(now_ms / 1000);
        gmtime_r(&secs, &local);
    }
    snprintf(out->day, sizeof(out->day), "%04d-%02d-%02d", local.tm_year + 1900,
             local.tm_mon + 1, local.tm_mday);
    if (rr_day_load(store, person->staff_id, out->day, &out->load) != 0)
        return -1;
    if (!person->active) {
        snprintf(out->why, sizeof(out->why), "inactive (on leave)");
        return 0;
    }
    if (person->working_hours_json != NULL &&
        person->working_hours_json[0] != '\0') {
        cv_workhours_t hours;
        char error[160];
        if (cv_workhours_parse(person->working_hours_json, &hours, error,
                               sizeof(error)) != 0) {
            snprintf(out->why, sizeof(out->why),
                     "working hours unreadable: %.150s", error);
            return 0;
        }
        if (cv_workhours_is_set(&hours) &&
            !cv_workhours_open_at(&hours, tz, cv_calendar_default(),
                                  person->team, now_ms)) {
            snprintf(out->why, sizeof(out->why),
                     "off shift (%s%s %02d:%02d, %s)", zone ? zone : "UTC",
                     zone_unknown ? " unknown, default zone" : "",
                     local.tm_hour, local.tm_min, out->day);
            return 0;
        }
    }
    if (person->capacity_per_day > 0 && out->load >= person->capacity_per_day) {
        snprintf(out->why, sizeof(out->why), "at capacity %d/%d on %s",
                 out->load, person->capacity_per_day, out->day);
        return 0;
    }
    out->available = true;
    return 0;
}

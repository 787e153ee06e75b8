/* cv_routing_rr: smooth weighted round-robin. */
#include "cv_routing_rr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_calendar.h"
#include "cv_log.h"
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

const char cv_routing_rr_schema[] = "CREATE TABLE IF NOT EXISTS rr_pools ("
                                    "  pool TEXT PRIMARY KEY,"
                                    "  state TEXT NOT NULL"
                                    ") STRICT;"
                                    "CREATE TABLE IF NOT EXISTS rr_day_load ("
                                    "  staff_id TEXT NOT NULL,"
                                    "  day TEXT NOT NULL,"
                                    "  count INTEGER NOT NULL,"
                                    "  PRIMARY KEY (staff_id, day)"
                                    ") STRICT;";

/* One line of a pool's stored state: "current staff_id". */
typedef struct {
    const char *id;  /* into the state text, not NUL-terminated */
    size_t length;   /* bytes of id */
    int64_t current; /* its value */
    bool passed;     /* a member given now has this id */
} rr_line_t;

/* The pool's state row, as a malloc'd text ("" when the pool has none);
 * NULL on error (logged). */
static char *rr_state_read(cv_store_t *store, const char *pool)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT state FROM rr_pools WHERE pool = ?");
    if (stmt == NULL)
        return NULL;
    cv_store_bind_text(stmt, 1, pool);
    int rc = cv_store_step_row(stmt);
    if (rc < 0)
        return NULL;
    char *text = rc == 0 ? cv_store_column_dup(stmt, 0, NULL) : strdup("");
    if (rc == 0)
        sqlite3_reset(stmt);
    if (text == NULL)
        cv_error("cannot read the round-robin state of '%s': out of memory",
                 pool);
    return text;
}

/* Splits `text` into lines; *lines is malloc'd (NULL when none). 0 or -1
 * when out of memory. A line that does not read is skipped. */
static int rr_state_parse(const char *text, rr_line_t **lines, size_t *count)
{
    *lines = NULL;
    *count = 0;
    size_t cap = 0;
    for (const char *p = text; *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *space = memchr(p, ' ', len);
        if (space != NULL && space > p && space + 1 < p + len) {
            char number[24];
            size_t digits = (size_t)(space - p);
            char *stop = NULL;
            if (digits < sizeof(number)) {
                memcpy(number, p, digits);
                number[digits] = '\0';
                errno = 0;
                long long value = strtoll(number, &stop, 10);
                if (errno == 0 && stop == number + digits) {
                    if (*count == cap) {
                        cap = cap ? cap * 2 : 16;
                        rr_line_t *grown = realloc(*lines, cap * sizeof(*grown));
                        if (grown == NULL) {
                            free(*lines);
                            *lines = NULL;
                            *count = 0;
                            return -1;
                        }
                        *lines = grown;
                    }
                    (*lines)[(*count)++] = (rr_line_t){
                        .id = space + 1,
                        .length = len - digits - 1,
                        .current = value,
                    };
                }
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return 0;
}

/* The line of `id`, looked for from *hint on (members come in the order
 * they were saved in, so this is one step each), or NULL. */
static rr_line_t *rr_line_find(rr_line_t *lines, size_t count, const char *id,
                               size_t *hint)
{
    size_t len = strlen(id);
    for (size_t k = 0; k < count; k++) {
        size_t i = (*hint + k) % count;
        if (lines[i].length == len && memcmp(lines[i].id, id, len) == 0) {
            *hint = i + 1;
            return &lines[i];
        }
    }
    return NULL;
}

/* Sets each member's current from `text` (0 for one not in it). */
static int rr_state_apply(const char *text, const char *pool,
                          cv_routing_rr_member_t *members, size_t count)
{
    rr_line_t *lines = NULL;
    size_t n = 0, hint = 0;
    if (rr_state_parse(text, &lines, &n) != 0)
        return cv_error("cannot read the round-robin state of '%s': out of "
                        "memory",
                        pool);
    for (size_t i = 0; i < count; i++) {
        rr_line_t *line = rr_line_find(lines, n, members[i].id, &hint);
        members[i].current = line != NULL ? line->current : 0;
    }
    free(lines);
    return 0;
}

/* Appends "current id\n" to buf (grown as needed). 0 or -1. */
static int rr_buf_add(char **buf, size_t *used, size_t *cap, int64_t current,
                      const char *id, size_t id_len)
{
    size_t need = *used + 24 + id_len + 2;
    if (need > *cap) {
        size_t grown_cap = *cap ? *cap : 256;
        while (grown_cap < need)
            grown_cap *= 2;
        char *grown = realloc(*buf, grown_cap);
        if (grown == NULL)
            return -1;
        *buf = grown;
        *cap = grown_cap;
    }
    int n = snprintf(*buf + *used, *cap - *used, "%lld ", (long long)current);
    *used += (size_t)n;
    memcpy(*buf + *used, id, id_len);
    *used += id_len;
    (*buf)[(*used)++] = '\n';
    (*buf)[*used] = '\0';
    return 0;
}

/* Writes the members' state over `old` (the row as it was): the members
 * first, in their order, then the lines of those not passed now. */
static int rr_state_write(cv_store_t *store, const char *pool, const char *old,
                          const cv_routing_rr_member_t *members, size_t count)
{
    rr_line_t *lines = NULL;
    size_t n = 0, hint = 0;
    char *buf = NULL;
    size_t used = 0, cap = 0;
    int rc = -1;
    if (rr_state_parse(old, &lines, &n) != 0)
        goto oom;
    for (size_t i = 0; i < count; i++) {
        const char *id = members[i].id;
        rr_line_t *line = rr_line_find(lines, n, id, &hint);
        if (line != NULL)
            line->passed = true;
        if (strchr(id, '\n') != NULL)
            continue; /* would not read back as one line */
        if (rr_buf_add(&buf, &used, &cap, members[i].current, id,
                       strlen(id)) != 0)
            goto oom;
    }
    for (size_t i = 0; i < n; i++)
        if (!lines[i].passed &&
            rr_buf_add(&buf, &used, &cap, lines[i].current, lines[i].id,
                       lines[i].length) != 0)
            goto oom;
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "INSERT INTO rr_pools (pool, state)"
                                " VALUES (?, ?) ON CONFLICT (pool)"
                                " DO UPDATE SET state = excluded.state");
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, pool);
    cv_store_bind_text(stmt, 2, buf != NULL ? buf : "");
    rc = cv_store_step_done(stmt);
    goto out;
oom:
    cv_error("cannot save the round-robin state of '%s': out of memory", pool);
out:
    free(lines);
    free(buf);
    return rc;
}

int cv_routing_rr_load(cv_store_t *store, const char *pool,
                       cv_routing_rr_member_t *members, size_t count)
{
    char *text = rr_state_read(store, pool);
    if (text == NULL)
        return -1;
    int rc = rr_state_apply(text, pool, members, count);
    free(text);
    return rc;
}

int cv_routing_rr_choose(cv_store_t *store, const char *pool,
                         cv_routing_rr_member_t *members, size_t count)
{
    /* one read of the row serves both the pick and the merge on save */
    char *text = rr_state_read(store, pool);
    if (text == NULL)
        return -2;
    int chosen = -2;
    if (rr_state_apply(text, pool, members, count) != 0)
        goto out;
    chosen = cv_routing_rr_pick(members, count);
    if (chosen >= 0 && rr_state_write(store, pool, text, members, count) != 0)
        chosen = -2;
out:
    free(text);
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
    /* the load matters only against a cap: no read for the others, who
     * are most people and are looked at for every lead */
    if (person->capacity_per_day > 0 &&
        rr_day_load(store, person->staff_id, out->day, &out->load) != 0)
        return -1;
    if (!person->active) {
        snprintf(out->why, sizeof(out->why), "inactive (on leave)");
        return 0;
    }
    if (person->working_hours_json != NULL &&
        person->working_hours_json[0] != '\0') {
        cv_workhours_t parsed;
        const cv_workhours_t *hours = person->hours;
        if (hours == NULL) {
            char error[160];
            if (cv_workhours_parse(person->working_hours_json, &parsed, error,
                                   sizeof(error)) != 0) {
                snprintf(out->why, sizeof(out->why),
                         "working hours unreadable: %.150s", error);
                return 0;
            }
            hours = &parsed;
        }
        if (cv_workhours_is_set(hours) &&
            !cv_workhours_open_at(hours, tz, cv_calendar_default(),
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

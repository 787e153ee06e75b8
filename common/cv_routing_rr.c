/* cv_routing_rr: smooth weighted round-robin. */
#include "cv_routing_rr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_calendar.h"
#include "cv_jsonw.h"
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

/* A pool's state as read for one decision: the row's text and its lines
 * (pointing into it). A usual pool (a few people) fits the local arrays:
 * this runs for every lead routed, so it allocates nothing then. */
#define RR_LOCAL_TEXT 2048
#define RR_LOCAL_LINES 64
typedef struct {
    char local_text[RR_LOCAL_TEXT];   /* the text when it fits */
    char *text;                       /* local_text or malloc'd */
    rr_line_t local_lines[RR_LOCAL_LINES]; /* the lines when they fit */
    rr_line_t *lines;                 /* local_lines or malloc'd */
    size_t count;                     /* lines in use */
    size_t cap;                       /* lines allocated */
    bool found;                       /* the pool has a row */
} rr_state_t;

static void rr_state_free(rr_state_t *st)
{
    if (st->text != st->local_text)
        free(st->text);
    if (st->lines != st->local_lines)
        free(st->lines);
}

/* Appends a line; 0 or -1 when out of memory. */
static int rr_line_push(rr_state_t *st, rr_line_t line)
{
    if (st->count == st->cap) {
        size_t cap = st->cap * 2;
        rr_line_t *grown;
        if (st->lines == st->local_lines) {
            grown = malloc(cap * sizeof(*grown));
            if (grown != NULL)
                memcpy(grown, st->lines, st->count * sizeof(*grown));
        } else {
            grown = realloc(st->lines, cap * sizeof(*grown));
        }
        if (grown == NULL)
            return -1;
        st->lines = grown;
        st->cap = cap;
    }
    st->lines[st->count++] = line;
    return 0;
}

/* Splits st->text into lines. 0 or -1 when out of memory. A line that
 * does not read is skipped. */
static int rr_state_parse(rr_state_t *st)
{
    for (const char *p = st->text; *p != '\0';) {
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
                if (errno == 0 && stop == number + digits &&
                    rr_line_push(st, (rr_line_t){
                                         .id = space + 1,
                                         .length = len - digits - 1,
                                         .current = value,
                                     }) != 0)
                    return -1;
            }
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return 0;
}

/* Reads and parses the pool's state row ("" when the pool has none).
 * 0 or -1 (logged); rr_state_free after either. */
static int rr_state_read(cv_store_t *store, const char *pool, rr_state_t *st)
{
    st->text = st->local_text;
    st->text[0] = '\0';
    st->lines = st->local_lines;
    st->count = 0;
    st->cap = RR_LOCAL_LINES;
    st->found = false;
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT state FROM rr_pools WHERE pool = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, pool);
    int rc = cv_store_step_row(stmt);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        st->found = true;
        const unsigned char *text = sqlite3_column_text(stmt, 0);
        size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
        if (size >= sizeof(st->local_text))
            st->text = malloc(size + 1);
        if (st->text != NULL && text != NULL) {
            memcpy(st->text, text, size);
            st->text[size] = '\0';
        } else if (st->text != NULL) {
            st->text[0] = '\0';
        }
        sqlite3_reset(stmt);
    }
    if (st->text == NULL || rr_state_parse(st) != 0)
        return cv_error("cannot read the round-robin state of '%s': out of "
                        "memory",
                        pool);
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

/* Sets each member's current from the state (0 for one not in it) and
 * marks the lines of the members passed. */
static void rr_state_apply(rr_state_t *st, cv_routing_rr_member_t *members,
                           size_t count)
{
    size_t hint = 0;
    for (size_t i = 0; i < count; i++) {
        rr_line_t *line = rr_line_find(st->lines, st->count, members[i].id,
                                       &hint);
        if (line != NULL)
            line->passed = true;
        members[i].current = line != NULL ? line->current : 0;
    }
}

/* Writes "current id\n" at dst; returns the bytes written (at most
 * 21 + id_len + 1). */
static size_t rr_line_format(char *dst, int64_t current, const char *id,
                             size_t id_len)
{
    char number[CV_JSONW_INT_SIZE];
    size_t used = cv_jsonw_format_int(number, current);
    memcpy(dst, number, used);
    dst[used++] = ' ';
    memcpy(dst + used, id, id_len);
    used += id_len;
    dst[used++] = '\n';
    return used;
}

/* Writes the members' state over the row as read (`st`, its lines
 * marked by rr_state_apply): the members first, in their order, then
 * the lines of those not passed now. */
static int rr_state_write(cv_store_t *store, const char *pool,
                          const rr_state_t *st,
                          const cv_routing_rr_member_t *members, size_t count)
{
    enum { LINE_MAX_FIXED = 24 }; /* sign, 20 digits, space, newline */
    size_t need = 1;
    for (size_t i = 0; i < count; i++)
        need += LINE_MAX_FIXED + strlen(members[i].id);
    for (size_t i = 0; i < st->count; i++)
        if (!st->lines[i].passed)
            need += LINE_MAX_FIXED + st->lines[i].length;
    char local[4096];
    char *buf = need <= sizeof(local) ? local : malloc(need);
    if (buf == NULL)
        return cv_error("cannot save the round-robin state of '%s': out of "
                        "memory",
                        pool);
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const char *id = members[i].id;
        size_t len = strlen(id);
        if (memchr(id, '\n', len) != NULL)
            continue; /* would not read back as one line */
        used += rr_line_format(buf + used, members[i].current, id, len);
    }
    for (size_t i = 0; i < st->count; i++)
        if (!st->lines[i].passed)
            used += rr_line_format(buf + used, st->lines[i].current,
                                   st->lines[i].id, st->lines[i].length);
    buf[used] = '\0';
    int rc = -1;
    /* the row read a moment ago in this transaction is updated in place
     * (no insert attempt first); a new pool's row is inserted */
    sqlite3_stmt *stmt =
        st->found
            ? cv_store_prepare(store,
                               "UPDATE rr_pools SET state = ?2 WHERE pool = ?1")
            : cv_store_prepare(store, "INSERT INTO rr_pools (pool, state)"
                                      " VALUES (?1, ?2) ON CONFLICT (pool)"
                                      " DO UPDATE SET state = excluded.state");
    if (stmt != NULL) {
        cv_store_bind_static(stmt, 1, pool);
        sqlite3_bind_text(stmt, 2, buf, (int)used, SQLITE_STATIC);
        rc = cv_store_step_done(stmt);
    }
    if (buf != local)
        free(buf);
    return rc;
}

int cv_routing_rr_load(cv_store_t *store, const char *pool,
                       cv_routing_rr_member_t *members, size_t count)
{
    rr_state_t st;
    int rc = rr_state_read(store, pool, &st);
    if (rc == 0)
        rr_state_apply(&st, members, count);
    rr_state_free(&st);
    return rc;
}

int cv_routing_rr_choose(cv_store_t *store, const char *pool,
                         cv_routing_rr_member_t *members, size_t count)
{
    /* one read and one parse of the row serve both the pick and the
     * merge on save */
    rr_state_t st;
    int chosen = -2;
    if (rr_state_read(store, pool, &st) != 0)
        goto out;
    rr_state_apply(&st, members, count);
    chosen = cv_routing_rr_pick(members, count);
    if (chosen >= 0 && rr_state_write(store, pool, &st, members, count) != 0)
        chosen = -2;
out:
    rr_state_free(&st);
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

/* Runs `sql` with (staff_id, day) bound: 0 or -1. */
static int rr_day_step(cv_store_t *store, const char *sql,
                       const char *staff_id, const char *day)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, staff_id);
    cv_store_bind_static(stmt, 2, day);
    return cv_store_step_done(stmt);
}

int cv_routing_rr_day_add(cv_store_t *store, const char *staff_id,
                          const char *day)
{
    /* every lead given counts here, and all but a person's first of the
     * day find the row: update it, insert only when there was none */
    if (rr_day_step(store,
                    "UPDATE rr_day_load SET count = count + 1"
                    " WHERE staff_id = ? AND day = ?",
                    staff_id, day) != 0)
        return -1;
    if (sqlite3_changes(cv_store_db(store)) > 0)
        return 0;
    return rr_day_step(store,
                       "INSERT INTO rr_day_load (staff_id, day, count)"
                       " VALUES (?, ?, 1) ON CONFLICT (staff_id, day)"
                       " DO UPDATE SET count = count + 1",
                       staff_id, day);
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

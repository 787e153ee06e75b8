/* routing_staff: routing's copy of the staff directory, the pools of
 * members a rule chooses from, and who of them is available now.
 *
 * The staff table is read for every lead (a pool per rule tried), so each
 * database connection keeps the table in memory as a snapshot, with the
 * working hours and "owns" lists already parsed. The table stays the only
 * durable copy; a snapshot is a cache of it that cannot go stale: every
 * write to the table (routing_staff_apply) moves staff_version.version on
 * in the same transaction, and a snapshot is used only while the version
 * it was read at is the one the connection sees now (one single-row read
 * per pool). A rolled-back write takes its version back with it, and
 * versions are never handed out twice in a process, so a snapshot read
 * inside a transaction that rolled back never matches again; after a
 * restart snapshots are read afresh. explain's connection has its own
 * snapshot, read from what it sees, so both run the same code on the same
 * data. */
#include "routing.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The last directory version this process wrote (bus thread only): a
 * new version is above both it and the stored one, so a version that was
 * rolled back is never used again by a different table. */
static int64_t staff_version_written;

/* Moves the directory's version on inside the caller's transaction. */
static int staff_version_bump(cv_store_t *store)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE staff_version SET version = max(version, ?) + 1"
               " RETURNING version");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, staff_version_written);
    int rc = cv_store_step_row(stmt);
    if (rc != 0)
        return rc < 0 ? -1
                      : cv_error("cannot update the staff version in '%s': "
                                 "no row",
                                 cv_store_path(store));
    staff_version_written = sqlite3_column_int64(stmt, 0);
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
    if (cv_store_step_done(stmt) != 0 || staff_version_bump(store) != 0)
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

static void directory_release(routing_directory_t *dir);

void routing_pool_clear(routing_pool_t *pool)
{
    if (pool == NULL)
        return;
    free(pool->members); /* the texts belong to the directory */
    directory_release(pool->directory);
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

/* `hours`: the member's working hours parsed already, or NULL to parse
 * them (and say why they do not). */
static int member_availability(cv_store_t *store, routing_member_t *m,
                               const cv_workhours_t *hours,
                               const char *default_tz, int64_t now_ms)
{
    cv_routing_person_t person = {
        .staff_id = m->staff_id,
        .active = m->active,
        .timezone = m->timezone,
        .working_hours_json = m->working_hours,
        .team = m->team,
        .capacity_per_day = m->capacity_per_day,
        .hours = hours,
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
    if (member_availability(store, out, NULL, default_tz, now_ms) != 0) {
        routing_member_clear(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The directory in memory                                             */

enum { OWNS_CHANNELS, OWNS_INDUSTRIES, OWNS_REGIONS, OWNS_PRODUCTS, OWNS_N };

/* One row of the staff table. */
typedef struct {
    routing_member_t member;      /* texts owned here; avail unused */
    char **owns[OWNS_N];          /* channels, industries, regions,
                                     products: owned strings */
    size_t owns_count[OWNS_N];    /* entries of each */
    cv_workhours_t hours;         /* working_hours parsed */
    bool hours_parsed;            /* false: none or unreadable (the
                                     availability check says why) */
    int64_t avail_minute;         /* UTC minute `avail` was found for,
                                     -1: none yet */
    const char *avail_default_tz; /* the default zone it was found with */
    cv_routing_availability_t avail; /* for a member without a daily cap */
} directory_entry_t;

struct routing_directory {
    int64_t version;            /* staff_version.version it was read at */
    int refs;                   /* the registry's and each pool's */
    directory_entry_t *entries; /* ordered by staff id, bytewise (SQLite's
                                   BINARY order, as ORDER BY gave) */
    size_t count;               /* entries */
};

/* The snapshot of each connection. A connection is used by one thread at
 * a time (the bus thread; explain under its lock): the lock guards only
 * the slots and the counts. */
#define DIRECTORY_SLOTS 4
static struct {
    cv_store_t *store;        /* the connection, or NULL: free */
    routing_directory_t *dir; /* its newest snapshot (a reference) */
} directory_slots[DIRECTORY_SLOTS];
static pthread_mutex_t directory_lock = PTHREAD_MUTEX_INITIALIZER;

static void directory_free(routing_directory_t *dir)
{
    if (dir == NULL)
        return;
    for (size_t i = 0; i < dir->count; i++) {
        directory_entry_t *e = &dir->entries[i];
        routing_member_clear(&e->member);
        for (int k = 0; k < OWNS_N; k++) {
            for (size_t j = 0; j < e->owns_count[k]; j++)
                free(e->owns[k][j]);
            free(e->owns[k]);
        }
    }
    free(dir->entries);
    free(dir);
}

static void directory_release(routing_directory_t *dir)
{
    if (dir == NULL)
        return;
    pthread_mutex_lock(&directory_lock);
    bool last = --dir->refs == 0;
    pthread_mutex_unlock(&directory_lock);
    if (last)
        directory_free(dir);
}

void routing_directory_forget(cv_store_t *store)
{
    if (store == NULL)
        return;
    routing_directory_t *dir = NULL;
    pthread_mutex_lock(&directory_lock);
    for (int i = 0; i < DIRECTORY_SLOTS; i++)
        if (directory_slots[i].store == store) {
            dir = directory_slots[i].dir;
            directory_slots[i].store = NULL;
            directory_slots[i].dir = NULL;
        }
    pthread_mutex_unlock(&directory_lock);
    directory_release(dir);
}

/* The strings of a JSON array (a staff "owns" list column); other
 * elements are left out, as json_each's lower() never matched them. */
static int owns_parse(const char *json, char ***items, size_t *count)
{
    *items = NULL;
    *count = 0;
    json_t *array = json != NULL ? json_loads(json, 0, NULL) : NULL;
    if (!json_is_array(array)) {
        json_decref(array);
        return 0;
    }
    int rc = -1;
    size_t n = json_array_size(array);
    if (n > 0) {
        *items = calloc(n, sizeof(**items));
        if (*items == NULL)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(array, i);
        if (!json_is_string(v))
            continue;
        char *copy = strdup(json_string_value(v));
        if (copy == NULL)
            goto out;
        (*items)[(*count)++] = copy;
    }
    rc = 0;
out:
    json_decref(array);
    return rc;
}

/* Reads the whole staff table (at `version`). NULL on error (logged). */
static routing_directory_t *directory_read(cv_store_t *store, int64_t version)
{
    routing_directory_t *dir = calloc(1, sizeof(*dir));
    if (dir == NULL) {
        cv_error("cannot read the staff directory: out of memory");
        return NULL;
    }
    dir->version = version;
    dir->refs = 1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT " MEMBER_COLUMNS ", s.channels_json,"
               " s.industries_json, s.regions_json, s.products_json"
               " FROM staff s ORDER BY s.staff_id");
    if (stmt == NULL) {
        directory_free(dir);
        return NULL;
    }
    size_t capacity = 0;
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (dir->count == capacity) {
            size_t cap = capacity ? capacity * 2 : 16;
            directory_entry_t *grown =
                realloc(dir->entries, cap * sizeof(*grown));
            if (grown == NULL) {
                failed = true;
                break;
            }
            dir->entries = grown;
            capacity = cap;
        }
        directory_entry_t *e = &dir->entries[dir->count];
        memset(e, 0, sizeof(*e));
        e->avail_minute = -1;
        if (member_read(stmt, &e->member) != 0) {
            failed = true;
            break;
        }
        dir->count++;
        for (int k = 0; k < OWNS_N; k++)
            if (owns_parse((const char *)sqlite3_column_text(stmt, 14 + k),
                           &e->owns[k], &e->owns_count[k]) != 0)
                failed = true;
        if (failed)
            break;
        /* hours that do not parse stay unparsed: the availability check
         * parses them again and gives the reason */
        const char *json = e->member.working_hours;
        char error[160];
        e->hours_parsed = json != NULL && json[0] != '\0' &&
                          cv_workhours_parse(json, &e->hours, error,
                                             sizeof(error)) == 0;
    }
    sqlite3_reset(stmt);
    if (failed) {
        directory_free(dir);
        cv_error("cannot read the staff directory: out of memory");
        return NULL;
    }
    if (rc != SQLITE_DONE) {
        directory_free(dir);
        cv_error("cannot read the staff directory from '%s': %s",
                 cv_store_path(store), sqlite3_errstr(rc));
        return NULL;
    }
    return dir;
}

/* The directory as `store` sees it now, held for the caller (release
 * it); read again when the table's version moved. NULL on error. */
static routing_directory_t *directory_acquire(cv_store_t *store)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT version FROM staff_version");
    if (stmt == NULL)
        return NULL;
    int rc = cv_store_step_row(stmt);
    if (rc != 0) {
        if (rc == 1)
            cv_error("'%s' has no staff version row", cv_store_path(store));
        return NULL;
    }
    int64_t version = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    routing_directory_t *dir = NULL;
    pthread_mutex_lock(&directory_lock);
    for (int i = 0; i < DIRECTORY_SLOTS; i++)
        if (directory_slots[i].store == store &&
            directory_slots[i].dir->version == version) {
            dir = directory_slots[i].dir;
            dir->refs++;
        }
    pthread_mutex_unlock(&directory_lock);
    if (dir != NULL)
        return dir;
    dir = directory_read(store, version);
    if (dir == NULL)
        return NULL;
    routing_directory_t *old = NULL;
    pthread_mutex_lock(&directory_lock);
    int slot = -1;
    for (int i = 0; i < DIRECTORY_SLOTS; i++)
        if (directory_slots[i].store == store ||
            (slot < 0 && directory_slots[i].store == NULL))
            slot = i;
    /* with no slot free the snapshot serves this caller only */
    if (slot >= 0) {
        old = directory_slots[slot].dir;
        directory_slots[slot].store = store;
        directory_slots[slot].dir = dir;
        dir->refs++;
    }
    pthread_mutex_unlock(&directory_lock);
    directory_release(old);
    return dir;
}

static int owns_index(const char *list)
{
    if (strcmp(list, "channels") == 0)
        return OWNS_CHANNELS;
    if (strcmp(list, "industries") == 0)
        return OWNS_INDUSTRIES;
    if (strcmp(list, "regions") == 0)
        return OWNS_REGIONS;
    return OWNS_PRODUCTS;
}

/* Whether the entry is in the pool `spec` describes. */
static bool entry_selected(const directory_entry_t *e,
                           const routing_pool_spec_t *spec)
{
    const routing_member_t *m = &e->member;
    if (spec->role != NULL && strcmp(m->role, spec->role) != 0)
        return false;
    if (spec->tier > 0 && m->tier != spec->tier)
        return false;
    if (spec->team != NULL &&
        strcasecmp(m->team != NULL ? m->team : "", spec->team) != 0)
        return false;
    if (spec->only != NULL && strcmp(m->staff_id, spec->only) != 0)
        return false;
    if (spec->exclude != NULL && strcmp(m->staff_id, spec->exclude) == 0)
        return false;
    if (spec->owns_list != NULL) {
        if (spec->owns_value == NULL)
            return false; /* owns nothing: no match */
        int k = owns_index(spec->owns_list);
        bool owns = false;
        /* ASCII case-insensitive, as SQLite's lower() compares (and
         * strcasecmp in the C locale every service runs in) */
        for (size_t j = 0; j < e->owns_count[k] && !owns; j++)
            owns = strcasecmp(e->owns[k][j], spec->owns_value) == 0;
        if (!owns)
            return false;
    }
    if (spec->staff != NULL && spec->staff->count > 0 &&
        !cv_routing_list_has(spec->staff, m->staff_id))
        return false;
    return true;
}

/* The availability of an entry's member at `now_ms` into m->avail.
 * Every lead asks it of each member of a pool, so for a member without a
 * daily cap it is kept with the entry for the rest of the UTC minute: then
 * it depends only on the snapshot's fields (immutable), the calendar
 * (loaded once per process) and the time, and working hours, zone offsets
 * and the texts it writes ("off shift (... 19:05, day)") all change on
 * whole minutes. A capped member's load changes with every lead given:
 * theirs is read each time. An entry is used by one connection's thread
 * at a time (see directory_slots). */
static int entry_availability(cv_store_t *store, directory_entry_t *e,
                              routing_member_t *m, const char *default_tz,
                              int64_t now_ms)
{
    int64_t minute = now_ms >= 0 ? now_ms / 60000 : -1;
    bool keep = m->capacity_per_day <= 0 && minute >= 0;
    if (keep && e->avail_minute == minute &&
        e->avail_default_tz == default_tz) {
        m->avail = e->avail;
        return 0;
    }
    if (member_availability(store, m, e->hours_parsed ? &e->hours : NULL,
                            default_tz, now_ms) != 0)
        return -1;
    if (keep) {
        e->avail = m->avail;
        e->avail_minute = minute;
        e->avail_default_tz = default_tz;
    }
    return 0;
}

int routing_pool_load(cv_store_t *store, const routing_pool_spec_t *spec,
                      const char *default_tz, int64_t now_ms,
                      routing_pool_t *out)
{
    routing_pool_clear(out);
    out->directory = directory_acquire(store);
    if (out->directory == NULL)
        return -1;
    routing_directory_t *dir = out->directory;
    for (size_t i = 0; i < dir->count; i++) {
        directory_entry_t *e = &dir->entries[i];
        if (!entry_selected(e, spec))
            continue;
        if (out->count == out->capacity) {
            size_t cap = out->capacity ? out->capacity * 2 : 8;
            routing_member_t *grown =
                realloc(out->members, cap * sizeof(*grown));
            if (grown == NULL) {
                routing_pool_clear(out);
                return cv_error("cannot load the '%s' pool: out of memory",
                                spec->key);
            }
            out->members = grown;
            out->capacity = cap;
        }
        routing_member_t *m = &out->members[out->count++];
        *m = e->member; /* texts borrowed from the held directory */
        if (entry_availability(store, e, m, default_tz, now_ms) != 0) {
            routing_pool_clear(out);
            return -1;
        }
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
        /* "a w1, b w2": one piece per member, for every lead */
        if (!first)
            routing_trace_put(why, ", ");
        routing_trace_put(why, m->staff_id);
        routing_trace_put(why, " w");
        routing_trace_int(why, m->weight);
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
    /* a usual pool fits on the stack: this runs for every lead */
    cv_routing_rr_member_t local[32];
    cv_routing_rr_member_t *rr = pool->count <= 32
                                     ? local
                                     : calloc(pool->count, sizeof(*rr));
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
    if (rr != local)
        free(rr);
    if (chosen == -1)
        routing_trace_put(why, "; nobody available");
    else if (chosen >= 0) {
        /* "; round-robin '%s' chose %s" in pieces (every lead) */
        routing_trace_put(why, "; round-robin '");
        routing_trace_put(why, spec->key);
        routing_trace_put(why, "' chose ");
        routing_trace_put(why, pool->members[chosen].staff_id);
    }
    return chosen;
}

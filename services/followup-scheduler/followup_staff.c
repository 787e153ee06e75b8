/* The staff directory as the scheduler keeps it (from the console's
 * StaffUpdated): who works when and where, whom to tell, who heads sales;
 * and time arithmetic in a person's hours, zone and calendar team. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_store.h"
#include "followup.h"

static const char *staff_text_or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* People kept at most; past it, lookups read the database each time
 * (the cache is never emptied while a borrowed person may be in use). */
#define STAFF_CACHE_MAX 4096

void followup_person_clear(followup_person_t *person)
{
    if (person->borrowed) {
        memset(person, 0, sizeof(*person));
        return;
    }
    free(person->staff_id);
    free(person->name);
    free(person->role);
    free(person->team);
    free(person->webhook_url);
    free(person->telegram_chat_id);
    free(person->email);
    free(person->slack_webhook_url);
    memset(person, 0, sizeof(*person));
}

bool followup_person_reachable(const followup_person_t *person)
{
    return person->webhook_url != NULL || person->telegram_chat_id != NULL ||
           person->email != NULL || person->slack_webhook_url != NULL;
}

/* ------------------------------------------------------------------ */
/* The staff cache (followup.h, followup_staff_get)                     */

static uint64_t staff_hash(const char *id)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p != 0; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static void staff_cache_clear(followup_t *self)
{
    for (size_t i = 0; i < self->staff_cache_size; i++) {
        followup_person_t *person = self->staff_cache[i];
        if (person != NULL) {
            followup_person_clear(person);
            free(person);
            self->staff_cache[i] = NULL;
        }
    }
    self->staff_cache_count = 0;
}

void followup_staff_cache_free(followup_t *self)
{
    staff_cache_clear(self);
    free(self->staff_cache);
    self->staff_cache = NULL;
    self->staff_cache_size = 0;
}

void followup_staff_settle(followup_t *self)
{
    if (!self->staff_written)
        return;
    staff_cache_clear(self);
    self->staff_written = false;
}

/* The slot of `staff_id`: its person, or the empty slot it would take. */
static followup_person_t **staff_cache_slot(followup_t *self,
                                            const char *staff_id)
{
    size_t mask = self->staff_cache_size - 1;
    size_t i = (size_t)staff_hash(staff_id) & mask;
    while (self->staff_cache[i] != NULL &&
           strcmp(self->staff_cache[i]->staff_id, staff_id) != 0)
        i = (i + 1) & mask;
    return &self->staff_cache[i];
}

/* Takes `person` (heap, owned strings) into the cache; false when it is
 * full or out of memory (the caller keeps ownership then). */
static bool staff_cache_put(followup_t *self, followup_person_t *person)
{
    if (self->staff_cache_count >= STAFF_CACHE_MAX)
        return false;
    /* at most half full, so probes stay short */
    if ((self->staff_cache_count + 1) * 2 > self->staff_cache_size) {
        size_t size = self->staff_cache_size == 0 ? 64
                                                  : self->staff_cache_size * 2;
        followup_person_t **slots = calloc(size, sizeof(*slots));
        if (slots == NULL)
            return false;
        followup_person_t **old = self->staff_cache;
        size_t old_size = self->staff_cache_size;
        self->staff_cache = slots;
        self->staff_cache_size = size;
        for (size_t i = 0; i < old_size; i++)
            if (old[i] != NULL)
                *staff_cache_slot(self, old[i]->staff_id) = old[i];
        free(old);
    }
    *staff_cache_slot(self, person->staff_id) = person;
    self->staff_cache_count++;
    return true;
}

int followup_staff_update(followup_t *self, cv_bus_t *bus,
                          const Conveyor__StaffUpdated *updated)
{
    static const char sql[] =
        "INSERT INTO followup_staff (staff_id, name, role, team, timezone,"
        " working_hours, active, notify_webhook_url, notify_telegram_chat_id,"
        " notify_email, notify_slack_webhook_url, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        " ON CONFLICT (staff_id) DO UPDATE SET name = ?2, role = ?3,"
        " team = ?4, timezone = ?5, working_hours = ?6, active = ?7,"
        " notify_webhook_url = ?8, notify_telegram_chat_id = ?9,"
        " notify_email = ?10, notify_slack_webhook_url = ?11,"
        " updated_at = ?12";
    const Conveyor__StaffMember *m = updated->staff;
    if (m == NULL || staff_text_or_null(m->staff_id) == NULL) {
        cv_log(CV_LOG_WARN, "staff update without a member, dropped");
        return CV_BUS_DROP;
    }
    const char *tz = staff_text_or_null(m->timezone);
    if (tz != NULL && cv_tz_get(tz) == NULL)
        cv_log(CV_LOG_WARN, "staff '%s': unknown time zone '%s', using the "
                            "default", m->staff_id, tz);
    const char *hours = staff_text_or_null(m->working_hours_json);
    if (hours != NULL && strcmp(hours, "null") == 0)
        hours = NULL;
    cv_workhours_t wh;
    char err[160];
    if (cv_workhours_parse(hours, &wh, err, sizeof(err)) != 0) {
        cv_log(CV_LOG_WARN, "staff '%s': working hours ignored: %s",
               m->staff_id, err);
        hours = NULL;
    }
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    const Conveyor__NotifyTarget *n = m->notify;
    cv_store_bind_text(stmt, 1, m->staff_id);
    cv_store_bind_text(stmt, 2, staff_text_or_null(m->name));
    cv_store_bind_text(stmt, 3, staff_text_or_null(m->role));
    cv_store_bind_text(stmt, 4, staff_text_or_null(m->team));
    cv_store_bind_text(stmt, 5, tz);
    cv_store_bind_text(stmt, 6, hours);
    sqlite3_bind_int(stmt, 7, !m->has_active || m->active);
    if (n != NULL) {
        cv_store_bind_text(stmt, 8, staff_text_or_null(n->webhook_url));
        cv_store_bind_text(stmt, 9, staff_text_or_null(n->telegram_chat_id));
        cv_store_bind_text(stmt, 10, staff_text_or_null(n->email));
        cv_store_bind_text(stmt, 11, staff_text_or_null(n->slack_webhook_url));
    }
    sqlite3_bind_int64(stmt, 12, cv_clock_now_ms());
    /* people read from here on in this turn may see this write before it
     * commits: followup_staff_settle forgets them once the turn is over,
     * committed or rolled back */
    staff_cache_clear(self);
    self->staff_written = true;
    return cv_store_step_done(stmt);
}

/* Points person->notify at the owned target strings. */
static void staff_fill_notify(followup_person_t *person)
{
    Conveyor__NotifyTarget init = CONVEYOR__NOTIFY_TARGET__INIT;
    person->notify = init;
    person->notify.webhook_url = person->webhook_url;
    person->notify.telegram_chat_id = person->telegram_chat_id;
    person->notify.email = person->email;
    person->notify.slack_webhook_url = person->slack_webhook_url;
}

/* Reads `staff_id` from the directory into *person (owned strings). */
static int staff_read(followup_t *self, cv_bus_t *bus, const char *staff_id,
                      followup_person_t *person)
{
    static const char sql[] =
        "SELECT name, role, team, timezone, working_hours, active,"
        " notify_webhook_url, notify_telegram_chat_id, notify_email,"
        " notify_slack_webhook_url FROM followup_staff WHERE staff_id = ?";
    memset(person, 0, sizeof(*person));
    person->staff_id = strdup(staff_id != NULL ? staff_id : "");
    person->tz = self->default_tz;
    person->active = true;
    if (person->staff_id == NULL)
        return cv_error("out of memory reading staff");
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    int rc = sqlite3_step(stmt);
    char *tz = NULL;
    char *hours = NULL;
    bool failed = false;
    if (rc == SQLITE_ROW) {
        person->known = true;
        person->name = cv_store_column_dup(stmt, 0, &failed);
        person->role = cv_store_column_dup(stmt, 1, &failed);
        person->team = cv_store_column_dup(stmt, 2, &failed);
        tz = cv_store_column_dup(stmt, 3, &failed);
        hours = cv_store_column_dup(stmt, 4, &failed);
        person->active = sqlite3_column_int(stmt, 5) != 0;
        person->webhook_url = cv_store_column_dup(stmt, 6, &failed);
        person->telegram_chat_id = cv_store_column_dup(stmt, 7, &failed);
        person->email = cv_store_column_dup(stmt, 8, &failed);
        person->slack_webhook_url = cv_store_column_dup(stmt, 9, &failed);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE || failed) {
        free(tz);
        free(hours);
        return cv_error("cannot read staff '%s': %s", staff_id,
                        failed ? "out of memory" : sqlite3_errstr(rc));
    }
    if (tz != NULL && cv_tz_get(tz) != NULL)
        person->tz = cv_tz_get(tz);
    /* checked when stored; a bad value reads as always available */
    (void)cv_workhours_parse(hours, &person->hours, NULL, 0);
    free(tz);
    free(hours);
    staff_fill_notify(person);
    return 0;
}

int followup_staff_get(followup_t *self, cv_bus_t *bus, const char *staff_id,
                       followup_person_t *person)
{
    if (staff_id == NULL)
        staff_id = "";
    if (self->staff_cache_count > 0) {
        followup_person_t *cached = *staff_cache_slot(self, staff_id);
        if (cached != NULL) {
            *person = *cached;
            person->borrowed = true;
            return 0;
        }
    }
    followup_person_t *fresh = calloc(1, sizeof(*fresh));
    if (fresh == NULL)
        return cv_error("out of memory reading staff");
    if (staff_read(self, bus, staff_id, fresh) != 0) {
        followup_person_clear(fresh);
        free(fresh);
        return -1;
    }
    if (!staff_cache_put(self, fresh)) {
        *person = *fresh; /* not kept: the caller owns it */
        free(fresh);
        return 0;
    }
    *person = *fresh;
    person->borrowed = true;
    return 0;
}

void followup_ids_free(char **ids)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; ids[i] != NULL; i++)
        free(ids[i]);
    free(ids);
}

int followup_staff_heads(cv_bus_t *bus, char ***ids)
{
    static const char sql[] =
        "SELECT staff_id FROM followup_staff WHERE role = 'head'"
        " AND active = 1 ORDER BY staff_id LIMIT 64";
    *ids = NULL;
    sqlite3_stmt *stmt = cv_store_prepare(cv_bus_store(bus), sql);
    if (stmt == NULL)
        return -1;
    char **out = calloc(65, sizeof(*out));
    if (out == NULL)
        return cv_error("out of memory reading heads of sales");
    size_t n = 0;
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n < 64) {
        out[n] = cv_store_column_dup(stmt, 0, &failed);
        if (out[n] != NULL)
            n++;
    }
    sqlite3_reset(stmt);
    if ((rc != SQLITE_DONE && rc != SQLITE_ROW) || failed) {
        followup_ids_free(out);
        return cv_error("cannot read heads of sales: %s",
                        failed ? "out of memory" : sqlite3_errstr(rc));
    }
    *ids = out;
    return 0;
}

int64_t followup_after_working_minutes(const followup_t *self,
                                       const followup_person_t *person,
                                       int64_t from, int64_t minutes)
{
    int64_t at = cv_workhours_add_minutes(&person->hours, person->tz,
                                          self->calendar, person->team,
                                          from, minutes);
    /* hours with no working time at all: count wall-clock minutes rather
     * than never */
    return at == INT64_MAX ? from + minutes * 60000 : at;
}

int64_t followup_after_business_days(const followup_t *self,
                                     const followup_person_t *person,
                                     int64_t from, int days)
{
    int64_t at = cv_workhours_add_days(&person->hours, person->tz,
                                       self->calendar, person->team,
                                       from, days);
    return at == INT64_MAX ? from + (int64_t)days * 86400000 : at;
}

bool followup_person_open(const followup_t *self,
                          const followup_person_t *person, int64_t at)
{
    return cv_workhours_open_at(&person->hours, person->tz,
                                self->calendar, person->team, at);
}

/* routing_pending: scored leads that nobody could take yet, in arrival
 * order, retried when the staff directory changes. */
#include "routing.h"

#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

/* One waiting lead, copied out of the table before it is retried. */
typedef struct {
    int64_t seq;      /* place in the queue */
    uint8_t *payload; /* its packed LeadScored from leads (owned) */
    size_t size;      /* bytes in payload */
    char *trace_id;   /* the lead's trace, owned, NULL when unknown */
} pending_row_t;

/* Whether the queue may have changed since routing_pending_changed last
 * said so (bus thread only); true at start so the gauge is set once. */
static bool pending_touched = true;

bool routing_pending_changed(void)
{
    bool touched = pending_touched;
    pending_touched = false;
    return touched;
}

/* Whether some lead waits, as last read by routing_pending_any (the bus
 * loop asks once a turn): read again only after a write that changed the
 * queue. It is kept only when read outside a transaction, so a rollback
 * cannot take back what it saw; a write inside one marks it unknown, and
 * a rollback of that write leaves it unknown. Bus thread only (the only
 * writer of the queue). */
static struct {
    cv_store_t *store; /* the connection it was read on */
    bool known;        /* `any` is what the table says */
    bool any;          /* some lead waits */
} pending_any_cache;

/* Notes a write that changed rows of the queue. */
static void pending_note_changes(cv_store_t *store)
{
    if (sqlite3_changes(cv_store_db(store)) > 0) {
        pending_touched = true;
        pending_any_cache.known = false;
    }
}

static int pending_exists(cv_store_t *store, const char *lead_id, bool *yes)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT 1 FROM pending WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cv_error("cannot look up pending lead '%s' in '%s': %s", lead_id,
                        cv_store_path(store), sqlite3_errstr(rc));
    *yes = rc == SQLITE_ROW;
    return 0;
}

int routing_pending_put(cv_store_t *store, const char *lead_id, int tier,
                        const char *reason, const char *trace_id, bool *fresh)
{
    bool waiting = false;
    if (pending_exists(store, lead_id, &waiting) != 0)
        return -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO pending (lead_id, tier, reason, trace_id,"
               " received_at) VALUES (?, ?, ?, ?, ?)"
               " ON CONFLICT (lead_id) DO UPDATE SET tier = excluded.tier,"
               " reason = excluded.reason");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    sqlite3_bind_int(stmt, 2, tier);
    cv_store_bind_text(stmt, 3, reason);
    cv_store_bind_text(stmt, 4, trace_id);
    sqlite3_bind_int64(stmt, 5, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        return -1;
    pending_note_changes(store);
    *fresh = !waiting;
    return 0;
}

int routing_pending_remove(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "DELETE FROM pending WHERE lead_id = ?");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    pending_note_changes(store);
    return 0;
}

int routing_pending_any(cv_store_t *store)
{
    if (pending_any_cache.known && pending_any_cache.store == store)
        return pending_any_cache.any ? 1 : 0;
    bool keep = !cv_store_in_transaction(store);
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT 1 FROM pending LIMIT 1");
    if (stmt == NULL)
        return -1;
    int rc = cv_store_step_row(stmt);
    if (rc == 0)
        sqlite3_reset(stmt);
    if (rc < 0)
        return -1;
    if (keep) {
        pending_any_cache.store = store;
        pending_any_cache.any = rc == 0;
        pending_any_cache.known = true;
    }
    return rc == 0 ? 1 : 0;
}

int64_t routing_pending_count(cv_store_t *store)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT count(*) FROM pending");
    if (stmt == NULL)
        return -1;
    int64_t count = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        count = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    return count;
}

static void rows_free(pending_row_t *rows, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(rows[i].payload);
        free(rows[i].trace_id);
    }
    free(rows);
}

/* Copies the whole queue out, oldest first, with each lead's LeadScored
 * from leads (none: an empty payload, which unpacks to a LeadScored
 * without a lead), so that retrying may change the tables. */
static int rows_load(cv_store_t *store, pending_row_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT p.seq, l.lead_scored, p.trace_id FROM pending AS p"
               " LEFT JOIN leads AS l ON l.lead_id = p.lead_id"
               " ORDER BY p.seq");
    if (stmt == NULL)
        return -1;
    pending_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    bool failed = false;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 16;
            pending_row_t *grown = realloc(rows, grown_cap * sizeof(*grown));
            if (grown == NULL) {
                failed = true;
                break;
            }
            rows = grown;
            cap = grown_cap;
        }
        pending_row_t *row = &rows[n++];
        memset(row, 0, sizeof(*row));
        row->seq = sqlite3_column_int64(stmt, 0);
        const void *blob = sqlite3_column_blob(stmt, 1);
        row->size = (size_t)sqlite3_column_bytes(stmt, 1);
        row->payload = malloc(row->size > 0 ? row->size : 1);
        if (row->payload == NULL) {
            failed = true;
            break;
        }
        if (row->size > 0)
            memcpy(row->payload, blob, row->size);
        const unsigned char *trace = sqlite3_column_text(stmt, 2);
        if (trace != NULL) {
            row->trace_id = strdup((const char *)trace);
            if (row->trace_id == NULL) {
                failed = true;
                break;
            }
        }
    }
    sqlite3_reset(stmt);
    if (failed || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        rows_free(rows, n);
        if (failed)
            return cv_error("cannot load the pending leads: out of memory");
        return cv_error("cannot load the pending leads from '%s': %s",
                        cv_store_path(store), sqlite3_errstr(rc));
    }
    *out = rows;
    *count = n;
    return 0;
}

static int pending_delete_seq(cv_store_t *store, int64_t seq)
{
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "DELETE FROM pending WHERE seq = ?");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, seq);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    pending_note_changes(store);
    return 0;
}

int routing_pending_retry(routing_t *self, cv_bus_t *bus)
{
    cv_store_t *store = cv_bus_store(bus);
    pending_row_t *rows = NULL;
    size_t count = 0;
    if (rows_load(store, &rows, &count) != 0)
        return -1;
    int rc = 0;
    size_t done = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        Conveyor__LeadScored *scored =
            conveyor__lead_scored__unpack(NULL, rows[i].size, rows[i].payload);
        if (scored == NULL || scored->lead == NULL || scored->score == NULL) {
            /* written by us, so its lead's row in leads is damaged or
             * gone: keep the queue row for a look */
            cv_log_warn("pending lead row %lld in '%s' has no usable "
                        "LeadScored in leads; skipped",
                        (long long)rows[i].seq, cv_store_path(store));
            conveyor__lead_scored__free_unpacked(scored, NULL);
            continue;
        }
        int owned = routing_owner(store, scored->lead->lead_id, NULL, 0);
        bool placed = false;
        routing_route_opts_t opts = {0};
        if (owned < 0)
            rc = -1;
        else if (owned == 0 &&
                 routing_place(self, bus, scored, &opts, &placed) != 0)
            rc = -1;
        else if (owned == 1 || placed) {
            rc = pending_delete_seq(store, rows[i].seq);
            done++;
        }
        /* a lead that still finds nobody does not hold up the others:
         * rules differ by lead */
        conveyor__lead_scored__free_unpacked(scored, NULL);
    }
    if (rc == 0 && done > 0)
        cv_log_info("retried pending leads: %zu placed, %zu still waiting",
                    done, count - done);
    rows_free(rows, count);
    return rc;
}

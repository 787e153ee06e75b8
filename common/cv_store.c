/* cv_store: one SQLite connection opened the durable way, with migrations
 * and a statement cache keyed by SQL text. */
#include "cv_store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"
#include "cv_pcache.h"
#include "cv_walvfs.h"

#define CV_STORE_BUSY_MS 10000 /* wait this long for another writer */

typedef struct {
    uint64_t hash;        /* FNV-1a of sql, 0 for an empty slot */
    char *sql;            /* the SQL text (owned), NULL for an empty slot */
    sqlite3_stmt *stmt;   /* its prepared statement (owned) */
} cv_store_entry_t;

/* Slots of the by-address cache (512): room for every statement a
 * service has, so a look-up rarely falls back to hashing the whole text;
 * a slot is the top CV_STORE_RECENT_BITS bits of a hash of the address. */
#define CV_STORE_RECENT_BITS 9
#define CV_STORE_RECENT (1 << CV_STORE_RECENT_BITS)

/* A statement found before by the address of its SQL text: callers pass
 * string literals, so the address finds it without hashing the text. */
typedef struct {
    const char *caller_sql;   /* the caller's pointer, NULL when empty */
    const char *sql;          /* the cache's own copy of the text */
    sqlite3_stmt *stmt;       /* owned by the main cache */
} cv_store_recent_t;

struct cv_store {
    cv_store_recent_t recent[CV_STORE_RECENT]; /* by address of the text */
    sqlite3 *db;                /* the connection (owned) */
    char *path;                 /* database file name (owned) */
    cv_store_entry_t *cache;    /* open-addressing table of statements */
    size_t cache_size;          /* slots in cache, a power of two */
    size_t cache_used;          /* slots filled */
};

static uint64_t cv_store_hash(const char *text)
{
    uint64_t h = 1469598103934665603u;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211u;
    }
    return h ? h : 1;
}

/* The by-address slot of a caller's SQL text (Fibonacci hashing of the
 * address: literals sit 8 or 16 bytes apart, so the low bits alone would
 * crowd them into few slots). */
static cv_store_recent_t *cv_store_recent_slot(cv_store_t *self,
                                               const char *sql)
{
    uint64_t key = (uint64_t)(uintptr_t)sql * 0x9E3779B97F4A7C15u;
    return &self->recent[key >> (64 - CV_STORE_RECENT_BITS)];
}

sqlite3 *cv_store_db(cv_store_t *self)
{
    return self ? self->db : NULL;
}

const char *cv_store_path(const cv_store_t *self)
{
    return self ? self->path : NULL;
}

int cv_store_exec(cv_store_t *self, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(self->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        cv_error("cannot run '%.200s' on '%s': %s", sql, self->path,
                 err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* Reads PRAGMA user_version into *version. */
static int cv_store_user_version(cv_store_t *self, int *version)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &stmt,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(stmt, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return cv_error("cannot read the schema version of '%s': %s",
                        self->path, sqlite3_errmsg(self->db));
    return 0;
}

/* Applies the migrations the file has not seen, one transaction each. The
 * version is re-read inside the transaction, so two processes opening the
 * same file at once apply each migration once. */
static int cv_store_migrate(cv_store_t *self, const char *const *migrations,
                            size_t count)
{
    for (;;) {
        int version = 0;
        if (cv_store_begin(self) != 0)
            return -1;
        if (cv_store_user_version(self, &version) != 0)
            goto fail;
        if (version < 0 || (size_t)version > count) {
            cv_error("cannot use '%s': its schema version %d is newer than "
                     "this program's %zu", self->path, version, count);
            goto fail;
        }
        if ((size_t)version == count)
            return cv_store_commit(self);
        char *err = NULL;
        int rc = sqlite3_exec(self->db, migrations[version], NULL, NULL, &err);
        if (rc != SQLITE_OK) {
            cv_error("cannot apply migration %d to '%s': %s", version + 1,
                     self->path, err ? err : sqlite3_errstr(rc));
            sqlite3_free(err);
            goto fail;
        }
        /* PRAGMA takes no parameters; the value is our own integer */
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
                 version + 1);
        if (cv_store_exec(self, pragma) != 0)
            goto fail;
        if (cv_store_commit(self) != 0)
            goto fail;
        cv_log_debug("applied migration %d to '%s'", version + 1, self->path);
    }
fail:
    cv_store_rollback(self);
    return -1;
}

static pthread_once_t store_once = PTHREAD_ONCE_INIT;

/* Before SQLite's first use in the process: no memory statistics, which
 * nobody reads and which cost a global mutex around every malloc and free
 * SQLite makes. Too late (SQLITE_MISUSE, harmless) if something opened a
 * database without cv_store first. */
static void store_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* the page cache without a whole-cache scan at every COMMIT */
    cv_pcache_install();
}

cv_store_t *cv_store_open(const char *path, const char *const *migrations,
                          size_t count)
{
    pthread_once(&store_once, store_configure);
    cv_store_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        goto fail;
    self->path = strdup(path);
    if (self->path == NULL)
        goto fail;
    /* one thread at a time per connection (see cv_store.h), so SQLite's
     * own per-call mutex is pure cost; the WAL written one commit per
     * system call (cv_walvfs.h) */
    int rc = sqlite3_open_v2(path, &self->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             cv_walvfs_name());
    if (rc != SQLITE_OK) {
        cv_error("cannot open '%s': %s", path,
                 self->db ? sqlite3_errmsg(self->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(self->db, 1);
    sqlite3_busy_timeout(self->db, CV_STORE_BUSY_MS);

    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode = WAL", -1, &stmt,
                            NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    /* an in-memory database (tests) cannot use WAL and needs no journal */
    const char *want = strcmp(path, ":memory:") == 0 ? "memory" : "wal";
    bool wal = rc == SQLITE_ROW &&
               sqlite3_stricmp((const char *)sqlite3_column_text(stmt, 0),
                               want) == 0;
    sqlite3_finalize(stmt);
    if (!wal) {
        cv_error("cannot switch '%s' to WAL mode: %s", path,
                 sqlite3_errmsg(self->db));
        goto fail;
    }
    /* durable commits; pages read through a map and a 16 MiB cache, so a
     * busy stage does not pay a read(2) for every page it touches.
     * secure_delete FAST: Debian's SQLite is built with SECURE_DELETE on,
     * which zeroes every page a DELETE frees and writes it to the WAL
     * again; the bus frees pages all the time (acknowledged outbox rows),
     * and in scoring that was a third of the WAL (12 of 37 pages per
     * commit at 2,000 leads/s). FAST still blanks deleted content on the
     * pages a commit writes anyway; a freed page keeps its old bytes on
     * disk until reused (copies of events whose originals live on in the
     * stages' own tables). */
    if (cv_store_exec(self, "PRAGMA synchronous = FULL;"
                            "PRAGMA foreign_keys = ON;"
                            "PRAGMA cache_size = -16384;"
                            "PRAGMA temp_store = MEMORY;"
                            "PRAGMA mmap_size = 268435456;"
                            "PRAGMA journal_size_limit = 67108864;"
                            "PRAGMA secure_delete = FAST;") != 0)
        goto fail;
    if (cv_store_migrate(self, migrations, migrations ? count : 0) != 0)
        goto fail;
    return self;
fail:
    if (self == NULL || self->path == NULL)
        cv_error("cannot open '%s': out of memory", path);
    cv_store_destroy(&self);
    return NULL;
}

void cv_store_destroy(cv_store_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_store_t *self = *self_p;
    for (size_t i = 0; i < self->cache_size; i++) {
        sqlite3_finalize(self->cache[i].stmt);
        free(self->cache[i].sql);
    }
    free(self->cache);
    if (self->db != NULL) {
        if (!sqlite3_get_autocommit(self->db))
            sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
        if (sqlite3_close(self->db) != SQLITE_OK)
            cv_log_warn("cannot close '%s': %s", self->path,
                        sqlite3_errmsg(self->db));
    }
    free(self->path);
    free(self);
    *self_p = NULL;
}

/* Doubles the cache table. */
static int cv_store_cache_grow(cv_store_t *self)
{
    size_t size = self->cache_size ? self->cache_size * 2 : 64;
    cv_store_entry_t *cache = calloc(size, sizeof(*cache));
    if (cache == NULL)
        return -1;
    for (size_t i = 0; i < self->cache_size; i++) {
        cv_store_entry_t *e = &self->cache[i];
        if (e->sql == NULL)
            continue;
        size_t at = e->hash & (size - 1);
        while (cache[at].sql != NULL)
            at = (at + 1) & (size - 1);
        cache[at] = *e;
    }
    free(self->cache);
    self->cache = cache;
    self->cache_size = size;
    return 0;
}

/* Remembers `stmt` under the address of the caller's text. */
static sqlite3_stmt *cv_store_recent_put(cv_store_t *self, const char *sql,
                                         const char *copy, sqlite3_stmt *stmt)
{
    cv_store_recent_t *r = cv_store_recent_slot(self, sql);
    *r = (cv_store_recent_t){sql, copy, stmt};
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

sqlite3_stmt *cv_store_prepare(cv_store_t *self, const char *sql)
{
    /* the same address with the same text: a literal seen before (the
     * text is compared, so a reused buffer with other SQL cannot match) */
    cv_store_recent_t *r = cv_store_recent_slot(self, sql);
    if (r->caller_sql == sql && strcmp(r->sql, sql) == 0) {
        sqlite3_reset(r->stmt);
        sqlite3_clear_bindings(r->stmt);
        return r->stmt;
    }
    uint64_t hash = cv_store_hash(sql);
    if (self->cache_size > 0) {
        size_t at = hash & (self->cache_size - 1);
        while (self->cache[at].sql != NULL) {
            cv_store_entry_t *e = &self->cache[at];
            if (e->hash == hash && strcmp(e->sql, sql) == 0)
                return cv_store_recent_put(self, sql, e->sql, e->stmt);
            at = (at + 1) & (self->cache_size - 1);
        }
    }
    if ((self->cache_used + 1) * 2 > self->cache_size &&
        cv_store_cache_grow(self) != 0) {
        cv_error("cannot prepare '%.200s': out of memory", sql);
        return NULL;
    }
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &stmt, NULL);
    if (rc != SQLITE_OK) {
        cv_error("cannot prepare '%.200s' on '%s': %s", sql, self->path,
                 sqlite3_errmsg(self->db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    if (stmt == NULL) {
        cv_error("cannot prepare '%.200s': no statement in it", sql);
        return NULL;
    }
    char *copy = strdup(sql);
    if (copy == NULL) {
        sqlite3_finalize(stmt);
        cv_error("cannot prepare '%.200s': out of memory", sql);
        return NULL;
    }
    size_t at = hash & (self->cache_size - 1);
    while (self->cache[at].sql != NULL)
        at = (at + 1) & (self->cache_size - 1);
    self->cache[at] = (cv_store_entry_t){hash, copy, stmt};
    self->cache_used++;
    cv_store_recent_put(self, sql, copy, stmt);
    return stmt;
}

/* Resets every cached statement so none holds a read cursor across the end
 * of a transaction. */
static void cv_store_reset_all(cv_store_t *self)
{
    for (size_t i = 0; i < self->cache_size; i++)
        if (self->cache[i].stmt != NULL)
            sqlite3_reset(self->cache[i].stmt);
}

/* Runs a transaction-control statement from the cache: every turn of a
 * stage begins and commits, and sqlite3_exec would parse the text each
 * time. */
static int cv_store_control(cv_store_t *self, const char *sql)
{
    sqlite3_stmt *stmt = cv_store_prepare(self, sql);
    return stmt == NULL ? -1 : cv_store_step_done(stmt);
}

int cv_store_begin(cv_store_t *self)
{
    return cv_store_control(self, "BEGIN IMMEDIATE");
}

int cv_store_commit(cv_store_t *self)
{
    cv_store_reset_all(self);
    return cv_store_control(self, "COMMIT");
}

int cv_store_rollback(cv_store_t *self)
{
    if (self == NULL || sqlite3_get_autocommit(self->db))
        return 0;
    cv_store_reset_all(self);
    return cv_store_control(self, "ROLLBACK");
}

bool cv_store_in_transaction(cv_store_t *self)
{
    return self != NULL && !sqlite3_get_autocommit(self->db);
}

int cv_store_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL)
        return sqlite3_bind_null(stmt, index);
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT);
}

int cv_store_bind_static(sqlite3_stmt *stmt, int index, const char *text)
{
    /* sqlite3_bind_text binds NULL text as SQL NULL */
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

int cv_store_step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        sqlite3_reset(stmt);
        return 0;
    }
    sqlite3 *db = sqlite3_db_handle(stmt);
    cv_error("cannot run '%.200s' on '%s': %s", sqlite3_sql(stmt),
             sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    return -1;
}

int cv_store_step_row(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE)
        return 1;
    sqlite3 *db = sqlite3_db_handle(stmt);
    cv_error("cannot run '%.200s' on '%s': %s", sqlite3_sql(stmt),
             sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
    return -1;
}

void cv_store_column_copy(sqlite3_stmt *stmt, int col, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return;
    const unsigned char *text = sqlite3_column_text(stmt, col);
    snprintf(buf, size, "%s", text ? (const char *)text : "");
}

char *cv_store_column_dup(sqlite3_stmt *stmt, int col, bool *failed)
{
    const unsigned char *text = sqlite3_column_text(stmt, col);
    if (text == NULL)
        return NULL;
    char *copy = strdup((const char *)text);
    if (copy == NULL && failed != NULL)
        *failed = true;
    return copy;
}

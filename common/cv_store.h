/* cv_store: one SQLite database file, opened the durable way.
 *
 * Every connection runs in WAL mode with synchronous=FULL, foreign keys on and
 * a busy timeout, so a COMMIT that returned is on disk. A service describes
 * its schema as an ordered list of migrations; cv_store_open applies the
 * ones not yet applied (tracked in PRAGMA user_version), each in its own
 * transaction. Statements are prepared once and cached by their SQL text.
 *
 * A cv_store_t is one connection and is used by one thread at a time; a
 * second thread opens its own cv_store_t on the same file. */
#ifndef CV_STORE_H
#define CV_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_store cv_store_t;

/* Opens (creating if needed) the database at `path` and migrates it to
 * `migrations[count - 1]`. Each migration is SQL text that may hold several
 * statements. Returns NULL after logging when the file cannot be opened or
 * a migration fails (the failed migration is rolled back). */
cv_store_t *cv_store_open(const char *path, const char *const *migrations,
                          size_t count);

/* Finalises cached statements and closes. NULL-safe; nulls *self_p. */
void cv_store_destroy(cv_store_t **self_p);

sqlite3 *cv_store_db(cv_store_t *self);
const char *cv_store_path(const cv_store_t *self);

/* Returns the cached statement for `sql`, prepared on first use, reset and
 * with its bindings cleared. The store owns it: do not finalize. NULL after
 * logging when the SQL does not prepare. */
sqlite3_stmt *cv_store_prepare(cv_store_t *self, const char *sql);

/* Runs SQL text (one or more statements, no results). 0 or -1 (logged). */
int cv_store_exec(cv_store_t *self, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or -1 (logged). Rollback is safe
 * to call when no transaction is open. */
int cv_store_begin(cv_store_t *self);
int cv_store_commit(cv_store_t *self);
int cv_store_rollback(cv_store_t *self);
bool cv_store_in_transaction(cv_store_t *self);

/* Binding helpers: NULL text binds SQL NULL. Return the sqlite3 result. */
int cv_store_bind_text(sqlite3_stmt *stmt, int index, const char *text);
/* Without the copy cv_store_bind_text makes: for text that stays as it is
 * until the statement has been stepped (or bound again). */
int cv_store_bind_static(sqlite3_stmt *stmt, int index, const char *text);

/* Steps a statement that returns no row (INSERT/UPDATE/DELETE) and resets
 * it. Returns 0, or -1 after logging the SQLite error with the SQL text. */
int cv_store_step_done(sqlite3_stmt *stmt);

/* Steps a statement that looks one row up. Returns 0 with the row ready
 * to read (the caller resets the statement), 1 when there is none, or -1
 * after logging the SQLite error with the SQL text (both reset it). */
int cv_store_step_row(sqlite3_stmt *stmt);

/* A malloc'd copy of column `col` of the current row as text, or NULL for
 * SQL NULL; sets *failed (when `failed` is not NULL) if out of memory. */
char *cv_store_column_dup(sqlite3_stmt *stmt, int col, bool *failed);

/* Copies column `col` of the current row as text into buf ("" for NULL). */
void cv_store_column_copy(sqlite3_stmt *stmt, int col, char *buf,
                          size_t size);

#endif

/* test_db_dir: a unit test's own temporary folder with one SQLite file in
 * it, made fresh for each test and removed after it (the file, its WAL,
 * shared-memory and journal files, then the folder), and a look at what
 * the file holds. Header-only: each test binary is one .c file linked with
 * libconveyor. */
#ifndef TEST_DB_DIR_H
#define TEST_DB_DIR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h> /* after the headers it needs */

#include "cv_store.h"

typedef struct {
    char dir[64];   /* the folder, made by mkdtemp */
    char path[128]; /* the database file inside it */
} test_db_dir_t;

/* Makes the folder ("/tmp/cv-test-" + six characters mkdtemp picks) and
 * names `file` inside it. 0, or -1 when the folder could not be made. */
static inline int test_db_dir_make(test_db_dir_t *d, const char *file)
{
    /* mkdtemp replaces the last six characters of its template, which
     * must be 'X's: the prefix is followed by exactly that many */
    static const char prefix[] = "/tmp/cv-test-";
    const size_t picked = 6;
    memcpy(d->dir, prefix, sizeof(prefix) - 1);
    memset(d->dir + sizeof(prefix) - 1, 'X', picked);
    d->dir[sizeof(prefix) - 1 + picked] = '\0';
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->path, sizeof(d->path), "%s/%s", d->dir, file);
    return 0;
}

/* Removes what test_db_dir_make made, and the files SQLite adds. */
static inline void test_db_dir_remove(const test_db_dir_t *d)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", d->path, suffixes[i]);
        unlink(p);
    }
    rmdir(d->dir);
}

/* cmocka setup and teardown for a test whose whole fixture is one
 * test_db_dir_t (the test's `state`), its database named `file`. */
static inline int test_db_dir_setup(void **state, const char *file)
{
    test_db_dir_t *d = calloc(1, sizeof(*d));
    if (d == NULL || test_db_dir_make(d, file) != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static inline int test_db_dir_teardown(void **state)
{
    test_db_dir_t *d = *state;
    test_db_dir_remove(d);
    free(d);
    return 0;
}

/* The integer in the first column of the one row `sql` gives on `store`
 * ("SELECT count(*) ...", "PRAGMA user_version"); fails the test when the
 * statement does not prepare or gives no row. */
static inline int64_t test_db_query_int(cv_store_t *store, const char *sql)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    assert_non_null(stmt);
    assert_int_equal(cv_store_step_row(stmt), 0);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    return v;
}

#endif

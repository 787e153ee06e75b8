/* cv_pcache: the page cache wrapper cv_store installs. A stage's database
 * gets leads whose contact keys are hashes (random order, so b-tree pages
 * split with the page swaps that made the default cache scan itself at
 * every COMMIT); every commit must skip that scan, and every truncate that
 * has something to discard (a rolled-back growth, another connection's
 * commit, a page left at the swap page number) must still happen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h> /* after the headers it needs */

#include "cv_pcache.h"
#include "cv_sha256.h"
#include "cv_store.h"
#include "test_db_dir.h"

typedef test_db_dir_t fixture_t; /* dir and path of intake.db */

static int setup(void **state)
{
    return test_db_dir_setup(state, "intake.db");
}

/* Like intake's: a lead and the hash of its e-mail address. */
static const char *const migrations[] = {
    "CREATE TABLE leads (id INTEGER PRIMARY KEY, email TEXT NOT NULL,"
    " name TEXT NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX leads_by_email ON leads (email);"
    "CREATE TABLE contact_keys (key TEXT PRIMARY KEY,"
    " lead_id INTEGER NOT NULL);",
};

static const char message[] =
    "Hello, we are opening a second warehouse in Kazan next month and "
    "need a quote for 40 racks, delivery and assembly included. Please "
    "call me after 14:00 or write to this address.";

static cv_store_t *open_store(const fixture_t *f)
{
    cv_store_t *store = cv_store_open(f->path, migrations, 1);
    assert_non_null(store);
    /* commits without an fsync each (WAL survives a crash of the process
     * this way too): the cache sees the same commits, the test runs in
     * seconds rather than minutes */
    assert_int_equal(cv_store_exec(store, "PRAGMA synchronous = NORMAL"), 0);
    return store;
}

static void lead_email(int n, char *buf, size_t size)
{
    snprintf(buf, size, "customer%d@example.ru", n);
}

/* Adds lead n, its name ending in `tag`, and its contact key. */
static void add_lead(cv_store_t *store, int n, const char *tag)
{
    char email[64], name[64], key[CV_SHA256_HEX];
    lead_email(n, email, sizeof(email));
    snprintf(name, sizeof(name), "Customer %d %s", n, tag);
    cv_sha256_hex("email:", 6, email, strlen(email), key);
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "INSERT INTO leads (id, email, name, message)"
                                " VALUES (?1, ?2, ?3, ?4)");
    assert_non_null(stmt);
    sqlite3_bind_int(stmt, 1, n);
    cv_store_bind_text(stmt, 2, email);
    cv_store_bind_text(stmt, 3, name);
    cv_store_bind_static(stmt, 4, message);
    assert_int_equal(cv_store_step_done(stmt), 0);
    stmt = cv_store_prepare(
        store, "INSERT INTO contact_keys (key, lead_id) VALUES (?1, ?2)");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, key);
    sqlite3_bind_int(stmt, 2, n);
    assert_int_equal(cv_store_step_done(stmt), 0);
}

/* Finds lead n by its contact key and by its e-mail; its name must end
 * in `tag`. */
static void expect_lead(cv_store_t *store, int n, const char *tag)
{
    char email[64], name[64], key[CV_SHA256_HEX];
    lead_email(n, email, sizeof(email));
    snprintf(name, sizeof(name), "Customer %d %s", n, tag);
    cv_sha256_hex("email:", 6, email, strlen(email), key);
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT l.name FROM contact_keys k JOIN leads l"
                                " ON l.id = k.lead_id WHERE k.key = ?1");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, key);
    assert_int_equal(cv_store_step_row(stmt), 0);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), name);
    sqlite3_reset(stmt);
    stmt = cv_store_prepare(store, "SELECT id FROM leads WHERE email = ?1");
    assert_non_null(stmt);
    cv_store_bind_text(stmt, 1, email);
    assert_int_equal(cv_store_step_row(stmt), 0);
    assert_int_equal(sqlite3_column_int(stmt, 0), n);
    sqlite3_reset(stmt);
}

static void expect_intact(cv_store_t *store)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, "PRAGMA integrity_check");
    assert_non_null(stmt);
    assert_int_equal(cv_store_step_row(stmt), 0);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_reset(stmt);
}

/* Leads first..last, one transaction each (as intake commits a batch). */
static void add_leads_one_commit_each(cv_store_t *store, int first, int last,
                                      const char *tag)
{
    for (int n = first; n <= last; n++) {
        assert_int_equal(cv_store_begin(store), 0);
        add_lead(store, n, tag);
        assert_int_equal(cv_store_commit(store), 0);
    }
}

static void add_leads_in_one_transaction(cv_store_t *store, int first, int last,
                                         const char *tag)
{
    assert_int_equal(cv_store_begin(store), 0);
    for (int n = first; n <= last; n++)
        add_lead(store, n, tag);
    assert_int_equal(cv_store_commit(store), 0);
}

static void test_installed_by_the_store(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = open_store(f);
    assert_non_null(cv_pcache_methods());
    assert_int_equal(cv_pcache_install(), 0); /* once: same answer */
    /* SQLite now runs on the wrapper: a commit goes through it */
    uint64_t skipped0 = 0, forwarded0 = 0, skipped1 = 0, forwarded1 = 0;
    cv_pcache_stats(&skipped0, &forwarded0);
    assert_int_equal(cv_store_exec(store, "INSERT INTO leads (email, name,"
                                          " message) VALUES ('a@b.ru', 'A',"
                                          " 'call me')"),
                     0);
    cv_pcache_stats(&skipped1, &forwarded1);
    assert_true(skipped1 + forwarded1 > skipped0 + forwarded0);
    cv_store_destroy(&store);
}

static void test_commits_skip_the_truncate(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = open_store(f);
    uint64_t skipped0, forwarded0, skipped1, forwarded1;
    cv_pcache_stats(&skipped0, &forwarded0);
    enum { LEADS = 3000 };
    add_leads_one_commit_each(store, 1, LEADS, "new");
    cv_pcache_stats(&skipped1, &forwarded1);
    /* every commit ends with a truncate to the database's size, and no
     * page above that size is in the cache */
    assert_true(skipped1 - skipped0 >= LEADS);
    assert_true(forwarded1 - forwarded0 <= LEADS / 100);
    assert_true(test_db_query_int(store, "PRAGMA page_count") > 200);

    expect_intact(store);
    assert_int_equal(
        test_db_query_int(store, "SELECT count(*) FROM contact_keys"), LEADS);
    for (int n = 1; n <= LEADS; n++)
        expect_lead(store, n, "new");
    cv_store_destroy(&store);

    /* and from a fresh connection, read from the file and WAL alone */
    store = open_store(f);
    expect_intact(store);
    for (int n = 1; n <= LEADS; n += 7)
        expect_lead(store, n, "new");
    cv_store_destroy(&store);
}

/* A transaction that grew the file by hundreds of pages rolls back: those
 * pages leave the cache, and the same page numbers are then used for
 * other leads. (In WAL mode the pager drops most of them itself; the
 * truncate must still be passed on, as the counter shows.) */
static void test_rolled_back_growth_is_discarded(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = open_store(f);
    add_leads_one_commit_each(store, 1, 500, "kept");
    int64_t pages = test_db_query_int(store, "PRAGMA page_count");

    uint64_t forwarded0, forwarded1;
    cv_pcache_stats(NULL, &forwarded0);
    assert_int_equal(cv_store_begin(store), 0);
    for (int n = 501; n <= 2500; n++)
        add_lead(store, n, "draft");
    assert_true(test_db_query_int(store, "PRAGMA page_count") > pages + 100);
    assert_int_equal(cv_store_rollback(store), 0);
    cv_pcache_stats(NULL, &forwarded1);
    assert_true(forwarded1 > forwarded0);

    assert_int_equal(test_db_query_int(store, "PRAGMA page_count"), pages);
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM leads"),
                     500);
    expect_intact(store);

    /* the same page numbers again, other contents */
    add_leads_in_one_transaction(store, 501, 2500, "final");
    expect_intact(store);
    for (int n = 1; n <= 500; n++)
        expect_lead(store, n, "kept");
    for (int n = 501; n <= 2500; n++)
        expect_lead(store, n, "final");
    assert_int_equal(test_db_query_int(store, "SELECT count(*) FROM leads"
                                      " WHERE name LIKE '%draft'"),
                     0);
    cv_store_destroy(&store);
}

/* ROLLBACK TO a savepoint gives the grown pages back but leaves them in
 * the cache, dirty; the COMMIT's truncate is what removes them (a later
 * growth would zero them anyway, so the counter is what shows it). */
static void test_savepoint_growth_is_discarded_at_commit(void **state)
{
    fixture_t *f = *state;
    cv_store_t *store = open_store(f);
    add_leads_one_commit_each(store, 1, 300, "kept");

    uint64_t forwarded0, forwarded1;
    cv_pcache_stats(NULL, &forwarded0);
    assert_int_equal(cv_store_begin(store), 0);
    add_lead(store, 301, "kept");
    int64_t pages = test_db_query_int(store, "PRAGMA page_count");
    assert_int_equal(cv_store_exec(store, "SAVEPOINT import"), 0);
    for (int n = 302; n <= 2000; n++)
        add_lead(store, n, "draft");
    assert_true(test_db_query_int(store, "PRAGMA page_count") > pages + 100);
    assert_int_equal(cv_store_exec(store, "ROLLBACK TO import;"
                                          "RELEASE import"),
                     0);
    assert_int_equal(cv_store_commit(store), 0);
    cv_pcache_stats(NULL, &forwarded1);
    assert_true(forwarded1 > forwarded0);
    assert_int_equal(test_db_query_int(store, "PRAGMA page_count"), pages);
    expect_intact(store);

    /* grow into those page numbers again, a lead per commit */
    add_leads_one_commit_each(store, 302, 2000, "final");
    expect_intact(store);
    for (int n = 1; n <= 301; n++)
        expect_lead(store, n, "kept");
    for (int n = 302; n <= 2000; n++)
        expect_lead(store, n, "final");
    cv_store_destroy(&store);

    store = open_store(f);
    expect_intact(store);
    for (int n = 302; n <= 2000; n += 5)
        expect_lead(store, n, "final");
    cv_store_destroy(&store);
}

/* The checkpointer and a second stage thread have connections of their
 * own: a connection whose cached pages another one changed must drop them
 * (a truncate to page 1 when it sees the new WAL). */
static void test_other_connections_commits_are_read(void **state)
{
    fixture_t *f = *state;
    cv_store_t *reader = open_store(f);
    add_leads_one_commit_each(reader, 1, 1000, "new");
    for (int n = 1; n <= 1000; n++)
        expect_lead(reader, n, "new"); /* every page in its cache */

    cv_store_t *writer = open_store(f);
    assert_int_equal(cv_store_begin(writer), 0);
    assert_int_equal(cv_store_exec(writer, "UPDATE leads SET name ="
                                           " replace(name, 'new', 'owned')"),
                     0);
    for (int n = 1001; n <= 1500; n++)
        add_lead(writer, n, "owned");
    assert_int_equal(cv_store_commit(writer), 0);

    for (int n = 1; n <= 1500; n++)
        expect_lead(reader, n, "owned");
    expect_intact(reader);
    cv_store_destroy(&writer);
    cv_store_destroy(&reader);
}

/* One cache driven directly, as SQLite's pager drives it. */
typedef struct {
    const sqlite3_pcache_methods2 *m; /* the wrapper's methods */
    sqlite3_pcache *cache;            /* one cache of 4 KiB pages */
} direct_t;

static void direct_open(direct_t *d, int page_size)
{
    d->m = cv_pcache_methods();
    assert_non_null(d->m);
    d->cache = d->m->xCreate(page_size, 64, 1);
    assert_non_null(d->cache);
    d->m->xCachesize(d->cache, 100);
}

/* Fetches (creating) page `key`, marks it with its number, unpins it. */
static void direct_put(direct_t *d, unsigned int key)
{
    sqlite3_pcache_page *page = d->m->xFetch(d->cache, key, 2);
    assert_non_null(page);
    memcpy(page->pBuf, &key, sizeof(key));
    d->m->xUnpin(d->cache, page, 0);
}

static bool direct_has(direct_t *d, unsigned int key)
{
    sqlite3_pcache_page *page = d->m->xFetch(d->cache, key, 0);
    if (page == NULL)
        return false;
    d->m->xUnpin(d->cache, page, 0);
    return true;
}

/* Moves a pinned page as SQLite's pager does (sqlite3PcacheMove): any
 * page already at `to` is discarded first. */
static void direct_rekey(direct_t *d, sqlite3_pcache_page *page,
                         unsigned int from, unsigned int to)
{
    sqlite3_pcache_page *other = d->m->xFetch(d->cache, to, 0);
    if (other != NULL)
        d->m->xUnpin(d->cache, other, 1);
    d->m->xRekey(d->cache, page, from, to);
}

/* Moves the page at `from` to `to` (it must be there). */
static void direct_move(direct_t *d, unsigned int from, unsigned int to)
{
    sqlite3_pcache_page *page = d->m->xFetch(d->cache, from, 0);
    assert_non_null(page);
    direct_rekey(d, page, from, to);
    d->m->xUnpin(d->cache, page, 0);
}

/* Swaps pages a and b through `swap`, both pinned throughout, as
 * balance_nonroot() in btree.c does to order new sibling pages. */
static void direct_swap(direct_t *d, unsigned int a, unsigned int b,
                        unsigned int swap)
{
    sqlite3_pcache_page *page_a = d->m->xFetch(d->cache, a, 0);
    sqlite3_pcache_page *page_b = d->m->xFetch(d->cache, b, 0);
    assert_non_null(page_a);
    assert_non_null(page_b);
    direct_rekey(d, page_a, a, swap);
    direct_rekey(d, page_b, b, a);
    direct_rekey(d, page_a, swap, b);
    d->m->xUnpin(d->cache, page_a, 0);
    d->m->xUnpin(d->cache, page_b, 0);
}

/* The number page `key` was filled with by direct_put. */
static unsigned int direct_mark(direct_t *d, unsigned int key)
{
    sqlite3_pcache_page *page = d->m->xFetch(d->cache, key, 0);
    assert_non_null(page);
    unsigned int mark;
    memcpy(&mark, page->pBuf, sizeof(mark));
    d->m->xUnpin(d->cache, page, 0);
    return mark;
}

static void expect_truncate(direct_t *d, unsigned int limit, bool forwarded)
{
    uint64_t skipped0, forwarded0, skipped1, forwarded1;
    cv_pcache_stats(&skipped0, &forwarded0);
    d->m->xTruncate(d->cache, limit);
    cv_pcache_stats(&skipped1, &forwarded1);
    /* other tests' connections are closed: only this cache counts */
    assert_int_equal(forwarded1 - forwarded0, forwarded ? 1 : 0);
    assert_int_equal(skipped1 - skipped0, forwarded ? 0 : 1);
}

static void test_truncate_discards_what_it_must(void **state)
{
    (void)state;
    /* SQLite initialised, with the wrapper as its cache */
    assert_int_equal(cv_pcache_install(), 0);
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
    const unsigned int swap = 0x40000000u / 4096 + 1; /* 262145 */
    direct_t d;
    direct_open(&d, 4096);
    for (unsigned int key = 1; key <= 10; key++)
        direct_put(&d, key);

    /* the database shrank to 6 pages: 7..10 go, 1..6 stay */
    expect_truncate(&d, 7, true);
    assert_false(direct_has(&d, 7));
    assert_false(direct_has(&d, 10));
    assert_true(direct_has(&d, 6));
    /* a commit at 6 pages, nothing above: skipped */
    expect_truncate(&d, 7, false);
    assert_true(direct_has(&d, 6));

    /* a split's swap of pages 4 and 6 through the temporary number */
    direct_swap(&d, 6, 4, swap);
    expect_truncate(&d, 7, false);
    assert_int_equal(direct_mark(&d, 4), 6);
    assert_int_equal(direct_mark(&d, 6), 4);
    assert_false(direct_has(&d, swap));

    /* a page left at the temporary number (a split that failed half-way)
     * must go with the truncate */
    direct_move(&d, 5, swap);
    expect_truncate(&d, 7, true);
    assert_false(direct_has(&d, swap));
    assert_true(direct_has(&d, 6));
    expect_truncate(&d, 7, false);

    /* a page moved above every page fetched so far (auto-vacuum's moves,
     * a rollback's) */
    direct_move(&d, 3, 40);
    expect_truncate(&d, 7, true);
    assert_false(direct_has(&d, 40));
    assert_true(direct_has(&d, 2));

    /* a fetch that did not create leaves the bound where it was */
    assert_false(direct_has(&d, 8));
    expect_truncate(&d, 7, false);

    /* the pager's "clear": everything goes */
    expect_truncate(&d, 1, true);
    assert_false(direct_has(&d, 1));
    assert_false(direct_has(&d, 6));
    assert_int_equal(d.m->xPagecount(d.cache), 0);
    expect_truncate(&d, 1, false); /* empty: nothing to scan */
    d.m->xDestroy(d.cache);

    /* 64 KiB pages: the temporary number is 16385, below a 20,000-page
     * database, where the truncate does not reach it */
    direct_open(&d, 65536);
    direct_put(&d, 10);
    direct_move(&d, 10, 16385);
    expect_truncate(&d, 20001, false);
    assert_true(direct_has(&d, 16385));
    expect_truncate(&d, 16385, true);
    assert_false(direct_has(&d, 16385));
    d.m->xDestroy(d.cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_installed_by_the_store, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_commits_skip_the_truncate, setup,
                                        test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_growth_is_discarded,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(
            test_savepoint_growth_is_discarded_at_commit, setup,
            test_db_dir_teardown),
        cmocka_unit_test_setup_teardown(test_other_connections_commits_are_read,
                                        setup, test_db_dir_teardown),
        cmocka_unit_test(test_truncate_discards_what_it_must),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

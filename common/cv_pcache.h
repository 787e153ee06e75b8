/* cv_pcache: SQLite's default page cache, except that the truncate at
 * every COMMIT does not scan the whole cache when nothing can be in the
 * range it would discard.
 *
 * Why: SQLite's b-tree, when it splits a page, puts the new pages in
 * ascending order by moving one through a temporary page number (the
 * "pending byte" page, 262145 with 4 KiB pages). The default cache
 * (pcache1) then remembers 262145 as its largest key, and the truncate at
 * the end of the next transaction (to the database's size) believes pages
 * up to 262145 may be there: it walks every bucket of its hash table
 * (4,096 with our 16 MiB cache), about 3% of all the conveyor's CPU at
 * 2,000 leads/s. The wrapper keeps its own bound of the keys in each
 * cache and skips truncates that cannot discard anything (why that is
 * safe: cv_pcache.c). Everything else is the default cache, unchanged.
 *
 * cv_store_open installs it once per process before SQLite's first use;
 * nothing else needs to call anything here. */
#ifndef CV_PCACHE_H
#define CV_PCACHE_H

#include <sqlite3.h>
#include <stdint.h>

/* Installs the wrapper around the default page cache. Once per process
 * (thread-safe; later calls return the first call's result); must run
 * before SQLite is initialised (the first open, or anything that calls
 * sqlite3_initialize). 0 when installed; -1 when SQLite was already
 * initialised or configured otherwise: then the default cache stays, which
 * is correct, only slower (a debug line says so). */
int cv_pcache_install(void);

/* How many truncates, in all caches of the process since it started, were
 * skipped (nothing to discard) and forwarded to the default cache. For
 * tests and diagnostics. Either pointer may be NULL. */
void cv_pcache_stats(uint64_t *skipped, uint64_t *forwarded);

/* The wrapper's methods (installing it first if nothing has tried yet),
 * or NULL when it is not installed. For tests, which
 * drive one cache directly (xCreate ... xDestroy) after SQLite is
 * initialised; SQLite itself reaches them through sqlite3_config. */
const sqlite3_pcache_methods2 *cv_pcache_methods(void);

#endif

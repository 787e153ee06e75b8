/* cv_pcache: the default page cache with a cheap truncate (see cv_pcache.h).
 *
 * Each cache the wrapper creates holds the default cache's instance and
 * two facts about the keys (page numbers) that can be in it:
 *
 *   max_key  no page is in the cache under a key above max_key, except
 *            under swap_key. Raised by every xFetch that returns a page
 *            (any key, swap_key too) and by every xRekey to a key other
 *            than swap_key; lowered only by a forwarded xTruncate.
 *   at_swap  at least as many pages as sit under swap_key, the page
 *            number balance_nonroot() in SQLite's btree.c moves pages
 *            through ((PENDING_BYTE / page size) + 1; PENDING_BYTE is
 *            0x40000000 unless changed by a test control we never use):
 *            +1 for a rekey into it, -1 for a rekey out of it, 0 after a
 *            forwarded truncate that discards it.
 *
 * xTruncate(iLimit) must leave no page with a key >= iLimit. It is skipped
 * when max_key < iLimit and no page can sit under swap_key at or above
 * iLimit (at_swap == 0, or swap_key < iLimit): by the two facts no page
 * has a key >= iLimit, so the default truncate would discard nothing, and
 * skipping it leaves the cache exactly as forwarding would.
 *
 * Why the facts hold (an upper bound may only ever be too high):
 * - A key enters the cache only through xFetch (create) or xRekey, and
 *   both are seen here. The default cache can drop pages on its own
 *   (eviction, recycling for another key, xUnpin with discard, xShrink,
 *   xCachesize): dropping only makes the bounds looser, never wrong.
 * - A rekey to a key above max_key raises it; a rekey into swap_key is
 *   counted instead, so the swap's temporary visit to 262145 does not
 *   raise max_key (which is the whole point).
 * - at_swap over-counts when a page under swap_key leaves without a
 *   rekey (discarded, evicted): harmless, truncates are then forwarded
 *   until one discards swap_key and resets it. It cannot under-count:
 *   while max_key < swap_key, every page under swap_key came by a counted
 *   rekey (a fetch of swap_key raises max_key to it), and each -1 is one
 *   such page leaving; once max_key >= swap_key the count does not matter,
 *   max_key alone covers swap_key.
 * - A forwarded truncate discards every page >= iLimit, pinned or not
 *   (the xTruncate contract), so afterwards max_key = min(max_key,
 *   iLimit - 1) holds, and at_swap = 0 when swap_key >= iLimit.
 * The default cache's own maximum key stays high after a skip; it only
 * makes a later forwarded truncate scan as it always did.
 *
 * A cache is used by one connection, one thread at a time (SQLite's
 * rule), so its state needs no lock; the process-wide counters are
 * atomic. */
#include "cv_pcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cv_log.h"

/* SQLite's PENDING_BYTE (os.h): the byte offset of the lock page. */
#define CV_PCACHE_PENDING_BYTE 0x40000000u

typedef struct {
    sqlite3_pcache *real;  /* the default cache's instance (owned) */
    unsigned int max_key;  /* no key above it, swap_key aside */
    unsigned int swap_key; /* balance_nonroot's temporary page number */
    unsigned int at_swap;  /* >= pages under swap_key */
} wrapped_cache_t;

static sqlite3_pcache_methods2 base;         /* the default cache's methods */
static sqlite3_pcache_methods2 wrapper;      /* ours, once installed */
static bool installed;                       /* wrapper is SQLite's cache */
static _Atomic uint64_t truncates_skipped;   /* nothing to discard */
static _Atomic uint64_t truncates_forwarded; /* passed to the default */

static int pcache_init(void *arg)
{
    (void)arg;
    return base.xInit(base.pArg);
}

static void pcache_shutdown(void *arg)
{
    (void)arg;
    if (base.xShutdown != NULL)
        base.xShutdown(base.pArg);
}

static sqlite3_pcache *pcache_create(int page_size, int extra_size,
                                     int purgeable)
{
    wrapped_cache_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->real = base.xCreate(page_size, extra_size, purgeable);
    if (self->real == NULL) {
        free(self);
        return NULL;
    }
    /* page sizes are powers of two from 512 to 65536 */
    self->swap_key = CV_PCACHE_PENDING_BYTE / (unsigned int)page_size + 1;
    return (sqlite3_pcache *)self;
}

static void pcache_cachesize(sqlite3_pcache *cache, int pages)
{
    base.xCachesize(((wrapped_cache_t *)cache)->real, pages);
}

static int pcache_pagecount(sqlite3_pcache *cache)
{
    return base.xPagecount(((wrapped_cache_t *)cache)->real);
}

static sqlite3_pcache_page *pcache_fetch(sqlite3_pcache *cache,
                                         unsigned int key, int create)
{
    wrapped_cache_t *self = (wrapped_cache_t *)cache;
    sqlite3_pcache_page *page = base.xFetch(self->real, key, create);
    /* swap_key too: a page fetched there was not counted in at_swap */
    if (page != NULL && key > self->max_key)
        self->max_key = key;
    return page;
}

static void pcache_unpin(sqlite3_pcache *cache, sqlite3_pcache_page *page,
                         int discard)
{
    /* a discarded page leaves: the bounds only get looser */
    base.xUnpin(((wrapped_cache_t *)cache)->real, page, discard);
}

static void pcache_rekey(sqlite3_pcache *cache, sqlite3_pcache_page *page,
                         unsigned int old_key, unsigned int new_key)
{
    wrapped_cache_t *self = (wrapped_cache_t *)cache;
    base.xRekey(self->real, page, old_key, new_key);
    if (new_key == self->swap_key)
        self->at_swap++;
    else if (new_key > self->max_key)
        self->max_key = new_key;
    if (old_key == self->swap_key && self->at_swap > 0)
        self->at_swap--;
}

static void pcache_truncate(sqlite3_pcache *cache, unsigned int limit)
{
    wrapped_cache_t *self = (wrapped_cache_t *)cache;
    bool swap_in_range = self->at_swap > 0 && self->swap_key >= limit;
    if (limit > 0 && self->max_key < limit && !swap_in_range) {
        atomic_fetch_add_explicit(&truncates_skipped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&truncates_forwarded, 1, memory_order_relaxed);
    base.xTruncate(self->real, limit);
    /* nothing at or above limit is left */
    if (limit == 0)
        self->max_key = 0;
    else if (self->max_key >= limit)
        self->max_key = limit - 1;
    if (self->swap_key >= limit)
        self->at_swap = 0;
}

static void pcache_destroy(sqlite3_pcache *cache)
{
    wrapped_cache_t *self = (wrapped_cache_t *)cache;
    base.xDestroy(self->real);
    free(self);
}

static void pcache_shrink(sqlite3_pcache *cache)
{
    if (base.xShrink != NULL) /* absent from version 0 of the methods */
        base.xShrink(((wrapped_cache_t *)cache)->real);
}

static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* sqlite3_config refuses (SQLITE_MISUSE) once SQLite is initialised. */
static void pcache_install_once(void)
{
    sqlite3_pcache_methods2 found = {0};
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &found) != SQLITE_OK ||
        found.xInit == NULL) {
        cv_log_debug("page cache wrapper not installed: SQLite already "
                     "initialised");
        return;
    }
    base = found;
    wrapper = (sqlite3_pcache_methods2){
        .iVersion = 1,
        .pArg = NULL,
        .xInit = pcache_init,
        .xShutdown = pcache_shutdown,
        .xCreate = pcache_create,
        .xCachesize = pcache_cachesize,
        .xPagecount = pcache_pagecount,
        .xFetch = pcache_fetch,
        .xUnpin = pcache_unpin,
        .xRekey = pcache_rekey,
        .xTruncate = pcache_truncate,
        .xDestroy = pcache_destroy,
        .xShrink = pcache_shrink,
    };
    if (sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) != SQLITE_OK) {
        cv_log_debug("page cache wrapper not installed: SQLite refused it");
        return;
    }
    installed = true;
}

int cv_pcache_install(void)
{
    pthread_once(&install_once, pcache_install_once);
    return installed ? 0 : -1;
}

void cv_pcache_stats(uint64_t *skipped, uint64_t *forwarded)
{
    if (skipped != NULL)
        *skipped =
            atomic_load_explicit(&truncates_skipped, memory_order_relaxed);
    if (forwarded != NULL)
        *forwarded =
            atomic_load_explicit(&truncates_forwarded, memory_order_relaxed);
}

const sqlite3_pcache_methods2 *cv_pcache_methods(void)
{
    pthread_once(&install_once, pcache_install_once);
    return installed ? &wrapper : NULL;
}

/* intake_seen: which contact keys intake may have stored, in memory. */
#include "intake_seen.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

#define INTAKE_SEEN_BITS_PER_KEY                                               \
    16                                     /* when sized: ~0.2% "maybe" for a  \
                                              new key; ~0.6% at reload */
#define INTAKE_SEEN_RELOAD_BITS_PER_KEY 12 /* fuller than this: reload */
#define INTAKE_SEEN_PROBES              4  /* bits set per key */

struct intake_seen {
    uint64_t *bits; /* the filter (owned); NULL until loaded */
    uint64_t mask;  /* bit count - 1 (the count is a power of two) */
    uint64_t keys;  /* keys added since the last load, loaded ones too */
    bool loaded;    /* holds every key of the table */
};

uint64_t intake_seen_bits(const intake_seen_t *self)
{
    return self->bits != NULL ? self->mask + 1 : 0;
}

intake_seen_t *intake_seen_new(void)
{
    return calloc(1, sizeof(intake_seen_t));
}

void intake_seen_destroy(intake_seen_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->bits);
    free(*self_p);
    *self_p = NULL;
}

uint64_t intake_seen_fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* FNV-1a over kind, a NUL and value, then intake_seen_fmix so that every bit
 * of the result depends on every byte. */
static uint64_t intake_seen_hash(const char *kind, const char *value)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = kind; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h *= 0x100000001b3ull; /* the NUL between kind and value */
    for (const char *p = value; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return intake_seen_fmix(h);
}

/* The probes of a key: double hashing from the two halves of its hash. */
static void intake_seen_set(intake_seen_t *self, uint64_t h)
{
    uint64_t step = (h >> 32) | 1;
    for (int i = 0; i < INTAKE_SEEN_PROBES; i++) {
        uint64_t bit = (h + (uint64_t)i * step) & self->mask;
        self->bits[bit >> 6] |= 1ull << (bit & 63);
    }
}

static bool intake_seen_test(const intake_seen_t *self, uint64_t h)
{
    uint64_t step = (h >> 32) | 1;
    for (int i = 0; i < INTAKE_SEEN_PROBES; i++) {
        uint64_t bit = (h + (uint64_t)i * step) & self->mask;
        if ((self->bits[bit >> 6] & (1ull << (bit & 63))) == 0)
            return false;
    }
    return true;
}

/* Builds the filter from contact_keys, sized for twice its rows (or the
 * keys added so far, if more). 0, or -1 (logged) leaving it unloaded. */
static int intake_seen_load(intake_seen_t *self, cv_store_t *store)
{
    sqlite3_stmt *count =
        cv_store_prepare(store, "SELECT count(*) FROM contact_keys");
    if (count == NULL)
        return -1;
    int rc = sqlite3_step(count);
    int64_t rows = rc == SQLITE_ROW ? sqlite3_column_int64(count, 0) : -1;
    sqlite3_reset(count);
    if (rows < 0)
        return cv_error("cannot count contact keys in '%s': %s",
                        cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    uint64_t want = (uint64_t)rows > self->keys ? (uint64_t)rows : self->keys;
    want = want * 2 * INTAKE_SEEN_BITS_PER_KEY;
    uint64_t nbits = INTAKE_SEEN_MIN_BITS;
    while (nbits < want)
        nbits <<= 1;
    uint64_t *bits = calloc(nbits / 64, sizeof(uint64_t));
    if (bits == NULL)
        return cv_error("out of memory for a filter of %lld contact keys",
                        (long long)rows);
    free(self->bits);
    self->bits = bits;
    self->mask = nbits - 1;
    self->keys = 0;
    self->loaded = false;
    sqlite3_stmt *all =
        cv_store_prepare(store, "SELECT kind, value FROM contact_keys");
    if (all == NULL)
        return -1;
    while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(all, 0);
        const char *value = (const char *)sqlite3_column_text(all, 1);
        if (kind == NULL || value == NULL)
            continue;
        intake_seen_set(self, intake_seen_hash(kind, value));
        self->keys++;
    }
    sqlite3_reset(all);
    if (rc != SQLITE_DONE)
        return cv_error("cannot read contact keys in '%s': %s",
                        cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    self->loaded = true;
    return 0;
}

bool intake_seen_ready(intake_seen_t *self, cv_store_t *store)
{
    if (self == NULL)
        return false;
    /* full: the share of "maybe" for new keys grows; rebuild larger */
    bool full = self->loaded &&
                self->keys * INTAKE_SEEN_RELOAD_BITS_PER_KEY > self->mask + 1;
    if (self->loaded && !full)
        return true;
    return intake_seen_load(self, store) == 0;
}

bool intake_seen_maybe(const intake_seen_t *self, const char *kind,
                       const char *value)
{
    if (self == NULL || !self->loaded)
        return true;
    return intake_seen_test(self, intake_seen_hash(kind, value));
}

void intake_seen_add(intake_seen_t *self, const char *kind, const char *value)
{
    /* an unloaded filter reads the table when it loads */
    if (self == NULL || !self->loaded)
        return;
    intake_seen_set(self, intake_seen_hash(kind, value));
    self->keys++;
}

/* intake_seen: which contact keys intake may have stored, in memory.
 *
 * Nearly every lead a site posts is a new person: the look-up that finds
 * a repeat contact (contact_keys by kind and value) then finds nothing,
 * after a statement and one B-tree descent per contact (about a tenth of
 * the SQL a lead cost). This is a Bloom filter of every (kind, value) in
 * contact_keys: when it says a lead's contacts were never seen, the
 * look-up is skipped; when it says "maybe", the database is asked as
 * before.
 *
 * Why it is safe: it can only be wrong by saying "maybe" for a key the
 * table lacks (then the look-up runs and finds nothing, as without it).
 * It never says "no" for a stored key, because it is loaded from the
 * table (inside the transaction that first uses it) and every key intake
 * stores afterwards is added when it is written, on the same bus thread,
 * before the transaction commits; nothing deletes contact keys, and
 * intake's bus thread is the only writer of its database. A turn
 * that rolls back leaves its keys in the filter: more "maybe", never a
 * wrong "no". A kill -9 loses the filter, which is rebuilt from the table.
 *
 * Bus thread only (no locking). Owned by whoever made it (intake_queue). */
#ifndef INTAKE_SEEN_H
#define INTAKE_SEEN_H

#include <stdbool.h>
#include <stdint.h>

#include "cv_store.h"

typedef struct intake_seen intake_seen_t;

#define INTAKE_SEEN_MIN_BITS                                                   \
    (1u << 20) /* 128 KiB: ~87k keys before the                                \
                  first reload */

/* MurmurHash3's 64-bit finaliser: every output bit depends on every input
 * bit. The filter's key hash and intake's body fingerprint both end with
 * it; fingerprints are stored, so it must never change. */
uint64_t intake_seen_fmix(uint64_t h);

/* The filter's size in bits, 0 before it is loaded. */
uint64_t intake_seen_bits(const intake_seen_t *self);

/* An empty, unloaded filter, or NULL when out of memory. */
intake_seen_t *intake_seen_new(void);

/* NULL-safe; nulls *self_p. */
void intake_seen_destroy(intake_seen_t **self_p);

/* Whether the filter holds every key of `store` (loading it from
 * contact_keys the first time, and again, larger, when it fills up): run
 * inside the bus turn's transaction before asking intake_seen_maybe. false
 * when it could not be loaded (logged): ask the database. */
bool intake_seen_ready(intake_seen_t *self, cv_store_t *store);

/* false: no contact key (kind, value) was ever stored. true: maybe. Only
 * meaningful after intake_seen_ready said true. */
bool intake_seen_maybe(const intake_seen_t *self, const char *kind,
                       const char *value);

/* Notes a key being written to contact_keys. Call for every key written
 * while the filter is in use. */
void intake_seen_add(intake_seen_t *self, const char *kind, const char *value);

#endif

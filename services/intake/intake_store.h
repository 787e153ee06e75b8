/* intake_store: intake's database — leads, the contact keys that find a
 * repeat contact, each repeat contact as it arrived (a new lead's row is
 * its own first arrival), and Idempotency-Key replies.
 *
 * Everything here runs on the bus thread inside the bus turn's open
 * transaction, so a lead, its keys, its idempotency row and the events it
 * causes commit together or not at all. */
#ifndef INTAKE_STORE_H
#define INTAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_bus.h"
#include "cv_id.h"
#include "cv_store.h"
#include "intake_lead.h"
#include "intake_seen.h"
#include "cv_sha256.h"

extern const char *const intake_migrations[];
extern const size_t intake_migration_count;

/* Room for {"lead_id":"<id>","status":"accepted","duplicate_of":"<id>"}
 * with ids of up to 48 bytes. */
#define INTAKE_REPLY_SIZE 160

/* What the client is told about one lead once the turn commits. */
typedef struct {
    int status;        /* 202, 422 (idempotency key reused) or 503 */
    char *reply;       /* the JSON body: `accepted` or owned */
    char accepted[INTAKE_REPLY_SIZE]; /* the usual 202 body, no malloc */
    bool created;      /* a new lead was stored */
    bool merged;       /* folded into an existing lead */
    bool replayed;     /* an Idempotency-Key retry answered from the table */
    int leads_created; /* an import batch: new leads stored */
    int leads_merged;  /* an import batch: rows folded into existing leads */
} intake_outcome_t;

/* A lead made ready on an HTTP thread, so the bus thread mostly runs SQL:
 * its new lead id is made in advance (a repeat contact's arrival id is
 * made when its row is written, since only repeats get one). */
typedef struct {
    intake_lead_t lead;                /* lead_id: a fresh id, replaced by
                                          the existing lead's on a merge */
    char *idempotency_key;             /* the header, or NULL (owned) */
    char body_hash[CV_SHA256_HEX];     /* what the key covers, hashed
                                          (intake_fingerprint, or SHA-256
                                          hex for a channel event); set
                                          only with idempotency_key */
    const void *hashed_a;              /* what body_hash hashes, borrowed */
    size_t hashed_a_size;              /* from the suspended request while */
    const void *hashed_b;              /* it waits for the bus thread; NULL */
    size_t hashed_b_size;              /* when body_hash is a SHA-256 */
} intake_submission_t;

/* A body fingerprint: "f1:" and 128 bits in hex. Replies stored before
 * fingerprints carry a SHA-256 (64 hex digits) instead. */
#define INTAKE_FINGERPRINT_PREFIX "f1:"

/* The fingerprint of the concatenation of `a` and `b` (their sizes
 * count, so "ab"+"c" differs from "a"+"bc") into `hex`. Not a
 * cryptographic hash: it tells a retry of an Idempotency-Key with the
 * same body from one with another body, the way the SHA-256 it replaces
 * did, in ~1/25 of the instructions (the SHA-256 was ~20k instructions
 * per lead, half of reading one). A client that crafted two bodies with
 * the same fingerprint would only confuse the replies to its own keys. */
void intake_fingerprint(const void *a, size_t a_size, const void *b,
                        size_t b_size, char hex[CV_SHA256_HEX]);

/* Fills what intake_store_accept needs beyond the parsed lead (whose
 * api_source and received_at are set): its ids. 0, or -1 when out of
 * memory. Any thread. */
int intake_submission_prepare(intake_submission_t *sub);

/* Frees the texts and zeroes it. NULL-safe. */
void intake_submission_clear(intake_submission_t *sub);

/* `seen` (may be NULL: always ask the database) is the bus thread's filter
 * of stored contact keys (intake_seen.h): the functions below that look up
 * or write contact keys take it, to skip the look-up of a new person and
 * to note the keys they write. */

/* Stores the submission's lead (sub->lead.lead_id becomes the existing
 * lead's when it merges), its idempotency reply when it has a key, and
 * emits LeadReceived. Returns 0 with `outcome` filled — a database error
 * confined to this lead is rolled back to before it and answered 503 — or
 * -1 when the whole turn must be rolled back (an event could not be
 * written). */
int intake_store_accept(cv_bus_t *bus, intake_seen_t *seen,
                        intake_submission_t *sub, intake_outcome_t *outcome);

void intake_outcome_clear(intake_outcome_t *outcome);

/* The steps of intake_store_accept, for callers that store many leads
 * under one reply (import batches, intake_import.h). All run on the bus
 * thread inside the turn's transaction; the caller holds a savepoint
 * around match and write and rolls back to it when either fails. */

/* What storing one submission did. */
typedef struct {
    bool merged;          /* a repeat contact: sub->lead.lead_id is now the
                             existing lead's */
    char *fresh_id;       /* after a merge, the unused id made on the HTTP
                             thread (owned) */
    intake_lead_t stored; /* after a merge, the lead as now stored (owned) */
} intake_write_t;

/* Looks for a stored lead owning one of the submission's contacts (leads
 * written earlier in the same transaction included) and, when there is
 * one, points sub->lead.lead_id at it. `w` is reset first. 0 or -1
 * (logged). */
int intake_store_match(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_write_t *w);

/* Inserts the matched submission as a new lead or merges it into the
 * existing one, with its contact keys and arrival row. Emits nothing.
 * 0 or -1 (logged). */
int intake_store_write(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_write_t *w);

/* Emits the written lead's LeadReceived: to scoring and console when new,
 * to console alone when merged. Call once the lead's writes are final
 * (its savepoint, if any, released): staged events cannot be taken back
 * without the whole turn. 0 or -1. */
int intake_store_emit(cv_bus_t *bus, const intake_submission_t *sub,
                      const intake_write_t *w);

/* Frees what match and write left in `w`. NULL-safe. */
void intake_write_clear(intake_write_t *w);

/* What intake_store_accept does for one lead — match, idempotency, write
 * — without its savepoint and without emitting, for a caller that stores
 * a batch of leads without any savepoint (intake_queue): a savepoint
 * makes SQLite copy every page a lead touches into its statement journal
 * first (with one per batch of 3, ~26k of the ~166k instructions of SQL a
 * lead cost). 0 with `outcome` and `w` filled (emit with
 * intake_store_emit when outcome->created or ->merged), or -1 (logged):
 * roll the turn back, then intake_store_unstage. */
int intake_store_stage(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_outcome_t *outcome,
                       intake_write_t *w);

/* After a rollback of what intake_store_stage wrote: undoes what it did
 * to `sub` (the merge target's id in place of the fresh one, the
 * returning-client fields) and clears `w` and `outcome`, so the
 * submission can be stored again as it came from the HTTP thread. */
void intake_store_unstage(intake_submission_t *sub, intake_write_t *w,
                          intake_outcome_t *outcome);

/* Runs "SAVEPOINT x", "RELEASE x" or "ROLLBACK TO x". 0 or -1 (logged). */
int intake_store_savepoint(cv_store_t *store, const char *sql);

/* The reply already given to (source, key): 1 with `outcome` filled (the
 * stored reply, marked replayed, when body_hash matches, or when the
 * stored hash is a SHA-256 of what `sub` (may be NULL) borrowed; 422
 * idempotency_key_reused when not), 0 when the pair has none, -1 on a
 * database error. */
int intake_store_idempotency_lookup(cv_store_t *store, const char *source,
                                    const char *key, const char *body_hash,
                                    const intake_submission_t *sub,
                                    intake_outcome_t *outcome);

/* Keeps `outcome` as the reply to (source, key). `lead_id`: outcome is
 * the usual 202 of that lead (intake_store_stage's; a duplicate when
 * outcome->merged), kept as the lead alone and made again on a replay;
 * NULL: kept as outcome->reply. 1 when stored, 0 when the pair had a
 * reply already, -1 on a database error. */
int intake_store_idempotency_put(cv_store_t *store, const char *source,
                                 const char *key, const char *body_hash,
                                 const intake_outcome_t *outcome,
                                 const char *lead_id);

/* {"error": code, "message": message} as JSON text (owned), or NULL. */
char *intake_store_error_reply(const char *code, const char *message);

/* Idempotency-Key replies are kept this long (a client retries within
 * minutes or hours; a week covers any sane retry policy). */
#define INTAKE_IDEMPOTENCY_KEEP_MS (7 * 24 * 3600 * 1000LL)

/* Forgets idempotency replies older than INTAKE_IDEMPOTENCY_KEEP_MS,
 * inside the caller's transaction. 0 or -1 (logged). */
int intake_store_prune(cv_store_t *store, int64_t now_ms);

/* Records that people decided a lead (won or lost), so the person's next
 * contact starts a new lead flagged as a returning client. Idempotent. */
int intake_store_decided(cv_store_t *store,
                         const Conveyor__DecisionRecorded *decision,
                         int64_t decided_at);

#endif

/* intake_store: intake's database — leads, the contact keys that find a
 * repeat contact, each arrival, and Idempotency-Key replies.
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
#include "intake_sha256.h"

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
} intake_outcome_t;

/* A lead made ready on an HTTP thread, so the bus thread only runs SQL:
 * its new lead id, arrival id and arrival record are made in advance. */
typedef struct {
    intake_lead_t lead;                /* lead_id: a fresh id, replaced by
                                          the existing lead's on a merge */
    char arrival_id[CV_ID_SIZE];       /* id of its arrivals row */
    char *arrival_json;                /* the lead as JSON, lead_id (the
                                          fresh one) first (owned) */
    char *idempotency_key;             /* the header, or NULL (owned) */
    char body_hash[INTAKE_SHA256_HEX]; /* SHA-256 of type and body; set
                                          only with idempotency_key */
} intake_submission_t;

/* Fills what intake_store_accept needs beyond the parsed lead (whose
 * api_source and received_at are set): the ids and the arrival JSON.
 * 0, or -1 when out of memory. Any thread. */
int intake_submission_prepare(intake_submission_t *sub);

/* Frees the texts and zeroes it. NULL-safe. */
void intake_submission_clear(intake_submission_t *sub);

/* Stores the submission's lead (sub->lead.lead_id becomes the existing
 * lead's when it merges), its idempotency reply when it has a key, and
 * emits LeadReceived. Returns 0 with `outcome` filled — a database error
 * confined to this lead is rolled back to before it and answered 503 — or
 * -1 when the whole turn must be rolled back (an event could not be
 * written). */
int intake_store_accept(cv_bus_t *bus, intake_submission_t *sub,
                        intake_outcome_t *outcome);

void intake_outcome_clear(intake_outcome_t *outcome);

/* Idempotency-Key replies are kept this long (a client retries within
 * minutes or hours; a week covers any sane retry policy). */
#define INTAKE_IDEMPOTENCY_KEEP_MS (7 * 24 * 3600 * 1000LL)

/* Forgets idempotency replies older than INTAKE_IDEMPOTENCY_KEEP_MS,
 * inside the caller's transaction. 0 or -1 (logged). */
int intake_store_prune(cv_store_t *store, int64_t now_ms);

#endif

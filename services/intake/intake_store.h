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
#include "cv_store.h"
#include "intake_lead.h"

extern const char *const intake_migrations[];
extern const size_t intake_migration_count;

/* What the client is told about one lead once the turn commits. */
typedef struct {
    int status;        /* 202, 422 (idempotency key reused) or 503 */
    char *reply;       /* the JSON body (owned) */
    bool created;      /* a new lead was stored */
    bool merged;       /* folded into an existing lead */
    bool replayed;     /* an Idempotency-Key retry answered from the table */
} intake_outcome_t;

/* Stores `lead` (its lead_id is set to the new or the existing lead),
 * with `idempotency_key` (or NULL) and the hash of the request body, and
 * emits LeadReceived. Returns 0 with `outcome` filled — a database error
 * confined to this lead is rolled back to before it and answered 503 — or
 * -1 when the whole turn must be rolled back (an event could not be
 * written). */
int intake_store_accept(cv_bus_t *bus, intake_lead_t *lead,
                        const char *idempotency_key, const char *body_hash,
                        intake_outcome_t *outcome);

void intake_outcome_clear(intake_outcome_t *outcome);

/* Idempotency-Key replies are kept this long (a client retries within
 * minutes or hours; a week covers any sane retry policy). */
#define INTAKE_IDEMPOTENCY_KEEP_MS (7 * 24 * 3600 * 1000LL)

/* Forgets idempotency replies older than INTAKE_IDEMPOTENCY_KEEP_MS,
 * inside the caller's transaction. 0 or -1 (logged). */
int intake_store_prune(cv_store_t *store, int64_t now_ms);

#endif

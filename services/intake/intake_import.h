/* intake_import: `POST /v1/import`, one batch of rows of a cold call list.
 *
 * `conveyorctl import FILE.csv --source NAME` (tools/conveyorctl) reads a
 * call list and posts it in batches, each with its own Idempotency-Key:
 *
 *   {"source": "<list name>",
 *    "rows": [{"line": 2, "lead": {"name": "…", "phone": "…", …}}, …]}
 *
 * Every row is read and checked on the HTTP thread by the same code as a
 * lead posted to /v1/leads (intake_lead_from_json). Imported leads are
 * tier-1 cold calls: their `channel` is "cold" and their `source` the list
 * name (a row's own `channel` or `source` is kept in its `extra`). The
 * batch then waits in the intake queue like a single lead, and the bus
 * thread stores all its good rows inside one savepoint of the turn's
 * transaction — a row whose contact is already known, also from an
 * earlier row of the same batch, merges into that lead — together with
 * the batch's idempotency record, then emits their LeadReceived events.
 * Only after that commit does the client hear, per row:
 *
 *   200 {"imported": 1, "merged": 1, "rejected": 1, "rows": [
 *        {"line": 2, "status": "imported", "lead_id": "lead_…"},
 *        {"line": 3, "status": "merged", "lead_id": "lead_…",
 *         "duplicate_of": "lead_…"},
 *        {"line": 4, "status": "rejected", "error": "invalid_field",
 *         "field": "phone", "message": "…"}]}
 *
 * A retry with the same key and body gets the same reply (header
 * `Idempotent-Replayed: true`) and stores nothing; the whole batch is
 * stored or none of it (503). */
#ifndef INTAKE_IMPORT_H
#define INTAKE_IMPORT_H

#include "cv_bus.h"
#include "cv_http.h"
#include "cv_spam.h"
#include "intake_queue.h"
#include "intake_store.h"

#define INTAKE_IMPORT_ROWS_MAX 1000 /* rows in one batch */

typedef struct intake_import intake_import_t;

/* Handles the request on its HTTP thread for the source `api_source`
 * (already authenticated) with the request's `idempotency_key` (checked,
 * or NULL: refused, a batch needs one). Replies at once when the body is
 * unusable; otherwise hands the batch to `queue` and suspends the request
 * until the bus thread answers it. Rows that `spam` (NULL: no check)
 * refuses are rejected with the reason. Returns the HTTP status when it
 * replied itself, 0 when the batch was queued. */
int intake_import_post(intake_queue_t *queue, cv_http_request_t *req,
                       const char *api_source, const char *idempotency_key,
                       const cv_spam_t *spam);

/* Bus thread, inside the turn's transaction: stores the batch and fills
 * `outcome` with its reply (200, a replay, 422 for a reused key, or 503
 * when it could not be stored: then nothing of it was). `seen` as for
 * intake_store_match (may be NULL). Returns 0, or -1 when the whole turn
 * must be rolled back (an event could not be written). */
int intake_import_store(cv_bus_t *bus, intake_seen_t *seen,
                        intake_import_t *batch, intake_outcome_t *outcome);

/* NULL-safe; nulls *self_p. */
void intake_import_destroy(intake_import_t **self_p);

#endif

/* intake_queue: leads waiting for the bus thread's next transaction.
 *
 * HTTP threads validate a lead, suspend its request and push it here; the
 * queue is a cv_bus source whose fd (an eventfd) wakes the bus loop. In
 * the bus turn every waiting lead (up to batch_max) is stored in the same
 * transaction (group commit); once that transaction has committed each
 * request gets its reply (202, or 503 when it did not commit) and is
 * resumed. No client hears 202 before its lead is on disk. */
#ifndef INTAKE_QUEUE_H
#define INTAKE_QUEUE_H

#include "cv_bus.h"
#include "cv_http.h"
#include "intake_lead.h"
#include "cv_sha256.h"
#include "intake_store.h"

/* One suspended request and its lead (or import batch). */
typedef struct intake_pending {
    struct intake_pending *next;       /* the next in the queue */
    cv_http_request_t *req;            /* suspended; resumed on reply */
    intake_submission_t sub;           /* the validated lead, ready */
    struct intake_import *batch;       /* instead of `sub`: an import
                                          batch (intake_import.h), owned;
                                          NULL for a single lead */
    intake_outcome_t outcome;          /* filled in the bus turn */
    intake_write_t write;              /* what the bus turn wrote, kept
                                          until the reply */
    bool isolate;                      /* store alone, under a savepoint
                                          of its own: its batch failed */
} intake_pending_t;

typedef struct intake_queue intake_queue_t;

/* Up to `batch_max` leads per transaction. With `linger_ms` > 0
 * (batch_linger_ms), a busy intake stores batches at most once per
 * `linger_ms`: after a batch of several leads, leads that come sooner
 * wait until then (fewer, larger commits, each writing a fixed set of
 * pages and syncing once); after a batch of one, or a quiet spell, a lead
 * is stored at once. 0 stores what is waiting at once. NULL after logging when
 * the eventfd cannot be made. */
intake_queue_t *intake_queue_new(int batch_max, int linger_ms);

/* NULL-safe; nulls *self_p. Call intake_queue_close first. */
void intake_queue_destroy(intake_queue_t **self_p);

/* The bus source that drains the queue; add it with cv_bus_add_source. */
void intake_queue_source(intake_queue_t *self, cv_bus_source_t *source);

/* Takes ownership of `item` and wakes the bus. Thread-safe. Returns -1
 * (item still the caller's) once the queue is closed. */
int intake_queue_push(intake_queue_t *self, intake_pending_t *item);

/* Refuses further pushes and answers 503 to every lead still waiting.
 * Call after the bus loop has stopped. NULL-safe. */
void intake_queue_close(intake_queue_t *self);

/* Frees an item that was never pushed (or has been answered). NULL-safe. */
void intake_pending_free(intake_pending_t *item);

#endif

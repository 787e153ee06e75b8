/* cv_bus: at-least-once delivery between stages, exactly-once effects.
 *
 * Every service process runs one cv_bus loop on its main thread. The bus
 * connects a DEALER socket to the broker (common/cv_wire.h has the frames),
 * registers the service name it works for, and:
 *   - receives events addressed to that name; for each new event it records
 *     the event id in the inbox and calls the service's handler, all in ONE
 *     SQLite transaction per batch (group commit), and acknowledges the
 *     events only after that commit. A re-delivered id is acknowledged and
 *     skipped;
 *   - sends the rows of the outbox (written by cv_bus_emit in the same
 *     transaction as the state change that caused them) to their
 *     destination service, re-sends each after a lease until the receiver
 *     acknowledges, then deletes it (the deletes ride in the next
 *     transaction);
 *   - runs the service's own sources (a wake-up fd, a due time) inside the
 *     same transaction as the events of that turn.
 * ZeroMQ is only the transport: an event's only durable copy is the
 * outbox row, so any process may be killed at any moment. */
#ifndef CV_BUS_H
#define CV_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_config.h"
#include "cv_store.h"

typedef struct cv_bus cv_bus_t;

/* A handler's answer that acknowledges an event without keeping any effect
 * of it (an event this service cannot use; log why before returning it). */
#define CV_BUS_DROP (-2)

/* Called on the bus thread inside the batch transaction, once per event
 * not seen before. Return 0 when handled (effects kept, acknowledged),
 * CV_BUS_DROP, or -1 to roll back this event's effects and have the sender
 * re-send it later (transient trouble, logged by the handler). */
typedef int (*cv_bus_handler_fn)(void *arg, cv_bus_t *bus,
                                 const Conveyor__Envelope *event);

typedef struct {
    const cv_config_t *config;      /* service, broker endpoint, batch_max,
                                       lease_ms, heartbeat_ms */
    cv_store_t *store;              /* the service's database (not owned);
                                       the bus adds its cv_outbox and
                                       cv_inbox tables */
    const char *worker_service;     /* service name to receive events for;
                                       NULL for a process that only sends */
    cv_bus_handler_fn handler;
    void *arg;
} cv_bus_options_t;

/* A service's own work inside the loop: timers, a queue filled by HTTP
 * threads, deliveries finished by worker threads. */
typedef struct {
    int fd; /* work runs when this fd is readable; -1 for none */
    /* Runs on the bus thread inside the turn's transaction when `fd` is
     * readable or next_due has come; drains `fd` itself. Non-zero rolls back
     * the whole turn (nothing acknowledged, nothing committed). */
    int (*work)(void *arg, cv_bus_t *bus, int64_t now_ms);
    /* After the transaction that ran `work` committed (ok) or not; may be
     * NULL. Replies to HTTP clients belong here. */
    void (*committed)(void *arg, cv_bus_t *bus, bool ok);
    /* Conveyor-clock time (ms) when `work` must run next, or INT64_MAX;
     * may be NULL. Called once a turn, outside the transaction. */
    int64_t (*next_due)(void *arg, cv_bus_t *bus);
    /* After every turn, whether `work` ran in it or not, once its
     * transaction committed (ok) or rolled back; may be NULL. What the
     * service's event handler staged in the turn and must not leave
     * before the rows behind it are on disk goes out from here (the
     * notifier's resends, and its first attempts after a failed turn). */
    void (*turn_ended)(void *arg, cv_bus_t *bus, bool ok);
    /* Every turn, on the bus thread, after its events and sources ran and
     * just before its COMMIT; may be NULL. What may leave before the rows
     * behind it are on disk goes from here, so the world does not wait
     * for the sync (the notifier's first attempts: at least once all the
     * same, since a rolled-back turn's events come again). Non-zero rolls
     * the turn back. */
    int (*before_commit)(void *arg, cv_bus_t *bus);
    void *arg;
} cv_bus_source_t;

/* Connects to the broker and loads the unsent outbox. Returns NULL after
 * logging (bad endpoint, tables not creatable). */
cv_bus_t *cv_bus_new(const cv_bus_options_t *options);

/* NULL-safe; nulls *self_p. */
void cv_bus_destroy(cv_bus_t **self_p);

/* At most 8 sources; the source struct is copied. 0 or -1. */
int cv_bus_add_source(cv_bus_t *self, const cv_bus_source_t *source);

/* Runs the loop until SIGINT/SIGTERM (handlers installed here) or
 * cv_bus_stop. Returns 0 on a clean stop, -1 on a fatal error (logged). */
int cv_bus_run(cv_bus_t *self);

/* Thread-safe and async-signal-safe. */
void cv_bus_stop(cv_bus_t *self);

/* Thread-safe: another connection committed rows into the outbox
 * (cv_outbox_put); the loop picks them up at once. */
void cv_bus_wake(cv_bus_t *self);

/* True when the broker has been heard from within three heartbeats. */
bool cv_bus_connected(const cv_bus_t *self);

cv_store_t *cv_bus_store(cv_bus_t *self);
const char *cv_bus_service(const cv_bus_t *self);

/* Writes `event` to the outbox for each destination service named after
 * it (a NULL-terminated list), inside the caller's open transaction on the
 * bus thread. Fills what the caller left unset: version, event_id (one id,
 * shared by all destinations), type (from the body), occurred_at (now),
 * producer (this service), trace_id (the trace of the event being handled,
 * or the new event id) and lead_id (from the body where it has one).
 * Returns 0, or -1 after logging. */
int cv_bus_emit(cv_bus_t *self, Conveyor__Envelope *event, ...)
    __attribute__((sentinel));

/* The same for a thread other than the bus thread, on that thread's own
 * connection `store`, inside its open transaction; after COMMIT, call
 * cv_bus_wake. `producer` is the service name. */
int cv_outbox_put(cv_store_t *store, const char *producer,
                  Conveyor__Envelope *event, ...) __attribute__((sentinel));

/* Creates the cv_outbox and cv_inbox tables when missing (cv_bus_new does
 * this too); for writers that may run before the bus exists. 0 or -1. */
int cv_outbox_create(cv_store_t *store);

/* The event now being handled on the bus thread, or NULL. */
const Conveyor__Envelope *cv_bus_current(const cv_bus_t *self);

/* The packed envelope of that event, byte for byte as it arrived: *data
 * points into the bus's inbound message (owned by the bus, valid only
 * while the handler runs; copy what must outlive it). Lets a handler keep
 * or forward the body without packing the unpacked copy again
 * (cv_event_field_bytes finds the body in it). 0, or -1 outside a handler
 * (the bus's own sources have no event). */
int cv_bus_current_packed(const cv_bus_t *self, const uint8_t **data,
                          size_t *size);

#endif

/* notifier: tells staff and other systems about notifications.
 *
 * NotificationRequested events arrive on the bus thread; each becomes a row
 * in notifier_jobs (the notification id is the primary key, so a duplicate
 * request is stored once) in the bus's transaction, and the event is
 * acknowledged when that commits. Webhook deliveries then happen on a small
 * pool of worker threads (notifier_pool), each with its own keep-alive curl
 * handle (notifier_webhook). Their results come back to the bus thread
 * through an eventfd source, where they are written to the database and
 * turned into NotificationDelivered events for the console, or scheduled
 * for another attempt (notifier_schedule) with exponential backoff.
 *
 * Threads: the SQLite connection belongs to the bus thread; worker threads
 * touch only the job they hold, their curl handle and the pool's lists. */
#ifndef NOTIFIER_H
#define NOTIFIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_bus.h"
#include "cv_store.h"

#define NOTIFIER_SERVICE "notifier"
#define NOTIFIER_ERROR_SIZE 256 /* room for a curl error or a status line */

/* One notification waiting for (or in) a webhook delivery. Owned by
 * exactly one holder at a time: the bus thread's lists and schedule, the
 * pool's queue, a worker, or the pool's result list. */
typedef struct notifier_job notifier_job_t;
struct notifier_job {
    notifier_job_t *next;        /* link in whichever list holds the job */
    char *notification_id;       /* primary key, sent as Idempotency-Key */
    char *lead_id;               /* NULL when the request had none */
    char *staff_id;              /* NULL when the request had none */
    char *webhook_url;           /* where the body is POSTed */
    char *body;                  /* the JSON text POSTed on every attempt */
    char *trace_id;              /* trace of the request, carried onward */
    int attempts;                /* attempts finished so far */
    int64_t next_attempt_at;     /* conveyor-clock ms when the next is due */
    /* The outcome of the last attempt, written by the worker that made it
     * and read by the bus thread once the job is handed back. */
    bool delivered;              /* the receiver answered 2xx */
    int http_status;             /* the receiver's status, 0 for none */
    int64_t retry_after_ms;      /* the receiver's Retry-After, or -1 */
    int64_t finished_at;         /* conveyor-clock ms the attempt ended */
    char error[NOTIFIER_ERROR_SIZE]; /* why it failed; "" when delivered */
    bool row_found;              /* the bus thread's write of this outcome
                                    found the job's pending row */
};

/* --- notifier_job.c --- */

/* A job with copies of the given strings (NULL allowed except for id, url
 * and body). NULL when out of memory. */
notifier_job_t *notifier_job_new(const char *notification_id,
                                 const char *lead_id, const char *staff_id,
                                 const char *webhook_url, const char *body,
                                 const char *trace_id);
void notifier_job_destroy(notifier_job_t **self_p); /* NULL-safe */
/* Frees every job of a list linked through `next`. NULL-safe. */
void notifier_job_list_destroy(notifier_job_t **list_p);

/* The JSON text a webhook receives for a request: its payload_json when
 * that is valid JSON, else an object with notification_id,
 * lead_id, staff_id, subject and text (absent fields left out). The caller
 * owns the string (free()); NULL when out of memory. */
char *notifier_job_body(const Conveyor__NotificationRequested *request);

/* --- notifier_store.c --- */

extern const char *const notifier_migrations[];
extern const size_t notifier_migration_count;

/* What the handler stores for one request. */
typedef struct {
    const Conveyor__NotificationRequested *request; /* the event's body */
    const char *channel;          /* "webhook" or "console" */
    const char *webhook_url;      /* NULL for console */
    const char *body;             /* JSON for the webhook */
    const char *trace_id;         /* the request's trace, may be NULL */
    bool delivered;               /* console: delivered on arrival */
    int64_t now;                  /* conveyor-clock ms */
} notifier_store_row_t;

/* INSERT OR IGNORE of a request. Sets *inserted to false when the id was
 * already stored. 0, or -1 after logging. Bus thread, in its transaction. */
int notifier_store_insert(cv_store_t *store, const notifier_store_row_t *row,
                          bool *inserted);

/* Marks a pending job delivered, with its attempts and status. Sets
 * *updated to false when no pending row had that id (already delivered,
 * or its insert was rolled back). 0, or -1 after logging. */
int notifier_store_mark_delivered(cv_store_t *store,
                                  const notifier_job_t *job, bool *updated);

/* Records a failed attempt: attempts, next_attempt_at, last status and
 * error. *updated as above. 0, or -1 after logging. */
int notifier_store_schedule_retry(cv_store_t *store,
                                  const notifier_job_t *job, bool *updated);

/* Every pending job, oldest due first, as a list the caller owns.
 * 0, or -1 after logging (the list is then freed and NULL). */
int notifier_store_load_pending(cv_store_t *store, notifier_job_t **list_p,
                                size_t *count);

/* --- notifier_schedule.c: jobs waiting for their next attempt, earliest
 * first (a binary heap). Bus thread only. --- */

typedef struct {
    notifier_job_t **items;       /* heap ordered by next_attempt_at */
    size_t count;                 /* jobs held */
    size_t capacity;              /* slots allocated */
} notifier_schedule_t;

/* Takes the job. 0, or -1 when out of memory (the job is left with the
 * caller). */
int notifier_schedule_push(notifier_schedule_t *self, notifier_job_t *job);
/* Removes and returns the earliest job due at or before `now`, or NULL. */
notifier_job_t *notifier_schedule_pop_due(notifier_schedule_t *self,
                                          int64_t now);
/* next_attempt_at of the earliest job, or INT64_MAX when empty. */
int64_t notifier_schedule_next(const notifier_schedule_t *self);
/* Frees every job held and the heap itself. */
void notifier_schedule_clear(notifier_schedule_t *self);

/* --- notifier_webhook.c: one worker's curl handle --- */

typedef struct notifier_webhook notifier_webhook_t;

/* A keep-alive handle whose transfers abort once *stop is true. NULL
 * after logging when curl cannot make one. */
notifier_webhook_t *notifier_webhook_new(const atomic_bool *stop);
void notifier_webhook_destroy(notifier_webhook_t **self_p); /* NULL-safe */

/* POSTs job->body to job->webhook_url with Content-Type and
 * Idempotency-Key headers and a 5 s timeout; fills the job's outcome
 * fields and counts the attempt. Never fails otherwise. */
void notifier_webhook_post(notifier_webhook_t *self, notifier_job_t *job);

/* --- notifier_pool.c: the worker threads --- */

typedef struct notifier_pool notifier_pool_t;

/* Starts `workers` threads. NULL after logging. curl_global_init must
 * have run. */
notifier_pool_t *notifier_pool_new(int workers);
/* Stops the workers (aborting transfers in progress), joins them and
 * frees every job still held. NULL-safe; nulls *self_p. */
void notifier_pool_destroy(notifier_pool_t **self_p);

/* Readable when results are waiting (an eventfd). */
int notifier_pool_fd(const notifier_pool_t *self);
/* Makes the fd readable without a result (to have the bus run the
 * source's work soon). */
void notifier_pool_poke(notifier_pool_t *self);
/* Queues a list of jobs for delivery, taking ownership. */
void notifier_pool_submit(notifier_pool_t *self, notifier_job_t *list);
/* Drains the fd and returns the finished jobs in the order they
 * finished; the caller owns them. */
notifier_job_t *notifier_pool_take_results(notifier_pool_t *self);

/* --- notifier_core.c: the bus side --- */

typedef struct notifier notifier_t;

/* The pool is started here. NULL after logging. */
notifier_t *notifier_new(int workers);
void notifier_destroy(notifier_t **self_p); /* NULL-safe; nulls *self_p */

/* The bus handler (argument: the notifier_t). */
int notifier_handle(void *arg, cv_bus_t *bus,
                    const Conveyor__Envelope *event);

/* Loads the undelivered jobs from the bus's store and adds the results
 * source to the bus. 0, or -1 after logging. */
int notifier_attach(notifier_t *self, cv_bus_t *bus);

#endif

/* notifier_core: the notifier's bus side. Stores requests, hands webhook
 * jobs to the pool once their rows are committed, writes the pool's
 * results and emits NotificationDelivered, keeps the retry schedule.
 * Everything here runs on the bus thread. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "cv_backoff.h"
#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "notifier.h"

#define NOTIFIER_ID_MAX 200        /* longest notification id accepted */
#define NOTIFIER_REAPPLY_MS 1000   /* wait after a failed transaction */
#define NOTIFIER_WARN_EVERY 10     /* log every n-th failed attempt */

/* A list with a tail pointer, for O(1) appends in order. */
typedef struct {
    notifier_job_t *head;          /* first job, NULL when empty */
    notifier_job_t **tail;         /* the last job's `next` (or &head) */
} notifier_list_t;

struct notifier {
    notifier_pool_t *pool;         /* the delivery workers (owned) */
    cv_bus_t *bus;                 /* set by notifier_attach (not owned) */
    notifier_schedule_t schedule;  /* jobs waiting for an attempt */
    notifier_list_t staged;        /* stored by the handler, handed to the
                                      pool after the next commit */
    notifier_list_t applied;       /* results written in the open turn */
    notifier_list_t unapplied;     /* results whose turn rolled back */
    int64_t reapply_at;            /* when to write `unapplied` again */
    bool poked;                    /* the fd was made readable for the
                                      staged jobs */
    uint64_t random;               /* xorshift state for the jitter */
    int64_t pending;               /* jobs held, not yet delivered */
    cv_metric_t *ok;               /* deliveries that succeeded */
    cv_metric_t *failed;           /* attempts that failed */
    cv_metric_t *attempts;         /* webhook attempts made */
    cv_metric_t *depth;            /* gauge: `pending` */
};

static void notifier_list_init(notifier_list_t *list)
{
    list->head = NULL;
    list->tail = &list->head;
}

static void notifier_list_append(notifier_list_t *list, notifier_job_t *job)
{
    job->next = NULL;
    *list->tail = job;
    list->tail = &job->next;
}

/* Moves every job of `from` to the end of `to`. */
static void notifier_list_splice(notifier_list_t *to, notifier_list_t *from)
{
    if (from->head == NULL)
        return;
    *to->tail = from->head;
    to->tail = from->tail;
    notifier_list_init(from);
}

static notifier_job_t *notifier_list_take(notifier_list_t *list)
{
    notifier_job_t *head = list->head;
    notifier_list_init(list);
    return head;
}

static uint32_t notifier_random(notifier_t *self)
{
    uint64_t x = self->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->random = x;
    return (uint32_t)(x >> 32);
}

notifier_t *notifier_new(int workers)
{
    notifier_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot start the notifier: out of memory");
        return NULL;
    }
    notifier_list_init(&self->staged);
    notifier_list_init(&self->applied);
    notifier_list_init(&self->unapplied);
    if (getrandom(&self->random, sizeof(self->random), 0)
        != (ssize_t)sizeof(self->random))
        self->random = (uint64_t)cv_clock_monotonic_ms();
    self->random |= 1; /* xorshift must not start at 0 */
    self->ok = cv_metrics_counter("conveyor_notifier_deliveries_ok_total",
                                  "notifications delivered");
    self->failed = cv_metrics_counter(
        "conveyor_notifier_deliveries_failed_total",
        "delivery attempts that failed and will be retried");
    self->attempts = cv_metrics_counter("conveyor_notifier_attempts_total",
                                        "webhook delivery attempts");
    self->depth = cv_metrics_gauge("conveyor_notifier_queue_depth",
                                   "notifications not yet delivered");
    self->pool = notifier_pool_new(workers);
    if (self->pool == NULL)
        notifier_destroy(&self);
    return self;
}

void notifier_destroy(notifier_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_t *self = *self_p;
    notifier_pool_destroy(&self->pool);
    notifier_schedule_clear(&self->schedule);
    notifier_job_list_destroy(&self->staged.head);
    notifier_job_list_destroy(&self->applied.head);
    notifier_job_list_destroy(&self->unapplied.head);
    free(self);
    *self_p = NULL;
}

/* True for ids that can travel in an HTTP header: printable ASCII, no
 * spaces, not empty, not too long. */
static bool notifier_id_valid(const char *id)
{
    size_t length = 0;
    for (const char *c = id; *c != '\0'; c++, length++) {
        if (*c <= ' ' || *c > '~')
            return false;
    }
    return length > 0 && length <= NOTIFIER_ID_MAX;
}

/* The request's webhook URL when it has a usable one, else NULL (the
 * notification then goes to the console inbox). */
static const char *notifier_webhook_url(const Conveyor__NotificationRequested
                                            *request)
{
    if (request->target == NULL || request->target->webhook_url == NULL
        || request->target->webhook_url[0] == '\0')
        return NULL;
    const char *url = request->target->webhook_url;
    if (strncasecmp(url, "http://", 7) == 0
        || strncasecmp(url, "https://", 8) == 0)
        return url;
    cv_log_warn("notification '%s': webhook url '%s' is not http or https; "
                "delivering to the console inbox",
                request->notification_id, url);
    return NULL;
}

/* Emits NotificationDelivered to the console. 0 or -1 (logged). */
static int notifier_emit_delivered(cv_bus_t *bus, const char *id,
                                   const char *lead_id, const char *staff_id,
                                   const char *trace_id, const char *channel,
                                   int attempts, int http_status,
                                   int64_t delivered_at)
{
    Conveyor__NotificationDelivered delivered =
        CONVEYOR__NOTIFICATION_DELIVERED__INIT;
    delivered.notification_id = (char *)id;
    delivered.lead_id = (char *)lead_id;
    delivered.staff_id = (char *)staff_id;
    delivered.channel = (char *)channel;
    delivered.has_attempts = true;
    delivered.attempts = attempts;
    delivered.has_http_status = http_status != 0;
    delivered.http_status = http_status;
    delivered.has_delivered_at = true;
    delivered.delivered_at = delivered_at;
    Conveyor__Envelope event = CONVEYOR__ENVELOPE__INIT;
    event.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_DELIVERED;
    event.notification_delivered = &delivered;
    event.trace_id = (char *)trace_id;
    return cv_bus_emit(bus, &event, "console", NULL);
}

int notifier_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    notifier_t *self = arg;
    if (event->body_case != CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED) {
        cv_log_warn("dropping event '%s' of type '%s': the notifier takes "
                    "only notification_requested",
                    event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
    const Conveyor__NotificationRequested *request =
        event->notification_requested;
    if (!notifier_id_valid(request->notification_id)) {
        cv_log_warn("dropping event '%s': notification id '%.*s' is empty, "
                    "too long or not printable ascii",
                    event->event_id, NOTIFIER_ID_MAX,
                    request->notification_id);
        return CV_BUS_DROP;
    }
    int rc = -1;
    const char *url = notifier_webhook_url(request);
    int64_t now = cv_clock_now_ms();
    char *body = notifier_job_body(request);
    if (body == NULL) {
        cv_error("cannot store notification '%s': out of memory",
                 request->notification_id);
        goto out;
    }
    notifier_store_row_t row = {
        .request = request,
        .channel = url != NULL ? "webhook" : "console",
        .webhook_url = url,
        .body = body,
        .trace_id = event->trace_id,
        .delivered = url == NULL,
        .now = now,
    };
    bool inserted = false;
    if (notifier_store_insert(cv_bus_store(bus), &row, &inserted) != 0)
        goto out;
    if (!inserted) {
        cv_log_debug("notification '%s' is already stored",
                     request->notification_id);
        rc = 0;
        goto out;
    }
    if (url == NULL) {
        /* No webhook: the console inbox is the channel, and the event to
         * the console is the delivery. */
        rc = notifier_emit_delivered(bus, request->notification_id,
                                     request->lead_id, request->staff_id,
                                     event->trace_id, "console", 1, 0, now);
        if (rc == 0)
            cv_metric_add(self->ok, 1);
        goto out;
    }
    notifier_job_t *job =
        notifier_job_new(request->notification_id, request->lead_id,
                         request->staff_id, url, body, event->trace_id);
    if (job == NULL) {
        cv_error("cannot queue notification '%s': out of memory",
                 request->notification_id);
        goto out;
    }
    job->next_attempt_at = now;
    notifier_list_append(&self->staged, job);
    self->pending++;
    /* The pool gets the job once this transaction has committed, which the
     * source learns in `committed`; make sure the source runs. */
    if (!self->poked) {
        notifier_pool_poke(self->pool);
        self->poked = true;
    }
    rc = 0;
out:
    free(body);
    return rc;
}

/* Writes one attempt's outcome: delivered (and the event to the console)
 * or the next attempt's time. 0, or -1 after logging. */
static int notifier_apply(notifier_t *self, cv_bus_t *bus,
                          notifier_job_t *job)
{
    cv_store_t *store = cv_bus_store(bus);
    if (job->delivered) {
        if (notifier_store_mark_delivered(store, job, &job->row_found) != 0)
            return -1;
        if (!job->row_found)
            return 0;
        return notifier_emit_delivered(bus, job->notification_id,
                                       job->lead_id, job->staff_id,
                                       job->trace_id, "webhook",
                                       job->attempts, job->http_status,
                                       job->finished_at);
    }
    int64_t delay = job->retry_after_ms;
    if (delay < 0)
        delay = cv_backoff_delay_ms(job->attempts, CV_BACKOFF_BASE_MS,
                                    CV_BACKOFF_CAP_MS, notifier_random(self));
    job->next_attempt_at = job->finished_at + delay;
    if (notifier_store_schedule_retry(store, job, &job->row_found) != 0)
        return -1;
    if (job->row_found) {
        /* The first failure and every n-th after it are worth a warning;
         * the rest would flood the log while a receiver is down. */
        bool notable = job->attempts == 1
                       || job->attempts % NOTIFIER_WARN_EVERY == 0;
        cv_log_level_t level = notable ? CV_LOG_WARN : CV_LOG_DEBUG;
        cv_log(level,
               "cannot deliver notification '%s' to '%s' (attempt %d): %s; "
               "retrying in %lld ms",
               job->notification_id, job->webhook_url, job->attempts,
               job->error, (long long)delay);
    }
    return 0;
}

/* The source's work: write the results that came back, hand due retries
 * to the pool. */
static int notifier_work(void *arg, cv_bus_t *bus, int64_t now)
{
    notifier_t *self = arg;
    self->poked = false;
    notifier_list_t results;
    notifier_list_init(&results);
    if (self->unapplied.head != NULL && now >= self->reapply_at)
        notifier_list_splice(&results, &self->unapplied);
    for (notifier_job_t *job = notifier_pool_take_results(self->pool);
         job != NULL;) {
        notifier_job_t *next = job->next;
        notifier_list_append(&results, job);
        job = next;
    }
    int rc = 0;
    notifier_job_t *job = notifier_list_take(&results);
    while (job != NULL) {
        notifier_job_t *next = job->next;
        if (rc == 0 && notifier_apply(self, bus, job) != 0)
            rc = -1; /* the turn rolls back; `committed` keeps the rest */
        notifier_list_append(&self->applied, job);
        job = next;
    }
    notifier_list_t due;
    notifier_list_init(&due);
    for (;;) {
        notifier_job_t *ready = notifier_schedule_pop_due(&self->schedule,
                                                          now);
        if (ready == NULL)
            break;
        notifier_list_append(&due, ready);
    }
    notifier_pool_submit(self->pool, notifier_list_take(&due));
    return rc;
}

/* Keeps the outcomes of a committed turn in memory: counts them, drops
 * what is done, schedules retries, releases the staged jobs. After a
 * rolled-back turn, the results are written again later. */
static void notifier_committed(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    notifier_t *self = arg;
    if (!ok) {
        notifier_list_splice(&self->unapplied, &self->applied);
        self->reapply_at = cv_clock_now_ms() + NOTIFIER_REAPPLY_MS;
        /* Staged jobs stay: those of this turn are rolled back and come
         * again with the re-sent events (a second copy then finds no
         * pending row and is dropped), those of earlier turns are safe. */
        return;
    }
    notifier_job_t *job = notifier_list_take(&self->applied);
    while (job != NULL) {
        notifier_job_t *next = job->next;
        cv_metric_add(self->attempts, 1);
        cv_metric_add(job->delivered ? self->ok : self->failed, 1);
        if (job->delivered || !job->row_found) {
            if (!job->row_found)
                cv_log_debug("notification '%s' has no pending row; "
                             "dropping this copy", job->notification_id);
            notifier_job_destroy(&job);
            self->pending--;
        } else if (notifier_schedule_push(&self->schedule, job) != 0) {
            cv_error("cannot schedule notification '%s': out of memory; "
                     "it is retried after a restart", job->notification_id);
            notifier_job_destroy(&job);
            self->pending--;
        }
        job = next;
    }
    notifier_pool_submit(self->pool, notifier_list_take(&self->staged));
    cv_metric_set(self->depth, self->pending);
}

static int64_t notifier_next_due(void *arg, cv_bus_t *bus)
{
    (void)bus;
    notifier_t *self = arg;
    int64_t next = notifier_schedule_next(&self->schedule);
    if (self->unapplied.head != NULL && self->reapply_at < next)
        next = self->reapply_at;
    return next;
}

int notifier_attach(notifier_t *self, cv_bus_t *bus)
{
    self->bus = bus;
    notifier_job_t *list = NULL;
    size_t count = 0;
    if (notifier_store_load_pending(cv_bus_store(bus), &list, &count) != 0)
        return -1;
    while (list != NULL) {
        notifier_job_t *job = list;
        list = job->next;
        if (notifier_schedule_push(&self->schedule, job) != 0) {
            notifier_job_destroy(&job);
            notifier_job_list_destroy(&list);
            return cv_error("cannot schedule the pending notifications: "
                            "out of memory");
        }
        self->pending++;
    }
    cv_metric_set(self->depth, self->pending);
    if (count > 0)
        cv_log_info("%zu undelivered notifications loaded", count);
    cv_bus_source_t source = {
        .fd = notifier_pool_fd(self->pool),
        .work = notifier_work,
        .committed = notifier_committed,
        .next_due = notifier_next_due,
        .arg = self,
    };
    return cv_bus_add_source(bus, &source);
}

/* intake_queue: leads waiting for the bus thread's next transaction. */
#include "intake_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "intake_import.h"

#define INTAKE_PRUNE_EVERY_MS (3600 * 1000LL) /* idempotency clean-up */

struct intake_queue {
    pthread_mutex_t lock;        /* guards head, tail, waiting, closed */
    intake_pending_t *head;      /* waiting, oldest first */
    intake_pending_t *tail;      /* the newest */
    int waiting;                 /* items in head..tail */
    int64_t last_take_ms;        /* monotonic time the bus thread last
                                    took leads to store */
    bool last_take_shared;       /* that batch had several leads: intake
                                    is busy, what comes next waits */
    bool closed;                 /* no more pushes */
    int fd;                      /* eventfd: readable while leads wait */
    int batch_max;               /* leads per transaction */
    int linger_ms;               /* busy: at most one batch this often */
    intake_pending_t *inflight;  /* taken in this turn (bus thread only) */
    intake_seen_t *seen;         /* contact keys stored, a filter that
                                    spares a new person's look-up (bus
                                    thread only; owned) */
    bool stage_failed;           /* a lead of this turn could not be
                                    staged (bus thread only) */
    int64_t next_prune_ms;       /* when old idempotency rows go next */
    cv_metric_t *accepted;       /* new leads committed */
    cv_metric_t *merged;         /* repeat contacts committed */
    cv_metric_t *rejected;       /* 4xx answers */
    cv_metric_t *failed;         /* 503 answers: not stored */
    cv_metric_t *replayed;       /* Idempotency-Key retries answered */
};

void intake_pending_free(intake_pending_t *item)
{
    if (item == NULL)
        return;
    intake_write_clear(&item->write);
    intake_submission_clear(&item->sub);
    intake_import_destroy(&item->batch);
    intake_outcome_clear(&item->outcome);
    free(item);
}

intake_queue_t *intake_queue_new(int batch_max, int linger_ms)
{
    intake_queue_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->seen = intake_seen_new();
    self->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->seen == NULL || self->fd < 0 ||
        pthread_mutex_init(&self->lock, NULL) != 0) {
        cv_error("cannot create the intake queue: %s",
                 self->seen == NULL ? "out of memory" : strerror(errno));
        if (self->fd >= 0)
            close(self->fd);
        intake_seen_destroy(&self->seen);
        free(self);
        return NULL;
    }
    self->batch_max = batch_max > 0 ? batch_max : 256;
    self->linger_ms = linger_ms > 0 ? linger_ms : 0;
    self->accepted = cv_metrics_counter("conveyor_intake_leads_accepted_total",
                                        "new leads stored");
    self->merged = cv_metrics_counter("conveyor_intake_leads_merged_total",
                                      "repeat contacts merged into a lead");
    self->rejected = cv_metrics_counter(
        "conveyor_intake_leads_rejected_total",
        "lead requests refused with a 4xx status");
    self->failed = cv_metrics_counter(
        "conveyor_intake_store_failures_total",
        "lead requests answered 503: not stored durably");
    self->replayed = cv_metrics_counter(
        "conveyor_intake_idempotent_replays_total",
        "Idempotency-Key retries answered with the stored reply");
    return self;
}

void intake_queue_destroy(intake_queue_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    intake_queue_t *self = *self_p;
    intake_queue_close(self);
    close(self->fd);
    pthread_mutex_destroy(&self->lock);
    intake_seen_destroy(&self->seen);
    free(self);
    *self_p = NULL;
}

static void intake_queue_signal(intake_queue_t *self)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already huge: the loop is awake */
    if (write(self->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        cv_log_warn("cannot wake the intake queue: %s", strerror(errno));
}

/* Whether leads wait now: the last batch had several leads (intake is
 * busy; after one lead, or none, the next is stored at once, as the bus
 * paces its events: batch_lingers in cv_bus.c) and was taken less than
 * linger_ms ago (monotonic time: a test's frozen conveyor clock must not
 * hold leads back). Lock held. */
static bool intake_queue_pacing(const intake_queue_t *self)
{
    return self->linger_ms > 0 && self->last_take_shared &&
           cv_clock_monotonic_ms() - self->last_take_ms < self->linger_ms;
}

int intake_queue_push(intake_queue_t *self, intake_pending_t *item)
{
    item->next = NULL;
    pthread_mutex_lock(&self->lock);
    bool closed = self->closed;
    bool wake = false;
    if (!closed) {
        if (self->tail != NULL)
            self->tail->next = item;
        else
            self->head = item;
        self->tail = item;
        self->waiting++;
        /* Only a lead that finds the queue empty wakes the bus (one
         * write(2) to the eventfd), or one that fills a batch: a lead
         * behind others is taken with them, since the bus drains the
         * eventfd before it takes the queue and wakes itself again when
         * it leaves leads behind (intake_queue_work). While pacing, a lead
         * that comes within linger_ms of the last batch wakes nobody: the
         * bus already sleeps at most until then (next_due), and waking it
         * earlier only cost a turn with an empty transaction per batch. */
        wake = self->waiting >= self->batch_max ||
               (self->waiting == 1 && !intake_queue_pacing(self));
    }
    pthread_mutex_unlock(&self->lock);
    if (closed)
        return -1;
    if (wake)
        intake_queue_signal(self);
    return 0;
}

/* Takes the whole queue (under the lock). */
static intake_pending_t *intake_queue_take_all(intake_queue_t *self)
{
    intake_pending_t *list = self->head;
    self->head = NULL;
    self->tail = NULL;
    self->waiting = 0;
    return list;
}

/* Sends the outcome (or 503 when the turn did not commit) and resumes. */
static void intake_queue_answer(intake_queue_t *self, intake_pending_t *item,
                                bool committed)
{
    cv_http_request_t *req = item->req;
    const intake_outcome_t *outcome = &item->outcome;
    if (!committed || outcome->status == 0 || outcome->reply == NULL ||
        outcome->status == 503) {
        cv_metric_add(self->failed, 1);
        cv_http_reply_error(req, 503, "store_unavailable", NULL,
                            "the lead could not be stored durably; "
                            "try again");
    } else {
        if (outcome->created)
            cv_metric_add(self->accepted, 1);
        if (outcome->merged)
            cv_metric_add(self->merged, 1);
        cv_metric_add(self->accepted, outcome->leads_created);
        cv_metric_add(self->merged, outcome->leads_merged);
        if (outcome->replayed) {
            cv_metric_add(self->replayed, 1);
            cv_http_add_header(req, "Idempotent-Replayed", "true");
        }
        if (outcome->status >= 400 && outcome->status < 500)
            cv_metric_add(self->rejected, 1);
        cv_http_reply(req, outcome->status, "application/json",
                      outcome->reply, strlen(outcome->reply));
    }
    cv_http_resume(req);
    item->req = NULL;
    intake_pending_free(item);
}

static void intake_queue_drain_fd(intake_queue_t *self)
{
    uint64_t count;
    while (read(self->fd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
}

/* Stores the single leads from `first` up to `stop` (not included) in
 * turn, each followed by its events. No savepoint: one around the batch
 * (or one per lead) makes SQLite copy every page a lead touches into its
 * statement journal first, about a sixth of the SQL a lead costs. When
 * one lead cannot be staged the turn is rolled back instead, and
 * intake_queue_committed stores the batch again one lead at a time, each
 * under its own savepoint (intake_store_accept), so that only the lead
 * that fails again is answered 503. A lead already being stored that way
 * (`isolate`) is stored the same way here. -1 when the turn must be rolled
 * back. */
static int intake_queue_store_leads(intake_queue_t *self, cv_bus_t *bus,
                                    intake_pending_t *first,
                                    intake_pending_t *stop)
{
    cv_store_t *store = cv_bus_store(bus);
    for (intake_pending_t *p = first; p != stop; p = p->next) {
        if (p->isolate) {
            if (intake_store_accept(bus, self->seen, &p->sub,
                                    &p->outcome) != 0)
                return -1;
            continue;
        }
        if (intake_store_stage(store, self->seen, &p->sub, &p->outcome,
                               &p->write) != 0) {
            self->stage_failed = true;
            return -1;
        }
        /* `write` is kept until the reply: intake_store_unstage needs it
         * should the turn be rolled back */
        if ((p->outcome.created || p->outcome.merged) &&
            intake_store_emit(bus, &p->sub, &p->write) != 0)
            return -1;
    }
    return 0;
}

/* Bus thread, inside the turn's transaction: stores up to batch_max
 * waiting leads. */
static int intake_queue_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    intake_queue_t *self = arg;
    if (now_ms >= self->next_prune_ms) {
        if (intake_store_prune(cv_bus_store(bus), now_ms) != 0)
            return -1;
        self->next_prune_ms = now_ms + INTAKE_PRUNE_EVERY_MS;
    }
    intake_queue_drain_fd(self);
    pthread_mutex_lock(&self->lock);
    /* pacing: after a batch of several, leads that come within linger_ms
     * of it wait until then (next_due) and share one commit; after a
     * batch of one, or a quiet spell, a lead is stored at once */
    if (self->waiting < self->batch_max && intake_queue_pacing(self)) {
        pthread_mutex_unlock(&self->lock);
        return 0;
    }
    intake_pending_t *taken = self->head;
    intake_pending_t *last = NULL;
    int count = 0;
    for (intake_pending_t *p = self->head;
         p != NULL && count < self->batch_max; p = p->next) {
        last = p;
        count++;
    }
    if (last != NULL) {
        self->head = last->next;
        if (self->head == NULL)
            self->tail = NULL;
        last->next = NULL;
    } else {
        taken = NULL;
    }
    self->waiting -= count;
    if (count > 0)
        self->last_take_ms = cv_clock_monotonic_ms();
    self->last_take_shared = count > 1; /* one lead, or none: not busy */
    /* leads left over: at once, or when paced, next_due brings them
     * unless a full batch waits */
    bool more = self->head != NULL &&
                (self->linger_ms == 0 || self->waiting >= self->batch_max);
    pthread_mutex_unlock(&self->lock);
    if (more)
        intake_queue_signal(self);
    /* append to what an earlier, uncommitted call of this turn took */
    intake_pending_t **tail = &self->inflight;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = taken;
    /* runs of single leads are stored together (no savepoint; one that
     * fails has the turn redone lead by lead); an import batch (which
     * emits as it goes) is stored on its own */
    intake_pending_t *run = taken;
    for (intake_pending_t *p = taken;; p = p->next) {
        if (p != NULL && p->batch == NULL)
            continue;
        if (intake_queue_store_leads(self, bus, run, p) != 0)
            return -1;
        if (p == NULL)
            break;
        if (intake_import_store(bus, self->seen, p->batch, &p->outcome) !=
            0)
            return -1;
        run = p->next;
    }
    return 0;
}

static int64_t intake_queue_next_due(void *arg, cv_bus_t *bus)
{
    (void)bus;
    intake_queue_t *self = arg;
    int64_t due = self->next_prune_ms;
    if (self->linger_ms > 0) {
        /* The end of the pacing window (after a batch of several), while
         * leads wait, and also while it is still ahead with none waiting:
         * a lead pushed before then does not wake the bus
         * (intake_queue_push), so its sleep must end by then. Once the
         * window is over with nothing waiting, or when the last batch had
         * one lead, nothing is due (no empty turn). */
        pthread_mutex_lock(&self->lock);
        int64_t end = self->last_take_ms + self->linger_ms;
        bool pending = self->last_take_shared &&
                       (self->waiting > 0 || cv_clock_monotonic_ms() < end);
        pthread_mutex_unlock(&self->lock);
        /* the pacing deadline is monotonic; next_due speaks conveyor time */
        int64_t paced = cv_clock_now_at_monotonic(end);
        if (pending && paced < due)
            due = paced;
    }
    return due;
}

/* After a turn rolled back because one of its leads could not be staged:
 * puts its single leads, undone, back at the head of the queue to be
 * stored one at a time (`isolate`), and answers the rest 503 (import
 * batches, and leads already stored one at a time). */
static void intake_queue_isolate(intake_queue_t *self, intake_pending_t *list)
{
    intake_pending_t *retry = NULL;
    intake_pending_t *last = NULL;
    int count = 0;
    while (list != NULL) {
        intake_pending_t *next = list->next;
        if (list->batch != NULL || list->isolate) {
            intake_queue_answer(self, list, false);
        } else {
            intake_store_unstage(&list->sub, &list->write, &list->outcome);
            list->isolate = true;
            list->next = NULL;
            if (last != NULL)
                last->next = list;
            else
                retry = list;
            last = list;
            count++;
        }
        list = next;
    }
    if (retry == NULL)
        return;
    cv_log_warn("a lead could not be stored; storing the %d leads of its "
                "batch one at a time", count);
    pthread_mutex_lock(&self->lock);
    bool closed = self->closed;
    if (!closed) {
        last->next = self->head;
        self->head = retry;
        if (self->tail == NULL)
            self->tail = last;
        self->waiting += count;
    }
    pthread_mutex_unlock(&self->lock);
    if (!closed) {
        intake_queue_signal(self);
        return;
    }
    while (retry != NULL) {
        intake_pending_t *next = retry->next;
        intake_queue_answer(self, retry, false);
        retry = next;
    }
}

/* Bus thread, after the turn: the replies. */
static void intake_queue_committed(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    intake_queue_t *self = arg;
    intake_pending_t *list = self->inflight;
    bool stage_failed = self->stage_failed;
    self->inflight = NULL;
    self->stage_failed = false;
    if (!ok && stage_failed) {
        intake_queue_isolate(self, list);
        return;
    }
    if (!ok && list == NULL) {
        /* the turn failed before our work ran (the database would not
         * even begin): do not leave clients waiting on it */
        pthread_mutex_lock(&self->lock);
        list = intake_queue_take_all(self);
        pthread_mutex_unlock(&self->lock);
        intake_queue_drain_fd(self);
    }
    if (!ok && list != NULL)
        cv_log_warn("intake transaction did not commit; answering 503");
    while (list != NULL) {
        intake_pending_t *next = list->next;
        intake_queue_answer(self, list, ok);
        list = next;
    }
}

void intake_queue_source(intake_queue_t *self, cv_bus_source_t *source)
{
    memset(source, 0, sizeof(*source));
    source->fd = self->fd;
    source->work = intake_queue_work;
    source->committed = intake_queue_committed;
    source->next_due = intake_queue_next_due;
    source->arg = self;
}

void intake_queue_close(intake_queue_t *self)
{
    if (self == NULL)
        return;
    pthread_mutex_lock(&self->lock);
    self->closed = true;
    intake_pending_t *list = intake_queue_take_all(self);
    pthread_mutex_unlock(&self->lock);
    while (list != NULL) {
        intake_pending_t *next = list->next;
        intake_queue_answer(self, list, false);
        list = next;
    }
}

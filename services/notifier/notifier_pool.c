/* notifier_pool: the delivery thread.
 *
 * The bus thread submits jobs to a FIFO queue and wakes the thread
 * (curl_multi_wakeup); the thread starts as many as it has free transfer
 * slots (notifier_send: one curl multi handle, every attempt in flight on
 * one thread) and appends finished ones to the result list. Only the two
 * lists are shared, each under the pool's mutex.
 *
 * Results are collected, not announced one by one: writing them is a bus
 * transaction (a commit and an fdatasync), and a signal per result made
 * one transaction per delivery whenever the bus was idle. The eventfd
 * the bus polls is signalled only once NOTIFIER_POOL_RESULT_BATCH results
 * wait; otherwise the bus takes them when notifier_pool_results_since
 * says the oldest has waited long enough (notifier_core's next_due), or
 * earlier along with any turn the source runs in. The webhook has been
 * called by then: only the bookkeeping waits. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "notifier.h"

#define NOTIFIER_POOL_MAX          64 /* transfers in flight at most */
#define NOTIFIER_POOL_RESULT_BATCH 64 /* waiting results that wake the bus */
/* The longest sleep of the thread: it wakes earlier for a submission, a
 * reply or a curl timeout. */
#define NOTIFIER_POOL_IDLE_MS 1000

struct notifier_pool {
    pthread_mutex_t lock;          /* guards the two lists below */
    notifier_job_t *queue;         /* jobs to deliver, oldest first */
    notifier_job_t **queue_tail;   /* where the next submitted job goes */
    notifier_job_t *results;       /* finished jobs, in finishing order */
    notifier_job_t **results_tail; /* where the next result goes */
    size_t result_count;           /* jobs in `results` */
    _Atomic int64_t results_since; /* monotonic ms the oldest result came
                                      back, INT64_MAX while none waits
                                      (read by the bus without the lock) */
    atomic_bool stop;              /* the thread leaves; transfers abort */
    int event_fd;                  /* readable once many results wait */
    notifier_sender_t *sender;     /* the curl handles (owned; used by
                                      the thread only, but for its
                                      wake-up) */
    pthread_t thread;              /* the delivery thread */
    bool started;                  /* the thread runs */
    bool lock_ready;               /* the mutex is initialised */
};

/* Adds 1 to the eventfd; a full counter (never in practice) is still
 * readable, so EAGAIN is fine. */
static void notifier_pool_signal(notifier_pool_t *self)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(self->event_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

/* Moves up to `room` queued jobs to the thread, oldest first. */
static notifier_job_t *notifier_pool_take_queued(notifier_pool_t *self,
                                                 int room)
{
    pthread_mutex_lock(&self->lock);
    notifier_job_t *taken = self->queue;
    notifier_job_t **tail = &self->queue;
    for (int i = 0; i < room && *tail != NULL; i++)
        tail = &(*tail)->next;
    self->queue = *tail;
    *tail = NULL;
    if (self->queue == NULL)
        self->queue_tail = &self->queue;
    pthread_mutex_unlock(&self->lock);
    return taken;
}

/* Appends finished jobs to the results, waking the bus once many wait. */
static void notifier_pool_hand_back(notifier_pool_t *self, notifier_job_t *done)
{
    pthread_mutex_lock(&self->lock);
    for (notifier_job_t *job = done; job != NULL;) {
        notifier_job_t *next = job->next;
        job->next = NULL;
        *self->results_tail = job;
        self->results_tail = &job->next;
        if (self->result_count++ == 0)
            atomic_store(&self->results_since, cv_clock_monotonic_ms());
        if (self->result_count == NOTIFIER_POOL_RESULT_BATCH)
            notifier_pool_signal(self);
        job = next;
    }
    pthread_mutex_unlock(&self->lock);
}

/* The delivery thread: start what the free slots allow, drive the
 * transfers, hand back what finished, sleep until something happens;
 * until stopped. */
static void *notifier_pool_worker(void *arg)
{
    notifier_pool_t *self = arg;
    notifier_sender_t *sender = self->sender;
    while (!atomic_load(&self->stop)) {
        notifier_job_t *done = NULL;
        notifier_job_t **done_tail = &done;
        int room = notifier_sender_idle_slots(sender);
        notifier_job_t *taken =
            room > 0 ? notifier_pool_take_queued(self, room) : NULL;
        while (taken != NULL) {
            notifier_job_t *job = taken;
            taken = job->next;
            job->next = NULL;
            notifier_sender_start(sender, job, &done_tail);
        }
        int rc = notifier_sender_perform(sender, &done_tail);
        /* slots freed: start what waits in the queue before sleeping */
        if (done != NULL) {
            notifier_pool_hand_back(self, done);
            if (rc == 0)
                continue;
        }
        if (rc == 0)
            rc = notifier_sender_wait(sender, NOTIFIER_POOL_IDLE_MS);
        if (rc != 0) {
            /* curl failed as a whole (logged): try again in a while
             * rather than leave the deliveries for good */
            struct timespec pause = {.tv_sec = 1};
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

notifier_pool_t *notifier_pool_new(int slots, const cv_config_t *config)
{
    notifier_pool_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot start the delivery thread: out of memory");
        return NULL;
    }
    self->event_fd = -1;
    self->queue_tail = &self->queue;
    self->results_tail = &self->results;
    atomic_init(&self->results_since, INT64_MAX);
    atomic_init(&self->stop, false);
    if (slots < 1 || slots > NOTIFIER_POOL_MAX) {
        cv_error("cannot make %d deliveries at once: between 1 and %d "
                 "are allowed",
                 slots, NOTIFIER_POOL_MAX);
        goto fail;
    }
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        goto fail;
    self->lock_ready = true;
    self->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd < 0) {
        cv_error("cannot make the delivery eventfd: %s", strerror(errno));
        goto fail;
    }
    self->sender = notifier_sender_new(config, slots);
    if (self->sender == NULL)
        goto fail;
    int rc = pthread_create(&self->thread, NULL, notifier_pool_worker, self);
    if (rc != 0) {
        cv_error("cannot start the delivery thread: %s", strerror(rc));
        goto fail;
    }
    self->started = true;
    return self;
fail:
    notifier_pool_destroy(&self);
    return NULL;
}

void notifier_pool_destroy(notifier_pool_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_pool_t *self = *self_p;
    atomic_store(&self->stop, true);
    if (self->started) {
        notifier_sender_wakeup(self->sender);
        pthread_join(self->thread, NULL);
    }
    /* transfers in flight end here, their jobs freed with the slots */
    notifier_sender_destroy(&self->sender);
    notifier_job_list_destroy(&self->queue);
    notifier_job_list_destroy(&self->results);
    if (self->lock_ready)
        pthread_mutex_destroy(&self->lock);
    if (self->event_fd >= 0)
        close(self->event_fd);
    free(self);
    *self_p = NULL;
}

int notifier_pool_fd(const notifier_pool_t *self)
{
    return self->event_fd;
}

void notifier_pool_submit(notifier_pool_t *self, notifier_job_t *list)
{
    if (list == NULL)
        return;
    notifier_job_t *last = list;
    while (last->next != NULL)
        last = last->next;
    pthread_mutex_lock(&self->lock);
    *self->queue_tail = list;
    self->queue_tail = &last->next;
    pthread_mutex_unlock(&self->lock);
    /* one wake-up for the whole list; the thread takes the queue after
     * it wakes, so a list queued just before it sleeps is not missed */
    notifier_sender_wakeup(self->sender);
}

notifier_job_t *notifier_pool_take_results(notifier_pool_t *self)
{
    uint64_t count;
    ssize_t n;
    do {
        n = read(self->event_fd, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    pthread_mutex_lock(&self->lock);
    notifier_job_t *results = self->results;
    self->results = NULL;
    self->results_tail = &self->results;
    self->result_count = 0;
    atomic_store(&self->results_since, INT64_MAX);
    pthread_mutex_unlock(&self->lock);
    return results;
}

int64_t notifier_pool_results_since(notifier_pool_t *self)
{
    return atomic_load(&self->results_since);
}

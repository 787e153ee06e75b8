/* notifier_pool: worker threads that make deliveries.
 *
 * The bus thread submits jobs to a FIFO queue; each worker takes one,
 * makes an attempt with its own curl handles (notifier_send) and appends
 * it to the result list. Only the two lists are shared, each under the
 * pool's mutex.
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
#include <unistd.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "notifier.h"

#define NOTIFIER_POOL_MAX          64 /* workers at most */
#define NOTIFIER_POOL_RESULT_BATCH 64 /* waiting results that wake the bus */

struct notifier_pool {
    pthread_mutex_t lock;          /* guards the two lists below */
    pthread_cond_t ready;          /* signalled when the queue gains jobs
                                      or the pool stops */
    notifier_job_t *queue;         /* jobs to deliver, oldest first */
    notifier_job_t **queue_tail;   /* where the next submitted job goes */
    notifier_job_t *results;       /* finished jobs, in finishing order */
    notifier_job_t **results_tail; /* where the next result goes */
    size_t result_count;           /* jobs in `results` */
    _Atomic int64_t results_since; /* monotonic ms the oldest result came
                                      back, INT64_MAX while none waits
                                      (read by the bus without the lock) */
    atomic_bool stop;              /* workers leave; transfers abort */
    int event_fd;                  /* readable once many results wait,
                                      or when poked */
    const cv_config_t *config;     /* channel settings (not owned) */
    pthread_t threads[NOTIFIER_POOL_MAX]; /* the workers */
    int started;                          /* threads started */
    bool lock_ready;                      /* mutex and cond initialised */
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

/* One worker: take a job, deliver it, hand it back; until stopped. */
static void *notifier_pool_worker(void *arg)
{
    notifier_pool_t *self = arg;
    notifier_sender_t *sender = notifier_sender_new(self->config, &self->stop);
    if (sender == NULL)
        return NULL;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (self->queue == NULL && !atomic_load(&self->stop))
            pthread_cond_wait(&self->ready, &self->lock);
        if (atomic_load(&self->stop))
            break;
        notifier_job_t *job = self->queue;
        self->queue = job->next;
        if (self->queue == NULL)
            self->queue_tail = &self->queue;
        job->next = NULL;
        pthread_mutex_unlock(&self->lock);

        notifier_sender_deliver(sender, job);

        pthread_mutex_lock(&self->lock);
        *self->results_tail = job;
        self->results_tail = &job->next;
        if (self->result_count++ == 0)
            atomic_store(&self->results_since, cv_clock_monotonic_ms());
        if (self->result_count == NOTIFIER_POOL_RESULT_BATCH)
            notifier_pool_signal(self);
    }
    pthread_mutex_unlock(&self->lock);
    notifier_sender_destroy(&sender);
    return NULL;
}

notifier_pool_t *notifier_pool_new(int workers, const cv_config_t *config)
{
    notifier_pool_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot start the delivery workers: out of memory");
        return NULL;
    }
    self->event_fd = -1;
    self->config = config;
    self->queue_tail = &self->queue;
    self->results_tail = &self->results;
    atomic_init(&self->results_since, INT64_MAX);
    atomic_init(&self->stop, false);
    if (workers < 1 || workers > NOTIFIER_POOL_MAX) {
        cv_error("cannot start %d delivery workers: between 1 and %d "
                 "are allowed",
                 workers, NOTIFIER_POOL_MAX);
        goto fail;
    }
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&self->ready, NULL) != 0) {
        pthread_mutex_destroy(&self->lock);
        goto fail;
    }
    self->lock_ready = true;
    self->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd < 0) {
        cv_error("cannot make the delivery eventfd: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        int rc =
            pthread_create(&self->threads[i], NULL, notifier_pool_worker, self);
        if (rc != 0) {
            cv_error("cannot start delivery worker %d: %s", i, strerror(rc));
            goto fail;
        }
        self->started++;
    }
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
    if (self->lock_ready) {
        pthread_mutex_lock(&self->lock);
        pthread_cond_broadcast(&self->ready);
        pthread_mutex_unlock(&self->lock);
    }
    for (int i = 0; i < self->started; i++)
        pthread_join(self->threads[i], NULL);
    notifier_job_list_destroy(&self->queue);
    notifier_job_list_destroy(&self->results);
    if (self->lock_ready) {
        pthread_cond_destroy(&self->ready);
        pthread_mutex_destroy(&self->lock);
    }
    if (self->event_fd >= 0)
        close(self->event_fd);
    free(self);
    *self_p = NULL;
}

int notifier_pool_fd(const notifier_pool_t *self)
{
    return self->event_fd;
}

void notifier_pool_poke(notifier_pool_t *self)
{
    notifier_pool_signal(self);
}

void notifier_pool_submit(notifier_pool_t *self, notifier_job_t *list)
{
    if (list == NULL)
        return;
    int count = 1;
    notifier_job_t *last = list;
    while (last->next != NULL) {
        last = last->next;
        count++;
    }
    pthread_mutex_lock(&self->lock);
    *self->queue_tail = list;
    self->queue_tail = &last->next;
    /* wake a worker per job, not all of them for one job: a worker that
     * finds the queue empty has woken for nothing */
    if (count >= self->started)
        pthread_cond_broadcast(&self->ready);
    else
        for (int i = 0; i < count; i++)
            pthread_cond_signal(&self->ready);
    pthread_mutex_unlock(&self->lock);
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

/* cv_scoring_live: the model in force, swapped on SIGHUP. */
#include "cv_scoring_live.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_metrics.h"

struct cv_scoring_live {
    pthread_rwlock_t lock;           /* readers hold it while scoring */
    const cv_scoring_model_t *model; /* in force */
    cv_scoring_model_t *owned;       /* the same when loaded from a file
                                        (owned); NULL for the built-in */
    char path[1024];                 /* the rules file, "" for built-in */
    cv_metric_t *reloads;            /* reloads that swapped a model in */
    cv_metric_t *failures;           /* reloads refused */
};

cv_scoring_live_t *cv_scoring_live_new(const char *path, char *error,
                                       size_t size)
{
    cv_scoring_live_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        snprintf(error, size, "out of memory");
        return NULL;
    }
    if (pthread_rwlock_init(&self->lock, NULL) != 0) {
        snprintf(error, size, "cannot create a lock");
        free(self);
        return NULL;
    }
    if (path != NULL && path[0] != '\0') {
        if (strlen(path) >= sizeof(self->path)) {
            snprintf(error, size, "%.64s...: path too long", path);
            goto fail;
        }
        snprintf(self->path, sizeof(self->path), "%s", path);
        self->owned = cv_scoring_rules_load(path, error, size);
        self->model = self->owned;
    } else {
        self->model = cv_scoring_rules_builtin();
        if (self->model == NULL)
            snprintf(error, size,
                     "the built-in scoring rules do not load "
                     "(see the log)");
    }
    if (self->model == NULL)
        goto fail;
    return self;
fail:
    pthread_rwlock_destroy(&self->lock);
    free(self);
    return NULL;
}

void cv_scoring_live_destroy(cv_scoring_live_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_scoring_live_t *self = *self_p;
    cv_scoring_rules_free(&self->owned);
    pthread_rwlock_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

const cv_scoring_model_t *cv_scoring_live_acquire(cv_scoring_live_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    return self->model;
}

void cv_scoring_live_release(cv_scoring_live_t *self)
{
    pthread_rwlock_unlock(&self->lock);
}

const char *cv_scoring_live_path(const cv_scoring_live_t *self)
{
    return self->path;
}

int cv_scoring_live_reload(cv_scoring_live_t *self, char *error, size_t size)
{
    if (self->path[0] == '\0')
        return 0;
    cv_scoring_model_t *fresh = cv_scoring_rules_load(self->path, error, size);
    if (fresh == NULL) {
        cv_metric_add(self->failures, 1);
        return -1;
    }
    pthread_rwlock_wrlock(&self->lock);
    cv_scoring_model_t *old = self->owned;
    self->owned = fresh;
    self->model = fresh;
    pthread_rwlock_unlock(&self->lock);
    cv_scoring_rules_free(&old);
    cv_metric_add(self->reloads, 1);
    return 0;
}

/* ---- SIGHUP: a self-pipe the bus polls ---- */

static int live_pipe[2] = {-1, -1};

static void live_on_hup(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t n = write(live_pipe[1], "h", 1);
    (void)n; /* a full pipe already has a reload waiting */
    errno = saved;
}

static int live_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)bus;
    (void)now_ms;
    cv_scoring_live_t *self = arg;
    char drain[64];
    while (read(live_pipe[0], drain, sizeof(drain)) > 0)
        ;
    if (self->path[0] == '\0') {
        cv_log_info("SIGHUP: no scoring rules file is configured; the "
                    "built-in rules stay");
        return 0;
    }
    const cv_scoring_model_t *before = cv_scoring_live_acquire(self);
    char was[80];
    snprintf(was, sizeof(was), "%s", before->version);
    cv_scoring_live_release(self);
    char error[700];
    if (cv_scoring_live_reload(self, error, sizeof(error)) != 0) {
        cv_log_warn("cannot reload the scoring rules, keeping version '%s': "
                    "%s",
                    was, error);
        return 0; /* the turn's events go on with the old model */
    }
    const cv_scoring_model_t *now = cv_scoring_live_acquire(self);
    cv_log_info("scoring rules reloaded from '%s': version '%s' (was '%s')",
                self->path, now->version, was);
    cv_scoring_live_release(self);
    return 0;
}

int cv_scoring_live_watch(cv_scoring_live_t *self, cv_bus_t *bus)
{
    self->reloads =
        cv_metrics_counter("conveyor_scoring_rules_reloads_total",
                           "scoring rules files loaded again on SIGHUP");
    self->failures = cv_metrics_counter(
        "conveyor_scoring_rules_reload_failures_total",
        "scoring rules files refused on SIGHUP (the old model stayed)");
    if (live_pipe[0] < 0 && pipe2(live_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return cv_error("cannot watch for SIGHUP: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = live_on_hup;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        return cv_error("cannot watch for SIGHUP: %s", strerror(errno));
    cv_bus_source_t source = {
        .fd = live_pipe[0],
        .work = live_work,
        .arg = self,
    };
    return cv_bus_add_source(bus, &source);
}

/* routing_rules: the rule chain in force, swapped on SIGHUP.
 *
 * The bus thread and the explain threads hold the chain between
 * routing_rules_acquire and routing_rules_release; a reload parses the new
 * file first and swaps only a valid chain in, so a broken file leaves the
 * old chain working (the reason is logged). */
#include "routing.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_metrics.h"

static cv_metric_t *metric_reloads; /* files loaded again */
static cv_metric_t *metric_refused; /* files refused on reload */

int routing_init(routing_t *self, const cv_config_t *config)
{
    memset(self, 0, sizeof(*self));
    self->config = config;
    pthread_rwlock_init(&self->lock, NULL);
    snprintf(self->rules_path, sizeof(self->rules_path), "%s",
             config->routing_rules);
    snprintf(self->default_tz, sizeof(self->default_tz), "%s",
             config->default_timezone[0] != '\0' ? config->default_timezone
                                                 : ROUTING_DEFAULT_TZ);
    self->first_come_minutes =
        config->first_come_minutes > 0 ? config->first_come_minutes : 15;
    if (self->rules_path[0] == '\0') {
        self->rules = cv_routing_rules_builtin();
        if (self->rules == NULL)
            return -1; /* logged */
        cv_log_info("routing rules: the built-in chain, version '%s', %zu "
                    "rules",
                    self->rules->version, self->rules->rule_count);
        return 0;
    }
    char error[800];
    self->owned = cv_routing_rules_load(self->rules_path, error, sizeof(error));
    if (self->owned == NULL)
        return cv_error("cannot use the routing rules: %s", error);
    self->rules = self->owned;
    cv_log_info("routing rules from '%s': version '%s', %zu rules",
                self->rules_path, self->rules->version,
                self->rules->rule_count);
    return 0;
}

void routing_fini(routing_t *self)
{
    cv_routing_rules_free(&self->owned);
    self->rules = NULL;
    pthread_rwlock_destroy(&self->lock);
}

const cv_routing_rules_t *routing_rules_acquire(routing_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    return self->rules;
}

void routing_rules_release(routing_t *self)
{
    pthread_rwlock_unlock(&self->lock);
}

static int rules_pipe[2] = {-1, -1};

static void rules_on_hup(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t n = write(rules_pipe[1], "h", 1);
    (void)n; /* a full pipe already has a reload waiting */
    errno = saved;
}

static int rules_reload(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)bus;
    (void)now_ms;
    routing_t *self = arg;
    char drain[64];
    while (read(rules_pipe[0], drain, sizeof(drain)) > 0)
        ;
    if (self->rules_path[0] == '\0') {
        cv_log_info("SIGHUP: no routing rules file is configured; the "
                    "built-in chain stays");
        return 0;
    }
    char error[800];
    cv_routing_rules_t *fresh =
        cv_routing_rules_load(self->rules_path, error, sizeof(error));
    if (fresh == NULL) {
        cv_metric_add(metric_refused, 1);
        cv_log_warn("cannot reload the routing rules, keeping version '%s': "
                    "%s",
                    self->rules->version, error);
        return 0;
    }
    pthread_rwlock_wrlock(&self->lock);
    cv_routing_rules_t *old = self->owned;
    self->owned = fresh;
    self->rules = fresh;
    pthread_rwlock_unlock(&self->lock);
    cv_log_info("routing rules reloaded from '%s': version '%s', %zu rules "
                "(was '%s')",
                self->rules_path, fresh->version, fresh->rule_count,
                old != NULL ? old->version : "built-in");
    cv_routing_rules_free(&old);
    cv_metric_add(metric_reloads, 1);
    return 0;
}

int routing_rules_watch(routing_t *self, cv_bus_t *bus)
{
    metric_reloads =
        cv_metrics_counter("conveyor_routing_rules_reloads_total",
                           "routing rules files loaded again on SIGHUP");
    metric_refused = cv_metrics_counter(
        "conveyor_routing_rules_reload_failures_total",
        "routing rules files refused on SIGHUP (the old chain stayed)");
    if (rules_pipe[0] < 0 && pipe2(rules_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return cv_error("cannot watch for SIGHUP: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = rules_on_hup;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        return cv_error("cannot watch for SIGHUP: %s", strerror(errno));
    cv_bus_source_t source = {
        .fd = rules_pipe[0],
        .work = rules_reload,
        .arg = self,
    };
    return cv_bus_add_source(bus, &source);
}

/* cv_service: the shared start-up and shut-down of a stage process. */
#include "cv_service.h"

#include <malloc.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "cv_calendar.h"
#include "cv_http.h"
#include "cv_log.h"

struct cv_service {
    cv_config_t config;       /* what the process was told */
    cv_store_t *store;        /* the service's database (owned) */
    cv_bus_t *bus;            /* the broker connection (owned) */
    cv_http_t *admin;         /* healthz + metrics, or NULL (owned) */
};

void cv_service_tune_memory(void)
{
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    /* SQLite's allocation statistics take a global mutex on every malloc;
     * nothing reads them. Must precede the first use of SQLite. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

cv_service_t *cv_service_new(const cv_service_options_t *options, int argc,
                             char **argv)
{
    cv_service_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    cv_log_init(options->name);
    cv_service_tune_memory();
    if (cv_config_load(&self->config, options->name, argc, argv) != 0)
        goto fail;
    /* one business calendar for every stage that counts working time */
    char err[512];
    if (cv_calendar_use_file(self->config.calendar_file, err,
                             sizeof(err)) != 0) {
        cv_error("calendar_file: %s", err);
        goto fail;
    }
    self->store = cv_store_open(self->config.db_path, options->migrations,
                                options->migration_count);
    if (self->store == NULL)
        goto fail;
    cv_bus_options_t bus_options = {
        .config = &self->config,
        .store = self->store,
        .worker_service = options->worker ? options->name : NULL,
        .handler = options->handler,
        .arg = options->arg,
    };
    self->bus = cv_bus_new(&bus_options);
    if (self->bus == NULL)
        goto fail;
    if (options->admin_http) {
        self->admin = cv_http_start_admin(self->config.admin_addr,
                                          options->name);
        if (self->admin == NULL)
            goto fail;
    }
    return self;
fail:
    cv_service_destroy(&self);
    return NULL;
}

void cv_service_destroy(cv_service_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_service_t *self = *self_p;
    cv_http_destroy(&self->admin);
    cv_bus_destroy(&self->bus);
    cv_store_destroy(&self->store);
    free(self);
    *self_p = NULL;
}

const cv_config_t *cv_service_config(const cv_service_t *self)
{
    return &self->config;
}

cv_store_t *cv_service_store(cv_service_t *self)
{
    return self->store;
}

cv_bus_t *cv_service_bus(cv_service_t *self)
{
    return self->bus;
}

int cv_service_run(cv_service_t *self)
{
    cv_log_info("%s started, database '%s', broker '%s'", self->config.service,
                self->config.db_path, self->config.broker_endpoint);
    if (self->admin != NULL)
        cv_http_set_ready(self->admin, true);
    int rc = cv_bus_run(self->bus);
    if (self->admin != NULL)
        cv_http_set_ready(self->admin, false);
    cv_log_info("%s stopped", self->config.service);
    return rc;
}

int cv_service_main(const cv_service_options_t *options, int argc,
                    char **argv)
{
    cv_service_t *svc = cv_service_new(options, argc, argv);
    if (svc == NULL)
        return 1;
    int rc = cv_service_run(svc);
    cv_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}

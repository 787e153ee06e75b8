/* cv_service: what every stage's main() does, in one place.
 *
 * Loads the configuration, opens the log, the service's SQLite file (with
 * its migrations), the bus, and for services without an HTTP port of their
 * own an admin server with /healthz and /metrics; then runs the bus loop
 * until SIGINT/SIGTERM. A stage with nothing but a handler has the main()
 *
 *     return cv_service_main(&options, argc, argv);
 *
 * and one with more to set up (sources, its own HTTP server) calls
 * cv_service_new, adds its parts, then cv_service_run and
 * cv_service_destroy. */
#ifndef CV_SERVICE_H
#define CV_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_bus.h"
#include "cv_config.h"
#include "cv_store.h"

typedef struct cv_service cv_service_t;

typedef struct {
    const char *name;                 /* process and bus service name */
    const char *const *migrations;    /* the service's schema, in order */
    size_t migration_count;
    bool worker;                      /* receives events under `name` */
    cv_bus_handler_fn handler;        /* required when worker */
    void *arg;                        /* handler's argument */
    bool admin_http;                  /* serve healthz/metrics on
                                         config.admin_addr (false for intake
                                         and console, which serve them on
                                         their own port) */
} cv_service_options_t;

/* Keeps freed memory in the process instead of returning it to the kernel
 * after every burst: trimming the heap costs a TLB flush on every core,
 * which showed up as the largest single cost under load; and turns off
 * SQLite's allocation statistics (a global lock per malloc). Called by
 * cv_service_new before anything else; the broker calls it itself. */
void cv_service_tune_memory(void);

/* Returns NULL after logging when any part cannot start. */
cv_service_t *cv_service_new(const cv_service_options_t *options, int argc,
                             char **argv);

/* NULL-safe; nulls *self_p. */
void cv_service_destroy(cv_service_t **self_p);

const cv_config_t *cv_service_config(const cv_service_t *self);
cv_store_t *cv_service_store(cv_service_t *self);
cv_bus_t *cv_service_bus(cv_service_t *self);

/* Marks the service ready (healthz 200) and runs the bus loop. 0 on a
 * clean stop, -1 on a fatal error. */
int cv_service_run(cv_service_t *self);

/* The whole main() of a stage that needs nothing beyond its handler:
 * new, run, destroy. Returns the process exit status. */
int cv_service_main(const cv_service_options_t *options, int argc,
                    char **argv);

#endif

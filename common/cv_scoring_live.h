/* cv_scoring_live: the scoring model in force in a process, reloaded from
 * its rules file on SIGHUP.
 *
 * The scoring stage and the console each hold one. Readers (the bus
 * thread, HTTP threads) hold the model between cv_scoring_live_acquire and
 * cv_scoring_live_release; a reload loads and checks the file first and
 * swaps only a valid model in, so a broken file leaves the old model
 * working (the reason is logged). A result scored with the model borrows
 * its names: use it before releasing. */
#ifndef CV_SCORING_LIVE_H
#define CV_SCORING_LIVE_H

#include <stddef.h>

#include "cv_bus.h"
#include "cv_scoring_rules.h"

typedef struct cv_scoring_live cv_scoring_live_t;

/* Loads `path`, or takes the built-in rules when `path` is NULL or "".
 * NULL with the reason in `error` when the file is not a valid model. */
cv_scoring_live_t *cv_scoring_live_new(const char *path, char *error,
                                       size_t size);

/* NULL-safe; nulls *self_p. No reader may hold the model. */
void cv_scoring_live_destroy(cv_scoring_live_t **self_p);

/* The model in force, held against reloads until the release. */
const cv_scoring_model_t *cv_scoring_live_acquire(cv_scoring_live_t *self);
void cv_scoring_live_release(cv_scoring_live_t *self);

/* Loads the file again and swaps the new model in; 0. On a bad file keeps
 * the model in force and returns -1 with the reason in `error`. With the
 * built-in rules there is nothing to reload: 0. Waits for readers to
 * release the old model; never call it while holding the model. */
int cv_scoring_live_reload(cv_scoring_live_t *self, char *error, size_t size);

/* The file the model comes from, "" for the built-in rules. */
const char *cv_scoring_live_path(const cv_scoring_live_t *self);

/* Reloads on SIGHUP, on the bus thread: installs a SIGHUP handler (one
 * per process) and adds a bus source that reloads and logs the outcome.
 * Counts reloads in conveyor_scoring_rules_reloads_total and refused files
 * in conveyor_scoring_rules_reload_failures_total. 0 or -1 (logged). */
int cv_scoring_live_watch(cv_scoring_live_t *self, cv_bus_t *bus);

#endif

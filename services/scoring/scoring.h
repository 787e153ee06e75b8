/* scoring: the stage that pre-scores every new lead.
 *
 * It receives LeadReceived (new leads only; intake sends merged repeat
 * contacts to the console alone), scores the lead with the model of
 * common/cv_scoring.h, keeps the score in its database (one row per lead,
 * so a lead that comes twice is scored once) and emits LeadScored to
 * routing and console in the same transaction. */
#ifndef SCORING_H
#define SCORING_H

#include <stdbool.h>
#include <stddef.h>

#include "conveyor.pb-c.h"
#include "cv_bus.h"
#include "cv_scoring.h"
#include "cv_store.h"

/* What the handler needs besides the bus. */
typedef struct {
    const cv_scoring_model_t *model; /* the rules in force (not owned) */
} scoring_t;

/* The schema of var/scoring.db, in order (scoring_schema.c). */
extern const char *const scoring_migrations[];
extern const size_t scoring_migration_count;

/* Stores `score` for `lead` unless the lead already has one; *fresh tells
 * which. Inside the caller's transaction. 0, or -1 after logging. */
int scoring_store_save(cv_store_t *store, const Conveyor__Lead *lead,
                       const cv_scoring_result_t *score, const char *event_id,
                       bool *fresh);

/* The bus handler (cv_bus_handler_fn); `arg` is a scoring_t. */
int scoring_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

#endif

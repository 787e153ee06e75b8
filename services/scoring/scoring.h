/* scoring: the stage that scores every lead, and scores it again when
 * people change its scorecard.
 *
 * - LeadReceived (new leads only; intake sends merged repeat contacts to
 *   the console alone): scores the lead with the model in force, keeps the
 *   score and the lead in its database (one row per lead, so a lead that
 *   comes twice is scored once) and emits LeadScored to routing in the
 *   same transaction, and to the console only when the lead is knocked
 *   out (routing relays any other first score to the console: see
 *   scoring_emit).
 * - ActivityRecorded of type "scorecard" (console): scores the lead again
 *   with the people's values over the rules' (the newest scorecard
 *   revision wins) and emits LeadScored with `rescore` and the previous
 *   segment to routing and console, to proposal-generator when the
 *   segment changed and to followup-scheduler when the lead is now
 *   knocked out.
 * - DecisionRecorded (console): keeps won/lost with the score, for
 *   `conveyorctl score` to compare models against outcomes.
 *
 * The model comes from the rules file of config.scoring_rules (or the
 * built-in rules) and is reloaded on SIGHUP (common/cv_scoring_live.h);
 * its version is stored with every score. */
#ifndef SCORING_H
#define SCORING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_bus.h"
#include "cv_scoring.h"
#include "cv_scoring_live.h"
#include "cv_store.h"

/* What the handler needs besides the bus. */
typedef struct {
    cv_scoring_live_t *rules; /* the model in force (owned by main) */
} scoring_t;

/* The schema of var/scoring.db, in order (scoring_schema.c). */
extern const char *const scoring_migrations[];
extern const size_t scoring_migration_count;

/* A lead's stored score, as far as re-scoring needs it. */
typedef struct {
    int total;            /* the score's total */
    char segment[2];      /* A, B or C */
    bool knocked_out;     /* knocked out */
    int64_t revision;     /* scorecard revision applied, 0 for none */
    Conveyor__Lead *lead; /* the lead it was made from, or NULL (rows
                             from before the lead was kept; owned) */
} scoring_row_t;

/* --- scoring_store.c --- */

/* Stores the first score of `lead` unless the lead already has one;
 * *fresh tells which. Inside the caller's transaction. 0, or -1 after
 * logging. */
int scoring_store_save(cv_store_t *store, const Conveyor__Lead *lead,
                       const cv_scoring_result_t *score, const char *event_id,
                       bool *fresh);

/* Reads the lead's row into `row`: 0, 1 when there is none, -1 after
 * logging. Clear it with scoring_row_clear. */
int scoring_store_load(cv_store_t *store, const char *lead_id,
                       scoring_row_t *row);
void scoring_row_clear(scoring_row_t *row);

/* Stores a re-score (the row is created when missing) with the lead and
 * scorecard it was made from, and a line of the lead's score history.
 * 0, or -1 after logging. */
int scoring_store_rescore(cv_store_t *store, const Conveyor__Lead *lead,
                          const cv_scoring_result_t *score,
                          const Conveyor__Scorecard *card,
                          const scoring_row_t *before, const char *event_id);

/* Keeps a decision (won/lost) with the lead's score; a row that does not
 * exist is left alone (*kept false). 0, or -1 after logging. */
int scoring_store_decision(cv_store_t *store, const char *lead_id,
                           const char *result, int64_t at, bool *kept);

/* --- scoring_handler.c --- */

/* The bus handler (cv_bus_handler_fn); `arg` is a scoring_t. */
int scoring_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

#endif

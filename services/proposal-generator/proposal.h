/* proposal-generator: the commercial proposal ("КП") for a lead.
 *
 * When a proposal is presented or sent (ActivityRecorded), renders an HTML
 * document tailored to the lead and its segment (PRODUCT.md §4): C gets a
 * polite rejection with a referral to a partner agency, B the standard
 * proposal, A the full package (approved by the head of sales when the
 * score is above 9). Stores it and hands it to the console.
 *
 * When people's scorecard moves a lead to another segment, scoring tells
 * the generator (LeadScored with `rescore`): it keeps the lead's segment
 * and score, and the lead's next proposal uses that template (the full
 * package, the VIP variant, for A) unless the activity carries a newer
 * score.
 *
 * Files: main.c (process), proposal_schema.c (tables), proposal_events.c
 * (handler: store and emit), proposal_render.c (the HTML). */
#ifndef PROPOSAL_H
#define PROPOSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_bus.h"

#define PROPOSAL_SERVICE "proposal-generator"

/* Scores above this need the head of sales' approval (PRODUCT.md §4). */
#define PROPOSAL_APPROVAL_ABOVE 9

/* A rendered proposal. */
typedef struct {
    char *html;          /* the whole document, UTF-8 (owned) */
    char *title;         /* (owned) */
    const char *kind;    /* proposal | rejection | full_package (static) */
    const char *segment; /* A | B | C (static) */
    bool needs_approval; /* the head of sales must approve it first */
} proposal_doc_t;

extern const char *const proposal_migrations[];
extern const size_t proposal_migration_count;

/* The bus handler (cv_bus_handler_fn); `arg` is unused. */
int proposal_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event);

/* Renders the proposal `proposal_id` for the lead and score carried by
 * `activity`, dated `now_ms`. 0, or -1 when out of memory (logged). Free
 * with proposal_doc_clear. */
int proposal_render(const char *proposal_id,
                    const Conveyor__ActivityRecorded *activity, int64_t now_ms,
                    proposal_doc_t *doc);

/* Frees what a doc owns and zeroes it; NULL-safe. */
void proposal_doc_clear(proposal_doc_t *doc);

#endif

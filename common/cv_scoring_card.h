/* cv_scoring_card: a lead's scorecard as people change it.
 *
 * The console keeps one per lead: for each parameter a person set, the
 * latest value with who set it and when (a later change by anyone wins,
 * parameter by parameter), and a manual knock-out. Each change makes a new
 * revision; the whole card travels to the scoring stage, which scores the
 * lead with it (cv_scoring_score_manual) and ignores revisions older than
 * the one it applied. Plain structs, no I/O. */
#ifndef CV_SCORING_CARD_H
#define CV_SCORING_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_scoring.h"

#define CV_SCORING_CARD_NAME_SIZE  65  /* a parameter name */
#define CV_SCORING_CARD_ACTOR_SIZE 136 /* a staff id */

/* One parameter a person set. */
typedef struct {
    char name[CV_SCORING_CARD_NAME_SIZE];   /* parameter */
    int value;                              /* -1, 0 or +1 */
    char actor[CV_SCORING_CARD_ACTOR_SIZE]; /* who set it last */
    int64_t set_at;                         /* when, ms */
} cv_scoring_card_param_t;

/* A lead's scorecard. */
typedef struct {
    int64_t revision; /* 0: never changed */
    cv_scoring_card_param_t params[CV_SCORING_PARAM_COUNT]; /* in the
                                           order they were first set */
    size_t count;                                           /* parameters set */
    cv_scoring_knockout_t knockout; /* people's word on knock-out */
    char knockout_reason[CV_SCORING_KNOCKOUT_SIZE];  /* SET: why */
    char knockout_actor[CV_SCORING_CARD_ACTOR_SIZE]; /* SET, LIFTED: who */
    int64_t knockout_at;                             /* SET, LIFTED: when */
} cv_scoring_card_t;

/* A value in a change. */
typedef struct {
    const char *name; /* parameter */
    int value;        /* -1, 0 or +1 */
} cv_scoring_card_value_t;

/* One person's change: some values and perhaps the knock-out. */
typedef struct {
    const cv_scoring_card_value_t *values;
    size_t count;
    bool knockout_given;         /* the change says something on it */
    const char *knockout_reason; /* knock out with this reason; NULL
                                    lifts any knock-out */
    const char *actor;           /* staff id, "admin" for the token */
    int64_t at;                  /* when, ms */
} cv_scoring_card_change_t;

/* Applies `change` to `card` and moves it to the next revision. Values
 * must be -1..+1 and names distinct and fewer than
 * CV_SCORING_CARD_NAME_SIZE bytes (the console checks them against the
 * model first); 0, or -1 when they are not (card unchanged). */
int cv_scoring_card_apply(cv_scoring_card_t *card,
                          const cv_scoring_card_change_t *change);

/* The card as scoring input; `storage` holds CV_SCORING_PARAM_COUNT
 * overrides and `manual` borrows the card's strings. */
void cv_scoring_card_manual(const cv_scoring_card_t *card,
                            cv_scoring_manual_t *manual,
                            cv_scoring_override_t *storage);

/* Packs the card for `lead_id` as a Scorecard message, with the change's
 * `scorecard_id`, actor, time and changed names (NULL `change`: none).
 * Returns the packed bytes (caller frees) and their size, NULL when out
 * of memory. */
uint8_t *cv_scoring_card_pack(const cv_scoring_card_t *card,
                              const char *lead_id, const char *scorecard_id,
                              const cv_scoring_card_change_t *change,
                              size_t *size);

/* Reads a packed Scorecard into `card`; an empty buffer is an empty card.
 * 0, or -1 when it does not parse. */
int cv_scoring_card_unpack(const uint8_t *data, size_t size,
                           cv_scoring_card_t *card);

#endif

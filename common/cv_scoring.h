/* cv_scoring: scores a lead with a model (PRODUCT.md section 2).
 *
 * A lead first passes the model's knock-out rules (budget below a
 * minimum, a blocked domain or INN, a competitor, spam); then each of the
 * 3 blocks x 5 parameters gets -1, 0 or +1 from the first of its rules
 * that judges the lead, with the rule that set it ("auto:<rule>") and a
 * reason. The total is the sum (-15..+15); the segment is C at or below
 * the model's c_max, A at or above its a_min, B between, and always C for a
 * knocked-out lead (whose total is kept as computed).
 *
 * People take part through a scorecard (cv_scoring_manual_t): a value they
 * set for a parameter replaces the rules' (its source is the person), and
 * they may knock a lead out or lift the rules' knock-out. The console and
 * the scoring stage both score with cv_scoring_score_manual, so the
 * console's preview and the stage's score agree for the same model.
 *
 * The model comes from a rules file (cv_scoring_rules.h); NULL means the
 * built-in one. Pure functions, no I/O, thread-safe. A result borrows the
 * model's names and version: it lives no longer than the model. */
#ifndef CV_SCORING_H
#define CV_SCORING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_scoring_rules.h"

#define CV_SCORING_REASON_SIZE   256
#define CV_SCORING_KNOCKOUT_SIZE 512
#define CV_SCORING_SOURCE_SIZE   136 /* "auto:<rule>" or a staff id */

/* One parameter's judgement. */
typedef struct {
    const char *name;                    /* "budget" (the model's) */
    const char *block;                   /* "request" (the model's) */
    int value;                           /* -1, 0 or +1 */
    bool manual;                         /* set by a person */
    char source[CV_SCORING_SOURCE_SIZE]; /* "auto:<rule>" or a staff id */
    char reason[CV_SCORING_REASON_SIZE]; /* why, for the lead card */
} cv_scoring_param_t;

/* A whole score. */
typedef struct {
    cv_scoring_param_t params[CV_SCORING_PARAM_COUNT]; /* model order */
    int total;        /* sum of the values, -15..+15 */
    char segment[2];  /* "A", "B" or "C" */
    bool knocked_out; /* failed the knock-out phase, or a person said so */
    char knockout_reason[CV_SCORING_KNOCKOUT_SIZE]; /* why; when a person
                                   lifted the rules' knock-out, what the
                                   rules had said; else "" */
    char knockout_source[CV_SCORING_SOURCE_SIZE];   /* "auto:<rule>" of the
                                     first rule that knocked it out, or the
                                     person; "" when none */
    const char *model_version;                      /* the model's version */
    int segment_c_max; /* the model's thresholds, so a score */
    int segment_a_min; /* changed by hand is segmented the same */
    int64_t revision;  /* scorecard revision applied, 0 for none */
} cv_scoring_result_t;

/* What a person may say about the lead's knock-out. */
typedef enum {
    CV_SCORING_KNOCKOUT_RULES = 0, /* the rules decide */
    CV_SCORING_KNOCKOUT_SET,       /* knocked out by a person */
    CV_SCORING_KNOCKOUT_LIFTED,    /* the rules' knock-out lifted by one */
} cv_scoring_knockout_t;

/* A parameter a person set. */
typedef struct {
    const char *name;  /* parameter name */
    int value;         /* -1, 0 or +1 */
    const char *actor; /* staff id ("admin" for the bootstrap token) */
    int64_t set_at;    /* when, conveyor-clock ms */
} cv_scoring_override_t;

/* A lead's scorecard: what people said, over the rules. */
typedef struct {
    const cv_scoring_override_t *params; /* at most one per parameter */
    size_t count;
    cv_scoring_knockout_t knockout; /* knock-out decided by people */
    const char *knockout_reason;    /* SET: why */
    const char *knockout_actor;     /* SET or LIFTED: who */
    int64_t knockout_at;            /* SET or LIFTED: when */
    int64_t revision;               /* the scorecard's revision */
} cv_scoring_manual_t;

/* The built-in model (cv_scoring_rules_builtin). */
const cv_scoring_model_t *cv_scoring_default_model(void);

/* Scores `lead` with `model` (NULL: built-in) into `out` (overwritten). */
void cv_scoring_score(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out);

/* The same with people's judgements over the rules' (`manual` may be
 * NULL). Returns how many overrides named a parameter the model does not
 * have; those are left out. */
int cv_scoring_score_manual(const cv_scoring_model_t *model,
                            const Conveyor__Lead *lead,
                            const cv_scoring_manual_t *manual,
                            cv_scoring_result_t *out);

/* "A", "B" or "C" for a total under the model's thresholds (NULL:
 * built-in). */
const char *cv_scoring_model_segment(const cv_scoring_model_t *model, int total,
                                     bool knocked_out);

/* Sums the parameters into total and sets the segment again with the
 * thresholds kept in the score; for a score changed by hand. */
void cv_scoring_recompute(cv_scoring_result_t *score);

/* Parameter position, name and block in the built-in model; -1 or NULL
 * when unknown or out of range. (cv_scoring_rules_param_index for
 * another model.) */
int cv_scoring_param_index(const char *name);
const char *cv_scoring_param_name(int index);
const char *cv_scoring_param_block(int index);

/* Decodes `text` (UTF-8, NUL-terminated) into case-folded code points as
 * the scoring's case-insensitive matching compares them (Latin and
 * Cyrillic; a malformed byte stands for itself). Writes at most `max`
 * into `cps` and returns how many the text has (more than `max` when it
 * did not fit). */
size_t cv_scoring_fold(const char *text, uint32_t *cps, size_t max);

/* Points `out` at a protobuf view of `score`. The caller provides the
 * storage (`params`, `param_ptrs`, CV_SCORING_PARAM_COUNT each); `out`
 * borrows strings from `score`, so it lives no longer than `score`. */
void cv_scoring_to_proto(const cv_scoring_result_t *score, Conveyor__Score *out,
                         Conveyor__ScoreParam *params,
                         Conveyor__ScoreParam **param_ptrs);

/* A view of a Scorecard message as a cv_scoring_manual_t, borrowing its
 * strings; `storage` holds CV_SCORING_PARAM_COUNT overrides. A parameter
 * named twice keeps its later entry; values outside -1..+1 are clamped.
 * NULL `card` gives an empty scorecard. */
void cv_scoring_manual_from_proto(const Conveyor__Scorecard *card,
                                  cv_scoring_manual_t *out,
                                  cv_scoring_override_t *storage);

#endif

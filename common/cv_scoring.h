/* cv_scoring: the lead scoring model of PRODUCT.md section 2.
 *
 * A lead is first checked by the knock-out phase (budget below an absolute
 * minimum, blacklisted domain, spam markers); then each of the 3 blocks x 5
 * parameters gets -1, 0 or +1 with a reason and the rule that set it
 * ("auto:<rule>"). Only what the lead's own data supports is judged; the
 * rest stays 0 until a manager sets it after the first call. The total is
 * the sum (-15..+15); the segment is C (<= -10), B (-9..+9) or A (>= +10),
 * and always C for a knocked-out lead, whose total is kept as computed.
 *
 * The rules' numbers and lists are one table, cv_scoring_default_model();
 * a rules file fills the same struct. Pure functions, no I/O, thread-safe. */
#ifndef CV_SCORING_H
#define CV_SCORING_H

#include <stdbool.h>
#include <stddef.h>

#include "conveyor.pb-c.h"

#define CV_SCORING_PARAM_COUNT   15
#define CV_SCORING_MODEL_VERSION "default-1"
#define CV_SCORING_REASON_SIZE   256
#define CV_SCORING_SOURCE_SIZE   64

/* Segment bounds on the total (PRODUCT.md). */
#define CV_SCORING_SEGMENT_C_MAX (-10)
#define CV_SCORING_SEGMENT_A_MIN 10

/* One currency's value in roubles, for comparing budgets. */
typedef struct {
    const char *code; /* ISO 4217, upper case ("USD") */
    double rub;       /* roubles per unit */
} cv_scoring_rate_t;

/* The rules' numbers and lists. Lists are NULL-terminated arrays of
 * lower-case UTF-8 strings; matching ignores case (ASCII and Cyrillic). */
typedef struct {
    const char *version;                    /* model version, "default-1" */
    double knockout_budget_rub;             /* a known budget below this is
                                               knocked out */
    double budget_low_rub;                  /* below this: budget -1 */
    double budget_high_rub;                 /* at or above this: budget +1 */
    const cv_scoring_rate_t *rates;         /* ends with a NULL code; RUB is
                                               always 1 */
    size_t detailed_message_chars;          /* clarity +1 from this many
                                               characters (code points) */
    const char *const *target_industries;   /* industry_experience +1 */
    const char *const *served_regions;      /* geography +1; others -1 */
    const char *const *blacklisted_domains; /* knock-out; subdomains too */
    const char *const *spam_markers;        /* knock-out when the name, company
                                               or message contains one */
    int spam_max_links;                     /* knock-out when the message has
                                               more links than this */
} cv_scoring_model_t;

/* One parameter's judgement. */
typedef struct {
    const char *name;                    /* "budget" (static) */
    const char *block;                   /* request | fit | communication */
    int value;                           /* -1, 0 or +1 */
    char source[CV_SCORING_SOURCE_SIZE]; /* "auto:<rule>" or a staff id */
    char reason[CV_SCORING_REASON_SIZE]; /* why, for the lead card */
} cv_scoring_param_t;

/* A whole score. */
typedef struct {
    cv_scoring_param_t params[CV_SCORING_PARAM_COUNT]; /* model order */
    int total;        /* sum of the values, -15..+15 */
    char segment[2];  /* "A", "B" or "C" */
    bool knocked_out; /* failed the knock-out phase */
    char knockout_reason[CV_SCORING_REASON_SIZE]; /* why, or "" */
    const char *model_version; /* the model's version (static) */
} cv_scoring_result_t;

/* The built-in rules table. */
const cv_scoring_model_t *cv_scoring_default_model(void);

/* Scores `lead` with `model` into `out` (fully overwritten). */
void cv_scoring_score(const cv_scoring_model_t *model,
                      const Conveyor__Lead *lead, cv_scoring_result_t *out);

/* "A", "B" or "C" for a total and the knock-out flag. */
const char *cv_scoring_segment(int total, bool knocked_out);

/* Sums the parameters into total and sets the segment again; for a score
 * whose parameters were changed by hand. */
void cv_scoring_recompute(cv_scoring_result_t *score);

/* The parameter's position in the model (0..14), or -1 for an unknown
 * name. */
int cv_scoring_param_index(const char *name);

/* Name and block of parameter `index` (0..14); NULL when out of range. */
const char *cv_scoring_param_name(int index);
const char *cv_scoring_param_block(int index);

/* Points `out` at a protobuf view of `score`. The caller provides the
 * storage (`params`, `param_ptrs`, CV_SCORING_PARAM_COUNT each); `out`
 * borrows strings from `score`, so it lives no longer than `score`. */
void cv_scoring_to_proto(const cv_scoring_result_t *score, Conveyor__Score *out,
                         Conveyor__ScoreParam *params,
                         Conveyor__ScoreParam **param_ptrs);

#endif

/* cv_scoring_rules: the scoring model as data, from a YAML rules file.
 *
 * A rules file (deploy/scoring-rules.yaml is the default, and documents
 * every key) names the model's version, the segment thresholds, currency
 * rates, the knock-out rules, and the 3 blocks x 5 parameters of PRODUCT.md
 * section 2, each with the automatic rules that derive it from the lead's
 * data. It is loaded with libcyaml against a schema and then checked as a
 * whole; a file that is not a valid model is refused with its name, line
 * and reason:
 *
 *     deploy/x.yaml: line 12: unknown rule kind 'budgte'
 *
 * The built-in model is deploy/scoring-rules.yaml itself, compiled into the
 * library (cv_scoring_rules.c), so the file and the built-in rules cannot
 * disagree.
 *
 * A model is immutable once loaded and may be read by any number of
 * threads; cv_scoring_live (cv_scoring_live.h) swaps models on SIGHUP. */
#ifndef CV_SCORING_RULES_H
#define CV_SCORING_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_SCORING_PARAM_COUNT  15 /* 3 blocks x 5 parameters */
#define CV_SCORING_BLOCK_COUNT  3
#define CV_SCORING_BLOCK_PARAMS 5
#define CV_SCORING_VALUE_MAX    1  /* a parameter is -1, 0 or +1 */
#define CV_SCORING_TOTAL_MAX    15 /* so the total is -15..+15 */

/* What a rule looks at and decides. The first five judge a parameter;
 * the rest are knock-out rules. */
typedef enum {
    CV_SCORING_RULE_BUDGET_BANDS,   /* budget in roubles against bands */
    CV_SCORING_RULE_IN_LIST,        /* a field's value in a list or not */
    CV_SCORING_RULE_CHANNEL_WARMTH, /* a value per intake channel */
    CV_SCORING_RULE_MESSAGE_LENGTH, /* characters in the request */
    CV_SCORING_RULE_FIELDS_PRESENT, /* how many of some fields are given */
    CV_SCORING_RULE_BUDGET_BELOW,   /* knock-out: budget under a minimum */
    CV_SCORING_RULE_BLOCKED_DOMAIN, /* knock-out: domain or e-mail domain */
    CV_SCORING_RULE_BLOCKED_INN,    /* knock-out: tax id on a blocklist */
    CV_SCORING_RULE_COMPETITOR,     /* knock-out: company or domain */
    CV_SCORING_RULE_SPAM_MARKERS,   /* knock-out: a marker in a text */
    CV_SCORING_RULE_TOO_MANY_LINKS, /* knock-out: links in the message */
} cv_scoring_rule_kind_t;

/* A lead field a rule reads. CONTACT is "phone, email or telegram". */
typedef enum {
    CV_SCORING_FIELD_NAME,
    CV_SCORING_FIELD_COMPANY,
    CV_SCORING_FIELD_PHONE,
    CV_SCORING_FIELD_EMAIL,
    CV_SCORING_FIELD_TELEGRAM,
    CV_SCORING_FIELD_MESSAGE,
    CV_SCORING_FIELD_CHANNEL,
    CV_SCORING_FIELD_SOURCE,
    CV_SCORING_FIELD_REGION,
    CV_SCORING_FIELD_INDUSTRY,
    CV_SCORING_FIELD_PRODUCT,
    CV_SCORING_FIELD_INN,
    CV_SCORING_FIELD_DOMAIN,
    CV_SCORING_FIELD_TIMEZONE,
    CV_SCORING_FIELD_UTM_SOURCE,
    CV_SCORING_FIELD_BUDGET,
    CV_SCORING_FIELD_CONTACT,
    CV_SCORING_FIELD_COUNT,
} cv_scoring_field_t;

/* The values a reason text may name, as "{budget}" and so on. */
typedef enum {
    CV_SCORING_PH_BUDGET,   /* "1500000 RUB", or "20000 USD (~1800000 RUB
                               at the fixed rate 90 RUB/USD)" */
    CV_SCORING_PH_AMOUNT,   /* the budget as given: "20000" */
    CV_SCORING_PH_CURRENCY, /* its currency: "USD" */
    CV_SCORING_PH_RUB,      /* in roubles: "1800000" */
    CV_SCORING_PH_FROM,     /* a band's lower bound */
    CV_SCORING_PH_TO,       /* a band's upper bound (the next band's) */
    CV_SCORING_PH_VALUE,    /* the field's value, trimmed */
    CV_SCORING_PH_FIELD,    /* the field's name */
    CV_SCORING_PH_CHANNEL,  /* the lead's channel ("web" when unset) */
    CV_SCORING_PH_CHARS,    /* characters in the message */
    CV_SCORING_PH_MIN,      /* the rule's min_chars */
    CV_SCORING_PH_MISSING,  /* fields not given: "company, message" */
    CV_SCORING_PH_PRESENT,  /* fields given */
    CV_SCORING_PH_MATCH,    /* the list entry that matched */
    CV_SCORING_PH_DOMAIN,   /* the domain that was checked */
    CV_SCORING_PH_LIMIT,    /* the rule's min_rub or max */
    CV_SCORING_PH_COUNT,    /* links counted */
    CV_SCORING_PH_COUNT_OF, /* number of placeholders */
} cv_scoring_placeholder_t;

/* A piece of a reason text: literal bytes or a placeholder. */
typedef struct {
    const char *text; /* literal bytes (not NUL-terminated), or NULL */
    size_t length;    /* bytes of text */
    int placeholder;  /* a cv_scoring_placeholder_t, or -1 for text */
} cv_scoring_piece_t;

/* What a rule concludes in one case: a value and why. */
typedef struct {
    int value;                        /* -1, 0 or +1 */
    const char *reason;               /* the template as written */
    const cv_scoring_piece_t *pieces; /* the template, parsed */
    size_t piece_count;
} cv_scoring_outcome_t;

/* A budget band: from `from_rub` (inclusive) up to the next band. */
typedef struct {
    double from_rub;              /* lower bound in roubles */
    cv_scoring_outcome_t outcome; /* value and reason in this band */
} cv_scoring_band_t;

/* The value a channel gets (channel_warmth). */
typedef struct {
    const char *channel;          /* web | phone | social | email | ... */
    cv_scoring_outcome_t outcome; /* its value and reason */
} cv_scoring_channel_t;

/* One currency's value in roubles, for comparing budgets. */
typedef struct {
    const char *code; /* ISO 4217, upper case ("USD") */
    double rub;       /* roubles per unit */
} cv_scoring_rate_t;

/* Longest list entry, in code points, kept folded (cv_scoring_needle_t);
 * longer ones are matched from their text. */
#define CV_SCORING_NEEDLE_MAX 64

/* A list entry decoded and case-folded once, when the model is loaded,
 * so a lead's texts are searched for it without decoding it per lead. */
typedef struct {
    const uint32_t *cps; /* folded code points (cv_scoring_fold), or NULL
                            when the entry is longer than
                            CV_SCORING_NEEDLE_MAX */
    size_t count;        /* code points in cps */
} cv_scoring_needle_t;

/* One rule. Which members matter depends on `kind`; an outcome that is
 * NULL means the rule does not judge that case and the next rule of the
 * parameter is asked. */
typedef struct {
    const char *name; /* shown as "auto:<name>" */
    cv_scoring_rule_kind_t kind;
    cv_scoring_field_t field; /* in_list: the field compared */
    const char *const *list;  /* NULL-terminated entries, matched
                                 ignoring case (ASCII, Cyrillic) */
    size_t list_count;
    const cv_scoring_needle_t *needles; /* spam_markers: `list` folded, in
                                           its order, always set by the
                                           loader; NULL for other kinds */
    uint32_t needle_first[8]; /* spam_markers: bit (c & 255) set for the
                                 first code point c of every needle, to
                                 skip most text positions at once */
    const cv_scoring_field_t *fields; /* fields_present, spam_markers */
    size_t field_count;
    const cv_scoring_band_t *bands; /* budget_bands, ascending */
    size_t band_count;
    const cv_scoring_channel_t *channels; /* channel_warmth */
    size_t channel_count;
    size_t min_chars;                    /* message_length: long from here */
    double min_rub;                      /* budget_below */
    int max;                             /* too_many_links */
    const cv_scoring_outcome_t *missing; /* budget_bands, in_list,
                                            message_length: no value */
    const cv_scoring_outcome_t *unknown_currency; /* budget_bands */
    const cv_scoring_outcome_t *listed;           /* in_list */
    const cv_scoring_outcome_t *unlisted;         /* in_list */
    const cv_scoring_outcome_t *other;            /* channel_warmth: unlisted */
    const cv_scoring_outcome_t *shorter;          /* message_length: < min */
    const cv_scoring_outcome_t *longer;           /* message_length: >= min */
    const cv_scoring_outcome_t *all;          /* fields_present: all given */
    const cv_scoring_outcome_t *one_missing;  /* exactly one not given */
    const cv_scoring_outcome_t *more_missing; /* two or more not given */
    const cv_scoring_outcome_t *none;         /* none given (else
                                                 more_missing) */
    const cv_scoring_outcome_t *knockout;     /* knock-out rules: the reason
                                                 (value unused) */
} cv_scoring_rule_t;

/* One of the 15 parameters. */
typedef struct {
    const char *name;               /* "budget" */
    const char *block;              /* the block's name: "request" */
    const char *description;        /* for people; may be "" */
    const cv_scoring_rule_t *rules; /* asked in order; the first that
                                       judges sets the value */
    size_t rule_count;
} cv_scoring_param_def_t;

/* A whole model. Read-only for its users; built by the loader. */
typedef struct cv_scoring_model {
    const char *version;            /* "default-1"; stored with every
                                       score */
    const char *unjudged_reason;    /* reason of a parameter no rule
                                       judged (value 0, auto:not_judged) */
    int segment_c_max;              /* total at or below: segment C */
    int segment_a_min;              /* total at or above: segment A */
    const cv_scoring_rate_t *rates; /* other currencies; RUB is 1 */
    size_t rate_count;
    const cv_scoring_rule_t *knockout; /* all asked; any one knocks out */
    size_t knockout_count;
    const char *blocks[CV_SCORING_BLOCK_COUNT]; /* block names */
    const char *block_descriptions[CV_SCORING_BLOCK_COUNT];
    cv_scoring_param_def_t params[CV_SCORING_PARAM_COUNT]; /* block order */
    void *memory; /* everything above (owned) */
} cv_scoring_model_t;

/* Loads and checks the rules file `path`. Returns a model the caller owns
 * (cv_scoring_rules_free), or NULL with "<path>: line N: <reason>" (or
 * "<path>: <reason>" when no line applies) in `error`. */
cv_scoring_model_t *cv_scoring_rules_load(const char *path, char *error,
                                          size_t size);

/* The same for YAML text in memory; `name` stands for the file name in
 * errors. */
cv_scoring_model_t *cv_scoring_rules_parse(const char *name, const char *text,
                                           size_t length, char *error,
                                           size_t size);

/* NULL-safe; nulls *model_p. Never call it on the built-in model. */
void cv_scoring_rules_free(cv_scoring_model_t **model_p);

/* The built-in model (deploy/scoring-rules.yaml as built), loaded on first
 * use and kept for the process's life; NULL only when the compiled-in file
 * is not a valid model (logged), which the unit tests rule out. */
const cv_scoring_model_t *cv_scoring_rules_builtin(void);

/* The text of the built-in rules file, NUL-terminated. */
const char *cv_scoring_rules_builtin_text(void);

/* The parameter's position in the model (0..14), or -1. */
int cv_scoring_rules_param_index(const cv_scoring_model_t *model,
                                 const char *name);

/* Names for messages and files. */
const char *cv_scoring_rule_kind_name(cv_scoring_rule_kind_t kind);
const char *cv_scoring_field_name(cv_scoring_field_t field);

#endif

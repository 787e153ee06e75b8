/* cv_routing_rules: the routing chain as data, from a YAML rules file.
 *
 * A rules file (deploy/routing-rules.yaml is the default and documents
 * every key) is an ordered list of rules; each matches on lead fields
 * (channel, source, region, industry, product, segment, tier, budget
 * range, returning client) and names a strategy and a pool of staff. The
 * routing stage asks the rules in order and falls through to the next one
 * when a rule's pool has nobody available. The file also says what a VIP
 * (segment A) lead brings: the head of sales and a working group.
 *
 * It is loaded with libcyaml against a schema and then checked as a
 * whole; a file that is not a valid chain is refused with its name, line
 * and reason:
 *
 *     deploy/x.yaml: line 12: unknown strategy 'round_robbin' (...)
 *
 * The built-in chain is deploy/routing-rules.yaml itself, compiled into the
 * library, so the file and the built-in rules cannot disagree.
 *
 * A chain is immutable once loaded and may be read by any number of
 * threads; every pointer in it belongs to the chain. */
#ifndef CV_ROUTING_RULES_H
#define CV_ROUTING_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CV_ROUTING_ROUND_ROBIN,    /* smooth weighted round-robin on the pool */
    CV_ROUTING_FIRST_COME,     /* offered to the pool, first claim wins */
    CV_ROUTING_MANUAL,         /* the head of sales assigns by hand */
    CV_ROUTING_BY_CHANNEL,     /* members owning the lead's channel */
    CV_ROUTING_BY_INDUSTRY,    /* members owning the lead's industry */
    CV_ROUTING_BY_PRODUCT,     /* members owning the lead's product */
    CV_ROUTING_BY_REGION,      /* region rules with precedence */
    CV_ROUTING_PREVIOUS_OWNER, /* a returning client's previous owner */
} cv_routing_strategy_t;

/* The steps by_region takes, in the order a rule gives them. */
typedef enum {
    CV_ROUTING_REGION_FEDERAL,    /* extra.federal -> federal_team */
    CV_ROUTING_REGION_BRAND,      /* extra.brand -> the brand's team */
    CV_ROUTING_REGION_OPERATING,  /* extra.operating_region */
    CV_ROUTING_REGION_LEAD,       /* the lead's region field */
    CV_ROUTING_REGION_REGISTERED, /* extra.registered_region */
    CV_ROUTING_REGION_STEPS,
} cv_routing_region_step_t;

/* A list of texts; count 0 means "any" where it filters. */
typedef struct {
    const char *const *items; /* the chain's */
    size_t count;             /* entries */
} cv_routing_list_t;

/* A franchise brand and the team that works it. */
typedef struct {
    const char *brand; /* as in extra.brand */
    const char *team;  /* staff team */
} cv_routing_brand_t;

typedef struct {
    const char *name; /* unique in the chain */
    int line;         /* where the rule starts in its file */
    /* match: an empty list or an unset bound fits every lead */
    cv_routing_list_t channel;      /* lead.channel in it */
    cv_routing_list_t source;       /* lead.source in it */
    cv_routing_list_t region;       /* lead.region in it */
    cv_routing_list_t industry;     /* lead.industry in it */
    cv_routing_list_t product;      /* lead.product in it */
    cv_routing_list_t segment;      /* the score's segment in it */
    unsigned tiers;                 /* bit t set: tier t fits; 0: any */
    bool has_budget_min;            /* budget_min given */
    double budget_min;              /* lead.budget >= this */
    bool has_budget_max;            /* budget_max given */
    double budget_max;              /* lead.budget <= this */
    bool returning_only;            /* only leads with a previous owner */
    cv_routing_strategy_t strategy; /* what the rule does */
    /* pool: NULL / 0 / empty for "any" */
    const char *role;        /* staff role */
    int tier;                /* staff tier, 0 any */
    const char *team;        /* staff team */
    cv_routing_list_t staff; /* staff ids */
    int claim_minutes;       /* first_come: 0 = the configured default */
    const char *task_kind;   /* the owner's task; NULL: first_contact */
    /* by_region */
    cv_routing_region_step_t precedence[CV_ROUTING_REGION_STEPS];
    size_t precedence_count;          /* steps in use */
    const char *federal_team;         /* team of federal companies, or NULL */
    const cv_routing_brand_t *brands; /* franchises */
    size_t brand_count;
} cv_routing_rule_t;

typedef struct {
    const char *version;            /* the chain's version text */
    const cv_routing_rule_t *rules; /* in order */
    size_t rule_count;
    cv_routing_list_t vip_segments;  /* segments that are VIP */
    bool vip_head_review;            /* the head of sales joins them */
    cv_routing_list_t working_group; /* roles that join them */
    bool reassign_inactive;          /* leads of one set inactive move */
    void *memory;                    /* private */
} cv_routing_rules_t;

/* What a rule looks at, taken from the lead by the caller (all texts
 * may be NULL; not owned). */
typedef struct {
    const char *channel; /* web, phone, social, email, cold */
    const char *source;
    const char *region;
    const char *industry;
    const char *product;
    const char *segment; /* A, B, C, or NULL before scoring */
    int tier;            /* cv_routing_lead_tier */
    bool has_budget;
    double budget;
    const char *previous_owner;    /* returning client's previous owner */
    bool federal;                  /* extra.federal */
    const char *brand;             /* extra.brand */
    const char *operating_region;  /* extra.operating_region */
    const char *registered_region; /* extra.registered_region */
} cv_routing_lead_t;

/* Parses `text` (`length` bytes) named `name` in messages. NULL with
 * "<name>: line N: <reason>" in `error` when it is not a valid chain.
 * The caller owns the chain (cv_routing_rules_free). */
cv_routing_rules_t *cv_routing_rules_parse(const char *name, const char *text,
                                           size_t length, char *error,
                                           size_t size);

/* Reads and parses a file; errors as cv_routing_rules_parse. */
cv_routing_rules_t *cv_routing_rules_load(const char *path, char *error,
                                          size_t size);

/* NULL-safe; nulls *rules_p. */
void cv_routing_rules_free(cv_routing_rules_t **rules_p);

/* The built-in chain (deploy/routing-rules.yaml compiled in), parsed once
 * per process; NULL only if that text is broken (logged). Not freed. */
const cv_routing_rules_t *cv_routing_rules_builtin(void);
const char *cv_routing_rules_builtin_text(void);

/* The name of a strategy or region step as the file spells it. */
const char *cv_routing_strategy_name(cv_routing_strategy_t strategy);
const char *cv_routing_region_step_name(cv_routing_region_step_t step);

/* A lead's tier (PRODUCT.md section 3): 1 for a cold list (channel
 * "cold"), 3 for a client whose previous lead was won, else 2. */
int cv_routing_lead_tier(const char *channel, const char *previous_result);

/* True when `rule`'s match fits `lead`; `why` (may be NULL) says which key
 * did not fit, or "matches". */
bool cv_routing_rule_matches(const cv_routing_rule_t *rule,
                             const cv_routing_lead_t *lead, char *why,
                             size_t why_size);

/* For by_region: the step that decides and its value, following the
 * rule's precedence. *team is set for the federal and brand steps (the
 * team to take), *region for the others (a value of staff regions[]);
 * both NULL when the lead has none of the steps (or a brand the rule does
 * not list). Returns the step, or -1 when none applies. */
int cv_routing_region_key(const cv_routing_rule_t *rule,
                          const cv_routing_lead_t *lead, const char **team,
                          const char **region);

/* True when `value` is in the list (ASCII case ignored). */
bool cv_routing_list_has(const cv_routing_list_t *list, const char *value);

#endif

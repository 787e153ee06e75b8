/* cv_routing_rules: load a routing rules file into a checked chain.
 *
 * Two steps, as cv_scoring_rules: libcyaml reads the YAML into "file"
 * structs that mirror it (numbers kept as text, because libcyaml 1.3 reads
 * "1.5" as the int 1), reporting its own errors with a line; then every
 * value is checked and copied into the chain, and an error found there is
 * placed on the line of the rule (or of the key inside it) it concerns. */
#include "cv_routing_rules.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_jsonw.h"
#include "cv_log.h"
#include "cv_textfile.h"
#include "cv_yaml.h"

/* The built-in chain: deploy/routing-rules.yaml as it was when this file
 * was compiled (the assembler reads it; make runs from the project root).
 * test_routing_rules checks that the file and this copy are the same. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        "cv_routing_rules_default_yaml:\n"
        ".incbin \"deploy/routing-rules.yaml\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char cv_routing_rules_default_yaml[];

#define RULES_NAME_MAX  64    /* bytes in a rule name */
#define RULES_TEXT_MAX  200   /* bytes in a value, a role, a team */
#define RULES_MAX       1000  /* rules in a chain */
#define RULES_LIST_MAX  10000 /* entries in one list */
#define RULES_FILE_MAX  (1024 * 1024)
#define RULES_CLAIM_MAX (7 * 24 * 60) /* a week, in minutes */

/* ------------------------------------------------------------------ */
/* Names                                                               */

static const cyaml_strval_t strategy_names[] = {
    {"round_robin", CV_ROUTING_ROUND_ROBIN},
    {"first_come", CV_ROUTING_FIRST_COME},
    {"manual", CV_ROUTING_MANUAL},
    {"by_channel", CV_ROUTING_BY_CHANNEL},
    {"by_industry", CV_ROUTING_BY_INDUSTRY},
    {"by_product", CV_ROUTING_BY_PRODUCT},
    {"by_region", CV_ROUTING_BY_REGION},
    {"previous_owner", CV_ROUTING_PREVIOUS_OWNER},
};
#define STRATEGIES (sizeof(strategy_names) / sizeof(strategy_names[0]))

static const cyaml_strval_t step_names[] = {
    {"federal", CV_ROUTING_REGION_FEDERAL},
    {"brand", CV_ROUTING_REGION_BRAND},
    {"operating_region", CV_ROUTING_REGION_OPERATING},
    {"region", CV_ROUTING_REGION_LEAD},
    {"registered_region", CV_ROUTING_REGION_REGISTERED},
};
#define STEPS (sizeof(step_names) / sizeof(step_names[0]))

const char *cv_routing_strategy_name(cv_routing_strategy_t strategy)
{
    for (size_t i = 0; i < STRATEGIES; i++)
        if (strategy_names[i].val == (int64_t)strategy)
            return strategy_names[i].str;
    return "unknown";
}

const char *cv_routing_region_step_name(cv_routing_region_step_t step)
{
    for (size_t i = 0; i < STEPS; i++)
        if (step_names[i].val == (int64_t)step)
            return step_names[i].str;
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* The file as libcyaml reads it                                       */

typedef struct {
    char **channel; /* channel */
    unsigned channel_count;
    char **source; /* source */
    unsigned source_count;
    char **region; /* region */
    unsigned region_count;
    char **industry; /* industry */
    unsigned industry_count;
    char **product; /* product */
    unsigned product_count;
    char **segment; /* segment */
    unsigned segment_count;
    char **tier; /* tier */
    unsigned tier_count;
    char *budget_min; /* budget_min */
    char *budget_max; /* budget_max */
    bool *returning;  /* returning */
} file_match_t;

typedef struct {
    char *role;   /* role */
    char *tier;   /* tier */
    char *team;   /* team */
    char **staff; /* staff */
    unsigned staff_count;
} file_pool_t;

typedef struct {
    char *brand; /* brand */
    char *team;  /* team */
} file_brand_t;

typedef struct {
    char *name;                      /* name */
    file_match_t *match;             /* match */
    cv_routing_strategy_t strategy;  /* strategy */
    file_pool_t *pool;               /* pool */
    char *claim_minutes;             /* claim_minutes */
    char *task_kind;                 /* task_kind */
    cv_routing_region_step_t *steps; /* region_precedence */
    unsigned steps_count;
    char *federal_team;   /* federal_team */
    file_brand_t *brands; /* brands */
    unsigned brands_count;
} file_rule_t;

typedef struct {
    char **segments; /* segments */
    unsigned segments_count;
    bool *head_review;    /* head_review */
    char **working_group; /* working_group */
    unsigned working_group_count;
} file_vip_t;

typedef struct {
    char *version;           /* version */
    file_vip_t *vip;         /* vip */
    bool *reassign_inactive; /* reassign_inactive */
    file_rule_t *rules;      /* rules */
    unsigned rules_count;
} file_rules_t;

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define TEXT(key, type, member)                                                \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER, type, member, 0,           \
                           CYAML_UNLIMITED)
#define OPT_TEXT(key, type, member)                                            \
    CYAML_FIELD_STRING_PTR(key, OPT, type, member, 0, CYAML_UNLIMITED)
#define OPT_LIST(key, type, member)                                            \
    CYAML_FIELD_SEQUENCE(key, OPT, type, member, &file_string, 0,              \
                         RULES_LIST_MAX)

static const cyaml_schema_value_t file_string = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_value_t file_step = {
    CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, cv_routing_region_step_t, step_names,
                     STEPS),
};

static const cyaml_schema_field_t file_match_fields[] = {
    OPT_LIST("channel", file_match_t, channel),
    OPT_LIST("source", file_match_t, source),
    OPT_LIST("region", file_match_t, region),
    OPT_LIST("industry", file_match_t, industry),
    OPT_LIST("product", file_match_t, product),
    OPT_LIST("segment", file_match_t, segment),
    OPT_LIST("tier", file_match_t, tier),
    OPT_TEXT("budget_min", file_match_t, budget_min),
    OPT_TEXT("budget_max", file_match_t, budget_max),
    CYAML_FIELD_BOOL_PTR("returning", OPT, file_match_t, returning),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t file_pool_fields[] = {
    OPT_TEXT("role", file_pool_t, role),
    OPT_TEXT("tier", file_pool_t, tier),
    OPT_TEXT("team", file_pool_t, team),
    OPT_LIST("staff", file_pool_t, staff),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t file_brand_fields[] = {
    TEXT("brand", file_brand_t, brand),
    TEXT("team", file_brand_t, team),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_brand = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_brand_t, file_brand_fields),
};

static const cyaml_schema_field_t file_rule_fields[] = {
    TEXT("name", file_rule_t, name),
    CYAML_FIELD_MAPPING_PTR("match", OPT, file_rule_t, match,
                            file_match_fields),
    CYAML_FIELD_ENUM("strategy", CYAML_FLAG_STRICT, file_rule_t, strategy,
                     strategy_names, STRATEGIES),
    CYAML_FIELD_MAPPING_PTR("pool", OPT, file_rule_t, pool, file_pool_fields),
    OPT_TEXT("claim_minutes", file_rule_t, claim_minutes),
    OPT_TEXT("task_kind", file_rule_t, task_kind),
    CYAML_FIELD_SEQUENCE("region_precedence", OPT, file_rule_t, steps,
                         &file_step, 1, CV_ROUTING_REGION_STEPS),
    OPT_TEXT("federal_team", file_rule_t, federal_team),
    CYAML_FIELD_SEQUENCE("brands", OPT, file_rule_t, brands, &file_brand, 0,
                         RULES_LIST_MAX),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_rule = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_rule_t, file_rule_fields),
};

static const cyaml_schema_field_t file_vip_fields[] = {
    OPT_LIST("segments", file_vip_t, segments),
    CYAML_FIELD_BOOL_PTR("head_review", OPT, file_vip_t, head_review),
    OPT_LIST("working_group", file_vip_t, working_group),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t file_rules_fields[] = {
    TEXT("version", file_rules_t, version),
    CYAML_FIELD_MAPPING_PTR("vip", OPT, file_rules_t, vip, file_vip_fields),
    CYAML_FIELD_BOOL_PTR("reassign_inactive", OPT, file_rules_t,
                         reassign_inactive),
    CYAML_FIELD_SEQUENCE("rules", CYAML_FLAG_POINTER, file_rules_t, rules,
                         &file_rule, 1, RULES_MAX),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_rules_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, file_rules_t, file_rules_fields),
};

/* ------------------------------------------------------------------ */
/* Lines, for messages                                                 */

typedef struct {
    int number;       /* 1-based */
    int indent;       /* spaces before the text */
    bool dash;        /* "- ..." */
    const char *text; /* after the indent and an optional "- " */
    size_t length;    /* bytes to the end of the line */
} rules_line_t;

typedef struct {
    const char *name;    /* file name for messages */
    rules_line_t *lines; /* lines that say something (owned) */
    size_t line_count;
    char *error; /* the caller's buffer */
    size_t error_size;
    bool failed; /* an error was written */
} rules_ctx_t;

static int rules_index_lines(rules_ctx_t *ctx, const char *text, size_t length)
{
    size_t cap = 64;
    ctx->lines = malloc(cap * sizeof(*ctx->lines));
    if (ctx->lines == NULL)
        return -1;
    const char *p = text, *end = text + length;
    int number = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        number++;
        int indent = 0;
        while (p + indent < eol && p[indent] == ' ')
            indent++;
        const char *q = p + indent;
        size_t len = (size_t)(eol - q);
        if (len > 0 && q[0] != '#' && q[0] != '\r') {
            if (ctx->line_count == cap) {
                cap *= 2;
                rules_line_t *grown = realloc(ctx->lines, cap * sizeof(*grown));
                if (grown == NULL)
                    return -1;
                ctx->lines = grown;
            }
            rules_line_t *l = &ctx->lines[ctx->line_count++];
            l->number = number;
            l->indent = indent;
            l->dash = q[0] == '-' && (len == 1 || q[1] == ' ');
            if (l->dash) {
                q++;
                len--;
                while (len > 0 && *q == ' ') {
                    q++;
                    len--;
                }
            }
            l->text = q;
            l->length = len;
        }
        p = eol < end ? eol + 1 : end;
    }
    return 0;
}

static bool rules_line_is_key(const rules_line_t *l, const char *key)
{
    size_t n = strlen(key);
    if (l->length < n + 1 || memcmp(l->text, key, n) != 0)
        return false;
    size_t at = n;
    while (at < l->length && l->text[at] == ' ')
        at++;
    return at < l->length && l->text[at] == ':';
}

/* Index range [*lo, *hi) of the lines of the rule entry `index`; false
 * when it cannot be found. */
static bool rules_entry_lines(const rules_ctx_t *ctx, size_t index, size_t *lo,
                              size_t *hi)
{
    size_t at = 0;
    while (at < ctx->line_count &&
           !(ctx->lines[at].indent == 0 &&
             rules_line_is_key(&ctx->lines[at], "rules")))
        at++;
    if (++at >= ctx->line_count)
        return false;
    int col = -1;
    size_t seen = 0;
    for (; at < ctx->line_count; at++) {
        const rules_line_t *l = &ctx->lines[at];
        if (col < 0 && l->dash)
            col = l->indent;
        if (col < 0 || l->indent < col || (l->indent == 0 && !l->dash))
            return false;
        if (l->dash && l->indent == col && seen++ == index)
            break;
    }
    if (at >= ctx->line_count)
        return false;
    size_t end = at + 1;
    while (end < ctx->line_count && ctx->lines[end].indent > col)
        end++;
    *lo = at;
    *hi = end;
    return true;
}

/* The line of rule `index` (0 when unknown), or of `key` inside it. */
static int rules_rule_line(const rules_ctx_t *ctx, size_t index,
                           const char *key)
{
    size_t lo, hi;
    if (!rules_entry_lines(ctx, index, &lo, &hi))
        return 0;
    if (key == NULL)
        return ctx->lines[lo].number;
    for (size_t i = lo; i < hi; i++)
        if (rules_line_is_key(&ctx->lines[i], key))
            return ctx->lines[i].number;
    /* written inline: "pool: {role: sales, tier: 4}" */
    size_t n = strlen(key);
    for (size_t i = lo; i < hi; i++) {
        const rules_line_t *l = &ctx->lines[i];
        const char *end = l->text + l->length;
        for (const char *p = l->text; p < end; p++) {
            if (*p != '{' && *p != ',')
                continue;
            const char *q = p + 1;
            while (q < end && *q == ' ')
                q++;
            if ((size_t)(end - q) > n && memcmp(q, key, n) == 0 && q[n] == ':')
                return l->number;
        }
    }
    return ctx->lines[lo].number;
}

/* The line of a top-level key, 0 when absent. */
static int rules_top_line(const rules_ctx_t *ctx, const char *key)
{
    for (size_t i = 0; i < ctx->line_count; i++)
        if (ctx->lines[i].indent == 0 && rules_line_is_key(&ctx->lines[i], key))
            return ctx->lines[i].number;
    return 0;
}

static int rules_error(rules_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "<file>: line N: <reason>" once (line 0 leaves it out). -1. */
static int rules_error(rules_ctx_t *ctx, int line, const char *fmt, ...)
{
    if (ctx->failed)
        return -1;
    ctx->failed = true;
    char reason[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(ctx->error, ctx->error_size, "%s: line %d: %s", ctx->name,
                 line, reason);
    else
        snprintf(ctx->error, ctx->error_size, "%s: %s", ctx->name, reason);
    return -1;
}

/* The first line at or after `from` holding `key:`, else `from`. */
static int rules_key_line_after(const rules_ctx_t *ctx, int from,
                                const char *key)
{
    for (size_t i = 0; i < ctx->line_count; i++)
        if (ctx->lines[i].number >= from &&
            rules_line_is_key(&ctx->lines[i], key))
            return ctx->lines[i].number;
    return from;
}

static int rules_yaml_fail(rules_ctx_t *ctx, const cv_yaml_error_t *e,
                           cyaml_err_t err)
{
    const char *m = e->message[0] ? e->message : cyaml_strerror(err);
    char names[300];
    const char *value = NULL;
    if (strncasecmp(m, "Invalid ENUM value: ", 20) == 0)
        value = m + 20;
    if (value != NULL && strcmp(e->field, "strategy") == 0) {
        cv_yaml_names(names, sizeof(names), strategy_names, STRATEGIES);
        return rules_error(ctx, e->line, "unknown strategy '%s' (%s)", value,
                           names);
    }
    if (value != NULL) {
        cv_yaml_names(names, sizeof(names), step_names, STEPS);
        return rules_error(ctx, e->line, "unknown region step '%s' (%s)", value,
                           names);
    }
    if (strncmp(m, "Unexpected key: ", 16) == 0)
        return rules_error(ctx, rules_key_line_after(ctx, e->line, m + 16),
                           "unknown key '%s'", m + 16);
    if (strncmp(m, "Missing required mapping field: ", 32) == 0)
        return rules_error(ctx, e->line, "'%s' is required here", m + 32);
    if (strncmp(m, "Mapping field already seen: ", 28) == 0)
        return rules_error(ctx, rules_key_line_after(ctx, e->line + 1, m + 28),
                           "key '%s' given twice", m + 28);
    char lowered[512];
    snprintf(lowered, sizeof(lowered), "%s", m);
    if (isupper((unsigned char)lowered[0]) &&
        !isupper((unsigned char)lowered[1]))
        lowered[0] = (char)tolower((unsigned char)lowered[0]);
    size_t len = strlen(lowered);
    if (len > 0 && lowered[len - 1] == '.')
        lowered[len - 1] = '\0';
    if (e->field[0] != '\0')
        return rules_error(ctx, e->line, "'%s': %s", e->field, lowered);
    return rules_error(ctx, e->line, "%s", lowered);
}

/* ------------------------------------------------------------------ */
/* The chain's memory: one list of blocks, freed together              */

static char *rules_strdup(cv_yaml_arena_t **blocks, const char *text)
{
    if (text == NULL)
        return NULL;
    return cv_yaml_strndup(blocks, text, strlen(text));
}

/* ------------------------------------------------------------------ */
/* Checking and copying                                                */

/* Printable text without control characters, 1..max bytes. */
static bool rules_text_ok(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return false;
    return true;
}

/* Copies a list of texts; -1 after an error at `line`. */
static int rules_list(rules_ctx_t *ctx, cv_yaml_arena_t **blocks, int line,
                      const char *key, char **items, unsigned count,
                      cv_routing_list_t *out)
{
    out->items = NULL;
    out->count = 0;
    if (count == 0)
        return 0;
    const char **copy = cv_yaml_alloc(blocks, count * sizeof(*copy));
    if (copy == NULL)
        return rules_error(ctx, line, "out of memory");
    for (unsigned i = 0; i < count; i++) {
        if (!rules_text_ok(items[i], RULES_TEXT_MAX))
            return rules_error(ctx, line,
                               "'%s': entry %u is empty, too long or holds "
                               "control characters",
                               key, i + 1);
        copy[i] = rules_strdup(blocks, items[i]);
        if (copy[i] == NULL)
            return rules_error(ctx, line, "out of memory");
    }
    out->items = copy;
    out->count = count;
    return 0;
}

/* A whole number in [min, max] from text; -1 after an error. */
static int rules_int(rules_ctx_t *ctx, int line, const char *key,
                     const char *text, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return rules_error(ctx, line,
                           "'%s': '%s' is not a whole number from "
                           "%ld to %ld",
                           key, text, min, max);
    *out = (int)v;
    return 0;
}

static int rules_amount(rules_ctx_t *ctx, int line, const char *key,
                        const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < 0)
        return rules_error(ctx, line, "'%s': '%s' is not an amount", key, text);
    *out = v;
    return 0;
}

static int rules_match(rules_ctx_t *ctx, cv_yaml_arena_t **blocks, size_t index,
                       const file_match_t *m, cv_routing_rule_t *rule)
{
    struct {
        const char *key;        /* the key */
        char **items;           /* its entries */
        unsigned count;         /* how many */
        cv_routing_list_t *out; /* where they go */
    } lists[] = {
        {"channel", m->channel, m->channel_count, &rule->channel},
        {"source", m->source, m->source_count, &rule->source},
        {"region", m->region, m->region_count, &rule->region},
        {"industry", m->industry, m->industry_count, &rule->industry},
        {"product", m->product, m->product_count, &rule->product},
        {"segment", m->segment, m->segment_count, &rule->segment},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (rules_list(ctx, blocks, rules_rule_line(ctx, index, lists[i].key),
                       lists[i].key, lists[i].items, lists[i].count,
                       lists[i].out) != 0)
            return -1;
    for (size_t i = 0; i < rule->segment.count; i++) {
        const char *s = rule->segment.items[i];
        if (strcmp(s, "A") != 0 && strcmp(s, "B") != 0 && strcmp(s, "C") != 0)
            return rules_error(ctx, rules_rule_line(ctx, index, "segment"),
                               "segment '%s' is not A, B or C", s);
    }
    for (unsigned i = 0; i < m->tier_count; i++) {
        int tier;
        if (rules_int(ctx, rules_rule_line(ctx, index, "tier"), "tier",
                      m->tier[i], 1, 3, &tier) != 0)
            return -1;
        rule->tiers |= 1u << tier;
    }
    if (m->budget_min != NULL) {
        if (rules_amount(ctx, rules_rule_line(ctx, index, "budget_min"),
                         "budget_min", m->budget_min, &rule->budget_min) != 0)
            return -1;
        rule->has_budget_min = true;
    }
    if (m->budget_max != NULL) {
        if (rules_amount(ctx, rules_rule_line(ctx, index, "budget_max"),
                         "budget_max", m->budget_max, &rule->budget_max) != 0)
            return -1;
        rule->has_budget_max = true;
    }
    if (rule->has_budget_min && rule->has_budget_max &&
        rule->budget_min > rule->budget_max)
        return rules_error(ctx, rules_rule_line(ctx, index, "budget_max"),
                           "budget_max is below budget_min");
    rule->returning_only = m->returning != NULL && *m->returning;
    return 0;
}

static int rules_rule(rules_ctx_t *ctx, cv_yaml_arena_t **blocks, size_t index,
                      const file_rule_t *in, cv_routing_rule_t *rule)
{
    int line = rules_rule_line(ctx, index, NULL);
    rule->line = line;
    if (!rules_text_ok(in->name, RULES_NAME_MAX))
        return rules_error(ctx, rules_rule_line(ctx, index, "name"),
                           "a rule name is 1 to %d printable bytes",
                           RULES_NAME_MAX);
    rule->name = rules_strdup(blocks, in->name);
    rule->strategy = in->strategy;
    if (rule->name == NULL)
        return rules_error(ctx, line, "out of memory");
    if (in->match != NULL && rules_match(ctx, blocks, index, in->match, rule))
        return -1;
    const file_pool_t *pool = in->pool;
    if (pool != NULL) {
        int pline = rules_rule_line(ctx, index, "pool");
        if ((pool->role != NULL &&
             !rules_text_ok(pool->role, RULES_TEXT_MAX)) ||
            (pool->team != NULL && !rules_text_ok(pool->team, RULES_TEXT_MAX)))
            return rules_error(ctx, pline,
                               "a pool's role and team are "
                               "1 to %d printable bytes",
                               RULES_TEXT_MAX);
        rule->role = rules_strdup(blocks, pool->role);
        rule->team = rules_strdup(blocks, pool->team);
        if (pool->tier != NULL &&
            rules_int(ctx, rules_rule_line(ctx, index, "tier"), "tier",
                      pool->tier, 1, 3, &rule->tier) != 0)
            return -1;
        if (rules_list(ctx, blocks, rules_rule_line(ctx, index, "staff"),
                       "staff", pool->staff, pool->staff_count,
                       &rule->staff) != 0)
            return -1;
    }
    if (rule->strategy == CV_ROUTING_MANUAL && rule->role == NULL &&
        rule->staff.count == 0)
        rule->role = "head"; /* static: the head of sales decides */
    if (in->claim_minutes != NULL) {
        if (rule->strategy != CV_ROUTING_FIRST_COME)
            return rules_error(ctx,
                               rules_rule_line(ctx, index, "claim_minutes"),
                               "claim_minutes is for first_come rules");
        if (rules_int(ctx, rules_rule_line(ctx, index, "claim_minutes"),
                      "claim_minutes", in->claim_minutes, 1, RULES_CLAIM_MAX,
                      &rule->claim_minutes) != 0)
            return -1;
    }
    if (in->task_kind != NULL) {
        const char *k = in->task_kind;
        bool ok = rules_text_ok(k, RULES_NAME_MAX);
        for (const char *p = k; ok && *p; p++)
            ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
                 *p == '_';
        if (!ok)
            return rules_error(ctx, rules_rule_line(ctx, index, "task_kind"),
                               "task_kind '%s' is not a name such as "
                               "send_rejection (a-z, 0-9, _)",
                               k);
        rule->task_kind = rules_strdup(blocks, k);
    }
    bool region = rule->strategy == CV_ROUTING_BY_REGION;
    if (!region &&
        (in->steps != NULL || in->federal_team != NULL || in->brands != NULL)) {
        const char *key = in->steps != NULL          ? "region_precedence"
                          : in->federal_team != NULL ? "federal_team"
                                                     : "brands";
        return rules_error(ctx, rules_rule_line(ctx, index, key),
                           "%s is for by_region rules", key);
    }
    if (in->steps != NULL) {
        for (unsigned i = 0; i < in->steps_count; i++) {
            for (unsigned j = 0; j < i; j++)
                if (in->steps[j] == in->steps[i])
                    return rules_error(
                        ctx, rules_rule_line(ctx, index, "region_precedence"),
                        "region step '%s' given twice",
                        cv_routing_region_step_name(in->steps[i]));
            rule->precedence[i] = in->steps[i];
        }
        rule->precedence_count = in->steps_count;
    } else if (region) {
        for (size_t i = 0; i < CV_ROUTING_REGION_STEPS; i++)
            rule->precedence[i] = (cv_routing_region_step_t)i;
        rule->precedence_count = CV_ROUTING_REGION_STEPS;
    }
    if (in->federal_team != NULL) {
        if (!rules_text_ok(in->federal_team, RULES_TEXT_MAX))
            return rules_error(ctx, rules_rule_line(ctx, index, "federal_team"),
                               "federal_team is 1 to %d printable bytes",
                               RULES_TEXT_MAX);
        rule->federal_team = rules_strdup(blocks, in->federal_team);
    }
    if (in->brands_count > 0) {
        cv_routing_brand_t *brands =
            cv_yaml_alloc(blocks, in->brands_count * sizeof(*brands));
        if (brands == NULL)
            return rules_error(ctx, line, "out of memory");
        for (unsigned i = 0; i < in->brands_count; i++) {
            if (!rules_text_ok(in->brands[i].brand, RULES_TEXT_MAX) ||
                !rules_text_ok(in->brands[i].team, RULES_TEXT_MAX))
                return rules_error(ctx, rules_rule_line(ctx, index, "brands"),
                                   "brand %u: brand and team are 1 to %d "
                                   "printable bytes",
                                   i + 1, RULES_TEXT_MAX);
            brands[i].brand = rules_strdup(blocks, in->brands[i].brand);
            brands[i].team = rules_strdup(blocks, in->brands[i].team);
        }
        rule->brands = brands;
        rule->brand_count = in->brands_count;
    }
    if (region) {
        for (size_t i = 0; i < rule->precedence_count; i++)
            if (rule->precedence[i] == CV_ROUTING_REGION_FEDERAL &&
                rule->federal_team == NULL && in->steps != NULL)
                return rules_error(
                    ctx, rules_rule_line(ctx, index, "region_precedence"),
                    "the federal step needs federal_team");
    }
    if (rule->strategy == CV_ROUTING_PREVIOUS_OWNER && pool != NULL)
        return rules_error(ctx, rules_rule_line(ctx, index, "pool"),
                           "previous_owner takes no pool: it is the previous "
                           "owner");
    return 0;
}

static int rules_build(rules_ctx_t *ctx, cv_yaml_arena_t **blocks,
                       const file_rules_t *in, cv_routing_rules_t *out)
{
    if (!rules_text_ok(in->version, RULES_NAME_MAX))
        return rules_error(ctx, rules_top_line(ctx, "version"),
                           "version is 1 to %d printable bytes",
                           RULES_NAME_MAX);
    out->version = rules_strdup(blocks, in->version);
    out->reassign_inactive =
        in->reassign_inactive == NULL || *in->reassign_inactive;
    if (in->vip != NULL) {
        int line = rules_top_line(ctx, "vip");
        if (rules_list(ctx, blocks, line, "segments", in->vip->segments,
                       in->vip->segments_count, &out->vip_segments) != 0 ||
            rules_list(ctx, blocks, line, "working_group",
                       in->vip->working_group, in->vip->working_group_count,
                       &out->working_group) != 0)
            return -1;
        out->vip_head_review =
            in->vip->head_review != NULL && *in->vip->head_review;
    }
    cv_routing_rule_t *rules =
        cv_yaml_alloc(blocks, in->rules_count * sizeof(*rules));
    if (out->version == NULL || rules == NULL)
        return rules_error(ctx, 0, "out of memory");
    for (size_t i = 0; i < in->rules_count; i++) {
        if (rules_rule(ctx, blocks, i, &in->rules[i], &rules[i]) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(rules[j].name, rules[i].name) == 0)
                return rules_error(ctx, rules_rule_line(ctx, i, "name"),
                                   "rule name '%s' is used twice (first on "
                                   "line %d)",
                                   rules[i].name, rules[j].line);
    }
    out->rules = rules;
    out->rule_count = in->rules_count;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

cv_routing_rules_t *cv_routing_rules_parse(const char *name, const char *text,
                                           size_t length, char *error,
                                           size_t size)
{
    char spare[8];
    if (error == NULL || size == 0) {
        error = spare;
        size = sizeof(spare);
    }
    error[0] = '\0';
    rules_ctx_t ctx = {
        .name = name != NULL ? name : "routing rules",
        .error = error,
        .error_size = size,
    };
    cv_yaml_error_t yaml_error = {0};
    cyaml_config_t config = {
        .log_fn = cv_yaml_log,
        .log_ctx = &yaml_error,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_DEFAULT,
    };
    file_rules_t *file = NULL;
    cv_routing_rules_t *rules = NULL;
    cv_yaml_arena_t *blocks = NULL;
    if (rules_index_lines(&ctx, text, length) != 0) {
        rules_error(&ctx, 0, "out of memory");
        goto out;
    }
    if (length == 0 || ctx.line_count == 0) {
        rules_error(&ctx, 0, "the file is empty");
        goto out;
    }
    cyaml_err_t err =
        cyaml_load_data((const uint8_t *)text, length, &config,
                        &file_rules_schema, (cyaml_data_t **)&file, NULL);
    if (err != CYAML_OK) {
        rules_yaml_fail(&ctx, &yaml_error, err);
        file = NULL; /* libcyaml frees what it loaded on error */
        goto out;
    }
    if (file == NULL) {
        rules_error(&ctx, 0, "the file is empty");
        goto out;
    }
    rules = cv_yaml_alloc(&blocks, sizeof(*rules));
    if (rules == NULL) {
        rules_error(&ctx, 0, "out of memory");
        goto out;
    }
    if (rules_build(&ctx, &blocks, file, rules) != 0) {
        rules = NULL;
        goto out;
    }
    rules->memory = blocks;
    blocks = NULL;
out:
    if (file != NULL)
        cyaml_free(&config, &file_rules_schema, file, 0);
    cv_yaml_arena_free(blocks);
    free(ctx.lines);
    return rules;
}

cv_routing_rules_t *cv_routing_rules_load(const char *path, char *error,
                                          size_t size)
{
    size_t n = 0;
    char *text = cv_textfile_read(path, RULES_FILE_MAX, &n, error, size);
    if (text == NULL)
        return NULL;
    cv_routing_rules_t *rules = cv_routing_rules_parse(path, text, n, error,
                                                       size);
    free(text);
    return rules;
}

void cv_routing_rules_free(cv_routing_rules_t **rules_p)
{
    if (rules_p == NULL || *rules_p == NULL)
        return;
    cv_yaml_arena_free((*rules_p)->memory);
    *rules_p = NULL;
}

static pthread_once_t rules_builtin_once = PTHREAD_ONCE_INIT;
static cv_routing_rules_t *rules_builtin_chain;

static void rules_builtin_load(void)
{
    char error[700];
    rules_builtin_chain = cv_routing_rules_parse(
        "built-in deploy/routing-rules.yaml", cv_routing_rules_default_yaml,
        strlen(cv_routing_rules_default_yaml), error, sizeof(error));
    if (rules_builtin_chain == NULL)
        cv_error("cannot use the built-in routing rules: %s", error);
}

const cv_routing_rules_t *cv_routing_rules_builtin(void)
{
    pthread_once(&rules_builtin_once, rules_builtin_load);
    return rules_builtin_chain;
}

const char *cv_routing_rules_builtin_text(void)
{
    return cv_routing_rules_default_yaml;
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */

bool cv_routing_list_has(const cv_routing_list_t *list, const char *value)
{
    if (value == NULL)
        return false;
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->items[i], value) == 0)
            return true;
    return false;
}

int cv_routing_lead_tier(const char *channel, const char *previous_result)
{
    if (channel != NULL && strcmp(channel, "cold") == 0)
        return 1;
    if (previous_result != NULL && strcmp(previous_result, "won") == 0)
        return 3;
    return 2;
}

static bool why_set(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool why_set(char *why, size_t size, const char *fmt, ...)
{
    if (why != NULL && size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Writes the pieces one after another into why, cut as snprintf cuts:
 * the chain asks every rule about every lead, and most say why not. */
static bool why_join(char *why, size_t size, const char *const *parts,
                     size_t count)
{
    if (why == NULL || size == 0)
        return false;
    size_t used = 0;
    for (size_t i = 0; i < count && used + 1 < size; i++) {
        size_t n = strlen(parts[i]);
        if (n > size - 1 - used)
            n = size - 1 - used;
        memcpy(why + used, parts[i], n);
        used += n;
    }
    why[used] = '\0';
    return false;
}

bool cv_routing_rule_matches(const cv_routing_rule_t *rule,
                             const cv_routing_lead_t *lead, char *why,
                             size_t why_size)
{
    const struct {
        const char *key;               /* for the reason */
        const cv_routing_list_t *list; /* the rule's values */
        const char *value;             /* the lead's */
    } lists[] = {
        {"channel", &rule->channel, lead->channel},
        {"source", &rule->source, lead->source},
        {"region", &rule->region, lead->region},
        {"industry", &rule->industry, lead->industry},
        {"product", &rule->product, lead->product},
        {"segment", &rule->segment, lead->segment},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (lists[i].list->count > 0 &&
            !cv_routing_list_has(lists[i].list, lists[i].value))
            return why_join(why, why_size,
                            (const char *const[]){
                                lists[i].key, " '",
                                lists[i].value ? lists[i].value : "none",
                                "' not listed"},
                            4);
    if (rule->tiers != 0 && (lead->tier < 1 || lead->tier > 3 ||
                             (rule->tiers & (1u << lead->tier)) == 0)) {
        char num[CV_JSONW_INT_SIZE];
        cv_jsonw_format_int(num, lead->tier);
        return why_join(why, why_size,
                        (const char *const[]){"tier ", num, " does not fit"},
                        3);
    }
    if ((rule->has_budget_min || rule->has_budget_max) && !lead->has_budget)
        return why_join(why, why_size,
                        (const char *const[]){"no budget for the budget range"},
                        1);
    if (rule->has_budget_min && lead->budget < rule->budget_min)
        return why_set(why, why_size, "budget %.0f below %.0f", lead->budget,
                       rule->budget_min);
    if (rule->has_budget_max && lead->budget > rule->budget_max)
        return why_set(why, why_size, "budget %.0f above %.0f", lead->budget,
                       rule->budget_max);
    if ((rule->returning_only || rule->strategy == CV_ROUTING_PREVIOUS_OWNER) &&
        (lead->previous_owner == NULL || lead->previous_owner[0] == '\0'))
        return why_join(why, why_size,
                        (const char *const[]){"not a returning client"}, 1);
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "matches");
    return true;
}

static bool rules_has_text(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int cv_routing_region_key(const cv_routing_rule_t *rule,
                          const cv_routing_lead_t *lead, const char **team,
                          const char **region)
{
    *team = NULL;
    *region = NULL;
    for (size_t i = 0; i < rule->precedence_count; i++) {
        switch (rule->precedence[i]) {
        case CV_ROUTING_REGION_FEDERAL:
            if (lead->federal && rule->federal_team != NULL) {
                *team = rule->federal_team;
                return CV_ROUTING_REGION_FEDERAL;
            }
            break;
        case CV_ROUTING_REGION_BRAND:
            if (!rules_has_text(lead->brand))
                break;
            for (size_t b = 0; b < rule->brand_count; b++)
                if (strcasecmp(rule->brands[b].brand, lead->brand) == 0) {
                    *team = rule->brands[b].team;
                    return CV_ROUTING_REGION_BRAND;
                }
            break; /* a brand the rule does not franchise: by region */
        case CV_ROUTING_REGION_OPERATING:
            if (rules_has_text(lead->operating_region)) {
                *region = lead->operating_region;
                return CV_ROUTING_REGION_OPERATING;
            }
            break;
        case CV_ROUTING_REGION_LEAD:
            if (rules_has_text(lead->region)) {
                *region = lead->region;
                return CV_ROUTING_REGION_LEAD;
            }
            break;
        case CV_ROUTING_REGION_REGISTERED:
            if (rules_has_text(lead->registered_region)) {
                *region = lead->registered_region;
                return CV_ROUTING_REGION_REGISTERED;
            }
            break;
        case CV_ROUTING_REGION_STEPS:
            break;
        }
    }
    return -1;
}

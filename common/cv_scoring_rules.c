/* cv_scoring_rules: load a scoring rules file into a checked model.
 *
 * Two steps. libcyaml reads the YAML into "file" structs that mirror it
 * (numbers kept as text, because libcyaml 1.3 reads "1.5" as the int 1 and
 * "12abc" as the float 12) and reports its own errors with a backtrace of
 * lines; then every value is checked and copied into the model, and an
 * error found there is placed on its line by following the same path
 * (blocks -> 2nd entry -> parameters -> ...) through the text. */
#include "cv_scoring_rules.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"
#include "cv_scoring.h"
#include "cv_textfile.h"
#include "cv_yaml.h"

/* The built-in rules: deploy/scoring-rules.yaml as it was when this file
 * was compiled (the assembler reads it; make runs from the project root).
 * test_scoring_rules checks that the file and this copy are the same. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        "cv_scoring_rules_default_yaml:\n"
        ".incbin \"deploy/scoring-rules.yaml\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char cv_scoring_rules_default_yaml[];

#define RULES_NAME_MAX 64     /* bytes in a rule or parameter name */
#define RULES_TEXT_MAX 1000   /* bytes in a reason or description */
#define RULES_LIST_MAX 100000 /* entries in one list */

/* ------------------------------------------------------------------ */
/* Names                                                               */

static const cyaml_strval_t rules_kind_names[] = {
    {"budget_bands", CV_SCORING_RULE_BUDGET_BANDS},
    {"in_list", CV_SCORING_RULE_IN_LIST},
    {"channel_warmth", CV_SCORING_RULE_CHANNEL_WARMTH},
    {"message_length", CV_SCORING_RULE_MESSAGE_LENGTH},
    {"fields_present", CV_SCORING_RULE_FIELDS_PRESENT},
    {"budget_below", CV_SCORING_RULE_BUDGET_BELOW},
    {"blocked_domain", CV_SCORING_RULE_BLOCKED_DOMAIN},
    {"blocked_inn", CV_SCORING_RULE_BLOCKED_INN},
    {"competitor", CV_SCORING_RULE_COMPETITOR},
    {"spam_markers", CV_SCORING_RULE_SPAM_MARKERS},
    {"too_many_links", CV_SCORING_RULE_TOO_MANY_LINKS},
};
#define RULES_KINDS (sizeof(rules_kind_names) / sizeof(rules_kind_names[0]))

static const cyaml_strval_t rules_field_names[] = {
    {"name", CV_SCORING_FIELD_NAME},
    {"company", CV_SCORING_FIELD_COMPANY},
    {"phone", CV_SCORING_FIELD_PHONE},
    {"email", CV_SCORING_FIELD_EMAIL},
    {"telegram", CV_SCORING_FIELD_TELEGRAM},
    {"message", CV_SCORING_FIELD_MESSAGE},
    {"channel", CV_SCORING_FIELD_CHANNEL},
    {"source", CV_SCORING_FIELD_SOURCE},
    {"region", CV_SCORING_FIELD_REGION},
    {"industry", CV_SCORING_FIELD_INDUSTRY},
    {"product", CV_SCORING_FIELD_PRODUCT},
    {"inn", CV_SCORING_FIELD_INN},
    {"domain", CV_SCORING_FIELD_DOMAIN},
    {"timezone", CV_SCORING_FIELD_TIMEZONE},
    {"utm_source", CV_SCORING_FIELD_UTM_SOURCE},
    {"budget", CV_SCORING_FIELD_BUDGET},
    {"contact", CV_SCORING_FIELD_CONTACT},
};
#define RULES_FIELDS (sizeof(rules_field_names) / sizeof(rules_field_names[0]))

static const char *const rules_placeholder_names[CV_SCORING_PH_COUNT_OF] = {
    [CV_SCORING_PH_BUDGET] = "budget",     [CV_SCORING_PH_AMOUNT] = "amount",
    [CV_SCORING_PH_CURRENCY] = "currency", [CV_SCORING_PH_RUB] = "rub",
    [CV_SCORING_PH_FROM] = "from",         [CV_SCORING_PH_TO] = "to",
    [CV_SCORING_PH_VALUE] = "value",       [CV_SCORING_PH_FIELD] = "field",
    [CV_SCORING_PH_CHANNEL] = "channel",   [CV_SCORING_PH_CHARS] = "chars",
    [CV_SCORING_PH_MIN] = "min",           [CV_SCORING_PH_MISSING] = "missing",
    [CV_SCORING_PH_PRESENT] = "present",   [CV_SCORING_PH_MATCH] = "match",
    [CV_SCORING_PH_DOMAIN] = "domain",     [CV_SCORING_PH_LIMIT] = "limit",
    [CV_SCORING_PH_COUNT] = "count",
};

const char *cv_scoring_rule_kind_name(cv_scoring_rule_kind_t kind)
{
    for (size_t i = 0; i < RULES_KINDS; i++)
        if (rules_kind_names[i].val == (int64_t)kind)
            return rules_kind_names[i].str;
    return "unknown";
}

const char *cv_scoring_field_name(cv_scoring_field_t field)
{
    for (size_t i = 0; i < RULES_FIELDS; i++)
        if (rules_field_names[i].val == (int64_t)field)
            return rules_field_names[i].str;
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* The file as libcyaml reads it                                       */

typedef struct {
    char *value;  /* "-1", "0" or "1" */
    char *reason; /* template */
} file_outcome_t;

typedef struct {
    char *from_rub; /* number */
    char *value;    /* "-1", "0" or "1" */
    char *reason;   /* template */
} file_band_t;

typedef struct {
    char *channel; /* channel name */
    char *value;   /* "-1", "0" or "1" */
    char *reason;  /* template */
} file_channel_t;

typedef struct {
    char *code; /* ISO 4217 */
    char *rub;  /* number */
} file_rate_t;

typedef struct {
    char *name;                  /* name */
    cv_scoring_rule_kind_t kind; /* kind */
    char *description;           /* description */
    cv_scoring_field_t *field;   /* field */
    char **list;                 /* list */
    unsigned list_count;
    cv_scoring_field_t *fields; /* fields */
    unsigned fields_count;
    file_band_t *bands; /* bands */
    unsigned bands_count;
    file_channel_t *channels; /* channels */
    unsigned channels_count;
    char *min_chars;                  /* min_chars */
    char *min_rub;                    /* min_rub */
    char *max;                        /* max */
    file_outcome_t *missing;          /* missing */
    file_outcome_t *unknown_currency; /* unknown_currency */
    file_outcome_t *listed;           /* listed */
    file_outcome_t *unlisted;         /* unlisted */
    file_outcome_t *other;            /* other */
    file_outcome_t *shorter;          /* short */
    file_outcome_t *longer;           /* long */
    file_outcome_t *all;              /* all */
    file_outcome_t *one_missing;      /* one_missing */
    file_outcome_t *more_missing;     /* more_missing */
    file_outcome_t *none;             /* none */
    char *reason;                     /* reason (knock-out rules) */
} file_rule_t;

typedef struct {
    char *name;         /* name */
    char *description;  /* description */
    file_rule_t *rules; /* rules */
    unsigned rules_count;
} file_param_t;

typedef struct {
    char *name;               /* name */
    char *description;        /* description */
    file_param_t *parameters; /* parameters */
    unsigned parameters_count;
} file_block_t;

typedef struct {
    char *c_max; /* c_max */
    char *a_min; /* a_min */
} file_segments_t;

typedef struct {
    char *version;             /* version */
    char *unjudged_reason;     /* unjudged_reason */
    file_segments_t *segments; /* segments */
    file_rate_t *currencies;   /* currencies */
    unsigned currencies_count;
    file_rule_t *knockout; /* knockout */
    unsigned knockout_count;
    file_block_t *blocks; /* blocks */
    unsigned blocks_count;
} file_rules_t;

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define TEXT(key, type, member)                                                \
    CYAML_FIELD_STRING_PTR(key, CYAML_FLAG_POINTER, type, member, 0,           \
                           CYAML_UNLIMITED)
#define OPT_TEXT(key, type, member)                                            \
    CYAML_FIELD_STRING_PTR(key, OPT, type, member, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t file_string = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_value_t file_field = {
    CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, cv_scoring_field_t, rules_field_names,
                     RULES_FIELDS),
};

static const cyaml_schema_field_t file_outcome_fields[] = {
    TEXT("value", file_outcome_t, value),
    TEXT("reason", file_outcome_t, reason),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t file_band_fields[] = {
    TEXT("from_rub", file_band_t, from_rub),
    TEXT("value", file_band_t, value),
    TEXT("reason", file_band_t, reason),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_band = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_band_t, file_band_fields),
};

static const cyaml_schema_field_t file_channel_fields[] = {
    TEXT("channel", file_channel_t, channel),
    TEXT("value", file_channel_t, value),
    TEXT("reason", file_channel_t, reason),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_channel = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_channel_t,
                        file_channel_fields),
};

static const cyaml_schema_field_t file_rate_fields[] = {
    TEXT("code", file_rate_t, code),
    TEXT("rub", file_rate_t, rub),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_rate = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_rate_t, file_rate_fields),
};

#define OUTCOME(key, member)                                                   \
    CYAML_FIELD_MAPPING_PTR(key, OPT, file_rule_t, member, file_outcome_fields)

static const cyaml_schema_field_t file_rule_fields[] = {
    TEXT("name", file_rule_t, name),
    CYAML_FIELD_ENUM("kind", CYAML_FLAG_STRICT, file_rule_t, kind,
                     rules_kind_names, RULES_KINDS),
    OPT_TEXT("description", file_rule_t, description),
    CYAML_FIELD_ENUM_PTR("field", OPT | CYAML_FLAG_STRICT, file_rule_t, field,
                         rules_field_names, RULES_FIELDS),
    CYAML_FIELD_SEQUENCE("list", OPT, file_rule_t, list, &file_string, 0,
                         RULES_LIST_MAX),
    CYAML_FIELD_SEQUENCE("fields", OPT, file_rule_t, fields, &file_field, 1,
                         CV_SCORING_FIELD_COUNT),
    CYAML_FIELD_SEQUENCE("bands", OPT, file_rule_t, bands, &file_band, 1, 100),
    CYAML_FIELD_SEQUENCE("channels", OPT, file_rule_t, channels, &file_channel,
                         1, 100),
    OPT_TEXT("min_chars", file_rule_t, min_chars),
    OPT_TEXT("min_rub", file_rule_t, min_rub),
    OPT_TEXT("max", file_rule_t, max),
    OUTCOME("missing", missing),
    OUTCOME("unknown_currency", unknown_currency),
    OUTCOME("listed", listed),
    OUTCOME("unlisted", unlisted),
    OUTCOME("other", other),
    OUTCOME("short", shorter),
    OUTCOME("long", longer),
    OUTCOME("all", all),
    OUTCOME("one_missing", one_missing),
    OUTCOME("more_missing", more_missing),
    OUTCOME("none", none),
    OPT_TEXT("reason", file_rule_t, reason),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_rule = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_rule_t, file_rule_fields),
};

static const cyaml_schema_field_t file_param_fields[] = {
    TEXT("name", file_param_t, name),
    OPT_TEXT("description", file_param_t, description),
    CYAML_FIELD_SEQUENCE("rules", OPT, file_param_t, rules, &file_rule, 0, 100),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_param = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_param_t, file_param_fields),
};

static const cyaml_schema_field_t file_block_fields[] = {
    TEXT("name", file_block_t, name),
    OPT_TEXT("description", file_block_t, description),
    CYAML_FIELD_SEQUENCE("parameters", CYAML_FLAG_POINTER, file_block_t,
                         parameters, &file_param, CV_SCORING_BLOCK_PARAMS,
                         CV_SCORING_BLOCK_PARAMS),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_block = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_block_t, file_block_fields),
};

static const cyaml_schema_field_t file_segments_fields[] = {
    TEXT("c_max", file_segments_t, c_max),
    TEXT("a_min", file_segments_t, a_min),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t file_rules_fields[] = {
    TEXT("version", file_rules_t, version),
    OPT_TEXT("unjudged_reason", file_rules_t, unjudged_reason),
    CYAML_FIELD_MAPPING_PTR("segments", OPT, file_rules_t, segments,
                            file_segments_fields),
    CYAML_FIELD_SEQUENCE("currencies", OPT, file_rules_t, currencies,
                         &file_rate, 0, 200),
    CYAML_FIELD_SEQUENCE("knockout", OPT, file_rules_t, knockout, &file_rule, 0,
                         100),
    CYAML_FIELD_SEQUENCE("blocks", CYAML_FLAG_POINTER, file_rules_t, blocks,
                         &file_block, CV_SCORING_BLOCK_COUNT,
                         CV_SCORING_BLOCK_COUNT),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t file_rules_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, file_rules_t, file_rules_fields),
};

/* ------------------------------------------------------------------ */
/* Where an error is: lines of the text, and paths through them        */

/* One line that says something (not blank, not only a comment). */
typedef struct {
    int number;       /* 1-based line number */
    int indent;       /* spaces before the text */
    int content;      /* column of the content: after "- " on a dash line */
    bool dash;        /* a sequence entry ("- ...") */
    const char *text; /* the line from its content column on */
    size_t length;    /* bytes to the end of the line */
} rules_line_t;

/* A step of a path: a mapping key, or (key NULL) a sequence entry. */
typedef struct {
    const char *key; /* mapping key, or NULL */
    int index;       /* 0-based entry when key is NULL */
} rules_step_t;

#define RULES_DEPTH 12 /* steps in the deepest path */

typedef struct {
    const char *name;    /* file name for messages */
    const char *text;    /* the whole text */
    size_t length;       /* its bytes */
    rules_line_t *lines; /* lines that say something (owned) */
    size_t line_count;
    rules_step_t path[RULES_DEPTH]; /* where the check is now */
    int depth;                      /* steps used */
    char *error;                    /* the caller's buffer */
    size_t error_size;
    bool failed; /* an error was written */
} rules_ctx_t;

static int rules_index_lines(rules_ctx_t *ctx)
{
    size_t cap = 64;
    ctx->lines = malloc(cap * sizeof(*ctx->lines));
    if (ctx->lines == NULL)
        return -1;
    const char *p = ctx->text;
    const char *end = ctx->text + ctx->length;
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
        while (len > 0 && (q[len - 1] == ' ' || q[len - 1] == '\r'))
            len--;
        bool blank = len == 0 || q[0] == '#' ||
                     (len == 3 &&
                      (memcmp(q, "---", 3) == 0 || memcmp(q, "...", 3) == 0));
        if (!blank) {
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
            int content = indent;
            if (l->dash) {
                content++;
                while ((size_t)(content - indent) < len && p[content] == ' ')
                    content++;
            }
            l->content = content;
            l->text = p + content;
            l->length = (size_t)(eol - (p + content));
        }
        p = eol < end ? eol + 1 : end;
    }
    return 0;
}

/* True when the line holds `key:` at column `col`. */
static bool rules_line_has_key(const rules_line_t *l, int col, const char *key)
{
    if (l->content != col || (l->dash ? false : l->indent != col))
        return false;
    size_t n = strlen(key);
    if (l->length < n + 1 || memcmp(l->text, key, n) != 0)
        return false;
    size_t at = n;
    while (at < l->length && l->text[at] == ' ')
        at++;
    return at < l->length && l->text[at] == ':';
}

/* The line of the deepest step of `path` that can be found; 0 when not
 * even the first can. Follows the block style of YAML that the rules
 * files use; a value written inline ([a, b] or {k: v}) ends the search on
 * its key's line. */
static int rules_locate(const rules_ctx_t *ctx, const rules_step_t *path,
                        int depth)
{
    size_t lo = 0, hi = ctx->line_count;
    int col = 0;       /* column of the keys of the current mapping */
    bool item = false; /* lines[lo] is the current entry's dash line */
    int found = 0;
    if (hi > 0)
        col = ctx->lines[0].indent;
    for (int s = 0; s < depth; s++) {
        if (lo >= hi)
            break;
        if (path[s].key != NULL) {
            if (s > 0 && !item)
                col = ctx->lines[lo].indent;
            size_t at = lo;
            while (at < hi &&
                   !rules_line_has_key(&ctx->lines[at], col, path[s].key))
                at++;
            if (at == hi)
                break;
            found = ctx->lines[at].number;
            /* the value: deeper lines, or entries written at the key's
             * own column ("key:\n- a") */
            size_t next = at + 1;
            while (next < hi &&
                   (ctx->lines[next].indent > col ||
                    (ctx->lines[next].indent == col && ctx->lines[next].dash)))
                next++;
            lo = at + 1;
            hi = next;
            item = false;
        } else {
            size_t at = lo;
            while (at < hi && !ctx->lines[at].dash)
                at++;
            if (at == hi)
                break;
            int seq_col = ctx->lines[at].indent;
            int seen = -1;
            for (; at < hi; at++) {
                const rules_line_t *l = &ctx->lines[at];
                if (l->indent < seq_col)
                    break;
                if (l->indent == seq_col && l->dash && ++seen == path[s].index)
                    break;
            }
            if (at >= hi || seen != path[s].index)
                break;
            found = ctx->lines[at].number;
            size_t next = at + 1;
            while (next < hi && ctx->lines[next].indent > seq_col)
                next++;
            lo = at;
            hi = next;
            col = ctx->lines[at].content;
            item = true;
        }
    }
    return found;
}

/* Writes the error once: "<file>: line N: <reason>". `line` 0 leaves the
 * line out. Returns -1. */
static int rules_error_at(rules_ctx_t *ctx, int line, const char *fmt,
                          va_list ap)
{
    if (ctx->failed)
        return -1;
    ctx->failed = true;
    char reason[600];
    vsnprintf(reason, sizeof(reason), fmt, ap);
    if (line > 0)
        snprintf(ctx->error, ctx->error_size, "%s: line %d: %s", ctx->name,
                 line, reason);
    else
        snprintf(ctx->error, ctx->error_size, "%s: %s", ctx->name, reason);
    return -1;
}

static int rules_error_at_line(rules_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rules_error_at_line(rules_ctx_t *ctx, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rules_error_at(ctx, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* An error at the current path, extended by `key` when not NULL. */
static int rules_fail(rules_ctx_t *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rules_fail(rules_ctx_t *ctx, const char *key, const char *fmt, ...)
{
    rules_step_t path[RULES_DEPTH + 1];
    int depth = ctx->depth;
    memcpy(path, ctx->path, sizeof(path[0]) * (size_t)depth);
    if (key != NULL)
        path[depth++] = (rules_step_t){key, 0};
    int line = rules_locate(ctx, path, depth);
    va_list ap;
    va_start(ap, fmt);
    rules_error_at(ctx, line, fmt, ap);
    va_end(ap);
    return -1;
}

static void rules_push_key(rules_ctx_t *ctx, const char *key)
{
    if (ctx->depth < RULES_DEPTH)
        ctx->path[ctx->depth] = (rules_step_t){key, 0};
    ctx->depth++;
}

static void rules_push_index(rules_ctx_t *ctx, int index)
{
    if (ctx->depth < RULES_DEPTH)
        ctx->path[ctx->depth] = (rules_step_t){NULL, index};
    ctx->depth++;
}

static void rules_pop(rules_ctx_t *ctx, int steps)
{
    ctx->depth -= steps;
}

/* ------------------------------------------------------------------ */
/* libcyaml's errors                                                   */

/* What libcyaml said: the first message and the innermost line of its
 * backtrace. */

/* The first line at or after `from` that holds `key:`, else `from`. */
static int rules_key_line_after(const rules_ctx_t *ctx, int from,
                                const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < ctx->line_count; i++) {
        const rules_line_t *l = &ctx->lines[i];
        if (l->number < from || l->length < n + 1 ||
            memcmp(l->text, key, n) != 0)
            continue;
        size_t at = n;
        while (at < l->length && l->text[at] == ' ')
            at++;
        if (at < l->length && l->text[at] == ':')
            return l->number;
    }
    return from;
}

/* The last line at or before `from` that holds `key:`, else `from`
 * (libcyaml places a list's errors on its first entry, not its key). */
static int rules_key_line_before(const rules_ctx_t *ctx, int from,
                                 const char *key)
{
    size_t n = strlen(key);
    int found = from;
    for (size_t i = 0; i < ctx->line_count; i++) {
        const rules_line_t *l = &ctx->lines[i];
        if (l->number > from)
            break;
        if (l->length < n + 1 || memcmp(l->text, key, n) != 0)
            continue;
        size_t at = n;
        while (at < l->length && l->text[at] == ' ')
            at++;
        if (at < l->length && l->text[at] == ':')
            found = l->number;
    }
    return found;
}

/* Lists the names of a table for a message: "a, b or c". */
/* Turns libcyaml's message into the house's words, with a line. */
static int rules_yaml_fail(rules_ctx_t *ctx, const cv_yaml_error_t *e,
                           cyaml_err_t err)
{
    const char *m = e->message[0] ? e->message : cyaml_strerror(err);
    int line = e->line;
    char names[400];
    const char *value = NULL;
    if (strncmp(m, "Invalid ENUM value: ", 20) == 0)
        value = m + 20;
    else if (strncmp(m, "Invalid enum value: ", 20) == 0)
        value = m + 20;
    if (value != NULL && strcmp(e->field, "kind") == 0) {
        cv_yaml_names(names, sizeof(names), rules_kind_names, RULES_KINDS);
        return rules_error_at_line(ctx, line, "unknown rule kind '%s' (%s)",
                                   value, names);
    }
    if (value != NULL) {
        cv_yaml_names(names, sizeof(names), rules_field_names, RULES_FIELDS);
        return rules_error_at_line(ctx, line, "unknown lead field '%s' (%s)",
                                   value, names);
    }
    if (strncmp(m, "Unexpected key: ", 16) == 0) {
        line = rules_key_line_after(ctx, line, m + 16);
        return rules_error_at_line(ctx, line, "unknown key '%s'", m + 16);
    }
    if (strncmp(m, "Missing required mapping field: ", 32) == 0)
        return rules_error_at_line(ctx, line, "'%s' is required here", m + 32);
    if (strncmp(m, "Mapping field already seen: ", 28) == 0) {
        line = rules_key_line_after(ctx, line + 1, m + 28);
        return rules_error_at_line(ctx, line, "key '%s' given twice", m + 28);
    }
    if (strncmp(m, "Insufficient entries", 20) == 0 ||
        strncmp(m, "Excessive entries", 17) == 0 ||
        strncmp(m, "Too many entries", 16) == 0) {
        const char *what = e->field[0] ? e->field : "a list";
        if (e->field_line > 0 && e->field[0] != '\0')
            line = rules_key_line_before(ctx, e->field_line, e->field);
        if (strcmp(what, "blocks") == 0)
            return rules_error_at_line(ctx, line,
                                       "the model has exactly %d blocks",
                                       CV_SCORING_BLOCK_COUNT);
        if (strcmp(what, "parameters") == 0)
            return rules_error_at_line(ctx, line,
                                       "a block has exactly %d parameters",
                                       CV_SCORING_BLOCK_PARAMS);
        return rules_error_at_line(ctx, line, "'%s': %s", what, m);
    }
    char lowered[512];
    snprintf(lowered, sizeof(lowered), "%s", m);
    if (isupper((unsigned char)lowered[0]) &&
        !isupper((unsigned char)lowered[1]))
        lowered[0] = (char)tolower((unsigned char)lowered[0]);
    size_t len = strlen(lowered);
    if (len > 0 && lowered[len - 1] == '.')
        lowered[len - 1] = '\0';
    if (e->field[0] != '\0')
        return rules_error_at_line(ctx, line, "'%s': %s", e->field, lowered);
    return rules_error_at_line(ctx, line, "%s", lowered);
}

/* ------------------------------------------------------------------ */
/* The model's memory: one list of chunks, freed together              */


/* ------------------------------------------------------------------ */
/* Checking values                                                     */

/* What a rule kind takes: settings (S_), outcomes (O_). A list is never
 * required: libcyaml reads "list: []" as no list, and both mean empty. */
enum {
    S_FIELD = 1u << 0,
    S_LIST = 1u << 1,
    S_FIELDS = 1u << 2,
    S_BANDS = 1u << 3,
    S_CHANNELS = 1u << 4,
    S_MIN_CHARS = 1u << 5,
    S_MIN_RUB = 1u << 6,
    S_MAX = 1u << 7,
    S_REASON = 1u << 8,
    O_MISSING = 1u << 9,
    O_UNKNOWN_CURRENCY = 1u << 10,
    O_LISTED = 1u << 11,
    O_UNLISTED = 1u << 12,
    O_OTHER = 1u << 13,
    O_SHORT = 1u << 14,
    O_LONG = 1u << 15,
    O_ALL = 1u << 16,
    O_ONE_MISSING = 1u << 17,
    O_MORE_MISSING = 1u << 18,
    O_NONE = 1u << 19,
};
#define O_ANY                                                                  \
    (O_MISSING | O_UNKNOWN_CURRENCY | O_LISTED | O_UNLISTED | O_OTHER |        \
     O_SHORT | O_LONG | O_ALL | O_ONE_MISSING | O_MORE_MISSING | O_NONE)

#define PH(x)         (1u << CV_SCORING_PH_##x)
#define PH_BUDGET_ALL (PH(BUDGET) | PH(AMOUNT) | PH(CURRENCY) | PH(RUB))

static const struct {
    cv_scoring_rule_kind_t kind; /* the kind */
    bool knockout;               /* a knock-out rule */
    unsigned allowed;            /* S_ and O_ it may have */
    unsigned required;           /* S_ it must have */
    unsigned placeholders;       /* what its knock-out reason may name */
} rules_specs[] = {
    {CV_SCORING_RULE_BUDGET_BANDS, false,
     S_BANDS | O_MISSING | O_UNKNOWN_CURRENCY, S_BANDS, 0},
    {CV_SCORING_RULE_IN_LIST, false,
     S_FIELD | S_LIST | O_LISTED | O_UNLISTED | O_MISSING, S_FIELD, 0},
    {CV_SCORING_RULE_CHANNEL_WARMTH, false, S_CHANNELS | O_OTHER, S_CHANNELS,
     0},
    {CV_SCORING_RULE_MESSAGE_LENGTH, false,
     S_MIN_CHARS | O_MISSING | O_SHORT | O_LONG, S_MIN_CHARS, 0},
    {CV_SCORING_RULE_FIELDS_PRESENT, false,
     S_FIELDS | O_ALL | O_ONE_MISSING | O_MORE_MISSING | O_NONE, S_FIELDS, 0},
    {CV_SCORING_RULE_BUDGET_BELOW, true, S_MIN_RUB | S_REASON,
     S_MIN_RUB | S_REASON, PH_BUDGET_ALL | PH(LIMIT)},
    {CV_SCORING_RULE_BLOCKED_DOMAIN, true, S_LIST | S_REASON, S_REASON,
     PH(MATCH) | PH(DOMAIN)},
    {CV_SCORING_RULE_BLOCKED_INN, true, S_LIST | S_REASON, S_REASON, PH(MATCH)},
    {CV_SCORING_RULE_COMPETITOR, true, S_LIST | S_REASON, S_REASON,
     PH(MATCH) | PH(FIELD)},
    {CV_SCORING_RULE_SPAM_MARKERS, true, S_LIST | S_FIELDS | S_REASON, S_REASON,
     PH(MATCH) | PH(FIELD)},
    {CV_SCORING_RULE_TOO_MANY_LINKS, true, S_MAX | S_REASON, S_MAX | S_REASON,
     PH(COUNT) | PH(LIMIT)},
};

/* Fields a text rule (in_list, spam_markers) can read. */
static bool rules_text_field(cv_scoring_field_t f)
{
    return f != CV_SCORING_FIELD_BUDGET && f != CV_SCORING_FIELD_CONTACT;
}

/* Valid UTF-8 without control characters other than tab and newline. */
static bool rules_clean_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        if (*p < 0x80) {
            if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
                return false;
            p++;
            continue;
        }
        int n = (*p & 0xE0) == 0xC0   ? 2
                : (*p & 0xF0) == 0xE0 ? 3
                : (*p & 0xF8) == 0xF0 ? 4
                                      : 0;
        if (n == 0 || (n == 2 && *p < 0xC2))
            return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        uint32_t cp = n == 2 ? ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F)
                      : n == 3
                          ? ((uint32_t)(p[0] & 0x0F) << 12) |
                                ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F)
                          : ((uint32_t)(p[0] & 0x07) << 18) |
                                ((uint32_t)(p[1] & 0x3F) << 12) |
                                ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        if ((n == 3 && cp < 0x800) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n;
    }
    return true;
}

/* A name: 1..RULES_NAME_MAX of [a-z0-9_], starting with a letter. */
static int rules_check_name(rules_ctx_t *ctx, const char *key, const char *name,
                            const char *what)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= RULES_NAME_MAX && islower((unsigned char)name[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = islower((unsigned char)name[i]) ||
             isdigit((unsigned char)name[i]) || name[i] == '_';
    if (!ok)
        return rules_fail(ctx, key,
                          "%s name '%s' must be 1 to %d of a-z, 0-9 and '_', "
                          "starting with a letter",
                          what, name, RULES_NAME_MAX);
    return 0;
}

static int rules_check_text(rules_ctx_t *ctx, const char *key, const char *text)
{
    if (strlen(text) > RULES_TEXT_MAX)
        return rules_fail(ctx, key, "'%s' is longer than %d bytes", key,
                          RULES_TEXT_MAX);
    if (!rules_clean_text(text))
        return rules_fail(ctx, key,
                          "'%s' is not UTF-8 text without control "
                          "characters",
                          key);
    return 0;
}

/* A parameter value: -1, 0 or 1 (also +1). */
static int rules_value(rules_ctx_t *ctx, const char *key, const char *text,
                       int *value)
{
    if (strcmp(text, "-1") == 0)
        *value = -1;
    else if (strcmp(text, "0") == 0)
        *value = 0;
    else if (strcmp(text, "1") == 0 || strcmp(text, "+1") == 0)
        *value = 1;
    else
        return rules_fail(ctx, key, "value '%s' is not -1, 0 or 1", text);
    return 0;
}

/* A whole decimal number in [min, max]. */
static int rules_integer(rules_ctx_t *ctx, const char *key, const char *text,
                         long min, long max, long *value)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return rules_fail(ctx, key,
                          "'%s' is %s, not a whole number from %ld to %ld", key,
                          text, min, max);
    *value = v;
    return 0;
}

/* A finite number (decimal, '.' for the fraction) in [min, max]. */
static int rules_amount(rules_ctx_t *ctx, const char *key, const char *text,
                        double min, double max, double *value)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    bool digits = true;
    for (const char *p = text; *p != '\0'; p++)
        digits = digits && (isdigit((unsigned char)*p) || *p == '.' ||
                            *p == '-' || *p == '+' || *p == 'e' || *p == 'E');
    if (!digits || errno != 0 || end == text || *end != '\0' || !isfinite(v) ||
        v < min || v > max)
        return rules_fail(ctx, key,
                          "'%s' is %s, not a number from %.0f to "
                          "%.0f",
                          key, text, min, max);
    *value = v;
    return 0;
}

/* Parses a reason template into pieces, allowing the placeholders in
 * `allowed` (a mask of cv_scoring_placeholder_t). "{{" is a literal '{'. */
static int rules_template(rules_ctx_t *ctx, cv_yaml_arena_t **chunks,
                          const char *key, const char *text, unsigned allowed,
                          cv_scoring_outcome_t *out)
{
    if (rules_check_text(ctx, key, text) != 0)
        return -1;
    size_t cap = 1;
    for (const char *p = text; *p != '\0'; p++)
        cap += *p == '{' ? 2 : 0;
    cv_scoring_piece_t *pieces = cv_yaml_alloc(chunks, cap * sizeof(*pieces));
    char *copy = cv_yaml_strndup(chunks, text, strlen(text));
    if (pieces == NULL || copy == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    size_t n = 0;
    const char *lit = copy;
    const char *p = copy;
    while (*p != '\0') {
        if (*p != '{') {
            p++;
            continue;
        }
        if (p > lit)
            pieces[n++] = (cv_scoring_piece_t){lit, (size_t)(p - lit), -1};
        if (p[1] == '{') {
            pieces[n++] = (cv_scoring_piece_t){p, 1, -1};
            p += 2;
            lit = p;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t len = close != NULL ? (size_t)(close - p - 1) : 0;
        int found = -1;
        for (int i = 0; close != NULL && i < CV_SCORING_PH_COUNT_OF; i++)
            if (strlen(rules_placeholder_names[i]) == len &&
                memcmp(rules_placeholder_names[i], p + 1, len) == 0)
                found = i;
        if (found < 0 || !(allowed & (1u << found))) {
            char names[300] = "";
            size_t used = 0;
            for (int i = 0; i < CV_SCORING_PH_COUNT_OF; i++) {
                if (!(allowed & (1u << i)) || used >= sizeof(names))
                    continue;
                int w = snprintf(names + used, sizeof(names) - used, "%s{%s}",
                                 used ? ", " : "", rules_placeholder_names[i]);
                if (w > 0)
                    used += (size_t)w;
            }
            int shown = close != NULL ? (int)(close - p + 1) : (int)strlen(p);
            if (shown > 40)
                shown = 40;
            return rules_fail(ctx, key, "%splaceholder '%.*s' in '%s'; %s%s",
                              found < 0 ? "unknown " : "out of place: ", shown,
                              p, key,
                              allowed ? "this text may use "
                                      : "this text "
                                        "may use none",
                              names);
        }
        pieces[n++] = (cv_scoring_piece_t){NULL, 0, found};
        p = close + 1;
        lit = p;
    }
    if (p > lit)
        pieces[n++] = (cv_scoring_piece_t){lit, (size_t)(p - lit), -1};
    out->reason = copy;
    out->pieces = pieces;
    out->piece_count = n;
    return 0;
}

/* Converts an outcome mapping (value + reason). */
static int rules_outcome(rules_ctx_t *ctx, cv_yaml_arena_t **chunks,
                         const char *key, const file_outcome_t *in,
                         unsigned allowed, const cv_scoring_outcome_t **out)
{
    *out = NULL;
    if (in == NULL)
        return 0;
    cv_scoring_outcome_t *o = cv_yaml_alloc(chunks, sizeof(*o));
    if (o == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    rules_push_key(ctx, key);
    int rc = -1;
    if (rules_value(ctx, "value", in->value, &o->value) != 0 ||
        rules_template(ctx, chunks, "reason", in->reason, allowed, o) != 0)
        goto out;
    *out = o;
    rc = 0;
out:
    rules_pop(ctx, 1);
    return rc;
}

/* A list of texts, trimmed, none empty; NULL-terminated in the model. */
static int rules_list(rules_ctx_t *ctx, cv_yaml_arena_t **chunks,
                      const file_rule_t *in, cv_scoring_rule_t *out)
{
    const char **list =
        cv_yaml_alloc(chunks, (in->list_count + 1) * sizeof(*list));
    if (list == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    rules_push_key(ctx, "list");
    for (unsigned i = 0; i < in->list_count; i++) {
        const char *s = in->list[i];
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        rules_push_index(ctx, (int)i);
        int rc = 0;
        if (n == 0)
            rc = rules_fail(ctx, NULL, "an empty entry in 'list'");
        else if (!rules_clean_text(s) || n > RULES_TEXT_MAX)
            rc = rules_fail(ctx, NULL,
                            "entry %u of 'list' is not UTF-8 text "
                            "of at most %d bytes",
                            i + 1, RULES_TEXT_MAX);
        rules_pop(ctx, 1);
        if (rc != 0) {
            rules_pop(ctx, 1);
            return -1;
        }
        list[i] = cv_yaml_strndup(chunks, s, n);
        if (list[i] == NULL) {
            rules_pop(ctx, 1);
            return rules_fail(ctx, NULL, "out of memory");
        }
    }
    rules_pop(ctx, 1);
    list[in->list_count] = NULL;
    out->list = list;
    out->list_count = in->list_count;
    return 0;
}

/* The spam markers of `out` folded once (cv_scoring_needle_t), so every
 * lead's texts are searched without decoding each marker again. */
static int rules_needles(rules_ctx_t *ctx, cv_yaml_arena_t **chunks,
                         cv_scoring_rule_t *out)
{
    cv_scoring_needle_t *needles = cv_yaml_alloc(
        chunks, (out->list_count + 1) * sizeof(*needles));
    if (needles == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    memset(out->needle_first, 0, sizeof(out->needle_first));
    for (size_t i = 0; i < out->list_count; i++) {
        uint32_t cps[CV_SCORING_NEEDLE_MAX];
        size_t n = cv_scoring_fold(out->list[i], cps, CV_SCORING_NEEDLE_MAX);
        needles[i].cps = NULL;
        needles[i].count = n;
        if (n == 0 || n > CV_SCORING_NEEDLE_MAX)
            continue; /* matched from the text (never, when empty) */
        uint32_t *kept = cv_yaml_alloc(chunks, n * sizeof(*kept));
        if (kept == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        memcpy(kept, cps, n * sizeof(*kept));
        needles[i].cps = kept;
        uint32_t bit = cps[0] & 255;
        out->needle_first[bit / 32] |= 1u << (bit % 32);
    }
    out->needles = needles;
    return 0;
}

/* Everything a rule says that belongs to its kind, checked and copied. */
static int rules_rule(rules_ctx_t *ctx, cv_yaml_arena_t **chunks,
                      const file_rule_t *in, bool knockout,
                      cv_scoring_rule_t *out)
{
    size_t spec = 0;
    while (spec < sizeof(rules_specs) / sizeof(rules_specs[0]) &&
           rules_specs[spec].kind != in->kind)
        spec++;
    if (spec == sizeof(rules_specs) / sizeof(rules_specs[0]))
        return rules_fail(ctx, "kind", "unknown rule kind");
    if (rules_check_name(ctx, "name", in->name, "rule") != 0)
        return -1;
    if (rules_specs[spec].knockout != knockout)
        return rules_fail(ctx, "kind",
                          knockout ? "rule '%s' of kind '%s' judges a "
                                     "parameter; the knockout list takes "
                                     "budget_below, blocked_domain, "
                                     "blocked_inn, competitor, spam_markers "
                                     "and too_many_links"
                                   : "rule '%s' of kind '%s' is a knock-out "
                                     "rule: put it under 'knockout'",
                          in->name, cv_scoring_rule_kind_name(in->kind));
    if (in->description != NULL &&
        rules_check_text(ctx, "description", in->description) != 0)
        return -1;
    /* which keys the rule wrote, against what its kind takes */
    const struct {
        const char *key; /* YAML key */
        unsigned bit;    /* its S_ or O_ bit */
        bool set;        /* written */
    } keys[] = {
        {"field", S_FIELD, in->field != NULL},
        {"list", S_LIST, in->list != NULL},
        {"fields", S_FIELDS, in->fields != NULL},
        {"bands", S_BANDS, in->bands != NULL},
        {"channels", S_CHANNELS, in->channels != NULL},
        {"min_chars", S_MIN_CHARS, in->min_chars != NULL},
        {"min_rub", S_MIN_RUB, in->min_rub != NULL},
        {"max", S_MAX, in->max != NULL},
        {"reason", S_REASON, in->reason != NULL},
        {"missing", O_MISSING, in->missing != NULL},
        {"unknown_currency", O_UNKNOWN_CURRENCY, in->unknown_currency != NULL},
        {"listed", O_LISTED, in->listed != NULL},
        {"unlisted", O_UNLISTED, in->unlisted != NULL},
        {"other", O_OTHER, in->other != NULL},
        {"short", O_SHORT, in->shorter != NULL},
        {"long", O_LONG, in->longer != NULL},
        {"all", O_ALL, in->all != NULL},
        {"one_missing", O_ONE_MISSING, in->one_missing != NULL},
        {"more_missing", O_MORE_MISSING, in->more_missing != NULL},
        {"none", O_NONE, in->none != NULL},
    };
    unsigned allowed = rules_specs[spec].allowed;
    unsigned written = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!keys[i].set)
            continue;
        written |= keys[i].bit;
        if (!(allowed & keys[i].bit))
            return rules_fail(ctx, keys[i].key,
                              "'%s' does not apply to rule kind '%s'",
                              keys[i].key, cv_scoring_rule_kind_name(in->kind));
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if ((rules_specs[spec].required & keys[i].bit) && !keys[i].set)
            return rules_fail(ctx, "kind", "rule '%s' of kind '%s' needs '%s'",
                              in->name, cv_scoring_rule_kind_name(in->kind),
                              keys[i].key);
    if (!knockout && !(written & (O_ANY | S_BANDS | S_CHANNELS)))
        return rules_fail(ctx, "kind",
                          "rule '%s' judges nothing: give it at least one "
                          "outcome (value and reason)",
                          in->name);

    out->name = cv_yaml_strndup(chunks, in->name, strlen(in->name));
    if (out->name == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    out->kind = in->kind;
    if (in->field != NULL) {
        if (!rules_text_field(*in->field))
            return rules_fail(ctx, "field",
                              "'%s' is not a text field; in_list compares "
                              "text",
                              cv_scoring_field_name(*in->field));
        out->field = *in->field;
    }
    if (rules_list(ctx, chunks, in, out) != 0)
        return -1;
    if (out->kind == CV_SCORING_RULE_SPAM_MARKERS &&
        rules_needles(ctx, chunks, out) != 0)
        return -1;
    if (in->fields != NULL) {
        cv_scoring_field_t *fields =
            cv_yaml_alloc(chunks, in->fields_count * sizeof(*fields));
        if (fields == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        for (unsigned i = 0; i < in->fields_count; i++) {
            if (in->kind == CV_SCORING_RULE_SPAM_MARKERS &&
                !rules_text_field(in->fields[i]))
                return rules_fail(ctx, "fields",
                                  "spam markers are looked for in text "
                                  "fields, not '%s'",
                                  cv_scoring_field_name(in->fields[i]));
            for (unsigned j = 0; j < i; j++)
                if (in->fields[j] == in->fields[i])
                    return rules_fail(ctx, "fields", "field '%s' given twice",
                                      cv_scoring_field_name(in->fields[i]));
            fields[i] = in->fields[i];
        }
        out->fields = fields;
        out->field_count = in->fields_count;
    } else if (in->kind == CV_SCORING_RULE_SPAM_MARKERS) {
        static const cv_scoring_field_t spam_fields[] = {
            CV_SCORING_FIELD_NAME, CV_SCORING_FIELD_COMPANY,
            CV_SCORING_FIELD_MESSAGE};
        out->fields = spam_fields;
        out->field_count = 3;
    }
    if (in->bands != NULL) {
        cv_scoring_band_t *bands =
            cv_yaml_alloc(chunks, in->bands_count * sizeof(*bands));
        if (bands == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        rules_push_key(ctx, "bands");
        int rc = 0;
        for (unsigned i = 0; rc == 0 && i < in->bands_count; i++) {
            const file_band_t *b = &in->bands[i];
            rules_push_index(ctx, (int)i);
            bool last = i + 1 == in->bands_count;
            unsigned ph = PH_BUDGET_ALL | PH(FROM) | (last ? 0 : PH(TO));
            rc = rules_amount(ctx, "from_rub", b->from_rub, 0, 1e15,
                              &bands[i].from_rub);
            if (rc == 0 && i > 0 &&
                !(bands[i].from_rub > bands[i - 1].from_rub))
                rc = rules_fail(ctx, "from_rub",
                                "bands go up: from_rub %s is not above the "
                                "band before it",
                                b->from_rub);
            if (rc == 0)
                rc = rules_value(ctx, "value", b->value,
                                 &bands[i].outcome.value);
            if (rc == 0)
                rc = rules_template(ctx, chunks, "reason", b->reason, ph,
                                    &bands[i].outcome);
            rules_pop(ctx, 1);
        }
        rules_pop(ctx, 1);
        if (rc != 0)
            return -1;
        out->bands = bands;
        out->band_count = in->bands_count;
    }
    if (in->channels != NULL) {
        cv_scoring_channel_t *channels =
            cv_yaml_alloc(chunks, in->channels_count * sizeof(*channels));
        if (channels == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        rules_push_key(ctx, "channels");
        int rc = 0;
        for (unsigned i = 0; rc == 0 && i < in->channels_count; i++) {
            const file_channel_t *c = &in->channels[i];
            rules_push_index(ctx, (int)i);
            if (rules_check_name(ctx, "channel", c->channel, "channel") != 0)
                rc = -1;
            for (unsigned j = 0; rc == 0 && j < i; j++)
                if (strcmp(in->channels[j].channel, c->channel) == 0)
                    rc = rules_fail(ctx, "channel", "channel '%s' given twice",
                                    c->channel);
            if (rc == 0) {
                channels[i].channel =
                    cv_yaml_strndup(chunks, c->channel, strlen(c->channel));
                if (channels[i].channel == NULL)
                    rc = rules_fail(ctx, NULL, "out of memory");
            }
            if (rc == 0)
                rc = rules_value(ctx, "value", c->value,
                                 &channels[i].outcome.value);
            if (rc == 0)
                rc = rules_template(ctx, chunks, "reason", c->reason,
                                    PH(CHANNEL), &channels[i].outcome);
            rules_pop(ctx, 1);
        }
        rules_pop(ctx, 1);
        if (rc != 0)
            return -1;
        out->channels = channels;
        out->channel_count = in->channels_count;
    }
    long number;
    if (in->min_chars != NULL) {
        if (rules_integer(ctx, "min_chars", in->min_chars, 1, 1000000,
                          &number) != 0)
            return -1;
        out->min_chars = (size_t)number;
    }
    if (in->min_rub != NULL &&
        rules_amount(ctx, "min_rub", in->min_rub, 0, 1e15, &out->min_rub) != 0)
        return -1;
    if (in->max != NULL) {
        if (rules_integer(ctx, "max", in->max, 0, 1000000, &number) != 0)
            return -1;
        out->max = (int)number;
    }
    /* the outcomes and what each may name */
    bool in_list = in->kind == CV_SCORING_RULE_IN_LIST;
    bool length = in->kind == CV_SCORING_RULE_MESSAGE_LENGTH;
    if (rules_outcome(ctx, chunks, "missing", in->missing,
                      in_list  ? PH(FIELD)
                      : length ? PH(MIN)
                               : 0,
                      &out->missing) != 0 ||
        rules_outcome(ctx, chunks, "unknown_currency", in->unknown_currency,
                      PH(AMOUNT) | PH(CURRENCY), &out->unknown_currency) != 0 ||
        rules_outcome(ctx, chunks, "listed", in->listed, PH(VALUE) | PH(FIELD),
                      &out->listed) != 0 ||
        rules_outcome(ctx, chunks, "unlisted", in->unlisted,
                      PH(VALUE) | PH(FIELD), &out->unlisted) != 0 ||
        rules_outcome(ctx, chunks, "other", in->other, PH(CHANNEL),
                      &out->other) != 0 ||
        rules_outcome(ctx, chunks, "short", in->shorter, PH(CHARS) | PH(MIN),
                      &out->shorter) != 0 ||
        rules_outcome(ctx, chunks, "long", in->longer, PH(CHARS) | PH(MIN),
                      &out->longer) != 0 ||
        rules_outcome(ctx, chunks, "all", in->all, PH(PRESENT), &out->all) !=
            0 ||
        rules_outcome(ctx, chunks, "one_missing", in->one_missing,
                      PH(MISSING) | PH(PRESENT), &out->one_missing) != 0 ||
        rules_outcome(ctx, chunks, "more_missing", in->more_missing,
                      PH(MISSING) | PH(PRESENT), &out->more_missing) != 0 ||
        rules_outcome(ctx, chunks, "none", in->none, PH(MISSING), &out->none) !=
            0)
        return -1;
    if (in->reason != NULL) {
        cv_scoring_outcome_t *o = cv_yaml_alloc(chunks, sizeof(*o));
        if (o == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        if (rules_template(ctx, chunks, "reason", in->reason,
                           rules_specs[spec].placeholders, o) != 0)
            return -1;
        out->knockout = o;
    }
    return 0;
}

/* Rule names are unique in the whole model: "auto:<name>" names one rule.
 * `names` collects them (at most `cap`). */
static int rules_unique_rule(rules_ctx_t *ctx, const char **names,
                             size_t *count, size_t cap, const char *name)
{
    for (size_t i = 0; i < *count; i++)
        if (strcmp(names[i], name) == 0)
            return rules_fail(ctx, "name", "rule name '%s' is used twice",
                              name);
    if (*count < cap)
        names[(*count)++] = name;
    return 0;
}

static int rules_build(rules_ctx_t *ctx, const file_rules_t *in,
                       cv_scoring_model_t *m, cv_yaml_arena_t **chunks)
{
    /* rules: at most 100 knock-out rules and 100 per parameter */
    enum { NAMES_CAP = 100 * (CV_SCORING_PARAM_COUNT + 1) };
    const char *rule_names[NAMES_CAP];
    size_t rule_name_count = 0;

    const char *v = in->version;
    size_t vlen = strlen(v);
    bool ok = vlen > 0 && vlen <= RULES_NAME_MAX;
    for (size_t i = 0; ok && i < vlen; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '-' ||
             v[i] == '_';
    if (!ok)
        return rules_fail(ctx, "version",
                          "version '%s' must be 1 to %d of letters, digits, "
                          "'.', '-' and '_'",
                          v, RULES_NAME_MAX);
    m->version = cv_yaml_strndup(chunks, v, vlen);
    const char *unjudged = in->unjudged_reason != NULL
                               ? in->unjudged_reason
                               : "not judged yet: set after the first call";
    if (rules_check_text(ctx, "unjudged_reason", unjudged) != 0)
        return -1;
    m->unjudged_reason = cv_yaml_strndup(chunks, unjudged, strlen(unjudged));
    if (m->version == NULL || m->unjudged_reason == NULL)
        return rules_fail(ctx, NULL, "out of memory");

    m->segment_c_max = -10;
    m->segment_a_min = 10;
    if (in->segments != NULL) {
        long c_max, a_min;
        rules_push_key(ctx, "segments");
        int rc =
            rules_integer(ctx, "c_max", in->segments->c_max,
                          -CV_SCORING_TOTAL_MAX, CV_SCORING_TOTAL_MAX, &c_max);
        if (rc == 0)
            rc = rules_integer(ctx, "a_min", in->segments->a_min,
                               -CV_SCORING_TOTAL_MAX, CV_SCORING_TOTAL_MAX,
                               &a_min);
        if (rc == 0 && c_max >= a_min)
            rc = rules_fail(ctx, "a_min",
                            "segments: c_max (%ld) must be below a_min (%ld) "
                            "so that segment B lies between them",
                            c_max, a_min);
        rules_pop(ctx, 1);
        if (rc != 0)
            return -1;
        m->segment_c_max = (int)c_max;
        m->segment_a_min = (int)a_min;
    }

    cv_scoring_rate_t *rates =
        cv_yaml_alloc(chunks, (in->currencies_count + 1) * sizeof(*rates));
    if (rates == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    rules_push_key(ctx, "currencies");
    for (unsigned i = 0; i < in->currencies_count; i++) {
        const file_rate_t *r = &in->currencies[i];
        rules_push_index(ctx, (int)i);
        int rc = 0;
        bool code_ok = strlen(r->code) == 3;
        for (int k = 0; code_ok && k < 3; k++)
            code_ok = isupper((unsigned char)r->code[k]);
        if (!code_ok)
            rc = rules_fail(ctx, "code",
                            "currency code '%s' is not three capital "
                            "letters (ISO 4217)",
                            r->code);
        else if (strcmp(r->code, "RUB") == 0)
            rc = rules_fail(ctx, "code",
                            "RUB is the unit of every rate: leave it out");
        for (unsigned j = 0; rc == 0 && j < i; j++)
            if (strcmp(in->currencies[j].code, r->code) == 0)
                rc = rules_fail(ctx, "code", "currency '%s' given twice",
                                r->code);
        if (rc == 0)
            rc = rules_amount(ctx, "rub", r->rub, 0, 1e9, &rates[i].rub);
        if (rc == 0 && !(rates[i].rub > 0))
            rc = rules_fail(ctx, "rub", "the rate of '%s' must be above 0",
                            r->code);
        if (rc == 0) {
            rates[i].code = cv_yaml_strndup(chunks, r->code, 3);
            if (rates[i].code == NULL)
                rc = rules_fail(ctx, NULL, "out of memory");
        }
        rules_pop(ctx, 1);
        if (rc != 0) {
            rules_pop(ctx, 1);
            return -1;
        }
    }
    rules_pop(ctx, 1);
    m->rates = rates;
    m->rate_count = in->currencies_count;

    cv_scoring_rule_t *knockout =
        cv_yaml_alloc(chunks, (in->knockout_count + 1) * sizeof(*knockout));
    if (knockout == NULL)
        return rules_fail(ctx, NULL, "out of memory");
    rules_push_key(ctx, "knockout");
    for (unsigned i = 0; i < in->knockout_count; i++) {
        rules_push_index(ctx, (int)i);
        int rc = rules_rule(ctx, chunks, &in->knockout[i], true, &knockout[i]);
        if (rc == 0)
            rc = rules_unique_rule(ctx, rule_names, &rule_name_count, NAMES_CAP,
                                   knockout[i].name);
        rules_pop(ctx, 1);
        if (rc != 0) {
            rules_pop(ctx, 1);
            return -1;
        }
    }
    rules_pop(ctx, 1);
    m->knockout = knockout;
    m->knockout_count = in->knockout_count;

    rules_push_key(ctx, "blocks");
    int at = 0;
    for (unsigned b = 0; b < in->blocks_count; b++) {
        const file_block_t *block = &in->blocks[b];
        rules_push_index(ctx, (int)b);
        if (rules_check_name(ctx, "name", block->name, "block") != 0)
            return -1;
        for (unsigned j = 0; j < b; j++)
            if (strcmp(in->blocks[j].name, block->name) == 0)
                return rules_fail(ctx, "name", "block name '%s' is used twice",
                                  block->name);
        const char *description =
            block->description != NULL ? block->description : "";
        if (rules_check_text(ctx, "description", description) != 0)
            return -1;
        m->blocks[b] = cv_yaml_strndup(chunks, block->name, strlen(block->name));
        m->block_descriptions[b] =
            cv_yaml_strndup(chunks, description, strlen(description));
        if (m->blocks[b] == NULL || m->block_descriptions[b] == NULL)
            return rules_fail(ctx, NULL, "out of memory");
        rules_push_key(ctx, "parameters");
        for (unsigned p = 0; p < block->parameters_count; p++, at++) {
            const file_param_t *param = &block->parameters[p];
            cv_scoring_param_def_t *def = &m->params[at];
            rules_push_index(ctx, (int)p);
            if (rules_check_name(ctx, "name", param->name, "parameter") != 0)
                return -1;
            for (int j = 0; j < at; j++)
                if (strcmp(m->params[j].name, param->name) == 0)
                    return rules_fail(ctx, "name",
                                      "parameter name '%s' is used twice",
                                      param->name);
            const char *pdesc =
                param->description != NULL ? param->description : "";
            if (rules_check_text(ctx, "description", pdesc) != 0)
                return -1;
            def->name = cv_yaml_strndup(chunks, param->name, strlen(param->name));
            def->block = m->blocks[b];
            def->description = cv_yaml_strndup(chunks, pdesc, strlen(pdesc));
            cv_scoring_rule_t *rules =
                cv_yaml_alloc(chunks, (param->rules_count + 1) * sizeof(*rules));
            if (def->name == NULL || def->description == NULL || rules == NULL)
                return rules_fail(ctx, NULL, "out of memory");
            rules_push_key(ctx, "rules");
            for (unsigned r = 0; r < param->rules_count; r++) {
                rules_push_index(ctx, (int)r);
                if (rules_rule(ctx, chunks, &param->rules[r], false,
                               &rules[r]) != 0 ||
                    rules_unique_rule(ctx, rule_names, &rule_name_count,
                                      NAMES_CAP, rules[r].name) != 0)
                    return -1;
                rules_pop(ctx, 1);
            }
            rules_pop(ctx, 1);
            def->rules = rules;
            def->rule_count = param->rules_count;
            rules_pop(ctx, 1);
        }
        rules_pop(ctx, 2);
    }
    rules_pop(ctx, 1);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

cv_scoring_model_t *cv_scoring_rules_parse(const char *name, const char *text,
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
        .name = name != NULL ? name : "rules",
        .text = text,
        .length = length,
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
    cv_scoring_model_t *model = NULL;
    cv_yaml_arena_t *chunks = NULL;
    if (rules_index_lines(&ctx) != 0) {
        rules_fail(&ctx, NULL, "out of memory");
        goto out;
    }
    if (length == 0 || ctx.line_count == 0) {
        rules_fail(&ctx, NULL, "the file is empty");
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
        rules_fail(&ctx, NULL, "the file is empty");
        goto out;
    }
    model = cv_yaml_alloc(&chunks, sizeof(*model));
    if (model == NULL) {
        rules_fail(&ctx, NULL, "out of memory");
        goto out;
    }
    if (rules_build(&ctx, file, model, &chunks) != 0) {
        model = NULL;
        goto out;
    }
    model->memory = chunks;
    chunks = NULL;
out:
    if (file != NULL)
        cyaml_free(&config, &file_rules_schema, file, 0);
    cv_yaml_arena_free(chunks);
    free(ctx.lines);
    return model;
}

#define RULES_FILE_MAX (4 * 1024 * 1024)

cv_scoring_model_t *cv_scoring_rules_load(const char *path, char *error,
                                          size_t size)
{
    size_t n = 0;
    char *text = cv_textfile_read(path, RULES_FILE_MAX, &n, error, size);
    if (text == NULL)
        return NULL;
    cv_scoring_model_t *model = cv_scoring_rules_parse(path, text, n, error,
                                                       size);
    free(text);
    return model;
}

void cv_scoring_rules_free(cv_scoring_model_t **model_p)
{
    if (model_p == NULL || *model_p == NULL)
        return;
    /* the model lives in its own chunks */
    cv_yaml_arena_free((*model_p)->memory);
    *model_p = NULL;
}

static pthread_once_t rules_builtin_once = PTHREAD_ONCE_INIT;
static cv_scoring_model_t *rules_builtin_model;

static void rules_builtin_load(void)
{
    char error[700];
    rules_builtin_model = cv_scoring_rules_parse(
        "built-in deploy/scoring-rules.yaml", cv_scoring_rules_default_yaml,
        strlen(cv_scoring_rules_default_yaml), error, sizeof(error));
    if (rules_builtin_model == NULL)
        cv_error("cannot use the built-in scoring rules: %s", error);
}

const cv_scoring_model_t *cv_scoring_rules_builtin(void)
{
    pthread_once(&rules_builtin_once, rules_builtin_load);
    return rules_builtin_model;
}

const char *cv_scoring_rules_builtin_text(void)
{
    return cv_scoring_rules_default_yaml;
}

int cv_scoring_rules_param_index(const cv_scoring_model_t *model,
                                 const char *name)
{
    if (model == NULL || name == NULL)
        return -1;
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++)
        if (model->params[i].name != NULL &&
            strcmp(model->params[i].name, name) == 0)
            return i;
    return -1;
}

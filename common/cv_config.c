/* cv_config: defaults, then the YAML file, then the environment, then the
 * command line. */
#include "cv_config.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cv_log.h"
#include "cv_yaml.h"

#define CV_CONFIG_DEFAULT_BROKER "tcp://127.0.0.1:5555"

/* The admin port of each stage that has no HTTP port of its own. */
static const struct {
    const char *service; /* service name */
    const char *addr;    /* its default admin address */
} cv_config_admin_defaults[] = {
    {"broker", "127.0.0.1:9100"},
    {"scoring", "127.0.0.1:9101"},
    {"routing", "127.0.0.1:9102"},
    {"proposal-generator", "127.0.0.1:9103"},
    {"followup-scheduler", "127.0.0.1:9104"},
    {"account-retention", "127.0.0.1:9105"},
    {"notifier", "127.0.0.1:9106"},
};

#define CV_CONFIG_ADMIN_SERVICES                                               \
    (sizeof(cv_config_admin_defaults) / sizeof(cv_config_admin_defaults[0]))

/* `admin_addrs:` in the file, one key per stage, so one file can serve
 * every process. */
typedef struct {
    char *broker;             /* admin address of the broker */
    char *scoring;            /* of scoring */
    char *routing;            /* of routing */
    char *proposal_generator; /* of proposal-generator */
    char *followup_scheduler; /* of followup-scheduler */
    char *account_retention;  /* of account-retention */
    char *notifier;           /* of notifier */
} cv_config_file_admin_t;

/* What the YAML file may say; NULL is "not in the file". */
typedef struct {
    char *data_dir;                       /* data_dir */
    char *broker_bind;                    /* broker_bind */
    char *broker_endpoint;                /* broker_endpoint */
    char *intake_addr;                    /* intake_addr */
    char *console_addr;                   /* console_addr */
    char *admin_addr;                     /* admin_addr, this process */
    cv_config_file_admin_t *admin_addrs;  /* admin_addrs, per stage */
    char *admin_token;                    /* admin_token */
    char *intake_keys;                    /* intake_keys */
    char *telegram_secret;                /* telegram_secret */
    char *telegram_api_url;               /* telegram_api_url */
    char *telegram_bot_token;             /* telegram_bot_token */
    char *smtp_url;                       /* smtp_url */
    char *smtp_from;                      /* smtp_from */
    char *smtp_user;                      /* smtp_user */
    char *smtp_password;                  /* smtp_password */
    char *webhook_secret;                 /* webhook_secret */
    char *notify_rates;                   /* notify_rates */
    char *notify_host_rates;              /* notify_host_rates */
    int *notify_max_attempts;             /* notify_max_attempts */
    char *default_region;                 /* default_region */
    char *intake_rate;                    /* intake_rate */
    char *intake_rates;                   /* intake_rates */
    char *spam_honeypot;                  /* spam_honeypot */
    char *spam_block_domains;             /* spam_block_domains */
    char *spam_block_phones;              /* spam_block_phones */
    char *scoring_rules;                  /* scoring_rules */
    int *spam_max_links;                  /* spam_max_links */
    bool *demo;                           /* demo */
    bool *bus_background;                 /* bus_background */
    int64_t *max_body_bytes;              /* max_body_bytes */
    int *batch_max;                       /* batch_max */
    int *batch_linger_ms;                 /* batch_linger_ms */
    int *lease_ms;                        /* lease_ms */
    int *heartbeat_ms;                    /* heartbeat_ms */
    int *http_threads;                    /* http_threads */
    int *first_contact_minutes;           /* first_contact_minutes */
    char *routing_rules;                  /* routing_rules */
    char *routing_admin_addr;             /* routing_admin_addr */
    int *first_come_minutes;              /* first_come_minutes */
    char *default_timezone;               /* default_timezone */
    char *calendar_file;                  /* calendar_file */
    int *call_back_minutes;               /* call_back_minutes */
    char *escalation_delays;              /* escalation_delays */
    char *followup_delays;                /* followup_delays */
    char *on_duty_pool;                   /* on_duty_pool */
} cv_config_file_t;

#define CV_OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define CV_TEXT_FIELD(key, type, member)                                       \
    CYAML_FIELD_STRING_PTR(key, CV_OPT, type, member, 0, CYAML_UNLIMITED)

static const cyaml_schema_field_t cv_config_admin_fields[] = {
    CV_TEXT_FIELD("broker", cv_config_file_admin_t, broker),
    CV_TEXT_FIELD("scoring", cv_config_file_admin_t, scoring),
    CV_TEXT_FIELD("routing", cv_config_file_admin_t, routing),
    CV_TEXT_FIELD("proposal-generator", cv_config_file_admin_t,
                  proposal_generator),
    CV_TEXT_FIELD("followup-scheduler", cv_config_file_admin_t,
                  followup_scheduler),
    CV_TEXT_FIELD("account-retention", cv_config_file_admin_t,
                  account_retention),
    CV_TEXT_FIELD("notifier", cv_config_file_admin_t, notifier),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t cv_config_file_fields[] = {
    CV_TEXT_FIELD("data_dir", cv_config_file_t, data_dir),
    CV_TEXT_FIELD("broker_bind", cv_config_file_t, broker_bind),
    CV_TEXT_FIELD("broker_endpoint", cv_config_file_t, broker_endpoint),
    CV_TEXT_FIELD("intake_addr", cv_config_file_t, intake_addr),
    CV_TEXT_FIELD("console_addr", cv_config_file_t, console_addr),
    CV_TEXT_FIELD("admin_addr", cv_config_file_t, admin_addr),
    CYAML_FIELD_MAPPING_PTR("admin_addrs", CV_OPT, cv_config_file_t,
                            admin_addrs, cv_config_admin_fields),
    CV_TEXT_FIELD("admin_token", cv_config_file_t, admin_token),
    CV_TEXT_FIELD("intake_keys", cv_config_file_t, intake_keys),
    CV_TEXT_FIELD("telegram_secret", cv_config_file_t, telegram_secret),
    CV_TEXT_FIELD("telegram_api_url", cv_config_file_t, telegram_api_url),
    CV_TEXT_FIELD("telegram_bot_token", cv_config_file_t, telegram_bot_token),
    CV_TEXT_FIELD("smtp_url", cv_config_file_t, smtp_url),
    CV_TEXT_FIELD("smtp_from", cv_config_file_t, smtp_from),
    CV_TEXT_FIELD("smtp_user", cv_config_file_t, smtp_user),
    CV_TEXT_FIELD("smtp_password", cv_config_file_t, smtp_password),
    CV_TEXT_FIELD("webhook_secret", cv_config_file_t, webhook_secret),
    CV_TEXT_FIELD("notify_rates", cv_config_file_t, notify_rates),
    CV_TEXT_FIELD("notify_host_rates", cv_config_file_t, notify_host_rates),
    CYAML_FIELD_INT_PTR("notify_max_attempts", CV_OPT, cv_config_file_t,
                        notify_max_attempts),
    CV_TEXT_FIELD("default_region", cv_config_file_t, default_region),
    CV_TEXT_FIELD("intake_rate", cv_config_file_t, intake_rate),
    CV_TEXT_FIELD("intake_rates", cv_config_file_t, intake_rates),
    CV_TEXT_FIELD("spam_honeypot", cv_config_file_t, spam_honeypot),
    CV_TEXT_FIELD("spam_block_domains", cv_config_file_t, spam_block_domains),
    CV_TEXT_FIELD("spam_block_phones", cv_config_file_t, spam_block_phones),
    CV_TEXT_FIELD("scoring_rules", cv_config_file_t, scoring_rules),
    CYAML_FIELD_INT_PTR("spam_max_links", CV_OPT, cv_config_file_t,
                        spam_max_links),
    CYAML_FIELD_BOOL_PTR("demo", CV_OPT, cv_config_file_t, demo),
    CYAML_FIELD_BOOL_PTR("bus_background", CV_OPT, cv_config_file_t,
                         bus_background),
    CYAML_FIELD_INT_PTR("max_body_bytes", CV_OPT, cv_config_file_t,
                        max_body_bytes),
    CYAML_FIELD_INT_PTR("batch_max", CV_OPT, cv_config_file_t, batch_max),
    CYAML_FIELD_INT_PTR("batch_linger_ms", CV_OPT, cv_config_file_t,
                        batch_linger_ms),
    CYAML_FIELD_INT_PTR("lease_ms", CV_OPT, cv_config_file_t, lease_ms),
    CYAML_FIELD_INT_PTR("heartbeat_ms", CV_OPT, cv_config_file_t, heartbeat_ms),
    CYAML_FIELD_INT_PTR("http_threads", CV_OPT, cv_config_file_t, http_threads),
    CYAML_FIELD_INT_PTR("first_contact_minutes", CV_OPT, cv_config_file_t,
                        first_contact_minutes),
    CV_TEXT_FIELD("routing_rules", cv_config_file_t, routing_rules),
    CV_TEXT_FIELD("routing_admin_addr", cv_config_file_t, routing_admin_addr),
    CYAML_FIELD_INT_PTR("first_come_minutes", CV_OPT, cv_config_file_t,
                        first_come_minutes),
    CV_TEXT_FIELD("default_timezone", cv_config_file_t, default_timezone),
    CV_TEXT_FIELD("calendar_file", cv_config_file_t, calendar_file),
    CYAML_FIELD_INT_PTR("call_back_minutes", CV_OPT, cv_config_file_t,
                        call_back_minutes),
    CV_TEXT_FIELD("escalation_delays", cv_config_file_t, escalation_delays),
    CV_TEXT_FIELD("followup_delays", cv_config_file_t, followup_delays),
    CV_TEXT_FIELD("on_duty_pool", cv_config_file_t, on_duty_pool),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cv_config_file_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, cv_config_file_t,
                        cv_config_file_fields),
};

/* The line of `file` on which `key:` is written, counting occurrences:
 * `nth` 1 is the first. libcyaml reports the line of the enclosing
 * mapping for an unknown key, so we find the key ourselves. */
static int cv_config_key_line(const char *file, const char *key, int nth)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return 0;
    char text[1024];
    int line = 0, found = 0, seen = 0;
    size_t key_len = strlen(key);
    while (fgets(text, sizeof(text), f) != NULL) {
        line++;
        const char *p = text;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"' || *p == '\'') {
            if (strncmp(p + 1, key, key_len) == 0 && p[1 + key_len] == *p)
                p += key_len + 2;
            else
                continue;
        } else if (strncmp(p, key, key_len) == 0) {
            p += key_len;
        } else {
            continue;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ':' && ++seen == nth) {
            found = line;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Copies `text` into a fixed field, refusing what does not fit. */
static int cv_config_set(char *field, size_t size, const char *text,
                         const char *what)
{
    if (strlen(text) >= size)
        return cv_error("cannot use %s: longer than %zu bytes", what,
                        size - 1);
    snprintf(field, size, "%s", text);
    return 0;
}

#define CV_SET(cfg, member, text, what)                                        \
    cv_config_set((cfg)->member, sizeof((cfg)->member), (text), (what))

/* Applies a text value from the file when it is present. */
static int cv_config_file_text(char *field, size_t size, const char *value,
                               const char *file, const char *key)
{
    if (value == NULL)
        return 0;
    char what[640];
    snprintf(what, sizeof(what), "'%s' in '%s'", key, file);
    return cv_config_set(field, size, value, what);
}

#define CV_FILE_TEXT(cfg, loaded, member, file)                                \
    cv_config_file_text((cfg)->member, sizeof((cfg)->member),                  \
                        (loaded)->member, (file), #member)

static const char *cv_config_file_admin_addr(const cv_config_file_admin_t *a,
                                             const char *service)
{
    if (a == NULL)
        return NULL;
    if (strcmp(service, "broker") == 0)
        return a->broker;
    if (strcmp(service, "scoring") == 0)
        return a->scoring;
    if (strcmp(service, "routing") == 0)
        return a->routing;
    if (strcmp(service, "proposal-generator") == 0)
        return a->proposal_generator;
    if (strcmp(service, "followup-scheduler") == 0)
        return a->followup_scheduler;
    if (strcmp(service, "account-retention") == 0)
        return a->account_retention;
    if (strcmp(service, "notifier") == 0)
        return a->notifier;
    return NULL;
}

/* Loads the YAML file over the defaults. *endpoint_set tells whether the
 * file named broker_endpoint. */
static int cv_config_load_file(cv_config_t *cfg, const char *file,
                               bool *endpoint_set)
{
    cv_yaml_error_t error = {0};
    cyaml_config_t yaml = {
        .log_fn = cv_yaml_log,
        .log_ctx = &error,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_DEFAULT,
    };
    cv_config_file_t *loaded = NULL;
    int rc = -1;
    struct stat st;
    if (stat(file, &st) != 0)
        return cv_error("cannot read config '%s': %s", file, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return cv_error("cannot read config '%s': is a directory", file);
    cyaml_err_t err = cyaml_load_file(file, &yaml, &cv_config_file_schema,
                                      (cyaml_data_t **)&loaded, NULL);
    if (err != CYAML_OK) {
        /* libcyaml's words, sentence case lowered to fit after ':' */
        if (isupper((unsigned char)error.message[0]) &&
            !isupper((unsigned char)error.message[1]))
            error.message[0] = (char)tolower((unsigned char)error.message[0]);
        const char *reason = error.message[0] ? error.message
                                              : cyaml_strerror(err);
        char detail[768];
        int line = error.line;
        if (strncmp(reason, "unexpected key: ", 16) == 0) {
            const char *key = reason + 16;
            int at = cv_config_key_line(file, key, 1);
            if (at > 0)
                line = at;
            snprintf(detail, sizeof(detail), "unknown key '%s'", key);
        } else if (strncmp(reason, "mapping field already seen: ", 28) == 0) {
            const char *key = reason + 28;
            int at = cv_config_key_line(file, key, 2);
            if (at > 0)
                line = at;
            snprintf(detail, sizeof(detail), "key '%s' given twice", key);
        } else if (error.field[0] != '\0') {
            snprintf(detail, sizeof(detail), "'%s': %s", error.field, reason);
        } else {
            snprintf(detail, sizeof(detail), "%s", reason);
        }
        if (line > 0)
            cv_error("cannot load config '%s': line %d: %s", file, line,
                     detail);
        else
            cv_error("cannot load config '%s': %s", file, detail);
        goto out;
    }
    if (loaded == NULL) {
        rc = 0; /* an empty file changes nothing */
        goto out;
    }
    if (CV_FILE_TEXT(cfg, loaded, data_dir, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, broker_bind, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, broker_endpoint, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, intake_addr, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, console_addr, file) != 0 ||
        cv_config_file_text(cfg->admin_addr, sizeof(cfg->admin_addr),
                            cv_config_file_admin_addr(loaded->admin_addrs,
                                                      cfg->service),
                            file, "admin_addrs") != 0 ||
        CV_FILE_TEXT(cfg, loaded, admin_addr, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, admin_token, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, intake_keys, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, telegram_secret, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, telegram_api_url, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, telegram_bot_token, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, smtp_url, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, smtp_from, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, smtp_user, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, smtp_password, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, webhook_secret, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, notify_rates, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, notify_host_rates, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, default_region, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, intake_rate, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, intake_rates, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, spam_honeypot, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, spam_block_domains, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, spam_block_phones, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, scoring_rules, file) != 0)
        goto out;
    if (loaded->spam_max_links != NULL)
        cfg->spam_max_links = *loaded->spam_max_links;
    *endpoint_set = loaded->broker_endpoint != NULL;
    if (loaded->demo != NULL)
        cfg->demo = *loaded->demo;
    if (loaded->bus_background != NULL)
        cfg->bus_background = *loaded->bus_background;
    if (loaded->max_body_bytes != NULL)
        cfg->max_body_bytes = *loaded->max_body_bytes;
    if (loaded->batch_max != NULL)
        cfg->batch_max = *loaded->batch_max;
    if (loaded->batch_linger_ms != NULL)
        cfg->batch_linger_ms = *loaded->batch_linger_ms;
    if (loaded->lease_ms != NULL)
        cfg->lease_ms = *loaded->lease_ms;
    if (loaded->heartbeat_ms != NULL)
        cfg->heartbeat_ms = *loaded->heartbeat_ms;
    if (loaded->http_threads != NULL)
        cfg->http_threads = *loaded->http_threads;
    if (loaded->first_contact_minutes != NULL)
        cfg->first_contact_minutes = *loaded->first_contact_minutes;
    if (CV_FILE_TEXT(cfg, loaded, routing_rules, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, routing_admin_addr, file) != 0)
        goto out;
    if (loaded->first_come_minutes != NULL)
        cfg->first_come_minutes = *loaded->first_come_minutes;
    if (loaded->notify_max_attempts != NULL)
        cfg->notify_max_attempts = *loaded->notify_max_attempts;
    if (loaded->call_back_minutes != NULL)
        cfg->call_back_minutes = *loaded->call_back_minutes;
    if (CV_FILE_TEXT(cfg, loaded, default_timezone, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, calendar_file, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, escalation_delays, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, followup_delays, file) != 0 ||
        CV_FILE_TEXT(cfg, loaded, on_duty_pool, file) != 0)
        goto out;
    rc = 0;
out:
    if (loaded != NULL)
        cyaml_free(&yaml, &cv_config_file_schema, loaded, 0);
    return rc;
}

/* Parses a whole decimal number in [min, max] from `text`. */
static int cv_config_number(const char *text, int64_t min, int64_t max,
                            int64_t *value)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

/* Applies environment variable `name` to a text field when it is set. */
static int cv_config_env_text(char *field, size_t size, const char *name)
{
    const char *value = getenv(name);
    if (value == NULL)
        return 0;
    return cv_config_set(field, size, value, name);
}

#define CV_ENV_TEXT(cfg, member, name)                                         \
    cv_config_env_text((cfg)->member, sizeof((cfg)->member), (name))

/* Reads a whole number from the environment variable `name` into *field,
 * when set; `min` is the smallest value allowed (0 or 1). */
static int cv_config_env_number(int *field, const char *name, int64_t min)
{
    const char *value = getenv(name);
    int64_t v;
    if (value == NULL || value[0] == '\0')
        return 0;
    if (cv_config_number(value, min, 1000000000, &v) != 0)
        return cv_error("cannot use %s='%s': not a whole number from %lld",
                        name, value, (long long)min);
    *field = (int)v;
    return 0;
}

static int cv_config_env_int(int *field, const char *name)
{
    return cv_config_env_number(field, name, 1);
}

/* Reads a yes or no from the environment variable `name` into *field,
 * when set: 1, true, yes, on or 0, false, no, off, in any case. */
static int cv_config_env_bool(bool *field, const char *name)
{
    static const struct {
        const char *word;
        bool value;
    } words[] = {{"1", true},  {"true", true},   {"yes", true}, {"on", true},
                 {"0", false}, {"false", false}, {"no", false}, {"off", false}};
    const char *value = getenv(name);
    if (value == NULL || value[0] == '\0')
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(value, words[i].word) == 0) {
            *field = words[i].value;
            return 0;
        }
    }
    return cv_error("cannot use %s='%s': not 1 or 0 (true/false, yes/no, "
                    "on/off)",
                    name, value);
}

static int cv_config_load_env(cv_config_t *cfg, bool *endpoint_set)
{
    char admin_var[128];
    size_t n = (size_t)snprintf(admin_var, sizeof(admin_var), "CONVEYOR_");
    for (const char *p = cfg->service; *p != '\0' && n + 1 < sizeof(admin_var);
         p++)
        admin_var[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    admin_var[n] = '\0';
    snprintf(admin_var + n, sizeof(admin_var) - n, "_ADMIN_ADDR");

    if (getenv("CONVEYOR_BROKER") != NULL)
        *endpoint_set = true;
    if (CV_ENV_TEXT(cfg, data_dir, "CONVEYOR_DATA_DIR") != 0 ||
        CV_ENV_TEXT(cfg, broker_bind, "CONVEYOR_BROKER_BIND") != 0 ||
        CV_ENV_TEXT(cfg, broker_endpoint, "CONVEYOR_BROKER") != 0 ||
        CV_ENV_TEXT(cfg, intake_addr, "CONVEYOR_INTAKE_ADDR") != 0 ||
        CV_ENV_TEXT(cfg, console_addr, "CONVEYOR_CONSOLE_ADDR") != 0 ||
        CV_ENV_TEXT(cfg, admin_addr, admin_var) != 0 ||
        CV_ENV_TEXT(cfg, admin_token, "CONVEYOR_ADMIN_TOKEN") != 0 ||
        CV_ENV_TEXT(cfg, intake_keys, "CONVEYOR_INTAKE_KEYS") != 0 ||
        CV_ENV_TEXT(cfg, telegram_secret, "CONVEYOR_TELEGRAM_SECRET") != 0 ||
        CV_ENV_TEXT(cfg, telegram_api_url, "CONVEYOR_TELEGRAM_API_URL") != 0 ||
        CV_ENV_TEXT(cfg, telegram_bot_token,
                    "CONVEYOR_TELEGRAM_BOT_TOKEN") != 0 ||
        CV_ENV_TEXT(cfg, smtp_url, "CONVEYOR_SMTP_URL") != 0 ||
        CV_ENV_TEXT(cfg, smtp_from, "CONVEYOR_SMTP_FROM") != 0 ||
        CV_ENV_TEXT(cfg, smtp_user, "CONVEYOR_SMTP_USER") != 0 ||
        CV_ENV_TEXT(cfg, smtp_password, "CONVEYOR_SMTP_PASSWORD") != 0 ||
        CV_ENV_TEXT(cfg, webhook_secret, "CONVEYOR_WEBHOOK_SECRET") != 0 ||
        CV_ENV_TEXT(cfg, notify_rates, "CONVEYOR_NOTIFY_RATES") != 0 ||
        CV_ENV_TEXT(cfg, notify_host_rates,
                    "CONVEYOR_NOTIFY_HOST_RATES") != 0 ||
        CV_ENV_TEXT(cfg, default_region, "CONVEYOR_DEFAULT_REGION") != 0 ||
        CV_ENV_TEXT(cfg, intake_rate, "CONVEYOR_INTAKE_RATE") != 0 ||
        CV_ENV_TEXT(cfg, intake_rates, "CONVEYOR_INTAKE_RATES") != 0 ||
        CV_ENV_TEXT(cfg, spam_honeypot, "CONVEYOR_SPAM_HONEYPOT") != 0 ||
        CV_ENV_TEXT(cfg, spam_block_domains,
                    "CONVEYOR_SPAM_BLOCK_DOMAINS") != 0 ||
        CV_ENV_TEXT(cfg, spam_block_phones,
                    "CONVEYOR_SPAM_BLOCK_PHONES") != 0 ||
        CV_ENV_TEXT(cfg, scoring_rules, "CONVEYOR_SCORING_RULES") != 0)
        return -1;
    if (cv_config_env_bool(&cfg->demo, "CONVEYOR_DEMO") != 0 ||
        cv_config_env_bool(&cfg->bus_background, "CONVEYOR_BUS_BACKGROUND") !=
            0)
        return -1;
    const char *max_body = getenv("CONVEYOR_MAX_BODY");
    if (max_body != NULL && max_body[0] != '\0') {
        int64_t v;
        if (cv_config_number(max_body, 1, INT64_MAX, &v) != 0)
            return cv_error("cannot use CONVEYOR_MAX_BODY='%s': not a "
                            "positive number of bytes", max_body);
        cfg->max_body_bytes = v;
    }
    if (cv_config_env_int(&cfg->http_threads, "CONVEYOR_HTTP_THREADS") != 0 ||
        cv_config_env_int(&cfg->batch_max, "CONVEYOR_BATCH_MAX") != 0 ||
        cv_config_env_number(&cfg->batch_linger_ms,
                             "CONVEYOR_BATCH_LINGER_MS", 0) != 0 ||
        cv_config_env_int(&cfg->lease_ms, "CONVEYOR_LEASE_MS") != 0 ||
        cv_config_env_int(&cfg->heartbeat_ms, "CONVEYOR_HEARTBEAT_MS") != 0 ||
        cv_config_env_int(&cfg->first_contact_minutes,
                          "CONVEYOR_FIRST_CONTACT_MINUTES") != 0 ||
        cv_config_env_int(&cfg->first_come_minutes,
                          "CONVEYOR_FIRST_COME_MINUTES") != 0 ||
        CV_ENV_TEXT(cfg, routing_rules, "CONVEYOR_ROUTING_RULES") != 0 ||
        CV_ENV_TEXT(cfg, routing_admin_addr,
                    "CONVEYOR_ROUTING_ADMIN_ADDR") != 0 ||
        cv_config_env_int(&cfg->notify_max_attempts,
                          "CONVEYOR_NOTIFY_MAX_ATTEMPTS") != 0 ||
        cv_config_env_int(&cfg->call_back_minutes,
                          "CONVEYOR_CALL_BACK_MINUTES") != 0 ||
        CV_ENV_TEXT(cfg, default_timezone, "CONVEYOR_DEFAULT_TIMEZONE") != 0 ||
        CV_ENV_TEXT(cfg, calendar_file, "CONVEYOR_CALENDAR_FILE") != 0 ||
        CV_ENV_TEXT(cfg, escalation_delays, "CONVEYOR_ESCALATION_DELAYS") !=
            0 ||
        CV_ENV_TEXT(cfg, followup_delays, "CONVEYOR_FOLLOWUP_DELAYS") != 0 ||
        CV_ENV_TEXT(cfg, on_duty_pool, "CONVEYOR_ON_DUTY_POOL") != 0 ||
        cv_config_env_number(&cfg->spam_max_links, "CONVEYOR_SPAM_MAX_LINKS",
                             0) != 0)
        return -1;
    return 0;
}

static void cv_config_usage(const char *service)
{
    cv_error("usage: %s [--config FILE] [--instance N] "
             "[--admin-addr HOST:PORT] [--data-dir DIR]", service);
}

/* The command-line options that take a value. */
typedef enum {
    CV_OPTION_CONFIG,
    CV_OPTION_INSTANCE,
    CV_OPTION_ADMIN_ADDR,
    CV_OPTION_DATA_DIR,
    CV_OPTION_COUNT,
} cv_config_option_t;

static const char *const cv_config_option_names[CV_OPTION_COUNT] = {
    "--config", "--instance", "--admin-addr", "--data-dir",
};

/* Which option argv[i] is ("--name value" or "--name=value"), or -1. */
static int cv_config_option_of(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (int o = 0; o < CV_OPTION_COUNT; o++) {
        size_t n = strlen(cv_config_option_names[o]);
        if (strncmp(arg, cv_config_option_names[o], n) != 0)
            continue;
        if (arg[n] == '=') {
            *inline_value = arg + n + 1;
            return o;
        }
        if (arg[n] == '\0')
            return o;
    }
    return -1;
}

/* Reads the command line. With `apply` false it only checks the options
 * and finds --config (the file comes before the environment); with `apply`
 * true it sets the rest. */
static int cv_config_load_args(cv_config_t *cfg, int argc, char **argv,
                               bool apply, const char **config_file)
{
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int option = cv_config_option_of(argv[i], &value);
        if (option < 0) {
            cv_error("unknown option '%s'", argv[i]);
            cv_config_usage(cfg->service);
            return -1;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                cv_error("option '%s' needs a value", argv[i]);
                cv_config_usage(cfg->service);
                return -1;
            }
            value = argv[++i];
        }
        int rc = 0;
        if (option == CV_OPTION_CONFIG)
            *config_file = value;
        else if (!apply)
            continue;
        else if (option == CV_OPTION_INSTANCE)
            rc = CV_SET(cfg, instance, value, "--instance");
        else if (option == CV_OPTION_ADMIN_ADDR)
            rc = CV_SET(cfg, admin_addr, value, "--admin-addr");
        else if (option == CV_OPTION_DATA_DIR)
            rc = CV_SET(cfg, data_dir, value, "--data-dir");
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* mkdir -p */
static int cv_config_make_dir(const char *dir)
{
    char path[CV_CONFIG_TEXT];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return cv_error("cannot create '%s': %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return cv_error("cannot create '%s': %s", path, strerror(errno));
    struct stat st;
    if (stat(path, &st) != 0)
        return cv_error("cannot use '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cv_error("cannot use '%s' as data dir: not a directory", path);
    return 0;
}

int cv_config_split_addr(const char *addr, char *host, int host_size,
                         int *port)
{
    if (addr == NULL || host == NULL || host_size <= 0 || port == NULL)
        return -1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    const char *start = addr;
    const char *end = colon;
    if (addr[0] == '[') {
        /* [v6-address]:port */
        if (colon == addr || colon[-1] != ']')
            return -1;
        start = addr + 1;
        end = colon - 1;
    } else if (memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
        return -1; /* a bare IPv6 address needs brackets */
    }
    int64_t value;
    if (colon[1] == '\0' || !isdigit((unsigned char)colon[1]) ||
        cv_config_number(colon + 1, 0, 65535, &value) != 0)
        return -1;
    size_t n = (size_t)(end - start);
    if (n >= (size_t)host_size)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)start[i]) || start[i] == '/')
            return -1;
    memcpy(host, start, n);
    host[n] = '\0';
    *port = (int)value;
    return 0;
}

/* Checks what the sources said together. */
static int cv_config_validate(const cv_config_t *cfg)
{
    const struct {
        const char *name;  /* the setting */
        const char *value; /* its value */
    } addrs[] = {
        {"intake_addr", cfg->intake_addr},
        {"console_addr", cfg->console_addr},
        {"admin_addr", cfg->admin_addr},
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        char host[256];
        int port;
        if (addrs[i].value[0] != '\0' &&
            cv_config_split_addr(addrs[i].value, host, sizeof(host), &port) !=
                0)
            return cv_error("cannot use %s '%s': not host:port",
                            addrs[i].name, addrs[i].value);
    }
    for (const char *p = cfg->instance; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return cv_error("cannot use instance '%s': only letters, digits, "
                            "'-' and '_' are allowed", cfg->instance);
    if (cfg->data_dir[0] == '\0')
        return cv_error("cannot use an empty data_dir");
    if (cfg->broker_bind[0] == '\0' || cfg->broker_endpoint[0] == '\0')
        return cv_error("cannot use an empty broker address");
    const struct {
        const char *name; /* the setting */
        int64_t value;    /* its value */
    } numbers[] = {
        {"max_body_bytes", cfg->max_body_bytes},
        {"batch_max", cfg->batch_max},
        {"lease_ms", cfg->lease_ms},
        {"heartbeat_ms", cfg->heartbeat_ms},
        {"http_threads", cfg->http_threads},
        {"first_contact_minutes", cfg->first_contact_minutes},
        {"first_come_minutes", cfg->first_come_minutes},
        {"notify_max_attempts", cfg->notify_max_attempts},
        {"call_back_minutes", cfg->call_back_minutes},
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (numbers[i].value <= 0)
            return cv_error("cannot use %s %lld: must be positive",
                            numbers[i].name, (long long)numbers[i].value);
    if (strlen(cfg->default_region) != 2 ||
        !isupper((unsigned char)cfg->default_region[0]) ||
        !isupper((unsigned char)cfg->default_region[1]))
        return cv_error("cannot use default_region '%s': not a two-letter "
                        "country code such as RU", cfg->default_region);
    if (cfg->spam_max_links < 0)
        return cv_error("cannot use spam_max_links %d: must be 0 or more",
                        cfg->spam_max_links);
    if (cfg->batch_linger_ms < 0 || cfg->batch_linger_ms > 1000)
        return cv_error("cannot use batch_linger_ms %d: must be 0 to 1000",
                        cfg->batch_linger_ms);
    return 0;
}

static void cv_config_defaults(cv_config_t *cfg, const char *service)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->service, sizeof(cfg->service), "%s", service);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./var");
    snprintf(cfg->broker_bind, sizeof(cfg->broker_bind), "%s",
             CV_CONFIG_DEFAULT_BROKER);
    snprintf(cfg->broker_endpoint, sizeof(cfg->broker_endpoint), "%s",
             CV_CONFIG_DEFAULT_BROKER);
    snprintf(cfg->intake_addr, sizeof(cfg->intake_addr), "127.0.0.1:8080");
    snprintf(cfg->console_addr, sizeof(cfg->console_addr), "127.0.0.1:8081");
    for (size_t i = 0; i < CV_CONFIG_ADMIN_SERVICES; i++)
        if (strcmp(service, cv_config_admin_defaults[i].service) == 0)
            snprintf(cfg->admin_addr, sizeof(cfg->admin_addr), "%s",
                     cv_config_admin_defaults[i].addr);
    snprintf(cfg->default_region, sizeof(cfg->default_region), "RU");
    snprintf(cfg->intake_rate, sizeof(cfg->intake_rate), "100/200");
    snprintf(cfg->spam_honeypot, sizeof(cfg->spam_honeypot), "_honeypot");
    cfg->spam_max_links = 3;
    cfg->demo = true;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->batch_max = 256;
    /* a busy stage (its last commit carried several events) commits
     * events at most every 3 ms (intake: stores a batch of leads, and so
     * answers their 202s, at most that often): fewer, larger commits,
     * each a sync and a round of wake-ups, which pays where the stages'
     * threads wait for a CPU; after a commit of one event, or when idle,
     * the next is committed at once; the console too (at 20 ms its bursts
     * held a CPU longer). Measured in README, Speed. */
    cfg->batch_linger_ms = 3;
    /* the console's bus thread keeps the read model (cards, timelines,
     * task lists) and is on no lead's way to its owner: as a background
     * thread it waits while a stage on that way wants the CPU, instead of
     * holding it for a batch of projections (README, Speed) */
    cfg->bus_background = strcmp(service, "console") == 0;
    cfg->lease_ms = 3000;
    cfg->heartbeat_ms = 500;
    cfg->http_threads = 2;
    cfg->first_contact_minutes = 30;
    cfg->first_come_minutes = 15;
    snprintf(cfg->routing_admin_addr, sizeof(cfg->routing_admin_addr),
             "127.0.0.1:9102");
    snprintf(cfg->smtp_from, sizeof(cfg->smtp_from),
             "conveyor@localhost");
    snprintf(cfg->notify_rates, sizeof(cfg->notify_rates),
             "telegram:30,telegram_chat:1,host:0,smtp:10/20");
    snprintf(cfg->notify_host_rates, sizeof(cfg->notify_host_rates),
             "hooks.slack.com:1/5");
    cfg->notify_max_attempts = 20;
    snprintf(cfg->default_timezone, sizeof(cfg->default_timezone),
             "Europe/Moscow");
    cfg->call_back_minutes = 10;
    snprintf(cfg->escalation_delays, sizeof(cfg->escalation_delays),
             "0,15,30");
}

int cv_config_load(cv_config_t *cfg, const char *service, int argc,
                   char **argv)
{
    if (cfg == NULL || service == NULL || service[0] == '\0' ||
        strlen(service) >= sizeof(cfg->service))
        return cv_error("cannot configure service '%s': bad name",
                        service ? service : "");
    cv_config_defaults(cfg, service);
    bool endpoint_set = false;
    const char *config_file = getenv("CONVEYOR_CONFIG");
    if (cv_config_load_args(cfg, argc, argv, false, &config_file) != 0)
        return -1;
    if (config_file != NULL && config_file[0] != '\0' &&
        cv_config_load_file(cfg, config_file, &endpoint_set) != 0)
        return -1;
    if (cv_config_load_env(cfg, &endpoint_set) != 0)
        return -1;
    if (cv_config_load_args(cfg, argc, argv, true, &config_file) != 0)
        return -1;
    if (!endpoint_set)
        snprintf(cfg->broker_endpoint, sizeof(cfg->broker_endpoint), "%s",
                 cfg->broker_bind);
    if (cv_config_validate(cfg) != 0)
        return -1;
    if (cv_config_make_dir(cfg->data_dir) != 0)
        return -1;
    int n;
    if (cfg->instance[0] != '\0')
        n = snprintf(cfg->db_path, sizeof(cfg->db_path), "%s/%s-%s.db",
                     cfg->data_dir, cfg->service, cfg->instance);
    else
        n = snprintf(cfg->db_path, sizeof(cfg->db_path), "%s/%s.db",
                     cfg->data_dir, cfg->service);
    if (n < 0 || (size_t)n >= sizeof(cfg->db_path))
        return cv_error("cannot use data_dir '%s': path too long",
                        cfg->data_dir);
    return 0;
}

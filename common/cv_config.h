/* cv_config: what a service is told, from embedded defaults, then a YAML
 * file, then the environment, then the command line (later wins).
 *
 * The YAML file is named by CONVEYOR_CONFIG or `--config FILE`; its keys are
 * the fields below (deploy/conveyor.example.yaml shows them all). A bad file
 * is refused with its name, line and reason. */
#ifndef CV_CONFIG_H
#define CV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define CV_CONFIG_TEXT 512

typedef struct {
    char service[64];               /* e.g. "scoring" */
    char instance[64];              /* --instance N; "" for a single one */
    char data_dir[CV_CONFIG_TEXT];  /* CONVEYOR_DATA_DIR, default "./var" */
    char db_path[CV_CONFIG_TEXT];   /* data_dir/<service>[-<instance>].db */
    char broker_bind[CV_CONFIG_TEXT];   /* CONVEYOR_BROKER_BIND, broker only,
                                           default "tcp://127.0.0.1:5555" */
    char broker_endpoint[CV_CONFIG_TEXT]; /* CONVEYOR_BROKER, where peers
                                           connect; comma-separated for two
                                           brokers; default as broker_bind */
    char intake_addr[128];          /* CONVEYOR_INTAKE_ADDR, "127.0.0.1:8080" */
    char console_addr[128];         /* CONVEYOR_CONSOLE_ADDR, "127.0.0.1:8081" */
    char admin_addr[128];           /* healthz + metrics of a service without
                                       its own HTTP port:
                                       CONVEYOR_<SERVICE>_ADMIN_ADDR (service
                                       upper-cased, '-' as '_') or
                                       --admin-addr; defaults: broker :9100,
                                       scoring :9101, routing :9102,
                                       proposal-generator :9103,
                                       followup-scheduler :9104,
                                       account-retention :9105,
                                       notifier :9106 on 127.0.0.1 */
    char admin_token[256];          /* CONVEYOR_ADMIN_TOKEN */
    char intake_keys[4096];         /* CONVEYOR_INTAKE_KEYS "source:key,..." */
    char telegram_secret[256];      /* CONVEYOR_TELEGRAM_SECRET */
    char telegram_api_url[CV_CONFIG_TEXT]; /* CONVEYOR_TELEGRAM_API_URL */
    char default_region[8];         /* CONVEYOR_DEFAULT_REGION: ISO 3166
                                       country of phone numbers written
                                       without a country code, default "RU" */
    char intake_rate[64];           /* CONVEYOR_INTAKE_RATE "RATE[/BURST]":
                                       requests per second each intake key
                                       may make (token bucket), default
                                       "100/200"; "0" = unlimited */
    char intake_rates[1024];        /* CONVEYOR_INTAKE_RATES
                                       "source:RATE[/BURST],…": per-source
                                       overrides of intake_rate */
    char spam_honeypot[64];         /* CONVEYOR_SPAM_HONEYPOT: a hidden form
                                       field only bots fill, default
                                       "_honeypot" */
    char spam_block_domains[2048];  /* CONVEYOR_SPAM_BLOCK_DOMAINS
                                       "a.com,b.ru": email domains (and
                                       links in the message) that are spam */
    char spam_block_phones[2048];   /* CONVEYOR_SPAM_BLOCK_PHONES: phones
                                       (any spelling, normalised) that are
                                       spam */
    char scoring_rules[CV_CONFIG_TEXT]; /* CONVEYOR_SCORING_RULES: the
                                       scoring rules file (scoring,
                                       console); "" for the built-in rules
                                       (deploy/scoring-rules.yaml) */
    int spam_max_links;             /* CONVEYOR_SPAM_MAX_LINKS: more links
                                       than this in the message is spam,
                                       default 3 */
    bool demo;                      /* CONVEYOR_DEMO != "0" */
    int64_t max_body_bytes;         /* CONVEYOR_MAX_BODY, default 1 MiB */
    int batch_max;                  /* events per transaction, default 256 */
    int batch_linger_ms;            /* CONVEYOR_BATCH_LINGER_MS: a stage that
                                       received fewer than batch_max events
                                       waits this long for more before it
                                       commits (fewer, larger commits under
                                       load); 0 (the default) commits at once */
    int lease_ms;                   /* re-send an unacknowledged event after
                                       this, default 3000 */
    int heartbeat_ms;               /* broker heartbeat, default 500 */
    int http_threads;               /* CONVEYOR_HTTP_THREADS, default 2 */
    int first_contact_minutes;      /* default 30 */
} cv_config_t;

/* Fills `cfg` for `service` from defaults, file, environment and argv
 * (--config FILE, --instance N, --admin-addr HOST:PORT, --data-dir DIR).
 * Creates data_dir when missing. Returns 0, or -1 after logging why (bad
 * file, unknown option, data_dir not creatable). */
int cv_config_load(cv_config_t *cfg, const char *service, int argc,
                   char **argv);

/* Splits "host:port" into a host and a port; "host" may be empty (any).
 * Returns 0, or -1 when the text is not of that form. */
int cv_config_split_addr(const char *addr, char *host, int host_size,
                         int *port);

#endif

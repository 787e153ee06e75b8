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
    char telegram_bot_token[256];   /* CONVEYOR_TELEGRAM_BOT_TOKEN: the
                                       notifier's bot for sendMessage */
    char smtp_url[CV_CONFIG_TEXT];  /* CONVEYOR_SMTP_URL, e.g.
                                       "smtp://127.0.0.1:2525"; "" = no
                                       e-mail notifications */
    char smtp_from[256];            /* CONVEYOR_SMTP_FROM, the sender */
    char smtp_user[256];            /* CONVEYOR_SMTP_USER, "" = no login */
    char smtp_password[256];        /* CONVEYOR_SMTP_PASSWORD */
    char webhook_secret[256];       /* CONVEYOR_WEBHOOK_SECRET: HMAC key of
                                       X-Conveyor-Signature; "" = unsigned */
    char notify_rates[256];         /* CONVEYOR_NOTIFY_RATES "kind:RATE[/
                                       BURST],…" for telegram (the bot),
                                       telegram_chat, host (webhook and
                                       slack hosts) and smtp; see the
                                       notifier's README section */
    char notify_host_rates[1024];   /* CONVEYOR_NOTIFY_HOST_RATES
                                       "host:RATE[/BURST],…": per-host
                                       overrides of the host rate */
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
    bool demo;                      /* CONVEYOR_DEMO (yes/no), default on */
    int64_t max_body_bytes;         /* CONVEYOR_MAX_BODY, default 1 MiB */
    int batch_max;                  /* events per transaction, default 256 */
    int batch_linger_ms;            /* CONVEYOR_BATCH_LINGER_MS: a busy
                                       stage commits events at most this
                                       often: after a commit of several,
                                       events that come sooner wait for it
                                       (fewer, larger commits under load);
                                       after a commit of one, or none, the
                                       next is committed at once; 0: no
                                       pause; default 3, every stage */
    bool bus_background;            /* CONVEYOR_BUS_BACKGROUND (yes/no):
                                       the bus thread, which applies the
                                       events this service receives, runs
                                       as a background thread (SCHED_IDLE):
                                       it takes a CPU only when no other
                                       thread wants it, and at its usual
                                       priority while a whole batch waits
                                       for it. Default on in the
                                       console, whose projections are off a
                                       lead's way, off elsewhere */
    int lease_ms;                   /* re-send an unacknowledged event after
                                       this, default 3000 */
    int heartbeat_ms;               /* broker heartbeat, default 500 */
    int http_threads;               /* CONVEYOR_HTTP_THREADS, default 2 */
    int first_contact_minutes;      /* default 30 */
    char routing_rules[CV_CONFIG_TEXT]; /* CONVEYOR_ROUTING_RULES: the
                                       routing rule chain (routing); "" for
                                       the built-in deploy/routing-rules.yaml */
    char routing_admin_addr[128];   /* CONVEYOR_ROUTING_ADMIN_ADDR: where the
                                       console asks routing to explain a
                                       lead (routing's admin port), default
                                       "127.0.0.1:9102" */
    int first_come_minutes;         /* CONVEYOR_FIRST_COME_MINUTES: how long
                                       a first_come offer waits for a claim
                                       when its rule gives no claim_minutes,
                                       default 15 */
    int notify_max_attempts;        /* CONVEYOR_NOTIFY_MAX_ATTEMPTS: a
                                       notification that failed this many
                                       times is a dead letter, default 20 */
    char default_timezone[64];      /* CONVEYOR_DEFAULT_TIMEZONE: IANA zone
                                       of a person or client with none,
                                       default "Europe/Moscow" */
    char calendar_file[CV_CONFIG_TEXT]; /* CONVEYOR_CALENDAR_FILE: the
                                       business calendar; "" for the
                                       built-in deploy/calendar-ru.yaml */
    int call_back_minutes;          /* CONVEYOR_CALL_BACK_MINUTES: a missed
                                       call is called back within this,
                                       default 10 */
    char escalation_delays[128];    /* CONVEYOR_ESCALATION_DELAYS "R,A,H":
                                       minutes from a missed due time to
                                       reminding the owner, from that to
                                       re-assigning, from that to telling
                                       the head of sales; default "0,15,30" */
    char followup_delays[512];      /* CONVEYOR_FOLLOWUP_DELAYS
                                       "name=N,…": the follow-up rules'
                                       delays (README "Follow-up"); unset
                                       names keep their defaults */
    char on_duty_pool[1024];        /* CONVEYOR_ON_DUTY_POOL "id,id": staff
                                       who take first contact when the
                                       owner is off shift; "" = none */
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

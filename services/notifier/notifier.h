/* notifier: tells staff and other systems about notifications.
 *
 * A NotificationRequested event names its receiver's targets (NotifyTarget);
 * each target is one delivery: a Telegram message (Bot API sendMessage), a
 * Slack/Mattermost-style incoming webhook, an e-mail over SMTP, or the
 * generic webhook (JSON signed with HMAC-SHA256). A request without any
 * target is delivered to the console inbox on arrival.
 *
 * Each delivery is a row of notifier_deliveries (what it sends, written
 * once) and a row of notifier_states (where it stands: pending, delivered
 * or dead, its attempts and last error), both keyed by (notification id,
 * channel) and written in the bus's transaction; the event is
 * acknowledged when that commits. A delivery's first attempt leaves just
 * before that commit, so the receiver does not wait for it (notifier_core.c,
 * "Early sends"; at least once all the same). Deliveries happen on one
 * delivery thread (notifier_pool) that drives every attempt in flight
 * through one curl multi handle (notifier_send). Results come back to the bus
 * thread through an eventfd source, many per transaction (notifier_pool
 * collects them for up to NOTIFIER_RESULT_LINGER_MS), where they are written to
 * the database and become NotificationDelivered (to the console), another
 * attempt after a backoff or a Retry-After (notifier_retry,
 * notifier_schedule), or, after notify_max_attempts or a permanent
 * refusal, a dead letter: NotificationFailed to the console.
 * NotificationResend from the console makes a dead letter pending again
 * with its attempts starting afresh. Every attempt of a delivery carries
 * the notification id as its Idempotency-Key; per-destination token
 * buckets (notifier_limits) space the attempts out.
 *
 * Threads: the SQLite connection belongs to the bus thread; the delivery
 * thread touches only the jobs it holds, its curl handles and the pool's
 * lists. */
#ifndef NOTIFIER_H
#define NOTIFIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_bus.h"
#include "cv_config.h"
#include "cv_store.h"

#define NOTIFIER_SERVICE    "notifier"
#define NOTIFIER_ERROR_SIZE 256 /* room for a curl error or a status line */

/* How a delivery reaches its receiver. */
typedef enum {
    NOTIFIER_CONSOLE,  /* no target: the console inbox is the channel */
    NOTIFIER_TELEGRAM, /* Bot API sendMessage to a chat id */
    NOTIFIER_SLACK,    /* {"text": ...} to an incoming-webhook URL */
    NOTIFIER_EMAIL,    /* a MIME message over SMTP */
    NOTIFIER_WEBHOOK,  /* the signed JSON body to a URL */
    NOTIFIER_CHANNEL_COUNT,
} notifier_channel_t;

/* "console", "telegram", "slack", "email", "webhook". */
const char *notifier_channel_name(notifier_channel_t channel);
/* The channel of a name, or -1. */
int notifier_channel_parse(const char *name);

/* One delivery waiting for (or in) an attempt. Owned by exactly one
 * holder at a time: the bus thread's lists and schedule, the pool's queue,
 * a transfer slot, or the pool's result list. */
typedef struct notifier_job notifier_job_t;
struct notifier_job {
    notifier_job_t *next;       /* link in whichever list holds the job */
    char *notification_id;      /* with channel the key; Idempotency-Key */
    notifier_channel_t channel; /* how it is delivered */
    char *destination;          /* chat id, URL or e-mail address */
    char *lead_id;              /* NULL when the request had none */
    char *staff_id;             /* NULL when the request had none */
    char *subject;              /* NULL when the request had none */
    char *text;                 /* NULL when the request had none */
    char *body;                 /* the webhook's JSON (every channel keeps
                                   it; only the webhook sends it) */
    char *trace_id;             /* trace of the request, carried onward */
    int attempts;               /* attempts finished so far */
    int64_t next_attempt_at;    /* conveyor-clock ms when the next is due */
    /* The outcome of the last attempt, written by the delivery thread
     * and read by the bus thread once the job is handed back. */
    bool delivered;                  /* the receiver took it */
    bool permanent;                  /* the receiver refused it for good */
    int http_status;                 /* HTTP (or SMTP) status, 0 for none */
    int64_t retry_after_ms;          /* the receiver's Retry-After, or -1 */
    int64_t finished_at;             /* conveyor-clock ms the attempt ended */
    char error[NOTIFIER_ERROR_SIZE]; /* why it failed; "" when delivered */
    bool row_found;                  /* the bus thread's write of this outcome
                                        found the job's pending row */
    bool first_out;                  /* a first attempt whose key is in
                                        the notifier's first_out set until
                                        its outcome is written */
};

/* --- notifier_job.c --- */

/* What a job is made of; strings are copied, NULL allowed except for
 * notification_id, destination and body. */
typedef struct {
    const char *notification_id; /* the request's id */
    notifier_channel_t channel;  /* the delivery's channel */
    const char *destination;     /* chat id, URL or address */
    const char *lead_id;         /* may be NULL */
    const char *staff_id;        /* may be NULL */
    const char *subject;         /* may be NULL */
    const char *text;            /* may be NULL */
    const char *body;            /* the webhook JSON */
    const char *trace_id;        /* may be NULL */
} notifier_job_fields_t;

/* A job with copies of the fields, in the same allocation as the job (its
 * string fields must not be replaced or freed on their own). NULL when out
 * of memory or when notification_id, destination or body is NULL. */
notifier_job_t *notifier_job_new(const notifier_job_fields_t *fields);
void notifier_job_destroy(notifier_job_t **self_p); /* NULL-safe */
/* Frees every job of a list linked through `next`. NULL-safe. */
void notifier_job_list_destroy(notifier_job_t **list_p);

/* The JSON text a webhook receives for a request: its payload_json when
 * that is valid JSON (returned as is, *owned NULL), else an object with
 * notification_id, lead_id, staff_id, subject and text (absent fields
 * left out) that the caller owns through *owned (free()). NULL when out
 * of memory. */
const char *notifier_job_body(const Conveyor__NotificationRequested *request,
                              char **owned);

/* --- notifier_message.c: what each channel sends (pure functions) --- */

/* The human text of a notification for chat and mail: the subject, a
 * blank line and the text, with "Lead id: <id>" appended when the text
 * does not mention the lead. The caller owns it; NULL when out of
 * memory. */
char *notifier_message_text(const char *subject, const char *text,
                            const char *lead_id, const char *notification_id);

/* Telegram's sendMessage body: {"chat_id": <number or text>, "text": ...}
 * with the text cut to Telegram's 4096 characters. Caller owns; NULL when
 * out of memory. */
char *notifier_telegram_body(const char *chat_id, const char *text);

/* What Telegram answered: true when "ok" is true. Otherwise fills
 * *error_code (its error_code, or 0), *retry_after_ms
 * (parameters.retry_after in ms, or -1) and `error` (its description). */
bool notifier_telegram_reply(const char *reply, size_t size, int *error_code,
                             int64_t *retry_after_ms, char *error,
                             size_t error_size);

/* A Slack-style incoming-webhook body: {"text": "*subject*\ntext"} with
 * &, < and > escaped as Slack asks. Caller owns; NULL when out of
 * memory. */
char *notifier_slack_body(const char *subject, const char *text,
                          const char *lead_id, const char *notification_id);

#define NOTIFIER_SIGNATURE_SIZE 96 /* "t=<20 digits>,v1=<64 hex>" and NUL */

/* The X-Conveyor-Signature value of a webhook body:
 * "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
 * 0, or -1 when out of memory. */
int notifier_sign(const char *secret, int64_t unix_seconds, const char *body,
                  char out[NOTIFIER_SIGNATURE_SIZE]);

/* What an e-mail is built from. */
typedef struct {
    const char *from;            /* From header, "Name <a@b>" or "a@b" */
    const char *to;              /* the receiver's address */
    const char *subject;         /* UTF-8; RFC 2047-encoded when needed */
    const char *text;            /* UTF-8 body, sent base64 */
    const char *notification_id; /* becomes the Message-ID */
    int64_t date_ms;             /* the Date header (UTC) */
} notifier_mail_t;

/* A complete RFC 5322 / MIME message with CRLF line ends: From, To,
 * Subject (encoded-words of UTF-8 base64 when not plain ASCII, folded),
 * Date, Message-ID "<notification id@from's domain>", MIME-Version,
 * text/plain; charset=UTF-8 in base64. Caller owns; NULL when out of
 * memory or when from/to hold CR, LF or angle brackets in the wrong
 * place. */
char *notifier_mail_build(const notifier_mail_t *mail);

/* The bare address of a From value ("Name <a@b>" gives "a@b"), into buf.
 * 0, or -1 when there is none or it does not fit. */
int notifier_mail_address(const char *from, char *buf, size_t size);

/* --- notifier_retry.c: what an attempt's outcome means (pure) --- */

typedef enum {
    NOTIFIER_VERDICT_DELIVERED, /* done */
    NOTIFIER_VERDICT_RETRY,     /* try again after a delay */
    NOTIFIER_VERDICT_DEAD,      /* a dead letter */
} notifier_verdict_t;

/* A status that will not get better by retrying: HTTP 4xx other than
 * 408 (timeout) and 429 (too many requests); SMTP 5xx. 0 (no answer) and
 * 5xx HTTP are worth retrying. */
bool notifier_status_permanent(notifier_channel_t channel, int status);

/* Delivered; dead when refused for good or after max_attempts attempts;
 * else retry. */
notifier_verdict_t notifier_verdict(const notifier_job_t *job,
                                    int max_attempts);

/* Parses a Retry-After value: delay seconds or an HTTP date (IMF-fixdate,
 * RFC 850 or asctime), relative to now_ms (conveyor clock, ms since the
 * epoch). Sets *delay_ms clamped to [min_ms, CV_BACKOFF_RETRY_AFTER_MAX_MS]
 * (a date in the past gives min_ms) and returns true; false for anything
 * else. */
bool notifier_retry_after(const char *value, int64_t now_ms, int64_t min_ms,
                          int64_t *delay_ms);

/* --- notifier_limits.c: per-destination token buckets --- */

typedef struct notifier_limits notifier_limits_t;

/* Limits from `rates` ("kind:RATE[/BURST],…" with kinds telegram (the
 * bot, all chats), telegram_chat (each chat), host (each webhook or Slack
 * host) and smtp (the mail server); kinds not named keep
 * NOTIFIER_LIMITS_DEFAULT's) and `host_rates` ("host:RATE[/BURST],…",
 * overrides for named hosts). NULL after logging when they do not parse. */
#define NOTIFIER_LIMITS_DEFAULT                                                \
    "telegram:30,telegram_chat:1,host:0,smtp:10/20"
notifier_limits_t *notifier_limits_new(const char *rates,
                                       const char *host_rates);
void notifier_limits_destroy(notifier_limits_t **self_p); /* NULL-safe */

/* Takes the tokens an attempt of `job` needs at monotonic time now_ms.
 * Returns 0 when it may go now, else the ms to wait before asking again
 * (nothing is then owed for the destination's own bucket; a per-chat
 * token may have been spent). */
int64_t notifier_limits_wait(notifier_limits_t *self, const notifier_job_t *job,
                             int64_t now_ms);

/* The host[:port] part of an http(s) URL, lower-cased, into buf. 0, or
 * -1 when the URL has none or it does not fit. */
int notifier_url_host(const char *url, char *buf, size_t size);

/* --- notifier_store.c --- */

extern const char *const notifier_migrations[];
extern const size_t notifier_migration_count;

/* INSERT OR IGNORE of a delivery; `delivered` rows (the console channel)
 * are stored delivered at `now`, others pending and due at `now`. Sets
 * *inserted to false when (id, channel) was already stored. 0, or -1
 * after logging. Bus thread, in its transaction. */
int notifier_store_insert(cv_store_t *store, const notifier_job_t *job,
                          bool delivered, int64_t now, bool *inserted);

/* Marks a pending delivery delivered, with its attempts and status. Sets
 * *updated to false when no pending row had that key (already delivered,
 * dead, or its insert was rolled back). 0, or -1 after logging. */
int notifier_store_mark_delivered(cv_store_t *store, const notifier_job_t *job,
                                  bool *updated);

/* Records a failed attempt: attempts, next_attempt_at, last status and
 * error. *updated as above. 0, or -1 after logging. */
int notifier_store_schedule_retry(cv_store_t *store, const notifier_job_t *job,
                                  bool *updated);

/* Makes a pending delivery a dead letter at job->finished_at. *updated as
 * above. 0, or -1 after logging. */
int notifier_store_mark_dead(cv_store_t *store, const notifier_job_t *job,
                             bool *updated);

/* Every pending delivery, oldest due first, as a list the caller owns.
 * 0, or -1 after logging (the list is then freed and NULL). */
int notifier_store_load_pending(cv_store_t *store, notifier_job_t **list_p,
                                size_t *count);

/* Makes the dead letters of a notification pending again, due at `now`
 * with no attempts, and returns them as jobs (the caller owns the list).
 * 0, or -1 after logging. */
int notifier_store_resend(cv_store_t *store, const char *notification_id,
                          int64_t now, notifier_job_t **list_p, size_t *count);

/* --- notifier_schedule.c: jobs waiting for their next attempt, earliest
 * first (a binary heap). Bus thread only. --- */

typedef struct {
    notifier_job_t **items; /* heap ordered by next_attempt_at */
    size_t count;           /* jobs held */
    size_t capacity;        /* slots allocated */
} notifier_schedule_t;

/* Takes the job. 0, or -1 when out of memory (the job is left with the
 * caller). */
int notifier_schedule_push(notifier_schedule_t *self, notifier_job_t *job);
/* Removes and returns the earliest job due at or before `now`, or NULL. */
notifier_job_t *notifier_schedule_pop_due(notifier_schedule_t *self,
                                          int64_t now);
/* next_attempt_at of the earliest job, or INT64_MAX when empty. */
int64_t notifier_schedule_next(const notifier_schedule_t *self);
/* Frees every job held and the heap itself. */
void notifier_schedule_clear(notifier_schedule_t *self);

/* --- notifier_send.c: the delivery thread's curl handles --- */

typedef struct notifier_sender notifier_sender_t;

/* One curl multi handle with `slots` transfer slots (attempts in flight
 * at once), reading the channels' settings (bot token, SMTP, webhook
 * secret) from `config`, which must outlive it. NULL after logging. */
notifier_sender_t *notifier_sender_new(const cv_config_t *config, int slots);
/* Abandons transfers in flight and frees their jobs. NULL-safe. */
void notifier_sender_destroy(notifier_sender_t **self_p);

/* Slots without a transfer. */
int notifier_sender_idle_slots(const notifier_sender_t *self);

/* Starts an attempt of the job on its channel in a free slot, taking the
 * job; the caller starts no more jobs than notifier_sender_idle_slots.
 * An attempt that ends before any transfer (no bot token, a bad address,
 * out of memory) is appended to **done at once, its outcome filled and
 * counted. */
void notifier_sender_start(notifier_sender_t *self, notifier_job_t *job,
                           notifier_job_t ***done);

/* Moves the transfers on without blocking and appends each finished
 * attempt's job, its outcome filled and the attempt counted, to **done
 * (a list tail). 0, or -1 after logging when curl fails as a whole. */
int notifier_sender_perform(notifier_sender_t *self, notifier_job_t ***done);

/* Sleeps until a transfer can move, a curl timeout is due,
 * notifier_sender_wakeup is called or timeout_ms pass. 0, or -1 after
 * logging. */
int notifier_sender_wait(notifier_sender_t *self, int timeout_ms);

/* Ends a notifier_sender_wait early (or the next one at once). Any
 * thread. */
void notifier_sender_wakeup(notifier_sender_t *self);

/* --- notifier_pool.c: the delivery thread --- */

typedef struct notifier_pool notifier_pool_t;

/* Starts the delivery thread, with up to `slots` attempts in flight, with
 * `config`'s settings. NULL after logging. curl_global_init must have
 * run. */
notifier_pool_t *notifier_pool_new(int slots, const cv_config_t *config);
/* Stops the thread (aborting transfers in progress), joins it and
 * frees every job still held. NULL-safe; nulls *self_p. */
void notifier_pool_destroy(notifier_pool_t **self_p);

/* Readable when many results are waiting (an eventfd). */
int notifier_pool_fd(const notifier_pool_t *self);
/* Queues a list of jobs for delivery, taking ownership. */
void notifier_pool_submit(notifier_pool_t *self, notifier_job_t *list);
/* Drains the fd and returns the finished jobs in the order they
 * finished; the caller owns them. */
notifier_job_t *notifier_pool_take_results(notifier_pool_t *self);
/* Monotonic ms when the oldest result not yet taken came back, or
 * INT64_MAX when none waits. The fd becomes readable only once many
 * results wait, so the bus thread takes the others after a short linger
 * (notifier_core). Any thread. */
int64_t notifier_pool_results_since(notifier_pool_t *self);

/* --- notifier_core.c: the bus side --- */

typedef struct notifier notifier_t;

/* Nothing is started yet (see notifier_attach); `slots` attempts may be
 * in flight at once. NULL after logging. */
notifier_t *notifier_new(int slots);
void notifier_destroy(notifier_t **self_p); /* NULL-safe; nulls *self_p */

/* The bus handler (argument: the notifier_t): NotificationRequested and
 * NotificationResend. */
int notifier_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

/* Reads the limits and attempts from `config` (which must outlive the
 * notifier), starts the pool, loads the undelivered jobs from the bus's
 * store and adds the results source to the bus. 0, or -1 after logging. */
int notifier_attach(notifier_t *self, cv_bus_t *bus, const cv_config_t *config);

#endif

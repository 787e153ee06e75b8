/* notifier_core: the notifier's bus side. Stores a delivery per target
 * of each request and hands the first attempt to the pool before that
 * turn commits (see "Early sends" below), writes the pool's results and
 * emits NotificationDelivered or (a dead letter) NotificationFailed, keeps
 * the retry schedule, and revives dead letters on NotificationResend.
 * Everything here runs on the bus thread. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "cv_backoff.h"
#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "notifier.h"

#define NOTIFIER_ID_MAX     200  /* longest notification id accepted */
#define NOTIFIER_REAPPLY_MS 1000 /* wait after a failed transaction */
#define NOTIFIER_WARN_EVERY 10   /* log every n-th failed attempt */
/* How long a finished delivery may wait to be written with others: the
 * webhook has been called already, so only the console's "delivered"
 * and the next attempt's schedule wait, while a busy notifier writes
 * many results per transaction instead of one each (100 ms saved no
 * measurable CPU and lengthened the tail, when first attempts still
 * waited for the turn that writes results to commit). */
#define NOTIFIER_RESULT_LINGER_MS 20

/* Early sends. A request's first attempt goes to the pool just before the
 * turn that stores its row commits (notifier_before_commit), not after:
 * the owner's notification does not wait for the notifier's commit (its
 * sync), one durable hop fewer on a lead's way (the scheduler's commit
 * already holds the request). Delivery stays at least once: if that turn
 * rolls back or the process dies before its COMMIT, the request comes
 * again and is delivered again under the same Idempotency-Key, as after
 * any crash between an attempt and its write. Two rules keep such copies
 * few:
 *  - every first attempt's key (notification id and channel) is kept in
 *    `first_out` from when its row is stored until its result is written;
 *    a request stored again meanwhile (a turn redone the careful way, a
 *    re-send after a rollback) makes no second attempt: the first one's
 *    result finds the new row;
 *  - after a turn that did not commit (a full disk, say), first attempts
 *    wait for their rows to be on disk, as retries always do, until a
 *    turn that stored first attempts commits again; so a notifier that
 *    cannot write does not call the receiver at every re-send of the same
 *    request. */
#define NOTIFIER_OUT_BUCKETS 1024 /* chains of `first_out`; few in use */

/* The key of a first attempt whose result is not written yet. */
typedef struct notifier_key notifier_key_t;
struct notifier_key {
    notifier_key_t *next;       /* chain of one bucket */
    notifier_channel_t channel; /* with the id the delivery's key */
    char notification_id[];     /* NUL-terminated */
};

/* A list with a tail pointer, for O(1) appends in order. */
typedef struct {
    notifier_job_t *head;  /* first job, NULL when empty */
    notifier_job_t **tail; /* the last job's `next` (or &head) */
} notifier_list_t;

struct notifier {
    int slots;                    /* deliveries in flight at most */
    const cv_config_t *config;    /* settings (not owned) */
    notifier_limits_t *limits;    /* per-destination buckets (owned) */
    int max_attempts;             /* attempts before a dead letter */
    notifier_pool_t *pool;        /* the delivery thread (owned) */
    cv_bus_t *bus;                /* set by notifier_attach (not owned) */
    notifier_schedule_t schedule; /* jobs waiting for an attempt */
    notifier_list_t staged;       /* stored by the handler in the open
                                     turn, handed to the pool once it has
                                     committed (notifier_turn_ended) */
    notifier_list_t early_ready;  /* stored in the open turn, handed to
                                     the pool before it commits
                                     (notifier_before_commit) */
    notifier_key_t *first_out[NOTIFIER_OUT_BUCKETS]; /* first attempts
                                     stored, result not written yet */
    bool early_off;               /* a turn failed, and none that stored
                                     first attempts has committed since:
                                     they wait for their commit */
    bool stored_first;            /* the open turn stored first attempts */
    notifier_list_t applied;      /* results written in the open turn */
    notifier_list_t unapplied;    /* results whose turn rolled back */
    int64_t reapply_at;           /* when to write `unapplied` again */
    uint64_t random;              /* xorshift state for the jitter */
    int64_t pending;              /* jobs held, not yet delivered */
    cv_metric_t *ok;              /* deliveries that succeeded */
    cv_metric_t *failed;          /* attempts that failed */
    cv_metric_t *attempts;        /* delivery attempts made */
    cv_metric_t *dead;            /* deliveries that became dead letters */
    cv_metric_t *depth;           /* gauge: `pending` */
};

static void notifier_list_init(notifier_list_t *list)
{
    list->head = NULL;
    list->tail = &list->head;
}

static void notifier_list_append(notifier_list_t *list, notifier_job_t *job)
{
    job->next = NULL;
    *list->tail = job;
    list->tail = &job->next;
}

/* Moves every job of `from` to the end of `to`. */
static void notifier_list_splice(notifier_list_t *to, notifier_list_t *from)
{
    if (from->head == NULL)
        return;
    *to->tail = from->head;
    to->tail = from->tail;
    notifier_list_init(from);
}

static notifier_job_t *notifier_list_take(notifier_list_t *list)
{
    notifier_job_t *head = list->head;
    notifier_list_init(list);
    return head;
}

static uint32_t notifier_random(notifier_t *self)
{
    uint64_t x = self->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->random = x;
    return (uint32_t)(x >> 32);
}

notifier_t *notifier_new(int slots)
{
    notifier_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot start the notifier: out of memory");
        return NULL;
    }
    self->slots = slots;
    notifier_list_init(&self->staged);
    notifier_list_init(&self->early_ready);
    notifier_list_init(&self->applied);
    notifier_list_init(&self->unapplied);
    if (getrandom(&self->random, sizeof(self->random), 0) !=
        (ssize_t)sizeof(self->random))
        self->random = (uint64_t)cv_clock_monotonic_ms();
    self->random |= 1; /* xorshift must not start at 0 */
    self->ok = cv_metrics_counter("conveyor_notifier_deliveries_ok_total",
                                  "notifications delivered");
    self->failed =
        cv_metrics_counter("conveyor_notifier_deliveries_failed_total",
                           "delivery attempts that failed");
    self->attempts = cv_metrics_counter("conveyor_notifier_attempts_total",
                                        "delivery attempts made");
    self->dead = cv_metrics_counter(
        "conveyor_notifier_dead_letters_total",
        "deliveries given up (attempts used up or refused for good)");
    self->depth = cv_metrics_gauge("conveyor_notifier_queue_depth",
                                   "notifications not yet delivered");
    return self;
}

void notifier_destroy(notifier_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_t *self = *self_p;
    notifier_pool_destroy(&self->pool);
    notifier_limits_destroy(&self->limits);
    notifier_schedule_clear(&self->schedule);
    notifier_job_list_destroy(&self->staged.head);
    notifier_job_list_destroy(&self->early_ready.head);
    for (int i = 0; i < NOTIFIER_OUT_BUCKETS; i++) {
        while (self->first_out[i] != NULL) {
            notifier_key_t *gone = self->first_out[i];
            self->first_out[i] = gone->next;
            free(gone);
        }
    }
    notifier_job_list_destroy(&self->applied.head);
    notifier_job_list_destroy(&self->unapplied.head);
    free(self);
    *self_p = NULL;
}

/* True for ids that can travel in an HTTP header: printable ASCII, no
 * spaces, not empty, not too long. */
static bool notifier_id_valid(const char *id)
{
    size_t length = 0;
    for (const char *c = id; *c != '\0'; c++, length++) {
        if (*c <= ' ' || *c > '~')
            return false;
    }
    return length > 0 && length <= NOTIFIER_ID_MAX;
}

/* `url` when it is an http(s) URL without blanks, else NULL (logged). */
static const char *notifier_usable_url(const char *id, const char *what,
                                       const char *url)
{
    if (url == NULL || url[0] == '\0')
        return NULL;
    if ((strncasecmp(url, "http://", 7) == 0 ||
         strncasecmp(url, "https://", 8) == 0) &&
        strpbrk(url, " \t\r\n") == NULL)
        return url;
    cv_log_warn("notification '%s': %s is not an http or https url; not "
                "using it",
                id, what);
    return NULL;
}

/* Text without control characters that fits a header or an SMTP
 * command, else NULL (logged). */
static const char *notifier_usable_text(const char *id, const char *what,
                                        const char *text)
{
    if (text == NULL || text[0] == '\0')
        return NULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < ' ' || *p == 0x7f) {
            cv_log_warn("notification '%s': %s holds control characters; "
                        "not using it",
                        id, what);
            return NULL;
        }
    }
    return text;
}

/* The destination of each channel the request's target names (NULL for
 * channels it does not use). */
static void notifier_destinations(const Conveyor__NotificationRequested *rq,
                                  const char *dest[NOTIFIER_CHANNEL_COUNT])
{
    for (int i = 0; i < NOTIFIER_CHANNEL_COUNT; i++)
        dest[i] = NULL;
    const Conveyor__NotifyTarget *target = rq->target;
    if (target == NULL)
        return;
    const char *id = rq->notification_id;
    dest[NOTIFIER_TELEGRAM] =
        notifier_usable_text(id, "telegram_chat_id", target->telegram_chat_id);
    dest[NOTIFIER_SLACK] =
        notifier_usable_url(id, "slack_webhook_url", target->slack_webhook_url);
    const char *email = notifier_usable_text(id, "email", target->email);
    if (email != NULL &&
        (strchr(email, '@') == NULL || strpbrk(email, " <>,") != NULL)) {
        cv_log_warn("notification '%s': email '%s' is not an address; not "
                    "using it",
                    id, email);
        email = NULL;
    }
    dest[NOTIFIER_EMAIL] = email;
    dest[NOTIFIER_WEBHOOK] =
        notifier_usable_url(id, "webhook_url", target->webhook_url);
}

/* Where a delivery goes, for logs: never a whole URL, which may hold a
 * secret (Slack's hook URLs are one). */
static void notifier_where(const notifier_job_t *job, char *buf, size_t size)
{
    if (job->channel == NOTIFIER_SLACK || job->channel == NOTIFIER_WEBHOOK) {
        char host[200];
        if (notifier_url_host(job->destination, host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "?");
        snprintf(buf, size, "%s %s", notifier_channel_name(job->channel), host);
        return;
    }
    snprintf(buf, size, "%s %s", notifier_channel_name(job->channel),
             job->destination);
}

/* Emits NotificationDelivered to the console. 0 or -1 (logged). */
static int notifier_emit_delivered(cv_bus_t *bus, const notifier_job_t *job,
                                   int attempts, int http_status,
                                   int64_t delivered_at)
{
    Conveyor__NotificationDelivered delivered =
        CONVEYOR__NOTIFICATION_DELIVERED__INIT;
    delivered.notification_id = job->notification_id;
    delivered.lead_id = job->lead_id;
    delivered.staff_id = job->staff_id;
    delivered.channel = (char *)notifier_channel_name(job->channel);
    delivered.has_attempts = true;
    delivered.attempts = attempts;
    delivered.has_http_status = http_status != 0;
    delivered.http_status = http_status;
    delivered.has_delivered_at = true;
    delivered.delivered_at = delivered_at;
    Conveyor__Envelope event = CONVEYOR__ENVELOPE__INIT;
    event.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_DELIVERED;
    event.notification_delivered = &delivered;
    event.trace_id = job->trace_id;
    return cv_bus_emit(bus, &event, "console", NULL);
}

/* Emits NotificationFailed (a dead letter) to the console. 0 or -1. */
static int notifier_emit_failed(cv_bus_t *bus, const notifier_job_t *job)
{
    Conveyor__NotificationFailed failed = CONVEYOR__NOTIFICATION_FAILED__INIT;
    failed.notification_id = job->notification_id;
    failed.lead_id = job->lead_id;
    failed.staff_id = job->staff_id;
    failed.channel = (char *)notifier_channel_name(job->channel);
    failed.has_attempts = true;
    failed.attempts = job->attempts;
    failed.has_http_status = job->http_status != 0;
    failed.http_status = job->http_status;
    failed.last_error = (char *)job->error;
    failed.has_failed_at = true;
    failed.failed_at = job->finished_at;
    failed.subject = job->subject;
    failed.text = job->text;
    Conveyor__Envelope event = CONVEYOR__ENVELOPE__INIT;
    event.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_FAILED;
    event.notification_failed = &failed;
    event.trace_id = job->trace_id;
    return cv_bus_emit(bus, &event, "console", NULL);
}

/* Queues a stored job for the pool once this turn has committed
 * (notifier_turn_ended hands it over). */
static void notifier_stage(notifier_t *self, notifier_job_t *job)
{
    notifier_list_append(&self->staged, job);
    self->pending++;
}

/* The bucket of `first_out` where a delivery's key is kept (FNV-1a). */
static notifier_key_t **notifier_out_bucket(notifier_t *self,
                                            const notifier_job_t *job)
{
    uint32_t hash = 2166136261u ^ (uint32_t)job->channel;
    for (const unsigned char *c = (const unsigned char *)job->notification_id;
         *c != '\0'; c++)
        hash = (hash ^ *c) * 16777619u;
    return &self->first_out[hash % NOTIFIER_OUT_BUCKETS];
}

/* Where the key of `job` is in `first_out`: the link that points at it,
 * or at the NULL ending its chain when it is not there. */
static notifier_key_t **notifier_out_find(notifier_t *self,
                                          const notifier_job_t *job)
{
    notifier_key_t **at = notifier_out_bucket(self, job);
    while (*at != NULL &&
           ((*at)->channel != job->channel ||
            strcmp((*at)->notification_id, job->notification_id) != 0))
        at = &(*at)->next;
    return at;
}

/* Forgets the key of a first attempt: its result is written, or its row
 * was rolled back before it left. */
static void notifier_out_forget(notifier_t *self, notifier_job_t *job)
{
    if (!job->first_out)
        return;
    job->first_out = false;
    notifier_key_t **at = notifier_out_find(self, job);
    notifier_key_t *gone = *at;
    if (gone != NULL) {
        *at = gone->next;
        free(gone);
    }
}

/* Drops the jobs of `*list_p` (from that link on) whose rows were rolled
 * back before they left: their keys go, they no longer count as pending,
 * and the list ends there. */
static void notifier_drop_unsent(notifier_t *self, notifier_job_t **list_p)
{
    for (notifier_job_t *job = *list_p; job != NULL; job = job->next) {
        notifier_out_forget(self, job);
        self->pending--;
    }
    notifier_job_list_destroy(list_p);
}

/* A stored job's first attempt: sent just before this turn commits
 * (early_ready), or, while early sends are off, once it has committed
 * (staged); its key is kept in `first_out` either way. When the key is
 * there already, an attempt is out (or about to leave) for this delivery
 * and the job is dropped: that attempt's result finds the row stored
 * now. */
static void notifier_first_attempt(notifier_t *self, notifier_job_t *job)
{
    notifier_key_t **at = notifier_out_find(self, job);
    if (*at != NULL) {
        cv_log_debug("notification '%s' on %s is on its way already",
                     job->notification_id, notifier_channel_name(job->channel));
        notifier_job_destroy(&job);
        return;
    }
    size_t id_size = strlen(job->notification_id) + 1;
    /* out of memory, the job goes without a key: a copy more at worst */
    notifier_key_t *key = malloc(sizeof(*key) + id_size);
    if (key != NULL) {
        key->next = NULL;
        key->channel = job->channel;
        memcpy(key->notification_id, job->notification_id, id_size);
        *at = key;
        job->first_out = true;
    }
    self->stored_first = true;
    if (self->early_off) {
        notifier_stage(self, job);
        return;
    }
    notifier_list_append(&self->early_ready, job);
    self->pending++;
}

/* A request: one row and job per target, or one delivered console row
 * when it names none. 0, or -1 after logging. */
static int notifier_on_requested(notifier_t *self, cv_bus_t *bus,
                                 const Conveyor__Envelope *event)
{
    const Conveyor__NotificationRequested *request =
        event->notification_requested;
    int rc = -1;
    int64_t now = cv_clock_now_ms();
    /* where this event's jobs start in `staged` and `early_ready`, to take
     * them back when its rows are rolled back */
    notifier_job_t **mark = self->staged.tail;
    notifier_job_t **early_mark = self->early_ready.tail;
    const char *dest[NOTIFIER_CHANNEL_COUNT];
    notifier_destinations(request, dest);
    bool any = false;
    for (int i = 0; i < NOTIFIER_CHANNEL_COUNT; i++)
        any = any || dest[i] != NULL;
    if (!any)
        dest[NOTIFIER_CONSOLE] = "inbox";
    char *owned = NULL; /* the body when it is not the payload itself */
    const char *body = notifier_job_body(request, &owned);
    if (body == NULL) {
        cv_error("cannot store notification '%s': out of memory",
                 request->notification_id);
        goto out;
    }
    for (int i = 0; i < NOTIFIER_CHANNEL_COUNT; i++) {
        if (dest[i] == NULL)
            continue;
        notifier_job_fields_t fields = {
            .notification_id = request->notification_id,
            .channel = (notifier_channel_t)i,
            .destination = dest[i],
            .lead_id = request->lead_id,
            .staff_id = request->staff_id,
            .subject = request->subject,
            .text = request->text,
            .body = body,
            .trace_id = event->trace_id,
        };
        notifier_job_t *job = notifier_job_new(&fields);
        if (job == NULL) {
            cv_error("cannot queue notification '%s': out of memory",
                     request->notification_id);
            goto out;
        }
        bool console = i == NOTIFIER_CONSOLE;
        bool inserted = false;
        if (notifier_store_insert(cv_bus_store(bus), job, console, now,
                                  &inserted) != 0) {
            notifier_job_destroy(&job);
            goto out;
        }
        if (!inserted) {
            cv_log_debug("notification '%s' on %s is already stored",
                         request->notification_id,
                         notifier_channel_name(job->channel));
            notifier_job_destroy(&job);
            continue;
        }
        if (console) {
            /* No target: the console inbox is the channel, and the event
             * to the console is the delivery. */
            int emitted = notifier_emit_delivered(bus, job, 1, 0, now);
            notifier_job_destroy(&job);
            if (emitted != 0)
                goto out;
            cv_metric_add(self->ok, 1);
            continue;
        }
        job->next_attempt_at = now;
        notifier_first_attempt(self, job);
    }
    rc = 0;
out:
    if (rc != 0) {
        /* nothing of this event has left yet: its jobs go with its rows */
        notifier_drop_unsent(self, early_mark);
        self->early_ready.tail = early_mark;
        notifier_drop_unsent(self, mark);
        self->staged.tail = mark;
    }
    free(owned);
    return rc;
}

/* The console asks for a dead letter again: its dead deliveries become
 * pending with attempts starting afresh. 0, or -1 after logging. */
static int notifier_on_resend(notifier_t *self, cv_bus_t *bus,
                              const Conveyor__Envelope *event)
{
    const Conveyor__NotificationResend *resend = event->notification_resend;
    notifier_job_t *list = NULL;
    size_t count = 0;
    if (notifier_store_resend(cv_bus_store(bus), resend->notification_id,
                              cv_clock_now_ms(), &list, &count) != 0)
        return -1;
    if (count == 0)
        cv_log_info("notification '%s' has no dead letter to resend",
                    resend->notification_id);
    else
        cv_log_info("resending notification '%s' on %zu channel%s (asked "
                    "by %s)",
                    resend->notification_id, count, count == 1 ? "" : "s",
                    resend->actor != NULL ? resend->actor : "the console");
    while (list != NULL) {
        notifier_job_t *job = list;
        list = job->next;
        notifier_stage(self, job);
    }
    return 0;
}

int notifier_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    notifier_t *self = arg;
    const char *id = NULL;
    if (event->body_case == CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED)
        id = event->notification_requested->notification_id;
    else if (event->body_case == CONVEYOR__ENVELOPE__BODY_NOTIFICATION_RESEND)
        id = event->notification_resend->notification_id;
    else {
        cv_log_warn("dropping event '%s' of type '%s': the notifier takes "
                    "only notification_requested and notification_resend",
                    event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
    if (!notifier_id_valid(id)) {
        cv_log_warn("dropping event '%s': notification id '%.*s' is empty, "
                    "too long or not printable ascii",
                    event->event_id, NOTIFIER_ID_MAX, id);
        return CV_BUS_DROP;
    }
    if (event->body_case == CONVEYOR__ENVELOPE__BODY_NOTIFICATION_RESEND)
        return notifier_on_resend(self, bus, event);
    return notifier_on_requested(self, bus, event);
}

/* Writes one attempt's outcome: delivered (and the event to the console),
 * a dead letter (and NotificationFailed), or the next attempt's time.
 * 0, or -1 after logging. */
static int notifier_apply(notifier_t *self, cv_bus_t *bus, notifier_job_t *job)
{
    cv_store_t *store = cv_bus_store(bus);
    char where[256]; /* made only for a log line (most deliveries log none) */
    notifier_verdict_t verdict = notifier_verdict(job, self->max_attempts);
    if (verdict == NOTIFIER_VERDICT_DELIVERED) {
        if (notifier_store_mark_delivered(store, job, &job->row_found) != 0)
            return -1;
        if (!job->row_found)
            return 0;
        if (job->attempts > 1) {
            notifier_where(job, where, sizeof(where));
            cv_log_info("notification '%s' delivered to %s after %d "
                        "attempts",
                        job->notification_id, where, job->attempts);
        }
        return notifier_emit_delivered(bus, job, job->attempts,
                                       job->http_status, job->finished_at);
    }
    if (verdict == NOTIFIER_VERDICT_DEAD) {
        if (notifier_store_mark_dead(store, job, &job->row_found) != 0)
            return -1;
        if (!job->row_found)
            return 0;
        notifier_where(job, where, sizeof(where));
        cv_log_warn("notification '%s' to %s is a dead letter after %d "
                    "attempt%s: %s",
                    job->notification_id, where, job->attempts,
                    job->attempts == 1 ? "" : "s", job->error);
        return notifier_emit_failed(bus, job);
    }
    int64_t delay = job->retry_after_ms;
    if (delay < 0)
        delay = cv_backoff_delay_ms(job->attempts, CV_BACKOFF_BASE_MS,
                                    CV_BACKOFF_CAP_MS, notifier_random(self));
    job->next_attempt_at = job->finished_at + delay;
    if (notifier_store_schedule_retry(store, job, &job->row_found) != 0)
        return -1;
    if (job->row_found) {
        /* The first failure and every n-th after it are worth a warning;
         * the rest would flood the log while a receiver is down. */
        bool notable =
            job->attempts == 1 || job->attempts % NOTIFIER_WARN_EVERY == 0;
        cv_log_level_t level = notable ? CV_LOG_WARN : CV_LOG_DEBUG;
        notifier_where(job, where, sizeof(where));
        cv_log(level,
               "cannot deliver notification '%s' to %s (attempt %d of %d): "
               "%s; retrying in %lld ms",
               job->notification_id, where, job->attempts, self->max_attempts,
               job->error, (long long)delay);
    }
    return 0;
}

/* Hands jobs whose destinations have a token now to the pool; the others
 * wait in the schedule until their bucket refills. */
static void notifier_dispatch(notifier_t *self, notifier_job_t *list)
{
    notifier_list_t ready;
    notifier_list_init(&ready);
    int64_t monotonic = cv_clock_monotonic_ms();
    int64_t now = cv_clock_now_ms();
    while (list != NULL) {
        notifier_job_t *job = list;
        list = job->next;
        int64_t wait = notifier_limits_wait(self->limits, job, monotonic);
        if (wait > 0) {
            job->next_attempt_at = now + wait;
            if (notifier_schedule_push(&self->schedule, job) == 0)
                continue;
            /* out of memory: better a burst than a lost delivery */
        }
        notifier_list_append(&ready, job);
    }
    notifier_pool_submit(self->pool, notifier_list_take(&ready));
}

/* The source's work: write the results that came back, hand due retries
 * to the pool. */
static int notifier_work(void *arg, cv_bus_t *bus, int64_t now)
{
    notifier_t *self = arg;
    notifier_list_t results;
    notifier_list_init(&results);
    if (self->unapplied.head != NULL && now >= self->reapply_at)
        notifier_list_splice(&results, &self->unapplied);
    for (notifier_job_t *job = notifier_pool_take_results(self->pool);
         job != NULL;) {
        notifier_job_t *next = job->next;
        notifier_list_append(&results, job);
        job = next;
    }
    int rc = 0;
    notifier_job_t *job = notifier_list_take(&results);
    while (job != NULL) {
        notifier_job_t *next = job->next;
        if (rc == 0 && notifier_apply(self, bus, job) != 0)
            rc = -1; /* the turn rolls back; `committed` keeps the rest */
        notifier_list_append(&self->applied, job);
        job = next;
    }
    notifier_list_t due;
    notifier_list_init(&due);
    for (;;) {
        notifier_job_t *ready = notifier_schedule_pop_due(&self->schedule, now);
        if (ready == NULL)
            break;
        notifier_list_append(&due, ready);
    }
    notifier_dispatch(self, notifier_list_take(&due));
    return rc;
}

/* Keeps the outcomes of a committed turn in memory: counts them, drops
 * what is done (delivered or dead), schedules retries. After a
 * rolled-back turn, the results are written again later. (The jobs staged
 * in the turn go out, or are dropped, in notifier_turn_ended.) */
static void notifier_committed(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    notifier_t *self = arg;
    if (!ok) {
        notifier_list_splice(&self->unapplied, &self->applied);
        self->reapply_at = cv_clock_now_ms() + NOTIFIER_REAPPLY_MS;
        return;
    }
    notifier_job_t *job = notifier_list_take(&self->applied);
    while (job != NULL) {
        notifier_job_t *next = job->next;
        notifier_verdict_t verdict = notifier_verdict(job, self->max_attempts);
        notifier_out_forget(self, job); /* its result is written */
        cv_metric_add(self->attempts, 1);
        cv_metric_add(job->delivered ? self->ok : self->failed, 1);
        if (verdict == NOTIFIER_VERDICT_DEAD && job->row_found)
            cv_metric_add(self->dead, 1);
        if (verdict != NOTIFIER_VERDICT_RETRY || !job->row_found) {
            if (!job->row_found)
                cv_log_debug("notification '%s' on %s has no pending row; "
                             "dropping this copy",
                             job->notification_id,
                             notifier_channel_name(job->channel));
            notifier_job_destroy(&job);
            self->pending--;
        } else if (notifier_schedule_push(&self->schedule, job) != 0) {
            cv_error("cannot schedule notification '%s': out of memory; "
                     "it is retried after a restart",
                     job->notification_id);
            notifier_job_destroy(&job);
            self->pending--;
        }
        job = next;
    }
    cv_metric_set(self->depth, self->pending);
}

/* After every turn (the bus calls it whether or not the source ran): the
 * jobs the handler staged in it go to the pool as soon as their rows are
 * committed, instead of after one more turn and commit made only to run
 * the source. A turn that rolled back takes their rows with it; its events
 * come again, so these copies are dropped rather than delivered twice. */
static void notifier_turn_ended(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    notifier_t *self = arg;
    /* a failed turn turns early sends off; one that stored first
     * attempts and committed turns them on again */
    if (!ok)
        self->early_off = true;
    else if (self->stored_first)
        self->early_off = false;
    self->stored_first = false;
    if (!ok) {
        /* early_ready holds jobs only when the turn failed before
         * notifier_before_commit */
        notifier_drop_unsent(self, &self->early_ready.head);
        notifier_list_init(&self->early_ready);
        notifier_drop_unsent(self, &self->staged.head);
        notifier_list_init(&self->staged);
    } else if (self->staged.head != NULL) {
        notifier_dispatch(self, notifier_list_take(&self->staged));
    }
    cv_metric_set(self->depth, self->pending);
}

/* Just before the turn's COMMIT: the first attempts of the requests
 * stored in it go to the pool ("Early sends" above). */
static int notifier_before_commit(void *arg, cv_bus_t *bus)
{
    (void)bus;
    notifier_t *self = arg;
    if (self->early_ready.head != NULL)
        notifier_dispatch(self, notifier_list_take(&self->early_ready));
    return 0;
}

static int64_t notifier_next_due(void *arg, cv_bus_t *bus)
{
    (void)bus;
    notifier_t *self = arg;
    int64_t next = notifier_schedule_next(&self->schedule);
    if (self->unapplied.head != NULL && self->reapply_at < next)
        next = self->reapply_at;
    /* results the pool did not announce (notifier_pool.c): due once the
     * oldest has lingered; measured on the monotonic clock, so a conveyor
     * clock that stands still (CONVEYOR_CLOCK_FILE) cannot hold them */
    int64_t since = notifier_pool_results_since(self->pool);
    if (since != INT64_MAX) {
        int64_t due =
            cv_clock_now_at_monotonic(since + NOTIFIER_RESULT_LINGER_MS);
        if (due < next)
            next = due;
    }
    return next;
}

int notifier_attach(notifier_t *self, cv_bus_t *bus, const cv_config_t *config)
{
    self->bus = bus;
    self->config = config;
    self->max_attempts = config->notify_max_attempts;
    self->limits =
        notifier_limits_new(config->notify_rates, config->notify_host_rates);
    if (self->limits == NULL)
        return -1;
    self->pool = notifier_pool_new(self->slots, config);
    if (self->pool == NULL)
        return -1;
    notifier_job_t *list = NULL;
    size_t count = 0;
    if (notifier_store_load_pending(cv_bus_store(bus), &list, &count) != 0)
        return -1;
    while (list != NULL) {
        notifier_job_t *job = list;
        list = job->next;
        if (notifier_schedule_push(&self->schedule, job) != 0) {
            notifier_job_destroy(&job);
            notifier_job_list_destroy(&list);
            return cv_error("cannot schedule the pending notifications: "
                            "out of memory");
        }
        self->pending++;
    }
    cv_metric_set(self->depth, self->pending);
    if (count > 0)
        cv_log_info("%zu undelivered notifications loaded", count);
    if (config->telegram_bot_token[0] == '\0')
        cv_log_info("telegram_bot_token is not set: telegram notifications "
                    "become dead letters");
    if (config->smtp_url[0] == '\0')
        cv_log_info("smtp_url is not set: e-mail notifications become dead "
                    "letters");
    cv_bus_source_t source = {
        .fd = notifier_pool_fd(self->pool),
        .work = notifier_work,
        .committed = notifier_committed,
        .next_due = notifier_next_due,
        .turn_ended = notifier_turn_ended,
        .before_commit = notifier_before_commit,
        .arg = self,
    };
    return cv_bus_add_source(bus, &source);
}

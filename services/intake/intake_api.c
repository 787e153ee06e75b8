/* intake_api: the public HTTP endpoint channels post leads to. */
#include "intake_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_ratelimit.h"
#include "cv_spam.h"
#include "cv_telegram.h"
#include "intake_channel.h"
#include "intake_import.h"

#define INTAKE_IDEMPOTENCY_KEY_MAX 255 /* bytes in an Idempotency-Key */

typedef struct {
    char *source;   /* the source name stored on its leads (owned) */
    char *key;      /* its API key (owned) */
} intake_key_t;

struct intake_api {
    intake_key_t *keys;      /* the sources allowed to post (owned) */
    size_t key_count;        /* entries in keys */
    intake_queue_t *queue;   /* where valid leads wait (not owned) */
    cv_ratelimit_t *limits;  /* requests per second per source (owned) */
    cv_spam_t *spam;         /* the spam rules (owned) */
    char telegram_secret[256]; /* X-Telegram-Bot-Api-Secret-Token; "" =
                                  the Telegram channel is closed */
    cv_metric_t *rejected;   /* 4xx answers */
    cv_metric_t *limited;    /* 429 answers */
    cv_metric_t *ignored;    /* channel events that make no lead */
    cv_metric_t *spam_found; /* leads stored as rejected: spam */
};

/* Copies text[0..len) without surrounding blanks; NULL when empty. */
static char *intake_api_trim(const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    return len > 0 ? strndup(text, len) : NULL;
}

/* Parses "source:key,source:key". An entry without ':' or with an empty
 * part is an error (named by position: keys are secrets, never logged). */
static int intake_api_parse_keys(intake_api_t *self, const char *text)
{
    size_t entry = 0;
    const char *at = text != NULL ? text : "";
    while (*at != '\0') {
        const char *comma = strchr(at, ',');
        size_t len = comma != NULL ? (size_t)(comma - at) : strlen(at);
        entry++;
        const char *colon = memchr(at, ':', len);
        char *source = NULL;
        char *key = NULL;
        if (colon != NULL) {
            source = intake_api_trim(at, (size_t)(colon - at));
            key = intake_api_trim(colon + 1, len - (size_t)(colon - at) - 1);
        }
        bool blank = true;
        for (size_t i = 0; i < len && blank; i++)
            blank = at[i] == ' ' || at[i] == '\t';
        if (!blank && (source == NULL || key == NULL)) {
            free(source);
            free(key);
            return cv_error("bad CONVEYOR_INTAKE_KEYS entry %zu: want "
                            "source:key", entry);
        }
        if (!blank) {
            intake_key_t *grown = realloc(
                self->keys, (self->key_count + 1) * sizeof(*self->keys));
            if (grown == NULL) {
                free(source);
                free(key);
                return cv_error("out of memory reading intake keys");
            }
            self->keys = grown;
            self->keys[self->key_count].source = source;
            self->keys[self->key_count].key = key;
            self->key_count++;
        }
        at += len;
        if (*at == ',')
            at++;
    }
    return 0;
}

intake_api_t *intake_api_new(const cv_config_t *config, intake_queue_t *queue)
{
    const char *keys = config->intake_keys;
    intake_api_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->queue = queue;
    snprintf(self->telegram_secret, sizeof(self->telegram_secret), "%s",
             config->telegram_secret);
    self->rejected = cv_metrics_counter(
        "conveyor_intake_leads_rejected_total",
        "lead requests refused with a 4xx status");
    self->limited = cv_metrics_counter(
        "conveyor_intake_rate_limited_total",
        "requests refused with 429: the source is over its rate");
    self->ignored = cv_metrics_counter(
        "conveyor_intake_channel_ignored_total",
        "channel events that make no lead (auto-replies, bounces, "
        "ringing calls, Telegram updates other than messages)");
    self->spam_found = cv_metrics_counter(
        "conveyor_intake_spam_total",
        "leads the spam check stored as rejected instead of routing");
    self->limits = cv_ratelimit_new(config->intake_rate, config->intake_rates);
    self->spam = cv_spam_new(config->spam_honeypot, config->spam_max_links,
                             config->spam_block_domains,
                             config->spam_block_phones);
    if (self->limits == NULL || self->spam == NULL ||
        intake_api_parse_keys(self, keys) != 0) {
        intake_api_destroy(&self);
        return NULL;
    }
    if (self->key_count == 0)
        cv_log_warn("no intake API keys (CONVEYOR_INTAKE_KEYS): every lead "
                    "will be refused with 401");
    else
        cv_log_info("%zu intake sources may post leads", self->key_count);
    return self;
}

void intake_api_destroy(intake_api_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    intake_api_t *self = *self_p;
    for (size_t i = 0; i < self->key_count; i++) {
        free(self->keys[i].source);
        free(self->keys[i].key);
    }
    free(self->keys);
    cv_ratelimit_destroy(&self->limits);
    cv_spam_destroy(&self->spam);
    free(self);
    *self_p = NULL;
}

/* Compares without stopping at the first difference, so the time taken
 * says nothing about how much of a guessed key was right. */
static bool intake_api_same_key(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
    return diff == 0;
}

/* The source owning `token`, or NULL. */
static const char *intake_api_source(const intake_api_t *self,
                                     const char *token)
{
    const char *found = NULL;
    for (size_t i = 0; i < self->key_count; i++) {
        if (intake_api_same_key(token, self->keys[i].key) && found == NULL)
            found = self->keys[i].source;
    }
    return found;
}

static bool intake_api_valid_idempotency_key(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > INTAKE_IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* Takes a token from `source`'s bucket; false after replying 429 with
 * Retry-After (whole seconds, rounded up) when there is none. */
static bool intake_api_within_rate(intake_api_t *self, cv_http_request_t *req,
                                   const char *source)
{
    int64_t retry_ms = 0;
    char retry[32];

    if (cv_ratelimit_take(self->limits, source, cv_clock_monotonic_ms(),
                          &retry_ms))
        return true;
    cv_metric_add(self->limited, 1);
    snprintf(retry, sizeof(retry), "%lld",
             (long long)((retry_ms + 999) / 1000 > 0 ? (retry_ms + 999) / 1000
                                                     : 1));
    cv_http_add_header(req, "Retry-After", retry);
    cv_http_reply_error(req, 429, "rate_limited", NULL,
                        "source '%s' is over its rate limit; retry after "
                        "%s s", source, retry);
    return false;
}

/* The source whose API key the request carries, with its Idempotency-Key
 * (NULL when absent) in *idempotency_key; or NULL after replying 401 or
 * 400. */
static const char *intake_api_authorise(intake_api_t *self,
                                        cv_http_request_t *req,
                                        const char **idempotency_key)
{
    const char *token = cv_http_bearer(req, true);
    const char *source = token != NULL ? intake_api_source(self, token)
                                       : NULL;
    if (source == NULL) {
        cv_metric_add(self->rejected, 1);
        cv_http_add_header(req, "WWW-Authenticate", "Bearer");
        cv_http_reply_error(req, 401, "unauthorized", NULL,
                            token == NULL ? "an API key is required "
                                            "(Authorization: Bearer <key>)"
                                          : "unknown API key");
        return NULL;
    }
    if (!intake_api_within_rate(self, req, source))
        return NULL;
    *idempotency_key = cv_http_header(req, "Idempotency-Key");
    if (*idempotency_key != NULL &&
        !intake_api_valid_idempotency_key(*idempotency_key)) {
        cv_metric_add(self->rejected, 1);
        cv_http_reply_error(req, 400, "invalid_idempotency_key", NULL,
                            "an Idempotency-Key is 1 to %d visible ASCII "
                            "characters", INTAKE_IDEMPOTENCY_KEY_MAX);
        return NULL;
    }
    return source;
}

/* POST /v1/import: a batch of a cold call list (intake_import.h). */
static void intake_api_post_import(intake_api_t *self, cv_http_request_t *req)
{
    const char *idempotency_key = NULL;
    const char *source = intake_api_authorise(self, req, &idempotency_key);
    if (source == NULL)
        return;
    int status = intake_import_post(self->queue, req, source,
                                    idempotency_key, self->spam);
    if (status >= 400 && status < 500)
        cv_metric_add(self->rejected, 1);
}

/* The honeypot field as the client sent it: unknown fields, the honeypot
 * among them, are kept in `extra`. NULL when absent or not text. */
static char *intake_api_honeypot(const cv_spam_t *spam,
                                 const intake_lead_t *lead)
{
    const char *name = cv_spam_honeypot(spam);
    if (name[0] == '\0' || lead->extra_json == NULL ||
        strstr(lead->extra_json, name) == NULL) /* the usual case: cheap */
        return NULL;
    json_t *extra = json_loads(lead->extra_json, 0, NULL);
    const char *value = json_string_value(json_object_get(extra, name));
    char *copy = value != NULL ? strdup(value) : NULL;
    json_decref(extra);
    return copy;
}

/* Runs the spam check; a lead it refuses keeps the reason and is stored
 * as rejected (scoring knocks it out), never routed. -1 when out of
 * memory. */
static int intake_api_check_spam(intake_api_t *self, intake_lead_t *lead)
{
    char reason[160];
    char *honeypot = intake_api_honeypot(self->spam, lead);
    cv_spam_lead_t check = {
        .honeypot_value = honeypot,
        .message = lead->message,
        .email = lead->email,
        .phone = lead->phone,
    };
    int spam = cv_spam_check(self->spam, &check, reason, sizeof(reason));
    free(honeypot);
    if (spam != 1)
        return 0;
    cv_metric_add(self->spam_found, 1);
    lead->spam_reason = strdup(reason);
    return lead->spam_reason != NULL ? 0 : -1;
}

/* Hands a parsed lead (in item->sub.lead) to the bus thread and suspends
 * the request until it is committed. With an idempotency key, the reply is
 * kept under it and `hash_a`+`hash_b` say what counts as the same request
 * (a channel event passes its own id: the same event is the same request
 * whatever the body). `borrowed`: they live in the request (its type and
 * body), which stays until the reply: they get a fingerprint, and are
 * kept to compare with a SHA-256 stored before fingerprints; otherwise
 * (a channel's event id, a few bytes) they get a SHA-256 as before.
 * Frees the item on failure. */
static void intake_api_submit(intake_api_t *self, cv_http_request_t *req,
                              intake_pending_t *item, const char *source,
                              const char *idempotency_key, const void *hash_a,
                              size_t a_size, const void *hash_b,
                              size_t b_size, bool borrowed)
{
    item->req = req;
    item->sub.lead.api_source = strdup(source);
    item->sub.lead.received_at = cv_clock_now_ms();
    if (idempotency_key != NULL)
        item->sub.idempotency_key = strdup(idempotency_key);
    /* the lead's id and the spam check are made here, in parallel, so
     * that the bus thread only has SQL left to run */
    if (item->sub.lead.api_source == NULL ||
        (idempotency_key != NULL && item->sub.idempotency_key == NULL) ||
        intake_api_check_spam(self, &item->sub.lead) != 0 ||
        intake_submission_prepare(&item->sub) != 0) {
        cv_http_reply_error(req, 503, "out_of_memory", NULL,
                            "the server is out of memory");
        intake_pending_free(item);
        return;
    }
    /* without a key the hash is never looked at */
    if (idempotency_key != NULL && borrowed) {
        intake_fingerprint(hash_a, a_size, hash_b, b_size,
                           item->sub.body_hash);
        item->sub.hashed_a = hash_a;
        item->sub.hashed_a_size = a_size;
        item->sub.hashed_b = hash_b;
        item->sub.hashed_b_size = b_size;
    } else if (idempotency_key != NULL) {
        cv_sha256_hex(hash_a, a_size, hash_b, b_size, item->sub.body_hash);
    }
    cv_http_suspend(req);
    if (intake_queue_push(self->queue, item) != 0) {
        /* shutting down: answer here, and undo the suspend */
        cv_http_reply_error(req, 503, "store_unavailable", NULL,
                            "intake is shutting down; try again");
        cv_http_resume(req);
        intake_pending_free(item);
    }
}

/* Answers a request that was refused with `error`. */
static void intake_api_refuse(intake_api_t *self, cv_http_request_t *req,
                              const intake_error_t *error)
{
    if (error->status < 500)
        cv_metric_add(self->rejected, 1);
    cv_http_reply_error(req, error->status, error->code,
                        error->field[0] != '\0' ? error->field : NULL, "%s",
                        error->message);
}

static void intake_api_post_lead(intake_api_t *self, cv_http_request_t *req)
{
    const char *idempotency_key = NULL;
    const char *source = intake_api_authorise(self, req, &idempotency_key);
    if (source == NULL)
        return;
    intake_pending_t *item = calloc(1, sizeof(*item));
    if (item == NULL) {
        cv_http_reply_error(req, 503, "out_of_memory", NULL,
                            "the server is out of memory");
        return;
    }
    const char *media_type = cv_http_content_type(req);
    intake_error_t error;
    if (intake_lead_parse(media_type, cv_http_header(req, "Content-Type"),
                          cv_http_body(req), cv_http_body_size(req),
                          &item->sub.lead, &error) != 0) {
        intake_api_refuse(self, req, &error);
        intake_pending_free(item);
        return;
    }
    /* the same key with another body (or another kind of body) is a
     * different request */
    intake_api_submit(self, req, item, source, idempotency_key, media_type,
                      strlen(media_type) + 1, cv_http_body(req),
                      cv_http_body_size(req), true);
}

/* POST /v1/channels/{phone,telegram,email}: the channel's body becomes a
 * lead object, read with the rules of POST /v1/leads; the channel's event
 * id is the idempotency key, so the same call, update or message posted
 * again is answered as before and stores nothing. An event that makes no
 * lead is answered 200 {"status":"ignored"}. */
static void intake_api_post_channel(intake_api_t *self, cv_http_request_t *req,
                                    const char *channel)
{
    const char *source;
    const char *unused_key = NULL;
    intake_channel_event_t event;
    intake_error_t error;
    intake_pending_t *item = NULL;
    int rc;

    if (strcmp(channel, "telegram") == 0) {
        /* Telegram authenticates with its secret header, not a key */
        if (!cv_telegram_secret_ok(
                self->telegram_secret,
                cv_http_header(req, "X-Telegram-Bot-Api-Secret-Token"))) {
            cv_metric_add(self->rejected, 1);
            cv_http_reply_error(req, 401, "unauthorized", NULL,
                                self->telegram_secret[0] == '\0'
                                    ? "the Telegram channel is not "
                                      "configured (CONVEYOR_TELEGRAM_SECRET)"
                                    : "wrong "
                                      "X-Telegram-Bot-Api-Secret-Token");
            return;
        }
        source = "telegram";
        if (!intake_api_within_rate(self, req, source))
            return;
    } else {
        source = intake_api_authorise(self, req, &unused_key);
        if (source == NULL)
            return;
    }
    if (strcmp(channel, "phone") == 0) {
        rc = intake_channel_phone(cv_http_header(req, "Content-Type"),
                                  cv_http_body(req), cv_http_body_size(req),
                                  &event, &error);
    } else if (strcmp(channel, "telegram") == 0) {
        rc = intake_channel_telegram(cv_http_body(req), cv_http_body_size(req),
                                     &event, &error);
    } else {
        const char *type = cv_http_content_type(req);
        if (type == NULL || strcmp(type, "message/rfc822") != 0) {
            cv_metric_add(self->rejected, 1);
            cv_http_reply_error(req, 415, "unsupported_media_type", NULL,
                                "an email is posted as message/rfc822, not "
                                "'%.100s'", type ? type : "");
            return;
        }
        rc = intake_channel_email(cv_http_body(req), cv_http_body_size(req),
                                  &event, &error);
    }
    if (rc != 0) {
        intake_api_refuse(self, req, &error);
        return;
    }
    if (event.ignored != NULL) {
        char body[512];
        int n;

        cv_metric_add(self->ignored, 1);
        cv_log_info("intake: %s event '%s' makes no lead: %s", channel,
                    event.event_key, event.ignored);
        n = snprintf(body, sizeof(body),
                     "{\"status\":\"ignored\",\"reason\":\"%s\"}",
                     event.ignored);
        cv_http_reply(req, 200, "application/json", body, (size_t)n);
        intake_channel_event_clear(&event);
        return;
    }
    item = calloc(1, sizeof(*item));
    if (item == NULL) {
        intake_channel_event_clear(&event);
        cv_http_reply_error(req, 503, "out_of_memory", NULL,
                            "the server is out of memory");
        return;
    }
    if (intake_lead_from_json(event.lead, &item->sub.lead, &error) != 0) {
        intake_api_refuse(self, req, &error);
        intake_channel_event_clear(&event);
        intake_pending_free(item);
        return;
    }
    item->sub.lead.call_back = event.urgent_callback;
    intake_api_submit(self, req, item, source, event.event_key, "event", 6,
                      event.event_key, strlen(event.event_key), false);
    intake_channel_event_clear(&event);
}

bool intake_api_handle(void *arg, cv_http_request_t *req)
{
    intake_api_t *self = arg;
    const char *path = cv_http_path(req);
    bool import = strcmp(path, "/v1/import") == 0;
    const char *channel = NULL;
    if (strncmp(path, "/v1/channels/", 13) == 0 &&
        (strcmp(path + 13, "phone") == 0 ||
         strcmp(path + 13, "telegram") == 0 ||
         strcmp(path + 13, "email") == 0))
        channel = path + 13;
    if (strcmp(path, "/v1/leads") != 0 && !import && channel == NULL)
        return false; /* healthz, metrics, or 404 */
    if (strcmp(cv_http_method(req), "POST") != 0) {
        cv_http_add_header(req, "Allow", "POST");
        cv_http_reply_error(req, 405, "method_not_allowed", NULL,
                            "'%s' takes POST", path);
        return true;
    }
    if (import)
        intake_api_post_import(self, req);
    else if (channel != NULL)
        intake_api_post_channel(self, req, channel);
    else
        intake_api_post_lead(self, req);
    return true;
}

/* notifier_send: the delivery thread's curl multi handle and its transfer
 * slots — Telegram's sendMessage, a Slack-style incoming webhook, the
 * signed generic webhook (HTTP POSTs over the multi's shared keep-alive
 * connections) and e-mail over SMTP (a second handle per slot, made on
 * its first mail).
 *
 * One thread drives every attempt in flight: a batch of deliveries costs
 * one wake-up of that thread and one poll for all their replies, where a
 * thread per attempt slept and woke (two context switches) for each
 * reply. Delivery thread only, except notifier_sender_wakeup. */
#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_backoff.h"
#include "cv_clock.h"
#include "cv_log.h"
#include "notifier.h"

#define NOTIFIER_SEND_TIMEOUT_MS 5000L  /* a whole HTTP attempt */
#define NOTIFIER_SEND_CONNECT_MS 2000L  /* of which connecting */
#define NOTIFIER_SMTP_TIMEOUT_MS 15000L /* a whole SMTP conversation */
#define NOTIFIER_SEND_HEADER     512    /* one request header line */
#define NOTIFIER_TELEGRAM_API    "https://api.telegram.org" /* default */
/* Reply bytes kept (Telegram's JSON); the rest is dropped. */
#define NOTIFIER_REPLY_MAX 16384

/* The bytes of the mail being uploaded. */
typedef struct {
    const char *data; /* the message (owned by the slot's attempt) */
    size_t size;      /* its length */
    size_t at;        /* bytes handed to curl so far */
} notifier_upload_t;

/* The headers of one HTTP attempt, as a list curl reads (and never
 * frees) during that attempt: built in place instead of with
 * curl_slist_append, which made two allocations per line. */
typedef struct {
    struct curl_slist lines[4];             /* the list's nodes */
    char idempotency[NOTIFIER_SEND_HEADER]; /* "Idempotency-Key: <id>" */
    char signature[NOTIFIER_SEND_HEADER];   /* "X-Conveyor-Signature: ..." */
} notifier_headers_t;

/* One transfer in flight (or a free slot): its handles and everything
 * curl reads or writes while the attempt runs. */
typedef struct {
    CURL *http;                  /* reused for every HTTP attempt */
    CURL *smtp;                  /* made on the first e-mail, or NULL */
    CURL *active;                /* the handle in the multi; NULL = free */
    notifier_job_t *job;         /* the attempt in flight, or NULL */
    char *body;                  /* request body built for it, or NULL */
    char *url;                   /* URL built for it (Telegram), or NULL */
    struct curl_slist *rcpt;     /* SMTP recipients, or NULL */
    notifier_headers_t headers;  /* HTTP headers of the attempt */
    notifier_upload_t upload;    /* the mail being sent */
    char error[CURL_ERROR_SIZE]; /* curl's text for the last failure */
    char reply[NOTIFIER_REPLY_MAX + 1]; /* the start of the reply body */
    size_t reply_size;                  /* bytes kept in reply */
} notifier_slot_t;

struct notifier_sender {
    CURLM *multi;              /* every transfer; owns the connections */
    const cv_config_t *config; /* bot token, SMTP, secret (not owned) */
    notifier_slot_t *slots;    /* `slot_count` slots */
    int slot_count;            /* transfers in flight at most */
    int busy;                  /* slots with a transfer */
};

/* Keeps the start of the receiver's reply; the rest is read and
 * dropped. */
static size_t notifier_send_keep(char *data, size_t size, size_t count,
                                 void *arg)
{
    notifier_slot_t *slot = arg;
    size_t length = size * count;
    size_t room = NOTIFIER_REPLY_MAX - slot->reply_size;
    size_t take = length < room ? length : room;
    memcpy(slot->reply + slot->reply_size, data, take);
    slot->reply_size += take;
    slot->reply[slot->reply_size] = '\0';
    return length;
}

/* Hands curl the next piece of the mail. */
static size_t notifier_send_read(char *buffer, size_t size, size_t count,
                                 void *arg)
{
    notifier_upload_t *upload = arg;
    size_t room = size * count;
    size_t left = upload->size - upload->at;
    size_t take = left < room ? left : room;
    memcpy(buffer, upload->data + upload->at, take);
    upload->at += take;
    return take;
}

/* True when no environment variable names a proxy for http(s) (what
 * curl would look up before every transfer: five getenv calls, each a
 * walk of the whole environment, about 1% of the notifier's
 * instructions); the handles then say "no proxy" once instead, which is
 * what curl would find. */
static bool notifier_send_no_proxy_env(void)
{
    static const char *const names[] = {
        "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
        "ALL_PROXY",  "no_proxy",    "NO_PROXY",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = getenv(names[i]);
        if (value != NULL && value[0] != '\0')
            return false;
    }
    return true;
}

/* A handle of `slot` with the options every request of it keeps. NULL
 * after logging. */
static CURL *notifier_send_handle(notifier_slot_t *slot, const char *protocols,
                                  long timeout_ms)
{
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        cv_error("cannot make a delivery handle: curl_easy_init failed");
        return NULL;
    }
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocols);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                              NOTIFIER_SEND_CONNECT_MS);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, notifier_send_keep);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, slot);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, slot->error);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_PRIVATE, slot);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_USERAGENT, "conveyor-notifier");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    if (rc == CURLE_OK && strcmp(protocols, "http,https") == 0 &&
        notifier_send_no_proxy_env()) {
        rc = curl_easy_setopt(curl, CURLOPT_PROXY, "");
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(curl, CURLOPT_NOPROXY, "");
    }
    if (rc != CURLE_OK) {
        cv_error("cannot set up a delivery handle: %s", curl_easy_strerror(rc));
        curl_easy_cleanup(curl);
        return NULL;
    }
    return curl;
}

notifier_sender_t *notifier_sender_new(const cv_config_t *config, int slots)
{
    notifier_sender_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        goto oom;
    self->config = config;
    self->slots = calloc((size_t)slots, sizeof(*self->slots));
    if (self->slots == NULL)
        goto oom;
    self->slot_count = slots;
    self->multi = curl_multi_init();
    if (self->multi == NULL) {
        cv_error("cannot make the delivery handle: curl_multi_init failed");
        goto fail;
    }
    /* Every slot may keep its receiver's connection open between
     * batches (curl's default keeps 4 per handle in the multi, which is
     * often one between batches: the rest were closed and opened again).
     * No HTTP/2 multiplexing: a transfer would wait for the first
     * connection to a host to learn whether it multiplexes, and a
     * delivery never needs more than one request per connection. */
    CURLMcode mrc =
        curl_multi_setopt(self->multi, CURLMOPT_MAXCONNECTS, (long)slots * 2);
    if (mrc == CURLM_OK)
        mrc = curl_multi_setopt(self->multi, CURLMOPT_PIPELINING,
                                (long)CURLPIPE_NOTHING);
    if (mrc != CURLM_OK) {
        cv_error("cannot set up the delivery handle: %s",
                 curl_multi_strerror(mrc));
        goto fail;
    }
    for (int i = 0; i < slots; i++) {
        notifier_slot_t *slot = &self->slots[i];
        slot->http =
            notifier_send_handle(slot, "http,https", NOTIFIER_SEND_TIMEOUT_MS);
        if (slot->http == NULL)
            goto fail;
    }
    return self;
oom:
    cv_error("cannot make the delivery handles: out of memory");
fail:
    notifier_sender_destroy(&self);
    return NULL;
}

/* Frees what the slot's attempt built and frees the slot. */
static void notifier_slot_clear(notifier_slot_t *slot)
{
    free(slot->body);
    free(slot->url);
    curl_slist_free_all(slot->rcpt);
    slot->body = NULL;
    slot->url = NULL;
    slot->rcpt = NULL;
    slot->active = NULL;
    slot->job = NULL;
}

void notifier_sender_destroy(notifier_sender_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_sender_t *self = *self_p;
    for (int i = 0; self->slots != NULL && i < self->slot_count; i++) {
        notifier_slot_t *slot = &self->slots[i];
        /* a transfer in flight is abandoned: its row stays pending and
         * is loaded again at the next start */
        if (slot->active != NULL)
            curl_multi_remove_handle(self->multi, slot->active);
        notifier_job_destroy(&slot->job);
        notifier_slot_clear(slot);
        if (slot->http != NULL)
            curl_easy_cleanup(slot->http);
        if (slot->smtp != NULL)
            curl_easy_cleanup(slot->smtp);
    }
    if (self->multi != NULL)
        curl_multi_cleanup(self->multi);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

int notifier_sender_idle_slots(const notifier_sender_t *self)
{
    return self->slot_count - self->busy;
}

void notifier_sender_wakeup(notifier_sender_t *self)
{
    curl_multi_wakeup(self->multi);
}

/* The headers of every HTTP attempt: JSON, the notification id as the
 * idempotency key, no "Expect: 100-continue" round trip, and the
 * webhook's signature when there is one. Returns the list's head. */
static struct curl_slist *notifier_send_headers(notifier_headers_t *headers,
                                                const notifier_job_t *job,
                                                const char *signature)
{
    snprintf(headers->idempotency, sizeof(headers->idempotency),
             "Idempotency-Key: %s", job->notification_id);
    struct curl_slist *line = headers->lines;
    line[0].data = (char *)"Content-Type: application/json";
    line[1].data = headers->idempotency;
    line[2].data = (char *)"Expect:";
    line[0].next = &line[1];
    line[1].next = &line[2];
    line[2].next = NULL;
    if (signature != NULL) {
        snprintf(headers->signature, sizeof(headers->signature),
                 "X-Conveyor-Signature: %s", signature);
        line[3].data = headers->signature;
        line[3].next = NULL;
        line[2].next = &line[3];
    }
    return headers->lines;
}

/* Starts `curl` in the multi for the slot's job. 0, or -1 with the job's
 * error set. */
static int notifier_send_add(notifier_sender_t *self, notifier_slot_t *slot,
                             CURL *curl)
{
    CURLMcode rc = curl_multi_add_handle(self->multi, curl);
    if (rc != CURLM_OK) {
        snprintf(slot->job->error, sizeof(slot->job->error),
                 "cannot start the transfer: %s", curl_multi_strerror(rc));
        return -1;
    }
    slot->active = curl;
    return 0;
}

/* Starts a POST of `body` (kept by the caller until the transfer ends) to
 * `url`. 0, or -1 with the job's error set. */
static int notifier_send_post(notifier_sender_t *self, notifier_slot_t *slot,
                              const char *url, const char *body,
                              const char *signature)
{
    CURL *curl = slot->http;
    struct curl_slist *headers =
        notifier_send_headers(&slot->headers, slot->job, signature);
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t)strlen(body));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    if (rc != CURLE_OK) {
        snprintf(slot->job->error, sizeof(slot->job->error), "%s",
                 curl_easy_strerror(rc));
        return -1;
    }
    return notifier_send_add(self, slot, curl);
}

/* Telegram: sendMessage to the chat. 0 when started, -1 when the attempt
 * is over already (its outcome set). */
static int notifier_start_telegram(notifier_sender_t *self,
                                   notifier_slot_t *slot)
{
    const cv_config_t *config = self->config;
    notifier_job_t *job = slot->job;
    if (config->telegram_bot_token[0] == '\0') {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error),
                 "telegram_bot_token is not set");
        return -1;
    }
    char *text = notifier_message_text(job->subject, job->text, job->lead_id,
                                       job->notification_id);
    slot->body =
        text != NULL ? notifier_telegram_body(job->destination, text) : NULL;
    free(text);
    const char *base = config->telegram_api_url[0] != '\0'
                           ? config->telegram_api_url
                           : NOTIFIER_TELEGRAM_API;
    size_t base_length = strlen(base);
    while (base_length > 0 && base[base_length - 1] == '/')
        base_length--;
    if (slot->body == NULL ||
        asprintf(&slot->url, "%.*s/bot%s/sendMessage", (int)base_length, base,
                 config->telegram_bot_token) < 0) {
        slot->url = NULL;
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }
    return notifier_send_post(self, slot, slot->url, slot->body, NULL);
}

/* What Telegram's reply means: its JSON decides, since a 200 may still
 * say "ok": false and a 429 names its wait in parameters. */
static void notifier_finish_telegram(notifier_slot_t *slot, bool http_ok)
{
    notifier_job_t *job = slot->job;
    if (job->http_status == 0)
        return; /* no answer: curl's error says why */
    int code = 0;
    int64_t retry_after = -1;
    char error[NOTIFIER_ERROR_SIZE];
    if (notifier_telegram_reply(slot->reply, slot->reply_size, &code,
                                &retry_after, error, sizeof(error))) {
        job->delivered = http_ok;
        if (!http_ok)
            snprintf(job->error, sizeof(job->error),
                     "http status %d with ok: true", job->http_status);
        return;
    }
    /* Telegram's error_code is the status that counts (it can differ
     * from a proxy's) */
    if (code != 0)
        job->http_status = code;
    else if (http_ok)
        job->http_status = 502; /* 200 without ok: retry */
    snprintf(job->error, sizeof(job->error), "%.200s (%d)", error,
             job->http_status);
    if (retry_after >= 0) {
        job->retry_after_ms =
            retry_after < CV_BACKOFF_BASE_MS ? CV_BACKOFF_BASE_MS : retry_after;
    }
}

/* A Slack or Mattermost incoming webhook: {"text": ...}. */
static int notifier_start_slack(notifier_sender_t *self, notifier_slot_t *slot)
{
    notifier_job_t *job = slot->job;
    slot->body = notifier_slack_body(job->subject, job->text, job->lead_id,
                                     job->notification_id);
    if (slot->body == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }
    return notifier_send_post(self, slot, job->destination, slot->body, NULL);
}

/* The generic webhook: the request's JSON, signed when a secret is set. */
static int notifier_start_webhook(notifier_sender_t *self,
                                  notifier_slot_t *slot)
{
    notifier_job_t *job = slot->job;
    char signature[NOTIFIER_SIGNATURE_SIZE];
    const char *secret = self->config->webhook_secret;
    bool signed_body = secret[0] != '\0';
    if (signed_body && notifier_sign(secret, cv_clock_now_ms() / 1000,
                                     job->body, signature) != 0) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }
    /* the header line is copied into the slot: `signature` may go */
    return notifier_send_post(self, slot, job->destination, job->body,
                              signed_body ? signature : NULL);
}

/* E-mail: the MIME message to the address over SMTP. */
static int notifier_start_email(notifier_sender_t *self, notifier_slot_t *slot)
{
    const cv_config_t *config = self->config;
    notifier_job_t *job = slot->job;
    char from[256];
    char to[300];
    char mail_from[270];
    if (config->smtp_url[0] == '\0') {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error), "smtp_url is not set");
        return -1;
    }
    if (notifier_mail_address(config->smtp_from, from, sizeof(from)) != 0) {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error),
                 "smtp_from '%.200s' has no address", config->smtp_from);
        return -1;
    }
    if (slot->smtp == NULL) {
        slot->smtp =
            notifier_send_handle(slot, "smtp,smtps", NOTIFIER_SMTP_TIMEOUT_MS);
        if (slot->smtp == NULL) {
            snprintf(job->error, sizeof(job->error),
                     "cannot make an smtp handle");
            return -1;
        }
    }
    char *text = notifier_message_text(
        NULL, job->text != NULL ? job->text : job->subject, job->lead_id,
        job->notification_id);
    notifier_mail_t mail = {
        .from = config->smtp_from,
        .to = job->destination,
        .subject = job->subject,
        .text = text,
        .notification_id = job->notification_id,
        .date_ms = cv_clock_now_ms(),
    };
    bool have_text = text != NULL;
    slot->body = have_text ? notifier_mail_build(&mail) : NULL;
    free(text);
    if (slot->body == NULL) {
        job->permanent = have_text; /* a bad address stays bad */
        snprintf(job->error, sizeof(job->error),
                 have_text ? "cannot write a mail to '%s'"
                           : "out of memory (%s)",
                 job->destination);
        return -1;
    }
    snprintf(to, sizeof(to), "<%s>", job->destination);
    slot->rcpt = curl_slist_append(NULL, to);
    if (slot->rcpt == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return -1;
    }
    snprintf(mail_from, sizeof(mail_from), "<%s>", from);
    slot->upload = (notifier_upload_t){slot->body, strlen(slot->body), 0};
    CURL *curl = slot->smtp;
    /* curl copies string options; the recipients list stays the slot's
     * until the transfer ends */
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_URL, config->smtp_url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, slot->rcpt);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_READFUNCTION, notifier_send_read);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_READDATA, &slot->upload);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                              (curl_off_t)slot->upload.size);
    if (rc == CURLE_OK && config->smtp_user[0] != '\0') {
        rc = curl_easy_setopt(curl, CURLOPT_USERNAME, config->smtp_user);
        if (rc == CURLE_OK)
            rc =
                curl_easy_setopt(curl, CURLOPT_PASSWORD, config->smtp_password);
        /* STARTTLS whenever the server offers it (smtps:// for TLS
         * from the start) */
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    }
    if (rc != CURLE_OK) {
        snprintf(job->error, sizeof(job->error), "%s", curl_easy_strerror(rc));
        return -1;
    }
    return notifier_send_add(self, slot, curl);
}

/* Ends the slot's attempt: counts it, stamps it and appends the job to
 * *done; the slot is free again. */
static void notifier_send_done(notifier_sender_t *self, notifier_slot_t *slot,
                               notifier_job_t ***done)
{
    notifier_job_t *job = slot->job;
    if (slot->active != NULL)
        curl_multi_remove_handle(self->multi, slot->active);
    /* the recipients die with the attempt: drop curl's pointer first (the
     * header list lives in the slot, the bodies are read only during a
     * transfer) */
    if (slot->rcpt != NULL && slot->smtp != NULL)
        curl_easy_setopt(slot->smtp, CURLOPT_MAIL_RCPT, NULL);
    notifier_slot_clear(slot);
    self->busy--;
    job->attempts++;
    job->finished_at = cv_clock_now_ms();
    job->next = NULL;
    **done = job;
    *done = &job->next;
}

void notifier_sender_start(notifier_sender_t *self, notifier_job_t *job,
                           notifier_job_t ***done)
{
    job->delivered = false;
    job->permanent = false;
    job->http_status = 0;
    job->retry_after_ms = -1;
    job->error[0] = '\0';
    notifier_slot_t *slot = NULL;
    for (int i = 0; i < self->slot_count && slot == NULL; i++)
        if (self->slots[i].job == NULL)
            slot = &self->slots[i];
    assert(slot != NULL); /* the caller takes at most the idle slots' jobs */
    slot->job = job;
    slot->error[0] = '\0';
    slot->reply[0] = '\0';
    slot->reply_size = 0;
    self->busy++;
    int rc = -1;
    switch (job->channel) {
    case NOTIFIER_TELEGRAM:
        rc = notifier_start_telegram(self, slot);
        break;
    case NOTIFIER_SLACK:
        rc = notifier_start_slack(self, slot);
        break;
    case NOTIFIER_EMAIL:
        rc = notifier_start_email(self, slot);
        break;
    case NOTIFIER_WEBHOOK:
        rc = notifier_start_webhook(self, slot);
        break;
    default:
        job->permanent = true;
        snprintf(job->error, sizeof(job->error), "no such channel");
        break;
    }
    if (rc != 0)
        notifier_send_done(self, slot, done); /* over before it began */
}

/* The outcome of a finished transfer, read while its handle still holds
 * the reply's status and headers. */
static void notifier_send_outcome(notifier_slot_t *slot, CURLcode result)
{
    notifier_job_t *job = slot->job;
    CURL *curl = slot->active;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    job->http_status = (int)status;
    if (result != CURLE_OK) {
        snprintf(job->error, sizeof(job->error), "%s",
                 slot->error[0] != '\0' ? slot->error
                                        : curl_easy_strerror(result));
    }
    if (curl == slot->smtp) {
        /* the server's last reply code is the status (5xx is final) */
        if (result == CURLE_OK) {
            job->delivered = true;
        } else if (status > 0) {
            size_t used = strlen(job->error);
            snprintf(job->error + used, sizeof(job->error) - used,
                     " (smtp %ld)", status);
        }
        return;
    }
    bool http_ok = result == CURLE_OK && status >= 200 && status <= 299;
    if (result == CURLE_OK && !http_ok) {
        snprintf(job->error, sizeof(job->error), "http status %ld", status);
        struct curl_header *retry_after = NULL;
        if ((status == 429 || status == 503) &&
            curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1,
                             &retry_after) == CURLHE_OK) {
            int64_t delay = 0;
            if (notifier_retry_after(retry_after->value, cv_clock_now_ms(),
                                     CV_BACKOFF_BASE_MS, &delay))
                job->retry_after_ms = delay;
        }
    }
    if (job->channel == NOTIFIER_TELEGRAM)
        notifier_finish_telegram(slot, http_ok);
    else
        job->delivered = http_ok;
}

int notifier_sender_perform(notifier_sender_t *self, notifier_job_t ***done)
{
    int running = 0;
    CURLMcode rc = curl_multi_perform(self->multi, &running);
    if (rc != CURLM_OK) {
        cv_error("cannot drive the deliveries: %s", curl_multi_strerror(rc));
        return -1;
    }
    int left = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(self->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *private = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private);
        notifier_slot_t *slot = (notifier_slot_t *)private;
        if (slot == NULL || slot->active != msg->easy_handle)
            continue;
        notifier_send_outcome(slot, msg->data.result);
        notifier_send_done(self, slot, done);
    }
    return 0;
}

int notifier_sender_wait(notifier_sender_t *self, int timeout_ms)
{
    CURLMcode rc = curl_multi_poll(self->multi, NULL, 0, timeout_ms, NULL);
    if (rc != CURLM_OK) {
        cv_error("cannot wait for the deliveries: %s", curl_multi_strerror(rc));
        return -1;
    }
    return 0;
}

/* notifier_send: one worker's curl handles and one attempt of a delivery
 * on its channel — Telegram's sendMessage, a Slack-style incoming webhook,
 * the signed generic webhook (all over one keep-alive HTTP handle), or an
 * e-mail over SMTP (a second handle, made on the first mail). Worker
 * thread only. */
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
#define NOTIFIER_TELEGRAM_API                                                  \
    "https://api.telegram.org" /* when                                         \
                  telegram_api_url is empty */
#define NOTIFIER_REPLY_MAX                                                     \
    16384 /* reply bytes kept (Telegram's                                      \
             JSON); the rest is dropped */

/* The bytes of the mail being uploaded. */
typedef struct {
    const char *data; /* the message (not owned) */
    size_t size;      /* its length */
    size_t at;        /* bytes handed to curl so far */
} notifier_upload_t;

struct notifier_sender {
    CURL *http;                  /* reused, so connections stay open */
    CURL *smtp;                  /* made on the first e-mail, or NULL */
    const cv_config_t *config;   /* bot token, SMTP, secret (not owned) */
    const atomic_bool *stop;     /* set when the pool shuts down */
    char error[CURL_ERROR_SIZE]; /* curl's text for the last failure */
    char reply[NOTIFIER_REPLY_MAX + 1]; /* the start of the reply body */
    size_t reply_size;                  /* bytes kept in reply */
    notifier_upload_t upload;           /* the mail in flight */
};

/* Keeps the start of the receiver's reply; the rest is read and
 * dropped. */
static size_t notifier_send_keep(char *data, size_t size, size_t count,
                                 void *arg)
{
    notifier_sender_t *self = arg;
    size_t length = size * count;
    size_t room = NOTIFIER_REPLY_MAX - self->reply_size;
    size_t take = length < room ? length : room;
    memcpy(self->reply + self->reply_size, data, take);
    self->reply_size += take;
    self->reply[self->reply_size] = '\0';
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

/* Aborts a transfer in progress when the pool is stopping. */
static int notifier_send_progress(void *arg, curl_off_t dltotal,
                                  curl_off_t dlnow, curl_off_t ultotal,
                                  curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const notifier_sender_t *self = arg;
    return atomic_load(self->stop) ? 1 : 0;
}

/* A handle with the options every request of it keeps. NULL after
 * logging. */
static CURL *notifier_send_handle(notifier_sender_t *self,
                                  const char *protocols, long timeout_ms)
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
        rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, self);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
                              notifier_send_progress);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_XFERINFODATA, self);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, self->error);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_USERAGENT, "conveyor-notifier");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    if (rc != CURLE_OK) {
        cv_error("cannot set up a delivery handle: %s", curl_easy_strerror(rc));
        curl_easy_cleanup(curl);
        return NULL;
    }
    return curl;
}

notifier_sender_t *notifier_sender_new(const cv_config_t *config,
                                       const atomic_bool *stop)
{
    notifier_sender_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot make a delivery handle: out of memory");
        return NULL;
    }
    self->config = config;
    self->stop = stop;
    self->http =
        notifier_send_handle(self, "http,https", NOTIFIER_SEND_TIMEOUT_MS);
    if (self->http == NULL)
        notifier_sender_destroy(&self);
    return self;
}

void notifier_sender_destroy(notifier_sender_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_sender_t *self = *self_p;
    if (self->http != NULL)
        curl_easy_cleanup(self->http);
    if (self->smtp != NULL)
        curl_easy_cleanup(self->smtp);
    free(self);
    *self_p = NULL;
}

/* The headers of one HTTP attempt, as a list curl reads (and never
 * frees) during that attempt: built in place per attempt instead of with
 * curl_slist_append, which made two allocations per line. */
typedef struct {
    struct curl_slist lines[4];             /* the list's nodes */
    char idempotency[NOTIFIER_SEND_HEADER]; /* "Idempotency-Key: <id>" */
    char signature[NOTIFIER_SEND_HEADER];   /* "X-Conveyor-Signature: ..." */
} notifier_headers_t;

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

/* Records a curl failure as the attempt's error. */
static void notifier_send_curl_error(notifier_sender_t *self,
                                     notifier_job_t *job, CURLcode rc)
{
    snprintf(job->error, sizeof(job->error), "%s",
             self->error[0] != '\0' ? self->error : curl_easy_strerror(rc));
}

/* POSTs `body` to `url`; fills job->http_status, the error, the
 * Retry-After of a 429 or 503, and self->reply. True when the receiver
 * answered 2xx. */
static bool notifier_send_post(notifier_sender_t *self, notifier_job_t *job,
                               const char *url, const char *body,
                               const char *signature)
{
    CURL *curl = self->http;
    bool ok = false;
    notifier_headers_t lines;
    struct curl_slist *headers = notifier_send_headers(&lines, job, signature);
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t)strlen(body));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    job->http_status = (int)status;
    if (rc != CURLE_OK)
        goto out;
    if (status >= 200 && status <= 299) {
        ok = true;
        goto out;
    }
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
out:
    if (rc != CURLE_OK)
        notifier_send_curl_error(self, job, rc);
    /* The header list dies here: drop curl's pointer to it first. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    return ok;
}

/* Telegram: sendMessage to the chat; its JSON decides, since a 200 may
 * still say "ok": false and a 429 names its wait in parameters. */
static void notifier_send_telegram(notifier_sender_t *self, notifier_job_t *job)
{
    const cv_config_t *config = self->config;
    char *text = NULL;
    char *body = NULL;
    char *url = NULL;
    if (config->telegram_bot_token[0] == '\0') {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error),
                 "telegram_bot_token is not set");
        goto out;
    }
    text = notifier_message_text(job->subject, job->text, job->lead_id,
                                 job->notification_id);
    body = text != NULL ? notifier_telegram_body(job->destination, text) : NULL;
    const char *base = config->telegram_api_url[0] != '\0'
                           ? config->telegram_api_url
                           : NOTIFIER_TELEGRAM_API;
    size_t base_length = strlen(base);
    while (base_length > 0 && base[base_length - 1] == '/')
        base_length--;
    if (body == NULL ||
        asprintf(&url, "%.*s/bot%s/sendMessage", (int)base_length, base,
                 config->telegram_bot_token) < 0) {
        url = NULL;
        snprintf(job->error, sizeof(job->error), "out of memory");
        goto out;
    }
    bool http_ok = notifier_send_post(self, job, url, body, NULL);
    if (job->http_status == 0)
        goto out; /* no answer: curl's error says why */
    int code = 0;
    int64_t retry_after = -1;
    char error[NOTIFIER_ERROR_SIZE];
    if (notifier_telegram_reply(self->reply, self->reply_size, &code,
                                &retry_after, error, sizeof(error))) {
        job->delivered = http_ok;
        if (!http_ok)
            snprintf(job->error, sizeof(job->error),
                     "http status %d with ok: true", job->http_status);
        goto out;
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
out:
    free(url);
    free(body);
    free(text);
}

/* A Slack or Mattermost incoming webhook: {"text": ...}, 2xx is done. */
static void notifier_send_slack(notifier_sender_t *self, notifier_job_t *job)
{
    char *body = notifier_slack_body(job->subject, job->text, job->lead_id,
                                     job->notification_id);
    if (body == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return;
    }
    job->delivered =
        notifier_send_post(self, job, job->destination, body, NULL);
    free(body);
}

/* The generic webhook: the request's JSON, signed when a secret is set. */
static void notifier_send_webhook(notifier_sender_t *self, notifier_job_t *job)
{
    char signature[NOTIFIER_SIGNATURE_SIZE];
    const char *secret = self->config->webhook_secret;
    bool signed_body = secret[0] != '\0';
    if (signed_body && notifier_sign(secret, cv_clock_now_ms() / 1000,
                                     job->body, signature) != 0) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        return;
    }
    job->delivered = notifier_send_post(self, job, job->destination, job->body,
                                        signed_body ? signature : NULL);
}

/* E-mail: the MIME message to the address over SMTP; the server's last
 * reply code is the status (5xx is final). */
static void notifier_send_email(notifier_sender_t *self, notifier_job_t *job)
{
    const cv_config_t *config = self->config;
    char *text = NULL;
    char *message = NULL;
    struct curl_slist *recipients = NULL;
    CURLcode rc = CURLE_OK;
    char from[256];
    char to[300];
    if (config->smtp_url[0] == '\0') {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error), "smtp_url is not set");
        goto out;
    }
    if (notifier_mail_address(config->smtp_from, from, sizeof(from)) != 0) {
        job->permanent = true;
        snprintf(job->error, sizeof(job->error),
                 "smtp_from '%.200s' has no address", config->smtp_from);
        goto out;
    }
    if (self->smtp == NULL) {
        self->smtp =
            notifier_send_handle(self, "smtp,smtps", NOTIFIER_SMTP_TIMEOUT_MS);
        if (self->smtp == NULL) {
            snprintf(job->error, sizeof(job->error),
                     "cannot make an smtp handle");
            goto out;
        }
    }
    text = notifier_message_text(NULL,
                                 job->text != NULL ? job->text : job->subject,
                                 job->lead_id, job->notification_id);
    notifier_mail_t mail = {
        .from = config->smtp_from,
        .to = job->destination,
        .subject = job->subject,
        .text = text,
        .notification_id = job->notification_id,
        .date_ms = cv_clock_now_ms(),
    };
    message = text != NULL ? notifier_mail_build(&mail) : NULL;
    if (message == NULL) {
        job->permanent = text != NULL; /* a bad address stays bad */
        snprintf(job->error, sizeof(job->error),
                 text != NULL ? "cannot write a mail to '%s'"
                              : "out of memory (%s)",
                 job->destination);
        goto out;
    }
    snprintf(to, sizeof(to), "<%s>", job->destination);
    recipients = curl_slist_append(NULL, to);
    if (recipients == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        goto out;
    }
    char mail_from[270];
    snprintf(mail_from, sizeof(mail_from), "<%s>", from);
    self->upload = (notifier_upload_t){message, strlen(message), 0};
    CURL *curl = self->smtp;
    rc = curl_easy_setopt(curl, CURLOPT_URL, config->smtp_url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_MAIL_FROM, mail_from);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_READFUNCTION, notifier_send_read);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_READDATA, &self->upload);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                              (curl_off_t)self->upload.size);
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
    if (rc == CURLE_OK)
        rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    job->http_status = (int)code;
    if (rc == CURLE_OK) {
        job->delivered = true;
    } else {
        notifier_send_curl_error(self, job, rc);
        if (code > 0) {
            size_t used = strlen(job->error);
            snprintf(job->error + used, sizeof(job->error) - used,
                     " (smtp %ld)", code);
        }
    }
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, NULL);
out:
    curl_slist_free_all(recipients);
    free(message);
    free(text);
}

void notifier_sender_deliver(notifier_sender_t *self, notifier_job_t *job)
{
    job->delivered = false;
    job->permanent = false;
    job->http_status = 0;
    job->retry_after_ms = -1;
    job->error[0] = '\0';
    self->error[0] = '\0';
    self->reply[0] = '\0';
    self->reply_size = 0;
    switch (job->channel) {
    case NOTIFIER_TELEGRAM:
        notifier_send_telegram(self, job);
        break;
    case NOTIFIER_SLACK:
        notifier_send_slack(self, job);
        break;
    case NOTIFIER_EMAIL:
        notifier_send_email(self, job);
        break;
    case NOTIFIER_WEBHOOK:
        notifier_send_webhook(self, job);
        break;
    default:
        job->permanent = true;
        snprintf(job->error, sizeof(job->error), "no such channel");
        break;
    }
    job->attempts++;
    job->finished_at = cv_clock_now_ms();
}

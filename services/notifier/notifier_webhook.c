/* notifier_webhook: one worker's keep-alive curl handle and the POST of a
 * job's body to its webhook. Worker thread only. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_backoff.h"
#include "cv_clock.h"
#include "cv_log.h"
#include "notifier.h"

#define NOTIFIER_WEBHOOK_TIMEOUT_MS 5000L  /* a whole attempt */
#define NOTIFIER_WEBHOOK_CONNECT_MS 2000L  /* of which connecting */
#define NOTIFIER_WEBHOOK_HEADER 512        /* "Idempotency-Key: <id>" */

struct notifier_webhook {
    CURL *curl;                     /* reused, so connections stay open */
    const atomic_bool *stop;        /* set when the pool shuts down */
    char error[CURL_ERROR_SIZE];    /* curl's text for the last failure */
};

/* The receiver's body is not used: read and dropped. */
static size_t notifier_webhook_discard(char *data, size_t size,
                                       size_t count, void *arg)
{
    (void)data;
    (void)arg;
    return size * count;
}

/* Aborts a transfer in progress when the pool is stopping. */
static int notifier_webhook_progress(void *arg, curl_off_t dltotal,
                                     curl_off_t dlnow, curl_off_t ultotal,
                                     curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const notifier_webhook_t *self = arg;
    return atomic_load(self->stop) ? 1 : 0;
}

notifier_webhook_t *notifier_webhook_new(const atomic_bool *stop)
{
    notifier_webhook_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot make a webhook handle: out of memory");
        return NULL;
    }
    self->stop = stop;
    self->curl = curl_easy_init();
    if (self->curl == NULL) {
        cv_error("cannot make a webhook handle: curl_easy_init failed");
        notifier_webhook_destroy(&self);
        return NULL;
    }
    CURL *curl = self->curl;
    CURLcode rc = CURLE_OK;
    /* Options that stay for every request made with this handle. */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                              NOTIFIER_WEBHOOK_TIMEOUT_MS);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                              NOTIFIER_WEBHOOK_CONNECT_MS);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                              notifier_webhook_discard);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
                              notifier_webhook_progress);
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
        cv_error("cannot set up a webhook handle: %s",
                 curl_easy_strerror(rc));
        notifier_webhook_destroy(&self);
    }
    return self;
}

void notifier_webhook_destroy(notifier_webhook_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_webhook_t *self = *self_p;
    if (self->curl != NULL)
        curl_easy_cleanup(self->curl);
    free(self);
    *self_p = NULL;
}

/* The request's headers: JSON, the idempotency key, and no "Expect:
 * 100-continue" round trip. NULL when out of memory. */
static struct curl_slist *notifier_webhook_headers(const notifier_job_t *job)
{
    char key[NOTIFIER_WEBHOOK_HEADER];
    snprintf(key, sizeof(key), "Idempotency-Key: %s", job->notification_id);
    const char *const lines[] = {"Content-Type: application/json", key,
                                 "Expect:"};
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *more = curl_slist_append(headers, lines[i]);
        if (more == NULL) {
            curl_slist_free_all(headers);
            return NULL;
        }
        headers = more;
    }
    return headers;
}

void notifier_webhook_post(notifier_webhook_t *self, notifier_job_t *job)
{
    CURL *curl = self->curl;
    job->delivered = false;
    job->http_status = 0;
    job->retry_after_ms = -1;
    job->error[0] = '\0';
    self->error[0] = '\0';
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    struct curl_slist *headers = notifier_webhook_headers(job);
    if (headers == NULL)
        goto out;
    rc = curl_easy_setopt(curl, CURLOPT_URL, job->webhook_url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t)strlen(job->body));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, job->body);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    job->http_status = (int)status;
    if (rc != CURLE_OK)
        goto out;
    if (status >= 200 && status <= 299) {
        job->delivered = true;
        goto out;
    }
    snprintf(job->error, sizeof(job->error), "http status %ld", status);
    struct curl_header *retry_after = NULL;
    if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1,
                         &retry_after)
        == CURLHE_OK) {
        int64_t delay = 0;
        if (cv_backoff_parse_retry_after(retry_after->value,
                                         CV_BACKOFF_BASE_MS, &delay))
            job->retry_after_ms = delay;
    }
out:
    if (rc != CURLE_OK)
        snprintf(job->error, sizeof(job->error), "%s",
                 self->error[0] != '\0' ? self->error
                                        : curl_easy_strerror(rc));
    /* The header list dies here: drop curl's pointer to it first. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    job->attempts++;
    job->finished_at = cv_clock_now_ms();
}

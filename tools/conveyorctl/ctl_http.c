/* ctl_http: keep-alive libcurl connections to intake, a few transfers at
 * once (curl's multi interface), so that intake checks the next batch on
 * an HTTP thread while its bus thread stores the previous one. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

#define CTL_HTTP_CONNECT_S 5    /* to open a connection */
#define CTL_HTTP_TIMEOUT_S 120  /* for a whole batch: stored, then answered */
#define CTL_HTTP_POLL_MS   1000 /* longest wait in one curl_multi_poll */

/* One transfer slot: its own easy handle, so its own connection. */
typedef struct {
    CURL *easy;                 /* reused: the connection stays open */
    struct curl_slist *headers; /* of the transfer under way (owned) */
    ctl_reply_t reply;          /* filled by the callbacks */
    bool busy;                  /* added to the multi handle */
} ctl_http_slot_t;

struct ctl_http {
    CURLM *multi;           /* runs the transfers */
    ctl_http_slot_t *slots; /* `count` of them (owned) */
    int count;              /* slots */
    char base[512];         /* "http://host:port" */
    char auth[1024];        /* "Authorization: Bearer <key>" */
};

ctl_http_t *ctl_http_new(const char *intake, const char *key, int slots)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            ctl_error("cannot initialise libcurl");
            return NULL;
        }
        curl_ready = true;
    }
    ctl_http_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    bool has_scheme = strncmp(intake, "http://", 7) == 0 ||
                      strncmp(intake, "https://", 8) == 0;
    size_t len = strlen(intake);
    while (len > 0 && intake[len - 1] == '/')
        len--;
    int n = snprintf(self->base, sizeof(self->base), "%s%.*s",
                     has_scheme ? "" : "http://", (int)len, intake);
    int m = snprintf(self->auth, sizeof(self->auth), "Authorization: Bearer %s",
                     key);
    self->multi = curl_multi_init();
    self->slots = calloc((size_t)slots, sizeof(*self->slots));
    self->count = slots;
    bool ok = n > 0 && (size_t)n < sizeof(self->base) && m > 0 &&
              (size_t)m < sizeof(self->auth) && self->multi != NULL &&
              self->slots != NULL && strpbrk(key, "\r\n") == NULL;
    for (int i = 0; ok && i < slots; i++) {
        self->slots[i].easy = curl_easy_init();
        ok = self->slots[i].easy != NULL;
    }
    if (!ok) {
        ctl_error("unusable intake address or API key");
        ctl_http_destroy(&self);
    }
    return self;
}

void ctl_http_destroy(ctl_http_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    ctl_http_t *self = *self_p;
    for (int i = 0; self->slots != NULL && i < self->count; i++) {
        ctl_http_slot_t *slot = &self->slots[i];
        if (slot->busy)
            curl_multi_remove_handle(self->multi, slot->easy);
        if (slot->easy != NULL)
            curl_easy_cleanup(slot->easy);
        curl_slist_free_all(slot->headers);
        ctl_reply_clear(&slot->reply);
    }
    free(self->slots);
    if (self->multi != NULL)
        curl_multi_cleanup(self->multi);
    free(self);
    *self_p = NULL;
}

const char *ctl_http_url(const ctl_http_t *self)
{
    return self->base;
}

void ctl_reply_clear(ctl_reply_t *reply)
{
    if (reply == NULL)
        return;
    free(reply->body);
    memset(reply, 0, sizeof(*reply));
    reply->retry_after_s = -1;
}

static size_t ctl_http_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    ctl_reply_t *reply = arg;
    size_t n = size * nmemb;
    char *grown = realloc(reply->body, reply->size + n + 1);
    if (grown == NULL)
        return 0; /* makes curl fail the transfer */
    memcpy(grown + reply->size, data, n);
    reply->size += n;
    grown[reply->size] = '\0';
    reply->body = grown;
    return n;
}

static size_t ctl_http_on_header(char *data, size_t size, size_t nmemb,
                                 void *arg)
{
    ctl_reply_t *reply = arg;
    size_t n = size * nmemb;
    static const char replayed[] = "Idempotent-Replayed:";
    static const char retry[] = "Retry-After:";
    if (n > sizeof(replayed) - 1 &&
        strncasecmp(data, replayed, sizeof(replayed) - 1) == 0) {
        const char *v = data + sizeof(replayed) - 1;
        size_t left = n - (sizeof(replayed) - 1);
        while (left > 0 && *v == ' ') {
            v++;
            left--;
        }
        reply->replayed = left >= 4 && strncasecmp(v, "true", 4) == 0;
    } else if (n > sizeof(retry) - 1 &&
               strncasecmp(data, retry, sizeof(retry) - 1) == 0) {
        char digits[16];
        size_t len = n - (sizeof(retry) - 1);
        snprintf(digits, sizeof(digits), "%.*s", (int)(len < 15 ? len : 15),
                 data + sizeof(retry) - 1);
        reply->retry_after_s = strtol(digits, NULL, 10);
    }
    return n;
}

int ctl_http_start(ctl_http_t *self, int index, const char *path,
                   const char *idempotency_key, const char *body, size_t size)
{
    ctl_http_slot_t *slot = &self->slots[index];
    if (slot->busy)
        return ctl_error("transfer slot %d is busy", index);
    ctl_reply_clear(&slot->reply);
    curl_slist_free_all(slot->headers);
    slot->headers = NULL;
    char url[1024];
    char key_header[320];
    snprintf(url, sizeof(url), "%s%s", self->base, path);
    snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s",
             idempotency_key);
    const char *lines[] = {
        "Content-Type: application/json",
        self->auth,
        key_header,
        /* no "Expect: 100-continue" round trip before each batch */
        "Expect:",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct curl_slist *more = curl_slist_append(slot->headers, lines[i]);
        if (more == NULL)
            return ctl_error("out of memory");
        slot->headers = more;
    }
    CURL *c = slot->easy;
    /* a reset keeps the handle's open connection */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, slot->headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_http_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &slot->reply);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ctl_http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &slot->reply);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CTL_HTTP_CONNECT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)CTL_HTTP_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, slot);
    if (curl_multi_add_handle(self->multi, c) != CURLM_OK)
        return ctl_error("cannot start a transfer to '%s'", self->base);
    slot->busy = true;
    return 0;
}

int ctl_http_wait(ctl_http_t *self, int *index, ctl_reply_t *reply)
{
    for (;;) {
        int running = 0;
        if (curl_multi_perform(self->multi, &running) != CURLM_OK)
            return ctl_error("libcurl failed running transfers to '%s'",
                             self->base);
        int queued = 0;
        CURLMsg *msg = curl_multi_info_read(self->multi, &queued);
        if (msg != NULL && msg->msg == CURLMSG_DONE) {
            ctl_http_slot_t *slot = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                              (char **)&slot);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(self->multi, slot->easy);
            slot->busy = false;
            curl_slist_free_all(slot->headers);
            slot->headers = NULL;
            *reply = slot->reply;
            memset(&slot->reply, 0, sizeof(slot->reply));
            slot->reply.retry_after_s = -1;
            if (rc != CURLE_OK) {
                snprintf(reply->error, sizeof(reply->error), "%s",
                         curl_easy_strerror(rc));
                reply->status = 0;
            } else {
                curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE,
                                  &reply->status);
            }
            if (reply->body == NULL) {
                reply->body = strdup("");
                if (reply->body == NULL)
                    return ctl_error("out of memory");
            }
            *index = (int)(slot - self->slots);
            return 1;
        }
        if (running == 0 && msg == NULL)
            return 0;
        if (curl_multi_poll(self->multi, NULL, 0, CTL_HTTP_POLL_MS, NULL) !=
            CURLM_OK)
            return ctl_error("libcurl failed waiting for '%s'", self->base);
    }
}

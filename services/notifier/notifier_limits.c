/* notifier_limits: per-destination token buckets (common/cv_ratelimit),
 * so a burst of notifications does not trip a receiver's own limits:
 * Telegram allows a bot about 30 messages a second overall and one a
 * second per chat; a webhook host or a mail server gets its own budget.
 * Bus thread only (cv_ratelimit is thread-safe anyway). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_log.h"
#include "cv_ratelimit.h"
#include "notifier.h"

/* The buckets, one limiter per kind of destination. */
typedef enum {
    NOTIFIER_LIMIT_TELEGRAM,      /* the bot: key "bot" */
    NOTIFIER_LIMIT_TELEGRAM_CHAT, /* key: the chat id */
    NOTIFIER_LIMIT_HOST,          /* key: host[:port] of a URL */
    NOTIFIER_LIMIT_SMTP,          /* key "smtp" */
    NOTIFIER_LIMIT_COUNT,
} notifier_limit_kind_t;

static const char *const notifier_limit_names[NOTIFIER_LIMIT_COUNT] = {
    "telegram",
    "telegram_chat",
    "host",
    "smtp",
};

struct notifier_limits {
    cv_ratelimit_t *buckets[NOTIFIER_LIMIT_COUNT]; /* owned */
};

/* Sets specs[kind] for each "kind:RATE[/BURST]" of `rates`. 0, or -1
 * after logging an unknown kind or a malformed item. */
static int notifier_limits_parse(const char *rates, char specs[][64])
{
    const char *p = rates;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t length = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char item[128];
        if (length >= sizeof(item))
            return cv_error("cannot use notify rate '%.*s': too long",
                            (int)length, p);
        memcpy(item, p, length);
        item[length] = '\0';
        p = comma != NULL ? comma + 1 : NULL;
        if (length == 0)
            continue;
        char *colon = strchr(item, ':');
        if (colon == NULL)
            return cv_error("cannot use notify rate '%s': expected "
                            "kind:RATE[/BURST]",
                            item);
        *colon = '\0';
        int kind = -1;
        for (int i = 0; i < NOTIFIER_LIMIT_COUNT; i++)
            if (strcmp(item, notifier_limit_names[i]) == 0)
                kind = i;
        double rate;
        double burst;
        if (kind < 0)
            return cv_error("cannot use notify rate '%s': the kinds are "
                            "telegram, telegram_chat, host and smtp",
                            item);
        if (cv_ratelimit_parse(colon + 1, &rate, &burst) != 0)
            return cv_error("cannot use notify rate '%s:%s': expected "
                            "RATE[/BURST]",
                            item, colon + 1);
        snprintf(specs[kind], 64, "%s", colon + 1);
    }
    return 0;
}

notifier_limits_t *notifier_limits_new(const char *rates,
                                       const char *host_rates)
{
    char specs[NOTIFIER_LIMIT_COUNT][64];
    memset(specs, 0, sizeof(specs));
    notifier_limits_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot make the notify rate limits: out of memory");
        return NULL;
    }
    if (notifier_limits_parse(NOTIFIER_LIMITS_DEFAULT, specs) != 0 ||
        notifier_limits_parse(rates, specs) != 0)
        goto fail;
    for (int i = 0; i < NOTIFIER_LIMIT_COUNT; i++) {
        self->buckets[i] = cv_ratelimit_new(
            specs[i], i == NOTIFIER_LIMIT_HOST ? host_rates : NULL);
        if (self->buckets[i] == NULL)
            goto fail;
    }
    return self;
fail:
    notifier_limits_destroy(&self);
    return NULL;
}

void notifier_limits_destroy(notifier_limits_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    notifier_limits_t *self = *self_p;
    for (int i = 0; i < NOTIFIER_LIMIT_COUNT; i++)
        cv_ratelimit_destroy(&self->buckets[i]);
    free(self);
    *self_p = NULL;
}

int notifier_url_host(const char *url, char *buf, size_t size)
{
    const char *start = strstr(url, "://");
    if (start == NULL)
        return -1;
    start += 3;
    size_t length = strcspn(start, "/?#");
    /* user:password@ is not part of the host */
    const char *at = memchr(start, '@', length);
    if (at != NULL) {
        length -= (size_t)(at + 1 - start);
        start = at + 1;
    }
    if (length == 0 || length >= size)
        return -1;
    for (size_t i = 0; i < length; i++)
        buf[i] = (char)tolower((unsigned char)start[i]);
    buf[length] = '\0';
    return 0;
}

/* Takes a token of `kind` for `key`; 0 or the wait in ms. */
static int64_t notifier_limits_take(notifier_limits_t *self,
                                    notifier_limit_kind_t kind, const char *key,
                                    int64_t now_ms)
{
    int64_t wait = 0;
    if (cv_ratelimit_take(self->buckets[kind], key, now_ms, &wait))
        return 0;
    return wait > 0 ? wait : 1;
}

int64_t notifier_limits_wait(notifier_limits_t *self, const notifier_job_t *job,
                             int64_t now_ms)
{
    char host[256];
    switch (job->channel) {
    case NOTIFIER_TELEGRAM: {
        /* the chat's own bucket first: a busy chat then waits without
         * spending the bot's shared budget */
        int64_t wait = notifier_limits_take(self, NOTIFIER_LIMIT_TELEGRAM_CHAT,
                                            job->destination, now_ms);
        if (wait > 0)
            return wait;
        return notifier_limits_take(self, NOTIFIER_LIMIT_TELEGRAM, "bot",
                                    now_ms);
    }
    case NOTIFIER_SLACK:
    case NOTIFIER_WEBHOOK:
        if (notifier_url_host(job->destination, host, sizeof(host)) != 0)
            return 0; /* the attempt fails on its own */
        return notifier_limits_take(self, NOTIFIER_LIMIT_HOST, host, now_ms);
    case NOTIFIER_EMAIL:
        return notifier_limits_take(self, NOTIFIER_LIMIT_SMTP, "smtp", now_ms);
    default:
        return 0;
    }
}

/* cv_ratelimit: token buckets, one per key, created on first use. */
#include "cv_ratelimit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

#define RATELIMIT_KEY_MAX 128  /* longer keys are cut (sources are short) */
#define RATELIMIT_OVERRIDES 64 /* per-key settings at most */

typedef struct {
    char key[RATELIMIT_KEY_MAX]; /* the source */
    double rate;                 /* tokens per second; 0 = unlimited */
    double burst;                /* bucket size */
} limit_t;

typedef struct bucket {
    struct bucket *next;         /* next in this hash chain */
    char key[RATELIMIT_KEY_MAX]; /* the source */
    double rate;                 /* its refill per second; 0 = unlimited */
    double burst;                /* its capacity */
    double tokens;               /* what is left now */
    int64_t updated_ms;          /* when tokens was last brought up to date */
} bucket_t;

#define RATELIMIT_SLOTS 64

struct cv_ratelimit {
    pthread_mutex_t lock;                 /* guards the buckets */
    limit_t fallback;                     /* for keys not overridden */
    limit_t overrides[RATELIMIT_OVERRIDES]; /* per-key settings */
    int override_count;                   /* used entries of overrides */
    bucket_t *slots[RATELIMIT_SLOTS];     /* buckets by key hash */
};

int cv_ratelimit_parse(const char *spec, double *rate, double *burst)
{
    char *end = NULL;

    if (spec == NULL || spec[0] == '\0')
        return -1;
    errno = 0;
    *rate = strtod(spec, &end);
    if (errno != 0 || end == spec || !isfinite(*rate) || *rate < 0)
        return -1;
    *burst = *rate < 1 ? 1 : *rate;
    if (*end == '/') {
        const char *b = end + 1;
        errno = 0;
        *burst = strtod(b, &end);
        if (errno != 0 || end == b || !isfinite(*burst) || *burst < 1)
            return -1;
    }
    return *end == '\0' ? 0 : -1;
}

/* Reads "key:RATE[/BURST],…" into self->overrides. */
static int ratelimit_parse_overrides(cv_ratelimit_t *self, const char *text)
{
    const char *p = text;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char item[256];
        char *colon;
        limit_t *limit;

        if (len == 0) {
            p = comma != NULL ? comma + 1 : NULL;
            continue;
        }
        if (len >= sizeof(item) || self->override_count >= RATELIMIT_OVERRIDES)
            return cv_error("cannot use rate limit '%.*s': too long or too "
                            "many", (int)len, p);
        memcpy(item, p, len);
        item[len] = '\0';
        colon = strchr(item, ':');
        if (colon == NULL || colon == item ||
            (size_t)(colon - item) >= RATELIMIT_KEY_MAX)
            return cv_error("cannot use rate limit '%s': expected "
                            "source:RATE[/BURST]", item);
        *colon = '\0';
        limit = &self->overrides[self->override_count];
        if (cv_ratelimit_parse(colon + 1, &limit->rate, &limit->burst) != 0)
            return cv_error("cannot use rate limit '%s:%s': expected "
                            "RATE[/BURST] with RATE >= 0 and BURST >= 1",
                            item, colon + 1);
        memcpy(limit->key, item, (size_t)(colon - item) + 1);
        self->override_count++;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

cv_ratelimit_t *cv_ratelimit_new(const char *spec, const char *overrides)
{
    cv_ratelimit_t *self = calloc(1, sizeof(*self));

    if (self == NULL) {
        cv_error("cannot create a rate limiter: out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    if (cv_ratelimit_parse(spec, &self->fallback.rate,
                           &self->fallback.burst) != 0) {
        cv_error("cannot use rate limit '%s': expected RATE[/BURST] with "
                 "RATE >= 0 and BURST >= 1", spec != NULL ? spec : "");
        cv_ratelimit_destroy(&self);
        return NULL;
    }
    if (ratelimit_parse_overrides(self, overrides) != 0)
        cv_ratelimit_destroy(&self);
    return self;
}

void cv_ratelimit_destroy(cv_ratelimit_t **self_p)
{
    cv_ratelimit_t *self;

    if (self_p == NULL || *self_p == NULL)
        return;
    self = *self_p;
    for (int i = 0; i < RATELIMIT_SLOTS; i++) {
        bucket_t *b = self->slots[i];
        while (b != NULL) {
            bucket_t *next = b->next;
            free(b);
            b = next;
        }
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static unsigned ratelimit_hash(const char *key)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % RATELIMIT_SLOTS;
}

/* The bucket of `key`, created full on first sight; NULL when out of
 * memory. Called with the lock held. */
static bucket_t *ratelimit_bucket(cv_ratelimit_t *self, const char *key,
                                  int64_t now_ms)
{
    unsigned slot = ratelimit_hash(key);
    const limit_t *limit = &self->fallback;
    bucket_t *b;

    for (b = self->slots[slot]; b != NULL; b = b->next)
        if (strncmp(b->key, key, sizeof(b->key) - 1) == 0)
            return b;
    for (int i = 0; i < self->override_count; i++)
        if (strcmp(self->overrides[i].key, key) == 0)
            limit = &self->overrides[i];
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->rate = limit->rate;
    b->burst = limit->burst;
    b->tokens = limit->burst;
    b->updated_ms = now_ms;
    b->next = self->slots[slot];
    self->slots[slot] = b;
    return b;
}

bool cv_ratelimit_take(cv_ratelimit_t *self, const char *key, int64_t now_ms,
                       int64_t *retry_after_ms)
{
    bool allowed = true;
    bucket_t *b;

    if (retry_after_ms != NULL)
        *retry_after_ms = 0;
    if (self == NULL || key == NULL)
        return true;
    pthread_mutex_lock(&self->lock);
    b = ratelimit_bucket(self, key, now_ms);
    /* out of memory: let the request through rather than refuse a lead */
    if (b == NULL || b->rate <= 0)
        goto out;
    if (now_ms > b->updated_ms) {
        b->tokens += (double)(now_ms - b->updated_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->updated_ms = now_ms;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
    } else {
        allowed = false;
        if (retry_after_ms != NULL)
            *retry_after_ms =
                (int64_t)ceil((1 - b->tokens) * 1000.0 / b->rate);
    }
out:
    pthread_mutex_unlock(&self->lock);
    return allowed;
}

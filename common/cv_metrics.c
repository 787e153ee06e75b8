/* cv_metrics: a fixed-size registry of counters and gauges.
 *
 * A name may carry its own labels, as in
 * `conveyor_events_in_total{type="lead_scored"}`: such metrics share the
 * HELP and TYPE lines of their base name, and the service label is put in
 * front of theirs when rendered. */
#include "cv_metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

#define CV_METRICS_MAX 512 /* registry slots; more is a programming error */

typedef enum { CV_METRIC_COUNTER, CV_METRIC_GAUGE } cv_metric_kind_t;

struct cv_metric {
    char name[160];          /* full name, labels included */
    size_t base_len;         /* length of the name before '{' */
    char help[256];          /* HELP text */
    cv_metric_kind_t kind;   /* counter or gauge */
    _Atomic int64_t value;   /* current value */
};

static pthread_mutex_t cv_metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static cv_metric_t cv_metrics[CV_METRICS_MAX]; /* registered metrics */
static atomic_size_t cv_metrics_count;         /* slots in use */

static cv_metric_t *cv_metrics_register(const char *name, const char *help,
                                        cv_metric_kind_t kind)
{
    if (name == NULL || name[0] == '\0')
        return NULL;
    cv_metric_t *found = NULL;
    pthread_mutex_lock(&cv_metrics_lock);
    size_t count = atomic_load(&cv_metrics_count);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(cv_metrics[i].name, name) == 0) {
            found = &cv_metrics[i];
            goto out;
        }
    }
    if (count == CV_METRICS_MAX) {
        pthread_mutex_unlock(&cv_metrics_lock);
        cv_log_warn("cannot register metric '%s': registry full", name);
        return NULL;
    }
    if (strlen(name) >= sizeof(found->name)) {
        pthread_mutex_unlock(&cv_metrics_lock);
        cv_log_warn("cannot register metric '%s': name too long", name);
        return NULL;
    }
    found = &cv_metrics[count];
    snprintf(found->name, sizeof(found->name), "%s", name);
    found->base_len = strcspn(name, "{");
    snprintf(found->help, sizeof(found->help), "%s", help ? help : "");
    found->kind = kind;
    atomic_store(&found->value, 0);
    /* publish the slot only once it is filled in, for lock-free readers */
    atomic_store(&cv_metrics_count, count + 1);
out:
    pthread_mutex_unlock(&cv_metrics_lock);
    return found;
}

cv_metric_t *cv_metrics_counter(const char *name, const char *help)
{
    return cv_metrics_register(name, help, CV_METRIC_COUNTER);
}

cv_metric_t *cv_metrics_gauge(const char *name, const char *help)
{
    return cv_metrics_register(name, help, CV_METRIC_GAUGE);
}

void cv_metric_add(cv_metric_t *metric, int64_t delta)
{
    if (metric != NULL)
        atomic_fetch_add(&metric->value, delta);
}

void cv_metric_set(cv_metric_t *metric, int64_t value)
{
    if (metric != NULL)
        atomic_store(&metric->value, value);
}

int64_t cv_metric_value(const cv_metric_t *metric)
{
    if (metric == NULL)
        return 0;
    return atomic_load(&((cv_metric_t *)metric)->value);
}

/* A growing text buffer for rendering. */
typedef struct {
    char *data;  /* text so far, NUL-terminated */
    size_t len;  /* bytes used, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
} cv_metrics_buf_t;

static void cv_metrics_put(cv_metrics_buf_t *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void cv_metrics_puts(cv_metrics_buf_t *b, const char *text)
{
    cv_metrics_put(b, text, strlen(text));
}

/* Writes `text` escaped for a HELP line (label == false) or a label value
 * (label == true). */
static void cv_metrics_put_escaped(cv_metrics_buf_t *b, const char *text,
                                   bool label)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\\')
            cv_metrics_puts(b, "\\\\");
        else if (*p == '\n')
            cv_metrics_puts(b, "\\n");
        else if (*p == '"' && label)
            cv_metrics_puts(b, "\\\"");
        else
            cv_metrics_put(b, p, 1);
    }
}

static void cv_metrics_put_sample(cv_metrics_buf_t *b, const cv_metric_t *m,
                                  const char *service)
{
    cv_metrics_put(b, m->name, m->base_len);
    cv_metrics_puts(b, "{service=\"");
    cv_metrics_put_escaped(b, service, true);
    cv_metrics_puts(b, "\"");
    const char *labels = m->name + m->base_len;
    if (labels[0] == '{' && labels[1] != '}' && labels[1] != '\0') {
        cv_metrics_puts(b, ",");
        cv_metrics_puts(b, labels + 1);
    } else {
        cv_metrics_puts(b, "}");
    }
    char value[32];
    snprintf(value, sizeof(value), " %" PRId64 "\n",
             atomic_load(&((cv_metric_t *)m)->value));
    cv_metrics_puts(b, value);
}

char *cv_metrics_render(const char *service)
{
    cv_metrics_buf_t b = {0};
    if (service == NULL)
        service = "";
    size_t count = atomic_load(&cv_metrics_count);
    cv_metrics_puts(&b, "");
    for (size_t i = 0; i < count; i++) {
        const cv_metric_t *m = &cv_metrics[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = cv_metrics[j].base_len == m->base_len &&
                   memcmp(cv_metrics[j].name, m->name, m->base_len) == 0;
        if (seen)
            continue; /* rendered with the first metric of its family */
        cv_metrics_puts(&b, "# HELP ");
        cv_metrics_put(&b, m->name, m->base_len);
        cv_metrics_puts(&b, " ");
        cv_metrics_put_escaped(&b, m->help, false);
        cv_metrics_puts(&b, "\n# TYPE ");
        cv_metrics_put(&b, m->name, m->base_len);
        cv_metrics_puts(&b,
                        m->kind == CV_METRIC_COUNTER ? " counter\n"
                                                     : " gauge\n");
        for (size_t j = i; j < count; j++) {
            const cv_metric_t *o = &cv_metrics[j];
            if (o->base_len == m->base_len &&
                memcmp(o->name, m->name, m->base_len) == 0)
                cv_metrics_put_sample(&b, o, service);
        }
    }
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* cv_metrics: counters and gauges, rendered as Prometheus text.
 *
 * A metric is registered once by name (registering the same name again
 * returns the same metric) and lives until the process ends. Updates are
 * atomic and cheap enough for the hot path. */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stdint.h>

typedef struct cv_metric cv_metric_t;

/* `name` like "conveyor_events_in_total"; the service name is added as a
 * label when rendered. Returns NULL only when the registry is full. */
cv_metric_t *cv_metrics_counter(const char *name, const char *help);
cv_metric_t *cv_metrics_gauge(const char *name, const char *help);

void cv_metric_add(cv_metric_t *metric, int64_t delta); /* NULL-safe */
void cv_metric_set(cv_metric_t *metric, int64_t value); /* NULL-safe */
int64_t cv_metric_value(const cv_metric_t *metric);

/* Renders every metric as Prometheus text exposition format. The caller
 * owns the returned string (free()); NULL when out of memory. */
char *cv_metrics_render(const char *service);

#endif

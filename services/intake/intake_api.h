/* intake_api: the public HTTP endpoint channels post leads to.
 *
 * `POST /v1/leads` (API.md "Intake"): checks the source's API key, reads
 * and normalises the lead on the HTTP thread, then hands it to the intake
 * queue and suspends the request until the lead has been committed.
 * `POST /v1/import` takes a batch of a cold call list the same way, with
 * the same keys (intake_import.h). `POST /v1/channels/phone`, `…/email`
 * (API keys) and `…/telegram` (its secret header) turn the channel's own
 * format into a lead (intake_channel.h). Every source is rate-limited by
 * a token bucket: over it, 429 with Retry-After. */
#ifndef INTAKE_API_H
#define INTAKE_API_H

#include <stdbool.h>

#include "cv_config.h"
#include "cv_http.h"
#include "intake_queue.h"

typedef struct intake_api intake_api_t;

/* Takes the sources and keys (intake_keys: "source:key,source:key"), their
 * rate limits (intake_rate, intake_rates) and the Telegram secret from
 * `config`; the queue is not owned. NULL after logging when the keys or
 * limits are malformed. */
intake_api_t *intake_api_new(const cv_config_t *config, intake_queue_t *queue);

/* NULL-safe; nulls *self_p. */
void intake_api_destroy(intake_api_t **self_p);

/* The cv_http handler (arg is the intake_api_t). */
bool intake_api_handle(void *arg, cv_http_request_t *req);

#endif

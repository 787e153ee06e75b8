/* intake_api: the public HTTP endpoint channels post leads to.
 *
 * `POST /v1/leads` (API.md "Intake"): checks the source's API key, reads
 * and normalises the lead on the HTTP thread, then hands it to the intake
 * queue and suspends the request until the lead has been committed.
 * `POST /v1/import` takes a batch of a cold call list the same way, with
 * the same keys (intake_import.h). */
#ifndef INTAKE_API_H
#define INTAKE_API_H

#include <stdbool.h>

#include "cv_http.h"
#include "intake_queue.h"

typedef struct intake_api intake_api_t;

/* `keys` is CONVEYOR_INTAKE_KEYS ("source:key,source:key"); the queue is
 * not owned. NULL after logging when the keys are malformed. */
intake_api_t *intake_api_new(const char *keys, intake_queue_t *queue);

/* NULL-safe; nulls *self_p. */
void intake_api_destroy(intake_api_t **self_p);

/* The cv_http handler (arg is the intake_api_t). */
bool intake_api_handle(void *arg, cv_http_request_t *req);

#endif

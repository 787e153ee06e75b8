/* intake: the public door of the conveyor.
 *
 * Channels post leads over HTTP (config.intake_addr, which also serves
 * /healthz and /metrics); each lead is checked and normalised on an HTTP
 * thread, then stored — deduplicated against earlier contacts — by the bus
 * thread in a group-committed transaction together with the LeadReceived
 * events for scoring and console. From the bus it hears one thing: the
 * console's DecisionRecorded, which closes a lead to merges (the person's
 * next contact is a returning client). */
#include <stdlib.h>

#include "cv_contact.h"
#include "cv_event.h"
#include "cv_http.h"
#include "cv_log.h"
#include "cv_service.h"
#include "intake_api.h"
#include "intake_queue.h"
#include "intake_store.h"

/* The bus handler: decisions close leads to merges; nothing else is for
 * intake. */
static int intake_handle_event(void *arg, cv_bus_t *bus,
                               const Conveyor__Envelope *event)
{
    (void)arg;
    const Conveyor__DecisionRecorded *decision = event->decision_recorded;
    if (event->body_case != CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED ||
        decision->lead_id == NULL || decision->result == NULL) {
        cv_log_warn("event '%s' of type '%s' is not for intake, dropped",
                    event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
    return intake_store_decided(cv_bus_store(bus), decision,
                                event->occurred_at);
}

int main(int argc, char **argv)
{
    cv_service_options_t options = {
        .name = "intake",
        .migrations = intake_migrations,
        .migration_count = intake_migration_count,
        .worker = true,
        .handler = intake_handle_event,
        .arg = NULL,
        .admin_http = false,
    };
    cv_service_t *svc = cv_service_new(&options, argc, argv);
    if (svc == NULL)
        return 1;
    int rc = 1;
    const cv_config_t *config = cv_service_config(svc);
    intake_api_t *api = NULL;
    cv_http_t *http = NULL;
    intake_queue_t *queue = NULL;
    if (cv_contact_set_region(config->default_region) != 0) {
        cv_error("cannot use default_region '%s': not a country "
                 "libphonenumber knows", config->default_region);
        goto out;
    }
    queue = intake_queue_new(config->batch_max, config->batch_linger_ms);
    if (queue == NULL)
        goto out;
    cv_bus_source_t source;
    intake_queue_source(queue, &source);
    if (cv_bus_add_source(cv_service_bus(svc), &source) != 0)
        goto out;
    api = intake_api_new(config, queue);
    if (api == NULL)
        goto out;
    cv_http_options_t http_options = {
        .addr = config->intake_addr,
        .service = "intake",
        .threads = config->http_threads,
        .max_body_bytes = config->max_body_bytes,
        .handler = intake_api_handle,
        .arg = api,
    };
    http = cv_http_start(&http_options);
    if (http == NULL)
        goto out;
    cv_http_set_ready(http, true);
    rc = cv_service_run(svc) == 0 ? 0 : 1;
    cv_http_set_ready(http, false);
out:
    /* leads still waiting get 503; then no request is left suspended */
    intake_queue_close(queue);
    cv_http_destroy(&http);
    intake_api_destroy(&api);
    intake_queue_destroy(&queue);
    cv_service_destroy(&svc);
    return rc;
}

/* console: the staff API (API.md "Console") and the read model of every
 * lead. The bus thread applies the stages' events to the cards; the HTTP
 * threads serve staff on config.console_addr, which also answers /healthz
 * and /metrics. */
#include "console.h"

#include "cv_log.h"
#include "cv_service.h"

int main(int argc, char **argv)
{
    console_t console = {0};
    cv_http_t *http = NULL;
    int rc = -1;
    cv_service_options_t options = {
        .name = CONSOLE_SERVICE,
        .migrations = console_migrations,
        .migration_count = console_migration_count,
        .worker = true,
        .handler = console_events_handle,
        .arg = &console,
        .admin_http = false,
    };
    cv_service_t *service = cv_service_new(&options, argc, argv);
    if (service == NULL)
        return 1;
    console_metrics_register();
    console.config = cv_service_config(service);
    console.bus = cv_service_bus(service);
    if (console.config->admin_token[0] == '\0')
        cv_log_warn("CONVEYOR_ADMIN_TOKEN is not set: only staff tokens "
                    "are accepted, and no staff can be created");
    char error[700];
    console.rules = cv_scoring_live_new(console.config->scoring_rules, error,
                                        sizeof(error));
    if (console.rules == NULL) {
        cv_error("cannot load the scoring rules: %s", error);
        goto out;
    }
    if (cv_scoring_live_watch(console.rules, console.bus) != 0)
        goto out;
    console.known = console_known_new();
    if (console.known == NULL || console_known_watch(&console) != 0)
        goto out;
    if (console_notifications_start(cv_bus_store(console.bus)) != 0)
        goto out;
    console.pool = console_pool_new(console.config->db_path);
    if (console.pool == NULL)
        goto out;
    cv_http_options_t http_options = {
        .addr = console.config->console_addr,
        .service = CONSOLE_SERVICE,
        .threads = console.config->http_threads > 0
                       ? console.config->http_threads
                       : 1,
        .max_body_bytes = console.config->max_body_bytes,
        .handler = console_api_handle,
        .arg = &console,
    };
    http = cv_http_start(&http_options);
    if (http == NULL)
        goto out;
    cv_log_info("console listening on '%s'", console.config->console_addr);
    cv_http_set_ready(http, true);
    rc = cv_service_run(service);
    cv_http_set_ready(http, false);
out:
    /* HTTP threads first: they borrow pool connections and wake the bus */
    cv_http_destroy(&http);
    console_pool_destroy(&console.pool);
    cv_service_destroy(&service);
    cv_scoring_live_destroy(&console.rules);
    console_known_destroy(&console.known);
    return rc == 0 ? 0 : 1;
}

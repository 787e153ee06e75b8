/* routing: assigns scored leads to staff (PRODUCT.md section 3). */
#include "routing.h"

#include "cv_log.h"
#include "cv_service.h"

int main(int argc, char **argv)
{
    static routing_t routing;
    cv_service_options_t options = {
        .name = "routing",
        .migrations = routing_migrations,
        .migration_count = routing_migration_count,
        .worker = true,
        .handler = routing_handle,
        .arg = &routing,
        /* the admin port is routing's own: it serves explain as well */
        .admin_http = false,
    };
    cv_service_t *svc = cv_service_new(&options, argc, argv);
    if (svc == NULL)
        return 1;
    int rc = 1;
    routing_explain_t *explain = NULL;
    if (routing_init(&routing, cv_service_config(svc)) != 0)
        goto out;
    if (routing_rules_watch(&routing, cv_service_bus(svc)) != 0 ||
        routing_timer_watch(&routing, cv_service_bus(svc)) != 0)
        goto fini;
    explain = routing_explain_start(&routing);
    if (explain == NULL)
        goto fini;
    routing_explain_ready(explain, true);
    rc = cv_service_run(svc) == 0 ? 0 : 1;
    routing_explain_ready(explain, false);
fini:
    routing_explain_stop(&explain);
    routing_fini(&routing);
out:
    cv_service_destroy(&svc);
    return rc;
}

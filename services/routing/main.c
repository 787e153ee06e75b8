/* routing: assigns scored leads to staff (PRODUCT.md section 3). */
#include "routing.h"

#include "cv_service.h"

int main(int argc, char **argv)
{
    cv_service_options_t options = {
        .name = "routing",
        .migrations = routing_migrations,
        .migration_count = routing_migration_count,
        .worker = true,
        .handler = routing_handle,
        .arg = NULL,
        .admin_http = true,
    };
    cv_service_t *svc = cv_service_new(&options, argc, argv);
    if (svc == NULL)
        return 1;
    int rc = cv_service_run(svc);
    cv_service_destroy(&svc);
    return rc == 0 ? 0 : 1;
}

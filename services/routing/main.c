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
    return cv_service_main(&options, argc, argv);
}

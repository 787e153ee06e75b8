/* account-retention: the process. Turns won leads into accounts for the
 * account managers (tier 3). */
#include "cv_service.h"
#include "retention.h"

int main(int argc, char **argv)
{
    cv_service_options_t options = {
        .name = RETENTION_SERVICE,
        .migrations = retention_migrations,
        .migration_count = retention_migration_count,
        .worker = true,
        .handler = retention_handle_event,
        .arg = NULL,
        .admin_http = true,
    };
    return cv_service_main(&options, argc, argv);
}

/* scoring: pre-scores new leads (PRODUCT.md section 2). */
#include "scoring.h"

#include "cv_service.h"

int main(int argc, char **argv)
{
    scoring_t scoring = {.model = cv_scoring_default_model()};
    cv_service_options_t options = {
        .name = "scoring",
        .migrations = scoring_migrations,
        .migration_count = scoring_migration_count,
        .worker = true,
        .handler = scoring_handle,
        .arg = &scoring,
        .admin_http = true,
    };
    return cv_service_main(&options, argc, argv);
}

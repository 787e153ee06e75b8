/* scoring: scores new leads, and scores them again when people change a
 * lead's scorecard (PRODUCT.md section 2). */
#include "scoring.h"

#include "cv_log.h"
#include "cv_service.h"

int main(int argc, char **argv)
{
    scoring_t scoring = {0};
    int rc = 1;
    cv_service_options_t options = {
        .name = "scoring",
        .migrations = scoring_migrations,
        .migration_count = scoring_migration_count,
        .worker = true,
        .handler = scoring_handle,
        .arg = &scoring,
        .admin_http = true,
    };
    cv_service_t *service = cv_service_new(&options, argc, argv);
    if (service == NULL)
        return 1;
    const cv_config_t *config = cv_service_config(service);
    char error[700];
    scoring.rules =
        cv_scoring_live_new(config->scoring_rules, error, sizeof(error));
    if (scoring.rules == NULL) {
        cv_error("cannot load the scoring rules: %s", error);
        goto out;
    }
    const cv_scoring_model_t *model = cv_scoring_live_acquire(scoring.rules);
    cv_log_info("scoring with rules version '%s' from %s", model->version,
                config->scoring_rules[0] ? config->scoring_rules
                                         : "the built-in rules");
    cv_scoring_live_release(scoring.rules);
    if (cv_scoring_live_watch(scoring.rules, cv_service_bus(service)) != 0)
        goto out;
    rc = cv_service_run(service) == 0 ? 0 : 1;
out:
    /* the bus stops first: nothing scores once the rules are gone */
    cv_service_destroy(&service);
    cv_scoring_live_destroy(&scoring.rules);
    return rc;
}

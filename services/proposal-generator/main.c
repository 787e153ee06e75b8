/* proposal-generator: the process. Renders a commercial proposal whenever
 * one is presented or sent, and puts it on the lead's card. Stateless
 * apart from its store of documents, so it scales by adding workers. */
#include "cv_service.h"
#include "proposal.h"

int main(int argc, char **argv)
{
    cv_service_options_t options = {
        .name = PROPOSAL_SERVICE,
        .migrations = proposal_migrations,
        .migration_count = proposal_migration_count,
        .worker = true,
        .handler = proposal_handle_event,
        .arg = NULL,
        .admin_http = true,
    };
    return cv_service_main(&options, argc, argv);
}

/* followup-scheduler: the process. Opens the first-contact task of every
 * assigned lead, fires its SLA timer when nobody got in touch in time, and
 * cancels timers when the work is done. */
#include "cv_service.h"
#include "followup.h"

int main(int argc, char **argv)
{
    followup_t followup = {0};
    cv_service_options_t options = {
        .name = FOLLOWUP_SERVICE,
        .migrations = followup_migrations,
        .migration_count = followup_migration_count,
        .worker = true,
        .handler = followup_handle_event,
        .arg = &followup,
        .admin_http = true,
    };
    int rc = 1;
    cv_service_t *svc = cv_service_new(&options, argc, argv);
    if (svc == NULL)
        goto out;
    followup.config = cv_service_config(svc);
    followup.tasks_opened = cv_metrics_counter(
        "conveyor_followup_tasks_opened_total", "first-contact tasks opened");
    followup.timers_fired = cv_metrics_counter(
        "conveyor_followup_timers_fired_total", "SLA timers that came due");
    followup.escalations =
        cv_metrics_counter("conveyor_followup_escalations_total",
                           "SLA timers fired while their task was open");
    if (followup_timer_register(&followup, cv_service_bus(svc)) != 0)
        goto out;
    rc = cv_service_run(svc) == 0 ? 0 : 1;
out:
    cv_service_destroy(&svc);
    return rc;
}

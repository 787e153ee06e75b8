/* followup-scheduler: the process. Takes the business calendar and the
 * rules' delays, then opens tasks, fires timers and closes what the work
 * satisfied (followup.h). */
#include <stdio.h>
#include <string.h>

#include "cv_log.h"
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
    const cv_config_t *cfg = cv_service_config(svc);
    followup.config = cfg;
    /* calendar_file, loaded once by cv_service_new for every stage */
    followup.calendar = cv_calendar_default();
    followup.default_tz = cv_tz_get(cfg->default_timezone);
    if (followup.default_tz == NULL) {
        cv_error("cannot use default_timezone '%s': not an IANA time zone",
                 cfg->default_timezone);
        goto out;
    }
    snprintf(followup.on_duty, sizeof(followup.on_duty), "%s",
             cfg->on_duty_pool);
    if (followup_delays_load(&followup) != 0)
        goto out;
    followup.tasks_opened = cv_metrics_counter(
        "conveyor_followup_tasks_opened_total", "tasks opened");
    followup.tasks_closed =
        cv_metrics_counter("conveyor_followup_tasks_closed_total",
                           "tasks closed by the rules (work done elsewhere)");
    followup.timers_fired = cv_metrics_counter(
        "conveyor_followup_timers_fired_total", "timers that came due");
    followup.escalations =
        cv_metrics_counter("conveyor_followup_escalations_total",
                           "escalation steps taken (remind, re-assign, head "
                           "of sales)");
    followup.fire_lag =
        cv_metrics_counter("conveyor_followup_fire_lag_ms_total",
                           "milliseconds between timers' due and fired "
                           "times, summed");
    if (followup_timer_register(&followup, cv_service_bus(svc)) != 0)
        goto out;
    rc = cv_service_run(svc) == 0 ? 0 : 1;
out:
    cv_service_destroy(&svc);
    followup_staff_cache_free(&followup);
    return rc;
}

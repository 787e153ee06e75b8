/* The scheduler's event handler: which event does what. */
#include <stdio.h>
#include <string.h>

#include "cv_event.h"
#include "cv_log.h"
#include "followup.h"

/* Activity types that count as the first contact having happened. */
static bool events_is_contact(const char *type)
{
    static const char *const contact_types[] = {
        "call", "meeting", "interview", "proposal_presented", "proposal_sent",
    };
    for (size_t i = 0; i < sizeof(contact_types) / sizeof(contact_types[0]);
         i++) {
        if (strcmp(type, contact_types[i]) == 0)
            return true;
    }
    return false;
}

static int events_activity(followup_t *self, cv_bus_t *bus,
                           const Conveyor__ActivityRecorded *activity)
{
    if (!events_is_contact(activity->type)) {
        cv_log(CV_LOG_DEBUG,
               "activity '%s' of type '%s' leaves timers as "
               "they are",
               activity->activity_id, activity->type);
        return 0;
    }
    char task_id[256];
    if ((size_t)snprintf(task_id, sizeof(task_id), "%s-first-contact",
                         activity->lead_id) >= sizeof(task_id))
        return 0; /* no task of ours has an id that long */
    char reason[64];
    snprintf(reason, sizeof(reason), "activity_%s", activity->type);
    return followup_timer_cancel_task(self, bus, task_id, reason);
}

static int events_decision(followup_t *self, cv_bus_t *bus,
                           const Conveyor__DecisionRecorded *decision)
{
    char reason[64];
    snprintf(reason, sizeof(reason), "decision_%s", decision->result);
    return followup_timer_cancel_lead(self, bus, decision->lead_id, reason);
}

/* A re-score that knocked the lead out: it is rejected, so nothing about
 * it is due any more. */
static int events_scored(followup_t *self, cv_bus_t *bus,
                         const Conveyor__LeadScored *scored)
{
    if (scored->lead == NULL || scored->lead->lead_id == NULL ||
        scored->score == NULL)
        return CV_BUS_DROP;
    if (!scored->score->has_knocked_out || !scored->score->knocked_out)
        return 0;
    return followup_timer_cancel_lead(self, bus, scored->lead->lead_id,
                                      "knocked_out");
}

int followup_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
{
    followup_t *self = arg;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED:
        if (event->lead_assigned->lead == NULL) {
            cv_log(CV_LOG_WARN,
                   "event '%s': assignment without a lead, "
                   "dropped",
                   event->event_id);
            return CV_BUS_DROP;
        }
        if (event->lead_assigned->task_kind != NULL &&
            (strcmp(event->lead_assigned->task_kind,
                    FOLLOWUP_KIND_VIP_REVIEW) == 0 ||
             strcmp(event->lead_assigned->task_kind,
                    FOLLOWUP_KIND_SEND_REJECTION) == 0))
            return followup_task_open_segment(self, bus, event->lead_assigned);
        return followup_task_open_first_contact(self, bus,
                                                event->lead_assigned);
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        return events_scored(self, bus, event->lead_scored);
    case CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED:
        return followup_task_complete(self, bus, event->task_completed);
    case CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED:
        return events_activity(self, bus, event->activity_recorded);
    case CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED:
        return events_decision(self, bus, event->decision_recorded);
    default:
        cv_log(CV_LOG_WARN,
               "event '%s' of type '%s' is not for the "
               "scheduler, dropped",
               event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
}

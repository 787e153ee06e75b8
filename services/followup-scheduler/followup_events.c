/* The scheduler's event handler: which event does what. */
#include <stdio.h>
#include <string.h>

#include "cv_event.h"
#include "cv_log.h"
#include "followup.h"

int followup_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
{
    followup_t *self = arg;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED:
        if (event->lead_assigned->lead == NULL) {
            cv_log(CV_LOG_WARN, "event '%s': assignment without a lead, "
                                "dropped", event->event_id);
            return CV_BUS_DROP;
        }
        return followup_on_assigned(self, bus, event->lead_assigned);
    case CONVEYOR__ENVELOPE__BODY_LEAD_OFFERED:
        return followup_on_offered(self, bus, event->lead_offered);
    case CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED:
        return followup_on_received(self, bus, event);
    case CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED:
        return followup_staff_update(self, bus, event->staff_updated);
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        return followup_on_scored(self, bus, event->lead_scored);
    case CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED:
        return followup_task_complete(self, bus, event->task_completed);
    case CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED:
        return followup_on_activity(self, bus, event->activity_recorded);
    case CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED:
        return followup_on_decision(self, bus, event->decision_recorded);
    default:
        cv_log(CV_LOG_WARN, "event '%s' of type '%s' is not for the "
                            "scheduler, dropped",
               event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
}

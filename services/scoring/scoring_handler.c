/* scoring_handler: LeadReceived in, LeadScored out. */
#include "scoring.h"

#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

static cv_metric_t *metric_scored;      /* leads scored */
static cv_metric_t *metric_knocked_out; /* of which knocked out */
static cv_metric_t *metric_repeated;    /* leads that came again */
static cv_metric_t *metric_segment[3];  /* A, B, C */

static void metrics_register(void)
{
    if (metric_scored != NULL)
        return;
    metric_scored = cv_metrics_counter("conveyor_scoring_leads_scored_total",
                                       "leads pre-scored");
    metric_knocked_out =
        cv_metrics_counter("conveyor_scoring_knocked_out_total",
                           "leads that failed the knock-out phase");
    metric_repeated =
        cv_metrics_counter("conveyor_scoring_repeated_total",
                           "leads received again and not scored twice");
    metric_segment[0] = cv_metrics_counter("conveyor_scoring_segment_a_total",
                                           "leads scored into segment A");
    metric_segment[1] = cv_metrics_counter("conveyor_scoring_segment_b_total",
                                           "leads scored into segment B");
    metric_segment[2] = cv_metrics_counter("conveyor_scoring_segment_c_total",
                                           "leads scored into segment C");
}

static int scoring_emit(cv_bus_t *bus, const Conveyor__Lead *lead,
                        const cv_scoring_result_t *score)
{
    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(score, &proto, params, ptrs);
    Conveyor__LeadScored scored = CONVEYOR__LEAD_SCORED__INIT;
    scored.lead = (Conveyor__Lead *)lead; /* copied through, not changed */
    scored.score = &proto;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_SCORED;
    env.lead_scored = &scored;
    return cv_bus_emit(bus, &env, "routing", "console", NULL);
}

int scoring_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    scoring_t *self = arg;
    metrics_register();
    if (event->body_case != CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED) {
        cv_log_warn("dropping a '%s' event '%s': scoring takes only "
                    "lead_received",
                    cv_event_type_name(event->type), event->event_id);
        return CV_BUS_DROP;
    }
    const Conveyor__LeadReceived *received = event->lead_received;
    const Conveyor__Lead *lead = received->lead;
    if (lead == NULL || lead->lead_id == NULL || lead->lead_id[0] == '\0') {
        cv_log_warn("dropping lead_received event '%s': no lead id",
                    event->event_id);
        return CV_BUS_DROP;
    }
    if (received->merged) {
        cv_log_info("dropping lead_received event '%s': lead '%s' was "
                    "merged into an existing one",
                    event->event_id, lead->lead_id);
        return CV_BUS_DROP;
    }
    cv_scoring_result_t score;
    cv_scoring_score(self->model, lead, &score);
    bool fresh = false;
    if (scoring_store_save(cv_bus_store(bus), lead, &score, event->event_id,
                           &fresh) != 0)
        return -1;
    if (!fresh) {
        cv_metric_add(metric_repeated, 1);
        cv_log_info("lead '%s' is already scored; event '%s' ignored",
                    lead->lead_id, event->event_id);
        return 0;
    }
    if (scoring_emit(bus, lead, &score) != 0)
        return -1;
    cv_metric_add(metric_scored, 1);
    if (score.knocked_out)
        cv_metric_add(metric_knocked_out, 1);
    cv_metric_add(metric_segment[score.segment[0] - 'A'], 1);
    if (score.knocked_out)
        cv_log_info("lead '%s' knocked out: %s (total %d)", lead->lead_id,
                    score.knockout_reason, score.total);
    else
        cv_log_debug("lead '%s' scored %d, segment %s", lead->lead_id,
                     score.total, score.segment);
    return 0;
}

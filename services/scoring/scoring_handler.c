/* scoring_handler: LeadReceived, scorecards and decisions in; LeadScored
 * out. */
#include "scoring.h"

#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

static cv_metric_t *metric_scored;      /* leads scored */
static cv_metric_t *metric_knocked_out; /* of which knocked out */
static cv_metric_t *metric_repeated;    /* leads that came again */
static cv_metric_t *metric_segment[3];  /* A, B, C */
static cv_metric_t *metric_rescored;    /* scorecard re-scores */
static cv_metric_t *metric_moved;       /* of which changed segment */
static cv_metric_t *metric_decisions;   /* decisions kept */

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
    metric_rescored =
        cv_metrics_counter("conveyor_scoring_rescored_total",
                           "leads scored again after a scorecard change");
    metric_moved =
        cv_metrics_counter("conveyor_scoring_segment_changes_total",
                           "re-scores that moved a lead to another segment");
    metric_decisions =
        cv_metrics_counter("conveyor_scoring_decisions_total",
                           "won/lost decisions kept with their scores");
}

/* Emits LeadScored; `before` and `card` are set for a re-score.
 *
 * A first score that is not a knock-out goes to routing alone: routing
 * answers every such lead with an event to the console that carries this
 * score (LeadAssigned to an owner or to the head who assigns by hand,
 * LeadOffered to a first-come pool, LeadUnassigned when it parks the lead
 * in pending; a failure there rolls back and the event is sent again), and
 * the console takes the score, its stage and its "scored" timeline entry
 * from that event, at the score's `scored_at`. A knocked-out lead is not
 * routed (routing's LeadUnassigned for it carries no score) and a re-score
 * may not move routing at all, so those still go to the console too. */
static int scoring_emit(cv_bus_t *bus, const Conveyor__Lead *lead,
                        const cv_scoring_result_t *score,
                        const scoring_row_t *before,
                        const Conveyor__Scorecard *card)
{
    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(score, &proto, params, ptrs);
    /* the score keeps the time of the event that brings it, so whoever
     * repeats it (routing) repeats when it was made */
    int64_t now = cv_clock_now_ms();
    proto.has_scored_at = true;
    proto.scored_at = now;
    Conveyor__LeadScored scored = CONVEYOR__LEAD_SCORED__INIT;
    scored.lead = (Conveyor__Lead *)lead; /* copied through, not changed */
    scored.score = &proto;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_SCORED;
    env.lead_scored = &scored;
    env.occurred_at = now;
    if (card == NULL && !score->knocked_out)
        return cv_bus_emit(bus, &env, "routing", NULL);
    if (card == NULL)
        return cv_bus_emit(bus, &env, "routing", "console", NULL);

    scored.has_rescore = true;
    scored.rescore = true;
    scored.scorecard = (Conveyor__Scorecard *)card;
    bool moved = false, knocked = score->knocked_out;
    if (before != NULL) {
        scored.previous_segment = (char *)before->segment;
        scored.has_previous_total = true;
        scored.previous_total = before->total;
        scored.has_previous_knocked_out = true;
        scored.previous_knocked_out = before->knocked_out;
        moved = strcmp(before->segment, score->segment) != 0;
        knocked = score->knocked_out && !before->knocked_out;
    }
    /* the proposal generator keeps each lead's segment for its template;
     * the scheduler stops the timers of a lead that is out */
    if (moved && knocked)
        return cv_bus_emit(bus, &env, "routing", "console",
                           "proposal-generator", "followup-scheduler", NULL);
    if (moved)
        return cv_bus_emit(bus, &env, "routing", "console",
                           "proposal-generator", NULL);
    if (knocked)
        return cv_bus_emit(bus, &env, "routing", "console",
                           "followup-scheduler", NULL);
    return cv_bus_emit(bus, &env, "routing", "console", NULL);
}

static int on_lead_received(scoring_t *self, cv_bus_t *bus,
                            const Conveyor__Envelope *event)
{
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
    int rc = -1;
    const cv_scoring_model_t *model = cv_scoring_live_acquire(self->rules);
    cv_scoring_result_t score;
    cv_scoring_score(model, lead, &score);
    bool fresh = false;
    if (scoring_store_save(cv_bus_store(bus), lead, &score, event->event_id,
                           &fresh) != 0)
        goto out;
    if (!fresh) {
        cv_metric_add(metric_repeated, 1);
        cv_log_info("lead '%s' is already scored; event '%s' ignored",
                    lead->lead_id, event->event_id);
        rc = 0;
        goto out;
    }
    if (scoring_emit(bus, lead, &score, NULL, NULL) != 0)
        goto out;
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
    rc = 0;
out:
    cv_scoring_live_release(self->rules);
    return rc;
}

/* A scorecard revision from the console: score the lead again with the
 * people's values over the rules'. */
static int on_scorecard(scoring_t *self, cv_bus_t *bus,
                        const Conveyor__Envelope *event)
{
    const Conveyor__ActivityRecorded *activity = event->activity_recorded;
    const Conveyor__Scorecard *card = activity->scorecard;
    const char *lead_id = activity->lead_id;
    if (card == NULL || card->lead_id == NULL ||
        strcmp(card->lead_id, lead_id) != 0) {
        cv_log_warn("dropping scorecard event '%s': no scorecard for lead "
                    "'%s'",
                    event->event_id, lead_id);
        return CV_BUS_DROP;
    }
    cv_store_t *store = cv_bus_store(bus);
    scoring_row_t row;
    int found = scoring_store_load(store, lead_id, &row);
    if (found < 0)
        return -1;
    int rc = -1;
    bool held = false;
    if (found == 0 && card->revision <= row.revision) {
        cv_log_info("scorecard revision %lld of '%s' is not newer than the "
                    "applied %lld; event '%s' ignored",
                    (long long)card->revision, lead_id, (long long)row.revision,
                    event->event_id);
        rc = 0;
        goto out;
    }
    /* the console's copy of the lead knows the later contacts too */
    const Conveyor__Lead *lead =
        activity->lead != NULL && activity->lead->lead_id != NULL &&
                strcmp(activity->lead->lead_id, lead_id) == 0
            ? activity->lead
            : row.lead;
    if (lead == NULL) {
        cv_log_warn("dropping scorecard event '%s': lead '%s' is not known "
                    "here and the event carries no copy",
                    event->event_id, lead_id);
        rc = CV_BUS_DROP;
        goto out;
    }
    const cv_scoring_model_t *model = cv_scoring_live_acquire(self->rules);
    held = true;
    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_manual_from_proto(card, &manual, storage);
    cv_scoring_result_t score;
    int unknown = cv_scoring_score_manual(model, lead, &manual, &score);
    if (unknown > 0)
        cv_log_warn("scorecard of '%s' names %d parameter(s) the model "
                    "'%s' does not have; left out",
                    lead_id, unknown, model->version);
    const scoring_row_t *before = found == 0 ? &row : NULL;
    if (scoring_store_rescore(store, lead, &score, card, before,
                              event->event_id) != 0 ||
        scoring_emit(bus, lead, &score, before, card) != 0)
        goto out;
    cv_metric_add(metric_rescored, 1);
    bool moved = before != NULL && strcmp(row.segment, score.segment) != 0;
    if (moved)
        cv_metric_add(metric_moved, 1);
    cv_log_info("lead '%s' re-scored by %s's scorecard (revision %lld): "
                "%+d, segment %s%s%s%s",
                lead_id, card->actor != NULL ? card->actor : "staff",
                (long long)card->revision, score.total, score.segment,
                moved ? " (was " : "", moved ? row.segment : "",
                moved ? ")" : "");
    rc = 0;
out:
    if (held)
        cv_scoring_live_release(self->rules);
    scoring_row_clear(&row);
    return rc;
}

static int on_decision(cv_bus_t *bus, const Conveyor__Envelope *event)
{
    const Conveyor__DecisionRecorded *d = event->decision_recorded;
    if (strcmp(d->result, "won") != 0 && strcmp(d->result, "lost") != 0) {
        cv_log_warn("dropping decision_recorded event '%s': result '%s' is "
                    "not won or lost",
                    event->event_id, d->result);
        return CV_BUS_DROP;
    }
    int64_t at =
        event->occurred_at > 0 ? event->occurred_at : cv_clock_now_ms();
    bool kept = false;
    if (scoring_store_decision(cv_bus_store(bus), d->lead_id, d->result, at,
                               &kept) != 0)
        return -1;
    if (kept)
        cv_metric_add(metric_decisions, 1);
    else
        cv_log_info("decision '%s' for '%s' not kept: no score here, or a "
                    "later decision is",
                    d->decision_id, d->lead_id);
    return 0;
}

int scoring_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event)
{
    scoring_t *self = arg;
    metrics_register();
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED:
        return on_lead_received(self, bus, event);
    case CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED:
        if (strcmp(event->activity_recorded->type, "scorecard") == 0)
            return on_scorecard(self, bus, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED:
        return on_decision(bus, event);
    default:
        break;
    }
    cv_log_warn("dropping a '%s' event '%s': scoring takes lead_received, "
                "scorecards and decisions",
                cv_event_type_name(event->type), event->event_id);
    return CV_BUS_DROP;
}

/* console_events: applies the other stages' events to the lead cards.
 *
 * Runs on the bus thread inside the bus's batch transaction. Events may
 * arrive in any order (a LeadScored before its LeadReceived when intake's
 * copy to the console is delayed), so every handler upserts the card, never
 * moves a stage backwards, and keeps the newest score and owner by event
 * time. The timeline is ordered by event time and each entry is added once
 * per business fact (task id, notification id, ...), so the same fact
 * arriving twice under two event ids shows once. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"

/* Text of an optional string field, "" when unset. */
/* `text` when it says something, else `fallback` (events leave optional
 * strings NULL or empty). */
static const char *console_or(const char *text, const char *fallback)
{
    return text != NULL && text[0] != '\0' ? text : fallback;
}

static const char *console_text(const char *text)
{
    return text != NULL ? text : "";
}

/* Who the timeline says did it: the producing service, else `fallback`. */
static const char *console_actor(const Conveyor__Envelope *ev,
                                 const char *fallback)
{
    return console_or(ev->producer, fallback);
}

/* The event's business time; a missing one counts as now. */
static int64_t console_event_time(const Conveyor__Envelope *ev)
{
    return ev->occurred_at > 0 ? ev->occurred_at : cv_clock_now_ms();
}

/* `target` when moving a card at `current` there goes forward (a closed
 * stage is only left for won), else NULL: console_stage_advance's rule. */
static const char *console_advance_to(const char *current, const char *target)
{
    if (console_stage_closed(current) && strcmp(target, "won") != 0)
        return NULL;
    if (console_stage_rank(target) <= console_stage_rank(current))
        return NULL;
    return target;
}

/* The stage a newly stored score implies for `card`, or NULL to keep it:
 * a knock-out rejects a lead that is still open; a score without one lifts
 * an earlier rejection (the manager re-scored it: the lead returns to
 * `scored`, or `assigned` when it has an owner) and otherwise moves a new
 * lead to `scored`. */
static const char *console_score_stage(const console_card_t *card,
                                       const Conveyor__Score *score)
{
    if (score->has_knocked_out && score->knocked_out)
        return console_stage_closed(card->stage) ? NULL : "rejected";
    if (strcmp(card->stage, "rejected") == 0)
        return card->has_owner ? "assigned" : "scored";
    return console_advance_to(card->stage, "scored");
}

/* The event's trace, NULL when it carries none. */
static const char *console_trace(const Conveyor__Envelope *ev)
{
    return console_or(ev->trace_id, NULL);
}

/* The console's known-leads cache while console_events_handle runs (NULL
 * when its caller passed no console_t): the handlers below run on the bus
 * thread only, one at a time. Every console_lead_ensure of theirs, here,
 * in console_routing.c and in console_notifications.c, is given it. */
static console_known_t *console_events_known;

/* The timeline fact of a first score that came with a routing event: one
 * per lead, however many events repeat the score (a LeadScored's entry is
 * keyed "scored:<event id>", and scoring sends none for such a score). */
#define CONSOLE_FIRST_SCORE_FACT "scored"

/* Stores `score` made at `at` on the card of `lead_id` as LeadScored
 * does: the newest score wins, whatever order they arrive in, and moves
 * the stage (console_score_stage). `lead` (NULL: only the id is known) is
 * merged into the card first. `repeated`: the score comes again with a
 * later event, so one stored at the very same time is this one and is
 * left alone. 0 or -1. */
static int console_score_apply(cv_store_t *store, const char *lead_id,
                               const Conveyor__Lead *lead,
                               const Conveyor__Score *score, int64_t at,
                               const char *trace, bool repeated)
{
    Conveyor__Lead only_id = CONVEYOR__LEAD__INIT;
    if (lead == NULL) {
        only_id.lead_id = (char *)lead_id;
        lead = &only_id;
    }
    console_card_t card;
    if (console_lead_merge(store, lead, at, trace, &card) != 0)
        return -1;
    bool newer = !card.has_score_at || card.score_at < at ||
                 (card.score_at == at && !repeated);
    if (repeated && !newer)
        return 0;
    console_card_change_t change = {0};
    if (newer) {
        change.score = score;
        change.stage = console_score_stage(&card, score);
    }
    return console_card_update(store, lead_id, at, trace, &change);
}

/* The timeline entry a (first) score makes, once per `fact`. 0 or -1. */
static int console_scored_entry(cv_store_t *store, const char *lead_id,
                                int64_t at, const char *actor,
                                const char *fact, const Conveyor__Score *score)
{
    int rc;
    if (score->has_knocked_out && score->knocked_out)
        rc = console_timeline_add(
            store, lead_id, at, actor, "lead_scored", fact,
            "knocked out: %s (score %+d, segment %s)",
            console_or(score->knockout_reason, "no reason given"), score->total,
            console_text(score->segment));
    else
        rc = console_timeline_add(store, lead_id, at, actor, "lead_scored",
                                  fact, "scored %+d, segment %s", score->total,
                                  console_text(score->segment));
    return rc < 0 ? -1 : 0;
}

static int console_on_lead_received(cv_store_t *store,
                                    const Conveyor__Envelope *ev)
{
    const Conveyor__LeadReceived *body = ev->lead_received;
    const Conveyor__Lead *lead = body->lead;
    if (lead == NULL || lead->lead_id == NULL || lead->lead_id[0] == '\0') {
        cv_log_warn("dropping lead_received '%s': no lead id",
                    console_text(ev->event_id));
        return CV_BUS_DROP;
    }
    const char *actor = console_actor(ev, "intake");
    if (!body->merged) {
        int64_t at = lead->has_received_at && lead->received_at > 0
                         ? lead->received_at
                         : console_event_time(ev);
        const char *trace = console_trace(ev);
        if (console_lead_upsert(store, lead, at, true, trace) != 0)
            return -1;
        console_known_learn(console_events_known, lead->lead_id, trace);
        if (lead->message != NULL && lead->message[0] != '\0') {
            sqlite3_stmt *stmt = cv_store_prepare(
                store, "INSERT INTO lead_messages (lead_id, fact, at, "
                       "channel, text) VALUES (?1, 'received', ?2, ?3, ?4) "
                       "ON CONFLICT (lead_id, fact) DO NOTHING");
            if (stmt == NULL)
                return -1;
            console_bind_text(stmt, 1, lead->lead_id);
            sqlite3_bind_int64(stmt, 2, at);
            console_bind_text(stmt, 3, lead->channel);
            console_bind_text(stmt, 4, lead->message);
            if (cv_store_step_done(stmt) != 0)
                return -1;
        }
        const char *source = console_or(lead->source, "unknown source");
        if (lead->returning_of != NULL && lead->returning_of[0] != '\0' &&
            console_timeline_add(
                store, lead->lead_id, at, actor, "returning_client",
                "returning", "returning client: earlier lead %s was %s%s%s",
                lead->returning_of, console_or(lead->previous_result, "closed"),
                lead->previous_owner != NULL ? ", owner " : "",
                console_or(lead->previous_owner, "")) < 0)
            return -1;
        return console_timeline_add(
                   store, lead->lead_id, at, actor, "lead_received", "received",
                   "new lead by %s from %s", console_or(lead->channel, "web"),
                   source) < 0
                   ? -1
                   : 0;
    }

    /* a repeat contact folded into this lead: the card gains the channel
     * and keeps the message, the belt does not start again */
    int64_t at = console_event_time(ev);
    const char *channel =
        body->merged_channel != NULL && body->merged_channel[0]
            ? body->merged_channel
            : lead->channel;
    const char *trace = console_trace(ev);
    if (console_lead_upsert(store, lead, at, false, trace) != 0)
        return -1;
    console_known_learn(console_events_known, lead->lead_id, trace);
    if (console_lead_add_channel(store, lead->lead_id, channel, at) != 0)
        return -1;
    char fact[160];
    snprintf(fact, sizeof(fact), "merged:%s", console_text(ev->event_id));
    const char *message = body->merged_message;
    if (message != NULL && message[0] != '\0') {
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "INSERT INTO lead_messages (lead_id, fact, at, channel, "
                   "text) VALUES (?1, ?2, ?3, ?4, ?5) "
                   "ON CONFLICT (lead_id, fact) DO NOTHING");
        if (stmt == NULL)
            return -1;
        console_bind_text(stmt, 1, lead->lead_id);
        console_bind_text(stmt, 2, fact);
        sqlite3_bind_int64(stmt, 3, at);
        console_bind_text(stmt, 4, channel);
        console_bind_text(stmt, 5, message);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    return console_timeline_add(store, lead->lead_id, at, actor, "lead_merged",
                                fact, "merged: new contact by %s",
                                console_or(channel, "web")) < 0
               ? -1
               : 0;
}

static int console_on_lead_scored(cv_store_t *store,
                                  const Conveyor__Envelope *ev)
{
    const Conveyor__LeadScored *body = ev->lead_scored;
    const Conveyor__Lead *lead = body->lead;
    const Conveyor__Score *score = body->score;
    if (lead == NULL || lead->lead_id == NULL || lead->lead_id[0] == '\0' ||
        score == NULL) {
        cv_log_warn("dropping lead_scored '%s': no lead id or score",
                    console_text(ev->event_id));
        return CV_BUS_DROP;
    }
    int64_t at = console_event_time(ev);
    if (console_score_apply(store, lead->lead_id, lead, score, at,
                            console_trace(ev), false) != 0)
        return -1;
    char fact[160];
    snprintf(fact, sizeof(fact), "scored:%s", console_text(ev->event_id));
    int rc;
    if (body->has_rescore && body->rescore) {
        /* after people changed the scorecard: say what moved, and why */
        const Conveyor__Scorecard *card = body->scorecard;
        char was[64] = "";
        if (body->previous_segment != NULL &&
            strcmp(body->previous_segment, console_text(score->segment)) != 0)
            snprintf(was, sizeof(was), " (was %s)", body->previous_segment);
        char by[200] = "";
        if (card != NULL)
            snprintf(by, sizeof(by), " after %s's scorecard (revision %lld)",
                     console_or(card->actor, "staff"),
                     (long long)card->revision);
        if (score->has_knocked_out && score->knocked_out)
            rc = console_timeline_add(
                store, lead->lead_id, at, console_actor(ev, "scoring"),
                "lead_rescored", fact,
                "re-scored%s: knocked out: %s (score "
                "%+d, segment %s%s)",
                by, console_or(score->knockout_reason, "no reason given"),
                score->total, console_text(score->segment), was);
        else
            rc = console_timeline_add(
                store, lead->lead_id, at, console_actor(ev, "scoring"),
                "lead_rescored", fact,
                "re-scored%s: %+d, segment %s%s, "
                "model %s",
                by, score->total, console_text(score->segment), was,
                console_or(score->model_version, "?"));
        return rc < 0 ? -1 : 0;
    }
    return console_scored_entry(store, lead->lead_id, at,
                                console_actor(ev, "scoring"), fact, score);
}

/* A first score: no scorecard revision in it, made at a known time, not a
 * knock-out (scoring sends those to the console itself). */
static bool console_is_first_score(const Conveyor__Score *score)
{
    return score != NULL && score->has_scored_at && score->scored_at > 0 &&
           !(score->has_revision && score->revision != 0) &&
           !(score->has_knocked_out && score->knocked_out);
}

int console_first_score_apply(cv_store_t *store, const char *lead_id,
                              const Conveyor__Lead *lead,
                              const Conveyor__Score *score,
                              const char *trace_id)
{
    if (!console_is_first_score(score))
        return 0;
    int64_t at = score->scored_at;
    if (console_score_apply(store, lead_id, lead, score, at, trace_id,
                            true) != 0)
        return -1;
    return console_scored_entry(store, lead_id, at, "scoring",
                                CONSOLE_FIRST_SCORE_FACT, score);
}

static int console_on_lead_assigned(cv_store_t *store,
                                    const Conveyor__Envelope *ev)
{
    const Conveyor__LeadAssigned *body = ev->lead_assigned;
    const Conveyor__Lead *lead = body->lead;
    if (lead == NULL || lead->lead_id == NULL || lead->lead_id[0] == '\0' ||
        body->staff_id == NULL || body->staff_id[0] == '\0') {
        cv_log_warn("dropping lead_assigned '%s': no lead or staff id",
                    console_text(ev->event_id));
        return CV_BUS_DROP;
    }
    int64_t at = console_event_time(ev);
    console_card_t card;
    if (console_lead_merge(store, lead, at, console_trace(ev), &card) != 0)
        return -1;
    /* a reviewer (the head of sales on a segment A lead) joins the lead:
     * a task comes for them, the owner stays */
    if (body->role != NULL && strcmp(body->role, "reviewer") == 0) {
        /* the head who assigns by hand may be the first to get the lead */
        if (console_first_score_apply(store, lead->lead_id, lead,
                                      body->score, console_trace(ev)) != 0)
            return -1;
        char fact[160];
        snprintf(fact, sizeof(fact), "joined:%s", console_text(ev->event_id));
        return console_timeline_add(
                   store, lead->lead_id, at, console_actor(ev, "routing"),
                   "lead_reviewer", fact, "%s (%s) joins the lead by %s: %s",
                   console_or(body->staff_name, body->staff_id), body->staff_id,
                   console_or(body->strategy, "routing"),
                   console_or(body->rule_trace, "no rule trace")) < 0
                   ? -1
                   : 0;
    }
    /* on the rejection path the first contact is no longer due: the
     * rejection task replaces it */
    if (body->task_kind != NULL &&
        strcmp(body->task_kind, "send_rejection") == 0) {
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "UPDATE tasks SET status = 'done', completed_at = ?2, "
                   "completed_by = 'routing: segment C' WHERE lead_id = ?1 "
                   "AND kind = 'first_contact' AND status = 'open'");
        if (stmt == NULL)
            return -1;
        console_bind_text(stmt, 1, lead->lead_id);
        sqlite3_bind_int64(stmt, 2, at);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    /* the newest score and the newest assignment win, whatever order
     * they arrive in; a score counts from when scoring made it */
    console_card_change_t change = {0};
    const Conveyor__Score *score = body->score;
    const char *stage = card.stage;
    bool first = console_is_first_score(score);
    if (first) {
        /* the lead's first score comes with it (scoring sent it to
         * routing alone): what its LeadScored did at scored_at, folded
         * into this event's one write of the card */
        if (console_scored_entry(store, lead->lead_id, score->scored_at,
                                 "scoring", CONSOLE_FIRST_SCORE_FACT,
                                 score) != 0)
            return -1;
        if (!card.has_score_at || card.score_at < score->scored_at) {
            change.score = score;
            change.score_at = score->scored_at;
            const char *scored = console_score_stage(&card, score);
            if (scored != NULL)
                stage = scored;
        }
    } else if (score != NULL) {
        int64_t score_at = score->has_scored_at && score->scored_at > 0
                               ? score->scored_at
                               : at;
        if (!card.has_score_at || card.score_at <= score_at) {
            change.score = score;
            change.score_at = score_at;
        }
    }
    if (!card.has_owner_at || card.owner_at <= at) {
        change.owner_id = body->staff_id;
        change.owner_name = body->staff_name;
    }
    change.stage = console_advance_to(stage, "assigned");
    if (change.stage == NULL && stage != card.stage) {
        /* the score's stage stands (it lifted a rejection of a lead that
         * has an owner): set at the score's time, as LeadScored set it */
        console_card_change_t scored = {.score = change.score,
                                        .score_at = change.score_at,
                                        .stage = stage};
        if (console_card_update(store, lead->lead_id, score->scored_at,
                                console_trace(ev), &scored) != 0)
            return -1;
        change.score = NULL;
    }
    if (console_card_update(store, lead->lead_id, at, console_trace(ev),
                            &change) != 0)
        return -1;
    console_known_learn(console_events_known, lead->lead_id,
                        console_trace(ev));
    char fact[160];
    snprintf(fact, sizeof(fact), "assigned:%s", console_text(ev->event_id));
    char tier[32] = "";
    if (body->has_tier)
        snprintf(tier, sizeof(tier), ", tier %d", (int)body->tier);
    const char *name = console_or(body->staff_name, body->staff_id);
    return console_timeline_add(
               store, lead->lead_id, at, console_actor(ev, "routing"),
               "lead_assigned", fact, "assigned to %s (%s) by %s%s: %s", name,
               body->staff_id, console_or(body->strategy, "routing"), tier,
               console_or(body->rule_trace, "no rule trace")) < 0
               ? -1
               : 0;
}

static int console_on_lead_unassigned(cv_store_t *store,
                                      const Conveyor__Envelope *ev)
{
    const Conveyor__LeadUnassigned *body = ev->lead_unassigned;
    int64_t at = console_event_time(ev);
    /* a lead that comes to wait brings its first score from here */
    if (console_first_score_apply(store, body->lead_id, NULL, body->score,
                                  console_trace(ev)) != 0 ||
        console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    char fact[160];
    snprintf(fact, sizeof(fact), "unassigned:%s", console_text(ev->event_id));
    char tier[32] = "";
    if (body->has_tier)
        snprintf(tier, sizeof(tier), " (tier %d)", (int)body->tier);
    return console_timeline_add(store, body->lead_id, at,
                                console_actor(ev, "routing"), "lead_unassigned",
                                fact, "nobody available%s: %s", tier,
                                console_or(body->reason, "no reason given")) < 0
               ? -1
               : 0;
}

/* followup-scheduler closed a task the work satisfied (a call that made
 * the first contact, a decision that ended the push) */
static int console_on_task_completed(cv_store_t *store,
                                     const Conveyor__Envelope *ev)
{
    const Conveyor__TaskCompleted *body = ev->task_completed;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE tasks SET status = 'done', completed_at = ?1, "
               "completed_by = ?2 WHERE task_id = ?3 AND status = 'open'");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, body->has_completed_at
                                    ? body->completed_at
                                    : console_event_time(ev));
    console_bind_text(stmt, 2, console_or(body->actor, "followup-scheduler"));
    console_bind_text(stmt, 3, body->task_id);
    return cv_store_step_done(stmt);
}

static int console_on_task_created(cv_store_t *store,
                                   const Conveyor__Envelope *ev)
{
    const Conveyor__TaskCreated *body = ev->task_created;
    int64_t at = console_event_time(ev);
    if (console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    /* a row an early Escalation left has no kind yet: fill it in */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO tasks (task_id, lead_id, staff_id, kind, title, "
               "due_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
               "ON CONFLICT (task_id) DO UPDATE SET kind = excluded.kind, "
               "title = excluded.title, due_at = excluded.due_at, "
               "staff_id = excluded.staff_id, created_at = "
               "excluded.created_at WHERE kind = ''");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, body->task_id);
    console_bind_text(stmt, 2, body->lead_id);
    console_bind_text(stmt, 3, body->staff_id);
    console_bind_text(stmt, 4, body->kind);
    console_bind_text(stmt, 5, body->title);
    sqlite3_bind_int64(stmt, 6, body->due_at);
    sqlite3_bind_int64(stmt, 7, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    /* followup's rules move the stage with some tasks: negotiation (no
     * decision after a proposal), qualified (a lost lead back to the
     * interview to find the decision maker) */
    if (body->stage != NULL && body->stage[0] != '\0' &&
        console_stage_rank(body->stage) >= 0 &&
        console_stage_set(store, body->lead_id, body->stage, at) != 0)
        return -1;
    char fact[200];
    snprintf(fact, sizeof(fact), "task:%s", body->task_id);
    char due[40];
    cv_clock_format(body->due_at, due, sizeof(due));
    return console_timeline_add(
               store, body->lead_id, at,
               console_actor(ev, "followup-scheduler"), "task_created", fact,
               "task %s for %s, due %s%s%s", body->kind, body->staff_id, due,
               body->title != NULL && body->title[0] ? ": " : "",
               console_text(body->title)) < 0
               ? -1
               : 0;
}

static const char *console_escalation_step(int level)
{
    switch (level) {
    case 1:
        return "owner reminded";
    case 2:
        return "lead to be reassigned";
    case 3:
        return "head of sales told";
    default:
        return "escalated";
    }
}

static int console_on_escalation(cv_store_t *store,
                                 const Conveyor__Envelope *ev)
{
    const Conveyor__Escalation *body = ev->escalation;
    int64_t at = body->has_fired_at && body->fired_at > 0
                     ? body->fired_at
                     : console_event_time(ev);
    int level = body->has_level ? body->level : 1;
    if (console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    if (body->task_id != NULL && body->task_id[0] != '\0') {
        /* the task may not be known yet: keep a row that TaskCreated
         * completes */
        sqlite3_stmt *stmt = cv_store_prepare(
            store,
            "INSERT INTO tasks (task_id, lead_id, staff_id, kind, due_at, "
            "overdue, escalation_level, created_at) "
            "VALUES (?1, ?2, ?3, '', ?4, 1, ?5, ?6) "
            "ON CONFLICT (task_id) DO UPDATE SET overdue = 1, "
            "escalation_level = max(escalation_level, excluded."
            "escalation_level)");
        if (stmt == NULL)
            return -1;
        cv_store_bind_text(stmt, 1, body->task_id);
        cv_store_bind_text(stmt, 2, body->lead_id);
        cv_store_bind_text(stmt, 3, console_text(body->staff_id));
        sqlite3_bind_int64(stmt, 4, body->has_due_at ? body->due_at : at);
        sqlite3_bind_int(stmt, 5, level);
        sqlite3_bind_int64(stmt, 6, at);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    char fact[200];
    snprintf(fact, sizeof(fact), "escalation:%s:L%d", body->timer_id, level);
    char due[40] = "unknown";
    if (body->has_due_at)
        cv_clock_format(body->due_at, due, sizeof(due));
    return console_timeline_add(
               store, body->lead_id, at,
               console_actor(ev, "followup-scheduler"), "escalation", fact,
               "%s missed (due %s) by %s, level %d: %s%s%s",
               console_or(body->kind, "SLA"), due,
               console_or(body->staff_id, "nobody"), level,
               console_escalation_step(level),
               body->reason != NULL && body->reason[0] ? ", " : "",
               console_text(body->reason)) < 0
               ? -1
               : 0;
}

static int console_on_notification(cv_store_t *store,
                                   const Conveyor__Envelope *ev)
{
    const Conveyor__NotificationDelivered *body = ev->notification_delivered;
    int64_t at = body->has_delivered_at && body->delivered_at > 0
                     ? body->delivered_at
                     : console_event_time(ev);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO notifications (notification_id, lead_id, "
               "staff_id, channel, attempts, http_status, delivered_at) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
               "ON CONFLICT (notification_id) DO NOTHING");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, body->notification_id);
    console_bind_text(stmt, 2, body->lead_id);
    console_bind_text(stmt, 3, body->staff_id);
    console_bind_text(stmt, 4, body->channel);
    if (body->has_attempts)
        sqlite3_bind_int(stmt, 5, body->attempts);
    if (body->has_http_status)
        sqlite3_bind_int(stmt, 6, body->http_status);
    sqlite3_bind_int64(stmt, 7, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (body->lead_id == NULL || body->lead_id[0] == '\0')
        return 0;
    if (console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    char fact[200];
    snprintf(fact, sizeof(fact), "notified:%s", body->notification_id);
    int attempts = body->has_attempts ? body->attempts : 1;
    char status[32] = "";
    if (body->has_http_status && body->http_status > 0)
        snprintf(status, sizeof(status), ", HTTP %d", (int)body->http_status);
    return console_timeline_add(
               store, body->lead_id, at, console_actor(ev, "notifier"),
               "notification_delivered", fact,
               "%s told by %s after %d attempt%s%s (%s)",
               console_or(body->staff_id, "staff"),
               console_or(body->channel, "console"), attempts,
               attempts == 1 ? "" : "s", status, body->notification_id) < 0
               ? -1
               : 0;
}

static int console_on_proposal(cv_store_t *store, const Conveyor__Envelope *ev)
{
    const Conveyor__ProposalRendered *body = ev->proposal_rendered;
    int64_t at = console_event_time(ev);
    if (console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO proposals (proposal_id, lead_id, segment, kind, "
               "title, html, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
               "ON CONFLICT (proposal_id) DO NOTHING");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, body->proposal_id);
    cv_store_bind_text(stmt, 2, body->lead_id);
    cv_store_bind_text(stmt, 3, body->segment);
    cv_store_bind_text(stmt, 4, body->kind);
    cv_store_bind_text(stmt, 5, body->title);
    cv_store_bind_text(stmt, 6, console_text(body->html));
    sqlite3_bind_int64(stmt, 7, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    char fact[200];
    snprintf(fact, sizeof(fact), "proposal:%s", body->proposal_id);
    return console_timeline_add(
               store, body->lead_id, at,
               console_actor(ev, "proposal-generator"), "proposal_rendered",
               fact, "%s %s rendered%s%s", console_or(body->kind, "proposal"),
               body->proposal_id,
               body->title != NULL && body->title[0] ? ": " : "",
               console_text(body->title)) < 0
               ? -1
               : 0;
}

static int console_on_account(cv_store_t *store, const Conveyor__Envelope *ev)
{
    const Conveyor__AccountOpened *body = ev->account_opened;
    int64_t at = body->has_opened_at && body->opened_at > 0
                     ? body->opened_at
                     : console_event_time(ev);
    if (console_lead_ensure(store, console_events_known, body->lead_id,
                            at, console_trace(ev)) != 0)
        return -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE leads SET account_id = ?2, account_company = ?3, "
               "account_owner_id = ?4, account_opened_at = ?5, "
               "updated_at = max(updated_at, ?5) WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, body->lead_id);
    cv_store_bind_text(stmt, 2, body->account_id);
    cv_store_bind_text(stmt, 3, body->company);
    cv_store_bind_text(stmt, 4, body->owner_id);
    sqlite3_bind_int64(stmt, 5, at);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (console_stage_advance(store, body->lead_id, "won", at) != 0)
        return -1;
    char fact[200];
    snprintf(fact, sizeof(fact), "account:%s", body->account_id);
    return console_timeline_add(
               store, body->lead_id, at, console_actor(ev, "account-retention"),
               "account_opened", fact, "account %s opened%s%s",
               body->account_id,
               body->company != NULL && body->company[0] ? " for " : "",
               console_text(body->company)) < 0
               ? -1
               : 0;
}

static cv_metric_t *console_applied; /* events applied to the cards */
static cv_metric_t *console_dropped; /* events acknowledged unused */

void console_metrics_register(void)
{
    console_applied =
        cv_metrics_counter("conveyor_console_events_applied_total",
                           "events applied to the lead cards");
    console_dropped =
        cv_metrics_counter("conveyor_console_events_dropped_total",
                           "events the console could not use");
    cv_metrics_counter(CONSOLE_METRIC_ACTIVITIES, "activities staff recorded");
    cv_metrics_counter(CONSOLE_METRIC_DECISIONS,
                       "won and lost decisions recorded");
}

int console_events_handle(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
{
    console_events_known = arg != NULL ? ((console_t *)arg)->known : NULL;
    cv_store_t *store = cv_bus_store(bus);
    int rc;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED:
        rc = console_on_lead_received(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        rc = console_on_lead_scored(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED:
        rc = console_on_lead_assigned(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED:
        rc = console_on_lead_unassigned(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_TASK_CREATED:
        rc = console_on_task_created(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED:
        rc = console_on_task_completed(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_ESCALATION:
        rc = console_on_escalation(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_DELIVERED:
        rc = console_on_notification(store, event);
        if (rc == 0) /* a resent dead letter that got through */
            rc = console_notifications_delivered(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_FAILED:
        rc = console_notifications_failed(store, console_events_known,
                                          event);
        break;
    case CONVEYOR__ENVELOPE__BODY_LEAD_OFFERED:
        rc = console_routing_offered(store, console_events_known, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_PROPOSAL_RENDERED:
        rc = console_on_proposal(store, event);
        break;
    case CONVEYOR__ENVELOPE__BODY_ACCOUNT_OPENED:
        rc = console_on_account(store, event);
        break;
    default:
        cv_log_warn("dropping event '%s': the console has no use for '%s'",
                    console_text(event->event_id),
                    cv_event_type_name(cv_event_type_of(event)));
        rc = CV_BUS_DROP;
        break;
    }
    /* every handler keeps the event's trace on the card in the statement
     * that creates or fills it (console_lead_ensure, console_lead_upsert,
     * console_card_update) */
    /* a failed or dropped event is rolled back, maybe with the turn's
     * earlier events: what the turn learnt may not hold */
    if (rc != 0)
        console_known_forget_turn(console_events_known);
    if (rc == 0)
        cv_metric_add(console_applied, 1);
    else if (rc == CV_BUS_DROP)
        cv_metric_add(console_dropped, 1);
    return rc;
}

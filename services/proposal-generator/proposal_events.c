/* The proposal-generator's handler: a proposal presented or sent becomes
 * a stored, rendered document on the lead's card. */
#include <stdio.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_store.h"
#include "proposal.h"

static bool events_is_proposal(const char *type)
{
    return strcmp(type, "proposal_presented") == 0 ||
           strcmp(type, "proposal_sent") == 0;
}

/* Stores the document unless the proposal exists. Sets *created. */
static int events_store(cv_bus_t *bus, const char *proposal_id,
                        const Conveyor__ActivityRecorded *activity,
                        const proposal_doc_t *doc, int64_t now, bool *created)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO proposal (proposal_id, activity_id, lead_id,"
        " activity_type, segment, kind, score_total, needs_approval, title,"
        " html, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, proposal_id);
    cv_store_bind_text(stmt, 2, activity->activity_id);
    cv_store_bind_text(stmt, 3, activity->lead_id);
    cv_store_bind_text(stmt, 4, activity->type);
    cv_store_bind_text(stmt, 5, doc->segment);
    cv_store_bind_text(stmt, 6, doc->kind);
    if (activity->score != NULL)
        sqlite3_bind_int(stmt, 7, activity->score->total);
    sqlite3_bind_int(stmt, 8, doc->needs_approval ? 1 : 0);
    cv_store_bind_text(stmt, 9, doc->title);
    cv_store_bind_text(stmt, 10, doc->html);
    sqlite3_bind_int64(stmt, 11, now);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *created = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

static int events_emit(cv_bus_t *bus, const char *proposal_id,
                       const Conveyor__ActivityRecorded *activity,
                       const proposal_doc_t *doc)
{
    Conveyor__ProposalRendered rendered = CONVEYOR__PROPOSAL_RENDERED__INIT;
    rendered.proposal_id = (char *)proposal_id;
    rendered.lead_id = activity->lead_id;
    rendered.segment = (char *)doc->segment;
    rendered.kind = (char *)doc->kind;
    rendered.title = doc->title;
    rendered.html = doc->html;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_PROPOSAL_RENDERED;
    env.proposal_rendered = &rendered;
    return cv_bus_emit(bus, &env, "console", NULL);
}

/* Counts a rendered document by its kind. */
static void events_count(const char *kind)
{
    char name[128];
    snprintf(name, sizeof(name),
             "conveyor_proposals_rendered_total{kind=\"%s\"}", kind);
    cv_metric_add(cv_metrics_counter(name, "proposals rendered, by kind"), 1);
}

static int events_activity(cv_bus_t *bus,
                           const Conveyor__ActivityRecorded *activity)
{
    proposal_doc_t doc = {0};
    char proposal_id[256];
    int rc = -1;
    if (!events_is_proposal(activity->type))
        return 0; /* a valid activity, just not one that needs a proposal */
    if ((size_t)snprintf(proposal_id, sizeof(proposal_id), "prop-%s",
                         activity->activity_id) >= sizeof(proposal_id)) {
        cv_log(CV_LOG_WARN, "activity id '%.64s...' too long, dropped",
               activity->activity_id);
        return CV_BUS_DROP;
    }
    if (activity->score == NULL)
        cv_log(CV_LOG_WARN,
               "activity '%s' carries no score, rendering the "
               "standard proposal",
               activity->activity_id);
    int64_t now = cv_clock_now_ms();
    if (proposal_render(proposal_id, activity, now, &doc) != 0)
        goto out;
    bool created = false;
    if (events_store(bus, proposal_id, activity, &doc, now, &created) != 0)
        goto out;
    if (!created) {
        cv_log(CV_LOG_DEBUG, "proposal '%s' exists, already rendered",
               proposal_id);
        rc = 0;
        goto out;
    }
    if (events_emit(bus, proposal_id, activity, &doc) != 0)
        goto out;
    events_count(doc.kind);
    cv_log(CV_LOG_INFO, "proposal '%s' (%s, segment %s%s) for '%s'",
           proposal_id, doc.kind, doc.segment,
           doc.needs_approval ? ", needs approval" : "", activity->lead_id);
    rc = 0;
out:
    proposal_doc_clear(&doc);
    return rc;
}

int proposal_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
{
    (void)arg;
    if (event->body_case == CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED)
        return events_activity(bus, event->activity_recorded);
    cv_log(CV_LOG_WARN,
           "event '%s' of type '%s' is not for the proposal "
           "generator, dropped",
           event->event_id, cv_event_type_name(event->type));
    return CV_BUS_DROP;
}

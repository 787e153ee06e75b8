/* The proposal-generator's handler: a proposal presented or sent becomes
 * a stored, rendered document on the lead's card. */
#include <stdio.h>
#include <stdlib.h>
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

/* The lead's score kept from a segment change, or NULL (none, or it does
 * not parse; logged). *failed on a database error. Free with
 * conveyor__score__free_unpacked. */
static Conveyor__Score *events_kept_score(cv_store_t *store,
                                          const char *lead_id, bool *failed)
{
    *failed = false;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT score FROM lead_segment WHERE lead_id = ?");
    if (stmt == NULL) {
        *failed = true;
        return NULL;
    }
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    Conveyor__Score *score = NULL;
    if (rc == SQLITE_ROW) {
        const void *blob = sqlite3_column_blob(stmt, 0);
        int size = sqlite3_column_bytes(stmt, 0);
        if (blob != NULL && size > 0)
            score = conveyor__score__unpack(NULL, (size_t)size, blob);
        if (score == NULL)
            cv_log(CV_LOG_WARN, "the kept score of '%s' does not parse",
                   lead_id);
    } else if (rc != SQLITE_DONE) {
        cv_log(CV_LOG_ERROR, "cannot read the segment of '%s': %s", lead_id,
               sqlite3_errstr(rc));
        *failed = true;
    }
    sqlite3_reset(stmt);
    return score;
}

static int64_t events_revision(const Conveyor__Score *score)
{
    return score != NULL && score->has_revision ? score->revision : 0;
}

/* A re-score moved the lead to another segment: keep it for the lead's
 * next proposal (a later revision wins). */
static int events_scored(cv_bus_t *bus, const Conveyor__LeadScored *scored)
{
    const Conveyor__Score *score = scored->score;
    if (scored->lead == NULL || scored->lead->lead_id == NULL ||
        score == NULL || score->segment == NULL)
        return CV_BUS_DROP;
    size_t size = conveyor__score__get_packed_size(score);
    uint8_t *packed = malloc(size > 0 ? size : 1);
    if (packed == NULL)
        return -1;
    conveyor__score__pack(score, packed);
    cv_store_t *store = cv_bus_store(bus);
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO lead_segment (lead_id, segment, total, revision,"
               " score, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
               " ON CONFLICT (lead_id) DO UPDATE SET segment ="
               " excluded.segment, total = excluded.total,"
               " revision = excluded.revision, score = excluded.score,"
               " updated_at = excluded.updated_at"
               " WHERE excluded.revision > revision");
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1, scored->lead->lead_id);
    cv_store_bind_text(stmt, 2, score->segment);
    sqlite3_bind_int(stmt, 3, score->total);
    sqlite3_bind_int64(stmt, 4, events_revision(score));
    sqlite3_bind_blob(stmt, 5, packed, (int)size, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        goto out;
    if (sqlite3_changes(cv_store_db(store)) > 0) {
        cv_metric_add(
            cv_metrics_counter("conveyor_proposal_segment_changes_total",
                               "leads whose proposal template changed with "
                               "their segment"),
            1);
        cv_log(CV_LOG_INFO,
               "lead '%s' is segment %s now (was %s): its "
               "proposal will be the %s",
               scored->lead->lead_id, score->segment,
               scored->previous_segment ? scored->previous_segment : "?",
               strcmp(score->segment, "A") == 0   ? "full package"
               : strcmp(score->segment, "C") == 0 ? "rejection"
                                                  : "standard proposal");
    }
    rc = 0;
out:
    free(packed);
    return rc;
}

static int events_activity(cv_bus_t *bus,
                           const Conveyor__ActivityRecorded *activity)
{
    proposal_doc_t doc = {0};
    char proposal_id[256];
    int rc = -1;
    Conveyor__Score *kept = NULL;
    if (!events_is_proposal(activity->type))
        return 0; /* a valid activity, just not one that needs a proposal */
    /* a segment people set after the activity's copy was made wins */
    bool failed = false;
    kept = events_kept_score(cv_bus_store(bus), activity->lead_id, &failed);
    if (failed)
        return -1;
    Conveyor__ActivityRecorded copy = *activity;
    if (kept != NULL &&
        (activity->score == NULL ||
         events_revision(kept) > events_revision(activity->score)))
        copy.score = kept;
    activity = &copy;
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
    if (kept != NULL)
        conveyor__score__free_unpacked(kept, NULL);
    return rc;
}

int proposal_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event)
{
    (void)arg;
    if (event->body_case == CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED)
        return events_activity(bus, event->activity_recorded);
    if (event->body_case == CONVEYOR__ENVELOPE__BODY_LEAD_SCORED)
        return events_scored(bus, event->lead_scored);
    cv_log(CV_LOG_WARN,
           "event '%s' of type '%s' is not for the proposal "
           "generator, dropped",
           event->event_id, cv_event_type_name(event->type));
    return CV_BUS_DROP;
}

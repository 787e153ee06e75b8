/* Opening an account when a lead is won. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_store.h"
#include "retention.h"

static const char *account_nonempty(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* The name the account goes by: the company, else the person. */
static const char *account_company(const Conveyor__Lead *lead)
{
    if (lead == NULL)
        return NULL;
    if (account_nonempty(lead->company) != NULL)
        return lead->company;
    return account_nonempty(lead->name);
}

static const char *account_owner(const Conveyor__DecisionRecorded *decision)
{
    if (account_nonempty(decision->owner_id) != NULL)
        return decision->owner_id;
    return account_nonempty(decision->actor);
}

/* Inserts the account unless it exists. Sets *created. 0 or -1. */
static int account_insert(cv_bus_t *bus, const char *account_id,
                          const Conveyor__DecisionRecorded *decision,
                          int64_t now, const char *lead_json, bool *created)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO account (account_id, lead_id, company,"
        " owner_id, opened_at, decision_id, lead_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)";
    cv_store_t *store = cv_bus_store(bus);
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, account_id);
    cv_store_bind_text(stmt, 2, decision->lead_id);
    cv_store_bind_text(stmt, 3, account_company(decision->lead));
    cv_store_bind_text(stmt, 4, account_owner(decision));
    sqlite3_bind_int64(stmt, 5, now);
    cv_store_bind_text(stmt, 6, decision->decision_id);
    cv_store_bind_text(stmt, 7, lead_json);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *created = sqlite3_changes(cv_store_db(store)) > 0;
    return 0;
}

static int account_emit_opened(cv_bus_t *bus, const char *account_id,
                               const Conveyor__DecisionRecorded *decision,
                               int64_t now)
{
    Conveyor__AccountOpened opened = CONVEYOR__ACCOUNT_OPENED__INIT;
    opened.account_id = (char *)account_id;
    opened.lead_id = decision->lead_id;
    opened.company = (char *)account_company(decision->lead);
    opened.owner_id = (char *)account_owner(decision);
    opened.has_opened_at = true;
    opened.opened_at = now;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ACCOUNT_OPENED;
    env.account_opened = &opened;
    return cv_bus_emit(bus, &env, "console", NULL);
}

static int account_open(cv_bus_t *bus,
                        const Conveyor__DecisionRecorded *decision)
{
    char account_id[256];
    char *lead_json = NULL;
    int rc = -1;
    if ((size_t)snprintf(account_id, sizeof(account_id), "acct-%s",
                         decision->lead_id) >= sizeof(account_id)) {
        cv_log(CV_LOG_WARN, "lead id '%.64s...' too long, decision dropped",
               decision->lead_id);
        return CV_BUS_DROP;
    }
    if (decision->lead != NULL) {
        json_t *lead = cv_event_lead_to_json(decision->lead);
        lead_json = lead != NULL ? json_dumps(lead, JSON_COMPACT) : NULL;
        json_decref(lead);
        if (lead_json == NULL) {
            cv_log(CV_LOG_ERROR, "out of memory opening '%s'", account_id);
            goto out;
        }
    }
    int64_t now = cv_clock_now_ms();
    bool created = false;
    if (account_insert(bus, account_id, decision, now, lead_json, &created) !=
        0)
        goto out;
    if (!created) {
        cv_log(CV_LOG_DEBUG, "account '%s' exists, already opened", account_id);
        rc = 0;
        goto out;
    }
    if (account_emit_opened(bus, account_id, decision, now) != 0)
        goto out;
    cv_metric_add(cv_metrics_counter("conveyor_accounts_opened_total",
                                     "accounts opened for won leads"),
                  1);
    cv_log(CV_LOG_INFO, "account '%s' opened for '%s'", account_id,
           account_owner(decision) != NULL ? account_owner(decision)
                                           : "(no owner)");
    rc = 0;
out:
    free(lead_json);
    return rc;
}

int retention_handle_event(void *arg, cv_bus_t *bus,
                           const Conveyor__Envelope *event)
{
    (void)arg;
    if (event->body_case != CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED) {
        cv_log(CV_LOG_WARN,
               "event '%s' of type '%s' is not for account "
               "retention, dropped",
               event->event_id, cv_event_type_name(event->type));
        return CV_BUS_DROP;
    }
    const Conveyor__DecisionRecorded *decision = event->decision_recorded;
    if (strcmp(decision->result, "won") == 0)
        return account_open(bus, decision);
    if (strcmp(decision->result, "lost") == 0)
        return 0; /* the scheduler follows lost leads up; nothing here */
    cv_log(CV_LOG_WARN, "decision '%s' has unknown result '%s', dropped",
           decision->decision_id, decision->result);
    return CV_BUS_DROP;
}

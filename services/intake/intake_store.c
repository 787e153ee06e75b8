/* intake_store: leads, contact keys, arrivals and idempotency replies. */
#include "intake_store.h"

#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_store.h"

static const char intake_schema_v1[] =
    "CREATE TABLE leads ("
    "  lead_id TEXT PRIMARY KEY,"
    "  api_source TEXT NOT NULL,"       /* whose API key posted it first */
    "  received_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  merge_count INTEGER NOT NULL DEFAULT 0,"
    "  name TEXT, company TEXT, phone TEXT, email TEXT, telegram TEXT,"
    "  message TEXT, channel TEXT NOT NULL, source TEXT, region TEXT,"
    "  industry TEXT, product TEXT, currency TEXT, inn TEXT, timezone TEXT,"
    "  utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
    "  extra_json TEXT, domain TEXT, budget REAL"
    ") STRICT;"
    /* one row per canonical contact: how a repeat contact is found */
    "CREATE TABLE contact_keys ("
    "  kind TEXT NOT NULL"
    "    CHECK (kind IN ('phone', 'email', 'telegram', 'inn')),"
    "  value TEXT NOT NULL,"
    "  lead_id TEXT NOT NULL REFERENCES leads (lead_id),"
    "  PRIMARY KEY (kind, value)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX contact_keys_by_lead ON contact_keys (lead_id);"
    /* every submission as it arrived (normalised), merged or not */
    "CREATE TABLE arrivals ("
    "  arrival_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL REFERENCES leads (lead_id),"
    "  received_at INTEGER NOT NULL,"
    "  api_source TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  merged INTEGER NOT NULL,"
    "  lead_json TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX arrivals_by_lead ON arrivals (lead_id);"
    /* the reply given to each (source, Idempotency-Key) */
    "CREATE TABLE idempotency ("
    "  source TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  body_hash TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  reply TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (source, key)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX idempotency_by_age ON idempotency (created_at);";

const char *const intake_migrations[] = {intake_schema_v1};
const size_t intake_migration_count =
    sizeof(intake_migrations) / sizeof(intake_migrations[0]);

/* The text columns in intake_lead_text_fields order, bound from ?4 on
 * insert and from ?3 on update. */
static const char intake_sql_insert[] =
    "INSERT INTO leads (lead_id, api_source, received_at, updated_at,"
    " name, company, phone, email, telegram, message, channel, source,"
    " region, industry, product, currency, inn, timezone, utm_source,"
    " utm_medium, utm_campaign, extra_json, domain, budget)"
    " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)";

static const char intake_sql_update[] =
    "UPDATE leads SET updated_at = ?2, merge_count = merge_count + 1,"
    " name = ?3, company = ?4, phone = ?5, email = ?6, telegram = ?7,"
    " message = ?8, channel = ?9, source = ?10, region = ?11,"
    " industry = ?12, product = ?13, currency = ?14, inn = ?15,"
    " timezone = ?16, utm_source = ?17, utm_medium = ?18,"
    " utm_campaign = ?19, extra_json = ?20, domain = ?21, budget = ?22"
    " WHERE lead_id = ?1";

static const char intake_sql_select[] =
    "SELECT api_source, received_at, name, company, phone, email, telegram,"
    " message, channel, source, region, industry, product, currency, inn,"
    " timezone, utm_source, utm_medium, utm_campaign, extra_json, domain,"
    " budget FROM leads WHERE lead_id = ?1";

void intake_outcome_clear(intake_outcome_t *outcome)
{
    if (outcome == NULL)
        return;
    free(outcome->reply);
    memset(outcome, 0, sizeof(*outcome));
}

/* {"lead_id": id, "status": "accepted", "duplicate_of": null | id} */
static char *intake_accepted_reply(const char *lead_id, bool duplicate)
{
    json_t *body = json_pack("{s:s, s:s, s:o}", "lead_id", lead_id, "status",
                             "accepted", "duplicate_of",
                             duplicate ? json_string(lead_id) : json_null());
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static char *intake_error_reply(const char *code, const char *message)
{
    json_t *body = json_pack("{s:s, s:s}", "error", code, "message",
                             message);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* Looks up an earlier reply to (source, key). Returns 1 and fills the
 * outcome when there is one, 0 when not, -1 on a database error. */
static int intake_idempotency_find(cv_store_t *store, const char *source,
                                   const char *key, const char *body_hash,
                                   intake_outcome_t *outcome)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT body_hash, status, reply FROM idempotency"
               " WHERE source = ?1 AND key = ?2");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, source);
    cv_store_bind_text(stmt, 2, key);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        cv_error("cannot read idempotency keys in '%s': %s",
                 cv_store_path(store), sqlite3_errmsg(cv_store_db(store)));
        sqlite3_reset(stmt);
        return -1;
    }
    const char *hash = (const char *)sqlite3_column_text(stmt, 0);
    bool same = hash != NULL && strcmp(hash, body_hash) == 0;
    if (same) {
        const char *reply = (const char *)sqlite3_column_text(stmt, 2);
        outcome->status = sqlite3_column_int(stmt, 1);
        outcome->reply = strdup(reply != NULL ? reply : "{}");
        outcome->replayed = true;
    } else {
        outcome->status = 422;
        outcome->reply = intake_error_reply(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different body");
    }
    sqlite3_reset(stmt);
    return outcome->reply != NULL ? 1 : -1;
}

/* The lead that already owns one of `lead`'s contacts, into id (or ""). */
static int intake_find_existing(cv_store_t *store, const intake_lead_t *lead,
                                char *id, size_t size)
{
    const char *kinds[] = {"phone", "email", "telegram", "inn"};
    const char *values[] = {lead->phone, lead->email, lead->telegram,
                            lead->inn};
    id[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        if (values[i] == NULL)
            continue;
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "SELECT lead_id FROM contact_keys"
                   " WHERE kind = ?1 AND value = ?2");
        if (stmt == NULL)
            return -1;
        cv_store_bind_text(stmt, 1, kinds[i]);
        cv_store_bind_text(stmt, 2, values[i]);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            cv_store_column_copy(stmt, 0, id, size);
            sqlite3_reset(stmt);
            return 0;
        }
        sqlite3_reset(stmt);
        if (rc != SQLITE_DONE)
            return cv_error("cannot read contact keys in '%s': %s",
                            cv_store_path(store),
                            sqlite3_errmsg(cv_store_db(store)));
    }
    return 0;
}

/* Points the lead's contacts at lead_id; keys another lead already owns
 * stay with it. */
static int intake_put_keys(cv_store_t *store, const intake_lead_t *lead)
{
    const char *kinds[] = {"phone", "email", "telegram", "inn"};
    const char *values[] = {lead->phone, lead->email, lead->telegram,
                            lead->inn};
    for (size_t i = 0; i < 4; i++) {
        if (values[i] == NULL)
            continue;
        sqlite3_stmt *stmt = cv_store_prepare(
            store, "INSERT OR IGNORE INTO contact_keys (kind, value, lead_id)"
                   " VALUES (?1, ?2, ?3)");
        if (stmt == NULL)
            return -1;
        cv_store_bind_text(stmt, 1, kinds[i]);
        cv_store_bind_text(stmt, 2, values[i]);
        cv_store_bind_text(stmt, 3, lead->lead_id);
        if (cv_store_step_done(stmt) != 0)
            return -1;
    }
    return 0;
}

static void intake_bind_lead(sqlite3_stmt *stmt, const intake_lead_t *lead,
                             int first_text)
{
    for (size_t i = 0; i < intake_lead_text_field_count; i++)
        cv_store_bind_text(stmt, first_text + (int)i,
                           intake_lead_text_get(lead, i));
    int budget = first_text + (int)intake_lead_text_field_count;
    if (lead->has_budget)
        sqlite3_bind_double(stmt, budget, lead->budget);
    else
        sqlite3_bind_null(stmt, budget);
}

static int intake_insert_lead(cv_store_t *store, const intake_lead_t *lead)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_insert);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead->lead_id);
    cv_store_bind_text(stmt, 2, lead->api_source);
    sqlite3_bind_int64(stmt, 3, lead->received_at);
    intake_bind_lead(stmt, lead, 4);
    return cv_store_step_done(stmt);
}

/* Reads the stored lead `lead_id` into `out` (cleared first). */
static int intake_load_lead(cv_store_t *store, const char *lead_id,
                            intake_lead_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_select);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return cv_error("cannot read lead '%s' from '%s': %s", lead_id,
                        cv_store_path(store),
                        rc == SQLITE_DONE ? "no such lead"
                                          : sqlite3_errmsg(cv_store_db(store)));
    }
    bool oom = false;
    out->lead_id = strdup(lead_id);
    const char *api_source = (const char *)sqlite3_column_text(stmt, 0);
    out->api_source = strdup(api_source != NULL ? api_source : "");
    oom = out->lead_id == NULL || out->api_source == NULL;
    out->received_at = sqlite3_column_int64(stmt, 1);
    for (size_t i = 0; i < intake_lead_text_field_count; i++) {
        const char *text = (const char *)sqlite3_column_text(stmt, 2 + (int)i);
        if (text == NULL)
            continue;
        *intake_lead_text(out, i) = strdup(text);
        oom = oom || *intake_lead_text(out, i) == NULL;
    }
    int budget = 2 + (int)intake_lead_text_field_count;
    if (sqlite3_column_type(stmt, budget) != SQLITE_NULL) {
        out->has_budget = true;
        out->budget = sqlite3_column_double(stmt, budget);
    }
    sqlite3_reset(stmt);
    if (oom) {
        intake_lead_clear(out);
        return cv_error("out of memory reading lead '%s'", lead_id);
    }
    return 0;
}

static int intake_update_lead(cv_store_t *store, const intake_lead_t *lead,
                              int64_t now)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_update);
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead->lead_id);
    sqlite3_bind_int64(stmt, 2, now);
    intake_bind_lead(stmt, lead, 3);
    return cv_store_step_done(stmt);
}

/* Records the submission as it arrived, whichever lead it went to. */
static int intake_insert_arrival(cv_store_t *store, const intake_lead_t *lead,
                                 bool merged)
{
    Conveyor__Lead proto = CONVEYOR__LEAD__INIT;
    intake_lead_to_proto(lead, &proto);
    json_t *json = cv_event_lead_to_json(&proto);
    char *text = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (text == NULL)
        return cv_error("out of memory recording an arrival of '%s'",
                        lead->lead_id);
    char arrival_id[CV_ID_SIZE];
    cv_id_new("arr", arrival_id, sizeof(arrival_id));
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO arrivals (arrival_id, lead_id, received_at,"
               " api_source, channel, merged, lead_json)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (stmt != NULL) {
        cv_store_bind_text(stmt, 1, arrival_id);
        cv_store_bind_text(stmt, 2, lead->lead_id);
        sqlite3_bind_int64(stmt, 3, lead->received_at);
        cv_store_bind_text(stmt, 4, lead->api_source);
        cv_store_bind_text(stmt, 5, lead->channel);
        sqlite3_bind_int(stmt, 6, merged ? 1 : 0);
        cv_store_bind_text(stmt, 7, text);
        rc = cv_store_step_done(stmt);
    }
    free(text);
    return rc;
}

static int intake_idempotency_put(cv_store_t *store, const char *source,
                                  const char *key, const char *body_hash,
                                  const intake_outcome_t *outcome)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO idempotency (source, key, body_hash, status,"
               " reply, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, source);
    cv_store_bind_text(stmt, 2, key);
    cv_store_bind_text(stmt, 3, body_hash);
    sqlite3_bind_int(stmt, 4, outcome->status);
    cv_store_bind_text(stmt, 5, outcome->reply);
    sqlite3_bind_int64(stmt, 6, cv_clock_now_ms());
    return cv_store_step_done(stmt);
}

static int intake_emit(cv_bus_t *bus, const intake_lead_t *lead,
                       const intake_lead_t *arrival, bool merged)
{
    Conveyor__Lead proto = CONVEYOR__LEAD__INIT;
    intake_lead_to_proto(lead, &proto);
    Conveyor__LeadReceived received = CONVEYOR__LEAD_RECEIVED__INIT;
    received.lead = &proto;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED;
    env.lead_received = &received;
    if (!merged)
        return cv_bus_emit(bus, &env, "scoring", "console", NULL);
    received.has_merged = true;
    received.merged = true;
    received.merged_channel = arrival->channel;
    received.merged_message = arrival->message;
    return cv_bus_emit(bus, &env, "console", NULL);
}

int intake_store_accept(cv_bus_t *bus, intake_lead_t *lead,
                        const char *idempotency_key, const char *body_hash,
                        intake_outcome_t *outcome)
{
    cv_store_t *store = cv_bus_store(bus);
    memset(outcome, 0, sizeof(*outcome));
    intake_lead_t merged_lead = {0};
    bool savepoint = false;
    if (idempotency_key != NULL) {
        int found = intake_idempotency_find(store, lead->api_source,
                                            idempotency_key, body_hash,
                                            outcome);
        if (found > 0)
            return 0;
        if (found < 0)
            goto fail;
    }
    if (cv_store_exec(store, "SAVEPOINT intake_lead") != 0)
        goto fail;
    savepoint = true;
    char existing[CV_ID_SIZE + 16];
    if (intake_find_existing(store, lead, existing, sizeof(existing)) != 0)
        goto fail;
    bool merged = existing[0] != '\0';
    free(lead->lead_id);
    lead->lead_id = NULL;
    if (merged) {
        lead->lead_id = strdup(existing);
        if (lead->lead_id == NULL ||
            intake_load_lead(store, existing, &merged_lead) != 0 ||
            intake_lead_merge(&merged_lead, lead) != 0 ||
            intake_update_lead(store, &merged_lead, lead->received_at) != 0)
            goto fail;
    } else {
        char id[CV_ID_SIZE];
        lead->lead_id = strdup(cv_id_new("lead", id, sizeof(id)));
        if (lead->lead_id == NULL || intake_insert_lead(store, lead) != 0)
            goto fail;
    }
    if (intake_put_keys(store, lead) != 0 ||
        intake_insert_arrival(store, lead, merged) != 0)
        goto fail;
    outcome->status = 202;
    outcome->reply = intake_accepted_reply(lead->lead_id, merged);
    outcome->created = !merged;
    outcome->merged = merged;
    if (outcome->reply == NULL)
        goto fail;
    if (idempotency_key != NULL &&
        intake_idempotency_put(store, lead->api_source, idempotency_key,
                               body_hash, outcome) != 0)
        goto fail;
    if (cv_store_exec(store, "RELEASE intake_lead") != 0)
        goto fail;
    savepoint = false;
    /* last, because what cv_bus_emit stages cannot be taken back alone */
    int rc = intake_emit(bus, merged ? &merged_lead : lead, lead, merged);
    intake_lead_clear(&merged_lead);
    return rc;
fail:
    if (savepoint)
        cv_store_exec(store,
                      "ROLLBACK TO intake_lead; RELEASE intake_lead");
    intake_lead_clear(&merged_lead);
    intake_outcome_clear(outcome);
    outcome->status = 503;
    outcome->reply = intake_error_reply(
        "store_unavailable", "the lead could not be stored; try again");
    return 0;
}

int intake_store_prune(cv_store_t *store, int64_t now_ms)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "DELETE FROM idempotency WHERE created_at < ?1");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, now_ms - INTAKE_IDEMPOTENCY_KEEP_MS);
    return cv_store_step_done(stmt);
}

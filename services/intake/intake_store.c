/* intake_store: leads, contact keys, arrivals and idempotency replies. */
#include "intake_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
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

/* v2: the same contact_keys, with the kind check spelled as comparisons:
 * SQLite codes `kind IN (...)` in a CHECK as a temporary table built on
 * every insert, which cost more than the insert itself. */
static const char intake_schema_v2[] =
    "CREATE TABLE contact_keys_v2 ("
    "  kind TEXT NOT NULL"
    "    CHECK (kind = 'phone' OR kind = 'email' OR kind = 'telegram'"
    "           OR kind = 'inn'),"
    "  value TEXT NOT NULL,"
    "  lead_id TEXT NOT NULL REFERENCES leads (lead_id),"
    "  PRIMARY KEY (kind, value)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO contact_keys_v2 (kind, value, lead_id)"
    "  SELECT kind, value, lead_id FROM contact_keys;"
    "DROP TABLE contact_keys;"
    "ALTER TABLE contact_keys_v2 RENAME TO contact_keys;"
    "CREATE INDEX contact_keys_by_lead ON contact_keys (lead_id);";

/* v3: what intake itself decides about a lead (spam, a returning client),
 * and the leads people decided (DecisionRecorded from the console): a new
 * contact of a decided lead's person starts a new lead, flagged as a
 * returning client, instead of merging into the closed one. */
static const char intake_schema_v3[] =
    "ALTER TABLE leads ADD COLUMN spam_reason TEXT;"
    "ALTER TABLE leads ADD COLUMN returning_of TEXT;"
    "ALTER TABLE leads ADD COLUMN previous_owner TEXT;"
    "ALTER TABLE leads ADD COLUMN previous_result TEXT;"
    "CREATE TABLE decided_leads ("
    "  lead_id TEXT PRIMARY KEY,"
    "  result TEXT NOT NULL,"          /* won | lost */
    "  owner_id TEXT,"
    "  decided_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;";

/* v4: no index by lead on contact_keys and arrivals. Nothing looks rows
 * up by lead (a repeat contact is found by (kind, value); arrivals are
 * only ever written), and leads are never deleted, so the only reader
 * SQLite itself would have (a foreign-key check on deleting a lead) never
 * runs. Each was one more B-tree written per lead and one more page per
 * commit: about a fifth of the pages a small batch writes. */
static const char intake_schema_v4[] =
    "DROP INDEX IF EXISTS contact_keys_by_lead;"
    "DROP INDEX IF EXISTS arrivals_by_lead;";

/* v5: contact_keys and arrivals without their foreign key to leads. With
 * foreign keys on, each of the three rows a lead adds looked its lead up
 * again and made SQLite keep a statement journal for the insert (~11k of
 * the ~166k instructions of SQL a lead cost). Intake writes a key or an
 * arrival only for the lead it has just inserted or found in the same
 * transaction, and never deletes a lead, so the check could not fail.
 * arrivals also becomes one B-tree keyed by its id (ids sort by creation,
 * so rows append at its right edge) instead of rows plus an index on the
 * id, and lead_json may be NULL: the arrival that made a new lead is that
 * lead's row (intake_insert_arrival). SQLite cannot drop a constraint:
 * the tables are copied. */
static const char intake_schema_v5[] =
    "CREATE TABLE contact_keys_v5 ("
    "  kind TEXT NOT NULL"
    "    CHECK (kind = 'phone' OR kind = 'email' OR kind = 'telegram'"
    "           OR kind = 'inn'),"
    "  value TEXT NOT NULL,"
    "  lead_id TEXT NOT NULL,"
    "  PRIMARY KEY (kind, value)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO contact_keys_v5 (kind, value, lead_id)"
    "  SELECT kind, value, lead_id FROM contact_keys;"
    "DROP TABLE contact_keys;"
    "ALTER TABLE contact_keys_v5 RENAME TO contact_keys;"
    "CREATE TABLE arrivals_v5 ("
    "  arrival_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  api_source TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  merged INTEGER NOT NULL,"
    "  lead_json TEXT"                  /* NULL: the lead's own row */
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO arrivals_v5 (arrival_id, lead_id, received_at, api_source,"
    "  channel, merged, lead_json)"
    "  SELECT arrival_id, lead_id, received_at, api_source, channel, merged,"
    "  lead_json FROM arrivals ORDER BY rowid;"
    "DROP TABLE arrivals;"
    "ALTER TABLE arrivals_v5 RENAME TO arrivals;";

/* v6: fewer and smaller rows per lead. A new lead writes no arrivals row
 * (intake_insert_arrival): only repeat contacts are kept there from now
 * on; rows written before stay. The usual 202 kept for an
 * Idempotency-Key is its lead id and whether it was a duplicate, with an
 * empty reply, instead of the whole body (intake_store_idempotency_put):
 * rows of about half the size; rows written before keep their body and
 * are answered with it. Once a v6 intake has taken keyed requests, an
 * older build must not run on its database: it would answer those rows
 * with an empty 202. */
static const char intake_schema_v6[] =
    "ALTER TABLE idempotency ADD COLUMN lead_id TEXT;"
    "ALTER TABLE idempotency ADD COLUMN duplicate INTEGER;";

const char *const intake_migrations[] = {intake_schema_v1, intake_schema_v2,
                                         intake_schema_v3, intake_schema_v4,
                                         intake_schema_v5, intake_schema_v6};
const size_t intake_migration_count =
    sizeof(intake_migrations) / sizeof(intake_migrations[0]);

/* The text columns in intake_lead_text_fields order, bound from ?4 on
 * insert. */
static const char intake_sql_insert[] =
    "INSERT INTO leads (lead_id, api_source, received_at, updated_at,"
    " name, company, phone, email, telegram, message, channel, source,"
    " region, industry, product, currency, inn, timezone, utm_source,"
    " utm_medium, utm_campaign, extra_json, domain, budget)"
    " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
    " ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)";

/* A repeat contact fills what the stored lead lacks (intake_lead_merge in
 * SQL) and reads the merged lead back in the same statement: api_source,
 * received_at, then the text columns from column 2, then budget. */
static const char intake_sql_merge[] =
    "UPDATE leads SET updated_at = ?2, merge_count = merge_count + 1,"
    " name = coalesce(name, ?3), company = coalesce(company, ?4),"
    " phone = coalesce(phone, ?5), email = coalesce(email, ?6),"
    " telegram = coalesce(telegram, ?7), message = coalesce(message, ?8),"
    " channel = coalesce(channel, ?9), source = coalesce(source, ?10),"
    " region = coalesce(region, ?11), industry = coalesce(industry, ?12),"
    " product = coalesce(product, ?13), currency = coalesce(currency, ?14),"
    " inn = coalesce(inn, ?15), timezone = coalesce(timezone, ?16),"
    " utm_source = coalesce(utm_source, ?17),"
    " utm_medium = coalesce(utm_medium, ?18),"
    " utm_campaign = coalesce(utm_campaign, ?19),"
    " extra_json = coalesce(extra_json, ?20),"
    " domain = coalesce(domain, ?21), budget = coalesce(budget, ?22)"
    " WHERE lead_id = ?1"
    " RETURNING api_source, received_at, name, company, phone, email,"
    " telegram, message, channel, source, region, industry, product,"
    " currency, inn, timezone, utm_source, utm_medium, utm_campaign,"
    " extra_json, domain, budget";

/* The leads owning any of the phone, email, telegram or inn, each with
 * its decision when people closed it (four indexed look-ups). */
static const char intake_sql_find[] =
    "SELECT k.lead_id, d.result, d.owner_id FROM ("
    "SELECT lead_id FROM contact_keys WHERE kind = 'phone' AND value = ?1"
    " UNION ALL "
    "SELECT lead_id FROM contact_keys WHERE kind = 'email' AND value = ?2"
    " UNION ALL "
    "SELECT lead_id FROM contact_keys WHERE kind = 'telegram' AND value = ?3"
    " UNION ALL "
    "SELECT lead_id FROM contact_keys WHERE kind = 'inn' AND value = ?4)"
    " AS k LEFT JOIN decided_leads AS d ON d.lead_id = k.lead_id";

/* Points a contact at a lead; a key another open lead already owns stays
 * with it, a key of a decided lead moves to the returning client's new
 * one. One row per statement: a multi-row INSERT costs more, as SQLite
 * then opens a statement journal. */
static const char intake_sql_key[] =
    "INSERT INTO contact_keys (kind, value, lead_id) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (kind, value) DO UPDATE SET lead_id = excluded.lead_id"
    " WHERE contact_keys.lead_id IN (SELECT lead_id FROM decided_leads)";

/* Keeps the reply unless (source, key) already has one: then nothing
 * changes and the earlier reply is looked up. The usual 202 is kept as
 * its lead and whether it was a duplicate, with an empty reply (v6). */
static const char intake_sql_idempotency_put[] =
    "INSERT INTO idempotency (source, key, body_hash, status, reply,"
    " created_at, lead_id, duplicate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
    " ?8) ON CONFLICT (source, key) DO NOTHING";

void intake_outcome_clear(intake_outcome_t *outcome)
{
    if (outcome == NULL)
        return;
    if (outcome->reply != outcome->accepted)
        free(outcome->reply);
    memset(outcome, 0, sizeof(*outcome));
}

void intake_submission_clear(intake_submission_t *sub)
{
    if (sub == NULL)
        return;
    intake_lead_clear(&sub->lead);
    free(sub->idempotency_key);
    memset(sub, 0, sizeof(*sub));
}

int intake_submission_prepare(intake_submission_t *sub)
{
    char id[CV_ID_SIZE];
    free(sub->lead.lead_id);
    sub->lead.lead_id = strdup(cv_id_new("lead", id, sizeof(id)));
    if (sub->lead.lead_id == NULL)
        return -1;
    return 0;
}

/* {"lead_id": id, "status": "accepted", "duplicate_of": null | id}, the
 * way json_dumps(JSON_COMPACT) writes it; ids need no escaping. */
static int intake_accepted_reply(intake_outcome_t *outcome,
                                 const char *lead_id, bool duplicate)
{
    int n = snprintf(outcome->accepted, sizeof(outcome->accepted),
                     "{\"lead_id\":\"%s\",\"status\":\"accepted\","
                     "\"duplicate_of\":%s%s%s}",
                     lead_id, duplicate ? "\"" : "",
                     duplicate ? lead_id : "null", duplicate ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof(outcome->accepted))
        return cv_error("lead id '%.60s' is too long for a reply", lead_id);
    outcome->reply = outcome->accepted;
    return 0;
}

char *intake_store_error_reply(const char *code, const char *message)
{
    json_t *body = json_pack("{s:s, s:s}", "error", code, "message",
                             message);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

int intake_store_savepoint(cv_store_t *store, const char *sql)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, sql);
    return stmt != NULL ? cv_store_step_done(stmt) : -1;
}

/* A 64-bit word of `p` (any alignment), little-endian as on x86. */
static uint64_t intake_word(const unsigned char *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n);
    return w;
}

/* Folds `size` bytes into the two lanes, a word at a time. */
static void intake_fingerprint_part(uint64_t lane[2], const void *data,
                                    size_t size)
{
    const unsigned char *p = data;
    lane[0] ^= intake_seen_fmix(size + 0x9e3779b97f4a7c15ull);
    lane[1] ^= intake_seen_fmix(size ^ 0x243f6a8885a308d3ull);
    while (size > 0) {
        size_t n = size < 8 ? size : 8;
        uint64_t w = intake_word(p, n);
        lane[0] ^= w * 0x87c37b91114253d5ull;
        lane[0] = ((lane[0] << 31) | (lane[0] >> 33)) * 0x4cf5ad432745937full;
        lane[1] += w ^ lane[0];
        lane[1] = ((lane[1] << 27) | (lane[1] >> 37)) * 0x52dce729ull +
                  0x38495ab5ull;
        p += n;
        size -= n;
    }
}

void intake_fingerprint(const void *a, size_t a_size, const void *b,
                        size_t b_size, char hex[CV_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    uint64_t lane[2] = {0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull};
    intake_fingerprint_part(lane, a, a_size);
    intake_fingerprint_part(lane, b, b_size);
    uint64_t h[2] = {intake_seen_fmix(lane[0] + lane[1]),
                     intake_seen_fmix(lane[1] ^ (lane[0] >> 7))};
    size_t at = strlen(INTAKE_FINGERPRINT_PREFIX);
    memcpy(hex, INTAKE_FINGERPRINT_PREFIX, at);
    for (int i = 0; i < 2; i++)
        for (int shift = 60; shift >= 0; shift -= 4)
            hex[at++] = digits[(h[i] >> shift) & 0xf];
    hex[at] = '\0';
}

/* Whether `stored`, a SHA-256 hex kept before fingerprints, is the hash of
 * what `sub` borrowed from its request. */
static bool intake_same_as_sha256(const char *stored,
                                  const intake_submission_t *sub)
{
    char sha[CV_SHA256_HEX];
    if (sub == NULL || sub->hashed_b == NULL ||
        strlen(stored) != CV_SHA256_HEX - 1)
        return false;
    cv_sha256_hex(sub->hashed_a, sub->hashed_a_size, sub->hashed_b,
                  sub->hashed_b_size, sha);
    return strcmp(sha, stored) == 0;
}

int intake_store_idempotency_lookup(cv_store_t *store, const char *source,
                                    const char *key, const char *body_hash,
                                    const intake_submission_t *sub,
                                    intake_outcome_t *outcome)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT body_hash, status, reply, lead_id, duplicate"
               " FROM idempotency WHERE source = ?1 AND key = ?2");
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
    bool same = hash != NULL && (strcmp(hash, body_hash) == 0 ||
                                 intake_same_as_sha256(hash, sub));
    memset(outcome, 0, sizeof(*outcome));
    if (same) {
        const char *reply = (const char *)sqlite3_column_text(stmt, 2);
        const char *lead_id = (const char *)sqlite3_column_text(stmt, 3);
        outcome->status = sqlite3_column_int(stmt, 1);
        outcome->replayed = true;
        if (reply != NULL && reply[0] == '\0' && lead_id != NULL) {
            /* the usual 202, made again as intake_store_stage made it (on
             * failure `reply` stays NULL, answered below) */
            intake_accepted_reply(outcome, lead_id,
                                  sqlite3_column_int(stmt, 4) != 0);
        } else {
            outcome->reply = strdup(reply != NULL ? reply : "{}");
        }
    } else {
        outcome->status = 422;
        outcome->reply = intake_store_error_reply(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different body");
    }
    sqlite3_reset(stmt);
    return outcome->reply != NULL ? 1 : -1;
}

/* The earlier reply to (source, key), which exists: a replay of it when
 * the body is the same, 422 when not. 0 with the outcome filled, or -1. */
static int intake_idempotency_replay(cv_store_t *store,
                                     const intake_submission_t *sub,
                                     intake_outcome_t *outcome)
{
    int found = intake_store_idempotency_lookup(
        store, sub->lead.api_source, sub->idempotency_key, sub->body_hash,
        sub, outcome);
    if (found == 0)
        cv_error("cannot read idempotency keys in '%s': the row went "
                 "missing", cv_store_path(store));
    return found == 1 ? 0 : -1;
}

int intake_store_idempotency_put(cv_store_t *store, const char *source,
                                 const char *key, const char *body_hash,
                                 const intake_outcome_t *outcome,
                                 const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_idempotency_put);
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, source);
    cv_store_bind_static(stmt, 2, key);
    cv_store_bind_static(stmt, 3, body_hash);
    sqlite3_bind_int(stmt, 4, outcome->status);
    sqlite3_bind_int64(stmt, 6, cv_clock_now_ms());
    if (lead_id != NULL) {
        /* ~110 bytes less per row: the body is made again on a replay */
        cv_store_bind_static(stmt, 5, "");
        cv_store_bind_static(stmt, 7, lead_id);
        sqlite3_bind_int(stmt, 8, outcome->merged ? 1 : 0);
    } else {
        cv_store_bind_static(stmt, 5, outcome->reply);
        sqlite3_bind_null(stmt, 7);
        sqlite3_bind_null(stmt, 8);
    }
    if (cv_store_step_done(stmt) != 0)
        return -1;
    return sqlite3_changes(cv_store_db(store)) > 0 ? 1 : 0;
}

/* What the contact keys say about a new submission. */
typedef struct {
    char open_id[CV_ID_SIZE + 16];     /* the oldest open lead of the
                                          person (lead ids sort by
                                          creation), "" when none */
    char decided_id[CV_ID_SIZE + 16];  /* the newest decided one, "" */
    char decided_result[16];           /* its result */
    char decided_owner[CV_ID_SIZE + 16]; /* its owner, "" when unknown */
} intake_match_t;

/* The kinds of contact key, and a lead's value of each (NULL: none). */
static const char *const intake_key_kinds[] = {"phone", "email", "telegram",
                                               "inn"};

static void intake_key_values(const intake_lead_t *lead, const char *values[4])
{
    values[0] = lead->phone;
    values[1] = lead->email;
    values[2] = lead->telegram;
    values[3] = lead->inn;
}

/* Binds the lead's contacts as parameters 1-4, in intake_key_kinds order. */
static void intake_bind_contacts(sqlite3_stmt *stmt, const intake_lead_t *lead)
{
    const char *values[4];
    intake_key_values(lead, values);
    for (int i = 0; i < 4; i++)
        cv_store_bind_static(stmt, i + 1, values[i]);
}

/* Whether `seen` knows that none of `lead`'s contacts was ever stored, so
 * that the look-up would find nothing (intake_seen.h). */
static bool intake_surely_new(intake_seen_t *seen, cv_store_t *store,
                              const intake_lead_t *lead)
{
    const char *values[4];
    if (!intake_seen_ready(seen, store))
        return false;
    intake_key_values(lead, values);
    for (size_t i = 0; i < 4; i++) {
        if (values[i] != NULL &&
            intake_seen_maybe(seen, intake_key_kinds[i], values[i]))
            return false;
    }
    return true;
}

/* Looks up the leads that own one of `lead`'s contacts. When a contact
 * names two open leads (a form's email and a call's number, say), the
 * first one the person made keeps the history. */
static int intake_find_existing(cv_store_t *store, intake_seen_t *seen,
                                const intake_lead_t *lead,
                                intake_match_t *match)
{
    memset(match, 0, sizeof(*match));
    if (intake_surely_new(seen, store, lead))
        return 0; /* the usual new person: no statement at all */
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_find);
    if (stmt == NULL)
        return -1;
    intake_bind_contacts(stmt, lead);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        if (id == NULL)
            continue;
        if (sqlite3_column_type(stmt, 1) == SQLITE_NULL) {
            if (match->open_id[0] == '\0' || strcmp(id, match->open_id) < 0)
                cv_store_column_copy(stmt, 0, match->open_id,
                                     sizeof(match->open_id));
        } else if (strcmp(id, match->decided_id) > 0) {
            cv_store_column_copy(stmt, 0, match->decided_id,
                                 sizeof(match->decided_id));
            cv_store_column_copy(stmt, 1, match->decided_result,
                                 sizeof(match->decided_result));
            cv_store_column_copy(stmt, 2, match->decided_owner,
                                 sizeof(match->decided_owner));
        }
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return cv_error("cannot read contact keys in '%s': %s",
                        cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    return 0;
}

static int intake_put_keys(cv_store_t *store, intake_seen_t *seen,
                           const intake_lead_t *lead)
{
    const char *values[4];
    intake_key_values(lead, values);
    for (size_t i = 0; i < 4; i++) {
        if (values[i] == NULL)
            continue;
        sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_key);
        if (stmt == NULL)
            return -1;
        cv_store_bind_static(stmt, 1, intake_key_kinds[i]);
        cv_store_bind_static(stmt, 2, values[i]);
        cv_store_bind_static(stmt, 3, lead->lead_id);
        if (cv_store_step_done(stmt) != 0)
            return -1;
        /* before the commit, so the next lead of this turn is looked up */
        intake_seen_add(seen, intake_key_kinds[i], values[i]);
    }
    return 0;
}

static void intake_bind_lead(sqlite3_stmt *stmt, const intake_lead_t *lead,
                             int first_text)
{
    for (size_t i = 0; i < intake_lead_text_field_count; i++)
        cv_store_bind_static(stmt, first_text + (int)i,
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
    cv_store_bind_static(stmt, 1, lead->lead_id);
    cv_store_bind_static(stmt, 2, lead->api_source);
    sqlite3_bind_int64(stmt, 3, lead->received_at);
    intake_bind_lead(stmt, lead, 4);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    if (lead->spam_reason == NULL && lead->returning_of == NULL)
        return 0;
    stmt = cv_store_prepare(
        store, "UPDATE leads SET spam_reason = ?2, returning_of = ?3,"
               " previous_owner = ?4, previous_result = ?5"
               " WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, lead->lead_id);
    cv_store_bind_static(stmt, 2, lead->spam_reason);
    cv_store_bind_static(stmt, 3, lead->returning_of);
    cv_store_bind_static(stmt, 4, lead->previous_owner);
    cv_store_bind_static(stmt, 5, lead->previous_result);
    return cv_store_step_done(stmt);
}

/* Merges `lead` into the stored lead lead->lead_id and reads the result
 * into `out` (cleared first). */
static int intake_merge_lead(cv_store_t *store, const intake_lead_t *lead,
                             intake_lead_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = cv_store_prepare(store, intake_sql_merge);
    if (stmt == NULL)
        return -1;
    const char *lead_id = lead->lead_id;
    cv_store_bind_static(stmt, 1, lead_id);
    sqlite3_bind_int64(stmt, 2, lead->received_at);
    intake_bind_lead(stmt, lead, 3);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return cv_error("cannot merge into lead '%s' in '%s': %s", lead_id,
                        cv_store_path(store),
                        rc == SQLITE_DONE ? "no such lead"
                                          : sqlite3_errmsg(cv_store_db(store)));
    }
    out->lead_id = strdup(lead_id);
    const char *api_source = (const char *)sqlite3_column_text(stmt, 0);
    out->api_source = strdup(api_source != NULL ? api_source : "");
    bool oom = out->lead_id == NULL || out->api_source == NULL;
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
    /* finish the statement: RETURNING rows come after the change */
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (oom) {
        intake_lead_clear(out);
        return cv_error("out of memory reading lead '%s'", lead_id);
    }
    if (rc != SQLITE_DONE) {
        intake_lead_clear(out);
        return cv_error("cannot merge into lead '%s' in '%s': %s", lead_id,
                        cv_store_path(store),
                        sqlite3_errmsg(cv_store_db(store)));
    }
    return 0;
}

/* Records a repeat contact as it arrived, as JSON, under the lead it
 * merged into (lead->lead_id). The arrival that made a new lead has no
 * row (since v6): it is that lead's own row (a later merge only fills
 * what it lacked, and that merge's arrival keeps its own JSON; the
 * call-back flag travels in LeadReceived), and its row here repeated the
 * lead's id, time, source and channel: one more B-tree and statement per
 * lead (~2.5 of the ~20 pages a commit wrote). */
static int intake_insert_arrival(cv_store_t *store,
                                 const intake_submission_t *sub)
{
    const intake_lead_t *lead = &sub->lead;
    char *json = intake_lead_to_json(lead);
    if (json == NULL)
        return cv_error("out of memory recording an arrival of '%s'",
                        lead->lead_id);
    int rc = -1;
    char arrival_id[CV_ID_SIZE]; /* made here: only repeats get a row */
    cv_id_new("arr", arrival_id, sizeof(arrival_id));
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO arrivals (arrival_id, lead_id, received_at,"
               " api_source, channel, merged, lead_json)"
               " VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)");
    if (stmt != NULL) {
        cv_store_bind_static(stmt, 1, arrival_id);
        cv_store_bind_static(stmt, 2, lead->lead_id);
        sqlite3_bind_int64(stmt, 3, lead->received_at);
        cv_store_bind_static(stmt, 4, lead->api_source);
        cv_store_bind_static(stmt, 5, lead->channel);
        cv_store_bind_static(stmt, 6, json);
        rc = cv_store_step_done(stmt);
    }
    free(json);
    return rc;
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
    /* the call-back is this arrival's, not the stored lead's */
    proto.has_call_back = arrival->call_back;
    proto.call_back = arrival->call_back;
    if (arrival->call_back) /* the owner must call back: a task */
        return cv_bus_emit(bus, &env, "console", "followup-scheduler", NULL);
    return cv_bus_emit(bus, &env, "console", NULL);
}

void intake_write_clear(intake_write_t *w)
{
    if (w == NULL)
        return;
    free(w->fresh_id);
    intake_lead_clear(&w->stored);
    memset(w, 0, sizeof(*w));
}

/* Copies text into *field (freeing what was there); -1 when out of
 * memory. */
static int intake_set_text(char **field, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int intake_store_match(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_write_t *w)
{
    intake_lead_t *lead = &sub->lead;
    memset(w, 0, sizeof(*w));
    /* spam is kept on a lead of its own and claims no contact */
    if (lead->spam_reason != NULL)
        return 0;
    intake_match_t match;
    if (intake_find_existing(store, seen, lead, &match) != 0)
        return -1;
    if (match.open_id[0] == '\0') {
        /* a person whose earlier lead was won or lost: a new lead that
         * routing can give to its previous owner */
        if (match.decided_id[0] != '\0' &&
            (intake_set_text(&lead->returning_of, match.decided_id) != 0 ||
             intake_set_text(&lead->previous_result,
                             match.decided_result) != 0 ||
             (match.decided_owner[0] != '\0' &&
              intake_set_text(&lead->previous_owner,
                              match.decided_owner) != 0)))
            return cv_error("out of memory flagging a returning client");
        return 0;
    }
    /* the fresh id made on the HTTP thread is not used; it is kept for
     * intake_store_unstage */
    char *id = strdup(match.open_id);
    if (id == NULL)
        return cv_error("out of memory merging into lead '%s'",
                        match.open_id);
    w->merged = true;
    w->fresh_id = lead->lead_id;
    lead->lead_id = id;
    return 0;
}

int intake_store_write(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_write_t *w)
{
    intake_lead_t *lead = &sub->lead;
    if (w->merged) {
        if (intake_merge_lead(store, lead, &w->stored) != 0)
            return -1;
    } else if (intake_insert_lead(store, lead) != 0) {
        return -1;
    }
    if ((lead->spam_reason == NULL &&
         intake_put_keys(store, seen, lead) != 0) ||
        (w->merged && intake_insert_arrival(store, sub) != 0))
        return -1;
    return 0;
}

int intake_store_emit(cv_bus_t *bus, const intake_submission_t *sub,
                      const intake_write_t *w)
{
    return intake_emit(bus, w->merged ? &w->stored : &sub->lead, &sub->lead,
                       w->merged);
}

int intake_store_stage(cv_store_t *store, intake_seen_t *seen,
                       intake_submission_t *sub, intake_outcome_t *outcome,
                       intake_write_t *w)
{
    intake_lead_t *lead = &sub->lead;
    memset(outcome, 0, sizeof(*outcome));
    if (intake_store_match(store, seen, sub, w) != 0)
        return -1;
    if (intake_accepted_reply(outcome, lead->lead_id, w->merged) != 0)
        return -1;
    outcome->status = 202;
    outcome->created = !w->merged;
    outcome->merged = w->merged;
    /* claim the Idempotency-Key first: a retry changes nothing else */
    if (sub->idempotency_key != NULL) {
        int put = intake_store_idempotency_put(store, lead->api_source,
                                               sub->idempotency_key,
                                               sub->body_hash, outcome,
                                               lead->lead_id);
        if (put < 0)
            return -1;
        if (put == 0) /* the earlier reply, neither created nor merged */
            return intake_idempotency_replay(store, sub, outcome);
    }
    return intake_store_write(store, seen, sub, w);
}

void intake_store_unstage(intake_submission_t *sub, intake_write_t *w,
                          intake_outcome_t *outcome)
{
    intake_lead_t *lead = &sub->lead;
    if (w->merged && w->fresh_id != NULL) {
        free(lead->lead_id);
        lead->lead_id = w->fresh_id;
        w->fresh_id = NULL;
    }
    /* set by intake_store_match alone, from what the database said */
    free(lead->returning_of);
    free(lead->previous_owner);
    free(lead->previous_result);
    lead->returning_of = NULL;
    lead->previous_owner = NULL;
    lead->previous_result = NULL;
    intake_write_clear(w);
    intake_outcome_clear(outcome);
}

int intake_store_accept(cv_bus_t *bus, intake_seen_t *seen,
                        intake_submission_t *sub, intake_outcome_t *outcome)
{
    cv_store_t *store = cv_bus_store(bus);
    intake_write_t w = {0};
    bool savepoint = false;
    if (intake_store_savepoint(store, "SAVEPOINT intake_lead") != 0)
        goto fail;
    savepoint = true;
    if (intake_store_stage(store, seen, sub, outcome, &w) != 0)
        goto fail;
    if (intake_store_savepoint(store, "RELEASE intake_lead") != 0)
        goto fail;
    savepoint = false;
    /* last, because what cv_bus_emit stages cannot be taken back alone */
    int rc = outcome->created || outcome->merged
                 ? intake_store_emit(bus, sub, &w)
                 : 0;
    intake_write_clear(&w);
    return rc;
fail:
    if (savepoint &&
        (intake_store_savepoint(store, "ROLLBACK TO intake_lead") != 0 ||
         intake_store_savepoint(store, "RELEASE intake_lead") != 0))
        cv_log_warn("cannot undo a failed lead in '%s'",
                    cv_store_path(store));
    intake_write_clear(&w);
    intake_outcome_clear(outcome);
    outcome->status = 503;
    outcome->reply = intake_store_error_reply(
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

int intake_store_decided(cv_store_t *store,
                         const Conveyor__DecisionRecorded *decision,
                         int64_t decided_at)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO decided_leads (lead_id, result, owner_id,"
               " decided_at) VALUES (?1, ?2, ?3, ?4)"
               " ON CONFLICT (lead_id) DO UPDATE SET result = excluded.result,"
               " owner_id = coalesce(excluded.owner_id, owner_id),"
               " decided_at = excluded.decided_at");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, decision->lead_id);
    cv_store_bind_static(stmt, 2, decision->result);
    cv_store_bind_text(stmt, 3, decision->owner_id);
    sqlite3_bind_int64(stmt, 4, decided_at);
    return cv_store_step_done(stmt);
}

/* console_store: the console's schema, the HTTP threads' connections and
 * the writes that keep a lead's card (the read model) up to date. */
#include "console.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

/* Times are conveyor-clock milliseconds. JSON columns hold arrays and
 * objects exactly as the API shows them. Staff tokens are stored as issued:
 * hashing them needs a crypto library the project does not link. */
static const char console_schema_v1[] =
    "CREATE TABLE staff ("
    "  staff_id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  tier INTEGER NOT NULL,"
    "  team TEXT,"
    "  channels TEXT NOT NULL DEFAULT '[]',"
    "  industries TEXT NOT NULL DEFAULT '[]',"
    "  regions TEXT NOT NULL DEFAULT '[]',"
    "  products TEXT NOT NULL DEFAULT '[]',"
    "  timezone TEXT NOT NULL,"
    "  working_hours TEXT NOT NULL DEFAULT '{}',"
    "  capacity_per_day INTEGER NOT NULL,"
    "  weight INTEGER NOT NULL,"
    "  active INTEGER NOT NULL,"
    "  notify TEXT NOT NULL DEFAULT '{}',"
    "  token TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE leads ("
    "  lead_id TEXT PRIMARY KEY,"
    "  name TEXT, company TEXT, phone TEXT, email TEXT, telegram TEXT,"
    "  message TEXT, channel TEXT, source TEXT, region TEXT, industry TEXT,"
    "  product TEXT, budget REAL, currency TEXT, inn TEXT, timezone TEXT,"
    "  domain TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
    "  extra TEXT,"
    "  received_at INTEGER,"
    "  stage TEXT NOT NULL DEFAULT 'new',"
    "  stage_at INTEGER NOT NULL,"
    "  score BLOB,"                     /* moved to lead_scores later */
    "  score_total INTEGER,"
    "  segment TEXT,"
    "  knocked_out INTEGER,"
    "  score_at INTEGER,"               /* event time of that score */
    "  owner_id TEXT,"
    "  owner_name TEXT,"
    "  owner_at INTEGER,"               /* event time of the assignment */
    "  account_id TEXT,"
    "  account_company TEXT,"
    "  account_owner_id TEXT,"
    "  account_opened_at INTEGER,"
    "  trace_id TEXT,"                  /* the lead's journey, from intake */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX leads_by_stage ON leads(stage, created_at);"
    "CREATE INDEX leads_by_owner ON leads(owner_id, owner_at);"
    "CREATE INDEX leads_by_segment ON leads(segment, created_at);"
    "CREATE INDEX leads_by_created ON leads(created_at);"
    "CREATE TABLE lead_channels ("
    "  lead_id TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  first_at INTEGER NOT NULL,"
    "  PRIMARY KEY (lead_id, channel)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE lead_messages ("
    "  lead_id TEXT NOT NULL,"
    "  fact TEXT NOT NULL,"             /* one message per business fact */
    "  at INTEGER NOT NULL,"
    "  channel TEXT,"
    "  text TEXT NOT NULL,"
    "  PRIMARY KEY (lead_id, fact)"
    ") STRICT;"
    "CREATE TABLE timeline ("
    "  id INTEGER PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  fact TEXT NOT NULL,"             /* dedupe key of the entry */
    "  UNIQUE (lead_id, fact)"
    ") STRICT;"
    "CREATE INDEX timeline_by_lead ON timeline(lead_id, at, id);"
    "CREATE TABLE tasks ("
    "  task_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  staff_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"             /* '' until TaskCreated is seen */
    "  title TEXT,"
    "  due_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'open',"    /* open | done */
    "  overdue INTEGER NOT NULL DEFAULT 0,"
    "  escalation_level INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  completed_at INTEGER,"
    "  completed_by TEXT"
    ") STRICT;"
    "CREATE INDEX tasks_by_staff ON tasks(staff_id, status, due_at);"
    "CREATE INDEX tasks_by_lead ON tasks(lead_id, status);"
    "CREATE TABLE notifications ("
    "  notification_id TEXT PRIMARY KEY,"
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  channel TEXT,"
    "  attempts INTEGER,"
    "  http_status INTEGER,"
    "  delivered_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX notifications_by_staff ON "
    "  notifications(staff_id, delivered_at);"
    "CREATE TABLE proposals ("
    "  proposal_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  segment TEXT,"
    "  kind TEXT,"
    "  title TEXT,"
    "  html TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX proposals_by_lead ON proposals(lead_id, created_at);"
    "CREATE TABLE activities ("
    "  activity_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  duration INTEGER,"
    "  outcome TEXT,"
    "  note TEXT,"
    "  actor TEXT NOT NULL,"
    "  at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX activities_by_lead ON activities(lead_id, at);"
    "CREATE TABLE decisions ("
    "  decision_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  result TEXT NOT NULL,"
    "  reason TEXT,"
    "  until TEXT,"
    "  actor TEXT NOT NULL,"
    "  at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX decisions_by_lead ON decisions(lead_id, at);";

/* The timeline is read one lead at a time through its UNIQUE (lead_id,
 * fact) index and sorted there (a lead has tens of entries); a second
 * index on it only cost every event one more b-tree insert. */
static const char console_schema_v2[] = "DROP INDEX timeline_by_lead;";

/* The people's side of scoring: each lead's scorecard (the latest value
 * of every parameter set by hand, as a packed conveyor.Scorecard), and
 * every change to it with who, when and old -> new per parameter. */
static const char console_schema_v3[] =
    "CREATE TABLE scorecards ("
    "  lead_id TEXT PRIMARY KEY,"
    "  revision INTEGER NOT NULL,"
    "  card BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE scorecard_changes ("
    "  scorecard_id TEXT PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  old_total INTEGER NOT NULL,"
    "  new_total INTEGER NOT NULL,"
    "  old_segment TEXT NOT NULL,"
    "  new_segment TEXT NOT NULL,"
    "  knockout TEXT,"                  /* set | lifted, when it changed */
    "  knockout_reason TEXT,"
    "  model_version TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX scorecard_changes_by_lead ON "
    "  scorecard_changes(lead_id, revision);"
    "CREATE TABLE scorecard_values ("
    "  scorecard_id TEXT NOT NULL,"
    "  param TEXT NOT NULL,"
    "  old_value INTEGER NOT NULL,"
    "  new_value INTEGER NOT NULL,"
    "  old_source TEXT,"
    "  PRIMARY KEY (scorecard_id, param)"
    ") STRICT, WITHOUT ROWID;";

/* Cheaper cards on the hot path (every lead brings five events):
 *   - the packed score (~1.3 KB) moves to a table of its own, so a leads
 *     row stays ~300 bytes: the stage and owner changes rewrite a small
 *     row, rows no longer grow fivefold after their insert (page splits),
 *     and a score that arrives again unchanged (LeadAssigned carries the
 *     one LeadScored stored) writes nothing;
 *   - leads_by_stage, leads_by_segment and notifications_by_staff served
 *     no query (the searches filter with "?1 IS NULL OR ..." and walk
 *     leads_by_created or scan notifications), yet every stage, score and
 *     delivery moved entries in them;
 *   - leads_by_owner keeps owned leads only: its queries all ask for one
 *     owner, and a new lead no longer enters it under NULL to leave again
 *     when it is assigned. */
static const char console_schema_hot_path[] =
    "CREATE TABLE lead_scores ("
    "  lead_id TEXT PRIMARY KEY,"
    "  score BLOB NOT NULL"             /* packed conveyor.Score */
    ") STRICT;"
    "INSERT INTO lead_scores (lead_id, score) "
    "  SELECT lead_id, score FROM leads WHERE score IS NOT NULL;"
    "ALTER TABLE leads DROP COLUMN score;"
    "DROP INDEX leads_by_stage;"
    "DROP INDEX leads_by_segment;"
    "DROP INDEX notifications_by_staff;"
    "DROP INDEX leads_by_owner;"
    "CREATE INDEX leads_by_owner ON leads(owner_id, owner_at) "
    "  WHERE owner_id IS NOT NULL;";

/* Fewer and smaller b-tree entries per lead (issue 2):
 *   - notifications is only ever looked up by its id (the dedupe on
 *     insert) or scanned whole (the list sorts by delivered_at), so it is
 *     kept by that id alone: a rowid table with a TEXT PRIMARY KEY cost
 *     every delivery two b-tree inserts (the table and its autoindex).
 *     Ids from the notifier sort by time, so new rows land on the last
 *     page;
 *   - tasks_by_staff served only the staff counts of open tasks and of
 *     open overdue ones: an index of the open tasks alone leads both
 *     counts to those tasks (each still read from the table, as before),
 *     and its entries are a third smaller, so each staff member's last
 *     page fills and splits less often (every new task lands on its
 *     owner's). */
static const char console_schema_lean[] =
    "CREATE TABLE notifications_by_id ("
    "  notification_id TEXT PRIMARY KEY,"
    "  lead_id TEXT,"
    "  staff_id TEXT,"
    "  channel TEXT,"
    "  attempts INTEGER,"
    "  http_status INTEGER,"
    "  delivered_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO notifications_by_id SELECT notification_id, lead_id, "
    "  staff_id, channel, attempts, http_status, delivered_at "
    "  FROM notifications WHERE notification_id IS NOT NULL;"
    "DROP TABLE notifications;"
    "ALTER TABLE notifications_by_id RENAME TO notifications;"
    "DROP INDEX tasks_by_staff;"
    "CREATE INDEX tasks_open_by_staff ON tasks(staff_id, overdue) "
    "  WHERE status = 'open' AND kind <> '';";

const char *const console_migrations[] = {console_schema_v1,
                                          console_schema_v2,
                                          console_schema_v3,
                                          console_schema_notifications,
                                          console_schema_routing,
                                          console_schema_hot_path,
                                          console_schema_lean};
const size_t console_migration_count =
    sizeof(console_migrations) / sizeof(console_migrations[0]);

/* ------------------------------------------------------------------ */
/* The connection pool of the HTTP threads                             */

typedef struct console_pool_entry {
    cv_store_t *store;                  /* an idle connection (owned) */
    struct console_pool_entry *next;    /* next idle one */
} console_pool_entry_t;

struct console_pool {
    pthread_mutex_t lock;               /* guards idle and open_count */
    console_pool_entry_t *idle;         /* connections nobody uses now */
    int open_count;                     /* connections opened, for logs */
    char *path;                         /* database file (owned) */
};

console_pool_t *console_pool_new(const char *path)
{
    console_pool_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        goto fail;
    self->path = strdup(path);
    if (self->path == NULL)
        goto fail;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self->path);
        self->path = NULL;
        goto fail;
    }
    return self;
fail:
    cv_error("cannot create the connection pool for '%s': out of memory",
             path);
    if (self != NULL)
        free(self->path);
    free(self);
    return NULL;
}

void console_pool_destroy(console_pool_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    console_pool_t *self = *self_p;
    while (self->idle != NULL) {
        console_pool_entry_t *entry = self->idle;
        self->idle = entry->next;
        cv_store_destroy(&entry->store);
        free(entry);
    }
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self);
    *self_p = NULL;
}

cv_store_t *console_pool_acquire(console_pool_t *self)
{
    cv_store_t *store = NULL;
    pthread_mutex_lock(&self->lock);
    if (self->idle != NULL) {
        console_pool_entry_t *entry = self->idle;
        self->idle = entry->next;
        store = entry->store;
        free(entry);
    }
    pthread_mutex_unlock(&self->lock);
    if (store != NULL)
        return store;
    /* the schema is in place already: main migrated it at start-up */
    store = cv_store_open(self->path, console_migrations,
                          console_migration_count);
    if (store == NULL)
        return NULL;
    pthread_mutex_lock(&self->lock);
    self->open_count++;
    int count = self->open_count;
    pthread_mutex_unlock(&self->lock);
    cv_log_debug("opened HTTP connection %d to '%s'", count, self->path);
    return store;
}

void console_pool_release(console_pool_t *self, cv_store_t *store)
{
    if (store == NULL)
        return;
    if (cv_store_in_transaction(store))
        cv_store_rollback(store);
    console_pool_entry_t *entry = malloc(sizeof(*entry));
    if (entry == NULL) {
        /* cannot keep it: close it, the next request opens another */
        cv_store_destroy(&store);
        return;
    }
    entry->store = store;
    pthread_mutex_lock(&self->lock);
    entry->next = self->idle;
    self->idle = entry;
    pthread_mutex_unlock(&self->lock);
}

/* ------------------------------------------------------------------ */
/* Stages                                                              */

static const struct {
    const char *name;   /* stage name */
    int rank;           /* how far along the belt */
} console_stages[] = {
    {"new", 0},       {"scored", 1},   {"assigned", 2},
    {"contacted", 3}, {"qualified", 4}, {"proposal", 5},
    {"negotiation", 6}, {"lost", 7},   {"rejected", 7},
    {"won", 8},
};

int console_stage_rank(const char *stage)
{
    if (stage == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(console_stages) / sizeof(console_stages[0]);
         i++)
        if (strcmp(console_stages[i].name, stage) == 0)
            return console_stages[i].rank;
    return -1;
}

bool console_stage_closed(const char *stage)
{
    return console_stage_rank(stage) >= console_stage_rank("lost");
}

/* ------------------------------------------------------------------ */
/* The card                                                            */

void console_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL)
        sqlite3_bind_null(stmt, index);
    else
        sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* Binds text or SQL NULL for an empty string, so "" never hides a value;
 * without a copy, as console_bind_text. */
static void console_bind_opt(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL || text[0] == '\0')
        sqlite3_bind_null(stmt, index);
    else
        sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* console_lead_ensure's work in the database. 0 or -1. */
static int console_lead_ensure_row(cv_store_t *store, const char *lead_id,
                                   int64_t at, const char *trace_id)
{
    /* most events land on a card that exists and has its trace: a read
     * by the primary key is all they need */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT trace_id IS NULL FROM leads WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    bool untraced = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) != 0;
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cv_error("cannot read lead '%s': %s", lead_id,
                        sqlite3_errmsg(cv_store_db(store)));
    bool traced = trace_id != NULL && trace_id[0] != '\0';
    if (rc == SQLITE_ROW) {
        if (!untraced || !traced)
            return 0;
        stmt = cv_store_prepare(
            store, "UPDATE leads SET trace_id = ?2 WHERE lead_id = ?1");
        if (stmt == NULL)
            return -1;
        console_bind_text(stmt, 1, lead_id);
        console_bind_text(stmt, 2, trace_id);
        return cv_store_step_done(stmt);
    }
    stmt = cv_store_prepare(
        store, "INSERT INTO leads (lead_id, stage, stage_at, created_at, "
               "updated_at, trace_id) VALUES (?1, 'new', ?2, ?2, ?2, ?3)");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead_id);
    sqlite3_bind_int64(stmt, 2, at);
    console_bind_opt(stmt, 3, trace_id);
    return cv_store_step_done(stmt);
}

int console_lead_ensure(cv_store_t *store, console_known_t *known,
                        const char *lead_id, int64_t at,
                        const char *trace_id)
{
    /* a lead that has a traced card needs nothing, and the bus thread
     * knows most of them without the read (console_known.c says why that
     * is safe) */
    if (console_known_has(known, lead_id))
        return 0;
    if (console_lead_ensure_row(store, lead_id, at, trace_id) != 0)
        return -1;
    /* with a trace the card has one now (kept, or just written) */
    console_known_learn(known, lead_id, trace_id);
    return 0;
}

int console_lead_add_channel(cv_store_t *store, const char *lead_id,
                             const char *channel, int64_t at)
{
    if (channel == NULL || channel[0] == '\0')
        return 0;
    /* keep the earliest time the lead came by this channel */
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO lead_channels (lead_id, channel, first_at) "
               "VALUES (?1, ?2, ?3) ON CONFLICT (lead_id, channel) DO "
               "UPDATE SET first_at = excluded.first_at "
               "WHERE excluded.first_at < first_at");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead_id);
    console_bind_text(stmt, 2, channel);
    sqlite3_bind_int64(stmt, 3, at);
    return cv_store_step_done(stmt);
}

int console_lead_upsert(cv_store_t *store, const Conveyor__Lead *lead,
                        int64_t at, bool primary, const char *trace_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "INSERT INTO leads (lead_id, name, company, phone, email, telegram, "
        "  message, channel, source, region, industry, product, budget, "
        "  currency, inn, timezone, domain, utm_source, utm_medium, "
        "  utm_campaign, extra, received_at, stage, stage_at, created_at, "
        "  updated_at, trace_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "  ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, 'new', ?23, "
        "  coalesce(?22, ?23), ?23, ?25) "
        "ON CONFLICT (lead_id) DO UPDATE SET "
        "  name = coalesce(excluded.name, name),"
        "  company = coalesce(excluded.company, company),"
        "  phone = coalesce(excluded.phone, phone),"
        "  email = coalesce(excluded.email, email),"
        "  telegram = coalesce(excluded.telegram, telegram),"
        "  message = coalesce(message, excluded.message),"
        "  channel = CASE WHEN ?24 THEN coalesce(excluded.channel, channel) "
        "    ELSE coalesce(channel, excluded.channel) END,"
        "  source = CASE WHEN ?24 THEN coalesce(excluded.source, source) "
        "    ELSE coalesce(source, excluded.source) END,"
        "  region = coalesce(excluded.region, region),"
        "  industry = coalesce(excluded.industry, industry),"
        "  product = coalesce(excluded.product, product),"
        "  budget = coalesce(excluded.budget, budget),"
        "  currency = coalesce(excluded.currency, currency),"
        "  inn = coalesce(excluded.inn, inn),"
        "  timezone = coalesce(excluded.timezone, timezone),"
        "  domain = coalesce(excluded.domain, domain),"
        "  utm_source = coalesce(excluded.utm_source, utm_source),"
        "  utm_medium = coalesce(excluded.utm_medium, utm_medium),"
        "  utm_campaign = coalesce(excluded.utm_campaign, utm_campaign),"
        "  extra = coalesce(excluded.extra, extra),"
        "  received_at = CASE WHEN ?24 THEN "
        "    coalesce(excluded.received_at, received_at) "
        "    ELSE coalesce(received_at, excluded.received_at) END,"
        "  created_at = min(created_at, excluded.created_at),"
        "  updated_at = max(updated_at, excluded.updated_at),"
        "  trace_id = coalesce(trace_id, excluded.trace_id)");
    if (stmt == NULL)
        return -1;
    const char *texts[] = {
        lead->lead_id,  lead->name,     lead->company,    lead->phone,
        lead->email,    lead->telegram, lead->message,    lead->channel,
        lead->source,   lead->region,   lead->industry,   lead->product,
    };
    for (int i = 0; i < (int)(sizeof(texts) / sizeof(texts[0])); i++)
        console_bind_opt(stmt, i + 1, texts[i]);
    if (lead->has_budget)
        sqlite3_bind_double(stmt, 13, lead->budget);
    console_bind_opt(stmt, 14, lead->currency);
    console_bind_opt(stmt, 15, lead->inn);
    console_bind_opt(stmt, 16, lead->timezone);
    console_bind_opt(stmt, 17, lead->domain);
    console_bind_opt(stmt, 18, lead->utm_source);
    console_bind_opt(stmt, 19, lead->utm_medium);
    console_bind_opt(stmt, 20, lead->utm_campaign);
    console_bind_opt(stmt, 21, lead->extra_json);
    if (lead->has_received_at && lead->received_at > 0)
        sqlite3_bind_int64(stmt, 22, lead->received_at);
    sqlite3_bind_int64(stmt, 23, at);
    sqlite3_bind_int(stmt, 24, primary ? 1 : 0);
    console_bind_opt(stmt, 25, trace_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    int64_t first_at = lead->has_received_at && lead->received_at > 0
                           ? lead->received_at
                           : at;
    return console_lead_add_channel(store, lead->lead_id, lead->channel,
                                    first_at);
}

/* True when the card's text (NULL for SQL NULL) would change to `text`
 * under "a field the event carries replaces the card's". */
static bool console_text_replaces(const unsigned char *stored,
                                  const char *text)
{
    if (text == NULL || text[0] == '\0')
        return false;
    return stored == NULL || strcmp((const char *)stored, text) != 0;
}

/* True when the card's text would change under "the card's value wins,
 * the event only fills a gap". */
static bool console_text_fills(const unsigned char *stored, const char *text)
{
    return stored == NULL && text != NULL && text[0] != '\0';
}

/* Reads the card into `card`; *stale set when applying `lead` as a
 * non-primary copy (console_lead_upsert with primary false) would change
 * any column other than updated_at and trace_id; *channel_known set when
 * the card's channel list has the lead's channel (or it has none) from
 * `first_at` or earlier, so console_lead_add_channel would change
 * nothing. 0, 1 when there is no card, -1 on error. */
static int console_card_read(cv_store_t *store, const Conveyor__Lead *lead,
                             int64_t at, int64_t first_at,
                             console_card_t *card, bool *stale,
                             bool *channel_known)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "SELECT name, company, phone, email, telegram, region, industry, "
        "  product, currency, inn, timezone, domain, utm_source, "
        "  utm_medium, utm_campaign, extra, message, channel, source, "
        "  budget, received_at, created_at, stage, owner_id IS NOT NULL, "
        "  score_at, owner_at, (SELECT first_at <= ?3 FROM lead_channels "
        "  WHERE lead_id = ?1 AND channel = ?2) FROM leads "
        "WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead->lead_id);
    console_bind_opt(stmt, 2, lead->channel);
    sqlite3_bind_int64(stmt, 3, first_at);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE)
            return 1;
        return cv_error("cannot read lead '%s': %s", lead->lead_id,
                        sqlite3_errmsg(cv_store_db(store)));
    }
    /* the same columns, in the same order, as the SELECT above */
    const char *replaced[] = {
        lead->name,       lead->company,    lead->phone,
        lead->email,      lead->telegram,   lead->region,
        lead->industry,   lead->product,    lead->currency,
        lead->inn,        lead->timezone,   lead->domain,
        lead->utm_source, lead->utm_medium, lead->utm_campaign,
        lead->extra_json,
    };
    const char *filled[] = {lead->message, lead->channel, lead->source};
    const int nreplaced = (int)(sizeof(replaced) / sizeof(replaced[0]));
    bool changes = false;
    for (int i = 0; !changes && i < nreplaced; i++)
        changes = console_text_replaces(sqlite3_column_text(stmt, i),
                                        replaced[i]);
    for (int i = 0; !changes && i < 3; i++)
        changes = console_text_fills(
            sqlite3_column_text(stmt, nreplaced + i), filled[i]);
    bool has_received = lead->has_received_at && lead->received_at > 0;
    if (!changes && lead->has_budget)
        changes = sqlite3_column_type(stmt, 19) == SQLITE_NULL ||
                  sqlite3_column_double(stmt, 19) != lead->budget;
    if (!changes && has_received)
        changes = sqlite3_column_type(stmt, 20) == SQLITE_NULL;
    if (!changes)
        changes = (has_received ? lead->received_at : at) <
                  sqlite3_column_int64(stmt, 21);
    *stale = changes;
    cv_store_column_copy(stmt, 22, card->stage, sizeof(card->stage));
    card->has_owner = sqlite3_column_int(stmt, 23) != 0;
    card->has_score_at = sqlite3_column_type(stmt, 24) != SQLITE_NULL;
    card->score_at = sqlite3_column_int64(stmt, 24);
    card->has_owner_at = sqlite3_column_type(stmt, 25) != SQLITE_NULL;
    card->owner_at = sqlite3_column_int64(stmt, 25);
    *channel_known = lead->channel == NULL || lead->channel[0] == '\0' ||
                     sqlite3_column_int(stmt, 26) != 0;
    sqlite3_reset(stmt);
    return 0;
}

int console_lead_merge(cv_store_t *store, const Conveyor__Lead *lead,
                       int64_t at, const char *trace_id,
                       console_card_t *card)
{
    memset(card, 0, sizeof(*card));
    bool stale = true;
    bool channel_known = false;
    int64_t first_at = lead->has_received_at && lead->received_at > 0
                           ? lead->received_at
                           : at;
    int rc = console_card_read(store, lead, at, first_at, card, &stale,
                               &channel_known);
    if (rc < 0)
        return -1;
    if (rc == 0 && !stale) {
        /* the card has every field the copy carries: only the channel
         * list may still learn the channel or an earlier first time */
        if (channel_known)
            return 0;
        return console_lead_add_channel(store, lead->lead_id, lead->channel,
                                        first_at);
    }
    if (console_lead_upsert(store, lead, at, false, trace_id) != 0)
        return -1;
    rc = console_card_read(store, lead, at, first_at, card, &stale,
                           &channel_known);
    if (rc == 0)
        return 0;
    if (rc > 0)
        cv_error("cannot read lead '%s': gone after its upsert",
                 lead->lead_id);
    return -1;
}

/* console_card_update's statements: the score (1), owner (2) and stage (4)
 * columns are set only by the variants whose bit is in the index. Every
 * variant numbers its parameters the same way: ?1 lead, ?4-?6 score,
 * ?7 event time, ?8-?9 owner, ?10 stage, ?11 trace, ?12 score time. The
 * packed score itself goes to lead_scores (console_score_store). */
#define CONSOLE_CARD_SET "UPDATE leads SET "
#define CONSOLE_CARD_SCORE                                                  \
    "score_total = ?4, segment = ?5, knocked_out = ?6, score_at = ?12, "
#define CONSOLE_CARD_OWNER "owner_id = ?8, owner_name = ?9, owner_at = ?7, "
#define CONSOLE_CARD_STAGE "stage = ?10, stage_at = ?7, "
#define CONSOLE_CARD_END                                                    \
    "updated_at = max(updated_at, ?7, ?12), "                               \
    "trace_id = coalesce(trace_id, ?11) WHERE lead_id = ?1"

static const char *const console_card_sql[8] = {
    CONSOLE_CARD_SET CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_SCORE CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_OWNER CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_SCORE CONSOLE_CARD_OWNER CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_STAGE CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_SCORE CONSOLE_CARD_STAGE CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_OWNER CONSOLE_CARD_STAGE CONSOLE_CARD_END,
    CONSOLE_CARD_SET CONSOLE_CARD_SCORE CONSOLE_CARD_OWNER CONSOLE_CARD_STAGE
        CONSOLE_CARD_END,
};

/* Stores the packed score of the card of `lead_id`; a score equal to the
 * one stored (LeadAssigned repeats the score LeadScored brought) leaves
 * the row, and so its page, untouched. 0 or -1. */
static int console_score_store(cv_store_t *store, const char *lead_id,
                               const Conveyor__Score *score)
{
    uint8_t local[2048]; /* a score with reasons packs to ~1.3 KB */
    uint8_t *packed = local;
    size_t size = conveyor__score__get_packed_size(score);
    if (size > sizeof(local)) {
        packed = malloc(size);
        if (packed == NULL)
            return cv_error("cannot store the score of '%s': out of memory",
                            lead_id);
    }
    conveyor__score__pack(score, packed);
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO lead_scores (lead_id, score) VALUES (?1, ?2) "
               "ON CONFLICT (lead_id) DO UPDATE SET score = excluded.score "
               "WHERE score IS NOT excluded.score");
    if (stmt == NULL)
        goto out;
    console_bind_text(stmt, 1, lead_id);
    sqlite3_bind_blob(stmt, 2, packed, (int)size, SQLITE_STATIC);
    rc = cv_store_step_done(stmt);
out:
    if (packed != local)
        free(packed);
    return rc;
}

int console_card_update(cv_store_t *store, const char *lead_id, int64_t at,
                        const char *trace_id, const console_card_change_t *c)
{
    /* one write of the row for everything an event changes, naming only
     * the columns that change so SQLite leaves the other indexes alone */
    int variant = (c->score != NULL ? 1 : 0) | (c->owner_id != NULL ? 2 : 0) |
                  (c->stage != NULL ? 4 : 0);
    sqlite3_stmt *stmt = cv_store_prepare(store, console_card_sql[variant]);
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead_id);
    if (c->score != NULL) {
        sqlite3_bind_int(stmt, 4, c->score->total);
        console_bind_text(stmt, 5, c->score->segment);
        sqlite3_bind_int(stmt, 6,
                         c->score->has_knocked_out && c->score->knocked_out);
    }
    sqlite3_bind_int64(stmt, 7, at);
    sqlite3_bind_int64(stmt, 12, c->score != NULL && c->score_at > 0
                                     ? c->score_at
                                     : at);
    if (c->owner_id != NULL) {
        console_bind_text(stmt, 8, c->owner_id);
        console_bind_text(stmt, 9, c->owner_name);
    }
    if (c->stage != NULL)
        console_bind_text(stmt, 10, c->stage);
    console_bind_opt(stmt, 11, trace_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    /* the card exists (the caller merged the lead into it first), so the
     * score never lands without its card */
    if (c->score != NULL)
        return console_score_store(store, lead_id, c->score);
    return 0;
}

int console_lead_stage(cv_store_t *store, const char *lead_id, char *buf,
                       size_t size)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT stage FROM leads WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    int result = 1;
    if (rc == SQLITE_ROW) {
        cv_store_column_copy(stmt, 0, buf, size);
        result = 0;
    } else if (rc != SQLITE_DONE) {
        cv_error("cannot read the stage of '%s': %s", lead_id,
                 sqlite3_errmsg(cv_store_db(store)));
        result = -1;
    }
    sqlite3_reset(stmt);
    return result;
}

int console_stage_set(cv_store_t *store, const char *lead_id,
                      const char *stage, int64_t at)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE leads SET stage = ?2, stage_at = ?3, "
               "updated_at = max(updated_at, ?3) WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    cv_store_bind_text(stmt, 2, stage);
    sqlite3_bind_int64(stmt, 3, at);
    return cv_store_step_done(stmt);
}

int console_stage_advance(cv_store_t *store, const char *lead_id,
                          const char *stage, int64_t at)
{
    char current[32];
    int rc = console_lead_stage(store, lead_id, current, sizeof(current));
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (console_stage_closed(current) && strcmp(stage, "won") != 0)
        return 0;
    if (console_stage_rank(stage) <= console_stage_rank(current))
        return 0;
    return console_stage_set(store, lead_id, stage, at);
}

int console_timeline_add(cv_store_t *store, const char *lead_id, int64_t at,
                         const char *actor, const char *event,
                         const char *fact, const char *fmt, ...)
{
    char detail[4096]; /* routing traces run up to 4 KiB */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO timeline (lead_id, at, actor, event, detail, "
               "fact) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
               "ON CONFLICT (lead_id, fact) DO NOTHING");
    if (stmt == NULL)
        return -1;
    console_bind_text(stmt, 1, lead_id);
    sqlite3_bind_int64(stmt, 2, at);
    console_bind_text(stmt, 3, actor != NULL && actor[0] ? actor : "?");
    console_bind_text(stmt, 4, event);
    console_bind_text(stmt, 5, detail);
    console_bind_text(stmt, 6, fact);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    return sqlite3_changes(cv_store_db(store)) > 0 ? 1 : 0;
}

int console_lead_get_trace(cv_store_t *store, const char *lead_id, char *buf,
                           size_t size)
{
    buf[0] = '\0';
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT trace_id FROM leads WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        cv_store_column_copy(stmt, 0, buf, size);
    sqlite3_reset(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cv_error("cannot read the trace of '%s': %s", lead_id,
                        sqlite3_errmsg(cv_store_db(store)));
    return 0;
}

int console_task_mark_done(cv_store_t *store, const char *task_id,
                           const char *actor, int64_t at)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "UPDATE tasks SET status = 'done', completed_at = ?2, "
               "completed_by = ?3 WHERE task_id = ?1 AND status <> 'done'");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, task_id);
    sqlite3_bind_int64(stmt, 2, at);
    cv_store_bind_text(stmt, 3, actor);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    return sqlite3_changes(cv_store_db(store)) > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Snapshots for the events the console emits                          */

int console_snapshot_load(cv_store_t *store, const char *lead_id,
                          console_snapshot_t *snap)
{
    memset(snap, 0, sizeof(*snap));
    conveyor__lead__init(&snap->lead);
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        "SELECT lead_id, name, company, phone, email, telegram, message, "
        "  channel, source, region, industry, product, currency, inn, "
        "  timezone, domain, utm_source, utm_medium, utm_campaign, extra, "
        "  budget, received_at, "
        "  (SELECT score FROM lead_scores WHERE lead_id = ?1), stage, "
        "  owner_id, trace_id FROM leads WHERE lead_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, lead_id);
    int found = cv_store_step_row(stmt);
    if (found != 0)
        return found;
    bool failed = false;
    Conveyor__Lead *l = &snap->lead;
    char **texts[] = {
        &l->lead_id,    &l->name,       &l->company,    &l->phone,
        &l->email,      &l->telegram,   &l->message,    &l->channel,
        &l->source,     &l->region,     &l->industry,   &l->product,
        &l->currency,   &l->inn,        &l->timezone,   &l->domain,
        &l->utm_source, &l->utm_medium, &l->utm_campaign, &l->extra_json,
    };
    for (int i = 0; i < (int)(sizeof(texts) / sizeof(texts[0])); i++)
        *texts[i] = cv_store_column_dup(stmt, i, &failed);
    if (sqlite3_column_type(stmt, 20) != SQLITE_NULL) {
        l->has_budget = true;
        l->budget = sqlite3_column_double(stmt, 20);
    }
    if (sqlite3_column_type(stmt, 21) != SQLITE_NULL) {
        l->has_received_at = true;
        l->received_at = sqlite3_column_int64(stmt, 21);
    }
    int score_size = sqlite3_column_bytes(stmt, 22);
    const void *score = sqlite3_column_blob(stmt, 22);
    if (score != NULL && score_size > 0) {
        snap->score = conveyor__score__unpack(NULL, (size_t)score_size,
                                              score);
        if (snap->score == NULL)
            cv_log_warn("cannot unpack the stored score of '%s'", lead_id);
    }
    cv_store_column_copy(stmt, 23, snap->stage, sizeof(snap->stage));
    cv_store_column_copy(stmt, 24, snap->owner_id, sizeof(snap->owner_id));
    cv_store_column_copy(stmt, 25, snap->trace_id, sizeof(snap->trace_id));
    sqlite3_reset(stmt);
    if (failed) {
        console_snapshot_clear(snap);
        return cv_error("cannot copy lead '%s': out of memory", lead_id);
    }
    return 0;
}

void console_snapshot_clear(console_snapshot_t *snap)
{
    if (snap == NULL)
        return;
    Conveyor__Lead *l = &snap->lead;
    char *texts[] = {
        l->lead_id,    l->name,       l->company,    l->phone,
        l->email,      l->telegram,   l->message,    l->channel,
        l->source,     l->region,     l->industry,   l->product,
        l->currency,   l->inn,        l->timezone,   l->domain,
        l->utm_source, l->utm_medium, l->utm_campaign, l->extra_json,
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        free(texts[i]);
    if (snap->score != NULL)
        conveyor__score__free_unpacked(snap->score, NULL);
    memset(snap, 0, sizeof(*snap));
    conveyor__lead__init(&snap->lead);
}

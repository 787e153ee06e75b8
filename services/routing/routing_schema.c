/* routing_schema: the tables of var/routing.db. */
#include "routing.h"

const char *const routing_migrations[] = {
    /* 1: the directory copy, the rotation state, assignments, the queue of
     * leads nobody could take, and knocked-out leads kept for the
     * rejection path */
    "CREATE TABLE staff ("
    "  staff_id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  role TEXT NOT NULL DEFAULT '',"
    "  tier INTEGER NOT NULL DEFAULT 0,"
    "  team TEXT,"
    "  channels_json TEXT NOT NULL DEFAULT '[]',"
    "  industries_json TEXT NOT NULL DEFAULT '[]',"
    "  regions_json TEXT NOT NULL DEFAULT '[]',"
    "  products_json TEXT NOT NULL DEFAULT '[]',"
    "  timezone TEXT,"
    "  working_hours_json TEXT,"
    "  capacity_per_day INTEGER NOT NULL DEFAULT 0,"
    "  weight INTEGER NOT NULL DEFAULT 1,"
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  notify_webhook_url TEXT,"
    "  notify_telegram_chat_id TEXT,"
    "  notify_email TEXT,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE rr_state ("
    "  pool TEXT NOT NULL,"
    "  staff_id TEXT NOT NULL,"
    "  current INTEGER NOT NULL,"
    "  PRIMARY KEY (pool, staff_id)"
    ") STRICT;"
    "CREATE TABLE assignments ("
    "  lead_id TEXT PRIMARY KEY,"
    "  staff_id TEXT NOT NULL,"
    "  tier INTEGER NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  rule_trace TEXT NOT NULL,"
    "  segment TEXT,"
    "  total INTEGER,"
    "  assigned_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX assignments_staff_time"
    "  ON assignments (staff_id, assigned_at);"
    "CREATE TABLE pending ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  lead_id TEXT NOT NULL UNIQUE,"
    "  tier INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  lead_scored BLOB NOT NULL,"
    "  trace_id TEXT,"
    "  received_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE rejected ("
    "  lead_id TEXT PRIMARY KEY,"
    "  reason TEXT NOT NULL,"
    "  segment TEXT,"
    "  total INTEGER,"
    "  lead_scored BLOB NOT NULL,"
    "  trace_id TEXT,"
    "  rejected_at INTEGER NOT NULL"
    ") STRICT;",
    /* 2: reviewers who joined a lead (the head of sales on segment A) and
     * what every segment change did */
    "CREATE TABLE reviews ("
    "  lead_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL," /* vip_review */
    "  staff_id TEXT NOT NULL,"
    "  rule_trace TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (lead_id, kind)"
    ") STRICT;"
    "CREATE TABLE segment_changes ("
    "  id INTEGER PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  old_segment TEXT,"
    "  new_segment TEXT NOT NULL,"
    "  action TEXT NOT NULL," /* review | reassign | owner_rejects |
                                 rejected | none ... */
    "  staff_id TEXT,"
    "  rule_trace TEXT,"
    "  at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX segment_changes_by_lead ON segment_changes (lead_id, id);",
    /* 3: the rule chain: each person's leads per local day (capacity), the
     * newest LeadScored of every lead (explain, re-assignment), offers
     * (first_come, and the head's manual task) with their deadline, the
     * rule that placed each assignment and whether the lead was closed */
    "CREATE TABLE rr_day_load ("
    "  staff_id TEXT NOT NULL,"
    "  day TEXT NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (staff_id, day)"
    ") STRICT;"
    "CREATE TABLE leads ("
    "  lead_id TEXT PRIMARY KEY,"
    "  lead_scored BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE offers ("
    "  lead_id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL," /* first_come | manual */
    "  rule TEXT NOT NULL,"
    "  rule_index INTEGER NOT NULL,"
    "  staff TEXT NOT NULL," /* "a,b,c": who may claim, or the head */
    "  expires_at INTEGER,"  /* first_come: the claim deadline */
    "  state TEXT NOT NULL," /* open | claimed | assigned | expired */
    "  trace TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX offers_due ON offers (state, expires_at);"
    "ALTER TABLE assignments ADD COLUMN rule TEXT;"
    "ALTER TABLE assignments ADD COLUMN closed_at INTEGER;",
    /* 4: the Slack/Mattermost-style webhook among a person's targets */
    "ALTER TABLE staff ADD COLUMN notify_slack_webhook_url TEXT;",
    /* 5: speed. The directory's version, moved on with every write to
     * staff, tells the in-memory copies of the table when to read it
     * again (routing_staff.c). A round-robin pool's state becomes one row
     * ("current staff_id" lines, cv_routing_rr.h) read and written once
     * per lead instead of a row per member. */
    "CREATE TABLE staff_version ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version INTEGER NOT NULL"
    ") STRICT;"
    "INSERT INTO staff_version (id, version) VALUES (1, 1);"
    "CREATE TABLE rr_pools ("
    "  pool TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL"
    ") STRICT;"
    "INSERT INTO rr_pools (pool, state)"
    "  SELECT pool, group_concat(current || ' ' || staff_id, char(10))"
    "  FROM rr_state WHERE instr(staff_id, char(10)) = 0 GROUP BY pool;"
    "DROP TABLE rr_state;",
    /* 6: speed. assignments is written for every lead placed: keyed by
     * the lead itself (WITHOUT ROWID) an insert writes one b-tree and the
     * staff index instead of also a separate index of its text key. */
    "CREATE TABLE assignments_by_lead ("
    "  lead_id TEXT PRIMARY KEY,"
    "  staff_id TEXT NOT NULL,"
    "  tier INTEGER NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  rule_trace TEXT NOT NULL,"
    "  segment TEXT,"
    "  total INTEGER,"
    "  assigned_at INTEGER NOT NULL,"
    "  rule TEXT,"
    "  closed_at INTEGER"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO assignments_by_lead (lead_id, staff_id, tier, strategy,"
    "  rule_trace, segment, total, assigned_at, rule, closed_at)"
    "  SELECT lead_id, staff_id, tier, strategy, rule_trace, segment, total,"
    "  assigned_at, rule, closed_at FROM assignments;"
    "DROP TABLE assignments;"
    "ALTER TABLE assignments_by_lead RENAME TO assignments;"
    "CREATE INDEX assignments_staff_time"
    "  ON assignments (staff_id, assigned_at);",
    /* 7: speed. An index keyed by staff first takes every new assignment
     * in the middle of its person's range: one leaf page per person
     * dirtied (and written to the WAL) in every commit, whatever the
     * batch. Its one reader is the hand-back of a person set inactive
     * (rare), which needs their OPEN leads in assignment order: keyed by
     * time, over open leads only, new entries land on the last page, and
     * the hand-back reads the open leads in order with staff_id from the
     * index itself. */
    "DROP INDEX assignments_staff_time;"
    "CREATE INDEX assignments_open"
    "  ON assignments (assigned_at, staff_id) WHERE closed_at IS NULL;",
    /* 8: every lead waiting in pending has its row in leads (those queued
     * before leads existed did not), so a lead new to leads is known to
     * wait nowhere and to have no offer: the usual new lead is placed
     * without looking either up (routing_lead_insert). */
    "INSERT OR IGNORE INTO leads (lead_id, lead_scored, updated_at)"
    "  SELECT lead_id, lead_scored, received_at FROM pending;",
    /* 9: every assigned lead has its row in leads too, so a lead new to
     * leads is known to have no owner either. Those assigned before
     * leads existed get an empty row, which reads as "not kept" as the
     * missing row did (routing_lead_get). */
    "INSERT OR IGNORE INTO leads (lead_id, lead_scored, updated_at)"
    "  SELECT lead_id, x'', assigned_at FROM assignments;",
    /* 10: a waiting lead's LeadScored is its row in leads, no longer a
     * second copy in pending that every retry wrote again: whatever
     * queues a lead (routing_place) has its newest score kept in leads
     * first. Both were written from the same bytes; should a copy differ
     * (or be missing), pending's is the one its retry placed, and wins. */
    "INSERT OR IGNORE INTO leads (lead_id, lead_scored, updated_at)"
    "  SELECT lead_id, lead_scored, received_at FROM pending;"
    "UPDATE leads SET lead_scored = p.lead_scored,"
    "  updated_at = p.received_at FROM pending AS p"
    "  WHERE p.lead_id = leads.lead_id"
    "  AND p.lead_scored IS NOT leads.lead_scored;"
    "ALTER TABLE pending DROP COLUMN lead_scored;",
};

const size_t routing_migration_count =
    sizeof(routing_migrations) / sizeof(routing_migrations[0]);

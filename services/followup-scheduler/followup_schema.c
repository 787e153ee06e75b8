/* followup-scheduler's tables. Append migrations; never edit one that
 * has shipped. */
#include "followup.h"

const char *const followup_migrations[] = {
    /* 1: tasks and their SLA timers */
    "CREATE TABLE followup_task ("
    "  task_id TEXT PRIMARY KEY," /* <lead_id>-first-contact */
    "  lead_id TEXT NOT NULL,"
    "  staff_id TEXT NOT NULL," /* the owner */
    "  kind TEXT NOT NULL,"     /* first_contact */
    "  title TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL," /* ms, conveyor clock */
    "  status TEXT NOT NULL DEFAULT 'open'"
    "    CHECK (status IN ('open', 'done')),"
    "  created_at INTEGER NOT NULL,"
    "  completed_at INTEGER,"
    "  completed_by TEXT,"
    "  lead_json TEXT NOT NULL," /* the lead as assigned, for the
                                    escalation's notification */
    "  notify_webhook_url TEXT," /* the owner's notify target */
    "  notify_telegram_chat_id TEXT,"
    "  notify_email TEXT"
    ") STRICT;"
    "CREATE INDEX followup_task_by_lead ON followup_task (lead_id);"
    "CREATE TABLE followup_timer ("
    "  timer_id TEXT PRIMARY KEY," /* tmr-<task_id> */
    "  task_id TEXT NOT NULL REFERENCES followup_task (task_id),"
    "  lead_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL," /* sla_first_contact */
    "  due_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state IN ('pending', 'fired', 'cancelled')),"
    "  fired_at INTEGER,"
    "  cancelled_at INTEGER,"
    "  cancel_reason TEXT"
    ") STRICT;"
    /* the source asks for the earliest pending timer every turn */
    "CREATE INDEX followup_timer_pending_due ON followup_timer (due_at)"
    "  WHERE state = 'pending';"
    "CREATE INDEX followup_timer_by_task ON followup_timer (task_id);"
    "CREATE INDEX followup_timer_by_lead ON followup_timer (lead_id);",
    /* 2: the escalation ladder, the staff directory, the leads' owners,
     * the stage a task moves the lead to */
    "ALTER TABLE followup_timer ADD COLUMN level INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE followup_timer ADD COLUMN staff_id TEXT;" /* whose SLA */
    "ALTER TABLE followup_task ADD COLUMN stage TEXT;"
    "ALTER TABLE followup_task ADD COLUMN closed_reason TEXT;"
    "CREATE INDEX followup_task_open_by_lead ON followup_task (lead_id, kind)"
    "  WHERE status = 'open';"
    "CREATE TABLE followup_staff ("
    "  staff_id TEXT PRIMARY KEY,"
    "  name TEXT,"
    "  role TEXT,"               /* head = told at escalation level 3 */
    "  team TEXT,"               /* the calendar's team overrides */
    "  timezone TEXT,"           /* IANA; NULL = default_timezone */
    "  working_hours TEXT,"      /* JSON; NULL = always available */
    "  active INTEGER NOT NULL DEFAULT 1,"
    "  notify_webhook_url TEXT,"
    "  notify_telegram_chat_id TEXT,"
    "  notify_email TEXT,"
    "  notify_slack_webhook_url TEXT,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE followup_lead ("
    "  lead_id TEXT PRIMARY KEY,"
    "  owner_id TEXT,"           /* the current owner, NULL before one */
    "  channel TEXT,"
    "  lead_json TEXT NOT NULL," /* the latest snapshot */
    "  decided TEXT,"            /* won | lost | NULL */
    "  proposal_at INTEGER,"     /* the last proposal presented or sent */
    "  updated_at INTEGER NOT NULL"
    ") STRICT;",
    /* 3: two indexes every new task and timer paid for on the hot path
     * and no query needs: a lead has a handful of tasks and timers, so
     * followup_task_by_lead and followup_timer_by_lead find them (a
     * task's timers: its lead's, of that task). */
    "DROP INDEX IF EXISTS followup_task_open_by_lead;"
    "DROP INDEX IF EXISTS followup_timer_by_task;",
    /* 4: followup_timer's state check as comparisons. SQLite codes
     * "state IN (three values)" with a temporary b-tree built on every
     * INSERT and on every UPDATE of state (fire, cancel): about a third
     * of a timer insert's cost. A CHECK cannot be altered, so the table
     * is copied (same columns, same order, same rows; nothing refers to
     * it, so dropping the old one is safe with foreign keys on). */
    "CREATE TABLE followup_timer_new ("
    "  timer_id TEXT PRIMARY KEY,"
    "  task_id TEXT NOT NULL REFERENCES followup_task (task_id),"
    "  lead_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state = 'pending' OR state = 'fired'"
    "           OR state = 'cancelled'),"
    "  fired_at INTEGER,"
    "  cancelled_at INTEGER,"
    "  cancel_reason TEXT,"
    "  level INTEGER NOT NULL DEFAULT 1,"
    "  staff_id TEXT"
    ") STRICT;"
    "INSERT INTO followup_timer_new (timer_id, task_id, lead_id, kind, due_at,"
    "  state, fired_at, cancelled_at, cancel_reason, level, staff_id)"
    "  SELECT timer_id, task_id, lead_id, kind, due_at, state, fired_at,"
    "  cancelled_at, cancel_reason, level, staff_id FROM followup_timer"
    "  ORDER BY rowid;"
    "DROP TABLE followup_timer;"
    "ALTER TABLE followup_timer_new RENAME TO followup_timer;"
    "CREATE INDEX followup_timer_pending_due ON followup_timer (due_at)"
    "  WHERE state = 'pending';"
    "CREATE INDEX followup_timer_by_lead ON followup_timer (lead_id);",
    /* 5: one index instead of two on followup_timer. Every new timer paid
     * for the timer_id key and for followup_timer_by_lead, each a b-tree
     * whose pages every commit writes (about a tenth of the pages a turn
     * of new leads writes). A timer's id is made from its task's or its
     * lead's id (tmr-<task_id>..., tmr-<lead_id>-...), so a timer id
     * always comes with the same lead: (lead_id, timer_id) is as unique
     * as timer_id was, finds a lead's timers by its prefix, and a fired
     * timer by both (the source reads both). The table is copied as in
     * migration 4 (same columns, order and rows). */
    "CREATE TABLE followup_timer_new ("
    "  timer_id TEXT NOT NULL,"
    "  task_id TEXT NOT NULL REFERENCES followup_task (task_id),"
    "  lead_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state = 'pending' OR state = 'fired'"
    "           OR state = 'cancelled'),"
    "  fired_at INTEGER,"
    "  cancelled_at INTEGER,"
    "  cancel_reason TEXT,"
    "  level INTEGER NOT NULL DEFAULT 1,"
    "  staff_id TEXT,"
    "  UNIQUE (lead_id, timer_id)"
    ") STRICT;"
    "INSERT INTO followup_timer_new (timer_id, task_id, lead_id, kind, due_at,"
    "  state, fired_at, cancelled_at, cancel_reason, level, staff_id)"
    "  SELECT timer_id, task_id, lead_id, kind, due_at, state, fired_at,"
    "  cancelled_at, cancel_reason, level, staff_id FROM followup_timer"
    "  ORDER BY rowid;"
    "DROP TABLE followup_timer;"
    "ALTER TABLE followup_timer_new RENAME TO followup_timer;"
    "CREATE INDEX followup_timer_pending_due ON followup_timer (due_at)"
    "  WHERE state = 'pending';",
    /* 6: one b-tree per row instead of two or three. A rowid table with
     * a TEXT key is the table plus the key's index, and every new lead
     * wrote a row to each of: followup_timer (+ its (lead_id, timer_id)
     * index) and followup_task (+ its task_id index +
     * followup_task_by_lead), each dirtying its own last pages in every
     * commit. Keyed WITHOUT ROWID by the same ids (which cv_id_new makes
     * in time order, so new rows still go to the last page), each is one
     * b-tree. (followup_lead keeps its rowid: a lead with a long message
     * would overflow a WITHOUT ROWID row.)
     *   - followup_task_by_lead goes too: every task id is "<lead_id>-..."
     *     (followup_task_open refuses others), so a lead's tasks are the
     *     key range [lead_id || '-', lead_id || '.'), filtered by lead_id.
     *   - followup_timer's reference to followup_task goes: with foreign
     *     keys on, it cost a probe of followup_task per new timer, and
     *     every timer is written right after its task, in the same
     *     transaction (followup_task_open, followup_escalate).
     * The tables are copied as in migration 4 (same columns and rows);
     * followup_timer first, since its reference would stop followup_task
     * from being dropped. */
    "CREATE TABLE followup_timer_new ("
    "  timer_id TEXT NOT NULL,"
    "  task_id TEXT NOT NULL,"
    "  lead_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (state = 'pending' OR state = 'fired'"
    "           OR state = 'cancelled'),"
    "  fired_at INTEGER,"
    "  cancelled_at INTEGER,"
    "  cancel_reason TEXT,"
    "  level INTEGER NOT NULL DEFAULT 1,"
    "  staff_id TEXT,"
    "  PRIMARY KEY (lead_id, timer_id)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO followup_timer_new (timer_id, task_id, lead_id, kind, due_at,"
    "  state, fired_at, cancelled_at, cancel_reason, level, staff_id)"
    "  SELECT timer_id, task_id, lead_id, kind, due_at, state, fired_at,"
    "  cancelled_at, cancel_reason, level, staff_id FROM followup_timer"
    "  ORDER BY lead_id, timer_id;"
    "DROP TABLE followup_timer;"
    "ALTER TABLE followup_timer_new RENAME TO followup_timer;"
    "CREATE INDEX followup_timer_pending_due ON followup_timer (due_at)"
    "  WHERE state = 'pending';"
    "CREATE TABLE followup_task_new ("
    "  task_id TEXT PRIMARY KEY," /* <lead_id>-<kind's slug>[-...] */
    "  lead_id TEXT NOT NULL,"
    "  staff_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  title TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'open'"
    "    CHECK (status = 'open' OR status = 'done'),"
    "  created_at INTEGER NOT NULL,"
    "  completed_at INTEGER,"
    "  completed_by TEXT,"
    "  lead_json TEXT NOT NULL,"
    "  notify_webhook_url TEXT,"
    "  notify_telegram_chat_id TEXT,"
    "  notify_email TEXT,"
    "  stage TEXT,"
    "  closed_reason TEXT"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO followup_task_new (task_id, lead_id, staff_id, kind, title,"
    "  due_at, status, created_at, completed_at, completed_by, lead_json,"
    "  notify_webhook_url, notify_telegram_chat_id, notify_email, stage,"
    "  closed_reason)"
    "  SELECT task_id, lead_id, staff_id, kind, title, due_at, status,"
    "  created_at, completed_at, completed_by, lead_json, notify_webhook_url,"
    "  notify_telegram_chat_id, notify_email, stage, closed_reason"
    "  FROM followup_task ORDER BY task_id;"
    "DROP TABLE followup_task;"
    "ALTER TABLE followup_task_new RENAME TO followup_task;",
};

const size_t followup_migration_count =
    sizeof(followup_migrations) / sizeof(followup_migrations[0]);

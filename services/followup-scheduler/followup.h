/* followup-scheduler: tasks and durable timers, so no lead is forgotten.
 *
 * Every rule of PRODUCT.md section 5 is a task for a person (told through
 * the notifier) and, where something must happen later, a timer row:
 *   - LeadAssigned opens the first contact (a call-back for a missed call,
 *     a cold call for an imported cold lead, a segment task when routing
 *     says so), due in the owner's working minutes and zone, or with a
 *     person of the on-duty pool when the owner is off shift; a new owner
 *     (re-assignment) closes the old owner's task and gets a fresh SLA;
 *   - LeadOffered opens a claim task for every person of a first-come pool;
 *   - a missed call merged into a lead (LeadReceived) is a call-back task;
 *   - activities close the tasks they satisfy; a proposal presented or sent
 *     opens a ping task and a no-decision timer (then stage negotiation and
 *     a push task); a lost decision's reason opens its next step;
 *   - an SLA task still open at its due time climbs the escalation ladder:
 *     remind the owner, ask routing to re-assign, tell the head of sales.
 * Timers fire inside the bus's transaction with their effects, so each
 * fires exactly once, even across crashes.
 *
 * Files: main.c (process), followup_schema.c (tables), followup_events.c
 * (which event does what), followup_staff.c (the staff directory and
 * people's time), followup_task.c (opening and closing tasks),
 * followup_rules.c (the rules), followup_timer.c (timer rows and the
 * firing source), followup_escalate.c (the ladder), followup_notify.c
 * (texts and NotificationRequested). */
#ifndef FOLLOWUP_H
#define FOLLOWUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_bus.h"
#include "cv_calendar.h"
#include "cv_config.h"
#include "cv_jsonw.h"
#include "cv_metrics.h"
#include "cv_tz.h"
#include "cv_workhours.h"

#define FOLLOWUP_SERVICE "followup-scheduler"

/* Task kinds (the console shows them; tests look for them). */
#define FOLLOWUP_KIND_FIRST_CONTACT     "first_contact"
#define FOLLOWUP_KIND_CALL_BACK         "call_back"
#define FOLLOWUP_KIND_COLD_CALL         "cold_call"
#define FOLLOWUP_KIND_CLAIM_OFFER       "claim_offer"
#define FOLLOWUP_KIND_VIP_REVIEW        "vip_review"     /* segment A: HoS */
#define FOLLOWUP_KIND_SEND_REJECTION    "send_rejection" /* segment C */
#define FOLLOWUP_KIND_WORKING_GROUP     "working_group"  /* segment A:
                                   analyst, marketer, team lead */
#define FOLLOWUP_KIND_MANUAL_ASSIGN     "manual_assign"  /* the head
                                   assigns the lead by hand */
#define FOLLOWUP_KIND_PING              "ping"
#define FOLLOWUP_KIND_PUSH              "push"
#define FOLLOWUP_KIND_CHECK_BACK        "check_back"
#define FOLLOWUP_KIND_FIND_DM           "find_decision_maker"
#define FOLLOWUP_KIND_BOOK_PRESENTATION "book_presentation"
#define FOLLOWUP_KIND_DEBRIEF           "debrief"
#define FOLLOWUP_KIND_RETURN            "return"
#define FOLLOWUP_KIND_DIRECT_QUESTIONS  "direct_questions"

/* Timer kinds: an SLA timer is "sla_<task kind>"; the no-decision timer
 * of a proposal has no task of its own. */
#define FOLLOWUP_TIMER_FIRST_CONTACT "sla_first_contact"
#define FOLLOWUP_TIMER_SLA_PREFIX    "sla_"
#define FOLLOWUP_TIMER_NO_DECISION   "no_decision"

/* The first-contact SLA when the configuration gives none. */
#define FOLLOWUP_FIRST_CONTACT_MINUTES 30

/* Longest the bus waits while timers are pending, so a jump of
 * CONVEYOR_CLOCK_FILE is noticed within this many milliseconds. */
#define FOLLOWUP_CLOCK_POLL_MS 250

/* Timers fired per turn at most; more wait for the next turn, at once. */
#define FOLLOWUP_FIRE_BATCH 256

/* Room for identifiers built from lead, task and staff ids. */
#define FOLLOWUP_ID_SIZE 320

/* The rules' delays (config keys escalation_delays and followup_delays;
 * README "Follow-up"). */
typedef struct {
    int first_contact_minutes;  /* working minutes to the first contact */
    int call_back_minutes;      /* minutes to call a missed call back */
    int remind_minutes;         /* due -> level 1, remind the owner */
    int reassign_minutes;       /* level 1 -> level 2, re-assign */
    int head_minutes;           /* level 2 -> level 3, head of sales */
    int segment_task_hours;     /* vip_review / send_rejection, working */
    int ping_business_days;     /* proposal -> ping task due */
    int no_decision_days;       /* proposal -> stage negotiation */
    int push_business_days;     /* negotiation -> push task due */
    int next_step_business_days; /* a lost reason's task due */
    int debrief_minutes;        /* chose_competitor: debrief, working */
    int return_before_days;     /* chose_competitor: return before until */
    int return_default_days;    /* ... when no until is given */
    int postponed_default_days; /* postponed with no until */
} followup_delays_t;

/* The scheduler's state shared by handlers and the timer source. */
typedef struct {
    const cv_config_t *config;    /* the process configuration (not owned) */
    const cv_calendar_t *calendar; /* business days (the process's) */
    const cv_tz_t *default_tz;    /* config default_timezone */
    followup_delays_t delays;     /* the rules' delays */
    char on_duty[1024];           /* config on_duty_pool, as given */
    bool next_due_known;          /* next_due_ms matches the database */
    int64_t next_due_ms;          /* earliest pending due_at, INT64_MAX when
                                     none; valid while next_due_known */
    cv_metric_t *tasks_opened;    /* tasks created */
    cv_metric_t *tasks_closed;    /* tasks closed by the rules */
    cv_metric_t *timers_fired;    /* timers that came due */
    cv_metric_t *escalations;     /* escalation steps taken */
    cv_metric_t *fire_lag;        /* ms between due and fired, summed */
    struct followup_person **staff_cache; /* the directory as read, an
                                     open-addressed table of
                                     staff_cache_size slots
                                     (followup_staff.c) */
    size_t staff_cache_size;      /* slots, a power of two, or 0 */
    size_t staff_cache_count;     /* people in it */
    bool staff_written;           /* this turn wrote followup_staff */
} followup_t;

extern const char *const followup_migrations[];
extern const size_t followup_migration_count;

/* Reads the delays from the configuration into self->delays, with the
 * defaults for what it leaves out. 0, or -1 after logging a bad value. */
int followup_delays_load(followup_t *self);

/* The bus handler (cv_bus_handler_fn); `arg` is the followup_t. */
int followup_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event);

/* --- people (followup_staff.c) --- */

/* A person as the scheduler needs them: where and when they work, and
 * how to reach them. Strings are owned (or, when `borrowed`, the staff
 * cache's, valid until the handler or timer returns); clear with
 * followup_person_clear either way. */
typedef struct followup_person {
    char *staff_id;         /* the id */
    char *name;             /* display name, may be NULL */
    char *role;             /* sales | head | ..., may be NULL */
    char *team;             /* calendar team, may be NULL */
    bool known;             /* in the directory */
    bool active;            /* not on leave */
    const cv_tz_t *tz;      /* their zone, or the default */
    cv_workhours_t hours;   /* unset: always available */
    Conveyor__NotifyTarget notify; /* fields point at the strings below */
    char *webhook_url;      /* notify targets, NULL when unset */
    char *telegram_chat_id;
    char *email;
    char *slack_webhook_url;
    bool borrowed;          /* the strings are the staff cache's */
} followup_person_t;

void followup_person_clear(followup_person_t *person);

/* Whether the person has any notify target. */
bool followup_person_reachable(const followup_person_t *person);

/* StaffUpdated: keeps the directory row. 0 or -1. */
int followup_staff_update(followup_t *self, cv_bus_t *bus,
                          const Conveyor__StaffUpdated *updated);

/* Loads `staff_id` (unknown people get the default zone, no hours and no
 * targets). 0, or -1 after logging. The person usually borrows the staff
 * cache's strings: keep it no longer than the current handler or timer.
 *
 * Every lead asks for its owner, so people are kept in memory as read
 * (parsing working hours and zones once, not per lead). The cache only
 * ever holds rows as committed, or as the current transaction sees them:
 * a StaffUpdated empties it, and the first followup_staff_settle after a
 * turn that wrote the directory (committed or rolled back) empties it
 * again, so nothing read from an uncommitted write outlives its turn. A
 * kill -9 loses only memory. */
int followup_staff_get(followup_t *self, cv_bus_t *bus, const char *staff_id,
                       followup_person_t *person);

/* After every bus turn, outside any transaction (the timer source's
 * turn_ended calls it): forgets people read in a turn that wrote the
 * directory. */
void followup_staff_settle(followup_t *self);

/* Frees the staff cache (at exit). */
void followup_staff_cache_free(followup_t *self);

/* The ids of active heads of sales (role "head"), as a NULL-terminated
 * array the caller frees with followup_ids_free. 0 or -1. */
int followup_staff_heads(cv_bus_t *bus, char ***ids);
void followup_ids_free(char **ids);

/* When `minutes` of the person's working time after `from` ends. */
int64_t followup_after_working_minutes(const followup_t *self,
                                       const followup_person_t *person,
                                       int64_t from, int64_t minutes);

/* The same local time `days` of the person's working days after `from`. */
int64_t followup_after_business_days(const followup_t *self,
                                     const followup_person_t *person,
                                     int64_t from, int days);

/* Whether the person works at `at`. */
bool followup_person_open(const followup_t *self,
                          const followup_person_t *person, int64_t at);

/* --- tasks (followup_task.c) --- */

/* The SQL condition "followup_task row of lead ?1". Every task id is
 * "<lead_id>-..." (followup_task_open refuses others), so a lead's tasks
 * are one range of followup_task's key, [?1 || '-', ?1 || '.'), with no
 * index of their own (migration 6); lead_id = ?1 keeps out the tasks of
 * a lead whose id merely starts with "<lead_id>-". */
#define FOLLOWUP_TASKS_OF_LEAD                                               \
    "task_id >= ?1 || '-' AND task_id < ?1 || '.' AND lead_id = ?1"

/* What a new task is. */
typedef struct {
    const char *task_id;      /* unique, "<lead_id>-..."; an existing id
                                 makes it a no-op */
    const char *kind;         /* FOLLOWUP_KIND_* */
    const char *lead_id;
    const char *lead_json;    /* the lead snapshot (cv_jsonw_lead text) */
    bool lead_json_is_row;    /* lead_json is followup_lead's snapshot as
                                 it stands: the row refers to it (below) */
    const char *summary;      /* one line about the lead */
    const followup_person_t *person; /* who does it */
    const Conveyor__NotifyTarget *notify; /* overrides person's, may be NULL */
    const char *title;        /* what to do */
    int64_t due_at;           /* by when, ms */
    int64_t now;              /* the handler's clock reading, for
                                 created_at; 0: read the clock */
    const char *stage;        /* the stage this moves the lead to, or NULL */
    bool sla;                 /* guard it with the escalation ladder */
    const char *channel;      /* the lead's channel, for the notification */
    const char *message;      /* the client's request, may be NULL */
} followup_task_spec_t;

/* Creates the task (and its level-1 SLA timer), emits TaskCreated to the
 * console and the notification to the person. Sets *created (may be NULL)
 * false when the id existed. 0 or -1.
 *
 * The task's lead_json is "the lead as it was when the task was opened"
 * (an escalation shows it). Most tasks open right after the lead's
 * snapshot was kept, so rather than a second copy of the same text the
 * row stores '' for "followup_lead's lead_json"; the one writer of that
 * snapshot (rules_lead_put) first gives such tasks their own copy when the
 * snapshot is about to change, and the escalation reads it through a
 * join. Rows written before (and by tools) keep their own copy. */
int followup_task_open(followup_t *self, cv_bus_t *bus,
                       const followup_task_spec_t *spec, bool *created);

/* Closes one open task: done, its pending timers cancelled (the lead-level
 * head-of-sales timer too unless keep_head), TaskCompleted to the console.
 * 0 also when it was not open. */
int followup_task_close(followup_t *self, cv_bus_t *bus, const char *task_id,
                        const char *reason, bool keep_head);

/* Closes the lead's open tasks of the given kinds (NULL-terminated; NULL
 * = every kind), except those of `except_staff` when not NULL. Sets
 * *closed (may be NULL) to how many. 0 or -1. */
int followup_task_close_kinds(followup_t *self, cv_bus_t *bus,
                              const char *lead_id, const char *const *kinds,
                              const char *except_staff, const char *reason,
                              bool keep_head, int *closed);

/* How many tasks of `kind` the lead ever had; -1 on error. */
int followup_task_count(cv_bus_t *bus, const char *lead_id, const char *kind);

/* One task of a lead as listed by followup_task_list. Strings owned. */
typedef struct {
    char *task_id;
    char *staff_id;     /* whose task */
    char *kind;         /* FOLLOWUP_KIND_* */
    bool open;          /* open (false: done, or closed since listed) */
    bool shares_lead;   /* lead_json '': the lead row's snapshot */
    int64_t created_at; /* ms */
} followup_task_row_t;

/* Every task of a lead, open or done, oldest first: one read serves the
 * several questions an event asks about the lead's tasks. */
typedef struct {
    followup_task_row_t *rows; /* count rows, NULL when none */
    size_t count;
} followup_task_list_t;

/* Lists the lead's tasks into *list (clear it with
 * followup_task_list_clear, also after an error). 0 or -1. */
int followup_task_list(cv_bus_t *bus, const char *lead_id,
                       followup_task_list_t *list);
void followup_task_list_clear(followup_task_list_t *list);

/* followup_task_close_kinds over a listing; the rows it closes are marked
 * closed in the list, so later questions see them closed. */
int followup_task_close_listed(followup_t *self, cv_bus_t *bus,
                               followup_task_list_t *list,
                               const char *lead_id, const char *const *kinds,
                               const char *except_staff, const char *reason,
                               bool keep_head, int *closed);

/* Over a listing: whether the lead has an open task of a kind in `kinds`
 * (for `staff_id` only, when not NULL), and how many of `kind` it had. */
bool followup_task_list_has_open(const followup_task_list_t *list,
                                 const char *const *kinds,
                                 const char *staff_id);
int followup_task_list_count(const followup_task_list_t *list,
                             const char *kind);

/* TaskCompleted from the console: marks the task done, cancels timers. */
int followup_task_complete(followup_t *self, cv_bus_t *bus,
                           const Conveyor__TaskCompleted *completed);

/* --- leads (followup_rules.c) --- */

/* The lead as the scheduler last heard of it. Strings owned. */
typedef struct {
    char *lead_id;
    char *owner_id;  /* NULL before assignment */
    char *channel;
    char *lead_json; /* snapshot */
    char *summary;   /* one line */
    char *name;      /* the client's name, may be NULL */
    char *message;   /* the request, may be NULL */
    char *decided;   /* won | lost | NULL */
    bool found;      /* the row exists */
} followup_lead_t;

void followup_lead_clear(followup_lead_t *lead);
int followup_lead_get(cv_bus_t *bus, const char *lead_id,
                      followup_lead_t *lead);

/* The rules, one per event (followup_rules.c). Each returns 0, -1 (rolled
 * back, re-sent later) or CV_BUS_DROP. */
int followup_on_assigned(followup_t *self, cv_bus_t *bus,
                         const Conveyor__LeadAssigned *assigned);
int followup_on_offered(followup_t *self, cv_bus_t *bus,
                        const Conveyor__LeadOffered *offered);
int followup_on_received(followup_t *self, cv_bus_t *bus,
                         const Conveyor__Envelope *event);
int followup_on_activity(followup_t *self, cv_bus_t *bus,
                         const Conveyor__ActivityRecorded *activity);
int followup_on_decision(followup_t *self, cv_bus_t *bus,
                         const Conveyor__DecisionRecorded *decision);
int followup_on_scored(followup_t *self, cv_bus_t *bus,
                       const Conveyor__LeadScored *scored);

/* A proposal's no-decision timer came due (followup_timer.c calls it). */
int followup_rules_no_decision(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *timer_id,
                               int64_t due_at, int64_t now);

/* --- timers (followup_timer.c) --- */

/* A timer row as fired. Strings owned by the timer source. */
typedef struct {
    char *timer_id;
    char *task_id;
    char *lead_id;
    char *kind;
    char *staff_id; /* may be NULL */
    int level;      /* escalation level 1..3 (1 for other timers) */
    int64_t due_at;
} followup_timer_t;

/* Inserts a pending timer (ignored when the lead has a timer of that id;
 * ids are made from the task's or the lead's id, so an id is never used
 * by two leads). 0 or -1. */
int followup_timer_insert(followup_t *self, cv_bus_t *bus, const char *timer_id,
                          const char *task_id, const char *lead_id,
                          const char *kind, int level, const char *staff_id,
                          int64_t due_at);

/* Cancels the pending timers of `task_id` (below level 3 when keep_head).
 * `lead_id` is the task's lead as its row says, or NULL to read it;
 * keep_head needs lead_id (only task_close_known keeps the head). */
int followup_timer_cancel_task(followup_t *self, cv_bus_t *bus,
                               const char *task_id, const char *lead_id,
                               const char *reason, bool keep_head);

/* Cancels the lead's pending timers whose kind starts with `kind_prefix`
 * (NULL: all). */
int followup_timer_cancel_lead(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *kind_prefix,
                               const char *reason);

/* The bus source that fires due timers; 0 or -1. */
int followup_timer_register(followup_t *self, cv_bus_t *bus);

/* --- the escalation ladder (followup_escalate.c) --- */

/* An SLA timer came due: the step of its level, and the next step's
 * timer. 0 or -1. */
int followup_escalate(followup_t *self, cv_bus_t *bus,
                      const followup_timer_t *timer, int64_t now);

/* --- notifications (followup_notify.c) --- */

/* A one-line description of a lead from its JSON snapshot:
 * "Ivan Petrov, Acme, +79991234567, ivan@acme.ru" (missing parts left
 * out; the lead id when nothing else is known). Caller frees. */
char *followup_lead_summary(const json_t *lead, const char *lead_id);

/* The same from the lead's fields. Caller frees; NULL when out of
 * memory. */
char *followup_lead_summary_fields(const Conveyor__Lead *lead);

/* The lead's snapshot and summary from its fields (caller frees both).
 * 0, or -1 when out of memory. */
int followup_lead_snapshot(const Conveyor__Lead *lead, char **text,
                           char **summary);

/* The title of a first-contact task for a lead that came in on
 * `channel` ("phone" means call back; otherwise get a phone number, time
 * zone and a time to call). Caller frees; NULL when out of memory. */
char *followup_first_contact_title(const char *channel, const char *name);

/* Writes `ms` as "2026-11-22 15:41 UTC" into buf (at least 32 bytes).
 * Returns buf. */
char *followup_format_time(int64_t ms, char *buf, size_t size);

/* Writes `ms` as the person's local time, "Mon 23 Nov 09:30 (Asia/
 * Novosibirsk)", into buf. Returns buf. */
char *followup_format_local(const followup_person_t *person, int64_t ms,
                            char *buf, size_t size);

/* Emits NotificationRequested to the notifier. `payload` is the JSON body
 * for webhooks (not owned). 0 or -1. */
int followup_notify(cv_bus_t *bus, const char *notification_id,
                    const char *lead_id, const char *staff_id,
                    Conveyor__NotifyTarget *target, const char *subject,
                    const char *text, const json_t *payload);

/* Emits NotificationRequested like followup_notify, with the payload
 * already as JSON text. 0 or -1. */
int followup_notify_text(cv_bus_t *bus, const char *notification_id,
                         const char *lead_id, const char *staff_id,
                         Conveyor__NotifyTarget *target, const char *subject,
                         const char *text, const char *payload_json);

#endif

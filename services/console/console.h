/* console: the staff API and the read model of every lead.
 *
 * Two kinds of thread touch the console's SQLite file:
 *   - the bus thread applies the events other stages send (console_events.c)
 *     to the read model, on the service's own connection, inside the bus's
 *     batch transaction;
 *   - the HTTP threads (console_api.c, console_leads.c, console_staff.c)
 *     answer staff requests, each on a connection of its own borrowed from
 *     a small pool (console_store.c); a request that changes something
 *     writes its rows and the events it emits (cv_outbox_put) in one
 *     transaction, then wakes the bus to send them.
 *
 * Names used across the files of this folder live here; everything else is
 * static to its file. */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_bus.h"
#include "cv_config.h"
#include "cv_http.h"
#include "cv_id.h"
#include "cv_scoring_live.h"
#include "cv_store.h"

#define CONSOLE_SERVICE "console"
#define CONSOLE_ID_SIZE 129     /* an id from a client: up to 128 bytes */
#define CONSOLE_NAME_SIZE 256   /* a staff member's name */

typedef struct console_pool console_pool_t;

/* The process-wide state every handler sees. */
typedef struct {
    const cv_config_t *config;  /* what the process was told (not owned) */
    cv_bus_t *bus;              /* to wake after an HTTP commit (not owned) */
    console_pool_t *pool;       /* connections of the HTTP threads (owned
                                   by main) */
    cv_scoring_live_t *rules;   /* the scoring model, for scorecard
                                   previews and parameter names (owned by
                                   main; reloaded on SIGHUP) */
    struct console_known *known; /* leads with a committed, traced card
                                   (owned by main; bus thread only) */
} console_t;

/* --- console_known.c: leads whose card the bus thread need not read --- */

typedef struct console_known console_known_t;

/* Leads one turn may learn; past that the turn learns nothing more. */
#define CONSOLE_KNOWN_PENDING 2048

/* NULL after logging. */
console_known_t *console_known_new(void);
void console_known_destroy(console_known_t **self_p); /* NULL-safe */
/* True when a committed turn, or the open one (whose events share its
 * transaction), left `lead_id` a card with a trace, so console_lead_ensure
 * would change nothing. `self` may be NULL. */
bool console_known_has(const console_known_t *self, const char *lead_id);
/* The open turn gave `lead_id` a card with `trace_id` (nothing is learnt
 * without a trace): true for the rest of the turn, and for good once the
 * turn has committed. */
void console_known_learn(console_known_t *self, const char *lead_id,
                         const char *trace_id);
/* Forgets what the open turn learnt: a handler failed, so the bus rolls
 * back that event or the whole turn. Afterwards no lead the turn learnt is
 * known (a committed lead whose slot it took may go too). NULL-safe. */
void console_known_forget_turn(console_known_t *self);
/* cv_bus_source_t.turn_ended, `arg` the console_t: commits or forgets. */
void console_known_turn_ended(void *arg, cv_bus_t *bus, bool ok);
/* Adds the source whose turn_ended keeps console->known. 0 or -1. */
int console_known_watch(console_t *console);

/* --- console_store.c: schema, connections, the lead read model --- */

extern const char *const console_migrations[];
extern const size_t console_migration_count;

/* A pool of connections to the console's database for the HTTP threads.
 * A connection is opened the first time no idle one is left and is kept
 * for the next request; at most one thread uses a connection at a time. */
console_pool_t *console_pool_new(const char *path);
void console_pool_destroy(console_pool_t **self_p); /* NULL-safe */
/* NULL after logging when a new connection cannot be opened. */
cv_store_t *console_pool_acquire(console_pool_t *self);
void console_pool_release(console_pool_t *self, cv_store_t *store);

/* Stages in the order a lead moves through them; won/lost/rejected close
 * the lead. The rank is -1 for a name that is not a stage. */
int console_stage_rank(const char *stage);
bool console_stage_closed(const char *stage);

/* Binds `text` (SQL NULL for NULL) without copying it, for the bus
 * thread's statements that are stepped before their text goes away. */
void console_bind_text(sqlite3_stmt *stmt, int index, const char *text);

/* Creates an empty card for `lead_id` when there is none, so an event that
 * arrives before LeadReceived still has a card to land on. `trace_id` (may
 * be NULL or "") becomes the card's trace when it has none. `known` is the
 * bus thread's cache (NULL elsewhere): a lead it knows has a traced card is
 * answered without a read, and a lead this call leaves with one is learnt
 * (kept once the turn commits). 0 or -1. */
int console_lead_ensure(cv_store_t *store, console_known_t *known,
                        const char *lead_id, int64_t at,
                        const char *trace_id);

/* Inserts the card or fills it from `lead` (a field the event carries
 * replaces the card's; a field it lacks keeps the card's). `primary` is
 * true for the lead's own LeadReceived, whose channel is the lead's first
 * channel; for other events the card's channel is kept when it has one.
 * The lead's channel joins the card's channel list; `trace_id` (may be
 * NULL or "") becomes the card's trace when it has none. 0 or -1. */
int console_lead_upsert(cv_store_t *store, const Conveyor__Lead *lead,
                        int64_t at, bool primary, const char *trace_id);

/* What the event handlers need to know of a card. */
typedef struct {
    char stage[32];             /* where the lead is */
    bool has_owner;             /* owner_id is set */
    bool has_score_at;          /* a score is stored ... */
    int64_t score_at;           /* ... with this event time */
    bool has_owner_at;          /* an assignment is stored ... */
    int64_t owner_at;           /* ... with this event time */
} console_card_t;

/* console_lead_upsert with primary false, but it reads the card first and
 * writes it only when `lead` changes one of its fields (the caller's
 * console_card_update moves updated_at and the trace), then fills `card`.
 * 0 or -1. */
int console_lead_merge(cv_store_t *store, const Conveyor__Lead *lead,
                       int64_t at, const char *trace_id,
                       console_card_t *card);

/* The parts of a card one event changes; NULL leaves a part as it is. */
typedef struct {
    const Conveyor__Score *score;   /* the newer score to store */
    int64_t score_at;               /* its time when not `at` (the score
                                       a later event repeats), 0: `at` */
    const char *owner_id;           /* the newer owner ... */
    const char *owner_name;         /* ... and their name (may be NULL) */
    const char *stage;              /* the stage to set */
} console_card_change_t;

/* Writes `change` to the card's row in one statement, with owner_at and
 * stage_at as `at`, score_at as change->score_at (or `at`), updated_at
 * moved up to the later of the two and
 * `trace_id` kept when the card has no trace; the packed score goes to
 * lead_scores (written only when it differs from the stored one). The card
 * must exist. 0 or -1. */
int console_card_update(cv_store_t *store, const char *lead_id, int64_t at,
                        const char *trace_id,
                        const console_card_change_t *change);

/* Adds `channel` to the card's channel list (first time it was seen). */
int console_lead_add_channel(cv_store_t *store, const char *lead_id,
                             const char *channel, int64_t at);

/* The card's stage now, copied into buf; 0, 1 when there is no card, -1. */
int console_lead_stage(cv_store_t *store, const char *lead_id, char *buf,
                       size_t size);

/* Moves the card to `stage` when that is further along than where it is
 * (a closed stage is never left this way). 0 or -1. */
int console_stage_advance(cv_store_t *store, const char *lead_id,
                          const char *stage, int64_t at);

/* Sets the stage whatever it was (staff decisions, lifted knock-outs). */
int console_stage_set(cv_store_t *store, const char *lead_id,
                      const char *stage, int64_t at);

/* Adds a timeline entry once per `fact` (a business key such as
 * "task:<task_id>"): a second call with the same fact changes nothing.
 * Returns 1 when added, 0 when the fact was there, -1 on error. */
int console_timeline_add(cv_store_t *store, const char *lead_id, int64_t at,
                         const char *actor, const char *event,
                         const char *fact, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The card as the stages know it, for the events the console emits. */
typedef struct {
    Conveyor__Lead lead;        /* strings owned by the snapshot */
    Conveyor__Score *score;     /* unpacked score, or NULL (owned) */
    char stage[32];             /* where the lead is */
    char owner_id[CONSOLE_ID_SIZE]; /* "" when nobody owns it */
    char trace_id[CONSOLE_ID_SIZE]; /* the lead's trace, "" if unknown */
} console_snapshot_t;

/* Fills `snap` from the card. 0, 1 when there is no card, -1 on error.
 * Always call console_snapshot_clear afterwards. */
int console_snapshot_load(cv_store_t *store, const char *lead_id,
                          console_snapshot_t *snap);
void console_snapshot_clear(console_snapshot_t *snap);

/* The trace id the lead's first event carried (intake's), kept so the
 * events the console emits about the lead continue its journey; set by
 * console_lead_ensure, console_lead_upsert and console_card_update. */
/* Copies it into buf ("" when unknown). 0 or -1. */
int console_lead_get_trace(cv_store_t *store, const char *lead_id, char *buf,
                           size_t size);

/* Marks a task done; 1 when it changed, 0 when it was done already. */
int console_task_mark_done(cv_store_t *store, const char *task_id,
                           const char *actor, int64_t at);

/* --- console_events.c: the bus handler --- */

/* A lead's first score as routing repeats it (LeadAssigned, LeadOffered,
 * LeadUnassigned): scoring sends that score to the console itself only
 * for a knock-out (services/scoring, scoring_emit), so the event that
 * repeats it stands in for the LeadScored. Applies it as LeadScored did,
 * at the score's scored_at: the score when it is the card's newest, the
 * stage it implies, and the "scored" timeline entry (once per lead).
 * `lead` may be NULL (LeadUnassigned carries only the id). Returns 0 (a
 * score that is not a first score, or none, changes nothing) or -1. */
int console_first_score_apply(cv_store_t *store, const char *lead_id,
                              const Conveyor__Lead *lead,
                              const Conveyor__Score *score,
                              const char *trace_id);

int console_events_handle(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event);

#define CONSOLE_METRIC_ACTIVITIES "conveyor_console_activities_total"
#define CONSOLE_METRIC_DECISIONS "conveyor_console_decisions_total"

/* Registers the console's counters so /metrics shows them from the start
 * (registering again later returns the same counter). */
void console_metrics_register(void);

/* --- console_auth.c --- */

/* Who is calling. The bootstrap admin token has no staff row. */
typedef struct {
    char staff_id[CONSOLE_ID_SIZE]; /* "" for the bootstrap admin */
    char name[CONSOLE_NAME_SIZE];   /* for the timeline */
    char role[16];                  /* telemarketer ... admin */
    bool manager;                   /* head or admin: sees everything */
} console_caller_t;

/* Identifies the caller from its bearer token. Returns 0, or -1 after
 * replying (401 missing/unknown token, 503 storage trouble). */
int console_auth(const console_t *console, cv_store_t *store,
                 cv_http_request_t *req, console_caller_t *caller);

/* The name the timeline shows for the caller ("admin" for the token). */
const char *console_caller_actor(const console_caller_t *caller);

/* --- console_api.c: routing and helpers of the HTTP side --- */

/* Everything a route handler needs for one request. */
typedef struct {
    console_t *console;         /* process state */
    cv_http_request_t *req;     /* the request being answered */
    cv_store_t *store;          /* this thread's connection */
    console_caller_t caller;    /* who asked */
} console_ctx_t;

bool console_api_handle(void *arg, cv_http_request_t *req);

/* Parses the request body as a JSON object. NULL after replying (415 not
 * JSON, 400 malformed or not an object). */
json_t *console_read_json(cv_http_request_t *req);

/* Replies 503 for a failed database step (already logged). */
void console_reply_storage(cv_http_request_t *req);

/* Ends a listing whose rows were read with `stmt` until `rc`: resets the
 * statement, then answers 200 {key: list}, or, when the rows did not run
 * out (rc is not SQLITE_DONE), logs why and answers 503. Takes `list`. */
void console_reply_list(console_ctx_t *ctx, sqlite3_stmt *stmt, int rc,
                        const char *key, json_t *list);

/* Replies 403 and returns false unless the caller may see what
 * `owner_id` (may be NULL or "") owns. */
bool console_may_see(console_ctx_t *ctx, const char *owner_id);

/* A JSON string, or null for NULL or text that is not UTF-8 (event fields
 * are not checked for it on the wire). */
json_t *console_json_text(const char *text);

/* Sets `key` to text column `col` of the current row (null for NULL). */
void console_put_column(json_t *obj, const char *key, sqlite3_stmt *stmt,
                        int col);

/* RFC 3339 text of a conveyor time, as a JSON string (null for 0). */
json_t *console_time_json(int64_t ms);

/* The columns of a task, in the order console_task_json reads them. */
#define CONSOLE_TASK_COLUMNS                                             \
    "task_id, lead_id, staff_id, kind, title, due_at, status, overdue, " \
    "escalation_level, created_at, completed_at, completed_by "

/* The task JSON (API.md: id, lead_id, staff_id, kind, due_at, status, ...)
 * of a row of CONSOLE_TASK_COLUMNS. The caller owns it. */
json_t *console_task_json(sqlite3_stmt *stmt);

/* Commits the request's transaction and wakes the bus to send what it
 * wrote to the outbox; on failure rolls back and replies 503. 0 or -1. */
int console_commit_and_wake(console_ctx_t *ctx);

/* --- console_leads.c --- */
void console_leads_get(console_ctx_t *ctx, const char *lead_id);
void console_leads_search(console_ctx_t *ctx);
void console_leads_activity(console_ctx_t *ctx, const char *lead_id);
void console_leads_decision(console_ctx_t *ctx, const char *lead_id);

/* --- console_scorecard.c: people's values on the lead's score --- */

/* PUT /v1/leads/{id}/scorecard and GET of the same. */
void console_scorecard_put(console_ctx_t *ctx, const char *lead_id);
void console_scorecard_get(console_ctx_t *ctx, const char *lead_id);

/* The score as the card shows it: cv_event_score_to_json's fields plus
 * knockout_source and revision. The caller owns it; NULL when out of
 * memory. */
json_t *console_score_json(const Conveyor__Score *score);

/* {"revision", "history": [...]} of the lead's scorecard, for the card;
 * NULL after logging on a database error. */
json_t *console_scorecard_json(cv_store_t *store, const char *lead_id);

/* --- console_staff.c --- */
void console_staff_post(console_ctx_t *ctx);
void console_staff_list(console_ctx_t *ctx);
void console_staff_get(console_ctx_t *ctx, const char *staff_id);
void console_staff_patch(console_ctx_t *ctx, const char *staff_id);

/* --- console_tasks.c: tasks, proposals, the staff inbox --- */
void console_tasks_list(console_ctx_t *ctx);
void console_tasks_done(console_ctx_t *ctx, const char *task_id);
void console_proposals_get(console_ctx_t *ctx, const char *proposal_id);
void console_notifications_list(console_ctx_t *ctx);

/* --- console_notifications.c: dead letters (owned by the notifier's
 * helper); see the file's header --- */

/* The dead_letters table, a migration appended in console_store.c. */
extern const char console_schema_notifications[];
/* Before the bus runs, on the bus's connection: whether the database has
 * a dead letter a delivery could mark; while it has none (and no
 * NotificationFailed came since), console_notifications_delivered skips
 * its UPDATE. Without this call it never skips. 0 or -1. */
int console_notifications_start(cv_store_t *store);
/* Bus thread: NotificationFailed stores (or revives) a dead letter and
 * puts the failure on the lead's timeline; `known` as for
 * console_lead_ensure. 0 or -1. */
int console_notifications_failed(cv_store_t *store, console_known_t *known,
                                 const Conveyor__Envelope *ev);
/* Bus thread: a NotificationDelivered marks the channel's dead letter, if
 * any, delivered. 0 or -1. */
int console_notifications_delivered(cv_store_t *store,
                                    const Conveyor__Envelope *ev);
/* GET /v1/notifications: with ?status= the dead letters (head/admin),
 * else the staff inbox (console_notifications_list). */
void console_notifications_get(console_ctx_t *ctx);
/* POST /v1/notifications/{id}/resend (head/admin). */
void console_notifications_resend(console_ctx_t *ctx, const char *id);

/* --- console_routing.c: first-come claims, manual assignment, explain
 * (owned by the routing work); see the file's header --- */

/* The lead_offers table, a migration appended in console_store.c. */
extern const char console_schema_routing[];
/* Bus thread: LeadOffered keeps the offer and puts it on the timeline;
 * `known` as for console_lead_ensure. */
int console_routing_offered(cv_store_t *store, console_known_t *known,
                            const Conveyor__Envelope *ev);
/* POST /v1/leads/{id}/claim: one winner, the rest 409. */
void console_routing_claim(console_ctx_t *ctx, const char *lead_id);
/* POST /v1/leads/{id}/assign (head/admin): {"staff_id": ...}. */
void console_routing_assign(console_ctx_t *ctx, const char *lead_id);
/* GET /v1/routing/explain?lead_id= (head/admin), answered by routing. */
void console_routing_explain(console_ctx_t *ctx);

#endif

/* routing: the stage that decides who works each scored lead.
 *
 * It keeps its own copy of the staff directory (from StaffUpdated) and
 * asks an ordered chain of rules (common/cv_routing_rules.h; the default
 * chain is deploy/routing-rules.yaml, reloaded on SIGHUP) who gets each
 * LeadScored lead. A rule that matches the lead tries its strategy on its
 * pool: round-robin (smooth, weighted, state in var/routing.db so bursts
 * and restarts continue the same rotation), by channel, industry, product
 * or region, first come (an offer the console lets one person claim),
 * manual (the head of sales assigns), or the returning client's previous
 * owner. Only available people count: active, inside their working hours
 * in their own time zone, under their daily capacity for their local day.
 * A rule whose pool has nobody available falls through to the next; when
 * no rule places the lead it waits in the pending table (retried when the
 * directory changes and every minute), the card says why and every head
 * of sales is notified.
 *
 * After an owner is found, a VIP lead (segment A by default) brings the
 * head of sales in as reviewer and one member of each working-group role
 * (analyst, marketer, team lead) with a working_group task. Segment C goes
 * to juniors who send the rejection. When people's scorecard moves an
 * assigned lead to another segment the same happens then.
 *
 * An SLA escalation (level 2) from the follow-up scheduler re-assigns the
 * lead away from its owner; a person set inactive hands their open leads
 * back to the chain. Every decision's rule trace is stored with the
 * assignment and sent in LeadAssigned (the card's timeline shows it);
 * GET /v1/routing/explain?lead_id= on the admin port runs the same chain
 * without writing anything and answers who would get the lead now. */
#ifndef ROUTING_H
#define ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_bus.h"
#include "cv_config.h"
#include "cv_routing_rr.h"
#include "cv_routing_rules.h"
#include "cv_store.h"

#define ROUTING_TRACE_SIZE 4096
#define ROUTING_ID_SIZE    160
#define ROUTING_DEFAULT_TZ "Europe/Moscow"

/* The process-wide state: the chain in force and what was configured. */
typedef struct {
    const cv_config_t *config;       /* not owned */
    pthread_rwlock_t lock;           /* guards `rules` against reloads */
    cv_routing_rules_t *owned;       /* the loaded file, or NULL */
    const cv_routing_rules_t *rules; /* in force: owned or built-in */
    char rules_path[CV_CONFIG_TEXT]; /* "" for the built-in chain */
    char default_tz[64];             /* zone of people without one */
    int first_come_minutes;          /* claim window when a rule has none */
} routing_t;

/* One directory member a pool could give a lead to, with whether they can
 * take one now. */
typedef struct {
    char *staff_id;                  /* owned */
    char *name;                      /* owned; "" when unknown */
    char *role;                      /* owned */
    char *team;                      /* owned, NULL when none */
    char *timezone;                  /* owned, NULL when none */
    char *working_hours;             /* owned JSON, NULL when none */
    char *webhook_url;               /* notify target, owned, NULL when none */
    char *telegram_chat_id;          /* owned, NULL when none */
    char *slack_webhook_url;         /* owned, NULL when none */
    char *email;                     /* owned, NULL when none */
    int tier;                        /* 1, 2, 3 or 0 */
    int weight;                      /* round-robin weight, >= 1 */
    int capacity_per_day;            /* 0: no limit */
    bool active;                     /* the directory says so */
    cv_routing_availability_t avail; /* now */
} routing_member_t;

/* routing_staff.c's copy of the staff table in memory (one per database
 * connection; see there why it cannot go stale). */
typedef struct routing_directory routing_directory_t;

typedef struct {
    routing_member_t *members; /* owned array; the texts are borrowed from
                                  `directory` */
    size_t count;              /* members in use */
    size_t capacity;           /* allocated */
    routing_directory_t *directory; /* held until routing_pool_clear */
} routing_pool_t;

/* Who a pool is: every filter NULL / 0 is "any". */
typedef struct {
    const char *key;                /* round-robin state key */
    const char *role;               /* staff role */
    int tier;                       /* staff tier, <= 0 any */
    const char *team;               /* staff team */
    const cv_routing_list_t *staff; /* staff ids, NULL/empty any */
    const char *owns_list;          /* "channels", "industries",
                                       "regions", "products" or NULL */
    const char *owns_value;         /* ... that must hold this value */
    const char *only;               /* exactly this staff id */
    const char *exclude;            /* never this staff id */
} routing_pool_spec_t;

/* A human-readable explanation being built. */
typedef struct {
    char text[ROUTING_TRACE_SIZE]; /* NUL-terminated */
    size_t length;                 /* bytes used */
} routing_trace_t;

/* A LeadScored as it arrived on the bus: where its bytes are in the
 * message being handled, found once per event (routing_handler.c) and
 * handed down to what keeps the lead (the leads and rejected tables)
 * and what sends it on (LeadAssigned), which would otherwise pack
 * the unpacked copy again. Points into the bus's inbound message: valid
 * during the handler call only. A lead read back from the tables has none
 * (NULL where one is taken): it is packed. */
typedef struct {
    const uint8_t *lead_scored; /* the packed LeadScored body */
    size_t lead_scored_size;    /* its length */
    const uint8_t *score;       /* its score field's length prefix and
                                   bytes (protobuf-c's unknown-field form),
                                   NULL when they cannot be lent */
    size_t score_size;          /* their length */
} routing_arrived_t;

/* The schema of var/routing.db, in order (routing_schema.c). */
extern const char *const routing_migrations[];
extern const size_t routing_migration_count;

/* --- routing_rules.c: the chain in force --- */

/* Loads the configured chain (config routing_rules, "" for the built-in
 * one). 0, or -1 after logging why the file is refused. */
int routing_init(routing_t *self, const cv_config_t *config);
void routing_fini(routing_t *self);

/* The chain, held against a reload until routing_rules_release. */
const cv_routing_rules_t *routing_rules_acquire(routing_t *self);
void routing_rules_release(routing_t *self);

/* Reloads on SIGHUP on the bus thread, keeping the old chain when the new
 * file is refused. 0 or -1. */
int routing_rules_watch(routing_t *self, cv_bus_t *bus);

/* --- routing_staff.c: the directory copy and the pools --- */

/* Stores or replaces a member from a StaffUpdated event; *was_active tells
 * whether they were active before (false for a new member). Moves the
 * directory's version on, in the same transaction, so every in-memory
 * copy of the table is read again before it is used. 0 or -1. */
int routing_staff_apply(cv_store_t *store, const Conveyor__StaffMember *member,
                        int64_t now_ms, bool *was_active);

/* Drops the in-memory directory of `store` (before the connection is
 * closed). NULL-safe. */
void routing_directory_forget(cv_store_t *store);

/* Loads the members `spec` selects (active or not, ordered by staff id)
 * with their availability at `now_ms`, from the in-memory directory of
 * `store`. 0 or -1 (logged). */
int routing_pool_load(cv_store_t *store, const routing_pool_spec_t *spec,
                      const char *default_tz, int64_t now_ms,
                      routing_pool_t *out);

/* Frees the members; the pool may be loaded again. NULL-safe. */
void routing_pool_clear(routing_pool_t *pool);

/* Round-robin over the available members (weights, state under
 * spec->key); `dry` picks without saving the state. Appends the pool, who
 * was unavailable and why, and the choice to `why`. Returns the index, -1
 * when nobody is available, -2 on a database error. */
int routing_pool_pick(cv_store_t *store, const routing_pool_spec_t *spec,
                      routing_pool_t *pool, bool dry, routing_trace_t *why);

/* Appends the members of the pool that are available ("a, b") or, when
 * none is, who was not and why. */
void routing_pool_describe(const routing_pool_t *pool, routing_trace_t *why);

/* Loads one member by id (any role), with availability; 1 when unknown. */
int routing_member_load(cv_store_t *store, const char *staff_id,
                        const char *default_tz, int64_t now_ms,
                        routing_member_t *out);
void routing_member_clear(routing_member_t *m);

/* --- routing_assign.c: traces, assignments, the events they emit --- */

void routing_trace_add(routing_trace_t *trace, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends `text` as "%s" would ("(null)" for NULL), without printf. */
void routing_trace_put(routing_trace_t *trace, const char *text);
void routing_trace_reset(routing_trace_t *trace);
/* Appends a number as "%lld" would (without printf's cost: the trace of
 * every lead is built from many small pieces). */
void routing_trace_int(routing_trace_t *trace, long long value);

/* How a lead joins a person. */
typedef struct {
    const char *strategy;  /* LeadAssigned.strategy */
    const char *rule;      /* the rule's name, or NULL */
    const char *role;      /* NULL: the owner; "reviewer": joins */
    const char *task_kind; /* NULL: first_contact */
    int tier;              /* the lead's tier */
    bool no_offer;         /* the lead has no open offer to close (the
                              caller looked in this transaction) */
    const routing_arrived_t *arrived; /* the bytes the lead arrived in,
                                         or NULL */
} routing_join_t;

/* Stores `m` as the lead's owner (replacing an earlier one), counts the
 * lead on their local day, emits LeadAssigned with `trace`. 0 or -1. */
int routing_give(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                 const routing_member_t *m, const routing_join_t *join,
                 const char *trace);

/* Emits LeadAssigned only (a reviewer, the head's manual task, an owner
 * who keeps the lead with a new task). 0 or -1. */
int routing_emit_assigned(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const routing_member_t *m, const routing_join_t *join,
                          const char *trace);

/* 1 when the lead has an owner here (*owner copied when not NULL), 0 when
 * not, -1 on error. */
int routing_owner(cv_store_t *store, const char *lead_id, char *owner,
                  size_t size);

/* `scored` packed as the lead_scored columns keep it: `arrived`'s bytes
 * when it is not NULL (the bytes `scored` arrived in; no packing), else
 * packed into `local` when it fits or into a malloc'd buffer left in
 * *owned for the caller to free (*owned is NULL otherwise). *size is the
 * length. NULL when out of memory (logged). */
const uint8_t *routing_lead_bytes(const routing_arrived_t *arrived,
                                  const Conveyor__LeadScored *scored,
                                  uint8_t *local, size_t local_size,
                                  size_t *size, uint8_t **owned);

/* Keeps the newest LeadScored of a lead (explain, re-assignment, offers
 * and manual assignment read it back), replacing a kept one; `arrived`:
 * its bytes, or NULL (routing_lead_bytes). 0 or -1. */
int routing_lead_put(cv_store_t *store, const Conveyor__LeadScored *scored,
                     const routing_arrived_t *arrived);

/* Keeps the LeadScored of a lead not kept before; *fresh tells whether it
 * was new (a kept lead is left as it is: routing_lead_put replaces it).
 * Rows are never deleted from the table, and every lead that is assigned,
 * waits in pending or has an offer has its row (migrations 8 and 9 added
 * those of older files), so a fresh lead has none of these: the usual new
 * lead is placed without looking them up. 0 or -1. */
int routing_lead_insert(cv_store_t *store, const Conveyor__LeadScored *scored,
                        const routing_arrived_t *arrived, bool *fresh);

/* The stored LeadScored of a lead (caller frees with
 * conveyor__lead_scored__free_unpacked), NULL with *missing true when the
 * lead is unknown, NULL with *missing false on error. */
Conveyor__LeadScored *routing_lead_get(cv_store_t *store, const char *lead_id,
                                       bool *missing);

/* Tells every active head of sales (NotificationRequested to notifier)
 * and the card (LeadUnassigned) that nobody can take the lead. `score`
 * (may be NULL) goes with LeadUnassigned: for a lead that comes to wait,
 * the console has its first score from here alone (scoring_emit). */
int routing_tell_heads(cv_bus_t *bus, const char *lead_id, const char *reason,
                       const char *what, int tier,
                       const Conveyor__Score *score);

/* --- routing_chain.c: the rule chain --- */

typedef enum {
    ROUTING_NOBODY,   /* no rule placed the lead */
    ROUTING_ASSIGNED, /* an owner was chosen */
    ROUTING_OFFERED,  /* first_come: offered to a pool */
    ROUTING_MANUAL,   /* the head of sales was asked to assign */
} routing_outcome_t;

typedef struct {
    bool dry;             /* explain: decide, write and emit nothing */
    size_t first_rule;    /* start at this rule (after an expired offer) */
    const char *exclude;  /* never this person (SLA re-assignment) */
    const char *strategy; /* LeadAssigned.strategy instead of the rule's */
    bool no_offer;        /* the caller saw no open offer of the lead in
                             this transaction: none to close */
    bool not_pending;     /* the caller knows the lead is not waiting in
                             pending (routing_place removes none) */
    const routing_arrived_t *arrived; /* the bytes the lead arrived in
                                         (kept and sent as they are), or
                                         NULL: packed */
} routing_route_opts_t;

typedef struct {
    routing_outcome_t outcome;        /* what happened */
    char staff_id[ROUTING_ID_SIZE];   /* owner, or the head asked */
    char staff_name[ROUTING_ID_SIZE]; /* their name */
    char rule[80];                    /* the rule that decided, or "" */
    const char *strategy;             /* its strategy's name, or NULL */
    char offered[1024];               /* first_come: "a,b,c" */
    int64_t expires_at;               /* first_come: claim deadline */
    routing_trace_t trace;            /* the whole rule trace */
} routing_decision_t;

/* Runs the chain for the lead now. Unless opts->dry, acts on the outcome
 * inside the open transaction: stores and emits the assignment (then the
 * VIP steps), the offer or the head's task. 0, or -1 on a database
 * error (logged). */
int routing_route(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                  const Conveyor__LeadScored *scored,
                  const routing_route_opts_t *opts, routing_decision_t *out);

/* The VIP steps for a lead with an owner: the head joins as reviewer, one
 * of each working-group role joins. Once per lead and role. 0 or -1. */
int routing_vip(routing_t *self, cv_bus_t *bus,
                const Conveyor__LeadScored *scored);

/* The lead's fields a rule reads (texts borrowed from `lead`, extra
 * parsed into `*extra`, which the caller json_decref's; with `extra` NULL
 * the extra object is not read and its fields stay unset). */
void routing_lead_view(const Conveyor__Lead *lead, const Conveyor__Score *score,
                       cv_routing_lead_t *view, void **extra);

/* --- routing_offer.c: first come offers and the head's manual task --- */

/* Records an offer (first_come: expires_at set; manual: 0) replacing an
 * earlier one of the lead. 0 or -1. */
int routing_offer_put(cv_store_t *store, const char *lead_id, const char *kind,
                      const char *rule, size_t rule_index, const char *staff,
                      int64_t expires_at, const char *trace);

/* Closes the lead's open offer (state `state`). 0 or -1. */
int routing_offer_close(cv_store_t *store, const char *lead_id,
                        const char *state);

/* AssignmentRequested from the console (a claim or the head's choice). */
int routing_offer_requested(routing_t *self, cv_bus_t *bus,
                            const Conveyor__Envelope *event);

/* A bus source: expires first_come offers (the chain goes on after their
 * rule) and retries the pending leads every minute. */
int routing_timer_watch(routing_t *self, cv_bus_t *bus);

/* --- routing_pending.c: leads waiting for somebody --- */

/* Keeps the lead in the pending table (its first arrival fixes its place
 * in the queue); its LeadScored is its row in leads, which the caller
 * has kept (routing_lead_insert, routing_lead_put) or read it from, and
 * which the retries read. *fresh is true when it was not waiting before.
 * 0 or -1. */
int routing_pending_put(cv_store_t *store, const char *lead_id, int tier,
                        const char *reason, const char *trace_id, bool *fresh);
/* Removes a lead from the queue (placed or rejected). 0 or -1. */
int routing_pending_remove(cv_store_t *store, const char *lead_id);

/* Tries every waiting lead in arrival order (each through the chain, so
 * one that still finds nobody does not hold up the others). 0 or -1. */
int routing_pending_retry(routing_t *self, cv_bus_t *bus);

/* Leads waiting now, or -1. */
int64_t routing_pending_count(cv_store_t *store);

/* 1 when some lead waits, 0 when none, -1 on error (one row read, not a
 * count of the queue). */
int routing_pending_any(cv_store_t *store);

/* true when a write changed the queue since the last call (true on the
 * first): the pending gauge is counted again only then. */
bool routing_pending_changed(void);

/* --- routing_segment.c: segments decide too --- */

/* The head of sales joins a VIP lead as reviewer with a vip_review task
 * (once per lead); *joined tells whether one has, now or before. */
int routing_segment_review(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                           bool *joined);

/* A re-score of a lead that has an owner here. 0 or -1. */
int routing_segment_moved(routing_t *self, cv_bus_t *bus,
                          const Conveyor__LeadScored *scored);

/* Records what a segment change did. 0 or -1. */
int routing_segment_record(cv_store_t *store, const char *lead_id,
                           const char *old_segment, const char *new_segment,
                           const char *action, const char *staff_id,
                           const char *trace);

/* --- routing_handler.c --- */

/* Routes a lead nobody owns through the chain (then the VIP steps); when
 * nobody takes it, it waits in pending and, the first time, the heads and
 * the card are told. *placed: assigned, offered or with the head. */
int routing_place(routing_t *self, cv_bus_t *bus,
                  const Conveyor__LeadScored *scored,
                  const routing_route_opts_t *opts, bool *placed);

/* Re-assigns the open leads `staff_id` owns (set inactive); a lead
 * nobody else can take stays and the heads are told. 0 or -1. */
int routing_hand_back(routing_t *self, cv_bus_t *bus, const char *staff_id);

/* The bus handler (cv_bus_handler_fn); `arg` is the routing_t. */
int routing_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

/* --- routing_explain.c: GET /v1/routing/explain on the admin port --- */

typedef struct routing_explain routing_explain_t;

/* Serves healthz, metrics and explain on config->admin_addr. NULL after
 * logging. */
routing_explain_t *routing_explain_start(routing_t *self);
/* healthz answers 200 once ready. NULL-safe. */
void routing_explain_ready(routing_explain_t *ex, bool ready);
/* Stops serving and frees; NULL-safe, nulls *ex_p. */
void routing_explain_stop(routing_explain_t **ex_p);

/* 1 when the lead already had a review of `kind` (the head's
 * vip_review, a working_group:<role> member), 0 when not, -1 on error. */
int routing_review_exists(cv_store_t *store, const char *lead_id,
                          const char *kind);

/* Records that `staff_id` joined the lead as a review of `kind` (kept
 * once per lead and kind), with the trace that chose them. */
int routing_review_put(cv_store_t *store, const char *lead_id,
                       const char *kind, const char *staff_id,
                       const char *trace);

#endif

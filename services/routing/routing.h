/* routing: the stage that decides who works each scored lead.
 *
 * It keeps its own copy of the staff directory (from StaffUpdated), and
 * gives each LeadScored lead to an active member of the right tier by
 * smooth weighted round-robin (common/cv_routing_rr.h), whose state lives
 * in var/routing.db so a restart continues the same rotation. A lead is
 * assigned once (its id is the key). When nobody can take it, it waits in
 * the pending table and is retried, in arrival order, whenever the
 * directory changes. Knocked-out leads are not given to sales.
 *
 * The segment decides too (PRODUCT.md section 3): a segment C lead goes to
 * a junior (role telemarketer, tier 1) with a task to send the rejection
 * when one is available; a segment A lead, once it has an owner, gets the
 * head of sales (role head) as a reviewer with a task of their own. When
 * people's scorecard moves an assigned lead to another segment
 * (LeadScored with `rescore`), the same happens to it then: to A, the head
 * joins; to C, a junior takes it over, or when there is none the owner
 * gets the rejection task. A knock-out lifted by people sends the lead
 * down the belt again. Every move is recorded (segment_changes). */
#ifndef ROUTING_H
#define ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"
#include "cv_bus.h"
#include "cv_store.h"

#define ROUTING_TRACE_SIZE 2048

/* One directory member who could take a lead, with today's load. */
typedef struct {
    char *staff_id;         /* owned */
    char *name;             /* owned; "" when unknown */
    char *webhook_url;      /* notify target, owned, NULL when none */
    char *telegram_chat_id; /* owned, NULL when none */
    char *email;            /* owned, NULL when none */
    int weight;             /* round-robin weight, >= 1 */
    int capacity_per_day;   /* 0: no limit */
    int assigned_today;     /* leads given since the day began (UTC) */
    int64_t current;        /* round-robin state */
} routing_member_t;

/* The members of one tier that are active now. */
typedef struct {
    routing_member_t *members; /* owned array */
    size_t count;              /* members in use */
    size_t capacity;           /* allocated */
} routing_pool_t;

/* A human-readable explanation being built. */
typedef struct {
    char text[ROUTING_TRACE_SIZE]; /* NUL-terminated */
    size_t length;                 /* bytes used */
} routing_trace_t;

/* The schema of var/routing.db, in order (routing_schema.c). */
extern const char *const routing_migrations[];
extern const size_t routing_migration_count;

/* --- routing_staff.c: the directory copy and the round-robin pools --- */

/* Stores or replaces a member from a StaffUpdated event. 0 or -1. */
int routing_staff_apply(cv_store_t *store, const Conveyor__StaffMember *member,
                        int64_t now_ms);

/* Loads the active members with role `role` and tier `tier` (any tier
 * when negative) with their round-robin state for `pool` and their
 * assignments since `day_start_ms`, ordered by staff id. 0 or -1
 * (logged). */
int routing_pool_load(cv_store_t *store, const char *pool, int tier,
                      const char *role, int64_t day_start_ms,
                      routing_pool_t *out);

/* Writes back the round-robin state of `pool`'s members. 0 or -1. */
int routing_pool_save(cv_store_t *store, const char *pool,
                      const routing_pool_t *members);

/* Frees the members; the pool may be loaded again. NULL-safe. */
void routing_pool_clear(routing_pool_t *pool);

/* --- routing_assign.c: one lead to one person --- */

/* Appends printf-style text; too long a trace ends in "...". */
void routing_trace_add(routing_trace_t *trace, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends plain text or a number, truncating as routing_trace_add. */
void routing_trace_put(routing_trace_t *trace, const char *text);
void routing_trace_int(routing_trace_t *trace, int value);

/* Who may get a lead, and for what. */
typedef struct {
    const char *pool;        /* rotation: "tier2-inbound", "segment-c" ... */
    const char *role;        /* staff role of the pool's members */
    int tier;                /* their tier, -1 for any */
    const char *kind;        /* for the trace: "inbound", "segment C" */
    const char *strategy;    /* LeadAssigned.strategy */
    const char *assign_role; /* LeadAssigned.role: NULL for the owner,
                                "reviewer" for one who joins */
    const char *task_kind;   /* LeadAssigned.task_kind, NULL: first
                                contact */
} routing_target_t;

/* Tries to give the scored lead to a member of `target`'s pool now,
 * inside the open transaction; on success stores the assignment (an
 * owner's replaces the lead's previous one) and emits LeadAssigned (with
 * `trace_id` when not NULL). *assigned says whether it happened; `why`
 * explains the decision either way (appended to). 0, or -1 on a database
 * error (logged). */
int routing_assign_to(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                      const routing_target_t *target, const char *trace_id,
                      bool *assigned, routing_trace_t *why);

/* Emits LeadAssigned of `scored`'s lead to `m` for `target`, with the
 * rule trace. 0 or -1. */
int routing_emit_assigned(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const routing_member_t *m, int tier,
                          const routing_target_t *target, const char *trace,
                          const char *trace_id);

/* Routes a lead nobody owns yet: a segment C lead to a junior when one is
 * available, else to tier 2 sales; then a segment A lead gets the head of
 * sales as reviewer. Arguments as routing_assign_to. */
int routing_assign(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                   const char *trace_id, bool *assigned, routing_trace_t *why);

/* True when the lead already has an owner here; -1 on error. */
int routing_is_assigned(cv_store_t *store, const char *lead_id);

/* --- routing_pending.c: leads waiting for somebody --- */

/* Keeps the lead in the pending table (its first arrival fixes its place
 * in the queue; a newer score replaces the stored one). *fresh is true when
 * it was not waiting before. 0 or -1. */
int routing_pending_put(cv_store_t *store, const Conveyor__LeadScored *scored,
                        int tier, const char *reason, const char *trace_id,
                        bool *fresh);

/* Removes a lead from the queue (when it was assigned or rejected). */
int routing_pending_remove(cv_store_t *store, const char *lead_id);

/* Tries every waiting lead in arrival order; stops at the first that still
 * finds nobody. 0 or -1. */
int routing_pending_retry(cv_bus_t *bus);

/* Leads waiting now, or -1. */
int64_t routing_pending_count(cv_store_t *store);

/* --- routing_segment.c: segments decide too --- */

/* The head of sales joins a segment A lead as reviewer (once per lead);
 * *joined tells whether one has (now or before). 0 or -1. */
int routing_segment_review(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                           const char *trace_id, bool *joined);

/* A re-score of a lead that has an owner here: keeps the new score with
 * the assignment and acts on a segment change. 0 or -1. */
int routing_segment_moved(cv_bus_t *bus, const Conveyor__LeadScored *scored,
                          const char *trace_id);

/* Records what a segment change did. 0 or -1. */
int routing_segment_record(cv_store_t *store, const char *lead_id,
                           const char *old_segment, const char *new_segment,
                           const char *action, const char *staff_id,
                           const char *trace);

/* --- routing_handler.c --- */

/* The bus handler (cv_bus_handler_fn). */
int routing_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

#endif

/* routing: the stage that decides who works each scored lead.
 *
 * It keeps its own copy of the staff directory (from StaffUpdated), and
 * gives each LeadScored lead to an active member of the right tier by
 * smooth weighted round-robin (common/cv_routing_rr.h), whose state lives
 * in var/routing.db so a restart continues the same rotation. A lead is
 * assigned once (its id is the key). When nobody can take it, it waits in
 * the pending table and is retried, in arrival order, whenever the
 * directory changes. Knocked-out leads are not given to sales. */
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

/* Loads the active members of `tier` (role `role` or that tier number)
 * with their round-robin state for `pool` and their assignments since
 * `day_start_ms`, ordered by staff id. 0 or -1 (logged). */
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

/* Tries to assign the scored lead now, inside the open transaction; on
 * success stores the assignment and emits LeadAssigned (with `trace_id`
 * when not NULL). *assigned says whether it happened; `why` explains the
 * decision either way. 0, or -1 on a database error (logged). */
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

/* --- routing_handler.c --- */

/* The bus handler (cv_bus_handler_fn). */
int routing_handle(void *arg, cv_bus_t *bus, const Conveyor__Envelope *event);

#endif

/* cv_routing_rr: smooth weighted round-robin (nginx's algorithm).
 *
 * Each pick adds every available member's weight to its `current`, chooses
 * the member with the largest `current` (the first in array order on a
 * tie) and takes the sum of the available weights off the chosen one.
 * Over any run of sum(weights) picks among a fixed set, each member is
 * chosen exactly `weight` times, spread out rather than in bursts (weights
 * 5,1,1 give a a b a c a a).
 *
 * The state is the `current` of each member, owned by the caller: persist
 * it to continue exactly after a restart. A member that joins starts at 0;
 * one that leaves simply is not passed any more; an unavailable one keeps
 * its `current` untouched. The picking functions are pure.
 *
 * The store half keeps that state and each person's daily load in the
 * caller's SQLite file (tables in cv_routing_rr_schema; routing's schema
 * has them), and says who is available now: active, inside their working
 * hours in their own IANA zone on a business day (cv_workhours,
 * cv_calendar_default), and under `capacity_per_day` for their local day.
 * Those run inside the caller's open transaction, so a pick, the state it
 * leaves and the load it adds commit together with the assignment: a
 * burst of leads or a restart continues the same rotation exactly.
 *
 * A pool's whole state is one row (rr_pools: "current id" lines), so a
 * pick reads one row and writes one row whatever the pool's size: it runs
 * for every lead routed. */
#ifndef CV_ROUTING_RR_H
#define CV_ROUTING_RR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_store.h"
#include "cv_workhours.h"

typedef struct {
    const char *id;  /* the member's id (not owned) */
    int weight;      /* share of the picks; values < 1 count as 1 */
    int64_t current; /* the algorithm's state, in and out */
    bool available;  /* false: skipped by this pick, state kept */
} cv_routing_rr_member_t;

/* Picks one available member and updates the `current` of the available
 * ones. Returns its index, or -1 when none is available. */
int cv_routing_rr_pick(cv_routing_rr_member_t *members, size_t count);

/* The weight a member counts with (at least 1). */
int cv_routing_rr_weight(const cv_routing_rr_member_t *member);

/* --- the store half --- */

/* CREATE TABLE IF NOT EXISTS statements of the two tables used below:
 * rr_pools (pool, state: one "current staff_id" line per member ever
 * seen in the pool) and rr_day_load (staff_id, day, count). */
extern const char cv_routing_rr_schema[];

/* Reads the `current` of each member of `pool` (0 for one never seen).
 * 0 or -1 (logged). */
int cv_routing_rr_load(cv_store_t *store, const char *pool,
                       cv_routing_rr_member_t *members, size_t count);

/* Load, pick, save: the whole of one round-robin decision over `pool`.
 * Members of the pool not passed keep their `current` (one who comes back
 * resumes). Returns the index picked, -1 when none is available, -2 on a
 * database error (logged). */
int cv_routing_rr_choose(cv_store_t *store, const char *pool,
                         cv_routing_rr_member_t *members, size_t count);

/* Who a person is, for availability. Texts may be NULL; not owned. */
typedef struct {
    const char *staff_id;           /* directory id */
    bool active;                    /* false: on leave or gone */
    const char *timezone;           /* IANA; NULL/"": the default zone */
    const char *working_hours_json; /* NULL/"": always working */
    const char *team;               /* for the calendar's team overrides */
    int capacity_per_day;           /* 0: no cap */
    const cv_workhours_t *hours;    /* working_hours_json parsed already
                                       (a caller's cache), or NULL: parse
                                       the JSON here */
} cv_routing_person_t;

/* Whether the person can take a lead now, and why not. */
typedef struct {
    bool available; /* may get a lead now */
    char day[32];   /* their local date now, "YYYY-MM-DD" */
    int load;       /* leads given to them on that local date; counted
                       only for a person with a cap (0 otherwise) */
    char why[200];  /* "" when available, else e.g. "off shift (Asia/Tomsk
                       19:05)", "on leave", "at capacity 20/20" */
} cv_routing_availability_t;

/* Fills `out` for `person` at `now_ms`; `default_tz` is used when the
 * person has no zone (and when theirs is unknown, which `why` notes).
 * 0, or -1 on a database error (logged). */
int cv_routing_rr_availability(cv_store_t *store,
                               const cv_routing_person_t *person,
                               const char *default_tz, int64_t now_ms,
                               cv_routing_availability_t *out);

/* Counts one more lead for the person on their local `day`. 0 or -1. */
int cv_routing_rr_day_add(cv_store_t *store, const char *staff_id,
                          const char *day);

#endif

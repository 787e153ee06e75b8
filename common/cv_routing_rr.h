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
 * its `current` untouched. Pure functions, no I/O. */
#ifndef CV_ROUTING_RR_H
#define CV_ROUTING_RR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif

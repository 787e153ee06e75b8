/* cv_routing_rr: smooth weighted round-robin. */
#include "cv_routing_rr.h"

int cv_routing_rr_weight(const cv_routing_rr_member_t *member)
{
    return member->weight < 1 ? 1 : member->weight;
}

int cv_routing_rr_pick(cv_routing_rr_member_t *members, size_t count)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        cv_routing_rr_member_t *m = &members[i];
        if (!m->available)
            continue;
        int w = cv_routing_rr_weight(m);
        m->current += w;
        total += w;
        if (best < 0 || m->current > members[best].current)
            best = (int)i;
    }
    if (best >= 0)
        members[best].current -= total;
    return best;
}

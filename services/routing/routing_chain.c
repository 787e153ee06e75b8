/* routing_chain: the rule chain asked for one lead, for real or (explain)
 * dry, and the VIP steps once a lead has an owner. */
#include "routing.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_clock.h"
#include "cv_log.h"

/* A text member of extra, or NULL. */
static const char *extra_text(json_t *extra, const char *key)
{
    json_t *v = json_object_get(extra, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* extra.federal as true, "true", "yes", "1" or 1. */
static bool extra_flag(json_t *extra, const char *key)
{
    json_t *v = json_object_get(extra, key);
    if (json_is_true(v))
        return true;
    if (json_is_integer(v))
        return json_integer_value(v) != 0;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    return s != NULL && (strcasecmp(s, "true") == 0 ||
                         strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0);
}

void routing_lead_view(const Conveyor__Lead *lead, const Conveyor__Score *score,
                       cv_routing_lead_t *view, void **extra_out)
{
    memset(view, 0, sizeof(*view));
    json_t *extra = NULL;
    if (extra_out != NULL && lead->extra_json != NULL &&
        lead->extra_json[0] != '\0') {
        extra = json_loads(lead->extra_json, 0, NULL);
        if (!json_is_object(extra)) {
            json_decref(extra);
            extra = NULL;
        }
    }
    view->channel = lead->channel;
    view->source = lead->source;
    view->region = lead->region;
    view->industry = lead->industry;
    view->product = lead->product;
    view->segment = score != NULL ? score->segment : NULL;
    view->tier = cv_routing_lead_tier(lead->channel, lead->previous_result);
    view->has_budget = lead->has_budget;
    view->budget = lead->budget;
    view->previous_owner = lead->previous_owner;
    view->federal = extra_flag(extra, "federal");
    view->brand = extra_text(extra, "brand");
    view->operating_region = extra_text(extra, "operating_region");
    view->registered_region = extra_text(extra, "registered_region");
    if (extra_out != NULL)
        *extra_out = extra;
}

/* What one rule did. */
typedef enum {
    STEP_SKIP,    /* did not match, or nobody available: next rule */
    STEP_DECIDED, /* out->outcome says what */
    STEP_ERROR,   /* database error */
} step_t;

static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= size)
        n = size - 1; /* cut as snprintf would */
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The pool a rule names, narrowed by its strategy. false (trace written)
 * when the lead lacks what the strategy needs. */
static bool rule_pool(const cv_routing_rule_t *rule,
                      const cv_routing_lead_t *view,
                      const routing_route_opts_t *opts, char *key,
                      size_t key_size, routing_pool_spec_t *spec,
                      routing_trace_t *why)
{
    memset(spec, 0, sizeof(*spec));
    spec->role = rule->role;
    spec->tier = rule->tier;
    spec->team = rule->team;
    spec->staff = &rule->staff;
    spec->exclude = opts->exclude;
    const char *value = NULL;
    const char *list = NULL;
    const char *what = NULL;
    switch (rule->strategy) {
    case CV_ROUTING_BY_CHANNEL:
        list = "channels", value = view->channel, what = "channel";
        break;
    case CV_ROUTING_BY_INDUSTRY:
        list = "industries", value = view->industry, what = "industry";
        break;
    case CV_ROUTING_BY_PRODUCT:
        list = "products", value = view->product, what = "product";
        break;
    case CV_ROUTING_BY_REGION: {
        const char *team = NULL, *region = NULL;
        int step = cv_routing_region_key(rule, view, &team, &region);
        if (step < 0) {
            routing_trace_put(why, "the lead has no region, federal flag or "
                                   "franchised brand");
            return false;
        }
        routing_trace_add(
            why, "by %s '%s' -> ",
            cv_routing_region_step_name((cv_routing_region_step_t)step),
            team != NULL
                ? (step == CV_ROUTING_REGION_BRAND ? view->brand : "federal")
                : region);
        if (team != NULL) {
            spec->team = team;
            routing_trace_put(why, "team ");
            routing_trace_put(why, team);
            routing_trace_put(why, "; ");
            snprintf(key, key_size, "rule:%s:team:%s", rule->name, team);
            spec->key = key;
            return true;
        }
        list = "regions", value = region, what = "region";
        routing_trace_put(why, "owners of ");
        routing_trace_put(why, region);
        routing_trace_put(why, "; ");
        snprintf(key, key_size, "rule:%s:region:%s", rule->name, region);
        spec->key = key;
        spec->owns_list = list;
        spec->owns_value = value;
        return true;
    }
    default:
        break;
    }
    if (list != NULL) {
        if (value == NULL || value[0] == '\0') {
            routing_trace_add(why, "the lead has no %s", what);
            return false;
        }
        spec->owns_list = list;
        spec->owns_value = value;
        /* (pieces, not printf: this runs for every lead) */
        routing_trace_put(why, "owners of ");
        routing_trace_put(why, what);
        routing_trace_put(why, " '");
        routing_trace_put(why, value);
        routing_trace_put(why, "'; ");
        snprintf(key, key_size, "rule:%s:%s:%s", rule->name, what, value);
        for (char *p = key; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    } else {
        snprintf(key, key_size, "rule:%s", rule->name);
    }
    spec->key = key;
    return true;
}

/* Describes the pool filters, as "pool role sales, tier 2". */
static void trace_spec(const cv_routing_rule_t *rule, routing_trace_t *why)
{
    /* pieces, not printf: this runs for every lead */
    routing_trace_put(why, "pool");
    bool any = true;
    if (rule->role != NULL) {
        routing_trace_put(why, " role ");
        routing_trace_put(why, rule->role);
        any = false;
    }
    if (rule->tier > 0) {
        routing_trace_put(why, any ? " tier " : ", tier ");
        routing_trace_int(why, rule->tier);
        any = false;
    }
    if (rule->team != NULL) {
        routing_trace_put(why, any ? " team " : ", team ");
        routing_trace_put(why, rule->team);
        any = false;
    }
    if (rule->staff.count > 0) {
        routing_trace_put(why, any ? " " : ", ");
        routing_trace_int(why, (long long)rule->staff.count);
        routing_trace_put(why, " named");
        any = false;
    }
    if (any)
        routing_trace_put(why, " everyone");
    routing_trace_put(why, ": ");
}

static step_t give_owner(routing_t *self, cv_bus_t *bus,
                         const Conveyor__LeadScored *scored,
                         const cv_routing_rule_t *rule,
                         const routing_route_opts_t *opts,
                         const cv_routing_lead_t *view,
                         const routing_member_t *m, routing_decision_t *out)
{
    (void)self;
    out->outcome = ROUTING_ASSIGNED;
    copy_text(out->staff_id, sizeof(out->staff_id), m->staff_id);
    copy_text(out->staff_name, sizeof(out->staff_name), m->name);
    if (opts->dry)
        return STEP_DECIDED;
    routing_join_t join = {
        .strategy = opts->strategy != NULL ? opts->strategy : out->strategy,
        .rule = rule->name,
        .task_kind = rule->task_kind,
        .tier = view->tier,
        .no_offer = opts->no_offer,
        .arrived = opts->arrived,
    };
    return routing_give(bus, scored, m, &join, out->trace.text) == 0
               ? STEP_DECIDED
               : STEP_ERROR;
}

/* previous_owner: the returning client's last owner, when available. */
static step_t try_previous(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                           const Conveyor__LeadScored *scored,
                           const cv_routing_rule_t *rule,
                           const routing_route_opts_t *opts,
                           const cv_routing_lead_t *view, int64_t now,
                           routing_decision_t *out)
{
    routing_trace_t *why = &out->trace;
    const char *prev = view->previous_owner;
    if (opts->exclude != NULL && strcmp(opts->exclude, prev) == 0) {
        routing_trace_add(why, "previous owner %s is the one it leaves", prev);
        return STEP_SKIP;
    }
    routing_member_t m;
    int rc = routing_member_load(store, prev, self->default_tz, now, &m);
    if (rc < 0)
        return STEP_ERROR;
    if (rc == 1) {
        routing_trace_add(why, "previous owner %s is not in the directory",
                          prev);
        return STEP_SKIP;
    }
    step_t step = STEP_SKIP;
    if (!m.avail.available) {
        routing_trace_add(why, "previous owner %s %s", prev, m.avail.why);
        goto out;
    }
    routing_trace_add(why, "previous owner %s is available; chose %s", prev,
                      prev);
    step = give_owner(self, bus, scored, rule, opts, view, &m, out);
out:
    routing_member_clear(&m);
    return step;
}

/* first_come: an offer to every available member. */
static step_t try_offer(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                        const Conveyor__LeadScored *scored,
                        const cv_routing_rule_t *rule, size_t index,
                        const routing_pool_t *pool, int64_t now,
                        const routing_route_opts_t *opts,
                        routing_decision_t *out)
{
    routing_trace_t *why = &out->trace;
    routing_pool_describe(pool, why);
    const char *ids[256];
    size_t n = 0;
    size_t used = 0;
    out->offered[0] = '\0';
    for (size_t i = 0; i < pool->count && n < 256; i++) {
        const routing_member_t *m = &pool->members[i];
        if (!m->avail.available)
            continue;
        size_t len = strlen(m->staff_id);
        if (used + len + 2 > sizeof(out->offered))
            break;
        if (used > 0)
            out->offered[used++] = ',';
        memcpy(out->offered + used, m->staff_id, len + 1);
        used += len;
        ids[n++] = m->staff_id;
    }
    if (n == 0) {
        routing_trace_put(why, "; nobody available to offer it to");
        return STEP_SKIP;
    }
    int minutes = rule->claim_minutes > 0 ? rule->claim_minutes
                                          : self->first_come_minutes;
    out->expires_at = now + (int64_t)minutes * 60000;
    char until[40];
    cv_clock_format(out->expires_at, until, sizeof(until));
    routing_trace_add(why, "; offered to %zu, the first claim wins, until %s",
                      n, until);
    out->outcome = ROUTING_OFFERED;
    if (opts->dry)
        return STEP_DECIDED;
    const char *lead_id = scored->lead->lead_id;
    if (routing_offer_put(store, lead_id, "first_come", rule->name, index,
                          out->offered, out->expires_at, why->text) != 0)
        return STEP_ERROR;
    Conveyor__LeadOffered offer = CONVEYOR__LEAD_OFFERED__INIT;
    offer.lead_id = (char *)lead_id;
    offer.staff_ids = (char **)ids;
    offer.n_staff_ids = n;
    offer.pool = (char *)out->offered;
    offer.rule = (char *)rule->name;
    offer.has_expires_at = true;
    offer.expires_at = out->expires_at;
    offer.lead = scored->lead;
    offer.score = scored->score;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_OFFERED;
    env.lead_offered = &offer;
    if (cv_bus_emit(bus, &env, "console", "followup-scheduler", NULL) != 0)
        return STEP_ERROR;
    cv_log_info("lead '%s' offered to %s until %s", lead_id, out->offered,
                until);
    return STEP_DECIDED;
}

/* manual: a task for one available head of sales. */
static step_t try_manual(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                         const Conveyor__LeadScored *scored,
                         const cv_routing_rule_t *rule, size_t index,
                         const routing_pool_spec_t *spec, routing_pool_t *pool,
                         const routing_route_opts_t *opts,
                         const cv_routing_lead_t *view, routing_decision_t *out)
{
    (void)self;
    routing_trace_t *why = &out->trace;
    int chosen = routing_pool_pick(store, spec, pool, opts->dry, why);
    if (chosen == -2)
        return STEP_ERROR;
    if (chosen < 0)
        return STEP_SKIP;
    const routing_member_t *head = &pool->members[chosen];
    routing_trace_add(why, "; %s assigns it by hand", head->staff_id);
    out->outcome = ROUTING_MANUAL;
    copy_text(out->staff_id, sizeof(out->staff_id), head->staff_id);
    copy_text(out->staff_name, sizeof(out->staff_name), head->name);
    if (opts->dry)
        return STEP_DECIDED;
    routing_join_t join = {
        .strategy = "manual",
        .rule = rule->name,
        .role = "reviewer",
        .task_kind = "manual_assign",
        .tier = view->tier,
    };
    if (routing_offer_put(store, scored->lead->lead_id, "manual", rule->name,
                          index, head->staff_id, 0, why->text) != 0 ||
        routing_emit_assigned(bus, scored, head, &join, why->text) != 0)
        return STEP_ERROR;
    return STEP_DECIDED;
}

static step_t try_rule(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                       const Conveyor__LeadScored *scored,
                       const cv_routing_rule_t *rule, size_t index,
                       const routing_route_opts_t *opts,
                       const cv_routing_lead_t *view, int64_t now,
                       routing_decision_t *out)
{
    routing_trace_t *why = &out->trace;
    char reason[200];
    if (why->length > 0)
        routing_trace_put(why, " | ");
    /* "rule 2 'name'", in pieces: every rule tried writes one */
    routing_trace_put(why, "rule ");
    routing_trace_int(why, (long long)index + 1);
    routing_trace_put(why, " '");
    routing_trace_put(why, rule->name);
    routing_trace_put(why, "'");
    if (!cv_routing_rule_matches(rule, view, reason, sizeof(reason))) {
        routing_trace_put(why, ": ");
        routing_trace_put(why, reason);
        return STEP_SKIP;
    }
    routing_trace_put(why, " (");
    routing_trace_put(why, cv_routing_strategy_name(rule->strategy));
    routing_trace_put(why, "): ");
    copy_text(out->rule, sizeof(out->rule), rule->name);
    out->strategy = cv_routing_strategy_name(rule->strategy);
    if (rule->strategy == CV_ROUTING_PREVIOUS_OWNER)
        return try_previous(self, store, bus, scored, rule, opts, view, now,
                            out);
    char key[400];
    routing_pool_spec_t spec;
    if (!rule_pool(rule, view, opts, key, sizeof(key), &spec, why))
        return STEP_SKIP;
    trace_spec(rule, why);
    routing_pool_t pool = {0};
    if (routing_pool_load(store, &spec, self->default_tz, now, &pool) != 0)
        return STEP_ERROR;
    step_t step;
    if (rule->strategy == CV_ROUTING_FIRST_COME) {
        step = try_offer(self, store, bus, scored, rule, index, &pool, now,
                         opts, out);
    } else if (rule->strategy == CV_ROUTING_MANUAL) {
        step = try_manual(self, store, bus, scored, rule, index, &spec, &pool,
                          opts, view, out);
    } else {
        int chosen = routing_pool_pick(store, &spec, &pool, opts->dry, why);
        if (chosen == -2)
            step = STEP_ERROR;
        else if (chosen < 0)
            step = STEP_SKIP;
        else
            step = give_owner(self, bus, scored, rule, opts, view,
                              &pool.members[chosen], out);
    }
    routing_pool_clear(&pool);
    return step;
}

int routing_route(routing_t *self, cv_store_t *store, cv_bus_t *bus,
                  const Conveyor__LeadScored *scored,
                  const routing_route_opts_t *opts, routing_decision_t *out)
{
    memset(out, 0, sizeof(*out));
    routing_trace_reset(&out->trace);
    out->outcome = ROUTING_NOBODY;
    const cv_routing_rules_t *rules = routing_rules_acquire(self);
    /* only by_region reads the lead's extra object: a chain without one
     * does not parse that JSON for every lead */
    bool needs_extra = false;
    for (size_t i = opts->first_rule; i < rules->rule_count; i++)
        if (rules->rules[i].strategy == CV_ROUTING_BY_REGION)
            needs_extra = true;
    cv_routing_lead_t view;
    void *extra = NULL;
    routing_lead_view(scored->lead, scored->score, &view,
                      needs_extra ? &extra : NULL);
    int64_t now = cv_clock_now_ms();
    int rc = 0;
    if (opts->exclude != NULL)
        routing_trace_add(&out->trace, "away from %s: ", opts->exclude);
    /* "tier %d, segment %s, chain v%s" in pieces (every lead) */
    routing_trace_put(&out->trace, "tier ");
    routing_trace_int(&out->trace, view.tier);
    routing_trace_put(&out->trace, ", segment ");
    routing_trace_put(&out->trace, view.segment ? view.segment : "?");
    routing_trace_put(&out->trace, ", chain v");
    routing_trace_put(&out->trace, rules->version);
    if (opts->first_rule > 0)
        routing_trace_add(&out->trace, " from rule %zu", opts->first_rule + 1);
    for (size_t i = opts->first_rule; i < rules->rule_count; i++) {
        step_t step = try_rule(self, store, bus, scored, &rules->rules[i], i,
                               opts, &view, now, out);
        if (step == STEP_ERROR) {
            rc = -1;
            break;
        }
        if (step == STEP_DECIDED)
            break;
        out->rule[0] = '\0';
        out->strategy = NULL;
    }
    if (rc == 0 && out->outcome == ROUTING_NOBODY)
        routing_trace_put(&out->trace, " | no rule placed the lead");
    routing_rules_release(self);
    json_decref(extra);
    return rc;
}

/* One available member of `role` joins the lead with a working_group
 * task (once per lead and role). */
static int working_group_join(routing_t *self, cv_bus_t *bus,
                              const Conveyor__LeadScored *scored,
                              const char *role, int tier)
{
    cv_store_t *store = cv_bus_store(bus);
    const char *lead_id = scored->lead->lead_id;
    char kind[120];
    snprintf(kind, sizeof(kind), "working_group:%s", role);
    int seen = routing_review_exists(store, lead_id, kind);
    if (seen != 0)
        return seen < 0 ? -1 : 0;
    char key[160];
    snprintf(key, sizeof(key), "working-group:%s", role);
    routing_pool_spec_t spec = {.key = key, .role = role};
    routing_pool_t pool = {0};
    routing_trace_t why;
    routing_trace_reset(&why);
    routing_trace_add(&why, "VIP lead (segment %s): working group, role %s: ",
                      scored->score->segment, role);
    if (routing_pool_load(store, &spec, self->default_tz, cv_clock_now_ms(),
                          &pool) != 0)
        return -1;
    int rc = -1;
    int chosen = routing_pool_pick(store, &spec, &pool, false, &why);
    if (chosen == -2)
        goto out;
    if (chosen < 0) {
        cv_log_info("lead '%s': no %s for the working group: %s", lead_id, role,
                    why.text);
        rc = 0;
        goto out;
    }
    routing_join_t join = {
        .strategy = "working_group",
        .role = "reviewer",
        .task_kind = "working_group",
        .tier = tier,
    };
    const routing_member_t *m = &pool.members[chosen];
    if (routing_emit_assigned(bus, scored, m, &join, why.text) != 0 ||
        routing_review_put(store, lead_id, kind, m->staff_id, why.text) != 0)
        goto out;
    rc = 0;
out:
    routing_pool_clear(&pool);
    return rc;
}

int routing_vip(routing_t *self, cv_bus_t *bus,
                const Conveyor__LeadScored *scored)
{
    const cv_routing_rules_t *rules = routing_rules_acquire(self);
    int rc = 0;
    const char *segment = scored->score ? scored->score->segment : NULL;
    if (!cv_routing_list_has(&rules->vip_segments, segment))
        goto out;
    bool joined = false;
    if (rules->vip_head_review &&
        routing_segment_review(bus, scored, &joined) != 0) {
        rc = -1;
        goto out;
    }
    int tier = cv_routing_lead_tier(scored->lead->channel,
                                    scored->lead->previous_result);
    for (size_t i = 0; i < rules->working_group.count; i++)
        if (working_group_join(self, bus, scored, rules->working_group.items[i],
                               tier) != 0) {
            rc = -1;
            goto out;
        }
out:
    routing_rules_release(self);
    return rc;
}

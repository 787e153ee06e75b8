/* Unit tests for cv_routing_rules: the routing chain from YAML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cv_routing_rules.h"

static cv_routing_rules_t *parse(const char *text, char *error, size_t size)
{
    return cv_routing_rules_parse("rules.yaml", text, strlen(text), error,
                                  size);
}

/* Parses text that must be refused and checks the message. */
static void refused(const char *text, const char *expected)
{
    char error[800];
    cv_routing_rules_t *rules = parse(text, error, sizeof(error));
    if (rules != NULL || strstr(error, expected) == NULL)
        fail_msg("wanted '%s', got '%s'", expected,
                 rules ? "(accepted)" : error);
    assert_null(rules);
}

/* The built-in chain is deploy/routing-rules.yaml, and it parses. */
static void test_builtin_is_the_deploy_file(void **state)
{
    (void)state;
    FILE *f = fopen("deploy/routing-rules.yaml", "rb");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_string_equal(cv_routing_rules_builtin_text(), text);
    const cv_routing_rules_t *rules = cv_routing_rules_builtin();
    assert_non_null(rules);
    assert_string_equal(rules->version, "1");
    assert_true(rules->rule_count >= 5);
    assert_string_equal(rules->rules[0].name, "returning-client");
    assert_int_equal(rules->rules[0].strategy, CV_ROUTING_PREVIOUS_OWNER);
    const cv_routing_rule_t *last = &rules->rules[rules->rule_count - 1];
    assert_string_equal(last->name, "inbound");
    assert_int_equal(last->strategy, CV_ROUTING_ROUND_ROBIN);
    assert_string_equal(last->role, "sales");
    assert_int_equal(last->tier, 2);
    assert_true(rules->vip_head_review);
    assert_int_equal(rules->working_group.count, 3);
    assert_string_equal(rules->working_group.items[2], "teamlead");
    assert_true(rules->reassign_inactive);
}

static const char chain_all[] =
    "version: \"2026-11\"\n"
    "reassign_inactive: false\n"
    "rules:\n"
    "  - name: conference-first-come\n"
    "    match:\n"
    "      source: [conference, expo]\n"
    "    strategy: first_come\n"
    "    pool: {role: sales, tier: 2}\n"
    "    claim_minutes: \"10\"\n"
    "  - name: big-deals-by-hand\n"
    "    match:\n"
    "      budget_min: \"5000000\"\n"
    "    strategy: manual\n"
    "  - name: social-owners\n"
    "    match: {channel: [social]}\n"
    "    strategy: by_channel\n"
    "    pool: {role: sales}\n"
    "  - name: industry-experts\n"
    "    strategy: by_industry\n"
    "  - name: product-experts\n"
    "    match: {product: [ERP, CRM]}\n"
    "    strategy: by_product\n"
    "  - name: regions\n"
    "    match:\n"
    "      tier: [2]\n"
    "      budget_max: \"4999999\"\n"
    "    strategy: by_region\n"
    "    federal_team: federal\n"
    "    brands:\n"
    "      - {brand: Teremok, team: franchise-teremok}\n"
    "  - name: everyone\n"
    "    strategy: round_robin\n"
    "    pool:\n"
    "      staff: [anna, boris]\n";

/* Every strategy, its settings, and the defaults a rule gets. */
static void test_every_strategy_parses(void **state)
{
    (void)state;
    char error[800];
    cv_routing_rules_t *rules = parse(chain_all, error, sizeof(error));
    if (rules == NULL)
        fail_msg("%s", error);
    assert_int_equal(rules->rule_count, 7);
    assert_false(rules->reassign_inactive);
    assert_false(rules->vip_head_review);
    const cv_routing_rule_t *r = rules->rules;
    assert_int_equal(r[0].strategy, CV_ROUTING_FIRST_COME);
    assert_int_equal(r[0].claim_minutes, 10);
    assert_int_equal(r[0].line, 4);
    assert_int_equal(r[1].strategy, CV_ROUTING_MANUAL);
    assert_string_equal(r[1].role, "head"); /* the head decides */
    assert_true(r[1].has_budget_min);
    assert_int_equal(r[2].strategy, CV_ROUTING_BY_CHANNEL);
    assert_int_equal(r[3].strategy, CV_ROUTING_BY_INDUSTRY);
    assert_int_equal(r[4].strategy, CV_ROUTING_BY_PRODUCT);
    assert_int_equal(r[5].strategy, CV_ROUTING_BY_REGION);
    assert_int_equal(r[5].precedence_count, CV_ROUTING_REGION_STEPS);
    assert_int_equal(r[5].precedence[0], CV_ROUTING_REGION_FEDERAL);
    assert_string_equal(r[5].brands[0].team, "franchise-teremok");
    assert_int_equal(r[6].staff.count, 2);
    cv_routing_rules_free(&rules);
    assert_null(rules);
}

/* Bad files are refused with the line and the reason. */
static void test_bad_files_name_line_and_reason(void **state)
{
    (void)state;
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robbin\n",
            "rules.yaml: line 4: unknown strategy 'round_robbin'");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "    pool: {role: sales, tier: \"4\"}\n",
            "line 5: 'tier': '4' is not a whole number from 1 to 3");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "  - name: a\n"
            "    strategy: manual\n",
            "line 5: rule name 'a' is used twice (first on line 3)");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "    claim_minutes: \"5\"\n",
            "line 5: claim_minutes is for first_come rules");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "    match: {segment: [D]}\n",
            "line 5: segment 'D' is not A, B or C");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "    colour: red\n",
            "line 5: unknown key 'colour'");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: by_region\n"
            "    region_precedence: [federal, region]\n",
            "line 5: the federal step needs federal_team");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: back\n"
            "    strategy: previous_owner\n"
            "    pool: {role: sales}\n",
            "line 5: previous_owner takes no pool");
    refused("version: \"1\"\n"
            "rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n"
            "    match: {budget_min: \"10\", budget_max: \"5\"}\n",
            "budget_max is below budget_min");
    refused("rules:\n"
            "  - name: a\n"
            "    strategy: round_robin\n",
            "'version' is required here");
    refused("", "the file is empty");
}

/* Matching: lists ignore ASCII case, tiers, budget bounds, returning. */
static void test_matching(void **state)
{
    (void)state;
    char error[800], why[200];
    cv_routing_rules_t *rules = parse(chain_all, error, sizeof(error));
    assert_non_null(rules);
    const cv_routing_rule_t *r = rules->rules;
    cv_routing_lead_t lead = {
        .channel = "web",
        .source = "Conference",
        .region = "Tomsk",
        .industry = "retail",
        .product = "crm",
        .segment = "B",
        .tier = 2,
        .has_budget = true,
        .budget = 1500000,
    };
    assert_true(cv_routing_rule_matches(&r[0], &lead, why, sizeof(why)));
    assert_false(cv_routing_rule_matches(&r[1], &lead, why, sizeof(why)));
    assert_string_equal(why, "budget 1500000 below 5000000");
    assert_false(cv_routing_rule_matches(&r[2], &lead, why, sizeof(why)));
    assert_string_equal(why, "channel 'web' not listed");
    /* a short buffer gets the reason cut, as snprintf cuts */
    char short_why[12];
    assert_false(cv_routing_rule_matches(&r[2], &lead, short_why,
                                         sizeof(short_why)));
    assert_string_equal(short_why, "channel 'we");
    assert_false(cv_routing_rule_matches(&r[2], &lead, NULL, 0));
    assert_true(cv_routing_rule_matches(&r[4], &lead, NULL, 0));
    assert_true(cv_routing_rule_matches(&r[5], &lead, NULL, 0));
    lead.tier = cv_routing_lead_tier("cold", NULL);
    assert_int_equal(lead.tier, 1);
    assert_false(cv_routing_rule_matches(&r[5], &lead, why, sizeof(why)));
    assert_string_equal(why, "tier 1 does not fit");
    assert_int_equal(cv_routing_lead_tier("web", "won"), 3);
    assert_int_equal(cv_routing_lead_tier("email", "lost"), 2);
    lead.has_budget = false;
    assert_false(cv_routing_rule_matches(&r[1], &lead, why, sizeof(why)));
    assert_string_equal(why, "no budget for the budget range");
    /* previous_owner rules want a returning client */
    const cv_routing_rules_t *builtin = cv_routing_rules_builtin();
    assert_false(
        cv_routing_rule_matches(&builtin->rules[0], &lead, why, sizeof(why)));
    assert_string_equal(why, "not a returning client");
    lead.previous_owner = "sales-anna";
    assert_true(cv_routing_rule_matches(&builtin->rules[0], &lead, NULL, 0));
    cv_routing_rules_free(&rules);
}

/* Region edge cases: a federal company goes to the federal team whatever
 * its region; a franchise to its brand's team; where it operates beats
 * where it is registered; an unknown brand falls back to the region. */
static void test_region_precedence(void **state)
{
    (void)state;
    char error[800];
    cv_routing_rules_t *rules = parse(chain_all, error, sizeof(error));
    assert_non_null(rules);
    const cv_routing_rule_t *regions = &rules->rules[5];
    const char *team, *region;
    cv_routing_lead_t lead = {
        .region = "Moscow",
        .registered_region = "Moscow",
        .operating_region = "Novosibirsk",
        .federal = true,
        .brand = "Teremok",
    };
    assert_int_equal(cv_routing_region_key(regions, &lead, &team, &region),
                     CV_ROUTING_REGION_FEDERAL);
    assert_string_equal(team, "federal");
    assert_null(region);
    lead.federal = false;
    assert_int_equal(cv_routing_region_key(regions, &lead, &team, &region),
                     CV_ROUTING_REGION_BRAND);
    assert_string_equal(team, "franchise-teremok");
    lead.brand = "Shokoladnitsa"; /* not franchised here */
    assert_int_equal(cv_routing_region_key(regions, &lead, &team, &region),
                     CV_ROUTING_REGION_OPERATING);
    assert_null(team);
    assert_string_equal(region, "Novosibirsk");
    lead.operating_region = NULL;
    lead.region = NULL;
    assert_int_equal(cv_routing_region_key(regions, &lead, &team, &region),
                     CV_ROUTING_REGION_REGISTERED);
    assert_string_equal(region, "Moscow");
    lead.registered_region = "";
    assert_int_equal(cv_routing_region_key(regions, &lead, &team, &region), -1);
    cv_routing_rules_free(&rules);

    /* a chain may put registered before operating */
    rules = parse("version: \"1\"\n"
                  "rules:\n"
                  "  - name: registered-first\n"
                  "    strategy: by_region\n"
                  "    region_precedence: [registered_region, "
                  "operating_region]\n",
                  error, sizeof(error));
    if (rules == NULL)
        fail_msg("%s", error);
    cv_routing_lead_t both = {.registered_region = "Kazan",
                              .operating_region = "Samara",
                              .federal = true};
    assert_int_equal(
        cv_routing_region_key(&rules->rules[0], &both, &team, &region),
        CV_ROUTING_REGION_REGISTERED);
    assert_string_equal(region, "Kazan");
    cv_routing_rules_free(&rules);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    char error[300];
    assert_null(cv_routing_rules_load("/nonexistent/routing.yaml", error,
                                      sizeof(error)));
    assert_non_null(strstr(error, "/nonexistent/routing.yaml: cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_is_the_deploy_file),
        cmocka_unit_test(test_every_strategy_parses),
        cmocka_unit_test(test_bad_files_name_line_and_reason),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_region_precedence),
        cmocka_unit_test(test_load_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cv_scoring: knock-out phase, 3 x 5 parameters, segments,
 * every rule kind, and people's scorecards over the rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cv_jsonw.h"
#include "cv_scoring.h"
#include "cv_scoring_card.h"

/* A lead that every automatic rule likes. */
static Conveyor__Lead good_lead(void)
{
    Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
    lead.lead_id = "lead_0123456789abcdef";
    lead.name = "Ivan Petrov";
    lead.company = "Romashka LLC";
    lead.phone = "+74951234567";
    lead.email = "ivan@romashka.ru";
    lead.message = "We need a CRM integration for 40 sales managers, with "
                   "telephony and reports, launch before March.";
    lead.channel = "phone";
    lead.region = "Moscow";
    lead.industry = "Retail";
    lead.has_budget = true;
    lead.budget = 1500000;
    lead.currency = "RUB";
    return lead;
}

static const cv_scoring_param_t *param(const cv_scoring_result_t *r,
                                       const char *name)
{
    int i = cv_scoring_param_index(name);
    assert_true(i >= 0);
    return &r->params[i];
}

static int score_value(const Conveyor__Lead *lead, const char *name,
                       cv_scoring_result_t *r)
{
    cv_scoring_score(cv_scoring_default_model(), lead, r);
    return param(r, name)->value;
}

static void test_segment_thresholds(void **state)
{
    (void)state;
    assert_string_equal(cv_scoring_model_segment(NULL, -15, false), "C");
    assert_string_equal(cv_scoring_model_segment(NULL, -10, false), "C");
    assert_string_equal(cv_scoring_model_segment(NULL, -9, false), "B");
    assert_string_equal(cv_scoring_model_segment(NULL, 0, false), "B");
    assert_string_equal(cv_scoring_model_segment(NULL, 9, false), "B");
    assert_string_equal(cv_scoring_model_segment(NULL, 10, false), "A");
    assert_string_equal(cv_scoring_model_segment(NULL, 15, false), "A");
    assert_string_equal(cv_scoring_model_segment(NULL, 15, true), "C");
}

/* Totals of -10, -9, +9, +10 reached by setting parameters by hand. */
static void test_recompute_thresholds(void **state)
{
    (void)state;
    static const struct {
        int total;           /* wanted total */
        const char *segment; /* expected segment */
    } cases[] = {{-10, "C"}, {-9, "B"}, {9, "B"}, {10, "A"}};
    Conveyor__Lead lead = good_lead();
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        cv_scoring_result_t r;
        cv_scoring_score(NULL, &lead, &r);
        int sign = cases[c].total < 0 ? -1 : 1;
        int n = abs(cases[c].total);
        for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++)
            r.params[i].value = i < n ? sign : 0;
        cv_scoring_recompute(&r);
        assert_int_equal(r.total, cases[c].total);
        assert_string_equal(r.segment, cases[c].segment);
    }
}

static void test_good_lead(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    cv_scoring_score(cv_scoring_default_model(), &lead, &r);
    assert_false(r.knocked_out);
    assert_string_equal(r.knockout_reason, "");
    assert_string_equal(r.model_version, "default-1");
    assert_int_equal(param(&r, "budget")->value, 1);
    assert_int_equal(param(&r, "clarity")->value, 1);
    assert_int_equal(param(&r, "industry_experience")->value, 1);
    assert_int_equal(param(&r, "geography")->value, 1);
    assert_int_equal(param(&r, "digital_literacy")->value, 1);
    assert_int_equal(param(&r, "brief_quality")->value, 1);
    assert_int_equal(param(&r, "responsiveness")->value, 1);
    assert_int_equal(param(&r, "volume")->value, 0);
    assert_string_equal(param(&r, "dm_access")->reason,
                        "not judged yet: set after the first call");
    assert_int_equal(r.total, 7);
    assert_string_equal(r.segment, "B");
    int per_block[3] = {0, 0, 0};
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++) {
        assert_non_null(r.params[i].name);
        assert_string_equal(r.params[i].name, cv_scoring_param_name(i));
        assert_true(strncmp(r.params[i].source, "auto:", 5) == 0);
        assert_true(strlen(r.params[i].reason) > 0);
        if (strcmp(r.params[i].block, "request") == 0)
            per_block[0]++;
        else if (strcmp(r.params[i].block, "fit") == 0)
            per_block[1]++;
        else if (strcmp(r.params[i].block, "communication") == 0)
            per_block[2]++;
    }
    assert_int_equal(per_block[0], 5);
    assert_int_equal(per_block[1], 5);
    assert_int_equal(per_block[2], 5);
    assert_string_equal(param(&r, "budget")->source, "auto:budget_band");
}

static void test_budget_bands(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    lead.budget = 1000000;
    assert_int_equal(score_value(&lead, "budget", &r), 1);
    lead.budget = 999999;
    assert_int_equal(score_value(&lead, "budget", &r), 0);
    lead.budget = 100000;
    assert_int_equal(score_value(&lead, "budget", &r), 0);
    lead.budget = 99999;
    assert_int_equal(score_value(&lead, "budget", &r), -1);
    assert_false(r.knocked_out);
    lead.has_budget = false;
    assert_int_equal(score_value(&lead, "budget", &r), 0);
    assert_string_equal(param(&r, "budget")->reason, "budget not given");
    /* other currencies through the fixed rate table, said in the reason */
    lead.has_budget = true;
    lead.budget = 20000;
    lead.currency = "usd";
    assert_int_equal(score_value(&lead, "budget", &r), 1);
    assert_non_null(strstr(param(&r, "budget")->reason, "fixed rate"));
    assert_non_null(strstr(param(&r, "budget")->reason, "1800000 RUB"));
    lead.budget = 500;
    lead.currency = "EUR";
    assert_int_equal(score_value(&lead, "budget", &r), -1);
    lead.currency = "XYZ";
    assert_int_equal(score_value(&lead, "budget", &r), 0);
    assert_false(r.knocked_out); /* unknown currency: not judged */
    assert_non_null(strstr(param(&r, "budget")->reason, "'XYZ'"));
}

/* Knock-out comes first and wins over any total: segment C, total kept. */
static void test_knockout_precedence(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t ok, ko;
    cv_scoring_score(NULL, &lead, &ok);
    lead.budget = 9999;
    cv_scoring_score(NULL, &lead, &ko);
    assert_true(ko.knocked_out);
    assert_string_equal(ko.segment, "C");
    assert_non_null(strstr(ko.knockout_reason, "below the minimum 10000"));
    /* budget itself is -1 now; everything else as before */
    assert_int_equal(ko.total, ok.total - 2);
    /* even a total of +15 stays C once knocked out */
    for (int i = 0; i < CV_SCORING_PARAM_COUNT; i++)
        ko.params[i].value = 1;
    cv_scoring_recompute(&ko);
    assert_int_equal(ko.total, 15);
    assert_string_equal(ko.segment, "C");
    /* the minimum itself passes */
    lead.budget = 10000;
    cv_scoring_score(NULL, &lead, &ko);
    assert_false(ko.knocked_out);
}

static void test_knockout_domain_and_spam(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    lead.email = "bot@x.mailinator.com";
    cv_scoring_score(NULL, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.segment, "C");
    assert_non_null(strstr(r.knockout_reason, "'mailinator.com'"));
    lead.email = "ivan@notmailinator.com";
    cv_scoring_score(NULL, &lead, &r);
    assert_false(r.knocked_out);
    lead.domain = "YOPMAIL.COM";
    cv_scoring_score(NULL, &lead, &r);
    assert_true(r.knocked_out);
    lead.domain = NULL;
    lead.message = "Лучшее КАЗИНО онлайн, заходите";
    cv_scoring_score(NULL, &lead, &r);
    assert_true(r.knocked_out);
    assert_non_null(strstr(r.knockout_reason, "spam marker 'казино'"));
    lead.message = "see http://a.example http://b.example http://c.example "
                   "https://d.example";
    cv_scoring_score(NULL, &lead, &r);
    assert_true(r.knocked_out);
    assert_non_null(strstr(r.knockout_reason, "4 links"));
    /* several reasons are all kept */
    lead.budget = 100;
    cv_scoring_score(NULL, &lead, &r);
    assert_non_null(strstr(r.knockout_reason, "budget"));
    assert_non_null(strstr(r.knockout_reason, "; spam"));
}

/* A lead intake's spam check refused is out before any rule, and its
 * reason says why; a rule's own knock-out reason is kept beside it. */
static void test_intake_spam_comes_first(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    lead.spam_reason = "honeypot field filled";
    cv_scoring_score(NULL, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.segment, "C");
    assert_string_equal(r.knockout_source, "auto:spam");
    assert_string_equal(r.knockout_reason, "spam: honeypot field filled");
    lead.has_budget = true;
    lead.budget = 100; /* below the minimum: a second reason */
    cv_scoring_score(NULL, &lead, &r);
    assert_string_equal(r.knockout_source, "auto:spam");
    assert_non_null(strstr(r.knockout_reason,
                           "spam: honeypot field filled; "));
    assert_non_null(strstr(r.knockout_reason, "budget"));
    lead.spam_reason = "";
    lead.budget = 1500000;
    cv_scoring_score(NULL, &lead, &r);
    assert_false(r.knocked_out);
}

static void test_clarity(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    char text[400];
    lead.message = NULL;
    assert_int_equal(score_value(&lead, "clarity", &r), -1);
    lead.message = "   \n ";
    assert_int_equal(score_value(&lead, "clarity", &r), -1);
    memset(text, 'x', 79);
    text[79] = '\0';
    lead.message = text;
    assert_int_equal(score_value(&lead, "clarity", &r), 0);
    memset(text, 'x', 80);
    text[80] = '\0';
    assert_int_equal(score_value(&lead, "clarity", &r), 1);
    /* characters, not bytes: 40 Cyrillic letters are 80 bytes */
    for (int i = 0; i < 80; i++)
        memcpy(text + 2 * i, "я", 2);
    text[160] = '\0';
    assert_int_equal(score_value(&lead, "clarity", &r), 1);
    text[80] = '\0';
    assert_int_equal(score_value(&lead, "clarity", &r), 0);
}

static void test_fit_rules(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    lead.industry = " IT ";
    assert_int_equal(score_value(&lead, "industry_experience", &r), 1);
    lead.industry = "Mining";
    assert_int_equal(score_value(&lead, "industry_experience", &r), 0);
    lead.industry = NULL;
    assert_int_equal(score_value(&lead, "industry_experience", &r), 0);
    lead.region = "МОСКВА";
    assert_int_equal(score_value(&lead, "geography", &r), 1);
    lead.region = "Paris";
    assert_int_equal(score_value(&lead, "geography", &r), -1);
    assert_string_equal(param(&r, "geography")->reason,
                        "region 'Paris' is not served");
    lead.region = "Moscowville";
    assert_int_equal(score_value(&lead, "geography", &r), -1);
    lead.region = "";
    assert_int_equal(score_value(&lead, "geography", &r), 0);
}

static void test_communication_rules(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 1);
    assert_string_equal(param(&r, "digital_literacy")->reason,
                        "gave an email address");
    lead.email = NULL;
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 0);
    assert_string_equal(param(&r, "digital_literacy")->reason,
                        "no email or telegram given");
    lead.telegram = "@ivan";
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 1);
    assert_string_equal(param(&r, "digital_literacy")->source,
                        "auto:contact_telegram");
    lead.email = "ivan@romashka.ru";
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 1);
    assert_string_equal(param(&r, "digital_literacy")->reason,
                        "gave email and telegram");
    lead.channel = "web";
    assert_int_equal(score_value(&lead, "responsiveness", &r), 0);
    assert_non_null(
        strstr(param(&r, "responsiveness")->reason, "not judged yet"));
    lead.channel = "phone";
    assert_int_equal(score_value(&lead, "responsiveness", &r), 1);
    assert_int_equal(score_value(&lead, "brief_quality", &r), 1);
    lead.company = NULL;
    assert_int_equal(score_value(&lead, "brief_quality", &r), 0);
    assert_string_equal(param(&r, "brief_quality")->reason,
                        "brief lacks company");
    lead.name = "  ";
    assert_int_equal(score_value(&lead, "brief_quality", &r), -1);
}

static void test_to_proto(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    lead.budget = 10;
    cv_scoring_result_t r;
    cv_scoring_score(NULL, &lead, &r);
    Conveyor__Score score;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(&r, &score, params, ptrs);
    size_t size = conveyor__score__get_packed_size(&score);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    conveyor__score__pack(&score, buf);
    Conveyor__Score *back = conveyor__score__unpack(NULL, size, buf);
    assert_non_null(back);
    assert_int_equal(back->n_params, 15);
    assert_int_equal(back->total, r.total);
    assert_string_equal(back->segment, "C");
    assert_true(back->knocked_out);
    assert_string_equal(back->knockout_reason, r.knockout_reason);
    assert_string_equal(back->model_version, "default-1");
    assert_string_equal(back->params[14]->name, "responsiveness");
    assert_string_equal(back->params[14]->block, "communication");
    conveyor__score__free_unpacked(back, NULL);
    free(buf);
    assert_int_equal(cv_scoring_param_index("nonsense"), -1);
    assert_null(cv_scoring_param_name(15));
}

/* ---- models of our own: every rule kind, thresholds, the chain ---- */

/* A whole model whose knock-out list, budget rules and geography rules
 * are the texts given (YAML at their indentation); the other parameters
 * have no rules. */
static cv_scoring_model_t *model_with(const char *segments,
                                      const char *knockout,
                                      const char *budget_rules,
                                      const char *geography_rules)
{
    static char text[16384];
    char error[700];
    snprintf(text, sizeof(text),
             "version: test-2\n"
             "%s"
             "currencies:\n"
             "  - {code: USD, rub: 90}\n"
             "knockout:\n%s"
             "blocks:\n"
             "  - name: request\n"
             "    parameters:\n"
             "      - name: budget\n"
             "        rules:\n%s"
             "      - name: volume\n"
             "      - name: profitability\n"
             "      - name: timeline\n"
             "      - name: clarity\n"
             "  - name: fit\n"
             "    parameters:\n"
             "      - name: positioning\n"
             "      - name: load\n"
             "      - name: industry_experience\n"
             "      - name: technologies\n"
             "      - name: geography\n"
             "        rules:\n%s"
             "  - name: communication\n"
             "    parameters:\n"
             "      - name: adequacy\n"
             "      - name: digital_literacy\n"
             "      - name: brief_quality\n"
             "      - name: dm_access\n"
             "      - name: responsiveness\n",
             segments, knockout, budget_rules, geography_rules);
    cv_scoring_model_t *m = cv_scoring_rules_parse(
        "test.yaml", text, strlen(text), error, sizeof(error));
    if (m == NULL)
        fail_msg("test model refused: %s\n%s", error, text);
    return m;
}

#define NO_RULES "          []\n"

/* INN blocklists and competitors knock out; their reasons say which. */
static void test_knockout_inn_and_competitor(void **state)
{
    (void)state;
    cv_scoring_model_t *m =
        model_with("",
                   "  - name: blocked_inn\n"
                   "    kind: blocked_inn\n"
                   "    list: ['7707083893', '500100732259']\n"
                   "    reason: \"INN {match} is on the blocklist\"\n"
                   "  - name: competitor\n"
                   "    kind: competitor\n"
                   "    list: [Bitrix Integrator, rivals.ru]\n"
                   "    reason: \"competitor '{match}' ({field})\"\n",
                   NO_RULES, NO_RULES);
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    cv_scoring_score(m, &lead, &r);
    assert_false(r.knocked_out);
    assert_string_equal(r.knockout_source, "");

    lead.inn = " 7707083893 ";
    cv_scoring_score(m, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.segment, "C");
    assert_string_equal(r.knockout_reason,
                        "INN 7707083893 is on the blocklist");
    assert_string_equal(r.knockout_source, "auto:blocked_inn");
    lead.inn = "770708389"; /* one digit short: another company */
    cv_scoring_score(m, &lead, &r);
    assert_false(r.knocked_out);

    lead.company = "ООО «Bitrix integrator Group»";
    cv_scoring_score(m, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.knockout_reason,
                        "competitor 'Bitrix Integrator' (company)");
    lead.company = "Romashka LLC";
    lead.email = "spy@sales.rivals.ru";
    cv_scoring_score(m, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.knockout_reason, "competitor 'rivals.ru' (email)");
    lead.email = "ivan@notrivals.ru";
    cv_scoring_score(m, &lead, &r);
    assert_false(r.knocked_out);
    /* both reasons are kept, the first rule is the source */
    lead.inn = "500100732259";
    lead.domain = "rivals.ru";
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(r.knockout_reason,
                        "INN 500100732259 is on the blocklist; "
                        "competitor 'rivals.ru' (domain)");
    assert_string_equal(r.knockout_source, "auto:blocked_inn");
    cv_scoring_rules_free(&m);
    assert_null(m);
}

/* A text with several spam markers names the first of them in the
 * rule's list, not the first in the text; case does not matter (Latin
 * or Cyrillic), and a marker too long to keep folded still matches. */
static void test_spam_markers_in_list_order(void **state)
{
    (void)state;
    cv_scoring_model_t *m = model_with(
        "",
        "  - name: spam_words\n"
        "    kind: spam_markers\n"
        "    fields: [name, message]\n"
        "    list:\n"
        "      - free money\n"
        "      - limited offer for the first hundred visitors of our "
        "partner site only\n"
        "      - casino\n"
        "      - ставки на спорт\n"
        "    reason: \"spam marker '{match}' in {field}\"\n",
        NO_RULES, NO_RULES);
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    cv_scoring_score(m, &lead, &r);
    assert_false(r.knocked_out);

    lead.message = "CASINO night tonight: Free Money for everyone";
    cv_scoring_score(m, &lead, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.knockout_reason,
                        "spam marker 'free money' in message");
    assert_string_equal(r.knockout_source, "auto:spam_words");

    lead.message = "Casino! LIMITED OFFER for the first hundred visitors "
                   "of our partner site only";
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(r.knockout_reason,
                        "spam marker 'limited offer for the first hundred "
                        "visitors of our partner site only' in message");

    lead.name = "Ставки На Спорт";
    lead.message = "ставки на спор"; /* one letter short */
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(r.knockout_reason,
                        "spam marker 'ставки на спорт' in name");
    lead.name = "Ivan";
    cv_scoring_score(m, &lead, &r);
    assert_false(r.knocked_out);
    cv_scoring_rules_free(&m);
}

/* Thresholds come from the model, and are exact at their edges. */
static void test_model_thresholds(void **state)
{
    (void)state;
    cv_scoring_model_t *m = model_with("segments: {c_max: -3, a_min: 4}\n",
                                       "  []\n", NO_RULES, NO_RULES);
    assert_string_equal(cv_scoring_model_segment(m, -3, false), "C");
    assert_string_equal(cv_scoring_model_segment(m, -2, false), "B");
    assert_string_equal(cv_scoring_model_segment(m, 3, false), "B");
    assert_string_equal(cv_scoring_model_segment(m, 4, false), "A");
    /* a score keeps its model's thresholds when people change it */
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    cv_scoring_score(m, &lead, &r);
    assert_int_equal(r.total, 0); /* no rules judge anything here */
    assert_string_equal(r.segment, "B");
    assert_string_equal(r.model_version, "test-2");
    for (int i = 0; i < 4; i++)
        r.params[i].value = 1;
    cv_scoring_recompute(&r);
    assert_string_equal(r.segment, "A");
    r.params[3].value = 0;
    cv_scoring_recompute(&r);
    assert_string_equal(r.segment, "B");
    cv_scoring_rules_free(&m);
}

/* A rule without an outcome for a case leaves it to the next rule; a
 * parameter no rule judges is 0 with the unjudged reason. */
static void test_rule_chain(void **state)
{
    (void)state;
    cv_scoring_model_t *m = model_with(
        "", "  []\n",
        "          - name: big_budget_only\n"
        "            kind: budget_bands\n"
        "            bands:\n"
        "              - {from_rub: 5000000, value: 1, reason: \"{rub} RUB "
        "is big\"}\n"
        "          - name: budget_in_dollars\n"
        "            kind: budget_bands\n"
        "            unknown_currency: {value: 0, reason: \"{currency}?\"}\n"
        "            bands:\n"
        "              - {from_rub: 0, value: -1, reason: \"small: "
        "{budget}\"}\n",
        "          - name: capital\n"
        "            kind: in_list\n"
        "            field: region\n"
        "            list: [Moscow]\n"
        "            listed: {value: 1, reason: \"{field} {value} listed\"}\n");
    Conveyor__Lead lead = good_lead();
    cv_scoring_result_t r;
    lead.budget = 6000000;
    cv_scoring_score(m, &lead, &r);
    assert_int_equal(param(&r, "budget")->value, 1);
    assert_string_equal(param(&r, "budget")->reason, "6000000 RUB is big");
    assert_string_equal(param(&r, "budget")->source, "auto:big_budget_only");
    lead.budget = 1500000; /* below the first rule's only band */
    cv_scoring_score(m, &lead, &r);
    assert_int_equal(param(&r, "budget")->value, -1);
    assert_string_equal(param(&r, "budget")->source, "auto:budget_in_dollars");
    assert_string_equal(param(&r, "budget")->reason, "small: 1500000 RUB");
    lead.currency = "XAU";
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(param(&r, "budget")->reason, "XAU?");
    lead.has_budget = false; /* no rule has a `missing` outcome */
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(param(&r, "budget")->source, "auto:not_judged");
    assert_string_equal(param(&r, "budget")->reason,
                        "not judged yet: set after the first call");
    assert_int_equal(score_value(&lead, "budget", &r), 0);

    cv_scoring_score(m, &lead, &r);
    assert_string_equal(param(&r, "geography")->reason, "region Moscow listed");
    lead.region = "Paris"; /* no `unlisted`: not judged */
    cv_scoring_score(m, &lead, &r);
    assert_string_equal(param(&r, "geography")->source, "auto:not_judged");
    cv_scoring_rules_free(&m);
}

/* ---- people over the rules ---- */

/* Two managers set parameters one after the other: the later value of a
 * parameter wins, the others stay, and each keeps who set it. */
static void test_two_people_latest_wins(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    lead.channel = "web"; /* auto total 6, segment B */
    cv_scoring_result_t before, after;
    cv_scoring_score(NULL, &lead, &before);
    assert_int_equal(before.total, 6);

    cv_scoring_card_t card = {0};
    const cv_scoring_card_value_t anna_says[] = {
        {"budget", -1}, {"dm_access", 1}, {"timeline", 1}};
    cv_scoring_card_change_t anna = {anna_says,    3, false, NULL, "sales-anna",
                                     1764000000000};
    assert_int_equal(cv_scoring_card_apply(&card, &anna), 0);
    const cv_scoring_card_value_t head_says[] = {
        {"budget", 1}, {"volume", 1}, {"positioning", 1}, {"adequacy", 1}};
    cv_scoring_card_change_t head = {head_says, 4,           false,
                                     NULL,      "head-nina", 1764000060000};
    assert_int_equal(cv_scoring_card_apply(&card, &head), 0);
    assert_int_equal(card.revision, 2);
    assert_int_equal(card.count, 6);

    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_card_manual(&card, &manual, storage);
    assert_int_equal(cv_scoring_score_manual(NULL, &lead, &manual, &after), 0);
    /* budget: the head's +1 over Anna's -1 */
    assert_int_equal(param(&after, "budget")->value, 1);
    assert_true(param(&after, "budget")->manual);
    assert_string_equal(param(&after, "budget")->source, "head-nina");
    assert_string_equal(param(&after, "budget")->reason,
                        "set by head-nina at 2025-11-24T16:01:00.000Z; "
                        "auto:budget_band said +1: budget 1500000 RUB at "
                        "or above 1000000 RUB");
    assert_string_equal(param(&after, "dm_access")->source, "sales-anna");
    assert_string_equal(param(&after, "timeline")->source, "sales-anna");
    assert_string_equal(param(&after, "adequacy")->source, "head-nina");
    /* a parameter nobody set keeps its rule */
    assert_string_equal(param(&after, "geography")->source,
                        "auto:served_region");
    assert_false(param(&after, "geography")->manual);
    /* 6 - 0 (budget stays +1) + dm_access + timeline + volume +
     * positioning + adequacy = 11: segment A */
    assert_int_equal(after.total, 11);
    assert_string_equal(after.segment, "A");
    assert_int_equal(after.revision, 2);

    /* the card survives the trip through its message */
    size_t size = 0;
    uint8_t *packed =
        cv_scoring_card_pack(&card, lead.lead_id, "sc_1", &head, &size);
    assert_non_null(packed);
    cv_scoring_card_t back;
    assert_int_equal(cv_scoring_card_unpack(packed, size, &back), 0);
    Conveyor__Scorecard *msg = conveyor__scorecard__unpack(NULL, size, packed);
    assert_non_null(msg);
    assert_int_equal(msg->n_changed, 4);
    assert_string_equal(msg->actor, "head-nina");
    cv_scoring_manual_from_proto(msg, &manual, storage);
    cv_scoring_result_t again;
    cv_scoring_score_manual(NULL, &lead, &manual, &again);
    assert_int_equal(again.total, after.total);
    assert_string_equal(again.params[0].reason, after.params[0].reason);
    conveyor__scorecard__free_unpacked(msg, NULL);
    free(packed);
    assert_int_equal(back.revision, 2);
    assert_int_equal(back.count, 6);
    assert_string_equal(back.params[0].name, "budget");
    assert_int_equal(back.params[0].value, 1);
    assert_string_equal(back.params[0].actor, "head-nina");

    /* bad changes leave the card as it was */
    const cv_scoring_card_value_t twice[] = {{"budget", 1}, {"budget", -1}};
    cv_scoring_card_change_t bad = {twice, 2, false, NULL, "x", 1};
    assert_int_equal(cv_scoring_card_apply(&card, &bad), -1);
    const cv_scoring_card_value_t two[] = {{"budget", 2}};
    bad.values = two;
    bad.count = 1;
    assert_int_equal(cv_scoring_card_apply(&card, &bad), -1);
    assert_int_equal(card.revision, 2);
    /* an override the model does not know is counted and left out */
    cv_scoring_override_t ghost = {"charisma", 1, "x", 1};
    cv_scoring_manual_t odd = {&ghost, 1, CV_SCORING_KNOCKOUT_RULES, NULL, NULL,
                               0,      1};
    assert_int_equal(cv_scoring_score_manual(NULL, &lead, &odd, &again), 1);
    assert_int_equal(again.total, before.total);
}

/* A person's knock-out wins over any total; lifting one undoes the
 * rules' knock-out and says what the rules had said. */
static void test_manual_knockout_precedence(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    cv_scoring_card_t card = {0};
    const cv_scoring_card_value_t all_good[] = {
        {"volume", 1},      {"profitability", 1}, {"timeline", 1},
        {"positioning", 1}, {"load", 1},          {"technologies", 1},
        {"adequacy", 1},    {"dm_access", 1}};
    cv_scoring_card_change_t up = {all_good,    8,
                                   true,        "works for a competitor",
                                   "head-nina", 1764000000000};
    assert_int_equal(cv_scoring_card_apply(&card, &up), 0);
    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_card_manual(&card, &manual, storage);
    cv_scoring_result_t r;
    cv_scoring_score_manual(NULL, &lead, &manual, &r);
    assert_int_equal(r.total, 15);
    assert_true(r.knocked_out);
    assert_string_equal(r.segment, "C");
    assert_string_equal(r.knockout_reason,
                        "works for a competitor (knocked out by head-nina)");
    assert_string_equal(r.knockout_source, "head-nina");

    /* lifted: the total decides again */
    cv_scoring_card_change_t lift = {NULL, 0,           true,
                                     NULL, "head-nina", 1764000100000};
    assert_int_equal(cv_scoring_card_apply(&card, &lift), 0);
    cv_scoring_card_manual(&card, &manual, storage);
    cv_scoring_score_manual(NULL, &lead, &manual, &r);
    assert_false(r.knocked_out);
    assert_string_equal(r.segment, "A");
    assert_string_equal(r.knockout_reason, "");
    assert_string_equal(r.knockout_source, "");

    /* the rules knock a spammy-looking lead out; a person who called
     * them lifts it, and the card shows what the rules said */
    lead.email = "ivan@yopmail.com";
    cv_scoring_score_manual(NULL, &lead, &manual, &r);
    assert_false(r.knocked_out);
    assert_string_equal(r.knockout_reason,
                        "lifted by head-nina; the rules said: blacklisted "
                        "domain 'yopmail.com'");
    assert_string_equal(r.knockout_source, "head-nina");
    /* and a person's knock-out keeps the rules' reasons beside it */
    cv_scoring_card_change_t out = {
        NULL, 0, true, "asked not to call", "sales-anna", 1764000200000};
    assert_int_equal(cv_scoring_card_apply(&card, &out), 0);
    cv_scoring_card_manual(&card, &manual, storage);
    cv_scoring_score_manual(NULL, &lead, &manual, &r);
    assert_true(r.knocked_out);
    assert_string_equal(r.knockout_reason,
                        "asked not to call (knocked out by sales-anna); the "
                        "rules say: blacklisted domain 'yopmail.com'");
    Conveyor__Score proto;
    Conveyor__ScoreParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScoreParam *ptrs[CV_SCORING_PARAM_COUNT];
    cv_scoring_to_proto(&r, &proto, params, ptrs);
    assert_string_equal(proto.knockout_source, "sales-anna");
    assert_true(proto.has_revision);
    assert_int_equal(proto.revision, 3);
}

/* A reason never ends inside a character, even when cut short. */
static void test_reason_cut_on_a_character(void **state)
{
    (void)state;
    Conveyor__Lead lead = good_lead();
    char region[600];
    for (int i = 0; i < 290; i++)
        memcpy(region + 2 * i, "ю", 2);
    region[580] = '\0';
    lead.region = region;
    cv_scoring_result_t r;
    cv_scoring_score(NULL, &lead, &r);
    const char *reason = param(&r, "geography")->reason;
    size_t n = strlen(reason);
    assert_true(n < CV_SCORING_REASON_SIZE);
    assert_true(strncmp(reason, "region '", 8) == 0);
    /* valid UTF-8 to the end: the JSON of the card takes it */
    for (size_t at = 0; at < n;) {
        size_t len =
            (unsigned char)reason[at] < 0x80
                ? 1
                : cv_jsonw_utf8_length((const unsigned char *)reason + at);
        assert_true(len > 0);
        at += len;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_thresholds),
        cmocka_unit_test(test_recompute_thresholds),
        cmocka_unit_test(test_good_lead),
        cmocka_unit_test(test_budget_bands),
        cmocka_unit_test(test_knockout_precedence),
        cmocka_unit_test(test_intake_spam_comes_first),
        cmocka_unit_test(test_knockout_domain_and_spam),
        cmocka_unit_test(test_clarity),
        cmocka_unit_test(test_fit_rules),
        cmocka_unit_test(test_communication_rules),
        cmocka_unit_test(test_to_proto),
        cmocka_unit_test(test_knockout_inn_and_competitor),
        cmocka_unit_test(test_spam_markers_in_list_order),
        cmocka_unit_test(test_model_thresholds),
        cmocka_unit_test(test_rule_chain),
        cmocka_unit_test(test_two_people_latest_wins),
        cmocka_unit_test(test_manual_knockout_precedence),
        cmocka_unit_test(test_reason_cut_on_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cv_scoring: knock-out phase, 3 x 5 parameters, segments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cv_scoring.h"

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
    assert_string_equal(cv_scoring_segment(-15, false), "C");
    assert_string_equal(cv_scoring_segment(-10, false), "C");
    assert_string_equal(cv_scoring_segment(-9, false), "B");
    assert_string_equal(cv_scoring_segment(0, false), "B");
    assert_string_equal(cv_scoring_segment(9, false), "B");
    assert_string_equal(cv_scoring_segment(10, false), "A");
    assert_string_equal(cv_scoring_segment(15, false), "A");
    assert_string_equal(cv_scoring_segment(15, true), "C");
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
    lead.email = NULL;
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 0);
    lead.telegram = "@ivan";
    assert_int_equal(score_value(&lead, "digital_literacy", &r), 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_thresholds),
        cmocka_unit_test(test_recompute_thresholds),
        cmocka_unit_test(test_good_lead),
        cmocka_unit_test(test_budget_bands),
        cmocka_unit_test(test_knockout_precedence),
        cmocka_unit_test(test_knockout_domain_and_spam),
        cmocka_unit_test(test_clarity),
        cmocka_unit_test(test_fit_rules),
        cmocka_unit_test(test_communication_rules),
        cmocka_unit_test(test_to_proto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

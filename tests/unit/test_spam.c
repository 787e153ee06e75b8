/* cv_spam: what form bots and list sellers send is caught, what people
 * write is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cv_spam.h"

static cv_spam_t *rules(void)
{
    cv_spam_t *spam = cv_spam_new("_honeypot", 3, "spam-seo.ru, @casino.example",
                                  "+7 999 000-00-00,8 (800) 000-00-01");
    assert_non_null(spam);
    return spam;
}

static void test_a_person_passes(void **state)
{
    (void)state;
    cv_spam_t *spam = rules();
    char reason[128];
    cv_spam_lead_t lead = {
        .honeypot_value = "",
        .message = "Здравствуйте! Нужна поставка 40 тонн арматуры, ТЗ на "
                   "https://stroy-invest.ru/tz.pdf, звоните после 14:00.",
        .email = "ivan.petrov@stroy-invest.ru",
        .phone = "+79123456789",
    };

    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 0);
    assert_string_equal(reason, "");
    cv_spam_destroy(&spam);
}

static void test_honeypot(void **state)
{
    (void)state;
    cv_spam_t *spam = rules();
    char reason[128];
    cv_spam_lead_t lead = {.honeypot_value = "http://bot.example",
                           .email = "a@b.ru"};

    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "honeypot field '_honeypot' filled");
    cv_spam_destroy(&spam);
}

static void test_link_density(void **state)
{
    (void)state;
    cv_spam_t *spam = rules();
    char reason[128];
    cv_spam_lead_t lead = {
        .message = "Best offer http://a.example http://b.example "
                   "www.c.example (https://d.example) buy now",
    };

    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "4 links in the message (at most 3)");
    /* three links are still a person */
    lead.message = "see http://a.example, http://b.example and "
                   "http://c.example";
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 0);
    /* "http" inside a word is not a link */
    lead.message = "xhttp://a xhttp://b xhttp://c xhttp://d";
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 0);
    cv_spam_destroy(&spam);
}

static void test_blocklists(void **state)
{
    (void)state;
    cv_spam_t *spam = rules();
    char reason[128];
    cv_spam_lead_t lead = {.email = "promo@mail.spam-seo.ru"};

    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "blocked domain 'spam-seo.ru'");
    /* a domain that merely ends the same way is not blocked */
    lead.email = "info@notspam-seo.ru";
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 0);
    lead.email = NULL;
    lead.message = "Play at https://www.Casino.Example/bonus today";
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "blocked domain 'casino.example' in a link");
    lead.message = NULL;
    lead.phone = "+79990000000"; /* written differently in the list */
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "blocked phone '+79990000000'");
    lead.phone = "+79123456789";
    assert_int_equal(cv_spam_check(spam, &lead, reason, sizeof(reason)), 0);
    cv_spam_destroy(&spam);
}

static void test_bad_rules(void **state)
{
    (void)state;
    assert_null(cv_spam_new("_hp", 3, "", "not a phone"));
    cv_spam_t *none = cv_spam_new("", 0, NULL, NULL);
    char reason[64];
    cv_spam_lead_t lead = {.honeypot_value = "x", .message = "no links"};
    assert_non_null(none);
    assert_int_equal(cv_spam_check(none, &lead, reason, sizeof(reason)), 0);
    lead.message = "http://one.example";
    assert_int_equal(cv_spam_check(none, &lead, reason, sizeof(reason)), 1);
    cv_spam_destroy(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_person_passes),
        cmocka_unit_test(test_honeypot),
        cmocka_unit_test(test_link_density),
        cmocka_unit_test(test_blocklists),
        cmocka_unit_test(test_bad_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

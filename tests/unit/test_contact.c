/* cv_contact: the spellings a lead's contacts arrive in, and the one
 * canonical form each must come out as (or a refusal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cv_contact.h"
#include "cv_phone.h"

static void expect_phone(const char *text, const char *want)
{
    char out[CV_CONTACT_SIZE];
    int rc = cv_contact_phone(text, out, sizeof(out));
    if (want == NULL) {
        if (rc != -1)
            fail_msg("phone '%s' accepted as '%s'", text, out);
        assert_string_equal(out, "");
        return;
    }
    if (rc != 0)
        fail_msg("phone '%s' refused", text);
    assert_string_equal(out, want);
}

static void test_phone_russian_forms(void **state)
{
    (void)state;
    expect_phone("8 (912) 345-67-89", "+79123456789");
    expect_phone("+7 912 345 67 89", "+79123456789");
    expect_phone("9123456789", "+79123456789");
    expect_phone("79123456789", "+79123456789");
    expect_phone("  8-912-345-67-89 ", "+79123456789");
    expect_phone("(495) 123.45.67", "+74951234567");
    expect_phone("+7 (495) 123-45-67, доб. 123", "+74951234567");
    expect_phone("8 912 345 67 89 ext 5", "+79123456789");
    expect_phone("+7 701 123 45 67", "+77011234567");  /* Kazakhstan */
    expect_phone("+7 (912) 345 67 8", NULL);     /* 10 digits after +7 */
    expect_phone("+7 912 345 67 890", NULL);     /* 12 digits after +7 */
}

static void test_phone_international(void **state)
{
    (void)state;
    expect_phone("+44 20 7946 0958", "+442079460958");
    expect_phone("+1 (415) 555-2671", "+14155552671");
    expect_phone("0044 20 7946 0958", "+442079460958");
    expect_phone("810 44 20 7946 0958", "+442079460958");
    expect_phone("+380 50 123 4567", "+380501234567");
    expect_phone("+1234567890123456", NULL);               /* 16 digits */
    expect_phone("+12345678", NULL);                       /* 8 digits */
    expect_phone("+44 7700 900123", NULL);    /* UK range kept for drama */
}

static void test_phone_refused(void **state)
{
    (void)state;
    expect_phone("", NULL);
    expect_phone("call me", NULL);
    expect_phone("912345678", NULL);             /* 9 digits */
    expect_phone("123456789012", NULL);          /* no +, not Russian */
    expect_phone("+7 000 000 00 00", NULL);      /* no such range */
    expect_phone("79+123456789", NULL);          /* + in the middle */
    expect_phone(NULL, NULL);
    char tiny[8];
    assert_int_equal(cv_contact_phone("+79123456789", tiny, sizeof(tiny)),
                     -1);
}

/* The region numbers without "+" are read in comes from config. */
static void test_phone_region(void **state)
{
    (void)state;
    expect_phone("020 7946 0958", NULL);  /* read as Russian: no such */
    assert_int_equal(cv_contact_set_region("GB"), 0);
    expect_phone("020 7946 0958", "+442079460958");
    expect_phone("07911 123456", "+447911123456");
    expect_phone("+7 912 345 67 89", "+79123456789");
    expect_phone("8 912 345 67 89", NULL);
    /* refused regions leave the last good one in place */
    assert_int_equal(cv_contact_set_region("gb"), -1);
    assert_int_equal(cv_contact_set_region("XX"), -1);
    assert_int_equal(cv_contact_set_region("GBR"), -1);
    assert_int_equal(cv_contact_set_region(""), -1);
    assert_int_equal(cv_contact_set_region(NULL), -1);
    expect_phone("020 7946 0958", "+442079460958");
    assert_int_equal(cv_contact_set_region("KZ"), 0);
    expect_phone("8 (727) 258-12-34", "+77272581234");
    assert_int_equal(cv_contact_set_region("RU"), 0);
    expect_phone("8 (912) 345-67-89", "+79123456789");
}

/* cv_contact_phone reads the usual Russian mobile spellings itself,
 * without libphonenumber (it is several times faster): for every such
 * spelling, and for the near misses that must still go to libphonenumber
 * (a landline, a digit short, a word, an extension), its answer must be
 * libphonenumber's own, refusals included. */
static void expect_same_as_libphonenumber(const char *text)
{
    char fast[CV_CONTACT_SIZE];
    char slow[CV_CONTACT_SIZE];
    int fast_rc = cv_contact_phone(text, fast, sizeof(fast));
    int slow_rc = cv_phone_e164(text, "RU", slow, sizeof(slow));
    if (fast_rc != slow_rc || strcmp(fast, slow) != 0)
        fail_msg("phone '%s': read as '%s' (%d), libphonenumber says "
                 "'%s' (%d)", text, fast, fast_rc, slow, slow_rc);
}

static void test_phone_fast_path_agrees(void **state)
{
    (void)state;
    static const char *const formats[] = {
        "+7 %.3s %.3s-%.2s-%.2s", "8 (%.3s) %.3s-%.2s-%.2s",
        "+7 (%.3s) %.3s %.2s %.2s", "8-%.3s-%.3s-%.2s-%.2s",
        "+7%.3s%.3s%.2s%.2s", "8%.3s%.3s%.2s%.2s", "%.3s%.3s%.2s%.2s",
        "(%.3s) %.3s-%.2s-%.2s", "+7 ((%.3s)) %.3s--%.2s  %.2s",
        "8 %.3s %.3s %.2s %.2s)", "7%.3s%.3s%.2s%.2s", "+ 7 %.3s %.3s%.2s%.2s",
        "+7 %.3s %.3s %.2s %.2s доб. 12", "Тел. 8 %.3s %.3s %.2s %.2s",
        "+7 %.3s %.3s %.2s %.2s 1", "8 %.3s %.3s %.2s %.1s",
        "+7-%.3s-%.3s-%.2s-%.2s-", "+8 %.3s %.3s %.2s %.2s",
        "87 %.3s %.3s %.2s %.2s", "+7 %.3s %.3s.%.2s.%.2s",
    };
    /* every 3-digit code, mobile or not, with a scrambled line number */
    unsigned int seed = 12345;
    char text[128];
    for (unsigned int code = 0; code < 1000; code++) {
        seed = seed * 1103515245u + 12345u;
        char national[32];
        snprintf(national, sizeof(national), "%03u%07u", code,
                 (seed >> 8) % 10000000u);
        for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
            snprintf(text, sizeof(text), formats[f], national, national + 3,
                     national + 6, national + 8);
            expect_same_as_libphonenumber(text);
        }
    }
    /* a few whole numbers the bench and the demo use */
    expect_same_as_libphonenumber("+79001234567");
    expect_same_as_libphonenumber("89990000000");
    expect_same_as_libphonenumber("9000000000");
    expect_same_as_libphonenumber("+7 999 999 99 99");
}

static void expect_email(const char *text, const char *want)
{
    char out[CV_CONTACT_SIZE];
    int rc = cv_contact_email(text, out, sizeof(out));
    if (want == NULL) {
        if (rc != -1)
            fail_msg("email '%s' accepted as '%s'", text, out);
        return;
    }
    if (rc != 0)
        fail_msg("email '%s' refused", text);
    assert_string_equal(out, want);
}

static void test_email(void **state)
{
    (void)state;
    expect_email("  Ivan.Petrov@Example.COM \n", "ivan.petrov@example.com");
    expect_email("a+tag@sub.example.ru", "a+tag@sub.example.ru");
    expect_email("o'neil@example.co.uk", "o'neil@example.co.uk");
    expect_email("plainaddress", NULL);
    expect_email("@example.com", NULL);
    expect_email("a@b@example.com", NULL);
    expect_email("a@localhost", NULL);
    expect_email("a@example.c", NULL);
    expect_email("a b@example.com", NULL);
    expect_email("a..b@example.com", NULL);
    expect_email(".a@example.com", NULL);
    expect_email("a@-example.com", NULL);
    expect_email("a@example..com", NULL);
    expect_email("", NULL);
}

static void expect_telegram(const char *text, const char *want)
{
    char out[CV_CONTACT_SIZE];
    int rc = cv_contact_telegram(text, out, sizeof(out));
    if (want == NULL) {
        if (rc != -1)
            fail_msg("telegram '%s' accepted as '%s'", text, out);
        return;
    }
    if (rc != 0)
        fail_msg("telegram '%s' refused", text);
    assert_string_equal(out, want);
}

static void test_telegram(void **state)
{
    (void)state;
    expect_telegram("@Ivan_Petrov", "ivan_petrov");
    expect_telegram("ivan_petrov", "ivan_petrov");
    expect_telegram(" https://t.me/IvanPetrov ", "ivanpetrov");
    expect_telegram("t.me/ivan", "ivan");
    expect_telegram("@", NULL);
    expect_telegram("ivan petrov", NULL);
    expect_telegram("@ivan-petrov", NULL);
}

static void expect_inn(const char *text, const char *want)
{
    char out[CV_CONTACT_SIZE];
    int rc = cv_contact_inn(text, out, sizeof(out));
    if (want == NULL) {
        if (rc != -1)
            fail_msg("inn '%s' accepted as '%s'", text, out);
        assert_string_equal(out, "");
        return;
    }
    if (rc != 0)
        fail_msg("inn '%s' refused", text);
    assert_string_equal(out, want);
}

static void test_inn(void **state)
{
    (void)state;
    /* companies: Sberbank, Yandex, VTB */
    expect_inn("7707083893", "7707083893");
    expect_inn("7707 0838-93", "7707083893");
    expect_inn("7736207543", "7736207543");
    expect_inn(" 7702070139\n", "7702070139");
    /* a person (or sole trader) */
    expect_inn("500100732259", "500100732259");
    expect_inn("5001 0073 2259", "500100732259");
    /* one digit mistyped: the check digits catch it */
    expect_inn("7707083894", NULL);    /* last digit */
    expect_inn("7707038893", NULL);    /* two swapped */
    expect_inn("500100732258", NULL);  /* 12th check digit */
    expect_inn("500100732269", NULL);  /* 11th check digit */
    expect_inn("1234567890", NULL);
    expect_inn("123456789012", NULL);
    expect_inn("0000000000", NULL);    /* sums right, but no region 00 */
    expect_inn("000000000000", NULL);
    /* shapes */
    expect_inn("12345", NULL);
    expect_inn("77070838931", NULL);   /* 11 digits */
    expect_inn("77070838A3", NULL);
    expect_inn("", NULL);
    expect_inn(NULL, NULL);
    char tiny[10];
    assert_int_equal(cv_contact_inn("7707083893", tiny, sizeof(tiny)), -1);
}

static void test_company_domain(void **state)
{
    (void)state;
    char out[CV_CONTACT_SIZE];
    assert_true(cv_contact_company_domain("ivan@acme.ru", out, sizeof(out)));
    assert_string_equal(out, "acme.ru");
    const char *free_mail[] = {"a@gmail.com", "a@mail.ru", "a@yandex.ru",
                               "a@ya.ru", "a@bk.ru", "a@list.ru",
                               "a@inbox.ru", "a@outlook.com",
                               "a@hotmail.com", "a@yahoo.com",
                               "a@icloud.com", "a@rambler.ru"};
    for (size_t i = 0; i < sizeof(free_mail) / sizeof(free_mail[0]); i++) {
        assert_false(cv_contact_company_domain(free_mail[i], out,
                                               sizeof(out)));
        assert_string_equal(out, "");
    }
    assert_false(cv_contact_company_domain(NULL, out, sizeof(out)));
    assert_true(cv_contact_free_mail("gmail.com"));
    assert_false(cv_contact_free_mail("gmail.com.evil.ru"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone_russian_forms),
        cmocka_unit_test(test_phone_international),
        cmocka_unit_test(test_phone_refused),
        cmocka_unit_test(test_phone_region),
        cmocka_unit_test(test_phone_fast_path_agrees),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_telegram),
        cmocka_unit_test(test_inn),
        cmocka_unit_test(test_company_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_phone: numbers as people write them in forms, calls and email
 * signatures, read with libphonenumber into E.164 (or refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cv_phone.h"

static void expect_e164(const char *text, const char *region, const char *want)
{
    char out[CV_PHONE_E164_SIZE];
    memset(out, 'x', sizeof(out));
    int rc = cv_phone_e164(text, region, out, sizeof(out));
    if (want == NULL) {
        if (rc != -1)
            fail_msg("'%s' (%s) accepted as '%s'", text ? text : "(null)",
                     region ? region : "RU", out);
        assert_string_equal(out, "");
        return;
    }
    if (rc != 0)
        fail_msg("'%s' (%s) refused", text, region ? region : "RU");
    assert_string_equal(out, want);
}

static void test_russian_numbers(void **state)
{
    (void)state;
    /* one MTS mobile, every way it arrives in a form */
    expect_e164("8 (912) 345-67-89", "RU", "+79123456789");
    expect_e164("+7 912 345 67 89", "RU", "+79123456789");
    expect_e164("+7(912)345-67-89", "RU", "+79123456789");
    expect_e164("89123456789", "RU", "+79123456789");
    expect_e164("79123456789", "RU", "+79123456789");
    expect_e164("9123456789", "RU", "+79123456789");
    expect_e164("  8-912-345-67-89 ", "RU", "+79123456789");
    expect_e164("8 912 345 67 89", NULL, "+79123456789"); /* NULL is RU */
    expect_e164("Тел.: +7 912 345 67 89", "RU", "+79123456789");
    /* Moscow landline, toll-free */
    expect_e164("(495) 123.45.67", "RU", "+74951234567");
    expect_e164("8 800 555-35-35", "RU", "+78005553535");
}

static void test_kazakh_numbers(void **state)
{
    (void)state;
    /* Kazakhstan shares +7; its mobiles are 7xx, Almaty is 727 */
    expect_e164("+7 701 123 45 67", "RU", "+77011234567");
    expect_e164("8 (727) 258-12-34", "RU", "+77272581234");
    expect_e164("8 701 123 45 67", "KZ", "+77011234567");
    expect_e164("+7 (7172) 55-55-55", "KZ", "+77172555555");
}

static void test_international_numbers(void **state)
{
    (void)state;
    expect_e164("+44 20 7946 0958", "RU", "+442079460958");
    expect_e164("+44 (0) 20 7946 0958", "RU", "+442079460958");
    expect_e164("+44 7911 123456", "RU", "+447911123456");
    expect_e164("+1 650-253-0000", "RU", "+16502530000");
    expect_e164("+1 (212) 555-0123", "RU", "+12125550123");
    expect_e164("+375 29 123-45-67", "RU", "+375291234567");
    /* Russia dials out with 810; the rest of the world with 00 */
    expect_e164("810 44 20 7946 0958", "RU", "+442079460958");
    expect_e164("0044 20 7946 0958", "RU", "+442079460958");
    expect_e164("00 1 650 253 0000", "RU", "+16502530000");
    /* the default region decides how a number without + is read */
    expect_e164("020 7946 0958", "GB", "+442079460958");
    expect_e164("07911 123456", "GB", "+447911123456");
    expect_e164("0044 20 7946 0958", "GB", "+442079460958");
    expect_e164("(650) 253-0000", "US", "+16502530000");
    expect_e164("+7 912 345 67 89", "GB", "+79123456789");
}

static void test_extensions_dropped(void **state)
{
    (void)state;
    expect_e164("+7 495 123-45-67, доб. 123", "RU", "+74951234567");
    expect_e164("8 912 345 67 89 ext 5", "RU", "+79123456789");
    expect_e164("+7 495 123-45-67 x123", "RU", "+74951234567");
    expect_e164("+1 650 253 0000 ext. 1234", "RU", "+16502530000");
}

static void test_refused(void **state)
{
    (void)state;
    expect_e164("12345", "RU", NULL);
    expect_e164("abc", "RU", NULL);
    expect_e164("call me", "RU", NULL);
    expect_e164("+7 000", "RU", NULL);
    expect_e164("", "RU", NULL);
    expect_e164(NULL, "RU", NULL);
    expect_e164("+7 (912) 345 67 8", "RU", NULL);  /* a digit short */
    expect_e164("+7 912 345 67 890", "RU", NULL);  /* a digit over */
    expect_e164("8 912 345 67 89 12", "RU", NULL); /* too long */
    expect_e164("912 345 678", "RU", NULL);        /* 9 digits */
    expect_e164("8 912 345 67 8O", "RU", NULL);    /* letter O for zero */
    expect_e164("79+123456789", "RU", NULL);       /* + in the middle */
    expect_e164("+7 912 345 67 89 (Иван)", "RU", NULL);
    expect_e164("8 912 345 67 89 или 8 495 123 45 67", "RU", NULL);
    /* possible but not assigned: +7 0xx, UK drama range, no US area 555 */
    expect_e164("+7 012 345 67 89", "RU", NULL);
    expect_e164("+44 7700 900123", "RU", NULL);
    expect_e164("+1 555 253 0000", "RU", NULL);
    expect_e164("+123456789012345", "RU", NULL);
    /* 00 is not an escape when the region reads the number fine */
    expect_e164("8 912 345 67 89", "GB", NULL);
    /* a region without a plan reads only numbers that carry their code */
    expect_e164("8 912 345 67 89", "XX", NULL);
    expect_e164("+7 912 345 67 89", "XX", "+79123456789");
    /* not UTF-8 (a windows-1251 "Тел.") */
    expect_e164("\xd2\xe5\xeb. +7 912 345 67 89", "RU", NULL);
}

static void test_small_buffer(void **state)
{
    (void)state;
    char out[13]; /* "+79123456789" needs 13 */
    assert_int_equal(cv_phone_e164("8 912 345 67 89", "RU", out, 13), 0);
    assert_string_equal(out, "+79123456789");
    assert_int_equal(cv_phone_e164("8 912 345 67 89", "RU", out, 12), -1);
    assert_string_equal(out, "");
    assert_int_equal(cv_phone_e164("8 912 345 67 89", "RU", NULL, 20), -1);
    assert_int_equal(cv_phone_e164("8 912 345 67 89", "RU", out, 0), -1);
}

/* What cv_phone_find reported, in order. */
typedef struct {
    const char *text;                 /* the searched text */
    char e164[8][CV_PHONE_E164_SIZE]; /* the numbers found */
    char raw[8][64];                  /* text[start, end) of each */
    int count;                        /* calls of the callback */
} found_t;

static void on_found(const char *e164, size_t start, size_t end, void *arg)
{
    found_t *f = arg;
    assert_true(start < end);
    assert_true(end <= strlen(f->text));
    assert_true(end - start < sizeof(f->raw[0]));
    if (f->count < 8) {
        snprintf(f->e164[f->count], sizeof(f->e164[0]), "%s", e164);
        memcpy(f->raw[f->count], f->text + start, end - start);
        f->raw[f->count][end - start] = '\0';
    }
    f->count++;
}

static void test_find_in_signature(void **state)
{
    (void)state;
    found_t f = {.text = "Добрый день!\n"
                         "Пришлите, пожалуйста, КП до 12.05.2024.\n"
                         "--\n"
                         "С уважением, Иван Петров\n"
                         "ООО «Ромашка», ИНН 7707083893\n"
                         "Тел.: +7 (495) 123-45-67, доб. 123\n"
                         "моб. 8 912 345 67 89\n"};
    assert_int_equal(cv_phone_find(f.text, "RU", on_found, &f), 2);
    assert_int_equal(f.count, 2);
    assert_string_equal(f.e164[0], "+74951234567");
    assert_string_equal(f.raw[0], "+7 (495) 123-45-67, доб. 123");
    assert_string_equal(f.e164[1], "+79123456789");
    assert_string_equal(f.raw[1], "8 912 345 67 89");
}

static void test_find_mixed(void **state)
{
    (void)state;
    found_t f = {.text = "London office +44 20 7946 0958, US +1 650-253-0000; "
                         "заказ №12345, сумма 1 234 567,89 руб., "
                         "Алматы 8 (727) 258-12-34."};
    assert_int_equal(cv_phone_find(f.text, "RU", on_found, &f), 3);
    assert_string_equal(f.e164[0], "+442079460958");
    assert_string_equal(f.raw[0], "+44 20 7946 0958");
    assert_string_equal(f.e164[1], "+16502530000");
    assert_string_equal(f.e164[2], "+77272581234");
    assert_string_equal(f.raw[2], "8 (727) 258-12-34");
    /* counting only */
    assert_int_equal(cv_phone_find(f.text, NULL, NULL, NULL), 3);
}

static void test_find_nothing(void **state)
{
    (void)state;
    found_t f = {.text = "Спасибо, перезвоню завтра. ИНН 500100732259."};
    assert_int_equal(cv_phone_find(f.text, "RU", on_found, &f), 0);
    assert_int_equal(f.count, 0);
    assert_int_equal(cv_phone_find("", "RU", on_found, &f), 0);
    assert_int_equal(cv_phone_find(NULL, "RU", on_found, &f), -1);
    /* windows-1251 text handed over undecoded */
    assert_int_equal(
        cv_phone_find("\xd2\xe5\xeb.: 8 912 345 67 89", "RU", on_found, &f),
        -1);
    assert_int_equal(f.count, 0);
}

static void test_is_mobile(void **state)
{
    (void)state;
    assert_true(cv_phone_is_mobile("+79123456789"));
    assert_true(cv_phone_is_mobile("+77011234567"));
    assert_true(cv_phone_is_mobile("+447911123456"));
    assert_false(cv_phone_is_mobile("+74951234567"));  /* Moscow */
    assert_false(cv_phone_is_mobile("+78005553535"));  /* toll-free */
    assert_false(cv_phone_is_mobile("+442079460958")); /* London */
    assert_false(cv_phone_is_mobile("89123456789"));   /* not E.164 */
    assert_false(cv_phone_is_mobile(NULL));
}

static void test_region_known(void **state)
{
    (void)state;
    assert_true(cv_phone_region_known("RU"));
    assert_true(cv_phone_region_known("KZ"));
    assert_true(cv_phone_region_known("GB"));
    assert_false(cv_phone_region_known("XX"));
    assert_false(cv_phone_region_known("ZZ"));
    assert_false(cv_phone_region_known("ru"));
    assert_false(cv_phone_region_known(""));
    assert_false(cv_phone_region_known(NULL));
}

/* Intake's HTTP workers normalise at the same time. */
static void *normalise_many(void *arg)
{
    (void)arg;
    static const char *const in[] = {"8 (912) 345-67-89", "+44 20 7946 0958",
                                     "12345", "+1 650-253-0000"};
    static const char *const want[] = {"+79123456789", "+442079460958", "",
                                       "+16502530000"};
    for (int i = 0; i < 200; i++) {
        char out[CV_PHONE_E164_SIZE];
        cv_phone_e164(in[i % 4], "RU", out, sizeof(out));
        if (strcmp(out, want[i % 4]) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&threads[i], NULL, normalise_many, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *failed = NULL;
        assert_int_equal(pthread_join(threads[i], &failed), 0);
        assert_null(failed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_russian_numbers),
        cmocka_unit_test(test_kazakh_numbers),
        cmocka_unit_test(test_international_numbers),
        cmocka_unit_test(test_extensions_dropped),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_small_buffer),
        cmocka_unit_test(test_find_in_signature),
        cmocka_unit_test(test_find_mixed),
        cmocka_unit_test(test_find_nothing),
        cmocka_unit_test(test_is_mobile),
        cmocka_unit_test(test_region_known),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

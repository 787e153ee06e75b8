/* cv_form: what browsers, curl and Twilio post as forms, and the bodies a
 * lead form must refuse (with the field and the reason). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_form.h"

#define URLENCODED "application/x-www-form-urlencoded"
#define CHROME_TYPE                                                            \
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define CHROME_BOUNDARY "------WebKitFormBoundary7MA4YWxkTrZu0gW"

/* A Chrome submission of a lead form with a file and an empty file input;
 * the PDF's bytes include NUL and bytes that are not UTF-8. */
static const char chrome_body[] = CHROME_BOUNDARY
    "\r\n"
    "Content-Disposition: form-data; name=\"name\"\r\n"
    "\r\n"
    "Иван Петров\r\n" CHROME_BOUNDARY "\r\n"
    "Content-Disposition: form-data; name=\"phone\"\r\n"
    "\r\n"
    "+7 912 345-67-89\r\n" CHROME_BOUNDARY "\r\n"
    "Content-Disposition: form-data; name=\"message\"\r\n"
    "\r\n"
    "Нужна CRM на 20 менеджеров.\r\nСрок — до марта.\r\n" CHROME_BOUNDARY "\r\n"
    "Content-Disposition: form-data; name=\"attachment\"; "
    "filename=\"ТЗ на CRM.pdf\"\r\n"
    "Content-Type: application/pdf\r\n"
    "\r\n"
    "%PDF-1.4\n\x00\xC8\xE2\xFF\xFE binary\r\n" CHROME_BOUNDARY "\r\n"
    "Content-Disposition: form-data; name=\"resume\"; filename=\"\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "\r\n" CHROME_BOUNDARY "\r\n"
    "Content-Disposition: form-data; name=\"budget\"\r\n"
    "\r\n"
    "150000\r\n" CHROME_BOUNDARY "--\r\n";

static cv_form_t *parse(const char *type, const char *body)
{
    cv_form_error_t err = {0};
    cv_form_t *form = cv_form_parse(type, body, strlen(body), &err);
    if (form == NULL)
        fail_msg("refused: field '%s': %s", err.field, err.reason);
    return form;
}

/* Parses a body that must be refused; checks the status, field and reason. */
static void expect_refused(const char *type, const char *body, size_t size,
                           int status, const char *field, const char *reason)
{
    cv_form_error_t err = {0};
    cv_form_t *form = cv_form_parse(type, body, size, &err);
    if (form != NULL) {
        cv_form_destroy(&form);
        fail_msg("accepted: %.60s", body);
    }
    assert_int_equal(err.status, status);
    assert_string_equal(err.field, field);
    assert_string_equal(err.reason, reason);
}

static void test_urlencoded_cyrillic_lead(void **state)
{
    (void)state;
    cv_form_t *form = parse(
        URLENCODED "; charset=UTF-8",
        "name=%D0%98%D0%B2%D0%B0%D0%BD+%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2"
        "&phone=%2B7+912+345-67-89&email=ivan%40romashka.ru"
        "&company=%D0%9E%D0%9E%D0%9E+%C2%AB%D0%A0%D0%BE%D0%BC%D0%B0%D1%88"
        "%D0%BA%D0%B0%C2%BB&budget=150000&utm_source=yandex");
    assert_int_equal(cv_form_count(form), 6);
    assert_string_equal(cv_form_get(form, "name"), "Иван Петров");
    assert_string_equal(cv_form_get(form, "phone"), "+7 912 345-67-89");
    assert_string_equal(cv_form_get(form, "email"), "ivan@romashka.ru");
    assert_string_equal(cv_form_get(form, "company"), "ООО «Ромашка»");
    assert_string_equal(cv_form_get(form, "budget"), "150000");
    assert_null(cv_form_get(form, "region"));
    const cv_form_field_t *first = cv_form_at(form, 0);
    assert_string_equal(first->name, "name");
    assert_int_equal(first->value_len, strlen("Иван Петров"));
    assert_false(first->is_file);
    assert_null(first->filename);
    assert_null(cv_form_at(form, 6));
    cv_form_destroy(&form);
    assert_null(form);
}

static void test_urlencoded_raw_utf8_from_curl(void **state)
{
    (void)state;
    /* curl -d 'name=Мария&email=...' sends the UTF-8 bytes unescaped */
    cv_form_t *form = parse(URLENCODED, "name=Мария&email=maria@mail.ru");
    assert_string_equal(cv_form_get(form, "name"), "Мария");
    cv_form_destroy(&form);
}

static void test_urlencoded_windows1251_names_the_field(void **state)
{
    (void)state;
    /* an old site that posts "Иван" in windows-1251 */
    const char *body = "phone=89123456789&name=%C8%E2%E0%ED";
    expect_refused(URLENCODED, body, strlen(body), 400, "name",
                   "not valid UTF-8");
    body = "email=a%40b.ru&message=hi%00there";
    expect_refused(URLENCODED, body, strlen(body), 400, "message",
                   "holds a NUL byte");
    body = "%C8%E2=1";
    expect_refused(URLENCODED, body, strlen(body), 400, "",
                   "a field name is not valid UTF-8");
}

static void test_urlencoded_edge_forms(void **state)
{
    (void)state;
    /* empty value, a bare name, empty pairs, an empty name, stray '%' */
    cv_form_t *form = parse(URLENCODED, "company=&subscribe&&=orphan&"
                                        "message=%D1%81%D0%BA%D0%B8%D0%B4"
                                        "%D0%BA%D0%B0+50%25+%D0%B8%D0%BB"
                                        "%D0%B8+50%&x=%zz%4");
    assert_int_equal(cv_form_count(form), 4);
    assert_string_equal(cv_form_get(form, "company"), "");
    assert_string_equal(cv_form_get(form, "subscribe"), "");
    assert_string_equal(cv_form_get(form, "message"), "скидка 50% или 50%");
    assert_string_equal(cv_form_get(form, "x"), "%zz%4");
    cv_form_destroy(&form);
    /* an empty body is an empty form */
    form = parse(URLENCODED, "");
    assert_int_equal(cv_form_count(form), 0);
    cv_form_destroy(&form);
}

static void test_repeated_names_keep_the_first(void **state)
{
    (void)state;
    cv_form_t *form = parse(URLENCODED, "interest=crm&phone=%2B79123456789"
                                        "&interest=telephony&interest=bi");
    assert_string_equal(cv_form_get(form, "interest"), "crm");
    assert_false(cv_form_at(form, 0)->repeated);
    assert_true(cv_form_at(form, 2)->repeated);
    assert_string_equal(cv_form_at(form, 3)->value, "bi");
    json_t *object = cv_form_to_json(form);
    assert_non_null(object);
    char *text = json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text,
                        "{\"interest\":\"crm\",\"phone\":\"+79123456789\","
                        "\"repeated\":{\"interest\":[\"telephony\","
                        "\"bi\"]}}");
    free(text);
    json_decref(object);
    cv_form_destroy(&form);
}

static void test_limits(void **state)
{
    (void)state;
    /* 200 fields pass, 201 do not */
    size_t cap = 16 * 1024;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t len = 0;
    for (int i = 0; i < CV_FORM_MAX_FIELDS; i++)
        len += (size_t)snprintf(body + len, cap - len, "f%d=v&", i);
    cv_form_t *form = parse(URLENCODED, body);
    assert_int_equal(cv_form_count(form), CV_FORM_MAX_FIELDS);
    cv_form_destroy(&form);
    snprintf(body + len, cap - len, "one_more=v");
    expect_refused(URLENCODED, body, strlen(body), 400, "",
                   "the form has more than 200 fields");
    /* a 257-byte name */
    memset(body, 'n', 257);
    snprintf(body + 257, cap - 257, "=v");
    expect_refused(URLENCODED, body, strlen(body), 400, "",
                   "a field name is longer than 256 bytes");
    free(body);
}

static void test_chrome_multipart_with_file(void **state)
{
    (void)state;
    cv_form_error_t err = {0};
    cv_form_t *form =
        cv_form_parse(CHROME_TYPE, chrome_body, sizeof(chrome_body) - 1, &err);
    if (form == NULL)
        fail_msg("refused: field '%s': %s", err.field, err.reason);
    assert_int_equal(cv_form_count(form), 6);
    assert_string_equal(cv_form_get(form, "name"), "Иван Петров");
    assert_string_equal(cv_form_get(form, "phone"), "+7 912 345-67-89");
    /* line breaks inside a value stay; the one before the boundary goes */
    assert_string_equal(cv_form_get(form, "message"),
                        "Нужна CRM на 20 менеджеров.\r\nСрок — до марта.");
    assert_string_equal(cv_form_get(form, "budget"), "150000");
    const cv_form_field_t *file = cv_form_at(form, 3);
    assert_true(file->is_file);
    assert_string_equal(file->name, "attachment");
    assert_string_equal(file->filename, "ТЗ на CRM.pdf");
    assert_int_equal(file->size, 21); /* "%PDF-1.4\n", 5 bytes, " binary" */
    assert_string_equal(file->value, "");
    assert_null(cv_form_get(form, "attachment")); /* files are not values */
    const cv_form_field_t *empty = cv_form_at(form, 4);
    assert_true(empty->is_file);
    assert_string_equal(empty->filename, "");
    assert_int_equal(empty->size, 0);

    json_t *object = cv_form_to_json(form);
    assert_non_null(object);
    char *text = json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        text, "{\"budget\":\"150000\","
              "\"files\":[{\"field\":\"attachment\",\"filename\":"
              "\"ТЗ на CRM.pdf\",\"size\":21}],"
              "\"message\":\"Нужна CRM на 20 менеджеров.\\r\\nСрок — до "
              "марта.\",\"name\":\"Иван Петров\","
              "\"phone\":\"+7 912 345-67-89\"}");
    free(text);
    json_decref(object);
    cv_form_destroy(&form);
}

static void test_multipart_bare_lf_quoted_boundary_preamble(void **state)
{
    (void)state;
    /* hand-written: LF line ends, a quoted boundary with a space, a
     * preamble, transport padding, an unquoted name, an epilogue */
    const char *type = "Multipart/Form-Data; charset=utf-8; "
                       "boundary=\"simple boundary\"";
    const char *body = "This is the preamble.\n"
                       "--simple boundary\n"
                       "content-disposition: form-data; name=email\n"
                       "\n"
                       "olga@stroymontazh.ru\n"
                       "--simple boundary  \n"
                       "Content-Disposition: form-data; name=\"message\"\n"
                       "Content-Type: text/plain; charset=UTF-8\n"
                       "\n"
                       "--simple boundaryless is not a boundary\n"
                       "x--simple boundary neither\n"
                       "--simple boundary--\n"
                       "This is the epilogue.\n";
    cv_form_t *form = parse(type, body);
    assert_int_equal(cv_form_count(form), 2);
    assert_string_equal(cv_form_get(form, "email"), "olga@stroymontazh.ru");
    assert_string_equal(cv_form_get(form, "message"),
                        "--simple boundaryless is not a boundary\n"
                        "x--simple boundary neither");
    cv_form_destroy(&form);
    /* the smallest form: no parts at all */
    form = parse("multipart/form-data; boundary=X", "--X--");
    assert_int_equal(cv_form_count(form), 0);
    cv_form_destroy(&form);
}

static void test_multipart_filename_star(void **state)
{
    (void)state;
    const char *body = "--b\r\n"
                       "Content-Disposition: form-data; name=\"doc\"; "
                       "filename=\"a.txt\"; "
                       "filename*=UTF-8''%D0%A1%D0%BC%D0%B5%D1%82%D0%B0.txt"
                       "\r\n\r\nhello\r\n--b--\r\n";
    cv_form_t *form = parse("multipart/form-data; boundary=b", body);
    assert_string_equal(cv_form_at(form, 0)->filename, "Смета.txt");
    assert_int_equal(cv_form_at(form, 0)->size, 5);
    cv_form_destroy(&form);
}

static void test_multipart_refusals(void **state)
{
    (void)state;
    /* the browser's request was cut off before the closing boundary */
    size_t cut = sizeof(chrome_body) - 1 - strlen(CHROME_BOUNDARY "--\r\n");
    expect_refused(CHROME_TYPE, chrome_body, cut, 400, "",
                   "multipart body has no closing boundary");
    const char *body = "--b\r\n"
                       "Content-Disposition: form-data; name=\"name\"\r\n"
                       "\r\n"
                       "\xC8\xE2\xE0\xED\r\n--b--\r\n";
    expect_refused("multipart/form-data; boundary=b", body, strlen(body), 400,
                   "name", "not valid UTF-8");
    body = "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
    expect_refused("multipart/form-data; boundary=b", body, strlen(body), 400,
                   "", "a multipart part has no field name");
    body = "--b\r\nContent-Disposition: form-data; name=\"cv\"; "
           "filename=\"\xD0\xE5\xE7\xFE\xEC\xE5.doc\"\r\n\r\nx\r\n--b--\r\n";
    expect_refused("multipart/form-data; boundary=b", body, strlen(body), 400,
                   "cv", "the file name is not valid UTF-8");
    body = "name=Ivan";
    expect_refused("multipart/form-data", body, strlen(body), 400, "",
                   "multipart Content-Type has no usable boundary");
    expect_refused("multipart/form-data; boundary=\"\"", body, strlen(body),
                   400, "", "multipart Content-Type has no usable boundary");
    expect_refused("multipart/form-data; boundary=b", body, strlen(body), 400,
                   "", "multipart body has no boundary line");
    expect_refused("text/plain", body, strlen(body), 415, "",
                   "not a form content type");
    expect_refused(NULL, body, strlen(body), 415, "",
                   "not a form content type");
}

static void test_form_types(void **state)
{
    (void)state;
    assert_true(cv_form_is_form_type(URLENCODED));
    assert_true(cv_form_is_form_type("Application/X-WWW-Form-Urlencoded"));
    assert_true(cv_form_is_form_type(CHROME_TYPE));
    assert_false(cv_form_is_form_type("application/json"));
    assert_false(cv_form_is_form_type("multipart/form-datax"));
    assert_false(cv_form_is_form_type(NULL));
}

/* Every cut of a real body, and bytes of noise, are parsed or refused
 * without crashing or leaking (run under ASan: build-parsers-asan). */
static void test_truncated_and_noisy_bodies(void **state)
{
    (void)state;
    size_t full = sizeof(chrome_body) - 1;
    for (size_t n = 0; n < full; n++) {
        /* a copy of exactly n bytes, so ASan sees any read past the end */
        char *copy = malloc(n > 0 ? n : 1);
        assert_non_null(copy);
        memcpy(copy, chrome_body, n);
        cv_form_error_t err = {0};
        cv_form_t *form = cv_form_parse(CHROME_TYPE, copy, n, &err);
        if (n < full - 2) /* only the final CRLF may go */
            assert_null(form);
        cv_form_destroy(&form);
        form = cv_form_parse(URLENCODED, copy, n, &err);
        json_t *object = cv_form_to_json(form);
        json_decref(object);
        cv_form_destroy(&form);
        free(copy);
    }
    uint32_t seed = 2463534242u;
    static const char alphabet[] = "--b\r\n=&%+;\"\xD0\x98\xC8:name";
    for (int round = 0; round < 3000; round++) {
        char body[96];
        size_t n = (size_t)(round % 96);
        for (size_t i = 0; i < n; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            body[i] = alphabet[seed % (sizeof(alphabet) - 1)];
        }
        cv_form_t *form =
            cv_form_parse("multipart/form-data; boundary=b", body, n, NULL);
        cv_form_destroy(&form);
        form = cv_form_parse(URLENCODED, body, n, NULL);
        cv_form_destroy(&form);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urlencoded_cyrillic_lead),
        cmocka_unit_test(test_urlencoded_raw_utf8_from_curl),
        cmocka_unit_test(test_urlencoded_windows1251_names_the_field),
        cmocka_unit_test(test_urlencoded_edge_forms),
        cmocka_unit_test(test_repeated_names_keep_the_first),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chrome_multipart_with_file),
        cmocka_unit_test(test_multipart_bare_lf_quoted_boundary_preamble),
        cmocka_unit_test(test_multipart_filename_star),
        cmocka_unit_test(test_multipart_refusals),
        cmocka_unit_test(test_form_types),
        cmocka_unit_test(test_truncated_and_noisy_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

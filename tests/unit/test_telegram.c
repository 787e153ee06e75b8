/* cv_telegram: Update objects as the Bot API delivers them to a webhook,
 * what intake reads from each, and the ones it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cv_telegram.h"

/* A client writes to the bot from a private chat. */
static const char text_update[] =
    "{\"update_id\": 815237361,\n"
    " \"message\": {\"message_id\": 42,\n"
    "  \"from\": {\"id\": 123456789, \"is_bot\": false,\n"
    "           \"first_name\": \"Иван\", \"last_name\": \"Петров\",\n"
    "           \"username\": \"ivan_petrov\", \"language_code\": \"ru\"},\n"
    "  \"chat\": {\"id\": 123456789, \"first_name\": \"Иван\",\n"
    "           \"last_name\": \"Петров\", \"username\": \"ivan_petrov\",\n"
    "           \"type\": \"private\"},\n"
    "  \"date\": 1732290078,\n"
    "  \"text\": \"Здравствуйте! Сколько стоит CRM на 20 человек?\"}}";

/* The client pressed "Share my phone number" (request_contact). */
static const char contact_update[] =
    "{\"update_id\":815237362,\"message\":{\"message_id\":43,"
    "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Ольга\","
    "\"language_code\":\"ru\"},\"chat\":{\"id\":5012345678,"
    "\"first_name\":\"Ольга\",\"type\":\"private\"},\"date\":1732290140,"
    "\"reply_to_message\":{\"message_id\":41,\"from\":{\"id\":7000000001,"
    "\"is_bot\":true,\"first_name\":\"Conveyor\",\"username\":"
    "\"conveyor_bot\"},\"chat\":{\"id\":5012345678,\"type\":\"private\"},"
    "\"date\":1732290100,\"text\":\"Оставьте номер, мы перезвоним\"},"
    "\"contact\":{\"phone_number\":\"79123456789\",\"first_name\":\"Ольга\","
    "\"last_name\":\"Смирнова\",\"user_id\":5012345678}}}";

static void parse_ok(const char *body, cv_telegram_update_t *update)
{
    cv_telegram_error_t err = {0};
    if (cv_telegram_parse(body, strlen(body), update, &err) != 0)
        fail_msg("refused: '%s': %s", err.field, err.reason);
}

static void expect_refused(const char *body, const char *field,
                           const char *reason)
{
    cv_telegram_update_t update;
    cv_telegram_error_t err = {0};
    assert_int_equal(cv_telegram_parse(body, strlen(body), &update, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.field, field);
    assert_string_equal(err.reason, reason);
    assert_null(update.text); /* cleared */
}

static void test_private_text_message(void **state)
{
    (void)state;
    cv_telegram_update_t u;
    parse_ok(text_update, &u);
    assert_int_equal(u.update_id, 815237361);
    assert_int_equal(u.kind, CV_TELEGRAM_MESSAGE);
    assert_false(u.edited);
    assert_int_equal(u.message_id, 42);
    assert_int_equal(u.chat_id, 123456789);
    assert_string_equal(u.chat_type, "private");
    assert_int_equal(u.from_id, 123456789);
    assert_false(u.from_is_bot);
    assert_string_equal(u.first_name, "Иван");
    assert_string_equal(u.last_name, "Петров");
    assert_string_equal(u.username, "ivan_petrov");
    assert_string_equal(u.language_code, "ru");
    assert_string_equal(u.text,
                        "Здравствуйте! Сколько стоит CRM на 20 человек?");
    assert_int_equal(u.date_ms, 1732290078000LL);
    assert_int_equal(u.edit_date_ms, 0);
    assert_false(u.has_contact);
    assert_null(u.contact_phone);
    assert_null(u.other_kind);
    cv_telegram_update_clear(&u);
    assert_null(u.text);
}

static void test_shared_contact(void **state)
{
    (void)state;
    cv_telegram_update_t u;
    parse_ok(contact_update, &u);
    assert_int_equal(u.kind, CV_TELEGRAM_MESSAGE);
    /* ids above 2^32 survive */
    assert_int_equal(u.from_id, 5012345678LL);
    assert_string_equal(u.first_name, "Ольга");
    assert_null(u.last_name);
    assert_null(u.username); /* no @username: only the id reaches her */
    assert_null(u.text);     /* the reply_to_message's text is not hers */
    assert_true(u.has_contact);
    assert_string_equal(u.contact_phone, "79123456789");
    assert_string_equal(u.contact_first_name, "Ольга");
    assert_string_equal(u.contact_last_name, "Смирнова");
    assert_int_equal(u.contact_user_id, 5012345678LL);
    cv_telegram_update_clear(&u);
}

static void test_edited_message_and_caption(void **state)
{
    (void)state;
    cv_telegram_update_t u;
    parse_ok("{\"update_id\":815237363,\"edited_message\":{\"message_id\":42,"
             "\"from\":{\"id\":123456789,\"is_bot\":false,"
             "\"first_name\":\"Иван\"},\"chat\":{\"id\":123456789,"
             "\"type\":\"private\"},\"date\":1732290078,"
             "\"edit_date\":1732290199,\"text\":\"Сколько стоит CRM на 25 "
             "человек?\"}}",
             &u);
    assert_int_equal(u.kind, CV_TELEGRAM_MESSAGE);
    assert_true(u.edited);
    assert_int_equal(u.edit_date_ms, 1732290199000LL);
    assert_string_equal(u.text, "Сколько стоит CRM на 25 человек?");
    cv_telegram_update_clear(&u);
    /* a photo of the requirements with a caption, in a supergroup */
    parse_ok("{\"update_id\":815237364,\"message\":{\"message_id\":7,"
             "\"from\":{\"id\":123456789,\"is_bot\":false,"
             "\"first_name\":\"Иван\"},\"chat\":{\"id\":-1001234567890,"
             "\"title\":\"Закупки\",\"type\":\"supergroup\"},"
             "\"date\":1732290300,\"photo\":[{\"file_id\":\"AgACAgIA\","
             "\"file_unique_id\":\"AQAD\",\"width\":90,\"height\":67,"
             "\"file_size\":1234}],\"caption\":\"Наше ТЗ\"}}",
             &u);
    assert_int_equal(u.chat_id, -1001234567890LL);
    assert_string_equal(u.chat_type, "supergroup");
    assert_string_equal(u.text, "Наше ТЗ");
    cv_telegram_update_clear(&u);
}

static void test_other_update_kinds_are_ignored(void **state)
{
    (void)state;
    cv_telegram_update_t u;
    parse_ok("{\"update_id\":815237365,\"callback_query\":{\"id\":"
             "\"4382bfdwdsb323b2d9\",\"from\":{\"id\":123456789,"
             "\"is_bot\":false,\"first_name\":\"Иван\"},\"chat_instance\":"
             "\"-7282\",\"data\":\"call_me_back\"}}",
             &u);
    assert_int_equal(u.kind, CV_TELEGRAM_OTHER);
    assert_string_equal(u.other_kind, "callback_query");
    assert_int_equal(u.update_id, 815237365);
    assert_int_equal(u.from_id, 0);
    cv_telegram_update_clear(&u);
    parse_ok("{\"update_id\":815237366,\"my_chat_member\":{\"chat\":{\"id\":"
             "123456789,\"type\":\"private\"},\"from\":{\"id\":123456789,"
             "\"is_bot\":false,\"first_name\":\"Иван\"},\"date\":1732290400,"
             "\"old_chat_member\":{\"status\":\"member\"},"
             "\"new_chat_member\":{\"status\":\"kicked\"}}}",
             &u);
    assert_int_equal(u.kind, CV_TELEGRAM_OTHER);
    assert_string_equal(u.other_kind, "my_chat_member");
    cv_telegram_update_clear(&u);
    parse_ok("{\"update_id\":1}", &u);
    assert_int_equal(u.kind, CV_TELEGRAM_OTHER);
    assert_string_equal(u.other_kind, "unknown");
    cv_telegram_update_clear(&u);
}

static void test_refused_updates(void **state)
{
    (void)state;
    expect_refused("{\"update_id\": 1, \"message\":", "",
                   "invalid JSON at line 1, column 27: "
                   "unexpected token near end of file");
    expect_refused("[1, 2]", "", "an Update must be a JSON object");
    expect_refused("{\"message\":{}}", "update_id", "required");
    expect_refused("{\"update_id\":\"815237361\"}", "update_id",
                   "must be an integer");
    expect_refused("{\"update_id\":-5}", "update_id", "must not be negative");
    expect_refused("{\"update_id\":1,\"message\":[]}", "message",
                   "must be an object");
    /* a message without a sender */
    expect_refused("{\"update_id\":1,\"message\":{\"message_id\":1,"
                   "\"chat\":{\"id\":5,\"type\":\"private\"},\"date\":1}}",
                   "message.from", "required");
    expect_refused("{\"update_id\":1,\"edited_message\":{\"message_id\":1,"
                   "\"from\":{\"id\":\"5\"},\"chat\":{\"id\":5},"
                   "\"date\":1}}",
                   "edited_message.from.id", "must be an integer");
    expect_refused("{\"update_id\":1,\"message\":{\"message_id\":1,"
                   "\"from\":{\"id\":5},\"chat\":{\"id\":5},\"date\":1,"
                   "\"text\":42}}",
                   "message.text", "must be a string");
    expect_refused("{\"update_id\":1,\"message\":{\"message_id\":1,"
                   "\"from\":{\"id\":5},\"chat\":{\"id\":5},\"date\":1,"
                   "\"contact\":{\"first_name\":\"Ольга\"}}}",
                   "message.contact.phone_number", "required");
    expect_refused("{\"update_id\":1,\"message\":{\"message_id\":1,"
                   "\"from\":{\"id\":5},\"chat\":{\"id\":5},"
                   "\"date\":-1}}",
                   "message.date", "not a plausible Unix time");
    /* Telegram never sends a key twice; a body that does is not Telegram's */
    expect_refused("{\"update_id\":1,\"update_id\":2}", "",
                   "invalid JSON at line 1, column 26: "
                   "duplicate object key near '\"update_id\"'");
}

static void test_secret_header(void **state)
{
    (void)state;
    const char *secret = "k3J9_xQ-2mZp7LwB";
    assert_true(cv_telegram_secret_ok(secret, "k3J9_xQ-2mZp7LwB"));
    assert_false(cv_telegram_secret_ok(secret, "k3J9_xQ-2mZp7Lwb"));
    assert_false(cv_telegram_secret_ok(secret, "k3J9_xQ-2mZp7Lw"));
    assert_false(cv_telegram_secret_ok(secret, "k3J9_xQ-2mZp7LwBB"));
    assert_false(cv_telegram_secret_ok(secret, ""));
    assert_false(cv_telegram_secret_ok(secret, NULL));
    assert_false(cv_telegram_secret_ok("", "")); /* none configured */
    assert_false(cv_telegram_secret_ok(NULL, "anything"));
}

/* Every cut of real updates is refused cleanly (no crash, no leak). */
static void test_truncated_updates(void **state)
{
    (void)state;
    const char *bodies[] = {text_update, contact_update};
    for (size_t b = 0; b < 2; b++) {
        size_t full = strlen(bodies[b]);
        for (size_t n = 0; n < full; n++) {
            char *copy = malloc(n > 0 ? n : 1);
            assert_non_null(copy);
            memcpy(copy, bodies[b], n);
            cv_telegram_update_t u;
            assert_int_equal(cv_telegram_parse(copy, n, &u, NULL), -1);
            free(copy);
        }
    }
    cv_telegram_update_t u;
    assert_int_equal(cv_telegram_parse(NULL, 0, &u, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_text_message),
        cmocka_unit_test(test_shared_contact),
        cmocka_unit_test(test_edited_message_and_caption),
        cmocka_unit_test(test_other_update_kinds_are_ignored),
        cmocka_unit_test(test_refused_updates),
        cmocka_unit_test(test_secret_header),
        cmocka_unit_test(test_truncated_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* What the notifier sends on each channel (services/notifier/
 * notifier_message.c): the webhook's HMAC signature header, the e-mail
 * (MIME, a Cyrillic subject in RFC 2047 words, Message-ID from the
 * notification id), Telegram's sendMessage body and reply, and Slack's
 * text. The e-mail is read back with the intake's own parser (GMime). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* the service's own API; the test links its objects (Makefile) */
#include <jansson.h>

#include "cv_backoff.h"
#include "../../services/notifier/notifier.h"

#include "cv_mail.h"

static const char webhook_body[] =
    "{\"notification_id\":\"ntf-task-42\",\"lead_id\":\"lead-7\"}";

static void test_signature_header_is_hmac_of_time_and_body(void **state)
{
    (void)state;
    char header[NOTIFIER_SIGNATURE_SIZE];
    assert_int_equal(
        notifier_sign("whsec_5f2b1c", 1700000000, webhook_body, header), 0);
    /* python3: hmac.new(b"whsec_5f2b1c", b"1700000000." + body,
     * hashlib.sha256).hexdigest() */
    assert_string_equal(header,
                        "t=1700000000,v1=9697a2d70a8a2993dc7ea927cbd75afc"
                        "ff3162d1452f83bbf9d60e81996fd414");
}

static void test_signature_changes_with_body_time_and_secret(void **state)
{
    (void)state;
    char a[NOTIFIER_SIGNATURE_SIZE];
    char b[NOTIFIER_SIGNATURE_SIZE];
    notifier_sign("whsec_5f2b1c", 1700000000, webhook_body, a);
    notifier_sign(
        "whsec_5f2b1c", 1700000000,
        "{\"notification_id\":\"ntf-task-42\",\"lead_id\":\"lead-8\"}", b);
    assert_string_not_equal(a, b);
    notifier_sign("whsec_5f2b1c", 1700000001, webhook_body, b);
    assert_string_not_equal(strchr(a, ','), strchr(b, ','));
    notifier_sign("whsec_other", 1700000000, webhook_body, b);
    assert_string_not_equal(a, b);
}

static const char cyrillic_subject[] =
    "Новый лид: ООО «Ромашка» — первый контакт до 12:00 (Москва)";
static const char cyrillic_text[] =
    "Позвонить Ивану Петрову, +7 916 123-45-67.\nLead id: lead-7";

static char *build_mail(const char *subject, const char *to)
{
    notifier_mail_t mail = {
        .from = "Conveyor <conveyor@crm.example.ru>",
        .to = to,
        .subject = subject,
        .text = cyrillic_text,
        .notification_id = "ntf-task-42",
        .date_ms = 1763837419000, /* 2025-11-22 18:50:19 UTC */
    };
    return notifier_mail_build(&mail);
}

static void test_mail_with_cyrillic_subject_reads_back(void **state)
{
    (void)state;
    char *raw = build_mail(cyrillic_subject, "anna.sales@crm.example.ru");
    assert_non_null(raw);
    char error[128];
    cv_mail_t *mail = cv_mail_parse(raw, strlen(raw), error, sizeof(error));
    assert_non_null(mail);
    assert_string_equal(mail->subject, cyrillic_subject);
    assert_string_equal(mail->message_id, "ntf-task-42@crm.example.ru");
    assert_string_equal(mail->from_address, "conveyor@crm.example.ru");
    assert_non_null(strstr(mail->text, "Позвонить Ивану Петрову"));
    assert_non_null(strstr(mail->text, "lead-7"));
    cv_mail_destroy(&mail);
    free(raw);
}

static void test_mail_is_seven_bit_with_short_crlf_lines(void **state)
{
    (void)state;
    char *raw = build_mail(cyrillic_subject, "anna.sales@crm.example.ru");
    assert_non_null(raw);
    assert_non_null(strstr(raw, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(raw, "\r\nDate: Sat, 22 Nov 2025 18:50:19 "
                                "+0000\r\n"));
    assert_non_null(strstr(raw, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(strstr(raw, "Content-Type: text/plain; charset=UTF-8"));
    size_t line = 0;
    for (const char *p = raw; *p != '\0'; p++) {
        assert_true((unsigned char)*p < 0x80);
        if (*p == '\n') {
            assert_true(p > raw && p[-1] == '\r');
            line = 0;
        } else if (*p != '\r') {
            line++;
            assert_true(line <= 78);
        }
    }
    free(raw);
}

static void test_mail_plain_subject_stays_readable(void **state)
{
    (void)state;
    char *raw = build_mail("New lead: Acme Ltd (first contact by 12:00)",
                           "anna@example.com");
    assert_non_null(raw);
    assert_non_null(strstr(raw, "\r\nSubject: New lead: Acme Ltd (first "
                                "contact by 12:00)\r\n"));
    free(raw);
}

static void test_mail_refuses_header_injection(void **state)
{
    (void)state;
    assert_null(build_mail("Hi", "anna@example.com\r\nBcc: all@example.com"));
    assert_null(build_mail("Hi", "<anna@example.com>"));
    /* a subject's line breaks become spaces instead */
    char *raw = build_mail("Hi\r\nBcc: all@example.com", "anna@example.com");
    assert_non_null(raw);
    assert_null(strstr(raw, "\r\nBcc:"));
    free(raw);
}

static void test_mail_address_of_from(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(
        notifier_mail_address("Conveyor <bot@crm.ru>", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "bot@crm.ru");
    assert_int_equal(notifier_mail_address("bot@crm.ru", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "bot@crm.ru");
    assert_int_equal(notifier_mail_address("Conveyor", buf, sizeof(buf)), -1);
}

static void test_telegram_body_numeric_chat_and_long_text(void **state)
{
    (void)state;
    char *body = notifier_telegram_body("-1001234567890", "Новый лид");
    assert_non_null(body);
    json_t *parsed = json_loads(body, 0, NULL);
    assert_true(json_is_integer(json_object_get(parsed, "chat_id")));
    assert_int_equal(json_integer_value(json_object_get(parsed, "chat_id")),
                     -1001234567890LL);
    assert_string_equal(json_string_value(json_object_get(parsed, "text")),
                        "Новый лид");
    json_decref(parsed);
    free(body);

    char *text = malloc(5001 * 2 + 1);
    for (int i = 0; i < 5001; i++)
        memcpy(text + 2 * i, "я", 2);
    text[5001 * 2] = '\0';
    body = notifier_telegram_body("@sales_team", text);
    parsed = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(parsed, "chat_id")),
                        "@sales_team");
    assert_int_equal(strlen(json_string_value(json_object_get(parsed, "text"))),
                     4096 * 2);
    json_decref(parsed);
    free(body);
    free(text);
}

static void test_telegram_reply_too_many_requests(void **state)
{
    (void)state;
    const char reply[] = "{\"ok\":false,\"error_code\":429,\"description\":"
                         "\"Too Many Requests: retry after 5\","
                         "\"parameters\":{\"retry_after\":5}}";
    int code = 0;
    int64_t retry = 0;
    char error[128];
    assert_false(notifier_telegram_reply(reply, strlen(reply), &code, &retry,
                                         error, sizeof(error)));
    assert_int_equal(code, 429);
    assert_int_equal(retry, 5000);
    assert_string_equal(error, "telegram: Too Many Requests: retry after 5");

    const char blocked[] = "{\"ok\":false,\"error_code\":403,\"description\":"
                           "\"Forbidden: bot was blocked by the user\"}";
    assert_false(notifier_telegram_reply(blocked, strlen(blocked), &code,
                                         &retry, error, sizeof(error)));
    assert_int_equal(code, 403);
    assert_int_equal(retry, -1);

    const char ok[] = "{\"ok\":true,\"result\":{\"message_id\":17}}";
    assert_true(notifier_telegram_reply(ok, strlen(ok), &code, &retry, error,
                                        sizeof(error)));
    assert_false(notifier_telegram_reply("<html>bad gateway</html>", 24, &code,
                                         &retry, error, sizeof(error)));
}

static void test_slack_text_escapes_and_names_the_lead(void **state)
{
    (void)state;
    char *body =
        notifier_slack_body("New lead: Smith & Sons <smith.io>",
                            "Call back today", "lead-7", "ntf-task-42");
    json_t *parsed = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(parsed, "text")),
                        "*New lead: Smith &amp; Sons &lt;smith.io&gt;*\n"
                        "Call back today\nLead id: lead-7");
    json_decref(parsed);
    free(body);
}

static void test_message_text_mentions_the_lead_once(void **state)
{
    (void)state;
    char *text =
        notifier_message_text("New lead", "Lead id: lead-7", "lead-7", "ntf-1");
    assert_string_equal(text, "New lead\n\nLead id: lead-7");
    free(text);
    text = notifier_message_text(NULL, NULL, "lead-7", "ntf-1");
    assert_string_equal(text, "Conveyor notification ntf-1\nLead id: lead-7");
    free(text);
    /* bytes that are not UTF-8 do not reach Telegram or the mail */
    text = notifier_message_text("Lead \xff\xfe", NULL, NULL, "ntf-1");
    assert_string_equal(text, "Lead ??");
    free(text);
}

/* A routing request for a webhook: the job keeps its own copies (the
 * request is freed once handled) and the body is the request's payload,
 * sent as it came. */
static void test_job_copies_a_webhook_request(void **state)
{
    (void)state;
    char id[] = "ntf-lead_01-first-contact";
    char url[] = "https://crm.example.com/hooks/conveyor";
    char payload[] = "{\"kind\":\"task_created\",\"lead_id\":\"lead_01\"}";
    char subject[] = "New lead: Ivan Petrov, ООО Ромашка";
    Conveyor__NotificationRequested rq = CONVEYOR__NOTIFICATION_REQUESTED__INIT;
    rq.notification_id = id;
    rq.lead_id = "lead_01";
    rq.subject = subject;
    rq.payload_json = payload;
    char *owned = NULL;
    const char *body = notifier_job_body(&rq, &owned);
    assert_ptr_equal(body, payload); /* valid JSON: no copy made */
    assert_null(owned);
    notifier_job_fields_t fields = {
        .notification_id = id,
        .channel = NOTIFIER_WEBHOOK,
        .destination = url,
        .lead_id = rq.lead_id,
        .subject = subject,
        .body = body,
    };
    notifier_job_t *job = notifier_job_new(&fields);
    assert_non_null(job);
    memset(id, 'x', sizeof(id) - 1);
    memset(payload, ' ', sizeof(payload) - 1);
    assert_string_equal(job->notification_id, "ntf-lead_01-first-contact");
    assert_string_equal(job->destination, url);
    assert_string_equal(job->subject, "New lead: Ivan Petrov, ООО Ромашка");
    assert_string_equal(job->body,
                        "{\"kind\":\"task_created\",\"lead_id\":\"lead_01\"}");
    assert_null(job->staff_id);
    assert_null(job->text);
    assert_int_equal(job->retry_after_ms, -1);
    notifier_job_destroy(&job);
    assert_null(job);

    /* without a payload, the body is made from the fields */
    rq.payload_json = NULL;
    rq.notification_id = "ntf-2";
    body = notifier_job_body(&rq, &owned);
    assert_non_null(owned);
    assert_ptr_equal(body, owned);
    assert_non_null(strstr(body, "\"notification_id\":\"ntf-2\""));
    free(owned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_header_is_hmac_of_time_and_body),
        cmocka_unit_test(test_signature_changes_with_body_time_and_secret),
        cmocka_unit_test(test_mail_with_cyrillic_subject_reads_back),
        cmocka_unit_test(test_mail_is_seven_bit_with_short_crlf_lines),
        cmocka_unit_test(test_mail_plain_subject_stays_readable),
        cmocka_unit_test(test_mail_refuses_header_injection),
        cmocka_unit_test(test_mail_address_of_from),
        cmocka_unit_test(test_telegram_body_numeric_chat_and_long_text),
        cmocka_unit_test(test_telegram_reply_too_many_requests),
        cmocka_unit_test(test_slack_text_escapes_and_names_the_lead),
        cmocka_unit_test(test_message_text_mentions_the_lead_once),
        cmocka_unit_test(test_job_copies_a_webhook_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

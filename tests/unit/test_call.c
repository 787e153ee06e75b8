/* cv_call: call events as Twilio and generic call-tracking services post
 * them, what intake learns from each, and the ones it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cv_call.h"

#define FORM "application/x-www-form-urlencoded"
#define JSON "application/json; charset=utf-8"

/* Twilio's status callback for an inbound call nobody picked up. */
static const char twilio_missed[] =
    "Called=%2B74951234567&ToState=&CallerCountry=RU&Direction=inbound"
    "&Timestamp=Tue%2C+10+Jan+2023+15%3A04%3A05+%2B0000"
    "&CallbackSource=call-progress-events&SequenceNumber=0&CallerState="
    "&CallSid=CA5f7b9a1e2d3c4b5a69788796a5b4c3d2&To=%2B74951234567"
    "&CallerZip=&ToCountry=RU&ApiVersion=2010-04-01&CallStatus=no-answer"
    "&From=%2B79123456789&AccountSid=AC0123456789abcdef0123456789abcdef"
    "&CalledCountry=RU&Caller=%2B79123456789&FromCountry=RU"
    "&CallDuration=0";

/* A call-tracking service's webhook for a call a manager answered. */
static const char generic_answered[] =
    "{\"call_id\": \"mango-7781\",\n"
    " \"caller\": \"+7 (912) 345-67-89\",\n"
    " \"called\": \"+7 495 123-45-67\",\n"
    " \"caller_name\": \"Иван Петров\",\n"
    " \"started_at\": \"2026-11-22T15:41:18+03:00\",\n"
    " \"duration\": 184,\n"
    " \"status\": \"answered\",\n"
    " \"recording_url\": \"https://records.example.ru/7781.mp3\"}";

static void parse_ok(const char *type, const char *body, cv_call_t *call)
{
    cv_call_error_t err = {0};
    if (cv_call_parse(type, body, strlen(body), call, &err) != 0)
        fail_msg("refused: '%s': %s", err.field, err.reason);
}

static void expect_refused(const char *type, const char *body, int status,
                           const char *field, const char *reason)
{
    cv_call_t call;
    cv_call_error_t err = {0};
    assert_int_equal(cv_call_parse(type, body, strlen(body), &call, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.field, field);
    assert_string_equal(err.reason, reason);
    assert_null(call.call_id); /* cleared */
}

static void test_twilio_missed_call(void **state)
{
    (void)state;
    cv_call_t call;
    parse_ok(FORM, twilio_missed, &call);
    assert_string_equal(call.call_id, "CA5f7b9a1e2d3c4b5a69788796a5b4c3d2");
    assert_string_equal(call.caller, "+79123456789");
    assert_string_equal(call.called, "+74951234567");
    assert_int_equal(call.status, CV_CALL_MISSED);
    assert_true(call.missed);
    assert_string_equal(call.status_text, "no-answer");
    assert_true(call.has_duration);
    assert_int_equal(call.duration_s, 0);
    assert_true(call.has_started_at);
    assert_int_equal(call.started_at_ms, 1673363045000LL);
    assert_null(call.recording_url);
    assert_string_equal(cv_call_status_name(call.status), "missed");
    cv_call_clear(&call);
    assert_null(call.caller);
}

static void test_twilio_dial_outcome_wins(void **state)
{
    (void)state;
    cv_call_t call;
    /* the <Dial> action callback: the caller's leg is still in progress,
     * the manager's phone was not answered */
    parse_ok(FORM,
             "CallSid=CA11&From=%2B79123456789&To=%2B74951234567"
             "&CallStatus=in-progress&DialCallStatus=no-answer"
             "&DialCallDuration=0",
             &call);
    assert_true(call.missed);
    assert_string_equal(call.status_text, "no-answer");
    cv_call_clear(&call);
    parse_ok(FORM,
             "CallSid=CA12&From=%2B79123456789&CallStatus=completed"
             "&CallDuration=95&RecordingUrl=https%3A%2F%2Fapi.twilio.com"
             "%2F2010-04-01%2FAccounts%2FAC01%2FRecordings%2FRE01",
             &call);
    assert_int_equal(call.status, CV_CALL_ANSWERED);
    assert_false(call.missed);
    assert_int_equal(call.duration_s, 95);
    assert_string_equal(call.recording_url,
                        "https://api.twilio.com/2010-04-01/Accounts/AC01/"
                        "Recordings/RE01");
    cv_call_clear(&call);
}

static void test_twilio_ringing_is_pending(void **state)
{
    (void)state;
    cv_call_t call;
    parse_ok(FORM,
             "CallSid=CA13&From=%2B79123456789&To=%2B74951234567"
             "&CallStatus=ringing&Direction=inbound",
             &call);
    assert_int_equal(call.status, CV_CALL_PENDING);
    assert_false(call.missed);
    assert_false(call.has_duration);
    assert_string_equal(cv_call_status_name(call.status), "pending");
    cv_call_clear(&call);
}

static void test_generic_answered_json(void **state)
{
    (void)state;
    cv_call_t call;
    parse_ok(JSON, generic_answered, &call);
    assert_string_equal(call.call_id, "mango-7781");
    assert_string_equal(call.caller, "+7 (912) 345-67-89");
    assert_string_equal(call.called, "+7 495 123-45-67");
    assert_string_equal(call.caller_name, "Иван Петров");
    assert_int_equal(call.status, CV_CALL_ANSWERED);
    assert_false(call.missed);
    assert_string_equal(call.status_text, "answered");
    assert_int_equal(call.duration_s, 184);
    assert_int_equal(call.started_at_ms, 1795351278000LL);
    assert_string_equal(call.recording_url,
                        "https://records.example.ru/7781.mp3");
    cv_call_clear(&call);
}

static void test_status_from_duration(void **state)
{
    (void)state;
    cv_call_t call;
    /* numeric ids and phones, as some trackers send them */
    parse_ok(JSON,
             "{\"call_id\": 990017, \"caller\": 79123456789, "
             "\"duration\": 37}",
             &call);
    assert_string_equal(call.call_id, "990017");
    assert_string_equal(call.caller, "79123456789");
    assert_int_equal(call.status, CV_CALL_ANSWERED);
    assert_null(call.status_text);
    cv_call_clear(&call);
    parse_ok(FORM, "call_id=990018&caller=89123456789&duration=0", &call);
    assert_true(call.missed);
    cv_call_clear(&call);
    /* nothing says anybody answered: a call-back */
    parse_ok(FORM, "call_id=990019&caller=89123456789&status=", &call);
    assert_true(call.missed);
    assert_false(call.has_duration);
    assert_false(call.has_started_at);
    cv_call_clear(&call);
    /* a multipart form works as well */
    parse_ok("multipart/form-data; boundary=X",
             "--X\r\nContent-Disposition: form-data; name=\"call_id\"\r\n\r\n"
             "990020\r\n--X\r\nContent-Disposition: form-data; "
             "name=\"caller\"\r\n\r\n+79123456789\r\n--X\r\n"
             "Content-Disposition: form-data; name=\"status\"\r\n\r\n"
             "MISSED\r\n--X--\r\n",
             &call);
    assert_true(call.missed);
    assert_string_equal(call.status_text, "missed");
    cv_call_clear(&call);
}

static void test_field_errors(void **state)
{
    (void)state;
    expect_refused(JSON,
                   "{\"call_id\": \"c1\", \"caller\": \"+79123456789\","
                   " \"started_at\": \"22.11.2026 15:41\"}",
                   422, "started_at",
                   "not an RFC 3339 time (2026-11-22T15:41:18+03:00)");
    expect_refused(JSON,
                   "{\"call_id\": \"c1\", \"caller\": \"+79123456789\","
                   " \"started_at\": \"2026-11-22\"}",
                   422, "started_at",
                   "not an RFC 3339 time (2026-11-22T15:41:18+03:00)");
    expect_refused(JSON,
                   "{\"call_id\": \"c1\", \"caller\": \"+79123456789\","
                   " \"started_at\": 1795351278}",
                   422, "started_at",
                   "not an RFC 3339 time (2026-11-22T15:41:18+03:00)");
    expect_refused(FORM,
                   "CallSid=CA1&From=%2B79123456789"
                   "&Timestamp=yesterday",
                   422, "Timestamp", "not an RFC 2822 or RFC 3339 time");
    expect_refused(JSON, "{\"caller\": \"+79123456789\"}", 422, "call_id",
                   "required");
    expect_refused(FORM, "CallSid=&From=%2B79123456789", 422, "call_id",
                   "required");
    expect_refused(FORM, "CallSid=CA1&To=%2B74951234567", 422, "caller",
                   "required");
    expect_refused(JSON, "{\"call_id\": \"c1\", \"caller\": true}", 422,
                   "caller", "must be a string");
    expect_refused(JSON,
                   "{\"call_id\": \"c1\", \"caller\": \"+7912\", "
                   "\"duration\": -5}",
                   422, "duration",
                   "must be a whole number of seconds, at least 0");
    expect_refused(JSON,
                   "{\"call_id\": \"c1\", \"caller\": \"+7912\", "
                   "\"duration\": 12.5}",
                   422, "duration",
                   "must be a whole number of seconds, at least 0");
    expect_refused(FORM, "CallSid=CA1&From=%2B7912&CallDuration=12s", 422,
                   "CallDuration",
                   "must be a whole number of seconds, at least 0");
    expect_refused(FORM, "CallSid=CA1&From=%2B7912&CallStatus=voicemail", 422,
                   "CallStatus",
                   "must be answered or missed (or a Twilio call status)");
}

static void test_body_errors(void **state)
{
    (void)state;
    expect_refused(JSON, "{\"call_id\": ", 400, "",
                   "invalid JSON at line 1, column 12: "
                   "unexpected token near end of file");
    expect_refused(JSON, "[\"c1\"]", 400, "",
                   "a call event must be a JSON object");
    expect_refused("text/csv", "c1,+79123456789", 415, "",
                   "send application/json, application/x-www-form-urlencoded"
                   " or multipart/form-data");
    /* the form's own refusal comes through with its field */
    expect_refused(FORM, "CallSid=CA1&From=%2B7912&CallerName=%C8%E2%E0%ED",
                   400, "CallerName", "not valid UTF-8");
}

static void test_rfc2822_times(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(
        cv_call_parse_rfc2822("Tue, 10 Jan 2023 15:04:05 +0000", &ms), 0);
    assert_int_equal(ms, 1673363045000LL);
    assert_int_equal(cv_call_parse_rfc2822("10 Jan 2023 18:04:05 +0300", &ms),
                     0);
    assert_int_equal(ms, 1673363045000LL);
    assert_int_equal(
        cv_call_parse_rfc2822("Tue, 10 Jan 2023 10:04:05 EST", &ms), 0);
    assert_int_equal(ms, 1673363045000LL);
    assert_int_equal(cv_call_parse_rfc2822("1 mar 2024 09:30 GMT", &ms), 0);
    assert_int_equal(ms, 1709285400000LL);
    assert_int_equal(cv_call_parse_rfc2822("30 Feb 2023 10:00:00 +0000", &ms),
                     -1);
    assert_int_equal(cv_call_parse_rfc2822("10 Jan 2023 25:00:00 +0000", &ms),
                     -1);
    assert_int_equal(cv_call_parse_rfc2822("10 Jan 2023 10:00:00 MSK", &ms),
                     -1);
    assert_int_equal(cv_call_parse_rfc2822("10 Jan 2023 10:00:00", &ms), -1);
    assert_int_equal(cv_call_parse_rfc2822("10 Jan 2023 10:00:00 +0000 x", &ms),
                     -1);
    assert_int_equal(cv_call_parse_rfc2822("", &ms), -1);
    assert_int_equal(cv_call_parse_rfc2822("Tue,", &ms), -1);
    assert_int_equal(cv_call_parse_rfc2822(NULL, &ms), -1);
}

/* Every cut of real events parses or is refused without a crash or leak. */
static void test_truncated_events(void **state)
{
    (void)state;
    const struct {
        const char *type; /* Content-Type */
        const char *body; /* a real event */
    } events[] = {{FORM, twilio_missed}, {JSON, generic_answered}};
    for (size_t e = 0; e < 2; e++) {
        size_t full = strlen(events[e].body);
        for (size_t n = 0; n <= full; n++) {
            char *copy = malloc(n > 0 ? n : 1);
            assert_non_null(copy);
            memcpy(copy, events[e].body, n);
            cv_call_t call;
            if (cv_call_parse(events[e].type, copy, n, &call, NULL) == 0)
                cv_call_clear(&call);
            free(copy);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twilio_missed_call),
        cmocka_unit_test(test_twilio_dial_outcome_wins),
        cmocka_unit_test(test_twilio_ringing_is_pending),
        cmocka_unit_test(test_generic_answered_json),
        cmocka_unit_test(test_status_from_duration),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_rfc2822_times),
        cmocka_unit_test(test_truncated_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

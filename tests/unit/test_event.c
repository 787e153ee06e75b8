/* cv_event: envelopes on the wire and the JSON the console shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cv_event.h"

/* A scored lead as scoring would send it; static storage, not freed. */
static Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
static Conveyor__ScoreParam budget = CONVEYOR__SCORE_PARAM__INIT;
static Conveyor__ScoreParam decision = CONVEYOR__SCORE_PARAM__INIT;
static Conveyor__ScoreParam *params[2];
static Conveyor__Score score = CONVEYOR__SCORE__INIT;
static Conveyor__LeadScored scored = CONVEYOR__LEAD_SCORED__INIT;

static void make_scored(Conveyor__Envelope *env)
{
    lead.lead_id = "lead_9f86d081884c7d65";
    lead.name = "Anna Petrova";
    lead.company = "Romashka LLC";
    lead.phone = "+79161234567";
    lead.email = "anna@romashka.ru";
    lead.channel = "web";
    lead.has_budget = 1;
    lead.budget = 500000;
    lead.currency = "RUB";
    lead.utm_source = "yandex";
    lead.extra_json = "{\"employees\":120,\"tags\":[\"crm\"]}";
    lead.has_received_at = 1;
    lead.received_at = 1795362078123LL;
    lead.domain = "romashka.ru";

    budget.name = "budget";
    budget.block = "request";
    budget.value = 1;
    budget.source = "auto:budget";
    budget.reason = "budget 500000 RUB over 300000";
    decision.name = "decision_maker";
    decision.block = "fit";
    decision.value = -1;
    params[0] = &budget;
    params[1] = &decision;
    score.total = 5;
    score.segment = "B";
    score.n_params = 2;
    score.params = params;
    score.model_version = "v1";

    scored.lead = &lead;
    scored.score = &score;
    env->version = 1;
    env->event_id = "evt_0123456789abcdef";
    env->type = CONVEYOR__EVENT_TYPE__LEAD_SCORED;
    env->lead_id = lead.lead_id;
    env->occurred_at = 1795362078123LL;
    env->producer = "scoring";
    env->body_case = CONVEYOR__ENVELOPE__BODY_LEAD_SCORED;
    env->lead_scored = &scored;
}

static void test_scored_lead_round_trips(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    assert_true(size > 0);

    Conveyor__Envelope *back = cv_event_unpack(bytes, size);
    assert_non_null(back);
    assert_int_equal(back->type, CONVEYOR__EVENT_TYPE__LEAD_SCORED);
    assert_int_equal(cv_event_type_of(back), CONVEYOR__EVENT_TYPE__LEAD_SCORED);
    assert_string_equal(back->event_id, "evt_0123456789abcdef");
    assert_string_equal(back->producer, "scoring");
    assert_string_equal(back->lead_scored->lead->email, "anna@romashka.ru");
    assert_int_equal(back->lead_scored->score->total, 5);
    assert_int_equal(back->lead_scored->score->params[1]->value, -1);
    assert_string_equal(cv_event_body_lead_id(back), "lead_9f86d081884c7d65");
    cv_event_free(back);
    cv_event_free(NULL);
    free(bytes);
}

static void test_garbage_does_not_unpack(void **state)
{
    (void)state;
    const char *text = "hello, this is not an envelope";
    assert_null(cv_event_unpack((const uint8_t *)text, strlen(text)));
    assert_null(cv_event_unpack(NULL, 0));
    uint8_t zeros[16] = {0};
    assert_null(cv_event_unpack(zeros, sizeof(zeros)));

    /* every cut-short copy of a real envelope is refused */
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    for (size_t cut = 1; cut < size; cut++) {
        Conveyor__Envelope *back = cv_event_unpack(bytes, cut);
        if (back != NULL) {
            cv_event_free(back);
            fail_msg("a %zu-byte prefix of %zu bytes unpacked", cut, size);
        }
    }
    free(bytes);
}

/* The bus unpacks event after event in one arena: each reads back whole,
 * an event bigger than a block (a 200 KB message) fits, a cut-short one is
 * refused, and a reset takes everything back for the next. */
static void test_arena_unpacks_event_after_event(void **state)
{
    (void)state;
    cv_event_arena_t *arena = cv_event_arena_new();
    assert_non_null(arena);
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    for (int i = 0; i < 1000; i++) {
        Conveyor__Envelope *back = cv_event_unpack_in(arena, bytes, size);
        assert_non_null(back);
        assert_string_equal(back->lead_scored->lead->email,
                            "anna@romashka.ru");
        assert_int_equal(back->lead_scored->score->params[1]->value, -1);
        assert_null(cv_event_unpack_in(arena, bytes, size / 2));
        cv_event_arena_reset(arena);
    }
    free(bytes);

    char *message = malloc(200 * 1024);
    assert_non_null(message);
    memset(message, 'z', 200 * 1024 - 1);
    message[200 * 1024 - 1] = '\0';
    env.lead_scored->lead->message = message;
    bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    Conveyor__Envelope *big = cv_event_unpack_in(arena, bytes, size);
    assert_non_null(big);
    assert_int_equal(strlen(big->lead_scored->lead->message), 200 * 1024 - 1);
    assert_string_equal(big->lead_scored->lead->name, "Anna Petrova");
    cv_event_arena_reset(arena);
    free(bytes);
    free(message);
    cv_event_arena_destroy(&arena);
    assert_null(arena);
    cv_event_arena_destroy(&arena);
}

static void test_type_must_match_body(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    env.type = CONVEYOR__EVENT_TYPE__LEAD_RECEIVED;
    size_t size = 0;
    assert_null(cv_event_pack(&env, &size));

    /* a peer that packs it anyway is refused on arrival */
    size = conveyor__envelope__get_packed_size(&env);
    uint8_t *bytes = malloc(size);
    assert_non_null(bytes);
    conveyor__envelope__pack(&env, bytes);
    assert_null(cv_event_unpack(bytes, size));
    free(bytes);

    /* and so is an envelope with no body at all */
    Conveyor__Envelope empty = CONVEYOR__ENVELOPE__INIT;
    empty.version = 1;
    empty.event_id = "evt_1";
    empty.type = CONVEYOR__EVENT_TYPE__LEAD_SCORED;
    empty.producer = "scoring";
    size = conveyor__envelope__get_packed_size(&empty);
    bytes = malloc(size);
    assert_non_null(bytes);
    conveyor__envelope__pack(&empty, bytes);
    assert_null(cv_event_unpack(bytes, size));
    free(bytes);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(cv_event_type_name(CONVEYOR__EVENT_TYPE__LEAD_RECEIVED),
                        "lead_received");
    assert_string_equal(
        cv_event_type_name(CONVEYOR__EVENT_TYPE__NOTIFICATION_DELIVERED),
        "notification_delivered");
    assert_string_equal(
        cv_event_type_name(CONVEYOR__EVENT_TYPE__ACCOUNT_OPENED),
        "account_opened");
    assert_string_equal(cv_event_type_name(CONVEYOR__EVENT_TYPE__EVENT_UNKNOWN),
                        "unknown");
    assert_string_equal(cv_event_type_name((Conveyor__EventType)99), "unknown");
}

static void test_body_lead_id_for_other_bodies(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    Conveyor__TaskCreated task = CONVEYOR__TASK_CREATED__INIT;
    task.task_id = "task_1";
    task.lead_id = "lead_7";
    task.staff_id = "staff_1";
    task.kind = "first_contact";
    task.due_at = 1;
    env.version = 1;
    env.event_id = "evt_2";
    env.type = CONVEYOR__EVENT_TYPE__TASK_CREATED;
    env.producer = "followup-scheduler";
    env.body_case = CONVEYOR__ENVELOPE__BODY_TASK_CREATED;
    env.task_created = &task;
    assert_string_equal(cv_event_body_lead_id(&env), "lead_7");

    Conveyor__StaffMember member = CONVEYOR__STAFF_MEMBER__INIT;
    Conveyor__StaffUpdated staff = CONVEYOR__STAFF_UPDATED__INIT;
    member.staff_id = "staff_1";
    staff.staff = &member;
    env.type = CONVEYOR__EVENT_TYPE__STAFF_UPDATED;
    env.body_case = CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED;
    env.staff_updated = &staff;
    assert_null(cv_event_body_lead_id(&env));
    assert_int_equal(cv_event_type_of(&env),
                     CONVEYOR__EVENT_TYPE__STAFF_UPDATED);
}

static void test_lead_json_uses_api_names(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    json_t *obj = cv_event_lead_to_json(&lead);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "lead_id")),
                        "lead_9f86d081884c7d65");
    assert_string_equal(json_string_value(json_object_get(obj, "name")),
                        "Anna Petrova");
    assert_string_equal(json_string_value(json_object_get(obj, "utm_source")),
                        "yandex");
    assert_string_equal(
        json_string_value(json_object_get(obj, "received_at")),
        "2026-11-22T15:41:18.123Z");
    assert_int_equal(json_integer_value(json_object_get(obj, "budget")),
                     500000);
    json_t *extra = json_object_get(obj, "extra");
    assert_true(json_is_object(extra));
    assert_int_equal(json_integer_value(json_object_get(extra, "employees")),
                     120);
    assert_null(json_object_get(obj, "extra_json"));
    assert_string_equal(json_string_value(json_object_get(obj, "domain")),
                        "romashka.ru");
    /* unset fields are left out */
    assert_null(json_object_get(obj, "telegram"));
    assert_null(json_object_get(obj, "inn"));
    json_decref(obj);

    /* a fractional budget stays a number with its fraction */
    lead.budget = 1500.5;
    obj = cv_event_lead_to_json(&lead);
    assert_true(json_is_real(json_object_get(obj, "budget")));
    json_decref(obj);
}

static void test_score_json_has_params_by_name(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    json_t *obj = cv_event_score_to_json(&score);
    assert_non_null(obj);
    json_t *expected = json_loads(
        "{\"total\":5,\"segment\":\"B\",\"knocked_out\":false,"
        "\"model_version\":\"v1\",\"params\":{"
        "\"budget\":{\"value\":1,\"block\":\"request\","
        "\"source\":\"auto:budget\","
        "\"reason\":\"budget 500000 RUB over 300000\"},"
        "\"decision_maker\":{\"value\":-1,\"block\":\"fit\"}}}",
        0, NULL);
    assert_non_null(expected);
    if (!json_equal(obj, expected)) {
        char *got = json_dumps(obj, JSON_SORT_KEYS);
        fail_msg("score JSON was %s", got);
    }
    json_decref(expected);
    json_decref(obj);

    score.has_knocked_out = 1;
    score.knocked_out = 1;
    score.knockout_reason = "competitor";
    obj = cv_event_score_to_json(&score);
    assert_true(json_is_true(json_object_get(obj, "knocked_out")));
    assert_string_equal(
        json_string_value(json_object_get(obj, "knockout_reason")),
        "competitor");
    json_decref(obj);
    score.has_knocked_out = 0;
    score.knocked_out = 0;
    score.knockout_reason = NULL;
}

static void test_notify_json(void **state)
{
    (void)state;
    Conveyor__NotifyTarget target = CONVEYOR__NOTIFY_TARGET__INIT;
    target.telegram_chat_id = "12345";
    json_t *obj = cv_event_notify_to_json(&target);
    assert_non_null(obj);
    assert_int_equal(json_object_size(obj), 1);
    assert_string_equal(
        json_string_value(json_object_get(obj, "telegram_chat_id")), "12345");
    json_decref(obj);
    assert_null(cv_event_notify_to_json(NULL));
    assert_null(cv_event_lead_to_json(NULL));
    assert_null(cv_event_score_to_json(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scored_lead_round_trips),
        cmocka_unit_test(test_garbage_does_not_unpack),
        cmocka_unit_test(test_type_must_match_body),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_body_lead_id_for_other_bodies),
        cmocka_unit_test(test_lead_json_uses_api_names),
        cmocka_unit_test(test_score_json_has_params_by_name),
        cmocka_unit_test(test_notify_json),
        cmocka_unit_test(test_arena_unpacks_event_after_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

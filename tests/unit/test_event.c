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

/* Makes `scored` a re-score: the segment was C, the total -2. */
static void scored_as_rescore(void)
{
    scored.has_rescore = 1;
    scored.rescore = 1;
    scored.previous_segment = "C";
    scored.has_previous_total = 1;
    scored.previous_total = -2;
}

/* Makes `scored` a first score again (no re-score, no scorecard). */
static void scored_as_first(void)
{
    scored.has_rescore = 0;
    scored.rescore = 0;
    scored.previous_segment = NULL;
    scored.has_previous_total = 0;
    scored.previous_total = 0;
    scored.scorecard = NULL;
}

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

/* Routing keeps a LeadScored as the bytes it arrived in, cut out of the
 * envelope, instead of packing its unpacked copy: those bytes must be
 * exactly what packing the LeadScored alone writes (what it stored
 * before), also for a re-score that carries a scorecard, negative sint32s
 * and a message in Cyrillic. */
static void test_body_bytes_are_the_lead_scored_packed_alone(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    lead.message = "Здравствуйте! Нужна CRM на 120 сотрудников, бюджет "
                   "до 500 000 ₽, звоните после 15:00";
    env.trace_id = "trc_7d1a54127b222502";
    Conveyor__ScorecardParam manual = CONVEYOR__SCORECARD_PARAM__INIT;
    manual.name = "decision_maker";
    manual.value = 1;
    manual.actor = "staff_head_1";
    manual.has_set_at = 1;
    manual.set_at = 1795362178123LL;
    Conveyor__ScorecardParam *manual_params[] = {&manual};
    Conveyor__Scorecard card = CONVEYOR__SCORECARD__INIT;
    card.lead_id = lead.lead_id;
    card.revision = 2;
    card.n_params = 1;
    card.params = manual_params;
    card.actor = "staff_head_1";
    char *changed[] = {"decision_maker"};
    card.n_changed = 1;
    card.changed = changed;
    card.scorecard_id = "sc_3f2a";
    scored_as_rescore();
    scored.scorecard = &card;

    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal(cv_event_field_bytes(bytes, size,
                                          CONVEYOR__ENVELOPE__BODY_LEAD_SCORED,
                                          &body, &body_size),
                     0);
    assert_true(body > bytes && body + body_size <= bytes + size);

    /* what the sender's LeadScored packs to alone ... */
    size_t alone_size = conveyor__lead_scored__get_packed_size(&scored);
    uint8_t *alone = malloc(alone_size);
    assert_non_null(alone);
    assert_int_equal(conveyor__lead_scored__pack(&scored, alone), alone_size);
    assert_int_equal(body_size, alone_size);
    assert_memory_equal(body, alone, alone_size);

    /* ... and what routing packed before: the unpacked copy, packed */
    Conveyor__Envelope *back = cv_event_unpack(bytes, size);
    assert_non_null(back);
    size_t again_size =
        conveyor__lead_scored__get_packed_size(back->lead_scored);
    uint8_t *again = malloc(again_size);
    assert_non_null(again);
    conveyor__lead_scored__pack(back->lead_scored, again);
    assert_int_equal(body_size, again_size);
    assert_memory_equal(body, again, again_size);

    /* the bytes read back as the lead */
    Conveyor__LeadScored *kept =
        conveyor__lead_scored__unpack(NULL, body_size, body);
    assert_non_null(kept);
    assert_string_equal(kept->lead->message, lead.message);
    assert_int_equal(kept->previous_total, -2);
    assert_string_equal(kept->scorecard->params[0]->actor, "staff_head_1");
    conveyor__lead_scored__free_unpacked(kept, NULL);

    /* other fields: the envelope's texts, and bodies it does not have */
    assert_int_equal(cv_event_field_bytes(bytes, size, 7, &body, &body_size),
                     0);
    assert_int_equal(body_size, strlen("trc_7d1a54127b222502"));
    assert_memory_equal(body, "trc_7d1a54127b222502", body_size);
    assert_int_equal(cv_event_field_bytes(
                         bytes, size, CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED,
                         &body, &body_size),
                     -1);
    /* version (1) and occurred_at (5) are varints, not bytes */
    assert_int_equal(cv_event_field_bytes(bytes, size, 1, &body, &body_size),
                     -1);
    assert_int_equal(cv_event_field_bytes(bytes, size, 5, &body, &body_size),
                     -1);

    cv_event_free(back);
    free(again);
    free(alone);
    free(bytes);
    scored_as_first();
    lead.message = NULL;
}

/* Appends `value` as a varint; returns its length. */
static size_t put_varint(uint8_t *p, uint64_t value)
{
    size_t n = 0;
    while (value >= 0x80) {
        p[n++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    p[n++] = (uint8_t)value;
    return n;
}

/* Appends field `key` (already shifted, wire type 2) holding `data`. */
static size_t put_bytes(uint8_t *p, uint8_t key, const uint8_t *data,
                        size_t size)
{
    size_t n = 0;
    p[n++] = key;
    n += put_varint(p + n, size);
    memcpy(p + n, data, size);
    return n + size;
}

/* An envelope whose body lacks a required field deeper down (a LeadScored
 * without its score; a lead without its id) is refused by both unpacks:
 * they leave that check to protobuf-c's unpack, which does it at every
 * depth. A complete one built the same way unpacks. */
static void test_unpack_refuses_missing_required_fields(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    env.body_case = CONVEYOR__ENVELOPE__BODY__NOT_SET;
    uint8_t head[512];
    size_t head_size = conveyor__envelope__pack(&env, head);
    assert_true(head_size < sizeof(head));
    uint8_t lead_bytes[1024];
    size_t lead_size = conveyor__lead__pack(&lead, lead_bytes);
    uint8_t score_bytes[1024];
    size_t score_size = conveyor__score__pack(&score, score_bytes);
    /* a Lead with a name (field 2) and no lead_id (protobuf-c would pack
     * a NULL required text as "", so this one is written by hand) */
    uint8_t nameless_bytes[64];
    size_t nameless_size =
        put_bytes(nameless_bytes, 0x12, (const uint8_t *)"Anna Petrova", 12);

    cv_event_arena_t *arena = cv_event_arena_new();
    assert_non_null(arena);
    for (int variant = 0; variant < 3; variant++) {
        uint8_t body[2048];
        size_t body_size = 0;
        if (variant == 1)
            body_size += put_bytes(body, 0x0a, nameless_bytes, nameless_size);
        else
            body_size += put_bytes(body, 0x0a, lead_bytes, lead_size);
        if (variant != 0)
            body_size += put_bytes(body + body_size, 0x12, score_bytes,
                                   score_size);
        uint8_t whole[4096];
        memcpy(whole, head, head_size);
        size_t size =
            head_size + put_bytes(whole + head_size, 0x5a, body, body_size);
        Conveyor__Envelope *back = cv_event_unpack(whole, size);
        Conveyor__Envelope *in_arena = cv_event_unpack_in(arena, whole, size);
        if (variant == 2) {
            assert_non_null(back);
            assert_non_null(in_arena);
            assert_string_equal(back->lead_scored->score->segment, "B");
            assert_string_equal(in_arena->lead_scored->lead->lead_id,
                                "lead_9f86d081884c7d65");
        } else {
            assert_null(back);
            assert_null(in_arena);
        }
        cv_event_free(back);
        cv_event_arena_reset(arena);
    }
    cv_event_arena_destroy(&arena);
}

/* A copy of `size` bytes in a buffer of exactly that size (so ASan sees
 * any read past it); the caller frees it. */
static uint8_t *exact_copy(const uint8_t *bytes, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    assert_non_null(copy);
    if (size > 0)
        memcpy(copy, bytes, size);
    return copy;
}

/* Scans `size` bytes copied into a buffer of exactly that size (so ASan
 * sees any read past it) for field 11. */
static int scan_exact(const uint8_t *bytes, size_t size)
{
    uint8_t *copy = exact_copy(bytes, size);
    const uint8_t *body = NULL;
    size_t body_size = 0;
    int rc = cv_event_field_bytes(copy, size,
                                  CONVEYOR__ENVELOPE__BODY_LEAD_SCORED, &body,
                                  &body_size);
    if (rc == 0)
        assert_true(body >= copy && body + body_size <= copy + size);
    free(copy);
    return rc;
}

/* Cut-short, garbled or doubled envelopes give -1, never a read past the
 * end (the caller then packs the unpacked lead the usual way). */
static void test_body_bytes_of_malformed_input(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&env, &size);
    assert_non_null(bytes);
    assert_int_equal(scan_exact(bytes, size), 0);
    /* the body is the last field: every shorter prefix lacks it or cuts
     * it short */
    for (size_t cut = 0; cut < size; cut++)
        if (scan_exact(bytes, cut) != -1)
            fail_msg("a %zu-byte prefix of %zu bytes gave a body", cut, size);

    /* the body twice (protobuf would merge the two) */
    uint8_t *twice = malloc(2 * size);
    assert_non_null(twice);
    memcpy(twice, bytes, size);
    memcpy(twice + size, bytes, size);
    assert_int_equal(scan_exact(twice, 2 * size), -1);
    free(twice);

    const uint8_t *body = NULL;
    size_t body_size = 0;
    assert_int_equal(cv_event_field_bytes(NULL, 0, 11, &body, &body_size), -1);
    assert_int_equal(cv_event_field_bytes(bytes, size, 0, &body, &body_size),
                     -1);
    free(bytes);

    /* field 11 as a length of 2^64-1, as a varint of eleven bytes, as a
     * group, with wire type 7, and a length one past the end */
    const uint8_t huge[] = {0x5a, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    assert_int_equal(scan_exact(huge, sizeof(huge)), -1);
    const uint8_t long_varint[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x80, 0x80, 0x80, 0x01, 0x5a, 0x00};
    assert_int_equal(scan_exact(long_varint, sizeof(long_varint)), -1);
    const uint8_t group[] = {0x5b, 0x5c};
    assert_int_equal(scan_exact(group, sizeof(group)), -1);
    const uint8_t wire7[] = {0x5f, 0x00};
    assert_int_equal(scan_exact(wire7, sizeof(wire7)), -1);
    const uint8_t past[] = {0x08, 0x01, 0x5a, 0x03, 0x0a, 0x00};
    assert_int_equal(scan_exact(past, sizeof(past)), -1);
    /* fixed32/fixed64 fields cut short before the body */
    const uint8_t fixed64[] = {0x09, 0x01, 0x02, 0x5a, 0x00};
    assert_int_equal(scan_exact(fixed64, sizeof(fixed64)), -1);
    const uint8_t fixed32[] = {0x0d, 0x01, 0x02, 0x03};
    assert_int_equal(scan_exact(fixed32, sizeof(fixed32)), -1);

    /* and well-formed ones around them: fixed64, fixed32, a varint, then
     * an empty body */
    const uint8_t fine[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x0d, 1, 2, 3,
                            4,    0x18, 0x96, 0x01, 0x5a, 0x00};
    assert_int_equal(scan_exact(fine, sizeof(fine)), 0);
    assert_int_equal(cv_event_field_bytes(fine, sizeof(fine), 11, &body,
                                          &body_size),
                     0);
    assert_ptr_equal(body, fine + sizeof(fine));
    assert_int_equal(body_size, 0);
}

/* Asserts that field `field` of `msg` spans exactly `want` for `span`. */
static void assert_span(const uint8_t *msg, size_t size, uint32_t field,
                        cv_event_span_t span, const uint8_t *want,
                        size_t want_size)
{
    const uint8_t *out = NULL;
    size_t out_size = 0;
    assert_int_equal(
        cv_event_field_span(msg, size, field, span, &out, &out_size), 0);
    assert_true(out >= msg && out + out_size <= msg + size);
    assert_int_equal(out_size, want_size);
    assert_memory_equal(out, want, want_size);
}

static int span_of(const uint8_t *msg, size_t size, uint32_t field,
                   cv_event_span_t span)
{
    const uint8_t *out = NULL;
    size_t out_size = 0;
    return cv_event_field_span(msg, size, field, span, &out, &out_size);
}

/* The lead (first field, a two-byte length prefix) and the score (the
 * last field) of a LeadScored as scoring packs it: the value alone and
 * with its length prefix (what protobuf-c keeps of an unknown field) are
 * each the bytes packing that part writes. A field that is absent, a
 * varint, given twice, cut short, or whose length prefix is padded (for
 * the span with the prefix) gives -1. */
static void test_field_span_of_a_lead_scored(void **state)
{
    (void)state;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    make_scored(&env);
    uint8_t lead_alone[1024];
    size_t lead_size = conveyor__lead__pack(&lead, lead_alone);
    uint8_t score_alone[1024];
    size_t score_size = conveyor__score__pack(&score, score_alone);
    uint8_t body[2048];
    size_t body_size = conveyor__lead_scored__pack(&scored, body);
    uint8_t lead_field[1100];
    size_t lead_field_size = put_bytes(lead_field, 0x0a, lead_alone, lead_size);
    uint8_t score_field[1100];
    size_t score_field_size =
        put_bytes(score_field, 0x12, score_alone, score_size);
    assert_true(lead_size > 127); /* its length takes two bytes */
    assert_int_equal(lead_field_size, lead_size + 3);
    assert_int_equal(body_size, lead_field_size + score_field_size);

    uint8_t *msg = exact_copy(body, body_size);
    assert_span(msg, body_size, 1, CV_EVENT_SPAN_VALUE, lead_alone, lead_size);
    assert_span(msg, body_size, 1, CV_EVENT_SPAN_LENGTH, lead_field + 1,
                lead_field_size - 1);
    assert_span(msg, body_size, 2, CV_EVENT_SPAN_VALUE, score_alone,
                score_size);
    assert_span(msg, body_size, 2, CV_EVENT_SPAN_LENGTH, score_field + 1,
                score_field_size - 1);
    /* the score is the last field: its span starts after its tag and ends
     * where the message does */
    const uint8_t *out = NULL;
    size_t out_size = 0;
    assert_int_equal(cv_event_field_span(msg, body_size, 2,
                                         CV_EVENT_SPAN_LENGTH, &out,
                                         &out_size),
                     0);
    assert_ptr_equal(out, msg + lead_field_size + 1);
    assert_ptr_equal(out + out_size, msg + body_size);
    /* previous_segment (4) is not set; field 0 does not exist */
    for (int span = CV_EVENT_SPAN_VALUE; span <= CV_EVENT_SPAN_LENGTH;
         span++) {
        assert_int_equal(span_of(msg, body_size, 4, span), -1);
        assert_int_equal(span_of(msg, body_size, 0, span), -1);
    }
    /* every cut-short copy lacks the score or cuts it short */
    for (size_t cut = 0; cut < body_size; cut++) {
        uint8_t *part = exact_copy(body, cut);
        for (int span = CV_EVENT_SPAN_VALUE; span <= CV_EVENT_SPAN_LENGTH;
             span++)
            if (span_of(part, cut, 2, span) != -1)
                fail_msg("a %zu-byte prefix of %zu bytes gave a score", cut,
                         body_size);
        free(part);
    }
    free(msg);

    /* the score twice (protobuf would merge the two) */
    uint8_t twice[4096];
    memcpy(twice, body, body_size);
    memcpy(twice + body_size, score_field, score_field_size);
    msg = exact_copy(twice, body_size + score_field_size);
    for (int span = CV_EVENT_SPAN_VALUE; span <= CV_EVENT_SPAN_LENGTH;
         span++)
        assert_int_equal(span_of(msg, body_size + score_field_size, 2, span),
                         -1);
    free(msg);

    /* a re-score: rescore (3) is a varint, not bytes, and the score is no
     * longer last */
    scored_as_rescore();
    body_size = conveyor__lead_scored__pack(&scored, body);
    scored_as_first();
    msg = exact_copy(body, body_size);
    assert_int_equal(span_of(msg, body_size, 3, CV_EVENT_SPAN_VALUE), -1);
    assert_span(msg, body_size, 4, CV_EVENT_SPAN_LENGTH,
                (const uint8_t *)"\x01"
                                 "C",
                2);
    assert_span(msg, body_size, 2, CV_EVENT_SPAN_LENGTH, score_field + 1,
                score_field_size - 1);
    free(msg);

    /* the score's length padded to two bytes: the value is still there,
     * but the span with the padded prefix is not what packing writes;
     * then its tag padded instead, which that span does not include */
    uint8_t padded[2048];
    size_t n = 0;
    memcpy(padded, lead_field, lead_field_size);
    n += lead_field_size;
    padded[n++] = 0x12;
    assert_true(score_size < 128);
    padded[n++] = (uint8_t)(score_size | 0x80);
    padded[n++] = 0x00;
    memcpy(padded + n, score_alone, score_size);
    n += score_size;
    msg = exact_copy(padded, n);
    assert_span(msg, n, 2, CV_EVENT_SPAN_VALUE, score_alone, score_size);
    assert_int_equal(span_of(msg, n, 2, CV_EVENT_SPAN_LENGTH), -1);
    free(msg);
    n = lead_field_size;
    padded[n++] = 0x92;
    padded[n++] = 0x00;
    n += put_varint(padded + n, score_size);
    memcpy(padded + n, score_alone, score_size);
    n += score_size;
    msg = exact_copy(padded, n);
    assert_span(msg, n, 2, CV_EVENT_SPAN_LENGTH, score_field + 1,
                score_field_size - 1);
    free(msg);
}

/* Packs a LeadAssigned for `lead_scored` in an envelope, as routing sends
 * it, with the score either packed from the unpacked copy or lent as the
 * bytes it arrived in (`lent`, protobuf-c's unknown-field form, NULL:
 * packed) through cv_event_lend_field, the call routing makes. The caller
 * frees the result. */
static uint8_t *pack_assigned(const Conveyor__LeadScored *lead_scored,
                              const char *role, const uint8_t *lent,
                              size_t lent_size, size_t *size)
{
    Conveyor__NotifyTarget notify = CONVEYOR__NOTIFY_TARGET__INIT;
    notify.telegram_chat_id = "123456789";
    notify.email = "ivan.sidorov@conveyor.example";
    Conveyor__LeadAssigned assigned = CONVEYOR__LEAD_ASSIGNED__INIT;
    assigned.lead = lead_scored->lead;
    assigned.staff_id = "staff_sales_2";
    assigned.staff_name = "Ivan Sidorov";
    assigned.notify = &notify;
    assigned.strategy = "round_robin";
    assigned.rule_trace = "tier 2, segment B, chain v1 | rule 1 'inbound' "
                          "(round_robin): pool role sales: staff_sales_1, "
                          "staff_sales_2; staff_sales_2";
    assigned.has_tier = 1;
    assigned.tier = 2;
    assigned.score = lead_scored->score;
    assigned.role = (char *)role;
    ProtobufCMessageUnknownField raw = {0};
    if (lent != NULL) {
        /* as routing_emit_assigned does */
        assigned.score = NULL;
        cv_event_lend_field(&assigned.base, &raw, 8, lent, lent_size);
    }
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.version = 1;
    env.event_id = "evt_5e1f00d2a9c4b713";
    env.type = CONVEYOR__EVENT_TYPE__LEAD_ASSIGNED;
    env.lead_id = lead_scored->lead->lead_id;
    env.occurred_at = 1795362079456LL;
    env.producer = "routing";
    env.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED;
    env.lead_assigned = &assigned;
    return cv_event_pack(&env, size);
}

/* Routing lends the score of the LeadScored it handles to the owner's
 * LeadAssigned as the bytes it arrived in (the body's field 2 with its
 * length prefix): the envelope sent is byte for byte the one packing the
 * unpacked score writes, for a plain lead and a re-score. With a role set
 * (a reviewer) the lent score would land after it, so routing packs
 * then: the bytes differ. */
static void
test_lead_assigned_with_the_lent_score_is_byte_identical(void **state)
{
    (void)state;
    for (int rescore = 0; rescore < 2; rescore++) {
        Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
        make_scored(&env);
        if (rescore)
            scored_as_rescore();
        size_t size = 0;
        uint8_t *bytes = cv_event_pack(&env, &size);
        assert_non_null(bytes);
        Conveyor__Envelope *back = cv_event_unpack(bytes, size);
        assert_non_null(back);
        /* what routing's arrived_find finds (routing_handler.c) */
        const uint8_t *body = NULL;
        size_t body_size = 0;
        assert_int_equal(cv_event_field_span(
                             bytes, size, CONVEYOR__ENVELOPE__BODY_LEAD_SCORED,
                             CV_EVENT_SPAN_VALUE, &body, &body_size),
                         0);
        const uint8_t *lent = NULL;
        size_t lent_size = 0;
        assert_int_equal(cv_event_field_span(body, body_size, 2,
                                             CV_EVENT_SPAN_LENGTH, &lent,
                                             &lent_size),
                         0);

        size_t packed_size = 0, lent_packed_size = 0;
        uint8_t *packed =
            pack_assigned(back->lead_scored, NULL, NULL, 0, &packed_size);
        uint8_t *with_lent = pack_assigned(back->lead_scored, NULL, lent,
                                           lent_size, &lent_packed_size);
        assert_non_null(packed);
        assert_non_null(with_lent);
        assert_int_equal(lent_packed_size, packed_size);
        assert_memory_equal(with_lent, packed, packed_size);
        Conveyor__Envelope *sent = cv_event_unpack(with_lent, lent_packed_size);
        assert_non_null(sent);
        assert_string_equal(sent->lead_assigned->score->params[0]->reason,
                            "budget 500000 RUB over 300000");
        cv_event_free(sent);
        free(with_lent);
        free(packed);

        packed =
            pack_assigned(back->lead_scored, "reviewer", NULL, 0, &packed_size);
        with_lent = pack_assigned(back->lead_scored, "reviewer", lent,
                                  lent_size, &lent_packed_size);
        assert_int_equal(lent_packed_size, packed_size);
        assert_memory_not_equal(with_lent, packed, packed_size);
        free(with_lent);
        free(packed);
        cv_event_free(back);
        free(bytes);
        scored_as_first();
    }
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
        cmocka_unit_test(test_body_bytes_are_the_lead_scored_packed_alone),
        cmocka_unit_test(test_body_bytes_of_malformed_input),
        cmocka_unit_test(test_field_span_of_a_lead_scored),
        cmocka_unit_test(
            test_lead_assigned_with_the_lent_score_is_byte_identical),
        cmocka_unit_test(test_unpack_refuses_missing_required_fields),
        cmocka_unit_test(test_arena_unpacks_event_after_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

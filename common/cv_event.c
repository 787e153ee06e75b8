/* cv_event: envelope packing and the JSON shapes the console shows. */
#include "cv_event.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cv_clock.h"
#include "cv_log.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

/* Each body case with its event type and name, in proto order. */
typedef struct {
    Conveyor__Envelope__BodyCase body; /* the oneof member */
    Conveyor__EventType type;          /* the type that names it */
    const char *name;                  /* snake_case name of the type */
} cv_event_kind_t;

static const cv_event_kind_t cv_event_kinds[] = {
    {CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED,
     CONVEYOR__EVENT_TYPE__LEAD_RECEIVED, "lead_received"},
    {CONVEYOR__ENVELOPE__BODY_LEAD_SCORED, CONVEYOR__EVENT_TYPE__LEAD_SCORED,
     "lead_scored"},
    {CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED,
     CONVEYOR__EVENT_TYPE__STAFF_UPDATED, "staff_updated"},
    {CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED,
     CONVEYOR__EVENT_TYPE__LEAD_ASSIGNED, "lead_assigned"},
    {CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED,
     CONVEYOR__EVENT_TYPE__LEAD_UNASSIGNED, "lead_unassigned"},
    {CONVEYOR__ENVELOPE__BODY_TASK_CREATED, CONVEYOR__EVENT_TYPE__TASK_CREATED,
     "task_created"},
    {CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED,
     CONVEYOR__EVENT_TYPE__TASK_COMPLETED, "task_completed"},
    {CONVEYOR__ENVELOPE__BODY_ESCALATION, CONVEYOR__EVENT_TYPE__ESCALATION,
     "escalation"},
    {CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED,
     CONVEYOR__EVENT_TYPE__NOTIFICATION_REQUESTED, "notification_requested"},
    {CONVEYOR__ENVELOPE__BODY_NOTIFICATION_DELIVERED,
     CONVEYOR__EVENT_TYPE__NOTIFICATION_DELIVERED, "notification_delivered"},
    {CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED,
     CONVEYOR__EVENT_TYPE__ACTIVITY_RECORDED, "activity_recorded"},
    {CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED,
     CONVEYOR__EVENT_TYPE__DECISION_RECORDED, "decision_recorded"},
    {CONVEYOR__ENVELOPE__BODY_PROPOSAL_RENDERED,
     CONVEYOR__EVENT_TYPE__PROPOSAL_RENDERED, "proposal_rendered"},
    {CONVEYOR__ENVELOPE__BODY_ACCOUNT_OPENED,
     CONVEYOR__EVENT_TYPE__ACCOUNT_OPENED, "account_opened"},
    {CONVEYOR__ENVELOPE__BODY_NOTIFICATION_FAILED,
     CONVEYOR__EVENT_TYPE__NOTIFICATION_FAILED, "notification_failed"},
    {CONVEYOR__ENVELOPE__BODY_NOTIFICATION_RESEND,
     CONVEYOR__EVENT_TYPE__NOTIFICATION_RESEND, "notification_resend"},
    {CONVEYOR__ENVELOPE__BODY_LEAD_OFFERED, CONVEYOR__EVENT_TYPE__LEAD_OFFERED,
     "lead_offered"},
    {CONVEYOR__ENVELOPE__BODY_ASSIGNMENT_REQUESTED,
     CONVEYOR__EVENT_TYPE__ASSIGNMENT_REQUESTED, "assignment_requested"},
};

#define CV_EVENT_KINDS (sizeof(cv_event_kinds) / sizeof(cv_event_kinds[0]))

const char *cv_event_type_name(Conveyor__EventType type)
{
    for (size_t i = 0; i < CV_EVENT_KINDS; i++)
        if (cv_event_kinds[i].type == type)
            return cv_event_kinds[i].name;
    return "unknown";
}

Conveyor__EventType cv_event_type_of(const Conveyor__Envelope *event)
{
    if (event == NULL)
        return CONVEYOR__EVENT_TYPE__EVENT_UNKNOWN;
    for (size_t i = 0; i < CV_EVENT_KINDS; i++)
        if (cv_event_kinds[i].body == event->body_case)
            return cv_event_kinds[i].type;
    return CONVEYOR__EVENT_TYPE__EVENT_UNKNOWN;
}

/* True when the envelope has a body and its type names that body. */
static bool cv_event_type_matches(const Conveyor__Envelope *event)
{
    Conveyor__EventType type = cv_event_type_of(event);
    return type != CONVEYOR__EVENT_TYPE__EVENT_UNKNOWN && event->type == type;
}

/* ... and every required field is present (an envelope built by hand). */
static bool cv_event_is_complete(const Conveyor__Envelope *event)
{
    return cv_event_type_matches(event) &&
           protobuf_c_message_check(&event->base) != 0;
}

uint8_t *cv_event_pack(const Conveyor__Envelope *event, size_t *size)
{
    if (event == NULL || size == NULL)
        return NULL;
    if (!cv_event_is_complete(event)) {
        cv_error("cannot pack event '%s' of type '%s': its body does not "
                 "match or a required field is missing",
                 event->event_id ? event->event_id : "",
                 cv_event_type_name(event->type));
        return NULL;
    }
    size_t n = conveyor__envelope__get_packed_size(event);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    *size = conveyor__envelope__pack(event, buf);
    return buf;
}

Conveyor__Envelope *cv_event_unpack(const uint8_t *data, size_t size)
{
    if (data == NULL || size == 0)
        return NULL;
    /* protobuf-c's unpack already refuses a message, at any depth, that
     * lacks a required field (tests/unit/test_event.c): checking the tree
     * again cost ~3k instructions per event in every service */
    Conveyor__Envelope *event = conveyor__envelope__unpack(NULL, size, data);
    if (event == NULL)
        return NULL;
    if (!cv_event_type_matches(event)) {
        conveyor__envelope__free_unpacked(event, NULL);
        return NULL;
    }
    return event;
}

void cv_event_free(Conveyor__Envelope *event)
{
    if (event != NULL)
        conveyor__envelope__free_unpacked(event, NULL);
}

/* ------------------------------------------------------------------ */
/* the wire scanner                                                    */

/* Reads the base-128 varint at msg[*pos] (at most 10 bytes) and moves *pos
 * past it; -1 when it runs off the end or is longer than 64 bits. */
static int wire_varint(const uint8_t *msg, size_t size, size_t *pos,
                       uint64_t *value)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= size)
            return -1;
        uint8_t byte = msg[(*pos)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

/* Moves *pos past `n` bytes; -1 when fewer are left. */
static int wire_skip(size_t size, size_t *pos, uint64_t n)
{
    if (n > size - *pos)
        return -1;
    *pos += (size_t)n;
    return 0;
}

/* The bytes the shortest varint of `value` takes, as protobuf-c writes it. */
static size_t wire_varint_size(uint64_t value)
{
    size_t n = 1;
    while (value > 0x7f) {
        value >>= 7;
        n++;
    }
    return n;
}

int cv_event_field_span(const uint8_t *msg, size_t size, uint32_t field,
                        cv_event_span_t span, const uint8_t **out,
                        size_t *out_size)
{
    if (msg == NULL || out == NULL || out_size == NULL || field == 0)
        return -1;
    const uint8_t *found = NULL; /* where the asked span starts */
    size_t found_size = 0;
    size_t pos = 0;
    while (pos < size) {
        uint64_t key = 0;
        if (wire_varint(msg, size, &pos, &key) != 0)
            return -1;
        uint64_t number = key >> 3;
        if (number == 0 || number > 0x1fffffff) /* protobuf's range */
            return -1;
        size_t length_at = pos;
        uint64_t len = 0;
        switch (key & 7) {
        case 0: /* varint */
            if (wire_varint(msg, size, &pos, &len) != 0)
                return -1;
            break;
        case 1: /* fixed64, double */
            if (wire_skip(size, &pos, 8) != 0)
                return -1;
            break;
        case 2: /* length-delimited: message, string, bytes, packed */
            if (wire_varint(msg, size, &pos, &len) != 0 ||
                len > size - pos)
                return -1;
            if (number == field) {
                if (found != NULL)
                    return -1; /* twice: the copies would be merged */
                size_t from = pos;
                if (span != CV_EVENT_SPAN_VALUE) {
                    /* a padded prefix would not be what packing writes */
                    if (pos - length_at != wire_varint_size(len))
                        return -1;
                    from = length_at;
                }
                found = msg + from;
                found_size = pos - from + (size_t)len;
            }
            pos += (size_t)len;
            break;
        case 5: /* fixed32, float */
            if (wire_skip(size, &pos, 4) != 0)
                return -1;
            break;
        default: /* groups (3, 4) are not in our proto; 6, 7 do not exist */
            return -1;
        }
        if (number == field && (key & 7) != 2)
            return -1; /* the field is there, but not as bytes */
    }
    if (found == NULL)
        return -1;
    *out = found;
    *out_size = found_size;
    return 0;
}

int cv_event_field_bytes(const uint8_t *msg, size_t size, uint32_t field,
                         const uint8_t **out, size_t *out_size)
{
    return cv_event_field_span(msg, size, field, CV_EVENT_SPAN_VALUE, out,
                               out_size);
}

void cv_event_lend_field(ProtobufCMessage *msg,
                         ProtobufCMessageUnknownField *slot, uint32_t tag,
                         const uint8_t *bytes, size_t size)
{
    slot->tag = tag;
    slot->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    slot->len = size;
    /* protobuf-c's field is not const; pack only reads it */
    slot->data = (uint8_t *)bytes;
    msg->n_unknown_fields = 1;
    msg->unknown_fields = slot;
}

/* ------------------------------------------------------------------ */
/* the unpacking arena                                                 */

#define ARENA_BLOCK (64 * 1024) /* bytes of a block; an event is ~1-3 KB */
#define ARENA_ALIGN 16

typedef struct arena_block arena_block_t;
struct arena_block {
    arena_block_t *next;      /* older block */
    size_t size;              /* usable bytes in data */
    size_t used;              /* bytes handed out */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cv_event_arena {
    ProtobufCAllocator allocator; /* what protobuf-c calls */
    arena_block_t *blocks;        /* newest first; the last one is kept */
};

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static arena_block_t *arena_block_new(size_t size)
{
    arena_block_t *block = malloc(sizeof(*block) + size);
    if (block == NULL)
        return NULL;
    block->next = NULL;
    block->size = size;
    block->used = 0;
    /* under ASan, reading memory not handed out (or taken back) is caught */
    ARENA_POISON(block->data, size);
    return block;
}

static void *arena_alloc(void *data, size_t size)
{
    cv_event_arena_t *self = data;
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    arena_block_t *block = self->blocks;
    if (block->size - block->used < need) {
        block = arena_block_new(need > ARENA_BLOCK ? need : ARENA_BLOCK);
        if (block == NULL)
            return NULL;
        block->next = self->blocks;
        self->blocks = block;
    }
    void *out = block->data + block->used;
    block->used += need;
    ARENA_UNPOISON(out, size);
    return out;
}

static void arena_free(void *data, void *pointer)
{
    (void)data; /* taken back by cv_event_arena_reset */
    (void)pointer;
}

cv_event_arena_t *cv_event_arena_new(void)
{
    cv_event_arena_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->blocks = arena_block_new(ARENA_BLOCK);
    if (self->blocks == NULL) {
        free(self);
        return NULL;
    }
    self->allocator.alloc = arena_alloc;
    self->allocator.free = arena_free;
    self->allocator.allocator_data = self;
    return self;
}

void cv_event_arena_reset(cv_event_arena_t *self)
{
    while (self->blocks->next != NULL) {
        arena_block_t *next = self->blocks->next;
        free(self->blocks);
        self->blocks = next;
    }
    ARENA_POISON(self->blocks->data, self->blocks->size);
    self->blocks->used = 0;
}

void cv_event_arena_destroy(cv_event_arena_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_event_arena_t *self = *self_p;
    cv_event_arena_reset(self);
    ARENA_UNPOISON(self->blocks->data, self->blocks->size);
    free(self->blocks);
    free(self);
    *self_p = NULL;
}

Conveyor__Envelope *cv_event_unpack_in(cv_event_arena_t *arena,
                                       const uint8_t *data, size_t size)
{
    if (data == NULL || size == 0)
        return NULL;
    Conveyor__Envelope *event =
        conveyor__envelope__unpack(&arena->allocator, size, data);
    /* required fields: checked by the unpack itself (cv_event_unpack) */
    if (event == NULL || !cv_event_type_matches(event))
        return NULL; /* whatever it took goes back at the next reset */
    return event;
}

static const char *cv_event_lead_id_of(const Conveyor__Lead *lead)
{
    return lead ? lead->lead_id : NULL;
}

const char *cv_event_body_lead_id(const Conveyor__Envelope *event)
{
    if (event == NULL)
        return NULL;
    switch (event->body_case) {
    case CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED:
        return event->lead_received
                   ? cv_event_lead_id_of(event->lead_received->lead)
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_LEAD_SCORED:
        return event->lead_scored
                   ? cv_event_lead_id_of(event->lead_scored->lead)
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_LEAD_ASSIGNED:
        return event->lead_assigned
                   ? cv_event_lead_id_of(event->lead_assigned->lead)
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_LEAD_UNASSIGNED:
        return event->lead_unassigned ? event->lead_unassigned->lead_id
                                      : NULL;
    case CONVEYOR__ENVELOPE__BODY_TASK_CREATED:
        return event->task_created ? event->task_created->lead_id : NULL;
    case CONVEYOR__ENVELOPE__BODY_TASK_COMPLETED:
        return event->task_completed ? event->task_completed->lead_id : NULL;
    case CONVEYOR__ENVELOPE__BODY_ESCALATION:
        return event->escalation ? event->escalation->lead_id : NULL;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED:
        return event->notification_requested
                   ? event->notification_requested->lead_id
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_DELIVERED:
        return event->notification_delivered
                   ? event->notification_delivered->lead_id
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_ACTIVITY_RECORDED:
        return event->activity_recorded ? event->activity_recorded->lead_id
                                        : NULL;
    case CONVEYOR__ENVELOPE__BODY_DECISION_RECORDED:
        return event->decision_recorded ? event->decision_recorded->lead_id
                                        : NULL;
    case CONVEYOR__ENVELOPE__BODY_PROPOSAL_RENDERED:
        return event->proposal_rendered ? event->proposal_rendered->lead_id
                                        : NULL;
    case CONVEYOR__ENVELOPE__BODY_ACCOUNT_OPENED:
        return event->account_opened ? event->account_opened->lead_id : NULL;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_FAILED:
        return event->notification_failed
                   ? event->notification_failed->lead_id
                   : NULL;
    case CONVEYOR__ENVELOPE__BODY_NOTIFICATION_RESEND:
        return NULL;
    case CONVEYOR__ENVELOPE__BODY_LEAD_OFFERED:
        return event->lead_offered ? event->lead_offered->lead_id : NULL;
    case CONVEYOR__ENVELOPE__BODY_ASSIGNMENT_REQUESTED:
        return event->assignment_requested
                   ? event->assignment_requested->lead_id
                   : NULL;
    default:
        return NULL;
    }
}

/* Sets obj[key] to the text when it is set and not empty. */
static void cv_event_put_text(json_t *obj, const char *key, const char *text)
{
    if (text != NULL && text[0] != '\0')
        json_object_set_new(obj, key, json_string(text));
}

/* A JSON number for an amount: an integer when it is whole. */
static json_t *cv_event_number(double value)
{
    if (isfinite(value) && value == floor(value) && fabs(value) < 9.0e15)
        return json_integer((json_int_t)value);
    if (!isfinite(value))
        return json_null();
    return json_real(value);
}

json_t *cv_event_lead_to_json(const Conveyor__Lead *lead)
{
    if (lead == NULL)
        return NULL;
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "lead_id",
                        json_string(lead->lead_id ? lead->lead_id : ""));
    cv_event_put_text(obj, "name", lead->name);
    cv_event_put_text(obj, "company", lead->company);
    cv_event_put_text(obj, "phone", lead->phone);
    cv_event_put_text(obj, "email", lead->email);
    cv_event_put_text(obj, "telegram", lead->telegram);
    cv_event_put_text(obj, "message", lead->message);
    cv_event_put_text(obj, "channel", lead->channel);
    cv_event_put_text(obj, "source", lead->source);
    cv_event_put_text(obj, "region", lead->region);
    cv_event_put_text(obj, "industry", lead->industry);
    cv_event_put_text(obj, "product", lead->product);
    if (lead->has_budget)
        json_object_set_new(obj, "budget", cv_event_number(lead->budget));
    cv_event_put_text(obj, "currency", lead->currency);
    cv_event_put_text(obj, "inn", lead->inn);
    cv_event_put_text(obj, "timezone", lead->timezone);
    cv_event_put_text(obj, "utm_source", lead->utm_source);
    cv_event_put_text(obj, "utm_medium", lead->utm_medium);
    cv_event_put_text(obj, "utm_campaign", lead->utm_campaign);
    if (lead->extra_json != NULL && lead->extra_json[0] != '\0') {
        json_t *extra = json_loads(lead->extra_json, JSON_DECODE_ANY, NULL);
        if (json_is_object(extra))
            json_object_set_new(obj, "extra", extra);
        else
            json_decref(extra);
    }
    if (lead->has_received_at) {
        char when[40];
        cv_clock_format(lead->received_at, when, sizeof(when));
        json_object_set_new(obj, "received_at", json_string(when));
    }
    cv_event_put_text(obj, "domain", lead->domain);
    cv_event_put_text(obj, "spam_reason", lead->spam_reason);
    if (lead->has_call_back && lead->call_back)
        json_object_set_new(obj, "call_back", json_true());
    cv_event_put_text(obj, "returning_of", lead->returning_of);
    cv_event_put_text(obj, "previous_owner", lead->previous_owner);
    cv_event_put_text(obj, "previous_result", lead->previous_result);
    return obj;
}

json_t *cv_event_score_to_json(const Conveyor__Score *score)
{
    if (score == NULL)
        return NULL;
    json_t *obj = json_object();
    json_t *params = json_object();
    if (obj == NULL || params == NULL) {
        json_decref(obj);
        json_decref(params);
        return NULL;
    }
    json_object_set_new(obj, "total", json_integer(score->total));
    json_object_set_new(obj, "segment",
                        json_string(score->segment ? score->segment : ""));
    json_object_set_new(obj, "knocked_out",
                        json_boolean(score->has_knocked_out &&
                                     score->knocked_out));
    cv_event_put_text(obj, "knockout_reason", score->knockout_reason);
    cv_event_put_text(obj, "model_version", score->model_version);
    for (size_t i = 0; i < score->n_params; i++) {
        const Conveyor__ScoreParam *p = score->params[i];
        if (p == NULL || p->name == NULL)
            continue;
        json_t *param = json_object();
        if (param == NULL)
            continue;
        json_object_set_new(param, "value", json_integer(p->value));
        json_object_set_new(param, "block",
                            json_string(p->block ? p->block : ""));
        cv_event_put_text(param, "source", p->source);
        cv_event_put_text(param, "reason", p->reason);
        json_object_set_new(params, p->name, param);
    }
    json_object_set_new(obj, "params", params);
    return obj;
}

json_t *cv_event_notify_to_json(const Conveyor__NotifyTarget *target)
{
    if (target == NULL)
        return NULL;
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    cv_event_put_text(obj, "webhook_url", target->webhook_url);
    cv_event_put_text(obj, "telegram_chat_id", target->telegram_chat_id);
    cv_event_put_text(obj, "email", target->email);
    return obj;
}

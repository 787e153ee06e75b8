/* cv_event: the envelope on the wire, and the shapes the console shows.
 *
 * The envelope and every message are generated from proto/conveyor.proto
 * into the build folder (conveyor.pb-c.h). */
#ifndef CV_EVENT_H
#define CV_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"

/* Serialises `event`; the caller owns the buffer (free()). NULL when out
 * of memory. */
uint8_t *cv_event_pack(const Conveyor__Envelope *event, size_t *size);

/* Parses bytes from the wire; NULL for anything that is not a complete
 * envelope whose `type` matches its body (logged by the caller). Free with
 * cv_event_free. */
Conveyor__Envelope *cv_event_unpack(const uint8_t *data, size_t size);
void cv_event_free(Conveyor__Envelope *event); /* NULL-safe */

/* An arena for unpacking one event after another without a malloc and a
 * free for every string inside: memory is handed out from large blocks and
 * taken back all at once by cv_event_arena_reset. A bus worker unpacks
 * hundreds of events a second, each with dozens of strings. */
typedef struct cv_event_arena cv_event_arena_t;

cv_event_arena_t *cv_event_arena_new(void);          /* NULL: no memory */
void cv_event_arena_destroy(cv_event_arena_t **self_p); /* NULL-safe */

/* cv_event_unpack with the envelope's memory taken from `arena`: do not
 * cv_event_free it; it lives until the next cv_event_arena_reset. */
Conveyor__Envelope *cv_event_unpack_in(cv_event_arena_t *arena,
                                       const uint8_t *data, size_t size);

/* Takes back everything unpacked in `arena` (keeps its first block). */
void cv_event_arena_reset(cv_event_arena_t *arena);

/* Which bytes of a length-delimited field cv_event_field_span gives. */
typedef enum {
    CV_EVENT_SPAN_VALUE,  /* the value alone: a body, a text */
    CV_EVENT_SPAN_LENGTH, /* its length prefix and the value: what
                             protobuf-c keeps of an unknown field and
                             writes after the tag when packing it */
} cv_event_span_t;

/* The bytes of the one length-delimited field number `field` (a message,
 * string or bytes field) inside the packed message `msg`, found by walking
 * the protobuf wire format without unpacking anything: *out points into
 * `msg` (not a copy), *out_size is the length of the `span` asked for.
 * Lets a service keep an event's body exactly as it arrived (Envelope
 * field 11 is the LeadScored) or lend a nested message to protobuf-c as an
 * unknown field, instead of packing the unpacked copy again: protobuf-c
 * packs a message the same way alone or nested, so these are the bytes
 * conveyor__..._pack would write for a body a protobuf-c sender packed.
 * A span with the length prefix is given only when it is the shortest
 * varint, as protobuf-c writes it.
 * 0 when the field is there exactly once with the length-delimited wire
 * type; -1 when it is missing, repeated (protobuf would merge the copies),
 * of another wire type, its length prefix is padded (for
 * CV_EVENT_SPAN_LENGTH), or the message is malformed or truncated
 * (nothing outside msg[0..size) is read). */
int cv_event_field_span(const uint8_t *msg, size_t size, uint32_t field,
                        cv_event_span_t span, const uint8_t **out,
                        size_t *out_size);

/* cv_event_field_span of the value alone (CV_EVENT_SPAN_VALUE). */
int cv_event_field_bytes(const uint8_t *msg, size_t size, uint32_t field,
                         const uint8_t **out, size_t *out_size);

/* Makes `msg` carry `bytes` (a length prefix and the value, as
 * cv_event_field_span gives for CV_EVENT_SPAN_LENGTH) as its one unknown
 * field: length-delimited field number `tag`, described in `slot`.
 * protobuf-c packs unknown fields as they are, after the known ones, so a
 * nested message that arrived packed is lent instead of packed again.
 * The caller clears the known member for `tag` itself (or it is written
 * twice), and owns `slot` and `bytes`: both must live, unchanged, until
 * `msg` is packed; nothing is copied and `msg` must not be freed with
 * protobuf-c's free_unpacked. Replaces any unknown fields `msg` had. */
void cv_event_lend_field(ProtobufCMessage *msg,
                         ProtobufCMessageUnknownField *slot, uint32_t tag,
                         const uint8_t *bytes, size_t size);

/* "lead_received", "lead_scored", ... ; "unknown" for anything else. */
const char *cv_event_type_name(Conveyor__EventType type);

/* The type that belongs to a body case, and the lead id inside a body
 * (NULL for bodies without one). */
Conveyor__EventType cv_event_type_of(const Conveyor__Envelope *event);
const char *cv_event_body_lead_id(const Conveyor__Envelope *event);

/* JSON objects with the API.md field names (unset fields are left out).
 * The caller owns the result. */
json_t *cv_event_lead_to_json(const Conveyor__Lead *lead);
json_t *cv_event_score_to_json(const Conveyor__Score *score);
json_t *cv_event_notify_to_json(const Conveyor__NotifyTarget *target);

#endif

/* cv_wire: the messages between a peer's DEALER and the broker's ROUTER.
 *
 * A small Majordomo-style protocol in which every message is ONE ZeroMQ
 * frame (the broker's ROUTER adds and strips the peer's routing identity
 * itself, which never crosses the wire). Single frames matter: libzmq 4.3
 * aborts a receiver (assertion `!_more` in fq.cpp) when a connection drops
 * in the middle of a multipart message, and a broker may die at any time.
 *
 * A frame is "CV1", a command byte, then `fields` strings each preceded by
 * its length in one byte, then the rest of the frame:
 *
 *   peer -> broker
 *     R  rest=<service>                          register + heartbeat;
 *                                                "" = sender only
 *     Q  <dest service> <msg id>  rest=<envelope> one event (what senders
 *                                                before B sent; still
 *                                                taken)
 *     B  <dest service>  rest=<entries>          the events a sender has
 *                                                ready for one
 *                                                destination
 *     A  <client identity>  rest=<msg ids>       the worker committed the
 *                                                events (ids separated by
 *                                                spaces)
 *   broker -> peer
 *     H                                          broker heartbeat
 *     Q  <client identity> <msg id>  rest=<envelope>
 *     B  <client identity>  rest=<entries>
 *     A  rest=<msg ids>                          your events were committed
 *     N  rest=<msg ids>                          no live worker now; re-send
 *                                                soon
 *
 * The entries of a B are back to back, each <msg id> as a length-prefixed
 * string, then the envelope's length in 4 bytes (big-endian), then the
 * envelope. A B carries what a sender has ready for one destination at
 * once: one message, one wake-up of the broker and of the worker for many
 * events instead of one each, which under load was the larger part of
 * the messaging cost. The broker passes it to one worker whole. Message
 * ids in an A or an N are separated by spaces.
 *
 * The broker keeps no data: a worker unheard for three heartbeats is
 * forgotten, a request it cannot route is answered N, and anything lost in
 * flight is re-sent by its sender's outbox after the lease. */
#ifndef CV_WIRE_H
#define CV_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "cv_metrics.h"

#define CV_WIRE_READY 'R'
#define CV_WIRE_HEARTBEAT 'H'
#define CV_WIRE_REQUEST 'Q'
#define CV_WIRE_ACK 'A'
#define CV_WIRE_NAK 'N'
#define CV_WIRE_BATCH 'B'

/* A peer counts as gone after this many heartbeat intervals of silence. */
#define CV_WIRE_LIVENESS 3

/* The largest message a socket takes (ZMQ_MAXMSGSIZE): far above any
 * event (a lead is at most intake's 1 MiB body), and a frame header that
 * claims more is garbage, so libzmq drops the connection instead of
 * trying to allocate what the header says. */
#define CV_WIRE_MSG_MAX (64LL * 1024 * 1024)

/* The longest list of message ids in one ACK, in bytes. */
#define CV_WIRE_ACK_IDS_MAX 8192

/* A frame taken apart; the pointers point into the frame. */
typedef struct {
    char command;             /* one of the commands above */
    const uint8_t *field[2];  /* the length-prefixed strings */
    size_t field_size[2];
    const uint8_t *rest;      /* what follows them */
    size_t rest_size;
} cv_wire_msg_t;

/* Sends one frame on `socket` (flags as for zmq_msg_send, e.g.
 * ZMQ_DONTWAIT). `fields` (0..2) strings come from a/b, each at most 255
 * bytes. Returns 0, or -1 with errno set (as zmq_msg_send sets it, or
 * EINVAL for a field too long). */
int cv_wire_send(void *socket, int flags, char command, int fields,
                 const void *a, size_t a_size, const void *b, size_t b_size,
                 const void *rest, size_t rest_size);

/* Takes apart a frame that should hold `fields` strings. Returns 0, or -1
 * when it is not a CV1 frame of that shape. */
int cv_wire_parse(const void *data, size_t size, int fields,
                  cv_wire_msg_t *out);

/* Counts a malformed message in `counter` and logs why, at most once a
 * second (a peer spraying garbage must not flood the log). */
void cv_wire_drop(cv_metric_t *counter, const char *what);

/* The command byte of a CV1 frame, or 0 when it is not one. */
char cv_wire_command(const void *data, size_t size);

/* One event of a B frame. */
typedef struct {
    const void *msg_id;       /* the sender's message id (not owned) */
    size_t msg_id_size;       /* at most 255 */
    const void *payload;      /* the packed envelope (not owned) */
    size_t payload_size;
} cv_wire_entry_t;

/* Sends B <field> with `count` entries as one frame (flags as for
 * cv_wire_send). Returns 0, or -1 with errno set (EINVAL for a field or a
 * message id longer than 255 bytes or an envelope of 4 GiB). */
int cv_wire_send_batch(void *socket, int flags, const void *field,
                       size_t field_size, const cv_wire_entry_t *entries,
                       int count);

/* Takes the next entry of a B frame's rest [*at, end) and moves *at past
 * it. Returns 1 for an entry, 0 at the end, -1 when the bytes are not an
 * entry (a truncated or garbled frame). */
int cv_wire_entry_next(const uint8_t **at, const uint8_t *end,
                       cv_wire_entry_t *entry);

#endif

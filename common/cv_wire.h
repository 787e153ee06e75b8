/* cv_wire: the frames between a peer's DEALER and the broker's ROUTER.
 *
 * A small Majordomo-style protocol. Every message starts with the protocol
 * frame "CV1" and a command frame; the broker also sees (and sends) the
 * peer's routing identity as the first frame.
 *
 *   peer -> broker
 *     CV1 READY <service>                  register + heartbeat; "" = sender only
 *     CV1 REQ   <dest service> <msg id> <envelope bytes>
 *     CV1 ACK   <client identity> <msg ids> the worker committed the events
 *                                         (ids separated by spaces)
 *   broker -> peer
 *     CV1 HB                               broker heartbeat
 *     CV1 REQ   <client identity> <msg id> <envelope bytes>
 *     CV1 ACK   <msg ids>                  your events were committed
 *     CV1 NAK   <msg id>                   no live worker now; re-send soon
 *
 * The broker keeps no data: a worker unheard for three heartbeats is
 * forgotten, a request it cannot route is answered NAK, and anything lost
 * in flight is re-sent by its sender's outbox after the lease. */
#ifndef CV_WIRE_H
#define CV_WIRE_H

#define CV_WIRE_PROTOCOL "CV1"
#define CV_WIRE_READY "READY"
#define CV_WIRE_HEARTBEAT "HB"
#define CV_WIRE_REQUEST "REQ"
#define CV_WIRE_ACK "ACK"
#define CV_WIRE_NAK "NAK"

/* The longest list of message ids in one ACK, in bytes. */
#define CV_WIRE_ACK_IDS_MAX 8192

/* A peer counts as gone after this many heartbeat intervals of silence. */
#define CV_WIRE_LIVENESS 3

#endif

/* cv_broker: the stateless router between the stages (Majordomo-style).
 *
 * One ROUTER socket. Peers register the service they work for with READY
 * (repeated as their heartbeat); a REQ (or a BATCH of them) for a service
 * goes to the next live worker of it, round-robin; the worker's ACK goes
 * back to the sender. The
 * broker stores nothing: a request it cannot route is answered NAK, a
 * worker silent for three heartbeats is forgotten, and anything lost when
 * the broker dies is re-sent by the senders' outboxes. See cv_wire.h. */
#include "cv_broker.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_wire.h"

#define CV_BROKER_MAX_PEERS 4096
#define CV_BROKER_IDENTITY_MAX 256
#define CV_BROKER_MAX_FRAMES 8

typedef struct {
    uint8_t identity[CV_BROKER_IDENTITY_MAX]; /* ROUTER routing id */
    size_t identity_size;
    char service[64];         /* service it works for, "" for a sender */
    int64_t last_heard_ms;    /* monotonic */
    bool used;                /* slot taken */
} cv_broker_peer_t;

struct cv_broker {
    void *zmq;                /* context (owned) */
    void *router;             /* the bound ROUTER socket */
    char endpoint[256];       /* the address actually bound */
    int stop_fd;              /* eventfd written by cv_broker_stop */
    atomic_bool stopping;
    cv_broker_peer_t peers[CV_BROKER_MAX_PEERS];
    int peer_high;            /* slots [0, peer_high) may be used */
    unsigned rotation;        /* round-robin start among workers */
    int heartbeat_ms;         /* heartbeat interval */
};

static cv_metric_t *metric_routed;
static cv_metric_t *metric_acks;
static cv_metric_t *metric_naks;
static cv_metric_t *metric_garbage;
static cv_metric_t *metric_workers;

static cv_broker_peer_t *peer_find(cv_broker_t *broker, const void *id,
                                   size_t size)
{
    for (int i = 0; i < broker->peer_high; i++) {
        cv_broker_peer_t *p = &broker->peers[i];
        if (p->used && p->identity_size == size &&
            memcmp(p->identity, id, size) == 0)
            return p;
    }
    return NULL;
}

static void broker_count_workers(cv_broker_t *broker)
{
    int workers = 0;
    for (int i = 0; i < broker->peer_high; i++)
        if (broker->peers[i].used && broker->peers[i].service[0] != '\0')
            workers++;
    cv_metric_set(metric_workers, workers);
}

static void peer_ready(cv_broker_t *broker, const uint8_t *identity,
                       size_t id_size, const uint8_t *service,
                       size_t name_size)
{
    if (id_size > CV_BROKER_IDENTITY_MAX || name_size >= 64) {
        cv_wire_drop(metric_garbage, "identity or service name too long");
        return;
    }
    cv_broker_peer_t *peer = peer_find(broker, identity, id_size);
    if (peer == NULL) {
        for (int i = 0; i < CV_BROKER_MAX_PEERS && peer == NULL; i++)
            if (!broker->peers[i].used)
                peer = &broker->peers[i];
        if (peer == NULL) {
            cv_log_warn("too many peers; ignoring a new one");
            return;
        }
        memset(peer, 0, sizeof(*peer));
        peer->used = true;
        memcpy(peer->identity, identity, id_size);
        peer->identity_size = id_size;
        int index = (int)(peer - broker->peers);
        if (index >= broker->peer_high)
            broker->peer_high = index + 1;
        memcpy(peer->service, service, name_size);
        peer->service[name_size] = '\0';
        cv_log_info("peer registered for '%s'",
                    peer->service[0] ? peer->service : "(sending only)");
        broker_count_workers(broker);
    }
    peer->last_heard_ms = cv_clock_monotonic_ms();
}

/* Sends one cv_wire frame to the peer with routing id `to`. Returns 0, or
 * -1 with errno (EHOSTUNREACH: no such peer now; EAGAIN: its queue is
 * full); then nothing was sent. */
static int send_to(cv_broker_t *broker, const void *to, size_t to_size,
                   char command, int fields, const void *a, size_t a_size,
                   const void *b, size_t b_size, const void *rest,
                   size_t rest_size)
{
    if (zmq_send(broker->router, to, to_size, ZMQ_DONTWAIT | ZMQ_SNDMORE) <
        0)
        return -1;
    /* after an accepted routing frame the rest of a message is taken */
    return cv_wire_send(broker->router, ZMQ_DONTWAIT, command, fields, a,
                        a_size, b, b_size, rest, rest_size);
}

/* N to the sender for every event of a B: its message ids, separated by
 * spaces, as many NAKs as they need. A B whose entries do not parse is
 * garbage: its sender's lease re-sends what it holds. */
static void nak_batch(cv_broker_t *broker, const uint8_t *client,
                      size_t client_size, const cv_wire_msg_t *batch)
{
    char ids[CV_WIRE_ACK_IDS_MAX];
    size_t used = 0;
    const uint8_t *at = batch->rest;
    const uint8_t *end = batch->rest + batch->rest_size;
    cv_wire_entry_t entry;
    int got;
    while ((got = cv_wire_entry_next(&at, end, &entry)) == 1) {
        if (used + entry.msg_id_size + 1 > sizeof(ids)) {
            send_to(broker, client, client_size, CV_WIRE_NAK, 0, NULL, 0,
                    NULL, 0, ids, used);
            used = 0;
        }
        if (used > 0)
            ids[used++] = ' ';
        memcpy(ids + used, entry.msg_id, entry.msg_id_size);
        used += entry.msg_id_size;
    }
    if (got < 0)
        cv_wire_drop(metric_garbage, "a batch whose entries do not parse");
    if (used > 0)
        send_to(broker, client, client_size, CV_WIRE_NAK, 0, NULL, 0, NULL, 0,
                ids, used);
}

/* Q or B from a sender: to the next live worker of the destination, which
 * gets Q <client> <msg id> <envelope> or B <client> <entries> (a batch
 * goes whole to one worker); N to the sender when there is none. */
static void route_request(cv_broker_t *broker, const uint8_t *client,
                          size_t client_size, const cv_wire_msg_t *req)
{
    bool batch = req->command == CV_WIRE_BATCH;
    const uint8_t *dest = req->field[0];
    size_t dest_size = req->field_size[0];
    int64_t now = cv_clock_monotonic_ms();
    int64_t liveness = (int64_t)broker->heartbeat_ms * CV_WIRE_LIVENESS;
    int high = broker->peer_high;
    for (int n = 0; n < high; n++) {
        cv_broker_peer_t *p = &broker->peers[(broker->rotation + n) % high];
        if (!p->used || now - p->last_heard_ms > liveness ||
            strlen(p->service) != dest_size ||
            memcmp(p->service, dest, dest_size) != 0)
            continue;
        if (send_to(broker, p->identity, p->identity_size, req->command,
                    batch ? 1 : 2, client, client_size, req->field[1],
                    req->field_size[1], req->rest, req->rest_size) == 0) {
            broker->rotation = (unsigned)((broker->rotation + n + 1) % high);
            cv_metric_add(metric_routed, 1);
            return;
        }
        if (errno == EHOSTUNREACH) {
            p->used = false; /* gone; it re-registers if it comes back */
            broker_count_workers(broker);
        }
        /* EAGAIN: that worker is full; try the next one */
    }
    if (batch)
        nak_batch(broker, client, client_size, req);
    else
        send_to(broker, client, client_size, CV_WIRE_NAK, 0, NULL, 0, NULL, 0,
                req->field[1], req->field_size[1]);
    cv_metric_add(metric_naks, 1);
}

/* A from a worker: back to the sender as A <msg ids>. */
static void route_ack(cv_broker_t *broker, const cv_wire_msg_t *ack)
{
    if (send_to(broker, ack->field[0], ack->field_size[0], CV_WIRE_ACK, 0,
                NULL, 0, NULL, 0, ack->rest, ack->rest_size) == 0)
        cv_metric_add(metric_acks, 1);
}

/* Reads and dispatches one message: the peer's routing id, then one
 * cv_wire frame. 1 read, 0 none waiting, -1 error. */
static int broker_receive(cv_broker_t *broker)
{
    zmq_msg_t frames[CV_BROKER_MAX_FRAMES];
    int count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, broker->router,
                         count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&part);
            for (int i = 0; i < count; i++)
                zmq_msg_close(&frames[i]);
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        more = zmq_msg_more(&part);
        if (count < CV_BROKER_MAX_FRAMES)
            frames[count++] = part;
        else
            zmq_msg_close(&part);
    }
    cv_wire_msg_t msg;
    const uint8_t *from = count > 0 ? zmq_msg_data(&frames[0]) : NULL;
    size_t from_size = count > 0 ? zmq_msg_size(&frames[0]) : 0;
    const void *data = count == 2 ? zmq_msg_data(&frames[1]) : NULL;
    size_t size = count == 2 ? zmq_msg_size(&frames[1]) : 0;
    char command = count == 2 ? cv_wire_command(data, size) : 0;
    cv_broker_peer_t *peer = peer_find(broker, from, from_size);
    if (peer != NULL)
        peer->last_heard_ms = cv_clock_monotonic_ms();
    if (command == CV_WIRE_READY && cv_wire_parse(data, size, 0, &msg) == 0)
        peer_ready(broker, from, from_size, msg.rest, msg.rest_size);
    else if (command == CV_WIRE_REQUEST &&
             cv_wire_parse(data, size, 2, &msg) == 0)
        route_request(broker, from, from_size, &msg);
    else if (command == CV_WIRE_BATCH &&
             cv_wire_parse(data, size, 1, &msg) == 0)
        route_request(broker, from, from_size, &msg);
    else if (command == CV_WIRE_ACK && cv_wire_parse(data, size, 1, &msg) == 0)
        route_ack(broker, &msg);
    else
        cv_wire_drop(metric_garbage, "not a CV1 frame the broker takes");
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
    return 1;
}

/* Heartbeats every known peer; forgets the silent ones. */
static void broker_heartbeat(cv_broker_t *broker)
{
    int64_t now = cv_clock_monotonic_ms();
    int64_t liveness = (int64_t)broker->heartbeat_ms * CV_WIRE_LIVENESS;
    bool changed = false;
    for (int i = 0; i < broker->peer_high; i++) {
        cv_broker_peer_t *p = &broker->peers[i];
        if (!p->used)
            continue;
        if (now - p->last_heard_ms > liveness) {
            cv_log_info("peer for '%s' went silent; forgotten",
                        p->service[0] ? p->service : "(sending only)");
            p->used = false;
            changed = true;
            continue;
        }
        send_to(broker, p->identity, p->identity_size, CV_WIRE_HEARTBEAT, 0,
                NULL, 0, NULL, 0, NULL, 0);
    }
    while (broker->peer_high > 0 && !broker->peers[broker->peer_high - 1].used)
        broker->peer_high--;
    if (changed)
        broker_count_workers(broker);
}

cv_broker_t *cv_broker_new(const char *bind, int heartbeat_ms)
{
    if (metric_routed == NULL) {
        metric_routed = cv_metrics_counter(
            "conveyor_broker_requests_routed_total",
            "requests passed to a worker");
        metric_acks = cv_metrics_counter("conveyor_broker_acks_total",
                                         "acknowledgements passed back");
        metric_naks = cv_metrics_counter("conveyor_broker_naks_total",
                                         "requests with no live worker");
        metric_garbage = cv_metrics_counter("conveyor_broker_garbage_total",
                                            "malformed messages dropped");
        metric_workers = cv_metrics_gauge("conveyor_broker_workers",
                                          "live registered workers");
    }
    cv_broker_t *broker = calloc(1, sizeof(*broker));
    if (broker == NULL)
        return NULL;
    broker->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 500;
    broker->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    broker->zmq = zmq_ctx_new();
    if (broker->stop_fd < 0 || broker->zmq == NULL)
        goto fail;
    broker->router = zmq_socket(broker->zmq, ZMQ_ROUTER);
    if (broker->router == NULL)
        goto fail;
    int one = 1;
    int zero = 0;
    int hwm = 100000;
    zmq_setsockopt(broker->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(broker->router, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(broker->router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(broker->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    int64_t max_msg = CV_WIRE_MSG_MAX;
    zmq_setsockopt(broker->router, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg));
    if (zmq_bind(broker->router, bind) != 0) {
        cv_error("cannot bind '%s': %s", bind, zmq_strerror(errno));
        goto fail;
    }
    size_t size = sizeof(broker->endpoint);
    zmq_getsockopt(broker->router, ZMQ_LAST_ENDPOINT, broker->endpoint, &size);
    return broker;
fail:
    cv_broker_destroy(&broker);
    return NULL;
}

void cv_broker_destroy(cv_broker_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_broker_t *broker = *self_p;
    if (broker->router != NULL)
        zmq_close(broker->router);
    if (broker->zmq != NULL)
        zmq_ctx_term(broker->zmq);
    if (broker->stop_fd >= 0)
        close(broker->stop_fd);
    free(broker);
    *self_p = NULL;
}

const char *cv_broker_endpoint(const cv_broker_t *self)
{
    return self->endpoint;
}

void cv_broker_stop(cv_broker_t *self)
{
    atomic_store(&self->stopping, true);
    uint64_t one = 1;
    ssize_t n = write(self->stop_fd, &one, sizeof(one));
    (void)n;
}

int cv_broker_run(cv_broker_t *broker)
{
    cv_log_info("broker listening on '%s'", broker->endpoint);
    int64_t next_beat = 0;
    while (!atomic_load(&broker->stopping)) {
        int64_t now = cv_clock_monotonic_ms();
        if (now >= next_beat) {
            broker_heartbeat(broker);
            next_beat = now + broker->heartbeat_ms;
        }
        zmq_pollitem_t items[] = {
            {broker->router, 0, ZMQ_POLLIN, 0},
            {NULL, broker->stop_fd, ZMQ_POLLIN, 0},
        };
        long timeout = (long)(next_beat - cv_clock_monotonic_ms());
        if (zmq_poll(items, 2, timeout < 0 ? 0 : timeout) < 0 &&
            errno != EINTR)
            return cv_error("cannot poll: %s", zmq_strerror(errno));
        if (items[0].revents & ZMQ_POLLIN) {
            /* drain a bounded batch so heartbeats stay on time */
            for (int i = 0; i < 10000; i++)
                if (broker_receive(broker) <= 0)
                    break;
        }
    }
    cv_log_info("broker stopped");
    return 0;
}

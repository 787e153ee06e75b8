/* bench_sink: the webhook receiver the bench's staff are notified at.
 *
 * A libmicrohttpd server on 127.0.0.1 with a small thread pool. The arrival
 * time of a notification is taken when its headers are complete (the first
 * call for the request), before the body is read, so the sink's own work
 * does not add to the measured latency. The lead is named by `lead_id`
 * anywhere in the JSON body or, failing that, by the `lead_…` part of the
 * Idempotency-Key (`ntf-<lead_id>-first-contact`). Every POST is answered
 * 200 so the notifier never retries because of the sink. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SINK_THREADS 2
#define SINK_MAX_BODY (1024 * 1024)
#define SINK_JSON_DEPTH 4

struct bench_sink {
    struct MHD_Daemon *daemon;  /* the server */
    bench_table_t *table;       /* where arrivals go, not owned */
    int port;                   /* bound port */
    atomic_size_t requests;     /* requests answered */
    atomic_size_t no_lead;      /* POSTs naming no lead */
};

typedef struct {
    int64_t arrival_us;         /* headers complete */
    char *body;                 /* collected body, NUL-terminated */
    size_t len;                 /* bytes in body */
    size_t cap;                 /* bytes allocated for body */
    bool too_big;               /* body passed SINK_MAX_BODY */
} sink_request_t;

static void sink_request_free(sink_request_t *request)
{
    if (request == NULL)
        return;
    free(request->body);
    free(request);
}

/* Appends to the body; past the limit or out of memory it stops keeping
 * data (the notification still counts if its key names the lead). */
static void sink_append(sink_request_t *request, const char *data,
                        size_t size)
{
    size_t need = request->len + size + 1;

    if (request->too_big)
        return;
    if (need > SINK_MAX_BODY) {
        request->too_big = true;
        return;
    }
    if (need > request->cap) {
        size_t cap = request->cap == 0 ? 1024 : request->cap;
        char *body;

        while (cap < need)
            cap *= 2;
        body = realloc(request->body, cap);
        if (body == NULL) {
            request->too_big = true;
            return;
        }
        request->body = body;
        request->cap = cap;
    }
    memcpy(request->body + request->len, data, size);
    request->len += size;
    request->body[request->len] = '\0';
}

/* The first string "lead_id" in `value`, searching nested objects and
 * arrays a few levels deep; NULL when there is none. */
static const char *sink_find_lead_id(json_t *value, int depth)
{
    const char *found = NULL;

    if (depth > SINK_JSON_DEPTH)
        return NULL;
    if (json_is_object(value)) {
        json_t *id = json_object_get(value, "lead_id");
        const char *key;
        json_t *member;

        if (json_is_string(id) && json_string_length(id) > 0)
            return json_string_value(id);
        json_object_foreach(value, key, member) {
            found = sink_find_lead_id(member, depth + 1);
            if (found != NULL)
                return found;
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *member;

        json_array_foreach(value, i, member) {
            found = sink_find_lead_id(member, depth + 1);
            if (found != NULL)
                return found;
        }
    }
    return NULL;
}

/* Copies the "lead_" + hex part of an idempotency key into `out`; false
 * when the key holds none. */
static bool sink_lead_from_key(const char *key, char *out, size_t size)
{
    const char *start = key == NULL ? NULL : strstr(key, "lead_");
    size_t len;

    if (start == NULL)
        return false;
    len = 5 + strspn(start + 5, "0123456789abcdefABCDEF");
    if (len == 5 || len >= size)
        return false;
    memcpy(out, start, len);
    out[len] = '\0';
    return true;
}

static enum MHD_Result sink_reply(struct MHD_Connection *connection,
                                  unsigned int status, const char *body)
{
    struct MHD_Response *response;
    enum MHD_Result rc;

    response = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                               MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type", "application/json");
    rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

/* Records the notification the complete request carries. */
static void sink_record(bench_sink_t *self, struct MHD_Connection *connection,
                        const sink_request_t *request)
{
    char lead_id[BENCH_ID_MAX] = "";
    const char *key = MHD_lookup_connection_value(
        connection, MHD_HEADER_KIND, "Idempotency-Key");
    json_t *root = NULL;

    if (request->body != NULL && !request->too_big)
        root = json_loadb(request->body, request->len, 0, NULL);
    if (root != NULL) {
        const char *id = sink_find_lead_id(root, 0);

        if (id != NULL)
            snprintf(lead_id, sizeof(lead_id), "%s", id);
    }
    json_decref(root);
    if (lead_id[0] == '\0' && !sink_lead_from_key(key, lead_id,
                                                  sizeof(lead_id))) {
        atomic_fetch_add(&self->no_lead, 1);
        return;
    }
    bench_table_arrive(self->table, lead_id, request->arrival_us);
}

static enum MHD_Result sink_access(void *cls, struct MHD_Connection *connection,
                                   const char *url, const char *method,
                                   const char *version,
                                   const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    bench_sink_t *self = cls;
    sink_request_t *request = *con_cls;

    (void)version;
    if (request == NULL) {
        /* First call: headers only. Replying now would close the
         * connection, so only note the time. */
        request = calloc(1, sizeof(*request));
        if (request == NULL)
            return MHD_NO;
        request->arrival_us = bench_now_us();
        *con_cls = request;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        sink_append(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&self->requests, 1);
    if (strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0)
        return sink_reply(connection, MHD_HTTP_OK, "{\"status\":\"ok\"}");
    if (strcmp(method, "POST") != 0)
        return sink_reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "{\"error\":\"method_not_allowed\"}");
    sink_record(self, connection, request);
    return sink_reply(connection, MHD_HTTP_OK, "{\"ok\":true}");
}

static void sink_completed(void *cls, struct MHD_Connection *connection,
                           void **con_cls,
                           enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)connection;
    (void)code;
    sink_request_free(*con_cls);
    *con_cls = NULL;
}

bench_sink_t *bench_sink_start(int port, bench_table_t *table)
{
    bench_sink_t *self = calloc(1, sizeof(*self));
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;

    if (self == NULL) {
        fprintf(stderr, "conveyor-bench: cannot start sink: out of memory\n");
        return NULL;
    }
    self->table = table;
    atomic_init(&self->requests, 0);
    atomic_init(&self->no_lead, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port,
        NULL, NULL, sink_access, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)SINK_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_NOTIFY_COMPLETED, sink_completed, self,
        MHD_OPTION_END);
    if (self->daemon == NULL) {
        fprintf(stderr, "conveyor-bench: cannot listen on '127.0.0.1:%d'\n",
                port);
        free(self);
        return NULL;
    }
    info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info != NULL ? info->port : port;
    return self;
}

void bench_sink_destroy(bench_sink_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}

int bench_sink_port(const bench_sink_t *self)
{
    return self->port;
}

void bench_sink_counts(const bench_sink_t *self, bench_sink_counts_t *out)
{
    out->requests = atomic_load(&((bench_sink_t *)self)->requests);
    out->no_lead = atomic_load(&((bench_sink_t *)self)->no_lead);
}

/* cv_http: a small HTTP server over libmicrohttpd.
 *
 * MHD calls the access handler at least twice per request: once when the
 * headers are in (we only set up our state), then with each piece of the
 * body, then once more with no data when the request is complete; that last
 * call runs the service's handler. A reply is queued only on that last call
 * (or on a later one, after a resume), never on the first, because MHD
 * closes the connection after a reply queued before the body was read.
 *
 * The request's state lives as long as its connection and serves every
 * request a keep-alive connection carries: no allocation per request for
 * it, its lock, the body or the reply. A reply is only stored by
 * cv_http_reply (on whatever thread); MHD's response is made from it on
 * MHD's thread, without copying it again, when it is queued.
 *
 * Suspend and resume race with each other across threads, so each request
 * has a small lock: the handler only *asks* to suspend; after it returns we
 * really suspend (MHD requires that from inside the access handler) unless
 * the other thread has already resumed, in which case the reply is queued at
 * once. cv_http_resume calls MHD_resume_connection only for a connection
 * that is really suspended. */
#include "cv_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cv_log.h"
#include "cv_metrics.h"

/* A body over the limit is read and thrown away (so the client gets its
 * 413 on a keep-alive connection) up to this many times the limit; past
 * that the connection is closed. */
#define CV_HTTP_DISCARD_FACTOR 4
#define CV_HTTP_TIMEOUT_S 60u /* idle connection timeout */
/* Per-connection memory for request headers and the read buffer. MHD
 * zeroes all of it for every request, so its default of 32 KiB cost more
 * than parsing a lead; 16 KiB still takes headers of several KiB. */
#define CV_HTTP_POOL_BYTES ((size_t)16 * 1024)
/* A body or reply buffer bigger than this is freed when its request ends
 * instead of being kept for the connection's next request. */
#define CV_HTTP_KEEP_BYTES ((size_t)64 * 1024)

typedef struct cv_http_header_item {
    struct cv_http_header_item *next; /* the next header to add */
    char *name;                       /* header name (owned) */
    char *value;                      /* header value (owned) */
} cv_http_header_item_t;

struct cv_http {
    struct MHD_Daemon *daemon;      /* the listening server (owned) */
    char service[64];               /* name shown by /metrics */
    int port;                       /* the port actually bound */
    atomic_bool ready;              /* /healthz answers 200 when true */
    int64_t max_body_bytes;         /* 413 above this */
    cv_http_handler_fn handler;     /* the service's handler, or NULL */
    void *arg;                      /* the handler's argument */
};

/* One per connection (made when it opens, freed when it closes), reset
 * for each request it carries. */
struct cv_http_request {
    cv_http_t *server;                 /* the server it arrived on */
    struct MHD_Connection *connection; /* MHD's connection (not owned) */
    const char *method;                /* MHD's copy, valid all request */
    const char *path;                  /* MHD's copy, without the query */
    char *body;                        /* the body, NUL-terminated (owned,
                                          kept for the next request) */
    size_t body_size;                  /* bytes in body */
    size_t body_capacity;              /* bytes allocated for body */
    bool too_large;                    /* body went over max_body_bytes */
    uint64_t discarded;                /* bytes thrown away after that */
    bool handled;                      /* the handler has been called */
    bool content_type_done;            /* content_type has been computed */
    char content_type[128];            /* media type, lower-cased */
    void *user;                        /* the handler's own state */
    cv_http_header_item_t *headers;    /* headers for the next reply */
    pthread_mutex_t lock;              /* guards the fields below */
    bool replied;                      /* a reply is stored, not queued */
    bool queued;                       /* MHD is sending the reply: it
                                          must not change any more */
    unsigned int status;               /* its status code */
    char reply_type[128];              /* its Content-Type, "" for none */
    char *reply;                       /* its body (owned, kept for the
                                          next request) */
    size_t reply_size;                 /* bytes in reply */
    size_t reply_capacity;             /* bytes allocated for reply */
    cv_http_header_item_t *reply_headers; /* its other headers (owned) */
    bool suspend_wanted;               /* the handler called suspend */
    bool suspended;                    /* MHD_suspend_connection was done */
    bool resumed;                      /* another thread called resume */
};

static cv_metric_t *cv_http_requests;  /* every request answered */
static cv_metric_t *cv_http_errors;    /* replies with status >= 500 */
static pthread_once_t cv_http_metrics_once = PTHREAD_ONCE_INIT;

static void cv_http_metrics_init(void)
{
    cv_http_requests = cv_metrics_counter("conveyor_http_requests_total",
                                          "HTTP requests answered");
    cv_http_errors = cv_metrics_counter("conveyor_http_server_errors_total",
                                        "HTTP replies with a 5xx status");
}

/* MHD's own messages (socket errors, bad requests) go to our log. */
static void cv_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    cv_log_warn("http: %s", line);
}

static void cv_http_headers_free(cv_http_header_item_t *item)
{
    while (item != NULL) {
        cv_http_header_item_t *next = item->next;
        free(item->name);
        free(item->value);
        free(item);
        item = next;
    }
}

/* The state of a new connection; NULL when out of memory. */
static cv_http_request_t *cv_http_request_new(cv_http_t *server,
                                              struct MHD_Connection *conn)
{
    cv_http_request_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    if (pthread_mutex_init(&req->lock, NULL) != 0) {
        free(req);
        return NULL;
    }
    req->server = server;
    req->connection = conn;
    return req;
}

/* Forgets what one request left, keeping the buffers (unless big) for the
 * connection's next request. */
static void cv_http_request_reset(cv_http_request_t *req)
{
    cv_http_headers_free(req->headers);
    cv_http_headers_free(req->reply_headers);
    if (req->body_capacity > CV_HTTP_KEEP_BYTES) {
        free(req->body);
        req->body = NULL;
        req->body_capacity = 0;
    }
    if (req->reply_capacity > CV_HTTP_KEEP_BYTES) {
        free(req->reply);
        req->reply = NULL;
        req->reply_capacity = 0;
    }
    req->method = NULL;
    req->path = NULL;
    if (req->body != NULL)
        req->body[0] = '\0';
    req->body_size = 0;
    req->too_large = false;
    req->discarded = 0;
    req->handled = false;
    req->content_type_done = false;
    req->user = NULL;
    req->headers = NULL;
    /* the lock is not held between requests: no other thread has the
     * request any more once it has been resumed */
    req->replied = false;
    req->queued = false;
    req->status = 0;
    req->reply_size = 0;
    req->reply_headers = NULL;
    req->suspend_wanted = false;
    req->suspended = false;
    req->resumed = false;
}

static void cv_http_request_free(cv_http_request_t *req)
{
    if (req == NULL)
        return;
    cv_http_headers_free(req->headers);
    cv_http_headers_free(req->reply_headers);
    free(req->body);
    free(req->reply);
    pthread_mutex_destroy(&req->lock);
    free(req);
}

/* A connection opens (its request state is made) or closes (freed). */
static void cv_http_connection(void *cls, struct MHD_Connection *connection,
                               void **socket_context,
                               enum MHD_ConnectionNotificationCode toe)
{
    cv_http_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = cv_http_request_new(self, connection);
        if (*socket_context == NULL)
            cv_log_warn("http: out of memory for a connection");
        return;
    }
    cv_http_request_free(*socket_context);
    *socket_context = NULL;
}

static void cv_http_completed(void *cls, struct MHD_Connection *connection,
                              void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    if (*con_cls != NULL)
        cv_http_request_reset(*con_cls);
    *con_cls = NULL;
}

/* Appends a piece of the body, or counts it as discarded once the body is
 * over the limit. Returns false when the client has sent so much past the
 * limit that the connection should be dropped. */
/* Makes room for `capacity` bytes of body, the NUL included; what is
 * there stays, and so does a NUL-terminated body (an empty one too).
 * false when out of memory (the body is unchanged). */
static bool cv_http_body_reserve(cv_http_request_t *req, size_t capacity)
{
    if (capacity <= req->body_capacity)
        return true;
    char *body = realloc(req->body, capacity);
    if (body == NULL)
        return false;
    if (req->body == NULL)
        body[0] = '\0';
    req->body = body;
    req->body_capacity = capacity;
    return true;
}

static bool cv_http_body_append(cv_http_request_t *req, const char *data,
                                size_t size)
{
    int64_t limit = req->server->max_body_bytes;
    if (!req->too_large && (int64_t)(req->body_size + size) > limit) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_size = 0;
        req->body_capacity = 0;
    }
    if (req->too_large) {
        req->discarded += size;
        return req->discarded <=
               (uint64_t)limit * CV_HTTP_DISCARD_FACTOR + 65536u;
    }
    size_t need = req->body_size + size + 1;
    if (need > req->body_capacity) {
        size_t capacity = req->body_capacity == 0 ? 1024 : req->body_capacity;
        while (capacity < need)
            capacity *= 2;
        if (!cv_http_body_reserve(req, capacity)) {
            cv_log_warn("http: out of memory for a body of %zu bytes", need);
            return false;
        }
    }
    memcpy(req->body + req->body_size, data, size);
    req->body_size += size;
    req->body[req->body_size] = '\0';
    return true;
}

/* Queues the stored reply. Called on MHD's thread, never on the first call
 * of a request except for a 413 decided from Content-Length. The response
 * points at req->reply, which stays until the request has ended. */
static enum MHD_Result cv_http_queue(cv_http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    bool replied = req->replied;
    unsigned int status = req->status;
    cv_http_header_item_t *headers = req->reply_headers;
    req->replied = false;
    req->reply_headers = NULL;
    req->queued = req->queued || replied;
    pthread_mutex_unlock(&req->lock);
    if (!replied)
        return MHD_NO;
    struct MHD_Response *response = MHD_create_response_from_buffer(
        req->reply_size, req->reply != NULL ? req->reply : (void *)"",
        MHD_RESPMEM_PERSISTENT);
    if (response == NULL) {
        cv_log(CV_LOG_ERROR, "http: cannot build a reply to '%s %s'",
               req->method, req->path);
        cv_http_headers_free(headers);
        return MHD_NO;
    }
    if (req->reply_type[0] != '\0')
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                req->reply_type);
    for (cv_http_header_item_t *h = headers; h != NULL; h = h->next)
        MHD_add_response_header(response, h->name, h->value);
    cv_http_headers_free(headers);
    enum MHD_Result rc = MHD_queue_response(req->connection, status,
                                            response);
    MHD_destroy_response(response);
    cv_metric_add(cv_http_requests, 1);
    if (status >= 500)
        cv_metric_add(cv_http_errors, 1);
    return rc;
}

/* /healthz, /metrics and 404 for what the handler did not claim. */
static void cv_http_builtin(cv_http_request_t *req)
{
    cv_http_t *self = req->server;
    bool get = strcmp(req->method, "GET") == 0 ||
               strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/healthz") == 0 ||
        strcmp(req->path, "/metrics") == 0) {
        if (!get) {
            cv_http_add_header(req, "Allow", "GET, HEAD");
            cv_http_reply_error(req, 405, "method_not_allowed", NULL,
                                "'%s' takes GET", req->path);
            return;
        }
        if (strcmp(req->path, "/healthz") == 0) {
            bool ready = atomic_load(&self->ready);
            json_t *body = json_pack("{s:s, s:s}", "status",
                                     ready ? "ok" : "starting", "service",
                                     self->service);
            cv_http_reply_json(req, ready ? 200 : 503, body);
            return;
        }
        char *text = cv_metrics_render(self->service);
        if (text == NULL) {
            cv_http_reply_error(req, 500, "internal", NULL,
                                "cannot render metrics: out of memory");
            return;
        }
        cv_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                      text, strlen(text));
        free(text);
        return;
    }
    cv_http_reply_error(req, 404, "not_found", NULL, "no route for '%s %s'",
                        req->method, req->path);
}

/* The request is complete (or resumed): run the handler once, then queue
 * its reply or suspend. */
static enum MHD_Result cv_http_finish(cv_http_request_t *req)
{
    cv_http_t *self = req->server;
    if (!req->handled) {
        req->handled = true;
        if (req->too_large) {
            cv_http_reply_error(req, 413, "body_too_large", NULL,
                                "the body is over the limit of %" PRId64
                                " bytes",
                                self->max_body_bytes);
        } else {
            bool claimed = self->handler != NULL &&
                           self->handler(self->arg, req);
            if (!claimed) {
                pthread_mutex_lock(&req->lock);
                bool answered = req->replied || req->suspend_wanted;
                pthread_mutex_unlock(&req->lock);
                if (!answered)
                    cv_http_builtin(req);
            }
        }
    }
    pthread_mutex_lock(&req->lock);
    if (req->suspend_wanted && !req->resumed) {
        if (!req->suspended) {
            MHD_suspend_connection(req->connection);
            req->suspended = true;
        }
        pthread_mutex_unlock(&req->lock);
        return MHD_YES;
    }
    bool have_reply = req->replied;
    pthread_mutex_unlock(&req->lock);
    if (!have_reply) {
        cv_log(CV_LOG_ERROR, "http: handler for '%s %s' neither replied nor "
               "suspended", req->method, req->path);
        cv_http_reply_error(req, 500, "internal", NULL,
                            "the request was not answered");
    }
    return cv_http_queue(req);
}

/* Parses a Content-Length header; false when absent or not a number. */
static bool cv_http_content_length(struct MHD_Connection *conn,
                                   uint64_t *length)
{
    const char *text = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   "Content-Length");
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return false;
    *length = value;
    return true;
}

static enum MHD_Result cv_http_access(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls)
{
    (void)version;
    cv_http_t *self = cls;
    cv_http_request_t *req = *con_cls;
    if (req == NULL) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(
            conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req = info != NULL ? info->socket_context : NULL;
        if (req == NULL)
            return MHD_NO; /* its connection had no memory: logged */
        req->method = method;
        req->path = url;
        *con_cls = req;
        uint64_t length = 0;
        bool known = cv_http_content_length(conn, &length);
        if (known && length > (uint64_t)self->max_body_bytes) {
            /* Refused before reading: MHD closes the connection instead
             * of reading a body nobody wants. */
            req->handled = true;
            req->too_large = true;
            cv_http_reply_error(req, 413, "body_too_large", NULL,
                                "the body of %" PRIu64 " bytes is over the "
                                "limit of %" PRId64 " bytes",
                                length, self->max_body_bytes);
            return cv_http_queue(req);
        }
        /* the whole body in one allocation, kept for the next request
         * (without memory now, the body grows as it comes) */
        if (known)
            cv_http_body_reserve(req, (size_t)length + 1);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        bool ok = req->handled || cv_http_body_append(req, upload_data,
                                                      *upload_data_size);
        *upload_data_size = 0;
        if (!ok)
            cv_log_warn("http: dropping '%s %s': the body goes far past the "
                        "limit", req->method, req->path);
        return ok ? MHD_YES : MHD_NO;
    }
    if (req->handled && req->too_large) {
        /* the early 413 is queued already */
        return MHD_YES;
    }
    return cv_http_finish(req);
}

/* Splits "host:port", "[v6]:port" or ":port" into host and port. */
static int cv_http_split_addr(const char *addr, char *host, size_t host_size,
                              int *port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return -1;
    const char *start = addr;
    size_t len = (size_t)(colon - addr);
    if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
        start = addr + 1;
        len -= 2;
    }
    if (len >= host_size)
        return -1;
    memcpy(host, start, len);
    host[len] = '\0';
    char *end = NULL;
    errno = 0;
    long value = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || value < 0 ||
        value > 65535)
        return -1;
    *port = (int)value;
    return 0;
}

/* Resolves the listening address; `*ipv6` tells which family it is. */
static int cv_http_resolve(const char *addr, struct sockaddr_storage *out,
                           bool *ipv6)
{
    char host[256];
    int port = 0;
    if (cv_http_split_addr(addr, host, sizeof(host), &port) != 0)
        return cv_error("bad listening address '%s': want host:port", addr);
    memset(out, 0, sizeof(*out));
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons((uint16_t)port);
        *ipv6 = false;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &found);
    if (rc != 0 || found == NULL)
        return cv_error("cannot resolve '%s': %s", host, gai_strerror(rc));
    memcpy(out, found->ai_addr, found->ai_addrlen);
    *ipv6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    if (*ipv6)
        ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    return 0;
}

cv_http_t *cv_http_start(const cv_http_options_t *options)
{
    pthread_once(&cv_http_metrics_once, cv_http_metrics_init);
    if (options == NULL || options->addr == NULL)
        return NULL;
    cv_http_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    snprintf(self->service, sizeof(self->service), "%s",
             options->service != NULL ? options->service : "conveyor");
    self->max_body_bytes = options->max_body_bytes > 0
                               ? options->max_body_bytes
                               : 1024 * 1024;
    self->handler = options->handler;
    self->arg = options->arg;
    atomic_init(&self->ready, false);
    struct sockaddr_storage sa;
    bool ipv6 = false;
    if (cv_http_resolve(options->addr, &sa, &ipv6) != 0)
        goto fail;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    unsigned int threads = options->threads >= 1 ? (unsigned)options->threads
                                                 : 1u;
    /* the logger first, so MHD's own start-up messages reach it too */
    struct MHD_OptionItem items[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)cv_http_mhd_log, self},
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)cv_http_completed, self},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)cv_http_connection, self},
        {MHD_OPTION_CONNECTION_TIMEOUT, CV_HTTP_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)CV_HTTP_POOL_BYTES,
         NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, cv_http_access,
                                    self, MHD_OPTION_ARRAY, items,
                                    MHD_OPTION_END);
    if (self->daemon == NULL) {
        cv_error("cannot listen on '%s': address in use or not permitted",
                 options->addr);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info != NULL ? (int)info->port : 0;
    cv_log_info("http listening on '%s' (port %d, %u threads)",
                options->addr, self->port, threads);
    return self;
fail:
    cv_http_destroy(&self);
    return NULL;
}

cv_http_t *cv_http_start_admin(const char *addr, const char *service)
{
    cv_http_options_t options = {
        .addr = addr,
        .service = service,
        .threads = 1,
        .max_body_bytes = 64 * 1024,
        .handler = NULL,
        .arg = NULL,
    };
    return cv_http_start(&options);
}

void cv_http_destroy(cv_http_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_http_t *self = *self_p;
    if (self->daemon != NULL)
        MHD_stop_daemon(self->daemon);
    free(self);
    *self_p = NULL;
}

int cv_http_port(const cv_http_t *self)
{
    return self != NULL ? self->port : 0;
}

void cv_http_set_ready(cv_http_t *self, bool ready)
{
    if (self != NULL)
        atomic_store(&self->ready, ready);
}

const char *cv_http_method(const cv_http_request_t *req)
{
    return req->method;
}

const char *cv_http_path(const cv_http_request_t *req)
{
    return req->path;
}

const char *cv_http_body(const cv_http_request_t *req)
{
    return req->body != NULL ? req->body : "";
}

size_t cv_http_body_size(const cv_http_request_t *req)
{
    return req->body_size;
}

const char *cv_http_header(const cv_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                       name);
}

const char *cv_http_query(const cv_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->connection,
                                       MHD_GET_ARGUMENT_KIND, name);
}

const char *cv_http_bearer(const cv_http_request_t *req,
                           bool allow_query_key)
{
    const char *auth = cv_http_header(req, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer", 6) == 0 &&
        (auth[6] == ' ' || auth[6] == '\t')) {
        const char *token = auth + 6;
        while (*token == ' ' || *token == '\t')
            token++;
        if (*token != '\0')
            return token;
    }
    if (allow_query_key) {
        const char *key = cv_http_query(req, "key");
        if (key != NULL && key[0] != '\0')
            return key;
    }
    return NULL;
}

const char *cv_http_content_type(const cv_http_request_t *req)
{
    cv_http_request_t *self = (cv_http_request_t *)req;
    if (self->content_type_done)
        return self->content_type;
    self->content_type_done = true;
    self->content_type[0] = '\0';
    const char *value = cv_http_header(req, "Content-Type");
    if (value == NULL)
        return self->content_type;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = 0;
    while (value[len] != '\0' && value[len] != ';' &&
           len + 1 < sizeof(self->content_type)) {
        char c = value[len];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        self->content_type[len] = c;
        len++;
    }
    while (len > 0 && (self->content_type[len - 1] == ' ' ||
                       self->content_type[len - 1] == '\t'))
        len--;
    self->content_type[len] = '\0';
    return self->content_type;
}

void cv_http_set_user(cv_http_request_t *req, void *user)
{
    req->user = user;
}

void *cv_http_user(const cv_http_request_t *req)
{
    return req->user;
}

void cv_http_reply(cv_http_request_t *req, int status,
                   const char *content_type, const char *body, size_t size)
{
    cv_http_header_item_t *headers = req->headers;
    req->headers = NULL;
    pthread_mutex_lock(&req->lock);
    bool twice = req->replied || req->queued;
    bool stored = false;
    if (!twice && size + 1 > req->reply_capacity) {
        char *grown = realloc(req->reply, size + 1);
        if (grown != NULL) {
            req->reply = grown;
            req->reply_capacity = size + 1;
        }
    }
    if (!twice && size + 1 <= req->reply_capacity) {
        if (size > 0)
            memcpy(req->reply, body, size);
        req->reply[size] = '\0';
        req->reply_size = size;
        snprintf(req->reply_type, sizeof(req->reply_type), "%s",
                 content_type != NULL ? content_type : "");
        req->status = (unsigned int)status;
        req->reply_headers = headers;
        headers = NULL;
        req->replied = true;
        stored = true;
    }
    pthread_mutex_unlock(&req->lock);
    cv_http_headers_free(headers);
    if (twice)
        cv_log(CV_LOG_ERROR, "http: second reply to '%s %s' ignored",
               req->method, req->path);
    else if (!stored)
        cv_log(CV_LOG_ERROR, "http: cannot build a reply to '%s %s'",
               req->method, req->path);
}

void cv_http_reply_json(cv_http_request_t *req, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":\"internal\",\"message\":\"cannot encode the reply\"}";
        cv_http_reply(req, 500, "application/json", oom, sizeof(oom) - 1);
        return;
    }
    cv_http_reply(req, status, "application/json", text, strlen(text));
    free(text);
}

void cv_http_reply_error(cv_http_request_t *req, int status, const char *code,
                         const char *field, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    json_t *body = json_object();
    if (body != NULL) {
        json_object_set_new(body, "error", json_string(code));
        /* json_string refuses invalid UTF-8 (echoed client text); fall
         * back to a message without it */
        json_t *text = json_string(message);
        json_object_set_new(body, "message",
                            text != NULL ? text
                                         : json_string("invalid text"));
        if (field != NULL)
            json_object_set_new(body, "field", json_string(field));
    }
    cv_http_reply_json(req, status, body);
}

void cv_http_add_header(cv_http_request_t *req, const char *name,
                        const char *value)
{
    cv_http_header_item_t *item = calloc(1, sizeof(*item));
    if (item == NULL)
        return;
    item->name = strdup(name);
    item->value = strdup(value);
    if (item->name == NULL || item->value == NULL) {
        cv_http_headers_free(item);
        return;
    }
    cv_http_header_item_t **tail = &req->headers;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = item;
}

void cv_http_suspend(cv_http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    req->suspend_wanted = true;
    pthread_mutex_unlock(&req->lock);
}

void cv_http_resume(cv_http_request_t *req)
{
    pthread_mutex_lock(&req->lock);
    req->resumed = true;
    bool suspended = req->suspended;
    struct MHD_Connection *connection = req->connection;
    pthread_mutex_unlock(&req->lock);
    /* When the handler's thread has not suspended yet it will see
     * `resumed` and queue the reply itself; from here on `req` may be
     * freed by MHD at any time. */
    if (suspended)
        MHD_resume_connection(connection);
}

/* bench_load: posts leads to intake over keep-alive HTTP/1.1 connections,
 * one request in flight per connection, driven by one epoll loop.
 *
 * Open loop (`rate`): request i is due at t0 + i/rate whatever happens to
 * the earlier ones; a due request waits for a free connection, and its
 * latency counts from when it was due, not from when it could be written,
 * so a slow server cannot hide its queueing (coordinated omission).
 * Closed loop (`saturate`): every free connection sends the next request at
 * once until the duration is over.
 *
 * Each request carries an Idempotency-Key, so after a broken connection it
 * is sent again (up to LOAD_MAX_ATTEMPTS) without risk of a second lead.
 *
 * The generator runs on the machine it measures, so a request is written
 * from parts made once per run (no printf per request) and a 202 reply is
 * read with bench_json_scan, jansson only when the skim is not sure.
 * CONVEYOR_BENCH_VERIFY=1 also does both the old way and reports any
 * difference on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench.h"
#include "cv_jsonw.h"

#define LOAD_REQUEST_MAX 2048       /* one request, headers and body */
#define LOAD_MAX_ATTEMPTS 3
#define LOAD_RECONNECT_US 100000    /* after a refused connection */
#define LOAD_RSS_EVERY_US 250000
#define LOAD_CONNECT_WAIT_US 3000000 /* for the connections before t0 */
#define LOAD_PENDING_POLL_US 1000   /* re-check the pending limit */
#define LOAD_EVENTS 64

typedef enum {
    CONN_DOWN,          /* no socket; reconnects at retry_at_us */
    CONN_CONNECTING,    /* non-blocking connect under way */
    CONN_IDLE,          /* connected, nothing in flight */
    CONN_BUSY,          /* a request written or being written */
} conn_state_t;

typedef struct {
    int fd;                     /* socket, -1 when down */
    conn_state_t state;         /* see conn_state_t */
    size_t request;             /* index in flight when busy */
    char out[LOAD_REQUEST_MAX]; /* the request being written */
    size_t out_len;             /* bytes in out */
    size_t out_off;             /* bytes of out already written */
    char *in;                   /* bytes read, NUL-terminated */
    size_t in_len;              /* bytes in in */
    size_t in_cap;              /* bytes allocated for in (minus NUL) */
    uint32_t events;            /* epoll events registered */
    int64_t retry_at_us;        /* when a down connection reconnects */
} load_conn_t;

typedef struct {
    int status;                 /* HTTP status */
    const char *body;           /* the body (in the buffer or `owned`) */
    size_t body_len;            /* its length */
    char *owned;                /* decoded chunked body, freed by caller */
    size_t consumed;            /* bytes of the buffer the reply used */
    bool close;                 /* the server closes the connection */
} load_reply_t;

/* The parts of every request of a run that depend on the run (host, key,
 * run id, tag), around the request's index (as in load_format_printf);
 * made once per run. The literal parts are LOAD_* constants. */
typedef struct {
    char head[LOAD_REQUEST_MAX]; /* request line to "Idempotency-Key: .." */
    size_t head_len;            /* bytes in head; 0: does not fit */
    char company[128];          /* from the name's end to the email's index */
    size_t company_len;         /* bytes in company; 0: does not fit */
    char phone[64];             /* from the email's index to the phone's */
    size_t phone_len;           /* last 7 digits; 0: does not fit */
} load_parts_t;

/* The literal parts of a request: after the Idempotency-Key's index, the
 * end of the headers, the body up to the name's index */
#define LOAD_LENGTH_HEAD "\r\nContent-Length: "
#define LOAD_HEAD_END "\r\n\r\n"
#define LOAD_BODY_NAME "{\"name\":\"Bench Lead "
/* after the phone's digits: the rest of the body */
#define LOAD_BODY_REST                                                       \
    "\",\"channel\":\"web\","                                               \
    "\"source\":\"bench\",\"region\":\"Moscow\",\"industry\":\"it\","         \
    "\"product\":\"crm\",\"budget\":500000,\"currency\":\"RUB\","             \
    "\"message\":\"conveyor-bench lead\"}"
/* the bytes of a literal, without its NUL */
#define LOAD_LITERAL_LEN(text) (sizeof(text) - 1)

typedef struct {
    const bench_load_options_t *opt; /* what to do */
    load_parts_t parts;         /* request parts, made once */
    bool verify;                /* CONVEYOR_BENCH_VERIFY: check both ways */
    size_t mismatches;          /* verify: differences found */
    bench_table_t *table;       /* accepted leads go here */
    bench_rss_t *rss;           /* memory samples */
    bench_load_result_t *res;   /* what happened */
    struct sockaddr_storage addr; /* intake's address */
    socklen_t addr_len;         /* its length */
    int epfd;                   /* the epoll instance */
    int timerfd;                /* wakes the loop when something is due */
    load_conn_t *conns;         /* opt->connections of them */
    size_t capacity;            /* requests allocated in res->requests */
    size_t total;               /* requests to issue (open loop) */
    size_t *retry;              /* requests to send again, a stack; at
                                   most one per connection */
    size_t retry_len;           /* entries in retry */
    size_t busy;                /* connections with a request in flight */
    int64_t armed_us;           /* when timerfd is set to fire, 0 none */
} load_t;

/* --- connections --- */

static void load_watch(load_t *self, load_conn_t *conn, uint32_t events)
{
    struct epoll_event ev;

    if (conn->events == events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = conn;
    if (epoll_ctl(self->epfd, EPOLL_CTL_MOD, conn->fd, &ev) == 0)
        conn->events = events;
}

/* Starts connecting. On failure the connection stays down and is retried
 * later. */
static void load_connect(load_t *self, load_conn_t *conn, int64_t now)
{
    struct epoll_event ev;
    int one = 1;
    int fd;

    fd = socket(self->addr.ss_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&self->addr, self->addr_len) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        goto fail;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLOUT;
    ev.data.ptr = conn;
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        goto fail;
    }
    conn->fd = fd;
    conn->events = EPOLLOUT;
    conn->state = CONN_CONNECTING;
    conn->in_len = 0;
    return;
fail:
    self->res->conn_errors++;
    conn->state = CONN_DOWN;
    conn->retry_at_us = now + LOAD_RECONNECT_US;
}

/* Gives up on the connection; its request, if any, is sent again on
 * another one or, after LOAD_MAX_ATTEMPTS, counted as failed. */
static void load_drop(load_t *self, load_conn_t *conn, int64_t now)
{
    if (conn->state == CONN_BUSY) {
        bench_request_t *req = &self->res->requests[conn->request];

        self->busy--;
        if (req->attempts < LOAD_MAX_ATTEMPTS)
            self->retry[self->retry_len++] = conn->request;
        else
            self->res->failed++;
    }
    if (conn->fd >= 0)
        close(conn->fd);
    self->res->conn_errors++;
    conn->fd = -1;
    conn->events = 0;
    conn->in_len = 0;
    conn->state = CONN_DOWN;
    conn->retry_at_us = now;
}

/* --- requests --- */

/* The lead for request `index`: unique email and phone, so intake never
 * merges two of them. The reference for load_format, which writes the
 * same bytes faster; used by the self-check and CONVEYOR_BENCH_VERIFY. */
static int load_format_printf(const bench_load_options_t *opt, size_t index,
                              char *out, size_t size)
{
    char body[1024];
    int body_len;
    int len;

    body_len = snprintf(
        body, sizeof(body),
        "{\"name\":\"Bench Lead %zu\",\"company\":\"Bench %s\","
        "\"email\":\"bench-%s-%zu@example.com\","
        "\"phone\":\"+79%02d%07zu\",\"channel\":\"web\","
        "\"source\":\"bench\",\"region\":\"Moscow\",\"industry\":\"it\","
        "\"product\":\"crm\",\"budget\":500000,\"currency\":\"RUB\","
        "\"message\":\"conveyor-bench lead\"}",
        index, opt->run_id, opt->run_id, index, opt->tag,
        index % 10000000);
    if (body_len < 0 || (size_t)body_len >= sizeof(body))
        return -1;
    len = snprintf(out, size,
                   "POST /v1/leads HTTP/1.1\r\n"
                   "Host: %s:%d\r\n"
                   "Authorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\n"
                   "Idempotency-Key: bench-%s-%zu\r\n"
                   "Content-Length: %d\r\n"
                   "\r\n"
                   "%s",
                   opt->host, opt->port, opt->key, opt->run_id, index,
                   body_len, body);
    if (len < 0 || (size_t)len >= size)
        return -1;
    return len;
}

/* The length snprintf reported for a part of `size` bytes; 0 when the
 * part did not fit (or is empty). */
static size_t load_part(char *out, size_t size, int len)
{
    if (len <= 0 || (size_t)len >= size) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)len;
}

/* Makes the parts of load_format_printf's text that depend on the run,
 * not on the request; a part that does not fit stays empty, and
 * load_format then fails as the printf would. */
static void load_parts_make(load_parts_t *parts,
                            const bench_load_options_t *opt)
{
    parts->head_len = load_part(
        parts->head, sizeof(parts->head),
        snprintf(parts->head, sizeof(parts->head),
                 "POST /v1/leads HTTP/1.1\r\n"
                 "Host: %s:%d\r\n"
                 "Authorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Idempotency-Key: bench-%s-",
                 opt->host, opt->port, opt->key, opt->run_id));
    parts->company_len = load_part(
        parts->company, sizeof(parts->company),
        snprintf(parts->company, sizeof(parts->company),
                 "\",\"company\":\"Bench %s\","
                 "\"email\":\"bench-%s-", opt->run_id, opt->run_id));
    parts->phone_len = load_part(
        parts->phone, sizeof(parts->phone),
        snprintf(parts->phone, sizeof(parts->phone),
                 "@example.com\",\"phone\":\"+79%02d", opt->tag));
}

/* load_format_printf's text for request `index`, from the run's parts:
 * the same bytes, or -1 where it gives -1. */
static int load_format(const load_parts_t *parts, size_t index, char *out,
                       size_t size)
{
    char index_text[CV_JSONW_INT_SIZE];
    char phone_text[CV_JSONW_INT_SIZE];
    char length_text[CV_JSONW_INT_SIZE];
    /* bench runs stay far below 2^63 requests */
    size_t index_len = cv_jsonw_format_int(index_text, (long long)index);
    /* the index's last 7 digits, zero-padded: 10000000 + them has 8
     * digits, and all but its leading 1 are written */
    size_t phone_len =
        cv_jsonw_format_int(phone_text,
                            10000000LL + (long long)(index % 10000000)) - 1;
    const char *phone_digits = phone_text + 1; /* past the leading 1 */
    size_t body_len;
    size_t length_len;
    size_t len;
    char *p = out;

    if (parts->head_len == 0 || parts->company_len == 0 ||
        parts->phone_len == 0)
        return -1;
    body_len = LOAD_LITERAL_LEN(LOAD_BODY_NAME) + index_len +
               parts->company_len + index_len + parts->phone_len + phone_len +
               LOAD_LITERAL_LEN(LOAD_BODY_REST);
    /* the printf's body buffer was 1024 bytes */
    if (body_len >= 1024)
        return -1;
    length_len = cv_jsonw_format_int(length_text, (long long)body_len);
    len = parts->head_len + index_len + LOAD_LITERAL_LEN(LOAD_LENGTH_HEAD) +
          length_len + LOAD_LITERAL_LEN(LOAD_HEAD_END) + body_len;
    if (len >= size)
        return -1;
#define LOAD_PUT(data, n)                                                    \
    do {                                                                     \
        memcpy(p, (data), (n));                                              \
        p += (n);                                                            \
    } while (0)
    LOAD_PUT(parts->head, parts->head_len);
    LOAD_PUT(index_text, index_len);
    LOAD_PUT(LOAD_LENGTH_HEAD, LOAD_LITERAL_LEN(LOAD_LENGTH_HEAD));
    LOAD_PUT(length_text, length_len);
    LOAD_PUT(LOAD_HEAD_END, LOAD_LITERAL_LEN(LOAD_HEAD_END));
    LOAD_PUT(LOAD_BODY_NAME, LOAD_LITERAL_LEN(LOAD_BODY_NAME));
    LOAD_PUT(index_text, index_len);
    LOAD_PUT(parts->company, parts->company_len);
    LOAD_PUT(index_text, index_len);
    LOAD_PUT(parts->phone, parts->phone_len);
    LOAD_PUT(phone_digits, phone_len);
    LOAD_PUT(LOAD_BODY_REST, LOAD_LITERAL_LEN(LOAD_BODY_REST));
#undef LOAD_PUT
    *p = '\0';
    return (int)len;
}

/* Writes what is left of the connection's request. */
static void load_flush(load_t *self, load_conn_t *conn, int64_t now)
{
    while (conn->out_off < conn->out_len) {
        ssize_t n = send(conn->fd, conn->out + conn->out_off,
                         conn->out_len - conn->out_off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            load_watch(self, conn, EPOLLIN | EPOLLOUT);
            return;
        }
        if (n < 0) {
            load_drop(self, conn, now);
            return;
        }
        conn->out_off += (size_t)n;
    }
    load_watch(self, conn, EPOLLIN);
}

/* Sends request `index` on the idle connection. */
static void load_issue(load_t *self, load_conn_t *conn, size_t index,
                       int64_t now)
{
    bench_request_t *req = &self->res->requests[index];
    int len = load_format(&self->parts, index, conn->out, sizeof(conn->out));

    if (self->verify) {
        char expected[LOAD_REQUEST_MAX];
        int expected_len = load_format_printf(self->opt, index, expected,
                                              sizeof(expected));

        if (expected_len != len ||
            (len > 0 && memcmp(expected, conn->out, (size_t)len) != 0)) {
            self->mismatches++;
            fprintf(stderr, "conveyor-bench: verify: request %zu differs "
                    "from printf\n", index);
        }
    }

    if (len < 0) {
        /* Only an absurdly long host or key gets here. */
        req->attempts = LOAD_MAX_ATTEMPTS;
        self->res->failed++;
        return;
    }
    req->attempts++;
    req->sent_us = now;
    self->res->send_end_us = now;
    conn->out_len = (size_t)len;
    conn->out_off = 0;
    conn->request = index;
    conn->state = CONN_BUSY;
    self->busy++;
    load_flush(self, conn, now);
}

/* Makes room for one more request (closed loop). */
static int load_reserve(load_t *self)
{
    bench_request_t *requests;
    size_t capacity;

    if (self->res->issued < self->capacity)
        return 0;
    capacity = self->capacity * 2;
    requests = realloc(self->res->requests, capacity * sizeof(*requests));
    if (requests == NULL)
        return -1;
    memset(requests + self->capacity, 0,
           (capacity - self->capacity) * sizeof(*requests));
    self->res->requests = requests;
    self->capacity = capacity;
    return 0;
}

/* --- replies --- */

/* Decodes a chunked body starting at `p`. Returns 1 with the body in
 * reply->owned, 0 when more bytes are needed, -1 when malformed. */
static int load_dechunk(const char *p, const char *end, load_reply_t *reply,
                        const char *start)
{
    size_t cap = 256;
    size_t len = 0;
    char *body = malloc(cap);

    if (body == NULL)
        return -1;
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char *stop = NULL;
        unsigned long size;

        if (eol == NULL)
            goto more;
        errno = 0;
        size = strtoul(p, &stop, 16);
        if (errno != 0 || stop == p || size > 16 * 1024 * 1024)
            goto bad;
        p = eol + 1;
        if (size == 0)
            break;
        if ((size_t)(end - p) < size + 2)
            goto more;
        if (len + size + 1 > cap) {
            char *grown;

            while (len + size + 1 > cap)
                cap *= 2;
            grown = realloc(body, cap);
            if (grown == NULL)
                goto bad;
            body = grown;
        }
        memcpy(body + len, p, size);
        len += size;
        p += size + 2;
    }
    /* Trailers, then the empty line. */
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));

        if (eol == NULL)
            goto more;
        if (eol == p || (eol == p + 1 && *p == '\r')) {
            p = eol + 1;
            break;
        }
        p = eol + 1;
    }
    body[len] = '\0';
    reply->owned = body;
    reply->body = body;
    reply->body_len = len;
    reply->consumed = (size_t)(p - start);
    return 1;
more:
    free(body);
    return 0;
bad:
    free(body);
    return -1;
}

/* True when header line [line, eol) is `name: ...`; sets *value to the
 * start of its value. */
static bool load_header_is(const char *line, const char *eol,
                           const char *name, const char **value)
{
    size_t n = strlen(name);

    if ((size_t)(eol - line) <= n || strncasecmp(line, name, n) != 0 ||
        line[n] != ':')
        return false;
    *value = line + n + 1;
    while (*value < eol && (**value == ' ' || **value == '\t'))
        (*value)++;
    return true;
}

static bool load_value_has(const char *value, const char *eol,
                           const char *word)
{
    size_t n = strlen(word);

    for (const char *p = value; p + n <= eol; p++)
        if (strncasecmp(p, word, n) == 0)
            return true;
    return false;
}

/* Parses one reply at the start of `buf`. Returns 1 when complete, 0 when
 * more bytes are needed, -1 when it is not HTTP. */
static int load_parse_reply(const char *buf, size_t len, load_reply_t *reply)
{
    const char *end = buf + len;
    const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
    const char *p;
    const char *eol;
    long long content_length = -1;
    bool chunked = false;
    char *stop = NULL;
    long status;

    memset(reply, 0, sizeof(*reply));
    if (head_end == NULL)
        return len > 64 * 1024 ? -1 : 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    errno = 0;
    status = strtol(buf + 9, &stop, 10);
    if (errno != 0 || stop != buf + 12 || status < 100 || status > 599)
        return -1;
    reply->status = (int)status;
    p = memchr(buf, '\n', (size_t)(head_end + 2 - buf));
    p = p + 1;
    while (p < head_end + 2) {
        const char *value;

        eol = memchr(p, '\r', (size_t)(head_end + 2 - p));
        if (eol == NULL)
            break;
        if (load_header_is(p, eol, "Content-Length", &value)) {
            char digits[32];
            size_t n = (size_t)(eol - value);

            if (n == 0 || n >= sizeof(digits))
                return -1;
            memcpy(digits, value, n);
            digits[n] = '\0';
            errno = 0;
            content_length = strtoll(digits, &stop, 10);
            if (errno != 0 || stop == digits || content_length < 0)
                return -1;
        } else if (load_header_is(p, eol, "Transfer-Encoding", &value)) {
            chunked = load_value_has(value, eol, "chunked");
        } else if (load_header_is(p, eol, "Connection", &value)) {
            reply->close = load_value_has(value, eol, "close");
        }
        p = eol + 2;
    }
    p = head_end + 4;
    if (chunked)
        return load_dechunk(p, end, reply, buf);
    if (content_length < 0)
        content_length = 0;
    if ((size_t)(end - p) < (size_t)content_length)
        return 0;
    reply->body = p;
    reply->body_len = (size_t)content_length;
    reply->consumed = (size_t)(p - buf) + (size_t)content_length;
    return 1;
}

/* What a 202 reply says: its "lead_id" ("" when it has no usable one,
 * a bad reply) and whether "duplicate_of" is a string (merged). */
typedef struct {
    char lead_id[BENCH_ID_MAX]; /* the lead, "" when none */
    bool merged;                /* folded into another lead */
} load_accepted_t;

/* The jansson reading of a 202 body. */
static void load_accepted_jansson(const char *body, size_t len,
                                  load_accepted_t *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *id = json_object_get(root, "lead_id");
    json_t *dup = json_object_get(root, "duplicate_of");

    out->lead_id[0] = '\0';
    out->merged = false;
    if (json_is_string(id) && json_string_length(id) > 0) {
        snprintf(out->lead_id, sizeof(out->lead_id), "%s",
                 json_string_value(id));
        out->merged = json_is_string(dup);
    }
    json_decref(root);
}

/* A 202 body: the skim when it is sure (one plain non-empty "lead_id", at
 * most one "duplicate_of"), jansson otherwise. */
static void load_accepted(const char *body, size_t len, load_accepted_t *out)
{
    bench_json_field_t fields[2] = {{.key = "lead_id"},
                                    {.key = "duplicate_of"}};

    if (bench_json_scan(body, len, fields, 2) == 0 &&
        fields[0].count == 1 && fields[0].plain && fields[0].len > 0 &&
        fields[1].count <= 1) {
        bench_json_copy(&fields[0], out->lead_id, sizeof(out->lead_id));
        out->merged = fields[1].type == BENCH_JSON_STRING;
        return;
    }
    load_accepted_jansson(body, len, out);
}

/* Books a complete reply against the connection's request. */
static void load_complete(load_t *self, load_conn_t *conn,
                          const load_reply_t *reply, int64_t now)
{
    bench_request_t *req = &self->res->requests[conn->request];

    req->ack_us = now;
    req->status = reply->status;
    self->res->by_status[reply->status]++;
    if (reply->status == 202) {
        load_accepted_t accepted;

        load_accepted(reply->body, reply->body_len, &accepted);
        if (self->verify) {
            load_accepted_t expected;

            load_accepted_jansson(reply->body, reply->body_len, &expected);
            if (strcmp(expected.lead_id, accepted.lead_id) != 0 ||
                expected.merged != accepted.merged) {
                self->mismatches++;
                fprintf(stderr, "conveyor-bench: verify: reply read as "
                        "'%s'%s, jansson '%s'%s: %.*s\n", accepted.lead_id,
                        accepted.merged ? " (merged)" : "", expected.lead_id,
                        expected.merged ? " (merged)" : "",
                        (int)reply->body_len, reply->body);
            }
        }
        if (accepted.lead_id[0] == '\0') {
            self->res->bad_replies++;
        } else {
            memcpy(req->lead_id, accepted.lead_id, sizeof(req->lead_id));
            req->merged = accepted.merged;
            if (!req->merged)
                bench_table_expect(self->table, req->lead_id,
                                   (int64_t)conn->request);
        }
    }
    conn->state = CONN_IDLE;
    self->busy--;
}

/* Reads what the socket has and books every complete reply. */
static void load_read(load_t *self, load_conn_t *conn, int64_t now)
{
    for (;;) {
        ssize_t n;

        if (conn->in_cap - conn->in_len < 4096) {
            size_t cap = conn->in_cap == 0 ? 8192 : conn->in_cap * 2;
            char *in = realloc(conn->in, cap + 1);

            if (in == NULL) {
                load_drop(self, conn, now);
                return;
            }
            conn->in = in;
            conn->in_cap = cap;
        }
        n = recv(conn->fd, conn->in + conn->in_len,
                 conn->in_cap - conn->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            load_drop(self, conn, now);
            return;
        }
        conn->in_len += (size_t)n;
        conn->in[conn->in_len] = '\0';
    }
    while (conn->in_len > 0) {
        load_reply_t reply;
        int rc = load_parse_reply(conn->in, conn->in_len, &reply);

        if (rc == 0)
            return;
        if (rc < 0 || conn->state != CONN_BUSY) {
            fprintf(stderr, "conveyor-bench: unexpected bytes from intake\n");
            load_drop(self, conn, now);
            return;
        }
        load_complete(self, conn, &reply, now);
        free(reply.owned);
        memmove(conn->in, conn->in + reply.consumed,
                conn->in_len - reply.consumed);
        conn->in_len -= reply.consumed;
        conn->in[conn->in_len] = '\0';
        if (reply.close) {
            /* Not a failure: the request was answered. */
            close(conn->fd);
            conn->fd = -1;
            conn->events = 0;
            conn->in_len = 0;
            conn->state = CONN_DOWN;
            conn->retry_at_us = now;
            return;
        }
    }
}

static void load_event(load_t *self, load_conn_t *conn, uint32_t events,
                       int64_t now)
{
    if (conn->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0 || (events & (EPOLLERR | EPOLLHUP)) != 0) {
            load_drop(self, conn, now);
            conn->retry_at_us = now + LOAD_RECONNECT_US;
            return;
        }
        conn->state = CONN_IDLE;
        load_watch(self, conn, EPOLLIN);
        return;
    }
    if ((events & EPOLLOUT) != 0 && conn->state == CONN_BUSY)
        load_flush(self, conn, now);
    if (conn->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
        load_read(self, conn, now);
}

/* --- the loop --- */

static void load_arm(load_t *self, int64_t at_us)
{
    struct itimerspec its;

    if (at_us == self->armed_us)
        return;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = at_us / 1000000;
    its.it_value.tv_nsec = (at_us % 1000000) * 1000;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(self->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
    self->armed_us = at_us;
}

/* Hands due requests to idle connections. Returns when the next one is
 * due (INT64_MAX when nothing is waiting for time). */
static int64_t load_dispatch(load_t *self, int64_t now, bool issuing)
{
    const bench_load_options_t *opt = self->opt;
    bench_load_result_t *res = self->res;
    int64_t next_due = INT64_MAX;

    for (int i = 0; i < opt->connections; i++) {
        load_conn_t *conn = &self->conns[i];

        if (conn->state == CONN_DOWN && conn->retry_at_us <= now &&
            (issuing || self->retry_len > 0))
            load_connect(self, conn, now);
        if (conn->state != CONN_IDLE)
            continue;
        if (self->retry_len > 0) {
            load_issue(self, conn, self->retry[--self->retry_len], now);
            continue;
        }
        if (!issuing)
            continue;
        if (opt->saturate) {
            bench_table_counts_t counts;

            if (opt->max_pending > 0) {
                bench_table_counts(self->table, &counts);
                if (counts.expected - counts.matched + self->busy >=
                    opt->max_pending) {
                    next_due = now + LOAD_PENDING_POLL_US;
                    break;
                }
            }
            if (load_reserve(self) != 0) {
                fprintf(stderr, "conveyor-bench: out of memory\n");
                break;
            }
            res->requests[res->issued].sched_us = now;
            load_issue(self, conn, res->issued++, now);
            continue;
        }
        if (res->issued >= self->total)
            break;
        {
            int64_t due = res->t0_us +
                (int64_t)((double)res->issued * 1e6 / opt->rate);

            if (due > now) {
                next_due = due;
                break;
            }
            res->requests[res->issued].sched_us = due;
            load_issue(self, conn, res->issued++, now);
        }
    }
    for (int i = 0; i < opt->connections; i++) {
        load_conn_t *conn = &self->conns[i];

        if (conn->state == CONN_DOWN && conn->retry_at_us > now &&
            conn->retry_at_us < next_due)
            next_due = conn->retry_at_us;
    }
    return next_due;
}

static int load_resolve(load_t *self)
{
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", self->opt->port);
    rc = getaddrinfo(self->opt->host, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        fprintf(stderr, "conveyor-bench: cannot resolve '%s': %s\n",
                self->opt->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&self->addr, ai->ai_addr, ai->ai_addrlen);
    self->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Opens every connection and waits (bounded) until they are up, so the
 * first requests do not pay for the handshakes. */
static void load_warm_connections(load_t *self)
{
    int64_t deadline = cv_clock_monotonic_us() + LOAD_CONNECT_WAIT_US;
    struct epoll_event events[LOAD_EVENTS];

    for (int i = 0; i < self->opt->connections; i++)
        load_connect(self, &self->conns[i], cv_clock_monotonic_us());
    for (;;) {
        int64_t now = cv_clock_monotonic_us();
        int up = 0;
        int n;

        for (int i = 0; i < self->opt->connections; i++)
            up += self->conns[i].state == CONN_IDLE;
        if (up == self->opt->connections || now >= deadline)
            break;
        n = epoll_wait(self->epfd, events, LOAD_EVENTS, 10);
        for (int i = 0; i < n; i++)
            if (events[i].data.ptr != NULL)
                load_event(self, events[i].data.ptr, events[i].events,
                           cv_clock_monotonic_us());
    }
}

int bench_load_run(const bench_load_options_t *options, bench_table_t *table,
                   bench_rss_t *rss, bench_load_result_t *result)
{
    load_t self;
    struct epoll_event ev;
    struct epoll_event events[LOAD_EVENTS];
    int64_t next_rss;
    int64_t send_end;
    int64_t give_up;
    bench_cpu_times_t cpu_from;
    bench_cpu_times_t cpu_to;
    bool cpu_ok;
    int rc = -1;

    memset(&self, 0, sizeof(self));
    memset(result, 0, sizeof(*result));
    result->steal_pct = -1;
    self.opt = options;
    self.verify = bench_verify();
    load_parts_make(&self.parts, options);
    self.table = table;
    self.rss = rss;
    self.res = result;
    self.epfd = -1;
    self.timerfd = -1;
    if (load_resolve(&self) != 0)
        goto out;
    if (options->saturate)
        self.capacity = 65536;
    else
        self.capacity = (size_t)(options->rate * options->duration_s + 0.5);
    if (self.capacity == 0)
        self.capacity = 1;
    self.total = self.capacity;
    result->requests = calloc(self.capacity, sizeof(*result->requests));
    self.retry = calloc((size_t)options->connections, sizeof(*self.retry));
    self.conns = calloc((size_t)options->connections, sizeof(*self.conns));
    if (result->requests == NULL || self.retry == NULL ||
        self.conns == NULL) {
        fprintf(stderr, "conveyor-bench: out of memory\n");
        goto out;
    }
    for (int i = 0; i < options->connections; i++)
        self.conns[i].fd = -1;
    self.epfd = epoll_create1(EPOLL_CLOEXEC);
    self.timerfd = timerfd_create(CLOCK_MONOTONIC,
                                  TFD_NONBLOCK | TFD_CLOEXEC);
    if (self.epfd < 0 || self.timerfd < 0) {
        fprintf(stderr, "conveyor-bench: cannot create epoll: %s\n",
                strerror(errno));
        goto out;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(self.epfd, EPOLL_CTL_ADD, self.timerfd, &ev);

    load_warm_connections(&self);
    cpu_ok = bench_cpu_times(&cpu_from) == 0;
    result->t0_us = cv_clock_monotonic_us();
    send_end = result->t0_us + (int64_t)(options->duration_s * 1e6);
    give_up = send_end + (int64_t)(options->drain_s * 1e6);
    next_rss = result->t0_us;
    for (;;) {
        int64_t now = cv_clock_monotonic_us();
        bool issuing = options->saturate ? now < send_end
                                         : result->issued < self.total;
        int64_t wake;
        int n;

        if (now >= next_rss) {
            bench_rss_sample(rss);
            next_rss = now + LOAD_RSS_EVERY_US;
        }
        if (!issuing && self.busy == 0 && self.retry_len == 0)
            break;
        if (now >= give_up) {
            if (!options->saturate)
                result->unsent = self.total - result->issued;
            result->timed_out += self.busy + self.retry_len;
            fprintf(stderr, "conveyor-bench: gave up %.0f s after the last "
                    "due request: %zu without a reply, %zu never sent\n",
                    options->drain_s, self.busy + self.retry_len,
                    result->unsent);
            break;
        }
        wake = load_dispatch(&self, now, issuing);
        if (options->saturate && issuing && send_end < wake)
            wake = send_end;
        if (next_rss < wake)
            wake = next_rss;
        if (give_up < wake)
            wake = give_up;
        load_arm(&self, wake);
        n = epoll_wait(self.epfd, events, LOAD_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "conveyor-bench: epoll_wait: %s\n",
                    strerror(errno));
            goto out;
        }
        now = cv_clock_monotonic_us();
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t ticks;

                /* Expired: drain it, and re-arm on the next pass. */
                if (read(self.timerfd, &ticks, sizeof(ticks)) < 0 &&
                    errno != EAGAIN)
                    fprintf(stderr, "conveyor-bench: timerfd: %s\n",
                            strerror(errno));
                self.armed_us = 0;
                continue;
            }
            load_event(&self, events[i].data.ptr, events[i].events, now);
        }
    }
    if (result->send_end_us == 0)
        result->send_end_us = cv_clock_monotonic_us();
    result->steal_pct = cpu_ok && bench_cpu_times(&cpu_to) == 0
                            ? bench_steal_pct(&cpu_from, &cpu_to)
                            : -1;
    if (self.verify)
        fprintf(stderr, "conveyor-bench: verify: %zu requests and replies "
                "checked both ways, %zu differences\n", result->issued,
                self.mismatches);
    rc = 0;
out:
    if (self.conns != NULL) {
        for (int i = 0; i < options->connections; i++) {
            if (self.conns[i].fd >= 0)
                close(self.conns[i].fd);
            free(self.conns[i].in);
        }
    }
    free(self.conns);
    free(self.retry);
    if (self.timerfd >= 0)
        close(self.timerfd);
    if (self.epfd >= 0)
        close(self.epfd);
    return rc;
}

void bench_load_result_free(bench_load_result_t *result)
{
    if (result == NULL)
        return;
    free(result->requests);
    result->requests = NULL;
}

/* --- self-check --- */

int bench_load_self_check(void)
{
    /* intake's replies (intake_store.c) and bodies that take the long way */
    static const char *const replies[] = {
        "{\"lead_id\":\"lead_01a206234c0e920be4790000\",\"status\":"
        "\"accepted\",\"duplicate_of\":null}",
        "{\"lead_id\":\"lead_01a206234c0e920be4790000\",\"status\":"
        "\"accepted\",\"duplicate_of\":\"lead_01a206234c0e920be4790000\"}",
        "{\"lead_id\":\"lead_01a2\",\"status\":\"accepted\"}",
        "{\"lead_id\":\"lead_01a2\",\"duplicate_of\":\"lead_\\u0030\"}",
        "{\"lead_id\":\"lead_\\u0030\",\"duplicate_of\":null}",
        "{\"lead_id\":\"\",\"duplicate_of\":null}",
        "{\"lead_id\":null}",
        "{\"lead_id\":\"a\",\"lead_id\":\"b\"}",
        "{\"lead_id\":\"a\",\"duplicate_of\":1,\"duplicate_of\":\"x\"}",
        "{\"lead_id\":\"a\",\"duplicate_of\":{\"lead_id\":\"b\"}}",
        "{\"lead_id\":\"lead_trailing\",}",
        "{\"error\":\"invalid_lead\"}",
        "",
    };
    static const size_t indices[] = {0, 1, 9, 10, 99, 12345, 9999999,
                                     10000000, 123456789, 4294967296ULL};
    static const int tags[] = {0, 7, 99};
    int differences = 0;

    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        load_accepted_t got;
        load_accepted_t expected;

        load_accepted(replies[i], strlen(replies[i]), &got);
        load_accepted_jansson(replies[i], strlen(replies[i]), &expected);
        if (strcmp(got.lead_id, expected.lead_id) != 0 ||
            got.merged != expected.merged) {
            fprintf(stderr, "self-check: reply %zu read as '%s'%s, jansson "
                    "'%s'%s\n", i, got.lead_id, got.merged ? " merged" : "",
                    expected.lead_id, expected.merged ? " merged" : "");
            differences++;
        }
    }
    for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
        bench_load_options_t opt;
        load_parts_t parts;

        memset(&opt, 0, sizeof(opt));
        snprintf(opt.host, sizeof(opt.host), "127.0.0.1");
        opt.port = 38123;
        opt.key = "2322c7deb22196f2f27d5e7150a1d402";
        opt.tag = tags[t];
        snprintf(opt.run_id, sizeof(opt.run_id), "5ec11b6b9efc7cd7");
        load_parts_make(&parts, &opt);
        for (size_t i = 0; i < sizeof(indices) / sizeof(indices[0]); i++) {
            char got[LOAD_REQUEST_MAX];
            char expected[LOAD_REQUEST_MAX];
            int got_len = load_format(&parts, indices[i], got, sizeof(got));
            int expected_len = load_format_printf(&opt, indices[i], expected,
                                                  sizeof(expected));

            if (got_len != expected_len ||
                (got_len > 0 &&
                 memcmp(got, expected, (size_t)got_len) != 0)) {
                fprintf(stderr, "self-check: request %zu (tag %d) differs "
                        "from printf\n", indices[i], tags[t]);
                differences++;
            }
        }
    }
    return differences;
}

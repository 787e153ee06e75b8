/* bench_sink: the webhook receiver the bench's staff are notified at.
 *
 * A libmicrohttpd server on 127.0.0.1 with a small thread pool. The arrival
 * time of a notification is taken when its headers are complete (the first
 * call for the request), before the body is read, so the sink's own work
 * does not add to the measured latency. The lead is named by `lead_id`
 * anywhere in the JSON body or, failing that, by the `lead_…` part of the
 * Idempotency-Key (`ntf-<lead_id>-first-contact`). Every POST is answered
 * 200 so the notifier never retries because of the sink.
 *
 * The sink shares the two cores with the conveyor it measures, so its own
 * work is kept small: the body is read with bench_json_scan (jansson only
 * when the skim is not sure, so the lead found is the same), the replies
 * are made once and shared by every request, and a body that fits stays
 * in the request's own buffer. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cv_utf8.h"

#define SINK_THREADS 2
#define SINK_MAX_BODY (1024 * 1024)
#define SINK_JSON_DEPTH 4
#define SINK_INLINE_BODY 2048   /* bodies up to this stay in the request */
/* MHD's per-connection memory, which it clears after every request: the
 * notifier's headers need well under 1 KB, and a larger body is simply
 * handed over in several pieces. (The default, 32 KB, costs a 32 KB
 * memset per notification.) */
#define SINK_CONNECTION_MEMORY (8 * 1024)
#define SCAN_MAX_DEPTH 32       /* deeper JSON: not sure, ask jansson */
#define SCAN_MAX_DIGITS 18      /* longer integers might overflow */

struct bench_sink {
    struct MHD_Daemon *daemon;  /* the server */
    bench_table_t *table;       /* where arrivals go, not owned */
    int port;                   /* bound port */
    atomic_size_t requests;     /* requests answered */
    atomic_size_t no_lead;      /* POSTs naming no lead */
    struct MHD_Response *ok;            /* 200 {"ok":true}, shared */
    struct MHD_Response *health;        /* 200 {"status":"ok"}, shared */
    struct MHD_Response *not_allowed;   /* 405, shared */
    bool verify;                /* CONVEYOR_BENCH_VERIFY=1: read every
                                   body both ways and compare */
    atomic_size_t checked;      /* verify: bodies read both ways */
    atomic_size_t mismatches;   /* verify: bodies read differently */
};

typedef struct {
    int64_t arrival_us;         /* headers complete */
    char *body;                 /* collected body, NUL-terminated: inline
                                   or heap */
    size_t len;                 /* bytes in body */
    size_t cap;                 /* bytes available at body */
    bool too_big;               /* body passed SINK_MAX_BODY */
    char inline_body[SINK_INLINE_BODY]; /* body while it fits */
} sink_request_t;

static void sink_request_free(sink_request_t *request)
{
    if (request == NULL)
        return;
    if (request->body != request->inline_body)
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
        size_t cap = request->cap * 2;
        char *body;

        while (cap < need)
            cap *= 2;
        if (request->body == request->inline_body) {
            body = malloc(cap);
            if (body != NULL)
                memcpy(body, request->body, request->len);
        } else {
            body = realloc(request->body, cap);
        }
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

/* --- bench_json: the skim --- */

typedef struct {
    const unsigned char *p;     /* next byte */
    const unsigned char *end;   /* one past the last byte */
} scan_t;

static void scan_space(scan_t *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* The string at s->p (its opening quote). Sets *value and *len to its raw
 * bytes and *plain when it has no escapes. -1 when not sure it is valid;
 * \u0000 (rejected by jansson without JSON_ALLOW_NUL) is "not sure" too. */
static int scan_string(scan_t *s, const char **value, size_t *len,
                       bool *plain)
{
    const unsigned char *start = s->p + 1;
    const unsigned char *p = start;

    *plain = true;
    while (p < s->end) {
        unsigned c = *p;

        if (c == '"') {
            *value = (const char *)start;
            *len = (size_t)(p - start);
            s->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\') { /* bytes >= 0x80: a character cv_utf8_valid passed */
            p++;
            continue;
        }
        *plain = false;
        if (s->end - p < 2)
            return -1;
        c = p[1];
        if (c == 'u') {
            int cp = cv_utf8_hex4((const char *)p + 2, (size_t)(s->end - p - 2));

            if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                return -1;
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int low;

                if (s->end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return -1;
                low = cv_utf8_hex4((const char *)p + 2, (size_t)(s->end - p - 2));
                if (low < 0xDC00 || low > 0xDFFF)
                    return -1;
                p += 6;
            }
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' ||
                   c == 'f' || c == 'n' || c == 'r' || c == 't') {
            p += 2;
        } else {
            return -1;
        }
    }
    return -1;
}

/* A number without exponent whose integer part is short enough that
 * jansson cannot overflow on it. */
static int scan_number(scan_t *s)
{
    const unsigned char *p = s->p;
    size_t digits = 0;

    if (p < s->end && *p == '-')
        p++;
    if (p < s->end && *p == '0') {
        p++;
        digits = 1;
    } else {
        while (p < s->end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0 || digits > SCAN_MAX_DIGITS)
        return -1;
    if (p < s->end && *p == '.') {
        const unsigned char *fraction = ++p;

        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
        if (p == fraction)
            return -1;
    }
    if (p < s->end && (*p == 'e' || *p == 'E'))
        return -1;
    s->p = p;
    return 0;
}

static int scan_literal(scan_t *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int scan_value(scan_t *s, int depth);

/* The object at s->p (its '{'). At the top level, `fields` receive the
 * values of the keys they name. */
static int scan_object(scan_t *s, int depth, bench_json_field_t *fields,
                       size_t nfields)
{
    if (depth > SCAN_MAX_DEPTH)
        return -1;
    s->p++;
    scan_space(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        bench_json_field_t *field = NULL;
        const char *key;
        size_t key_len;
        bool plain;

        if (s->p >= s->end || *s->p != '"' ||
            scan_string(s, &key, &key_len, &plain) != 0)
            return -1;
        /* an escaped key might spell one of the fields */
        if (nfields > 0 && !plain)
            return -1;
        for (size_t i = 0; i < nfields; i++) {
            if (strlen(fields[i].key) == key_len &&
                memcmp(fields[i].key, key, key_len) == 0) {
                field = &fields[i];
                break;
            }
        }
        scan_space(s);
        if (s->p >= s->end || *s->p != ':')
            return -1;
        s->p++;
        scan_space(s);
        if (field != NULL && s->p < s->end && *s->p == '"') {
            if (scan_string(s, &field->value, &field->len,
                            &field->plain) != 0)
                return -1;
            field->type = BENCH_JSON_STRING;
            if (!field->plain)
                field->value = NULL;
            field->count++;
        } else {
            if (scan_value(s, depth) != 0)
                return -1;
            if (field != NULL) {
                field->type = BENCH_JSON_OTHER;
                field->plain = false;
                field->value = NULL;
                field->count++;
            }
        }
        scan_space(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_space(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        return -1;
    }
}

static int scan_array(scan_t *s, int depth)
{
    if (depth > SCAN_MAX_DEPTH)
        return -1;
    s->p++;
    scan_space(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (scan_value(s, depth) != 0)
            return -1;
        scan_space(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            scan_space(s);
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 0;
        }
        return -1;
    }
}

/* Any value at s->p, inside a container `depth` levels deep. */
static int scan_value(scan_t *s, int depth)
{
    const char *value;
    size_t len;
    bool plain;

    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return scan_object(s, depth + 1, NULL, 0);
    case '[':
        return scan_array(s, depth + 1);
    case '"':
        return scan_string(s, &value, &len, &plain);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_number(s);
    }
}

int bench_json_scan(const char *body, size_t len, bench_json_field_t *fields,
                    size_t nfields)
{
    scan_t s;

    for (size_t i = 0; i < nfields; i++) {
        fields[i].count = 0;
        fields[i].type = BENCH_JSON_ABSENT;
        fields[i].plain = false;
        fields[i].value = NULL;
        fields[i].len = 0;
    }
    /* strict UTF-8 without NUL first (cv_utf8.h), so strings need only
     * look at ASCII; anything else is for jansson to judge */
    if (body == NULL || !cv_utf8_valid(body, len))
        return -1;
    s.p = (const unsigned char *)body;
    s.end = s.p + len;
    scan_space(&s);
    if (s.p >= s.end || *s.p != '{' ||
        scan_object(&s, 1, fields, nfields) != 0)
        return -1;
    scan_space(&s);
    return s.p == s.end ? 0 : -1;
}

/* --- the sink --- */

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

void bench_json_copy(const bench_json_field_t *field, char *out, size_t size)
{
    if (size == 0)
        return;
    size_t len = field->len < size - 1 ? field->len : size - 1;
    memcpy(out, field->value, len);
    out[len] = '\0';
}

bool bench_verify(void)
{
    const char *verify = getenv("CONVEYOR_BENCH_VERIFY");
    return verify != NULL && strcmp(verify, "1") == 0;
}

/* The jansson reading: parse, then search depth first. */
static void sink_lead_id_jansson(const char *body, size_t len, char *out,
                                 size_t size)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *id = root != NULL ? sink_find_lead_id(root, 0) : NULL;

    if (id != NULL)
        snprintf(out, size, "%s", id);
    json_decref(root);
}

void bench_sink_lead_id(const char *body, size_t len, char *out, size_t size)
{
    bench_json_field_t field = {.key = "lead_id"};

    if (size == 0)
        return;
    out[0] = '\0';
    if (body == NULL)
        return;
    /* The search looks at the top-level object's own "lead_id" first: a
     * single plain, non-empty string there is its answer. Anything else
     * (nested, escaped, repeated, not a string) goes the long way. */
    if (bench_json_scan(body, len, &field, 1) == 0 && field.count == 1 &&
        field.plain && field.len > 0) {
        bench_json_copy(&field, out, size);
        return;
    }
    sink_lead_id_jansson(body, len, out, size);
}

static enum MHD_Result sink_reply(struct MHD_Connection *connection,
                                  unsigned int status,
                                  struct MHD_Response *response)
{
    return MHD_queue_response(connection, status, response);
}

/* Records the notification the complete request carries. */
static void sink_record(bench_sink_t *self, struct MHD_Connection *connection,
                        const sink_request_t *request)
{
    char lead_id[BENCH_ID_MAX] = "";

    /* len 0: no body came (jansson would find nothing in "" either) */
    if (request->len > 0 && !request->too_big) {
        bench_sink_lead_id(request->body, request->len, lead_id,
                           sizeof(lead_id));
        if (self->verify) {
            char expected[BENCH_ID_MAX] = "";

            sink_lead_id_jansson(request->body, request->len, expected,
                                 sizeof(expected));
            atomic_fetch_add(&self->checked, 1);
            if (strcmp(expected, lead_id) != 0) {
                atomic_fetch_add(&self->mismatches, 1);
                fprintf(stderr, "conveyor-bench: verify: body read as '%s', "
                        "jansson '%s': %.*s\n", lead_id, expected,
                        (int)request->len, request->body);
            }
        }
    }
    if (lead_id[0] == '\0' &&
        !sink_lead_from_key(MHD_lookup_connection_value(
                                connection, MHD_HEADER_KIND,
                                "Idempotency-Key"),
                            lead_id, sizeof(lead_id))) {
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
        /* not calloc: the inline buffer needs no clearing */
        request = malloc(sizeof(*request));
        if (request == NULL)
            return MHD_NO;
        request->arrival_us = cv_clock_monotonic_us();
        request->body = request->inline_body;
        request->len = 0;
        request->cap = sizeof(request->inline_body);
        request->too_big = false;
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
        return sink_reply(connection, MHD_HTTP_OK, self->health);
    if (strcmp(method, "POST") != 0)
        return sink_reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                          self->not_allowed);
    sink_record(self, connection, request);
    return sink_reply(connection, MHD_HTTP_OK, self->ok);
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

/* A 200/405 body as a response MHD may send any number of times. */
static struct MHD_Response *sink_response(const char *body)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);

    if (response != NULL &&
        MHD_add_response_header(response, "Content-Type",
                                "application/json") != MHD_YES) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return response;
}

/* Frees what bench_sink_start made, once the daemon is stopped. */
static void sink_free(bench_sink_t *self)
{
    if (self->ok != NULL)
        MHD_destroy_response(self->ok);
    if (self->health != NULL)
        MHD_destroy_response(self->health);
    if (self->not_allowed != NULL)
        MHD_destroy_response(self->not_allowed);
    free(self);
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
    atomic_init(&self->checked, 0);
    atomic_init(&self->mismatches, 0);
    self->verify = bench_verify();
    /* made once, queued for every request (MHD counts the users) */
    self->ok = sink_response("{\"ok\":true}");
    self->health = sink_response("{\"status\":\"ok\"}");
    self->not_allowed = sink_response("{\"error\":\"method_not_allowed\"}");
    if (self->ok == NULL || self->health == NULL ||
        self->not_allowed == NULL) {
        fprintf(stderr, "conveyor-bench: cannot start sink: out of memory\n");
        sink_free(self);
        return NULL;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon(
        /* no Date header: the notifier ignores it, and formatting it is
         * a gmtime and a printf per notification */
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
            MHD_USE_SUPPRESS_DATE_NO_CLOCK,
        (uint16_t)port,
        NULL, NULL, sink_access, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)SINK_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SINK_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, sink_completed, self,
        MHD_OPTION_END);
    if (self->daemon == NULL) {
        fprintf(stderr, "conveyor-bench: cannot listen on '127.0.0.1:%d'\n",
                port);
        sink_free(self);
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
    if ((*self_p)->verify)
        fprintf(stderr, "conveyor-bench: verify: %zu notification bodies "
                "read both ways, %zu differences\n",
                atomic_load(&(*self_p)->checked),
                atomic_load(&(*self_p)->mismatches));
    sink_free(*self_p);
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

/* --- self-check --- */

typedef struct {
    const char *body;       /* a notification body */
    bool skim;              /* the skim must answer it alone */
} sink_check_t;

/* The follow-up scheduler's first-contact task as the notifier posted it
 * to the bench's staff during a run, and bodies that must take the long
 * way (and still read the same). */
static const sink_check_t sink_checks[] = {
    {"{\"notification_id\":\"ntf-lead_01a206234c0e920be4790000-first-"
     "contact\",\"kind\":\"task_created\",\"task_id\":\"lead_01a206234c0e9"
     "20be4790000-first-contact\",\"task_kind\":\"first_contact\",\"lead_i"
     "d\":\"lead_01a206234c0e920be4790000\",\"staff_id\":\"bench-sales-1\","
     "\"due_at\":\"2026-11-23T02:31:46.260Z\",\"due_at_ms\":1795401106260,"
     "\"due_local\":\"Mon 23 Nov 02:31 (UTC)\",\"title\":\"First contact w"
     "ith Bench Lead 0: get a phone number, the client's time zone and a c"
     "onvenient time to call\",\"lead\":{\"lead_id\":\"lead_01a206234c0e92"
     "0be4790000\",\"name\":\"Bench Lead 0\",\"company\":\"Bench 5ec11b6b9e"
     "fc7cd7\",\"phone\":\"+79010000000\",\"email\":\"bench-5ec11b6b9efc7c"
     "d7-0@example.com\",\"message\":\"conveyor-bench lead\",\"channel\":"
     "\"web\",\"source\":\"bench\",\"region\":\"Moscow\",\"industry\":\"it"
     "\",\"product\":\"crm\",\"budget\":500000,\"currency\":\"RUB\",\"recei"
     "ved_at\":\"2026-11-23T02:01:46.254Z\",\"domain\":\"example.com\"}}",
     true},
    /* the notifier's default body, Cyrillic text and escapes included */
    {"{\"notification_id\":\"ntf-lead_01a2-first-contact\",\"lead_id\":"
     "\"lead_01a2\",\"staff_id\":\"anna\",\"subject\":\"Новый лид: ООО "
     "\\\"Ромашка\\\"\",\"text\":\"Позвонить до 18:00\\nбюджет 500 000 "
     "\\u20bd\"}", true},
    {" \r\n\t{ \"lead_id\" : \"lead_ws\" , \"score\" : -0.75, \"ok\": true,"
     " \"tags\": [null, false, {}, []] } \n", true},
    /* nested only: found by the depth-first search */
    {"{\"kind\":\"task_created\",\"lead\":{\"lead_id\":\"lead_nested\"}}",
     false},
    /* escaped, empty, repeated, not a string */
    {"{\"lead_id\":\"lead_\\u0061bc\"}", false},
    {"{\"lead_id\":\"\",\"lead\":{\"lead_id\":\"lead_inner\"}}", false},
    {"{\"lead_id\":\"lead_first\",\"lead_id\":\"lead_second\"}", false},
    {"{\"lead_id\":42,\"lead\":{\"lead_id\":\"lead_42\"}}", false},
    {"{\"lead\\u005fid\":\"lead_escaped_key\"}", false},
    /* not JSON jansson accepts: no lead, whatever the text says */
    {"{\"lead_id\":\"lead_trailing\",}", false},
    {"{\"lead_id\":\"lead_nul\",\"text\":\"a\\u0000b\"}", false},
    {"{\"lead_id\":\"lead_bad_utf8\",\"text\":\"\xc3\x28\"}", false},
    {"{\"lead_id\":\"lead_surrogate\",\"text\":\"\\udc00\"}", false},
    {"{\"lead_id\":\"lead_big\",\"n\":123456789012345678901234567890}",
     false},
    {"{\"lead_id\":\"lead_exp\",\"n\":1e400}", false},
    {"{\"lead_id\":\"lead_exp_ok\",\"n\":1.5e3}", false},
    {"{\"lead_id\":\"lead_zero\",\"n\":012}", false},
    {"{\"lead_id\":\"lead_tail\"} x", false},
    {"[{\"lead_id\":\"lead_in_array\"}]", false},
    {"", false},
    /* longer than BENCH_ID_MAX: cut the same way */
    {"{\"lead_id\":\"lead_0123456789abcdef0123456789abcdef0123456789abcdef"
     "0123456789abcdef\"}", true},
};

int bench_sink_self_check(void)
{
    int differences = 0;

    for (size_t i = 0; i < sizeof(sink_checks) / sizeof(sink_checks[0]);
         i++) {
        const sink_check_t *check = &sink_checks[i];
        size_t len = strlen(check->body);
        char got[BENCH_ID_MAX];
        char expected[BENCH_ID_MAX] = "";
        bench_json_field_t field = {.key = "lead_id"};
        bool skimmed = bench_json_scan(check->body, len, &field, 1) == 0 &&
                       field.count == 1 && field.plain && field.len > 0;

        bench_sink_lead_id(check->body, len, got, sizeof(got));
        sink_lead_id_jansson(check->body, len, expected, sizeof(expected));
        if (strcmp(got, expected) != 0) {
            fprintf(stderr, "self-check: body %zu read as '%s', jansson "
                    "'%s'\n", i, got, expected);
            differences++;
        }
        if (check->skim && !skimmed) {
            fprintf(stderr, "self-check: body %zu took the long way\n", i);
            differences++;
        }
    }
    return differences;
}

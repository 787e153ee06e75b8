/* cv_http against a real client: libcurl talks to a server on a free port.
 *
 * What a client of a service observes: its handler's routes, 404 for the
 * rest, 413 for a body over the limit (announced or chunked), the built-in
 * /healthz and /metrics, replies sent later from another thread
 * (suspend + resume, in either order), and keep-alive connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_http.h"

#define TEST_MAX_BODY 1024

typedef struct {
    char *data;   /* the response body, NUL-terminated */
    size_t size;  /* bytes in data */
} test_buffer_t;

typedef struct {
    long status;          /* HTTP status */
    test_buffer_t body;   /* response body */
    char header_x[128];   /* value of the X-Test response header */
    long connects;        /* new connections curl made for this request */
} test_reply_t;

/* Requests the handler hands to the replier thread. */
typedef struct {
    pthread_mutex_t lock;         /* guards the fields below */
    pthread_cond_t cond;          /* signalled when `pending` is set */
    cv_http_request_t *pending;   /* the suspended request */
    bool stop;                    /* the replier thread should end */
} test_later_t;

static cv_http_t *server;          /* the server under test */
static char base_url[64];          /* http://127.0.0.1:<port> */
static test_later_t later = {PTHREAD_MUTEX_INITIALIZER,
                             PTHREAD_COND_INITIALIZER, NULL, false};
static pthread_t replier;          /* replies to suspended requests */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The replier thread: waits a little (so the request really is
 * suspended), replies, resumes. */
static void *replier_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&later.lock);
    for (;;) {
        while (later.pending == NULL && !later.stop)
            pthread_cond_wait(&later.cond, &later.lock);
        if (later.stop)
            break;
        cv_http_request_t *req = later.pending;
        later.pending = NULL;
        pthread_mutex_unlock(&later.lock);
        bool fast = strcmp(cv_http_path(req), "/later-fast") == 0;
        if (!fast)
            sleep_ms(50);
        json_t *body = json_pack("{s:s, s:s}", "answered", "later", "body",
                                 cv_http_body(req));
        cv_http_reply_json(req, 202, body);
        cv_http_resume(req);
        pthread_mutex_lock(&later.lock);
    }
    pthread_mutex_unlock(&later.lock);
    return NULL;
}

static void hand_to_replier(cv_http_request_t *req)
{
    pthread_mutex_lock(&later.lock);
    later.pending = req;
    pthread_cond_signal(&later.cond);
    pthread_mutex_unlock(&later.lock);
}

static bool test_handler(void *arg, cv_http_request_t *req)
{
    (void)arg;
    const char *path = cv_http_path(req);
    if (strcmp(path, "/echo") == 0) {
        const char *q = cv_http_query(req, "q");
        const char *token = cv_http_bearer(req, true);
        const char *custom = cv_http_header(req, "x-custom");
        json_t *body = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "method",
            cv_http_method(req), "path", path, "q", q != NULL ? q : "",
            "token", token != NULL ? token : "", "type",
            cv_http_content_type(req), "custom",
            custom != NULL ? custom : "", "size",
            (int)cv_http_body_size(req));
        json_object_set_new(body, "body", json_string(cv_http_body(req)));
        cv_http_add_header(req, "X-Test", "echoed");
        cv_http_reply_json(req, 200, body);
        return true;
    }
    if (strcmp(path, "/later") == 0) {
        /* the documented order: suspend, then hand over */
        cv_http_suspend(req);
        hand_to_replier(req);
        return true;
    }
    if (strcmp(path, "/later-fast") == 0) {
        /* the other order: the replier may reply and resume before this
         * handler has even asked to suspend */
        hand_to_replier(req);
        sleep_ms(30);
        cv_http_suspend(req);
        return true;
    }
    if (strcmp(path, "/fail") == 0) {
        cv_http_reply_error(req, 422, "bad_field", "phone",
                            "phone '%s' is not a number", "abc");
        return true;
    }
    return false;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    test_buffer_t *buf = arg;
    size_t add = size * n;
    char *grown = realloc(buf->data, buf->size + add + 1);
    if (grown == NULL)
        return 0;
    buf->data = grown;
    memcpy(buf->data + buf->size, data, add);
    buf->size += add;
    buf->data[buf->size] = '\0';
    return add;
}

static size_t collect_header(char *data, size_t size, size_t n, void *arg)
{
    test_reply_t *reply = arg;
    size_t len = size * n;
    if (len > 8 && strncasecmp(data, "X-Test:", 7) == 0) {
        size_t start = 7;
        while (start < len && data[start] == ' ')
            start++;
        size_t end = len;
        while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n'))
            end--;
        snprintf(reply->header_x, sizeof(reply->header_x), "%.*s",
                 (int)(end - start), data + start);
    }
    return len;
}

/* One request on `curl` (reused, so keep-alive can be observed). */
static void request(CURL *curl, const char *method, const char *path,
                    struct curl_slist *headers, const char *body,
                    long body_size, test_reply_t *reply)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    memset(reply, 0, sizeof(*reply));
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply->body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, body_size);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(curl);
    assert_int_equal(rc, CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &reply->connects);
}

static json_t *reply_json(const test_reply_t *reply)
{
    assert_non_null(reply->body.data);
    json_error_t error;
    json_t *json = json_loads(reply->body.data, 0, &error);
    assert_non_null(json);
    return json;
}

static const char *json_text(json_t *obj, const char *key)
{
    const char *text = json_string_value(json_object_get(obj, key));
    assert_non_null(text);
    return text;
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cv_http_options_t options = {
        .addr = "127.0.0.1:0",
        .service = "test",
        .threads = 2,
        .max_body_bytes = TEST_MAX_BODY,
        .handler = test_handler,
        .arg = NULL,
    };
    server = cv_http_start(&options);
    if (server == NULL || cv_http_port(server) <= 0)
        return -1;
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d",
             cv_http_port(server));
    if (pthread_create(&replier, NULL, replier_main, NULL) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&later.lock);
    later.stop = true;
    pthread_cond_signal(&later.cond);
    pthread_mutex_unlock(&later.lock);
    pthread_join(replier, NULL);
    cv_http_destroy(&server);
    cv_http_destroy(&server); /* NULL-safe */
    curl_global_cleanup();
    return 0;
}

static void test_handler_route(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: Application/JSON; "
                                         "charset=utf-8");
    headers = curl_slist_append(headers, "Authorization: Bearer s3cret");
    headers = curl_slist_append(headers, "X-Custom: yes");
    test_reply_t reply;
    request(curl, "POST", "/echo?q=a%20b", headers, "{\"a\":1}", 7, &reply);
    assert_int_equal(reply.status, 200);
    assert_string_equal(reply.header_x, "echoed");
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "method"), "POST");
    assert_string_equal(json_text(json, "path"), "/echo");
    assert_string_equal(json_text(json, "q"), "a b");
    assert_string_equal(json_text(json, "token"), "s3cret");
    assert_string_equal(json_text(json, "type"), "application/json");
    assert_string_equal(json_text(json, "custom"), "yes");
    assert_string_equal(json_text(json, "body"), "{\"a\":1}");
    assert_int_equal(json_integer_value(json_object_get(json, "size")), 7);
    json_decref(json);
    free(reply.body.data);

    /* the key query argument stands in for the header when allowed */
    request(curl, "GET", "/echo?key=formkey", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 200);
    json = reply_json(&reply);
    assert_string_equal(json_text(json, "token"), "formkey");
    assert_string_equal(json_text(json, "type"), "");
    assert_string_equal(json_text(json, "body"), "");
    json_decref(json);
    free(reply.body.data);

    request(curl, "POST", "/fail", NULL, "x", 1, &reply);
    assert_int_equal(reply.status, 422);
    json = reply_json(&reply);
    assert_string_equal(json_text(json, "error"), "bad_field");
    assert_string_equal(json_text(json, "field"), "phone");
    assert_string_equal(json_text(json, "message"),
                        "phone 'abc' is not a number");
    json_decref(json);
    free(reply.body.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}

static void test_not_found(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    test_reply_t reply;
    request(curl, "GET", "/nope", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 404);
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "error"), "not_found");
    assert_null(json_object_get(json, "field"));
    json_decref(json);
    free(reply.body.data);
    curl_easy_cleanup(curl);
}

static void test_body_too_large(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    size_t size = TEST_MAX_BODY + 1;
    char *big = malloc(size);
    assert_non_null(big);
    memset(big, 'x', size);
    test_reply_t reply;

    /* exactly at the limit is fine */
    request(curl, "POST", "/echo", NULL, big, TEST_MAX_BODY, &reply);
    assert_int_equal(reply.status, 200);
    free(reply.body.data);

    /* announced by Content-Length */
    request(curl, "POST", "/echo", NULL, big, (long)size, &reply);
    assert_int_equal(reply.status, 413);
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "error"), "body_too_large");
    json_decref(json);
    free(reply.body.data);

    /* chunked: the server only finds out while reading */
    struct curl_slist *headers =
        curl_slist_append(NULL, "Transfer-Encoding: chunked");
    request(curl, "POST", "/echo", headers, big, (long)size, &reply);
    assert_int_equal(reply.status, 413);
    free(reply.body.data);
    curl_slist_free_all(headers);

    /* the server still works afterwards */
    request(curl, "POST", "/echo", NULL, "ok", 2, &reply);
    assert_int_equal(reply.status, 200);
    free(reply.body.data);
    free(big);
    curl_easy_cleanup(curl);
}

static void test_healthz_and_metrics(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    test_reply_t reply;
    cv_http_set_ready(server, false);
    request(curl, "GET", "/healthz", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 503);
    free(reply.body.data);

    cv_http_set_ready(server, true);
    request(curl, "GET", "/healthz", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 200);
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "status"), "ok");
    json_decref(json);
    free(reply.body.data);

    request(curl, "GET", "/metrics", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 200);
    assert_non_null(strstr(reply.body.data, "conveyor_http_requests_total"));
    free(reply.body.data);

    request(curl, "POST", "/healthz", NULL, "x", 1, &reply);
    assert_int_equal(reply.status, 405);
    free(reply.body.data);
    curl_easy_cleanup(curl);
}

static void check_later(CURL *curl, const char *path)
{
    test_reply_t reply;
    request(curl, "POST", path, NULL, "payload", 7, &reply);
    assert_int_equal(reply.status, 202);
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "answered"), "later");
    assert_string_equal(json_text(json, "body"), "payload");
    json_decref(json);
    free(reply.body.data);
}

static void test_suspend_resume(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    for (int i = 0; i < 5; i++) {
        check_later(curl, "/later");
        check_later(curl, "/later-fast");
    }
    curl_easy_cleanup(curl);
}

static void test_keep_alive(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    test_reply_t reply;
    request(curl, "POST", "/echo", NULL, "one", 3, &reply);
    assert_int_equal(reply.status, 200);
    assert_int_equal(reply.connects, 1);
    free(reply.body.data);
    /* a handler reply, a suspended reply and a 404 all keep the
     * connection open */
    request(curl, "POST", "/echo", NULL, "two", 3, &reply);
    assert_int_equal(reply.status, 200);
    assert_int_equal(reply.connects, 0);
    free(reply.body.data);
    request(curl, "POST", "/later", NULL, "three", 5, &reply);
    assert_int_equal(reply.status, 202);
    assert_int_equal(reply.connects, 0);
    free(reply.body.data);
    request(curl, "GET", "/nope", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 404);
    assert_int_equal(reply.connects, 0);
    free(reply.body.data);
    request(curl, "GET", "/healthz", NULL, NULL, 0, &reply);
    assert_int_equal(reply.connects, 0);
    free(reply.body.data);
    curl_easy_cleanup(curl);
}

/* Requests on one keep-alive connection share its buffers, never their
 * contents: a long lead, then a short one, then a GET without a body, each
 * sees only its own body, headers and content type, and gets only its
 * own reply. */
static void test_keep_alive_requests_are_separate(void **state)
{
    (void)state;
    CURL *curl = curl_easy_init();
    test_reply_t reply;
    const char *long_lead =
        "{\"name\":\"Анна Петрова\",\"company\":\"ООО Ромашка\","
        "\"phone\":\"+7 912 345-67-89\",\"email\":\"anna@romashka.ru\","
        "\"message\":\"Нужна CRM на 40 менеджеров, перезвоните после 15:00\"}";
    struct curl_slist *json_headers =
        curl_slist_append(NULL, "Content-Type: application/json");
    json_headers = curl_slist_append(json_headers, "X-Custom: site-form");
    request(curl, "POST", "/echo?q=first", json_headers, long_lead,
            (long)strlen(long_lead), &reply);
    assert_int_equal(reply.status, 200);
    json_t *json = reply_json(&reply);
    assert_string_equal(json_text(json, "body"), long_lead);
    assert_string_equal(json_text(json, "custom"), "site-form");
    assert_string_equal(json_text(json, "type"), "application/json");
    assert_string_equal(json_text(json, "q"), "first");
    size_t long_reply = reply.body.size;
    json_decref(json);
    free(reply.body.data);

    struct curl_slist *form_headers = curl_slist_append(
        NULL, "Content-Type: application/x-www-form-urlencoded");
    request(curl, "POST", "/echo", form_headers, "phone=%2B79123456789", 20,
            &reply);
    assert_int_equal(reply.status, 200);
    assert_int_equal(reply.connects, 0);
    json = reply_json(&reply);
    assert_string_equal(json_text(json, "body"), "phone=%2B79123456789");
    assert_int_equal(json_integer_value(json_object_get(json, "size")), 20);
    assert_string_equal(json_text(json, "custom"), "");
    assert_string_equal(json_text(json, "type"),
                        "application/x-www-form-urlencoded");
    assert_string_equal(json_text(json, "q"), "");
    assert_true(reply.body.size < long_reply);
    json_decref(json);
    free(reply.body.data);

    request(curl, "GET", "/echo", NULL, NULL, 0, &reply);
    assert_int_equal(reply.status, 200);
    assert_int_equal(reply.connects, 0);
    json = reply_json(&reply);
    assert_string_equal(json_text(json, "body"), "");
    assert_int_equal(json_integer_value(json_object_get(json, "size")), 0);
    assert_string_equal(json_text(json, "type"), "");
    json_decref(json);
    free(reply.body.data);

    /* a suspended request after them answers with its own body */
    request(curl, "POST", "/later", NULL, "later-lead", 10, &reply);
    assert_int_equal(reply.status, 202);
    assert_int_equal(reply.connects, 0);
    json = reply_json(&reply);
    assert_string_equal(json_text(json, "body"), "later-lead");
    json_decref(json);
    free(reply.body.data);
    curl_slist_free_all(json_headers);
    curl_slist_free_all(form_headers);
    curl_easy_cleanup(curl);
}

static void test_bad_address(void **state)
{
    (void)state;
    cv_http_options_t options = {
        .addr = "no-port-here",
        .service = "test",
        .threads = 1,
        .max_body_bytes = 10,
        .handler = test_handler,
    };
    assert_null(cv_http_start(&options));
    /* the port of the running server is taken */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", cv_http_port(server));
    options.addr = addr;
    assert_null(cv_http_start(&options));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler_route),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_healthz_and_metrics),
        cmocka_unit_test(test_suspend_resume),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_keep_alive_requests_are_separate),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

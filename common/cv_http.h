/* cv_http: a small HTTP server over libmicrohttpd.
 *
 * The server collects the whole request body (refusing it with 413 past
 * max_body_bytes), then calls the service's handler once per request from
 * one of its threads. The handler either replies at once (cv_http_reply*)
 * or suspends the request (cv_http_suspend) and has another thread reply
 * later with cv_http_reply* followed by cv_http_resume. Replies are queued
 * on MHD's second or later call, so keep-alive connections stay open.
 *
 * `GET /healthz` and `GET /metrics` are answered by the server itself when
 * the handler does not claim them (healthz: 200 {"status":"ok"} once
 * cv_http_set_ready(server, true), else 503). */
#ifndef CV_HTTP_H
#define CV_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cv_http cv_http_t;
typedef struct cv_http_request cv_http_request_t;

/* Called once per request with the complete body. Must reply or suspend
 * before returning. Runs on an HTTP thread: use its own SQLite connection.
 * Return false to let the server answer /healthz, /metrics or 404. */
typedef bool (*cv_http_handler_fn)(void *arg, cv_http_request_t *req);

typedef struct {
    const char *addr;         /* "host:port"; port 0 picks a free port */
    const char *service;      /* for /metrics */
    int threads;              /* thread pool size, >= 1 */
    int64_t max_body_bytes;   /* 413 above this */
    cv_http_handler_fn handler;
    void *arg;
} cv_http_options_t;

/* Starts listening. Returns NULL after logging (address in use, bad addr). */
cv_http_t *cv_http_start(const cv_http_options_t *options);

/* Stops accepting, finishes, frees. NULL-safe; nulls *self_p. Every
 * suspended request must have been resumed first. */
void cv_http_destroy(cv_http_t **self_p);

/* The port actually bound (useful with port 0). */
int cv_http_port(const cv_http_t *self);
void cv_http_set_ready(cv_http_t *self, bool ready);

/* Starts an admin-only server (healthz + metrics) on `addr`. */
cv_http_t *cv_http_start_admin(const char *addr, const char *service);

/* --- the request, valid from the handler call until the reply is sent --- */
const char *cv_http_method(const cv_http_request_t *req);
const char *cv_http_path(const cv_http_request_t *req);   /* without query */
const char *cv_http_body(const cv_http_request_t *req);   /* NUL-terminated */
size_t cv_http_body_size(const cv_http_request_t *req);
/* Header (case-insensitive) or query argument; NULL when absent. */
const char *cv_http_header(const cv_http_request_t *req, const char *name);
const char *cv_http_query(const cv_http_request_t *req, const char *name);
/* The token from "Authorization: Bearer <token>", or the `key` query
 * argument when `allow_query_key`; NULL when neither is there. */
const char *cv_http_bearer(const cv_http_request_t *req,
                           bool allow_query_key);
/* The media type of Content-Type, lower-cased, without parameters
 * ("application/json"); "" when absent. */
const char *cv_http_content_type(const cv_http_request_t *req);

/* A free slot for the handler's own per-request state (not freed by us). */
void cv_http_set_user(cv_http_request_t *req, void *user);
void *cv_http_user(const cv_http_request_t *req);

/* --- replies: exactly one per request --- */
/* Sends `body` (copied) with the given status and content type. */
void cv_http_reply(cv_http_request_t *req, int status,
                   const char *content_type, const char *body, size_t size);
/* Sends the JSON value (compact) and takes ownership of it (decref). */
void cv_http_reply_json(cv_http_request_t *req, int status, json_t *body);
/* Sends {"error": code, "message": message, "field": field (if non-NULL)}. */
void cv_http_reply_error(cv_http_request_t *req, int status, const char *code,
                         const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Adds a response header to the reply being prepared; call before reply. */
void cv_http_add_header(cv_http_request_t *req, const char *name,
                        const char *value);

/* Suspends the request: the handler returns without replying; another
 * thread later calls cv_http_reply* and then cv_http_resume. */
void cv_http_suspend(cv_http_request_t *req);
void cv_http_resume(cv_http_request_t *req);

#endif

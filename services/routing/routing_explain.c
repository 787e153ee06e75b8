/* routing_explain: routing's admin port — /healthz, /metrics and
 * GET /v1/routing/explain?lead_id=, which the console forwards.
 *
 * Explain runs the very chain a real assignment runs (routing_route) on a
 * connection of its own, inside a read transaction it rolls back, with
 * `dry` set: the same rules, the same directory, the same round-robin
 * state and daily loads, so its answer is who would get the lead if it
 * were routed now. It also shows the lead's real assignment and its
 * stored trace, and an open offer. */
#include "routing.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_http.h"
#include "cv_log.h"

struct routing_explain {
    routing_t *routing;   /* the process state (not owned) */
    cv_http_t *http;      /* the admin server (owned) */
    pthread_mutex_t lock; /* one explain at a time on `store` */
    cv_store_t *store;    /* explain's own connection, opened lazily */
};

static const char *outcome_name(routing_outcome_t o)
{
    switch (o) {
    case ROUTING_ASSIGNED:
        return "assigned";
    case ROUTING_OFFERED:
        return "offered";
    case ROUTING_MANUAL:
        return "manual";
    case ROUTING_NOBODY:
        break;
    }
    return "nobody";
}

static json_t *text_or_null(const char *text)
{
    return text != NULL && text[0] != '\0' ? json_string(text) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char text[40];
    cv_clock_format(ms, text, sizeof(text));
    return json_string(text);
}

/* The trace split at " | " into its steps. */
static json_t *trace_steps(const char *trace)
{
    json_t *steps = json_array();
    const char *p = trace;
    while (steps != NULL && *p != '\0') {
        const char *sep = strstr(p, " | ");
        size_t len = sep != NULL ? (size_t)(sep - p) : strlen(p);
        json_array_append_new(steps, json_stringn(p, len));
        p += len;
        if (sep != NULL)
            p += 3;
    }
    return steps;
}

/* The lead's real assignment, or null. */
static json_t *current_json(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT staff_id, strategy, rule, rule_trace, assigned_at,"
               " coalesce(closed_at, 0) FROM assignments WHERE lead_id = ?");
    if (stmt == NULL)
        return NULL;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc != 0)
        return rc == 1 ? json_null() : NULL;
    json_t *o = json_object();
    json_object_set_new(
        o, "staff_id",
        text_or_null((const char *)sqlite3_column_text(stmt, 0)));
    json_object_set_new(
        o, "strategy",
        text_or_null((const char *)sqlite3_column_text(stmt, 1)));
    json_object_set_new(
        o, "rule", text_or_null((const char *)sqlite3_column_text(stmt, 2)));
    json_object_set_new(
        o, "rule_trace",
        text_or_null((const char *)sqlite3_column_text(stmt, 3)));
    json_object_set_new(o, "assigned_at",
                        time_or_null(sqlite3_column_int64(stmt, 4)));
    json_object_set_new(o, "closed_at",
                        time_or_null(sqlite3_column_int64(stmt, 5)));
    sqlite3_reset(stmt);
    return o;
}

/* An open offer of the lead, or null. */
static json_t *offer_json(cv_store_t *store, const char *lead_id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT kind, rule, staff, coalesce(expires_at, 0), state"
               " FROM offers WHERE lead_id = ?");
    if (stmt == NULL)
        return NULL;
    cv_store_bind_text(stmt, 1, lead_id);
    int rc = cv_store_step_row(stmt);
    if (rc != 0)
        return rc == 1 ? json_null() : NULL;
    json_t *o = json_object();
    json_object_set_new(
        o, "kind", text_or_null((const char *)sqlite3_column_text(stmt, 0)));
    json_object_set_new(
        o, "rule", text_or_null((const char *)sqlite3_column_text(stmt, 1)));
    json_object_set_new(
        o, "staff", text_or_null((const char *)sqlite3_column_text(stmt, 2)));
    json_object_set_new(o, "expires_at",
                        time_or_null(sqlite3_column_int64(stmt, 3)));
    json_object_set_new(
        o, "state", text_or_null((const char *)sqlite3_column_text(stmt, 4)));
    sqlite3_reset(stmt);
    return o;
}

static void explain(routing_explain_t *ex, cv_http_request_t *req)
{
    const char *lead_id = cv_http_query(req, "lead_id");
    if (lead_id == NULL || lead_id[0] == '\0' || strlen(lead_id) > 128) {
        cv_http_reply_error(req, 400, "invalid", "lead_id",
                            "give the lead as ?lead_id=");
        return;
    }
    routing_decision_t *d = malloc(sizeof(*d));
    if (d == NULL) {
        cv_http_reply_error(req, 503, "unavailable", NULL, "out of memory");
        return;
    }
    json_t *body = NULL;
    Conveyor__LeadScored *scored = NULL;
    pthread_mutex_lock(&ex->lock);
    if (ex->store == NULL)
        ex->store = cv_store_open(ex->routing->config->db_path,
                                  routing_migrations, routing_migration_count);
    cv_store_t *store = ex->store;
    if (store == NULL || cv_store_exec(store, "BEGIN") != 0) {
        cv_http_reply_error(req, 503, "storage_unavailable", NULL,
                            "routing's database is not available now");
        goto out;
    }
    bool missing = false;
    scored = routing_lead_get(store, lead_id, &missing);
    if (scored == NULL) {
        if (missing)
            cv_http_reply_error(req, 404, "not_found", "lead_id",
                                "routing has no scored lead '%s'", lead_id);
        else
            cv_http_reply_error(req, 503, "storage_unavailable", NULL,
                                "routing's database is not available now");
        goto out;
    }
    routing_route_opts_t opts = {.dry = true};
    if (routing_route(ex->routing, store, NULL, scored, &opts, d) != 0) {
        cv_http_reply_error(req, 503, "storage_unavailable", NULL,
                            "routing's database is not available now");
        goto out;
    }
    json_t *current = current_json(store, lead_id);
    json_t *offer = offer_json(store, lead_id);
    if (current == NULL || offer == NULL) {
        json_decref(current);
        json_decref(offer);
        cv_http_reply_error(req, 503, "storage_unavailable", NULL,
                            "routing's database is not available now");
        goto out;
    }
    body = json_object();
    json_object_set_new(body, "lead_id", json_string(lead_id));
    json_object_set_new(body, "outcome", json_string(outcome_name(d->outcome)));
    json_object_set_new(body, "staff_id", text_or_null(d->staff_id));
    json_object_set_new(body, "staff_name", text_or_null(d->staff_name));
    json_object_set_new(body, "rule", text_or_null(d->rule));
    json_object_set_new(body, "strategy", text_or_null(d->strategy));
    json_t *offered = json_array();
    for (const char *p = d->offered; *p != '\0';) {
        size_t len = strcspn(p, ",");
        json_array_append_new(offered, json_stringn(p, len));
        p += len;
        if (*p == ',')
            p++;
    }
    json_object_set_new(body, "offered_to", offered);
    json_object_set_new(body, "expires_at", time_or_null(d->expires_at));
    json_object_set_new(body, "rule_trace", json_string(d->trace.text));
    json_object_set_new(body, "steps", trace_steps(d->trace.text));
    json_object_set_new(body, "current", current);
    json_object_set_new(body, "offer", offer);
    json_object_set_new(body, "at", time_or_null(cv_clock_now_ms()));
out:
    if (store != NULL && cv_store_in_transaction(store))
        cv_store_rollback(store);
    pthread_mutex_unlock(&ex->lock);
    conveyor__lead_scored__free_unpacked(scored, NULL);
    free(d);
    if (body != NULL)
        cv_http_reply_json(req, 200, body);
}

static bool explain_handle(void *arg, cv_http_request_t *req)
{
    routing_explain_t *ex = arg;
    if (strcmp(cv_http_path(req), "/v1/routing/explain") != 0)
        return false; /* healthz, metrics or 404 */
    if (strcmp(cv_http_method(req), "GET") != 0) {
        cv_http_add_header(req, "Allow", "GET");
        cv_http_reply_error(req, 405, "method_not_allowed", NULL,
                            "explain takes GET");
        return true;
    }
    explain(ex, req);
    return true;
}

routing_explain_t *routing_explain_start(routing_t *self)
{
    routing_explain_t *ex = calloc(1, sizeof(*ex));
    if (ex == NULL)
        return NULL;
    ex->routing = self;
    pthread_mutex_init(&ex->lock, NULL);
    cv_http_options_t options = {
        .addr = self->config->admin_addr,
        .service = "routing",
        .threads = 2,
        .max_body_bytes = 4096,
        .handler = explain_handle,
        .arg = ex,
    };
    ex->http = cv_http_start(&options);
    if (ex->http == NULL) {
        routing_explain_stop(&ex);
        return NULL;
    }
    return ex;
}

void routing_explain_ready(routing_explain_t *ex, bool ready)
{
    if (ex != NULL && ex->http != NULL)
        cv_http_set_ready(ex->http, ready);
}

void routing_explain_stop(routing_explain_t **ex_p)
{
    if (ex_p == NULL || *ex_p == NULL)
        return;
    routing_explain_t *ex = *ex_p;
    cv_http_destroy(&ex->http);
    routing_directory_forget(ex->store);
    cv_store_destroy(&ex->store);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
    *ex_p = NULL;
}

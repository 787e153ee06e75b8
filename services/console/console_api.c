/* console_api: the staff HTTP API's routes and what they share.
 *
 * Each request borrows a database connection from the pool, runs in one
 * transaction (BEGIN IMMEDIATE for a request that writes, so two writers
 * never deadlock upgrading a read lock; a plain BEGIN for a read, so a
 * card is read from one snapshot), authenticates the caller and calls the
 * route. A route that writes commits with console_commit_and_wake before
 * it replies; whatever a route left open is rolled back. */
#include "console.h"

#include <stdio.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

#define CONSOLE_PATH_SEGMENTS 6 /* the longest route has 4 segments */

typedef struct {
    const char *method;     /* HTTP method */
    const char *pattern;    /* path; '*' is one segment, the route's id */
    bool writes;            /* runs in a write transaction */
    void (*plain)(console_ctx_t *ctx);                  /* no id, or */
    void (*with_id)(console_ctx_t *ctx, const char *id); /* with the id */
} console_route_t;

static const console_route_t console_routes[] = {
    {"POST", "/v1/staff", true, console_staff_post, NULL},
    {"GET", "/v1/staff", false, console_staff_list, NULL},
    {"GET", "/v1/staff/*", false, NULL, console_staff_get},
    {"PATCH", "/v1/staff/*", true, NULL, console_staff_patch},
    {"GET", "/v1/leads", false, console_leads_search, NULL},
    {"GET", "/v1/leads/*", false, NULL, console_leads_get},
    {"POST", "/v1/leads/*/activities", true, NULL, console_leads_activity},
    {"POST", "/v1/leads/*/decision", true, NULL, console_leads_decision},
    {"PUT", "/v1/leads/*/scorecard", true, NULL, console_scorecard_put},
    {"GET", "/v1/leads/*/scorecard", false, NULL, console_scorecard_get},
    {"GET", "/v1/tasks", false, console_tasks_list, NULL},
    {"POST", "/v1/tasks/*/done", true, NULL, console_tasks_done},
    {"GET", "/v1/proposals/*", false, NULL, console_proposals_get},
    {"GET", "/v1/notifications", false, console_notifications_get, NULL},
    {"POST", "/v1/notifications/*/resend", true, NULL,
     console_notifications_resend},
    {"POST", "/v1/leads/*/claim", true, NULL, console_routing_claim},
    {"POST", "/v1/leads/*/assign", true, NULL, console_routing_assign},
    {"GET", "/v1/routing/explain", false, console_routing_explain, NULL},
};

#define CONSOLE_ROUTE_COUNT (sizeof(console_routes) / sizeof(console_routes[0]))

/* Matches `path` against `pattern`; on a match copies the '*' segment (if
 * any) into id. A segment longer than an id never matches. */
static bool console_route_match(const char *pattern, const char *path,
                                char *id, size_t id_size)
{
    id[0] = '\0';
    const char *p = pattern;
    const char *s = path;
    while (*p != '\0' && *s != '\0') {
        if (*p == '*') {
            size_t len = strcspn(s, "/");
            if (len == 0 || len >= id_size)
                return false;
            memcpy(id, s, len);
            id[len] = '\0';
            s += len;
            p++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    /* one trailing slash is forgiven: "/v1/leads/" is "/v1/leads" */
    if (*p == '\0' && s[0] == '/' && s[1] == '\0')
        return true;
    return *p == '\0' && *s == '\0';
}

bool console_api_handle(void *arg, cv_http_request_t *req)
{
    console_t *console = arg;
    const char *method = cv_http_method(req);
    const char *path = cv_http_path(req);
    char id[CONSOLE_ID_SIZE];
    const console_route_t *route = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < CONSOLE_ROUTE_COUNT; i++) {
        if (!console_route_match(console_routes[i].pattern, path, id,
                                 sizeof(id)))
            continue;
        if (strcmp(console_routes[i].method, method) == 0) {
            route = &console_routes[i];
            break;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s",
                 used ? ", " : "", console_routes[i].method);
    }
    if (route == NULL && allow[0] == '\0')
        return false;   /* healthz, metrics or 404 */
    if (route == NULL) {
        cv_http_add_header(req, "Allow", allow);
        cv_http_reply_error(req, 405, "method_not_allowed", NULL,
                            "'%s' does not take %s", path, method);
        return true;
    }

    console_ctx_t ctx = {.console = console, .req = req};
    ctx.store = console_pool_acquire(console->pool);
    if (ctx.store == NULL) {
        console_reply_storage(req);
        return true;
    }
    int rc = route->writes ? cv_store_begin(ctx.store)
                           : cv_store_exec(ctx.store, "BEGIN");
    if (rc != 0) {
        console_reply_storage(req);
        goto out;
    }
    if (console_auth(console, ctx.store, req, &ctx.caller) != 0)
        goto out;
    if (route->plain != NULL)
        route->plain(&ctx);
    else
        route->with_id(&ctx, id);
out:
    if (cv_store_in_transaction(ctx.store)) {
        if (route->writes)
            cv_store_rollback(ctx.store);
        else
            cv_store_commit(ctx.store);
    }
    console_pool_release(console->pool, ctx.store);
    return true;
}

json_t *console_read_json(cv_http_request_t *req)
{
    const char *type = cv_http_content_type(req);
    if (strcmp(type, "application/json") != 0) {
        cv_http_reply_error(req, 415, "unsupported_media_type", NULL,
                            "send 'Content-Type: application/json', not "
                            "'%s'", type[0] ? type : "nothing");
        return NULL;
    }
    json_error_t error;
    json_t *body = json_loadb(cv_http_body(req), cv_http_body_size(req),
                              JSON_REJECT_DUPLICATES, &error);
    if (body == NULL) {
        cv_http_reply_error(req, 400, "malformed_json", NULL,
                            "malformed JSON at line %d, column %d: %s",
                            error.line, error.column, error.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        cv_http_reply_error(req, 400, "malformed_json", NULL,
                            "the body must be a JSON object");
        return NULL;
    }
    return body;
}

void console_reply_storage(cv_http_request_t *req)
{
    cv_http_add_header(req, "Retry-After", "1");
    cv_http_reply_error(req, 503, "storage_unavailable", NULL,
                        "the console's database is not available now");
}

void console_reply_list(console_ctx_t *ctx, sqlite3_stmt *stmt, int rc,
                        const char *key, json_t *list)
{
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) {
        cv_error("cannot list %s in '%s': %s", key, cv_store_path(ctx->store),
                 sqlite3_errmsg(cv_store_db(ctx->store)));
        json_decref(list);
        console_reply_storage(ctx->req);
        return;
    }
    json_t *reply = json_object();
    json_object_set_new(reply, key, list);
    cv_http_reply_json(ctx->req, 200, reply);
}

bool console_may_see(console_ctx_t *ctx, const char *owner_id)
{
    if (ctx->caller.manager)
        return true;
    if (owner_id != NULL && owner_id[0] != '\0' &&
        strcmp(owner_id, ctx->caller.staff_id) == 0)
        return true;
    cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                        "a %s sees only their own leads and tasks",
                        ctx->caller.role);
    return false;
}

json_t *console_json_text(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *value = json_string(text);
    return value != NULL ? value : json_null();
}

void console_put_column(json_t *obj, const char *key, sqlite3_stmt *stmt,
                        int col)
{
    const char *text = (const char *)sqlite3_column_text(stmt, col);
    json_object_set_new(obj, key, console_json_text(text));
}

json_t *console_time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char text[40];
    cv_clock_format(ms, text, sizeof(text));
    return json_string(text);
}

int console_commit_and_wake(console_ctx_t *ctx)
{
    if (cv_store_commit(ctx->store) != 0) {
        cv_store_rollback(ctx->store);
        console_reply_storage(ctx->req);
        return -1;
    }
    cv_bus_wake(ctx->console->bus);
    return 0;
}

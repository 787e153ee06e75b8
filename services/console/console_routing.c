/* console_routing: the console's side of routing (owned by the routing
 * work; see services/routing/routing.h for the stage itself).
 *
 *   - LeadOffered (bus thread): a first_come offer lands in lead_offers and
 *     on the card's timeline;
 *   - POST /v1/leads/{id}/claim: the first staff member of the offer to
 *     claim it wins. The claim is one conditional UPDATE inside the
 *     request's BEGIN IMMEDIATE transaction, so of many concurrent claims
 *     exactly one changes the row; the others answer 409. The winner's
 *     AssignmentRequested{kind=claim} goes to routing in the same
 *     transaction, and routing records the assignment and emits
 *     LeadAssigned as for any other strategy. A claim after the offer's
 *     deadline is 409 too (routing moves the lead on at the deadline);
 *   - POST /v1/leads/{id}/assign (head, admin): AssignmentRequested
 *     {kind=manual} for the named active member; an open offer closes;
 *   - GET /v1/routing/explain?lead_id= (head, admin): forwarded to
 *     routing's admin port (config routing_admin_addr), which runs the
 *     real rule chain without writing and answers who would get the lead
 *     now and why; the console relays the answer as it is. */
#include "console.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

const char console_schema_routing[] =
    "CREATE TABLE lead_offers ("
    "  lead_id TEXT PRIMARY KEY,"
    "  rule TEXT,"
    "  staff TEXT NOT NULL," /* JSON array of staff ids */
    "  expires_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL," /* open | claimed | closed */
    "  claimed_by TEXT,"
    "  claimed_at INTEGER,"
    "  offered_at INTEGER NOT NULL"
    ") STRICT;";

static const char *routing_text(const char *text)
{
    return text != NULL ? text : "";
}

int console_routing_offered(cv_store_t *store, console_known_t *known,
                            const Conveyor__Envelope *ev)
{
    const Conveyor__LeadOffered *body = ev->lead_offered;
    if (body->lead_id == NULL || body->lead_id[0] == '\0' ||
        body->n_staff_ids == 0 || !body->has_expires_at) {
        cv_log_warn("dropping lead_offered '%s': no lead, pool or deadline",
                    routing_text(ev->event_id));
        return CV_BUS_DROP;
    }
    int64_t at = ev->occurred_at;
    const char *trace = ev->trace_id != NULL ? ev->trace_id : "";
    bool has_lead = body->lead != NULL && body->lead->lead_id != NULL &&
                    strcmp(body->lead->lead_id, body->lead_id) == 0;
    /* a lead offered on arrival brings its first score from here */
    if (console_first_score_apply(store, body->lead_id,
                                  has_lead ? body->lead : NULL, body->score,
                                  trace) != 0)
        return -1;
    if (has_lead) {
        console_card_t card;
        if (console_lead_merge(store, body->lead, at, trace, &card) != 0)
            return -1;
    } else if (console_lead_ensure(store, known, body->lead_id, at, trace) !=
               0) {
        return -1;
    }
    json_t *staff = json_array();
    for (size_t i = 0; i < body->n_staff_ids; i++)
        json_array_append_new(staff, json_string(body->staff_ids[i]));
    char *staff_text = json_dumps(staff, JSON_COMPACT);
    json_decref(staff);
    if (staff_text == NULL)
        return cv_error("cannot keep the offer of '%s': out of memory",
                        body->lead_id);
    int rc = -1;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO lead_offers (lead_id, rule, staff, expires_at,"
               " state, offered_at) VALUES (?1, ?2, ?3, ?4, 'open', ?5)"
               " ON CONFLICT (lead_id) DO UPDATE SET rule = excluded.rule,"
               " staff = excluded.staff, expires_at = excluded.expires_at,"
               " state = 'open', claimed_by = NULL, claimed_at = NULL,"
               " offered_at = excluded.offered_at"
               " WHERE lead_offers.offered_at <= excluded.offered_at");
    if (stmt == NULL)
        goto out;
    console_bind_text(stmt, 1, body->lead_id);
    console_bind_text(stmt, 2, body->rule);
    console_bind_text(stmt, 3, staff_text);
    sqlite3_bind_int64(stmt, 4, body->expires_at);
    sqlite3_bind_int64(stmt, 5, at);
    if (cv_store_step_done(stmt) != 0)
        goto out;
    char until[40];
    cv_clock_format(body->expires_at, until, sizeof(until));
    char fact[160];
    snprintf(fact, sizeof(fact), "offered:%s", routing_text(ev->event_id));
    rc = console_timeline_add(store, body->lead_id, at, "routing",
                              "lead_offered", fact,
                              "offered first come to %s by rule %s, until %s",
                              staff_text, routing_text(body->rule), until) < 0
             ? -1
             : 0;
out:
    free(staff_text);
    return rc;
}

/* Writes AssignmentRequested for routing into the outbox. 0 or -1. */
static int routing_request(console_ctx_t *ctx, const char *lead_id,
                           const char *staff_id, const char *kind, int64_t now)
{
    char trace_id[CONSOLE_ID_SIZE];
    if (console_lead_get_trace(ctx->store, lead_id, trace_id,
                               sizeof(trace_id)) != 0)
        return -1;
    Conveyor__AssignmentRequested req = CONVEYOR__ASSIGNMENT_REQUESTED__INIT;
    req.lead_id = (char *)lead_id;
    req.staff_id = (char *)staff_id;
    req.kind = (char *)kind;
    req.actor = (char *)console_caller_actor(&ctx->caller);
    req.has_requested_at = true;
    req.requested_at = now;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.trace_id = trace_id[0] ? trace_id : NULL;
    env.body_case = CONVEYOR__ENVELOPE__BODY_ASSIGNMENT_REQUESTED;
    env.assignment_requested = &req;
    return cv_outbox_put(ctx->store, CONSOLE_SERVICE, &env, "routing", NULL);
}

void console_routing_claim(console_ctx_t *ctx, const char *lead_id)
{
    const char *me = ctx->caller.staff_id;
    if (me[0] == '\0') {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "a claim is made by a staff member with their own "
                            "token");
        return;
    }
    int64_t now = cv_clock_now_ms();
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT state, coalesce(claimed_by, ''), expires_at,"
                    " EXISTS (SELECT 1 FROM json_each(staff) WHERE value = ?2)"
                    " FROM lead_offers WHERE lead_id = ?1");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    console_bind_text(stmt, 1, lead_id);
    console_bind_text(stmt, 2, me);
    int found = cv_store_step_row(stmt);
    if (found < 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (found == 1) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "lead '%s' is not offered first come", lead_id);
        return;
    }
    char state[16], claimed_by[CONSOLE_ID_SIZE];
    cv_store_column_copy(stmt, 0, state, sizeof(state));
    cv_store_column_copy(stmt, 1, claimed_by, sizeof(claimed_by));
    int64_t expires_at = sqlite3_column_int64(stmt, 2);
    bool offered_to_me = sqlite3_column_int(stmt, 3) != 0;
    sqlite3_reset(stmt);
    if (!offered_to_me) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "lead '%s' was not offered to '%s'", lead_id, me);
        return;
    }
    char stage[32];
    int card = console_lead_stage(ctx->store, lead_id, stage, sizeof(stage));
    if (card < 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (card == 0 && console_stage_closed(stage)) {
        cv_http_reply_error(ctx->req, 409, "conflict", NULL,
                            "lead '%s' is %s", lead_id, stage);
        return;
    }
    /* the one conditional write that decides the race */
    stmt =
        cv_store_prepare(ctx->store, "UPDATE lead_offers SET state = 'claimed',"
                                     " claimed_by = ?2, claimed_at = ?3"
                                     " WHERE lead_id = ?1 AND state = 'open'"
                                     " AND expires_at > ?3");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    console_bind_text(stmt, 1, lead_id);
    console_bind_text(stmt, 2, me);
    sqlite3_bind_int64(stmt, 3, now);
    if (cv_store_step_done(stmt) != 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (sqlite3_changes(cv_store_db(ctx->store)) == 0) {
        char until[40];
        cv_clock_format(expires_at, until, sizeof(until));
        json_t *body =
            json_pack("{s:s, s:s, s:o}", "error", "conflict", "lead_id",
                      lead_id, "claimed_by",
                      claimed_by[0] ? json_string(claimed_by) : json_null());
        if (strcmp(state, "claimed") == 0)
            json_object_set_new(
                body, "message",
                json_sprintf("already claimed by '%s'", claimed_by));
        else if (strcmp(state, "open") == 0)
            json_object_set_new(
                body, "message",
                json_sprintf("the offer ended at %s unclaimed", until));
        else
            json_object_set_new(body, "message",
                                json_string("the offer is closed"));
        cv_http_reply_json(ctx->req, 409, body);
        return;
    }
    const char *actor = console_caller_actor(&ctx->caller);
    char fact[200];
    snprintf(fact, sizeof(fact), "claimed:%s", lead_id);
    if (routing_request(ctx, lead_id, me, "claim", now) != 0 ||
        console_timeline_add(ctx->store, lead_id, now, actor, "lead_claimed",
                             fact, "claimed first come by %s", me) < 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (console_commit_and_wake(ctx) != 0)
        return;
    cv_http_reply_json(ctx->req, 200,
                       json_pack("{s:s, s:s, s:s}", "lead_id", lead_id,
                                 "staff_id", me, "status", "claimed"));
}

void console_routing_assign(console_ctx_t *ctx, const char *lead_id)
{
    if (!ctx->caller.manager) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "only the head of sales or an admin assigns by "
                            "hand");
        return;
    }
    json_t *body = console_read_json(ctx->req);
    if (body == NULL)
        return;
    const char *staff_id = json_string_value(json_object_get(body, "staff_id"));
    if (staff_id == NULL || staff_id[0] == '\0' ||
        strlen(staff_id) >= CONSOLE_ID_SIZE) {
        cv_http_reply_error(ctx->req, 422, "invalid", "staff_id",
                            "give the staff member as {\"staff_id\": ...}");
        goto out;
    }
    char stage[32];
    int card = console_lead_stage(ctx->store, lead_id, stage, sizeof(stage));
    if (card < 0) {
        console_reply_storage(ctx->req);
        goto out;
    }
    if (card == 1) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL, "no lead '%s'",
                            lead_id);
        goto out;
    }
    if (console_stage_closed(stage)) {
        cv_http_reply_error(ctx->req, 409, "conflict", NULL, "lead '%s' is %s",
                            lead_id, stage);
        goto out;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, "SELECT active FROM staff WHERE staff_id = ?");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        goto out;
    }
    console_bind_text(stmt, 1, staff_id);
    int found = cv_store_step_row(stmt);
    if (found < 0) {
        console_reply_storage(ctx->req);
        goto out;
    }
    bool active = found == 0 && sqlite3_column_int(stmt, 0) != 0;
    if (found == 0)
        sqlite3_reset(stmt);
    if (found == 1 || !active) {
        cv_http_reply_error(ctx->req, 422, "invalid", "staff_id", "'%s' is %s",
                            staff_id,
                            found == 1 ? "not in the directory" : "inactive");
        goto out;
    }
    int64_t now = cv_clock_now_ms();
    stmt =
        cv_store_prepare(ctx->store, "UPDATE lead_offers SET state = 'closed'"
                                     " WHERE lead_id = ? AND state = 'open'");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        goto out;
    }
    console_bind_text(stmt, 1, lead_id);
    const char *actor = console_caller_actor(&ctx->caller);
    char fact[200];
    char id[40];
    cv_id_new("asg", id, sizeof(id));
    snprintf(fact, sizeof(fact), "assign:%s", id);
    if (cv_store_step_done(stmt) != 0 ||
        routing_request(ctx, lead_id, staff_id, "manual", now) != 0 ||
        console_timeline_add(ctx->store, lead_id, now, actor, "lead_assign",
                             fact, "%s assigns the lead by hand to %s", actor,
                             staff_id) < 0) {
        console_reply_storage(ctx->req);
        goto out;
    }
    if (console_commit_and_wake(ctx) != 0)
        goto out;
    cv_http_reply_json(ctx->req, 202,
                       json_pack("{s:s, s:s, s:s}", "lead_id", lead_id,
                                 "staff_id", staff_id, "status", "requested"));
out:
    json_decref(body);
}

/* The body routing answers, collected up to a limit. */
typedef struct {
    char *data;  /* NUL-terminated, owned */
    size_t size; /* bytes in data */
} routing_buf_t;

static size_t routing_collect(char *ptr, size_t size, size_t n, void *arg)
{
    routing_buf_t *buf = arg;
    size_t add = size * n;
    if (buf->size + add > 1024 * 1024)
        return 0; /* an explain is a few KiB: refuse anything huge */
    char *grown = realloc(buf->data, buf->size + add + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + buf->size, ptr, add);
    buf->data = grown;
    buf->size += add;
    buf->data[buf->size] = '\0';
    return add;
}

void console_routing_explain(console_ctx_t *ctx)
{
    if (!ctx->caller.manager) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "the head of sales and admins see routing's "
                            "reasons");
        return;
    }
    const char *lead_id = cv_http_query(ctx->req, "lead_id");
    if (lead_id == NULL || lead_id[0] == '\0') {
        cv_http_reply_error(ctx->req, 400, "invalid", "lead_id",
                            "give the lead as ?lead_id=");
        return;
    }
    /* nothing to keep open while routing thinks */
    cv_store_commit(ctx->store);
    CURL *curl = curl_easy_init();
    routing_buf_t buf = {0};
    char *escaped = NULL;
    if (curl == NULL) {
        cv_http_reply_error(ctx->req, 503, "unavailable", NULL,
                            "cannot ask routing now");
        return;
    }
    escaped = curl_easy_escape(curl, lead_id, 0);
    char url[1024];
    snprintf(url, sizeof(url), "http://%s/v1/routing/explain?lead_id=%s",
             ctx->console->config->routing_admin_addr,
             escaped != NULL ? escaped : "");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, routing_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status == 0) {
        cv_log_warn("cannot ask routing at '%s' to explain '%s': %s",
                    ctx->console->config->routing_admin_addr, lead_id,
                    curl_easy_strerror(rc));
        cv_http_add_header(ctx->req, "Retry-After", "1");
        cv_http_reply_error(ctx->req, 503, "routing_unavailable", NULL,
                            "routing cannot be asked now");
    } else {
        cv_http_reply(ctx->req, (int)status, "application/json",
                      buf.data != NULL ? buf.data : "{}",
                      buf.data != NULL ? buf.size : 2);
    }
    curl_free(escaped);
    free(buf.data);
    curl_easy_cleanup(curl);
}

/* console_auth: who is calling, from the bearer token.
 *
 * CONVEYOR_ADMIN_TOKEN is the bootstrap `admin` (it has no staff row);
 * every other token was issued to a staff member when they were created. */
#include "console.h"

#include <stdio.h>
#include <string.h>

#include "cv_log.h"

/* Compares two strings in time that depends only on their lengths, so the
 * admin token cannot be guessed byte by byte from response times. */
static bool console_token_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    unsigned char diff = la == lb ? 0 : 1;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    return diff == 0;
}

int console_auth(const console_t *console, cv_store_t *store,
                 cv_http_request_t *req, console_caller_t *caller)
{
    memset(caller, 0, sizeof(*caller));
    const char *token = cv_http_bearer(req, false);
    if (token == NULL || token[0] == '\0') {
        cv_http_add_header(req, "WWW-Authenticate", "Bearer");
        cv_http_reply_error(req, 401, "unauthorized", NULL,
                            "missing 'Authorization: Bearer <token>'");
        return -1;
    }
    const char *admin = console->config->admin_token;
    if (admin[0] != '\0' && console_token_equal(token, admin)) {
        snprintf(caller->role, sizeof(caller->role), "admin");
        snprintf(caller->name, sizeof(caller->name), "admin");
        caller->manager = true;
        return 0;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "SELECT staff_id, name, role FROM staff WHERE token = ?1");
    if (stmt == NULL) {
        console_reply_storage(req);
        return -1;
    }
    cv_store_bind_text(stmt, 1, token);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        cv_store_column_copy(stmt, 0, caller->staff_id,
                             sizeof(caller->staff_id));
        cv_store_column_copy(stmt, 1, caller->name, sizeof(caller->name));
        cv_store_column_copy(stmt, 2, caller->role, sizeof(caller->role));
    }
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE) {
        cv_http_add_header(req, "WWW-Authenticate", "Bearer");
        cv_http_reply_error(req, 401, "unauthorized", NULL,
                            "unknown token");
        return -1;
    }
    if (rc != SQLITE_ROW) {
        cv_error("cannot look up a token in '%s': %s", cv_store_path(store),
                 sqlite3_errmsg(cv_store_db(store)));
        console_reply_storage(req);
        return -1;
    }
    caller->manager = strcmp(caller->role, "head") == 0 ||
                      strcmp(caller->role, "admin") == 0;
    return 0;
}

const char *console_caller_actor(const console_caller_t *caller)
{
    return caller->staff_id[0] != '\0' ? caller->staff_id : "admin";
}

/* intake_import: `POST /v1/import`, one batch of rows of a cold call list. */
#include "intake_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_jsonw.h"
#include "cv_log.h"
#include "cv_sha256.h"
#include "intake_lead.h"

#define INTAKE_IMPORT_CHANNEL    "cold" /* the channel of imported leads */
#define INTAKE_IMPORT_SOURCE_MAX 200    /* bytes in a list name */

/* One row of a batch. */
typedef struct {
    int64_t line;            /* the file line it came from */
    bool good;               /* read and checked: `sub` holds it */
    intake_submission_t sub; /* the lead, when good */
    intake_error_t error;    /* why it was refused, when not good */
    intake_write_t write;    /* what the bus thread did with it */
} intake_import_row_t;

struct intake_import {
    char *api_source;                  /* whose key posted it (owned) */
    char *idempotency_key;             /* the batch's key (owned) */
    char body_hash[CV_SHA256_HEX]; /* SHA-256 of type and body */
    intake_import_row_t *rows;         /* in body order (owned) */
    size_t count;                      /* entries in rows */
};

void intake_import_destroy(intake_import_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    intake_import_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        intake_submission_clear(&self->rows[i].sub);
        intake_write_clear(&self->rows[i].write);
    }
    free(self->rows);
    free(self->api_source);
    free(self->idempotency_key);
    free(self);
    *self_p = NULL;
}

/* Refuses the row with the error body's fields. */
static void intake_import_refuse(intake_import_row_t *row, const char *code,
                                 const char *field, const char *message)
{
    row->error.status = 422;
    snprintf(row->error.code, sizeof(row->error.code), "%s", code);
    snprintf(row->error.field, sizeof(row->error.field), "%s",
             field != NULL ? field : "");
    snprintf(row->error.message, sizeof(row->error.message), "%s", message);
}

/* Moves the member `name` of a row's lead into its `extra` (unless extra
 * names it already): an import fixes channel and source itself, but what
 * the file said is not thrown away. -1 when out of memory. */
static int intake_import_keep_in_extra(json_t *lead, const char *name)
{
    json_t *value = json_object_get(lead, name);
    if (value == NULL)
        return 0;
    json_incref(value);
    json_object_del(lead, name);
    int rc = 0;
    json_t *extra = json_object_get(lead, "extra");
    if (!json_is_null(value) && extra == NULL) {
        extra = json_object();
        if (extra == NULL || json_object_set_new(lead, "extra", extra) != 0)
            rc = -1;
    }
    /* an `extra` that is not an object gets the row refused later */
    if (rc == 0 && !json_is_null(value) && json_is_object(extra) &&
        json_object_get(extra, name) == NULL &&
        json_object_set(extra, name, value) != 0)
        rc = -1;
    json_decref(value);
    return rc;
}

/* Reads row `index` of the body into `row`: a refusal is kept in the row;
 * -1 only when out of memory. A row the spam check refuses (a blocked
 * domain or phone, a message full of links) is refused with the reason:
 * a call list is people's work, so it is not stored as a spam lead but
 * handed back in the rejected rows for its owner to see. */
static int intake_import_read_row(intake_import_row_t *row, size_t index,
                                  json_t *item, const char *list,
                                  const char *api_source, int64_t now_ms,
                                  const cv_spam_t *spam)
{
    row->line = (int64_t)index + 1;
    if (!json_is_object(item)) {
        intake_import_refuse(row, "invalid_row", NULL,
                             "a row must be an object with 'line' and "
                             "'lead'");
        return 0;
    }
    json_t *line = json_object_get(item, "line");
    if (line != NULL) {
        if (!json_is_integer(line) || json_integer_value(line) < 1) {
            intake_import_refuse(row, "invalid_row", "line",
                                 "'line' must be a positive integer");
            return 0;
        }
        row->line = (int64_t)json_integer_value(line);
    }
    json_t *lead = json_object_get(item, "lead");
    if (!json_is_object(lead)) {
        intake_import_refuse(row, "invalid_row", "lead",
                             "'lead' must be a JSON object");
        return 0;
    }
    if (intake_import_keep_in_extra(lead, "channel") != 0 ||
        intake_import_keep_in_extra(lead, "source") != 0)
        return -1;
    intake_lead_t *out = &row->sub.lead;
    if (intake_lead_from_json(lead, out, &row->error) != 0)
        return row->error.status >= 500 ? -1 : 0;
    char reason[160];
    cv_spam_lead_t check = {
        .message = out->message, .email = out->email, .phone = out->phone};
    if (spam != NULL &&
        cv_spam_check(spam, &check, reason, sizeof(reason)) == 1) {
        char message[200];
        snprintf(message, sizeof(message), "spam: %s", reason);
        intake_lead_clear(out);
        intake_import_refuse(row, "spam", "lead", message);
        return 0;
    }
    free(out->channel);
    free(out->source);
    out->channel = strdup(INTAKE_IMPORT_CHANNEL);
    out->source = strdup(list);
    out->api_source = strdup(api_source);
    out->received_at = now_ms;
    if (out->channel == NULL || out->source == NULL ||
        out->api_source == NULL || intake_submission_prepare(&row->sub) != 0)
        return -1;
    row->good = true;
    return 0;
}

/* The list name: trimmed text of 1 to INTAKE_IMPORT_SOURCE_MAX bytes
 * without control characters, into `out`. */
static bool intake_import_list_name(json_t *value, char *out, size_t size)
{
    if (!json_is_string(value))
        return false;
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || len > INTAKE_IMPORT_SOURCE_MAX || len + 1 > size)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return false;
    memcpy(out, text, len);
    out[len] = '\0';
    return true;
}

/* Reads the body into a new batch; on failure replies and returns the
 * status. */
static int intake_import_read(cv_http_request_t *req, const char *api_source,
                              const char *idempotency_key,
                              const cv_spam_t *spam, intake_import_t **batch_p)
{
    int status = 0;
    json_t *body = NULL;
    intake_import_t *batch = NULL;
    const char *media_type = cv_http_content_type(req);
    if (strcmp(media_type, "application/json") != 0) {
        cv_http_reply_error(req, 415, "unsupported_media_type", NULL,
                            "an import batch is application/json, not "
                            "'%.100s'",
                            media_type[0] != '\0' ? media_type : "nothing");
        return 415;
    }
    json_error_t parse_error;
    body = json_loadb(cv_http_body(req), cv_http_body_size(req),
                      JSON_REJECT_DUPLICATES, &parse_error);
    if (body == NULL) {
        cv_http_reply_error(req, 400, "invalid_json", NULL,
                            "invalid JSON at line %d, column %d: %s",
                            parse_error.line, parse_error.column,
                            parse_error.text);
        return 400;
    }
    char list[INTAKE_IMPORT_SOURCE_MAX + 1];
    json_t *rows = json_object_get(body, "rows");
    if (!json_is_object(body)) {
        status = 400;
        cv_http_reply_error(req, 400, "invalid_json", NULL,
                            "the body must be a JSON object with 'source' "
                            "and 'rows'");
    } else if (!intake_import_list_name(json_object_get(body, "source"), list,
                                        sizeof(list))) {
        status = 422;
        cv_http_reply_error(req, 422, "invalid_field", "source",
                            "'source' must name the list: 1 to %d bytes of "
                            "text",
                            INTAKE_IMPORT_SOURCE_MAX);
    } else if (!json_is_array(rows) || json_array_size(rows) == 0) {
        status = 422;
        cv_http_reply_error(req, 422, "invalid_field", "rows",
                            "'rows' must be a non-empty array of "
                            "{\"line\": n, \"lead\": {...}}");
    } else if (json_array_size(rows) > INTAKE_IMPORT_ROWS_MAX) {
        status = 413;
        cv_http_reply_error(req, 413, "too_many_rows", "rows",
                            "a batch holds at most %d rows, not %zu",
                            INTAKE_IMPORT_ROWS_MAX, json_array_size(rows));
    }
    if (status != 0)
        goto out;
    batch = calloc(1, sizeof(*batch));
    if (batch != NULL) {
        batch->rows = calloc(json_array_size(rows), sizeof(*batch->rows));
        batch->api_source = strdup(api_source);
        batch->idempotency_key = strdup(idempotency_key);
    }
    bool oom = batch == NULL || batch->rows == NULL ||
               batch->api_source == NULL || batch->idempotency_key == NULL;
    int64_t now_ms = cv_clock_now_ms();
    for (size_t i = 0; !oom && i < json_array_size(rows); i++) {
        batch->count = i + 1;
        oom =
            intake_import_read_row(&batch->rows[i], i, json_array_get(rows, i),
                                   list, api_source, now_ms, spam) != 0;
    }
    if (oom) {
        status = 503;
        cv_http_reply_error(req, 503, "out_of_memory", NULL,
                            "the server is out of memory");
        goto out;
    }
    /* the same key with another body is another batch: refused */
    cv_sha256_hex(media_type, strlen(media_type) + 1, cv_http_body(req),
                      cv_http_body_size(req), batch->body_hash);
out:
    json_decref(body);
    if (status != 0)
        intake_import_destroy(&batch);
    *batch_p = batch;
    return status;
}

int intake_import_post(intake_queue_t *queue, cv_http_request_t *req,
                       const char *api_source, const char *idempotency_key,
                       const cv_spam_t *spam)
{
    if (idempotency_key == NULL) {
        cv_http_reply_error(req, 400, "idempotency_key_required", NULL,
                            "an import batch needs an Idempotency-Key "
                            "header, so that a retry is never stored "
                            "twice");
        return 400;
    }
    intake_import_t *batch = NULL;
    int status =
        intake_import_read(req, api_source, idempotency_key, spam, &batch);
    if (status != 0)
        return status;
    intake_pending_t *item = calloc(1, sizeof(*item));
    if (item == NULL) {
        intake_import_destroy(&batch);
        cv_http_reply_error(req, 503, "out_of_memory", NULL,
                            "the server is out of memory");
        return 503;
    }
    item->req = req;
    item->batch = batch;
    cv_http_suspend(req);
    if (intake_queue_push(queue, item) != 0) {
        cv_http_reply_error(req, 503, "store_unavailable", NULL,
                            "intake is shutting down; try again");
        cv_http_resume(req);
        intake_pending_free(item);
        return 503;
    }
    return 0;
}

/* The per-row reply, in body order. */
static void intake_import_reply(const intake_import_t *batch, int imported,
                                int merged, int rejected, cv_jsonw_t *b)
{
    cv_jsonw_append(b, "{\"imported\":");
    cv_jsonw_int(b, imported);
    cv_jsonw_append(b, ",\"merged\":");
    cv_jsonw_int(b, merged);
    cv_jsonw_append(b, ",\"rejected\":");
    cv_jsonw_int(b, rejected);
    cv_jsonw_append(b, ",\"rows\":[");
    for (size_t i = 0; i < batch->count; i++) {
        const intake_import_row_t *row = &batch->rows[i];
        cv_jsonw_append(b, i == 0 ? "{\"line\":" : ",{\"line\":");
        cv_jsonw_int(b, (long long)row->line);
        if (!row->good) {
            cv_jsonw_append(b, ",\"status\":\"rejected\",\"error\":");
            cv_jsonw_string(b, row->error.code);
            if (row->error.field[0] != '\0') {
                cv_jsonw_append(b, ",\"field\":");
                cv_jsonw_string(b, row->error.field);
            }
            cv_jsonw_append(b, ",\"message\":");
            cv_jsonw_string(b, row->error.message);
        } else {
            cv_jsonw_append(b, row->write.merged
                                   ? ",\"status\":\"merged\",\"lead_id\":"
                                   : ",\"status\":\"imported\",\"lead_id\":");
            cv_jsonw_string(b, row->sub.lead.lead_id);
            if (row->write.merged) {
                cv_jsonw_append(b, ",\"duplicate_of\":");
                cv_jsonw_string(b, row->sub.lead.lead_id);
            }
        }
        cv_jsonw_append(b, "}");
    }
    cv_jsonw_append(b, "]}");
}

int intake_import_store(cv_bus_t *bus, intake_seen_t *seen,
                        intake_import_t *batch, intake_outcome_t *outcome)
{
    cv_store_t *store = cv_bus_store(bus);
    memset(outcome, 0, sizeof(*outcome));
    cv_jsonw_t reply;
    cv_jsonw_init(&reply);
    bool savepoint = false;
    if (intake_store_savepoint(store, "SAVEPOINT intake_import") != 0)
        goto fail;
    savepoint = true;
    int found = intake_store_idempotency_lookup(store, batch->api_source,
                                                batch->idempotency_key,
                                                batch->body_hash, NULL,
                                                outcome);
    if (found < 0)
        goto fail;
    if (found == 1) {
        /* a retry: answered as before, nothing stored again */
        if (intake_store_savepoint(store, "RELEASE intake_import") != 0)
            goto fail;
        return 0;
    }
    int imported = 0;
    int merged = 0;
    int rejected = 0;
    for (size_t i = 0; i < batch->count; i++) {
        intake_import_row_t *row = &batch->rows[i];
        if (!row->good) {
            rejected++;
            continue;
        }
        if (intake_store_match(store, seen, &row->sub, &row->write) != 0 ||
            intake_store_write(store, seen, &row->sub, &row->write) != 0)
            goto fail;
        if (row->write.merged)
            merged++;
        else
            imported++;
    }
    intake_import_reply(batch, imported, merged, rejected, &reply);
    if (reply.failed) {
        cv_error("out of memory answering an import batch of %zu rows",
                 batch->count);
        goto fail;
    }
    outcome->status = 200;
    outcome->reply = reply.data;
    cv_jsonw_init(&reply);
    if (intake_store_idempotency_put(store, batch->api_source,
                                     batch->idempotency_key, batch->body_hash,
                                     outcome, NULL) != 1 ||
        intake_store_savepoint(store, "RELEASE intake_import") != 0)
        goto fail;
    savepoint = false;
    outcome->leads_created = imported;
    outcome->leads_merged = merged;
    /* last, because what cv_bus_emit stages cannot be taken back alone */
    for (size_t i = 0; i < batch->count; i++) {
        const intake_import_row_t *row = &batch->rows[i];
        if (row->good && intake_store_emit(bus, &row->sub, &row->write) != 0)
            return -1;
    }
    return 0;
fail:
    if (savepoint &&
        (intake_store_savepoint(store, "ROLLBACK TO intake_import") != 0 ||
         intake_store_savepoint(store, "RELEASE intake_import") != 0))
        cv_log_warn("cannot undo a failed import batch in '%s'",
                    cv_store_path(store));
    cv_jsonw_clear(&reply);
    intake_outcome_clear(outcome);
    outcome->status = 503;
    outcome->reply = intake_store_error_reply(
        "store_unavailable",
        "the batch could not be stored (none of it was); try again");
    return 0;
}

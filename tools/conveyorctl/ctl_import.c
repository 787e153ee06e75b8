/* ctl_import: `conveyorctl import FILE.csv --source NAME`.
 *
 * Reads the call list record by record (common/cv_csv), maps the header to
 * lead fields (ctl_columns) and posts batches of rows to intake's
 * `POST /v1/import`. Rows this side can already tell are unusable (not
 * UTF-8, a wrong number of fields, a broken quote) never leave; intake
 * judges the rest with the rules of any lead and answers per row.
 *
 * Exactly once, even when killed at any moment:
 *   - a batch's Idempotency-Key is the SHA-256 of its body, and a body is
 *     fully determined by the file's bytes, the list name and the batch
 *     shape (rows and bytes per batch, kept in the state file). A batch
 *     re-sent after a crash — or an unchanged file imported again — is
 *     answered from intake's idempotency record and stored nothing new;
 *   - after each acknowledged batch the rows it rejected are appended (and
 *     synced) to FILE.csv.rejected.csv, then the resume point — the next
 *     batch's byte offset and line, the running totals and the size of the
 *     rejected file — replaces FILE.csv.import-state atomically;
 *   - a re-run finds the state, checks that the file is the same one (size,
 *     modification time, SHA-256 of its first 64 KiB) and the same list,
 *     cuts the rejected file back to the recorded size, and goes on.
 * A finished import removes its state file; the rejected file stays when
 * it lists something. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_HEAD_BYTES    (64 * 1024) /* hashed to recognise the file */
#define CTL_SHOW_REJECTED 10          /* rejected rows shown in the summary */
#define CTL_RETRY_FIRST_S 0.2         /* first pause before a retry */
#define CTL_RETRY_MAX_S   5.0         /* longest pause between retries */

static volatile sig_atomic_t ctl_interrupted;
static int64_t ctl_retries; /* batches sent again in this run */

static void ctl_on_signal(int sig)
{
    (void)sig;
    ctl_interrupted = 1;
}

static double ctl_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One row of the batch being built. */
typedef struct {
    int64_t line;   /* where it starts in the file */
    size_t csv_at;  /* its fields as a CSV line, in batch.csv */
    size_t csv_len; /* ... and how long that is */
    char *reason;   /* why it was rejected, or NULL (owned) */
    bool sent;      /* in the request body */
} ctl_row_t;

/* A batch: the request body, and what is needed to account for its rows
 * when intake answers. */
typedef struct {
    cv_jsonw_t body;              /* {"source": …, "rows": [...]} */
    cv_jsonw_t csv;               /* the rows re-encoded as CSV, for rejects */
    ctl_row_t *rows;              /* sent and refused-here rows, file order */
    size_t count;                 /* entries used in rows */
    size_t cap;                   /* entries allocated */
    size_t sent;                  /* rows in the body */
    int64_t end_offset;           /* where the next batch starts */
    int64_t end_line;             /* the line it starts on */
    bool eof;                     /* the file has no rows after it */
    char key[CTL_SHA256_HEX + 8]; /* its Idempotency-Key */
    bool done;                    /* answered, or nothing to send */
    int64_t imported;             /* intake's answer: new leads */
    int64_t merged;               /* ... repeat contacts */
    bool replayed;                /* ... from its idempotency record */
    double first_failure; /* when the first failed attempt ended, or 0 */
    double pause;         /* before the next retry */
} ctl_batch_t;

static void ctl_batch_reset(ctl_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++)
        free(b->rows[i].reason);
    b->count = 0;
    b->sent = 0;
    b->eof = false;
    b->done = false;
    b->imported = 0;
    b->merged = 0;
    b->replayed = false;
    b->first_failure = 0;
    b->pause = CTL_RETRY_FIRST_S;
    cv_jsonw_clear(&b->body);
    cv_jsonw_clear(&b->csv);
}

static void ctl_batch_free(ctl_batch_t *b)
{
    ctl_batch_reset(b);
    free(b->rows);
    b->rows = NULL;
    b->cap = 0;
}

static ctl_row_t *ctl_batch_add(ctl_batch_t *b, int64_t line)
{
    if (b->count == b->cap) {
        size_t cap = b->cap > 0 ? b->cap * 2 : 256;
        ctl_row_t *grown = realloc(b->rows, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        b->rows = grown;
        b->cap = cap;
    }
    ctl_row_t *row = &b->rows[b->count++];
    memset(row, 0, sizeof(*row));
    row->line = line;
    return row;
}

/* Appends one CSV field, quoted when it needs to be. */
static void ctl_csv_field(cv_jsonw_t *out, const char *text, size_t len,
                          char delimiter)
{
    bool quote = len > 0 && (text[0] == ' ' || text[len - 1] == ' ');
    for (size_t i = 0; i < len && !quote; i++)
        quote = text[i] == delimiter || text[i] == '"' || text[i] == '\n' ||
                text[i] == '\r';
    if (!quote) {
        cv_jsonw_raw(out, text, len);
        return;
    }
    cv_jsonw_raw(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') {
            cv_jsonw_raw(out, text + run, i + 1 - run);
            cv_jsonw_raw(out, "\"", 1);
            run = i + 1;
        }
    }
    cv_jsonw_raw(out, text + run, len - run);
    cv_jsonw_raw(out, "\"", 1);
}

/* Keeps the record as a CSV line in the batch, for the rejected file: its
 * fields re-quoted, or a malformed record's raw text as one field. */
static void ctl_batch_keep_csv(ctl_batch_t *b, ctl_row_t *row,
                               const cv_csv_record_t *r, char delimiter)
{
    row->csv_at = b->csv.length;
    if (r->error != NULL) {
        ctl_csv_field(&b->csv, r->raw, r->raw_length, delimiter);
    } else {
        for (size_t i = 0; i < r->count; i++) {
            if (i > 0)
                cv_jsonw_raw(&b->csv, &delimiter, 1);
            ctl_csv_field(&b->csv, r->fields[i], r->lengths[i], delimiter);
        }
    }
    row->csv_len = b->csv.length - row->csv_at;
}

/* Reads the batch that starts at byte `offset` (line `line`), where the
 * reader stands: up to batch_rows rows, and a body of at most batch_bytes
 * (a row that does not fit starts the next batch). 0, or -1 after saying
 * why. */
static int ctl_batch_read(ctl_batch_t *b, cv_csv_t *reader,
                          const ctl_columns_t *columns, const ctl_state_t *st,
                          int64_t offset, int64_t line, const char *path)
{
    ctl_batch_reset(b);
    cv_jsonw_t row_json;
    cv_jsonw_init(&row_json);
    char delimiter = cv_csv_delimiter(reader);
    b->end_offset = offset;
    b->end_line = line;
    cv_jsonw_append(&b->body, "{\"source\":");
    cv_jsonw_string(&b->body, st->source);
    cv_jsonw_append(&b->body, ",\"rows\":[");
    size_t closing = 2; /* "]}" */
    int rc = -1;
    while (b->count < (size_t)st->batch_rows) {
        cv_csv_record_t r;
        int got = cv_csv_next(reader, &r);
        if (got < 0) {
            ctl_error("cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (got == 0) {
            b->eof = true;
            break;
        }
        bool blank = false;
        char why[256];
        const char *reason =
            ctl_columns_check(columns, &r, &blank, why, sizeof(why));
        if (blank) {
            b->end_offset = r.next_offset;
            b->end_line = r.next_line;
            continue;
        }
        if (reason == NULL) {
            cv_jsonw_clear(&row_json);
            ctl_columns_row_json(columns, &r, &row_json);
            if (row_json.failed) {
                ctl_error("out of memory");
                goto out;
            }
            size_t need = row_json.length + (b->sent > 0 ? 1 : 0);
            if (b->body.length + need + closing > (size_t)st->batch_bytes) {
                if (b->sent > 0) {
                    /* the next batch starts with this row */
                    if (cv_csv_seek(reader, r.offset, r.line) != 0) {
                        ctl_error("cannot read '%s': %s", path,
                                  strerror(errno));
                        goto out;
                    }
                    break;
                }
                snprintf(why, sizeof(why),
                         "the row takes %zu bytes as JSON, more than one "
                         "request may (%lld)",
                         row_json.length, (long long)st->batch_bytes);
                reason = why;
            }
        }
        ctl_row_t *row = ctl_batch_add(b, r.line);
        if (row == NULL) {
            ctl_error("out of memory");
            goto out;
        }
        ctl_batch_keep_csv(b, row, &r, delimiter);
        if (reason != NULL) {
            row->reason = strdup(reason);
            if (row->reason == NULL) {
                ctl_error("out of memory");
                goto out;
            }
        } else {
            if (b->sent > 0)
                cv_jsonw_append(&b->body, ",");
            cv_jsonw_raw(&b->body, row_json.data, row_json.length);
            row->sent = true;
            b->sent++;
        }
        b->end_offset = r.next_offset;
        b->end_line = r.next_line;
    }
    cv_jsonw_append(&b->body, "]}");
    if (b->body.failed || b->csv.failed) {
        ctl_error("out of memory");
        goto out;
    }
    rc = 0;
out:
    cv_jsonw_clear(&row_json);
    return rc;
}

/* Applies intake's per-row answer to the batch. */
static int ctl_batch_answer(ctl_batch_t *b, const ctl_reply_t *reply)
{
    json_error_t error;
    json_t *root = json_loadb(reply->body, reply->size, 0, &error);
    json_t *rows = json_object_get(root, "rows");
    int rc = -1;
    if (!json_is_array(rows) || json_array_size(rows) != b->sent) {
        ctl_error("intake's answer does not match the batch (%zu rows "
                  "sent): %.200s",
                  b->sent, reply->body);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->count; i++) {
        ctl_row_t *row = &b->rows[i];
        if (!row->sent)
            continue;
        json_t *answer = json_array_get(rows, k++);
        const char *status =
            json_string_value(json_object_get(answer, "status"));
        if (status != NULL && strcmp(status, "imported") == 0) {
            b->imported++;
        } else if (status != NULL && strcmp(status, "merged") == 0) {
            b->merged++;
        } else {
            const char *message =
                json_string_value(json_object_get(answer, "message"));
            row->reason =
                strdup(message != NULL ? message : "rejected by intake");
            if (row->reason == NULL)
                goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Starts sending the batch on transfer slot `index`. 0 or -1. */
static int ctl_batch_start(ctl_batch_t *b, ctl_http_t *http, int index)
{
    if (b->key[0] == '\0') {
        char hex[CTL_SHA256_HEX];
        ctl_sha256_hex(b->body.data, b->body.length, hex);
        snprintf(b->key, sizeof(b->key), "csv-%s", hex);
    }
    return ctl_http_start(http, index, "/v1/import", b->key, b->body.data,
                          b->body.length);
}

/* Handles intake's reply to the batch on slot `index`: applies an answer
 * (done), or sends it again (same key) while intake is unreachable, busy
 * or restarting, for up to retry_for_s. 0, or -1 after saying why. */
static int ctl_batch_handle(ctl_batch_t *b, ctl_reply_t *reply,
                            ctl_http_t *http, const ctl_import_options_t *o,
                            int index)
{
    long status = reply->status;
    if (status == 200) {
        b->replayed = reply->replayed;
        if (ctl_batch_answer(b, reply) != 0)
            return -1;
        b->done = true;
        return 0;
    }
    bool transient = status == 0 || status == 429 || status == 502 ||
                     status == 503 || status == 504;
    char what[512];
    if (status == 0) {
        snprintf(what, sizeof(what), "%s", reply->error);
    } else {
        json_t *body = json_loadb(reply->body, reply->size, 0, NULL);
        const char *message =
            json_string_value(json_object_get(body, "message"));
        snprintf(what, sizeof(what), "%ld %s", status,
                 message != NULL ? message : reply->body);
        json_decref(body);
    }
    int64_t first = b->count > 0 ? b->rows[0].line : 0;
    int64_t last = b->count > 0 ? b->rows[b->count - 1].line : 0;
    if (status == 401 || status == 403)
        return ctl_error("intake at '%s' refused the API key: %s",
                         ctl_http_url(http), what);
    if (status == 413)
        return ctl_error("intake refused a batch of %zu bytes as too large "
                         "(%s); try --batch-rows with fewer rows",
                         b->body.length, what);
    if (!transient)
        return ctl_error("intake refused the batch of lines %lld-%lld: %s",
                         (long long)first, (long long)last, what);
    double now = ctl_clock();
    if (b->first_failure == 0)
        b->first_failure = now;
    if (now - b->first_failure > o->retry_for_s || ctl_interrupted)
        return ctl_error("intake at '%s' did not take the batch of lines "
                         "%lld-%lld for %.0f s: %s",
                         ctl_http_url(http), (long long)first, (long long)last,
                         now - b->first_failure, what);
    double wait =
        reply->retry_after_s > 0 ? (double)reply->retry_after_s : b->pause;
    if (wait > CTL_RETRY_MAX_S)
        wait = CTL_RETRY_MAX_S;
    struct timespec ts = {(time_t)wait,
                          (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL);
    b->pause = b->pause * 2 < CTL_RETRY_MAX_S ? b->pause * 2 : CTL_RETRY_MAX_S;
    ctl_retries++;
    return ctl_batch_start(b, http, index);
}

/* Appends the batch's rejected rows to the rejected file and syncs it, so
 * the state saved next never counts rows the file does not hold. */
static int ctl_rejects_write(FILE *out, const char *path, const ctl_batch_t *b,
                             char delimiter, ctl_state_t *st)
{
    bool wrote = false;
    for (size_t i = 0; i < b->count; i++) {
        const ctl_row_t *row = &b->rows[i];
        if (row->reason == NULL)
            continue;
        cv_jsonw_t line;
        cv_jsonw_init(&line);
        char number[32];
        int n = snprintf(number, sizeof(number), "%lld", (long long)row->line);
        cv_jsonw_raw(&line, number, (size_t)n);
        cv_jsonw_raw(&line, &delimiter, 1);
        ctl_csv_field(&line, row->reason, strlen(row->reason), delimiter);
        cv_jsonw_raw(&line, &delimiter, 1);
        cv_jsonw_raw(&line, b->csv.data + row->csv_at, row->csv_len);
        cv_jsonw_raw(&line, "\r\n", 2);
        bool ok = !line.failed &&
                  fwrite(line.data, 1, line.length, out) == line.length;
        cv_jsonw_clear(&line);
        if (!ok)
            return ctl_error("cannot write '%s': %s", path, strerror(errno));
        st->rejected++;
        wrote = true;
    }
    if (wrote && (fflush(out) != 0 || fsync(fileno(out)) != 0))
        return ctl_error("cannot write '%s': %s", path, strerror(errno));
    off_t size = ftello(out);
    if (size < 0)
        return ctl_error("cannot write '%s': %s", path, strerror(errno));
    st->rejected_bytes = (int64_t)size;
    return 0;
}

/* Opens the rejected-rows file: a new one with the header ("line",
 * "reason" and the file's own columns), or, when resuming, the old one
 * cut back to what the saved state counted. NULL after saying why. */
static FILE *ctl_rejects_open(const char *path, const cv_csv_record_t *header,
                              char delimiter, ctl_state_t *st, bool resume)
{
    if (resume) {
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size >= st->rejected_bytes &&
            st->rejected_bytes > 0) {
            FILE *f = fopen(path, "r+b");
            if (f == NULL ||
                ftruncate(fileno(f), (off_t)st->rejected_bytes) != 0 ||
                fseeko(f, 0, SEEK_END) != 0) {
                ctl_error("cannot reopen '%s': %s", path, strerror(errno));
                if (f != NULL)
                    fclose(f);
                return NULL;
            }
            return f;
        }
        if (st->rejected > 0)
            ctl_note("'%s' is missing or shorter than before; the rows "
                     "rejected earlier are no longer listed in it",
                     path);
    }
    FILE *f = fopen(path, "w+b");
    if (f == NULL) {
        ctl_error("cannot create '%s': %s", path, strerror(errno));
        return NULL;
    }
    cv_jsonw_t line;
    cv_jsonw_init(&line);
    /* a BOM when the list had one: Excel then reads the file as UTF-8 */
    if (header->offset == 3)
        cv_jsonw_append(&line, "\xEF\xBB\xBF");
    cv_jsonw_append(&line, "line");
    cv_jsonw_raw(&line, &delimiter, 1);
    cv_jsonw_append(&line, "reason");
    for (size_t i = 0; i < header->count; i++) {
        cv_jsonw_raw(&line, &delimiter, 1);
        ctl_csv_field(&line, header->fields[i], header->lengths[i], delimiter);
    }
    cv_jsonw_raw(&line, "\r\n", 2);
    bool ok = !line.failed &&
              fwrite(line.data, 1, line.length, f) == line.length &&
              fflush(f) == 0;
    cv_jsonw_clear(&line);
    if (!ok) {
        ctl_error("cannot write '%s': %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    st->rejected_bytes = (int64_t)ftello(f);
    return f;
}

/* The first rejected rows, read back from the rejected file (so that a
 * resumed import shows those of earlier runs too). */
static void ctl_rejects_show(const char *path, char delimiter, FILE *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    cv_csv_t *reader = cv_csv_new(f, delimiter, 0);
    cv_csv_record_t r;
    int shown = -1; /* the header first */
    while (reader != NULL && shown < CTL_SHOW_REJECTED &&
           cv_csv_next(reader, &r) == 1) {
        if (shown >= 0 && r.error == NULL && r.count >= 2)
            fprintf(out, "    line %s: %s\n", r.fields[0], r.fields[1]);
        shown++;
    }
    cv_csv_destroy(&reader);
    fclose(f);
}

/* The file's identity: size, modification time, SHA-256 of its head. */
static int ctl_identity(FILE *f, const char *path, ctl_state_t *st)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        return ctl_error("cannot read '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return ctl_error("'%s' is not a regular file", path);
    st->size = (int64_t)sb.st_size;
    st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    char *head = malloc(CTL_HEAD_BYTES);
    if (head == NULL)
        return ctl_error("out of memory");
    size_t n = fread(head, 1, CTL_HEAD_BYTES, f);
    bool failed = ferror(f) != 0;
    if (!failed)
        ctl_sha256_hex(head, n, st->head);
    bool utf16 =
        n >= 2 &&
        ((unsigned char)head[0] == 0xFF || (unsigned char)head[0] == 0xFE) &&
        ((unsigned char)head[1] == 0xFE || (unsigned char)head[1] == 0xFF) &&
        head[0] != head[1];
    free(head);
    if (failed || fseeko(f, 0, SEEK_SET) != 0)
        return ctl_error("cannot read '%s': %s", path, strerror(errno));
    if (utf16)
        return ctl_error("'%s' is UTF-16 text; save it as CSV UTF-8", path);
    return 0;
}

/* The summary: human lines, or one JSON object with --json. */
static void ctl_summary(const ctl_import_options_t *o, const ctl_state_t *st,
                        int64_t run_rows, double run_s, bool resumed,
                        const char *rejected_path, char delimiter)
{
    double rate = run_s > 0 ? (double)run_rows / run_s : 0;
    if (o->json) {
        json_t *j = json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, "
            "s:b}",
            "file", o->file, "source", st->source, "rows", (json_int_t)st->rows,
            "imported", (json_int_t)st->imported, "merged",
            (json_int_t)st->merged, "rejected", (json_int_t)st->rejected,
            "batches", (json_int_t)st->batches, "replayed_batches",
            (json_int_t)st->replayed, "run_rows", (json_int_t)run_rows,
            "retries", (json_int_t)ctl_retries, "seconds", run_s, "rows_per_s",
            rate, "resumed", resumed);
        if (j != NULL && st->rejected > 0)
            json_object_set_new(j, "rejected_file", json_string(rejected_path));
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(j);
        return;
    }
    printf("conveyorctl: imported '%s' into source '%s'%s\n", o->file,
           st->source, resumed ? " (resumed)" : "");
    printf("  rows      %10lld  %lld in this run, %.1f s, %.0f rows/s\n",
           (long long)st->rows, (long long)run_rows, run_s, rate);
    printf("  imported  %10lld  new leads\n", (long long)st->imported);
    printf("  merged    %10lld  repeat contacts, folded into existing "
           "leads\n",
           (long long)st->merged);
    if (ctl_retries > 0)
        printf("  (%lld attempt%s failed while intake was unreachable or "
               "busy, and were retried)\n",
               (long long)ctl_retries, ctl_retries == 1 ? "" : "s");
    if (st->replayed > 0)
        printf("  (%lld batch%s already in intake, not stored again)\n",
               (long long)st->replayed, st->replayed == 1 ? " was" : "es were");
    if (st->rejected == 0) {
        printf("  rejected  %10d\n", 0);
        return;
    }
    printf("  rejected  %10lld  all listed in '%s'%s\n",
           (long long)st->rejected, rejected_path,
           st->rejected > CTL_SHOW_REJECTED ? "; the first:" : ":");
    fflush(stdout);
    ctl_rejects_show(rejected_path, delimiter, stdout);
}

int ctl_import_run(const ctl_import_options_t *o)
{
    int status = CTL_EXIT_FAILED;
    char state_path[4096];
    char rejected_path[4096];
    FILE *csv = NULL;
    FILE *rejects = NULL;
    cv_csv_t *reader = NULL;
    ctl_columns_t *columns = NULL;
    ctl_http_t *http = NULL;
    ctl_progress_t *progress = NULL;
    ctl_batch_t *ring = NULL; /* the batches under way, in file order */
    ctl_state_t st = {0};     /* the resume point and totals */
    ctl_state_t now = {0};    /* the file as it is now */
    if (snprintf(state_path, sizeof(state_path), "%s.import-state", o->file) >=
            (int)sizeof(state_path) ||
        snprintf(rejected_path, sizeof(rejected_path), "%s.rejected.csv",
                 o->file) >= (int)sizeof(rejected_path)) {
        ctl_error("path '%s' is too long", o->file);
        goto out;
    }
    csv = fopen(o->file, "rb");
    if (csv == NULL) {
        ctl_error("cannot open '%s': %s", o->file, strerror(errno));
        goto out;
    }
    /* one import of a file at a time: both would write its state */
    if (flock(fileno(csv), LOCK_EX | LOCK_NB) != 0) {
        ctl_error(errno == EWOULDBLOCK
                      ? "'%s' is being imported by another conveyorctl"
                      : "cannot lock '%s'",
                  o->file);
        goto out;
    }
    if (ctl_identity(csv, o->file, &now) != 0)
        goto out;
    int loaded = o->restart ? 0 : ctl_state_load(state_path, &st);
    if (loaded < 0)
        goto out;
    bool resume = loaded == 1;
    if (resume && (st.size != now.size || st.mtime_ns != now.mtime_ns ||
                   strcmp(st.head, now.head) != 0)) {
        ctl_error("'%s' changed since its import was interrupted (state in "
                  "'%s'); run with --restart to import it from the start "
                  "(rows already stored are merged, not doubled)",
                  o->file, state_path);
        goto out;
    }
    if (resume && strcmp(st.source, o->source) != 0) {
        ctl_error("the interrupted import of '%s' was into source '%s', "
                  "not '%s'; use that source, or --restart",
                  o->file, st.source, o->source);
        goto out;
    }
    if (!resume) {
        st = now;
        snprintf(st.source, sizeof(st.source), "%s", o->source);
        st.batch_rows = o->batch_rows;
        st.batch_bytes = (int64_t)o->batch_bytes;
    } else if (st.batch_rows != o->batch_rows ||
               st.batch_bytes != (int64_t)o->batch_bytes) {
        /* the same batches as before, so a re-sent one has its old key */
        ctl_note("resuming with the batch size the import began with (%d "
                 "rows)",
                 st.batch_rows);
    }
    reader = cv_csv_new(csv, o->delimiter, 0);
    if (reader == NULL) {
        ctl_error("out of memory");
        goto out;
    }
    cv_csv_record_t header;
    int got = cv_csv_next(reader, &header);
    if (got < 0) {
        ctl_error("cannot read '%s': %s", o->file, strerror(errno));
        goto out;
    }
    if (got == 0 || header.error != NULL) {
        ctl_error("'%s' has no usable header line%s%s", o->file,
                  got == 0 ? "" : ": ", got == 0 ? "" : header.error);
        goto out;
    }
    bool blank = false;
    char why[256];
    columns = ctl_columns_new(&header);
    if (columns == NULL) {
        ctl_error("out of memory");
        goto out;
    }
    if (ctl_columns_check(columns, &header, &blank, why, sizeof(why)) != NULL &&
        strstr(why, "UTF-8") != NULL) {
        ctl_error("the header of '%s' is not UTF-8 text; save the file as "
                  "CSV UTF-8 (Excel: Save As, \"CSV UTF-8\")",
                  o->file);
        goto out;
    }
    if (ctl_columns_no_contact(columns)) {
        cv_jsonw_t names;
        cv_jsonw_init(&names);
        for (size_t i = 0; i < ctl_columns_count(columns); i++) {
            cv_jsonw_append(&names, i > 0 ? "', '" : "'");
            cv_jsonw_append(&names, ctl_columns_name(columns, i));
        }
        cv_jsonw_append(&names, "'");
        ctl_error("'%s' has no phone, email or telegram column (its "
                  "columns: %s); name one \"phone\"/\"Телефон\", "
                  "\"email\" or \"telegram\"",
                  o->file, names.data != NULL ? names.data : "");
        cv_jsonw_clear(&names);
        goto out;
    }
    char delimiter = cv_csv_delimiter(reader);
    if (!resume) {
        st.offset = header.next_offset;
        st.line = header.next_line;
    } else if (cv_csv_seek(reader, st.offset, st.line) != 0) {
        ctl_error("cannot read '%s': %s", o->file, strerror(errno));
        goto out;
    }
    rejects = ctl_rejects_open(rejected_path, &header, delimiter, &st, resume);
    if (rejects == NULL)
        goto out;
    http = ctl_http_new(o->intake, o->key, o->parallel);
    if (http == NULL)
        goto out;
    ring = calloc((size_t)o->parallel, sizeof(*ring));
    if (ring == NULL) {
        ctl_error("out of memory");
        goto out;
    }
    for (int i = 0; i < o->parallel; i++) {
        cv_jsonw_init(&ring[i].body);
        cv_jsonw_init(&ring[i].csv);
    }
    if (resume && !o->json)
        ctl_note("resuming '%s' at line %lld: %lld rows done in %lld "
                 "batches",
                 o->file, (long long)st.line, (long long)st.rows,
                 (long long)st.batches);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ctl_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    progress = ctl_progress_new(st.size, o->quiet || o->json);
    double started = ctl_clock();
    double seconds_before = st.seconds;
    int64_t run_rows = 0;
    /* batches are read and sent ahead, `parallel` at most, but counted,
     * written to the rejected file and saved as the resume point strictly
     * in file order: a batch answered early waits for those before it */
    int64_t read_offset = st.offset;
    int64_t read_line = st.line;
    bool read_all = false;
    int head = 0;
    int used = 0;
    for (;;) {
        while (used < o->parallel && !read_all && !ctl_interrupted) {
            int index = (head + used) % o->parallel;
            ctl_batch_t *b = &ring[index];
            if (ctl_batch_read(b, reader, columns, &st, read_offset, read_line,
                               o->file) != 0)
                goto out;
            if (b->count == 0 && b->end_offset == read_offset) {
                read_all = true; /* nothing left */
                break;
            }
            read_offset = b->end_offset;
            read_line = b->end_line;
            read_all = b->eof;
            b->key[0] = '\0';
            if (b->sent == 0)
                b->done = true;
            else if (ctl_batch_start(b, http, index) != 0)
                goto out;
            used++;
        }
        if (used == 0)
            break;
        ctl_batch_t *oldest = &ring[head];
        while (!oldest->done) {
            int index = 0;
            ctl_reply_t reply;
            int got = ctl_http_wait(http, &index, &reply);
            if (got <= 0) {
                if (got == 0)
                    ctl_error("no answer under way for the batch at line "
                              "%lld",
                              (long long)st.line);
                goto out;
            }
            int rc = ctl_batch_handle(&ring[index], &reply, http, o, index);
            ctl_reply_clear(&reply);
            if (rc != 0)
                goto out;
        }
        if (ctl_rejects_write(rejects, rejected_path, oldest, delimiter, &st) !=
            0)
            goto out;
        st.rows += (int64_t)oldest->count;
        st.imported += oldest->imported;
        st.merged += oldest->merged;
        st.replayed += oldest->replayed ? 1 : 0;
        run_rows += (int64_t)oldest->count;
        st.offset = oldest->end_offset;
        st.line = oldest->end_line;
        if (oldest->count > 0)
            st.batches++;
        st.seconds = seconds_before + (ctl_clock() - started);
        if (ctl_state_save(state_path, &st) != 0)
            goto out;
        ctl_progress_update(progress, st.offset, run_rows, &st);
        head = (head + 1) % o->parallel;
        used--;
        if (ctl_interrupted) {
            ctl_progress_finish(progress);
            ctl_error("interrupted at line %lld; run the same command "
                      "again to resume",
                      (long long)st.line);
            goto out;
        }
    }
    ctl_progress_finish(progress);
    double run_s = ctl_clock() - started;
    fclose(rejects);
    rejects = NULL;
    if (st.rejected == 0)
        unlink(rejected_path);
    unlink(state_path);
    ctl_summary(o, &st, run_rows, run_s, resume, rejected_path, delimiter);
    status = st.rejected > 0 ? CTL_EXIT_REJECTED : CTL_EXIT_DONE;
out:
    ctl_progress_destroy(&progress);
    /* transfers still under way end with the client */
    ctl_http_destroy(&http);
    for (int i = 0; ring != NULL && i < o->parallel; i++)
        ctl_batch_free(&ring[i]);
    free(ring);
    /* a rejected file with nothing but its header says nothing */
    if (rejects != NULL && st.rejected == 0)
        unlink(rejected_path);
    ctl_columns_destroy(&columns);
    cv_csv_destroy(&reader);
    if (rejects != NULL)
        fclose(rejects);
    if (csv != NULL)
        fclose(csv);
    return status;
}

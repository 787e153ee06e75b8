/* conveyorctl: the operator's command-line tool.
 *
 *   conveyorctl import FILE.csv --source NAME [options]
 *
 * imports a call list for tier-1 cold calling through intake's
 * `POST /v1/import` (services/intake/intake_import.h):
 *
 *   ctl_import:   the run — batches, replies, the rejected-rows file,
 *                 the summary, and resuming after an interruption
 *   ctl_columns:  the header's columns as lead fields; a row as JSON
 *   ctl_state:    the resume point, kept next to the file
 *   ctl_http:     one keep-alive libcurl connection to intake
 *   ctl_progress: the progress bar (or periodic lines)
 *
 * Messages go to stderr as "conveyorctl: <what>" in git's style; the
 * summary goes to stdout. */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cv_csv.h"
#include "cv_jsonw.h"

/* Exit statuses of `conveyorctl import`. */
#define CTL_EXIT_DONE     0 /* every row imported or merged */
#define CTL_EXIT_REJECTED 1 /* finished; some rows rejected (listed) */
#define CTL_EXIT_FAILED                                                        \
    2 /* not finished: bad usage, unreadable file,                             \
         intake unreachable or refusing; the state                             \
         file (if any) lets a re-run resume */

#define CTL_SHA256_HEX 65 /* 64 hex digits and the NUL */

/* Prints "conveyorctl: <message>" to stderr; returns -1. */
int ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same without returning anything, for notes. */
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SHA-256 of `size` bytes as lower-case hex. */
void ctl_sha256_hex(const void *data, size_t size, char hex[CTL_SHA256_HEX]);

/* --- ctl_import --- */
typedef struct {
    const char *file;   /* the CSV file */
    const char *source; /* the list's name (lead `source`) */
    const char *intake; /* "host:port" or a base URL */
    const char *key;    /* intake API key */
    char delimiter;     /* forced delimiter, or 0 to detect */
    int batch_rows;     /* rows per request */
    size_t batch_bytes; /* request body bytes per batch, about */
    double retry_for_s; /* how long one batch is retried */
    int parallel;       /* batches in flight at once */
    bool restart;       /* discard an interrupted import's state */
    bool json;          /* the summary as one JSON line */
    bool quiet;         /* no progress */
} ctl_import_options_t;

/* Runs the import; returns a CTL_EXIT_* status. */
int ctl_import_run(const ctl_import_options_t *options);

/* --- ctl_columns --- */
typedef struct ctl_columns ctl_columns_t;

/* The columns of the header record: each a lead field ("phone") by its
 * English or Russian name, or an `extra` member under its own (made
 * unique) name. NULL when out of memory. */
ctl_columns_t *ctl_columns_new(const cv_csv_record_t *header);
void ctl_columns_destroy(ctl_columns_t **self_p);
size_t ctl_columns_count(const ctl_columns_t *self);
/* The lead field of column i, or NULL when it goes to `extra`. */
const char *ctl_columns_field(const ctl_columns_t *self, size_t i);
/* The column's name as in the header. */
const char *ctl_columns_name(const ctl_columns_t *self, size_t i);
/* True when no column is a contact (phone, email, telegram). */
bool ctl_columns_no_contact(const ctl_columns_t *self);

/* Checks a data record against the header: NULL when it can be sent,
 * else why not, into `why` ("not UTF-8 text in column 'Имя'"). A record
 * whose cells are all empty sets *blank (skipped, not a row). */
const char *ctl_columns_check(const ctl_columns_t *self,
                              const cv_csv_record_t *record, bool *blank,
                              char *why, size_t why_size);

/* Appends {"line": n, "lead": {...}} for a checked record. */
void ctl_columns_row_json(const ctl_columns_t *self,
                          const cv_csv_record_t *record, cv_jsonw_t *out);

/* --- ctl_state --- */
typedef struct {
    int64_t size;              /* the file's size */
    int64_t mtime_ns;          /* its modification time, ns */
    char head[CTL_SHA256_HEX]; /* SHA-256 of its first 64 KiB */
    char source[256];          /* the list name */
    int batch_rows;            /* the batch shape the run began with */
    int64_t batch_bytes;       /* ... */
    int64_t offset;            /* where the next batch starts */
    int64_t line;              /* the line it starts on */
    int64_t batches;           /* batches acknowledged */
    int64_t rows;              /* rows decided (sent or refused here) */
    int64_t imported;          /* new leads */
    int64_t merged;            /* repeat contacts */
    int64_t rejected;          /* rows refused, here or by intake */
    int64_t replayed;          /* batches intake had already stored */
    int64_t rejected_bytes;    /* size of the rejected-rows file */
    double seconds;            /* time spent in earlier runs */
} ctl_state_t;

/* Reads `path`: 1 with `state` filled, 0 when there is no such file, -1
 * when it cannot be read or makes no sense (said why). */
int ctl_state_load(const char *path, ctl_state_t *state);
/* Replaces `path` atomically (temporary file, fsync, rename). 0 or -1. */
int ctl_state_save(const char *path, const ctl_state_t *state);

/* --- ctl_http --- */
typedef struct ctl_http ctl_http_t;

/* A reply: status 0 when no HTTP reply came (then `error` says why). */
typedef struct {
    long status;        /* HTTP status, or 0 */
    char *body;         /* NUL-terminated (owned) */
    size_t size;        /* bytes in body */
    bool replayed;      /* Idempotent-Replayed: true */
    long retry_after_s; /* Retry-After, or -1 */
    char error[256];    /* the transport error, when status is 0 */
} ctl_reply_t;

/* A client for `intake` ("host:port" or "http://host:port") with `slots`
 * transfers at once, each on its own keep-alive connection. NULL after
 * saying why. */
ctl_http_t *ctl_http_new(const char *intake, const char *key, int slots);
void ctl_http_destroy(ctl_http_t **self_p);
/* Starts POSTing a JSON body to `path` with the Idempotency-Key on slot
 * `index` (not busy). `body` must stay valid until the slot's reply comes
 * from ctl_http_wait. 0 or -1. */
int ctl_http_start(ctl_http_t *self, int index, const char *path,
                   const char *idempotency_key, const char *body, size_t size);
/* Waits for any started transfer to end: 1 with its slot in *index and
 * its reply (any status, or a transport error) moved into `reply`, 0 when
 * none is under way, -1 when libcurl itself fails. */
int ctl_http_wait(ctl_http_t *self, int *index, ctl_reply_t *reply);
void ctl_reply_clear(ctl_reply_t *reply);
/* The base URL in use, for messages. */
const char *ctl_http_url(const ctl_http_t *self);

/* --- ctl_progress --- */
typedef struct ctl_progress ctl_progress_t;

/* Progress of reading `total_bytes` on stderr: a redrawn bar on a
 * terminal, a line every few seconds otherwise, nothing when quiet. */
ctl_progress_t *ctl_progress_new(int64_t total_bytes, bool quiet);
void ctl_progress_destroy(ctl_progress_t **self_p);
/* Reports the position: bytes read so far, rows decided in this run, and
 * the totals so far. Draws at most ten times a second. */
void ctl_progress_update(ctl_progress_t *self, int64_t bytes, int64_t rows,
                         const ctl_state_t *totals);
/* Ends the bar's line (before other output). */
void ctl_progress_finish(ctl_progress_t *self);

#endif

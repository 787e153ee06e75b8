/* conveyor-bench: throughput and end-to-end latency of the whole conveyor.
 *
 * A load generator posts leads to intake over keep-alive connections; a
 * sink receives the webhook notifications that the notifier sends to the
 * staff the leads were routed to. The time from intake's 202 for a lead to
 * the first notification naming it is its end-to-end latency (and from its
 * scheduled send, the 202's wait included, a stricter figure beside it).
 * Both halves live in one process and read the same monotonic clock.
 *
 *   bench_table: lead id -> request and first arrival, shared by both
 *   bench_sink:  the HTTP server that receives notifications
 *   bench_load:  the open-loop (fixed rate) or closed-loop generator
 *   bench_stats: percentiles, the resident memory of the services, and
 *                the CPU time the host took (steal)
 *   bench_probe: how fast the machine syncs and wakes, alone */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cv_clock.h"

#define BENCH_ID_MAX 64     /* longest lead id kept, with its NUL */
#define BENCH_PROCS_MAX 32  /* services whose memory is sampled */

/* Times are cv_clock_monotonic_us(): one clock for sends and arrivals. */

/* --- bench_table: which leads this run sent and when each arrived --- */
typedef struct bench_table bench_table_t;

/* Returns NULL when out of memory. */
bench_table_t *bench_table_new(void);
/* NULL-safe; nulls *self_p. */
void bench_table_destroy(bench_table_t **self_p);
/* The sink saw a notification for `lead_id` at `us`; only the first one
 * counts, later ones are counted as repeats. Thread-safe. */
void bench_table_arrive(bench_table_t *self, const char *lead_id, int64_t us);
/* Intake accepted `lead_id` as request `request` of this run. */
void bench_table_expect(bench_table_t *self, const char *lead_id,
                        int64_t request);
/* First arrival time of `lead_id`, or 0 when none arrived. */
int64_t bench_table_arrival(bench_table_t *self, const char *lead_id);

typedef struct {
    size_t expected;    /* leads intake accepted in this run */
    size_t matched;     /* of those, how many were notified */
    size_t arrivals;    /* distinct lead ids notified */
    size_t repeats;     /* notifications for a lead already notified */
    size_t unexpected;  /* lead ids not sent by this run (older runs) */
    size_t dropped;     /* ids not recorded for lack of memory */
} bench_table_counts_t;

void bench_table_counts(bench_table_t *self, bench_table_counts_t *counts);

/* --- bench_json: the few top-level strings the bench reads from JSON ---
 *
 * A validating skim with no allocation, for the two bodies the bench reads
 * thousands of times a second (intake's 202 reply, the notifier's webhook
 * body): it answers only when it is sure what jansson (json_loadb without
 * flags) would make of the body, and says "not sure" otherwise (escapes
 * in a key, \u0000, an exponent, very long integers, deep nesting, a body
 * that is not an object), so a caller that then asks jansson gets exactly
 * the results it always got, only cheaper. */
typedef enum {
    BENCH_JSON_ABSENT,     /* the key does not occur at the top level */
    BENCH_JSON_STRING,     /* its value is a string */
    BENCH_JSON_OTHER,      /* its value is a number, literal, object... */
} bench_json_type_t;

typedef struct {
    const char *key;       /* in: the top-level key (no escapes needed) */
    int count;             /* out: how often it occurs at the top level */
    bench_json_type_t type; /* out: the type of its last value */
    bool plain;            /* out: a string value without escapes */
    const char *value;     /* out: a plain value, inside the body, not
                              NUL-terminated; NULL otherwise */
    size_t len;            /* out: bytes of a plain value */
} bench_json_field_t;

/* Fills `fields` from the top-level object `body` (`len` bytes). Returns
 * 0 when the body is certainly a JSON object jansson accepts, -1 when the
 * skim is not sure (then the fields mean nothing; ask jansson). */
int bench_json_scan(const char *body, size_t len, bench_json_field_t *fields,
                    size_t nfields);

/* Copies a plain value (field->value, field->len bytes) into `out` as
 * snprintf(out, size, "%s") would: cut to size - 1 bytes and
 * NUL-terminated; nothing when size is 0. */
void bench_json_copy(const bench_json_field_t *field, char *out,
                     size_t size);

/* The lead a notification body names, as bench_sink reads it: the first
 * non-empty string "lead_id" of a depth-first search of the JSON (a few
 * levels deep), copied into `out`; "" when the body names none (or is not
 * JSON). Takes the skim when it is sure, jansson otherwise. */
void bench_sink_lead_id(const char *body, size_t len, char *out,
                        size_t size);

/* Whether CONVEYOR_BENCH_VERIFY is "1": the sink and the generator then
 * also read or write every body the old way (jansson, printf) and report
 * each difference on stderr. Each reads it once, when it starts. */
bool bench_verify(void);

/* Compares the skim against jansson on realistic and awkward bodies and
 * the load generator's request formatting against printf; prints each
 * difference. Returns the number of differences (0: all agree). */
int bench_sink_self_check(void);
int bench_load_self_check(void);

/* --- bench_sink: receives webhook notifications --- */
typedef struct bench_sink bench_sink_t;

typedef struct {
    size_t requests;    /* every request the sink answered */
    size_t no_lead;     /* POSTs in which no lead id could be found */
} bench_sink_counts_t;

/* Listens on 127.0.0.1:`port` (0 picks a free one) and records every
 * notification into `table`. Returns NULL after printing why. */
bench_sink_t *bench_sink_start(int port, bench_table_t *table);
/* Stops the server. NULL-safe; nulls *self_p. */
void bench_sink_destroy(bench_sink_t **self_p);
int bench_sink_port(const bench_sink_t *self);
void bench_sink_counts(const bench_sink_t *self, bench_sink_counts_t *out);

/* --- bench_stats: memory of the services under test --- */
typedef struct {
    char name[64];      /* service name, e.g. "intake" */
    pid_t pid;          /* its process */
    double last_mb;     /* VmRSS at the last sample */
    double peak_mb;     /* largest VmRSS sampled during the run */
    long long cpu_first_ticks; /* utime + stime at the first sample */
    long long cpu_last_ticks;  /* utime + stime at the last sample */
} bench_proc_t;

typedef struct {
    bench_proc_t procs[BENCH_PROCS_MAX]; /* the sampled services */
    size_t count;                        /* how many of procs are used */
} bench_rss_t;

/* Adds "name=pid". Returns 0, or -1 when the text is not of that form or
 * the list is full. */
int bench_rss_add(bench_rss_t *rss, const char *spec);
/* Reads VmRSS and CPU time of every process; a vanished one keeps its
 * old figures. */
void bench_rss_sample(bench_rss_t *rss);
/* CPU seconds (user + system) process `i` used between the first and the
 * last sample. */
double bench_rss_cpu_s(const bench_rss_t *rss, size_t i);

/* The value at quantile `q` (0..1) of `values`, which it sorts in place;
 * 0 when `count` is 0. */
int64_t bench_quantile(int64_t *values, size_t count, double q);

/* --- the machine: what the host leaves the conveyor --- */
typedef struct {
    unsigned long long total;  /* jiffies of all CPUs, steal included */
    unsigned long long steal;  /* of those, run by the host for others */
} bench_cpu_times_t;

/* Reads the "cpu" line of /proc/stat. 0, or -1 when it cannot. */
int bench_cpu_times(bench_cpu_times_t *out);
/* Percent of the CPUs' time between two readings the host took away
 * (steal); -1 when nothing was counted between them. */
double bench_steal_pct(const bench_cpu_times_t *from,
                       const bench_cpu_times_t *to);

/* --- bench_probe: how fast this machine syncs and wakes, alone ---
 *
 * Every stage commits with fdatasync and is woken by the kernel; a lead's
 * way holds about five of each in a row, so their tail on this machine is
 * a floor under the conveyor's. The probe measures both without the
 * conveyor: it overwrites a 4 KiB block of a file and syncs it (as a WAL
 * commit does), then sleeps 1 ms and notes how late it woke, in a loop. */
typedef struct {
    size_t samples;          /* syncs (and sleeps) timed */
    int64_t sync_us[4];      /* fdatasync: p50, p99, p99.9, max */
    int64_t late_us[4];      /* a 1 ms sleep woke this late: the same */
} bench_probe_result_t;

/* Probes for `seconds` with a scratch file in `dir` (removed after).
 * Returns 0, or -1 after printing why. */
int bench_probe_run(const char *dir, double seconds,
                    bench_probe_result_t *out);

/* --- bench_load: the generator --- */
typedef struct {
    char host[256];        /* intake host (numeric or name) */
    int port;              /* intake port */
    const char *key;       /* intake API key (Bearer) */
    int connections;       /* keep-alive connections */
    bool saturate;         /* closed loop instead of a fixed rate */
    double rate;           /* leads per second (open loop) */
    double duration_s;     /* how long requests are issued */
    int tag;               /* 0..99, makes phones unique per run */
    char run_id[32];       /* random hex, makes emails unique per run */
    size_t max_pending;    /* saturate: accepted but not yet notified
                              leads allowed at once, 0 = no limit */
    double drain_s;        /* wait for replies after the last send */
} bench_load_options_t;

typedef struct {
    int64_t sched_us;      /* when it was due (open loop) or sent */
    int64_t sent_us;       /* when its last attempt was written */
    int64_t ack_us;        /* when intake's reply was read, 0 if none */
    int status;            /* HTTP status, 0 when no reply */
    int attempts;          /* sends, > 1 after a broken connection */
    bool merged;           /* intake folded it into another lead */
    char lead_id[BENCH_ID_MAX]; /* from the 202 reply */
} bench_request_t;

typedef struct {
    bench_request_t *requests; /* one per issued request, owned */
    size_t issued;             /* requests issued */
    int64_t t0_us;             /* the first scheduled send */
    int64_t send_end_us;       /* when issuing stopped */
    size_t by_status[600];     /* replies per HTTP status */
    size_t failed;             /* requests sent but given up without a
                                  reply */
    size_t unsent;             /* open loop: requests still waiting for a
                                  free connection when the run gave up */
    size_t timed_out;          /* requests still waiting for their reply
                                  when the run gave up: a conveyor slower
                                  than the offered rate, not an error */
    size_t conn_errors;        /* connections broken or refused */
    size_t bad_replies;        /* 202s without a usable lead_id */
    double steal_pct;          /* share of the CPUs' time the host gave
                                  to others while it ran (steal), -1 when
                                  /proc/stat could not be read */
} bench_load_result_t;

/* Runs the generator to completion; every accepted lead is registered in
 * `table`, and `rss` is sampled along the way. Returns 0, or -1 after
 * printing why when it could not start (address, memory). */
int bench_load_run(const bench_load_options_t *options, bench_table_t *table,
                   bench_rss_t *rss, bench_load_result_t *result);

/* Frees result->requests. */
void bench_load_result_free(bench_load_result_t *result);

#endif

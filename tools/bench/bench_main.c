/* conveyor-bench: command line, the run, and the report.
 *
 *   conveyor-bench --key KEY [--intake HOST:PORT] [--sink-port P]
 *                  (--rate R | --saturate) --duration S [options]
 *   conveyor-bench --sink-only [--sink-port P]
 *   conveyor-bench --probe DIR --duration S
 *
 * Prints human-readable lines, then one JSON line with the figures (see
 * print_report). Exit status: 0 when every accepted lead was notified,
 * 2 when the run finished but leads went missing or requests failed,
 * 1 when it could not run. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAIN_WAIT_STEP_US 10000
#define MAIN_PROGRESS_US 5000000

typedef struct {
    bench_load_options_t load;  /* the generator's settings */
    char label[64];             /* names the run in the human lines */
    int sink_port;              /* 0 picks a free one */
    bool sink_only;             /* just run the sink until a signal */
    bool self_check;            /* compare the fast readers with jansson
                                   and printf, then exit */
    bool have_mode;             /* --rate or --saturate was given */
    bool have_duration;         /* --duration was given */
    double wait_s;              /* bound on waiting for notifications */
    bench_rss_t rss;            /* services whose memory is reported */
    const char *receipts;       /* --receipts: where each lead's times go,
                                   NULL for nowhere */
    const char *probe_dir;      /* --probe: time syncs in this folder and
                                   wake-ups instead of a run */
} main_options_t;

typedef struct {
    int64_t *e2e;               /* end-to-end latencies, µs: from the 202
                                   to the first notification (the span
                                   the issue names) */
    int64_t *from_send;         /* the same leads from their scheduled
                                   send: the 202's own wait included */
    size_t e2e_count;           /* entries in e2e and from_send */
    size_t before_ack;          /* notified before the bench had read
                                   the 202 (its e2e counts as 0): the
                                   load loop was busy, the figure low */
    int64_t *ack;               /* 202 latencies from the scheduled time */
    size_t ack_count;           /* entries in ack */
    int64_t *service;           /* 202 latencies from the actual send */
    size_t accepted;            /* 202 replies */
    size_t merged;              /* of those, folded into another lead */
    size_t other;               /* non-202 replies */
    size_t missing;             /* accepted new leads never notified */
    size_t in_window;           /* notified before issuing stopped */
    int64_t last_arrival_us;    /* the latest first notification */
} main_figures_t;

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
    (void)sig;
    main_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: conveyor-bench --key KEY (--rate R | --saturate) "
        "--duration S [options]\n"
        "       conveyor-bench --sink-only [--sink-port P]\n"
        "       conveyor-bench --self-check\n"
        "       conveyor-bench --probe DIR --duration S\n"
        "  --intake HOST:PORT   intake address (default 127.0.0.1:8080)\n"
        "  --key KEY            intake API key (or CONVEYOR_BENCH_KEY)\n"
        "  --rate R             open loop: R leads per second\n"
        "  --saturate           closed loop: as fast as replies come\n"
        "  --duration S         seconds of sending\n"
        "  --connections N      keep-alive connections (default 32)\n"
        "  --sink-port P        webhook sink port (default 0: any)\n"
        "  --wait S             wait for notifications (default 30)\n"
        "  --max-pending N      saturate: accepted, not yet notified leads\n"
        "                       allowed at once (default 0: no limit)\n"
        "  --tag N              0..99, part of every phone number\n"
        "  --pid NAME=PID       report the memory of a service (repeat)\n"
        "  --label TEXT         name of the run in the report\n"
        "  --receipts FILE      write one line per notified lead: its id and\n"
        "                       when it was sent, accepted and notified\n"
        "                       (Unix ms), for tools/bench/hops.py\n"
        "  --probe DIR          time fdatasync of a 4 KiB block in DIR and\n"
        "                       how late a 1 ms sleep wakes, for S seconds,\n"
        "                       with nothing else of the bench running\n"
        "  --self-check         check that the bench reads replies and\n"
        "                       notifications as jansson would, and writes\n"
        "                       requests as printf would; exit 0 if so\n");
}

static int parse_double(const char *text, double min, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < min)
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "host:port" into the load options. */
static int parse_intake(const char *text, bench_load_options_t *load)
{
    const char *colon = strrchr(text, ':');
    size_t host_len;
    long port;

    if (colon == NULL || parse_long(colon + 1, 1, 65535, &port) != 0)
        return -1;
    host_len = (size_t)(colon - text);
    if (host_len >= sizeof(load->host))
        return -1;
    if (host_len == 0) {
        snprintf(load->host, sizeof(load->host), "127.0.0.1");
    } else {
        memcpy(load->host, text, host_len);
        load->host[host_len] = '\0';
    }
    load->port = (int)port;
    return 0;
}

/* Fills opt from argv. Returns 0, 1 after --help, -1 after a complaint. */
static int parse_args(int argc, char **argv, main_options_t *opt)
{
    static const struct option longs[] = {
        {"intake", required_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"saturate", no_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"connections", required_argument, NULL, 'c'},
        {"sink-port", required_argument, NULL, 'p'},
        {"sink-only", no_argument, NULL, 'S'},
        {"self-check", no_argument, NULL, 'C'},
        {"wait", required_argument, NULL, 'w'},
        {"max-pending", required_argument, NULL, 'm'},
        {"tag", required_argument, NULL, 't'},
        {"pid", required_argument, NULL, 'P'},
        {"label", required_argument, NULL, 'l'},
        {"receipts", required_argument, NULL, 'R'},
        {"probe", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    long v;

    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (parse_intake(optarg, &opt->load) != 0)
                goto bad;
            break;
        case 'k':
            opt->load.key = optarg;
            break;
        case 'r':
            if (parse_double(optarg, 0.001, &opt->load.rate) != 0)
                goto bad;
            opt->load.saturate = false;
            opt->have_mode = true;
            break;
        case 's':
            opt->load.saturate = true;
            opt->have_mode = true;
            break;
        case 'd':
            if (parse_double(optarg, 0.001, &opt->load.duration_s) != 0)
                goto bad;
            opt->have_duration = true;
            break;
        case 'c':
            if (parse_long(optarg, 1, 4096, &v) != 0)
                goto bad;
            opt->load.connections = (int)v;
            break;
        case 'p':
            if (parse_long(optarg, 0, 65535, &v) != 0)
                goto bad;
            opt->sink_port = (int)v;
            break;
        case 'S':
            opt->sink_only = true;
            break;
        case 'C':
            opt->self_check = true;
            break;
        case 'w':
            if (parse_double(optarg, 0, &opt->wait_s) != 0)
                goto bad;
            break;
        case 'm':
            if (parse_long(optarg, 0, 100000000, &v) != 0)
                goto bad;
            opt->load.max_pending = (size_t)v;
            break;
        case 't':
            if (parse_long(optarg, 0, 99, &v) != 0)
                goto bad;
            opt->load.tag = (int)v;
            break;
        case 'P':
            if (bench_rss_add(&opt->rss, optarg) != 0)
                goto bad;
            break;
        case 'l':
            snprintf(opt->label, sizeof(opt->label), "%s", optarg);
            break;
        case 'R':
            opt->receipts = optarg;
            break;
        case 'D':
            opt->probe_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "conveyor-bench: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    if (opt->sink_only || opt->self_check)
        return 0;
    if (opt->probe_dir != NULL) {
        if (!opt->have_duration) {
            fprintf(stderr, "conveyor-bench: --probe needs --duration\n");
            return -1;
        }
        return 0;
    }
    if (opt->load.key == NULL)
        opt->load.key = getenv("CONVEYOR_BENCH_KEY");
    if (opt->load.key == NULL || opt->load.key[0] == '\0' ||
        !opt->have_mode || !opt->have_duration) {
        fprintf(stderr, "conveyor-bench: need --key, --rate or --saturate, "
                "and --duration\n");
        usage(stderr);
        return -1;
    }
    if (strpbrk(opt->load.key, "\r\n") != NULL) {
        fprintf(stderr, "conveyor-bench: bad key\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "conveyor-bench: bad value '%s' for '%s'\n", optarg,
            argv[optind - 1]);
    return -1;
}

static double ms(int64_t us)
{
    return round((double)us / 10.0) / 100.0;
}

static double round1(double v)
{
    return round(v * 10.0) / 10.0;
}

/* Prints `json` (taken, may be NULL) as the report's one compact line.
 * 0, or -1 after saying it could not. */
static int print_json_line(json_t *json)
{
    char *line = json == NULL ? NULL
        : json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER |
                               JSON_REAL_PRECISION(10));
    json_decref(json);
    if (line == NULL) {
        fprintf(stderr, "conveyor-bench: cannot format the report\n");
        return -1;
    }
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    return 0;
}

/* Runs the sink alone until SIGINT/SIGTERM, printing its counts. */
static int run_sink_only(const main_options_t *opt)
{
    bench_table_t *table = bench_table_new();
    bench_sink_t *sink = NULL;
    int rc = 1;

    if (table == NULL)
        goto out;
    sink = bench_sink_start(opt->sink_port, table);
    if (sink == NULL)
        goto out;
    printf("sink: listening on 127.0.0.1:%d\n", bench_sink_port(sink));
    fflush(stdout);
    while (!main_stop) {
        bench_table_counts_t counts;
        bench_sink_counts_t sink_counts;

        sleep(1);
        bench_table_counts(table, &counts);
        bench_sink_counts(sink, &sink_counts);
        printf("sink: %zu requests, %zu leads, %zu repeats, %zu unnamed\n",
               sink_counts.requests, counts.arrivals, counts.repeats,
               sink_counts.no_lead);
        fflush(stdout);
    }
    rc = 0;
out:
    bench_sink_destroy(&sink);
    bench_table_destroy(&table);
    return rc;
}

/* The machine probe alone: a human line, then one JSON line. */
static int run_probe(const main_options_t *opt)
{
    bench_probe_result_t res;
    json_t *json;

    if (bench_probe_run(opt->probe_dir, opt->load.duration_s, &res) != 0)
        return 1;
    printf("machine: %zu syncs of 4 KiB alone: fdatasync p50 %.2f  p99 %.2f"
           "  p99.9 %.2f  max %.2f ms; a 1 ms sleep woke late by p50 %.2f  "
           "p99 %.2f  p99.9 %.2f  max %.2f ms\n", res.samples,
           ms(res.sync_us[0]), ms(res.sync_us[1]), ms(res.sync_us[2]),
           ms(res.sync_us[3]), ms(res.late_us[0]), ms(res.late_us[1]),
           ms(res.late_us[2]), ms(res.late_us[3]));
    json = json_pack(
        "{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "mode",
        "probe", "samples", (json_int_t)res.samples, "fdatasync_p50_ms",
        ms(res.sync_us[0]), "fdatasync_p99_ms", ms(res.sync_us[1]),
        "fdatasync_p999_ms", ms(res.sync_us[2]), "fdatasync_max_ms",
        ms(res.sync_us[3]), "wake_late_p50_ms", ms(res.late_us[0]),
        "wake_late_p99_ms", ms(res.late_us[1]), "wake_late_p999_ms",
        ms(res.late_us[2]), "wake_late_max_ms", ms(res.late_us[3]));
    return print_json_line(json) == 0 ? 0 : 1;
}

/* Waits, bounded by wait_s, until every accepted lead was notified. */
static void wait_notifications(bench_table_t *table, main_options_t *opt)
{
    int64_t start = cv_clock_monotonic_us();
    int64_t deadline = start + (int64_t)(opt->wait_s * 1e6);
    int64_t next_progress = start + MAIN_PROGRESS_US;
    int64_t next_rss = start;

    for (;;) {
        bench_table_counts_t counts;
        struct timespec step = {0, MAIN_WAIT_STEP_US * 1000};
        int64_t now = cv_clock_monotonic_us();

        bench_table_counts(table, &counts);
        if (counts.matched >= counts.expected || now >= deadline ||
            main_stop)
            break;
        if (now >= next_rss) {
            bench_rss_sample(&opt->rss);
            next_rss = now + 250000;
        }
        if (now >= next_progress) {
            printf("  waiting: %zu of %zu leads notified\n", counts.matched,
                   counts.expected);
            fflush(stdout);
            next_progress = now + MAIN_PROGRESS_US;
        }
        nanosleep(&step, NULL);
    }
    bench_rss_sample(&opt->rss);
}

/* What to add to a cv_clock_monotonic_us() reading for Unix time in µs,
 * so receipts can be set beside the times the services store. */
static int64_t wall_offset_us(void)
{
    /* the services' clock, CONVEYOR_CLOCK_FILE's offset included */
    return cv_clock_now_ms() * 1000 - cv_clock_monotonic_us();
}

/* Figures of the run; with `receipts`, also a line per notified lead:
 * "lead_id sent_ms accepted_ms notified_ms". */
static int collect(const bench_load_result_t *res, bench_table_t *table,
                   FILE *receipts, main_figures_t *fig)
{
    int64_t wall_us = receipts != NULL ? wall_offset_us() : 0;

    memset(fig, 0, sizeof(*fig));
    fig->e2e = calloc(res->issued + 1, sizeof(*fig->e2e));
    fig->from_send = calloc(res->issued + 1, sizeof(*fig->from_send));
    fig->ack = calloc(res->issued + 1, sizeof(*fig->ack));
    fig->service = calloc(res->issued + 1, sizeof(*fig->service));
    if (fig->e2e == NULL || fig->from_send == NULL || fig->ack == NULL ||
        fig->service == NULL)
        return -1;
    for (size_t i = 0; i < res->issued; i++) {
        const bench_request_t *req = &res->requests[i];
        int64_t arrival;

        if (req->status == 0)
            continue;
        if (req->status != 202) {
            fig->other++;
            continue;
        }
        fig->accepted++;
        fig->ack[fig->ack_count] = req->ack_us - req->sched_us;
        fig->service[fig->ack_count] = req->ack_us - req->sent_us;
        fig->ack_count++;
        if (req->merged) {
            fig->merged++;
            continue;
        }
        if (req->lead_id[0] == '\0')
            continue;
        arrival = bench_table_arrival(table, req->lead_id);
        if (arrival == 0) {
            fig->missing++;
            continue;
        }
        if (arrival < req->ack_us)
            fig->before_ack++;
        fig->e2e[fig->e2e_count] =
            arrival > req->ack_us ? arrival - req->ack_us : 0;
        fig->from_send[fig->e2e_count++] =
            arrival > req->sched_us ? arrival - req->sched_us : 0;
        if (receipts != NULL)
            fprintf(receipts, "%s %" PRId64 " %" PRId64 " %" PRId64 "\n",
                    req->lead_id, (wall_us + req->sched_us) / 1000,
                    (wall_us + req->ack_us) / 1000,
                    (wall_us + arrival) / 1000);
        if (arrival > fig->last_arrival_us)
            fig->last_arrival_us = arrival;
        if (arrival <= res->send_end_us)
            fig->in_window++;
    }
    return 0;
}

static void figures_free(main_figures_t *fig)
{
    free(fig->e2e);
    free(fig->from_send);
    free(fig->ack);
    free(fig->service);
}

/* Human lines, then the one JSON line. Returns the exit status. */
static int print_report(const main_options_t *opt,
                        const bench_load_result_t *res, bench_table_t *table,
                        const bench_sink_t *sink, main_figures_t *fig)
{
    bench_table_counts_t counts;
    bench_sink_counts_t sink_counts;
    double send_s = (double)(res->send_end_us - res->t0_us) / 1e6;
    double run_s = fig->e2e_count == 0 ? 0
        : (double)(fig->last_arrival_us - res->t0_us) / 1e6;
    double offered = opt->load.saturate
        ? (send_s > 0 ? (double)res->issued / send_s : 0)
        : opt->load.rate;
    double leads_per_s = run_s > 0 ? (double)fig->e2e_count / run_s : 0;
    size_t errors = 0;
    int64_t p50, p90, p99, p999, pmax;
    int64_t a50, a99, a999, s50, s99, f50, f99;
    json_t *json;
    json_t *rss;
    double cpu_total = 0;

    bench_table_counts(table, &counts);
    bench_sink_counts(sink, &sink_counts);
    a50 = bench_quantile(fig->ack, fig->ack_count, 0.50);
    a99 = bench_quantile(fig->ack, fig->ack_count, 0.99);
    a999 = bench_quantile(fig->ack, fig->ack_count, 0.999);
    s50 = bench_quantile(fig->service, fig->ack_count, 0.50);
    s99 = bench_quantile(fig->service, fig->ack_count, 0.99);
    p50 = bench_quantile(fig->e2e, fig->e2e_count, 0.50);
    p90 = bench_quantile(fig->e2e, fig->e2e_count, 0.90);
    p99 = bench_quantile(fig->e2e, fig->e2e_count, 0.99);
    p999 = bench_quantile(fig->e2e, fig->e2e_count, 0.999);
    pmax = bench_quantile(fig->e2e, fig->e2e_count, 1.0);
    f50 = bench_quantile(fig->from_send, fig->e2e_count, 0.50);
    f99 = bench_quantile(fig->from_send, fig->e2e_count, 0.99);

    printf("  sent        %zu requests in %.1f s (%.1f/s): %zu accepted, "
           "%zu merged, %zu other replies, %zu without a reply, "
           "%zu connection errors\n",
           res->issued, send_s, send_s > 0 ? (double)res->issued / send_s : 0,
           fig->accepted, fig->merged, fig->other, res->failed,
           res->conn_errors);
    if (res->unsent > 0 || res->timed_out > 0)
        printf("  overloaded  %zu requests were due but no connection was "
               "free, %zu still had no reply, when the run gave up: the "
               "conveyor is slower than the offered rate (not counted as "
               "errors; what it accepted later is counted by the next run "
               "as \"from older runs\")\n",
               res->unsent, res->timed_out);
    for (int s = 100; s < 600; s++) {
        if (res->by_status[s] > 0 && s != 202) {
            printf("  status %d   %zu replies\n", s, res->by_status[s]);
            errors += res->by_status[s];
        }
    }
    printf("  intake ack  p50 %.2f  p99 %.2f  p99.9 %.2f ms from the "
           "scheduled time; service time p50 %.2f  p99 %.2f ms\n",
           ms(a50), ms(a99), ms(a999), ms(s50), ms(s99));
    printf("  end to end  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  "
           "max %.2f ms from the 202 to the notification\n", ms(p50),
           ms(p90), ms(p99), ms(p999), ms(pmax));
    printf("  from send   p50 %.2f  p99 %.2f ms from the scheduled send "
           "(the 202's wait included)\n", ms(f50), ms(f99));
    if (fig->before_ack > 0)
        printf("  note        %zu leads were notified before the bench had "
               "read their 202 (counted as 0 ms from it)\n",
               fig->before_ack);
    if (res->steal_pct >= 0)
        printf("  machine     %.1f%% of the CPUs' time was taken by the "
               "host (steal) during the run\n", res->steal_pct);
    printf("  notified    %zu of %zu (%zu missing) over %.1f s = %.1f "
           "leads/s; %zu during sending; %zu repeats, %zu from older runs, "
           "%zu unnamed\n",
           fig->e2e_count, fig->e2e_count + fig->missing, fig->missing,
           run_s, leads_per_s, fig->in_window, counts.repeats,
           counts.unexpected, sink_counts.no_lead);
    if (opt->rss.count > 0) {
        printf("  memory      peak VmRSS MB:");
        for (size_t i = 0; i < opt->rss.count; i++)
            printf(" %s %.1f", opt->rss.procs[i].name,
                   opt->rss.procs[i].peak_mb);
        printf("\n");
        cpu_total = 0;
        printf("  cpu         ms per notified lead:");
        for (size_t i = 0; i < opt->rss.count; i++) {
            double cpu_s = bench_rss_cpu_s(&opt->rss, i);

            cpu_total += cpu_s;
            printf(" %s %.3f", opt->rss.procs[i].name,
                   fig->e2e_count > 0 ? cpu_s * 1e3 / fig->e2e_count : 0);
        }
        printf("; all %.3f\n",
               fig->e2e_count > 0 ? cpu_total * 1e3 / fig->e2e_count : 0);
    }

    rss = json_object();
    for (size_t i = 0; i < opt->rss.count; i++)
        json_object_set_new(rss, opt->rss.procs[i].name,
                            json_real(round1(opt->rss.procs[i].peak_mb)));
    json = json_pack(
        "{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f,"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:f}",
        "mode", opt->load.saturate ? "saturate" : "rate", "offered_per_s",
        round1(offered), "leads_per_s", round1(leads_per_s), "p50_ms", ms(p50),
        "p90_ms", ms(p90), "p99_ms", ms(p99), "p999_ms", ms(p999), "max_ms",
        ms(pmax), "ack_p50_ms", ms(a50), "ack_p99_ms", ms(a99),
        "from_send_p50_ms", ms(f50), "from_send_p99_ms", ms(f99), "duration_s",
        round1(send_s), "sent", (json_int_t)res->issued, "accepted",
        (json_int_t)fig->accepted, "missing", (json_int_t)fig->missing,
        "failed", (json_int_t)res->failed, "unsent", (json_int_t)res->unsent,
        "timed_out", (json_int_t)res->timed_out, "errors", (json_int_t)errors,
        "notified_before_ack", (json_int_t)fig->before_ack, "rss_mb", rss,
        "cpu_ms_per_lead",
        fig->e2e_count > 0 ? round1(cpu_total * 1e4 / fig->e2e_count) / 10
                           : 0.0,
        "steal_pct", round1(res->steal_pct));
    if (print_json_line(json) != 0)
        return 1;
    /* a benchmark measures; it fails only on wrong answers or leads that
     * were accepted and never reached the sink, not on a slow machine */
    if (fig->missing > 0 || res->failed > 0 || errors > 0 ||
        fig->accepted == 0 || res->bad_replies > 0)
        return 2;
    return 0;
}

static void random_run_id(char *out, size_t size)
{
    unsigned char bytes[8];

    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
        uint64_t seed = (uint64_t)cv_clock_monotonic_us() ^
                        ((uint64_t)getpid() << 32);

        memcpy(bytes, &seed, sizeof(bytes));
    }
    snprintf(out, size, "%02x%02x%02x%02x%02x%02x%02x%02x", bytes[0],
             bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6],
             bytes[7]);
}

int main(int argc, char **argv)
{
    main_options_t opt;
    bench_load_result_t res;
    main_figures_t fig;
    bench_table_t *table = NULL;
    bench_sink_t *sink = NULL;
    FILE *receipts = NULL;
    struct sigaction sa;
    int rc = 1;
    int parsed;

    memset(&opt, 0, sizeof(opt));
    memset(&res, 0, sizeof(res));
    memset(&fig, 0, sizeof(fig));
    snprintf(opt.load.host, sizeof(opt.load.host), "127.0.0.1");
    opt.load.port = 8080;
    opt.load.connections = 32;
    opt.load.drain_s = 10;
    opt.wait_s = 30;
    random_run_id(opt.load.run_id, sizeof(opt.load.run_id));
    opt.load.tag = (int)(strtoul(opt.load.run_id + 12, NULL, 16) % 100);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = main_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    parsed = parse_args(argc, argv, &opt);
    if (parsed != 0)
        return parsed > 0 ? 0 : 1;
    if (opt.self_check) {
        int differences = bench_sink_self_check() + bench_load_self_check();

        printf("self-check: %d differences\n", differences);
        return differences == 0 ? 0 : 1;
    }
    if (opt.sink_only)
        return run_sink_only(&opt);
    if (opt.probe_dir != NULL)
        return run_probe(&opt);
    if (opt.label[0] == '\0')
        snprintf(opt.label, sizeof(opt.label), "%s",
                 opt.load.saturate ? "saturation" : "fixed rate");

    table = bench_table_new();
    if (table == NULL) {
        fprintf(stderr, "conveyor-bench: out of memory\n");
        goto out;
    }
    sink = bench_sink_start(opt.sink_port, table);
    if (sink == NULL)
        goto out;
    if (opt.load.saturate)
        printf("%s: closed loop for %.0f s over %d connections, "
               "intake %s:%d, sink 127.0.0.1:%d\n", opt.label,
               opt.load.duration_s, opt.load.connections, opt.load.host,
               opt.load.port, bench_sink_port(sink));
    else
        printf("%s: %.0f leads/s for %.0f s over %d connections, "
               "intake %s:%d, sink 127.0.0.1:%d\n", opt.label,
               opt.load.rate, opt.load.duration_s, opt.load.connections,
               opt.load.host, opt.load.port, bench_sink_port(sink));
    fflush(stdout);
    bench_rss_sample(&opt.rss);
    if (bench_load_run(&opt.load, table, &opt.rss, &res) != 0)
        goto out;
    wait_notifications(table, &opt);
    if (opt.receipts != NULL) {
        receipts = fopen(opt.receipts, "w");
        if (receipts == NULL) {
            fprintf(stderr, "conveyor-bench: cannot write '%s': %s\n",
                    opt.receipts, strerror(errno));
            goto out;
        }
    }
    if (collect(&res, table, receipts, &fig) != 0) {
        fprintf(stderr, "conveyor-bench: out of memory\n");
        goto out;
    }
    if (receipts != NULL && fclose(receipts) != 0) {
        receipts = NULL;
        fprintf(stderr, "conveyor-bench: cannot write '%s': %s\n",
                opt.receipts, strerror(errno));
        goto out;
    }
    receipts = NULL;
    rc = print_report(&opt, &res, table, sink, &fig);
out:
    if (receipts != NULL)
        fclose(receipts);
    figures_free(&fig);
    bench_load_result_free(&res);
    bench_sink_destroy(&sink);
    bench_table_destroy(&table);
    return rc;
}

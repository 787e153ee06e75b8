/* bench_stats: quantiles of latency samples, and the resident memory and
 * CPU time of the services under test, read from /proc/<pid>/status and
 * /proc/<pid>/stat. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static int stats_compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

int64_t bench_quantile(int64_t *values, size_t count, double q)
{
    size_t rank;

    if (count == 0)
        return 0;
    qsort(values, count, sizeof(*values), stats_compare);
    if (q <= 0)
        return values[0];
    if (q >= 1)
        return values[count - 1];
    /* Nearest rank: the smallest value with at least q of the samples at
     * or below it. */
    rank = (size_t)((double)count * q + 0.999999);
    if (rank == 0)
        rank = 1;
    if (rank > count)
        rank = count;
    return values[rank - 1];
}

int bench_rss_add(bench_rss_t *rss, const char *spec)
{
    const char *eq = strchr(spec, '=');
    bench_proc_t *proc;
    char *end = NULL;
    long pid;
    size_t name_len;

    if (eq == NULL || rss->count >= BENCH_PROCS_MAX)
        return -1;
    name_len = (size_t)(eq - spec);
    if (name_len == 0 || name_len >= sizeof(proc->name))
        return -1;
    errno = 0;
    pid = strtol(eq + 1, &end, 10);
    if (errno != 0 || end == eq + 1 || *end != '\0' || pid <= 0)
        return -1;
    proc = &rss->procs[rss->count++];
    memset(proc, 0, sizeof(*proc));
    memcpy(proc->name, spec, name_len);
    proc->name[name_len] = '\0';
    proc->pid = (pid_t)pid;
    return 0;
}

/* VmRSS of `pid` in MiB, or -1 when the process is gone. */
static double stats_vmrss_mb(pid_t pid)
{
    char path[64];
    char line[256];
    double mb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            long long kb;

            errno = 0;
            kb = strtoll(line + 6, &end, 10);
            if (errno == 0 && end != line + 6)
                mb = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

/* utime + stime of `pid` in clock ticks, or -1 when the process is gone.
 * The command name (field 2) may hold spaces, so fields are counted from
 * the last ')'. */
static long long stats_cpu_ticks(pid_t pid)
{
    char path[64];
    char buf[1024];
    unsigned long long utime, stime;
    const char *rest;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    rest = strrchr(buf, ')');
    /* After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime(14) stime(15). */
    if (rest == NULL ||
        sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                         "%llu %llu", &utime, &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

double bench_rss_cpu_s(const bench_rss_t *rss, size_t i)
{
    const bench_proc_t *proc = &rss->procs[i];

    return (double)(proc->cpu_last_ticks - proc->cpu_first_ticks) /
           (double)sysconf(_SC_CLK_TCK);
}

void bench_rss_sample(bench_rss_t *rss)
{
    for (size_t i = 0; i < rss->count; i++) {
        double mb = stats_vmrss_mb(rss->procs[i].pid);
        long long ticks = stats_cpu_ticks(rss->procs[i].pid);

        if (ticks >= 0) {
            if (rss->procs[i].cpu_first_ticks == 0)
                rss->procs[i].cpu_first_ticks = ticks;
            rss->procs[i].cpu_last_ticks = ticks;
        }

        if (mb < 0)
            continue;
        rss->procs[i].last_mb = mb;
        if (mb > rss->procs[i].peak_mb)
            rss->procs[i].peak_mb = mb;
    }
}

int bench_cpu_times(bench_cpu_times_t *out)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int got;

    if (f == NULL)
        return -1;
    /* cpu  user nice system idle iowait irq softirq steal ... */
    got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                 &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got != 8)
        return -1;
    out->total = 0;
    for (int i = 0; i < 8; i++)
        out->total += v[i];
    out->steal = v[7];
    return 0;
}

double bench_steal_pct(const bench_cpu_times_t *from,
                       const bench_cpu_times_t *to)
{
    if (to->total <= from->total || to->steal < from->steal)
        return -1;
    return 100.0 * (double)(to->steal - from->steal) /
           (double)(to->total - from->total);
}

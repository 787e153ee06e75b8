/* bench_stats: quantiles of latency samples and the resident memory of the
 * services under test, read from /proc/<pid>/status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void bench_rss_sample(bench_rss_t *rss)
{
    for (size_t i = 0; i < rss->count; i++) {
        double mb = stats_vmrss_mb(rss->procs[i].pid);

        if (mb < 0)
            continue;
        rss->procs[i].last_mb = mb;
        if (mb > rss->procs[i].peak_mb)
            rss->procs[i].peak_mb = mb;
    }
}

/* bench_probe: how long this machine takes to sync a small write and to
 * wake a sleeping thread, measured alone (see bench.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define PROBE_BLOCK 4096       /* bytes written before each sync */
#define PROBE_BLOCKS 256       /* the file's blocks, overwritten in turn */
#define PROBE_SLEEP_US 1000    /* the sleep whose lateness is timed */

/* p50, p99, p99.9 and max of `values` (sorted in place) into `out`. */
static void probe_quantiles(int64_t *values, size_t count, int64_t out[4])
{
    out[0] = bench_quantile(values, count, 0.50);
    out[1] = bench_quantile(values, count, 0.99);
    out[2] = bench_quantile(values, count, 0.999);
    out[3] = bench_quantile(values, count, 1.0);
}

int bench_probe_run(const char *dir, double seconds,
                    bench_probe_result_t *out)
{
    char path[4096];
    char block[PROBE_BLOCK];
    /* a sync and a sleep take at least 1 ms together */
    size_t cap = (size_t)(seconds * 1e6 / PROBE_SLEEP_US) + 1;
    int64_t *sync_us = calloc(cap, sizeof(*sync_us));
    int64_t *late_us = calloc(cap, sizeof(*late_us));
    int64_t end;
    size_t n = 0;
    int fd = -1;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    memset(block, 'p', sizeof(block));
    if (sync_us == NULL || late_us == NULL) {
        fprintf(stderr, "conveyor-bench: probe: out of memory\n");
        goto out;
    }
    /* mkstemp's template: it replaces the six X with a unique name */
    if ((size_t)snprintf(path, sizeof(path), "%s/probe.XXXXXX", dir) >=
        sizeof(path)) {
        fprintf(stderr, "conveyor-bench: probe: folder name too long\n");
        goto out;
    }
    fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "conveyor-bench: probe: cannot create a file in "
                "'%s': %s\n", dir, strerror(errno));
        goto out;
    }
    unlink(path);
    /* the whole file first, so every timed sync overwrites blocks that
     * exist, as a stage's WAL does once it has started over */
    for (int i = 0; i < PROBE_BLOCKS; i++)
        if (pwrite(fd, block, sizeof(block), (off_t)i * PROBE_BLOCK) < 0)
            goto write_failed;
    if (fdatasync(fd) != 0)
        goto write_failed;
    end = cv_clock_monotonic_us() + (int64_t)(seconds * 1e6);
    while (n < cap && cv_clock_monotonic_us() < end) {
        struct timespec nap = {0, PROBE_SLEEP_US * 1000};
        int64_t began;

        block[0] = (char)n;
        if (pwrite(fd, block, sizeof(block),
                   (off_t)(n % PROBE_BLOCKS) * PROBE_BLOCK) < 0)
            goto write_failed;
        began = cv_clock_monotonic_us();
        if (fdatasync(fd) != 0)
            goto write_failed;
        int64_t synced = cv_clock_monotonic_us();
        sync_us[n] = synced - began;
        began = synced;
        nanosleep(&nap, NULL);
        late_us[n] = cv_clock_monotonic_us() - began - PROBE_SLEEP_US;
        if (late_us[n] < 0)
            late_us[n] = 0;
        n++;
    }
    out->samples = n;
    probe_quantiles(sync_us, n, out->sync_us);
    probe_quantiles(late_us, n, out->late_us);
    rc = 0;
    goto out;
write_failed:
    fprintf(stderr, "conveyor-bench: probe: cannot write or sync in '%s': "
            "%s\n", dir, strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    free(sync_us);
    free(late_us);
    return rc;
}

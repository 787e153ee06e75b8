/* slow_sync: a test-only LD_PRELOAD library that makes a disk slow to sync.
 *
 * While the file named by CONVEYOR_TEST_SLOW_SYNC exists and holds a line
 * "<text> <ms>", every fsync and fdatasync of a file whose path contains
 * <text> (e.g. "notifier.db", which also matches notifier.db-wal) first
 * sleeps <ms> milliseconds, as on a disk whose flushes queue behind other
 * work; other files are untouched. The end-to-end tests use it to show
 * what waits for a stage's commit and what does not. Never linked into
 * the services. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

/* How long a sync of fd must wait now, in ms (0: not at all). */
static long slow_sync_ms(int fd)
{
    char rest[64];
    if (!fault_triggered("CONVEYOR_TEST_SLOW_SYNC", fd, rest, sizeof(rest)))
        return 0;
    long ms = strtol(rest, NULL, 10);
    return ms > 0 ? ms : 0;
}

static void slow_sync_wait(int fd)
{
    long ms = slow_sync_ms(fd);
    if (ms <= 0)
        return;
    int saved = errno;
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
    }
    errno = saved;
}

int fsync(int fd)
{
    REAL(fsync);
    slow_sync_wait(fd);
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    slow_sync_wait(fd);
    return real_fdatasync(fd);
}

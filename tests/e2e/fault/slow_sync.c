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
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a sync of fd must wait now, in ms (0: not at all). Reads the
 * trigger on every call: slow, and only ever loaded by tests. */
static long slow_sync_ms(int fd)
{
    const char *trigger = getenv("CONVEYOR_TEST_SLOW_SYNC");
    if (trigger == NULL || trigger[0] == '\0' || fd < 0)
        return 0;
    int saved = errno;
    char match[256] = "";
    long ms = 0;
    FILE *f = fopen(trigger, "re");
    if (f == NULL) {
        errno = saved;
        return 0;
    }
    int got = fscanf(f, "%255s %ld", match, &ms);
    fclose(f);
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof(path) - 1);
    errno = saved;
    if (got != 2 || ms <= 0 || len <= 0)
        return 0;
    path[len] = '\0';
    return strstr(path, match) != NULL ? ms : 0;
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

/* The libc function this one stands in front of, looked up once. */
#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (real_##name == NULL) \
        real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

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

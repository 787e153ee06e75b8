/* disk_full: a test-only LD_PRELOAD library that fills the disk on demand.
 *
 * While the file named by CONVEYOR_TEST_DISK_FULL exists, every write to a
 * file whose path contains the text in that file (e.g. "intake.db", which
 * also matches intake.db-wal) fails with ENOSPC, as on a full disk; other
 * files (logs, sockets) are untouched. Delete the file and the disk has
 * room again. The end-to-end tests use it to show that intake answers 503
 * and stores nothing half-way when it cannot write. Never linked into the
 * services. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Whether writes to fd must fail now. Reads the trigger on every call:
 * slow, and only ever loaded by tests. */
static int disk_full_for(int fd)
{
    const char *trigger = getenv("CONVEYOR_TEST_DISK_FULL");
    if (trigger == NULL || trigger[0] == '\0' || fd < 0)
        return 0;
    int saved = errno;
    char match[256] = "";
    FILE *f = fopen(trigger, "re");
    if (f == NULL) {
        errno = saved;
        return 0;
    }
    size_t n = fread(match, 1, sizeof(match) - 1, f);
    fclose(f);
    match[n] = '\0';
    match[strcspn(match, "\r\n")] = '\0';
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof(path) - 1);
    errno = saved;
    if (len <= 0 || match[0] == '\0')
        return 0;
    path[len] = '\0';
    return strstr(path, match) != NULL;
}

/* Fails the call as a full disk would when fd is one of the "full" files. */
#define FAIL_WHEN_FULL(fd, result) \
    do { \
        if (disk_full_for(fd)) { \
            errno = ENOSPC; \
            return result; \
        } \
    } while (0)

/* The libc function this one stands in front of, looked up once. */
#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (real_##name == NULL) \
        real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t count)
{
    REAL(write);
    FAIL_WHEN_FULL(fd, -1);
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    REAL(pwrite);
    FAIL_WHEN_FULL(fd, -1);
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset)
{
    REAL(pwrite64);
    FAIL_WHEN_FULL(fd, -1);
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    REAL(writev);
    FAIL_WHEN_FULL(fd, -1);
    return real_writev(fd, iov, iovcnt);
}

int fallocate(int fd, int mode, off_t offset, off_t len)
{
    REAL(fallocate);
    FAIL_WHEN_FULL(fd, -1);
    return real_fallocate(fd, mode, offset, len);
}

int posix_fallocate(int fd, off_t offset, off_t len)
{
    REAL(posix_fallocate);
    if (disk_full_for(fd))
        return ENOSPC; /* posix_fallocate reports, not sets errno */
    return real_posix_fallocate(fd, offset, len);
}

/* disk_full: a test-only LD_PRELOAD library that fills the disk on demand.
 *
 * While the file named by CONVEYOR_TEST_DISK_FULL exists, every write to a
 * file whose path contains the first word of that file (e.g. "intake.db",
 * which also matches intake.db-wal) fails with ENOSPC, as on a full disk;
 * other files (logs, sockets) are untouched. Delete the file and the disk
 * has room again. The end-to-end tests use it to show that intake answers
 * 503 and stores nothing half-way when it cannot write, and that a
 * notifier that cannot write calls the receiver once (fault.h has what the
 * libraries here share). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault.h"

/* Whether writes to fd must fail now. */
static int disk_full_for(int fd)
{
    return fault_triggered("CONVEYOR_TEST_DISK_FULL", fd, NULL, 0);
}

/* Fails the call as a full disk would when fd is one of the "full" files. */
#define FAIL_WHEN_FULL(fd, result) \
    do { \
        if (disk_full_for(fd)) { \
            errno = ENOSPC; \
            return result; \
        } \
    } while (0)

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

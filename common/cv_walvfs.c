/* cv_walvfs: the default SQLite VFS, with a transaction's WAL frames
 * written in one system call.
 *
 * SQLite appends a commit to the WAL as two writes per page (a 24-byte
 * frame header, then the page), then syncs. A batch that dirties 40 pages
 * thus costs 80 pwrite(2) calls before its fdatasync; in a stage on the hot
 * path those calls were a tenth of the process's time. This VFS passes
 * everything through to the default one, except that writes to a WAL file
 * that continue one another are gathered in memory and written together:
 *   - before anything that reads or sizes the file (xRead, xFileSize,
 *     xTruncate, xFetch, xFileControl) and before xSync;
 *   - as soon as the page of a commit frame (a frame header whose "database
 *     size after commit" is not zero) has been appended, so the frames are
 *     in the file before SQLite publishes the commit in the wal-index, even
 *     on a connection that does not sync at commit;
 *   - when the next write does not continue the gathered ones, or they
 *     would pass WALVFS_BUFFER bytes.
 * A process killed with frames still gathered loses an uncommitted
 * transaction, which SQLite would have rolled back anyway: frames after the
 * last commit frame are ignored on recovery. */
#include "cv_walvfs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WALVFS_NAME "cv-wal"
/* bytes gathered at most before a write: the default VFS writes at most
 * 128 KiB - 1 per call (unixWrite masks the count), so stay below that */
#define WALVFS_BUFFER (120 * 1024)
#define WAL_FRAME_HEADER 24     /* bytes of a WAL frame header */

typedef struct {
    sqlite3_file base;        /* what SQLite sees; must come first */
    sqlite3_file *real;       /* the default VFS's file, right after us */
    unsigned char *buffer;    /* gathered bytes (owned), NULL until used */
    sqlite3_int64 offset;     /* file offset of buffer[0] */
    int length;               /* bytes gathered */
    bool commit_frame;        /* the last write was a commit frame's header */
} walvfs_file_t;

static sqlite3_vfs *default_vfs;
static sqlite3_vfs walvfs;
static sqlite3_io_methods wal_methods;
static pthread_once_t walvfs_once = PTHREAD_ONCE_INIT;
static int walvfs_status = SQLITE_ERROR;

static int flush(walvfs_file_t *file)
{
    if (file->length == 0)
        return SQLITE_OK;
    int rc = file->real->pMethods->xWrite(file->real, file->buffer,
                                          file->length, file->offset);
    file->length = 0;
    file->commit_frame = false;
    return rc;
}

static int wal_close(sqlite3_file *base)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    int closed = file->real->pMethods->xClose(file->real);
    free(file->buffer);
    file->buffer = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int wal_read(sqlite3_file *base, void *out, int amount,
                    sqlite3_int64 offset)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xRead(file->real, out, amount, offset);
}

static int wal_write(sqlite3_file *base, const void *data, int amount,
                     sqlite3_int64 offset)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    bool follows = file->length > 0 && offset == file->offset + file->length;
    if (file->length > 0 &&
        (!follows || file->length + amount > WALVFS_BUFFER)) {
        int rc = flush(file);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (file->buffer == NULL && amount <= WALVFS_BUFFER)
        file->buffer = malloc(WALVFS_BUFFER);
    if (file->buffer == NULL || amount > WALVFS_BUFFER)
        return file->real->pMethods->xWrite(file->real, data, amount, offset);

    if (file->length == 0)
        file->offset = offset;
    memcpy(file->buffer + file->length, data, (size_t)amount);
    file->length += amount;
    if (amount == WAL_FRAME_HEADER) {
        /* bytes 4..7: the database size after a commit, 0 otherwise */
        const unsigned char *header = data;
        file->commit_frame = (header[4] | header[5] | header[6] |
                              header[7]) != 0;
        return SQLITE_OK;
    }
    if (file->commit_frame)
        return flush(file); /* the commit frame's page: publish-ready */
    return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *base, sqlite3_int64 size)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xTruncate(file->real, size);
}

static int wal_sync(sqlite3_file *base, int flags)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xSync(file->real, flags);
}

static int wal_file_size(sqlite3_file *base, sqlite3_int64 *size)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int wal_lock(sqlite3_file *base, int level)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xLock(file->real, level);
}

static int wal_unlock(sqlite3_file *base, int level)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xUnlock(file->real, level);
}

static int wal_check_reserved(sqlite3_file *base, int *out)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xCheckReservedLock(file->real, out);
}

static int wal_file_control(sqlite3_file *base, int op, void *arg)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xFileControl(file->real, op, arg);
}

static int wal_sector_size(sqlite3_file *base)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xSectorSize(file->real);
}

static int wal_device(sqlite3_file *base)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int wal_shm_map(sqlite3_file *base, int region, int size, int extend,
                       void volatile **out)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xShmMap(file->real, region, size, extend,
                                         out);
}

static int wal_shm_lock(sqlite3_file *base, int offset, int n, int flags)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xShmLock(file->real, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *base)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    file->real->pMethods->xShmBarrier(file->real);
}

static int wal_shm_unmap(sqlite3_file *base, int delete_flag)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xShmUnmap(file->real, delete_flag);
}

static int wal_fetch(sqlite3_file *base, sqlite3_int64 offset, int amount,
                     void **out)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    int rc = flush(file);
    if (rc != SQLITE_OK)
        return rc;
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}

static int wal_unfetch(sqlite3_file *base, sqlite3_int64 offset, void *page)
{
    walvfs_file_t *file = (walvfs_file_t *)base;
    return file->real->pMethods->xUnfetch(file->real, offset, page);
}

/* Opens every file through the default VFS; only WAL files get our
 * methods, the database and the journal are the default VFS's own. */
static int walvfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *base,
                       int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return default_vfs->xOpen(default_vfs, name, base, flags, out_flags);
    walvfs_file_t *file = (walvfs_file_t *)base;
    memset(file, 0, sizeof(*file));
    file->real = (sqlite3_file *)(file + 1);
    int rc = default_vfs->xOpen(default_vfs, name, file->real, flags,
                                out_flags);
    /* pMethods stays NULL on failure: SQLite then does not call xClose */
    if (rc == SQLITE_OK)
        file->base.pMethods = &wal_methods;
    return rc;
}

static void walvfs_register(void)
{
    default_vfs = sqlite3_vfs_find(NULL);
    if (default_vfs == NULL)
        return;
    walvfs = *default_vfs;
    walvfs.zName = WALVFS_NAME;
    walvfs.szOsFile = (int)sizeof(walvfs_file_t) + default_vfs->szOsFile;
    walvfs.xOpen = walvfs_open;
    wal_methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = wal_close,
        .xRead = wal_read,
        .xWrite = wal_write,
        .xTruncate = wal_truncate,
        .xSync = wal_sync,
        .xFileSize = wal_file_size,
        .xLock = wal_lock,
        .xUnlock = wal_unlock,
        .xCheckReservedLock = wal_check_reserved,
        .xFileControl = wal_file_control,
        .xSectorSize = wal_sector_size,
        .xDeviceCharacteristics = wal_device,
        .xShmMap = wal_shm_map,
        .xShmLock = wal_shm_lock,
        .xShmBarrier = wal_shm_barrier,
        .xShmUnmap = wal_shm_unmap,
        .xFetch = wal_fetch,
        .xUnfetch = wal_unfetch,
    };
    walvfs_status = sqlite3_vfs_register(&walvfs, 0);
}

const char *cv_walvfs_name(void)
{
    pthread_once(&walvfs_once, walvfs_register);
    return walvfs_status == SQLITE_OK ? WALVFS_NAME : NULL;
}

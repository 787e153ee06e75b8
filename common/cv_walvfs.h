/* cv_walvfs: SQLite's default VFS, except that the WAL frames of one
 * commit reach the file in one write(2) instead of two per page.
 *
 * cv_store opens every database through it; the files stay ordinary
 * SQLite files that any other program (the sqlite3 shell, a test) reads and
 * writes with the default VFS. See cv_walvfs.c for when gathered bytes are
 * written and why a crash cannot lose a commit. */
#ifndef CV_WALVFS_H
#define CV_WALVFS_H

#include <sqlite3.h>

/* Registers the VFS on first use (thread-safe) and returns its name for
 * sqlite3_open_v2, or NULL when it could not be registered (then open with
 * the default VFS). */
const char *cv_walvfs_name(void);

#endif

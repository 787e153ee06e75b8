/* cv_textfile: a whole configuration text file in memory.
 *
 * The rules files (scoring, routing) and the business calendar are read
 * the same way: at most a size limit, no NUL byte (a binary file given by
 * mistake), the reason for any failure naming the file. */
#ifndef CV_TEXTFILE_H
#define CV_TEXTFILE_H

#include <stddef.h>

/* Reads the file at `path` (at most `max` bytes) into a NUL-terminated
 * text the caller frees, with its length in *size. NULL with the reason in
 * `error` ("deploy/x.yaml: cannot read: No such file or directory",
 * "...: larger than 4194304 bytes", "...: not a text file (it holds a NUL
 * byte)"). */
char *cv_textfile_read(const char *path, size_t max, size_t *size,
                       char *error, size_t error_size);

#endif

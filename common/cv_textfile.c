/* cv_textfile: a whole configuration text file in memory. */
#include "cv_textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cv_textfile_read(const char *path, size_t max, size_t *size,
                       char *error, size_t error_size)
{
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(error, error_size, "%s: cannot read: %s", path,
                 strerror(errno));
        return NULL;
    }
    text = malloc(max + 1);
    if (text == NULL) {
        snprintf(error, error_size, "%s: cannot read: out of memory", path);
        goto fail;
    }
    size_t n = fread(text, 1, max + 1, f);
    if (ferror(f)) {
        snprintf(error, error_size, "%s: cannot read: %s", path,
                 strerror(errno));
        goto fail;
    }
    if (n > max) {
        snprintf(error, error_size, "%s: larger than %zu bytes", path, max);
        goto fail;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n) != NULL) {
        snprintf(error, error_size,
                 "%s: not a text file (it holds a NUL byte)", path);
        goto fail;
    }
    fclose(f);
    *size = n;
    return text;
fail:
    fclose(f);
    free(text);
    return NULL;
}

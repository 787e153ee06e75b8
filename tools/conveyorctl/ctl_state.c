/* ctl_state: the resume point of an import, kept next to the CSV file.
 *
 * A small text file of "key value" lines, rewritten after every batch
 * intake acknowledged: written to "<path>.tmp", flushed to disk, then
 * renamed over the old one (and the folder synced), so that a crash at
 * any moment leaves either the old or the new state, never half of one.
 * Human-readable on purpose: an operator can see where an import
 * stopped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_STATE_MAGIC "conveyorctl-import-state 1"

/* The numeric members, by name. */
typedef struct {
    const char *key; /* as written in the file */
    size_t offset;   /* offsetof(ctl_state_t, member), an int64_t */
} ctl_state_number_t;

static const ctl_state_number_t ctl_state_numbers[] = {
    {"size", offsetof(ctl_state_t, size)},
    {"mtime_ns", offsetof(ctl_state_t, mtime_ns)},
    {"batch_bytes", offsetof(ctl_state_t, batch_bytes)},
    {"offset", offsetof(ctl_state_t, offset)},
    {"line", offsetof(ctl_state_t, line)},
    {"batches", offsetof(ctl_state_t, batches)},
    {"rows", offsetof(ctl_state_t, rows)},
    {"imported", offsetof(ctl_state_t, imported)},
    {"merged", offsetof(ctl_state_t, merged)},
    {"rejected", offsetof(ctl_state_t, rejected)},
    {"replayed", offsetof(ctl_state_t, replayed)},
    {"rejected_bytes", offsetof(ctl_state_t, rejected_bytes)},
};
#define CTL_STATE_NUMBERS                                                      \
    (sizeof(ctl_state_numbers) / sizeof(ctl_state_numbers[0]))

static int64_t *ctl_state_member(ctl_state_t *state, size_t i)
{
    return (int64_t *)((char *)state + ctl_state_numbers[i].offset);
}

int ctl_state_load(const char *path, ctl_state_t *state)
{
    memset(state, 0, sizeof(*state));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return ctl_error("cannot read '%s': %s", path, strerror(errno));
    }
    int rc = -1;
    char line[512];
    unsigned seen = 0; /* bit i: number i; bits 30, 31: head, source */
    bool magic = false;
    bool rows_known = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, "\n");
        line[len] = '\0';
        if (!magic) {
            if (strcmp(line, CTL_STATE_MAGIC) != 0)
                break;
            magic = true;
            continue;
        }
        char *space = strchr(line, ' ');
        if (space == NULL)
            continue;
        *space = '\0';
        const char *value = space + 1;
        if (strcmp(line, "head") == 0) {
            snprintf(state->head, sizeof(state->head), "%s", value);
            seen |= 1u << 30;
        } else if (strcmp(line, "source") == 0) {
            snprintf(state->source, sizeof(state->source), "%s", value);
            seen |= 1u << 31;
        } else if (strcmp(line, "batch_rows") == 0) {
            state->batch_rows = (int)strtol(value, NULL, 10);
            rows_known = true;
        } else if (strcmp(line, "seconds") == 0) {
            state->seconds = strtod(value, NULL);
        } else {
            for (size_t i = 0; i < CTL_STATE_NUMBERS; i++) {
                if (strcmp(line, ctl_state_numbers[i].key) != 0)
                    continue;
                char *end = NULL;
                errno = 0;
                long long v = strtoll(value, &end, 10);
                if (errno == 0 && end != value && *end == '\0' && v >= 0) {
                    *ctl_state_member(state, i) = v;
                    seen |= 1u << i;
                }
            }
        }
    }
    unsigned want = (1u << CTL_STATE_NUMBERS) - 1;
    want |= 1u << 30 | 1u << 31;
    if (ferror(f))
        ctl_error("cannot read '%s': %s", path, strerror(errno));
    else if (!magic || seen != want || !rows_known || state->batch_rows < 1 ||
             state->line < 1)
        ctl_error("'%s' is not an import state this version understands; "
                  "remove it or run with --restart",
                  path);
    else
        rc = 1;
    fclose(f);
    return rc;
}

/* fsync of the folder holding `path`, so the rename itself is durable. */
static int ctl_state_sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ctl_state_save(const char *path, const ctl_state_t *state)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return ctl_error("path '%s' is too long", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return ctl_error("cannot write '%s': %s", tmp, strerror(errno));
    fprintf(f, "%s\n", CTL_STATE_MAGIC);
    fprintf(f, "head %s\nsource %s\nbatch_rows %d\nseconds %.3f\n", state->head,
            state->source, state->batch_rows, state->seconds);
    ctl_state_t copy = *state;
    for (size_t i = 0; i < CTL_STATE_NUMBERS; i++)
        fprintf(f, "%s %" PRId64 "\n", ctl_state_numbers[i].key,
                *ctl_state_member(&copy, i));
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved_errno = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved_errno = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved_errno = errno;
        unlink(tmp);
        return ctl_error("cannot write '%s': %s", path, strerror(saved_errno));
    }
    if (ctl_state_sync_dir(path) != 0)
        return ctl_error("cannot sync the folder of '%s': %s", path,
                         strerror(errno));
    return 0;
}

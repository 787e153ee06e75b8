/* ctl_progress: how far an import is, on stderr.
 *
 * On a terminal, one line redrawn in place at most ten times a second:
 *   [##########..........]  50%  512,000 rows  41,300 rows/s  ETA 0:12
 * Elsewhere (a log file, a CI job), a plain line every five seconds, so
 * logs stay readable. Percent is by bytes of the file read, which is what
 * is known without counting the rows first. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_BAR_WIDTH   24
#define CTL_TTY_EVERY_S 0.1
#define CTL_LOG_EVERY_S 5.0

struct ctl_progress {
    int64_t total_bytes; /* the file's size */
    bool quiet;          /* draw nothing */
    bool tty;            /* stderr is a terminal: redraw in place */
    bool drawn;          /* a bar line is on screen, unfinished */
    double started;      /* monotonic seconds at the start */
    double last_draw;    /* when it last drew */
};

static double ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ctl_progress_t *ctl_progress_new(int64_t total_bytes, bool quiet)
{
    ctl_progress_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->total_bytes = total_bytes > 0 ? total_bytes : 1;
    self->quiet = quiet;
    self->tty = isatty(STDERR_FILENO) == 1;
    self->started = ctl_now();
    self->last_draw = self->started;
    return self;
}

void ctl_progress_destroy(ctl_progress_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    ctl_progress_finish(*self_p);
    free(*self_p);
    *self_p = NULL;
}

/* 1234567 as "1,234,567". */
static const char *ctl_thousands(int64_t n, char *buf, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof(digits), "%lld", (long long)n);
    size_t out = 0;
    for (int i = 0; i < len && out + 2 < size; i++) {
        if (i > 0 && digits[i - 1] != '-' && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

void ctl_progress_update(ctl_progress_t *self, int64_t bytes, int64_t rows,
                         const ctl_state_t *totals)
{
    if (self == NULL || self->quiet)
        return;
    double now = ctl_now();
    double every = self->tty ? CTL_TTY_EVERY_S : CTL_LOG_EVERY_S;
    if (now - self->last_draw < every)
        return;
    self->last_draw = now;
    double elapsed = now - self->started;
    double rate = elapsed > 0 ? (double)rows / elapsed : 0;
    double fraction = (double)bytes / (double)self->total_bytes;
    if (fraction > 1)
        fraction = 1;
    char done[32];
    char speed[32];
    ctl_thousands(totals->rows, done, sizeof(done));
    ctl_thousands((int64_t)rate, speed, sizeof(speed));
    if (!self->tty) {
        fprintf(stderr,
                "conveyorctl: %3.0f%%  %s rows  %s rows/s  (imported "
                "%lld, merged %lld, rejected %lld)\n",
                fraction * 100, done, speed, (long long)totals->imported,
                (long long)totals->merged, (long long)totals->rejected);
        return;
    }
    char bar[CTL_BAR_WIDTH + 1];
    int filled = (int)(fraction * CTL_BAR_WIDTH);
    for (int i = 0; i < CTL_BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[CTL_BAR_WIDTH] = '\0';
    char eta[32] = "";
    double bytes_rate = elapsed > 0 ? (double)bytes / elapsed : 0;
    if (bytes_rate > 0 && fraction < 1) {
        long left = (long)((double)(self->total_bytes - bytes) / bytes_rate);
        snprintf(eta, sizeof(eta), "  ETA %ld:%02ld", left / 60, left % 60);
    }
    /* \033[K clears what a longer earlier line left behind */
    fprintf(stderr, "\r[%s] %3.0f%%  %s rows  %s rows/s%s  rejected %lld\033[K",
            bar, fraction * 100, done, speed, eta, (long long)totals->rejected);
    fflush(stderr);
    self->drawn = true;
}

void ctl_progress_finish(ctl_progress_t *self)
{
    if (self == NULL || !self->drawn)
        return;
    fputs("\n", stderr);
    self->drawn = false;
}

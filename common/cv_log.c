/* cv_log: logfmt lines to stderr, one write(2) per line. */
#include "cv_log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cv_clock.h"

#define CV_LOG_LINE 4096 /* longer messages are cut, never split */

static char cv_log_service[64] = "conveyor"; /* set once by cv_log_init */
static atomic_int cv_log_threshold = CV_LOG_INFO; /* lowest level written */

static const char *const cv_log_names[] = {"debug", "info", "warn", "error"};

void cv_log_init(const char *service)
{
    if (service != NULL && service[0] != '\0')
        snprintf(cv_log_service, sizeof(cv_log_service), "%s", service);
    int threshold = CV_LOG_INFO;
    const char *level = getenv("CONVEYOR_LOG_LEVEL");
    if (level != NULL && level[0] != '\0') {
        bool known = false;
        for (int i = CV_LOG_DEBUG; i <= CV_LOG_ERROR; i++) {
            if (strcasecmp(level, cv_log_names[i]) == 0) {
                threshold = i;
                known = true;
            }
        }
        if (strcasecmp(level, "warning") == 0) {
            threshold = CV_LOG_WARN;
            known = true;
        }
        atomic_store(&cv_log_threshold, threshold);
        if (!known)
            cv_log(CV_LOG_WARN, "unknown CONVEYOR_LOG_LEVEL '%s', using info",
                   level);
        return;
    }
    atomic_store(&cv_log_threshold, threshold);
}

/* Appends `text` to line[*len] as a logfmt quoted value: quotes,
 * backslashes and control characters are escaped so a line stays a line. */
static void cv_log_append_quoted(char *line, size_t size, size_t *len,
                                 const char *text)
{
    size_t at = *len;
    /* keep room for the closing quote and the newline */
    size_t limit = size - 3;
    if (at < limit)
        line[at++] = '"';
    for (const char *p = text; *p != '\0' && at < limit; p++) {
        unsigned char c = (unsigned char)*p;
        const char *escape = NULL;
        char hex[8];
        if (c == '"')
            escape = "\\\"";
        else if (c == '\\')
            escape = "\\\\";
        else if (c == '\n')
            escape = "\\n";
        else if (c == '\r')
            escape = "\\r";
        else if (c == '\t')
            escape = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(hex, sizeof(hex), "\\x%02x", c);
            escape = hex;
        }
        if (escape == NULL) {
            line[at++] = (char)c;
            continue;
        }
        size_t n = strlen(escape);
        if (at + n > limit)
            break;
        memcpy(line + at, escape, n);
        at += n;
    }
    line[at++] = '"';
    *len = at;
}

void cv_logv(cv_log_level_t level, const char *fmt, va_list ap)
{
    if (level < CV_LOG_DEBUG || level > CV_LOG_ERROR)
        level = CV_LOG_ERROR;
    if ((int)level < atomic_load(&cv_log_threshold))
        return;
    int saved_errno = errno;
    char message[CV_LOG_LINE];
    vsnprintf(message, sizeof(message), fmt, ap);

    char ts[40];
    cv_clock_format(cv_clock_now_ms(), ts, sizeof(ts));
    char line[CV_LOG_LINE + 256];
    int n = snprintf(line, sizeof(line), "ts=%s level=%s service=%s msg=", ts,
                     cv_log_names[level], cv_log_service);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len > sizeof(line) - 8)
        len = sizeof(line) - 8;
    cv_log_append_quoted(line, sizeof(line), &len, message);
    line[len++] = '\n';

    size_t done = 0;
    while (done < len) {
        ssize_t w = write(STDERR_FILENO, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    errno = saved_errno;
}

void cv_log(cv_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_logv(level, fmt, ap);
    va_end(ap);
}

int cv_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_logv(CV_LOG_ERROR, fmt, ap);
    va_end(ap);
    return -1;
}

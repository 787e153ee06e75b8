/* cv_log: structured log lines (logfmt) to stderr.
 *
 * Every line carries the time, the level, the service name and the message:
 *   ts=2026-11-22T15:41:18.123Z level=error service=intake msg="cannot open 'var/intake.db': disk full"
 * Messages follow git's style: lower-case, no full stop, the failing thing in
 * quotes. Thread-safe: one write(2) per line. */
#ifndef CV_LOG_H
#define CV_LOG_H

#include <stdarg.h>

typedef enum {
    CV_LOG_DEBUG = 0,
    CV_LOG_INFO = 1,
    CV_LOG_WARN = 2,
    CV_LOG_ERROR = 3,
} cv_log_level_t;

/* Names the service in every following line; reads CONVEYOR_LOG_LEVEL
 * (debug|info|warn|error, default info). */
void cv_log_init(const char *service);

void cv_log(cv_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cv_logv(cv_log_level_t level, const char *fmt, va_list ap);

#define cv_log_debug(...) cv_log(CV_LOG_DEBUG, __VA_ARGS__)
#define cv_log_info(...) cv_log(CV_LOG_INFO, __VA_ARGS__)
#define cv_log_warn(...) cv_log(CV_LOG_WARN, __VA_ARGS__)

/* Logs at error level and returns -1, for `return cv_error("...")`. */
int cv_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

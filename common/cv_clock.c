/* cv_clock: wall clock plus the offset in CONVEYOR_CLOCK_FILE. */
#include "cv_clock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CV_CLOCK_REREAD_MS 100 /* how stale the offset may get */

/* The offset, in ms, read when the variable and its file were last looked
 * at, and when that was (monotonic ms, -1 never). getenv walks the whole
 * environment, about a thousand instructions, and a stage reads the clock
 * several times per event: the variable and the file are looked at once
 * per CV_CLOCK_REREAD_MS, and in between the clock reads these two. The
 * offset is stored before the time, so a reader that sees the time sees
 * the offset read then. */
static _Atomic int64_t cv_clock_offset;
static _Atomic int64_t cv_clock_checked_at = -1;
/* Held while the variable and the file are looked at: threads that find
 * the offset stale wait for one look instead of each taking their own, so
 * no thread reads the clock before the first look, and looks land in
 * order (one that read the file earlier cannot store its older offset
 * after a newer one, sending the clock back). */
static pthread_mutex_t cv_clock_lock = PTHREAD_MUTEX_INITIALIZER;

int64_t cv_clock_monotonic_ms(void)
{
    return cv_clock_monotonic_us() / 1000;
}

int64_t cv_clock_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads the whole number of seconds in `path`; 0 when the file is missing,
 * unreadable or does not hold such a number. */
static int64_t cv_clock_read_offset(const char *path)
{
    char text[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n;
    do {
        n = read(fd, text, sizeof(text) - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text)
        return 0;
    while (*end != '\0' && isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return 0;
    /* a century either way is plenty for tests and keeps ms in range */
    if (value > 3155760000LL || value < -3155760000LL)
        return 0;
    return value;
}

static int64_t cv_clock_offset_ms(void)
{
    int64_t now = cv_clock_monotonic_ms();
    int64_t checked_at = atomic_load(&cv_clock_checked_at);
    if (checked_at >= 0 && now - checked_at < CV_CLOCK_REREAD_MS)
        return atomic_load(&cv_clock_offset); /* the usual case */
    pthread_mutex_lock(&cv_clock_lock);
    checked_at = atomic_load(&cv_clock_checked_at);
    if (checked_at < 0 || now - checked_at >= CV_CLOCK_REREAD_MS) {
        const char *path = getenv("CONVEYOR_CLOCK_FILE");
        int64_t offset_s =
            path != NULL && path[0] != '\0' ? cv_clock_read_offset(path) : 0;
        atomic_store(&cv_clock_offset, offset_s * 1000);
        atomic_store(&cv_clock_checked_at, now);
    }
    pthread_mutex_unlock(&cv_clock_lock);
    return atomic_load(&cv_clock_offset);
}

int64_t cv_clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return wall + cv_clock_offset_ms();
}

int64_t cv_clock_now_at_monotonic(int64_t monotonic_ms)
{
    int64_t left = monotonic_ms - cv_clock_monotonic_ms();
    return cv_clock_now_ms() + (left > 0 ? left : 0);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
int64_t cv_clock_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of a day number, the inverse of cv_clock_days_from_civil. */
void cv_clock_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

char *cv_clock_format(int64_t ms, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    int64_t days = ms / 86400000;
    int64_t rest = ms % 86400000;
    if (rest < 0) {
        rest += 86400000;
        days -= 1;
    }
    int64_t year;
    int month, day;
    cv_clock_civil_from_days(days, &year, &month, &day);
    int hour = (int)(rest / 3600000);
    int minute = (int)(rest / 60000 % 60);
    int second = (int)(rest / 1000 % 60);
    int milli = (int)(rest % 1000);
    if (size < CV_CLOCK_FORMAT_SIZE || year < 0 || year > 9999) {
        snprintf(buf, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 year, month, day, hour, minute, second, milli);
        return buf;
    }
    /* the same text written digit by digit: events and cards carry times
     * formatted so, several per event, and snprintf was a visible share */
    const struct {
        int value;  /* the field */
        int digits; /* its width */
        char after; /* the separator after it, '\0' for none */
    } fields[] = {{(int)year, 4, '-'}, {month, 2, '-'}, {day, 2, 'T'},
                  {hour, 2, ':'},      {minute, 2, ':'}, {second, 2, '.'},
                  {milli, 3, 'Z'}};
    char *at = buf;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        int value = fields[i].value;
        for (int d = fields[i].digits - 1; d >= 0; d--) {
            at[d] = (char)('0' + value % 10);
            value /= 10;
        }
        at += fields[i].digits;
        *at++ = fields[i].after;
    }
    *at = '\0';
    return buf;
}

/* Reads exactly `digits` decimal digits at *p into *value. */
static bool cv_clock_digits(const char **p, int digits, int *value)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += digits;
    *value = v;
    return true;
}

static int cv_clock_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && leap)
        return 29;
    return days[month - 1];
}

int cv_clock_parse(const char *text, int64_t *ms)
{
    if (text == NULL || ms == NULL)
        return -1;
    const char *p = text;
    int year, month, day, hour = 0, minute = 0, second = 0, milli = 0;
    int offset_min = 0;
    if (!cv_clock_digits(&p, 4, &year) || *p++ != '-' ||
        !cv_clock_digits(&p, 2, &month) || *p++ != '-' ||
        !cv_clock_digits(&p, 2, &day))
        return -1;
    if (month < 1 || month > 12 || day < 1 ||
        day > cv_clock_days_in_month(year, month))
        return -1;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (!cv_clock_digits(&p, 2, &hour) || *p++ != ':' ||
            !cv_clock_digits(&p, 2, &minute) || *p++ != ':' ||
            !cv_clock_digits(&p, 2, &second))
            return -1;
        if (hour > 23 || minute > 59 || second > 60)
            return -1;
        if (*p == '.' || *p == ',') {
            p++;
            int scale = 100, count = 0;
            while (*p >= '0' && *p <= '9') {
                milli += (*p - '0') * scale;
                scale /= 10;
                count++;
                p++;
            }
            if (count == 0)
                return -1;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om;
            p++;
            if (!cv_clock_digits(&p, 2, &oh) || *p++ != ':' ||
                !cv_clock_digits(&p, 2, &om))
                return -1;
            if (oh > 23 || om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
    }
    int64_t days = cv_clock_days_from_civil(year, month, day);
    int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second -
                      (int64_t)offset_min * 60;
    *ms = seconds * 1000 + milli;
    return 0;
}

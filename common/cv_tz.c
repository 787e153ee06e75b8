/* cv_tz: TZif zone files and POSIX TZ rules, without the C library's
 * global localtime state.
 *
 * A zone is its transition table (UTC instant -> local time type) plus,
 * for instants after the last transition, the POSIX TZ string of the
 * file's footer ("CET-1CEST,M3.5.0,M10.5.0/3"). Debian ships "slim" files
 * whose table ends at the last rule change, so the footer is what answers
 * for every date from then on. */
#include "cv_tz.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_log.h"

#define TZ_NAME_MAX 128          /* bytes in a zone name */
#define TZ_FILE_MAX (512 * 1024) /* a zone file larger than this is bad */
#define TZ_TYPES_MAX 256         /* local time types in a file (format) */
#define TZ_CACHE_MAX 512         /* names (good or bad) remembered */
#define TZ_SPAN_S (30 * 3600)    /* wider than any UTC offset, for look-ups */

/* One POSIX rule date: "Mm.w.d", "Jn" or "n", with the local time of day
 * the change happens (seconds, may be negative or over 24 h). */
typedef struct {
    char kind;  /* 'M', 'J' (1..365, no Feb 29) or 'D' (0..365) */
    int month;  /* M: 1..12 */
    int week;   /* M: 1..5, 5 = last */
    int wday;   /* M: 0 = Sunday */
    int day;    /* J or D: day number */
    int time_s; /* local time of the change, seconds from midnight */
} tz_rule_date_t;

/* The POSIX TZ footer. */
typedef struct {
    bool present;         /* false: no footer (or empty) */
    int std_off;          /* standard offset east of UTC, seconds */
    bool has_dst;         /* a daylight saving part follows */
    int dst_off;          /* daylight offset east of UTC, seconds */
    tz_rule_date_t start; /* when daylight saving starts (in std time) */
    tz_rule_date_t end;   /* when it ends (in daylight time) */
} tz_rule_t;

typedef struct {
    int32_t utoff; /* seconds east of UTC */
    bool isdst;    /* daylight saving time */
} tz_type_t;

struct cv_tz {
    char name[TZ_NAME_MAX]; /* as asked for: "Europe/Moscow" */
    int64_t *times;         /* transition instants, UTC seconds, ascending */
    uint8_t *type_of;       /* the type each transition switches to */
    size_t time_count;      /* entries in times and type_of */
    tz_type_t *types;       /* local time types */
    size_t type_count;      /* entries in types, at least 1 */
    tz_rule_t rule;         /* the footer, for instants after the table */
};

/* ------------------------------------------------------------------ */
/* Civil dates                                                         */

static bool tz_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Weekday (0 = Sunday) of a day number; 1970-01-01 was a Thursday. */
static int tz_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* Floor division for seconds -> days. */
static int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* ------------------------------------------------------------------ */
/* The POSIX TZ string                                                 */

/* Skips a zone abbreviation: "<+07>" or three or more letters. */
static const char *tz_posix_name(const char *p)
{
    if (*p == '<') {
        const char *close = strchr(p, '>');
        return close == NULL ? NULL : close + 1;
    }
    const char *start = p;
    while (isalpha((unsigned char)*p))
        p++;
    return p - start >= 3 ? p : NULL;
}

/* "[+-]hh[:mm[:ss]]" into seconds (hours up to 167, per POSIX and TZif
 * v3). Returns the text after it, or NULL. */
static const char *tz_posix_hms(const char *p, int *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    int parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*p))
            return NULL;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 3) {
            parts[i] = parts[i] * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (i == 2 || *p != ':')
            break;
        p++;
    }
    if (parts[0] > 167 || parts[1] > 59 || parts[2] > 59)
        return NULL;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return p;
}

static const char *tz_posix_int(const char *p, int lo, int hi, int *out)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    int v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        if (v > hi)
            return NULL;
        p++;
    }
    if (v < lo)
        return NULL;
    *out = v;
    return p;
}

/* ",Mm.w.d[/time]" or ",Jn[/time]" or ",n[/time]". */
static const char *tz_posix_date(const char *p, tz_rule_date_t *date)
{
    if (*p != ',')
        return NULL;
    p++;
    memset(date, 0, sizeof(*date));
    date->time_s = 2 * 3600;
    if (*p == 'M') {
        date->kind = 'M';
        p = tz_posix_int(p + 1, 1, 12, &date->month);
        if (p == NULL || *p != '.')
            return NULL;
        p = tz_posix_int(p + 1, 1, 5, &date->week);
        if (p == NULL || *p != '.')
            return NULL;
        p = tz_posix_int(p + 1, 0, 6, &date->wday);
    } else if (*p == 'J') {
        date->kind = 'J';
        p = tz_posix_int(p + 1, 1, 365, &date->day);
    } else {
        date->kind = 'D';
        p = tz_posix_int(p, 0, 365, &date->day);
    }
    if (p == NULL)
        return NULL;
    if (*p == '/')
        p = tz_posix_hms(p + 1, &date->time_s);
    return p;
}

/* Parses a POSIX TZ string such as "MSK-3" or "CET-1CEST,M3.5.0,M10.5.0/3"
 * (offsets there are west of UTC, hence the sign flips). Returns 0 or -1. */
static int tz_posix_parse(const char *text, tz_rule_t *rule)
{
    memset(rule, 0, sizeof(*rule));
    const char *p = tz_posix_name(text);
    int off = 0;
    if (p == NULL)
        return -1;
    p = tz_posix_hms(p, &off);
    if (p == NULL)
        return -1;
    rule->std_off = -off;
    rule->present = true;
    if (*p == '\0')
        return 0;
    p = tz_posix_name(p);
    if (p == NULL)
        return -1;
    rule->has_dst = true;
    rule->dst_off = rule->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        p = tz_posix_hms(p, &off);
        if (p == NULL)
            return -1;
        rule->dst_off = -off;
    }
    if (*p == '\0') {
        /* no dates: POSIX leaves it to the implementation; use the EU
         * rules, which is what glibc does for such strings today */
        rule->start = (tz_rule_date_t){'M', 3, 5, 0, 0, 2 * 3600};
        rule->end = (tz_rule_date_t){'M', 10, 5, 0, 0, 3 * 3600};
        return 0;
    }
    p = tz_posix_date(p, &rule->start);
    if (p == NULL)
        return -1;
    p = tz_posix_date(p, &rule->end);
    if (p == NULL || *p != '\0')
        return -1;
    return 0;
}

/* The day number of a rule date in `year`. */
static int64_t tz_rule_day(const tz_rule_date_t *date, int64_t year)
{
    int64_t jan1 = cv_clock_days_from_civil(year, 1, 1);
    if (date->kind == 'J') {
        /* 1..365, February 29 never counted */
        int n = date->day;
        if (tz_leap(year) && n >= 60)
            n++;
        return jan1 + n - 1;
    }
    if (date->kind == 'D')
        return jan1 + date->day;
    int64_t first = cv_clock_days_from_civil(year, date->month, 1);
    int shift = (date->wday - tz_weekday(first) + 7) % 7;
    int64_t day = first + shift + (int64_t)(date->week - 1) * 7;
    if (date->week == 5) {
        int next_m = date->month == 12 ? 1 : date->month + 1;
        int64_t next_y = date->month == 12 ? year + 1 : year;
        int64_t next_first = cv_clock_days_from_civil(next_y, next_m, 1);
        while (day >= next_first)
            day -= 7;
    }
    return day;
}

/* The footer's offset at `t` (UTC seconds). */
static int tz_rule_offset(const tz_rule_t *rule, int64_t t, bool *isdst)
{
    *isdst = false;
    if (!rule->has_dst)
        return rule->std_off;
    int64_t y;
    int m;
    int d;
    cv_clock_civil_from_days(tz_floor_div(t + rule->std_off, 86400), &y, &m, &d);
    /* the change instants in UTC: start is given in standard time, end in
     * daylight time */
    int64_t start = tz_rule_day(&rule->start, y) * 86400 +
                    rule->start.time_s - rule->std_off;
    int64_t end = tz_rule_day(&rule->end, y) * 86400 + rule->end.time_s -
                  rule->dst_off;
    bool dst;
    if (start < end)
        dst = t >= start && t < end;
    else /* southern hemisphere: daylight time spans the new year */
        dst = !(t >= end && t < start);
    *isdst = dst;
    return dst ? rule->dst_off : rule->std_off;
}

/* ------------------------------------------------------------------ */
/* The TZif file                                                       */

static uint32_t tz_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int64_t tz_be64(const unsigned char *p)
{
    uint64_t v = (uint64_t)tz_be32(p) << 32 | tz_be32(p + 4);
    return (int64_t)v;
}

static void tz_free(cv_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->times);
    free(tz->type_of);
    free(tz->types);
    free(tz);
}

/* Reads the file's header counts at `p` (44 bytes available). */
static int tz_counts(const unsigned char *p, size_t counts[6])
{
    if (memcmp(p, "TZif", 4) != 0)
        return -1;
    for (int i = 0; i < 6; i++)
        counts[i] = tz_be32(p + 20 + 4 * i);
    return 0;
}

/* Builds a zone from the bytes of a TZif file. NULL when malformed. */
static cv_tz_t *tz_parse(const unsigned char *buf, size_t len, const char *name)
{
    cv_tz_t *tz = NULL;
    size_t c[6]; /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
    if (len < 44 || tz_counts(buf, c) != 0)
        goto fail;
    bool v2 = buf[4] >= '2';
    size_t v1_size = c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    const unsigned char *p = buf + 44;
    size_t tsize = 4;
    size_t rest = len - 44;
    if (v2) {
        if (rest < v1_size + 44)
            goto fail;
        p += v1_size;
        rest -= v1_size;
        if (tz_counts(p, c) != 0)
            goto fail;
        p += 44;
        rest -= 44;
        tsize = 8;
    }
    size_t timecnt = c[3];
    size_t typecnt = c[4];
    if (typecnt == 0 || typecnt > TZ_TYPES_MAX || timecnt > len)
        goto fail;
    size_t data_size = timecnt * (tsize + 1) + typecnt * 6 + c[5] +
                       c[2] * (tsize + 4) + c[1] + c[0];
    if (rest < data_size)
        goto fail;
    tz = calloc(1, sizeof(*tz));
    if (tz == NULL)
        goto fail;
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    tz->times = calloc(timecnt + 1, sizeof(*tz->times));
    tz->type_of = calloc(timecnt + 1, 1);
    tz->types = calloc(typecnt, sizeof(*tz->types));
    if (tz->times == NULL || tz->type_of == NULL || tz->types == NULL)
        goto fail;
    for (size_t i = 0; i < timecnt; i++) {
        tz->times[i] = tsize == 8 ? tz_be64(p + i * 8)
                                  : (int64_t)(int32_t)tz_be32(p + i * 4);
        if (i > 0 && tz->times[i] <= tz->times[i - 1])
            goto fail;
    }
    p += timecnt * tsize;
    for (size_t i = 0; i < timecnt; i++) {
        if (p[i] >= typecnt)
            goto fail;
        tz->type_of[i] = p[i];
    }
    p += timecnt;
    for (size_t i = 0; i < typecnt; i++) {
        int32_t off = (int32_t)tz_be32(p + i * 6);
        if (off < -25 * 3600 || off > 26 * 3600)
            goto fail;
        tz->types[i].utoff = off;
        tz->types[i].isdst = p[i * 6 + 4] != 0;
    }
    p += typecnt * 6;
    tz->time_count = timecnt;
    tz->type_count = typecnt;
    p += c[5] + c[2] * (tsize + 4) + c[1] + c[0];
    rest -= data_size;
    if (v2 && rest >= 2 && p[0] == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', rest - 1);
        size_t n = nl == NULL ? 0 : (size_t)(nl - (p + 1));
        char footer[128];
        if (n > 0 && n < sizeof(footer)) {
            memcpy(footer, p + 1, n);
            footer[n] = '\0';
            if (tz_posix_parse(footer, &tz->rule) != 0) {
                cv_log_warn("zone '%s': cannot read its rule '%s'", name,
                            footer);
                memset(&tz->rule, 0, sizeof(tz->rule));
            }
        }
    }
    return tz;
fail:
    tz_free(tz);
    return NULL;
}

/* The folder zone files are read from: $TZDIR, or the system's. */
static const char *tz_dir(void)
{
    const char *dir = getenv("TZDIR");
    return dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo";
}

/* A name may only name a file inside the zoneinfo folder. */
static bool tz_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= TZ_NAME_MAX || name[0] == '/' || name[0] == '.')
        return false;
    if (strstr(name, "..") != NULL || strstr(name, "//") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '/' && ch != '_' && ch != '-' && ch != '+')
            return false;
    }
    return true;
}

static cv_tz_t *tz_load(const char *name)
{
    char path[512];
    unsigned char *buf = NULL;
    cv_tz_t *tz = NULL;
    FILE *f = NULL;
    int n = snprintf(path, sizeof(path), "%s/%s", tz_dir(), name);
    if (n < 0 || (size_t)n >= sizeof(path))
        goto out;
    f = fopen(path, "rb");
    if (f == NULL)
        goto out;
    buf = malloc(TZ_FILE_MAX);
    if (buf == NULL)
        goto out;
    size_t len = fread(buf, 1, TZ_FILE_MAX, f);
    if (len == 0 || len == TZ_FILE_MAX)
        goto out;
    tz = tz_parse(buf, len, name);
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    return tz;
}

/* ------------------------------------------------------------------ */
/* The cache                                                           */

typedef struct tz_entry {
    char name[TZ_NAME_MAX]; /* the name asked for */
    cv_tz_t *tz;            /* NULL: not a zone (remembered as such) */
    struct tz_entry *next;  /* the rest of the cache */
} tz_entry_t;

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_entry_t *tz_cache;
static size_t tz_cache_count;

const cv_tz_t *cv_tz_get(const char *name)
{
    if (name == NULL || !tz_name_ok(name))
        return NULL;
    cv_tz_t *found = NULL;
    pthread_mutex_lock(&tz_lock);
    for (tz_entry_t *e = tz_cache; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            found = e->tz;
            goto out;
        }
    }
    found = tz_load(name);
    if (found == NULL && tz_cache_count >= TZ_CACHE_MAX)
        goto out; /* do not let bad names grow the cache without end */
    tz_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto out; /* the zone leaks only if we cannot remember it */
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->tz = found;
    e->next = tz_cache;
    tz_cache = e;
    tz_cache_count++;
out:
    pthread_mutex_unlock(&tz_lock);
    return found;
}

const char *cv_tz_name(const cv_tz_t *tz)
{
    return tz == NULL ? "" : tz->name;
}

/* ------------------------------------------------------------------ */
/* Conversions                                                         */

/* The offset east of UTC at UTC second `t`. */
static int tz_offset_at(const cv_tz_t *tz, int64_t t, bool *isdst)
{
    size_t n = tz->time_count;
    if (n == 0 || t < tz->times[0]) {
        if (n == 0 && tz->rule.present)
            return tz_rule_offset(&tz->rule, t, isdst);
        *isdst = tz->types[0].isdst;
        return tz->types[0].utoff;
    }
    if (t >= tz->times[n - 1] && tz->rule.present)
        return tz_rule_offset(&tz->rule, t, isdst);
    /* the last transition at or before t */
    size_t lo = 0;
    size_t hi = n; /* times[lo] <= t < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    const tz_type_t *type = &tz->types[tz->type_of[lo]];
    *isdst = type->isdst;
    return type->utoff;
}

/* ~ +-292 million years; keep well inside int64 seconds and days */
#define TZ_LIMIT_S ((int64_t)1 << 52)

int cv_tz_to_local(const cv_tz_t *tz, int64_t utc_ms, struct tm *local,
                   int *offset_s)
{
    if (tz == NULL || local == NULL)
        return -1;
    int64_t t = tz_floor_div(utc_ms, 1000);
    if (t > TZ_LIMIT_S || t < -TZ_LIMIT_S)
        return -1;
    bool isdst = false;
    int off = tz_offset_at(tz, t, &isdst);
    int64_t lt = t + off;
    int64_t days = tz_floor_div(lt, 86400);
    int64_t secs = lt - days * 86400;
    int64_t y;
    int m;
    int d;
    cv_clock_civil_from_days(days, &y, &m, &d);
    if (y - 1900 > INT_MAX || y - 1900 < INT_MIN)
        return -1;
    memset(local, 0, sizeof(*local));
    local->tm_year = (int)(y - 1900);
    local->tm_mon = m - 1;
    local->tm_mday = d;
    local->tm_hour = (int)(secs / 3600);
    local->tm_min = (int)(secs / 60 % 60);
    local->tm_sec = (int)(secs % 60);
    local->tm_wday = tz_weekday(days);
    local->tm_yday = (int)(days - cv_clock_days_from_civil(y, 1, 1));
    local->tm_isdst = isdst;
    if (offset_s != NULL)
        *offset_s = off;
    return 0;
}

int64_t cv_tz_from_local(const cv_tz_t *tz, const struct tm *local)
{
    if (tz == NULL || local == NULL)
        return INT64_MIN;
    /* the wall time as if it were UTC, with fields normalised */
    int64_t mon = local->tm_mon;
    int64_t year = (int64_t)local->tm_year + 1900 + tz_floor_div(mon, 12);
    mon -= tz_floor_div(mon, 12) * 12;
    int64_t wall = (cv_clock_days_from_civil(year, (int)mon + 1, 1) +
                    (int64_t)local->tm_mday - 1) * 86400 +
                   (int64_t)local->tm_hour * 3600 +
                   (int64_t)local->tm_min * 60 + local->tm_sec;
    /* offsets in force a day and more either side of any reading of the
     * wall time; a solution t satisfies t + offset(t) == wall */
    bool isdst;
    int before = tz_offset_at(tz, wall - TZ_SPAN_S, &isdst);
    int after = tz_offset_at(tz, wall + TZ_SPAN_S, &isdst);
    int candidates[3] = {before, after, tz_offset_at(tz, wall, &isdst)};
    int64_t best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t t = wall - candidates[i];
        if (tz_offset_at(tz, t, &isdst) == candidates[i] && t < best)
            best = t; /* the earlier instant when ambiguous */
    }
    if (best == INT64_MAX)
        best = wall - before; /* a gap: read with the offset before it,
                                 which lands as far past the gap */
    return best * 1000;
}

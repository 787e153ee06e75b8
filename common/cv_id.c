/* cv_id: identifiers that sort by creation time.
 *
 * 12 hex digits of milliseconds since the epoch, 8 of a random tag drawn
 * once per process, 4 of a per-process counter: unique across processes
 * (the tag) and within one (time + counter, 65,536 a millisecond), and in
 * creation order, so every table keyed by them grows at its right edge
 * instead of touching a random page per insert. */
#include "cv_id.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Fills `out` with random bytes: getrandom(2), then /dev/urandom; when
 * both fail (no entropy source at all) a time-and-counter mix that is still
 * unique within the process. */
static void cv_id_random(uint8_t *out, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = getrandom(out + done, size - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (done == size)
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        while (done < size) {
            ssize_t n = read(fd, out + done, size - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        close(fd);
    }
    if (done == size)
        return;
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 32;
    x += atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < size; i++) {
        /* splitmix64 step per byte */
        x += 0x9e3779b97f4a7c15u;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        out[i] = (uint8_t)(z ^ (z >> 31));
    }
}

char *cv_id_new(const char *prefix, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    /* this process's random tag, drawn once */
    static atomic_uint_fast32_t process_tag;
    static atomic_bool tagged;
    static atomic_uint_fast32_t counter;
    if (!atomic_load(&tagged)) {
        uint8_t bytes[4];
        cv_id_random(bytes, sizeof(bytes));
        uint32_t tag = (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 |
                       (uint32_t)bytes[2] << 8 | bytes[3];
        atomic_store(&process_tag, tag);
        atomic_store(&tagged, true);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    unsigned count = (unsigned)(atomic_fetch_add(&counter, 1) & 0xffffu);
    unsigned tag = (unsigned)atomic_load(&process_tag);
    /* "%012llx%08x%04x", written by hand: an id is made for every event,
     * and two snprintf calls were a visible share of a stage's work */
    static const char digits[] = "0123456789abcdef";
    char hex[25];
    uint64_t fields[3] = {ms & 0xffffffffffffULL, tag, count};
    static const int widths[3] = {12, 8, 4};
    char *at = hex;
    for (int f = 0; f < 3; f++)
        for (int shift = (widths[f] - 1) * 4; shift >= 0; shift -= 4)
            *at++ = digits[(fields[f] >> shift) & 0xf];
    *at = '\0';
    size_t prefix_size = prefix != NULL ? strlen(prefix) : 0;
    size_t used = 0;
    if (prefix_size > 0) {
        size_t take = prefix_size < size - 1 ? prefix_size : size - 1;
        memcpy(buf, prefix, take);
        used = take;
        if (used < size - 1)
            buf[used++] = '_';
    }
    size_t take = sizeof(hex) - 1 < size - 1 - used ? sizeof(hex) - 1
                                                     : size - 1 - used;
    memcpy(buf + used, hex, take);
    buf[used + take] = '\0';
    return buf;
}

char *cv_id_secret(const char *prefix, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return buf;
    uint8_t bytes[16];
    cv_id_random(bytes, sizeof(bytes));
    char hex[33];
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    snprintf(buf, size, "%s_%s", prefix ? prefix : "", hex);
    return buf;
}

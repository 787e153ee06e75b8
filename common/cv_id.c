/* cv_id: random identifiers from getrandom(2). */
#include "cv_id.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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
    uint8_t bytes[8];
    cv_id_random(bytes, sizeof(bytes));
    char hex[17];
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    if (prefix == NULL || prefix[0] == '\0')
        snprintf(buf, size, "%s", hex);
    else
        snprintf(buf, size, "%s_%s", prefix, hex);
    return buf;
}

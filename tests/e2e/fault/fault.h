/* fault: what the test-only LD_PRELOAD libraries in this folder share.
 *
 * Each library stands in front of a few libc calls and acts only while
 * the file named by its environment variable (its trigger) exists and the
 * path of the call's fd contains the trigger's first word (e.g.
 * "notifier.db", which also matches notifier.db-wal). The trigger is read
 * on every call: slow, and only ever loaded by tests. Never linked into
 * the services. */
#ifndef FAULT_H
#define FAULT_H

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether the trigger named by the environment variable `env` exists and
 * the path of `fd` contains its first word. What follows that word on the
 * trigger's first line goes to `rest` (`rest_size` bytes, NUL-terminated;
 * NULL for none). errno is left as it was. */
static inline int fault_triggered(const char *env, int fd, char *rest,
                                  size_t rest_size)
{
    const char *trigger = getenv(env);
    if (trigger == NULL || trigger[0] == '\0' || fd < 0)
        return 0;
    int saved = errno;
    char line[512] = "";
    FILE *f = fopen(trigger, "re");
    if (f == NULL) {
        errno = saved;
        return 0;
    }
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    size_t word = strcspn(line, " \t");
    if (rest != NULL && rest_size > 0)
        snprintf(rest, rest_size, "%s", line + word);
    line[word] = '\0';
    char link[64], path[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof(path) - 1);
    errno = saved;
    if (len <= 0 || line[0] == '\0')
        return 0;
    path[len] = '\0';
    return strstr(path, line) != NULL;
}

/* The libc function this one stands in front of, looked up once. */
#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (real_##name == NULL) \
        real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

#endif

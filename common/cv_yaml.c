/* cv_yaml: libcyaml errors, name lists and the arena of loaded files. */
#include "cv_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cv_yaml_log(cyaml_log_t level, void *arg, const char *fmt, va_list args)
{
    cv_yaml_error_t *e = arg;
    if (level < CYAML_LOG_ERROR)
        return;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, args);
    text[strcspn(text, "\n")] = '\0';
    const char *msg = text;
    if (strncmp(msg, "Load: ", 6) == 0)
        msg += 6;
    while (*msg == ' ')
        msg++;
    if (strncmp(msg, "Backtrace:", 10) == 0)
        return;
    if (strncmp(msg, "in ", 3) == 0) {
        /* backtrace lines come innermost first */
        const char *line = strstr(msg, "(line: ");
        if (e->line == 0 && line != NULL)
            e->line = (int)strtol(line + 7, NULL, 10);
        const char *field = strstr(msg, "mapping field '");
        if (e->field[0] == '\0' && field != NULL) {
            field += 15;
            snprintf(e->field, sizeof(e->field), "%.*s",
                     (int)strcspn(field, "'"), field);
            if (line != NULL)
                e->field_line = (int)strtol(line + 7, NULL, 10);
        }
        return;
    }
    if (e->message[0] == '\0')
        snprintf(e->message, sizeof(e->message), "%s", msg);
}

void cv_yaml_names(char *buf, size_t size, const cyaml_strval_t *names,
                   size_t count)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s",
                         i == 0           ? ""
                         : i + 1 == count ? " or "
                                          : ", ",
                         names[i].str);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

struct cv_yaml_arena {
    struct cv_yaml_arena *next; /* older chunk */
    size_t used;                /* bytes handed out */
    size_t size;                /* bytes in data */
    max_align_t data[];         /* the memory */
};

#define CV_YAML_CHUNK_BYTES (16 * 1024)

void *cv_yaml_alloc(cv_yaml_arena_t **arena, size_t bytes)
{
    size_t align = sizeof(max_align_t);
    bytes = (bytes + align - 1) / align * align;
    if (bytes == 0)
        bytes = align;
    cv_yaml_arena_t *c = *arena;
    if (c == NULL || c->size - c->used < bytes) {
        size_t size = bytes > CV_YAML_CHUNK_BYTES ? bytes : CV_YAML_CHUNK_BYTES;
        c = calloc(1, sizeof(*c) + size);
        if (c == NULL)
            return NULL;
        c->size = size;
        c->next = *arena;
        *arena = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += bytes;
    return p;
}

char *cv_yaml_strndup(cv_yaml_arena_t **arena, const char *text, size_t n)
{
    char *copy = cv_yaml_alloc(arena, n + 1);
    if (copy != NULL) {
        memcpy(copy, text, n);
        copy[n] = '\0';
    }
    return copy;
}

void cv_yaml_arena_free(cv_yaml_arena_t *arena)
{
    while (arena != NULL) {
        cv_yaml_arena_t *next = arena->next;
        free(arena);
        arena = next;
    }
}

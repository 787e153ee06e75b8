/* cv_yaml: what the YAML files (configuration, scoring and routing rules)
 * share around libcyaml: its first error with the innermost line, a list
 * of allowed names for a message, and the arena a loaded file's structures
 * live in, freed at once. */
#ifndef CV_YAML_H
#define CV_YAML_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stddef.h>

/* libcyaml's first error and where it was, gathered by cv_yaml_log. */
typedef struct {
    char message[512]; /* first error message, without "Load: " */
    char field[128];   /* innermost mapping field named, or "" */
    int line;          /* innermost line, 0 when none */
    int field_line;    /* line of that mapping field, 0 when none */
} cv_yaml_error_t;

/* A cyaml_config_t.log_fn: keeps the first error in the cv_yaml_error_t
 * given as log_ctx (zeroed first), and the innermost line and mapping
 * field of its backtrace. */
void cv_yaml_log(cyaml_log_t level, void *arg, const char *fmt, va_list args);

/* "a, b or c" of the names, into buf. */
void cv_yaml_names(char *buf, size_t size, const cyaml_strval_t *names,
                   size_t count);

/* Memory handed out in chunks and freed together (a loaded model or
 * chain); start with a NULL pointer. */
typedef struct cv_yaml_arena cv_yaml_arena_t;

/* Zeroed, aligned memory; NULL when out of memory. */
void *cv_yaml_alloc(cv_yaml_arena_t **arena, size_t bytes);
/* A NUL-terminated copy of text[0..n); NULL when out of memory. */
char *cv_yaml_strndup(cv_yaml_arena_t **arena, const char *text, size_t n);
/* Frees every chunk. NULL-safe. */
void cv_yaml_arena_free(cv_yaml_arena_t *arena);

#endif

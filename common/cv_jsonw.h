/* cv_jsonw: JSON text written directly, identical to what
 * json_dumps(..., JSON_COMPACT) makes of the same jansson value. */
#ifndef CV_JSONW_H
#define CV_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include "conveyor.pb-c.h"

/* A growing JSON text. */
typedef struct {
    char *data;      /* NUL-terminated once anything was added; owned */
    size_t length;   /* bytes used */
    size_t capacity; /* bytes allocated */
    bool failed;     /* out of memory, or something only jansson writes the
                        way json_dumps does: take the jansson path */
} cv_jsonw_t;

void cv_jsonw_init(cv_jsonw_t *b);
void cv_jsonw_clear(cv_jsonw_t *b); /* frees; may be reused */
/* Appends bytes as they are. */
void cv_jsonw_raw(cv_jsonw_t *b, const char *text, size_t n);
/* Appends a C string as it is (JSON punctuation, literal keys). */
void cv_jsonw_append(cv_jsonw_t *b, const char *text);
/* Appends a string as json_dumps writes it; text that is not valid UTF-8
 * (or NULL) fails the buffer. */
void cv_jsonw_string(cv_jsonw_t *b, const char *text);
/* Bytes cv_jsonw_format_int needs: 20 digits, a sign, the NUL. */
#define CV_JSONW_INT_SIZE 24
/* Writes `value` as printf's %lld does, and a NUL, into out; returns its
 * length. Without printf: several numbers are written for every event. */
size_t cv_jsonw_format_int(char out[CV_JSONW_INT_SIZE], long long value);
/* Appends `value` as cv_jsonw_format_int writes it. */
void cv_jsonw_int(cv_jsonw_t *b, long long value);
/* `"key":`, after a comma unless it is the first member. */
void cv_jsonw_member(cv_jsonw_t *b, const char *key, bool first);
/* `,"key":"text"` when the text is set and not empty, as
 * cv_event_lead_to_json leaves the others out. */
void cv_jsonw_text_member(cv_jsonw_t *b, const char *key, const char *text);
/* Bytes of the UTF-8 sequence at `s` as jansson accepts it (no overlong
 * forms, surrogates or code points above U+10FFFF), or 0. */
size_t cv_jsonw_utf8_length(const unsigned char *s);
/* The lead as json_dumps(cv_event_lead_to_json(lead), JSON_COMPACT). */
void cv_jsonw_lead(cv_jsonw_t *b, const Conveyor__Lead *lead);

#endif

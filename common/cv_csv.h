/* cv_csv: a streaming reader of CSV files as spreadsheets write them.
 *
 * RFC 4180 and what Excel, LibreOffice and Google Sheets really produce:
 * fields separated by ',', ';' or TAB (detected from the first line when
 * not given), optionally quoted with '"' (a quote inside a quoted field
 * written twice); quoted fields may hold separators and line breaks; lines
 * end with CRLF, LF or CR; a UTF-8 byte order mark at the start of the
 * file is skipped. Lenient where spreadsheets are sloppy: a quote inside
 * an unquoted field, or text after a closing quote, is kept as text.
 *
 * Every record carries the line it starts on and its byte offsets, so a
 * caller can say where a row came from and later resume at a record
 * boundary (cv_csv_seek). Malformed input never stops the reader: a record
 * longer than `record_max`, or one whose quote is never closed, comes back
 * with `error` set, and reading goes on with the line after the one it
 * started on. Bytes are passed through as they are (a field may even hold
 * NUL): checking the encoding is the caller's business.
 *
 * The reader owns its buffers; a record's texts stay valid until the next
 * cv_csv_next, cv_csv_seek or cv_csv_destroy. The FILE is not owned. */
#ifndef CV_CSV_H
#define CV_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CV_CSV_RECORD_MAX (64 * 1024) /* default bytes in one record */

typedef struct cv_csv cv_csv_t;

/* One record (a row) as read. */
typedef struct {
    const char *const *fields; /* `count` texts, quotes removed, each
                                  NUL-terminated (owned by the reader) */
    const size_t *lengths;     /* bytes in each field, without the NUL */
    size_t count;              /* fields, at least 1 ("" for a blank line) */
    int64_t line;              /* line the record starts on, from 1 */
    int64_t offset;            /* byte offset of its first byte */
    int64_t next_offset;       /* byte offset of the record after it */
    int64_t next_line;         /* the line that record starts on */
    const char *raw;           /* the record's bytes as in the file, without
                                  the line end (for a malformed record: its
                                  first line, at most record_max bytes) */
    size_t raw_length;         /* bytes in raw */
    const char *error;         /* NULL, or why the record is malformed
                                  ("unclosed quote", ...): then `fields`
                                  holds nothing usable (count 0) */
} cv_csv_record_t;

/* A reader of `file` from its current position, which must be the start
 * of the file (or of a record, with cv_csv_seek). `delimiter` is ',', ';'
 * or '\t', or 0 to detect it from the first line; `record_max` is the
 * most bytes one record may take (0: CV_CSV_RECORD_MAX). NULL when out of
 * memory or the delimiter is not one of those. */
cv_csv_t *cv_csv_new(FILE *file, char delimiter, size_t record_max);

/* NULL-safe; nulls *self_p. Does not close the file. */
void cv_csv_destroy(cv_csv_t **self_p);

/* Reads the next record into `record`. Returns 1 with a record (possibly
 * a malformed one: check record->error), 0 at the end of the file, or -1
 * when the file cannot be read (errno says why). */
int cv_csv_next(cv_csv_t *self, cv_csv_record_t *record);

/* Continues at byte `offset`, which starts line `line` and a record (a
 * record's next_offset and next_line, remembered from an earlier run).
 * The delimiter stays what it was (or detected on the next read when it
 * is still unknown). 0, or -1 when the file cannot be positioned. */
int cv_csv_seek(cv_csv_t *self, int64_t offset, int64_t line);

/* The delimiter in use: given, detected, or 0 while not yet known. */
char cv_csv_delimiter(const cv_csv_t *self);

/* The delimiter of a header line: whichever of ',', ';' and TAB appears
 * most often outside quotes (',' when none does or on a tie with it). */
char cv_csv_detect_delimiter(const char *line, size_t length);

#endif

/* cv_csv: a streaming reader of CSV files as spreadsheets write them. */
#include "cv_csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define CSV_READ_CHUNK (256 * 1024) /* bytes asked of fread at a time */

struct cv_csv {
    FILE *file;          /* read from (not owned) */
    char delimiter;      /* ',', ';' or '\t'; 0 until detected */
    size_t record_max;   /* bytes one record may take */
    char *buf;           /* file bytes from `base` on (owned) */
    size_t cap;          /* bytes allocated in buf */
    size_t len;          /* bytes of buf holding file data */
    size_t start;        /* where the next record starts in buf */
    int64_t base;        /* file offset of buf[0] */
    int64_t line;        /* line number at `start` */
    bool eof;            /* fread found the end of the file */
    bool bom_checked;    /* the start of the file was looked at */
    char *text;          /* field texts of the record, NUL after each
                            (owned; each byte read makes at most one
                            byte here, a delimiter a NUL) */
    size_t *starts;      /* where each field starts in text (owned) */
    const char **fields; /* the record's field pointers (owned array) */
    size_t *lengths;     /* the record's field lengths (owned) */
    size_t field_cap;    /* entries allocated in starts/fields/lengths */
    char *raw_copy;      /* a malformed record's first line (owned) */
};

/* What parsing the bytes in the buffer came to. */
typedef enum {
    CSV_RECORD,    /* a whole record */
    CSV_NEED_MORE, /* the buffer ends inside the record */
    CSV_TOO_LONG,  /* longer than record_max */
    CSV_UNCLOSED,  /* the file ends inside a quoted field */
    CSV_END,       /* no bytes left at all */
} csv_result_t;

cv_csv_t *cv_csv_new(FILE *file, char delimiter, size_t record_max)
{
    if (delimiter != 0 && delimiter != ',' && delimiter != ';' &&
        delimiter != '\t')
        return NULL;
    cv_csv_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->file = file;
    self->delimiter = delimiter;
    self->record_max = record_max > 0 ? record_max : CV_CSV_RECORD_MAX;
    self->cap = self->record_max + CSV_READ_CHUNK;
    self->buf = malloc(self->cap);
    /* record_max + 1 bytes are parsed before a record is too long, and
     * the last field's NUL follows them */
    self->text = malloc(self->record_max + 2);
    self->raw_copy = malloc(self->record_max + 1);
    self->line = 1;
    if (self->buf == NULL || self->text == NULL || self->raw_copy == NULL)
        cv_csv_destroy(&self);
    return self;
}

void cv_csv_destroy(cv_csv_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_csv_t *self = *self_p;
    free(self->buf);
    free(self->text);
    free(self->starts);
    free(self->fields);
    free(self->lengths);
    free(self->raw_copy);
    free(self);
    *self_p = NULL;
}

char cv_csv_delimiter(const cv_csv_t *self)
{
    return self->delimiter;
}

char cv_csv_detect_delimiter(const char *line, size_t length)
{
    size_t commas = 0;
    size_t semicolons = 0;
    size_t tabs = 0;
    bool quoted = false;
    for (size_t i = 0; i < length; i++) {
        char c = line[i];
        if (c == '"')
            quoted = !quoted;
        else if (quoted)
            continue;
        else if (c == ',')
            commas++;
        else if (c == ';')
            semicolons++;
        else if (c == '\t')
            tabs++;
    }
    if (semicolons > commas && semicolons >= tabs)
        return ';';
    if (tabs > commas && tabs > semicolons)
        return '\t';
    return ',';
}

int cv_csv_seek(cv_csv_t *self, int64_t offset, int64_t line)
{
    if (fseeko(self->file, (off_t)offset, SEEK_SET) != 0)
        return -1;
    self->base = offset;
    self->len = 0;
    self->start = 0;
    self->line = line;
    self->eof = false;
    self->bom_checked = offset > 0;
    return 0;
}

/* Moves the unread bytes to the front of the buffer and reads more after
 * them. 0 (also at the end of the file: then eof is set), or -1. */
static int csv_fill(cv_csv_t *self)
{
    if (self->eof)
        return 0;
    if (self->start > 0) {
        memmove(self->buf, self->buf + self->start, self->len - self->start);
        self->base += (int64_t)self->start;
        self->len -= self->start;
        self->start = 0;
    }
    size_t room = self->cap - self->len;
    if (room == 0)
        return 0;
    size_t n = fread(self->buf + self->len, 1,
                     room < CSV_READ_CHUNK ? room : CSV_READ_CHUNK, self->file);
    if (n == 0) {
        if (ferror(self->file))
            return -1;
        self->eof = true;
    }
    self->len += n;
    return 0;
}

/* Makes sure the field arrays hold `count` entries. */
static int csv_fields_reserve(cv_csv_t *self, size_t count)
{
    if (count <= self->field_cap)
        return 0;
    size_t cap = self->field_cap > 0 ? self->field_cap * 2 : 32;
    while (cap < count)
        cap *= 2;
    size_t *starts = realloc(self->starts, cap * sizeof(*starts));
    if (starts != NULL)
        self->starts = starts;
    const char **fields = realloc(self->fields, cap * sizeof(*fields));
    if (fields != NULL)
        self->fields = fields;
    size_t *lengths = realloc(self->lengths, cap * sizeof(*lengths));
    if (lengths != NULL)
        self->lengths = lengths;
    if (starts == NULL || fields == NULL || lengths == NULL)
        return -1;
    self->field_cap = cap;
    return 0;
}

/* Parses the record at `start`. On CSV_RECORD, *end is where its line end
 * begins, *next where the next record starts, *lines the line breaks it
 * spans (its own line end included) and the fields are in text/starts. */
static csv_result_t csv_parse(cv_csv_t *self, size_t *count, size_t *end,
                              size_t *next, int64_t *lines, bool *oom)
{
    enum { FIELD_START, UNQUOTED, QUOTED, AFTER_QUOTE } state = FIELD_START;
    const char *buf = self->buf;
    const char delim = self->delimiter;
    size_t pos = self->start;
    size_t t = 0;       /* bytes used in text */
    size_t n = 0;       /* fields finished */
    int64_t breaks = 0; /* line breaks inside quoted fields */
    if (pos == self->len && self->eof)
        return CSV_END;
    if (csv_fields_reserve(self, 1) != 0) {
        *oom = true;
        return CSV_END;
    }
    self->starts[0] = 0;
    for (;;) {
        if (pos - self->start > self->record_max)
            return CSV_TOO_LONG;
        if (pos == self->len) {
            if (!self->eof)
                return CSV_NEED_MORE;
            if (state == QUOTED)
                return CSV_UNCLOSED;
            /* the last record of a file without a final line end */
            *end = pos;
            *next = pos;
            *lines = breaks;
            break;
        }
        char c = buf[pos];
        if (state == QUOTED) {
            if (c == '"') {
                if (pos + 1 == self->len && !self->eof)
                    return CSV_NEED_MORE;
                if (pos + 1 < self->len && buf[pos + 1] == '"') {
                    self->text[t++] = '"';
                    pos += 2;
                } else {
                    state = AFTER_QUOTE;
                    pos++;
                }
                continue;
            }
            if (c == '\n' ||
                (c == '\r' && (pos + 1 == self->len || buf[pos + 1] != '\n'))) {
                if (c == '\r' && pos + 1 == self->len && !self->eof)
                    return CSV_NEED_MORE;
                breaks++;
            }
            self->text[t++] = c;
            pos++;
            continue;
        }
        if (state == FIELD_START && c == '"') {
            state = QUOTED;
            pos++;
            continue;
        }
        if (c == delim) {
            self->text[t++] = '\0';
            n++;
            if (csv_fields_reserve(self, n + 1) != 0) {
                *oom = true;
                return CSV_END;
            }
            self->starts[n] = t;
            state = FIELD_START;
            pos++;
            continue;
        }
        if (c == '\n' || c == '\r') {
            size_t after = pos + 1;
            if (c == '\r') {
                if (after == self->len && !self->eof)
                    return CSV_NEED_MORE;
                if (after < self->len && buf[after] == '\n')
                    after++;
            }
            *end = pos;
            *next = after;
            *lines = breaks + 1;
            break;
        }
        /* text, a stray quote, or text after a closing quote: kept */
        self->text[t++] = c;
        state = UNQUOTED;
        pos++;
    }
    self->text[t] = '\0';
    /* a sentinel start after the last field gives every field's length,
     * NUL bytes inside a field included */
    if (csv_fields_reserve(self, n + 2) != 0) {
        *oom = true;
        return CSV_END;
    }
    self->starts[n + 1] = t + 1;
    *count = n + 1;
    return CSV_RECORD;
}

/* Where the first line of the record at `start` ends: the offset of the
 * next line in *next (reading on as needed, discarding what is past
 * record_max), and its first record_max bytes copied into raw_copy. */
static int csv_skip_line(cv_csv_t *self, size_t *raw_length)
{
    size_t kept = 0;
    for (;;) {
        const char *p = self->buf + self->start;
        size_t avail = self->len - self->start;
        const char *lf = memchr(p, '\n', avail);
        const char *cr = memchr(p, '\r', lf != NULL ? (size_t)(lf - p) : avail);
        const char *eol = cr != NULL ? cr : lf;
        size_t take = eol != NULL ? (size_t)(eol - p) : avail;
        if (kept < self->record_max) {
            size_t room = self->record_max - kept;
            size_t copy = take < room ? take : room;
            memcpy(self->raw_copy + kept, p, copy);
            kept += copy;
        }
        if (eol != NULL && eol == cr && (size_t)(cr - p) + 1 == avail &&
            !self->eof) {
            /* a CR at the end of the buffer: is an LF next? */
            self->start += take;
            if (csv_fill(self) != 0)
                return -1;
            continue;
        }
        if (eol != NULL) {
            size_t after = (size_t)(eol - p) + 1;
            if (eol == cr && after < avail && p[after] == '\n')
                after++;
            self->start += after;
            self->line++;
            break;
        }
        self->start = self->len;
        if (self->eof)
            break;
        if (csv_fill(self) != 0)
            return -1;
    }
    *raw_length = kept;
    return 0;
}

/* The delimiter from the first line, reading as much of it as needed. */
static int csv_detect(cv_csv_t *self)
{
    for (;;) {
        const char *p = self->buf + self->start;
        size_t avail = self->len - self->start;
        bool quoted = false;
        size_t i = 0;
        while (i < avail && (quoted || (p[i] != '\n' && p[i] != '\r'))) {
            if (p[i] == '"')
                quoted = !quoted;
            i++;
        }
        if (i < avail || self->eof || avail >= self->record_max) {
            self->delimiter = cv_csv_detect_delimiter(p, i);
            return 0;
        }
        if (csv_fill(self) != 0)
            return -1;
    }
}

int cv_csv_next(cv_csv_t *self, cv_csv_record_t *record)
{
    memset(record, 0, sizeof(*record));
    if (!self->bom_checked) {
        while (self->len - self->start < 3 && !self->eof)
            if (csv_fill(self) != 0)
                return -1;
        if (self->len - self->start >= 3 &&
            memcmp(self->buf + self->start, "\xEF\xBB\xBF", 3) == 0)
            self->start += 3;
        self->bom_checked = true;
    }
    if (self->delimiter == 0 && csv_detect(self) != 0)
        return -1;
    size_t count = 0;
    size_t end = 0;
    size_t next = 0;
    int64_t lines = 0;
    bool oom = false;
    csv_result_t result;
    for (;;) {
        result = csv_parse(self, &count, &end, &next, &lines, &oom);
        if (oom) {
            errno = ENOMEM;
            return -1;
        }
        if (result != CSV_NEED_MORE)
            break;
        if (csv_fill(self) != 0)
            return -1;
    }
    if (result == CSV_END)
        return 0;
    record->line = self->line;
    record->offset = self->base + (int64_t)self->start;
    if (result != CSV_RECORD) {
        record->error = result == CSV_TOO_LONG
                            ? "record is too long (an unclosed quote?)"
                            : "unclosed quote";
        size_t raw_length = 0;
        if (csv_skip_line(self, &raw_length) != 0)
            return -1;
        record->raw = self->raw_copy;
        record->raw_length = raw_length;
        record->next_offset = self->base + (int64_t)self->start;
        record->next_line = self->line;
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        self->fields[i] = self->text + self->starts[i];
        self->lengths[i] = self->starts[i + 1] - 1 - self->starts[i];
    }
    record->fields = self->fields;
    record->lengths = self->lengths;
    record->count = count;
    record->raw = self->buf + self->start;
    record->raw_length = end - self->start;
    self->start = next;
    self->line += lines;
    record->next_offset = self->base + (int64_t)self->start;
    record->next_line = self->line;
    return 1;
}

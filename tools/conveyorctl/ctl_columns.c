/* ctl_columns: the header's columns as lead fields; a row as JSON.
 *
 * Call lists come from spreadsheets, CRMs and list vendors, with headers
 * in English or Russian and spelt every way ("E-mail", "Эл. почта",
 * "Контактное лицо"). A header cell is compared without case, spaces or
 * punctuation against the aliases below; a column that is no lead field
 * travels in the lead's `extra` under its own name, so nothing in the
 * file is lost. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CTL_NAME_MAX 200 /* bytes of a header cell kept as a name */

/* A lead field and the header spellings that mean it, each written as
 * ctl_columns_fold makes them. */
typedef struct {
    const char *field;       /* the lead field (API.md) */
    const char *aliases[16]; /* folded header names, NULL-ended */
} ctl_alias_t;

static const ctl_alias_t ctl_aliases[] = {
    {"name",
     {"name", "fullname", "contact", "contactname", "contactperson", "person",
      "fio", "имя", "фио", "контакт", "контактноелицо", "имяконтакта",
      "фамилияимя", "фамилияимяотчество", NULL}},
    {"company",
     {"company", "companyname", "organization", "organisation", "компания",
      "организация", "названиекомпании", "названиеорганизации", "наименование",
      "наименованиеорганизации", "фирма", "юрлицо", NULL}},
    {"phone",
     {"phone", "phonenumber", "tel", "telephone", "mobile", "mobilephone",
      "телефон", "тел", "номертелефона", "мобильный", "мобильныйтелефон",
      "контактныйтелефон", "сотовый", NULL}},
    {"email",
     {"email", "mail", "emailaddress", "почта", "электроннаяпочта", "элпочта",
      "емейл", "имейл", NULL}},
    {"telegram",
     {"telegram", "tg", "telegramusername", "телеграм", "телеграмм", NULL}},
    {"message",
     {"message", "comment", "comments", "note", "notes", "сообщение",
      "комментарий", "комментарии", "примечание", "заметка", NULL}},
    {"region", {"region", "регион", "область", "субъект", "субъектрф", NULL}},
    {"industry", {"industry", "отрасль", "сфера", "сферадеятельности", NULL}},
    {"product", {"product", "продукт", "услуга", "товар", NULL}},
    {"budget", {"budget", "бюджет", NULL}},
    {"currency", {"currency", "валюта", NULL}},
    {"inn", {"inn", "taxid", "инн", NULL}},
    {"timezone", {"timezone", "tz", "часовойпояс", NULL}},
    {"utm_source", {"utmsource", NULL}},
    {"utm_medium", {"utmmedium", NULL}},
    {"utm_campaign", {"utmcampaign", NULL}},
};
#define CTL_ALIAS_COUNT (sizeof(ctl_aliases) / sizeof(ctl_aliases[0]))

typedef struct {
    char *name;        /* the header cell, trimmed (owned) */
    const char *field; /* the lead field, or NULL for `extra` */
} ctl_column_t;

struct ctl_columns {
    ctl_column_t *columns; /* in file order (owned) */
    size_t count;          /* entries in columns */
};

/* A header cell folded for comparison: ASCII and Cyrillic letters
 * lower-cased (Ё as Е), everything but letters and digits dropped. */
static void ctl_columns_fold(const char *text, size_t len, char *out,
                             size_t size)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len && n + 3 < size; i++) {
        unsigned char c = p[i];
        if (c >= 'A' && c <= 'Z') {
            out[n++] = (char)(c - 'A' + 'a');
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            out[n++] = (char)c;
        } else if (c == 0xD0 && i + 1 < len) {
            unsigned char d = p[++i];
            if (d >= 0x90 && d <= 0x9F) { /* А..П -> а..п */
                out[n++] = (char)0xD0;
                out[n++] = (char)(d + 0x20);
            } else if (d >= 0xA0 && d <= 0xAF) { /* Р..Я -> р..я */
                out[n++] = (char)0xD1;
                out[n++] = (char)(d - 0x20);
            } else if (d == 0x81) { /* Ё -> е */
                out[n++] = (char)0xD0;
                out[n++] = (char)0xB5;
            } else {
                out[n++] = (char)c;
                out[n++] = (char)d;
            }
        } else if (c == 0xD1 && i + 1 < len && p[i + 1] == 0x91) {
            out[n++] = (char)0xD0; /* ё -> е */
            out[n++] = (char)0xB5;
            i++;
        } else if (c >= 0x80) {
            out[n++] = (char)c; /* other letters */
        }
    }
    out[n] = '\0';
}

static const char *ctl_columns_lookup(const char *folded)
{
    for (size_t i = 0; i < CTL_ALIAS_COUNT; i++)
        for (size_t j = 0; ctl_aliases[i].aliases[j] != NULL; j++)
            if (strcmp(folded, ctl_aliases[i].aliases[j]) == 0)
                return ctl_aliases[i].field;
    return NULL;
}

/* Bytes of `text` without surrounding spaces and tabs: *start, *len. */
static void ctl_trim(const char *text, size_t length, size_t *start,
                     size_t *len)
{
    size_t a = 0;
    size_t b = length;
    while (a < b && (text[a] == ' ' || text[a] == '\t'))
        a++;
    while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t'))
        b--;
    *start = a;
    *len = b - a;
}

/* True when the `n` bytes at `s` are UTF-8 as jansson accepts it, with no
 * NUL byte (*nul tells which failed). */
static bool ctl_utf8_ok(const char *s, size_t n, bool *nul)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    *nul = false;
    while (i < n) {
        if (p[i] == 0) {
            *nul = true;
            return false;
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        /* cv_jsonw_utf8_length reads at most 4 bytes: never past n */
        unsigned char seq[5] = {0};
        size_t avail = n - i < 4 ? n - i : 4;
        memcpy(seq, p + i, avail);
        size_t len = cv_jsonw_utf8_length(seq);
        if (len == 0 || len > avail)
            return false;
        i += len;
    }
    return true;
}

ctl_columns_t *ctl_columns_new(const cv_csv_record_t *header)
{
    ctl_columns_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->columns = calloc(header->count, sizeof(*self->columns));
    if (self->columns == NULL) {
        free(self);
        return NULL;
    }
    self->count = header->count;
    for (size_t i = 0; i < header->count; i++) {
        ctl_column_t *col = &self->columns[i];
        size_t start = 0;
        size_t len = 0;
        bool nul = false;
        ctl_trim(header->fields[i], header->lengths[i], &start, &len);
        const char *text = header->fields[i] + start;
        if (len > CTL_NAME_MAX)
            len = CTL_NAME_MAX;
        char name[CTL_NAME_MAX + 32];
        if (len == 0 || !ctl_utf8_ok(text, len, &nul))
            snprintf(name, sizeof(name), "column %zu", i + 1);
        else
            snprintf(name, sizeof(name), "%.*s", (int)len, text);
        char folded[CTL_NAME_MAX + 32];
        ctl_columns_fold(name, strlen(name), folded, sizeof(folded));
        const char *field = ctl_columns_lookup(folded);
        /* a field named by an earlier column: this one is extra */
        for (size_t j = 0; j < i && field != NULL; j++)
            if (self->columns[j].field != NULL &&
                strcmp(self->columns[j].field, field) == 0)
                field = NULL;
        col->field = field;
        /* extra members need distinct names: "Телефон (2)" */
        char unique[CTL_NAME_MAX + 48];
        snprintf(unique, sizeof(unique), "%s", name);
        for (int copy = 2;; copy++) {
            bool taken = false;
            for (size_t j = 0; j < i && !taken; j++)
                taken = strcmp(self->columns[j].name, unique) == 0;
            if (!taken)
                break;
            snprintf(unique, sizeof(unique), "%s (%d)", name, copy);
        }
        col->name = strdup(unique);
        if (col->name == NULL) {
            ctl_columns_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void ctl_columns_destroy(ctl_columns_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    ctl_columns_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->columns[i].name);
    free(self->columns);
    free(self);
    *self_p = NULL;
}

size_t ctl_columns_count(const ctl_columns_t *self)
{
    return self->count;
}

const char *ctl_columns_field(const ctl_columns_t *self, size_t i)
{
    return self->columns[i].field;
}

const char *ctl_columns_name(const ctl_columns_t *self, size_t i)
{
    return self->columns[i].name;
}

bool ctl_columns_no_contact(const ctl_columns_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        const char *f = self->columns[i].field;
        if (f != NULL && (strcmp(f, "phone") == 0 || strcmp(f, "email") == 0 ||
                          strcmp(f, "telegram") == 0))
            return false;
    }
    return true;
}

const char *ctl_columns_check(const ctl_columns_t *self,
                              const cv_csv_record_t *record, bool *blank,
                              char *why, size_t why_size)
{
    *blank = false;
    if (record->error != NULL) {
        snprintf(why, why_size, "%s", record->error);
        return why;
    }
    bool empty = true;
    for (size_t i = 0; i < record->count && empty; i++) {
        size_t start = 0;
        size_t len = 0;
        ctl_trim(record->fields[i], record->lengths[i], &start, &len);
        empty = len == 0;
    }
    if (empty) {
        *blank = true;
        return NULL;
    }
    if (record->count != self->count) {
        snprintf(why, why_size, "%zu fields, but the header has %zu",
                 record->count, self->count);
        return why;
    }
    for (size_t i = 0; i < record->count; i++) {
        bool nul = false;
        if (!ctl_utf8_ok(record->fields[i], record->lengths[i], &nul)) {
            snprintf(why, why_size, "%s in column '%s'",
                     nul ? "a NUL byte" : "text that is not UTF-8",
                     self->columns[i].name);
            return why;
        }
    }
    return NULL;
}

/* A budget as spreadsheets write it ("1 500 000", "150000,50"): the
 * number, or false when it is none (sent as text, for intake to refuse
 * with its reason). */
static bool ctl_budget(const char *text, size_t len, double *value)
{
    char digits[64];
    size_t n = 0;
    size_t commas = 0;
    bool dot = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\'')
            continue;
        /* U+00A0 and U+202F, the spaces Excel groups digits with */
        if (c == 0xC2 && i + 1 < len && (unsigned char)text[i + 1] == 0xA0) {
            i++;
            continue;
        }
        if (c == 0xE2 && i + 2 < len && (unsigned char)text[i + 1] == 0x80 &&
            (unsigned char)text[i + 2] == 0xAF) {
            i += 2;
            continue;
        }
        if (n + 1 >= sizeof(digits))
            return false;
        commas += c == ',';
        dot = dot || c == '.';
        digits[n++] = (char)c;
    }
    digits[n] = '\0';
    if (n == 0)
        return false;
    /* a decimal comma, when it is the only separator */
    if (commas == 1 && !dot)
        *strchr(digits, ',') = '.';
    for (size_t i = 0; i < n; i++)
        if (!(digits[i] >= '0' && digits[i] <= '9') && digits[i] != '.')
            return false;
    char *end = NULL;
    double v = strtod(digits, &end);
    if (end == digits || *end != '\0' || !isfinite(v))
        return false;
    *value = v;
    return true;
}

/* Appends a JSON string of `len` bytes (checked UTF-8, no NUL). */
static void ctl_json_text(cv_jsonw_t *out, const char *text, size_t len)
{
    char stack[512];
    char *copy = len < sizeof(stack) ? stack : malloc(len + 1);
    if (copy == NULL) {
        out->failed = true;
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    cv_jsonw_string(out, copy);
    if (copy != stack)
        free(copy);
}

void ctl_columns_row_json(const ctl_columns_t *self,
                          const cv_csv_record_t *record, cv_jsonw_t *out)
{
    cv_jsonw_append(out, "{\"line\":");
    cv_jsonw_int(out, (long long)record->line);
    cv_jsonw_append(out, ",\"lead\":{");
    bool first = true;
    bool any_extra = false;
    for (size_t i = 0; i < self->count; i++) {
        size_t start = 0;
        size_t len = 0;
        ctl_trim(record->fields[i], record->lengths[i], &start, &len);
        const char *field = self->columns[i].field;
        if (len == 0)
            continue;
        if (field == NULL) {
            any_extra = true;
            continue;
        }
        cv_jsonw_member(out, field, first);
        first = false;
        double budget = 0;
        const char *text = record->fields[i] + start;
        if (strcmp(field, "budget") == 0 && ctl_budget(text, len, &budget)) {
            char number[64];
            if (budget == floor(budget) && budget < 9.0e15)
                snprintf(number, sizeof(number), "%.0f", budget);
            else
                snprintf(number, sizeof(number), "%.17g", budget);
            cv_jsonw_append(out, number);
        } else {
            ctl_json_text(out, text, len);
        }
    }
    if (any_extra) {
        cv_jsonw_member(out, "extra", first);
        cv_jsonw_append(out, "{");
        bool first_extra = true;
        for (size_t i = 0; i < self->count; i++) {
            size_t start = 0;
            size_t len = 0;
            ctl_trim(record->fields[i], record->lengths[i], &start, &len);
            if (len == 0 || self->columns[i].field != NULL)
                continue;
            if (!first_extra)
                cv_jsonw_append(out, ",");
            first_extra = false;
            cv_jsonw_string(out, self->columns[i].name);
            cv_jsonw_append(out, ":");
            ctl_json_text(out, record->fields[i] + start, len);
        }
        cv_jsonw_append(out, "}");
    }
    cv_jsonw_append(out, "}}");
}

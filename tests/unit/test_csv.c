/* cv_csv: call lists as spreadsheets save them — Russian Excel with a BOM,
 * ';' and CRLF; Google Sheets with ',' and LF; multi-line comments in
 * quotes; a broken quote that must cost one row, not the rest of the
 * file; and resuming in the middle after an interruption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_csv.h"

/* A temporary file holding `text` (len bytes), at its start. */
static FILE *csv_file(const char *text, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    rewind(f);
    return f;
}

/* Asserts the record's fields are exactly the NULL-terminated `want`. */
static void expect_fields(const cv_csv_record_t *r, const char *const *want)
{
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    if (r->error != NULL)
        fail_msg("line %lld: unexpected error '%s'", (long long)r->line,
                 r->error);
    if (r->count != n)
        fail_msg("line %lld: %zu fields, want %zu", (long long)r->line,
                 r->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(r->fields[i], want[i]);
        assert_int_equal(r->lengths[i], strlen(want[i]));
    }
}

static void test_russian_excel_export(void **state)
{
    (void)state;
    /* Excel "CSV UTF-8": BOM, ';', CRLF, a comment cell with a line break,
     * a ';' and quotes inside */
    static const char text[] =
        "\xEF\xBB\xBF"
        "Имя;Телефон;Компания;Комментарий\r\n"
        "Иван Петров;+7 912 345-67-89;ООО \"Ромашка\";перезвонить\r\n"
        "Анна Смирнова;8 (495) 123-45-67;\"ООО \"\"Вектор; плюс\"\"\";"
        "\"просила КП\r\nпосле 15:00\"\r\n"
        "Олег;;ИП Сидоров;\r\n";
    FILE *f = csv_file(text, sizeof(text) - 1);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    assert_non_null(csv);
    cv_csv_record_t r;

    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_delimiter(csv), ';');
    expect_fields(&r, (const char *[]){"Имя", "Телефон", "Компания",
                                       "Комментарий", NULL});
    assert_int_equal(r.line, 1);
    assert_int_equal(r.offset, 3); /* after the BOM */

    assert_int_equal(cv_csv_next(csv, &r), 1);
    /* a quote in an unquoted cell is just a character */
    expect_fields(&r, (const char *[]){"Иван Петров", "+7 912 345-67-89",
                                       "ООО \"Ромашка\"", "перезвонить", NULL});
    assert_int_equal(r.line, 2);

    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Анна Смирнова", "8 (495) 123-45-67",
                                       "ООО \"Вектор; плюс\"",
                                       "просила КП\r\nпосле 15:00", NULL});
    assert_int_equal(r.line, 3);
    assert_int_equal(r.next_line, 5); /* the comment took two lines */
    /* raw is the record as written, for a file of rejected rows */
    assert_true(r.raw_length > 0);
    assert_memory_equal(r.raw, "Анна Смирнова;", strlen("Анна Смирнова;"));
    assert_int_equal(r.raw[r.raw_length - 1], '"');

    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Олег", "", "ИП Сидоров", "", NULL});
    assert_int_equal(r.line, 5);
    assert_int_equal(r.next_offset, (int64_t)sizeof(text) - 1);

    assert_int_equal(cv_csv_next(csv, &r), 0);
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    assert_null(csv);
    fclose(f);
}

static void test_google_sheets_export(void **state)
{
    (void)state;
    /* ',' and LF, no final line end, a blank line, a quoted empty cell */
    static const char text[] =
        "name,phone,email\n"
        "Maria Ivanova,+7 921 000-11-22,maria@stroy-invest.ru\n"
        "\n"
        "\"Smith, John\",\"\",john@acme.com";
    FILE *f = csv_file(text, sizeof(text) - 1);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    assert_non_null(csv);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_delimiter(csv), ',');
    expect_fields(&r, (const char *[]){"name", "phone", "email", NULL});
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Maria Ivanova", "+7 921 000-11-22",
                                       "maria@stroy-invest.ru", NULL});
    assert_int_equal(cv_csv_next(csv, &r), 1);
    /* a blank line is one empty field: the caller skips it */
    expect_fields(&r, (const char *[]){"", NULL});
    assert_int_equal(r.raw_length, 0);
    assert_int_equal(r.line, 3);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r,
                  (const char *[]){"Smith, John", "", "john@acme.com", NULL});
    assert_int_equal(r.line, 4);
    assert_int_equal(r.next_offset, (int64_t)sizeof(text) - 1);
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    fclose(f);
}

static void test_unclosed_quote_costs_one_line(void **state)
{
    (void)state;
    static const char text[] = "name;phone\n"
                               "\"Broken quote;+79123456789\n"
                               "Good Row;+79123456780\n"
                               "Last Row;+79123456781\n";
    FILE *f = csv_file(text, sizeof(text) - 1);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_string_equal(r.error, "unclosed quote");
    assert_int_equal(r.line, 2);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.raw_length, strlen("\"Broken quote;+79123456789"));
    assert_memory_equal(r.raw, "\"Broken quote;+79123456789", r.raw_length);
    assert_int_equal(r.next_line, 3);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Good Row", "+79123456780", NULL});
    assert_int_equal(r.line, 3);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Last Row", "+79123456781", NULL});
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    fclose(f);
}

static void test_record_too_long(void **state)
{
    (void)state;
    /* a quote opened on line 2 and never closed in a long file: with a
     * 64-byte limit, line 2 is refused and line 3 reads normally */
    char text[4096];
    int n = snprintf(text, sizeof(text), "name,phone\n\"Unclosed,1\n");
    for (int i = 0; i < 40; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "Row %d,+7912345%04d\n", i, i);
    FILE *f = csv_file(text, (size_t)n);
    cv_csv_t *csv = cv_csv_new(f, ',', 64);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_non_null(r.error);
    assert_non_null(strstr(r.error, "too long"));
    assert_int_equal(r.line, 2);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Row 0", "+79123450000", NULL});
    assert_int_equal(r.line, 3);
    cv_csv_destroy(&csv);
    fclose(f);
}

static void test_resume_at_a_record(void **state)
{
    (void)state;
    static const char text[] = "Имя,Телефон,Комментарий\n"
                               "Первый,+79120000001,\"две\nстроки\"\n"
                               "Второй,+79120000002,просто\n"
                               "Третий,+79120000003,\"ещё\nдве\"\n";
    FILE *f = csv_file(text, sizeof(text) - 1);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    /* as if an import acknowledged this row, then was killed */
    int64_t offset = r.next_offset;
    int64_t line = r.next_line;
    assert_int_equal(line, 4);
    cv_csv_destroy(&csv);

    /* a new run reads the header again, then jumps to the saved place */
    rewind(f);
    csv = cv_csv_new(f, 0, 0);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"Имя", "Телефон", "Комментарий", NULL});
    assert_int_equal(cv_csv_seek(csv, offset, line), 0);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r,
                  (const char *[]){"Второй", "+79120000002", "просто", NULL});
    assert_int_equal(r.line, 4);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r,
                  (const char *[]){"Третий", "+79120000003", "ещё\nдве", NULL});
    assert_int_equal(r.line, 5);
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    fclose(f);
}

static void test_many_rows_across_reads(void **state)
{
    (void)state;
    /* ~1.2 MB: records straddle the reader's 256 KiB reads, CRLF pairs
     * and doubled quotes included */
    const int rows = 20000;
    size_t cap = 128 * (size_t)rows + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "name;phone;note\r\n");
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "Клиент %d;+7912%07d;\"он сказал \"\"да\"\"\r\n"
                              "в %d\"\r\n",
                              i, i, i);
    FILE *f = csv_file(text, n);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    for (int i = 0; i < rows; i++) {
        char name[64];
        char phone[64];
        char note[64];
        snprintf(name, sizeof(name), "Клиент %d", i);
        snprintf(phone, sizeof(phone), "+7912%07d", i);
        snprintf(note, sizeof(note), "он сказал \"да\"\r\nв %d", i);
        assert_int_equal(cv_csv_next(csv, &r), 1);
        expect_fields(&r, (const char *[]){name, phone, note, NULL});
        assert_int_equal(r.line, 2 + 2 * (int64_t)i);
    }
    assert_int_equal(r.next_offset, (int64_t)n);
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    fclose(f);
    free(text);
}

static void test_line_ends_and_odd_quotes(void **state)
{
    (void)state;
    /* old Mac CR line ends; text after a closing quote is kept; a field
     * with a NUL byte keeps its length */
    static const char text[] = "a\tb\r\"x\"y\tz\r1\tn\0l\r";
    FILE *f = csv_file(text, sizeof(text) - 1);
    cv_csv_t *csv = cv_csv_new(f, 0, 0);
    cv_csv_record_t r;
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(cv_csv_delimiter(csv), '\t');
    expect_fields(&r, (const char *[]){"a", "b", NULL});
    assert_int_equal(cv_csv_next(csv, &r), 1);
    expect_fields(&r, (const char *[]){"xy", "z", NULL});
    assert_int_equal(r.line, 2);
    assert_int_equal(cv_csv_next(csv, &r), 1);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.lengths[1], 3);
    assert_memory_equal(r.fields[1], "n\0l", 3);
    assert_int_equal(r.line, 3);
    assert_int_equal(cv_csv_next(csv, &r), 0);
    cv_csv_destroy(&csv);
    fclose(f);
}

static void test_detect_delimiter(void **state)
{
    (void)state;
    const char *excel = "Компания;Адрес;ИНН";
    assert_int_equal(cv_csv_detect_delimiter(excel, strlen(excel)), ';');
    /* commas inside a quoted header cell do not count */
    const char *quoted = "\"Фамилия, имя\";Телефон";
    assert_int_equal(cv_csv_detect_delimiter(quoted, strlen(quoted)), ';');
    const char *plain = "name,phone,email";
    assert_int_equal(cv_csv_detect_delimiter(plain, strlen(plain)), ',');
    assert_int_equal(cv_csv_detect_delimiter("phone", 5), ',');
    assert_null(cv_csv_new(stdin, '|', 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_russian_excel_export),
        cmocka_unit_test(test_google_sheets_export),
        cmocka_unit_test(test_unclosed_quote_costs_one_line),
        cmocka_unit_test(test_record_too_long),
        cmocka_unit_test(test_resume_at_a_record),
        cmocka_unit_test(test_many_rows_across_reads),
        cmocka_unit_test(test_line_ends_and_odd_quotes),
        cmocka_unit_test(test_detect_delimiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

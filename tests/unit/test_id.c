/* Identifiers: unique, in creation order, and secrets that are not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cv_id.h"

static int compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_ids_are_unique_and_in_creation_order(void **state)
{
    (void)state;
    enum { count = 20000 };
    char (*ids)[CV_ID_SIZE] = calloc(count, CV_ID_SIZE);
    for (int i = 0; i < count; i++) {
        cv_id_new("lead", ids[i], CV_ID_SIZE);
        assert_int_equal(strlen(ids[i]), strlen("lead_") + 24);
        assert_memory_equal(ids[i], "lead_", 5);
        if (i > 0 && memcmp(ids[i] + 5, ids[i - 1] + 5, 12) != 0)
            /* a later millisecond sorts later */
            assert_true(strcmp(ids[i], ids[i - 1]) > 0);
    }
    qsort(ids, count, CV_ID_SIZE, compare);
    for (int i = 1; i < count; i++)
        assert_string_not_equal(ids[i], ids[i - 1]);
    free(ids);
}

static void test_secrets_are_long_and_differ(void **state)
{
    (void)state;
    char a[CV_ID_SIZE];
    char b[CV_ID_SIZE];
    cv_id_secret("tok", a, sizeof(a));
    cv_id_secret("tok", b, sizeof(b));
    assert_int_equal(strlen(a), strlen("tok_") + 32);
    assert_string_not_equal(a, b);
    /* no shared prefix beyond what chance allows */
    assert_true(memcmp(a + 4, b + 4, 8) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_are_unique_and_in_creation_order),
        cmocka_unit_test(test_secrets_are_long_and_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_log: the lines an operator reads on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_log.h"

/* Runs `fn` with stderr sent to a file and returns what it wrote. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/cv-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char text[8192];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, text, sizeof(text) - 1);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return text;
}

static void log_disk_full(void)
{
    cv_log_init("intake");
    assert_int_equal(cv_error("cannot open '%s': %s", "var/intake.db",
                              "disk full"),
                     -1);
}

static void test_line_is_logfmt(void **state)
{
    (void)state;
    unsetenv("CONVEYOR_LOG_LEVEL");
    char *text = capture(log_disk_full);
    assert_int_equal(strncmp(text, "ts=", 3), 0);
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_int_equal(text[26], 'Z');
    assert_non_null(strstr(text, " level=error service=intake msg=\"cannot "
                                 "open 'var/intake.db': disk full\"\n"));
    /* exactly one line */
    assert_int_equal(strchr(text, '\n')[1], '\0');
}

static void log_awkward(void)
{
    cv_log_init("console");
    cv_log_info("two\nlines and a \"quote\" and a \\ backslash");
}

static void test_message_stays_on_one_line(void **state)
{
    (void)state;
    unsetenv("CONVEYOR_LOG_LEVEL");
    char *text = capture(log_awkward);
    assert_non_null(strstr(text, "level=info service=console msg=\"two\\n"
                                 "lines and a \\\"quote\\\" and a \\\\ "
                                 "backslash\"\n"));
    assert_int_equal(strchr(text, '\n')[1], '\0');
}

static void log_each_level(void)
{
    cv_log_init("routing");
    cv_log_debug("a debug line");
    cv_log_info("an info line");
    cv_log_warn("a warn line");
    cv_error("an error line");
}

static void test_level_filters_lines(void **state)
{
    (void)state;
    setenv("CONVEYOR_LOG_LEVEL", "warn", 1);
    char *text = capture(log_each_level);
    assert_null(strstr(text, "debug line"));
    assert_null(strstr(text, "info line"));
    assert_non_null(strstr(text, "level=warn service=routing msg=\"a warn"));
    assert_non_null(strstr(text, "level=error service=routing msg=\"an err"));

    setenv("CONVEYOR_LOG_LEVEL", "debug", 1);
    text = capture(log_each_level);
    assert_non_null(strstr(text, "level=debug service=routing"));
    assert_non_null(strstr(text, "level=info service=routing"));

    unsetenv("CONVEYOR_LOG_LEVEL");
    text = capture(log_each_level);
    assert_null(strstr(text, "debug line"));
    assert_non_null(strstr(text, "an info line"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_is_logfmt),
        cmocka_unit_test(test_message_stays_on_one_line),
        cmocka_unit_test(test_level_filters_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* cv_config: defaults, the YAML file, the environment and the command
 * line, in that order, as an operator configures a service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_config.h"

extern char **environ;

typedef struct {
    char dir[64];      /* temporary folder */
    char data[128];    /* data dir inside it */
    char yaml[128];    /* config file inside it */
    char stderr_text[4096]; /* what the last load_captured logged */
} fixture_t;

/* Removes every CONVEYOR_ variable so the host's settings do not leak in. */
static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "CONVEYOR_", 9) == 0) {
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof(name), "%.*s", (int)n, *e);
                break;
            }
        }
        if (name[0] == '\0')
            return;
        unsetenv(name);
    }
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cv-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->data, sizeof(f->data), "%s/var", f->dir);
    snprintf(f->yaml, sizeof(f->yaml), "%s/conveyor.yaml", f->dir);
    clear_env();
    setenv("CONVEYOR_DATA_DIR", f->data, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    clear_env();
    free(f);
    return 0;
}

static void write_yaml(fixture_t *f, const char *text)
{
    FILE *out = fopen(f->yaml, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

/* cv_config_load with stderr captured into f->stderr_text. */
static int load_captured(fixture_t *f, cv_config_t *cfg, const char *service,
                         int argc, char **argv)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/stderr", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    int rc = cv_config_load(cfg, service, argc, argv);
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, f->stderr_text, sizeof(f->stderr_text) - 1);
    f->stderr_text[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static void assert_logged(fixture_t *f, const char *part)
{
    if (strstr(f->stderr_text, part) == NULL)
        fail_msg("'%s' not in the log:\n%s", part, f->stderr_text);
}

static void test_defaults(void **state)
{
    fixture_t *f = *state;
    cv_config_t cfg;
    char *argv[] = {"scoring", NULL};
    assert_int_equal(cv_config_load(&cfg, "scoring", 1, argv), 0);
    assert_string_equal(cfg.service, "scoring");
    assert_string_equal(cfg.instance, "");
    assert_string_equal(cfg.data_dir, f->data);
    char db[256];
    snprintf(db, sizeof(db), "%s/scoring.db", f->data);
    assert_string_equal(cfg.db_path, db);
    assert_string_equal(cfg.broker_bind, "tcp://127.0.0.1:5555");
    assert_string_equal(cfg.broker_endpoint, "tcp://127.0.0.1:5555");
    assert_string_equal(cfg.intake_addr, "127.0.0.1:8080");
    assert_string_equal(cfg.console_addr, "127.0.0.1:8081");
    assert_string_equal(cfg.admin_addr, "127.0.0.1:9101");
    assert_true(cfg.demo);
    assert_int_equal(cfg.max_body_bytes, 1024 * 1024);
    assert_int_equal(cfg.batch_max, 256);
    assert_int_equal(cfg.batch_linger_ms, 3);
    assert_int_equal(cfg.lease_ms, 3000);
    assert_int_equal(cfg.heartbeat_ms, 500);
    assert_int_equal(cfg.http_threads, 2);
    assert_int_equal(cfg.first_contact_minutes, 30);
    assert_false(cfg.bus_background); /* scoring is on a lead's way */

    /* the data dir was created */
    struct stat st;
    assert_int_equal(stat(f->data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    assert_int_equal(cv_config_load(&cfg, "notifier", 1, argv), 0);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:9106");
    assert_int_equal(cv_config_load(&cfg, "broker", 1, argv), 0);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:9100");
    /* every stage paces its commits alike, the console too */
    assert_int_equal(cv_config_load(&cfg, "console", 1, argv), 0);
    assert_int_equal(cfg.batch_linger_ms, 3);
    /* ...and only the console's read model works in the background */
    assert_true(cfg.bus_background);
    assert_int_equal(cv_config_load(&cfg, "followup-scheduler", 1, argv), 0);
    assert_int_equal(cfg.batch_linger_ms, 3);
    assert_false(cfg.bus_background);
}

static void test_bus_background_from_file_and_env(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "bus_background: true\n");
    setenv("CONVEYOR_CONFIG", f->yaml, 1);
    cv_config_t cfg;
    char *argv[] = {"routing", NULL};
    assert_int_equal(cv_config_load(&cfg, "routing", 1, argv), 0);
    assert_true(cfg.bus_background);
    setenv("CONVEYOR_BUS_BACKGROUND", "0", 1);
    assert_int_equal(cv_config_load(&cfg, "routing", 1, argv), 0);
    assert_false(cfg.bus_background);
    unsetenv("CONVEYOR_CONFIG");
    assert_int_equal(cv_config_load(&cfg, "console", 1, argv), 0);
    assert_false(cfg.bus_background); /* the console's default, turned off */
    setenv("CONVEYOR_BUS_BACKGROUND", "1", 1);
    assert_int_equal(cv_config_load(&cfg, "scoring", 1, argv), 0);
    assert_true(cfg.bus_background);
}

/* Yes and no are written the usual ways; anything else is refused by
 * name, not taken for a yes; an empty value leaves the default. */
static void test_env_yes_and_no(void **state)
{
    fixture_t *f = *state;
    cv_config_t cfg;
    char *argv[] = {"console", NULL};
    const char *no[] = {"0", "false", "NO", "off"};
    const char *yes[] = {"1", "True", "yes", "ON"};
    for (size_t i = 0; i < 4; i++) {
        setenv("CONVEYOR_BUS_BACKGROUND", no[i], 1);
        setenv("CONVEYOR_DEMO", no[i], 1);
        assert_int_equal(cv_config_load(&cfg, "console", 1, argv), 0);
        assert_false(cfg.bus_background);
        assert_false(cfg.demo);
        setenv("CONVEYOR_BUS_BACKGROUND", yes[i], 1);
        setenv("CONVEYOR_DEMO", yes[i], 1);
        assert_int_equal(cv_config_load(&cfg, "scoring", 1, argv), 0);
        assert_true(cfg.bus_background);
        assert_true(cfg.demo);
    }
    setenv("CONVEYOR_BUS_BACKGROUND", "", 1);
    setenv("CONVEYOR_DEMO", "", 1);
    assert_int_equal(cv_config_load(&cfg, "console", 1, argv), 0);
    assert_true(cfg.bus_background); /* the console's default */
    assert_true(cfg.demo);
    setenv("CONVEYOR_BUS_BACKGROUND", "maybe", 1);
    assert_int_equal(load_captured(f, &cfg, "console", 1, argv), -1);
    assert_logged(f, "CONVEYOR_BUS_BACKGROUND='maybe'");
    unsetenv("CONVEYOR_BUS_BACKGROUND");
    setenv("CONVEYOR_DEMO", "nope", 1);
    assert_int_equal(load_captured(f, &cfg, "console", 1, argv), -1);
    assert_logged(f, "CONVEYOR_DEMO='nope'");
}

static void test_file_then_env_then_argv(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "# conveyor settings\n"
                  "broker_bind: tcp://127.0.0.1:6000\n"
                  "batch_max: 64\n"
                  "lease_ms: 1500\n"
                  "demo: false\n"
                  "admin_token: from-file\n"
                  "admin_addrs:\n"
                  "  routing: 127.0.0.1:9902\n"
                  "  scoring: 127.0.0.1:9901\n");
    setenv("CONVEYOR_CONFIG", f->yaml, 1);
    setenv("CONVEYOR_ADMIN_TOKEN", "from-env", 1);
    setenv("CONVEYOR_HTTP_THREADS", "8", 1);
    cv_config_t cfg;
    char *argv[] = {"routing", NULL};
    assert_int_equal(cv_config_load(&cfg, "routing", 1, argv), 0);
    assert_string_equal(cfg.broker_bind, "tcp://127.0.0.1:6000");
    /* peers connect where the broker binds unless told otherwise */
    assert_string_equal(cfg.broker_endpoint, "tcp://127.0.0.1:6000");
    assert_int_equal(cfg.batch_max, 64);
    assert_int_equal(cfg.lease_ms, 1500);
    assert_false(cfg.demo);
    assert_string_equal(cfg.admin_token, "from-env");
    assert_int_equal(cfg.http_threads, 8);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:9902");

    /* the environment beats the file, the command line beats both */
    setenv("CONVEYOR_ROUTING_ADMIN_ADDR", "127.0.0.1:7002", 1);
    setenv("CONVEYOR_BROKER", "tcp://127.0.0.1:6001,tcp://127.0.0.1:6002", 1);
    char other[160];
    snprintf(other, sizeof(other), "%s/elsewhere", f->dir);
    char *args[] = {"routing", "--admin-addr", "127.0.0.1:7003",
                    "--instance", "2", "--data-dir", other, NULL};
    assert_int_equal(cv_config_load(&cfg, "routing", 7, args), 0);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:7003");
    assert_string_equal(cfg.broker_endpoint,
                        "tcp://127.0.0.1:6001,tcp://127.0.0.1:6002");
    assert_string_equal(cfg.instance, "2");
    char db[256];
    snprintf(db, sizeof(db), "%s/routing-2.db", other);
    assert_string_equal(cfg.db_path, db);

    char *env_only[] = {"routing", NULL};
    assert_int_equal(cv_config_load(&cfg, "routing", 1, env_only), 0);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:7002");
}

static void test_config_option_names_the_file(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "first_contact_minutes: 5\n");
    char opt[200];
    snprintf(opt, sizeof(opt), "--config=%s", f->yaml);
    cv_config_t cfg;
    char *argv[] = {"followup-scheduler", opt, NULL};
    assert_int_equal(cv_config_load(&cfg, "followup-scheduler", 2, argv), 0);
    assert_int_equal(cfg.first_contact_minutes, 5);
    assert_string_equal(cfg.admin_addr, "127.0.0.1:9104");
}

static void test_unknown_key_is_refused_naming_the_line(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "data_dir: ./var\n"
                  "\n"
                  "batch_maximum: 10\n");
    cv_config_t cfg;
    char *argv[] = {"scoring", "--config", f->yaml, NULL};
    assert_int_equal(load_captured(f, &cfg, "scoring", 3, argv), -1);
    assert_logged(f, f->yaml);
    assert_logged(f, "line 3");
    assert_logged(f, "unknown key 'batch_maximum'");
}

static void test_bad_value_is_refused_naming_the_line(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "intake_addr: 127.0.0.1:8080\n"
                  "lease_ms: soon\n");
    cv_config_t cfg;
    char *argv[] = {"scoring", "--config", f->yaml, NULL};
    assert_int_equal(load_captured(f, &cfg, "scoring", 3, argv), -1);
    assert_logged(f, "line 2");
    assert_logged(f, "'lease_ms'");

    write_yaml(f, "console_addr: [broken\n");
    assert_int_equal(load_captured(f, &cfg, "scoring", 3, argv), -1);
    assert_logged(f, "cannot load config");

    write_yaml(f, "batch_max: 0\n");
    assert_int_equal(load_captured(f, &cfg, "scoring", 3, argv), -1);
    assert_logged(f, "batch_max");

    write_yaml(f, "intake_addr: localhost\n");
    assert_int_equal(load_captured(f, &cfg, "intake", 3, argv), -1);
    assert_logged(f, "intake_addr 'localhost'");
}

static void test_missing_file_and_unknown_option_are_refused(void **state)
{
    fixture_t *f = *state;
    cv_config_t cfg;
    char *missing[] = {"scoring", "--config", "/nonexistent/conveyor.yaml",
                       NULL};
    assert_int_equal(load_captured(f, &cfg, "scoring", 3, missing), -1);
    assert_logged(f, "'/nonexistent/conveyor.yaml'");

    char *unknown[] = {"scoring", "--verbose", NULL};
    assert_int_equal(load_captured(f, &cfg, "scoring", 2, unknown), -1);
    assert_logged(f, "unknown option '--verbose'");

    char *no_value[] = {"scoring", "--instance", NULL};
    assert_int_equal(load_captured(f, &cfg, "scoring", 2, no_value), -1);
    assert_logged(f, "'--instance' needs a value");

    setenv("CONVEYOR_MAX_BODY", "lots", 1);
    char *plain[] = {"intake", NULL};
    assert_int_equal(load_captured(f, &cfg, "intake", 1, plain), -1);
    assert_logged(f, "CONVEYOR_MAX_BODY='lots'");
}

static void test_empty_file_changes_nothing(void **state)
{
    fixture_t *f = *state;
    write_yaml(f, "# nothing set yet\n");
    cv_config_t cfg;
    char *argv[] = {"console", "--config", f->yaml, NULL};
    assert_int_equal(cv_config_load(&cfg, "console", 3, argv), 0);
    assert_int_equal(cfg.batch_max, 256);
    assert_string_equal(cfg.admin_addr, "");
}

static void test_data_dir_is_created_with_parents(void **state)
{
    fixture_t *f = *state;
    char deep[200];
    snprintf(deep, sizeof(deep), "%s/a/b/c", f->dir);
    cv_config_t cfg;
    char *argv[] = {"intake", "--data-dir", deep, NULL};
    assert_int_equal(cv_config_load(&cfg, "intake", 3, argv), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* a file where the folder should be is refused */
    char file[200];
    snprintf(file, sizeof(file), "%s/a/b/c/plain", f->dir);
    FILE *out = fopen(file, "w");
    assert_non_null(out);
    fclose(out);
    char *bad[] = {"intake", "--data-dir", file, NULL};
    assert_int_equal(load_captured(f, &cfg, "intake", 3, bad), -1);
    assert_logged(f, "not a directory");
}

/* deploy/conveyor.example.yaml documents the defaults: loading it must
 * change nothing. Run from the top of the source tree (make unit does). */
static void test_example_file_matches_defaults(void **state)
{
    (void)state;
    const char *example = "deploy/conveyor.example.yaml";
    if (access(example, R_OK) != 0)
        fail_msg("cannot read '%s': run from the top of the source tree",
                 example);
    const char *services[] = {"broker", "intake", "scoring", "routing",
                              "proposal-generator", "followup-scheduler",
                              "account-retention", "notifier", "console"};
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        cv_config_t plain, from_file;
        char *argv[] = {"x", "--config", (char *)example, NULL};
        assert_int_equal(cv_config_load(&plain, services[i], 1, argv), 0);
        assert_int_equal(cv_config_load(&from_file, services[i], 3, argv), 0);
        if (memcmp(&plain, &from_file, sizeof(plain)) != 0)
            fail_msg("'%s' changes the defaults of %s", example, services[i]);
    }
}

static void test_split_addr(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(cv_config_split_addr("127.0.0.1:8080", host,
                                          sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(cv_config_split_addr(":9000", host, sizeof(host), &port),
                     0);
    assert_string_equal(host, "");
    assert_int_equal(port, 9000);
    assert_int_equal(cv_config_split_addr("[::1]:81", host, sizeof(host),
                                          &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 81);
    assert_int_equal(cv_config_split_addr("localhost", host, sizeof(host),
                                          &port), -1);
    assert_int_equal(cv_config_split_addr("host:", host, sizeof(host), &port),
                     -1);
    assert_int_equal(cv_config_split_addr("host:99999", host, sizeof(host),
                                          &port), -1);
    assert_int_equal(cv_config_split_addr("host:80x", host, sizeof(host),
                                          &port), -1);
    assert_int_equal(cv_config_split_addr("host:-1", host, sizeof(host),
                                          &port), -1);
    assert_int_equal(cv_config_split_addr("averyveryverylonghostname:1", host,
                                          8, &port), -1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_file_then_env_then_argv),
        T(test_bus_background_from_file_and_env),
        T(test_env_yes_and_no),
        T(test_config_option_names_the_file),
        T(test_unknown_key_is_refused_naming_the_line),
        T(test_bad_value_is_refused_naming_the_line),
        T(test_missing_file_and_unknown_option_are_refused),
        T(test_empty_file_changes_nothing),
        T(test_data_dir_is_created_with_parents),
        T(test_example_file_matches_defaults),
        T(test_split_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The bus between two stages: every event applied exactly once, through a
 * real broker over real ZeroMQ sockets and real SQLite files, even when the
 * receiver fails, events repeat, garbage arrives or the broker restarts. */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <cmocka.h>
#include <zmq.h>

#include "cv_broker.h"
#include "cv_bus.h"
#include "cv_clock.h"
#include "cv_config.h"
#include "cv_event.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_store.h"
#include "cv_wire.h"

typedef struct {
    char dir[256];            /* temp folder for both databases */
    char endpoint[256];       /* the broker's address */
    cv_broker_t *broker;
    pthread_t broker_thread;
    cv_config_t sender_config;
    cv_config_t worker_config;
    cv_store_t *sender_store; /* the sender bus's connection */
    cv_store_t *writer_store; /* the test's own connection to sender.db,
                                 as an HTTP thread has in a service */
    cv_store_t *worker_store;
    cv_bus_t *sender;
    cv_bus_t *worker;
    pthread_t sender_thread;
    pthread_t worker_thread;
    int fail_first;           /* handler fails the first try of this many */
    int failures;             /* failures so far */
    bool mixed;               /* handler: lead ids ending in 3 are dropped,
                                 in 7 fail once, after writing their row */
    bool failed_once[1000];   /* mixed: lead number failed already */
    int64_t applied_ms[1000]; /* monotonic time each lead number was
                                 applied (its transaction's, roughly) */
    bool watch_turns;         /* the worker gets a source that counts... */
    atomic_bool work_fails;   /* (whose work fails while this is set) */
    atomic_int turns_ok;      /* ...the turns that committed */
    atomic_int turns_failed;  /* ...and those that rolled back */
    atomic_bool wrote;        /* a source wrote in the turn running */
    bool check_packed;        /* handler: compares cv_bus_current_packed
                                 with the event it got */
    int packed_same;          /* events whose bytes matched */
    int packed_wrong;         /* events whose bytes did not */
    atomic_int packed_outside; /* turn ends where the accessor gave bytes */
    bool watch_commits;        /* the worker gets a before_commit source */
    atomic_bool commit_fails;  /* (whose hook fails once while set) */
    atomic_int before_unseen;  /* hook calls that saw rows another
                                  connection could not see yet */
    atomic_int before_outside; /* hook calls outside a transaction */
    atomic_int applied_idle;   /* events the handler ran as SCHED_IDLE... */
    atomic_int applied_other;  /* ...and at the usual priority */
    bool worker_unprivileged;  /* the worker's loop runs without
                                  CAP_SYS_NICE, as a container's user */
} fixture_t;

static const char *worker_schema[] = {
    "CREATE TABLE applied (lead_id TEXT PRIMARY KEY, times INTEGER)",
};

static void *broker_main(void *arg)
{
    cv_broker_run(arg);
    return NULL;
}

static void *bus_main(void *arg)
{
    cv_bus_run(arg);
    return NULL;
}

/* Runs a bus as an unprivileged user would: this thread drops
 * CAP_SYS_NICE from its effective set (capabilities are per thread), so
 * with RLIMIT_NICE 0 it could not come back from SCHED_IDLE. */
static void *unprivileged_bus_main(void *arg)
{
    struct __user_cap_header_struct header = {
        .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, caps) != 0)
        return NULL;
    caps[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
    if (syscall(SYS_capset, &header, caps) != 0)
        return NULL;
    cv_bus_run(arg);
    return NULL;
}

/* Applies a lead_received event: counts how often each lead was applied. */
static int worker_handle(void *arg, cv_bus_t *bus,
                         const Conveyor__Envelope *event)
{
    fixture_t *f = arg;
    if (sched_getscheduler(0) == SCHED_IDLE)
        atomic_fetch_add(&f->applied_idle, 1);
    else
        atomic_fetch_add(&f->applied_other, 1);
    if (f->failures < f->fail_first) {
        f->failures++;
        return -1;
    }
    if (f->check_packed) {
        /* the bytes are this event as it arrived: they unpack to it, and
         * are what packing it writes (protobuf-c packs deterministically);
         * the body cut out of them is the LeadReceived packed alone */
        const uint8_t *data = NULL;
        size_t size = 0;
        size_t packed_size = 0;
        uint8_t *packed = cv_event_pack(event, &packed_size);
        Conveyor__Envelope *back = NULL;
        const uint8_t *body = NULL;
        size_t body_size = 0;
        uint8_t alone[512];
        bool same =
            cv_bus_current(bus) == event &&
            cv_bus_current_packed(bus, &data, &size) == 0 && packed != NULL &&
            size == packed_size && memcmp(data, packed, size) == 0 &&
            (back = cv_event_unpack(data, size)) != NULL &&
            strcmp(back->event_id, event->event_id) == 0 &&
            cv_event_field_bytes(data, size,
                                 CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED, &body,
                                 &body_size) == 0 &&
            conveyor__lead_received__get_packed_size(event->lead_received) ==
                body_size &&
            body_size <= sizeof(alone) &&
            conveyor__lead_received__pack(event->lead_received, alone) ==
                body_size &&
            memcmp(body, alone, body_size) == 0;
        cv_event_free(back);
        free(packed);
        if (same)
            f->packed_same++;
        else
            f->packed_wrong++;
    }
    const char *lead_id = event->lead_received->lead->lead_id;
    sqlite3_stmt *stmt = cv_store_prepare(
        cv_bus_store(bus),
        "INSERT INTO applied VALUES (?, 1) ON CONFLICT (lead_id) "
        "DO UPDATE SET times = times + 1");
    cv_store_bind_text(stmt, 1, lead_id);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    f->applied_ms[atoi(lead_id + 5) % 1000] = cv_clock_monotonic_ms();
    if (f->mixed) {
        size_t length = strlen(lead_id);
        int number = atoi(lead_id + 5) % 1000; /* "lead_000123" */
        if (lead_id[length - 1] == '3')
            return CV_BUS_DROP; /* its row must not stay */
        if (lead_id[length - 1] == '7' && !f->failed_once[number]) {
            f->failed_once[number] = true;
            return -1; /* its row must not stay; it comes again */
        }
    }
    return 0;
}

/* A source whose work fails once (its turn rolls back) and then has none,
 * and that counts the turns that ended around it. */
static int fail_once_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)bus;
    (void)now_ms;
    fixture_t *f = arg;
    if (atomic_exchange(&f->work_fails, false))
        return -1;
    return 0;
}

static int64_t fail_once_due(void *arg, cv_bus_t *bus)
{
    (void)bus;
    fixture_t *f = arg;
    return atomic_load(&f->work_fails) ? 0 : INT64_MAX;
}

static void count_turn(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    fixture_t *f = arg;
    atomic_fetch_add(ok ? &f->turns_ok : &f->turns_failed, 1);
}

/* A source's work and a turn's end run outside any handler: the
 * accessor has no event there. */
static void packed_not_there(fixture_t *f, cv_bus_t *bus)
{
    const uint8_t *data = NULL;
    size_t size = 0;
    if (cv_bus_current_packed(bus, &data, &size) != -1 ||
        cv_bus_current(bus) != NULL)
        atomic_fetch_add(&f->packed_outside, 1);
}

static int packed_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)now_ms;
    packed_not_there(arg, bus);
    return 0;
}

static int64_t packed_due(void *arg, cv_bus_t *bus)
{
    (void)arg;
    (void)bus;
    return cv_clock_now_ms() + 20; /* every few turns */
}

static void packed_after_turn(void *arg, cv_bus_t *bus, bool ok)
{
    (void)ok;
    packed_not_there(arg, bus);
}

static void config_for(cv_config_t *config, const char *service,
                       const char *endpoint)
{
    memset(config, 0, sizeof(*config));
    snprintf(config->service, sizeof(config->service), "%s", service);
    snprintf(config->broker_endpoint, sizeof(config->broker_endpoint), "%s",
             endpoint);
    config->batch_max = 64;
    config->lease_ms = 400;
    config->heartbeat_ms = 100;
}

/* A second receiving stage, "console", beside the fixture's "scoring". */
typedef struct {
    cv_store_t *store;
    cv_bus_t *bus;
    pthread_t thread;
} stage_t;

static void console_start(fixture_t *f, stage_t *console, int linger_ms)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/console.db", f->dir);
    console->store = cv_store_open(path, worker_schema, 1);
    assert_non_null(console->store);
    cv_config_t config;
    config_for(&config, "console", f->endpoint);
    config.batch_linger_ms = linger_ms;
    cv_bus_options_t options = {
        .config = &config, .store = console->store,
        .worker_service = "console", .handler = worker_handle, .arg = f,
    };
    console->bus = cv_bus_new(&options);
    assert_non_null(console->bus);
    pthread_create(&console->thread, NULL, bus_main, console->bus);
}

static void console_stop(stage_t *console)
{
    cv_bus_stop(console->bus);
    pthread_join(console->thread, NULL);
    cv_bus_destroy(&console->bus);
    cv_store_destroy(&console->store);
}

static void broker_start(fixture_t *f, const char *bind)
{
    f->broker = cv_broker_new(bind, 100);
    assert_non_null(f->broker);
    snprintf(f->endpoint, sizeof(f->endpoint), "%s",
             cv_broker_endpoint(f->broker));
    assert_int_equal(
        pthread_create(&f->broker_thread, NULL, broker_main, f->broker), 0);
}

static void broker_stop(fixture_t *f)
{
    cv_broker_stop(f->broker);
    pthread_join(f->broker_thread, NULL);
    cv_broker_destroy(&f->broker);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cv-test-bus-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    broker_start(f, "tcp://127.0.0.1:*");
    char path[512];
    snprintf(path, sizeof(path), "%s/sender.db", f->dir);
    f->sender_store = cv_store_open(path, NULL, 0);
    f->writer_store = cv_store_open(path, NULL, 0);
    snprintf(path, sizeof(path), "%s/worker.db", f->dir);
    f->worker_store = cv_store_open(path, worker_schema, 1);
    assert_non_null(f->sender_store);
    assert_non_null(f->worker_store);
    assert_non_null(f->writer_store);
    assert_int_equal(cv_outbox_create(f->writer_store), 0);
    config_for(&f->sender_config, "intake", f->endpoint);
    config_for(&f->worker_config, "scoring", f->endpoint);
    *state = f;
    return 0;
}

/* The worker bus ("scoring", worker.db, worker_handle), not yet running:
 * a test that needs no sender makes this one alone. */
static void worker_new(fixture_t *f)
{
    cv_bus_options_t worker = {
        .config = &f->worker_config, .store = f->worker_store,
        .worker_service = "scoring", .handler = worker_handle, .arg = f,
    };
    f->worker = cv_bus_new(&worker);
    assert_non_null(f->worker);
}

/* The worker ("scoring") and sender ("intake") buses, not yet running. */
static void buses_new(fixture_t *f)
{
    worker_new(f);
    cv_bus_options_t sender = {
        .config = &f->sender_config, .store = f->sender_store,
    };
    f->sender = cv_bus_new(&sender);
    assert_non_null(f->sender);
}

static int no_work(void *arg, cv_bus_t *bus, int64_t now_ms);
static int check_before_commit(void *arg, cv_bus_t *bus);

static void buses_start(fixture_t *f)
{
    buses_new(f);
    if (f->watch_turns) {
        cv_bus_source_t watcher = {
            .fd = -1, .work = fail_once_work, .next_due = fail_once_due,
            .turn_ended = count_turn, .arg = f,
        };
        assert_int_equal(cv_bus_add_source(f->worker, &watcher), 0);
    }
    if (f->watch_commits) {
        cv_bus_source_t hook = {
            .fd = -1,
            .work = no_work,
            .before_commit = check_before_commit,
            .arg = f,
        };
        assert_int_equal(cv_bus_add_source(f->worker, &hook), 0);
    }
    if (f->check_packed) {
        cv_bus_source_t after = {
            .fd = -1, .work = packed_work, .next_due = packed_due,
            .turn_ended = packed_after_turn, .arg = f,
        };
        assert_int_equal(cv_bus_add_source(f->worker, &after), 0);
    }
    pthread_create(&f->worker_thread, NULL,
                   f->worker_unprivileged ? unprivileged_bus_main : bus_main,
                   f->worker);
    pthread_create(&f->sender_thread, NULL, bus_main, f->sender);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->sender != NULL) {
        cv_bus_stop(f->sender);
        pthread_join(f->sender_thread, NULL);
    }
    if (f->worker != NULL) {
        cv_bus_stop(f->worker);
        pthread_join(f->worker_thread, NULL);
    }
    cv_bus_destroy(&f->sender);
    cv_bus_destroy(&f->worker);
    cv_store_destroy(&f->sender_store);
    cv_store_destroy(&f->writer_store);
    cv_store_destroy(&f->worker_store);
    if (f->broker != NULL)
        broker_stop(f);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Puts `count` lead_received events into the sender's outbox, committed,
 * with lead ids lead_<first>... ; `event_id` fixes the id when non-NULL;
 * each goes to "scoring", and to `also` too when it is not NULL. */
static void outbox_fill_to(fixture_t *f, int first, int count,
                           const char *event_id, const char *also)
{
    assert_int_equal(cv_store_begin(f->writer_store), 0);
    for (int i = first; i < first + count; i++) {
        char lead_id[32];
        snprintf(lead_id, sizeof(lead_id), "lead_%06d", i);
        Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
        lead.lead_id = lead_id;
        Conveyor__LeadReceived received = CONVEYOR__LEAD_RECEIVED__INIT;
        received.lead = &lead;
        Conveyor__Envelope event = CONVEYOR__ENVELOPE__INIT;
        event.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED;
        event.lead_received = &received;
        event.event_id = (char *)event_id;
        assert_int_equal(cv_outbox_put(f->writer_store, "intake", &event,
                                       "scoring", also, NULL),
                         0);
    }
    assert_int_equal(cv_store_commit(f->writer_store), 0);
    if (f->sender != NULL)
        cv_bus_wake(f->sender);
}

static void outbox_fill(fixture_t *f, int first, int count,
                        const char *event_id)
{
    outbox_fill_to(f, first, count, event_id, NULL);
}

static int64_t count_rows(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
            n = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return n;
}

/* Asks the database at `path` for `sql` (one count) every `poll_ms`
 * until it answers `want` or `seconds` have passed; its last answer. */
static int64_t wait_rows(const char *path, const char *sql, int64_t want,
                         int seconds, int poll_ms)
{
    int64_t deadline = cv_clock_monotonic_ms() + seconds * 1000LL;
    int64_t n;
    while ((n = count_rows(path, sql)) != want &&
           cv_clock_monotonic_ms() < deadline)
        usleep((useconds_t)poll_ms * 1000);
    return n;
}

/* Waits up to `seconds` for the sender's outbox to empty, and asserts it
 * did. */
static void wait_outbox_empty(fixture_t *f, int seconds)
{
    char sender[512];
    snprintf(sender, sizeof(sender), "%s/sender.db", f->dir);
    assert_int_equal(
        wait_rows(sender, "SELECT count(*) FROM cv_outbox", 0, seconds, 50), 0);
}

/* The console's database has `count` events, each applied once, and the
 * worker's too applied each of its own once. */
static void assert_both_applied_once(const char *worker, const char *console,
                                     int count)
{
    assert_int_equal(count_rows(console, "SELECT count(*) FROM applied"),
                     count);
    assert_int_equal(count_rows(console, "SELECT max(times) FROM applied"), 1);
    assert_int_equal(count_rows(worker, "SELECT max(times) FROM applied"), 1);
}

/* Waits up to `seconds` until every lead in [0, total) was applied and the
 * sender's outbox is empty. */
static void wait_delivered(fixture_t *f, int total, int seconds)
{
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    assert_int_equal(
        wait_rows(worker, "SELECT count(*) FROM applied", total, seconds, 50),
        total);
    wait_outbox_empty(f, seconds);
    assert_int_equal(count_rows(worker, "SELECT max(times) FROM applied"), 1);
}

static void test_every_event_applied_exactly_once(void **state)
{
    fixture_t *f = *state;
    outbox_fill(f, 0, 3000, NULL); /* waiting before the buses start */
    buses_start(f);
    outbox_fill(f, 3000, 2000, NULL); /* and while they run */
    wait_delivered(f, 5000, 20);
}

/* A source hears of every turn's end: of the one its failed work rolled
 * back, and of the turns of events alone that committed after it. */
/* A handler gets the envelope it is applying as it arrived, byte for byte
 * (events in batches, a failed event applied again the careful way), and
 * nothing outside its handler. */
static void test_handler_sees_the_bytes_it_applies(void **state)
{
    fixture_t *f = *state;
    f->check_packed = true;
    f->fail_first = 3; /* the first turn is redone event by event */
    outbox_fill(f, 0, 300, NULL);
    buses_start(f);
    outbox_fill(f, 300, 200, NULL);
    wait_delivered(f, 500, 20);
    assert_int_equal(f->packed_wrong, 0);
    assert_true(f->packed_same >= 500);
    assert_int_equal(atomic_load(&f->packed_outside), 0);
}

/* A source with nothing of its own to do (never due). */
static int no_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)arg;
    (void)bus;
    (void)now_ms;
    return 0;
}

/* A before_commit hook: checks that it runs inside the turn's open
 * transaction, after the turn's events, before anyone else can see their
 * rows; fails once when asked. */
static int check_before_commit(void *arg, cv_bus_t *bus)
{
    fixture_t *f = arg;
    cv_store_t *store = cv_bus_store(bus);
    if (sqlite3_get_autocommit(cv_store_db(store)))
        atomic_fetch_add(&f->before_outside, 1);
    sqlite3_stmt *stmt =
        cv_store_prepare(store, "SELECT count(*) FROM applied");
    int64_t mine = -1;
    if (stmt != NULL && cv_store_step_row(stmt) == 0) {
        mine = sqlite3_column_int64(stmt, 0);
        sqlite3_reset(stmt);
    }
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    int64_t theirs = count_rows(worker, "SELECT count(*) FROM applied");
    if (mine > theirs) /* this turn's events, not committed yet */
        atomic_fetch_add(&f->before_unseen, 1);
    if (mine > 0 && atomic_exchange(&f->commit_fails, false))
        return -1;
    return 0;
}

/* before_commit runs in every turn inside its transaction, after its
 * events: their rows are there for it and for nobody else yet; a failing
 * hook rolls the turn back, and its events come again, applied once. */
static void test_before_commit_runs_inside_the_turn(void **state)
{
    fixture_t *f = *state;
    f->watch_commits = true;
    atomic_store(&f->commit_fails, true);
    buses_start(f);
    outbox_fill(f, 0, 50, NULL);
    wait_delivered(f, 50, 10);
    assert_false(atomic_load(&f->commit_fails)); /* it failed a turn */
    assert_true(atomic_load(&f->before_unseen) > 0);
    assert_int_equal(atomic_load(&f->before_outside), 0);
}

static void test_sources_hear_every_turn_end(void **state)
{
    fixture_t *f = *state;
    f->watch_turns = true;
    atomic_store(&f->work_fails, true);
    buses_start(f);
    for (int i = 0; i < 100 && atomic_load(&f->turns_failed) == 0; i++)
        usleep(20 * 1000);
    assert_int_equal(atomic_load(&f->turns_failed), 1);
    int ok_before = atomic_load(&f->turns_ok);
    outbox_fill(f, 0, 50, NULL);
    wait_delivered(f, 50, 10);
    assert_true(atomic_load(&f->turns_ok) > ok_before);
    assert_int_equal(atomic_load(&f->turns_failed), 1);
}

static void test_backlog_larger_than_the_memory_window(void **state)
{
    fixture_t *f = *state;
    /* more than the 10,000 events the sender holds in memory for one
     * destination: the rest wait in SQLite and are loaded as room frees
     * up, in order, none lost */
    for (int i = 0; i < 25000; i += 5000)
        outbox_fill(f, i, 5000, NULL);
    buses_start(f);
    wait_delivered(f, 25000, 90);
}

/* A stage that is down holds up no other: its events wait (at most
 * DEST_WINDOW of them in memory, the rest in SQLite) while the stage that
 * is up gets every event of the same rows, and once the stage comes up it
 * gets all of its own, in full, once each. */
static void test_stage_that_is_down_holds_up_no_other(void **state)
{
    fixture_t *f = *state;
    buses_start(f); /* "scoring" works; nobody works for "console" */
    /* 30,000 rows: far more events for "console" than one destination
     * may hold in memory */
    for (int i = 0; i < 30000; i += 5000)
        outbox_fill_to(f, i, 5000, NULL, "console");
    char worker[512], sender[512], console[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    snprintf(sender, sizeof(sender), "%s/sender.db", f->dir);
    snprintf(console, sizeof(console), "%s/console.db", f->dir);
    const char *owed_console_only =
        "SELECT count(*) FROM cv_outbox WHERE pending = 2";
    assert_int_equal(wait_rows(sender, owed_console_only, 30000, 90, 50),
                     30000);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied"), 30000);
    /* meanwhile the sender offers "console" a few of its events now and
     * then (INFLIGHT_PER_DEST, NAKed, again after NAK_RETRY_MS), not its
     * whole window over and over */
    cv_metric_t *sent =
        cv_metrics_counter("conveyor_bus_events_sent_total", "events sent");
    int64_t window_start = cv_clock_monotonic_ms(); /* spans the reads */
    int64_t sent_before = cv_metric_value(sent);
    usleep(2000 * 1000);
    int64_t offered = cv_metric_value(sent) - sent_before;
    int64_t elapsed = cv_clock_monotonic_ms() - window_start;
    /* 512 every 200 ms: 5,120 in 2 s, however late the sleep ends (going
     * round the whole window: 10,000 every 200 ms, 100,000 in 2 s) */
    assert_true(offered > 0);
    assert_true(offered <= (elapsed / 200 + 2) * 512);

    stage_t console_stage;
    console_start(f, &console_stage, 0);
    wait_outbox_empty(f, 90);
    assert_both_applied_once(worker, console, 30000);
    console_stop(&console_stage);
}

/* The scheduling policy a thread runs at now. */
static int thread_policy(pthread_t thread)
{
    int policy = -1;
    struct sched_param param;
    assert_int_equal(pthread_getschedparam(thread, &policy, &param), 0);
    return policy;
}

/* A background worker's traffic: a backlog of 2,000 events waiting before
 * the buses start (full batches), then 5 sent one at a time (keeping up).
 * The events the worker applied at SCHED_IDLE during the 5 go to
 * *idle_after_backlog. */
static void background_traffic(fixture_t *f, int *idle_after_backlog)
{
    f->worker_config.bus_background = true;
    outbox_fill(f, 0, 2000, NULL);
    buses_start(f);
    wait_delivered(f, 2000, 20);
    int idle_before = atomic_load(&f->applied_idle);
    for (int i = 2000; i < 2005; i++) {
        outbox_fill(f, i, 1, NULL);
        wait_delivered(f, i + 1, 10);
    }
    *idle_after_backlog = atomic_load(&f->applied_idle) - idle_before;
}

/* bus_background: the loop of a background stage (the console's) runs
 * as SCHED_IDLE, the others' keep their priority, and events flow alike;
 * a backlog (full batches) is worked off at the usual priority */
static void test_background_bus_runs_at_idle_priority(void **state)
{
    fixture_t *f = *state;
    int idle_after_backlog = 0;
    background_traffic(f, &idle_after_backlog);
    assert_true(atomic_load(&f->applied_other) >= 64); /* a full batch */
    assert_int_equal(idle_after_backlog, 5);
    assert_int_equal(thread_policy(f->worker_thread), SCHED_IDLE);
    assert_int_equal(thread_policy(f->sender_thread), SCHED_OTHER);
    /* the thread that ran the test is not touched */
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
}

/* A background bus that could not come back from SCHED_IDLE to work off
 * a backlog (no CAP_SYS_NICE, RLIMIT_NICE 0: a container's user) stays in
 * the foreground: a busy machine would otherwise leave it ever further
 * behind. */
static void
test_background_bus_without_privilege_stays_in_foreground(void **state)
{
    fixture_t *f = *state;
    struct rlimit nice_limit;
    assert_int_equal(getrlimit(RLIMIT_NICE, &nice_limit), 0);
    struct rlimit none = {.rlim_cur = 0, .rlim_max = nice_limit.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NICE, &none), 0);
    f->worker_unprivileged = true;
    int idle_after_backlog = 0;
    background_traffic(f, &idle_after_backlog);
    /* the loop chose long before; later tests get the limit back */
    assert_int_equal(setrlimit(RLIMIT_NICE, &nice_limit), 0);
    assert_int_equal(atomic_load(&f->applied_idle), 0);
    assert_true(atomic_load(&f->applied_other) >= 2005);
    assert_int_equal(thread_policy(f->worker_thread), SCHED_OTHER);
}

static void test_failed_event_is_resent_and_applied_once(void **state)
{
    fixture_t *f = *state;
    f->fail_first = 5;
    buses_start(f);
    outbox_fill(f, 0, 50, NULL);
    wait_delivered(f, 50, 10);
    assert_int_equal(f->failures, 5);
}

/* One batch where some events fail and some are dropped: the others'
 * effects are kept once, the failed ones come again and are applied once,
 * the dropped ones leave nothing behind but their inbox rows. */
static void test_failed_and_dropped_events_in_one_batch(void **state)
{
    fixture_t *f = *state;
    f->mixed = true;
    outbox_fill(f, 0, 300, NULL); /* one backlog: batches of 64 */
    buses_start(f);
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    wait_outbox_empty(f, 10);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied"), 270);
    assert_int_equal(count_rows(worker, "SELECT max(times) FROM applied"), 1);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied "
                                        "WHERE lead_id LIKE '%3'"),
                     0);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied "
                                        "WHERE lead_id LIKE '%7'"),
                     30);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM cv_inbox"), 300);
}

/* When the worker applied the first and the last of leads [from,
 * from + count). */
static void applied_span(const fixture_t *f, int from, int count,
                         int64_t *first, int64_t *last)
{
    *first = INT64_MAX;
    *last = 0;
    for (int i = from; i < from + count; i++) {
        *first = f->applied_ms[i] < *first ? f->applied_ms[i] : *first;
        *last = f->applied_ms[i] > *last ? f->applied_ms[i] : *last;
    }
}

/* Waits up to 5 s, looking every 5 ms, until the worker has committed
 * `total` leads, and asserts it has: a test that times the pause must
 * send its next events soon after a commit. */
static void wait_applied(fixture_t *f, int total)
{
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    assert_int_equal(
        wait_rows(worker, "SELECT count(*) FROM applied", total, 5, 5), total);
}

/* batch_linger_ms paces a busy stage's commits, not an idle stage's
 * events: an idle stage applies a burst at once; the events that follow
 * that commit of several within the pause wait for it and share one
 * commit. */
static void test_linger_paces_commits_not_idle_events(void **state)
{
    fixture_t *f = *state;
    f->worker_config.batch_linger_ms = 300;
    buses_start(f);
    usleep(500 * 1000); /* connected, idle */
    int64_t sent = cv_clock_monotonic_ms();
    outbox_fill(f, 0, 20, NULL); /* one message of 20 events */
    wait_delivered(f, 20, 5);
    int64_t burst_first, burst_last;
    applied_span(f, 0, 20, &burst_first, &burst_last);
    assert_true(burst_first - sent < 200); /* not held back */
    outbox_fill(f, 20, 50, NULL); /* right behind it */
    wait_delivered(f, 70, 5);
    int64_t first, last;
    applied_span(f, 20, 50, &first, &last);
    assert_true(first - burst_last >= 280); /* waited for the pause */
    assert_true(last - first < 100);        /* and went together */
}

/* Only a commit that carried several events paces what follows: a lone
 * event right behind a lone event's commit is applied at once, again and
 * again (at 500 leads/s most commits carry one event, and pausing them
 * only added the linger to every hop); a burst behind one too; but the
 * events that trickle in right behind the burst's commit wait for its
 * pause, and go together. */
static void test_linger_paces_only_after_a_shared_commit(void **state)
{
    fixture_t *f = *state;
    f->worker_config.batch_linger_ms = 600;
    buses_start(f);
    usleep(500 * 1000); /* connected, idle */
    outbox_fill(f, 0, 1, NULL);
    wait_applied(f, 1);
    for (int i = 1; i <= 3; i++) {
        int64_t sent = cv_clock_monotonic_ms();
        /* well inside the pause of the commit before: held back, it
         * would wait 300 ms and more */
        assert_true(sent - f->applied_ms[i - 1] < 300);
        outbox_fill(f, i, 1, NULL);
        wait_applied(f, i + 1);
        assert_true(f->applied_ms[i] - sent < 250); /* at once */
    }
    int64_t sent = cv_clock_monotonic_ms();
    assert_true(sent - f->applied_ms[3] < 300);
    outbox_fill(f, 4, 20, NULL); /* a burst: one message of 20 events */
    wait_applied(f, 24);
    int64_t burst_first, burst_last;
    applied_span(f, 4, 20, &burst_first, &burst_last);
    assert_true(burst_first - sent < 250); /* at once, and together */
    assert_true(burst_last - burst_first < 100);
    outbox_fill(f, 24, 1, NULL); /* two lone events right behind it */
    usleep(20 * 1000);
    outbox_fill(f, 25, 1, NULL);
    wait_delivered(f, 26, 5);
    int64_t first, last;
    applied_span(f, 24, 2, &first, &last);
    assert_true(first - burst_last >= 580); /* waited for the pause */
    assert_true(last - first < 100);        /* and went together */
}

/* A bus thread that tells its Linux thread id, so a test can read how
 * often it slept and woke (/proc/self/task/<tid>/status). */
typedef struct {
    cv_bus_t *bus;
    _Atomic pid_t tid;
} watched_bus_t;

static void *watched_bus_main(void *arg)
{
    watched_bus_t *w = arg;
    atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));
    cv_bus_run(w->bus);
    return NULL;
}

static long voluntary_switches(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    char line[256];
    long count = -1;
    while (fgets(line, sizeof(line), file) != NULL)
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            count = strtol(line + 24, NULL, 10);
    fclose(file);
    return count;
}

/* A lingering stage fed a steady stream of small batches sleeps through
 * the linger instead of waking for each batch: 200 batches of two events,
 * 2 ms apart (busy: its commits carry several events, so it paces), with
 * batch_linger_ms 300, wake its thread fewer times than there are batches
 * (each commit's fdatasync and each heartbeat are wakes too). */
static void test_lingering_stage_wakes_per_commit(void **state)
{
    fixture_t *f = *state;
    f->worker_config.batch_linger_ms = 300;
    f->sender_config.lease_ms = 3000; /* no re-send while it lingers */
    /* the feed's own commits need not wait for the disk here */
    assert_int_equal(
        cv_store_exec(f->writer_store, "PRAGMA synchronous = NORMAL"), 0);
    buses_new(f);
    watched_bus_t watched = {.bus = f->worker};
    pthread_create(&f->worker_thread, NULL, watched_bus_main, &watched);
    pthread_create(&f->sender_thread, NULL, bus_main, f->sender);
    outbox_fill(f, 0, 1, NULL);
    wait_delivered(f, 1, 5); /* connected both ways */

    long before = voluntary_switches(atomic_load(&watched.tid));
    int64_t began = cv_clock_monotonic_ms();
    for (int i = 0; i < 200; i++) {
        outbox_fill(f, 1 + 2 * i, 2, NULL);
        usleep(2 * 1000);
    }
    wait_delivered(f, 401, 10);
    long woke = voluntary_switches(atomic_load(&watched.tid)) - before;
    int64_t elapsed = cv_clock_monotonic_ms() - began;
    cv_log_info("200 batches over %lld ms woke the lingering stage %ld times",
                (long long)elapsed, woke);
    assert_true(before >= 0);
    /* about two wakes per linger (its end, the commit's sync) and one per
     * heartbeat, against 1.2 per batch without the hold */
    long expected = 2 * (long)(elapsed / 300 + 1) +
                    (long)(elapsed / f->worker_config.heartbeat_ms);
    assert_true(woke < 100 + expected);
}

static void test_repeated_event_id_is_applied_once(void **state)
{
    fixture_t *f = *state;
    buses_start(f);
    outbox_fill(f, 0, 1, "evt_same");
    outbox_fill(f, 1, 1, "evt_same"); /* same id: the inbox skips it */
    outbox_fill(f, 2, 1, NULL);
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    wait_outbox_empty(f, 10);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied"), 2);
}

/* A peer of our own at the broker, to send it what no bus would. */
static void *rogue_connect(fixture_t *f, void **ctx)
{
    *ctx = zmq_ctx_new();
    void *rogue = zmq_socket(*ctx, ZMQ_DEALER);
    assert_int_equal(zmq_connect(rogue, f->endpoint), 0);
    usleep(200 * 1000);
    return rogue;
}

static void test_garbage_is_dropped_and_work_goes_on(void **state)
{
    fixture_t *f = *state;
    buses_start(f);
    void *ctx = NULL;
    void *rogue = rogue_connect(f, &ctx);
    zmq_send(rogue, "junk", 4, 0);                      /* not CV1 */
    zmq_send(rogue, "CV1", 3, ZMQ_SNDMORE);             /* two frames */
    zmq_send(rogue, "Q", 1, 0);
    zmq_send(rogue, "CV1X", 4, 0);                      /* unknown command */
    zmq_send(rogue, "CV1Q\x40", 5, 0);                  /* field past the end */
    /* a request the broker routes, whose envelope is garbage */
    static const char bad_event[] = "CV1Q\x07scoring\x01\x31\xff\xfe\x01garbage";
    zmq_send(rogue, bad_event, sizeof(bad_event) - 1, 0);
    char reply[64];
    zmq_pollitem_t item = {rogue, 0, ZMQ_POLLIN, 0};
    bool acked = false;
    for (int i = 0; i < 40 && !acked; i++) {
        if (zmq_poll(&item, 1, 50) > 0) {
            int n = zmq_recv(rogue, reply, sizeof(reply), 0);
            /* "CV1A1": the garbage event (message id 1) was acknowledged,
             * so its sender would not send it forever */
            if (n == 5 && memcmp(reply, "CV1A1", 5) == 0)
                acked = true;
        }
    }
    assert_true(acked);
    zmq_close(rogue);
    zmq_ctx_term(ctx);
    outbox_fill(f, 0, 100, NULL);
    wait_delivered(f, 100, 10);
}

/* Waits up to 2 s for one message on `socket`; returns its length, or -1. */
static int receive_within(void *socket, char *buf, size_t size)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 2000) <= 0)
        return -1;
    return zmq_recv(socket, buf, size, 0);
}

/* A backlog goes as a few B messages of many events, not one message per
 * event; a B holding more events than the worker's batch (64 here) is
 * applied over several turns, every event once. */
static void test_backlog_travels_in_batches(void **state)
{
    fixture_t *f = *state;
    cv_metric_t *routed = cv_metrics_counter(
        "conveyor_broker_requests_routed_total", "requests passed on");
    outbox_fill(f, 0, 3000, NULL);
    int64_t before = cv_metric_value(routed);
    buses_start(f);
    wait_delivered(f, 3000, 20);
    int64_t messages = cv_metric_value(routed) - before;
    assert_true(messages > 0);
    assert_true(messages <= 3000 / 20); /* at least 20 events a message */
}

/* A B frame is checked entry by entry: a garbage envelope is acknowledged
 * (re-sending it would not help), a truncated entry is dropped with the
 * rest of its frame, and a B for a service nobody works for is answered
 * with a NAK naming each of its events. */
static void test_garbled_batch_is_dropped_and_work_goes_on(void **state)
{
    fixture_t *f = *state;
    buses_start(f);
    void *ctx = NULL;
    void *rogue = rogue_connect(f, &ctx);

    /* entry "1": an envelope that does not parse; then entry "2", whose
     * length says 1,000 bytes where 3 follow */
    cv_wire_entry_t garbage = {"1", 1, "\xff\xfe\x01garbage", 10};
    uint8_t frame[128];
    size_t size = 0;
    memcpy(frame, "CV1B\x07scoring", 12);
    size = 12;
    frame[size++] = 1;
    frame[size++] = '1';
    memcpy(frame + size, "\x00\x00\x00\x0a", 4);
    size += 4;
    memcpy(frame + size, garbage.payload, garbage.payload_size);
    size += garbage.payload_size;
    frame[size++] = 1;
    frame[size++] = '2';
    memcpy(frame + size, "\x00\x00\x03\xe8xyz", 7);
    size += 7;
    assert_int_equal(zmq_send(rogue, frame, size, 0), (int)size);
    char reply[64];
    int n = receive_within(rogue, reply, sizeof(reply));
    assert_int_equal(n, 5);
    assert_memory_equal(reply, "CV1A1", 5); /* "2" was never taken */

    cv_wire_entry_t nowhere[2] = {{"5", 1, "a", 1}, {"6", 1, "b", 1}};
    assert_int_equal(cv_wire_send_batch(rogue, 0, "nobody", 6, nowhere, 2),
                     0);
    n = receive_within(rogue, reply, sizeof(reply));
    assert_int_equal(n, 7);
    assert_memory_equal(reply, "CV1N5 6", 7);
    zmq_close(rogue);
    zmq_ctx_term(ctx);

    outbox_fill(f, 0, 100, NULL);
    wait_delivered(f, 100, 10);
}

/* A row for two stages that both acknowledge is deleted in one go when the
 * second does: never rewritten (payload and all) to clear the first one's
 * bit on the way. */
static void test_row_for_two_stages_is_written_once_more(void **state)
{
    fixture_t *f = *state;
    /* the sender's database logs every UPDATE of an outbox row */
    assert_int_equal(
        cv_store_exec(f->writer_store,
                      "CREATE TABLE outbox_updates (id INTEGER);"
                      "CREATE TRIGGER log_outbox_update AFTER UPDATE ON "
                      "cv_outbox BEGIN INSERT INTO outbox_updates "
                      "VALUES (new.id); END;"),
        0);
    char console[512];
    snprintf(console, sizeof(console), "%s/console.db", f->dir);
    /* the console acknowledges later than scoring, as it does in the
     * conveyor (it paces its commits) */
    stage_t console_stage;
    console_start(f, &console_stage, 100);
    buses_start(f);
    for (int i = 0; i < 10; i++) { /* ten turns' worth, one after another */
        outbox_fill_to(f, i * 20, 20, NULL, "console");
        usleep(30 * 1000);
    }
    wait_outbox_empty(f, 10);
    char sender[512];
    snprintf(sender, sizeof(sender), "%s/sender.db", f->dir);
    assert_int_equal(count_rows(sender, "SELECT count(*) FROM outbox_updates"),
                     0);
    assert_int_equal(count_rows(console, "SELECT count(*) FROM applied"),
                     200);
    console_stop(&console_stage);
}

/* An event for two stages is one outbox row: the stage that is up applies
 * it, the row keeps only the other's bit, a restarted sender re-sends it
 * only there, and once that stage comes up the row is gone. */
static void test_one_row_serves_every_destination(void **state)
{
    fixture_t *f = *state;
    buses_start(f); /* "scoring" works; nobody works for "console" yet */
    outbox_fill_to(f, 0, 200, NULL, "console");

    char worker[512], sender[512], console[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    snprintf(sender, sizeof(sender), "%s/sender.db", f->dir);
    snprintf(console, sizeof(console), "%s/console.db", f->dir);
    assert_int_equal(count_rows(sender, "SELECT count(*) FROM cv_outbox"),
                     200);
    assert_int_equal(wait_rows(sender,
                               "SELECT count(*) FROM cv_outbox "
                               "WHERE pending = 2",
                               200, 10, 50),
                     200);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied"), 200);

    /* a new sender loads the rows: only "console" is still owed */
    cv_bus_stop(f->sender);
    pthread_join(f->sender_thread, NULL);
    cv_bus_destroy(&f->sender);
    cv_bus_options_t again = {
        .config = &f->sender_config, .store = f->sender_store,
    };
    f->sender = cv_bus_new(&again);
    assert_non_null(f->sender);
    pthread_create(&f->sender_thread, NULL, bus_main, f->sender);

    stage_t console_stage;
    console_start(f, &console_stage, 0);
    wait_outbox_empty(f, 10);
    assert_both_applied_once(worker, console, 200);
    console_stop(&console_stage);
}

/* An outbox written before rows served several destinations (one row per
 * destination, no `pending` column) is upgraded in place and delivered. */
static void test_outbox_from_before_is_delivered(void **state)
{
    fixture_t *f = *state;
    char sender[512];
    snprintf(sender, sizeof(sender), "%s/sender.db", f->dir);
    Conveyor__Lead lead = CONVEYOR__LEAD__INIT;
    lead.lead_id = "lead_old";
    Conveyor__LeadReceived received = CONVEYOR__LEAD_RECEIVED__INIT;
    received.lead = &lead;
    Conveyor__Envelope event = CONVEYOR__ENVELOPE__INIT;
    event.body_case = CONVEYOR__ENVELOPE__BODY_LEAD_RECEIVED;
    event.lead_received = &received;
    event.event_id = "evt_0000000000010000000000";
    event.type = CONVEYOR__EVENT_TYPE__LEAD_RECEIVED;
    event.version = 1;
    event.occurred_at = 1;
    event.producer = "intake";
    event.trace_id = event.event_id;
    event.lead_id = lead.lead_id;
    size_t size = 0;
    uint8_t *bytes = cv_event_pack(&event, &size);
    assert_non_null(bytes);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(sender, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "DROP TABLE cv_outbox;"
                     "CREATE TABLE cv_outbox (id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, dest TEXT NOT NULL, event_id TEXT NOT "
                     "NULL, payload BLOB NOT NULL, created_at INTEGER NOT "
                     "NULL)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO cv_outbox (dest, "
                                        "event_id, payload, created_at) "
                                        "VALUES ('scoring', ?1, ?2, 1)",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, event.event_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, bytes, (int)size, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    free(bytes);

    buses_start(f); /* cv_bus_new adds the column and loads the row */
    outbox_fill(f, 0, 10, NULL);
    char worker[512];
    snprintf(worker, sizeof(worker), "%s/worker.db", f->dir);
    wait_outbox_empty(f, 10);
    assert_int_equal(count_rows(worker, "SELECT count(*) FROM applied"), 11);
}

static void test_broker_restart_loses_nothing(void **state)
{
    fixture_t *f = *state;
    buses_start(f);
    char bind[256];
    snprintf(bind, sizeof(bind), "%s", f->endpoint);
    outbox_fill(f, 0, 1000, NULL);
    broker_stop(f);
    outbox_fill(f, 1000, 1000, NULL); /* nowhere to go for now */
    usleep(300 * 1000);
    broker_start(f, bind);
    outbox_fill(f, 2000, 1000, NULL);
    wait_delivered(f, 3000, 20);
}

static void test_two_brokers_survive_losing_one(void **state)
{
    fixture_t *f = *state;
    /* a second broker; both peers connect to both (CONVEYOR_BROKER a,b) */
    cv_broker_t *second = cv_broker_new("tcp://127.0.0.1:*", 100);
    assert_non_null(second);
    pthread_t second_thread;
    pthread_create(&second_thread, NULL, broker_main, second);
    char both[CV_CONFIG_TEXT];
    snprintf(both, sizeof(both), "%.200s,%.200s", f->endpoint,
             cv_broker_endpoint(second));
    snprintf(f->sender_config.broker_endpoint,
             sizeof(f->sender_config.broker_endpoint), "%s", both);
    snprintf(f->worker_config.broker_endpoint,
             sizeof(f->worker_config.broker_endpoint), "%s", both);
    buses_start(f);
    outbox_fill(f, 0, 1000, NULL);
    broker_stop(f); /* the first one is gone for good */
    outbox_fill(f, 1000, 1000, NULL);
    wait_delivered(f, 2000, 20);
    cv_broker_stop(second);
    pthread_join(second_thread, NULL);
    cv_broker_destroy(&second);
}

/* A source that writes 256 KiB per turn, a turn every millisecond or so:
 * the WAL of a busy stage. */
#define STEADY_ROW_BYTES (256 * 1024)
static _Atomic int64_t steady_next_ms; /* when the next turn is due */

static int steady_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    fixture_t *f = arg;
    sqlite3_stmt *stmt = cv_store_prepare(
        cv_bus_store(bus), "INSERT INTO steady (data) VALUES (zeroblob(?))");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int(stmt, 1, STEADY_ROW_BYTES);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    atomic_store(&f->wrote, true);
    atomic_store(&steady_next_ms, now_ms + 1);
    return 0;
}

/* Counts the turns whose row was committed. */
static void steady_turn_ended(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    fixture_t *f = arg;
    if (atomic_exchange(&f->wrote, false) && ok)
        atomic_fetch_add(&f->turns_ok, 1);
}

static int64_t steady_due(void *arg, cv_bus_t *bus)
{
    (void)arg;
    (void)bus;
    return atomic_load(&steady_next_ms);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The WAL header's first salt, which SQLite moves on each time the WAL
 * starts over (its header is rewritten for frames written from the top);
 * 0 when the file cannot be read. */
static uint32_t wal_salt(const char *path)
{
    unsigned char header[32];
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return 0;
    size_t got = fread(header, 1, sizeof(header), file);
    fclose(file);
    if (got != sizeof(header))
        return 0;
    return (uint32_t)header[16] << 24 | (uint32_t)header[17] << 16 |
           (uint32_t)header[18] << 8 | header[19];
}

/* A stage that never stops writing still gets its WAL started over: the
 * checkpoint thread copies most of it, the loop copies the last frames
 * between two turns (counted in /metrics), and the next commit writes
 * from the top of the file again instead of growing it with everything
 * written. 160 MiB go through it here; the threshold is 40 MiB. */
static void test_wal_starts_over_under_steady_writes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        cv_store_exec(f->worker_store, "CREATE TABLE steady"
                                       " (id INTEGER PRIMARY KEY, data BLOB)"),
        0);
    worker_new(f); /* no sender: the stage writes on its own */
    cv_bus_source_t steady = {
        .fd = -1, .work = steady_work, .next_due = steady_due,
        .turn_ended = steady_turn_ended, .arg = f,
    };
    assert_int_equal(cv_bus_add_source(f->worker, &steady), 0);
    /* the bus's own counters, by name (cv_metrics_counter finds them) */
    cv_metric_t *catch_ups = cv_metrics_counter(
        "conveyor_bus_wal_catch_ups_total", NULL);
    cv_metric_t *paused_us = cv_metrics_counter(
        "conveyor_bus_wal_catch_up_microseconds_total", NULL);
    int64_t catch_ups_before = cv_metric_value(catch_ups);
    int64_t paused_before = cv_metric_value(paused_us);
    pthread_create(&f->worker_thread, NULL, bus_main, f->worker);

    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", cv_store_path(f->worker_store));
    const int turns = 160 * 1024 * 1024 / STEADY_ROW_BYTES;
    long long largest = 0;
    int starts = 0; /* salts seen: the WAL's first start and each over */
    uint32_t salt = 0;
    for (int i = 0; i < 6000 && atomic_load(&f->turns_ok) < turns; i++) {
        long long size = file_size(wal);
        if (size > largest)
            largest = size;
        uint32_t now = wal_salt(wal);
        if (now != 0 && now != salt) {
            salt = now;
            starts++;
        }
        usleep(10 * 1000);
    }
    cv_bus_stop(f->worker);
    pthread_join(f->worker_thread, NULL);
    int written = atomic_load(&f->turns_ok);
    assert_true(written >= turns);

    long long caught_up = cv_metric_value(catch_ups) - catch_ups_before;
    long long paused = cv_metric_value(paused_us) - paused_before;
    cv_log_info("160 MiB written in %d turns: the WAL started over %d "
                "times and was at most %lld MiB; %lld catch-ups, %lld us "
                "paused in all", written, starts - 1,
                largest / (1024 * 1024), caught_up, paused);
    assert_true(caught_up >= 1);
    assert_true(paused > 0);
    assert_true(starts >= 2);
    /* and nothing written is missing */
    assert_int_equal(count_rows(cv_store_path(f->worker_store),
                                "SELECT count(*) FROM steady"),
                     written);
}

int main(void)
{
    cv_log_init("test_bus");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_event_applied_exactly_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backlog_larger_than_the_memory_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_sees_the_bytes_it_applies,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sources_hear_every_turn_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_before_commit_runs_inside_the_turn,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_event_is_resent_and_applied_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_and_dropped_events_in_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_linger_paces_commits_not_idle_events, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_linger_paces_only_after_a_shared_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lingering_stage_wakes_per_commit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_event_id_is_applied_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_garbage_is_dropped_and_work_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backlog_travels_in_batches, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_garbled_batch_is_dropped_and_work_goes_on, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_row_for_two_stages_is_written_once_more, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_stage_that_is_down_holds_up_no_other, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_background_bus_runs_at_idle_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_background_bus_without_privilege_stays_in_foreground, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_one_row_serves_every_destination,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_from_before_is_delivered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_restart_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_brokers_survive_losing_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_wal_starts_over_under_steady_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

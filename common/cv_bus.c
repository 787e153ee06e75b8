/* cv_bus: the transactional outbox and inbox over the broker.
 *
 * Memory holds a window of the outbox, at most DEST_WINDOW events per
 * destination, so a destination that is down (its events held, NAKed and
 * re-sent) never holds up the others; kept per destination in four FIFO
 * lists: `ready` (to send now), `inflight`
 * (sent, waiting for the ACK; ordered by lease deadline because the lease
 * is constant), `backoff` (the broker had no worker: re-send soon) and
 * `waiting` (acknowledged, waiting up to ROW_WAIT_MS for the row's other
 * destinations). A hash finds a row by id when its ACK arrives. SQLite
 * stays the only durable copy: rows are loaded from it at start and when
 * other connections wake the bus; a row is deleted once every destination
 * has acknowledged it (an earlier acknowledgement clears its bit after
 * ROW_WAIT_MS). A destination whose window is full leaves its events in
 * SQLite from the first one it could not take (`deferred_from`), and reads
 * them back itself, in order, once half its window is free (dest_scan),
 * while the other destinations' events go on being loaded and sent. */
#include "cv_bus.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#include "cv_clock.h"
#include "cv_event.h"
#include "cv_id.h"
#include "cv_jsonw.h"
#include "cv_log.h"
#include "cv_metrics.h"
#include "cv_wire.h"

#define DEST_WINDOW 10000         /* events in memory per destination at
                                     most; the rest wait in SQLite until
                                     there is room */
#define SCAN_ROWS 4096            /* outbox rows read by one scan */
#define INFLIGHT_PER_DEST 512     /* unacknowledged events per destination:
                                     enough to keep a receiver's batches
                                     full, few enough that they are all
                                     applied well within one lease (a larger
                                     window queues at a slow receiver until
                                     leases run out and re-sends pile on) */
#define NAK_RETRY_MS 200          /* re-send delay when no worker was there */
#define BATCH_EVENTS 128          /* events sent to one destination in one
                                     message (cv_wire's B) at most... */
#define BATCH_BYTES (512 * 1024)  /* ...and bytes of envelopes, unless one
                                     envelope alone is larger */
#define DELETE_FLUSH_COUNT 512    /* acknowledged rows that force a delete */
#define DELETE_FLUSH_MS 200       /* ...or the age that does */
#define ROW_WAIT_MS 1000          /* an acknowledgement waits this long for
                                     the other destinations of its row
                                     before it is written on its own */
#define MAX_SOURCES 8
#define MAX_DESTS 32
#define MAX_LINKS 4               /* brokers a peer connects to */
#define ROW_SLOTS 16              /* destinations one outbox row may have:
                                     a message id is row id * 16 + slot */
#define POLL_MAX_MS 100           /* the loop looks at the clock this often */
#define INBOX_KEEP_MS (7LL * 24 * 3600 * 1000) /* inbox ids kept a week */
#define INBOX_PRUNE_EVERY_MS (10LL * 60 * 1000)
#define CHECKPOINT_FRAMES 10000   /* WAL pages (40 MB of 4 KiB) not yet
                                     copied that make the checkpointer copy
                                     them: a page written and freed again in
                                     between (an outbox row sent and
                                     acknowledged) reaches the database file
                                     once, not once per checkpoint */
#define CHECKPOINT_POLL_MS 50     /* how often the checkpointer looks */

typedef enum {
    ITEM_READY,      /* waiting to be sent */
    ITEM_INFLIGHT,   /* sent, lease running */
    ITEM_BACKOFF,    /* NAKed, waiting a moment */
    ITEM_WAITING,    /* acknowledged; waits for the row's other
                        destinations, at most ROW_WAIT_MS */
    ITEM_ACKED,      /* acknowledged; the row is deleted (or loses this
                        destination's bit) in the next transaction */
} item_state_t;

typedef struct item item_t;
typedef struct dest dest_t;

typedef struct {
    item_t *head;             /* oldest */
    item_t *tail;             /* newest */
} item_list_t;

struct item {
    int64_t id;               /* row id * ROW_SLOTS + destination slot; the
                                 message id on the wire */
    dest_t *dest;             /* where it goes */
    uint8_t *payload;         /* packed envelope (owned) */
    size_t size;              /* bytes in payload */
    int64_t deadline_ms;      /* monotonic: lease or back-off end */
    int64_t row_pending;      /* the row's destinations (bit per slot) still
                                 waiting when this item was made */
    item_state_t state;       /* which list holds it */
    item_t *prev;             /* neighbours in that list */
    item_t *next;
    item_t *hash_next;        /* chain in the id hash */
};

struct dest {
    char name[64];            /* destination service */
    item_list_t ready;        /* to send, oldest first */
    item_list_t inflight;     /* sent, by deadline */
    item_list_t backoff;      /* NAKed, by deadline */
    item_list_t waiting;      /* acknowledged, row not complete, by
                                 deadline */
    int unacked_count;        /* items in `inflight` or `backoff`: sent
                                 and not acknowledged. NAKed ones count
                                 too, so a destination with no worker has
                                 at most INFLIGHT_PER_DEST events going
                                 round, not its whole window */
    int held;                 /* items in memory, in any state */
    int64_t last_ack_ms;      /* monotonic time of its last ACK */
    int64_t deferred_from;    /* the oldest row whose event for this
                                 destination was left in SQLite for want of
                                 room, 0 for none: newer rows wait too, so
                                 its events still go in order (dest_scan) */
};

typedef struct {
    void *socket;             /* DEALER connected to one broker */
    char endpoint[256];       /* its address */
    int64_t last_heard_ms;    /* monotonic time of the last frame from it */
    bool alive;               /* heard within the liveness window */
} link_t;

/* An event received in this turn, waiting for its transaction. */
typedef struct {
    int link;                 /* which broker it came through */
    uint8_t client[256];      /* the sender's identity at the broker */
    size_t client_size;
    char msg_id[32];          /* the sender's message id */
    zmq_msg_t payload;        /* the frame that holds the envelope (a B
                                 frame is shared by its events) */
    size_t payload_offset;    /* where the envelope starts in it */
    size_t payload_size;      /* and its length */
    bool ack;                 /* acknowledge after the commit */
    bool garbage;             /* does not parse: acknowledged, never applied */
    bool applied;             /* handled in this turn's transaction */
    bool duplicate;           /* its id was in the inbox already */
} inbound_t;

/* A B frame (several events) whose events did not all fit in this turn's
 * batch: the rest are taken from here, in order, before the sockets are
 * read again. */
typedef struct {
    bool active;              /* a frame is held */
    zmq_msg_t frame;          /* the B frame */
    size_t offset;            /* where its next entry starts */
    int link;                 /* the broker it came through */
    uint8_t client[256];      /* the sender's identity at the broker */
    size_t client_size;
} carry_t;

/* The priority of the loop's thread (background_begin, _follow). */
typedef enum {
    PRIORITY_OWN,         /* SCHED_OTHER, as it started */
    PRIORITY_IDLE,        /* SCHED_IDLE: a background stage keeping up */
    PRIORITY_CATCHING_UP, /* SCHED_OTHER again while a background stage
                             works off a backlog */
} bus_priority_t;

typedef struct {
    cv_bus_source_t source;   /* the service's callbacks */
    bool due;                 /* runs in this turn */
} source_slot_t;

struct cv_bus {
    pthread_t checkpointer;   /* copies the WAL into the database file */
    bool checkpointer_started;
    atomic_bool checkpointer_stop;
    atomic_int wal_frames;    /* pages in the WAL after the last commit */
    atomic_bool catch_up;     /* the checkpointer left frames behind: the
                                 bus copies the rest before its next turn,
                                 so the WAL can start over */
    char service[64];         /* this process's service name */
    char worker[64];          /* name registered with the broker, "" if none */
    cv_store_t *store;        /* not owned */
    cv_bus_handler_fn handler;
    void *arg;
    int batch_max;            /* inbound events per transaction */
    int linger_ms;            /* a busy stage commits events at most
                                 this often (batch_lingers) */
    int64_t last_commit_ms;   /* monotonic end of the last commit of
                                 several events */
    int last_commit_events;   /* events the last commit carried: more
                                 than one, the stage is busy and what
                                 comes next waits; batch_max, a backlog
                                 waits for nothing (batch_lingers) */
    bool background;          /* the loop's thread runs as SCHED_IDLE
                                 (cv_config_t.bus_background) */
    bus_priority_t priority;  /* where that thread is now */
    int lease_ms;             /* re-send after this */
    int heartbeat_ms;         /* READY interval */

    void *zmq;                /* context (owned) */
    link_t links[MAX_LINKS];
    int link_count;
    int next_link;            /* round-robin over live brokers */

    int wake_fd;              /* eventfd: cv_bus_wake, cv_bus_stop */
    atomic_bool stopping;
    atomic_bool wake_pending; /* rows to load from other connections */
    atomic_bool connected;

    dest_t dests[MAX_DESTS];
    int dest_count;
    item_t **hash;            /* id -> item */
    size_t hash_size;         /* buckets, a power of two */
    size_t item_count;        /* items held in memory */
    int64_t scan_cursor;      /* rows up to this id have been scanned */
    bool scan_needed;         /* rows may wait in SQLite unloaded */

    item_t **staged;          /* emitted in the open transaction */
    size_t staged_count;
    size_t staged_cap;
    item_t **acked;           /* acknowledged, row not yet deleted */
    size_t acked_count;
    size_t acked_cap;
    int64_t acked_since_ms;   /* monotonic time of the oldest one */

    inbound_t *inbound;       /* this turn's events, batch_max of them */
    carry_t carry;            /* events of a B frame for later turns */
    cv_event_arena_t *arena;  /* the event being applied lives here */
    int inbound_count;
    const Conveyor__Envelope *current; /* event the handler is running */
    const uint8_t *current_data; /* its envelope as received (in the
                                    inbound zmq message), NULL outside */
    size_t current_size;         /* and its length */

    source_slot_t sources[MAX_SOURCES];
    int source_count;

    int64_t next_heartbeat_ms;
    int64_t next_prune_ms;
};

static cv_bus_t *running_bus; /* for the signal handler */

static cv_metric_t *metric_in;
static cv_metric_t *metric_duplicate;
static cv_metric_t *metric_garbage;
static cv_metric_t *metric_sent;
static cv_metric_t *metric_resent;
static cv_metric_t *metric_acked;
static cv_metric_t *metric_outbox;
static cv_metric_t *metric_batches;
static cv_metric_t *metric_catch_ups;
static cv_metric_t *metric_catch_up_us;

/* One outbox row per event, whatever the number of destinations: `dest`
 * lists them ("routing,console"), `pending` has bit k set while the k-th
 * has not acknowledged (NULL in rows written before the column existed,
 * which have one destination: bit 0). The payload is written once, not
 * once per destination. AUTOINCREMENT: a row id, and so a message id, is
 * never used twice, so a late ACK cannot acknowledge a newer event. */
static const char *bus_schema =
    "CREATE TABLE IF NOT EXISTS cv_outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  dest TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  pending INTEGER);"
    "CREATE TABLE IF NOT EXISTS cv_inbox ("
    "  event_id TEXT PRIMARY KEY,"
    "  received_at INTEGER NOT NULL) WITHOUT ROWID;"
    /* the inbox is pruned by key range (event ids sort by creation time,
     * see cv_id.h), so it needs no second index to write on every event */
    "DROP INDEX IF EXISTS cv_inbox_received;";

/* ------------------------------------------------------------------ */
/* lists and the id hash                                               */

static void list_push(item_list_t *list, item_t *item)
{
    item->prev = list->tail;
    item->next = NULL;
    if (list->tail != NULL)
        list->tail->next = item;
    else
        list->head = item;
    list->tail = item;
}

static void list_remove(item_list_t *list, item_t *item)
{
    if (item->prev != NULL)
        item->prev->next = item->next;
    else
        list->head = item->next;
    if (item->next != NULL)
        item->next->prev = item->prev;
    else
        list->tail = item->prev;
    item->prev = item->next = NULL;
}

static item_list_t *item_list(item_t *item)
{
    switch (item->state) {
    case ITEM_READY:
        return &item->dest->ready;
    case ITEM_INFLIGHT:
        return &item->dest->inflight;
    case ITEM_BACKOFF:
        return &item->dest->backoff;
    case ITEM_WAITING:
        return &item->dest->waiting;
    case ITEM_ACKED:
        return NULL;
    }
    return NULL;
}

/* Sent and not acknowledged: in flight, or NAKed and waiting to go again
 * (dest_t.unacked_count). */
static bool item_unacked(const item_t *item)
{
    return item->state == ITEM_INFLIGHT || item->state == ITEM_BACKOFF;
}

static void item_move(item_t *item, item_state_t state, int64_t deadline_ms)
{
    item_list_t *from = item_list(item);
    if (from != NULL)
        list_remove(from, item);
    if (item_unacked(item))
        item->dest->unacked_count--;
    item->state = state;
    item->deadline_ms = deadline_ms;
    item_list_t *to = item_list(item);
    if (to != NULL)
        list_push(to, item);
    if (item_unacked(item))
        item->dest->unacked_count++;
}

static size_t hash_slot(const cv_bus_t *self, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & (self->hash_size - 1);
}

static item_t *hash_find(const cv_bus_t *self, int64_t id)
{
    item_t *item = self->hash[hash_slot(self, id)];
    while (item != NULL && item->id != id)
        item = item->hash_next;
    return item;
}

static void hash_remove(cv_bus_t *self, item_t *item)
{
    item_t **link = &self->hash[hash_slot(self, item->id)];
    while (*link != NULL && *link != item)
        link = &(*link)->hash_next;
    if (*link == item)
        *link = item->hash_next;
    item->hash_next = NULL;
}

static int hash_insert(cv_bus_t *self, item_t *item)
{
    if (self->item_count + 1 > self->hash_size) {
        size_t size = self->hash_size * 2;
        item_t **table = calloc(size, sizeof(*table));
        if (table == NULL)
            return -1;
        item_t **old = self->hash;
        size_t old_size = self->hash_size;
        self->hash = table;
        self->hash_size = size;
        for (size_t i = 0; i < old_size; i++) {
            item_t *it = old[i];
            while (it != NULL) {
                item_t *next = it->hash_next;
                size_t slot = hash_slot(self, it->id);
                it->hash_next = table[slot];
                table[slot] = it;
                it = next;
            }
        }
        free(old);
    }
    size_t slot = hash_slot(self, item->id);
    item->hash_next = self->hash[slot];
    self->hash[slot] = item;
    self->item_count++;
    return 0;
}

static void item_free(cv_bus_t *self, item_t *item)
{
    if (item == NULL)
        return;
    hash_remove(self, item);
    item_list_t *list = item_list(item);
    if (list != NULL)
        list_remove(list, item);
    if (item_unacked(item))
        item->dest->unacked_count--;
    self->item_count--;
    item->dest->held--;
    free(item->payload);
    free(item);
}

static dest_t *dest_find(cv_bus_t *self, const char *name)
{
    for (int i = 0; i < self->dest_count; i++)
        if (strcmp(self->dests[i].name, name) == 0)
            return &self->dests[i];
    if (self->dest_count == MAX_DESTS) {
        cv_error("too many destinations for the outbox, cannot add '%s'",
                 name);
        return NULL;
    }
    dest_t *dest = &self->dests[self->dest_count++];
    memset(dest, 0, sizeof(*dest));
    snprintf(dest->name, sizeof(dest->name), "%s", name);
    return dest;
}

static item_t *item_new(int64_t id, int64_t row_pending, dest_t *dest,
                        const void *payload, size_t size)
{
    item_t *item = calloc(1, sizeof(*item));
    if (item == NULL)
        return NULL;
    item->payload = malloc(size > 0 ? size : 1);
    if (item->payload == NULL) {
        free(item);
        return NULL;
    }
    memcpy(item->payload, payload, size);
    item->size = size;
    item->id = id;
    item->row_pending = row_pending;
    item->dest = dest;
    item->state = ITEM_ACKED; /* in no list until queued */
    return item;
}

/* Queues a committed row for sending; takes ownership of `item`. -1 when
 * out of memory: the row is still in SQLite, a scan loads it later. */
static int item_enqueue(cv_bus_t *self, item_t *item)
{
    if (hash_insert(self, item) != 0) {
        free(item->payload);
        free(item);
        self->scan_needed = true;
        return -1;
    }
    item->dest->held++;
    item->state = ITEM_READY;
    list_push(&item->dest->ready, item);
    return 0;
}

/* Whether `dest` takes an event of `row` into memory now. When it does
 * not, the row is remembered as where its events wait in SQLite. */
static bool dest_takes(dest_t *dest, int64_t row)
{
    if (dest->deferred_from == 0 && dest->held < DEST_WINDOW)
        return true;
    if (dest->deferred_from == 0 || row < dest->deferred_from)
        dest->deferred_from = row;
    return false;
}

/* ------------------------------------------------------------------ */
/* the outbox in SQLite                                                */

/* Queues one item for each destination of the row `stmt` stands on
 * (outbox_read's columns) still waiting for it that has room (dest_takes),
 * or for `only` alone when it is not NULL (dest_scan: the destination's
 * own window was checked by the caller); the payload is read only for a
 * row that loads something. -1 when out of memory or a destination more
 * than MAX_DESTS (the row stays in SQLite for a later scan). */
static int outbox_row_load(cv_bus_t *self, sqlite3_stmt *stmt, dest_t *only)
{
    int64_t row = sqlite3_column_int64(stmt, 0);
    const char *name = (const char *)sqlite3_column_text(stmt, 1);
    int64_t pending = sqlite3_column_int64(stmt, 3);
    for (int slot = 0; slot < ROW_SLOTS && name != NULL; slot++) {
        const char *comma = strchr(name, ',');
        size_t length = comma ? (size_t)(comma - name) : strlen(name);
        int64_t id = row * ROW_SLOTS + slot;
        if ((pending & ((int64_t)1 << slot)) && length > 0 &&
            length < sizeof(((dest_t *)0)->name) &&
            hash_find(self, id) == NULL) {
            char dest_name[sizeof(((dest_t *)0)->name)];
            memcpy(dest_name, name, length);
            dest_name[length] = '\0';
            dest_t *dest = dest_find(self, dest_name);
            if (dest == NULL)
                return -1;
            if (only != NULL ? dest == only : dest_takes(dest, row)) {
                item_t *item =
                    item_new(id, pending, dest, sqlite3_column_blob(stmt, 2),
                             (size_t)sqlite3_column_bytes(stmt, 2));
                if (item == NULL || item_enqueue(self, item) != 0)
                    return -1;
            }
        }
        name = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* Reads up to SCAN_ROWS outbox rows from id *from on, oldest first, and
 * loads their events: for every destination that has room (`only` NULL),
 * or for `only` alone while its window has room. A row it cannot load (out
 * of memory, or `only` full again) ends the read there. Moves *from past
 * the rows loaded. 1 when rows may be left to read, 0 when the outbox's
 * end was reached, -1 after logging a read error. */
static int outbox_read(cv_bus_t *self, int64_t *from, dest_t *only)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        self->store, "SELECT id, dest, payload, coalesce(pending, 1) "
                     "FROM cv_outbox WHERE id >= ? ORDER BY id LIMIT ?");
    if (stmt == NULL)
        return -1;
    sqlite3_bind_int64(stmt, 1, *from);
    sqlite3_bind_int(stmt, 2, SCAN_ROWS);
    int rows = 0;
    bool cut = false;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((only != NULL && only->held >= DEST_WINDOW) ||
            outbox_row_load(self, stmt, only) != 0) {
            cut = true; /* this row again next time */
            break;
        }
        *from = sqlite3_column_int64(stmt, 0) + 1;
        rows++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        cv_error("cannot read the outbox of '%s': %s",
                 cv_store_path(self->store),
                 sqlite3_errmsg(cv_store_db(self->store)));
        sqlite3_reset(stmt);
        return -1;
    }
    sqlite3_reset(stmt);
    cv_metric_set(metric_outbox, (int64_t)self->item_count);
    return cut || rows == SCAN_ROWS ? 1 : 0;
}

/* Loads committed rows after the scan cursor, for every destination that
 * has room. */
static int outbox_scan(cv_bus_t *self)
{
    int64_t from = self->scan_cursor + 1;
    int more = outbox_read(self, &from, NULL);
    if (more < 0)
        return -1;
    self->scan_cursor = from - 1;
    self->scan_needed = more;
    return 0;
}

/* Reads back, in order, the events `dest` left in SQLite while its window
 * was full, from its deferred_from, until the window is full again or the
 * outbox ends (then nothing of it waits there). */
static int dest_scan(cv_bus_t *self, dest_t *dest)
{
    int64_t from = dest->deferred_from;
    int more = outbox_read(self, &from, dest);
    if (more < 0)
        return -1;
    dest->deferred_from = more ? from : 0;
    return 0;
}

/* Loads what waits in SQLite: rows no scan has read yet, and the events
 * of destinations whose window has half emptied since it filled. */
static void outbox_load(cv_bus_t *self)
{
    if (self->scan_needed)
        outbox_scan(self);
    for (int d = 0; d < self->dest_count; d++) {
        dest_t *dest = &self->dests[d];
        if (dest->deferred_from != 0 && dest->held <= DEST_WINDOW / 2)
            dest_scan(self, dest);
    }
}

/* One row for all `count` destinations listed in `dests`. */
static int outbox_insert(cv_store_t *store, const char *dests, int count,
                         const char *event_id, const uint8_t *payload,
                         size_t size, int64_t *id)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        store, "INSERT INTO cv_outbox (dest, event_id, payload, created_at, "
               "pending) VALUES (?, ?, ?, ?, ?)");
    if (stmt == NULL)
        return -1;
    /* the caller's strings outlive the step: no copies */
    cv_store_bind_static(stmt, 1, dests);
    cv_store_bind_static(stmt, 2, event_id);
    sqlite3_bind_blob(stmt, 3, payload, (int)size, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, cv_clock_now_ms());
    sqlite3_bind_int64(stmt, 5, ((int64_t)1 << count) - 1);
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *id = sqlite3_last_insert_rowid(cv_store_db(store));
    return 0;
}

static int item_by_id(const void *a, const void *b)
{
    int64_t x = (*(item_t *const *)a)->id;
    int64_t y = (*(item_t *const *)b)->id;
    return (x > y) - (x < y);
}

/* Inside the open transaction: a row all of whose destinations have
 * acknowledged is deleted, any other loses the bits of those that did. */
static int outbox_delete_acked(cv_bus_t *self)
{
    sqlite3_stmt *del = cv_store_prepare(
        self->store, "DELETE FROM cv_outbox "
                     "WHERE id = ?1 AND coalesce(pending, 1) & ~?2 = 0");
    sqlite3_stmt *clear = cv_store_prepare(
        self->store, "UPDATE cv_outbox SET pending = coalesce(pending, 1) "
                     "& ~?2 WHERE id = ?1");
    if (del == NULL || clear == NULL)
        return -1;
    qsort(self->acked, self->acked_count, sizeof(item_t *), item_by_id);
    for (size_t i = 0; i < self->acked_count;) {
        int64_t row = self->acked[i]->id / ROW_SLOTS;
        int64_t mask = 0;
        for (; i < self->acked_count && self->acked[i]->id / ROW_SLOTS == row;
             i++)
            mask |= (int64_t)1 << (self->acked[i]->id % ROW_SLOTS);
        sqlite3_bind_int64(del, 1, row);
        sqlite3_bind_int64(del, 2, mask);
        if (cv_store_step_done(del) != 0)
            return -1;
        if (sqlite3_changes(cv_store_db(self->store)) > 0)
            continue;
        sqlite3_bind_int64(clear, 1, row);
        sqlite3_bind_int64(clear, 2, mask);
        if (cv_store_step_done(clear) != 0)
            return -1;
    }
    return 0;
}

static void acked_release(cv_bus_t *self)
{
    for (size_t i = 0; i < self->acked_count; i++)
        item_free(self, self->acked[i]);
    self->acked_count = 0;
    cv_metric_set(metric_outbox, (int64_t)self->item_count);
}

static int grow(void *array_p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t cap_new = *cap ? *cap * 2 : 256;
    while (cap_new < need)
        cap_new *= 2;
    void **array = array_p;
    void *bigger = realloc(*array, cap_new * elem);
    if (bigger == NULL)
        return -1;
    *array = bigger;
    *cap = cap_new;
    return 0;
}

/* ------------------------------------------------------------------ */
/* emitting                                                            */

/* Fills the envelope fields the caller left unset. `id_buf` backs the
 * event id when one is made here. */
static void envelope_complete(Conveyor__Envelope *event, const char *producer,
                              const Conveyor__Envelope *cause, char *id_buf,
                              size_t id_size)
{
    if (event->version == 0)
        event->version = 1;
    if (event->event_id == NULL || event->event_id[0] == '\0')
        event->event_id = cv_id_new("evt", id_buf, id_size);
    event->type = cv_event_type_of(event);
    if (event->occurred_at == 0)
        event->occurred_at = cv_clock_now_ms();
    if (event->producer == NULL || event->producer[0] == '\0')
        event->producer = (char *)producer;
    if (event->trace_id == NULL || event->trace_id[0] == '\0') {
        if (cause != NULL && cause->trace_id != NULL)
            event->trace_id = cause->trace_id;
        else
            event->trace_id = event->event_id;
    }
    if (event->lead_id == NULL || event->lead_id[0] == '\0')
        event->lead_id = (char *)cv_event_body_lead_id(event);
}

/* Writes the event's one outbox row for all of `dests` and, when
 * `stage_into` is a bus, stages an item per destination there, sent once
 * the transaction commits (staged_publish). */
static int emit_rows(cv_store_t *store, const char *producer,
                     const Conveyor__Envelope *cause,
                     Conveyor__Envelope *event, va_list dests,
                     cv_bus_t *stage_into)
{
    char id_buf[CV_ID_SIZE];
    envelope_complete(event, producer, cause, id_buf, sizeof(id_buf));
    if (event->type == CONVEYOR__EVENT_TYPE__EVENT_UNKNOWN)
        return cv_error("cannot emit an event without a body");
    size_t size = 0;
    uint8_t *payload = cv_event_pack(event, &size);
    if (payload == NULL)
        return cv_error("cannot pack a '%s' event",
                        cv_event_type_name(event->type));
    /* "routing,console": the row's destination list, slot by slot */
    const char *names[ROW_SLOTS];
    char list[ROW_SLOTS * 64];
    size_t used = 0;
    int count = 0;
    int rc = 0;
    const char *dest;
    while ((dest = va_arg(dests, const char *)) != NULL) {
        size_t length = strlen(dest);
        if (count == ROW_SLOTS || length == 0 || length >= 64 ||
            strchr(dest, ',') != NULL || used + length + 1 > sizeof(list)) {
            rc = cv_error("cannot emit a '%s' event to '%s': at most %d "
                          "destinations, names without commas",
                          cv_event_type_name(event->type), dest, ROW_SLOTS);
            goto out;
        }
        names[count++] = dest;
        if (used > 0)
            list[used++] = ',';
        memcpy(list + used, dest, length);
        used += length;
    }
    list[used] = '\0';
    if (count == 0)
        goto out;
    int64_t row = 0;
    rc = outbox_insert(store, list, count, event->event_id, payload, size,
                       &row);
    for (int slot = 0; rc == 0 && stage_into != NULL && slot < count;
         slot++) {
        cv_bus_t *self = stage_into;
        dest_t *dest = dest_find(self, names[slot]);
        item_t *item = dest == NULL ? NULL
                                    : item_new(row * ROW_SLOTS + slot,
                                               ((int64_t)1 << count) - 1, dest,
                                               payload, size);
        if (item == NULL ||
            grow(&self->staged, &self->staged_cap, self->staged_count + 1,
                 sizeof(item_t *)) != 0) {
            free(item ? item->payload : NULL);
            free(item);
            self->scan_needed = true; /* the row is there; load later */
            continue;
        }
        self->staged[self->staged_count++] = item;
    }
out:
    free(payload);
    /* the strings we lent the envelope are ours; do not leave them behind */
    if (event->event_id == id_buf)
        event->event_id = NULL;
    return rc;
}

int cv_bus_emit(cv_bus_t *self, Conveyor__Envelope *event, ...)
{
    if (!cv_store_in_transaction(self->store))
        return cv_error("cv_bus_emit outside a transaction in '%s'",
                        self->service);
    va_list dests;
    va_start(dests, event);
    char *event_id = event->event_id;
    char *trace_id = event->trace_id;
    char *producer = event->producer;
    char *lead_id = event->lead_id;
    int rc = emit_rows(self->store, self->service, self->current, event,
                       dests, self);
    va_end(dests);
    event->event_id = event_id;
    event->trace_id = trace_id;
    event->producer = producer;
    event->lead_id = lead_id;
    return rc;
}

int cv_outbox_put(cv_store_t *store, const char *producer,
                  Conveyor__Envelope *event, ...)
{
    va_list dests;
    va_start(dests, event);
    char *event_id = event->event_id;
    char *trace_id = event->trace_id;
    char *producer_was = event->producer;
    char *lead_id = event->lead_id;
    int rc = emit_rows(store, producer, NULL, event, dests, NULL);
    va_end(dests);
    event->event_id = event_id;
    event->trace_id = trace_id;
    event->producer = producer_was;
    event->lead_id = lead_id;
    return rc;
}

static void staged_discard(cv_bus_t *self, size_t keep)
{
    for (size_t i = keep; i < self->staged_count; i++) {
        free(self->staged[i]->payload);
        free(self->staged[i]);
    }
    self->staged_count = keep;
}

static void staged_publish(cv_bus_t *self)
{
    for (size_t i = 0; i < self->staged_count; i++) {
        item_t *item = self->staged[i];
        if (self->scan_needed ||
            !dest_takes(item->dest, item->id / ROW_SLOTS)) {
            /* rows wait in SQLite; a scan loads them in order */
            free(item->payload);
            free(item);
            continue;
        }
        (void)item_enqueue(self, item); /* or a scan loads it later */
    }
    self->staged_count = 0;
    cv_metric_set(metric_outbox, (int64_t)self->item_count);
}

/* ------------------------------------------------------------------ */
/* the wire                                                            */

static void send_ready(cv_bus_t *self)
{
    for (int i = 0; i < self->link_count; i++)
        cv_wire_send(self->links[i].socket, ZMQ_DONTWAIT, CV_WIRE_READY, 0,
                     NULL, 0, NULL, 0, self->worker, strlen(self->worker));
}

/* The live broker to send the next request through, round-robin; -1 when
 * none has been heard lately (then try the first: it may just be up). */
static int pick_link(cv_bus_t *self)
{
    for (int n = 0; n < self->link_count; n++) {
        int i = (self->next_link + n) % self->link_count;
        if (self->links[i].alive) {
            self->next_link = (i + 1) % self->link_count;
            return i;
        }
    }
    return 0;
}

/* Sends up to `room` of the destination's ready events (at least 1) as one
 * B message (also a single event: peers still take a Q from an older
 * sender). false when the socket would block; then nothing moved. */
static bool send_ready_batch(cv_bus_t *self, dest_t *dest, int room,
                             int64_t now)
{
    cv_wire_entry_t entries[BATCH_EVENTS];
    char ids[BATCH_EVENTS][CV_JSONW_INT_SIZE];
    int count = 0;
    size_t bytes = 0;
    for (item_t *item = dest->ready.head;
         item != NULL && count < room && count < BATCH_EVENTS &&
         (count == 0 || bytes + item->size <= BATCH_BYTES);
         item = item->next) {
        size_t len = cv_jsonw_format_int(ids[count], item->id);
        entries[count] = (cv_wire_entry_t){ids[count], len,
                                           item->payload, item->size};
        bytes += item->size;
        count++;
    }
    int link = pick_link(self);
    if (cv_wire_send_batch(self->links[link].socket, ZMQ_DONTWAIT,
                           dest->name, strlen(dest->name), entries,
                           count) != 0)
        return false;
    for (int i = 0; i < count; i++)
        item_move(dest->ready.head, ITEM_INFLIGHT, now + self->lease_ms);
    cv_metric_add(metric_sent, count);
    return true;
}

/* Moves expired leases and back-offs to `ready`, then sends what the
 * per-destination window allows, many events to a message. Returns true
 * when something is left unsent because the socket would block. */
static bool outbox_send(cv_bus_t *self)
{
    int64_t now = cv_clock_monotonic_ms();
    bool blocked = false;
    for (int d = 0; d < self->dest_count; d++) {
        dest_t *dest = &self->dests[d];
        while (dest->inflight.head != NULL &&
               dest->inflight.head->deadline_ms <= now) {
            item_move(dest->inflight.head, ITEM_READY, 0);
            cv_metric_add(metric_resent, 1);
        }
        while (dest->backoff.head != NULL &&
               dest->backoff.head->deadline_ms <= now)
            item_move(dest->backoff.head, ITEM_READY, 0);
        while (dest->ready.head != NULL &&
               dest->unacked_count < INFLIGHT_PER_DEST) {
            if (!send_ready_batch(
                    self, dest, INFLIGHT_PER_DEST - dest->unacked_count, now)) {
                blocked = true;
                break;
            }
        }
    }
    return blocked;
}

/* The earliest monotonic deadline among leases and back-offs. */
static int64_t outbox_next_deadline(const cv_bus_t *self)
{
    int64_t next = INT64_MAX;
    for (int d = 0; d < self->dest_count; d++) {
        const dest_t *dest = &self->dests[d];
        if (dest->inflight.head && dest->inflight.head->deadline_ms < next)
            next = dest->inflight.head->deadline_ms;
        if (dest->backoff.head && dest->backoff.head->deadline_ms < next)
            next = dest->backoff.head->deadline_ms;
    }
    return next;
}

static bool parse_id(const char *text, size_t size, int64_t *id)
{
    char buf[32];
    if (size == 0 || size >= sizeof(buf))
        return false;
    memcpy(buf, text, size);
    buf[size] = '\0';
    char *end = NULL;
    errno = 0;
    long long value = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' || value <= 0)
        return false;
    *id = value;
    return true;
}

/* Puts an acknowledged item on the list the next turn writes. false when
 * out of memory: then it stays where it is. */
static bool acked_push(cv_bus_t *self, item_t *item)
{
    if (item->state == ITEM_ACKED)
        return true; /* on the list already (an item in the hash is ACKED
                        only there) */
    if (grow(&self->acked, &self->acked_cap, self->acked_count + 1,
             sizeof(item_t *)) != 0)
        return false;
    item_move(item, ITEM_ACKED, 0);
    if (self->acked_count == 0)
        self->acked_since_ms = cv_clock_monotonic_ms();
    self->acked[self->acked_count++] = item;
    return true;
}

/* One acknowledged message id. A row for several destinations is written
 * once, when the last of them acknowledges: one DELETE, instead of an
 * UPDATE that rewrites the row (payload and all) to clear each earlier
 * destination's bit. An earlier acknowledgement waits in memory for at
 * most ROW_WAIT_MS (a crash meanwhile only re-sends that event, which the
 * receiver's inbox skips), then its bit is written alone; so it is at
 * once when another destination of the row is not in memory. */
static void on_ack_id(cv_bus_t *self, const char *msg_id, size_t size)
{
    int64_t id;
    if (!parse_id(msg_id, size, &id))
        return;
    item_t *item = hash_find(self, id);
    if (item == NULL || item->state == ITEM_ACKED ||
        item->state == ITEM_WAITING)
        return; /* a second ACK for a re-sent event */
    /* the destination has a worker again after a spell without: what it
     * NAKed goes now. (The broker NAKs a busy worker too; then ACKs keep
     * coming, and NAKed events wait their NAK_RETRY_MS; a worker that
     * ACKs more seldom than that has them back at each ACK, at most
     * INFLIGHT_PER_DEST of them, as they would after NAK_RETRY_MS.) */
    int64_t now = cv_clock_monotonic_ms();
    if (now - item->dest->last_ack_ms >= NAK_RETRY_MS)
        while (item->dest->backoff.head != NULL)
            item_move(item->dest->backoff.head, ITEM_READY, 0);
    item->dest->last_ack_ms = now;
    item_move(item, ITEM_WAITING, now + ROW_WAIT_MS);
    free(item->payload); /* never sent again */
    item->payload = NULL;
    cv_metric_add(metric_acked, 1);
    int64_t row = item->id / ROW_SLOTS;
    item_t *done[ROW_SLOTS];
    int count = 0;
    for (int slot = 0; slot < ROW_SLOTS; slot++) {
        if (!(item->row_pending & ((int64_t)1 << slot)))
            continue;
        item_t *sibling = hash_find(self, row * ROW_SLOTS + slot);
        if (sibling == NULL) {
            acked_push(self, item); /* its bit alone, now */
            return;
        }
        if (sibling->state != ITEM_WAITING && sibling->state != ITEM_ACKED)
            return; /* the row waits for that destination */
        done[count++] = sibling;
    }
    for (int i = 0; i < count; i++)
        acked_push(self, done[i]);
}

/* Acknowledgements that waited ROW_WAIT_MS for the rest of their row are
 * written on their own. */
static void waiting_expire(cv_bus_t *self, int64_t now)
{
    for (int d = 0; d < self->dest_count; d++) {
        dest_t *dest = &self->dests[d];
        while (dest->waiting.head != NULL &&
               dest->waiting.head->deadline_ms <= now)
            if (!acked_push(self, dest->waiting.head))
                return;
    }
}

/* Calls `fn` for each message id of an ACK's or a NAK's list (ids
 * separated by spaces). */
static void for_each_id(cv_bus_t *self, const char *ids, size_t size,
                        void (*fn)(cv_bus_t *, const char *, size_t))
{
    size_t start = 0;
    for (size_t at = 0; at <= size; at++) {
        if (at == size || ids[at] == ' ') {
            if (at > start)
                fn(self, ids + start, at - start);
            start = at + 1;
        }
    }
}

static void on_nak_id(cv_bus_t *self, const char *msg_id, size_t size)
{
    int64_t id;
    if (!parse_id(msg_id, size, &id))
        return;
    item_t *item = hash_find(self, id);
    if (item == NULL || item->state != ITEM_INFLIGHT)
        return;
    item_move(item, ITEM_BACKOFF, cv_clock_monotonic_ms() + NAK_RETRY_MS);
}

static void link_heard(cv_bus_t *self, int link)
{
    link_t *l = &self->links[link];
    l->last_heard_ms = cv_clock_monotonic_ms();
    if (!l->alive) {
        l->alive = true;
        cv_log_info("broker '%s' is up", l->endpoint);
        /* whatever was in flight while it was away is likely lost */
        for (int d = 0; d < self->dest_count; d++) {
            dest_t *dest = &self->dests[d];
            while (dest->inflight.head != NULL)
                item_move(dest->inflight.head, ITEM_READY, 0);
        }
        send_ready(self);
    }
    atomic_store(&self->connected, true);
}

/* The next inbound slot, for an event from `client` (through `link`) with
 * message id `msg_id`; the caller fills its payload in. The caller checked
 * there is room and that the sizes fit. */
static inbound_t *inbound_add(cv_bus_t *self, int link, const void *client,
                              size_t client_size, const void *msg_id,
                              size_t id_size)
{
    inbound_t *in = &self->inbound[self->inbound_count++];
    in->link = link;
    in->client_size = client_size;
    memcpy(in->client, client, client_size);
    memcpy(in->msg_id, msg_id, id_size);
    in->msg_id[id_size] = '\0';
    zmq_msg_init(&in->payload);
    in->ack = false;
    in->garbage = false;
    in->applied = false;
    in->duplicate = false;
    return in;
}

/* Takes the held B frame's events into this turn, in order, while there
 * is room; lets the frame go after its last one. */
static void carry_take(cv_bus_t *self)
{
    carry_t *carry = &self->carry;
    if (!carry->active)
        return;
    const uint8_t *data = zmq_msg_data(&carry->frame);
    const uint8_t *end = data + zmq_msg_size(&carry->frame);
    const uint8_t *at = data + carry->offset;
    while (self->inbound_count < self->batch_max) {
        cv_wire_entry_t entry;
        int got = cv_wire_entry_next(&at, end, &entry);
        if (got == 0)
            break;
        if (got < 0) {
            cv_wire_drop(metric_garbage, "a batch whose entries do not parse");
            at = end; /* the events before it stand */
            break;
        }
        if (entry.msg_id_size >= sizeof(self->inbound[0].msg_id)) {
            cv_wire_drop(metric_garbage, "a message id too long");
            continue;
        }
        inbound_t *in =
            inbound_add(self, carry->link, carry->client, carry->client_size,
                        entry.msg_id, entry.msg_id_size);
        zmq_msg_copy(&in->payload, &carry->frame); /* shares the bytes */
        in->payload_offset = (size_t)((const uint8_t *)entry.payload - data);
        in->payload_size = entry.payload_size;
    }
    carry->offset = (size_t)(at - data);
    if (at == end) {
        zmq_msg_close(&carry->frame);
        carry->active = false;
    }
}

/* Reads one message from `link`: a single cv_wire frame (anything in
 * more frames is garbage). Returns 1 when a message was read, 0 when none
 * is waiting, -1 on a socket error. */
static int receive_one(cv_bus_t *self, int link)
{
    void *socket = self->links[link].socket;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    bool more = zmq_msg_more(&frame);
    while (more) { /* a peer speaking another protocol: drain and drop */
        zmq_msg_t part;
        zmq_msg_init(&part);
        int got = zmq_msg_recv(&part, socket, 0);
        more = got >= 0 && zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
    link_heard(self, link);

    const void *data = zmq_msg_data(&frame);
    size_t size = zmq_msg_size(&frame);
    char command = zmq_msg_more(&frame) ? 0 : cv_wire_command(data, size);
    cv_wire_msg_t msg;
    if (command == CV_WIRE_HEARTBEAT) {
        /* heard: nothing more to do */
    } else if (command == CV_WIRE_ACK &&
               cv_wire_parse(data, size, 0, &msg) == 0) {
        for_each_id(self, (const char *)msg.rest, msg.rest_size, on_ack_id);
    } else if (command == CV_WIRE_NAK &&
               cv_wire_parse(data, size, 0, &msg) == 0) {
        /* one id for a Q, all of a B's */
        for_each_id(self, (const char *)msg.rest, msg.rest_size, on_nak_id);
    } else if (command == CV_WIRE_REQUEST &&
               cv_wire_parse(data, size, 2, &msg) == 0 &&
               self->worker[0] != '\0' &&
               self->inbound_count < self->batch_max &&
               msg.field_size[0] <= sizeof(self->inbound[0].client) &&
               msg.field_size[1] < sizeof(self->inbound[0].msg_id)) {
        inbound_t *in = inbound_add(self, link, msg.field[0],
                                    msg.field_size[0], msg.field[1],
                                    msg.field_size[1]);
        in->payload_offset = (size_t)(msg.rest - (const uint8_t *)data);
        in->payload_size = msg.rest_size;
        zmq_msg_move(&in->payload, &frame); /* the envelope stays in it */
    } else if (command == CV_WIRE_BATCH &&
               cv_wire_parse(data, size, 1, &msg) == 0 &&
               self->worker[0] != '\0' && !self->carry.active &&
               msg.field_size[0] <= sizeof(self->carry.client)) {
        carry_t *carry = &self->carry;
        carry->link = link;
        carry->client_size = msg.field_size[0];
        memcpy(carry->client, msg.field[0], carry->client_size);
        carry->offset = (size_t)(msg.rest - (const uint8_t *)data);
        zmq_msg_init(&carry->frame);
        zmq_msg_move(&carry->frame, &frame); /* `data` may move with it */
        carry->active = true;
        carry_take(self);
    } else {
        cv_wire_drop(metric_garbage, "not a CV1 frame a peer takes");
    }
    zmq_msg_close(&frame);
    return 1;
}

/* Acknowledges the turn's committed events: one ACK message per sender
 * (and broker link), its last frame listing every message id, so a batch
 * costs the broker and the sender one message instead of one per event. */
static void send_acks(cv_bus_t *self)
{
    char ids[CV_WIRE_ACK_IDS_MAX];
    for (int i = 0; i < self->inbound_count; i++) {
        inbound_t *first = &self->inbound[i];
        if (!first->ack)
            continue;
        size_t used = 0;
        for (int j = i; j < self->inbound_count; j++) {
            inbound_t *in = &self->inbound[j];
            if (!in->ack || in->link != first->link ||
                in->client_size != first->client_size ||
                memcmp(in->client, first->client, in->client_size) != 0)
                continue;
            size_t len = strlen(in->msg_id);
            if (used + len + 1 > sizeof(ids))
                break; /* the rest go in the next message */
            if (used > 0)
                ids[used++] = ' ';
            memcpy(ids + used, in->msg_id, len);
            used += len;
            if (j != i)
                in->ack = false; /* sent with this one */
        }
        /* a lost ACK only costs a re-send, which the inbox skips */
        cv_wire_send(self->links[first->link].socket, ZMQ_DONTWAIT,
                     CV_WIRE_ACK, 1, first->client, first->client_size, NULL,
                     0, ids, used);
        first->ack = false;
        /* events that did not fit are still marked: a later pass of this
         * loop starts a new message with them */
    }
    for (int i = 0; i < self->inbound_count; i++)
        zmq_msg_close(&self->inbound[i].payload);
    self->inbound_count = 0;
}

/* ------------------------------------------------------------------ */
/* the turn: one transaction for everything that arrived               */

static int inbox_record(cv_bus_t *self, const char *event_id, bool *fresh)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        self->store,
        "INSERT OR IGNORE INTO cv_inbox (event_id, received_at) VALUES (?, ?)");
    if (stmt == NULL)
        return -1;
    cv_store_bind_static(stmt, 1, event_id); /* the event outlives the step */
    sqlite3_bind_int64(stmt, 2, cv_clock_now_ms());
    if (cv_store_step_done(stmt) != 0)
        return -1;
    *fresh = sqlite3_changes(cv_store_db(self->store)) > 0;
    return 0;
}

/* Runs one cached statement without results (savepoints on the hot path:
 * sqlite3_exec would parse them again for every event). */
static int bus_sql(cv_bus_t *self, const char *sql)
{
    sqlite3_stmt *stmt = cv_store_prepare(self->store, sql);
    return stmt == NULL ? -1 : cv_store_step_done(stmt);
}

static void rollback_event(cv_bus_t *self)
{
    bus_sql(self, "ROLLBACK TO cv_event");
    bus_sql(self, "RELEASE cv_event");
}

#define APPLY_REDO 1 /* apply_event: redo the turn with savepoints */

/* Applies one inbound event. The fast way (`careful` false) runs it with
 * no savepoint of its own, which saves SQLite copying every page the event
 * touches into a statement journal; if its handler then does not succeed,
 * the answer is APPLY_REDO: the caller rolls the whole turn back and
 * applies it again the careful way, each event inside its own savepoint, so
 * the failed event's effects go and the others' stay. Handlers fail rarely
 * (a transient error, an event to drop), so turns are almost never done
 * twice. 0, APPLY_REDO, or -1 when the transaction itself failed. */
static int apply_event(cv_bus_t *self, inbound_t *in, bool careful)
{
    in->ack = false;
    in->applied = false;
    in->duplicate = false;
    if (in->garbage) {
        in->ack = true;
        return 0;
    }
    Conveyor__Envelope *event = cv_event_unpack_in(
        self->arena,
        (const uint8_t *)zmq_msg_data(&in->payload) + in->payload_offset,
        in->payload_size);
    if (event == NULL) {
        cv_event_arena_reset(self->arena);
        cv_wire_drop(metric_garbage, "an event that does not parse");
        in->garbage = true;
        in->ack = true; /* re-sending it would not make it parse */
        return 0;
    }
    int rc = 0;
    if (careful && bus_sql(self, "SAVEPOINT cv_event") != 0) {
        rc = -1;
        goto out;
    }
    size_t staged_before = self->staged_count;
    bool fresh = false;
    if (inbox_record(self, event->event_id, &fresh) != 0) {
        if (careful) {
            rollback_event(self);
            staged_discard(self, staged_before);
        }
        rc = -1;
        goto out;
    }
    if (!fresh) {
        in->duplicate = true;
        in->ack = true;
        if (careful)
            bus_sql(self, "RELEASE cv_event");
        goto out;
    }
    self->current = event;
    self->current_data =
        (const uint8_t *)zmq_msg_data(&in->payload) + in->payload_offset;
    self->current_size = in->payload_size;
    int handled = self->handler(self->arg, self, event);
    self->current = NULL;
    self->current_data = NULL;
    self->current_size = 0;
    if (handled == 0) {
        if (careful)
            bus_sql(self, "RELEASE cv_event");
        in->ack = true;
        in->applied = true;
    } else if (!careful) {
        rc = APPLY_REDO;
    } else if (handled == CV_BUS_DROP) {
        /* keep only the inbox row, so the event is not handled again */
        bus_sql(self, "ROLLBACK TO cv_event");
        staged_discard(self, staged_before);
        inbox_record(self, event->event_id, &fresh);
        bus_sql(self, "RELEASE cv_event");
        in->ack = true;
    } else {
        rollback_event(self);
        staged_discard(self, staged_before);
        cv_log_warn("'%s' event '%s' failed; it will be re-sent",
                    cv_event_type_name(event->type), event->event_id);
    }
out:
    cv_event_arena_reset(self->arena); /* the event and all it held */
    return rc;
}

/* Applies this turn's events inside the open transaction: the fast way,
 * and if an event asks for it, the careful way after a rollback. */
static int apply_inbound(cv_bus_t *self)
{
    for (int i = 0; i < self->inbound_count; i++) {
        int rc = apply_event(self, &self->inbound[i], false);
        if (rc < 0)
            return -1;
        if (rc == APPLY_REDO) {
            if (cv_store_rollback(self->store) != 0 ||
                cv_store_begin(self->store) != 0)
                return -1;
            staged_discard(self, 0);
            for (int j = 0; j < self->inbound_count; j++)
                if (apply_event(self, &self->inbound[j], true) < 0)
                    return -1;
            return 0;
        }
    }
    return 0;
}

/* Forgets event ids older than INBOX_KEEP_MS: every id made by cv_id_new
 * starts with its creation time, so "older" is a range of the key. Ids of
 * another form are kept (they sort above the bound or fail the time check).
 */
static int inbox_prune(cv_bus_t *self)
{
    sqlite3_stmt *stmt = cv_store_prepare(
        self->store,
        "DELETE FROM cv_inbox WHERE event_id < ? AND received_at < ?");
    if (stmt == NULL)
        return -1;
    int64_t cutoff = cv_clock_now_ms() - INBOX_KEEP_MS;
    char bound[32];
    snprintf(bound, sizeof(bound), "evt_%012llx",
             (unsigned long long)cutoff & 0xffffffffffffULL);
    cv_store_bind_text(stmt, 1, bound);
    sqlite3_bind_int64(stmt, 2, cutoff);
    return cv_store_step_done(stmt);
}

/* Tells the sources how the turn ended: `committed` to those whose work
 * ran in it, `turn_ended` to all. */
static void sources_turn_ended(cv_bus_t *self, bool ok)
{
    for (int i = 0; i < self->source_count; i++) {
        source_slot_t *slot = &self->sources[i];
        if (slot->due && slot->source.committed != NULL)
            slot->source.committed(slot->source.arg, self, ok);
        slot->due = false;
        if (slot->source.turn_ended != NULL)
            slot->source.turn_ended(slot->source.arg, self, ok);
    }
}

static int turn_transaction(cv_bus_t *self, bool flush_deletes, bool prune)
{
    int64_t now = cv_clock_now_ms();
    if (cv_store_begin(self->store) != 0)
        goto fail;
    if (apply_inbound(self) != 0)
        goto fail;
    for (int i = 0; i < self->source_count; i++) {
        source_slot_t *slot = &self->sources[i];
        if (slot->due && slot->source.work(slot->source.arg, self, now) != 0)
            goto fail;
    }
    if (flush_deletes && outbox_delete_acked(self) != 0)
        goto fail;
    if (prune && inbox_prune(self) != 0)
        goto fail;
    for (int i = 0; i < self->source_count; i++) {
        cv_bus_source_t *s = &self->sources[i].source;
        if (s->before_commit != NULL && s->before_commit(s->arg, self) != 0)
            goto fail;
    }
    if (cv_store_commit(self->store) != 0)
        goto fail;

    cv_metric_add(metric_batches, 1);
    /* what paces the next events (batch_lingers): a commit that carried
     * several events means they come faster than one per commit; one
     * event, or none (a turn of a source or of deletes alone), means the
     * stage is not busy and its next event goes at once */
    self->last_commit_events = self->inbound_count;
    if (self->inbound_count > 1)
        self->last_commit_ms = cv_clock_monotonic_ms();
    for (int i = 0; i < self->inbound_count; i++) {
        cv_metric_add(metric_in, self->inbound[i].applied ? 1 : 0);
        cv_metric_add(metric_duplicate, self->inbound[i].duplicate ? 1 : 0);
    }
    if (flush_deletes)
        acked_release(self);
    staged_publish(self);
    sources_turn_ended(self, true);
    send_acks(self);
    return 0;

fail:
    cv_store_rollback(self->store);
    staged_discard(self, 0);
    for (int i = 0; i < self->inbound_count; i++)
        self->inbound[i].ack = false;
    send_acks(self); /* frees the payloads; nothing is acknowledged */
    sources_turn_ended(self, false);
    return -1;
}

/* ------------------------------------------------------------------ */
/* life cycle                                                          */

/* Whether the outbox has the `pending` column of one row per event. */
static bool outbox_has_pending(cv_store_t *store)
{
    sqlite3_stmt *probe = NULL;
    bool has = sqlite3_prepare_v2(cv_store_db(store),
                                  "SELECT pending FROM cv_outbox LIMIT 0", -1,
                                  &probe, NULL) == SQLITE_OK;
    sqlite3_finalize(probe);
    return has;
}

int cv_outbox_create(cv_store_t *store)
{
    if (cv_store_exec(store, bus_schema) != 0)
        return -1;
    /* an outbox from before one row per event: its rows keep one
     * destination each, and new rows need the `pending` column */
    if (outbox_has_pending(store))
        return 0;
    if (sqlite3_exec(cv_store_db(store),
                     "ALTER TABLE cv_outbox ADD COLUMN pending INTEGER", NULL,
                     NULL, NULL) == SQLITE_OK)
        return 0;
    /* another connection of this process may have added it just now */
    return outbox_has_pending(store)
               ? 0
               : cv_error("cannot add 'pending' to the outbox of '%s'",
                          cv_store_path(store));
}

static void on_signal(int sig)
{
    (void)sig;
    if (running_bus != NULL)
        cv_bus_stop(running_bus);
}

static void metrics_register(void)
{
    metric_in = cv_metrics_counter("conveyor_bus_events_handled_total",
                                   "events applied by this service");
    metric_duplicate = cv_metrics_counter(
        "conveyor_bus_events_duplicate_total",
        "re-delivered events skipped by the inbox");
    metric_garbage = cv_metrics_counter("conveyor_bus_garbage_total",
                                        "malformed messages dropped");
    metric_sent = cv_metrics_counter("conveyor_bus_events_sent_total",
                                     "outbox sends, re-sends included");
    metric_resent = cv_metrics_counter(
        "conveyor_bus_events_resent_total",
        "outbox events re-sent after their lease ran out");
    metric_acked = cv_metrics_counter("conveyor_bus_events_acked_total",
                                      "outbox events acknowledged");
    metric_outbox = cv_metrics_gauge(
        "conveyor_bus_outbox_pending",
        "outbox events in memory, not yet acknowledged (each destination "
        "holds a window of them; the rest wait in SQLite, uncounted)");
    metric_batches = cv_metrics_counter("conveyor_bus_transactions_total",
                                        "bus turn transactions committed");
    metric_catch_ups = cv_metrics_counter(
        "conveyor_bus_wal_catch_ups_total",
        "times the loop paused to copy the WAL's last frames so it can "
        "start over");
    metric_catch_up_us = cv_metrics_counter(
        "conveyor_bus_wal_catch_up_microseconds_total",
        "time the loop spent in those pauses");
}

static int links_open(cv_bus_t *self, const char *endpoints)
{
    char list[CV_CONFIG_TEXT];
    snprintf(list, sizeof(list), "%s", endpoints);
    char *save = NULL;
    for (char *ep = strtok_r(list, ", ", &save); ep != NULL;
         ep = strtok_r(NULL, ", ", &save)) {
        if (self->link_count == MAX_LINKS)
            return cv_error("too many brokers in '%s'", endpoints);
        link_t *link = &self->links[self->link_count];
        snprintf(link->endpoint, sizeof(link->endpoint), "%s", ep);
        link->socket = zmq_socket(self->zmq, ZMQ_DEALER);
        if (link->socket == NULL)
            return cv_error("cannot create a socket: %s", zmq_strerror(errno));
        self->link_count++;
        int zero = 0;
        int one = 1;
        int hwm = 100000;
        int reconnect_ms = 100;
        zmq_setsockopt(link->socket, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(link->socket, ZMQ_IMMEDIATE, &one, sizeof(one));
        zmq_setsockopt(link->socket, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(link->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        int64_t max_msg = CV_WIRE_MSG_MAX;
        zmq_setsockopt(link->socket, ZMQ_MAXMSGSIZE, &max_msg,
                       sizeof(max_msg));
        zmq_setsockopt(link->socket, ZMQ_RECONNECT_IVL, &reconnect_ms,
                       sizeof(reconnect_ms));
        if (zmq_connect(link->socket, ep) != 0)
            return cv_error("cannot connect to broker '%s': %s", ep,
                            zmq_strerror(errno));
    }
    if (self->link_count == 0)
        return cv_error("no broker endpoint configured");
    return 0;
}

/* After every commit on the bus's connection: how long the WAL is. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    cv_bus_t *self = arg;
    atomic_store(&self->wal_frames, frames);
    return SQLITE_OK;
}

/* Checkpoints the bus's database from a thread of its own once the WAL
 * holds CHECKPOINT_FRAMES pages it has not copied yet, so the loop never
 * stalls copying them into the database file (SQLite's automatic
 * checkpoint runs inside the COMMIT that crosses its threshold, on the
 * committing thread). PASSIVE never blocks the writer, so under load the
 * writer commits more while it copies and the WAL is never all copied: it
 * cannot start over, and the WAL would only grow. The frames left behind
 * are few; the bus copies them itself before its next turn (catch_up),
 * when nothing writes, and its next transaction starts the WAL over.
 * (Counting the WAL's whole length instead made this thread copy every
 * 50 ms once the WAL had passed the threshold: hot pages went to the
 * database file, and the file was synced, twenty times a second.) */
static void *checkpointer_main(void *arg)
{
    cv_bus_t *self = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(cv_store_path(self->store), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        cv_error("cannot open '%s' to checkpoint it: %s",
                 cv_store_path(self->store),
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    /* SQLite 3.40 opens the WAL of a connection on its first read; before
     * that a checkpoint does nothing and still says SQLITE_OK (the WAL of
     * a busy stage then grows without end) */
    if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
                     NULL) != SQLITE_OK)
        cv_log_warn("cannot read '%s' to checkpoint it: %s",
                    cv_store_path(self->store), sqlite3_errmsg(db));
    /* the database file, synced after a copy; the same while db is open */
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) !=
            SQLITE_OK ||
        (file != NULL && file->pMethods == NULL))
        file = NULL;
    int copied_through = 0; /* frames of the current WAL already copied */
    bool sync_failed = false; /* said once, not every CHECKPOINT_POLL_MS */
    while (!atomic_load(&self->checkpointer_stop)) {
        usleep(CHECKPOINT_POLL_MS * 1000);
        int frames = atomic_load(&self->wal_frames);
        if (frames < copied_through)
            copied_through = 0; /* the WAL started over */
        if (frames - copied_through < CHECKPOINT_FRAMES)
            continue;
        int in_wal = 0;
        int copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                           &in_wal, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
            cv_log_warn("cannot checkpoint '%s': %s",
                        cv_store_path(self->store), sqlite3_errmsg(db));
            continue;
        }
        /* A checkpoint that leaves frames behind does not sync the
         * database file; the one that copies the last frame does, before
         * the WAL may start over. Left to the bus's catch-up, that sync
         * would write back everything copied here, with the bus's loop
         * waiting; synced here, the catch-up only writes back the few
         * pages it copies itself. */
        bool left_frames =
            rc == SQLITE_OK && copied > copied_through && copied < in_wal;
        if (left_frames && file != NULL &&
            file->pMethods->xSync(file, SQLITE_SYNC_NORMAL) != SQLITE_OK) {
            if (!sync_failed)
                cv_error("cannot sync '%s' after a checkpoint; the WAL "
                         "starts over only once it can",
                         cv_store_path(self->store));
            sync_failed = true;
            continue;
        }
        copied_through = copied;
        /* this copied the WAL as it was when it began; the bus has
         * committed more since, and the WAL cannot start over until those
         * are copied too */
        atomic_store(&self->catch_up, true);
    }
    sqlite3_close(db);
    return NULL;
}

/* Copies what the checkpointer left behind, between turns (no transaction
 * open, nothing else of this process writing): the WAL is then all in the
 * database file, and the next transaction starts it over. */
static void checkpoint_catch_up(cv_bus_t *self)
{
    if (!atomic_exchange(&self->catch_up, false))
        return;
    int64_t began_us = cv_clock_monotonic_us();
    int rc = sqlite3_wal_checkpoint_v2(cv_store_db(self->store), NULL,
                                       SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    cv_metric_add(metric_catch_ups, 1);
    cv_metric_add(metric_catch_up_us, cv_clock_monotonic_us() - began_us);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        cv_log_warn("cannot checkpoint '%s': %s", cv_store_path(self->store),
                    sqlite3_errmsg(cv_store_db(self->store)));
}

static int checkpointer_start(cv_bus_t *self)
{
    /* replaces SQLite's own automatic checkpoint on this connection */
    sqlite3_wal_hook(cv_store_db(self->store), on_wal_commit, self);
    if (pthread_create(&self->checkpointer, NULL, checkpointer_main, self) !=
        0)
        return cv_error("cannot start the checkpoint thread of '%s'",
                        self->service);
    self->checkpointer_started = true;
    return 0;
}

cv_bus_t *cv_bus_new(const cv_bus_options_t *options)
{
    const cv_config_t *config = options->config;
    if (metric_in == NULL)
        metrics_register();
    cv_bus_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return NULL;
    self->wake_fd = -1;
    snprintf(self->service, sizeof(self->service), "%s", config->service);
    if (options->worker_service != NULL)
        snprintf(self->worker, sizeof(self->worker), "%s",
                 options->worker_service);
    self->store = options->store;
    self->handler = options->handler;
    self->arg = options->arg;
    self->batch_max = config->batch_max > 0 ? config->batch_max : 256;
    self->linger_ms = config->batch_linger_ms > 0 ? config->batch_linger_ms : 0;
    self->lease_ms = config->lease_ms > 0 ? config->lease_ms : 3000;
    self->background = config->bus_background;
    self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms : 500;
    if (self->worker[0] != '\0' && self->handler == NULL) {
        cv_error("worker '%s' has no handler", self->worker);
        goto fail;
    }
    self->hash_size = 1024;
    self->hash = calloc(self->hash_size, sizeof(*self->hash));
    self->inbound = calloc((size_t)self->batch_max, sizeof(*self->inbound));
    self->arena = cv_event_arena_new();
    if (self->hash == NULL || self->inbound == NULL || self->arena == NULL)
        goto fail;
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->wake_fd < 0) {
        cv_error("cannot create an eventfd: %s", strerror(errno));
        goto fail;
    }
    if (cv_outbox_create(self->store) != 0)
        goto fail;
    self->zmq = zmq_ctx_new();
    if (self->zmq == NULL)
        goto fail;
    if (links_open(self, config->broker_endpoint) != 0)
        goto fail;
    if (outbox_scan(self) != 0)
        goto fail;
    if (checkpointer_start(self) != 0)
        goto fail;
    return self;
fail:
    cv_bus_destroy(&self);
    return NULL;
}

void cv_bus_destroy(cv_bus_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    cv_bus_t *self = *self_p;
    if (running_bus == self)
        running_bus = NULL;
    if (self->checkpointer_started) {
        atomic_store(&self->checkpointer_stop, true);
        pthread_join(self->checkpointer, NULL);
    }
    for (int i = 0; i < self->link_count; i++)
        zmq_close(self->links[i].socket);
    if (self->zmq != NULL)
        zmq_ctx_term(self->zmq);
    staged_discard(self, 0);
    /* events received but not applied (a stop while they waited for the
     * pacing pause): never acknowledged, so their senders send them again */
    for (int i = 0; i < self->inbound_count; i++)
        zmq_msg_close(&self->inbound[i].payload);
    self->inbound_count = 0;
    if (self->carry.active)
        zmq_msg_close(&self->carry.frame);
    free(self->staged);
    free(self->acked);
    if (self->hash != NULL) {
        for (size_t i = 0; i < self->hash_size; i++) {
            item_t *item = self->hash[i];
            while (item != NULL) {
                item_t *next = item->hash_next;
                free(item->payload);
                free(item);
                item = next;
            }
        }
    }
    free(self->hash);
    free(self->inbound);
    cv_event_arena_destroy(&self->arena);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    free(self);
    *self_p = NULL;
}

int cv_bus_add_source(cv_bus_t *self, const cv_bus_source_t *source)
{
    if (self->source_count == MAX_SOURCES || source->work == NULL)
        return cv_error("cannot add a bus source to '%s'", self->service);
    self->sources[self->source_count].source = *source;
    self->sources[self->source_count].due = false;
    self->source_count++;
    return 0;
}

void cv_bus_stop(cv_bus_t *self)
{
    atomic_store(&self->stopping, true);
    uint64_t one = 1;
    ssize_t n = write(self->wake_fd, &one, sizeof(one));
    (void)n;
}

void cv_bus_wake(cv_bus_t *self)
{
    atomic_store(&self->wake_pending, true);
    uint64_t one = 1;
    ssize_t n = write(self->wake_fd, &one, sizeof(one));
    (void)n;
}

bool cv_bus_connected(const cv_bus_t *self)
{
    return atomic_load(&((cv_bus_t *)self)->connected);
}

cv_store_t *cv_bus_store(cv_bus_t *self)
{
    return self->store;
}

const char *cv_bus_service(const cv_bus_t *self)
{
    return self->service;
}

const Conveyor__Envelope *cv_bus_current(const cv_bus_t *self)
{
    return self->current;
}

int cv_bus_current_packed(const cv_bus_t *self, const uint8_t **data,
                          size_t *size)
{
    if (self->current_data == NULL)
        return -1;
    *data = self->current_data;
    *size = self->current_size;
    return 0;
}

/* Pacing, of a busy stage only: when the last commit carried more than one
 * event, events that come within batch_linger_ms of its end wait until
 * then and share the next commit (fewer, larger commits under load). After
 * a commit of one event, or of none, the next event is committed at once,
 * as an idle stage's is: at a moderate rate (an event every few ms) commits
 * carry one event each, and pausing them only added the linger to every
 * hop. After a full batch (a backlog) nothing waits either.
 *
 * The rule cannot flip-flop into many more commits than pacing every
 * commit did: events go unpaced only right after a turn that committed at
 * most one of them (a source's turn or a flush of deletes commits none),
 * so each such turn costs at most one commit more, and a stream of lone
 * events never makes more commits of events than there are events. Under
 * load such turns are rare: a paced commit carries what came during its
 * window and the commit before it (about 10 events at 2,000/s with 3 ms
 * and a 1-4 ms sync), so it is shared again; and should a window catch
 * only one event, the commit after it takes at once what came during that
 * commit's sync, several events again, and pacing resumes: one commit
 * more than before, once. */
static bool batch_lingers(const cv_bus_t *self, int64_t mono)
{
    return self->inbound_count > 0 && self->inbound_count < self->batch_max &&
           self->last_commit_events > 1 &&
           self->last_commit_events < self->batch_max &&
           mono - self->last_commit_ms < self->linger_ms;
}

/* How long the loop may sleep: the next heartbeat, lease, back-off,
 * source due time or, while a batch lingers (batch_lingers at `mono`),
 * the end of its linger; never more than POLL_MAX_MS. */
static long poll_timeout(cv_bus_t *self, bool blocked, bool lingering,
                         int64_t mono)
{
    int64_t wait = POLL_MAX_MS;
    int64_t hb = self->next_heartbeat_ms - mono;
    if (hb < wait)
        wait = hb;
    int64_t lease = outbox_next_deadline(self);
    if (lease != INT64_MAX && lease - mono < wait)
        wait = lease - mono;
    if (blocked && wait > 10)
        wait = 10;
    if (self->carry.active)
        wait = 0; /* its events wait for room, not for the sockets */
    if (lingering) {
        int64_t linger = self->last_commit_ms + self->linger_ms - mono;
        if (linger < wait)
            wait = linger;
    }
    if (self->acked_count > 0) {
        int64_t flush = self->acked_since_ms + DELETE_FLUSH_MS - mono;
        if (flush < wait)
            wait = flush;
    }
    int64_t now = cv_clock_now_ms();
    for (int i = 0; i < self->source_count; i++) {
        cv_bus_source_t *s = &self->sources[i].source;
        if (s->next_due == NULL)
            continue;
        int64_t due = s->next_due(s->arg, self);
        if (due != INT64_MAX && due - now < wait)
            wait = due - now;
    }
    return wait < 0 ? 0 : (long)wait;
}

/* Whether the calling thread, once SCHED_IDLE, may come back to
 * SCHED_OTHER. Linux lets it only with CAP_SYS_NICE or with an RLIMIT_NICE
 * that allows its nice value (20 - nice); an unprivileged user (the
 * container's) has neither by default, and would stay idle for good. */
static bool can_leave_idle(void)
{
    struct rlimit limit;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0); /* this thread's */
    if (errno == 0 && getrlimit(RLIMIT_NICE, &limit) == 0 &&
        (limit.rlim_cur == RLIM_INFINITY ||
         limit.rlim_cur >= (rlim_t)(20 - nice)))
        return true;
    struct __user_cap_header_struct header = {
        .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, caps) != 0)
        return false;
    return (caps[CAP_TO_INDEX(CAP_SYS_NICE)].effective &
            CAP_TO_MASK(CAP_SYS_NICE)) != 0;
}

static bool priority_set(int policy)
{
    struct sched_param param = {.sched_priority = 0};
    return sched_setscheduler(0, policy, &param) == 0;
}

/* Makes the calling thread a background one: Linux gives it a CPU only
 * when no other thread wants one, and takes it back at once when one
 * does. Threads it starts later inherit this; those started before (the
 * HTTP server's, ZeroMQ's, the checkpointer) keep their priority. A
 * thread that could not come back to work off a backlog
 * (background_follow) stays in the foreground instead, or a busy machine
 * would leave the stage ever further behind. */
static void background_begin(cv_bus_t *self)
{
    const char *why = NULL;
    if (sched_getscheduler(0) != SCHED_OTHER)
        why = "its thread does not run at the usual policy (SCHED_OTHER)";
    else if (!can_leave_idle())
        why = "it could not come back to catch up (it needs CAP_SYS_NICE "
              "or RLIMIT_NICE 20, e.g. ulimit -e 20)";
    else if (!priority_set(SCHED_IDLE))
        why = strerror(errno);
    if (why != NULL) {
        cv_log_warn("the bus of '%s' stays in the foreground: %s",
                    self->service, why);
        return;
    }
    cv_log_info("the bus of '%s' runs in the background", self->service);
    self->priority = PRIORITY_IDLE;
}

/* A background stage that fell behind, so that a whole batch waited for
 * its turn, works at the usual priority until its batches are small again
 * (a quarter of batch_max or less, or none):
 * it yields to the others while it keeps up, but a machine that is busy
 * for long (a saturating load) does not leave it ever further behind. */
static void background_follow(cv_bus_t *self)
{
    bool behind = self->inbound_count >= self->batch_max;
    bool caught_up = self->inbound_count <= self->batch_max / 4;
    if (self->priority == PRIORITY_IDLE && behind && priority_set(SCHED_OTHER))
        self->priority = PRIORITY_CATCHING_UP;
    else if (self->priority == PRIORITY_CATCHING_UP && caught_up &&
             priority_set(SCHED_IDLE))
        self->priority = PRIORITY_IDLE;
}

/* The loop is over: what follows (the caller's shutdown) runs at the
 * thread's usual priority again. */
static void background_end(cv_bus_t *self)
{
    if (self->priority == PRIORITY_IDLE)
        (void)priority_set(SCHED_OTHER);
    self->priority = PRIORITY_OWN;
}

int cv_bus_run(cv_bus_t *self)
{
    running_bus = self;
    if (self->background)
        background_begin(self);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    zmq_pollitem_t items[MAX_LINKS + 1 + MAX_SOURCES];
    int64_t liveness_ms = (int64_t)self->heartbeat_ms * CV_WIRE_LIVENESS;
    bool blocked = false;
    self->next_heartbeat_ms = 0;
    self->next_prune_ms = cv_clock_monotonic_ms() + INBOX_PRUNE_EVERY_MS;
    int rc = 0;

    while (!atomic_load(&self->stopping)) {
        /* While a batch lingers, the brokers' sockets are not watched:
         * what arrives meanwhile waits in ZeroMQ and is read when the
         * linger ends (or at a wake for a heartbeat, a lease, a source or
         * cv_bus_wake), so a stream of events wakes this thread about once
         * per commit instead of once per message. */
        int64_t polled_at = cv_clock_monotonic_ms();
        bool hold_links = batch_lingers(self, polled_at);
        int n = 0;
        for (int i = 0; i < self->link_count; i++)
            items[n++] = (zmq_pollitem_t){self->links[i].socket, 0,
                                          hold_links ? 0 : ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, self->wake_fd, ZMQ_POLLIN, 0};
        int source_item[MAX_SOURCES]; /* poll item of each source, or -1 */
        for (int i = 0; i < self->source_count; i++) {
            source_item[i] = -1;
            if (self->sources[i].source.fd >= 0) {
                source_item[i] = n;
                items[n++] = (zmq_pollitem_t){NULL,
                                              self->sources[i].source.fd,
                                              ZMQ_POLLIN, 0};
            }
        }
        long timeout = poll_timeout(self, blocked, hold_links, polled_at);
        if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
            rc = cv_error("cannot poll: %s", zmq_strerror(errno));
            break;
        }
        if (atomic_load(&self->stopping))
            break;

        int64_t mono = cv_clock_monotonic_ms();
        if (items[self->link_count].revents & ZMQ_POLLIN) {
            uint64_t count;
            ssize_t got = read(self->wake_fd, &count, sizeof(count));
            (void)got;
        }
        if (atomic_exchange(&self->wake_pending, false))
            self->scan_needed = true;

        /* the broker's messages, up to one batch of events: first what
         * is left of a B frame an earlier turn had no room for */
        carry_take(self);
        for (int i = 0; i < self->link_count; i++) {
            while (!self->carry.active &&
                   self->inbound_count < self->batch_max) {
                int got = receive_one(self, i);
                if (got <= 0)
                    break;
            }
        }
        bool lingering = batch_lingers(self, mono);

        waiting_expire(self, mono);

        /* brokers heard from lately */
        bool any_alive = false;
        for (int i = 0; i < self->link_count; i++) {
            link_t *l = &self->links[i];
            if (l->alive && mono - l->last_heard_ms > liveness_ms) {
                l->alive = false;
                cv_log_warn("broker '%s' went silent", l->endpoint);
            }
            any_alive = any_alive || l->alive;
        }
        atomic_store(&self->connected, any_alive);
        if (mono >= self->next_heartbeat_ms) {
            send_ready(self);
            self->next_heartbeat_ms = mono + self->heartbeat_ms;
        }

        /* the service's sources that are due */
        bool any_due = false;
        int64_t now = cv_clock_now_ms();
        for (int i = 0; i < self->source_count; i++) {
            source_slot_t *slot = &self->sources[i];
            bool readable = source_item[i] >= 0 &&
                            (items[source_item[i]].revents & ZMQ_POLLIN);
            bool due = slot->source.next_due != NULL &&
                       slot->source.next_due(slot->source.arg, self) <= now;
            slot->due = readable || due;
            any_due = any_due || slot->due;
        }

        bool take_inbound = self->inbound_count > 0 && (!lingering || any_due);
        bool flush_deletes =
            self->acked_count > 0 &&
            (self->acked_count >= DELETE_FLUSH_COUNT ||
             mono - self->acked_since_ms >= DELETE_FLUSH_MS ||
             take_inbound || any_due);
        bool prune = mono >= self->next_prune_ms;
        if (prune)
            self->next_prune_ms = mono + INBOX_PRUNE_EVERY_MS;
        if (take_inbound || self->inbound_count == 0)
            background_follow(self);
        if (take_inbound || any_due || flush_deletes || prune) {
            checkpoint_catch_up(self);
            if (turn_transaction(self, flush_deletes, prune) != 0)
                cv_log_warn("a bus transaction in '%s' failed; events will "
                            "be re-sent", self->service);
        }

        outbox_load(self);
        blocked = outbox_send(self);
    }

    /* a clean stop: acknowledged rows are deleted (and the bits of rows
     * still owed elsewhere cleared), the rest wait on disk */
    waiting_expire(self, INT64_MAX);
    if (self->acked_count > 0 && cv_store_begin(self->store) == 0) {
        if (outbox_delete_acked(self) == 0 && cv_store_commit(self->store) == 0)
            acked_release(self);
        else
            cv_store_rollback(self->store);
    }
    running_bus = NULL;
    background_end(self);
    return rc;
}

/* console_known: which leads have a committed card with a trace, so the
 * bus thread can skip console_lead_ensure's read for the events that come
 * after a lead's first (TaskCreated, NotificationDelivered, ...).
 *
 * Why this cache is safe: it is never the only copy of anything. It holds
 * only a fact SQLite already has and that never stops being true (no code
 * deletes a card or clears its trace; every write keeps the first trace),
 * and only once the transaction that made it true has committed: a lead
 * learnt during a turn waits in `pending` until turn_ended says the turn
 * committed, and is dropped when the turn or any event's handler failed
 * (the bus then rolls the event or the whole turn back). Until then the
 * open turn's own events may use what it learnt (`open`): they run in the
 * same transaction, so they see the card, and a rollback of the fact is a
 * rollback of whatever relied on it (a failing handler ends the open
 * turn's knowledge at once). A lead missing from the table (never seen,
 * pushed out by another, restart) only costs the read it would have cost
 * anyway. Bus thread only. */
#include "console.h"

#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

#define CONSOLE_KNOWN_SLOTS 16384   /* leads remembered (power of two) */
#define CONSOLE_KNOWN_ID 48         /* longest id remembered, with NUL */
#define CONSOLE_KNOWN_PENDING 2048  /* leads learnt in one turn */

typedef struct {
    char id[CONSOLE_KNOWN_ID];      /* lead id, "" for an empty slot */
} console_known_slot_t;

typedef struct {
    char id[CONSOLE_KNOWN_ID];      /* lead id ... */
    uint64_t turn;                  /* ... learnt in this turn */
} console_known_open_t;

struct console_known {
    console_known_slot_t slots[CONSOLE_KNOWN_SLOTS]; /* committed facts,
                                       one lead per slot (a newer lead with
                                       the same hash replaces it) */
    console_known_open_t open[CONSOLE_KNOWN_SLOTS]; /* the same slots for
                                       the open turn: valid while `turn`
                                       matches */
    uint64_t turn;                  /* the open turn's number (from 1) */
    console_known_slot_t pending[CONSOLE_KNOWN_PENDING]; /* learnt in the
                                       open turn, to commit at its end */
    int pending_count;              /* entries used in pending */
};

console_known_t *console_known_new(void)
{
    console_known_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot allocate the known-leads cache: out of memory");
        return NULL;
    }
    self->turn = 1; /* the zeroed open slots belong to no turn */
    return self;
}

void console_known_destroy(console_known_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* FNV-1a of `id` (its length in *len), folded to a slot. */
static size_t console_known_slot(const char *id, size_t *len)
{
    uint32_t hash = 2166136261u;
    size_t i = 0;
    for (; id[i] != '\0'; i++)
        hash = (hash ^ (uint8_t)id[i]) * 16777619u;
    *len = i;
    return hash & (CONSOLE_KNOWN_SLOTS - 1);
}

bool console_known_has(const console_known_t *self, const char *lead_id)
{
    if (self == NULL || lead_id == NULL || lead_id[0] == '\0')
        return false;
    size_t len;
    size_t slot = console_known_slot(lead_id, &len);
    if (len >= CONSOLE_KNOWN_ID)
        return false;
    if (memcmp(self->slots[slot].id, lead_id, len + 1) == 0)
        return true;
    const console_known_open_t *open = &self->open[slot];
    return open->turn == self->turn &&
           memcmp(open->id, lead_id, len + 1) == 0;
}

void console_known_learn(console_known_t *self, const char *lead_id,
                         const char *trace_id)
{
    if (self == NULL || lead_id == NULL || lead_id[0] == '\0' ||
        trace_id == NULL || trace_id[0] == '\0')
        return;
    size_t len;
    size_t slot = console_known_slot(lead_id, &len);
    if (len >= CONSOLE_KNOWN_ID)
        return;
    memcpy(self->open[slot].id, lead_id, len + 1);
    self->open[slot].turn = self->turn;
    /* a turn that learns more than pending holds commits only part */
    if (self->pending_count == CONSOLE_KNOWN_PENDING)
        return;
    memcpy(self->pending[self->pending_count].id, lead_id, len + 1);
    self->pending_count++;
}

void console_known_forget_turn(console_known_t *self)
{
    if (self == NULL)
        return;
    self->pending_count = 0;
    self->turn++; /* what the open slots hold is void */
}

void console_known_turn_ended(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    console_known_t *self = ((console_t *)arg)->known;
    if (self == NULL)
        return;
    for (int i = 0; ok && i < self->pending_count; i++) {
        size_t len;
        size_t slot = console_known_slot(self->pending[i].id, &len);
        memcpy(self->slots[slot].id, self->pending[i].id, len + 1);
    }
    self->pending_count = 0;
    self->turn++;
}

/* A source that never runs work: it is there for turn_ended. */
static int console_known_work(void *arg, cv_bus_t *bus, int64_t now_ms)
{
    (void)arg;
    (void)bus;
    (void)now_ms;
    return 0;
}

int console_known_watch(console_t *console)
{
    cv_bus_source_t source = {
        .fd = -1,
        .work = console_known_work,
        .turn_ended = console_known_turn_ended,
        .arg = console,
    };
    return cv_bus_add_source(console->bus, &source);
}

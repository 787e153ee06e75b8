/* console_known: which leads have a card with a trace, so that
 * console_lead_ensure, which every bus-thread handler goes through to make
 * sure a lead has a card, can skip its read for the events that come after
 * a lead's first (TaskCreated, NotificationDelivered, ...).
 *
 * Why this cache is safe: it is never the only copy of anything. It holds
 * only a fact SQLite already has, or has in the open turn's transaction,
 * and that never stops being true once committed (no code deletes a card
 * or clears its trace; every write keeps the first trace). What the open
 * turn learns is marked known at once: that turn's later events run in the
 * same transaction, so they see the card. Each slot the turn marked is
 * listed in `pending`; a turn that commits keeps them, and a turn that
 * rolls back, or whose handler failed (the bus then rolls the event or the
 * whole turn back), empties every listed slot, so no lead it learnt stays
 * known. A committed lead whose slot the turn took over goes with it: a
 * lead missing from the table (never seen, pushed out by another, restart)
 * only costs the read it would have cost anyway. Bus thread only. */
#include "console.h"

#include <stdlib.h>
#include <string.h>

#include "cv_log.h"

#define CONSOLE_KNOWN_SLOTS 16384   /* leads remembered (power of two) */
#define CONSOLE_KNOWN_ID 48         /* longest id remembered, with NUL */

/* pending holds slot numbers */
_Static_assert(CONSOLE_KNOWN_SLOTS <= UINT16_MAX + 1,
               "a slot number must fit in pending's uint16_t");

typedef struct {
    char id[CONSOLE_KNOWN_ID];      /* lead id, "" for an empty slot */
} console_known_slot_t;

struct console_known {
    console_known_slot_t slots[CONSOLE_KNOWN_SLOTS]; /* one lead per slot
                                       (a newer lead with the same hash
                                       replaces it) */
    uint16_t pending[CONSOLE_KNOWN_PENDING]; /* slots the open turn wrote,
                                       to empty if it rolls back */
    int pending_count;              /* entries used in pending */
};

console_known_t *console_known_new(void)
{
    console_known_t *self = calloc(1, sizeof(*self));
    if (self == NULL) {
        cv_error("cannot allocate the known-leads cache: out of memory");
        return NULL;
    }
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
    return len < CONSOLE_KNOWN_ID &&
           memcmp(self->slots[slot].id, lead_id, len + 1) == 0;
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
    console_known_slot_t *entry = &self->slots[slot];
    /* known already: committed, or listed by this turn */
    if (memcmp(entry->id, lead_id, len + 1) == 0)
        return;
    /* a slot a rollback could not empty must not be written: past what
     * pending holds, a turn learns nothing more */
    if (self->pending_count == CONSOLE_KNOWN_PENDING)
        return;
    self->pending[self->pending_count++] = (uint16_t)slot;
    memcpy(entry->id, lead_id, len + 1);
}

void console_known_forget_turn(console_known_t *self)
{
    if (self == NULL)
        return;
    for (int i = 0; i < self->pending_count; i++)
        self->slots[self->pending[i]].id[0] = '\0';
    self->pending_count = 0;
}

void console_known_turn_ended(void *arg, cv_bus_t *bus, bool ok)
{
    (void)bus;
    console_known_t *self = ((console_t *)arg)->known;
    if (self == NULL)
        return;
    if (!ok)
        console_known_forget_turn(self);
    self->pending_count = 0; /* committed: what the slots hold stays */
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

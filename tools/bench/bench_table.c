/* bench_table: an open-addressing hash of lead ids, shared by the sink's
 * threads and the generator under one mutex. Each slot knows which request
 * of this run produced the lead (if any) and when its first notification
 * arrived (if yet), so a lead is "matched" once both are known, in
 * whichever order they happen. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define TABLE_INITIAL_SLOTS 4096

typedef struct {
    char id[BENCH_ID_MAX];  /* lead id, "" for an empty slot */
    int64_t arrival_us;     /* first notification, 0 when none yet */
    int64_t request;        /* request index of this run, -1 when none */
} table_slot_t;

struct bench_table {
    pthread_mutex_t lock;   /* guards everything below */
    table_slot_t *slots;    /* capacity entries */
    size_t capacity;        /* a power of two */
    size_t used;            /* occupied slots */
    bench_table_counts_t counts; /* running totals */
};

/* FNV-1a: lead ids are short and random enough already. */
static uint64_t table_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static table_slot_t *table_probe(table_slot_t *slots, size_t capacity,
                                 const char *id)
{
    size_t mask = capacity - 1;
    size_t i = (size_t)table_hash(id) & mask;

    while (slots[i].id[0] != '\0' && strcmp(slots[i].id, id) != 0)
        i = (i + 1) & mask;
    return &slots[i];
}

/* Doubles the table. Returns -1 when out of memory (table unchanged). */
static int table_grow(bench_table_t *self)
{
    size_t capacity = self->capacity * 2;
    table_slot_t *slots = calloc(capacity, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < self->capacity; i++) {
        if (self->slots[i].id[0] == '\0')
            continue;
        *table_probe(slots, capacity, self->slots[i].id) = self->slots[i];
    }
    free(self->slots);
    self->slots = slots;
    self->capacity = capacity;
    return 0;
}

/* The slot for `id`, created when missing; NULL when out of memory or the
 * id is empty. Caller holds the lock. */
static table_slot_t *table_slot(bench_table_t *self, const char *id)
{
    char key[BENCH_ID_MAX];
    table_slot_t *slot;

    snprintf(key, sizeof(key), "%s", id);
    if (key[0] == '\0')
        return NULL;
    if ((self->used + 1) * 2 > self->capacity && table_grow(self) != 0)
        return NULL;
    slot = table_probe(self->slots, self->capacity, key);
    if (slot->id[0] == '\0') {
        memcpy(slot->id, key, sizeof(key));
        slot->arrival_us = 0;
        slot->request = -1;
        self->used++;
    }
    return slot;
}

bench_table_t *bench_table_new(void)
{
    bench_table_t *self = calloc(1, sizeof(*self));

    if (self == NULL)
        return NULL;
    self->capacity = TABLE_INITIAL_SLOTS;
    self->slots = calloc(self->capacity, sizeof(*self->slots));
    if (self->slots == NULL) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    return self;
}

void bench_table_destroy(bench_table_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

void bench_table_arrive(bench_table_t *self, const char *lead_id, int64_t us)
{
    table_slot_t *slot;

    if (us <= 0)
        us = 1;
    pthread_mutex_lock(&self->lock);
    slot = table_slot(self, lead_id);
    if (slot == NULL) {
        self->counts.dropped++;
    } else if (slot->arrival_us != 0) {
        self->counts.repeats++;
    } else {
        slot->arrival_us = us;
        self->counts.arrivals++;
        if (slot->request >= 0)
            self->counts.matched++;
    }
    pthread_mutex_unlock(&self->lock);
}

void bench_table_expect(bench_table_t *self, const char *lead_id,
                        int64_t request)
{
    table_slot_t *slot;

    pthread_mutex_lock(&self->lock);
    slot = table_slot(self, lead_id);
    if (slot == NULL) {
        self->counts.dropped++;
    } else if (slot->request < 0) {
        slot->request = request;
        self->counts.expected++;
        if (slot->arrival_us != 0)
            self->counts.matched++;
    }
    pthread_mutex_unlock(&self->lock);
}

int64_t bench_table_arrival(bench_table_t *self, const char *lead_id)
{
    char key[BENCH_ID_MAX];
    int64_t us = 0;

    snprintf(key, sizeof(key), "%s", lead_id);
    if (key[0] == '\0')
        return 0;
    pthread_mutex_lock(&self->lock);
    us = table_probe(self->slots, self->capacity, key)->arrival_us;
    pthread_mutex_unlock(&self->lock);
    return us;
}

void bench_table_counts(bench_table_t *self, bench_table_counts_t *counts)
{
    pthread_mutex_lock(&self->lock);
    *counts = self->counts;
    counts->unexpected = counts->arrivals - counts->matched;
    pthread_mutex_unlock(&self->lock);
}

/* notifier_schedule: jobs waiting for their next attempt, as a binary
 * min-heap on next_attempt_at, so the bus asks for the earliest in O(1)
 * and takes due jobs in O(log n). Bus thread only. */
#include <stdlib.h>

#include "notifier.h"

static void notifier_schedule_swap(notifier_schedule_t *self, size_t a,
                                   size_t b)
{
    notifier_job_t *job = self->items[a];
    self->items[a] = self->items[b];
    self->items[b] = job;
}

int notifier_schedule_push(notifier_schedule_t *self, notifier_job_t *job)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity == 0 ? 64 : self->capacity * 2;
        notifier_job_t **items =
            realloc(self->items, capacity * sizeof(*items));
        if (items == NULL)
            return -1;
        self->items = items;
        self->capacity = capacity;
    }
    size_t at = self->count++;
    self->items[at] = job;
    job->next = NULL;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (self->items[parent]->next_attempt_at <=
            self->items[at]->next_attempt_at)
            break;
        notifier_schedule_swap(self, parent, at);
        at = parent;
    }
    return 0;
}

notifier_job_t *notifier_schedule_pop_due(notifier_schedule_t *self,
                                          int64_t now)
{
    if (self->count == 0 || self->items[0]->next_attempt_at > now)
        return NULL;
    notifier_job_t *job = self->items[0];
    self->items[0] = self->items[--self->count];
    size_t at = 0;
    for (;;) {
        size_t smallest = at;
        size_t left = 2 * at + 1;
        size_t right = left + 1;
        if (left < self->count && self->items[left]->next_attempt_at <
                                      self->items[smallest]->next_attempt_at)
            smallest = left;
        if (right < self->count && self->items[right]->next_attempt_at <
                                       self->items[smallest]->next_attempt_at)
            smallest = right;
        if (smallest == at)
            break;
        notifier_schedule_swap(self, at, smallest);
        at = smallest;
    }
    return job;
}

int64_t notifier_schedule_next(const notifier_schedule_t *self)
{
    return self->count == 0 ? INT64_MAX : self->items[0]->next_attempt_at;
}

void notifier_schedule_clear(notifier_schedule_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        notifier_job_destroy(&self->items[i]);
    free(self->items);
    self->items = NULL;
    self->count = 0;
    self->capacity = 0;
}

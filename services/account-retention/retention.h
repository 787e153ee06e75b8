/* account-retention: a won lead becomes an account (tier 3).
 *
 * DecisionRecorded `won` opens the account `acct-<lead_id>` and tells the
 * console; `lost` needs nothing here yet.
 *
 * Files: main.c (process), retention_schema.c (tables),
 * retention_account.c (the handler and the account). */
#ifndef RETENTION_H
#define RETENTION_H

#include <stddef.h>

#include "cv_bus.h"

#define RETENTION_SERVICE "account-retention"

extern const char *const retention_migrations[];
extern const size_t retention_migration_count;

/* The bus handler (cv_bus_handler_fn); `arg` is unused. */
int retention_handle_event(void *arg, cv_bus_t *bus,
                           const Conveyor__Envelope *event);

#endif

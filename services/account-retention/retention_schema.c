/* account-retention's tables. Append migrations; never edit one that has
 * shipped. */
#include "retention.h"

const char *const retention_migrations[] = {
    /* 1: accounts, one per won lead */
    "CREATE TABLE account ("
    "  account_id TEXT PRIMARY KEY," /* acct-<lead_id> */
    "  lead_id TEXT NOT NULL UNIQUE,"
    "  company TEXT,"               /* the company, else the person */
    "  owner_id TEXT,"              /* the sales owner who won it */
    "  opened_at INTEGER NOT NULL," /* ms, conveyor clock */
    "  decision_id TEXT NOT NULL,"  /* the decision that opened it */
    "  lead_json TEXT"              /* the lead's card when won */
    ") STRICT;"
    "CREATE INDEX account_by_owner ON account (owner_id);",
};

const size_t retention_migration_count =
    sizeof(retention_migrations) / sizeof(retention_migrations[0]);

/* proposal-generator's tables. Append migrations; never edit one that
 * has shipped. */
#include "proposal.h"

const char *const proposal_migrations[] = {
    /* 1: rendered proposals, one per presenting/sending activity */
    "CREATE TABLE proposal ("
    "  proposal_id TEXT PRIMARY KEY," /* prop-<activity_id> */
    "  activity_id TEXT NOT NULL,"
    "  lead_id TEXT NOT NULL,"
    "  activity_type TEXT NOT NULL," /* proposal_presented | _sent */
    "  segment TEXT NOT NULL,"       /* A | B | C */
    "  kind TEXT NOT NULL"
    "    CHECK (kind IN ('proposal', 'rejection', 'full_package')),"
    "  score_total INTEGER,"             /* NULL when the event had none */
    "  needs_approval INTEGER NOT NULL," /* 1: head of sales approves */
    "  title TEXT NOT NULL,"
    "  html TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX proposal_by_lead ON proposal (lead_id);",
    /* 2: each lead's segment after people moved it (a re-score's
     * LeadScored): the template its next proposal uses */
    "CREATE TABLE lead_segment ("
    "  lead_id TEXT PRIMARY KEY,"
    "  segment TEXT NOT NULL," /* A | B | C */
    "  total INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL," /* scorecard revision of the score */
    "  score BLOB NOT NULL,"       /* packed conveyor.Score */
    "  updated_at INTEGER NOT NULL"
    ") STRICT;",
};

const size_t proposal_migration_count =
    sizeof(proposal_migrations) / sizeof(proposal_migrations[0]);

/* scoring_schema: the tables of var/scoring.db. */
#include "scoring.h"

const char *const scoring_migrations[] = {
    /* 1: one score per lead; params_json is the lead card's shape
     * ({"total", "segment", "params": {name: {value, reason, ...}}}) */
    "CREATE TABLE scores ("
    "  lead_id TEXT PRIMARY KEY,"
    "  total INTEGER NOT NULL,"
    "  segment TEXT NOT NULL,"
    "  knocked_out INTEGER NOT NULL,"
    "  knockout_reason TEXT,"
    "  model_version TEXT NOT NULL,"
    "  score_json TEXT NOT NULL,"
    "  event_id TEXT,"
    "  scored_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX scores_segment ON scores (segment, scored_at);",
};

const size_t scoring_migration_count =
    sizeof(scoring_migrations) / sizeof(scoring_migrations[0]);

/* scoring_schema: the tables of var/scoring.db. Append migrations; never
 * edit one that has shipped. */
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
    /* 2: what re-scoring and `conveyorctl score` need: the lead the score
     * was made from, the scorecard applied, the lead's outcome; and the
     * history of every re-score */
    "ALTER TABLE scores ADD COLUMN lead BLOB;"      /* packed conveyor.Lead */
    "ALTER TABLE scores ADD COLUMN scorecard BLOB;" /* packed Scorecard */
    "ALTER TABLE scores ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE scores ADD COLUMN rescored_at INTEGER;"
    "ALTER TABLE scores ADD COLUMN decision TEXT;" /* won | lost */
    "ALTER TABLE scores ADD COLUMN decided_at INTEGER;"
    "CREATE TABLE score_history ("
    "  id INTEGER PRIMARY KEY,"
    "  lead_id TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  scorecard_id TEXT,"
    "  actor TEXT,"
    "  old_total INTEGER,"
    "  new_total INTEGER NOT NULL,"
    "  old_segment TEXT,"
    "  new_segment TEXT NOT NULL,"
    "  knocked_out INTEGER NOT NULL,"
    "  model_version TEXT NOT NULL,"
    "  event_id TEXT,"
    "  at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX score_history_by_lead ON score_history (lead_id, id);",
    /* 3: less written per lead. Nothing reads scores by segment (replays
     * read by scored_at, the stage by lead_id), so the index only cost a
     * page or more per commit. From here on score_json is '' in new rows:
     * it was never read, was most of a row's bytes (~2 KB of ~2.3 KB),
     * and the score is kept by the console's lead card and can be made
     * again from the row's lead, scorecard and model_version (see
     * `conveyorctl score`). The column stays for older rows. */
    "DROP INDEX IF EXISTS scores_segment;",
};

const size_t scoring_migration_count =
    sizeof(scoring_migrations) / sizeof(scoring_migrations[0]);

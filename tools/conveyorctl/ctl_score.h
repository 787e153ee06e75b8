/* ctl_score: `conveyorctl score`, the calibration of the scoring model.
 *
 *   conveyorctl score --rules FILE [--since DATE] [--data-dir DIR] [--json]
 *
 * replays the leads the scoring stage stored (DIR/scoring.db and
 * DIR/scoring-<instance>.db; DIR from --data-dir, CONVEYOR_DATA_DIR or
 * ./var) under the rules of FILE, people's scorecards included, and
 * reports how many leads would change segment (a matrix of segment now ->
 * segment under FILE) and, for leads with a decision, the win rate per
 * segment under both models: does the model separate winners from losers?
 * Uses common/cv_scoring_replay.h. */
#ifndef CTL_SCORE_H
#define CTL_SCORE_H

/* argv[0] is "score". Returns the exit status: 0 done, 2 bad usage or a
 * file that cannot be read (the reason on stderr). */
int ctl_score_main(int argc, char **argv);

#endif

/* cv_scoring_replay: stored leads scored again under another model.
 *
 * Reads the scoring stage's database (its `scores` rows keep the lead and
 * the scorecard each score was made from, and the lead's decision, won or
 * lost), scores every lead again with a model, people's scorecards
 * included, and counts how the segments would move and how well each
 * model's segments separate won leads from lost ones. For
 * `conveyorctl score`. Opens the database read-only. */
#ifndef CV_SCORING_REPLAY_H
#define CV_SCORING_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "cv_scoring_rules.h"

#define CV_SCORING_REPLAY_VERSIONS 16 /* stored model versions counted */

/* Segments in the order the counts use: A, B, C. */
#define CV_SCORING_SEGMENTS "ABC"

/* What a replay found; add up several databases by replaying into the
 * same report. Zero it before the first. */
typedef struct {
    int64_t leads;          /* scores since the date */
    int64_t replayed;       /* of which scored again */
    int64_t without_lead;   /* scored before the lead was kept */
    int64_t unreadable;     /* a stored lead or scorecard that does not
                               parse */
    int64_t moved[3][3];    /* [stored segment][new segment] */
    int64_t changed;        /* replayed leads whose segment changed */
    int64_t decided[2][3];  /* [0 stored, 1 new][segment]: leads won or
                               lost */
    int64_t won[2][3];      /* of which won */
    int64_t knocked_out[2]; /* [0 stored, 1 new] */
    char versions[CV_SCORING_REPLAY_VERSIONS][65];     /* stored versions */
    int64_t version_leads[CV_SCORING_REPLAY_VERSIONS]; /* leads of each */
    size_t version_count;
    int64_t other_versions; /* leads of versions beyond the table */
} cv_scoring_replay_t;

/* Replays the scores of `db_path` made at or after `since_ms` (0: all)
 * under `model` into `out` (added to). 0, or -1 with the reason in
 * `error` (cannot open, not a scoring database). */
int cv_scoring_replay(const char *db_path, const cv_scoring_model_t *model,
                      int64_t since_ms, cv_scoring_replay_t *out, char *error,
                      size_t size);

/* 0..2 for "A", "B", "C"; -1 otherwise. */
int cv_scoring_replay_segment(const char *segment);

#endif

/* ctl_score: `conveyorctl score --rules FILE`: stored leads under another
 * scoring model. */
#include "ctl_score.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_clock.h"
#include "cv_scoring_replay.h"
#include "cv_scoring_rules.h"

#define SCORE_EXIT_DONE   0
#define SCORE_EXIT_FAILED 2
#define SCORE_FILES_MAX   64 /* scoring databases in one data dir */

static int score_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int score_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("conveyorctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return SCORE_EXIT_FAILED;
}

static void score_usage(FILE *out)
{
    fputs("usage: conveyorctl score --rules FILE [--since DATE] "
          "[--data-dir DIR] [--json]\n"
          "\n"
          "Replays the leads the scoring stage stored under the rules of "
          "FILE\n"
          "(people's scorecards included) and reports how many would "
          "change\n"
          "segment, and for leads won or lost the win rate per segment "
          "under\n"
          "the rules in force and under FILE.\n"
          "\n"
          "options:\n"
          "  --rules FILE     the scoring rules to try (required)\n"
          "  --since DATE     only leads scored since DATE (2026-11-01 or "
          "RFC 3339)\n"
          "  --data-dir DIR   where scoring.db is (CONVEYOR_DATA_DIR, "
          "default ./var)\n"
          "  --json           the report as one JSON line\n",
          out);
}

/* The scoring databases of `dir`: scoring.db and scoring-<instance>.db.
 * Returns how many were found (at most `max`), -1 when `dir` cannot be
 * read. Caller frees the names. */
static int score_files(const char *dir, char **paths, int max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        bool main_db = strcmp(name, "scoring.db") == 0;
        bool instance = strncmp(name, "scoring-", 8) == 0 && len > 11 &&
                        strcmp(name + len - 3, ".db") == 0;
        if (!main_db && !instance)
            continue;
        size_t size = strlen(dir) + len + 2;
        paths[n] = malloc(size);
        if (paths[n] == NULL)
            break;
        snprintf(paths[n], size, "%s/%s", dir, name);
        n++;
    }
    closedir(d);
    return n;
}

static void score_rate(char *buf, size_t size, int64_t won, int64_t decided)
{
    if (decided == 0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%lld/%lld (%.1f%%)", (long long)won,
                 (long long)decided, 100.0 * (double)won / (double)decided);
}

static void score_print_text(const cv_scoring_replay_t *r,
                             const cv_scoring_model_t *model, const char *rules,
                             const char *since, int files)
{
    printf("stored: %lld lead(s)%s%s in %d scoring database(s); scored with",
           (long long)r->leads, since != NULL ? " scored since " : "",
           since != NULL ? since : "", files);
    for (size_t i = 0; i < r->version_count; i++)
        printf("%s %s (%lld)", i ? "," : "",
               r->versions[i][0] ? r->versions[i] : "?",
               (long long)r->version_leads[i]);
    if (r->other_versions > 0)
        printf(", other versions (%lld)", (long long)r->other_versions);
    printf("\nreplayed under '%s' (%s): %lld lead(s)", model->version, rules,
           (long long)r->replayed);
    if (r->without_lead > 0)
        printf("; %lld scored before leads were kept, left out",
               (long long)r->without_lead);
    if (r->unreadable > 0)
        printf("; %lld unreadable, left out", (long long)r->unreadable);
    printf("\n\nsegment now -> under '%s'\n           A        B        C\n",
           model->version);
    for (int i = 0; i < 3; i++)
        printf("  %c  %8lld %8lld %8lld\n", CV_SCORING_SEGMENTS[i],
               (long long)r->moved[i][0], (long long)r->moved[i][1],
               (long long)r->moved[i][2]);
    printf("would change segment: %lld of %lld", (long long)r->changed,
           (long long)r->replayed);
    if (r->replayed > 0)
        printf(" (%.1f%%)", 100.0 * (double)r->changed / (double)r->replayed);
    printf("\nknocked out: %lld now, %lld under '%s'\n",
           (long long)r->knocked_out[0], (long long)r->knocked_out[1],
           model->version);
    int64_t decided = r->decided[0][0] + r->decided[0][1] + r->decided[0][2];
    int64_t won = r->won[0][0] + r->won[0][1] + r->won[0][2];
    printf("\nwin rate by segment (%lld lead(s) with a decision: %lld won, "
           "%lld lost)\n      %-22s %s\n",
           (long long)decided, (long long)won, (long long)(decided - won),
           "now", model->version);
    for (int i = 0; i < 3; i++) {
        char now[48], then[48];
        score_rate(now, sizeof(now), r->won[0][i], r->decided[0][i]);
        score_rate(then, sizeof(then), r->won[1][i], r->decided[1][i]);
        printf("  %c   %-22s %s\n", CV_SCORING_SEGMENTS[i], now, then);
    }
}

static void score_print_json(const cv_scoring_replay_t *r,
                             const cv_scoring_model_t *model)
{
    printf("{\"model_version\":\"%s\",\"leads\":%lld,\"replayed\":%lld,"
           "\"without_lead\":%lld,\"unreadable\":%lld,\"changed\":%lld,"
           "\"moved\":{",
           model->version, (long long)r->leads, (long long)r->replayed,
           (long long)r->without_lead, (long long)r->unreadable,
           (long long)r->changed);
    for (int i = 0; i < 3; i++)
        printf("%s\"%c\":{\"A\":%lld,\"B\":%lld,\"C\":%lld}", i ? "," : "",
               CV_SCORING_SEGMENTS[i], (long long)r->moved[i][0],
               (long long)r->moved[i][1], (long long)r->moved[i][2]);
    printf("},\"knocked_out\":{\"now\":%lld,\"new\":%lld},\"win_rate\":{",
           (long long)r->knocked_out[0], (long long)r->knocked_out[1]);
    static const char *const which[2] = {"now", "new"};
    for (int m = 0; m < 2; m++) {
        printf("%s\"%s\":{", m ? "," : "", which[m]);
        for (int i = 0; i < 3; i++)
            printf("%s\"%c\":{\"won\":%lld,\"decided\":%lld}", i ? "," : "",
                   CV_SCORING_SEGMENTS[i], (long long)r->won[m][i],
                   (long long)r->decided[m][i]);
        printf("}");
    }
    printf("}}\n");
}

int ctl_score_main(int argc, char **argv)
{
    enum { OPT_RULES = 256, OPT_SINCE, OPT_DATA_DIR, OPT_JSON };
    static const struct option longopts[] = {
        {"rules", required_argument, NULL, OPT_RULES},
        {"since", required_argument, NULL, OPT_SINCE},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rules = NULL, *since = NULL;
    const char *dir = getenv("CONVEYOR_DATA_DIR");
    bool json = false;
    if (dir == NULL || dir[0] == '\0')
        dir = "./var";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_RULES:
            rules = optarg;
            break;
        case OPT_SINCE:
            since = optarg;
            break;
        case OPT_DATA_DIR:
            dir = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            score_usage(stdout);
            return SCORE_EXIT_DONE;
        default:
            score_usage(stderr);
            return SCORE_EXIT_FAILED;
        }
    }
    if (optind != argc) {
        score_usage(stderr);
        return score_error("score takes no argument '%s'", argv[optind]);
    }
    if (rules == NULL) {
        score_usage(stderr);
        return score_error("--rules FILE is required: the rules to try");
    }
    int64_t since_ms = 0;
    if (since != NULL && cv_clock_parse(since, &since_ms) != 0)
        return score_error("--since takes a date (2026-11-01) or an RFC 3339 "
                           "time, not '%s'",
                           since);
    char error[800];
    cv_scoring_model_t *model =
        cv_scoring_rules_load(rules, error, sizeof(error));
    if (model == NULL)
        return score_error("%s", error);
    char *paths[SCORE_FILES_MAX];
    int files = score_files(dir, paths, SCORE_FILES_MAX);
    int status = SCORE_EXIT_FAILED;
    if (files < 0) {
        score_error("cannot read the data dir '%s': %s", dir, strerror(errno));
        files = 0;
        goto out;
    }
    if (files == 0) {
        score_error("no scoring database in '%s' (scoring.db): give "
                    "--data-dir or CONVEYOR_DATA_DIR",
                    dir);
        goto out;
    }
    cv_scoring_replay_t report;
    memset(&report, 0, sizeof(report));
    for (int i = 0; i < files; i++) {
        if (cv_scoring_replay(paths[i], model, since_ms, &report, error,
                              sizeof(error)) != 0) {
            score_error("%s", error);
            goto out;
        }
    }
    if (json)
        score_print_json(&report, model);
    else
        score_print_text(&report, model, rules, since, files);
    status = SCORE_EXIT_DONE;
out:
    for (int i = 0; i < files; i++)
        free(paths[i]);
    cv_scoring_rules_free(&model);
    return status;
}

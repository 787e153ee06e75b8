/* conveyorctl: command line, and the helpers every command shares.
 *
 *   conveyorctl import FILE.csv --source NAME [--intake HOST:PORT]
 *                      [--key KEY] [options]
 *   conveyorctl score --rules FILE [--since DATE] [--data-dir DIR] [--json]
 *
 * See usage() for the options and ctl.h for the exit statuses. */
#include <getopt.h>
#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_score.h"

#define CTL_DEFAULT_INTAKE     "127.0.0.1:8080"
#define CTL_DEFAULT_BATCH_ROWS 1000
/* half of intake's default body limit (1 MiB): room for escaping */
#define CTL_DEFAULT_BATCH_BYTES (512 * 1024)
#define CTL_MAX_BATCH_ROWS      1000 /* INTAKE_IMPORT_ROWS_MAX */
#define CTL_SOURCE_MAX          200  /* bytes in a list name, as intake */
/* batches in flight: intake checks one on an HTTP thread while its bus
 * thread stores the one before (measured: twice the rows/s of one) */
#define CTL_DEFAULT_PARALLEL 2
#define CTL_MAX_PARALLEL     8

int ctl_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("conveyorctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

void ctl_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("conveyorctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void ctl_sha256_hex(const void *data, size_t size, char hex[CTL_SHA256_HEX])
{
    gchar *digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, size);
    snprintf(hex, CTL_SHA256_HEX, "%s", digest != NULL ? digest : "");
    g_free(digest);
}

static void usage(FILE *out)
{
    fputs("usage: conveyorctl import FILE.csv --source NAME [options]\n"
          "       conveyorctl score --rules FILE [--since DATE] "
          "[--data-dir DIR] [--json]\n"
          "         replays the stored leads under another rules file: "
          "how many\n"
          "         change segment, and the win rate per segment under "
          "both models\n"
          "\n"
          "Imports a call list for tier-1 cold calling: every row becomes a\n"
          "lead (channel \"cold\", source NAME), a repeat contact is merged\n"
          "into its existing lead, and unusable rows are listed with their\n"
          "line and reason in FILE.csv.rejected.csv. An interrupted import\n"
          "resumes where it stopped when run again (state in\n"
          "FILE.csv.import-state); no row is ever stored twice.\n"
          "\n"
          "The header names the columns: name/Имя/ФИО, phone/Телефон,\n"
          "email/E-mail/Почта, telegram, company/Компания, inn/ИНН,\n"
          "region/Регион, industry/Отрасль, message/Комментарий, budget,\n"
          "…; other columns are kept in the lead's `extra`. UTF-8 (with or\n"
          "without BOM), ',' ';' or TAB separated, RFC 4180 quoting.\n"
          "\n"
          "options:\n"
          "  --source NAME      the list's name (required)\n"
          "  --intake HOST:PORT intake's address (CONVEYOR_INTAKE_ADDR,\n"
          "                     default " CTL_DEFAULT_INTAKE ")\n"
          "  --key KEY          intake API key (CONVEYOR_INTAKE_KEY)\n"
          "  --delimiter C      ',', ';' or 'tab' instead of detecting it\n"
          "  --batch-rows N     rows per request (default 1000, at most "
          "1000)\n"
          "  --parallel N       batches in flight at once (default 2)\n"
          "  --retry-for S      retry a batch while intake is unreachable\n"
          "                     for up to S seconds (default 60)\n"
          "  --restart          forget an interrupted import of FILE and\n"
          "                     start from its first row\n"
          "  --json             print the summary as one JSON line\n"
          "  --quiet            no progress on stderr\n"
          "\n"
          "exit status: 0 every row imported or merged; 1 finished, some\n"
          "rows rejected; 2 not finished (run again to resume).\n",
          out);
}

static int ctl_parse_delimiter(const char *text, char *out)
{
    if (strcmp(text, ",") == 0 || strcmp(text, ";") == 0) {
        *out = text[0];
        return 0;
    }
    if (strcmp(text, "tab") == 0 || strcmp(text, "\\t") == 0 ||
        strcmp(text, "\t") == 0) {
        *out = '\t';
        return 0;
    }
    return -1;
}

/* A list name: 1 to CTL_SOURCE_MAX bytes of UTF-8 without control
 * characters (the name intake stores as each lead's source). */
static bool ctl_valid_source(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CTL_SOURCE_MAX || s[0] == ' ' || s[len - 1] == ' ' ||
        !g_utf8_validate(s, (gssize)len, NULL))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int ctl_import_main(int argc, char **argv)
{
    enum {
        OPT_BATCH_ROWS = 256,
        OPT_RETRY_FOR,
        OPT_RESTART,
        OPT_JSON,
        OPT_QUIET,
        OPT_DELIMITER,
        OPT_PARALLEL
    };
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"intake", required_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},
        {"delimiter", required_argument, NULL, OPT_DELIMITER},
        {"batch-rows", required_argument, NULL, OPT_BATCH_ROWS},
        {"retry-for", required_argument, NULL, OPT_RETRY_FOR},
        {"parallel", required_argument, NULL, OPT_PARALLEL},
        {"restart", no_argument, NULL, OPT_RESTART},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ctl_import_options_t o = {
        .intake = getenv("CONVEYOR_INTAKE_ADDR"),
        .key = getenv("CONVEYOR_INTAKE_KEY"),
        .batch_rows = CTL_DEFAULT_BATCH_ROWS,
        .batch_bytes = CTL_DEFAULT_BATCH_BYTES,
        .retry_for_s = 60,
        .parallel = CTL_DEFAULT_PARALLEL,
    };
    if (o.intake == NULL || o.intake[0] == '\0')
        o.intake = CTL_DEFAULT_INTAKE;
    int c;
    while ((c = getopt_long(argc, argv, "s:i:k:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 's':
            o.source = optarg;
            break;
        case 'i':
            o.intake = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case OPT_DELIMITER:
            if (ctl_parse_delimiter(optarg, &o.delimiter) != 0) {
                ctl_error("--delimiter takes ',', ';' or 'tab'");
                return CTL_EXIT_FAILED;
            }
            break;
        case OPT_BATCH_ROWS:
            o.batch_rows = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o.batch_rows < 1 ||
                o.batch_rows > CTL_MAX_BATCH_ROWS) {
                ctl_error("--batch-rows takes 1 to %d", CTL_MAX_BATCH_ROWS);
                return CTL_EXIT_FAILED;
            }
            break;
        case OPT_RETRY_FOR:
            o.retry_for_s = strtod(optarg, &end);
            if (*end != '\0' || o.retry_for_s < 0) {
                ctl_error("--retry-for takes seconds");
                return CTL_EXIT_FAILED;
            }
            break;
        case OPT_PARALLEL:
            o.parallel = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o.parallel < 1 ||
                o.parallel > CTL_MAX_PARALLEL) {
                ctl_error("--parallel takes 1 to %d", CTL_MAX_PARALLEL);
                return CTL_EXIT_FAILED;
            }
            break;
        case OPT_RESTART:
            o.restart = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_QUIET:
            o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            return CTL_EXIT_DONE;
        default:
            usage(stderr);
            return CTL_EXIT_FAILED;
        }
    }
    if (optind + 1 != argc) {
        ctl_error(optind >= argc ? "import needs a CSV file"
                                 : "import takes one CSV file");
        usage(stderr);
        return CTL_EXIT_FAILED;
    }
    o.file = argv[optind];
    if (o.source == NULL) {
        ctl_error("--source NAME is required: the list's name, e.g. "
                  "--source cold-2026-11");
        return CTL_EXIT_FAILED;
    }
    if (!ctl_valid_source(o.source)) {
        ctl_error("--source must be 1 to %d bytes of UTF-8 text, without "
                  "control characters or surrounding spaces",
                  CTL_SOURCE_MAX);
        return CTL_EXIT_FAILED;
    }
    if (o.key == NULL || o.key[0] == '\0') {
        ctl_error("an intake API key is required: --key KEY or "
                  "CONVEYOR_INTAKE_KEY");
        return CTL_EXIT_FAILED;
    }
    return ctl_import_run(&o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CTL_EXIT_FAILED;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CTL_EXIT_DONE;
    }
    if (strcmp(argv[1], "import") == 0)
        return ctl_import_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "score") == 0)
        return ctl_score_main(argc - 1, argv + 1);
    ctl_error("unknown command '%s'", argv[1]);
    usage(stderr);
    return CTL_EXIT_FAILED;
}

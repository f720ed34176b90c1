/*
 * `berth fsck`: check a store's integrity (berth_store_fsck, maint.h) and
 * with --repair make it consistent again (docs/fsck.md). It opens the store
 * directly, so it runs with the server stopped or serving: every repair is
 * re-checked under SQLite's write lock. The storage root comes from the
 * configuration the way `serve` reads it (file < REGISTRY_* < --root).
 * Exit: 0 consistent (or everything repaired), 1 problems remain, 2 could
 * not run.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "storecmd.h"
#include "core/error.h"
#include "store/maint.h"
#include "store/store.h"


static const char usage_text[] =
    "usage: berth fsck [options]\n"
    "\n"
    "Check every blob file (present, size, digest), every manifest (body, edges,\n"
    "blobs, index children), tags, repository links and upload sessions. Safe\n"
    "while `berth serve` runs on the same store.\n"
    "\n"
    "options:\n"
    "  --config FILE   the server's YAML configuration (for the storage root)\n"
    "  --root DIR      data directory (storage.filesystem.rootdirectory)\n"
    "  --repair        fix what can be fixed: drop damaged or missing blobs (the next\n"
    "                  push uploads them again), orphan files, dangling links and\n"
    "                  tags, stray uploads; rebuild wrong manifest edges\n"
    "  --quick         check blob sizes only, do not re-hash contents\n"
    "      --json      one JSON object per problem, then a summary object\n"
    "  -q, --quiet     print problems only, no summary (--json keeps its summary)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0 consistent (or everything repaired), 1 problems remain,\n"
    "2 could not run (usage, no store, database error).\n";

struct out {
    int json, quiet;
};

static void report(void *ctx, const char *kind, const char *detail, int fixed)
{
    const struct out *o = ctx;
    json_t *j;

    if (!o->json) {
        printf("%s%s: %s\n", kind, fixed ? " (repaired)" : "", detail);
        fflush(stdout);
        return;
    }
    j = json_pack("{s:s, s:s, s:s, s:b}", "event", "problem", "kind", kind, "detail", detail,
                  "repaired", fixed);
    if (j) {
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        fflush(stdout);
        json_decref(j);
    }
}

static double mono_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const struct out *o, const struct berth_fsck_stats *s, int quick,
                    double secs)
{
    double mb = (double)s->bytes_checked / 1e6;
    double rate = secs > 0 ? mb / secs : 0;
    json_t *j;

    if (o->json) {
        j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:f, s:f}", "event", "summary",
                      "blobs", (json_int_t)s->blobs_checked, "bytes",
                      (json_int_t)s->bytes_checked, "manifests", (json_int_t)s->manifests_checked,
                      "problems", (json_int_t)s->problems, "repaired", (json_int_t)s->repaired,
                      "quick", quick, "seconds", secs, "mb_per_s", rate);
        if (j) {
            json_dumpf(j, stdout, JSON_COMPACT);
            putchar('\n');
            json_decref(j);
        }
        return;
    }
    if (o->quiet)
        return;
    if (quick)
        printf("checked %llu blobs (sizes only), %llu manifests",
               (unsigned long long)s->blobs_checked, (unsigned long long)s->manifests_checked);
    else
        printf("checked %llu blobs (%.1f MB re-hashed), %llu manifests",
               (unsigned long long)s->blobs_checked, mb, (unsigned long long)s->manifests_checked);
    printf(" in %.2f s", secs);
    if (!quick)
        printf(" (%.1f MB/s)", rate);
    printf(": %llu problem%s, %llu repaired\n", (unsigned long long)s->problems,
           s->problems == 1 ? "" : "s", (unsigned long long)s->repaired);
}

static int run(const char *root, const struct berth_fsck_opts *o, const struct out *out)
{
    struct berth_fsck_stats stats;
    struct berth_store *st = NULL;
    double t0;
    int error;

    if (berth_storecmd_open(&st, root) < 0) {
        fprintf(stderr, "berth: fsck: %s\n", berth_error_msg());
        return 2;
    }
    t0 = mono_sec();
    error = berth_store_fsck(st, o, &stats);
    berth_store_free(st);
    if (error < 0) {
        fprintf(stderr, "berth: fsck: %s\n", berth_error_msg());
        return 2;
    }
    summary(out, &stats, o->quick, mono_sec() - t0);
    return stats.problems > stats.repaired ? 1 : 0;
}

int cmd_fsck(int argc, char **argv)
{
    enum { OPT_CONFIG = 256, OPT_ROOT, OPT_REPAIR, OPT_QUICK };
    static const struct option opts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "root", required_argument, NULL, OPT_ROOT },
        { "repair", no_argument, NULL, OPT_REPAIR },
        { "quick", no_argument, NULL, OPT_QUICK },
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_fsck_opts o = { 0 };
    const char *config = NULL, *root = NULL;
    struct out out = { 0 };
    struct berth_config cfg;
    int c, rc;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        case OPT_REPAIR:
            o.repair = 1;
            break;
        case OPT_QUICK:
            o.quick = 1;
            break;
        case BERTH_OPT_JSON:
            out.json = 1;
            break;
        case 'q':
            out.quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "berth: fsck takes no arguments ('%s')\n", argv[optind]);
        return 2;
    }
    if (berth_storecmd_config(&cfg, config, root) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        berth_config_dispose(&cfg);
        return 2;
    }
    o.report = report;
    o.ctx = &out;
    rc = run(cfg.root, &o, &out);
    berth_config_dispose(&cfg);
    return rc;
}

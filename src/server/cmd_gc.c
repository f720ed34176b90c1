/*
 * `berth gc`: one garbage collection on a store, from the command line
 * (docs/gc.md). It opens the store directly, so it works with the server
 * stopped or running (in this or another process: every removal is
 * re-checked under SQLite's write lock, and only one collection runs per
 * store). Retention and immutable rules and the gc defaults come from the
 * configuration file; flags override them. SIGINT/SIGTERM stop it after the
 * current batch: what was done stays done, the next run finishes the rest.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
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
    "usage: berth gc [options]\n"
    "\n"
    "Collect garbage: remove what no tag reaches and free the blob files no\n"
    "manifest uses. Safe while `berth serve` runs on the same store.\n"
    "\n"
    "options:\n"
    "  --config FILE     the server's YAML configuration (storage root, berth.gc.*,\n"
    "                    berth.retention, berth.immutabletags)\n"
    "  --root DIR        data directory (storage.filesystem.rootdirectory)\n"
    "  --dry-run         remove nothing; list what would be removed\n"
    "  --untagged        also remove manifests no tag, index or subject reaches\n"
    "                    (berth.gc.untagged)\n"
    "  --grace DURATION  keep blobs, uploads and untagged manifests younger than this\n"
    "                    (berth.gc.grace; default 24h; 0s: none)\n"
    "  --batch N         blobs removed per transaction (berth.gc.batch; default 500)\n"
    "      --json        print the summary (and what was removed) as JSON\n"
    "  -q, --quiet       print only the summary\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0 done, 1 the run failed or was interrupted, 2 usage.\n";

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct out {
    int json, quiet, dry_run;
    json_t *items; /* --json: what was removed */
};

static void report(void *ctx, const char *kind, const char *repo, const char *what,
                   uint64_t bytes)
{
    struct out *o = ctx;

    if (o->quiet)
        return;
    if (o->items) {
        json_t *e = json_pack("{s:s, s:s?, s:s, s:I}", "kind", kind, "repository", repo,
                              "what", what, "bytes", (json_int_t)bytes);
        if (e)
            json_array_append_new(o->items, e);
        return;
    }
    printf("%s %s %s%s%s", o->dry_run ? "would remove" : "removed", kind, repo ? repo : "",
           repo ? " " : "", what);
    if (bytes)
        printf(" (%llu bytes)", (unsigned long long)bytes);
    putchar('\n');
}

static void summary_text(const struct berth_gc_stats *s, int dry_run, double secs)
{
    printf("%s %llu tags, %llu manifests, %llu links, %llu blobs, %llu orphan files, "
           "%llu uploads; %s %llu bytes; live: %llu blobs, %llu bytes; %.2fs%s\n",
           dry_run ? "would remove" : "removed", (unsigned long long)s->tags,
           (unsigned long long)s->manifests, (unsigned long long)s->links,
           (unsigned long long)s->blobs, (unsigned long long)s->orphans,
           (unsigned long long)s->uploads, dry_run ? "would free" : "freed",
           (unsigned long long)s->bytes, (unsigned long long)s->blobs_live,
           (unsigned long long)s->bytes_live, secs, s->stopped ? " (interrupted)" : "");
}

static void summary_json(const struct berth_gc_stats *s, struct out *o, double secs)
{
    json_t *j = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}",
                          "dry_run", o->dry_run, "tags", (json_int_t)s->tags, "manifests",
                          (json_int_t)s->manifests, "links", (json_int_t)s->links, "blobs",
                          (json_int_t)s->blobs, "orphans", (json_int_t)s->orphans, "uploads",
                          (json_int_t)s->uploads, "bytes_freed", (json_int_t)s->bytes,
                          "blobs_live", (json_int_t)s->blobs_live, "bytes_live",
                          (json_int_t)s->bytes_live, "seconds", secs, "interrupted",
                          s->stopped);

    if (j && o->items)
        json_object_set(j, "removed", o->items);
    if (j)
        json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
    putchar('\n');
    json_decref(j);
}

/* Flags on top of the file and the environment; 0, or 2 (usage). */
struct flags {
    const char *config, *root, *grace, *batch;
    int dry_run, untagged;
};

static int load_config(struct berth_config *cfg, const struct flags *f)
{
    if (berth_storecmd_config(cfg, f->config, f->root) < 0)
        return -1;
    if (f->grace && berth_config_set(cfg, "berth.gc.grace", f->grace, NULL, NULL) < 0)
        return -1;
    if (f->batch && berth_config_set(cfg, "berth.gc.batch", f->batch, NULL, NULL) < 0)
        return -1;
    if (f->untagged)
        cfg->maint.gc_untagged = 1;
    return 0;
}

static double mono_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const struct berth_config *cfg, struct out *out)
{
    struct berth_store *st = NULL;
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats stats = { 0 };
    struct sigaction sa;
    double t0;
    int error;

    if (berth_storecmd_open(&st, cfg->root) < 0) {
        fprintf(stderr, "berth: gc: %s\n", berth_error_msg());
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the collector checks the flag */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    o.dry_run = out->dry_run;
    o.untagged = cfg->maint.gc_untagged;
    o.grace_sec = cfg->maint.gc_grace_ms / 1000;
    o.batch = cfg->maint.gc_batch;
    o.retention = cfg->maint.retention;
    o.nretention = cfg->maint.nretention;
    o.immutable = cfg->maint.immutable;
    o.nimmutable = cfg->maint.nimmutable;
    o.report = report;
    o.ctx = out;
    o.stop = &stop_flag;
    t0 = mono_sec();
    error = berth_gc_run(st, &o, &stats);
    berth_store_free(st);
    if (error < 0) {
        fprintf(stderr, "berth: gc: %s\n", berth_error_msg());
        return 1;
    }
    if (out->json)
        summary_json(&stats, out, mono_sec() - t0);
    else
        summary_text(&stats, out->dry_run, mono_sec() - t0);
    if (stats.stopped) {
        fprintf(stderr, "berth: gc interrupted; run it again to finish\n");
        return 1;
    }
    return 0;
}

int cmd_gc(int argc, char **argv)
{
    enum { OPT_CONFIG = 256, OPT_ROOT, OPT_DRY, OPT_UNTAGGED, OPT_GRACE, OPT_BATCH };
    static const struct option opts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "root", required_argument, NULL, OPT_ROOT },
        { "dry-run", no_argument, NULL, OPT_DRY },
        { "untagged", no_argument, NULL, OPT_UNTAGGED },
        { "grace", required_argument, NULL, OPT_GRACE },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct flags f = { 0 };
    struct out out = { 0 };
    struct berth_config cfg;
    int c, rc;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            f.config = optarg;
            break;
        case OPT_ROOT:
            f.root = optarg;
            break;
        case OPT_DRY:
            out.dry_run = 1;
            break;
        case OPT_UNTAGGED:
            f.untagged = 1;
            break;
        case OPT_GRACE:
            f.grace = optarg;
            break;
        case OPT_BATCH:
            f.batch = optarg;
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
        fprintf(stderr, "berth: gc takes no arguments ('%s')\n", argv[optind]);
        return 2;
    }
    if (load_config(&cfg, &f) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        berth_config_dispose(&cfg);
        return 2;
    }
    if (out.json && !out.quiet)
        out.items = json_array();
    rc = run(&cfg, &out);
    json_decref(out.items);
    berth_config_dispose(&cfg);
    return rc;
}

/*
 * Storage maintenance: garbage collection, retention, usage, repository
 * deletion and integrity checks (docs/gc.md). All of it is safe while
 * `berth serve` runs on the same store, in this process or another one
 * (`berth gc`, `berth fsck`, `berth du`): a decision to remove something is
 * re-checked inside a write transaction (BEGIN IMMEDIATE takes SQLite's write
 * lock, which is shared between processes), and a blob file is placed (upload
 * commit) or removed (sweep) only while that lock is held. So a push racing
 * the sweep of the same blob either finds the blob present or is told it is
 * unknown (and uploads it again); a manifest never points at a missing blob.
 *
 * Maintenance SQL is cold-path and lives next to its logic (gc.c,
 * retention.c, usage.c, fsck.c), prepared per call with berth_db_query;
 * the request hot path keeps its cached statements in db.c.
 */
#ifndef BERTH_STORE_MAINT_H
#define BERTH_STORE_MAINT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- retention (src/store/retention.c) ---- */

/*
 * One rule of `berth.retention`. The first rule whose `repositories` glob
 * (berth_glob_match rules) matches a repository applies to it. Among that
 * repository's tags the rule manages those matching `tags` (POSIX extended
 * regex, unanchored like grep -E; NULL: every tag) and not matching `protect`
 * (NULL: none). A managed tag is removed when it is outside the `keep` most
 * recently updated managed tags (keep < 0: no count limit) AND last updated
 * more than `older_than_sec` ago (<= 0: no age limit); with both limits
 * unset the rule removes nothing. Tags matching an immutable rule are never
 * removed. A manifest left with no tag and not referenced by an index of the
 * repository is deleted with its last tag, so the next sweep frees its blobs.
 */
struct berth_retention_rule {
    const char *repositories;
    const char *tags;
    const char *protect;
    long keep;
    int64_t older_than_sec;
};

/* ---- immutable tags and quotas (checked by the HTTP handlers) ---- */

/* `berth.immutabletags`: a tag whose name matches `tags` (fnmatch glob, e.g.
 * "v*.*.*") in a repository matching `repositories` can be created but never
 * moved to another digest or deleted: DENIED naming the rule. */
struct berth_immutable_rule {
    const char *repositories;
    const char *tags;
};

/* `berth.quotas`: with `repositories` (glob) each matching repository may
 * hold `limit` bytes (deduplicated: a blob linked twice counts once); with
 * `namespace` ("team-a") all repositories under "team-a/" share `limit`. */
struct berth_quota_rule {
    const char *repositories;
    const char *namespace;
    uint64_t limit;
};

/* ---- usage (src/store/usage.c) ---- */

struct berth_usage {
    uint64_t dedup;     /* bytes of distinct blobs + manifests */
    uint64_t total;     /* the same counted once per repository holding them */
    uint64_t blobs;     /* distinct blobs */
    uint64_t manifests;
    uint64_t tags;
    uint64_t repositories;
};

/* Usage of one repository ("team-a/app"), of a namespace (a scope ending in
 * '/': "team-a/" = every repository under it) or of the whole registry
 * (NULL). Counts linked blobs and manifest bytes. */
int berth_store_usage(struct berth_store *st, const char *scope, struct berth_usage *out);
typedef int (*berth_usage_cb)(void *ctx, const char *repo, const struct berth_usage *u);
/* Every repository whose name starts with `prefix` (NULL: all), in name
 * order, with its own usage (repositories = 1). */
int berth_store_usage_each(struct berth_store *st, const char *prefix, berth_usage_cb cb,
                           void *ctx);
/* 1 when some repository of `scope` (as for berth_store_usage) links blob
 * `d`: storing it again in that scope adds nothing to its dedup usage (a
 * quota check for a mount or a push of a layer shared in a namespace). */
int berth_store_blob_in_scope(struct berth_store *st, const char *scope,
                              const struct berth_digest *d);
/* Tags of `repo` pointing at manifest `d` (to refuse deleting an immutable
 * one). An unknown repository or digest gives none. */
int berth_store_tags_of(struct berth_store *st, const char *repo, const struct berth_digest *d,
                        berth_str_cb cb, void *ctx);

/* ---- garbage collection (src/store/gc.c) ---- */

/* What a run removed (or, with dry_run, would remove). kind is "tag",
 * "manifest", "link" (a repository's link to a blob), "blob", "orphan" (a
 * file in blobs/ with no row) or "upload"; repo is NULL for blobs and
 * orphans; what is the tag, digest or upload id; bytes its size (0 for tags
 * and links). */
typedef void (*berth_gc_report_cb)(void *ctx, const char *kind, const char *repo,
                                   const char *what, uint64_t bytes);

struct berth_gc_opts {
    int dry_run;
    /* Also delete manifests that no tag reaches, directly, through a live
     * index, or as a referrer (subject) of a live manifest. Without it every
     * stored manifest is live, except referrers whose subject is gone. */
    int untagged;
    /* Blobs, repository links, untagged manifests and upload sessions
     * younger than this are never removed (in-flight pushes). Default of
     * the config: 24 h; 0 in tests. */
    int64_t grace_sec;
    unsigned batch;                 /* blobs per transaction; 0 = 500 */
    const struct berth_retention_rule *retention;
    size_t nretention;
    const struct berth_immutable_rule *immutable; /* retention never removes these */
    size_t nimmutable;
    berth_gc_report_cb report;      /* may be NULL */
    void *ctx;
    const volatile int *stop;       /* nonzero: stop after the current batch; may be NULL */
};

struct berth_gc_stats {
    uint64_t tags, manifests, links, blobs, orphans, uploads; /* removed */
    uint64_t bytes;                 /* bytes of blob files removed */
    uint64_t blobs_live;            /* blobs kept */
    uint64_t bytes_live;
    int stopped;                    /* stopped early by *stop */
};

/*
 * One collection: retention rules, then (untagged) unreachable manifests
 * per repository, then repository links to blobs no manifest of that
 * repository references, then blobs nothing links or references, then
 * orphan files, then expired upload sessions. Each step works in bounded
 * transactions, so a crash (kill -9) loses at most the current batch and
 * the next run simply finishes the work. Only one collection runs at a time
 * per store (a lock file, across processes): a second gets BERTH_EEXISTS
 * ("garbage collection already running").
 */
int berth_gc_run(struct berth_store *st, const struct berth_gc_opts *o,
                 struct berth_gc_stats *out);

/* Delete a repository: its tags, manifests, edges, blob links and upload
 * sessions in one transaction (the next collection frees the blob files);
 * it disappears from the catalog. BERTH_ENOTFOUND (NAME_UNKNOWN). */
int berth_store_repo_delete(struct berth_store *st, const char *repo);

/* Retention alone (gc.c calls it first). Counts go to out->tags and
 * out->manifests. */
int berth_retention_apply(struct berth_store *st, const struct berth_gc_opts *o,
                          struct berth_gc_stats *out);

/* ---- integrity (src/store/fsck.c) ---- */

struct berth_fsck_opts {
    int repair;
    int quick;                      /* sizes only, no digest re-hashing */
    /* Each problem found: kind is "corrupt-blob", "missing-blob",
     * "orphan-file", "dangling-link", "missing-edge", "dangling-tag",
     * "dangling-child", ...; detail a human sentence; fixed = 1 when repaired. */
    void (*report)(void *ctx, const char *kind, const char *detail, int fixed);
    void *ctx;
};

struct berth_fsck_stats {
    uint64_t blobs_checked, bytes_checked, manifests_checked;
    uint64_t problems, repaired;
};

/* Check every blob file (exists, size, digest), every manifest's edges
 * against its body, tags and links; with repair, make the store consistent
 * again (docs/gc.md says what each repair does). Returns 0 when the check
 * ran (problems are in the stats), < 0 when it could not run. */
int berth_store_fsck(struct berth_store *st, const struct berth_fsck_opts *o,
                     struct berth_fsck_stats *out);

#endif

/*
 * Online garbage collection (maint.h, docs/gc.md). Reachability comes from
 * the metadata database alone: a manifest is live while a tag, a live index
 * (manifest_refs kind 'manifest') or a live subject reaches it; a blob while
 * a repository links it (repo_blobs) or any manifest references it.
 *
 * Safety while pushes run, in this process or another one:
 *  - every decision to remove something is taken again inside the write
 *    transaction (BEGIN IMMEDIATE: SQLite's write lock, shared between
 *    processes) that removes it, so a tag, link or reference committed
 *    meanwhile is seen;
 *  - a blob file is removed only while that lock is held, and an upload
 *    commit places its file under the same lock (upload.c store_blob): a
 *    file is never swept between its placement and the row that makes it
 *    live, and a push that lost the race finds the blob unknown and uploads
 *    it again;
 *  - anything younger than the grace period (blob rows, repository links,
 *    manifests, upload sessions) stays: a push sends its blobs first and its
 *    manifest last.
 * Each step works in bounded transactions (one per repository for manifests
 * and links, o->batch blobs at a time), so kill -9 loses at most the
 * current one and the next run finishes the work. The write lock is never
 * held for a whole run: pushes wait for it (about 5 s at most, db.c), so a
 * repository with nothing to collect is checked without it, and each write
 * transaction is followed by a pause that lets waiting writers in.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "fault.h"
#include "maint.h"
#include "store_int.h"

#define BATCH_DEFAULT 500
#define YIELD_USEC 5000 /* the write lock stays free this long between transactions */

/*
 * The live manifests of repository ?1: roots are tagged manifests, those
 * younger than the grace period (created > ?2: a push in flight, or an index
 * whose children must not go first) and, unless untagged ones are collected
 * (?3 = 0), every manifest that is not a referrer; the closure follows index
 * children and referrers of live subjects. One recursive reference over a
 * union of both edge kinds, so it also runs on PostgreSQL.
 */
#define LIVE_CTE_EXCEPT(gone_manifest, gone_tag, gone_child)                                  \
    "WITH RECURSIVE edges (parent, child) AS ("                                               \
    " SELECT parent, child FROM manifest_refs WHERE repo_id = ?1 AND kind = 'manifest'"       \
    " UNION ALL"                                                                              \
    " SELECT subject, digest FROM manifests WHERE repo_id = ?1 AND subject IS NOT NULL),"     \
    " live (digest) AS ("                                                                     \
    " SELECT m.digest FROM manifests m WHERE m.repo_id = ?1" gone_manifest                    \
    " AND (m.created > ?2 OR (?3 = 0 AND m.subject IS NULL)"                                  \
    " OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = ?1 AND t.digest = m.digest"          \
    gone_tag "))"                                                                             \
    " UNION"                                                                                  \
    " SELECT e.child FROM edges e JOIN live l ON e.parent = l.digest" gone_child ") "
#define LIVE_CTE LIVE_CTE_EXCEPT("", "", "")

static const char sql_dead_manifests[] =
    LIVE_CTE "SELECT m.digest, m.size FROM manifests m WHERE m.repo_id = ?1"
             " AND m.digest NOT IN (SELECT digest FROM live) ORDER BY m.digest LIMIT ?4";

/*
 * A dry run changes nothing, so what retention would remove is still in the
 * tables: retention notes it in the connection's TEMP table gc_dry_gone
 * (BERTH_GC_DRY_GONE_TABLE, store_int.h), and the dry
 * queries read the store as if those rows were gone. So a dry run predicts
 * exactly what a real run removes (tests/unit/test_rules.c).
 */
#define DRY_GONE_MANIFEST(repo, digest)                                                       \
    " NOT EXISTS (SELECT 1 FROM temp.gc_dry_gone g WHERE g.repo_id = " repo                   \
    " AND g.digest = " digest ")"
#define DRY_GONE_TAG(repo, name)                                                              \
    " NOT EXISTS (SELECT 1 FROM temp.gc_dry_gone g WHERE g.repo_id = " repo                   \
    " AND g.name = " name ")"
#define LIVE_CTE_DRY                                                                          \
    LIVE_CTE_EXCEPT(" AND" DRY_GONE_MANIFEST("?1", "m.digest"),                               \
                    " AND" DRY_GONE_TAG("?1", "t.name"),                                      \
                    " WHERE" DRY_GONE_MANIFEST("?1", "e.child"))

static const char sql_dry_dead_manifests[] =
    LIVE_CTE_DRY "SELECT m.digest, m.size FROM manifests m WHERE m.repo_id = ?1"
                 " AND m.digest NOT IN (SELECT digest FROM live) AND"
                 DRY_GONE_MANIFEST("?1", "m.digest") " ORDER BY m.digest LIMIT ?4";

/* Links no manifest of the repository references (the dead ones were
 * deleted by the manifest step), older than the grace period. */
static const char sql_dead_links[] =
    "SELECT rb.digest FROM repo_blobs rb WHERE rb.repo_id = ?1 AND rb.linked <= ?2"
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo_id = ?1"
    " AND r.child = rb.digest AND r.kind = 'blob') ORDER BY rb.digest LIMIT ?4";

/* Dry run: nothing was deleted, so only live manifests' references count. */
static const char sql_dry_dead_links[] =
    LIVE_CTE_DRY "SELECT rb.digest FROM repo_blobs rb WHERE rb.repo_id = ?1 AND rb.linked <= ?2"
             " AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN live l ON l.digest = r.parent"
             " WHERE r.repo_id = ?1 AND r.child = rb.digest AND r.kind = 'blob')"
             " ORDER BY rb.digest";

#define BLOB_UNUSED                                                                           \
    " b.created <= ?2"                                                                        \
    " AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = b.digest)"                \
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.child = b.digest)"

/* The next page of sweep candidates after ?1 (read without the lock). */
static const char sql_blob_candidates[] =
    "SELECT b.digest, b.size FROM blobs b WHERE b.digest > ?1 AND" BLOB_UNUSED
    " ORDER BY b.digest LIMIT ?3";
/* The same decision for one blob, taken again under the lock. */
static const char sql_blob_recheck[] = "SELECT 1 FROM blobs b WHERE b.digest = ?1 AND" BLOB_UNUSED;
static const char sql_blob_delete[] = "DELETE FROM blobs WHERE digest = ?1";
static const char sql_blob_exists[] = "SELECT 1 FROM blobs WHERE digest = ?1";

/* Dry run over the whole store: blobs that neither a live manifest
 * references nor a link young enough to survive keeps (?1 cutoff, ?2
 * untagged; the global form of LIVE_CTE). */
static const char sql_dry_dead_blobs[] =
    "WITH RECURSIVE edges (repo_id, parent, child) AS ("
    " SELECT repo_id, parent, child FROM manifest_refs WHERE kind = 'manifest'"
    " UNION ALL"
    " SELECT repo_id, subject, digest FROM manifests WHERE subject IS NOT NULL),"
    " live (repo_id, digest) AS ("
    " SELECT m.repo_id, m.digest FROM manifests m WHERE"
    DRY_GONE_MANIFEST("m.repo_id", "m.digest") " AND (m.created > ?1"
    " OR (?2 = 0 AND m.subject IS NULL)"
    " OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest"
    " AND" DRY_GONE_TAG("m.repo_id", "t.name") "))"
    " UNION"
    " SELECT e.repo_id, e.child FROM edges e JOIN live l"
    " ON e.repo_id = l.repo_id AND e.parent = l.digest"
    " WHERE" DRY_GONE_MANIFEST("e.repo_id", "e.child") "),"
    " used (digest) AS ("
    " SELECT r.child FROM manifest_refs r JOIN live l"
    " ON l.repo_id = r.repo_id AND l.digest = r.parent WHERE r.kind = 'blob')"
    " SELECT b.digest, b.size FROM blobs b WHERE b.created <= ?1"
    " AND b.digest NOT IN (SELECT digest FROM used)"
    " AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = b.digest AND rb.linked > ?1)"
    " ORDER BY b.digest";

static const char sql_stale_uploads[] =
    "SELECT u.id, r.name, u.received FROM uploads u JOIN repositories r ON r.id = u.repo_id"
    " WHERE u.updated < ?1 ORDER BY u.id";

/* Something removed (or, dry, to be removed) by the current transaction:
 * reported once it commits, forgotten if it rolls back. */
struct item {
    const char *kind;
    const char *repo; /* borrowed; NULL for blobs and orphans */
    char what[BERTH_DIGEST_STR_MAX];
    uint64_t bytes;
    int gone; /* blob: the file was there and is removed */
};

struct items {
    struct item *v;
    size_t n, cap;
};

struct repo {
    int64_t id;
    char *name;
};

struct gc {
    struct berth_store *st;
    const struct berth_gc_opts *o;
    struct berth_gc_stats *out;
    int64_t cutoff; /* removable: created / linked at or before this */
    unsigned batch;
    struct items done;
    sqlite3_stmt *exists; /* orphan walk: sql_blob_exists */
};

static int items_add(struct items *l, const char *kind, const char *repo, const char *what,
                     uint64_t bytes)
{
    struct item *it;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;

        if ((it = realloc(l->v, cap * sizeof(*it))) == NULL)
            return berth_error_set(BERTH_ERROR, "out of memory");
        l->v = it;
        l->cap = cap;
    }
    it = &l->v[l->n++];
    it->kind = kind;
    it->repo = repo;
    snprintf(it->what, sizeof(it->what), "%s", what ? what : "");
    it->bytes = bytes;
    it->gone = 0;
    return 0;
}

static void items_dispose(struct items *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void count(struct berth_gc_stats *out, const struct item *it)
{
    const char *k = it->kind;

    if (strcmp(k, "manifest") == 0)
        out->manifests++;
    else if (strcmp(k, "link") == 0)
        out->links++;
    else if (strcmp(k, "blob") == 0)
        out->blobs++;
    else if (strcmp(k, "orphan") == 0)
        out->orphans++;
    else if (strcmp(k, "upload") == 0)
        out->uploads++;
    if (it->gone)
        out->bytes += it->bytes;
}

/* The current transaction committed (or, dry, would): report its items. */
static void flush(struct gc *g)
{
    size_t i;

    for (i = 0; i < g->done.n; i++) {
        const struct item *it = &g->done.v[i];

        count(g->out, it);
        if (g->o->report)
            g->o->report(g->o->ctx, it->kind, it->repo, it->what, it->bytes);
    }
    g->done.n = 0;
}

static int begin(struct gc *g)
{
    g->done.n = 0;
    return g->o->dry_run ? 0 : berth_db_begin(g->st->db);
}

/* Commit (or roll back when error < 0) and report what it removed. After
 * a write transaction, a pause: writers waiting for the lock (pushes poll
 * it every 1-2 ms, db.c) get in before the next batch takes it again. */
static int end(struct gc *g, int error)
{
    if (!g->o->dry_run) {
        if (error >= 0)
            error = berth_db_commit(g->st->db);
        if (error < 0)
            berth_db_rollback(g->st->db);
        usleep(YIELD_USEC);
    }
    if (error < 0) {
        g->done.n = 0;
        return error;
    }
    flush(g);
    return 0;
}

static int stopping(struct gc *g)
{
    if (g->o->stop && *g->o->stop) {
        g->out->stopped = 1;
        return 1;
    }
    return 0;
}

/* Bind the run's parameters: ?1 text or integer, ?2 the cutoff, ?3 the
 * untagged flag or a limit, ?4 a limit, each only where the statement has
 * it. */
static int bind4(sqlite3_stmt *s, const char *t1, int64_t i1, int64_t i2, int64_t i3, int64_t i4)
{
    int n = sqlite3_bind_parameter_count(s), error = 0;

    if (n >= 1)
        error = t1 ? berth_db_bind_text(s, 1, t1) : berth_db_bind_int(s, 1, i1);
    if (error == 0 && n >= 2)
        error = berth_db_bind_int(s, 2, i2);
    if (error == 0 && n >= 3)
        error = berth_db_bind_int(s, 3, i3);
    if (error == 0 && n >= 4)
        error = berth_db_bind_int(s, 4, i4);
    return error;
}

/* A repository query: ?1 its id, ?2 the cutoff, ?3 untagged, ?4 at most a
 * batch (a dry run takes everything at once: nothing is deleted between
 * two queries). */
static int bind_repo(struct gc *g, sqlite3_stmt *s, const struct repo *r)
{
    return bind4(s, NULL, r->id, g->cutoff, g->o->untagged ? 1 : 0,
                 g->o->dry_run ? -1 : (int64_t)g->batch);
}

/* Append each row (column 0 text, optional column 1 size) as an item. */
static int collect(struct gc *g, sqlite3_stmt *s, const char *kind, const char *repo,
                   int with_size)
{
    int error;

    while ((error = berth_db_step(s)) == 1) {
        const char *what = (const char *)sqlite3_column_text(s, 0);
        uint64_t size = with_size ? (uint64_t)sqlite3_column_int64(s, 1) : 0;

        if ((error = items_add(&g->done, kind, repo, what, size)) < 0)
            break;
    }
    return error;
}

static void repos_free(struct repo *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

static int list_repos(struct gc *g, struct repo **out, size_t *nout)
{
    struct repo *v = NULL, *grown;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s;
    int error;

    *out = NULL;
    *nout = 0;
    error = berth_db_query(&s, g->st->db, "SELECT id, name FROM repositories ORDER BY id");
    if (error < 0)
        return error;
    while ((error = berth_db_step(s)) == 1) {
        const char *name = (const char *)sqlite3_column_text(s, 1);

        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if ((grown = realloc(v, cap * sizeof(*v))) == NULL) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                break;
            }
            v = grown;
        }
        v[n].id = sqlite3_column_int64(s, 0);
        if ((v[n].name = strdup(name ? name : "")) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            break;
        }
        n++;
    }
    sqlite3_finalize(s);
    if (error < 0) {
        repos_free(v, n);
        return error;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* ---- manifests and links, one transaction per repository ---- */

/* 1 when the query finds anything for the repository, read without the
 * lock: most repositories have nothing to collect, and those never take the
 * write lock at all. */
static int any_rows(struct gc *g, const char *sqltext, const struct repo *r)
{
    sqlite3_stmt *s;
    int error;

    if (g->o->dry_run)
        return 1;
    if ((error = berth_db_query(&s, g->st->db, sqltext)) < 0)
        return error;
    if ((error = bind_repo(g, s, r)) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error;
}

/* Up to a batch of the repository's dead manifests; the number removed.
 * The live set is computed again under the lock: a tag pushed meanwhile
 * either committed before (and keeps its manifest) or waits for this
 * commit. Deleting some dead manifests leaves the others dead (nothing
 * live was reached through them), so batches are safe. */
static int sweep_manifests(struct gc *g, const struct repo *r)
{
    sqlite3_stmt *s = NULL;
    size_t i, n;
    int error;

    if ((error = any_rows(g, sql_dead_manifests, r)) <= 0 || (error = begin(g)) < 0)
        return error;
    if ((error = berth_db_query(&s, g->st->db, g->o->dry_run ? sql_dry_dead_manifests
                                                             : sql_dead_manifests)) < 0 ||
        (error = bind_repo(g, s, r)) < 0 ||
        (error = collect(g, s, "manifest", r->name, 1)) < 0)
        goto done;
    sqlite3_finalize(s);
    s = NULL;
    for (i = 0; i < g->done.n && !g->o->dry_run; i++) {
        const char *d = g->done.v[i].what;

        /* a dead manifest has no tag (tagged ones are roots) */
        if ((error = berth_store_change(g->st, BERTH_SQL_MANIFEST_DELETE, r->id, d)) < 0 ||
            (error = berth_store_change(g->st, BERTH_SQL_REFS_DELETE, r->id, d)) < 0)
            goto done;
    }
done:
    sqlite3_finalize(s);
    n = g->done.n;
    return (error = end(g, error)) < 0 ? error : (int)n;
}

/* Up to a batch of the repository's unused links; the number removed. */
static int sweep_links(struct gc *g, const struct repo *r)
{
    sqlite3_stmt *s = NULL;
    size_t i, n;
    int error;

    if ((error = any_rows(g, sql_dead_links, r)) <= 0 || (error = begin(g)) < 0)
        return error;
    error = berth_db_query(&s, g->st->db, g->o->dry_run ? sql_dry_dead_links : sql_dead_links);
    if (error < 0 || (error = bind_repo(g, s, r)) < 0 ||
        (error = collect(g, s, "link", r->name, 0)) < 0)
        goto done;
    sqlite3_finalize(s);
    s = NULL;
    for (i = 0; i < g->done.n && !g->o->dry_run; i++) {
        error = berth_store_change(g->st, BERTH_SQL_REPO_BLOB_UNLINK, r->id, g->done.v[i].what);
        if (error < 0)
            goto done;
    }
done:
    sqlite3_finalize(s);
    n = g->done.n;
    return (error = end(g, error)) < 0 ? error : (int)n;
}

/* Run a per-repository step batch after batch (a dry run: once). */
static int each_batch(struct gc *g, int (*step)(struct gc *, const struct repo *),
                      const struct repo *r)
{
    int n;

    do {
        if ((n = step(g, r)) < 0)
            return n;
    } while (!g->o->dry_run && (unsigned)n >= g->batch && !stopping(g));
    return 0;
}

static int sweep_repos(struct gc *g)
{
    struct repo *repos;
    size_t n, i;
    int error;

    if ((error = list_repos(g, &repos, &n)) < 0)
        return error;
    for (i = 0; i < n && error == 0 && !stopping(g); i++)
        error = each_batch(g, sweep_manifests, &repos[i]);
    for (i = 0; i < n && error == 0 && !stopping(g); i++)
        error = each_batch(g, sweep_links, &repos[i]);
    repos_free(repos, n);
    return error;
}

/* ---- blobs ---- */

/* Remove a blob or orphan file; 1 removed, 0 already gone. Then the
 * gc_sweep fault site (fault.h): failing it rolls the batch back, its kill
 * form crashes with files gone and rows not yet deleted. */
static int remove_file(struct gc *g, const char *digest)
{
    struct berth_digest d;
    int error, gone = 1;

    if (berth_digest_parse(&d, digest, strlen(digest)) < 0) {
        berth_error_clear();
        return 0; /* not a name a file can have */
    }
    if ((error = g->st->blobs->remove(g->st->blobs, &d)) == BERTH_ENOTFOUND)
        gone = 0;
    else if (error < 0)
        return error;
    if (berth_fault_check("gc_sweep") < 0)
        return berth_error_errno("cannot sweep blob '%s'", digest);
    return gone;
}

/* One batch: under the lock, take each candidate's decision again, delete
 * its row and its file. */
static int sweep_batch(struct gc *g, const struct items *cand)
{
    sqlite3_stmt *check = NULL, *del = NULL;
    size_t i;
    int error, gone;

    if ((error = begin(g)) < 0)
        return error;
    if ((error = berth_db_query(&check, g->st->db, sql_blob_recheck)) < 0 ||
        (error = berth_db_query(&del, g->st->db, sql_blob_delete)) < 0)
        goto done;
    for (i = 0; i < cand->n; i++) {
        const struct item *c = &cand->v[i];

        sqlite3_reset(check);
        if ((error = bind4(check, c->what, 0, g->cutoff, 0, 0)) < 0 ||
            (error = berth_db_step(check)) < 0)
            goto done;
        sqlite3_reset(check);
        if (error == 0)
            continue; /* linked or referenced meanwhile */
        sqlite3_reset(del);
        if ((error = berth_db_bind_text(del, 1, c->what)) < 0 || (error = berth_db_step(del)) < 0 ||
            (error = gone = remove_file(g, c->what)) < 0 ||
            (error = items_add(&g->done, "blob", NULL, c->what, c->bytes)) < 0)
            goto done;
        g->done.v[g->done.n - 1].gone = gone;
    }
done:
    sqlite3_finalize(check);
    sqlite3_finalize(del);
    return end(g, error);
}

static int sweep_blobs(struct gc *g)
{
    char last[BERTH_DIGEST_STR_MAX] = "";
    struct items cand = { 0 };
    sqlite3_stmt *s = NULL;
    int error = 0;

    if ((error = berth_db_query(&s, g->st->db, sql_blob_candidates)) < 0)
        return error;
    while (!stopping(g)) {
        cand.n = 0;
        sqlite3_reset(s);
        if ((error = bind4(s, last, 0, g->cutoff, g->batch, 0)) < 0)
            break;
        while ((error = berth_db_step(s)) == 1) {
            error = items_add(&cand, "blob", NULL, (const char *)sqlite3_column_text(s, 0),
                              (uint64_t)sqlite3_column_int64(s, 1));
            if (error < 0)
                break;
        }
        sqlite3_reset(s); /* no read snapshot held across the batch */
        if (error < 0 || cand.n == 0)
            break;
        snprintf(last, sizeof(last), "%s", cand.v[cand.n - 1].what);
        if ((error = sweep_batch(g, &cand)) < 0)
            break;
    }
    sqlite3_finalize(s);
    items_dispose(&cand);
    return error < 0 ? error : 0;
}

static int dry_blobs(struct gc *g)
{
    sqlite3_stmt *s = NULL;
    size_t i;
    int error;

    g->done.n = 0;
    if ((error = berth_db_query(&s, g->st->db, sql_dry_dead_blobs)) == 0 &&
        (error = berth_db_bind_int(s, 1, g->cutoff)) == 0 &&
        (error = berth_db_bind_int(s, 2, g->o->untagged ? 1 : 0)) == 0)
        error = collect(g, s, "blob", NULL, 1);
    sqlite3_finalize(s);
    for (i = 0; i < g->done.n; i++)
        g->done.v[i].gone = 1;
    return end(g, error);
}

/* ---- orphan files: in blobs/ with no row (a commit that failed after
 * placing its file, or a crash between the two) ---- */

struct walk {
    struct gc *g;
    struct items pending;
};

static int sweep_orphans_batch(struct walk *w)
{
    struct gc *g = w->g;
    size_t i;
    int error;

    if (w->pending.n == 0)
        return 0;
    if ((error = begin(g)) < 0)
        return error;
    for (i = 0; i < w->pending.n; i++) {
        const struct item *c = &w->pending.v[i];

        sqlite3_reset(g->exists);
        if ((error = berth_db_bind_text(g->exists, 1, c->what)) < 0 ||
            (error = berth_db_step(g->exists)) < 0)
            goto done;
        sqlite3_reset(g->exists);
        if (error == 1)
            continue; /* committed meanwhile */
        if (!g->o->dry_run && (error = remove_file(g, c->what)) < 0)
            goto done;
        if (g->o->dry_run || error == 1) {
            if ((error = items_add(&g->done, "orphan", NULL, c->what, c->bytes)) < 0)
                goto done;
            g->done.v[g->done.n - 1].gone = 1;
        }
        error = 0;
    }
done:
    sqlite3_reset(g->exists);
    w->pending.n = 0;
    return end(g, error);
}

static int walk_file(void *ctx, const struct berth_digest *d, uint64_t size)
{
    struct walk *w = ctx;
    struct gc *g = w->g;
    int error;

    if (stopping(g))
        return 1; /* stops the walk; not an error */
    sqlite3_reset(g->exists);
    if ((error = berth_db_bind_text(g->exists, 1, d->str)) == 0)
        error = berth_db_step(g->exists);
    sqlite3_reset(g->exists);
    if (error != 0)
        return error < 0 ? error : 0;
    if ((error = items_add(&w->pending, "orphan", NULL, d->str, size)) < 0)
        return error;
    return w->pending.n >= g->batch ? sweep_orphans_batch(w) : 0;
}

static int sweep_orphans(struct gc *g)
{
    struct walk w = { g, { 0 } };
    int error;

    if ((error = berth_db_query(&g->exists, g->st->db, sql_blob_exists)) < 0)
        return error;
    error = g->st->blobs->walk(g->st->blobs, walk_file, &w);
    if (error >= 0)
        error = sweep_orphans_batch(&w);
    items_dispose(&w.pending);
    sqlite3_finalize(g->exists);
    g->exists = NULL;
    return error < 0 ? error : 0;
}

/* ---- upload sessions ---- */

/* A session is expired once idle for the grace period, but never sooner
 * than this: a collection in another process (`berth gc`) cannot see which
 * sessions the server's requests hold, and even `--grace 0s` must not cut a
 * client off between two PATCHes. */
#define UPLOAD_IDLE_MIN_SEC 600

static int sweep_uploads(struct gc *g)
{
    int64_t idle = g->o->grace_sec > UPLOAD_IDLE_MIN_SEC ? g->o->grace_sec : UPLOAD_IDLE_MIN_SEC;
    int64_t cutoff = (int64_t)time(NULL) - idle;
    struct items stale = { 0 };
    sqlite3_stmt *s = NULL;
    char **repos = NULL;
    size_t i;
    int error, strays = 0;

    if ((error = berth_db_query(&s, g->st->db, sql_stale_uploads)) < 0 ||
        (error = berth_db_bind_int(s, 1, cutoff)) < 0)
        goto done;
    /* the repository name is kept in the item's repo field (owned here) */
    while ((error = berth_db_step(s)) == 1) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);
        char **grown = realloc(repos, (stale.n + 1) * sizeof(*repos));

        if (!grown) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            break;
        }
        repos = grown;
        if ((repos[stale.n] = strdup(name ? name : "")) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            break;
        }
        if ((error = items_add(&stale, "upload", repos[stale.n], id,
                               (uint64_t)sqlite3_column_int64(s, 2))) < 0) {
            free(repos[stale.n]);
            break;
        }
    }
    sqlite3_finalize(s);
    s = NULL;
    if (error < 0)
        goto done;
    for (i = 0; i < stale.n; i++) {
        const struct item *it = &stale.v[i];

        /* the same removal berth_upload_purge does; a session a request
         * holds right now is not stale (EDENIED) and stays */
        if (!g->o->dry_run &&
            (error = berth_upload_cancel(g->st, it->repo, it->what)) < 0) {
            if (error != BERTH_EDENIED && error != BERTH_ENOTFOUND)
                goto done;
            continue;
        }
        g->out->uploads++;
        if (g->o->report)
            g->o->report(g->o->ctx, "upload", it->repo, it->what, it->bytes);
    }
    error = 0;
    /* files with no session row, and this process's forgotten sessions */
    if (!g->o->dry_run && (error = berth_upload_purge(g->st, idle, &strays)) == 0)
        g->out->uploads += (uint64_t)strays;
done:
    sqlite3_finalize(s);
    for (i = 0; i < stale.n; i++)
        free(repos[i]);
    free(repos);
    items_dispose(&stale);
    return error;
}

/* ---- the run ---- */

static int live_counts(struct gc *g)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, g->st->db, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs");
    if (error < 0)
        return error;
    if ((error = berth_db_step(s)) == 1) {
        uint64_t n = (uint64_t)sqlite3_column_int64(s, 0);
        uint64_t bytes = (uint64_t)sqlite3_column_int64(s, 1);

        if (g->o->dry_run) { /* the rows of blobs it would remove are still there */
            n -= n < g->out->blobs ? n : g->out->blobs;
            bytes -= bytes < g->out->bytes ? bytes : g->out->bytes;
        }
        g->out->blobs_live = n;
        g->out->bytes_live = bytes;
        error = 0;
    }
    sqlite3_finalize(s);
    return error;
}

/* One collection at a time per store, across processes: an flock on
 * <root>/gc.lock, released when the fd closes (or the process dies). */
static int take_lock(struct berth_store *st, int *fd)
{
    size_t len = strlen(st->root) + sizeof("/gc.lock");
    char *path = malloc(len);
    int error = 0;

    if (!path)
        return berth_error_set(BERTH_ERROR, "out of memory");
    snprintf(path, len, "%s/gc.lock", st->root);
    if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        error = berth_error_errno("cannot open '%s'", path);
    } else if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
        error = errno == EWOULDBLOCK
                    ? berth_error_set(BERTH_EEXISTS, "garbage collection already running")
                    : berth_error_errno("cannot lock '%s'", path);
        close(*fd);
        *fd = -1;
    }
    free(path);
    return error;
}

static int exec_sql(struct berth_store *st, const char *sqltext)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, st->db, sqltext)) < 0)
        return error;
    error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

int berth_gc_run(struct berth_store *st, const struct berth_gc_opts *o,
                 struct berth_gc_stats *out)
{
    struct gc g = { 0 };
    int fd = -1, error;

    memset(out, 0, sizeof(*out));
    if (o->grace_sec < 0)
        return berth_error_set(BERTH_EINVALID, "negative grace period");
    if ((error = take_lock(st, &fd)) < 0)
        return error;
    g.st = st;
    g.o = o;
    g.out = out;
    /* Times are whole seconds: something stamped T was made during
     * [T, T+1), so only T < now - grace proves a full grace period has
     * passed. Grace 0 (tests, an operator's explicit "now") takes
     * everything up to this second. */
    g.cutoff = (int64_t)time(NULL) - o->grace_sec - (o->grace_sec > 0 ? 1 : 0);
    g.batch = o->batch ? o->batch : BATCH_DEFAULT;

    /* a dry run starts with nothing noted as gone (retention notes) */
    if (o->dry_run && ((error = exec_sql(st, BERTH_GC_DRY_GONE_TABLE)) < 0 ||
                       (error = exec_sql(st, "DELETE FROM temp.gc_dry_gone")) < 0))
        goto done;
    if (o->nretention > 0 && (error = berth_retention_apply(st, o, out)) < 0)
        goto done;
    if ((error = sweep_repos(&g)) < 0 || stopping(&g))
        goto done;
    if ((error = o->dry_run ? dry_blobs(&g) : sweep_blobs(&g)) < 0 || stopping(&g))
        goto done;
    /* now: out->bytes covers blob rows only (dry runs subtract it) */
    if ((error = live_counts(&g)) < 0 || (error = sweep_orphans(&g)) < 0 || stopping(&g))
        goto done;
    error = sweep_uploads(&g);
done:
    items_dispose(&g.done);
    close(fd);
    return error;
}

/* ---- deleting a repository ---- */

static const char *const repo_delete_sql[] = {
    "DELETE FROM tags WHERE repo_id = ?1",
    "DELETE FROM manifest_refs WHERE repo_id = ?1",
    "DELETE FROM manifests WHERE repo_id = ?1",
    "DELETE FROM repo_blobs WHERE repo_id = ?1",
    "DELETE FROM uploads WHERE repo_id = ?1",
    "DELETE FROM repositories WHERE id = ?1",
};

static int run_with_id(struct berth_store *st, const char *sqltext, int64_t id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, st->db, sqltext)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, id)) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

/* Ids of the repository's upload sessions (their files go after commit). */
static int upload_ids(struct berth_store *st, int64_t id, struct items *out)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, st->db, "SELECT id FROM uploads WHERE repo_id = ?1")) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, id)) == 0) {
        while ((error = berth_db_step(s)) == 1) {
            if ((error = items_add(out, "upload", NULL, (const char *)sqlite3_column_text(s, 0),
                                   0)) < 0)
                break;
        }
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

int berth_store_repo_delete(struct berth_store *st, const char *repo)
{
    struct items uploads = { 0 };
    char path[4096];
    int64_t id;
    size_t i;
    int error;

    if ((error = berth_db_begin(st->db)) < 0)
        return error;
    if ((error = berth_store_repo_id(st, repo, &id)) < 0)
        goto done;
    if (error == 0) {
        error = berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_NAME_UNKNOWN,
                                    "repository name not known to registry: %s", repo);
        goto done;
    }
    if ((error = berth_store_guard_tags(st, id, repo, NULL)) < 0 ||
        (error = upload_ids(st, id, &uploads)) < 0)
        goto done;
    for (i = 0; i < sizeof(repo_delete_sql) / sizeof(repo_delete_sql[0]); i++) {
        if ((error = run_with_id(st, repo_delete_sql[i], id)) < 0)
            goto done;
    }
    if ((error = berth_store_tags_touch(st)) < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0) {
        berth_db_rollback(st->db);
    } else {
        /* After the commit: a crash before leaves stray files that purge
         * removes. A request holding one of these sessions finds its row
         * gone and fails with BLOB_UPLOAD_UNKNOWN. */
        for (i = 0; i < uploads.n; i++) {
            snprintf(path, sizeof(path), "%s/%s", st->uploads_dir, uploads.v[i].what);
            unlink(path);
        }
    }
    berth_store_tags_changed(st);
    items_dispose(&uploads);
    return error;
}

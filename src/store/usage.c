/*
 * Storage usage (maint.h): what a repository, a namespace or the whole
 * registry holds, from the metadata alone (no file is stat'ed). Blob bytes
 * are those of linked blobs (repo_blobs), so a blob uploaded but not yet in
 * a manifest counts (it occupies disk), and a blob whose last link the
 * collector removed stops counting. "dedup" counts a blob or a manifest
 * once however many repositories of the scope hold it; "total" once per
 * repository. Read-only: safe from `berth du` while `berth serve` writes.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/name.h"
#include "maint.h"
#include "store_int.h"

/* A name scope as a range of the repositories' unique name index: exact
 * name (?1 = ?2 unused), prefix ("team-a/" → ["team-a/", "team-a0")), or
 * everything. */
enum scope_kind { SCOPE_ALL, SCOPE_NAME, SCOPE_RANGE };

struct scope {
    enum scope_kind kind;
    char lo[BERTH_NAME_MAX + 2], hi[BERTH_NAME_MAX + 2];
};

#define WHERE_ALL "1"
#define WHERE_NAME "name = ?1"
#define WHERE_RANGE "name >= ?1 AND name < ?2"

static int scope_init(struct scope *sc, const char *scope, int prefix)
{
    size_t len = scope ? strlen(scope) : 0;

    sc->lo[0] = sc->hi[0] = '\0';
    if (!len) {
        sc->kind = SCOPE_ALL;
        return 0;
    }
    if (len >= sizeof(sc->lo))
        return berth_error_set(BERTH_EINVALID, "scope too long: '%.40s...'", scope);
    memcpy(sc->lo, scope, len + 1);
    if (!prefix) {
        sc->kind = SCOPE_NAME;
        return 0;
    }
    /* the first name after every name starting with the prefix: bump its
     * last byte (names are ASCII, so never 0xff) */
    memcpy(sc->hi, scope, len + 1);
    sc->hi[len - 1] = (char)(sc->hi[len - 1] + 1);
    sc->kind = SCOPE_RANGE;
    return 0;
}

static int scope_bind(sqlite3_stmt *s, const struct scope *sc)
{
    int error = 0;

    if (sc->kind != SCOPE_ALL)
        error = berth_db_bind_text(s, 1, sc->lo);
    if (error == 0 && sc->kind == SCOPE_RANGE)
        error = berth_db_bind_text(s, 2, sc->hi);
    return error;
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
    int64_t v = sqlite3_column_int64(s, i);

    return v > 0 ? (uint64_t)v : 0;
}

/*
 * One statement: the scope's repositories, their links grouped by blob (one
 * pass: dedup = sum of sizes, total = sum of size x links, blobs = groups),
 * the same for their manifests, and the counts. repo_blobs is read through
 * its primary key (repo_id, digest), manifests and tags through theirs.
 */
#define USAGE_SQL(where)                                                                           \
    "WITH r AS (SELECT id FROM repositories WHERE " where "),"                                     \
    " lb AS MATERIALIZED (SELECT count(*) AS n, max(b.size) AS size FROM repo_blobs rb"            \
    "        JOIN blobs b ON b.digest = rb.digest WHERE rb.repo_id IN (SELECT id FROM r)"          \
    "        GROUP BY rb.digest),"                                                                 \
    " lm AS MATERIALIZED (SELECT count(*) AS n, max(size) AS size FROM manifests"                 \
    "        WHERE repo_id IN (SELECT id FROM r) GROUP BY digest)"                                 \
    " SELECT (SELECT coalesce(sum(size), 0) FROM lb),"                                             \
    "  (SELECT coalesce(sum(size * n), 0) FROM lb),"                                               \
    "  (SELECT count(*) FROM lb),"                                                                 \
    "  (SELECT coalesce(sum(size), 0) FROM lm), (SELECT coalesce(sum(size * n), 0) FROM lm),"     \
    "  (SELECT coalesce(sum(n), 0) FROM lm),"                                                      \
    "  (SELECT count(*) FROM tags WHERE repo_id IN (SELECT id FROM r)),"                          \
    "  (SELECT count(*) FROM r)"

/* One repository (the quota check of a push to it): within one repository
 * a blob is linked once and a manifest stored once, so no grouping, and
 * each count is one range of a primary key. No row: the repository does
 * not exist (all zero). */
static const char repo_sql[] =
    "SELECT (SELECT coalesce(sum(b.size), 0) FROM repo_blobs rb JOIN blobs b"
    "  ON b.digest = rb.digest WHERE rb.repo_id = r.id),"
    " (SELECT count(*) FROM repo_blobs WHERE repo_id = r.id),"
    " (SELECT coalesce(sum(size), 0) FROM manifests WHERE repo_id = r.id),"
    " (SELECT count(*) FROM manifests WHERE repo_id = r.id),"
    " (SELECT count(*) FROM tags WHERE repo_id = r.id)"
    " FROM repositories r WHERE r.name = ?1";

static int repo_usage(struct berth_store *st, const char *repo, struct berth_usage *out)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, st->db, repo_sql)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) == 0 && (error = berth_db_step(s)) == 1) {
        out->dedup = out->total = col_u64(s, 0) + col_u64(s, 2);
        out->blobs = col_u64(s, 1);
        out->manifests = col_u64(s, 3);
        out->tags = col_u64(s, 4);
        out->repositories = 1;
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

int berth_store_usage(struct berth_store *st, const char *scope, struct berth_usage *out)
{
    static const char *const sql_all = USAGE_SQL(WHERE_ALL);
    static const char *const sql_range = USAGE_SQL(WHERE_RANGE);
    size_t len = scope ? strlen(scope) : 0;
    struct scope sc;
    sqlite3_stmt *s;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = scope_init(&sc, scope, len && scope[len - 1] == '/')) < 0)
        return error;
    if (sc.kind == SCOPE_NAME)
        return repo_usage(st, scope, out);
    if ((error = berth_db_query(&s, st->db, sc.kind == SCOPE_ALL ? sql_all : sql_range)) < 0)
        return error;
    if ((error = scope_bind(s, &sc)) == 0 && (error = berth_db_step(s)) == 1) {
        out->dedup = col_u64(s, 0) + col_u64(s, 3);
        out->total = col_u64(s, 1) + col_u64(s, 4);
        out->blobs = col_u64(s, 2);
        out->manifests = col_u64(s, 5);
        out->tags = col_u64(s, 6);
        out->repositories = col_u64(s, 7);
        error = 0;
    }
    sqlite3_finalize(s);
    return error;
}

/* Per repository: its links, manifests and tags grouped once each. Within
 * one repository a blob is linked once, so dedup == total. */
#define EACH_SQL(where)                                                                            \
    "SELECT r.name, coalesce(bl.bytes, 0), coalesce(bl.n, 0), coalesce(m.bytes, 0),"             \
    " coalesce(m.n, 0), coalesce(t.n, 0) FROM repositories r"                                      \
    " LEFT JOIN (SELECT rb.repo_id, sum(b.size) AS bytes, count(*) AS n FROM repo_blobs rb"        \
    "   JOIN blobs b ON b.digest = rb.digest GROUP BY rb.repo_id) bl ON bl.repo_id = r.id"         \
    " LEFT JOIN (SELECT repo_id, sum(size) AS bytes, count(*) AS n FROM manifests"                \
    "   GROUP BY repo_id) m ON m.repo_id = r.id"                                                   \
    " LEFT JOIN (SELECT repo_id, count(*) AS n FROM tags GROUP BY repo_id) t"                      \
    "   ON t.repo_id = r.id"                                                                       \
    " WHERE " where " ORDER BY r.name"

int berth_store_usage_each(struct berth_store *st, const char *prefix, berth_usage_cb cb,
                           void *ctx)
{
    static const char *const sql_all = EACH_SQL(WHERE_ALL);
    static const char *const sql_range = EACH_SQL("r." WHERE_RANGE);
    struct berth_usage u;
    struct scope sc;
    sqlite3_stmt *s;
    int error;

    if ((error = scope_init(&sc, prefix, 1)) < 0)
        return error;
    if ((error = berth_db_query(&s, st->db, sc.kind == SCOPE_ALL ? sql_all : sql_range)) < 0)
        return error;
    if ((error = scope_bind(s, &sc)) == 0) {
        while ((error = berth_db_step(s)) == 1) {
            memset(&u, 0, sizeof(u));
            u.dedup = u.total = col_u64(s, 1) + col_u64(s, 3);
            u.blobs = col_u64(s, 2);
            u.manifests = col_u64(s, 4);
            u.tags = col_u64(s, 5);
            u.repositories = 1;
            if ((error = cb(ctx, (const char *)sqlite3_column_text(s, 0), &u)) < 0)
                break;
        }
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

int berth_store_blob_in_scope(struct berth_store *st, const char *scope,
                              const struct berth_digest *d)
{
    static const char *const sql_name =
        "SELECT 1 FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id"
        " WHERE rb.digest = ?3 AND r." WHERE_NAME " LIMIT 1";
    static const char *const sql_range =
        "SELECT 1 FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id"
        " WHERE rb.digest = ?3 AND r." WHERE_RANGE " LIMIT 1";
    static const char *const sql_all = "SELECT 1 FROM repo_blobs WHERE digest = ?3 LIMIT 1";
    size_t len = scope ? strlen(scope) : 0;
    struct scope sc;
    sqlite3_stmt *s;
    int error;

    if ((error = scope_init(&sc, scope, len && scope[len - 1] == '/')) < 0)
        return error;
    error = berth_db_query(&s, st->db, sc.kind == SCOPE_ALL    ? sql_all
                                       : sc.kind == SCOPE_NAME ? sql_name
                                                               : sql_range);
    if (error < 0)
        return error;
    if ((error = scope_bind(s, &sc)) == 0 && (error = berth_db_bind_text(s, 3, d->str)) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error;
}

int berth_store_tags_of(struct berth_store *st, const char *repo, const struct berth_digest *d,
                        berth_str_cb cb, void *ctx)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, st->db,
                           "SELECT t.name FROM repositories r JOIN tags t ON t.repo_id = r.id"
                           " WHERE r.name = ?1 AND t.digest = ?2 ORDER BY t.name");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) == 0 &&
        (error = berth_db_bind_text(s, 2, d->str)) == 0) {
        while ((error = berth_db_step(s)) == 1)
            if ((error = cb(ctx, (const char *)sqlite3_column_text(s, 0))) < 0)
                break;
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

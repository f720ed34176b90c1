/*
 * Integrity check (`berth fsck`, maint.h): every blob row against its file
 * (present, size, digest), every file in blobs/ against a row, repository
 * links, every manifest's body against its row, edges and blobs, tags and
 * upload sessions. Checking never holds a read statement open across work:
 * rows are read a page at a time, so a long run over a large store neither
 * pins a WAL snapshot nor blocks `berth serve`. Each repair is its own write
 * transaction that first re-checks the problem (a push or a collection may
 * have changed things since it was seen), and a blob file is removed only
 * while that transaction holds SQLite's write lock (maint.h's rule).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "maint.h"
#include "store_int.h"

#define PAGE 256
/* An upload file is created just before its row (upload.c): younger strays
 * may be sessions being opened right now. */
#define UPLOAD_GRACE_SEC 60
#define DETAIL_MAX 1024

struct fsck {
    struct berth_store *st;
    const struct berth_fsck_opts *o;
    struct berth_fsck_stats *stats;
    /* Blobs found damaged or missing and left in place (no repair), in
     * digest order: manifests needing them are broken. */
    char **bad;
    size_t nbad, capbad;
    char walk_err[512]; /* the backend walk clears the thread error: kept here */
};

/* A list of rows, each `ncols` malloc'd strings (NULL columns as ""). */
struct rows {
    char **v;
    size_t n, cap, ncols;
};

static void rows_dispose(struct rows *r)
{
    size_t i;

    for (i = 0; i < r->n * r->ncols; i++)
        free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static const char *col(const struct rows *r, size_t row, size_t c)
{
    return r->v[row * r->ncols + c];
}

static int64_t col_int(const struct rows *r, size_t row, size_t c)
{
    return strtoll(col(r, row, c), NULL, 10);
}

static int oom(void)
{
    return berth_error_set(BERTH_ERROR, "out of memory");
}

/* Bind parameters described by `types` ('t' text, 'i' int64) from ap. */
static int bind_all(sqlite3_stmt *s, const char *types, va_list ap)
{
    int i, error = 0;

    for (i = 0; types[i] && error == 0; i++) {
        if (types[i] == 'i')
            error = berth_db_bind_int(s, i + 1, va_arg(ap, int64_t));
        else
            error = berth_db_bind_text(s, i + 1, va_arg(ap, const char *));
    }
    return error;
}

/*
 * Run one statement. A query returns 1 when it yields a row, 0 when not; a
 * write returns the number of rows it changed.
 */
static int run(struct fsck *f, const char *sql, const char *types, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    int error;

    if ((error = berth_db_query(&s, f->st->db, sql)) < 0)
        return error;
    va_start(ap, types);
    error = bind_all(s, types, ap);
    va_end(ap);
    if (error == 0 && (error = berth_db_step(s)) == 0 && !sqlite3_stmt_readonly(s))
        error = sqlite3_changes(sqlite3_db_handle(s));
    sqlite3_finalize(s);
    return error;
}

/* Every row of a query (ncols columns) into out, so no statement stays open
 * while the caller works on them. */
static int collect(struct rows *out, struct fsck *f, size_t ncols, const char *sql,
                   const char *types, ...)
{
    sqlite3_stmt *s;
    va_list ap;
    size_t c;
    int error;

    memset(out, 0, sizeof(*out));
    out->ncols = ncols;
    if ((error = berth_db_query(&s, f->st->db, sql)) < 0)
        return error;
    va_start(ap, types);
    error = bind_all(s, types, ap);
    va_end(ap);
    while (error == 0 && (error = berth_db_step(s)) == 1) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            char **v = realloc(out->v, cap * ncols * sizeof(*v));

            if (!v) {
                error = oom();
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        for (c = 0; c < ncols; c++) {
            const char *t = (const char *)sqlite3_column_text(s, (int)c);

            if ((out->v[out->n * ncols + c] = strdup(t ? t : "")) == NULL)
                break;
        }
        if (c < ncols) {
            while (c-- > 0)
                free(out->v[out->n * ncols + c]);
            error = oom();
            break;
        }
        out->n++;
        error = 0;
    }
    sqlite3_finalize(s);
    if (error < 0)
        rows_dispose(out);
    return error < 0 ? error : 0;
}

static void report(struct fsck *f, const char *kind, int fixed, const char *detail)
{
    f->stats->problems++;
    if (fixed)
        f->stats->repaired++;
    if (f->o->report)
        f->o->report(f->o->ctx, kind, detail, fixed);
}

/*
 * Report a problem after its repair: rc 1 repaired, 0 not attempted (check
 * only, or nothing can repair it), < 0 the repair failed (the thread error
 * says why and is added to the sentence).
 */
__attribute__((format(printf, 4, 5))) static void
problem(struct fsck *f, const char *kind, int rc, const char *fmt, ...)
{
    char detail[DETAIL_MAX];
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (rc < 0) {
        n = strlen(detail);
        snprintf(detail + n, sizeof(detail) - n, " (repair failed: %s)", berth_error_msg());
    }
    report(f, kind, rc > 0, detail);
}

/* Write transactions: end commits on success, rolls back on error. */
static int begin(struct fsck *f)
{
    return berth_db_begin(f->st->db);
}

static int end(struct fsck *f, int error)
{
    if (error < 0) {
        berth_db_rollback(f->st->db);
        return error;
    }
    return berth_db_commit(f->st->db);
}

static int rollback(struct fsck *f, int ret)
{
    berth_db_rollback(f->st->db);
    return ret;
}

/* ---- blobs: rows against files ---- */

static int bad_add(struct fsck *f, const char *digest)
{
    if (f->nbad == f->capbad) {
        size_t cap = f->capbad ? f->capbad * 2 : 16;
        char **v = realloc(f->bad, cap * sizeof(*v));

        if (!v)
            return oom();
        f->bad = v;
        f->capbad = cap;
    }
    if ((f->bad[f->nbad] = strdup(digest)) == NULL)
        return oom();
    f->nbad++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int bad_has(const struct fsck *f, const char *digest)
{
    return f->nbad && bsearch(&digest, f->bad, f->nbad, sizeof(*f->bad), cmp_str) != NULL;
}

/* Delete the blob's row and every repository's link to it (the links
 * first: repo_blobs references blobs). Inside a transaction. */
static int drop_blob_rows(struct fsck *f, const char *digest, int *links)
{
    int error;

    if ((error = run(f, "DELETE FROM repo_blobs WHERE digest = ?1", "t", digest)) < 0)
        return error;
    *links = error;
    error = run(f, "DELETE FROM blobs WHERE digest = ?1", "t", digest);
    return error < 0 ? error : 0;
}

static int blob_row_exists(struct fsck *f, const char *digest)
{
    return run(f, "SELECT 1 FROM blobs WHERE digest = ?1", "t", digest);
}

/*
 * A row whose file is absent. Re-checked under the write lock in both
 * modes: a collection may have removed row and file since the page was
 * read, and a push may have put the file back (the registry answers 404 for
 * a missing file, so clients upload it again).
 */
static int blob_missing(struct fsck *f, const struct berth_digest *d, uint64_t size)
{
    uint64_t have;
    int error, links = 0, rc = 0;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = blob_row_exists(f, d->str)) <= 0)
        return rollback(f, error);
    if ((error = f->st->blobs->stat(f->st->blobs, d, &have)) == 0)
        return rollback(f, 0);
    if (error != BERTH_ENOTFOUND)
        return rollback(f, error);
    if (!f->o->repair) {
        berth_db_rollback(f->st->db);
    } else {
        rc = end(f, drop_blob_rows(f, d->str, &links));
        rc = rc < 0 ? rc : 1;
    }
    if (rc <= 0 && (error = bad_add(f, d->str)) < 0)
        return error;
    problem(f, "missing-blob", rc,
            "blob %s (%llu bytes) has no file; %s", d->str, (unsigned long long)size,
            rc > 0 ? "row and repository links removed, the next push uploads it again"
                   : "images using it cannot be pulled");
    return 0;
}

/*
 * Repair a damaged blob whose file `sb` describes: remove the file, its row
 * and its links, so the next push uploads it again (a re-push alone would
 * keep a same-size damaged file: blob_fs.c trusts an existing name). Only
 * the very file that was checked is removed: if the name now holds another
 * inode a push replaced it meanwhile. 1 repaired, 0 nothing to do.
 */
static int repair_damaged(struct fsck *f, const struct berth_digest *d, const struct stat *sb,
                          int *links)
{
    struct stat now;
    uint64_t have;
    int error, fd;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = blob_row_exists(f, d->str)) <= 0)
        return rollback(f, error);
    error = f->st->blobs->open(f->st->blobs, d, &fd, &have);
    if (error == 0) {
        error = fstat(fd, &now) < 0 ? berth_error_errno("cannot stat blob '%s'", d->str) : 0;
        close(fd);
        if (error == 0 && (now.st_ino != sb->st_ino || now.st_dev != sb->st_dev))
            error = berth_error_set(BERTH_EEXISTS, "the file was replaced while being "
                                                   "checked: run fsck again");
    } else if (error == BERTH_ENOTFOUND) {
        error = 0;
    }
    if (error < 0 || (error = drop_blob_rows(f, d->str, links)) < 0)
        return rollback(f, error);
    error = f->st->blobs->remove(f->st->blobs, d);
    if (error == BERTH_ENOTFOUND)
        error = 0;
    if ((error = end(f, error)) < 0)
        return error;
    return 1;
}

static int blob_damaged(struct fsck *f, const struct berth_digest *d, const struct stat *sb,
                        const char *why)
{
    int links = 0, rc = 0, error;

    if (f->o->repair && (rc = repair_damaged(f, d, sb, &links)) == 0)
        return 0; /* removed by someone else meanwhile */
    if (rc <= 0 && (error = bad_add(f, d->str)) < 0)
        return error;
    if (rc > 0)
        problem(f, "corrupt-blob", rc,
                "blob %s is damaged (%s); file, row and %d repository link%s removed, the "
                "next push uploads it again",
                d->str, why, links, links == 1 ? "" : "s");
    else
        problem(f, "corrupt-blob", rc, "blob %s is damaged (%s)", d->str, why);
    return 0;
}

/* One blobs row: file present, size equal, content hashing to the digest. */
static int check_blob(struct fsck *f, const char *digest, uint64_t size)
{
    struct berth_digest d, got;
    struct stat sb;
    uint64_t have;
    char why[256];
    int fd, error, links = 0, rc = 0;

    if (berth_digest_parse(&d, digest, strlen(digest)) < 0) {
        if (f->o->repair) {
            if ((error = begin(f)) < 0)
                return error;
            rc = end(f, drop_blob_rows(f, digest, &links));
            rc = rc < 0 ? rc : 1;
        }
        problem(f, "missing-blob", rc, "blobs row '%s' is not a valid digest: no file can hold it",
                digest);
        return 0;
    }
    error = f->st->blobs->open(f->st->blobs, &d, &fd, &have);
    if (error == BERTH_ENOTFOUND)
        return blob_missing(f, &d, size);
    if (error < 0) {
        problem(f, "unreadable-blob", 0, "blob %s: %s", d.str, berth_error_msg());
        return 0;
    }
    f->stats->blobs_checked++;
    why[0] = '\0';
    if (fstat(fd, &sb) < 0) {
        error = berth_error_errno("cannot stat blob '%s'", d.str);
    } else if (have != size) {
        snprintf(why, sizeof(why), "%llu bytes on disk, %llu recorded",
                 (unsigned long long)have, (unsigned long long)size);
    } else if (!f->o->quick) {
        /* one long sequential read: let the kernel read ahead further */
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if ((error = berth_digest_fd(&got, d.algo, fd)) == 0) {
            f->stats->bytes_checked += have;
            if (!berth_digest_equal(&got, &d))
                snprintf(why, sizeof(why), "its content hashes to %s", got.str);
        }
    }
    close(fd);
    if (error < 0) {
        problem(f, "unreadable-blob", 0, "blob %s: %s", d.str, berth_error_msg());
        return 0;
    }
    return why[0] ? blob_damaged(f, &d, &sb, why) : 0;
}

static int check_blobs(struct fsck *f)
{
    struct rows page;
    char *last = strdup("");
    size_t i, n;
    int error = 0;

    if (!last)
        return oom();
    do {
        error = collect(&page, f, 2, "SELECT digest, size FROM blobs WHERE digest > ?1"
                                     " ORDER BY digest LIMIT 256", "t", last);
        if (error < 0)
            break;
        for (i = 0; i < page.n && error == 0; i++)
            error = check_blob(f, col(&page, i, 0), (uint64_t)col_int(&page, i, 1));
        n = page.n;
        if (n) {
            free(last);
            if ((last = strdup(col(&page, n - 1, 0))) == NULL && error == 0)
                error = oom();
        }
        rows_dispose(&page);
    } while (error == 0 && n == PAGE);
    free(last);
    return error;
}

/* ---- files: every file in blobs/ has a row ---- */

/*
 * A file under a blob name with no row: decided under the write lock (an
 * upload commit places the file and records the row in one transaction).
 * A file still sharing its inode with an upload file is left alone: it
 * belongs to a commit that is running or failed half-way, whose session
 * (and file) the upload purge removes; after that it is a plain orphan.
 */
static int orphan(struct fsck *f, const struct berth_digest *d)
{
    struct stat sb;
    uint64_t have;
    int error, fd, rc = 0;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = blob_row_exists(f, d->str)) != 0)
        return rollback(f, error < 0 ? error : 0);
    if ((error = f->st->blobs->open(f->st->blobs, d, &fd, &have)) < 0)
        return rollback(f, error == BERTH_ENOTFOUND ? 0 : error);
    error = fstat(fd, &sb) < 0 ? berth_error_errno("cannot stat blob '%s'", d->str) : 0;
    close(fd);
    if (error < 0 || sb.st_nlink > 1)
        return rollback(f, error);
    if (f->o->repair) {
        error = f->st->blobs->remove(f->st->blobs, d);
        rc = (error = end(f, error)) < 0 ? error : 1;
    } else {
        berth_db_rollback(f->st->db);
    }
    problem(f, "orphan-file", rc, "blob file %s (%llu bytes) has no row%s", d->str,
            (unsigned long long)have, rc > 0 ? "; removed" : "");
    return 0;
}

static int orphan_cb(void *ctx, const struct berth_digest *d, uint64_t size)
{
    struct fsck *f = ctx;
    uint64_t have;
    int error;

    (void)size;
    if ((error = blob_row_exists(f, d->str)) == 0) {
        /* a name in the wrong fan-out directory is not the blob's file:
         * scan_names reports it */
        if (f->st->blobs->stat(f->st->blobs, d, &have) < 0)
            return 0;
        error = orphan(f, d);
    }
    if (error < 0)
        snprintf(f->walk_err, sizeof(f->walk_err), "%s", berth_error_msg());
    return error < 0 ? error : 0;
}

static int is_hex(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[len] == '\0';
}

static void unknown_file(struct fsck *f, const char *rel)
{
    problem(f, "unknown-file", 0, "blobs/%s is not a blob the store could have written; left "
                                  "alone",
            rel);
}

/* Entries of blobs/<algo>/<fan>: files named by their full hex. */
static void scan_fan(struct fsck *f, int dfd, const char *algo, const char *fan, size_t hexlen)
{
    char rel[512];
    struct dirent *de;
    struct stat sb;
    DIR *dir;

    if ((dir = fdopendir(dfd)) == NULL) {
        close(dfd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* removed meanwhile (a collection) */
        if (strlen(de->d_name) == hexlen && is_hex(de->d_name, hexlen) &&
            strncmp(de->d_name, fan, 2) == 0 && S_ISREG(sb.st_mode))
            continue;
        snprintf(rel, sizeof(rel), "%.6s/%.2s/%s", algo, fan, de->d_name);
        unknown_file(f, rel);
    }
    closedir(dir);
}

/* Entries of blobs/<algo>: two-hex fan-out directories. */
static void scan_algo(struct fsck *f, int dfd, const char *algo, size_t hexlen)
{
    char rel[512];
    struct dirent *de;
    DIR *dir;
    int sub;

    if ((dir = fdopendir(dfd)) == NULL) {
        close(dfd);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        errno = 0;
        if (strlen(de->d_name) == 2 && is_hex(de->d_name, 2) &&
            (sub = openat(dirfd(dir), de->d_name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            scan_fan(f, sub, algo, de->d_name, hexlen);
            continue;
        }
        if (errno == ENOENT)
            continue; /* removed meanwhile */
        snprintf(rel, sizeof(rel), "%s/%s", algo, de->d_name);
        unknown_file(f, rel);
    }
    closedir(dir);
}

/*
 * Names in blobs/ the filesystem backend cannot have made (its walk skips
 * them silently): reported, never deleted, since they are not ours to judge.
 */
static int scan_names(struct fsck *f)
{
    char path[4096];
    struct dirent *de;
    DIR *dir;
    int sub;

    snprintf(path, sizeof(path), "%s/blobs", f->st->root);
    if ((dir = opendir(path)) == NULL)
        return berth_error_errno("cannot read '%s'", path);
    while ((de = readdir(dir)) != NULL) {
        size_t hexlen = strcmp(de->d_name, "sha256") == 0   ? 64
                        : strcmp(de->d_name, "sha512") == 0 ? 128
                                                            : 0;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (hexlen && (sub = openat(dirfd(dir), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
            scan_algo(f, sub, de->d_name, hexlen);
            continue;
        }
        unknown_file(f, de->d_name);
    }
    closedir(dir);
    return 0;
}

static int check_files(struct fsck *f)
{
    int error;

    f->walk_err[0] = '\0';
    if ((error = f->st->blobs->walk(f->st->blobs, orphan_cb, f)) < 0)
        return berth_error_set(error, "%s", f->walk_err);
    return scan_names(f);
}

/* ---- repository links whose blob row is gone ---- */

/* Delete one link if its blob row is still absent (re-checked in the
 * DELETE itself, one statement: its own transaction): 1 done. */
static int drop_link(struct fsck *f, int64_t repo_id, const char *digest)
{
    int error = run(f, "DELETE FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2"
                       " AND NOT EXISTS (SELECT 1 FROM blobs WHERE digest = ?2)",
                    "it", repo_id, digest);

    return error < 0 ? error : 1;
}

static int check_links(struct fsck *f)
{
    struct rows r;
    size_t i;
    int error, rc;

    if ((error = collect(&r, f, 3,
                         "SELECT rb.repo_id, r.name, rb.digest FROM repo_blobs rb"
                         " LEFT JOIN repositories r ON r.id = rb.repo_id"
                         " WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = rb.digest)"
                         " ORDER BY rb.repo_id, rb.digest",
                         "")) < 0)
        return error;
    for (i = 0; i < r.n; i++) {
        rc = f->o->repair ? drop_link(f, col_int(&r, i, 0), col(&r, i, 2)) : 0;
        problem(f, "dangling-link", rc, "repository %s links blob %s, which has no row%s",
                col(&r, i, 1), col(&r, i, 2), rc > 0 ? "; link removed" : "");
    }
    rows_dispose(&r);
    return 0;
}

/* ---- manifests ---- */

struct edge {
    const char *child;
    const char *kind; /* "blob" or "manifest" */
};

struct manifest_ctx {
    int64_t repo_id;
    const char *repo;
    const char *digest;
    char name[512]; /* how reports name the image: repo@digest and its tags */
};

/* "repo@digest (tags: a, b)", or for an untagged manifest the index that
 * lists it, so an operator can tell which pull breaks. */
static int image_name(struct fsck *f, struct manifest_ctx *mc)
{
    struct rows tags, parents;
    size_t i, n;
    int error;

    n = (size_t)snprintf(mc->name, sizeof(mc->name), "%s@%s", mc->repo, mc->digest);
    if ((error = collect(&tags, f, 1,
                         "SELECT name FROM tags WHERE repo_id = ?1 AND digest = ?2"
                         " ORDER BY name LIMIT 5",
                         "it", mc->repo_id, mc->digest)) < 0)
        return error;
    for (i = 0; i < tags.n && n < sizeof(mc->name); i++)
        n += (size_t)snprintf(mc->name + n, sizeof(mc->name) - n, "%s%s:%s", i ? ", " : " (",
                              mc->repo, col(&tags, i, 0));
    if (tags.n && n < sizeof(mc->name))
        snprintf(mc->name + n, sizeof(mc->name) - n, ")");
    i = tags.n;
    rows_dispose(&tags);
    if (i)
        return 0;
    if ((error = collect(&parents, f, 1,
                         "SELECT parent FROM manifest_refs WHERE repo_id = ?1 AND child = ?2"
                         " AND kind = 'manifest' ORDER BY parent LIMIT 1",
                         "it", mc->repo_id, mc->digest)) < 0)
        return error;
    if (parents.n && n < sizeof(mc->name))
        snprintf(mc->name + n, sizeof(mc->name) - n, " (listed by index %s@%s)", mc->repo,
                 col(&parents, 0, 0));
    rows_dispose(&parents);
    return 0;
}

static int edge_in(const struct edge *v, size_t n, const char *child, const char *kind)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(v[i].child, child) == 0 && strcmp(v[i].kind, kind) == 0)
            return 1;
    }
    return 0;
}

/* The edges store.c records for m: config and non-foreign layers ("blob"),
 * index children ("manifest"), each once. *out has room for all. */
static size_t expected_edges(struct edge *out, const struct berth_manifest *m)
{
    size_t i, n = 0;

    if (m->has_config)
        out[n++] = (struct edge){ m->config.digest.str, "blob" };
    for (i = 0; i < m->nlayers; i++) {
        if (!berth_descriptor_is_foreign(&m->layers[i]) &&
            !edge_in(out, n, m->layers[i].digest.str, "blob"))
            out[n++] = (struct edge){ m->layers[i].digest.str, "blob" };
    }
    for (i = 0; i < m->nmanifests; i++) {
        if (!edge_in(out, n, m->manifests[i].digest.str, "manifest"))
            out[n++] = (struct edge){ m->manifests[i].digest.str, "manifest" };
    }
    return n;
}

/* Make the manifest's edges those of its body: drop extras, add missing. */
static int rebuild_edges(struct fsck *f, const struct manifest_ctx *mc, const struct edge *want,
                         size_t nwant, const struct rows *have, const char *subject)
{
    size_t i;
    int error;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = run(f, "SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2", "it",
                     mc->repo_id, mc->digest)) <= 0)
        return rollback(f, error); /* deleted meanwhile: its edges went with it */
    for (i = 0; i < have->n && error >= 0; i++) {
        if (edge_in(want, nwant, col(have, i, 0), col(have, i, 1)) ||
            (subject && strcmp(col(have, i, 0), subject) == 0))
            continue;
        error = run(f, "DELETE FROM manifest_refs WHERE repo_id = ?1 AND parent = ?2"
                       " AND child = ?3",
                    "itt", mc->repo_id, mc->digest, col(have, i, 0));
    }
    for (i = 0; i < nwant && error >= 0; i++)
        error = run(f, "INSERT INTO manifest_refs (repo_id, parent, child, kind)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (repo_id, parent, child)"
                       " DO UPDATE SET kind = excluded.kind",
                    "ittt", mc->repo_id, mc->digest, want[i].child, want[i].kind);
    if ((error = end(f, error < 0 ? error : 0)) < 0)
        return error;
    return 1;
}

static int rows_has_edge(const struct rows *have, const char *child, const char *kind)
{
    size_t i;

    for (i = 0; i < have->n; i++) {
        if (strcmp(col(have, i, 0), child) == 0 && strcmp(col(have, i, 1), kind) == 0)
            return 1;
    }
    return 0;
}

/* A recorded edge the body does not give. A referrer's edge to its subject
 * is tolerated: a later schema may record it (issue 6: "referrers through
 * subject are edges too"). */
static int edge_extra(const struct rows *have, size_t i, const struct edge *want, size_t nwant,
                      const char *subject)
{
    return !edge_in(want, nwant, col(have, i, 0), col(have, i, 1)) &&
           !(subject && strcmp(col(have, i, 0), subject) == 0);
}

/* Edges whose parent is no manifest of the repository (a manifest row
 * deleted without its edges): they would keep blobs alive for ever. */
static int drop_stray_edge(struct fsck *f, int64_t repo_id, const char *parent, const char *child)
{
    int error = run(f, "DELETE FROM manifest_refs WHERE repo_id = ?1 AND parent = ?2"
                       " AND child = ?3 AND NOT EXISTS (SELECT 1 FROM manifests"
                       " WHERE repo_id = ?1 AND digest = ?2)",
                    "itt", repo_id, parent, child);

    return error < 0 ? error : 1;
}

static int check_stray_edges(struct fsck *f)
{
    struct rows r;
    size_t i;
    int error, rc;

    if ((error = collect(&r, f, 4,
                         "SELECT e.repo_id, r.name, e.parent, e.child FROM manifest_refs e"
                         " LEFT JOIN repositories r ON r.id = e.repo_id"
                         " WHERE NOT EXISTS (SELECT 1 FROM manifests m"
                         " WHERE m.repo_id = e.repo_id AND m.digest = e.parent)"
                         " ORDER BY e.repo_id, e.parent, e.child",
                         "")) < 0)
        return error;
    for (i = 0; i < r.n; i++) {
        rc = f->o->repair ? drop_stray_edge(f, col_int(&r, i, 0), col(&r, i, 2), col(&r, i, 3))
                          : 0;
        problem(f, "extra-edge", rc, "repository %s has an edge from %s, which is not one of its "
                                     "manifests, to %s%s",
                col(&r, i, 1), col(&r, i, 2), col(&r, i, 3), rc > 0 ? "; removed" : "");
    }
    rows_dispose(&r);
    return 0;
}

static int check_edges(struct fsck *f, const struct manifest_ctx *mc,
                       const struct berth_manifest *m)
{
    const char *subject = m->has_subject ? m->subject.digest.str : NULL;
    struct edge *want;
    struct rows have;
    size_t nwant, i, nbad = 0;
    int error, rc = 0;

    if ((want = malloc((1 + m->nlayers + m->nmanifests) * sizeof(*want))) == NULL)
        return oom();
    nwant = expected_edges(want, m);
    if ((error = collect(&have, f, 2,
                         "SELECT child, kind FROM manifest_refs WHERE repo_id = ?1"
                         " AND parent = ?2",
                         "it", mc->repo_id, mc->digest)) < 0) {
        free(want);
        return error;
    }
    for (i = 0; i < have.n; i++)
        nbad += edge_extra(&have, i, want, nwant, subject);
    for (i = 0; i < nwant; i++)
        nbad += !rows_has_edge(&have, want[i].child, want[i].kind);
    if (nbad && f->o->repair && (rc = rebuild_edges(f, mc, want, nwant, &have, subject)) == 0)
        nbad = 0; /* the manifest is gone, and its edges with it */
    for (i = 0; nbad && i < have.n; i++) {
        if (edge_extra(&have, i, want, nwant, subject))
            problem(f, "extra-edge", rc,
                    "manifest %s has an edge to %s %s its body does not reference%s", mc->name,
                    col(&have, i, 1), col(&have, i, 0), rc > 0 ? "; removed" : "");
    }
    for (i = 0; nbad && i < nwant; i++) {
        if (!rows_has_edge(&have, want[i].child, want[i].kind))
            problem(f, "missing-edge", rc, "manifest %s references %s %s but has no edge to it%s",
                    mc->name, want[i].kind, want[i].child, rc > 0 ? "; edge added" : "");
    }
    rows_dispose(&have);
    free(want);
    return 0;
}

/* One referenced blob: stored (row), intact (not found damaged above) and
 * linked to the manifest's repository. */
static int check_ref_blob(struct fsck *f, const struct manifest_ctx *mc, const char *what,
                          const struct berth_descriptor *desc)
{
    const char *dg = desc->digest.str;
    struct rows r;
    const char *why = NULL;
    int error;

    if ((error = collect(&r, f, 2,
                         "SELECT (SELECT 1 FROM blobs WHERE digest = ?2),"
                         " (SELECT 1 FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2)",
                         "it", mc->repo_id, dg)) < 0)
        return error;
    if (!*col(&r, 0, 0))
        why = "is not stored";
    else if (bad_has(f, dg))
        why = "is damaged or missing on disk";
    else if (!*col(&r, 0, 1))
        why = "is not linked to the repository";
    rows_dispose(&r);
    if (why)
        problem(f, "broken-image", 0, "image %s: its %s %s %s; push the image again", mc->name,
                what, dg, why);
    return 0;
}

static int check_refs(struct fsck *f, const struct manifest_ctx *mc, const struct berth_manifest *m)
{
    size_t i;
    int error = 0;

    if (m->has_config)
        error = check_ref_blob(f, mc, "config", &m->config);
    for (i = 0; i < m->nlayers && error == 0; i++) {
        if (!berth_descriptor_is_foreign(&m->layers[i]))
            error = check_ref_blob(f, mc, "layer", &m->layers[i]);
    }
    for (i = 0; i < m->nmanifests && error >= 0; i++) {
        const char *child = m->manifests[i].digest.str;

        error = run(f, "SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2", "it",
                    mc->repo_id, child);
        if (error == 0)
            problem(f, "dangling-child", 0, "index %s lists manifest %s, which is not in "
                                            "repository %s",
                    mc->name, child, mc->repo);
    }
    return error < 0 ? error : 0;
}

/* The stored bytes still are the manifest the row names. */
static int check_body(struct fsck *f, const struct manifest_ctx *mc, const char *media_type,
                      int64_t size, const uint8_t *body, size_t len, struct berth_manifest **m)
{
    struct berth_digest want, got;

    *m = NULL;
    if (berth_digest_parse(&want, mc->digest, strlen(mc->digest)) < 0) {
        problem(f, "corrupt-manifest", 0, "manifest row %s@%s: not a valid digest", mc->repo,
                mc->digest);
        return 0;
    }
    if (berth_digest_buf(&got, want.algo, body, len) < 0)
        return berth_error_code();
    if (!berth_digest_equal(&got, &want)) {
        problem(f, "corrupt-manifest", 0, "manifest %s: its stored bytes hash to %s", mc->name,
                got.str);
        return 0;
    }
    if (size != (int64_t)len) {
        problem(f, "corrupt-manifest", 0, "manifest %s: %zu bytes stored, %lld recorded",
                mc->name, len, (long long)size);
        return 0;
    }
    if (berth_manifest_parse(m, media_type, body, len) < 0) {
        problem(f, "corrupt-manifest", 0, "manifest %s does not parse: %s", mc->name,
                berth_error_msg());
        *m = NULL;
    }
    return 0;
}

static int check_manifest(struct fsck *f, int64_t repo_id, const char *repo, const char *digest)
{
    struct manifest_ctx mc = { repo_id, repo, digest, "" };
    struct berth_manifest *m = NULL;
    sqlite3_stmt *s;
    uint8_t *body = NULL;
    char *media_type = NULL;
    int64_t size = 0;
    size_t len = 0;
    int error;

    if ((error = berth_db_query(&s, f->st->db,
                                "SELECT media_type, size, body FROM manifests"
                                " WHERE repo_id = ?1 AND digest = ?2")) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, digest)) == 0 && (error = berth_db_step(s)) == 1) {
        const char *mt = (const char *)sqlite3_column_text(s, 0);

        size = sqlite3_column_int64(s, 1);
        len = (size_t)sqlite3_column_bytes(s, 2);
        media_type = strdup(mt ? mt : "");
        body = malloc(len ? len : 1);
        if (!media_type || !body)
            error = oom();
        else if (len)
            memcpy(body, sqlite3_column_blob(s, 2), len);
    }
    sqlite3_finalize(s);
    if (error <= 0)
        goto done; /* deleted since the page was read */
    f->stats->manifests_checked++;
    if ((error = image_name(f, &mc)) < 0 ||
        (error = check_body(f, &mc, media_type, size, body, len, &m)) < 0 || !m)
        goto done;
    if ((error = check_edges(f, &mc, m)) == 0)
        error = check_refs(f, &mc, m);
done:
    berth_manifest_free(m);
    free(body);
    free(media_type);
    return error < 0 ? error : 0;
}

static int check_manifests(struct fsck *f)
{
    struct rows page;
    int64_t last_id = -1;
    char *last = strdup("");
    size_t i, n;
    int error = 0;

    if (!last)
        return oom();
    do {
        error = collect(&page, f, 3,
                        "SELECT m.repo_id, r.name, m.digest FROM manifests m"
                        " JOIN repositories r ON r.id = m.repo_id"
                        " WHERE m.repo_id > ?1 OR (m.repo_id = ?1 AND m.digest > ?2)"
                        " ORDER BY m.repo_id, m.digest LIMIT 256",
                        "it", last_id, last);
        if (error < 0)
            break;
        for (i = 0; i < page.n && error == 0; i++)
            error = check_manifest(f, col_int(&page, i, 0), col(&page, i, 1), col(&page, i, 2));
        n = page.n;
        if (n) {
            last_id = col_int(&page, n - 1, 0);
            free(last);
            if ((last = strdup(col(&page, n - 1, 2))) == NULL && error == 0)
                error = oom();
        }
        rows_dispose(&page);
    } while (error == 0 && n == PAGE);
    free(last);
    return error;
}

/* ---- tags pointing at a manifest the repository does not hold ---- */

/* Delete one tag if it still points at a manifest the repository lacks. */
static int drop_tag(struct fsck *f, int64_t repo_id, const char *tag, const char *digest)
{
    int error;

    if ((error = begin(f)) < 0)
        return error;
    error = run(f, "DELETE FROM tags WHERE repo_id = ?1 AND name = ?2 AND digest = ?3"
                   " AND NOT EXISTS (SELECT 1 FROM manifests WHERE repo_id = ?1"
                   " AND digest = ?3)",
                "itt", repo_id, tag, digest);
    if (error > 0)
        error = berth_store_tags_touch(f->st);
    error = end(f, error < 0 ? error : 0);
    berth_store_tags_changed(f->st);
    return error < 0 ? error : 1;
}

static int check_tags(struct fsck *f)
{
    struct rows r;
    size_t i;
    int error, rc;

    if ((error = collect(&r, f, 4,
                         "SELECT t.repo_id, r.name, t.name, t.digest FROM tags t"
                         " LEFT JOIN repositories r ON r.id = t.repo_id"
                         " WHERE NOT EXISTS (SELECT 1 FROM manifests m"
                         " WHERE m.repo_id = t.repo_id AND m.digest = t.digest)"
                         " ORDER BY t.repo_id, t.name",
                         "")) < 0)
        return error;
    for (i = 0; i < r.n; i++) {
        rc = f->o->repair ? drop_tag(f, col_int(&r, i, 0), col(&r, i, 2), col(&r, i, 3)) : 0;
        problem(f, "dangling-tag", rc, "tag %s:%s points at %s, which is not in the repository%s",
                col(&r, i, 1), col(&r, i, 2), col(&r, i, 3), rc > 0 ? "; tag removed" : "");
    }
    rows_dispose(&r);
    return 0;
}

/* ---- upload sessions ---- */

/* Upload ids are UUIDs (upload.c): only those name files we may touch. */
static int upload_id_ok(const char *id)
{
    size_t i;

    for (i = 0; i < 36; i++) {
        char c = id[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return id[36] == '\0';
}

/* 1 when uploads/<id> exists, 0 when not (or id could not name a file). */
static int upload_file_exists(struct fsck *f, const char *id)
{
    struct stat sb;
    int dfd, found;

    if (!upload_id_ok(id))
        return 0;
    if ((dfd = open(f->st->uploads_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return berth_error_errno("cannot open '%s'", f->st->uploads_dir);
    found = fstatat(dfd, id, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    close(dfd);
    return found;
}

/* Delete a session row whose file is gone (the file is created before the
 * row, so once absent it never comes back): 1 removed, 0 gone already. */
static int drop_upload_row(struct fsck *f, const char *id)
{
    int error;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = upload_file_exists(f, id)) != 0)
        return rollback(f, error < 0 ? error : 0);
    error = run(f, "DELETE FROM uploads WHERE id = ?1", "t", id);
    if ((error = end(f, error < 0 ? error : 0)) < 0)
        return error;
    return 1;
}

/* Session rows whose data file is gone: the session can never finish. */
static int check_upload_rows(struct fsck *f)
{
    struct rows r;
    size_t i;
    int error = 0, rc;

    if ((error = collect(&r, f, 1, "SELECT id FROM uploads ORDER BY id", "")) < 0)
        return error;
    for (i = 0; i < r.n; i++) {
        const char *id = col(&r, i, 0);

        if ((error = upload_file_exists(f, id)) < 0)
            break;
        if (error > 0)
            continue;
        rc = f->o->repair ? drop_upload_row(f, id) : 0;
        if (rc == 0 && f->o->repair)
            continue;
        problem(f, "stray-upload", rc, "upload session %s has no data file%s", id,
                rc > 0 ? "; session removed" : "");
    }
    rows_dispose(&r);
    return error < 0 ? error : 0;
}

/* A file in uploads/ without its row, older than the grace period: removed
 * under the write lock after re-checking the row. 1 removed, 0 not. */
static int remove_stray(struct fsck *f, int dfd, const char *name)
{
    struct stat sb;
    int error;

    if ((error = begin(f)) < 0)
        return error;
    if ((error = run(f, "SELECT 1 FROM uploads WHERE id = ?1", "t", name)) != 0)
        return rollback(f, error < 0 ? error : 0);
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return rollback(f, 0);
    if (unlinkat(dfd, name, 0) < 0)
        return rollback(f, berth_error_errno("cannot remove upload file '%s'", name));
    if ((error = end(f, 0)) < 0)
        return error;
    return 1;
}

static int check_upload_files(struct fsck *f)
{
    time_t cutoff = time(NULL) - UPLOAD_GRACE_SEC;
    struct dirent *de;
    struct stat sb;
    DIR *dir;
    int error = 0, rc;

    if ((dir = opendir(f->st->uploads_dir)) == NULL)
        return berth_error_errno("cannot read '%s'", f->st->uploads_dir);
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* removed meanwhile */
        if (!upload_id_ok(de->d_name) || !S_ISREG(sb.st_mode)) {
            problem(f, "stray-upload", 0, "uploads/%s is not an upload file; left alone",
                    de->d_name);
            continue;
        }
        if (sb.st_mtime >= cutoff)
            continue;
        if ((error = run(f, "SELECT 1 FROM uploads WHERE id = ?1", "t", de->d_name)) < 0)
            break;
        if (error > 0)
            continue;
        rc = f->o->repair ? remove_stray(f, dirfd(dir), de->d_name) : 0;
        if (rc == 0 && f->o->repair)
            continue; /* a session claimed it meanwhile */
        problem(f, "stray-upload", rc, "upload file %s (%lld bytes) has no session%s",
                de->d_name, (long long)sb.st_size, rc > 0 ? "; removed" : "");
    }
    closedir(dir);
    return error < 0 ? error : 0;
}

/* ---- the whole check ---- */

int berth_store_fsck(struct berth_store *st, const struct berth_fsck_opts *o,
                     struct berth_fsck_stats *out)
{
    static const struct berth_fsck_opts none = { 0 };
    struct fsck f = { 0 };
    size_t i;
    int error;

    memset(out, 0, sizeof(*out));
    f.st = st;
    f.o = o ? o : &none;
    f.stats = out;
    /* Blobs first: manifests are then judged against what was found. Files
     * after rows, so a blob repaired above is not seen again as an orphan. */
    if ((error = check_blobs(&f)) == 0 && (error = check_files(&f)) == 0 &&
        (error = check_links(&f)) == 0 && (error = check_manifests(&f)) == 0 &&
        (error = check_stray_edges(&f)) == 0 &&
        (error = check_tags(&f)) == 0 && (error = check_upload_rows(&f)) == 0)
        error = check_upload_files(&f);
    for (i = 0; i < f.nbad; i++)
        free(f.bad[i]);
    free(f.bad);
    return error;
}

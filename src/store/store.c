/*
 * The store: opening the root directory, repositories, repository↔blob
 * links, manifests and tags, and the listing queries. Blob bytes go through
 * the blob backend (blob.h), metadata through db.c; upload sessions are in
 * upload.c. Invariant: every metadata change is one SQLite transaction, and
 * a repository serves a blob only while a repo_blobs row links it (or, for
 * a manifest fetched through the blob endpoint, while it holds the manifest).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "store_int.h"

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);

    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path), i;

    if (len == 0 || len >= sizeof(buf))
        return berth_error_set(BERTH_EINVALID, "invalid storage root '%s'", path);
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return berth_error_errno("cannot create directory '%s'", buf);
        buf[i] = path[i];
    }
    return 0;
}

/*
 * <root>/tags.gen: one 64-bit counter, mapped shared by every process that
 * opens the store (`berth serve`, `berth gc`), bumped after each committed
 * tag change, so a server's tag-list cache learns of a change made by
 * another process without a database read per request. Best effort: when
 * it cannot be mapped (read-only root...), berth_store_tags_gen reads the
 * database counter every time instead — slower, still correct.
 */
static void tags_shared_map(struct berth_store *st)
{
    char *path = path_join(st->root, "tags.gen");
    struct stat sb;
    void *p;
    int fd;

    if (!path)
        return;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0)
        return;
    if (fstat(fd, &sb) == 0 &&
        (sb.st_size >= (off_t)sizeof(uint64_t) || ftruncate(fd, sizeof(uint64_t)) == 0)) {
        p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED)
            st->tags_shared = p;
    }
    close(fd);
}

int berth_store_open(struct berth_store **out, const struct berth_store_config *cfg)
{
    struct berth_store *st;
    char *path = NULL;
    int error;

    *out = NULL;
    if (!cfg || !cfg->root || !*cfg->root)
        return berth_error_set(BERTH_EINVALID, "no storage root given");
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    st->no_fsync = cfg->no_fsync;
    if ((st->root = strdup(cfg->root)) == NULL ||
        (st->uploads_dir = path_join(cfg->root, "uploads")) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((error = make_dirs(st->root)) < 0 || (error = make_dirs(st->uploads_dir)) < 0)
        goto done;
    if ((path = path_join(st->root, "blobs")) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((error = berth_blob_fs_new(&st->blobs, path, st->no_fsync)) < 0)
        goto done;
    free(path);
    if ((path = path_join(st->root, "berth.db")) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((error = berth_db_open(&st->db, path, st->no_fsync)) < 0)
        goto done;
    if ((error = berth_upload_table_new(&st->uploads)) < 0)
        goto done;
    tags_shared_map(st);
    if (!st->no_fsync) {
        /* make the new directory entries (blobs/, uploads/, berth.db) durable */
        int fd = open(st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
            error = berth_error_errno("cannot fsync '%s'", st->root);
        if (fd >= 0)
            close(fd);
    }
done:
    free(path);
    if (error < 0)
        berth_store_free(st);
    else
        *out = st;
    return error;
}

void berth_store_free(struct berth_store *st)
{
    if (!st)
        return;
    berth_upload_table_free(st->uploads);
    berth_db_free(st->db);
    if (st->tags_shared)
        munmap(st->tags_shared, sizeof(*st->tags_shared));
    if (st->blobs)
        st->blobs->free(st->blobs);
    free(st->uploads_dir);
    free(st->root);
    free(st);
}

/* ---- repositories ---- */

int berth_store_repo_id(struct berth_store *st, const char *repo, int64_t *id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_REPO_ID)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) == 0 && (error = berth_db_step(s)) == 1)
        *id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return error;
}

int berth_store_repo_ensure(struct berth_store *st, const char *repo, int64_t *id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_REPO_INSERT)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    if (error < 0)
        return error;
    if ((error = berth_store_repo_id(st, repo, id)) == 0)
        return berth_error_set(BERTH_ERROR, "repository '%s' vanished", repo);
    return error < 0 ? error : 0;
}

int berth_store_repo_exists(struct berth_store *st, const char *repo)
{
    int64_t id;

    return berth_store_repo_id(st, repo, &id);
}

/* Run a statement taking (repo_id, text) and return 1 when it yields a row. */
static int has_row(struct berth_store *st, enum berth_db_sql q, int64_t repo_id, const char *v)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, q)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, v)) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    return error;
}

int berth_store_change(struct berth_store *st, enum berth_db_sql q, int64_t repo_id,
                       const char *v)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, q)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, v)) == 0 && (error = berth_db_step(s)) == 0)
        error = sqlite3_changes(sqlite3_db_handle(s)) > 0;
    sqlite3_reset(s);
    return error;
}

/* ---- blobs ---- */

static int blob_unknown(const struct berth_digest *d)
{
    return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                               "blob unknown to registry: %s", d->str);
}

/* Size of the blob linked to repo in the database: 1 found, 0 not linked. */
static int linked_size(struct berth_store *st, const char *repo, const struct berth_digest *d,
                       uint64_t *size)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_BLOB_STAT)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) == 0 &&
        (error = berth_db_bind_text(s, 2, d->str)) == 0 && (error = berth_db_step(s)) == 1)
        *size = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return error;
}

/*
 * A manifest is content-addressed too, and clients (containerd among them)
 * may fetch one through the blob endpoint: serve the repository's manifest
 * bytes there. With fd == NULL only the size is looked up; otherwise the body
 * is copied into a memfd the caller can sendfile from. 1 found, 0 not.
 */
static int manifest_as_blob(struct berth_store *st, const char *repo,
                            const struct berth_digest *d, int *fd, uint64_t *size)
{
    sqlite3_stmt *s;
    const void *body;
    size_t len, off = 0;
    ssize_t n;
    int error, f = -1;

    error = berth_db_stmt(&s, st->db, fd ? BERTH_SQL_MANIFEST_BODY
                                         : BERTH_SQL_MANIFEST_BY_DIGEST_HEAD);
    if (error < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) < 0 ||
        (error = berth_db_bind_text(s, 2, d->str)) < 0 || (error = berth_db_step(s)) <= 0)
        goto done;
    if (!fd) {
        *size = (uint64_t)sqlite3_column_int64(s, 2);
        goto done;
    }
    body = sqlite3_column_blob(s, 0);
    len = (size_t)sqlite3_column_bytes(s, 0);
    if ((f = memfd_create("berth-manifest", MFD_CLOEXEC)) < 0) {
        error = berth_error_errno("cannot create a memory file");
        goto done;
    }
    while (off < len) {
        if ((n = write(f, (const char *)body + off, len - off)) < 0) {
            if (errno == EINTR)
                continue;
            error = berth_error_errno("cannot write a memory file");
            goto done;
        }
        off += (size_t)n;
    }
    if (lseek(f, 0, SEEK_SET) < 0) {
        error = berth_error_errno("cannot rewind a memory file");
        goto done;
    }
    *fd = f;
    *size = len;
    f = -1;
done:
    sqlite3_reset(s);
    if (f >= 0)
        close(f);
    return error;
}

/* The repository's blob d: its size, and with fd != NULL an open fd too.
 * Stat and open share this so the two stay one lookup each. */
static int blob_lookup(struct berth_store *st, const char *repo, const struct berth_digest *d,
                       int *fd, uint64_t *size)
{
    uint64_t want, have;
    int error;

    if (fd)
        *fd = -1;
    if ((error = linked_size(st, repo, d, &want)) < 0)
        return error;
    if (error == 0) {
        if ((error = manifest_as_blob(st, repo, d, fd, size)) < 0)
            return error;
        return error ? 0 : blob_unknown(d);
    }
    error = fd ? st->blobs->open(st->blobs, d, fd, &have) : st->blobs->stat(st->blobs, d, &have);
    if (error < 0)
        return error;
    /* A damaged file answers "unknown": the client pushes it again and the
     * commit replaces the damaged copy. */
    if (have != want) {
        if (fd) {
            close(*fd);
            *fd = -1;
        }
        return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                                   "blob %s is damaged (%llu bytes, expected %llu)", d->str,
                                   (unsigned long long)have, (unsigned long long)want);
    }
    *size = want;
    return 0;
}

int berth_store_blob_stat(struct berth_store *st, const char *repo, const struct berth_digest *d,
                          uint64_t *size)
{
    return blob_lookup(st, repo, d, NULL, size);
}

int berth_store_blob_open(struct berth_store *st, const char *repo, const struct berth_digest *d,
                          int *fd, uint64_t *size)
{
    return blob_lookup(st, repo, d, fd, size);
}

int berth_store_blob_mount(struct berth_store *st, const char *repo, const char *from,
                           const struct berth_digest *d)
{
    uint64_t size;
    int64_t id;
    int error;

    if ((error = berth_db_begin(st->db)) < 0)
        return error;
    if ((error = linked_size(st, from, d, &size)) < 0)
        goto done;
    if (error == 0) {
        error = berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                                    "blob unknown to repository '%s': %s", from, d->str);
        goto done;
    }
    if ((error = berth_store_repo_ensure(st, repo, &id)) < 0 ||
        (error = berth_store_change(st, BERTH_SQL_REPO_BLOB_LINK, id, d->str)) < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0)
        berth_db_rollback(st->db);
    return error;
}

int berth_store_blob_unlink(struct berth_store *st, const char *repo, const struct berth_digest *d)
{
    int64_t id;
    int error;

    if ((error = berth_store_repo_id(st, repo, &id)) < 0)
        return error;
    if (error == 0 ||
        (error = berth_store_change(st, BERTH_SQL_REPO_BLOB_UNLINK, id, d->str)) == 0)
        return blob_unknown(d);
    return error < 0 ? error : 0;
}

/* ---- manifests and tags ---- */

static int check_refs(struct berth_store *st, int64_t repo_id, const struct berth_manifest *m)
{
    size_t i;
    int error;

    if (m->has_config) {
        if ((error = has_row(st, BERTH_SQL_REPO_BLOB_HAS, repo_id, m->config.digest.str)) < 0)
            return error;
        if (error == 0)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_BLOB_UNKNOWN,
                                       "blob unknown to registry: %s", m->config.digest.str);
    }
    for (i = 0; i < m->nlayers; i++) {
        const struct berth_descriptor *l = &m->layers[i];

        if (berth_descriptor_is_foreign(l))
            continue;
        if ((error = has_row(st, BERTH_SQL_REPO_BLOB_HAS, repo_id, l->digest.str)) < 0)
            return error;
        if (error == 0)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_BLOB_UNKNOWN,
                                       "blob unknown to registry: %s", l->digest.str);
    }
    for (i = 0; i < m->nmanifests; i++) {
        const struct berth_descriptor *c = &m->manifests[i];

        if ((error = has_row(st, BERTH_SQL_MANIFEST_HAS, repo_id, c->digest.str)) < 0)
            return error;
        if (error == 0)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_UNKNOWN,
                                       "manifest unknown to registry: %s", c->digest.str);
    }
    return 0;
}

static int insert_ref(struct berth_store *st, int64_t repo_id, const char *parent,
                      const char *child, const char *kind)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_REF_INSERT)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, parent)) == 0 &&
        (error = berth_db_bind_text(s, 3, child)) == 0 &&
        (error = berth_db_bind_text(s, 4, kind)) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    return error < 0 ? error : 0;
}

static int insert_manifest(struct berth_store *st, int64_t repo_id,
                           const struct berth_manifest_put *req)
{
    const struct berth_manifest *m = req->m;
    sqlite3_stmt *s;
    int error, rc;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_MANIFEST_INSERT)) < 0)
        return error;
    rc = sqlite3_bind_int64(s, 1, repo_id);
    rc |= sqlite3_bind_text(s, 2, req->digest->str, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, m->media_type, -1, SQLITE_STATIC);
    rc |= m->artifact_type ? sqlite3_bind_text(s, 4, m->artifact_type, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(s, 4);
    rc |= sqlite3_bind_int64(s, 5, (int64_t)req->len);
    rc |= sqlite3_bind_blob64(s, 6, req->body ? (const void *)req->body : (const void *)"",
                              req->len, SQLITE_STATIC);
    rc |= m->has_subject ? sqlite3_bind_text(s, 7, m->subject.digest.str, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(s, 7);
    rc |= m->annotations ? sqlite3_bind_text(s, 8, m->annotations, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(s, 8);
    rc |= sqlite3_bind_int64(s, 9, now());
    if (rc != SQLITE_OK)
        error = berth_db_fail(s, rc, "cannot bind manifest");
    else
        error = berth_db_step(s);
    sqlite3_reset(s);
    return error < 0 ? error : 0;
}

/*
 * The tag-set generation (store.h) must change when another process —
 * retention run by `berth gc` — changes tags, or this server would keep
 * serving cached lists that are stale. Three counters:
 *  - counters 'tags' in the database, bumped inside each tag-changing
 *    transaction: the durable truth;
 *  - <root>/tags.gen (tags_shared_map), bumped by every process right after
 *    its commit: read with one atomic load;
 *  - the database counter as last read, refreshed at most once a second: it
 *    only matters when a process died between its commit and its shared
 *    bump (kill -9), which then leaves lists stale for at most a second.
 * The generation is the sum of the shared and the last-read database
 * counters: both only grow, so it changes whenever either does. Reading the
 * database on every tags/list instead cost 60% of the cached path (loadgen,
 * 50 tags: ~27k → ~11k req/s).
 */
int berth_store_tags_touch(struct berth_store *st)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_TAGS_TOUCH)) < 0)
        return error;
    error = berth_db_step(s);
    sqlite3_reset(s);
    return error < 0 ? error : 0;
}

/* After, not before, the commit: a reader that saw the old generation then
 * listed before the commit holds a listing that this bump invalidates; one
 * that sees the new generation lists after the commit. */
void berth_store_tags_changed(struct berth_store *st)
{
    if (st->tags_shared)
        __atomic_add_fetch(st->tags_shared, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&st->tags_gen, 1, __ATOMIC_SEQ_CST);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* counters 'tags': 1 and *out, or an error. */
static int read_db_gen(struct berth_store *st, uint64_t *out)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, st->db, "SELECT value FROM counters WHERE name = 'tags'")) < 0)
        return error;
    if ((error = berth_db_step(s)) == 1)
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return error;
}

uint64_t berth_store_tags_gen(struct berth_store *st)
{
    int64_t now_ms = mono_ms(), at = __atomic_load_n(&st->tags_db_at, __ATOMIC_ACQUIRE);
    uint64_t db;

    /* one thread a second re-reads the database (the others keep going) */
    if (!st->tags_shared || (now_ms - at >= 1000 &&
                             __atomic_compare_exchange_n(&st->tags_db_at, &at, now_ms, 0,
                                                         __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))) {
        if (read_db_gen(st, &db) != 1) {
            /* unreadable: a value no call returns twice, so nothing cached
             * under it is ever served (the high bit keeps it apart) */
            berth_error_clear();
            return (1ULL << 63) | __atomic_add_fetch(&st->tags_gen, 1, __ATOMIC_SEQ_CST);
        }
        if (!st->tags_shared)
            return db;
        __atomic_store_n(&st->tags_db, db, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(st->tags_shared, __ATOMIC_SEQ_CST) +
           __atomic_load_n(&st->tags_db, __ATOMIC_ACQUIRE);
}

static int upsert_tag(struct berth_store *st, int64_t repo_id, const char *tag,
                      const char *digest)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_TAG_UPSERT)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, tag)) == 0 &&
        (error = berth_db_bind_text(s, 3, digest)) == 0 &&
        (error = berth_db_bind_int(s, 4, now())) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    return error < 0 ? error : 0;
}

/* The tag guard of a put (store.h): asked about `tag` when it exists and
 * points elsewhere. Only puts with a guard pay for the lookup. */
static int guard_tag(struct berth_store *st, int64_t repo_id, const struct berth_manifest_put *req,
                     const char *tag)
{
    const char *old;
    sqlite3_stmt *s;
    int error;

    if (!req->tag_guard)
        return 0;
    error = berth_db_query(&s, st->db, "SELECT digest FROM tags WHERE repo_id = ?1 AND name = ?2");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, tag)) == 0 && (error = berth_db_step(s)) == 1) {
        old = (const char *)sqlite3_column_text(s, 0);
        error = old && strcmp(old, req->digest->str) != 0
                    ? req->tag_guard(req->guard_ctx, req->repo, tag, old)
                    : 0;
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

static int put_tag(struct berth_store *st, int64_t repo_id, const struct berth_manifest_put *req,
                   const char *tag)
{
    int error;

    if ((error = guard_tag(st, repo_id, req, tag)) < 0)
        return error;
    return upsert_tag(st, repo_id, tag, req->digest->str);
}

int berth_store_manifest_put(struct berth_store *st, const struct berth_manifest_put *req)
{
    const struct berth_manifest *m = req->m;
    const char *dg = req->digest->str;
    int64_t id;
    size_t i;
    int error;

    /* Checks run inside the write transaction: a concurrent blob unlink
     * cannot slip between the check and the insert. */
    if ((error = berth_db_begin(st->db)) < 0)
        return error;
    if ((error = berth_store_repo_ensure(st, req->repo, &id)) < 0 ||
        (error = check_refs(st, id, m)) < 0 || (error = insert_manifest(st, id, req)) < 0)
        goto done;
    if (m->has_config && (error = insert_ref(st, id, dg, m->config.digest.str, "blob")) < 0)
        goto done;
    for (i = 0; i < m->nlayers; i++) {
        if (berth_descriptor_is_foreign(&m->layers[i]))
            continue;
        if ((error = insert_ref(st, id, dg, m->layers[i].digest.str, "blob")) < 0)
            goto done;
    }
    for (i = 0; i < m->nmanifests; i++) {
        if ((error = insert_ref(st, id, dg, m->manifests[i].digest.str, "manifest")) < 0)
            goto done;
    }
    if (req->tag && (error = put_tag(st, id, req, req->tag)) < 0)
        goto done;
    for (i = 0; i < req->nextra_tags; i++) {
        if ((error = put_tag(st, id, req, req->extra_tags[i])) < 0)
            goto done;
    }
    if ((req->tag || req->nextra_tags) && (error = berth_store_tags_touch(st)) < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0)
        berth_db_rollback(st->db);
    if (req->tag || req->nextra_tags)
        berth_store_tags_changed(st);
    return error;
}

int berth_store_manifest_get(struct berth_store *st, const char *repo, const char *ref,
                             int want_body, struct berth_manifest_info *out)
{
    struct berth_digest d;
    enum berth_db_sql q;
    sqlite3_stmt *s;
    const char *key = ref;
    int by_digest = strchr(ref, ':') != NULL, error;

    memset(out, 0, sizeof(*out));
    if (by_digest) {
        if ((error = berth_digest_parse(&d, ref, strlen(ref))) < 0)
            return error;
        key = d.str;
        q = want_body ? BERTH_SQL_MANIFEST_BY_DIGEST : BERTH_SQL_MANIFEST_BY_DIGEST_HEAD;
    } else {
        q = want_body ? BERTH_SQL_MANIFEST_BY_TAG : BERTH_SQL_MANIFEST_BY_TAG_HEAD;
    }
    if ((error = berth_db_stmt(&s, st->db, q)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, repo)) < 0 ||
        (error = berth_db_bind_text(s, 2, key)) < 0 || (error = berth_db_step(s)) < 0)
        goto done;
    if (error == 0) {
        error = berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_UNKNOWN,
                                    "manifest unknown to registry: %s:%s", repo, ref);
        goto done;
    }
    if (by_digest) {
        out->digest = d;
    } else {
        const char *ds = (const char *)sqlite3_column_text(s, 0);

        if ((error = berth_digest_parse(&out->digest, ds ? ds : "", ds ? strlen(ds) : 0)) < 0)
            goto done;
    }
    out->len = (size_t)sqlite3_column_int64(s, 2);
    if ((out->media_type = strdup((const char *)sqlite3_column_text(s, 1))) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if (want_body) {
        const void *body = sqlite3_column_blob(s, 3);

        out->len = (size_t)sqlite3_column_bytes(s, 3);
        if ((out->body = malloc(out->len ? out->len : 1)) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        if (out->len)
            memcpy(out->body, body, out->len);
    }
    error = 0;
done:
    sqlite3_reset(s);
    if (error < 0)
        berth_manifest_info_dispose(out);
    return error;
}

void berth_manifest_info_dispose(struct berth_manifest_info *info)
{
    if (!info)
        return;
    free(info->media_type);
    free(info->body);
    info->media_type = NULL;
    info->body = NULL;
    info->len = 0;
}

void berth_store_set_tag_guard(struct berth_store *st, berth_tag_guard_fn guard, void *ctx)
{
    st->tag_guard = guard;
    st->tag_guard_ctx = ctx;
}

int berth_store_guard_tags(struct berth_store *st, int64_t repo_id, const char *repo,
                           const char *digest)
{
    sqlite3_stmt *s;
    int error;

    if (!st->tag_guard)
        return 0;
    error = berth_db_query(&s, st->db,
                           digest ? "SELECT name FROM tags WHERE repo_id = ?1 AND digest = ?2"
                                  : "SELECT name FROM tags WHERE repo_id = ?1");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (!digest || (error = berth_db_bind_text(s, 2, digest)) == 0)) {
        while ((error = berth_db_step(s)) == 1)
            if ((error = st->tag_guard(st->tag_guard_ctx, repo,
                                       (const char *)sqlite3_column_text(s, 0))) < 0)
                break;
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

int berth_store_manifest_delete(struct berth_store *st, const char *repo,
                                const struct berth_digest *d)
{
    int64_t id;
    int error;

    if ((error = berth_db_begin(st->db)) < 0)
        return error;
    if ((error = berth_store_repo_id(st, repo, &id)) < 0)
        goto done;
    if (error == 0 ||
        (error = berth_store_change(st, BERTH_SQL_MANIFEST_DELETE, id, d->str)) == 0) {
        error = berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_UNKNOWN,
                                    "manifest unknown to registry: %s@%s", repo, d->str);
        goto done;
    }
    if (error < 0 || (error = berth_store_guard_tags(st, id, repo, d->str)) < 0 ||
        (error = berth_store_change(st, BERTH_SQL_TAGS_DELETE_DIGEST, id, d->str)) < 0 ||
        (error = berth_store_change(st, BERTH_SQL_REFS_DELETE, id, d->str)) < 0 ||
        (error = berth_store_tags_touch(st)) < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0)
        berth_db_rollback(st->db);
    berth_store_tags_changed(st);
    return error;
}

int berth_store_tag_delete(struct berth_store *st, const char *repo, const char *tag)
{
    int64_t id;
    int error;

    if ((error = berth_store_repo_id(st, repo, &id)) < 0)
        return error;
    if (error == 0)
        return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_UNKNOWN,
                                   "manifest unknown to registry: %s:%s", repo, tag);
    if ((error = berth_db_begin(st->db)) < 0)
        return error;
    if (st->tag_guard && (error = has_row(st, BERTH_SQL_TAG_HAS, id, tag)) == 1 &&
        (error = st->tag_guard(st->tag_guard_ctx, repo, tag)) < 0)
        goto done;
    if (error < 0)
        goto done;
    if ((error = berth_store_change(st, BERTH_SQL_TAG_DELETE, id, tag)) == 0) {
        error = berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_MANIFEST_UNKNOWN,
                                    "manifest unknown to registry: %s:%s", repo, tag);
        goto done;
    }
    if (error < 0 || (error = berth_store_tags_touch(st)) < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0)
        berth_db_rollback(st->db);
    berth_store_tags_changed(st);
    return error;
}

/* ---- listing ---- */

/* LIMIT for a page of n: one extra row tells whether more remain. */
static int64_t page_limit(long n)
{
    return n < 0 ? -1 : (int64_t)n + 1;
}

/* Step a listing statement, handing column 0 of each row to cb. */
static int walk_names(sqlite3_stmt *s, long n, berth_str_cb cb, void *ctx, int *more)
{
    long count = 0;
    int error;

    while ((error = berth_db_step(s)) == 1) {
        if (n >= 0 && count == n) {
            *more = 1;
            break;
        }
        count++;
        if ((error = cb(ctx, (const char *)sqlite3_column_text(s, 0))) < 0)
            break;
    }
    return error < 0 ? error : 0;
}

int berth_store_tags(struct berth_store *st, const char *repo, const char *last, long n,
                     berth_str_cb cb, void *ctx, int *more)
{
    int more_dummy, error;
    sqlite3_stmt *s;
    int64_t id;

    if (!more)
        more = &more_dummy;
    *more = 0;
    if ((error = berth_store_repo_id(st, repo, &id)) < 0)
        return error;
    if (error == 0)
        return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_NAME_UNKNOWN,
                                   "repository name not known to registry: %s", repo);
    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_TAGS_LIST)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, id)) == 0 &&
        (error = berth_db_bind_text(s, 2, last ? last : "")) == 0 &&
        (error = berth_db_bind_int(s, 3, page_limit(n))) == 0)
        error = walk_names(s, n, cb, ctx, more);
    sqlite3_reset(s);
    return error;
}

int berth_store_catalog(struct berth_store *st, const char *last, long n, berth_str_cb cb,
                        void *ctx, int *more)
{
    int more_dummy, error;
    sqlite3_stmt *s;

    if (!more)
        more = &more_dummy;
    *more = 0;
    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_CATALOG)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, last ? last : "")) == 0 &&
        (error = berth_db_bind_int(s, 2, page_limit(n))) == 0)
        error = walk_names(s, n, cb, ctx, more);
    sqlite3_reset(s);
    return error;
}

int berth_store_referrers(struct berth_store *st, const char *repo,
                          const struct berth_digest *subject, const char *artifact_type,
                          const char *last, long n, berth_referrer_cb cb, void *ctx, int *more)
{
    struct berth_referrer r;
    int more_dummy, error;
    sqlite3_stmt *s;
    long count = 0;
    int64_t id;

    if (!more)
        more = &more_dummy;
    *more = 0;
    if ((error = berth_store_repo_id(st, repo, &id)) <= 0)
        return error;
    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_REFERRERS)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, id)) < 0 ||
        (error = berth_db_bind_text(s, 2, subject->str)) < 0 ||
        (error = berth_db_bind_text(s, 3, last ? last : "")) < 0 ||
        (error = berth_db_bind_text(s, 4, artifact_type)) < 0 ||
        (error = berth_db_bind_int(s, 5, page_limit(n))) < 0)
        goto done;
    while ((error = berth_db_step(s)) == 1) {
        if (n >= 0 && count == n) {
            *more = 1;
            break;
        }
        count++;
        r.media_type = (const char *)sqlite3_column_text(s, 0);
        r.digest = (const char *)sqlite3_column_text(s, 1);
        r.size = sqlite3_column_int64(s, 2);
        r.artifact_type = (const char *)sqlite3_column_text(s, 3);
        r.annotations = (const char *)sqlite3_column_text(s, 4);
        if ((error = cb(ctx, &r)) < 0)
            break;
    }
    error = error < 0 ? error : 0;
done:
    sqlite3_reset(s);
    return error;
}

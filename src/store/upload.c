/*
 * Upload sessions: uploads/<id> holds the bytes received so far and the
 * uploads table their acknowledged length, so a session survives restarts.
 * In memory, a table keyed by id marks the session a request holds (one
 * writer at a time) and keeps its running sha256 between PATCH requests;
 * after a restart the hasher is rebuilt from the file. Invariant: the file
 * is trusted only up to the acknowledged length (longer is truncated on
 * open), and a blob leaves uploads/ only after its digest verified.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "../core/random.h"
#include "fault.h"
#include "store_int.h"

#define BUCKETS 64

struct session {
    char id[BERTH_UPLOAD_ID_MAX];
    int busy;         /* held by a request (struct berth_upload) */
    int hash_ok;      /* h is valid and covers exactly `hashed` bytes */
    uint64_t hashed;
    struct berth_hasher h;
    struct session *next;
};

struct berth_upload_table {
    pthread_mutex_t lock; /* guards the buckets and `busy`; h belongs to the holder */
    struct session *bucket[BUCKETS];
};

struct berth_upload {
    struct berth_store *st;
    struct session *s;
    int fd;
    int64_t repo_id;
    uint64_t start;            /* offset at open: keep=0 rolls back to it */
    uint64_t off;              /* current size */
    struct berth_hasher saved; /* hasher state at open */
    char *path;
    uint64_t flushed;          /* writeback started for [start, flushed) */
};

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

/* Ids come from URLs: only our own UUID shape may reach a file name. */
static int valid_id(const char *id)
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

static int upload_unknown(const char *id)
{
    return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UPLOAD_UNKNOWN,
                               "blob upload unknown to registry: %s", id);
}

static char *upload_path(const struct berth_store *st, const char *id)
{
    size_t len = strlen(st->uploads_dir) + 1 + strlen(id) + 1;
    char *p = malloc(len);

    if (p)
        snprintf(p, len, "%s/%s", st->uploads_dir, id);
    return p;
}

/* ---- in-memory session table ---- */

int berth_upload_table_new(struct berth_upload_table **out)
{
    struct berth_upload_table *t = calloc(1, sizeof(*t));

    if (!t)
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void berth_upload_table_free(struct berth_upload_table *t)
{
    struct session *s, *next;
    size_t i;

    if (!t)
        return;
    for (i = 0; i < BUCKETS; i++) {
        for (s = t->bucket[i]; s; s = next) {
            next = s->next;
            berth_hasher_dispose(&s->h);
            free(s);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static size_t bucket_of(const char *id)
{
    size_t h = 5381;

    while (*id)
        h = h * 33 + (unsigned char)*id++;
    return h % BUCKETS;
}

/* Mark the session held, creating its entry. BERTH_EDENIED when held. */
static int acquire(struct session **out, struct berth_upload_table *t, const char *id)
{
    size_t b = bucket_of(id);
    struct session *s;
    int error = 0;

    pthread_mutex_lock(&t->lock);
    for (s = t->bucket[b]; s; s = s->next) {
        if (strcmp(s->id, id) == 0)
            break;
    }
    if (s && s->busy) {
        error = berth_error_set_oci(BERTH_EDENIED, BERTH_OCI_BLOB_UPLOAD_INVALID,
                                    "blob upload %s is in use by another request", id);
    } else if (!s) {
        if ((s = calloc(1, sizeof(*s))) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
        } else {
            memcpy(s->id, id, strlen(id) + 1);
            s->next = t->bucket[b];
            t->bucket[b] = s;
        }
    }
    if (error == 0) {
        s->busy = 1;
        *out = s;
    }
    pthread_mutex_unlock(&t->lock);
    return error;
}

static void release(struct berth_upload_table *t, struct session *s)
{
    pthread_mutex_lock(&t->lock);
    s->busy = 0;
    pthread_mutex_unlock(&t->lock);
}

/* Forget a held session entirely. */
static void drop(struct berth_upload_table *t, struct session *s)
{
    struct session **pp;

    pthread_mutex_lock(&t->lock);
    for (pp = &t->bucket[bucket_of(s->id)]; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    berth_hasher_dispose(&s->h);
    free(s);
}

/* Forget the entry of a session whose row is gone (purged by another
 * process, repository deleted), unless a request holds it: the holder finds
 * the row gone itself and drops the entry. */
static void forget(struct berth_upload_table *t, const char *id)
{
    struct session **pp, *s = NULL;

    pthread_mutex_lock(&t->lock);
    for (pp = &t->bucket[bucket_of(id)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            if (!(*pp)->busy) {
                s = *pp;
                *pp = s->next;
            }
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (s) {
        berth_hasher_dispose(&s->h);
        free(s);
    }
}

/* ---- database helpers ---- */

/* Acknowledged offset and repository of session `id` in `repo`: 1, 0 unknown. */
static int row_get(struct berth_store *st, const char *repo, const char *id, uint64_t *received,
                   int64_t *repo_id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, BERTH_SQL_UPLOAD_GET)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, id)) == 0 &&
        (error = berth_db_bind_text(s, 2, repo)) == 0 && (error = berth_db_step(s)) == 1) {
        *received = (uint64_t)sqlite3_column_int64(s, 0);
        *repo_id = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return error;
}

static int row_by_id(struct berth_store *st, enum berth_db_sql q, const char *id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, st->db, q)) < 0)
        return error;
    if ((error = berth_db_bind_text(s, 1, id)) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    return error;
}

/* Delete a held session: row, file, memory. */
static int remove_session(struct berth_store *st, struct session *s)
{
    char *path = upload_path(st, s->id);
    int error = row_by_id(st, BERTH_SQL_UPLOAD_DELETE, s->id);

    if (error < 0) {
        release(st->uploads, s);
        free(path);
        return error;
    }
    if (path)
        unlink(path);
    free(path);
    drop(st->uploads, s);
    return 0;
}

/* ---- sessions ---- */

int berth_upload_new(struct berth_store *st, const char *repo, char id[BERTH_UPLOAD_ID_MAX])
{
    uint8_t r[16];
    char *path = NULL;
    sqlite3_stmt *s;
    int64_t repo_id;
    int fd, error, created = 0;

    if ((error = berth_random(r, sizeof(r))) < 0)
        return error;
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(id, BERTH_UPLOAD_ID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);

    if ((path = upload_path(st, id)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    if ((fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644)) < 0) {
        error = berth_error_errno("cannot create upload file '%s'", path);
        goto done;
    }
    close(fd);
    created = 1;

    if ((error = berth_db_begin(st->db)) < 0)
        goto done;
    if ((error = berth_store_repo_ensure(st, repo, &repo_id)) < 0 ||
        (error = berth_db_stmt(&s, st->db, BERTH_SQL_UPLOAD_INSERT)) < 0)
        goto done;
    if ((error = berth_db_bind_text(s, 1, id)) == 0 &&
        (error = berth_db_bind_int(s, 2, repo_id)) == 0 &&
        (error = berth_db_bind_int(s, 3, now())) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    if (error < 0)
        goto done;
    error = berth_db_commit(st->db);
done:
    if (error < 0) {
        berth_db_rollback(st->db);
        if (created)
            unlink(path);
        id[0] = '\0';
    }
    free(path);
    return error;
}

int berth_upload_offset(struct berth_store *st, const char *repo, const char *id,
                        uint64_t *offset)
{
    uint64_t received;
    int64_t repo_id;
    struct stat sb;
    char *path;
    int error;

    if (!valid_id(id))
        return upload_unknown(id);
    if ((error = row_get(st, repo, id, &received, &repo_id)) < 0)
        return error;
    if (error == 0)
        return upload_unknown(id);
    if ((path = upload_path(st, id)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    error = stat(path, &sb);
    free(path);
    if (error < 0)
        return upload_unknown(id);
    /* after a power loss the file may hold less than was acknowledged */
    *offset = (uint64_t)sb.st_size < received ? (uint64_t)sb.st_size : received;
    return 0;
}

/* Hash the first `len` bytes of the file into a fresh sha256 state. */
static int rebuild_hasher(struct session *s, int fd, uint64_t len)
{
    uint8_t buf[65536];
    uint64_t off = 0;
    ssize_t n;
    int error;

    s->hash_ok = 0;
    berth_hasher_dispose(&s->h);
    if ((error = berth_hasher_init(&s->h, BERTH_SHA256)) < 0)
        return error;
    while (off < len) {
        size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);

        if ((n = pread(fd, buf, want, (off_t)off)) < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_errno("cannot read upload data");
        }
        if (n == 0)
            return berth_error_set(BERTH_ERROR, "upload data shorter than expected");
        if ((error = berth_hasher_update(&s->h, buf, (size_t)n)) < 0)
            return error;
        off += (uint64_t)n;
    }
    s->hashed = len;
    s->hash_ok = 1;
    return 0;
}

int berth_upload_open(struct berth_upload **out, struct berth_store *st, const char *repo,
                      const char *id, int64_t expect_start)
{
    struct berth_upload *u = NULL;
    struct session *s = NULL;
    uint64_t received, off;
    int64_t repo_id;
    struct stat sb;
    char *path = NULL;
    int fd = -1, error;

    *out = NULL;
    if (!valid_id(id))
        return upload_unknown(id);
    if ((error = row_get(st, repo, id, &received, &repo_id)) < 0)
        return error;
    if (error == 0) {
        if (row_by_id(st, BERTH_SQL_UPLOAD_EXISTS, id) == 0)
            forget(st->uploads, id);
        return upload_unknown(id);
    }
    if ((error = acquire(&s, st->uploads, id)) < 0)
        return error;
    if ((path = upload_path(st, id)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        error = errno == ENOENT ? upload_unknown(id)
                                : berth_error_errno("cannot open upload file '%s'", path);
        goto done;
    }
    if (fstat(fd, &sb) < 0) {
        error = berth_error_errno("cannot stat upload file '%s'", path);
        goto done;
    }
    if (sb.st_nlink > 1) {
        /* linked into blobs/ by a commit that failed later: never touch it */
        error = upload_unknown(id);
        goto done;
    }
    off = received;
    if ((uint64_t)sb.st_size > received) {
        /* bytes written by a request that never got acknowledged */
        if (ftruncate(fd, (off_t)received) < 0) {
            error = berth_error_errno("cannot truncate upload file '%s'", path);
            goto done;
        }
    } else if ((uint64_t)sb.st_size < received) {
        off = (uint64_t)sb.st_size; /* acknowledged data lost (power loss) */
    }
    if (expect_start >= 0 && (uint64_t)expect_start != off) {
        error = berth_error_set_oci(BERTH_ERANGE, BERTH_OCI_BLOB_UPLOAD_INVALID,
                                    "chunk starts at %lld but upload %s is at %llu",
                                    (long long)expect_start, id, (unsigned long long)off);
        goto done;
    }
    if ((!s->hash_ok || s->hashed != off) && (error = rebuild_hasher(s, fd, off)) < 0)
        goto done;
    if ((u = calloc(1, sizeof(*u))) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((error = berth_hasher_copy(&u->saved, &s->h)) < 0)
        goto done;
    u->st = st;
    u->s = s;
    u->fd = fd;
    u->repo_id = repo_id;
    u->start = u->off = u->flushed = off;
    u->path = path;
    *out = u;
    return 0;
done:
    free(u);
    free(path);
    if (fd >= 0)
        close(fd);
    release(st->uploads, s);
    return error;
}

/*
 * Writeback while the body streams in: every WRITEBACK_STEP bytes, start
 * the device writing what came before (sync_file_range, asynchronous), so
 * that the fsync at commit finds only the last step dirty instead of the
 * whole blob. Receiving, hashing and the disk then work at the same time:
 * a 1 GiB upload here spent ~1 s in that final fsync before (issue 3,
 * docs/internals.md "Uploads"). The bytes stay in the page cache, where a
 * pull right after the push finds them. Durability is unchanged: fsync at
 * commit is still what makes a blob durable; this only starts it early.
 */
#define WRITEBACK_STEP (8u << 20)

static void writeback_start(struct berth_upload *u)
{
    if (u->off - u->flushed < WRITEBACK_STEP || u->st->no_fsync)
        return;
    /* errors surface at the fsync at commit, which is checked */
    (void)sync_file_range(u->fd, (off_t)u->flushed, (off_t)(u->off - u->flushed),
                          SYNC_FILE_RANGE_WRITE);
    u->flushed = u->off;
}

int berth_upload_write(struct berth_upload *u, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    ssize_t n;
    int error;

    while (len > 0) {
        if (berth_fault_check("upload_write") < 0 ||
            (n = pwrite(u->fd, p, len, (off_t)u->off)) < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_errno("cannot write upload data");
        }
        if ((error = berth_hasher_update(&u->s->h, p, (size_t)n)) < 0) {
            u->s->hash_ok = 0;
            return error;
        }
        u->off += (uint64_t)n;
        u->s->hashed = u->off;
        p += n;
        len -= (size_t)n;
    }
    writeback_start(u);
    return 0;
}

uint64_t berth_upload_size(const struct berth_upload *u)
{
    return u->off;
}

static void upload_free(struct berth_upload *u)
{
    berth_hasher_dispose(&u->saved);
    if (u->fd >= 0)
        close(u->fd);
    free(u->path);
    free(u);
}

/* Undo this request's bytes: file and hasher back to the state at open. */
static void rollback(struct berth_upload *u)
{
    struct session *s = u->s;

    if (u->off == u->start)
        return;
    if (ftruncate(u->fd, (off_t)u->start) < 0) {
        s->hash_ok = 0; /* the next open truncates to the acknowledged offset and rehashes */
        return;
    }
    berth_hasher_dispose(&s->h);
    s->h = u->saved;
    u->saved.ctx = NULL;
    s->hashed = u->start;
    s->hash_ok = s->h.ctx != NULL;
    u->off = u->start;
}

int berth_upload_close(struct berth_upload *u, int keep)
{
    sqlite3_stmt *s;
    int error = 0;

    if (!u)
        return 0;
    if (keep && u->off != u->start) {
        if ((error = berth_db_stmt(&s, u->st->db, BERTH_SQL_UPLOAD_UPDATE)) == 0) {
            if ((error = berth_db_bind_text(s, 1, u->s->id)) == 0 &&
                (error = berth_db_bind_int(s, 2, (int64_t)u->off)) == 0 &&
                (error = berth_db_bind_int(s, 3, now())) == 0 &&
                (error = berth_db_step(s)) == 0 && sqlite3_changes(sqlite3_db_handle(s)) == 0)
                error = upload_unknown(u->s->id);
            sqlite3_reset(s);
        }
        if (error == BERTH_ENOTFOUND) {
            /* the row vanished while we wrote (purged, repository deleted) */
            drop(u->st->uploads, u->s);
            upload_free(u);
            return error;
        }
        if (error < 0)
            rollback(u); /* not acknowledged: the client resends from the old offset */
        else
            error = 0;
    } else if (!keep) {
        rollback(u);
    }
    release(u->st->uploads, u->s);
    upload_free(u);
    return error;
}

/*
 * Place the verified blob and record it, ending the session, all under the
 * database write lock: garbage collection removes a blob file only while
 * holding that lock too (gc.c), so it never sweeps a file between its
 * placement here and the row that makes it live. A session whose row
 * vanished meanwhile (purged, repository deleted) stores nothing.
 */
static int store_blob(struct berth_upload *u, const struct berth_digest *d)
{
    struct berth_store *st = u->st;
    struct berth_db *db = st->db;
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_begin(db)) < 0)
        return error;
    if ((error = row_by_id(st, BERTH_SQL_UPLOAD_EXISTS, u->s->id)) <= 0) {
        if (error == 0)
            error = upload_unknown(u->s->id);
        goto done;
    }
    if ((error = st->blobs->commit(st->blobs, d, u->path, u->fd, u->off)) < 0 ||
        (error = berth_db_stmt(&s, db, BERTH_SQL_BLOB_INSERT)) < 0)
        goto done;
    if ((error = berth_db_bind_text(s, 1, d->str)) == 0 &&
        (error = berth_db_bind_int(s, 2, (int64_t)u->off)) == 0 &&
        (error = berth_db_bind_int(s, 3, now())) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    if (error < 0 || (error = berth_db_stmt(&s, db, BERTH_SQL_REPO_BLOB_LINK)) < 0)
        goto done;
    if ((error = berth_db_bind_int(s, 1, u->repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, d->str)) == 0)
        error = berth_db_step(s);
    sqlite3_reset(s);
    if (error < 0 || (error = row_by_id(st, BERTH_SQL_UPLOAD_DELETE, u->s->id)) < 0)
        goto done;
    error = berth_db_commit(db);
done:
    if (error < 0)
        berth_db_rollback(db);
    return error;
}

int berth_upload_commit(struct berth_upload *u, const struct berth_digest *expect,
                        uint64_t *size_out)
{
    struct berth_store *st = u->st;
    struct berth_digest got;
    struct berth_hasher h = { 0 };
    int error;

    if (expect->algo == BERTH_SHA256) {
        if (!u->s->hash_ok && (error = rebuild_hasher(u->s, u->fd, u->off)) < 0)
            goto fail;
        /* finalize a copy: the session stays usable if storing fails */
        if ((error = berth_hasher_copy(&h, &u->s->h)) < 0 ||
            (error = berth_hasher_final(&h, &got)) < 0)
            goto fail;
    } else if ((error = berth_digest_fd(&got, expect->algo, u->fd)) < 0) {
        goto fail;
    }
    if (!berth_digest_equal(&got, expect)) {
        /* the session is cancelled: its data can never become this blob */
        struct session *s = u->s;

        u->s = NULL;
        remove_session(st, s);
        upload_free(u);
        berth_hasher_dispose(&h);
        return berth_error_set_oci(BERTH_EMISMATCH, BERTH_OCI_DIGEST_INVALID,
                                   "digest mismatch: computed %s, expected %s", got.str,
                                   expect->str);
    }
    if (berth_fault_check("upload_fsync") < 0 || (!st->no_fsync && fsync(u->fd) < 0)) {
        error = berth_error_errno("cannot fsync upload data");
        goto fail;
    }
    /* From here the upload file may share its inode with the blob (linked or
     * renamed into place): it must never be written or truncated again, so a
     * failure ends the session (the client starts over; the blob file, if
     * placed, is an orphan for garbage collection or the next commit). */
    if ((error = store_blob(u, &got)) < 0) {
        struct session *s = u->s;

        unlink(u->path);
        u->s = NULL;
        if (row_by_id(st, BERTH_SQL_UPLOAD_DELETE, s->id) < 0)
            error = berth_error_code();
        drop(st->uploads, s);
        upload_free(u);
        berth_hasher_dispose(&h);
        return error;
    }
    /* After the commit: a crash before this unlink leaves a stray file that
     * purge removes, never a recorded session without its data. */
    unlink(u->path);
    if (size_out)
        *size_out = u->off;
    drop(st->uploads, u->s);
    upload_free(u);
    berth_hasher_dispose(&h);
    return 0;
fail:
    berth_hasher_dispose(&h);
    rollback(u);
    release(st->uploads, u->s);
    upload_free(u);
    return error;
}

int berth_upload_cancel(struct berth_store *st, const char *repo, const char *id)
{
    struct session *s;
    uint64_t received;
    int64_t repo_id;
    int error;

    if (!valid_id(id))
        return upload_unknown(id);
    if ((error = row_get(st, repo, id, &received, &repo_id)) < 0)
        return error;
    if (error == 0)
        return upload_unknown(id);
    if ((error = acquire(&s, st->uploads, id)) < 0)
        return error;
    return remove_session(st, s);
}

/* Forget in-memory entries of sessions whose row is gone (removed by a
 * `berth gc` in another process, or with their repository). */
static int sweep_table(struct berth_store *st)
{
    struct berth_upload_table *t = st->uploads;
    char (*ids)[BERTH_UPLOAD_ID_MAX] = NULL, (*grown)[BERTH_UPLOAD_ID_MAX];
    size_t n = 0, cap = 0, i, b;
    struct session *s;
    int error = 0;

    pthread_mutex_lock(&t->lock);
    for (b = 0; b < BUCKETS && error == 0; b++) {
        for (s = t->bucket[b]; s && error == 0; s = s->next) {
            if (s->busy)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                if ((grown = realloc(ids, cap * sizeof(*ids))) == NULL) {
                    error = berth_error_set(BERTH_ERROR, "out of memory");
                    break;
                }
                ids = grown;
            }
            memcpy(ids[n++], s->id, sizeof(s->id));
        }
    }
    pthread_mutex_unlock(&t->lock);
    for (i = 0; i < n && error >= 0; i++) {
        if ((error = row_by_id(st, BERTH_SQL_UPLOAD_EXISTS, ids[i])) == 0)
            forget(t, ids[i]);
    }
    free(ids);
    return error < 0 ? error : 0;
}

/* Remove files in uploads/ that no session row names, older than cutoff. */
static int purge_strays(struct berth_store *st, int64_t cutoff, int *removed)
{
    struct dirent *de;
    struct stat sb;
    DIR *dir;
    int error = 0;

    if ((dir = opendir(st->uploads_dir)) == NULL)
        return berth_error_errno("cannot read '%s'", st->uploads_dir);
    while ((de = readdir(dir)) != NULL) {
        if (!valid_id(de->d_name))
            continue;
        if (fstatat(dirfd(dir), de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode) ||
            (int64_t)sb.st_mtime >= cutoff)
            continue;
        if ((error = row_by_id(st, BERTH_SQL_UPLOAD_EXISTS, de->d_name)) < 0)
            break;
        if (error == 0 && unlinkat(dirfd(dir), de->d_name, 0) == 0)
            (*removed)++;
        error = 0;
    }
    closedir(dir);
    return error;
}

int berth_upload_purge(struct berth_store *st, int64_t max_age_sec, int *removed)
{
    int64_t cutoff = now() - max_age_sec, stray_cutoff;
    char **ids = NULL, **grown;
    size_t nids = 0, cap = 0, i;
    struct session *s;
    sqlite3_stmt *q;
    int count = 0, error;

    /* collect first: rows are deleted below, not while the SELECT walks them */
    if ((error = berth_db_stmt(&q, st->db, BERTH_SQL_UPLOAD_STALE)) < 0)
        return error;
    if ((error = berth_db_bind_int(q, 1, cutoff)) < 0)
        goto done;
    while ((error = berth_db_step(q)) == 1) {
        const char *id = (const char *)sqlite3_column_text(q, 0);

        if (nids == cap) {
            cap = cap ? cap * 2 : 16;
            if ((grown = realloc(ids, cap * sizeof(*ids))) == NULL) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                break;
            }
            ids = grown;
        }
        if ((ids[nids] = strdup(id ? id : "")) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            break;
        }
        nids++;
    }
    sqlite3_reset(q);
    if (error < 0)
        goto done;
    for (i = 0; i < nids; i++) {
        if (acquire(&s, st->uploads, ids[i]) < 0)
            continue; /* a request is writing it right now: not stale */
        if ((error = remove_session(st, s)) < 0)
            goto done;
        count++;
    }
    /* An upload file is created just before its row: spare young strays. */
    stray_cutoff = cutoff < now() - 60 ? cutoff : now() - 60;
    if ((error = purge_strays(st, stray_cutoff, &count)) == 0)
        error = sweep_table(st);
done:
    for (i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    if (removed)
        *removed = count;
    return error;
}

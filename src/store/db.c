/*
 * Metadata database: schema, migrations, every SQL statement, and the
 * per-thread connections that run them. A pthread key hands each thread its
 * own connection; the destructor closes it when the thread exits and
 * berth_db_free closes whatever remains, so no connection is ever shared
 * between threads (SQLITE_OPEN_NOMUTEX). Writes use BEGIN IMMEDIATE and
 * commit with synchronous=FULL in WAL mode: a committed transaction (an
 * acknowledged push) survives kill -9 and power loss.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/error.h"
#include "db.h"
#include "fault.h"

/*
 * Schema version 1 (a fresh database is created at version 1, then upgraded
 * like any other). Portable SQL: runs on PostgreSQL with BLOB → BYTEA and
 * INTEGER PRIMARY KEY → BIGSERIAL. Names sort byte-wise (SQLite's BINARY
 * collation; COLLATE "C" on PostgreSQL). Times are unix seconds.
 * manifests.body holds the exact pushed bytes, so a GET by tag is one
 * indexed join and tag + manifest change in one transaction.
 */
static const char schema_v1[] =
    "CREATE TABLE repositories (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    name TEXT NOT NULL UNIQUE\n"
    ");\n"
    "CREATE TABLE blobs (\n"
    "    digest TEXT PRIMARY KEY,\n"
    "    size INTEGER NOT NULL,\n"
    "    created INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE repo_blobs (\n"
    "    repo_id INTEGER NOT NULL REFERENCES repositories (id),\n"
    "    digest TEXT NOT NULL REFERENCES blobs (digest),\n"
    "    PRIMARY KEY (repo_id, digest)\n"
    ");\n"
    "CREATE INDEX repo_blobs_digest ON repo_blobs (digest);\n"
    "CREATE TABLE manifests (\n"
    "    repo_id INTEGER NOT NULL REFERENCES repositories (id),\n"
    "    digest TEXT NOT NULL,\n"
    "    media_type TEXT NOT NULL,\n"
    "    artifact_type TEXT,\n"
    "    size INTEGER NOT NULL,\n"
    "    body BLOB NOT NULL,\n"
    "    subject TEXT,\n"
    "    annotations TEXT,\n"
    "    created INTEGER NOT NULL,\n"
    "    PRIMARY KEY (repo_id, digest)\n"
    ");\n"
    "CREATE INDEX manifests_subject ON manifests (repo_id, subject, digest);\n"
    "CREATE TABLE tags (\n"
    "    repo_id INTEGER NOT NULL REFERENCES repositories (id),\n"
    "    name TEXT NOT NULL,\n"
    "    digest TEXT NOT NULL,\n"
    "    updated INTEGER NOT NULL,\n"
    "    PRIMARY KEY (repo_id, name)\n"
    ");\n"
    "CREATE INDEX tags_digest ON tags (repo_id, digest);\n"
    "CREATE TABLE manifest_refs (\n"
    "    repo_id INTEGER NOT NULL REFERENCES repositories (id),\n"
    "    parent TEXT NOT NULL,\n"
    "    child TEXT NOT NULL,\n"
    "    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),\n"
    "    PRIMARY KEY (repo_id, parent, child)\n"
    ");\n"
    "CREATE INDEX manifest_refs_child ON manifest_refs (child);\n"
    "CREATE TABLE uploads (\n"
    "    id TEXT PRIMARY KEY,\n"
    "    repo_id INTEGER NOT NULL REFERENCES repositories (id),\n"
    "    received INTEGER NOT NULL,\n"
    "    created INTEGER NOT NULL,\n"
    "    updated INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX uploads_updated ON uploads (updated);\n";

/*
 * Schema version 2 (online garbage collection, docs/gc.md):
 *  - repo_blobs.linked: when the link was made or last renewed (upload
 *    commit, mount). An unreferenced link is kept for the grace period so a
 *    push in flight (blobs first, manifest last) is never broken; links that
 *    existed before the upgrade get a full grace period from the upgrade.
 *  - counters: named generation numbers shared by every process on the
 *    store ('tags': bumped by every tag change, for cross-process caches).
 */
static const char schema_v2[] =
    "ALTER TABLE repo_blobs ADD COLUMN linked INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE counters (\n"
    "    name TEXT PRIMARY KEY,\n"
    "    value INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO counters (name, value) VALUES ('tags', 0);\n";

#define MANIFEST_COLS "m.digest, m.media_type, m.size"
#define BY_DIGEST " FROM repositories r JOIN manifests m ON m.repo_id = r.id" \
                  " WHERE r.name = ?1 AND m.digest = ?2"
#define BY_TAG " FROM repositories r JOIN tags t ON t.repo_id = r.id" \
               " JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest" \
               " WHERE r.name = ?1 AND t.name = ?2"

static const char *const sql[BERTH_SQL__COUNT] = {
    [BERTH_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [BERTH_SQL_COMMIT] = "COMMIT",
    [BERTH_SQL_ROLLBACK] = "ROLLBACK",
    [BERTH_SQL_REPO_ID] = "SELECT id FROM repositories WHERE name = ?1",
    [BERTH_SQL_REPO_INSERT] =
        "INSERT INTO repositories (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
    [BERTH_SQL_BLOB_STAT] =
        "SELECT b.size FROM repositories r JOIN repo_blobs rb ON rb.repo_id = r.id"
        " JOIN blobs b ON b.digest = rb.digest WHERE r.name = ?1 AND rb.digest = ?2",
    [BERTH_SQL_BLOB_INSERT] = "INSERT INTO blobs (digest, size, created) VALUES (?1, ?2, ?3)"
                              " ON CONFLICT (digest) DO NOTHING",
    [BERTH_SQL_REPO_BLOB_HAS] = "SELECT 1 FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2",
    /* A re-push or re-mount restarts the link's grace period (gc.c). */
    [BERTH_SQL_REPO_BLOB_LINK] = "INSERT INTO repo_blobs (repo_id, digest, linked)"
                                 " VALUES (?1, ?2, :now) ON CONFLICT (repo_id, digest)"
                                 " DO UPDATE SET linked = excluded.linked",
    [BERTH_SQL_REPO_BLOB_UNLINK] = "DELETE FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2",
    [BERTH_SQL_MANIFEST_HAS] = "SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2",
    [BERTH_SQL_MANIFEST_BY_DIGEST] = "SELECT " MANIFEST_COLS ", m.body" BY_DIGEST,
    [BERTH_SQL_MANIFEST_BY_DIGEST_HEAD] = "SELECT " MANIFEST_COLS BY_DIGEST,
    [BERTH_SQL_MANIFEST_BY_TAG] = "SELECT " MANIFEST_COLS ", m.body" BY_TAG,
    [BERTH_SQL_MANIFEST_BY_TAG_HEAD] = "SELECT " MANIFEST_COLS BY_TAG,
    [BERTH_SQL_MANIFEST_BODY] = "SELECT m.body" BY_DIGEST,
    [BERTH_SQL_MANIFEST_INSERT] =
        "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, size, body,"
        " subject, annotations, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (repo_id, digest) DO NOTHING",
    [BERTH_SQL_MANIFEST_DELETE] = "DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2",
    [BERTH_SQL_REF_INSERT] = "INSERT INTO manifest_refs (repo_id, parent, child, kind)"
                             " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (repo_id, parent, child)"
                             " DO NOTHING",
    [BERTH_SQL_REFS_DELETE] = "DELETE FROM manifest_refs WHERE repo_id = ?1 AND parent = ?2",
    [BERTH_SQL_TAG_UPSERT] =
        "INSERT INTO tags (repo_id, name, digest, updated) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest,"
        " updated = excluded.updated",
    [BERTH_SQL_TAG_DELETE] = "DELETE FROM tags WHERE repo_id = ?1 AND name = ?2",
    [BERTH_SQL_TAG_HAS] = "SELECT 1 FROM tags WHERE repo_id = ?1 AND name = ?2",
    [BERTH_SQL_TAGS_TOUCH] = "UPDATE counters SET value = value + 1 WHERE name = 'tags'",
    [BERTH_SQL_TAGS_DELETE_DIGEST] = "DELETE FROM tags WHERE repo_id = ?1 AND digest = ?2",
    [BERTH_SQL_TAGS_LIST] =
        "SELECT name FROM tags WHERE repo_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
    [BERTH_SQL_CATALOG] =
        "SELECT r.name FROM repositories r WHERE r.name > ?1"
        " AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)"
        " ORDER BY r.name LIMIT ?2",
    [BERTH_SQL_REFERRERS] =
        "SELECT media_type, digest, size, artifact_type, annotations FROM manifests"
        " WHERE repo_id = ?1 AND subject = ?2 AND digest > ?3"
        " AND (?4 IS NULL OR artifact_type = ?4) ORDER BY digest LIMIT ?5",
    [BERTH_SQL_UPLOAD_INSERT] = "INSERT INTO uploads (id, repo_id, received, created, updated)"
                                " VALUES (?1, ?2, 0, ?3, ?3)",
    [BERTH_SQL_UPLOAD_GET] =
        "SELECT u.received, u.repo_id FROM repositories r JOIN uploads u ON u.repo_id = r.id"
        " WHERE u.id = ?1 AND r.name = ?2",
    [BERTH_SQL_UPLOAD_UPDATE] = "UPDATE uploads SET received = ?2, updated = ?3 WHERE id = ?1",
    [BERTH_SQL_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?1",
    [BERTH_SQL_UPLOAD_STALE] = "SELECT id FROM uploads WHERE updated < ?1",
    [BERTH_SQL_UPLOAD_EXISTS] = "SELECT 1 FROM uploads WHERE id = ?1",
};

/* Statements with a `:now` parameter that berth_db_stmt binds itself, so
 * callers that know nothing of the stamp (mount, upload commit) set it. */
static const unsigned char stamped[BERTH_SQL__COUNT] = {
    [BERTH_SQL_REPO_BLOB_LINK] = 1,
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[BERTH_SQL__COUNT];
    struct berth_db *owner;
    struct conn *prev, *next;
};

struct berth_db {
    char *path;
    int no_fsync;
    pthread_key_t key;
    pthread_mutex_t lock; /* guards conns */
    struct conn *conns;
};

static int sqlite_error(sqlite3 *db, int rc, const char *what)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

    switch (rc & 0xff) {
    case SQLITE_FULL:
        return berth_error_set_oci(BERTH_ENOSPC, BERTH_OCI_UNAVAILABLE, "%s: %s", what, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return berth_error_set_oci(BERTH_ERROR, BERTH_OCI_UNAVAILABLE, "%s: %s", what, msg);
    default:
        return berth_error_set(BERTH_ERROR, "%s: %s", what, msg);
    }
}

int berth_db_fail(sqlite3_stmt *s, int rc, const char *what)
{
    return sqlite_error(s ? sqlite3_db_handle(s) : NULL, rc, what);
}

static void conn_close(struct conn *c)
{
    size_t i;

    for (i = 0; i < BERTH_SQL__COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    free(c);
}

/* Thread exit: drop the thread's connection from the list and close it. */
static void conn_destroy(void *p)
{
    struct conn *c = p;
    struct berth_db *db = c->owner;

    pthread_mutex_lock(&db->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        db->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&db->lock);
    conn_close(c);
}

/* Polls of the write lock before giving up: 10 of 1 ms, then 2 ms each,
 * about 5 s in all. */
#define BUSY_POLLS 2505

/*
 * Waiting for the write lock: poll every millisecond or two, for about 5 s.
 * SQLite's own busy timeout backs off to 100 ms sleeps, so a writer that has
 * waited a while keeps missing the short gaps between the transactions of a
 * long job (garbage collection commits batch after batch) and starves;
 * polling finely lets it in at the next gap.
 */
static int busy_wait(void *ctx, int n)
{
    (void)ctx;
    if (n >= BUSY_POLLS)
        return 0;
    sqlite3_sleep(n < 10 ? 1 : 2);
    return 1;
}

static int conn_open(struct conn **out, struct berth_db *db)
{
    const char *pragmas = db->no_fsync ? "PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON"
                                       : "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON";
    struct conn *c;
    int rc, error = 0;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    c->owner = db;
    rc = sqlite3_open_v2(db->path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error = sqlite_error(c->db, rc, "cannot open database");
        goto done;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, busy_wait, NULL);
    if ((rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL)) != SQLITE_OK)
        error = sqlite_error(c->db, rc, "cannot configure database");
done:
    if (error < 0)
        conn_close(c);
    else
        *out = c;
    return error;
}

static int conn_get(struct conn **out, struct berth_db *db)
{
    struct conn *c = pthread_getspecific(db->key);
    int error;

    if (c) {
        *out = c;
        return 0;
    }
    if ((error = conn_open(&c, db)) < 0)
        return error;
    if (pthread_setspecific(db->key, c) != 0) {
        conn_close(c);
        return berth_error_set(BERTH_ERROR, "cannot attach a database connection to the thread");
    }
    pthread_mutex_lock(&db->lock);
    c->next = db->conns;
    if (db->conns)
        db->conns->prev = c;
    db->conns = c;
    pthread_mutex_unlock(&db->lock);
    *out = c;
    return 0;
}

int berth_db_stmt(sqlite3_stmt **out, struct berth_db *db, enum berth_db_sql id)
{
    struct conn *c;
    int rc, error;

    if ((error = conn_get(&c, db)) < 0)
        return error;
    if (!c->stmt[id]) {
        rc = sqlite3_prepare_v3(c->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                                NULL);
        if (rc != SQLITE_OK)
            return sqlite_error(c->db, rc, "cannot prepare statement");
    }
    if (stamped[id]) {
        int i = sqlite3_bind_parameter_index(c->stmt[id], ":now");

        if ((rc = sqlite3_bind_int64(c->stmt[id], i, (sqlite3_int64)time(NULL))) != SQLITE_OK)
            return sqlite_error(c->db, rc, "cannot bind parameter");
    }
    *out = c->stmt[id];
    return 0;
}

int berth_db_query(sqlite3_stmt **out, struct berth_db *db, const char *sqltext)
{
    struct conn *c;
    int rc, error;

    *out = NULL;
    if ((error = conn_get(&c, db)) < 0)
        return error;
    if ((rc = sqlite3_prepare_v2(c->db, sqltext, -1, out, NULL)) != SQLITE_OK)
        return sqlite_error(c->db, rc, "cannot prepare statement");
    return 0;
}

int berth_db_step(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return berth_db_fail(s, rc, "database error");
}

int berth_db_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    int rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);

    return rc == SQLITE_OK ? 0 : berth_db_fail(s, rc, "cannot bind parameter");
}

int berth_db_bind_int(sqlite3_stmt *s, int i, int64_t v)
{
    int rc = sqlite3_bind_int64(s, i, v);

    return rc == SQLITE_OK ? 0 : berth_db_fail(s, rc, "cannot bind parameter");
}

static int run(struct berth_db *db, enum berth_db_sql id)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_stmt(&s, db, id)) < 0)
        return error;
    error = berth_db_step(s);
    sqlite3_reset(s);
    return error < 0 ? error : 0;
}

int berth_db_begin(struct berth_db *db)
{
    return run(db, BERTH_SQL_BEGIN);
}

int berth_db_commit(struct berth_db *db)
{
    if (berth_fault_check("db_commit") < 0)
        return berth_error_errno("cannot commit transaction");
    return run(db, BERTH_SQL_COMMIT);
}

void berth_db_rollback(struct berth_db *db)
{
    struct conn *c = pthread_getspecific(db->key);
    sqlite3_stmt *s;

    /* A failed statement may have rolled back already (SQLITE_FULL, ...). */
    if (!c || sqlite3_get_autocommit(c->db))
        return;
    if (berth_db_stmt(&s, db, BERTH_SQL_ROLLBACK) < 0)
        return;
    sqlite3_step(s);
    sqlite3_reset(s);
}

/* Inside migrate()'s transaction. */
static int migrate_v2(struct conn *c)
{
    sqlite3_stmt *s = NULL;
    int rc, error;

    if ((rc = sqlite3_exec(c->db, schema_v2, NULL, NULL, NULL)) != SQLITE_OK)
        return sqlite_error(c->db, rc, "cannot upgrade schema to version 2");
    rc = sqlite3_prepare_v2(c->db, "UPDATE repo_blobs SET linked = ?1", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return sqlite_error(c->db, rc, "cannot upgrade schema to version 2");
    if ((error = berth_db_bind_int(s, 1, (int64_t)time(NULL))) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

/*
 * A new database (no file at db->path): made complete under a temporary
 * name of this process, then linked into place, so that a crash leaves
 * either no database (the next start makes it again) or a complete one, and
 * two processes starting on a new root at once (serve, gc) end up with the
 * same file (link(2) never replaces: the loser drops its copy; rename is
 * only the fallback for file systems without hard links). Built without a
 * journal and with synchronous=OFF (nothing to roll back to or recover: a
 * failure removes the file) in one transaction (schema, version), then
 * switched to WAL (a header change), closed and fsync'd once: 1 fsync
 * instead of SQLite's 8 for the same steps, and every page written once.
 * The directory entry is made durable by store.c's fsync of the root. The
 * normal path below then finds the current version and has nothing to do.
 */
static int create_fresh(struct berth_db *db)
{
    char tmp[4096];
    struct conn c = { 0 };
    char set[64];
    int rc, fd, error = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%ld", db->path, (long)getpid()) >=
        sizeof(tmp))
        return berth_error_set(BERTH_EINVALID, "database path too long");
    unlink(tmp); /* a previous process of the same pid that crashed here */
    rc = sqlite3_open_v2(tmp, &c.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                         SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error = sqlite_error(c.db, rc, "cannot create database");
        goto done;
    }
    sqlite3_extended_result_codes(c.db, 1);
    snprintf(set, sizeof(set), "PRAGMA user_version = %d", BERTH_DB_SCHEMA_VERSION);
    if ((rc = sqlite3_exec(c.db, "PRAGMA synchronous = OFF; PRAGMA journal_mode = OFF; "
                                 "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK ||
        (rc = sqlite3_exec(c.db, schema_v1, NULL, NULL, NULL)) != SQLITE_OK) {
        error = sqlite_error(c.db, rc, "cannot create schema");
        goto done;
    }
    if ((error = migrate_v2(&c)) < 0)
        goto done;
    if ((rc = sqlite3_exec(c.db, set, NULL, NULL, NULL)) != SQLITE_OK ||
        (rc = sqlite3_exec(c.db, "COMMIT; PRAGMA journal_mode = WAL", NULL, NULL, NULL)) !=
            SQLITE_OK) {
        error = sqlite_error(c.db, rc, "cannot create schema");
        goto done;
    }
    rc = sqlite3_close(c.db);
    c.db = NULL;
    if (rc != SQLITE_OK) {
        error = berth_error_set(BERTH_ERROR, "cannot close new database: %s",
                                sqlite3_errstr(rc));
        goto done;
    }
    if (!db->no_fsync) {
        if ((fd = open(tmp, O_RDWR | O_CLOEXEC)) < 0 || fsync(fd) < 0)
            error = berth_error_errno("cannot fsync '%s'", tmp);
        if (fd >= 0)
            close(fd);
        if (error < 0)
            goto done;
    }
    /* EEXIST: another process made it meanwhile; theirs is used, ours dropped */
    if (link(tmp, db->path) < 0 && errno != EEXIST && rename(tmp, db->path) < 0)
        error = berth_error_errno("cannot link '%s' to '%s'", tmp, db->path);
done:
    sqlite3_close(c.db);
    unlink(tmp);
    return error;
}

/*
 * Process-wide SQLite settings, before its first use. No page-cache bulk:
 * by default every connection mallocs and touches 20 pages (~86 KiB) of
 * cache up front — page faults at start and idle RSS for each thread's
 * connection whether or not it ever reads that much; pages are then
 * allocated as they are needed instead. Fails harmlessly (SQLITE_MISUSE)
 * when SQLite was initialized already (a test opening a second store).
 */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

static int migrate(struct berth_db *db)
{
    struct conn *c;
    sqlite3_stmt *s = NULL;
    int rc, version, error;

    if ((error = conn_get(&c, db)) < 0)
        return error;
    /* WAL is a property of the file: set once, every connection then uses it. */
    if ((rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL)) != SQLITE_OK)
        return sqlite_error(c->db, rc, "cannot enable WAL");
    if ((error = berth_db_begin(db)) < 0)
        return error;
    if ((rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL)) != SQLITE_OK) {
        error = sqlite_error(c->db, rc, "cannot read schema version");
        goto done;
    }
    if ((error = berth_db_step(s)) < 0)
        goto done;
    version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    error = 0;

    if (version > BERTH_DB_SCHEMA_VERSION) {
        error = berth_error_set(BERTH_EUNSUPPORTED,
                                "database schema version %d is newer than this berth (%d)",
                                version, BERTH_DB_SCHEMA_VERSION);
        goto done;
    }
    if (version < 1) {
        if ((rc = sqlite3_exec(c->db, schema_v1, NULL, NULL, NULL)) != SQLITE_OK) {
            error = sqlite_error(c->db, rc, "cannot create schema");
            goto done;
        }
    }
    if (version < 2 && (error = migrate_v2(c)) < 0)
        goto done;
    /* Later versions: `if (version < 3) { ALTER ... }`, then bump user_version. */
    if (version < BERTH_DB_SCHEMA_VERSION) {
        char set[64];

        snprintf(set, sizeof(set), "PRAGMA user_version = %d", BERTH_DB_SCHEMA_VERSION);
        if ((rc = sqlite3_exec(c->db, set, NULL, NULL, NULL)) != SQLITE_OK) {
            error = sqlite_error(c->db, rc, "cannot set schema version");
            goto done;
        }
    }
    error = berth_db_commit(db);
done:
    sqlite3_finalize(s);
    if (error < 0)
        berth_db_rollback(db);
    return error;
}

int berth_db_open(struct berth_db **out, const char *path, int no_fsync)
{
    struct berth_db *db;
    int error;

    static pthread_once_t once = PTHREAD_ONCE_INIT;

    *out = NULL;
    pthread_once(&once, sqlite_setup);
    if ((db = calloc(1, sizeof(*db))) == NULL || (db->path = strdup(path)) == NULL) {
        free(db);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    db->no_fsync = no_fsync;
    pthread_mutex_init(&db->lock, NULL);
    if (pthread_key_create(&db->key, conn_destroy) != 0) {
        pthread_mutex_destroy(&db->lock);
        free(db->path);
        free(db);
        return berth_error_set(BERTH_ERROR, "cannot create a thread key");
    }
    if (((access(path, F_OK) < 0 && errno == ENOENT) && (error = create_fresh(db)) < 0) ||
        (error = migrate(db)) < 0) {
        berth_db_free(db);
        return error;
    }
    *out = db;
    return 0;
}

void berth_db_free(struct berth_db *db)
{
    struct conn *c, *next;

    if (!db)
        return;
    /* Deleting the key first: no destructor can race with the walk below. */
    pthread_key_delete(db->key);
    for (c = db->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    pthread_mutex_destroy(&db->lock);
    free(db->path);
    free(db);
}

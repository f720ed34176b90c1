/*
 * Metadata database (internal to src/store): the SQLite schema, every SQL
 * statement the store runs, and per-thread connections. Each thread gets
 * its own connection (waits up to about 5 s for the write lock, polling
 * every 1-2 ms; WAL, synchronous=FULL) with its
 * statements prepared once and cached, so a hot-path lookup is one step of
 * an already prepared statement. The request path's SQL lives in db.c;
 * maintenance modules (gc.c, retention.c, usage.c, fsck.c) keep their
 * cold-path SQL next to their logic and prepare it per call with
 * berth_db_query. All of it is plain SQL that also runs on PostgreSQL (ON
 * CONFLICT upserts, no rowid tricks).
 */
#ifndef BERTH_STORE_DB_H
#define BERTH_STORE_DB_H

#include <stdint.h>

#include <sqlite3.h>

#define BERTH_DB_SCHEMA_VERSION 2

/* Statement ids: the SQL for each is in db.c (same order). */
enum berth_db_sql {
    BERTH_SQL_BEGIN,
    BERTH_SQL_COMMIT,
    BERTH_SQL_ROLLBACK,
    BERTH_SQL_REPO_ID,
    BERTH_SQL_REPO_INSERT,
    BERTH_SQL_BLOB_STAT,
    BERTH_SQL_BLOB_INSERT,
    BERTH_SQL_REPO_BLOB_HAS,
    BERTH_SQL_REPO_BLOB_LINK,
    BERTH_SQL_REPO_BLOB_UNLINK,
    BERTH_SQL_MANIFEST_HAS,
    BERTH_SQL_MANIFEST_BY_DIGEST,
    BERTH_SQL_MANIFEST_BY_DIGEST_HEAD,
    BERTH_SQL_MANIFEST_BY_TAG,
    BERTH_SQL_MANIFEST_BY_TAG_HEAD,
    BERTH_SQL_MANIFEST_BODY,
    BERTH_SQL_MANIFEST_INSERT,
    BERTH_SQL_MANIFEST_DELETE,
    BERTH_SQL_REF_INSERT,
    BERTH_SQL_REFS_DELETE,
    BERTH_SQL_TAG_UPSERT,
    BERTH_SQL_TAG_DELETE,
    BERTH_SQL_TAG_HAS,
    BERTH_SQL_TAGS_TOUCH,
    BERTH_SQL_TAGS_DELETE_DIGEST,
    BERTH_SQL_TAGS_LIST,
    BERTH_SQL_CATALOG,
    BERTH_SQL_REFERRERS,
    BERTH_SQL_UPLOAD_INSERT,
    BERTH_SQL_UPLOAD_GET,
    BERTH_SQL_UPLOAD_UPDATE,
    BERTH_SQL_UPLOAD_DELETE,
    BERTH_SQL_UPLOAD_STALE,
    BERTH_SQL_UPLOAD_EXISTS,
    BERTH_SQL__COUNT
};

struct berth_db;

/* Open (creating and migrating) the database file at `path`. no_fsync sets
 * synchronous=OFF (tests only). */
int berth_db_open(struct berth_db **out, const char *path, int no_fsync);
/* Close every thread's connection. Only once no other thread uses db. */
void berth_db_free(struct berth_db *db);

/* The calling thread's cached, reset statement `id` (opening the thread's
 * connection on first use). After use the caller must sqlite3_reset() it:
 * a SELECT left un-reset pins a read snapshot. A statement with a `:now`
 * parameter (the repo_blobs link stamp) comes with the current time bound. */
int berth_db_stmt(sqlite3_stmt **out, struct berth_db *db, enum berth_db_sql id);
/* Prepare `sqltext` on the calling thread's connection (not cached: the
 * caller sqlite3_finalize()s *out; NULL on failure). For cold paths. */
int berth_db_query(sqlite3_stmt **out, struct berth_db *db, const char *sqltext);
/* sqlite3_step: 1 for a row, 0 when done, or a negative BERTH_E* error
 * (set with sqlite3_errmsg; SQLITE_FULL → BERTH_ENOSPC). */
int berth_db_step(sqlite3_stmt *s);
/* Report a failed sqlite call `rc` on the connection of `s` as the thread error. */
int berth_db_fail(sqlite3_stmt *s, int rc, const char *what);

/* Write transactions: BEGIN IMMEDIATE (takes the write lock up front, so two
 * writers never deadlock upgrading read locks), COMMIT, ROLLBACK. rollback
 * keeps the thread's current error and is a no-op outside a transaction. */
int berth_db_begin(struct berth_db *db);
int berth_db_commit(struct berth_db *db);
void berth_db_rollback(struct berth_db *db);

/* Bind helpers: text is bound SQLITE_STATIC (must outlive the step); NULL
 * binds SQL NULL. Return 0 or an error. */
int berth_db_bind_text(sqlite3_stmt *s, int i, const char *v);
int berth_db_bind_int(sqlite3_stmt *s, int i, int64_t v);

#endif

/*
 * The store's internals shared by store.c (repositories, blobs, manifests,
 * listing) and upload.c (upload sessions). Not for use outside src/store.
 */
#ifndef BERTH_STORE_INT_H
#define BERTH_STORE_INT_H

#include <stdint.h>

#include "blob.h"
#include "db.h"
#include "store.h"

struct berth_upload_table; /* in-memory state of live sessions (upload.c) */

struct berth_store {
    char *root;
    char *uploads_dir; /* <root>/uploads */
    int no_fsync;
    struct berth_db *db;
    struct berth_blob_backend *blobs;
    struct berth_upload_table *uploads;
    /* Tag-set generation (berth_store_tags_gen, store.c): */
    uint64_t tags_gen;      /* this process's tag writes (used without tags_shared) */
    uint64_t *tags_shared;  /* <root>/tags.gen mapped shared: every process's writes */
    uint64_t tags_db;       /* counters 'tags' as last read from the database */
    int64_t tags_db_at;     /* when (monotonic ms); re-read at most once a second */
    berth_tag_guard_fn tag_guard; /* berth_store_set_tag_guard; NULL: none */
    void *tag_guard_ctx;
};

/* Tag-set generation (berth_store_tags_gen): every transaction that changes
 * tags calls berth_store_tags_touch inside it (the durable counter in the
 * database) and berth_store_tags_changed after it ends (the shared counter
 * every process maps, also on failure: a spurious bump only costs a cache
 * miss). */
int berth_store_tags_touch(struct berth_store *st);
void berth_store_tags_changed(struct berth_store *st);

/* Inside a write transaction about to remove tags of repository `repo_id`
 * (named `repo`): ask the tag guard about each tag pointing at `digest`, or
 * about every tag of the repository when digest is NULL. 0 or the guard's
 * error. */
int berth_store_guard_tags(struct berth_store *st, int64_t repo_id, const char *repo,
                           const char *digest);

/* A dry garbage collection's notes of what retention would remove (gc.c
 * reads the store as if these were gone; retention.c writes them): a TEMP
 * table, private to the connection of the thread running the collection. */
#define BERTH_GC_DRY_GONE_TABLE                                                               \
    "CREATE TEMP TABLE IF NOT EXISTS gc_dry_gone (repo_id INTEGER NOT NULL, name TEXT,"       \
    " digest TEXT)"

/* Run cached statement `q` taking (repo_id, text) that changes rows: 1 when
 * any changed, 0 none, or a negative error. */
int berth_store_change(struct berth_store *st, enum berth_db_sql q, int64_t repo_id,
                       const char *v);

/* Id of repository `repo`: 1 found, 0 absent, or a negative error. */
int berth_store_repo_id(struct berth_store *st, const char *repo, int64_t *id);
/* Id of `repo`, creating it; call inside a write transaction. */
int berth_store_repo_ensure(struct berth_store *st, const char *repo, int64_t *id);

int berth_upload_table_new(struct berth_upload_table **out);
void berth_upload_table_free(struct berth_upload_table *t);

#endif

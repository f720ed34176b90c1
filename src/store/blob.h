/*
 * Blob backends (internal to src/store): where verified blob bytes live.
 * A backend is a small table of function pointers, the way libgit2's object
 * database takes backends; the filesystem backend is the only one today and
 * an object-store backend can slot in later without touching the callers.
 * Invariant: a backend exposes a blob under its digest only once its bytes
 * are verified and durable; a stored blob is immutable.
 */
#ifndef BERTH_STORE_BLOB_H
#define BERTH_STORE_BLOB_H

#include <stdint.h>

#include "../core/digest.h"

typedef int (*berth_blob_walk_cb)(void *ctx, const struct berth_digest *d, uint64_t size);

struct berth_blob_backend {
    /* Size of a stored blob. BERTH_ENOTFOUND (BLOB_UNKNOWN) when absent. */
    int (*stat)(struct berth_blob_backend *b, const struct berth_digest *d, uint64_t *size);
    /* Open for reading; *fd belongs to the caller. BERTH_ENOTFOUND when absent. */
    int (*open)(struct berth_blob_backend *b, const struct berth_digest *d, int *fd,
                uint64_t *size);
    /* Store a finished, verified and (unless no_fsync) fsync'd upload file of
     * `size` bytes at `path` (open as `fd`) under `d`. When the blob is
     * already present this is a success and the upload file is left alone;
     * the caller removes the upload file afterwards in every case. */
    int (*commit)(struct berth_blob_backend *b, const struct berth_digest *d, const char *path,
                  int fd, uint64_t size);
    /* Remove a stored blob. BERTH_ENOTFOUND when absent. */
    int (*remove)(struct berth_blob_backend *b, const struct berth_digest *d);
    /* Call cb for every stored blob; a negative return stops and is returned. */
    int (*walk)(struct berth_blob_backend *b, berth_blob_walk_cb cb, void *ctx);
    void (*free)(struct berth_blob_backend *b);
};

/* The filesystem backend: blobs/<algo>/<first 2 hex>/<hex> under `dir`
 * (created if missing). no_fsync skips directory fsyncs (tests only). */
int berth_blob_fs_new(struct berth_blob_backend **out, const char *dir, int no_fsync);

#endif

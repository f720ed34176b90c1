/*
 * The registry's storage: content-addressed blob files shared by every
 * repository, plus metadata in SQLite (WAL): repositories, repository↔blob
 * links, manifests (their exact bytes), tags, manifest edges, referrers and
 * upload sessions. Everything the HTTP handlers persist goes through here.
 *
 * Invariants:
 *  - a blob file appears under blobs/<algo>/<xx>/<hex> only after its digest
 *    was verified and its data fsync'd (write to uploads/<id>, fsync, link or
 *    rename into place, fsync the directory); it is immutable after that;
 *  - a repository serves a blob only when linked to it (pushed or mounted);
 *  - every metadata change is one SQLite transaction: a crash leaves the
 *    state before or after it, never between.
 *
 * Thread safety: one struct berth_store is shared by all server threads;
 * each thread lazily gets its own SQLite connection and prepared statements.
 * An upload session is written by one request at a time (a second writer
 * gets BERTH_EDENIED / BLOB_UPLOAD_INVALID).
 */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/digest.h"
#include "../core/manifest.h"

struct berth_store;

struct berth_store_config {
    const char *root;        /* directory; created if missing */
    int no_fsync;            /* tests only: skip fsync */
};

int berth_store_open(struct berth_store **out, const struct berth_store_config *cfg);
/* Closes every thread's database connection. Call after all threads using the
 * store stopped. NULL does nothing. */
void berth_store_free(struct berth_store *st);

/* 1 when the repository exists (has ever had a blob, manifest or upload). */
int berth_store_repo_exists(struct berth_store *st, const char *repo);

/* ---- blobs ---- */

/* Size of a blob linked to `repo`. BERTH_ENOTFOUND (BERTH_OCI_BLOB_UNKNOWN)
 * when the repository has no link to it or the file is gone. */
int berth_store_blob_stat(struct berth_store *st, const char *repo, const struct berth_digest *d,
                          uint64_t *size);
/* Open a linked blob for reading (for sendfile). *fd belongs to the caller. */
int berth_store_blob_open(struct berth_store *st, const char *repo, const struct berth_digest *d,
                          int *fd, uint64_t *size);
/* Link a blob that `from` has into `repo` (cross-repository mount).
 * BERTH_ENOTFOUND when `from` has no such blob. */
int berth_store_blob_mount(struct berth_store *st, const char *repo, const char *from,
                           const struct berth_digest *d);
/* Remove the link of `repo` to the blob (the file stays for other
 * repositories; garbage collection frees unreferenced files).
 * BERTH_ENOTFOUND (BLOB_UNKNOWN) when not linked. */
int berth_store_blob_unlink(struct berth_store *st, const char *repo, const struct berth_digest *d);

/* ---- upload sessions (survive restarts: state in SQLite + uploads/<id>) ---- */

#define BERTH_UPLOAD_ID_MAX 40 /* 36-char UUID + NUL, rounded */

/* Create a session in `repo` (creating the repository); writes a fresh random
 * UUID into id. */
int berth_upload_new(struct berth_store *st, const char *repo, char id[BERTH_UPLOAD_ID_MAX]);
/* Bytes received so far. BERTH_ENOTFOUND (BLOB_UPLOAD_UNKNOWN) when no such
 * session in that repository. */
int berth_upload_offset(struct berth_store *st, const char *repo, const char *id,
                        uint64_t *offset);

struct berth_upload; /* an open, exclusively held session */

/* Take the session for writing. `expect_start` is the offset the chunk
 * claims to start at (Content-Range), or -1 to append wherever it is.
 * BERTH_ENOTFOUND (BLOB_UPLOAD_UNKNOWN); BERTH_ERANGE (BLOB_UPLOAD_INVALID,
 * answered 416) when expect_start != current offset; BERTH_EDENIED
 * (BLOB_UPLOAD_INVALID) when another request holds the session. */
int berth_upload_open(struct berth_upload **out, struct berth_store *st, const char *repo,
                      const char *id, int64_t expect_start);
/* Append bytes (hashing them as they pass). BERTH_ENOSPC on a full disk. */
int berth_upload_write(struct berth_upload *u, const void *buf, size_t len);
/* Current size of the session's data. */
uint64_t berth_upload_size(const struct berth_upload *u);
/* Release the session. keep=1: the appended bytes stay (offset advances);
 * keep=0: roll back to the offset it had at open (a broken request never
 * leaves a partial chunk). Frees u; NULL does nothing. */
int berth_upload_close(struct berth_upload *u, int keep);
/* Finish: verify the data against `expect` (sha256 or sha512), fsync, move
 * the file into the blob store (or drop it if the blob already exists: the
 * same blob pushed by many clients at once is stored once and all succeed),
 * link the blob to the repository and end the session. On a digest mismatch
 * BERTH_EMISMATCH (DIGEST_INVALID) and the session is cancelled, nothing
 * stored. Frees u in every case. *size_out may be NULL. */
int berth_upload_commit(struct berth_upload *u, const struct berth_digest *expect,
                        uint64_t *size_out);
/* Cancel a session and delete its data. BERTH_ENOTFOUND when unknown. */
int berth_upload_cancel(struct berth_store *st, const char *repo, const char *id);
/* Remove sessions not touched for `max_age_sec` seconds; *removed may be NULL. */
int berth_upload_purge(struct berth_store *st, int64_t max_age_sec, int *removed);

/* ---- manifests and tags ---- */

/* Tags that must never be removed (immutable tags, maint.h): `guard` is
 * called inside the write transaction of every tag removal — a tag delete,
 * a manifest delete by digest (for each tag on it), a repository delete
 * (for each of its tags) — and a negative return (an error already set)
 * refuses the whole operation. Inside the transaction, so a tag pushed
 * concurrently is seen. Set once before the store is shared; NULL: none. */
typedef int (*berth_tag_guard_fn)(void *ctx, const char *repo, const char *tag);
void berth_store_set_tag_guard(struct berth_store *st, berth_tag_guard_fn guard, void *ctx);

struct berth_manifest_put {
    const char *repo;
    const char *tag;               /* tag reference, or NULL when pushed by digest */
    const char *const *extra_tags; /* ?tag= parameters (push by digest), may be NULL */
    size_t nextra_tags;
    const struct berth_manifest *m; /* parsed by berth_manifest_parse */
    const uint8_t *body;            /* exact bytes pushed */
    size_t len;
    const struct berth_digest *digest; /* digest of body */
    /* Called inside the write transaction for each tag that exists and
     * points at another digest (the put would move it): 0 allows the move,
     * a negative error (already set with berth_error_set*) refuses the whole
     * put. Inside the transaction, so no concurrent push can slip between
     * the check and the move (immutable tags). NULL: every move allowed. */
    int (*tag_guard)(void *ctx, const char *repo, const char *tag, const char *old_digest);
    void *guard_ctx;
};

/* Store a manifest: check that every config/layer blob is linked to the
 * repository (foreign layers excepted) → BERTH_ENOTFOUND with
 * BERTH_OCI_MANIFEST_BLOB_UNKNOWN naming the digest; that every index child
 * manifest is in the repository → BERTH_ENOTFOUND with
 * BERTH_OCI_MANIFEST_UNKNOWN. Then in one transaction: create the
 * repository, insert the manifest (idempotent), its edges and referrer row
 * (subject), and point the tag(s) at it. */
int berth_store_manifest_put(struct berth_store *st, const struct berth_manifest_put *req);

struct berth_manifest_info {
    struct berth_digest digest;
    char *media_type; /* malloc'd */
    uint8_t *body;    /* malloc'd; NULL when want_body was 0 */
    size_t len;
};
/* Look up by tag or by digest string ("sha256:..."): `ref` is a digest when
 * it contains ':'. BERTH_ENOTFOUND (MANIFEST_UNKNOWN). */
int berth_store_manifest_get(struct berth_store *st, const char *repo, const char *ref,
                             int want_body, struct berth_manifest_info *out);
void berth_manifest_info_dispose(struct berth_manifest_info *info);

/* Delete a manifest from a repository with every tag pointing to it, and its
 * referrer row. BERTH_ENOTFOUND (MANIFEST_UNKNOWN). */
int berth_store_manifest_delete(struct berth_store *st, const char *repo,
                                const struct berth_digest *d);
/* Delete one tag (the manifest stays). BERTH_ENOTFOUND (MANIFEST_UNKNOWN). */
int berth_store_tag_delete(struct berth_store *st, const char *repo, const char *tag);

/* ---- listing (indexed queries, byte-wise lexical order) ---- */

typedef int (*berth_str_cb)(void *ctx, const char *s);

/* Tag-set generation: changes with every committed tag write (put with a
 * tag, tag delete, manifest delete, retention, repository delete), in this
 * process or another one on the same store (`berth gc`): it is a counter in
 * the database. Read it before berth_store_tags(): a listing made after
 * reading generation g is current while the generation is still g, so
 * callers may cache it under g. */
uint64_t berth_store_tags_gen(struct berth_store *st);
/* Tags of `repo` after `last` (exclusive; NULL from the start), at most `n`
 * (n < 0: no limit). *more = 1 when more remain after the last one given.
 * BERTH_ENOTFOUND (NAME_UNKNOWN) for an unknown repository. A callback's
 * negative return stops the walk and is returned. */
int berth_store_tags(struct berth_store *st, const char *repo, const char *last, long n,
                     berth_str_cb cb, void *ctx, int *more);
/* Repositories that have at least one manifest, same paging rules. */
int berth_store_catalog(struct berth_store *st, const char *last, long n, berth_str_cb cb,
                        void *ctx, int *more);

struct berth_referrer {
    const char *media_type;
    const char *digest;        /* "sha256:..." */
    int64_t size;
    const char *artifact_type; /* may be NULL */
    const char *annotations;   /* compact JSON object, may be NULL */
};
typedef int (*berth_referrer_cb)(void *ctx, const struct berth_referrer *r);

/* Manifests in `repo` whose subject is `subject`, in digest order after
 * `last` (NULL: from the start), at most n (n < 0: all), optionally only
 * those whose artifactType equals `artifact_type`. An unknown subject or
 * repository gives none (not an error). */
int berth_store_referrers(struct berth_store *st, const char *repo,
                          const struct berth_digest *subject, const char *artifact_type,
                          const char *last, long n, berth_referrer_cb cb, void *ctx, int *more);

#endif

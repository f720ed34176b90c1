/*
 * The registry client: one struct berth_registry per registry host, speaking
 * the OCI distribution API over libcurl. It handles the transport rules
 * (HTTPS by default; plain HTTP only for local registries or ones named
 * insecure), authentication (Basic, and Docker's Bearer token flow: parse
 * WWW-Authenticate, fetch a token with GET+Basic or the OAuth2 POST form,
 * anonymous tokens, one token per scope reused across requests), retries
 * with backoff on 429/5xx and connection errors, and digest verification of
 * everything downloaded. Library code: never prints; errors via berth_error_*.
 *
 * Thread safety: one berth_registry may be used from several threads at
 * once (the copy engine moves several blobs in parallel): each thread gets
 * its own curl easy handle, connections are shared through a CURLSH, and the
 * token cache is guarded by a mutex.
 */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/digest.h"

struct berth_registry;

struct berth_registry_opts {
    int insecure;         /* allow plain HTTP (and skip TLS verification) for this registry */
    const char *ca_file;  /* extra CA bundle, or NULL */
    int max_retries;      /* default 4 (0 = default) */
    const char *username; /* explicit credentials (login); NULL: look up with berth_creds_get */
    const char *password;
};

/* Make a client for `registry` (as in berth_ref.registry). No network yet.
 * Insecure registries also come from berth's config file
 * ($BERTH_CONFIG, else ~/.config/berth/config.yml: `insecure-registries:`). */
int berth_registry_new(struct berth_registry **out, const char *registry,
                       const struct berth_registry_opts *opts);
void berth_registry_free(struct berth_registry *r);
const char *berth_registry_name(const struct berth_registry *r);

/* HTTP status of this thread's last completed registry request (0 when it
 * failed before a response), e.g. to tell a 405 "tag deletion unsupported"
 * from other errors. Added by the client engineer. */
long berth_registry_last_status(void);

/* GET /v2/ (with authentication if challenged). Errors: BERTH_EDENIED for
 * bad credentials (message from the registry), BERTH_ERROR for transport
 * failures with a message; when HTTPS fails and the registry is not local
 * the message explains the insecure-registry rule ("...is not served over
 * HTTPS; berth uses plain HTTP only for localhost and 127.0.0.0/8, or with
 * --insecure / insecure-registries"). */
int berth_registry_ping(struct berth_registry *r);

/* A fetched manifest. */
struct berth_blob_buf {
    uint8_t *data; /* malloc'd */
    size_t len;
    char media_type[256];
    struct berth_digest digest; /* verified against data */
};
void berth_blob_buf_dispose(struct berth_blob_buf *b);

/* Accept header: every manifest type berth knows (OCI manifest and index,
 * Docker schema2 and list). `ref` is a tag or "sha256:...". The digest is
 * verified when `ref` is a digest. BERTH_ENOTFOUND when absent. */
int berth_registry_manifest_get(struct berth_registry *r, const char *repo, const char *ref,
                                struct berth_blob_buf *out);
/* HEAD: digest, size and media type without the body. */
int berth_registry_manifest_head(struct berth_registry *r, const char *repo, const char *ref,
                                 struct berth_digest *digest, uint64_t *size, char *media_type,
                                 size_t mtlen);
int berth_registry_manifest_put(struct berth_registry *r, const char *repo, const char *ref,
                                const char *media_type, const uint8_t *body, size_t len,
                                struct berth_digest *out_digest);
/* DELETE a manifest by digest, or a tag (where the registry supports it). */
int berth_registry_manifest_delete(struct berth_registry *r, const char *repo, const char *ref);

/* DELETE /v2/_berth/repositories/<repo>: berth's whole-repository deletion
 * (needs the delete action on it). Errors as the others: BERTH_ENOTFOUND
 * with BERTH_OCI_NAME_UNKNOWN for an unknown repository; a registry without
 * the endpoint answers 405 or a 404 without NAME_UNKNOWN
 * (berth_registry_last_status tells). */
int berth_registry_repo_delete(struct berth_registry *r, const char *repo);

/* HEAD a blob: 1 present, 0 absent, negative error. */
int berth_registry_blob_exists(struct berth_registry *r, const char *repo,
                               const struct berth_digest *d, uint64_t *size);
/* Stream a blob into fd (from its current position), verifying the digest
 * and the size (when size_hint >= 0). Resumes with Range after a dropped
 * connection. progress(ctx, bytes_so_far) may be NULL. */
typedef void (*berth_progress_fn)(void *ctx, uint64_t done);
int berth_registry_blob_get(struct berth_registry *r, const char *repo,
                            const struct berth_digest *d, int64_t size_hint, int fd,
                            berth_progress_fn progress, void *ctx);
/* Fetch a small blob (a config) into memory, at most `max` bytes
 * (BERTH_ETOOBIG beyond), verifying its digest. *out is malloc'd (caller
 * frees), *len its length. Added by the client engineer for `inspect`. */
int berth_registry_blob_get_buf(struct berth_registry *r, const char *repo,
                                const struct berth_digest *d, size_t max, uint8_t **out,
                                size_t *len);
/* Upload `size` bytes read from fd at offset 0 (pread) as blob d: POST a
 * session, PATCH in chunks (default 64 MiB; on a dropped connection ask the
 * session's offset with GET and resume), PUT ?digest=. */
int berth_registry_blob_put(struct berth_registry *r, const char *repo,
                            const struct berth_digest *d, int fd, uint64_t size,
                            berth_progress_fn progress, void *ctx);
/* Upload a small in-memory blob (configs) in one POST ?digest=. */
int berth_registry_blob_put_buf(struct berth_registry *r, const char *repo,
                                const struct berth_digest *d, const uint8_t *data, size_t len);
/* Cross-repository mount: 1 mounted (201), 0 not mounted (the 202 session
 * the registry opened is cancelled), negative error. */
int berth_registry_blob_mount(struct berth_registry *r, const char *repo, const char *from,
                              const struct berth_digest *d);

/* Paged listings, following Link headers; the callback gets each name. */
typedef int (*berth_name_fn)(void *ctx, const char *name);
int berth_registry_tags(struct berth_registry *r, const char *repo, berth_name_fn fn, void *ctx);
int berth_registry_catalog(struct berth_registry *r, berth_name_fn fn, void *ctx);

#endif

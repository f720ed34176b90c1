/*
 * Internal to src/server: the route table and the path parser. A path's
 * shape is found by its rightmost anchor (`/blobs/uploads/`, `/blobs/`,
 * `/manifests/`, `/tags/list`, `/referrers/`) because <name> may itself
 * contain slashes; the name and the reference are validated here, so a
 * handler only ever sees a well-formed name and reference. berth's own
 * endpoints live under /v2/_berth/ (a repository name never starts with
 * '_', as /v2/_catalog relies on too). The parser,
 * berth_route_match, is a pure function (no sockets, no request):
 * router_dispatch is its thin adapter for http.c, and the unit tests and
 * fuzz/fuzz_route.c call it directly.
 */
#ifndef BERTH_SERVER_ROUTER_H
#define BERTH_SERVER_ROUTER_H

#include <stddef.h>

#include "core/digest.h"
#include "core/oci.h"

struct request;

typedef void (*handler_fn)(struct request *req);

enum shape { R_BASE, R_CATALOG, R_BLOB, R_UPLOADS, R_UPLOAD, R_MANIFEST, R_TAGS, R_REFERRERS,
             R_GC,    /* /v2/_berth/gc */
             R_REPO }; /* /v2/_berth/repositories/<name> */

/* The access a route needs (authn.h's enum berth_access, same order). */
enum access { NONE, PULL, PUSH, DEL, LIST, ADMIN };

struct route {
    const char *id;      /* the distribution-spec endpoint id: "end-2", ... */
    unsigned methods;    /* M_* bits */
    enum shape shape;
    const char *query;   /* row applies only when this query argument is present */
    handler_fn begin;    /* headers in, body not yet: set req->body_mode (and open the
                            upload) or answer early; NULL: the body is discarded */
    handler_fn handler;  /* whole request received: answer */
    enum access access;
};

/* Longest reference after an anchor the parser accepts, NUL included (a
 * sha512 digest string; tags are <= 128, upload ids < BERTH_UPLOAD_ID_MAX). */
#define BERTH_ROUTE_REF_MAX BERTH_DIGEST_STR_MAX

/* What berth_route_match found. On success `route` is the row and `status`
 * is 0; otherwise `route` is NULL and status/oci/msg say how to answer
 * (404 unknown path, 405 wrong method, 400 bad name/tag/digest, 404 unknown
 * upload id). `msg` is a literal or the thread's berth_error_msg(), valid
 * until the next berth_error_* call on this thread. */
struct berth_route_match {
    const struct route *route;
    unsigned status;
    enum berth_oci_code oci;
    const char *msg;
    enum shape shape;      /* the path's shape, when one was recognised */
    const char *name;      /* inside `path`: the repository name (NULL for base, catalog) */
    size_t name_len;
    const char *ref;       /* inside `path`: tag, digest or upload id after the anchor */
    size_t ref_len;
    int ref_is_digest;     /* `digest` holds the parsed reference */
    struct berth_digest digest;
};

/* Match `method` (one M_* bit from http.h) and `path` (`len` bytes, already
 * percent-decoded, without the query string) against the route table.
 * `has_arg(ctx, key)` says whether a query argument is present; it decides
 * between rows of the same shape (end-11/4b/4a, 8b/8a, 12b/12a); NULL means
 * no arguments. Returns 0 with out->route set, or -1 with the answer in
 * out->status/oci/msg. Never touches anything but *out and the thread error. */
int berth_route_match(unsigned method, const char *path, size_t len,
                      int (*has_arg)(void *ctx, const char *key), void *ctx,
                      struct berth_route_match *out);

/* Parse `url` (already percent-decoded by http.c) into req->name,
 * req->ref, req->digest and set req->route. On failure answers the request
 * (404 unknown path, 405 wrong method, 400 bad name/tag/digest, 404 unknown
 * upload id) and leaves req->route NULL. */
void router_dispatch(struct request *req, const char *url);

#endif

/*
 * Internal to src/server: the route table and the path parser. A path's
 * shape is found by its rightmost anchor (`/blobs/uploads/`, `/blobs/`,
 * `/manifests/`, `/tags/list`, `/referrers/`) because <name> may itself
 * contain slashes; the name and the reference are validated here, so a
 * handler only ever sees a well-formed name and reference.
 */
#ifndef BERTH_SERVER_ROUTER_H
#define BERTH_SERVER_ROUTER_H

struct request;

typedef void (*handler_fn)(struct request *req);

enum shape { R_BASE, R_CATALOG, R_BLOB, R_UPLOADS, R_UPLOAD, R_MANIFEST, R_TAGS, R_REFERRERS };

/* The access a route needs, for the authorization layer to come. */
enum access { NONE, PULL, PUSH, DEL, LIST };

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

/* Parse `url` (already percent-decoded by libmicrohttpd) into req->name,
 * req->ref, req->digest and set req->route. On failure answers the request
 * (404 unknown path, 405 wrong method, 400 bad name/tag/digest, 404 unknown
 * upload id) and leaves req->route NULL. */
void router_dispatch(struct request *req, const char *url);

#endif

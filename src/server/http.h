/*
 * Internal to src/server: the per-request state shared by http.c (berth's
 * own HTTP/1.1 server: epoll workers, parser, sender), router.c and the
 * handlers, and the response helpers. A handler never touches a socket: it
 * calls respond_*() (which builds the response and keeps it in the request)
 * and add_header(); http.c sends it once the handler returns. Every
 * response gets `Docker-Distribution-API-Version: registry/2.0`.
 */
#ifndef BERTH_SERVER_HTTP_H
#define BERTH_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "core/digest.h"
#include "core/name.h"
#include "core/oci.h"
#include "htpasswd.h"
#include "server.h"
#include "store/store.h"

struct conn;
struct response;
struct route;
struct http_loop;

/* Status codes the handlers answer with. */
enum {
    HTTP_CONTINUE = 100,
    HTTP_OK = 200,
    HTTP_CREATED = 201,
    HTTP_ACCEPTED = 202,
    HTTP_NO_CONTENT = 204,
    HTTP_PARTIAL_CONTENT = 206,
    HTTP_BAD_REQUEST = 400,
    HTTP_UNAUTHORIZED = 401,
    HTTP_FORBIDDEN = 403,
    HTTP_NOT_FOUND = 404,
    HTTP_METHOD_NOT_ALLOWED = 405,
    HTTP_CONFLICT = 409,
    HTTP_CONTENT_TOO_LARGE = 413,
    HTTP_URI_TOO_LONG = 414,
    HTTP_RANGE_NOT_SATISFIABLE = 416,
    HTTP_TOO_MANY_REQUESTS = 429,
    HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE = 431,
    HTTP_INTERNAL_SERVER_ERROR = 500,
    HTTP_NOT_IMPLEMENTED = 501,
    HTTP_SERVICE_UNAVAILABLE = 503,
    HTTP_VERSION_NOT_SUPPORTED = 505,
    HTTP_INSUFFICIENT_STORAGE = 507
};

/* Most request headers and query arguments one request may carry (more:
 * 431 / 400). */
#define REQ_HEADERS_MAX 100
#define REQ_ARGS_MAX 64

struct http_field {
    const char *name, *value; /* NUL-terminated, inside the connection's buffer */
};

struct berth_server {
    struct http_loop *loop;        /* http.c: listener and worker threads */
    struct berth_store *st;
    int delete_enabled;
    int access_log;
    size_t manifest_max;
    long inflight; /* requests between their first call and completion (atomic) */
    struct sockaddr_storage sa;
    struct tags_cache *tags_cache; /* h_tags.c: serialized full tag lists */
    struct berth_authn *authn;     /* borrowed from the config; NULL: no authentication */
    struct berth_tls *tls;         /* tls.c: HTTPS state; NULL: plain HTTP */
    int delays;                    /* hold back 401s for wrong passwords (authn enabled) */
    const struct berth_maint_config *maint; /* immutable tags, quotas; NULL: none */
    struct berth_gcrun *gcrun;     /* admin endpoint's collector; NULL: none */
};

/* HTTP methods as bits, so a route row can list several. */
enum {
    M_GET = 1 << 0,
    M_HEAD = 1 << 1,
    M_PUT = 1 << 2,
    M_POST = 1 << 3,
    M_PATCH = 1 << 4,
    M_DELETE = 1 << 5,
    M_OTHER = 1 << 6,
    M_READ = M_GET | M_HEAD
};

/* What happens to a request body. */
enum body_mode {
    BODY_NONE,     /* discarded */
    BODY_MANIFEST, /* buffered in req->body, capped at the manifest limit (413 beyond) */
    BODY_UPLOAD,   /* streamed into req->upload, opened by the route's begin step */
    BODY_FORM      /* /token's POST form: buffered in req->body, capped at 64 KiB */
};

/* Longest path reference: a sha512 digest string (tags are <= 128, upload
 * ids < BERTH_UPLOAD_ID_MAX). */
#define REF_MAX BERTH_DIGEST_STR_MAX

struct request {
    struct berth_server *srv;
    struct conn *conn;
    const struct route *route; /* NULL when the router answered */
    unsigned method;           /* M_* */

    /* From the path (router.c): repository name and the reference after the
     * anchor (tag, digest string or upload id); `digest` holds the parsed
     * path digest (blobs, referrers, manifests by digest), or for upload
     * routes the parsed ?digest= parameter. */
    char name[BERTH_NAME_MAX + 1];
    char ref[REF_MAX];
    int ref_is_digest;
    struct berth_digest digest;

    /* Body: an open upload session (BODY_UPLOAD) or a bounded buffer
     * (BODY_MANIFEST); set by the route's begin step. */
    enum body_mode body_mode;
    struct berth_upload *upload;
    int has_range;         /* Content-Range given on the upload chunk */
    uint64_t chunk_start;  /* session size when the chunk began */
    uint64_t range_len;    /* bytes the Content-Range announced */
    uint8_t *body;
    size_t body_len, body_cap;

    /* Parsed request head (http.c): header fields and decoded query
     * arguments, in arrival order. */
    struct http_field hdrs[REQ_HEADERS_MAX];
    struct http_field args[REQ_ARGS_MAX];
    unsigned nhdrs, nargs;

    /* Response, kept until http.c sends it. */
    struct response *resp;
    unsigned status;
    uint64_t resp_bytes;
    int queued;
    int failed; /* out of memory building a response: close the connection */

    /* Authentication (http.c's authorize): the caller for the access log and
     * the catalog filter ("" anonymous), and whether an end-11 mount may read
     * `from` (else it is answered as a plain upload start). */
    char user[BERTH_HTPASSWD_USER_MAX + 1];
    int mount_denied;
    /* A 401 for a wrong password is held back this long (the connection
     * waits on its worker's timer list, no thread sleeps); `delayed` once
     * that happened. */
    unsigned delay_ms;
    int delayed;

    /* Access log (filled only when it is enabled). */
    struct timespec t0;
    char method_str[12];
    char path[512]; /* for the access log: path and query */
};

/* ---- request accessors ---- */

/* Request header or query argument; NULL when absent. Valid for the request. */
const char *req_header(struct request *req, const char *name);
const char *req_arg(struct request *req, const char *name);
/* Call fn for every query argument in order (a repeated key once per value)
 * until it returns < 0, which is then returned; else 0. */
int req_args_each(struct request *req, int (*fn)(void *cls, const char *key, const char *value),
                  void *cls);

/* ---- responses (each replaces any response built before) ---- */

/* Empty body (Content-Length: 0). */
void respond_empty(struct request *req, unsigned status);
/* A body that stays valid forever (a literal). */
void respond_static(struct request *req, unsigned status, const char *body, size_t len,
                    const char *content_type);
/* A body shared with others: release(cls) is called once when the response
 * no longer needs it (also when creating the response fails). */
void respond_shared(struct request *req, unsigned status, const void *body, size_t len,
                    void (*release)(void *cls), void *cls, const char *content_type);
/* A malloc'd body: ownership passes to the response in every case. */
void respond_take(struct request *req, unsigned status, void *body, size_t len,
                  const char *content_type);
/* `len` bytes of `fd` from `offset`, sent with sendfile; fd is closed by the
 * response in every case. */
void respond_fd(struct request *req, unsigned status, int fd, uint64_t offset, uint64_t len);
/* HEAD: Content-Length says `len`, no body is ever produced. */
void respond_head(struct request *req, unsigned status, uint64_t len);
/* The spec's JSON error body with an explicit status; msg NULL → default. */
void respond_error(struct request *req, unsigned status, enum berth_oci_code oci,
                   const char *msg);
/* Same with the code's default status (oci.c's table). */
void respond_oci(struct request *req, enum berth_oci_code oci, const char *msg);
/* Answer a failed store/core call from the thread's error: its OCI code when
 * set, else derived from `err`, with `fallback` for BERTH_ENOTFOUND and
 * BERTH_EINVALID. Status overrides: BERTH_ERANGE → 416, BERTH_ETOOBIG → 413,
 * BERTH_ENOSPC → 507. Call before anything else touches the thread error. */
void respond_berr(struct request *req, int err, enum berth_oci_code fallback);
/* Add a header to the response built so far (no-op when there is none). */
void add_header(struct request *req, const char *name, const char *value);

/* ---- a growing string buffer for JSON bodies ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

void sbuf_put(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
/* s as a JSON string literal, quotes included. */
void sbuf_json_str(struct sbuf *b, const char *s);
void sbuf_u64(struct sbuf *b, uint64_t v);
/* s percent-encoded for a query value (unreserved characters and '/' kept). */
void sbuf_query_value(struct sbuf *b, const char *s);
/* Hand the buffer to a 200 response (or answer 500 on out of memory). */
void sbuf_respond(struct sbuf *b, struct request *req, const char *content_type);
void sbuf_dispose(struct sbuf *b);

#endif

/*
 * The libmicrohttpd adapter of `berth serve`: starts and stops the daemon,
 * keeps one struct request per HTTP request (MHD's con_cls), streams request
 * bodies (upload chunks go straight to the upload file, manifests into a
 * capped buffer), queues the response a handler built, and writes the access
 * log line when MHD reports the request complete. Invariant: an upload
 * session opened by a request is always released — kept on success, rolled
 * back (keep=0) when the request fails or the connection breaks mid-body.
 */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "authn.h"
#include "core/error.h"
#include "handlers.h"
#include "log.h"
#include "router.h"
#include "tls.h"

#define API_VERSION_HEADER "Docker-Distribution-API-Version"
#define API_VERSION "registry/2.0"
/* libmicrohttpd 0.9.75 zero-fills a connection's whole pool after every
 * request and so keeps it resident: 1 MiB cost ~20% of a manifest GET's CPU
 * and 1 GiB for 1,000 idle connections (bench/results/2026-11-27.md).
 * 128 KiB still reads upload bodies in large pieces. */
#define CONN_MEMORY_LIMIT (128 * 1024)
#define CONN_TIMEOUT_SEC 300
/* An early error on a POST/PUT whose body is larger than this closes the
 * connection instead of reading the body just to drop it. */
#define DISCARD_MAX (64 * 1024)
/* Hard caps on what a request line and headers may hold (the connection's
 * memory limit is large for upload chunks, not for headers). */
#define URL_MAX (8 * 1024)
#define HEADERS_MAX (64 * 1024)

/* ---- request accessors ---- */

const char *req_header(struct request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *req_arg(struct request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ---- responses ---- */

static void set_response(struct request *req, unsigned status, struct MHD_Response *r,
                         uint64_t bytes)
{
    if (req->resp)
        MHD_destroy_response(req->resp);
    req->resp = r;
    req->status = status;
    req->resp_bytes = bytes;
    if (!r) {
        req->failed = 1;
        return;
    }
    MHD_add_response_header(r, API_VERSION_HEADER, API_VERSION);
}

void add_header(struct request *req, const char *name, const char *value)
{
    if (req->resp && MHD_add_response_header(req->resp, name, value) != MHD_YES)
        req->failed = 1;
}

void respond_empty(struct request *req, unsigned status)
{
    set_response(req, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT),
                 0);
}

void respond_static(struct request *req, unsigned status, const char *body, size_t len,
                    const char *content_type)
{
    set_response(req, status,
                 MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT), len);
    if (content_type)
        add_header(req, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

void respond_take(struct request *req, unsigned status, void *body, size_t len,
                  const char *content_type)
{
    struct MHD_Response *r;

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(body);
    set_response(req, status, r, len);
    if (content_type)
        add_header(req, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

void respond_shared(struct request *req, unsigned status, const void *body, size_t len,
                    void (*release)(void *cls), void *cls, const char *content_type)
{
    struct MHD_Response *r;

    r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)body, release, cls);
    if (!r)
        release(cls);
    set_response(req, status, r, len);
    if (content_type)
        add_header(req, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

void respond_fd(struct request *req, unsigned status, int fd, uint64_t offset, uint64_t len)
{
    struct MHD_Response *r;

    r = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    if (!r)
        close(fd);
    set_response(req, status, r, len);
}

/* Never called: MHD sends no body for HEAD. Should it be, fail the
 * connection rather than send something wrong. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

void respond_head(struct request *req, unsigned status, uint64_t len)
{
    set_response(req, status, MHD_create_response_from_callback(len, 4096, no_body, NULL, NULL),
                 0);
}

void respond_error(struct request *req, unsigned status, enum berth_oci_code oci,
                   const char *msg)
{
    char *json = NULL;
    size_t len = 0;

    if (msg && !*msg)
        msg = NULL;
    if (berth_oci_error_json(&json, &len, oci, msg, NULL) < 0) {
        respond_empty(req, status);
        return;
    }
    respond_take(req, status, json, len, "application/json");
}

void respond_oci(struct request *req, enum berth_oci_code oci, const char *msg)
{
    respond_error(req, (unsigned)berth_oci_status(oci), oci, msg);
}

void respond_berr(struct request *req, int err, enum berth_oci_code fallback)
{
    enum berth_oci_code oci = berth_error_oci();
    const char *msg = berth_error_msg();
    unsigned status;

    if (msg && !*msg)
        msg = NULL;
    if (oci == BERTH_OCI_NONE) {
        switch (err) {
        case BERTH_ENOTFOUND:
        case BERTH_EINVALID:
            oci = fallback;
            break;
        case BERTH_EMISMATCH:
            oci = BERTH_OCI_DIGEST_INVALID;
            break;
        case BERTH_ETOOBIG:
            oci = BERTH_OCI_SIZE_INVALID;
            break;
        case BERTH_ERANGE:
            oci = BERTH_OCI_BLOB_UPLOAD_INVALID;
            break;
        case BERTH_EDENIED:
            oci = BERTH_OCI_DENIED;
            break;
        case BERTH_ENOSPC:
            oci = BERTH_OCI_UNAVAILABLE;
            break;
        case BERTH_EUNSUPPORTED:
            oci = BERTH_OCI_UNSUPPORTED;
            break;
        default:
            oci = BERTH_OCI_INTERNAL;
            break;
        }
    }
    switch (err) {
    case BERTH_ERANGE:
        status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
        break;
    case BERTH_ETOOBIG:
        status = MHD_HTTP_CONTENT_TOO_LARGE;
        break;
    case BERTH_ENOSPC:
        status = MHD_HTTP_INSUFFICIENT_STORAGE;
        break;
    default:
        status = (unsigned)berth_oci_status(oci);
        break;
    }
    if (status >= 500)
        berth_log_error("%s %s: %s", req->route ? req->route->id : "-", req->name,
                        msg ? msg : berth_error_str(err));
    respond_error(req, status, oci, msg);
}

/* ---- string buffer ---- */

static int sbuf_grow(struct sbuf *b, size_t extra)
{
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    if (!(p = realloc(b->p, cap))) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
    if (sbuf_grow(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_put(b, s, strlen(s));
}

/* Copies each run of bytes that need no escaping with one sbuf_put: a byte
 * at a time, sbuf_put and this loop were 42% of a 10,000-tag tags/list
 * (perf, 220 KB body); tags and names never need escaping, so a name is one
 * copy between its quotes. */
void sbuf_json_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *c = (const unsigned char *)s, *run;

    sbuf_put(b, "\"", 1);
    for (;;) {
        char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

        for (run = c; *c >= 0x20 && *c != '"' && *c != '\\'; c++)
            ;
        if (c > run)
            sbuf_put(b, (const char *)run, (size_t)(c - run));
        if (!*c)
            break;
        if (*c == '"' || *c == '\\') {
            esc[1] = (char)*c;
            sbuf_put(b, esc, 2);
        } else {
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 15];
            sbuf_put(b, esc, 6);
        }
        c++;
    }
    sbuf_put(b, "\"", 1);
}

void sbuf_u64(struct sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

    sbuf_put(b, tmp, (size_t)n);
}

void sbuf_query_value(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~' || *c == '/' || *c == ':') {
            sbuf_put(b, (const char *)c, 1);
        } else {
            char esc[3] = { '%', hex[*c >> 4], hex[*c & 15] };
            sbuf_put(b, esc, 3);
        }
    }
}

void sbuf_respond(struct sbuf *b, struct request *req, const char *content_type)
{
    if (b->oom || !b->p) {
        sbuf_dispose(b);
        respond_oci(req, BERTH_OCI_INTERNAL, "out of memory");
        return;
    }
    respond_take(req, MHD_HTTP_OK, b->p, b->len, content_type);
    b->p = NULL;
    b->len = b->cap = 0;
}

void sbuf_dispose(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- request lifecycle ---- */

static unsigned method_bit(const char *m)
{
    switch (m[0]) {
    case 'G':
        return strcmp(m, MHD_HTTP_METHOD_GET) ? M_OTHER : M_GET;
    case 'H':
        return strcmp(m, MHD_HTTP_METHOD_HEAD) ? M_OTHER : M_HEAD;
    case 'P':
        if (!strcmp(m, MHD_HTTP_METHOD_PUT))
            return M_PUT;
        if (!strcmp(m, MHD_HTTP_METHOD_POST))
            return M_POST;
        return strcmp(m, MHD_HTTP_METHOD_PATCH) ? M_OTHER : M_PATCH;
    case 'D':
        return strcmp(m, MHD_HTTP_METHOD_DELETE) ? M_OTHER : M_DELETE;
    default:
        return M_OTHER;
    }
}

static void request_free(struct request *req)
{
    if (!req)
        return;
    if (req->upload)
        berth_upload_close(req->upload, 0);
    if (req->resp)
        MHD_destroy_response(req->resp);
    free(req->body);
    free(req);
}

/* Parse a Content-Length value; -1 when absent or malformed. */
static int64_t content_length(struct request *req)
{
    const char *cl = req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t v = 0;

    if (!cl || !*cl)
        return -1;
    for (; *cl; cl++) {
        if (*cl < '0' || *cl > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*cl - '0');
    }
    return v;
}

/* When an early answer is ready before the body arrived: answer now (MHD
 * then closes the connection instead of reading the body) or read and drop
 * the body first and answer at the final call. A request without a body is
 * answered at the final call too, which keeps the connection alive. Small
 * bodies are drained so the client sees the answer rather than a reset; a
 * client waiting for `100 Continue` sent nothing yet and is answered at once. */
static int answer_now(struct request *req)
{
    const char *expect;
    int64_t cl = INT64_MAX;

    if (!req_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        cl = content_length(req);
        if (cl <= 0)
            return 0;
    }
    if (!(req->method & (M_POST | M_PUT)))
        return 0;
    expect = req_header(req, MHD_HTTP_HEADER_EXPECT);
    if (expect && !strcasecmp(expect, "100-continue"))
        return 1;
    return cl > DISCARD_MAX;
}

static void manifest_body(struct request *req, const char *data, size_t n)
{
    size_t max = req->srv->manifest_max;
    size_t cap;
    uint8_t *p;

    if (n > max - req->body_len) {
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                      "manifest too large");
        return;
    }
    if (req->body_len + n > req->body_cap) {
        cap = req->body_cap ? req->body_cap : 16384;
        while (cap < req->body_len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        if (!(p = realloc(req->body, cap))) {
            respond_oci(req, BERTH_OCI_INTERNAL, "out of memory");
            return;
        }
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
}

/* /token's POST form: capped like a query string (tokensrv.h). */
static void form_body(struct request *req, const char *data, size_t n)
{
    uint8_t *p;

    if (n > BERTH_TOKEN_FORM_MAX - req->body_len) {
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                      "token request form too large");
        return;
    }
    if (req->body_len + n > req->body_cap) {
        if (!(p = realloc(req->body, BERTH_TOKEN_FORM_MAX))) {
            respond_oci(req, BERTH_OCI_INTERNAL, "out of memory");
            return;
        }
        req->body = p;
        req->body_cap = BERTH_TOKEN_FORM_MAX;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
}

static void body_chunk(struct request *req, const char *data, size_t n)
{
    int err;

    switch (req->body_mode) {
    case BODY_UPLOAD:
        if (!req->upload)
            return;
        if ((err = berth_upload_write(req->upload, data, n)) < 0) {
            respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_INVALID);
            berth_upload_close(req->upload, 0);
            req->upload = NULL;
        }
        break;
    case BODY_MANIFEST:
        manifest_body(req, data, n);
        break;
    case BODY_FORM:
        form_body(req, data, n);
        break;
    case BODY_NONE:
        break;
    }
}

/* The client's IP address as text, "-" when unknown. */
static void client_addr(struct request *req, char *addr, size_t size)
{
    const union MHD_ConnectionInfo *ci;

    snprintf(addr, size, "-");
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
                      (socklen_t)size);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      addr, (socklen_t)size);
    }
}

/* ---- holding back answers (slowed failed logins) ----
 *
 * A 401 for a wrong password may be answered only after a delay. Rather than
 * sleeping in a worker, the connection is suspended (MHD_suspend_connection)
 * and one timer thread resumes it at its deadline; MHD then calls on_request
 * again, which queues the response already built. */

struct delay_entry {
    struct timespec due; /* CLOCK_MONOTONIC */
    struct MHD_Connection *conn;
};

struct delays {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; signalled on a new entry and on stop */
    pthread_t thread;
    int stopping, joined;
    struct delay_entry *v; /* unordered; a handful at most */
    size_t n, cap;
};

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Resumes due connections (all of them once stopping) outside the lock. */
static void *delays_run(void *arg)
{
    struct delays *d = arg;
    struct MHD_Connection *due[32];
    struct timespec now, next;
    size_t k, i;

    pthread_mutex_lock(&d->lock);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        k = 0;
        for (i = 0; i < d->n && k < sizeof(due) / sizeof(due[0]);) {
            if (d->stopping || !ts_before(&now, &d->v[i].due)) {
                due[k++] = d->v[i].conn;
                d->v[i] = d->v[--d->n];
            } else {
                i++;
            }
        }
        if (k) {
            pthread_mutex_unlock(&d->lock);
            for (i = 0; i < k; i++)
                MHD_resume_connection(due[i]);
            pthread_mutex_lock(&d->lock);
            continue;
        }
        if (d->stopping)
            break;
        if (!d->n) {
            pthread_cond_wait(&d->cond, &d->lock);
            continue;
        }
        next = d->v[0].due;
        for (i = 1; i < d->n; i++)
            if (ts_before(&d->v[i].due, &next))
                next = d->v[i].due;
        pthread_cond_timedwait(&d->cond, &d->lock, &next);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static struct delays *delays_new(void)
{
    struct delays *d = calloc(1, sizeof(*d));
    pthread_condattr_t ca;

    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, delays_run, d) != 0) {
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

/* Suspend `conn` and have it resumed in `ms`. Called from the access handler;
 * 0 when suspended, -1 when it was not (stopping, no memory): answer now.
 * Suspending under our lock means the timer never resumes a connection that
 * is not suspended yet (it calls MHD only outside the lock). */
static int delays_hold(struct delays *d, struct MHD_Connection *conn, unsigned ms)
{
    struct delay_entry *e;
    struct timespec due;
    int rc = -1;

    if (!d)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &due);
    due.tv_sec += ms / 1000;
    due.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    if (!d->stopping && d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        if ((e = realloc(d->v, cap * sizeof(*e))) != NULL) {
            d->v = e;
            d->cap = cap;
        }
    }
    if (!d->stopping && d->n < d->cap) {
        MHD_suspend_connection(conn);
        d->v[d->n++] = (struct delay_entry){ due, conn };
        pthread_cond_signal(&d->cond);
        rc = 0;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* Resume everything still held and end the timer; later holds are refused.
 * Before MHD_stop_daemon, which refuses to stop with suspended connections. */
static void delays_stop(struct delays *d)
{
    if (!d || d->joined)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    d->joined = 1;
}

/* After MHD_stop_daemon: no worker can touch it any more. */
static void delays_free(struct delays *d)
{
    if (!d)
        return;
    delays_stop(d);
    free(d->v);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---- authentication ---- */

/* router.h's `enum access` and authn.h's `enum berth_access` list the same
 * needs in the same order, so a route's column converts by value. */
_Static_assert((int)NONE == (int)BERTH_ACCESS_NONE && (int)PULL == (int)BERTH_ACCESS_PULL &&
                   (int)PUSH == (int)BERTH_ACCESS_PUSH && (int)DEL == (int)BERTH_ACCESS_DELETE &&
                   (int)LIST == (int)BERTH_ACCESS_CATALOG &&
                   (int)ADMIN == (int)BERTH_ACCESS_ADMIN,
               "router.h enum access and authn.h enum berth_access differ");

/* After routing, before the route's begin step: uploads and manifests are
 * refused before any of their body is read. Answers 401 (with the challenge),
 * 403 or 429 itself; otherwise records the user and whether a mount may read
 * its `from`. Without an `auth` config nothing happens, as before, except
 * that admin routes (docs/gc.md) answer 403 to non-loopback clients. */
static void authorize(struct request *req)
{
    struct berth_authn *a = req->srv->authn;
    struct berth_authn_req ar = { 0 };
    struct berth_authn_result res;
    char addr[INET6_ADDRSTRLEN], num[16];

    if (!a || !berth_authn_enabled(a)) {
        /* without auth, anyone who reaches the port could start collections */
        if (req->route->access != ADMIN)
            return;
        client_addr(req, addr, sizeof(addr));
        if (!berth_addr_is_loopback(addr))
            respond_error(req, MHD_HTTP_FORBIDDEN, BERTH_OCI_DENIED,
                          "admin endpoints answer only to loopback clients when no auth is "
                          "configured");
        return;
    }
    client_addr(req, addr, sizeof(addr));
    ar.access = (enum berth_access)req->route->access;
    ar.repo = req->name[0] ? req->name : NULL;
    ar.from = req->route->handler == h_upload_mount ? req_arg(req, "from") : NULL;
    ar.authorization = req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    ar.addr = addr;
    ar.host = req_header(req, MHD_HTTP_HEADER_HOST);
    ar.tls = req->srv->tls != NULL; /* the default token realm's scheme */
    if (berth_authn_check(a, &ar, &res) < 0) {
        respond_oci(req, BERTH_OCI_INTERNAL, "authorization failed");
        return;
    }
    memcpy(req->user, res.user, sizeof(req->user));
    req->mount_denied = !res.mount_from_allowed;
    switch (res.status) {
    case BERTH_AUTHN_ALLOW:
        return;
    case BERTH_AUTHN_CHALLENGE:
        respond_error(req, MHD_HTTP_UNAUTHORIZED, res.code, res.message);
        add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, res.www_authenticate);
        /* held back at the final call (on_request), never while a body is
         * still to come: an answer given at once (answer_now) is not held */
        req->delay_ms = res.delay_ms;
        return;
    case BERTH_AUTHN_THROTTLE:
        respond_error(req, MHD_HTTP_TOO_MANY_REQUESTS, res.code, res.message);
        snprintf(num, sizeof(num), "%u", res.retry_after);
        add_header(req, MHD_HTTP_HEADER_RETRY_AFTER, num);
        return;
    default:
        respond_error(req, (unsigned)res.status, res.code, res.message);
        return;
    }
}

struct token_args {
    struct berth_token_params *p;
    int err;
};

/* MHD yields a repeated `scope` argument once per value, as the token spec
 * sends them. */
static enum MHD_Result token_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct token_args *t = cls;

    (void)kind;
    if ((t->err = berth_token_params_add(t->p, key, value ? value : "")) < 0)
        return MHD_NO;
    return MHD_YES;
}

#define TOKEN_BAD_REQUEST \
    "{\"error\":\"invalid_request\",\"error_description\":\"malformed token request\"}"

/* The built-in token server (docs/auth.md): GET with query arguments and
 * Basic credentials, or the OAuth2 form POST containerd uses. Neither the
 * Authorization header nor the form ever reaches a log line. */
static void h_token(struct request *req)
{
    struct berth_token_params p;
    struct berth_token_response r;
    struct token_args t;
    const char *ct;
    char addr[INET6_ADDRSTRLEN], num[16];
    int post = req->method == M_POST;

    berth_token_params_init(&p);
    t.p = &p;
    t.err = 0;
    if (post) {
        ct = req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
            (ct[33] && ct[33] != ';' && ct[33] != ' '))
            t.err = BERTH_EINVALID;
        else
            t.err = berth_token_params_parse_form(&p, (const char *)req->body, req->body_len);
    } else {
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, token_arg, &t);
    }
    if (t.err < 0) {
        berth_token_params_dispose(&p);
        respond_static(req, MHD_HTTP_BAD_REQUEST, TOKEN_BAD_REQUEST,
                       sizeof(TOKEN_BAD_REQUEST) - 1, "application/json");
        return;
    }
    client_addr(req, addr, sizeof(addr));
    if (berth_authn_token(req->srv->authn, &r, &p, post,
                          req_header(req, MHD_HTTP_HEADER_AUTHORIZATION), addr) < 0) {
        berth_token_params_dispose(&p);
        respond_oci(req, BERTH_OCI_INTERNAL, "token server failed");
        return;
    }
    berth_token_params_dispose(&p);
    respond_take(req, (unsigned)r.status, r.body, r.len, "application/json");
    r.body = NULL; /* the response owns it now */
    /* RFC 6749 5.1: token responses must not be cached. */
    add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r.www_authenticate[0])
        add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r.www_authenticate);
    if (r.status == MHD_HTTP_TOO_MANY_REQUESTS) {
        snprintf(num, sizeof(num), "%u", r.retry_after ? r.retry_after : 1);
        add_header(req, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    memcpy(req->user, r.user, sizeof(req->user));
    berth_token_response_dispose(&r);
}

/* /token is no registry API path: a row of its own outside router.c's table,
 * so the rest of the request lifecycle treats it like any route. */
static void token_open(struct request *req)
{
    if (req->method == M_POST)
        req->body_mode = BODY_FORM;
}

static const struct route token_route = { "token", M_GET | M_POST, R_BASE, NULL, token_open,
                                          h_token, NONE };

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    size_t *total = cls;

    (void)kind;
    (void)key;
    (void)value;
    *total += key_size + value_size + 4;
    return *total > HEADERS_MAX ? MHD_NO : MHD_YES;
}

/* 0, or -1 after answering 414/431. */
static int check_limits(struct request *req, const char *url)
{
    size_t total = 0;

    if (strlen(url) > URL_MAX) {
        respond_error(req, MHD_HTTP_URI_TOO_LONG, BERTH_OCI_NAME_INVALID, "request path too long");
        return -1;
    }
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, count_header, &total);
    if (total > HEADERS_MAX) {
        respond_error(req, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                      "request headers too large");
        return -1;
    }
    return 0;
}

/* mTLS (http.tls.clientcas): 401 for a client whose certificate is missing
 * or does not verify; checked on every request, before anything else. */
static int tls_refused(struct request *req)
{
    const char *why;

    if (berth_tls_client_ok(req->srv->tls, req->conn, &why))
        return 0;
    respond_error(req, MHD_HTTP_UNAUTHORIZED, BERTH_OCI_UNAUTHORIZED, why);
    return 1;
}

/* First call: headers only. Route, validate, let the route's begin step
 * open what the body needs; answer at once when that already failed. */
static int request_begin(struct request *req, const char *url)
{
    int64_t cl;

    if (req->srv->tls && tls_refused(req))
        return answer_now(req);
    if (check_limits(req, url) < 0)
        return answer_now(req);
    if (req->srv->authn && berth_authn_has_token_server(req->srv->authn) &&
        !strcmp(url, "/token")) {
        if (req->method & token_route.methods)
            req->route = &token_route;
        else
            respond_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, BERTH_OCI_UNSUPPORTED,
                          "method not allowed");
    } else {
        router_dispatch(req, url);
        if (!req->resp)
            authorize(req);
    }
    if (!req->resp && req->route->begin)
        req->route->begin(req);
    if (!req->resp && req->body_mode == BODY_FORM) {
        cl = content_length(req);
        if (cl > BERTH_TOKEN_FORM_MAX)
            respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                          "token request form too large");
    }
    if (!req->resp && req->body_mode == BODY_MANIFEST) {
        cl = content_length(req);
        if (cl > 0 && (uint64_t)cl > req->srv->manifest_max)
            respond_error(req, MHD_HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                          "manifest too large");
    }
    return req->resp && answer_now(req);
}

static enum MHD_Result queue(struct request *req)
{
    enum MHD_Result ret;

    req->queued = 1;
    if (!req->resp && !req->failed)
        respond_oci(req, BERTH_OCI_INTERNAL, "no response");
    if (req->failed || !req->resp)
        return MHD_NO;
    ret = MHD_queue_response(req->conn, req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return ret;
}

/* Append one query argument to the logged path ("?mount=...&from=..."), so
 * a mount is told apart from an upload in the access log. Registry API query
 * strings carry no secrets; the line is cut at the buffer's end. */
static enum MHD_Result log_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct request *req = cls;
    size_t n = strlen(req->path);

    (void)kind;
    if (n + 2 < sizeof(req->path))
        snprintf(req->path + n, sizeof(req->path) - n, "%c%s%s%s",
                 strchr(req->path, '?') ? '&' : '?', key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct berth_server *srv = cls;
    struct request *req = *con_cls;
    size_t n;

    (void)version;
    if (!req) {
        if (!(req = calloc(1, sizeof(*req))))
            return MHD_NO;
        req->srv = srv;
        req->conn = conn;
        req->method = method_bit(method);
        *con_cls = req;
        __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
        if (srv->access_log && berth_log_level >= BERTH_LOG_INFO) {
            clock_gettime(CLOCK_MONOTONIC, &req->t0);
            snprintf(req->method_str, sizeof(req->method_str), "%s", method);
            snprintf(req->path, sizeof(req->path), "%s", url);
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, log_query_arg, req);
        }
        berth_error_clear();
        if (request_begin(req, url))
            return queue(req);
        return MHD_YES;
    }
    if (*upload_data_size) {
        n = *upload_data_size;
        *upload_data_size = 0;
        if (!req->queued && !req->resp)
            body_chunk(req, upload_data, n);
        return MHD_YES;
    }
    if (req->queued)
        return MHD_YES;
    /* Final call, any body already read (or dropped): a wrong password's
     * 401 waits suspended; MHD calls again once the timer resumed us. */
    if (req->resp && req->delay_ms && !req->delayed) {
        req->delayed = 1;
        if (delays_hold(srv->delays, conn, req->delay_ms) == 0)
            return MHD_YES;
    }
    if (!req->resp)
        req->route->handler(req);
    return queue(req);
}

static void access_log(struct request *req, enum MHD_RequestTerminationCode toe)
{
    char addr[INET6_ADDRSTRLEN];
    struct timespec t1;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (long long)(t1.tv_sec - req->t0.tv_sec) * 1000 +
         (t1.tv_nsec - req->t0.tv_nsec) / 1000000;
    client_addr(req, addr, sizeof(addr));
    /* The user is the authenticated name ("-" anonymous); never a secret. */
    berth_log_info("%s %s %u %llu %lldms %s %s%s", req->method_str, req->path,
                   req->queued ? req->status : 0,
                   (unsigned long long)(req->method == M_HEAD ? 0 : req->resp_bytes), ms, addr,
                   req->user[0] ? req->user : "-",
                   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct berth_server *srv = cls;
    struct request *req = *con_cls;

    (void)conn;
    if (!req)
        return;
    *con_cls = NULL;
    /* A broken connection or a failed request never leaves a partial chunk. */
    if (req->upload) {
        berth_upload_close(req->upload, 0);
        req->upload = NULL;
    }
    if (srv->access_log && req->method_str[0] && berth_log_level >= BERTH_LOG_INFO)
        access_log(req, toe);
    request_free(req);
    __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* libmicrohttpd reports every client that broke off or spoke TLS to a
     * plain port (skopeo and podman probe https first); that is the client's
     * business, not the operator's. Only failures to serve are warnings. */
    if (strstr(msg, "Failed to") && !strstr(msg, "Failed to receive") &&
        !strstr(msg, "Failed to send"))
        berth_log_warn("http: %s", msg);
    else
        berth_log_debug("http: %s", msg);
}

/* ---- daemon ---- */

/* "host:port", "[v6]:port" or ":port" (all IPv4 interfaces) → sockaddr. */
static int parse_addr(struct berth_server *srv, const char *addr, int *v6)
{
    char host[256];
    const char *port, *end;
    struct addrinfo hints, *res = NULL;
    size_t hlen;
    int rc;

    if (!addr || !*addr)
        addr = "0.0.0.0:5000";
    if (addr[0] == '[') {
        if (!(end = strchr(addr, ']')) || end[1] != ':')
            return berth_error_set(BERTH_EINVALID, "invalid address '%s'", addr);
        hlen = (size_t)(end - addr - 1);
        memcpy(host, addr + 1, hlen < sizeof(host) ? hlen : 0);
        port = end + 2;
    } else {
        if (!(end = strrchr(addr, ':')))
            return berth_error_set(BERTH_EINVALID, "invalid address '%s' (want host:port)",
                                   addr);
        hlen = (size_t)(end - addr);
        memcpy(host, addr, hlen < sizeof(host) ? hlen : 0);
        port = end + 1;
    }
    if (hlen >= sizeof(host))
        return berth_error_set(BERTH_EINVALID, "invalid address '%s'", addr);
    host[hlen] = '\0';
    if (!hlen)
        snprintf(host, sizeof(host), "0.0.0.0");
    if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        atoi(port) > 65535)
        return berth_error_set(BERTH_EINVALID, "invalid port in address '%s'", addr);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0 || !res)
        return berth_error_set(BERTH_EINVALID, "cannot resolve '%s': %s", host,
                               rc ? gai_strerror(rc) : "no address");
    if (res->ai_addrlen > sizeof(srv->sa)) {
        freeaddrinfo(res);
        return berth_error_set(BERTH_EINVALID, "unsupported address '%s'", addr);
    }
    memcpy(&srv->sa, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

/* Connections we accept: as many as the file-descriptor limit allows (raised
 * to its hard maximum), less room for blob files, the database and logs.
 * libmicrohttpd's default (FD_SETSIZE - 4 = 1,020) let ~1,100 slow clients
 * lock everyone else out. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    rlim_t n;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); /* best effort */
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    n = rl.rlim_cur == RLIM_INFINITY ? 65536 : rl.rlim_cur;
    if (n > 65536)
        n = 65536;
    /* each connection may hold a socket and an open blob file */
    return n > 256 ? (unsigned)((n - 128) / 2) : 64;
}

/* HTTPS: the certificate comes from tls.c's callback (swappable on SIGHUP)
 * rather than MHD_OPTION_HTTPS_MEM_CERT/KEY, which MHD reads only at start. */
static int tls_options(struct berth_server *srv, const struct berth_server_config *cfg,
                       struct MHD_OptionItem *opts)
{
    int error;

    if ((error = berth_tls_new(&srv->tls, cfg->tls_certificate, cfg->tls_key,
                               cfg->tls_clientcas, cfg->ntls_clientcas, cfg->tls_minimum)) < 0)
        return error;
    opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                       (void *)berth_tls_priorities(srv->tls) };
    opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                       berth_tls_cert_callback() };
    if (berth_tls_trust(srv->tls))
        opts[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                           (void *)berth_tls_trust(srv->tls) };
    return 0;
}

int berth_server_start(struct berth_server **out, const struct berth_server_config *cfg,
                       struct berth_store *st)
{
    struct berth_server *srv;
    /* poll(2), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll mode
     * misses a FIN that arrives with the last body bytes, so a client that
     * drops mid-PATCH held its upload session until the 300 s timeout
     * (tests/e2e/test_faults.py). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    unsigned conn_limit = connection_limit();
    unsigned threads = cfg->threads;
    struct MHD_OptionItem tls_opts[4] = { { MHD_OPTION_END, 0, NULL } };
    int v6 = 0, error;

    *out = NULL;
    if (!(srv = calloc(1, sizeof(*srv))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    srv->st = st;
    srv->delete_enabled = cfg->delete_enabled;
    srv->access_log = cfg->access_log;
    srv->authn = cfg->authn;
    srv->maint = cfg->maint;
    srv->gcrun = cfg->gcrun;
    srv->manifest_max = cfg->manifest_max ? cfg->manifest_max : BERTH_MANIFEST_MAX_DEFAULT;
    if ((error = parse_addr(srv, cfg->addr, &v6)) < 0)
        goto done;
    srv->tags_cache = tags_cache_new(); /* NULL only disables the cache */
    /* NULL (no thread) only answers wrong passwords without delay */
    if (srv->authn && berth_authn_enabled(srv->authn))
        srv->delays = delays_new();
    if (cfg->tls_certificate && (error = tls_options(srv, cfg, tls_opts)) < 0)
        goto done;
    if (srv->tls)
        flags |= MHD_USE_TLS;
    if (v6)
        flags |= MHD_USE_DUAL_STACK;
    if (!threads) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? (unsigned)ncpu : 1;
    }
    /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: MHD sets SO_REUSEADDR anyway
     * (restarts bind through TIME_WAIT), and the option's SO_REUSEPORT would
     * let a second server bind the same port silently instead of failing. */
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&srv->sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_SEC,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!srv->daemon) {
        error = berth_error_set(BERTH_ERROR, "%s",
                                errno ? strerror(errno) : "libmicrohttpd failed to start");
        goto done;
    }
    *out = srv;
    srv = NULL;
    error = 0;
done:
    if (srv) {
        delays_free(srv->delays);
        tags_cache_free(srv->tags_cache);
        berth_tls_free(srv->tls);
    }
    free(srv);
    return error;
}

uint16_t berth_server_port(const struct berth_server *srv)
{
    const union MHD_DaemonInfo *di;

    if (!srv || !srv->daemon)
        return 0;
    di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

/* Waits on our own in-flight count rather than MHD's connection count: idle
 * keep-alive connections would otherwise always use up the whole grace. */
void berth_server_stop(struct berth_server *srv, unsigned grace_ms)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    MHD_socket lsock;
    unsigned waited = 0;

    if (!srv)
        return;
    lsock = MHD_quiesce_daemon(srv->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    delays_stop(srv->delays); /* held answers go out now, within the grace */
    while (waited < grace_ms && __atomic_load_n(&srv->inflight, __ATOMIC_RELAXED) > 0) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    MHD_stop_daemon(srv->daemon);
    delays_free(srv->delays);
    tags_cache_free(srv->tags_cache);
    berth_tls_free(srv->tls);
    free(srv);
}

int berth_server_reload_tls(struct berth_server *srv)
{
    if (!srv || !srv->tls)
        return 0;
    if (berth_tls_reload(srv->tls) < 0) {
        berth_log_error("TLS reload failed, keeping the current certificate: %s",
                        berth_error_msg());
        return -1;
    }
    berth_log_info("TLS certificate and key reloaded; new connections use them");
    return 1;
}

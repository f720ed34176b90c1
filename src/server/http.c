/*
 * berth's own HTTP/1.1 server (it replaced libmicrohttpd; docs/http-loop.md):
 * N worker threads, each with its own epoll set (edge-triggered); every
 * worker accepts from the one listening socket and hands each new
 * connection to the workers in turn. A connection is a small state machine:
 * TLS handshake → request head → body → (held back) → response → next
 * request. Everything is non-blocking, so a slow client costs a connection,
 * never a thread. Request heads and bodies are read into one per-connection
 * buffer that is given back when the connection is idle; bodies stream to
 * the handler in pieces as large as that buffer. Responses go out with
 * writev (head + memory body) or sendfile (files; read + TLS record send).
 *
 * The request lifecycle on top: one struct request per HTTP request,
 * routed and authorized when the head is in, body streamed (upload chunks
 * go straight to the upload file, manifests and /token forms into a capped
 * buffer), the handler's response sent, the access log line written.
 * Invariant: an upload session opened by a request is always released —
 * kept on success, rolled back (keep=0) when the request fails or the
 * connection breaks mid-body.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "authn.h"
#include "core/error.h"
#include "handlers.h"
#include "log.h"
#include "router.h"
#include "tls.h"

#define API_VERSION_HEADER "Docker-Distribution-API-Version"
#define API_VERSION "registry/2.0"
#define CONN_TIMEOUT_SEC 300
/* An early error on a POST/PUT whose body is larger than this closes the
 * connection instead of reading the body just to drop it. */
#define DISCARD_MAX (64 * 1024)
/* Hard caps on what a request line and headers may hold. */
#define URL_MAX (8 * 1024)
#define HEADERS_MAX (64 * 1024)
/* A connection's buffer: HEAD_BUF while a request head arrives (grown up to
 * HEAD_MAX for long heads), BODY_BUF more while a large body streams in;
 * given back whenever the connection holds no unread bytes. */
#define HEAD_BUF (16 * 1024)
#define HEAD_MAX (URL_MAX + HEADERS_MAX + 1024)
#define BODY_BUF (256 * 1024)
/* One sendfile(2) call sends at most this much; the loop calls again until
 * the socket is full. One call for the whole range (up to 1 GiB) was slower:
 * 1 GiB blob to curl over loopback, 1,184-1,422 MB/s at 0.63-0.74 CPU-s/GB
 * against 1,418-2,262 MB/s at 0.33-0.43 with 256 KiB (4 MiB: 1,351-1,731 /
 * 0.46-0.52; 2026-11-28, see docs/http-loop.md). */
#define SENDFILE_MAX (256u * 1024)
/* Free HEAD_BUF buffers a worker keeps for reuse. */
#define SPARE_BUFS 64
/* After an early answer that closes the connection: read and drop what the
 * client still sends for this long / this much, so it sees the answer and
 * not a reset. */
#define LINGER_MS 2000
#define LINGER_BYTES (16u << 20)
/* Bytes of a file read per TLS record send (berth_tls_send). */
#define TLS_FILE_CHUNK (64 * 1024)

/* ---- responses ---- */

struct response {
    unsigned status;
    struct sbuf hdrs;            /* "Name: value\r\n" lines */
    enum { RB_MEM, RB_FD, RB_HEAD } kind;
    const uint8_t *body;         /* RB_MEM */
    void (*release)(void *cls);  /* RB_MEM: called once when sent or dropped */
    void *cls;
    int fd;                      /* RB_FD: closed with the response */
    uint64_t off;
    uint64_t len;                /* Content-Length */
};

static void response_free(struct response *r)
{
    if (!r)
        return;
    if (r->release)
        r->release(r->cls);
    if (r->kind == RB_FD && r->fd >= 0)
        close(r->fd);
    sbuf_dispose(&r->hdrs);
    free(r);
}

/* A new response replacing any earlier one; NULL (and req->failed) when
 * out of memory, after releasing what it would have owned. */
static struct response *set_response(struct request *req, unsigned status, int kind,
                                     uint64_t len, void (*release)(void *), void *cls, int fd)
{
    struct response *r = calloc(1, sizeof(*r));

    response_free(req->resp);
    req->resp = r;
    req->status = status;
    req->resp_bytes = kind == RB_HEAD ? 0 : len;
    if (!r) {
        if (release)
            release(cls);
        if (fd >= 0)
            close(fd);
        req->failed = 1;
        return NULL;
    }
    r->status = status;
    r->kind = kind;
    r->len = len;
    r->release = release;
    r->cls = cls;
    r->fd = fd;
    return r;
}

void add_header(struct request *req, const char *name, const char *value)
{
    struct response *r = req->resp;

    if (!r)
        return;
    /* a value a handler built must never split the response */
    if (strpbrk(value, "\r\n") || strpbrk(name, "\r\n: ")) {
        req->failed = 1;
        return;
    }
    sbuf_puts(&r->hdrs, name);
    sbuf_put(&r->hdrs, ": ", 2);
    sbuf_puts(&r->hdrs, value);
    sbuf_put(&r->hdrs, "\r\n", 2);
    if (r->hdrs.oom)
        req->failed = 1;
}

void respond_empty(struct request *req, unsigned status)
{
    set_response(req, status, RB_MEM, 0, NULL, NULL, -1);
}

void respond_static(struct request *req, unsigned status, const char *body, size_t len,
                    const char *content_type)
{
    struct response *r = set_response(req, status, RB_MEM, len, NULL, NULL, -1);

    if (r)
        r->body = (const uint8_t *)body;
    if (content_type)
        add_header(req, "Content-Type", content_type);
}

void respond_take(struct request *req, unsigned status, void *body, size_t len,
                  const char *content_type)
{
    struct response *r = set_response(req, status, RB_MEM, len, free, body, -1);

    if (r)
        r->body = body;
    if (content_type)
        add_header(req, "Content-Type", content_type);
}

void respond_shared(struct request *req, unsigned status, const void *body, size_t len,
                    void (*release)(void *cls), void *cls, const char *content_type)
{
    struct response *r = set_response(req, status, RB_MEM, len, release, cls, -1);

    if (r)
        r->body = body;
    if (content_type)
        add_header(req, "Content-Type", content_type);
}

void respond_fd(struct request *req, unsigned status, int fd, uint64_t offset, uint64_t len)
{
    struct response *r = set_response(req, status, RB_FD, len, NULL, NULL, fd);

    if (r)
        r->off = offset;
}

void respond_head(struct request *req, unsigned status, uint64_t len)
{
    set_response(req, status, RB_HEAD, len, NULL, NULL, -1);
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
        status = HTTP_RANGE_NOT_SATISFIABLE;
        break;
    case BERTH_ETOOBIG:
        status = HTTP_CONTENT_TOO_LARGE;
        break;
    case BERTH_ENOSPC:
        status = HTTP_INSUFFICIENT_STORAGE;
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
    respond_take(req, HTTP_OK, b->p, b->len, content_type);
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
        return strcmp(m, "GET") ? M_OTHER : M_GET;
    case 'H':
        return strcmp(m, "HEAD") ? M_OTHER : M_HEAD;
    case 'P':
        if (!strcmp(m, "PUT"))
            return M_PUT;
        if (!strcmp(m, "POST"))
            return M_POST;
        return strcmp(m, "PATCH") ? M_OTHER : M_PATCH;
    case 'D':
        return strcmp(m, "DELETE") ? M_OTHER : M_DELETE;
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
        response_free(req->resp);
    free(req->body);
    free(req);
}

/* Parse a Content-Length value; -1 when absent or malformed. */
static int64_t content_length(struct request *req)
{
    const char *cl = req_header(req, "Content-Length");
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

/* When an early answer is ready before the body arrived: answer now (then
 * close the connection instead of reading the body) or read and drop
 * the body first and answer at the final call. A request without a body is
 * answered at the final call too, which keeps the connection alive. Small
 * bodies are drained so the client sees the answer rather than a reset; a
 * client waiting for `100 Continue` sent nothing yet and is answered at once. */
static int answer_now(struct request *req)
{
    const char *expect;
    int64_t cl = INT64_MAX;

    if (!req_header(req, "Transfer-Encoding")) {
        cl = content_length(req);
        if (cl <= 0)
            return 0;
    }
    if (!(req->method & (M_POST | M_PUT)))
        return 0;
    expect = req_header(req, "Expect");
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
        respond_error(req, HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
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
        respond_error(req, HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
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

/* ---- connections and workers ---- */

enum cstate {
    CS_HANDSHAKE, /* TLS handshake */
    CS_HEAD,      /* reading a request head */
    CS_CONTINUE,  /* sending "100 Continue" */
    CS_BODY,      /* reading (or dropping) the body */
    CS_HELD,      /* a failed login's answer waits on the worker's timer list */
    CS_SEND,      /* sending the response */
    CS_LINGER,    /* answered early, write side shut: dropping what still arrives */
    CS_CLOSE
};

enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE };

struct worker;

struct conn {
    struct worker *w;
    int fd;
    void *tls;            /* TLS session (tls.h), NULL on plain HTTP */
    enum cstate st;
    int can_read, can_write, listed;
    int ready;            /* on the worker's ready list */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;

    /* Input: unread bytes are buf[off, len); a request's head occupies
     * buf[0, head_end) while the request lives. */
    char *buf;
    size_t cap, len, off, head_end;

    struct request *req;
    int keep_alive, http10, closing;
    int chunked;
    enum chunk_state ch;
    uint64_t body_left;   /* Content-Length bytes, or bytes of the current chunk */
    size_t trailer_bytes;

    /* Output: out[out_off, out_len) first, then the response body. */
    char *out;
    size_t out_len, out_off;
    struct response *resp;
    uint64_t body_sent;
    char *fbuf;           /* TLS: a piece of the file being sent */
    size_t fbuf_len, fbuf_off;

    /* Timers: the worker's list in order of last activity; held answers. */
    long long active_ms;
    long long due_ms;
    size_t linger_bytes;
    size_t scanned;       /* head bytes searched for the empty line so far */
    struct conn *prev, *next;
};

struct worker {
    struct http_loop *loop;
    pthread_t thread;
    int ep, efd;
    struct conn lru;     /* sentinel: lru.next is the longest idle */
    struct conn **ready; /* to run again before the next wait (fairness) */
    size_t nready, ready_cap;
    struct conn **held;  /* connections in CS_HELD */
    size_t nheld, held_cap;
    char *spare[SPARE_BUFS];
    size_t nspare;
    int listening;
    char date[40];
};

struct http_loop {
    struct berth_server *srv;
    int lfd;
    unsigned nworkers;
    struct worker *workers;
    unsigned next_worker;  /* round robin (atomic) */
    long conns;            /* open connections (atomic) */
    long conn_limit;
    int stopping;          /* no new connections or requests (atomic) */
    int quit;              /* workers end (atomic) */
    unsigned listen_dropped; /* workers that took the listener out of their set (atomic) */
};

static char listen_tag, event_tag; /* epoll data for the listener and the eventfd */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lru_unlink(struct conn *c)
{
    if (!c->listed)
        return;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->listed = 0;
}

static void lru_touch(struct conn *c)
{
    struct conn *head = &c->w->lru;

    lru_unlink(c);
    c->prev = head->prev;
    c->next = head;
    head->prev->next = c;
    head->prev = c;
    c->listed = 1;
    c->active_ms = now_ms();
}

/* ---- buffers ---- */

/* The request's header and argument pointers after its head moved from
 * buffer `from` to `to` (a realloc). */
static void rebase(struct request *req, const char *from, char *to)
{
    for (unsigned i = 0; i < req->nhdrs; i++) {
        req->hdrs[i].name = to + (req->hdrs[i].name - from);
        req->hdrs[i].value = to + (req->hdrs[i].value - from);
    }
    for (unsigned i = 0; i < req->nargs; i++) {
        req->args[i].name = to + (req->args[i].name - from);
        if (req->args[i].value)
            req->args[i].value = to + (req->args[i].value - from);
    }
}

/* Grow the buffer to `cap` (contents kept; a request's fields follow). */
static int buf_reserve(struct conn *c, size_t cap)
{
    char *p;

    if (c->cap >= cap)
        return 0;
    if (!c->buf && cap == HEAD_BUF && c->w->nspare) {
        c->buf = c->w->spare[--c->w->nspare];
        c->cap = HEAD_BUF;
        return 0;
    }
    if (!(p = malloc(cap)))
        return -1;
    if (c->buf) {
        memcpy(p, c->buf, c->len);
        if (c->req)
            rebase(c->req, c->buf, p);
        free(c->buf);
    }
    c->buf = p;
    c->cap = cap;
    return 0;
}

/* Give the buffer back when it holds nothing unread. */
static void buf_release(struct conn *c)
{
    if (!c->buf || c->off < c->len)
        return;
    if (c->cap == HEAD_BUF && c->w->nspare < SPARE_BUFS)
        c->w->spare[c->w->nspare++] = c->buf;
    else
        free(c->buf);
    c->buf = NULL;
    c->cap = c->len = c->off = 0;
}

/* ---- socket I/O (plain or TLS) ---- */

/* After a failed socket call, from errno: 0 to retry (EINTR), -1 would
 * block (and *ready is cleared until the next epoll event), -2 error. */
static int sock_failed(int *ready)
{
    if (errno == EINTR)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *ready = 0;
        return -1;
    }
    return -2;
}

/* > 0 bytes, 0 end of stream, -1 would block, -2 error. */
static ssize_t conn_recv(struct conn *c, char *p, size_t n)
{
    ssize_t r;

    for (;;) {
        if (c->tls) {
            r = berth_tls_recv(c->tls, p, n);
            if (r == -1)
                c->can_read = 0;
            return r;
        }
        if ((r = recv(c->fd, p, n, 0)) >= 0 || (r = sock_failed(&c->can_read)) != 0)
            return r;
    }
}

static int conn_readable(struct conn *c)
{
    return c->can_read || (c->tls && berth_tls_pending(c->tls) > 0);
}

/* Bytes sent, -1 would block, -2 error. `more`: further data follows at
 * once (MSG_MORE). */
static ssize_t conn_send(struct conn *c, const void *p, size_t n, int more)
{
    ssize_t r;

    for (;;) {
        if (c->tls) {
            r = berth_tls_send(c->tls, p, n);
            if (r == -1)
                c->can_write = 0;
            return r;
        }
        r = send(c->fd, p, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (r >= 0 || (r = sock_failed(&c->can_write)) != 0)
            return r;
    }
}

/* ---- request accessors ---- */

const char *req_header(struct request *req, const char *name)
{
    for (unsigned i = 0; i < req->nhdrs; i++)
        if (!strcasecmp(req->hdrs[i].name, name))
            return req->hdrs[i].value;
    return NULL;
}

const char *req_arg(struct request *req, const char *name)
{
    for (unsigned i = 0; i < req->nargs; i++)
        if (!strcmp(req->args[i].name, name))
            return req->args[i].value;
    return NULL;
}

int req_args_each(struct request *req, int (*fn)(void *cls, const char *key, const char *value),
                  void *cls)
{
    int rc;

    for (unsigned i = 0; i < req->nargs; i++)
        if ((rc = fn(cls, req->args[i].name, req->args[i].value)) < 0)
            return rc;
    return 0;
}

/* The client's IP address as text, "-" when unknown. */
static void client_addr(struct request *req, char *addr, size_t size)
{
    struct conn *c = req->conn;

    snprintf(addr, size, "-");
    if (c->peer.sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &c->peer.in.sin_addr, addr, (socklen_t)size);
    else if (c->peer.sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, addr, (socklen_t)size);
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
            respond_error(req, HTTP_FORBIDDEN, BERTH_OCI_DENIED,
                          "admin endpoints answer only to loopback clients when no auth is "
                          "configured");
        return;
    }
    client_addr(req, addr, sizeof(addr));
    ar.access = (enum berth_access)req->route->access;
    ar.repo = req->name[0] ? req->name : NULL;
    ar.from = req->route->handler == h_upload_mount ? req_arg(req, "from") : NULL;
    ar.authorization = req_header(req, "Authorization");
    ar.addr = addr;
    ar.host = req_header(req, "Host");
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
        respond_error(req, HTTP_UNAUTHORIZED, res.code, res.message);
        add_header(req, "WWW-Authenticate", res.www_authenticate);
        /* held back at the final call (on_request), never while a body is
         * still to come: an answer given at once (answer_now) is not held */
        req->delay_ms = res.delay_ms;
        return;
    case BERTH_AUTHN_THROTTLE:
        respond_error(req, HTTP_TOO_MANY_REQUESTS, res.code, res.message);
        snprintf(num, sizeof(num), "%u", res.retry_after);
        add_header(req, "Retry-After", num);
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

/* A repeated `scope` argument comes once per value, as the token spec
 * sends them. */
static int token_arg(void *cls, const char *key, const char *value)
{
    struct token_args *t = cls;

    if ((t->err = berth_token_params_add(t->p, key, value ? value : "")) < 0)
        return -1;
    return 0;
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
        ct = req_header(req, "Content-Type");
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
            (ct[33] && ct[33] != ';' && ct[33] != ' '))
            t.err = BERTH_EINVALID;
        else
            t.err = berth_token_params_parse_form(&p, (const char *)req->body, req->body_len);
    } else {
        req_args_each(req, token_arg, &t);
    }
    if (t.err < 0) {
        berth_token_params_dispose(&p);
        respond_static(req, HTTP_BAD_REQUEST, TOKEN_BAD_REQUEST,
                       sizeof(TOKEN_BAD_REQUEST) - 1, "application/json");
        return;
    }
    client_addr(req, addr, sizeof(addr));
    if (berth_authn_token(req->srv->authn, &r, &p, post,
                          req_header(req, "Authorization"), addr) < 0) {
        berth_token_params_dispose(&p);
        respond_oci(req, BERTH_OCI_INTERNAL, "token server failed");
        return;
    }
    berth_token_params_dispose(&p);
    respond_take(req, (unsigned)r.status, r.body, r.len, "application/json");
    r.body = NULL; /* the response owns it now */
    /* RFC 6749 5.1: token responses must not be cached. */
    add_header(req, "Cache-Control", "no-store");
    if (r.www_authenticate[0])
        add_header(req, "WWW-Authenticate", r.www_authenticate);
    if (r.status == HTTP_TOO_MANY_REQUESTS) {
        snprintf(num, sizeof(num), "%u", r.retry_after ? r.retry_after : 1);
        add_header(req, "Retry-After", num);
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

/* mTLS (http.tls.clientcas): 401 for a client whose certificate is missing
 * or does not verify; checked on every request, before anything else. */
static int tls_refused(struct request *req)
{
    const char *why;

    if (berth_tls_client_ok(req->srv->tls, req->conn->tls, &why))
        return 0;
    respond_error(req, HTTP_UNAUTHORIZED, BERTH_OCI_UNAUTHORIZED, why);
    return 1;
}

/* First call: headers only. Route, validate, let the route's begin step
 * open what the body needs; answer at once when that already failed. */
static int request_begin(struct request *req, const char *url)
{
    int64_t cl;

    if (req->srv->tls && tls_refused(req))
        return answer_now(req);
    if (req->srv->authn && berth_authn_has_token_server(req->srv->authn) &&
        !strcmp(url, "/token")) {
        if (req->method & token_route.methods)
            req->route = &token_route;
        else
            respond_error(req, HTTP_METHOD_NOT_ALLOWED, BERTH_OCI_UNSUPPORTED,
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
            respond_error(req, HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                          "token request form too large");
    }
    if (!req->resp && req->body_mode == BODY_MANIFEST) {
        cl = content_length(req);
        if (cl > 0 && (uint64_t)cl > req->srv->manifest_max)
            respond_error(req, HTTP_CONTENT_TOO_LARGE, BERTH_OCI_SIZE_INVALID,
                          "manifest too large");
    }
    return req->resp && answer_now(req);
}

/* ---- listening address and limits ---- */

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
 * (libmicrohttpd's fixed default of 1,020 let ~1,100 slow clients lock
 * everyone else out: tests/e2e/test_faults.py.) */
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


/* ---- the request's end ---- */

static void access_log(struct request *req, int aborted)
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
                   req->user[0] ? req->user : "-", aborted ? " aborted" : "");
}

/* The request is over (answered, or the connection broke): a broken
 * connection or a failed request never leaves a partial chunk. */
static void request_end(struct conn *c, int aborted)
{
    struct request *req = c->req;
    struct berth_server *srv;

    if (!req)
        return;
    srv = req->srv;
    c->req = NULL;
    if (req->upload) {
        berth_upload_close(req->upload, 0);
        req->upload = NULL;
    }
    if (srv->access_log && req->method_str[0] && berth_log_level >= BERTH_LOG_INFO)
        access_log(req, aborted);
    request_free(req);
    __atomic_sub_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
}

/* Queue c to run again after the current batch of events; when the list
 * cannot grow, c simply waits for its next event (its data was read up to
 * EAGAIN or is buffered, so that comes). */
static void ready_push(struct conn *c)
{
    struct worker *w = c->w;

    if (w->nready == w->ready_cap) {
        size_t cap = w->ready_cap ? w->ready_cap * 2 : 64;
        struct conn **v = realloc(w->ready, cap * sizeof(*v));

        if (!v)
            return;
        w->ready = v;
        w->ready_cap = cap;
    }
    w->ready[w->nready++] = c;
    c->ready = 1;
}

static void conn_close(struct conn *c)
{
    struct worker *w = c->w;

    request_end(c, 1);
    response_free(c->resp);
    c->resp = NULL;
    lru_unlink(c);
    for (size_t i = 0; i < w->nheld; i++)
        if (w->held[i] == c) {
            w->held[i] = w->held[--w->nheld];
            break;
        }
    if (c->ready)
        for (size_t i = 0; i < w->nready; i++)
            if (w->ready[i] == c)
                w->ready[i] = NULL;
    berth_tls_session_free(c->tls);
    close(c->fd); /* also leaves the epoll set */
    c->off = c->len;
    buf_release(c);
    free(c->buf);
    free(c->out);
    free(c->fbuf);
    free(c);
    __atomic_sub_fetch(&w->loop->conns, 1, __ATOMIC_RELAXED);
}

/* ---- sending ---- */

static const char *reason(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

/* Take the request's response and lay out its head; the state becomes
 * CS_SEND. With no response (out of memory) the connection closes. */
static void start_response(struct conn *c)
{
    struct request *req = c->req;
    struct response *r;
    struct sbuf h = { 0 };
    char line[96];
    int n;

    req->queued = 1;
    if (!req->resp && !req->failed)
        respond_oci(req, BERTH_OCI_INTERNAL, "no response");
    if (req->failed || !req->resp) {
        c->st = CS_CLOSE;
        return;
    }
    if (__atomic_load_n(&c->w->loop->stopping, __ATOMIC_RELAXED))
        c->keep_alive = 0;
    r = req->resp;
    req->resp = NULL;
    n = snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", r->status, reason(r->status));
    sbuf_put(&h, line, (size_t)n);
    sbuf_puts(&h, API_VERSION_HEADER ": " API_VERSION "\r\n");
    if (r->hdrs.p)
        sbuf_put(&h, r->hdrs.p, r->hdrs.len);
    if (r->status != 204 && r->status != 304 && r->status >= 200) {
        n = snprintf(line, sizeof(line), "Content-Length: %llu\r\n", (unsigned long long)r->len);
        sbuf_put(&h, line, (size_t)n);
    }
    if (!c->keep_alive)
        sbuf_puts(&h, "Connection: close\r\n");
    else if (c->http10)
        sbuf_puts(&h, "Connection: keep-alive\r\n");
    sbuf_puts(&h, c->w->date);
    sbuf_put(&h, "\r\n", 2);
    if (h.oom) {
        sbuf_dispose(&h);
        response_free(r);
        c->st = CS_CLOSE;
        return;
    }
    /* HEAD, and statuses that never have one: no body */
    if (req->method == M_HEAD || r->status == 204 || r->status == 304) {
        if (r->kind == RB_FD && r->fd >= 0) {
            close(r->fd);
            r->fd = -1;
        }
        r->kind = RB_HEAD;
    }
    free(c->out);
    c->out = h.p;
    c->out_len = h.len;
    c->out_off = 0;
    c->resp = r;
    c->body_sent = 0;
    c->st = CS_SEND;
}

/* 1 all sent, 0 would block, -1 error. */
static int send_some(struct conn *c)
{
    struct response *r = c->resp;
    ssize_t n;

    for (;;) {
        uint64_t left = r->kind == RB_HEAD ? 0 : r->len - c->body_sent;

        if (!c->can_write)
            return 0;
        if (c->out_off < c->out_len) {
            if (!c->tls && r->kind == RB_MEM && left) {
                struct iovec iov[2] = {
                    { c->out + c->out_off, c->out_len - c->out_off },
                    { (void *)(r->body + c->body_sent), (size_t)left },
                };
                n = writev(c->fd, iov, 2);
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->can_write = 0;
                        return 0;
                    }
                    return -1;
                }
                if ((size_t)n <= c->out_len - c->out_off) {
                    c->out_off += (size_t)n;
                } else {
                    c->body_sent += (size_t)n - (c->out_len - c->out_off);
                    c->out_off = c->out_len;
                }
                continue;
            }
            n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off, left > 0);
            if (n == -1)
                return 0;
            if (n < 0)
                return -1;
            c->out_off += (size_t)n;
            continue;
        }
        if (!left)
            return 1;
        if (r->kind == RB_MEM) {
            n = conn_send(c, r->body + c->body_sent, (size_t)left, 0);
            if (n == -1)
                return 0;
            if (n < 0)
                return -1;
            c->body_sent += (size_t)n;
        } else if (!c->tls) {
            off_t off = (off_t)(r->off + c->body_sent);
            size_t want = left > SENDFILE_MAX ? SENDFILE_MAX : (size_t)left;

            n = sendfile(c->fd, r->fd, &off, want);
            if (n < 0) {
                int f = sock_failed(&c->can_write);

                if (f == 0)
                    continue;
                return f == -1 ? 0 : -1;
            }
            if (n == 0)
                return -1; /* the file is shorter than announced */
            c->body_sent += (size_t)n;
        } else {
            if (c->fbuf_off == c->fbuf_len) {
                size_t want = left > TLS_FILE_CHUNK ? TLS_FILE_CHUNK : (size_t)left;

                if (!c->fbuf && !(c->fbuf = malloc(TLS_FILE_CHUNK)))
                    return -1;
                n = pread(r->fd, c->fbuf, want, (off_t)(r->off + c->body_sent));
                if (n <= 0) {
                    if (n < 0 && errno == EINTR)
                        continue;
                    return -1;
                }
                c->fbuf_len = (size_t)n;
                c->fbuf_off = 0;
            }
            /* TLS wants the same data again after "would block" */
            n = conn_send(c, c->fbuf + c->fbuf_off, c->fbuf_len - c->fbuf_off, 0);
            if (n == -1)
                return 0;
            if (n < 0)
                return -1;
            c->fbuf_off += (size_t)n;
            c->body_sent += (size_t)n;
        }
    }
}

/* The response is out: end the request, then the next one or the close. */
static void response_done(struct conn *c)
{
    response_free(c->resp);
    c->resp = NULL;
    free(c->fbuf);
    c->fbuf = NULL;
    c->fbuf_len = c->fbuf_off = 0;
    request_end(c, 0);
    if (c->closing) {
        /* answered before the body was read: shut our side, drop the rest */
        if (!c->tls)
            shutdown(c->fd, SHUT_WR);
        else
            berth_tls_bye(c->tls);
        c->st = CS_LINGER;
        c->due_ms = now_ms() + LINGER_MS;
        c->linger_bytes = 0;
        c->off = c->len = 0;
        return;
    }
    if (!c->keep_alive) {
        c->st = CS_CLOSE;
        return;
    }
    /* pipelined bytes move to the front; none: the buffer goes back */
    if (c->off < c->len) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    } else {
        c->off = c->len = 0;
    }
    c->head_end = 0;
    if (c->cap > HEAD_BUF && c->len <= HEAD_BUF) {
        char *p = realloc(c->buf, HEAD_BUF);
        if (p) {
            c->buf = p;
            c->cap = HEAD_BUF;
        }
    }
    buf_release(c);
    c->st = CS_HEAD;
}

/* ---- parsing the request head ---- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s in place ('+' → ' ' too when plus); -1 on a NUL byte. */
static int unescape(char *s, int plus)
{
    char *o = s;

    for (; *s; s++) {
        int hi, lo;

        if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
            if (!hi && !lo)
                return -1;
            *o++ = (char)(hi * 16 + lo);
            s += 2;
        } else if (plus && *s == '+') {
            *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return 0;
}

static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Split the query string into decoded arguments; -1 when malformed or too
 * many. */
static int parse_query(struct request *req, char *q)
{
    while (q && *q) {
        char *amp = strchr(q, '&'), *eq;

        if (amp)
            *amp = '\0';
        if (*q) {
            if (req->nargs == REQ_ARGS_MAX)
                return -1;
            if ((eq = strchr(q, '=')) != NULL)
                *eq++ = '\0';
            if (unescape(q, 1) < 0 || (eq && unescape(eq, 1) < 0))
                return -1;
            req->args[req->nargs].name = q;
            req->args[req->nargs].value = eq;
            req->nargs++;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* The access log's path: the decoded path and arguments ("?mount=...&from=..."),
 * so a mount is told apart from an upload. Registry API query strings carry
 * no secrets; the line is cut at the buffer's end. */
static void log_path(struct request *req, const char *path)
{
    size_t n;

    snprintf(req->path, sizeof(req->path), "%s", path);
    for (unsigned i = 0; i < req->nargs; i++) {
        const char *v = req->args[i].value;

        n = strlen(req->path);
        if (n + 2 < sizeof(req->path))
            snprintf(req->path + n, sizeof(req->path) - n, "%c%s%s%s", i ? '&' : '?',
                     req->args[i].name, v ? "=" : "", v ? v : "");
    }
}

static int64_t parse_length(const char *s)
{
    int64_t v = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Answer a request the server cannot even parse, then close. */
static void answer_bad(struct conn *c, struct request *req, unsigned status, const char *msg)
{
    enum berth_oci_code oci = status == HTTP_URI_TOO_LONG ? BERTH_OCI_NAME_INVALID
                              : status == HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE
                                  ? BERTH_OCI_SIZE_INVALID
                                  : BERTH_OCI_UNSUPPORTED;

    respond_error(req, status, oci, msg);
    c->keep_alive = 0;
    c->closing = 1;
    start_response(c);
}

static struct request *request_new(struct conn *c)
{
    struct berth_server *srv = c->w->loop->srv;
    struct request *req = calloc(1, sizeof(*req));

    if (!req)
        return NULL;
    req->srv = srv;
    req->conn = c;
    req->method = M_OTHER;
    c->req = req;
    __atomic_add_fetch(&srv->inflight, 1, __ATOMIC_RELAXED);
    berth_error_clear();
    return req;
}

static void request_final(struct conn *c);

/* The head buf[0, end) is in (end just past the empty line): parse it, route
 * and authorize, then read the body or answer. */
static void head_in(struct conn *c, size_t end)
{
    struct berth_server *srv = c->w->loop->srv;
    struct request *req;
    char *p = c->buf, *eol, *sp1, *sp2, *target, *query, *ver;
    const char *v;
    size_t hdr_bytes = 0;
    int64_t cl = -1;
    int te = 0;

    c->head_end = end;
    c->off = end;
    c->closing = 0;
    c->chunked = 0;
    if (!(req = request_new(c))) {
        c->st = CS_CLOSE;
        return;
    }
    if (memchr(p, '\0', end)) {
        answer_bad(c, req, HTTP_BAD_REQUEST, "NUL byte in request head");
        return;
    }
    p[end - 1] = '\0';
    /* request line: METHOD SP target SP HTTP/1.x */
    eol = strchr(p, '\n');
    *eol = '\0';
    if (eol > p && eol[-1] == '\r')
        eol[-1] = '\0';
    if (!(sp1 = strchr(p, ' ')) || !(sp2 = strchr(sp1 + 1, ' ')) || strchr(sp2 + 1, ' ') ||
        sp1 == p) {
        answer_bad(c, req, HTTP_BAD_REQUEST, "malformed request line");
        return;
    }
    *sp1 = *sp2 = '\0';
    target = sp1 + 1;
    ver = sp2 + 1;
    for (const char *m = p; *m; m++)
        if (!is_tchar((unsigned char)*m)) {
            answer_bad(c, req, HTTP_BAD_REQUEST, "malformed request line");
            return;
        }
    req->method = method_bit(p);
    if (srv->access_log && berth_log_level >= BERTH_LOG_INFO) {
        clock_gettime(CLOCK_MONOTONIC, &req->t0);
        snprintf(req->method_str, sizeof(req->method_str), "%s", p);
        snprintf(req->path, sizeof(req->path), "%.200s", target);
    }
    if (!strcmp(ver, "HTTP/1.1")) {
        c->http10 = 0;
        c->keep_alive = 1;
    } else if (!strcmp(ver, "HTTP/1.0")) {
        c->http10 = 1;
        c->keep_alive = 0;
    } else {
        answer_bad(c, req, strncmp(ver, "HTTP/", 5) ? HTTP_BAD_REQUEST
                                                    : HTTP_VERSION_NOT_SUPPORTED,
                   "unsupported HTTP version");
        return;
    }
    if (strlen(target) > URL_MAX) {
        answer_bad(c, req, HTTP_URI_TOO_LONG, "request path too long");
        return;
    }
    /* header fields */
    for (p = eol + 1; *p && *p != '\r' && *p != '\n'; p = eol + 1) {
        char *colon, *val, *e;

        eol = strchr(p, '\n');
        *eol = '\0';
        hdr_bytes += (size_t)(eol - p) + 1;
        if (eol > p && eol[-1] == '\r')
            eol[-1] = '\0';
        if (hdr_bytes > HEADERS_MAX || req->nhdrs == REQ_HEADERS_MAX) {
            answer_bad(c, req, HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                       "request headers too large");
            return;
        }
        colon = strchr(p, ':');
        if (!colon || colon == p) {
            answer_bad(c, req, HTTP_BAD_REQUEST, "malformed header field");
            return;
        }
        for (char *k = p; k < colon; k++)
            if (!is_tchar((unsigned char)*k)) {
                answer_bad(c, req, HTTP_BAD_REQUEST, "malformed header field");
                return;
            }
        *colon = '\0';
        for (val = colon + 1; *val == ' ' || *val == '\t'; val++)
            ;
        for (e = val + strlen(val); e > val && (e[-1] == ' ' || e[-1] == '\t'); e--)
            ;
        *e = '\0';
        req->hdrs[req->nhdrs].name = p;
        req->hdrs[req->nhdrs].value = val;
        req->nhdrs++;
    }
    /* message framing (RFC 9112 section 6) */
    if ((v = req_header(req, "Transfer-Encoding")) != NULL) {
        if (strcasecmp(v, "chunked")) {
            answer_bad(c, req, HTTP_NOT_IMPLEMENTED, "unsupported transfer coding");
            return;
        }
        te = 1;
    }
    if ((v = req_header(req, "Content-Length")) != NULL) {
        if (te) {
            answer_bad(c, req, HTTP_BAD_REQUEST, "Content-Length with Transfer-Encoding");
            return;
        }
        if ((cl = parse_length(v)) < 0) {
            answer_bad(c, req, HTTP_BAD_REQUEST, "malformed Content-Length");
            return;
        }
    }
    if ((v = req_header(req, "Connection")) != NULL) {
        if (strcasestr(v, "close"))
            c->keep_alive = 0;
        else if (c->http10 && strcasestr(v, "keep-alive"))
            c->keep_alive = 1;
    }
    c->chunked = te;
    c->body_left = cl > 0 ? (uint64_t)cl : 0;
    c->ch = CH_SIZE;
    c->trailer_bytes = 0;
    /* target: origin-form path and query */
    if (target[0] != '/') {
        answer_bad(c, req, HTTP_BAD_REQUEST, "malformed request target");
        return;
    }
    if ((query = strchr(target, '?')) != NULL)
        *query++ = '\0';
    if (unescape(target, 0) < 0 || parse_query(req, query) < 0) {
        answer_bad(c, req, HTTP_BAD_REQUEST, "malformed request target");
        return;
    }
    if (req->method_str[0])
        log_path(req, target);
    if (request_begin(req, target)) {
        /* answered before the body: close instead of reading it */
        if (te || cl > 0) {
            c->keep_alive = 0;
            c->closing = 1;
        }
        start_response(c);
        return;
    }
    if (!te && cl <= 0) {
        request_final(c);
        return;
    }
    c->st = CS_BODY;
    v = req_header(req, "Expect");
    if (!req->resp && !c->http10 && v && !strcasecmp(v, "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        free(c->out);
        if (!(c->out = malloc(sizeof(cont) - 1))) {
            c->st = CS_CLOSE;
            return;
        }
        memcpy(c->out, cont, sizeof(cont) - 1);
        c->out_len = sizeof(cont) - 1;
        c->out_off = 0;
        c->st = CS_CONTINUE;
    }
}

/* All of the body is in (or dropped): hold a failed login's answer, or run
 * the handler, then send. */
static void request_final(struct conn *c)
{
    struct request *req = c->req;
    struct worker *w = c->w;

    if (req->resp && req->delay_ms && !req->delayed && req->srv->delays &&
        !__atomic_load_n(&w->loop->stopping, __ATOMIC_RELAXED)) {
        req->delayed = 1;
        if (w->nheld == w->held_cap) {
            size_t cap = w->held_cap ? w->held_cap * 2 : 16;
            struct conn **v = realloc(w->held, cap * sizeof(*v));
            if (v) {
                w->held = v;
                w->held_cap = cap;
            }
        }
        if (w->nheld < w->held_cap) {
            w->held[w->nheld++] = c;
            c->due_ms = now_ms() + req->delay_ms;
            c->st = CS_HELD;
            return;
        }
    }
    if (!req->resp)
        req->route->handler(req);
    start_response(c);
}

/* Hand n body bytes to the request (dropped once it has an answer). */
static void body_data(struct conn *c, const char *p, size_t n)
{
    struct request *req = c->req;

    if (n && !req->resp)
        body_chunk(req, p, n);
}

/* Consume buffered body bytes. 1 body complete, 0 need more, -1 malformed
 * (answered). */
static int body_step(struct conn *c)
{
    while (c->off < c->len) {
        char *p = c->buf + c->off, *nl;
        size_t avail = c->len - c->off, n;

        if (!c->chunked || c->ch == CH_DATA) {
            n = avail < c->body_left ? avail : (size_t)c->body_left;
            body_data(c, p, n);
            c->off += n;
            c->body_left -= n;
            if (c->body_left)
                continue;
            if (!c->chunked)
                return 1;
            c->ch = CH_DATA_END;
            continue;
        }
        if (!(nl = memchr(p, '\n', avail))) {
            if (avail > 1024)
                goto bad;
            break; /* a partial line: wait for the rest */
        }
        n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        c->off += (size_t)(nl - p) + 1;
        switch (c->ch) {
        case CH_SIZE: {
            uint64_t size = 0;
            size_t i;

            for (i = 0; i < n && hexval(p[i]) >= 0; i++) {
                if (size >> 59)
                    goto bad;
                size = size * 16 + (uint64_t)hexval(p[i]);
            }
            if (!i || (i < n && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
                goto bad;
            if (size) {
                c->body_left = size;
                c->ch = CH_DATA;
            } else {
                c->ch = CH_TRAILER;
            }
            break;
        }
        case CH_DATA_END:
            if (n)
                goto bad;
            c->ch = CH_SIZE;
            break;
        case CH_TRAILER:
            c->trailer_bytes += n + 2;
            if (c->trailer_bytes > HEADERS_MAX)
                goto bad;
            if (!n) {
                c->ch = CH_DONE;
                return 1;
            }
            break;
        default:
            goto bad;
        }
    }
    /* everything consumed: read the next piece over the same space */
    if (c->off > c->head_end) {
        memmove(c->buf + c->head_end, c->buf + c->off, c->len - c->off);
        c->len -= c->off - c->head_end;
        c->off = c->head_end;
    }
    return 0;
bad:
    if (c->req->upload) {
        berth_upload_close(c->req->upload, 0);
        c->req->upload = NULL;
    }
    respond_error(c->req, HTTP_BAD_REQUEST, BERTH_OCI_SIZE_INVALID, "malformed chunked body");
    c->keep_alive = 0;
    c->closing = 1;
    start_response(c);
    return -1;
}

/* Read more into the buffer. 1 got bytes, 0 would block, -1 closed/error. */
static int fill(struct conn *c, size_t want_cap)
{
    ssize_t n;

    if (buf_reserve(c, want_cap) < 0)
        return -1;
    if (c->len == c->cap)
        return 1; /* full: the caller consumes first */
    n = conn_recv(c, c->buf + c->len, c->cap - c->len);
    if (n == -1)
        return 0;
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 1;
}

/* Look for the end of the head in the buffer from `from` on (bytes before
 * it were searched already); its length past the empty line, or 0. */
static size_t head_end(const char *p, size_t len, size_t from)
{
    const char *q = p + (from > 3 ? from - 3 : 0), *end = p + len;

    /* RFC 9112 section 2.2: ignore empty lines before a request */
    while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        q++;
        if (q < end && *q == '\n')
            return (size_t)(q - p) + 1;
        if (q + 1 < end && q[0] == '\r' && q[1] == '\n')
            return (size_t)(q - p) + 2;
    }
    return 0;
}

/* 0 when the bytes so far cannot start a request line: anything but
 * empty lines and then a method token up to the first space. */
static int method_prefix_ok(const char *p, size_t len)
{
    size_t i = 0;

    while (i < len && (p[i] == '\r' || p[i] == '\n'))
        i++;
    for (size_t n = 0; i < len && p[i] != ' '; i++, n++)
        if (!is_tchar((unsigned char)p[i]) || n == 32)
            return 0;
    return 1;
}

static void conn_run(struct conn *c)
{
    const char *why;
    int rc;

    for (;;) {
        switch (c->st) {
        case CS_HANDSHAKE:
            rc = berth_tls_handshake(c->tls, &why);
            if (rc == BERTH_TLS_WANT_READ || rc == BERTH_TLS_WANT_WRITE) {
                /* wait for the direction it needs (edge-triggered: the next
                 * event of either kind retries) */
                if (rc == BERTH_TLS_WANT_WRITE)
                    c->can_write = 0;
                else
                    c->can_read = 0;
                return;
            }
            if (rc < 0) {
                berth_log_debug("http: TLS handshake: %s", why);
                c->st = CS_CLOSE;
                continue;
            }
            c->st = CS_HEAD;
            continue;
        case CS_HEAD: {
            size_t end;

            if (c->buf && c->len && (end = head_end(c->buf, c->len, c->scanned)) != 0) {
                /* skip leading empty lines */
                size_t skip = 0;
                while (skip < end && (c->buf[skip] == '\r' || c->buf[skip] == '\n'))
                    skip++;
                if (skip) {
                    memmove(c->buf, c->buf + skip, c->len - skip);
                    c->len -= skip;
                    c->scanned = 0;
                    continue;
                }
                c->scanned = 0;
                head_in(c, end);
                continue;
            }
            c->scanned = c->len;
            if (c->len && !method_prefix_ok(c->buf, c->len)) {
                /* not HTTP (a TLS hello on the plain port, say): say so now
                 * rather than wait for a line end that never comes */
                struct request *req = request_new(c);

                if (!req) {
                    c->st = CS_CLOSE;
                    continue;
                }
                c->head_end = c->off = c->len;
                c->keep_alive = 0;
                answer_bad(c, req, HTTP_BAD_REQUEST, "not an HTTP request");
                continue;
            }
            if (c->len >= HEAD_MAX) {
                struct request *req = request_new(c);
                const char *nl = memchr(c->buf, '\n', c->len);

                if (!req) {
                    c->st = CS_CLOSE;
                    continue;
                }
                c->head_end = c->off = c->len;
                if (!nl || (size_t)(nl - c->buf) > URL_MAX)
                    answer_bad(c, req, HTTP_URI_TOO_LONG, "request line too long");
                else
                    answer_bad(c, req, HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
                               "request headers too large");
                continue;
            }
            if (!conn_readable(c))
                return;
            rc = fill(c, c->cap ? c->cap : HEAD_BUF);
            if (rc < 0) {
                c->st = CS_CLOSE;
                continue;
            }
            if (rc == 0)
                return;
            if (c->len == c->cap && c->cap < HEAD_MAX && !head_end(c->buf, c->len, c->scanned) &&
                buf_reserve(c, HEAD_MAX) < 0)
                c->st = CS_CLOSE;
            continue;
        }
        case CS_CONTINUE:
            while (c->out_off < c->out_len) {
                ssize_t n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off, 0);
                if (n == -1)
                    return;
                if (n < 0) {
                    c->st = CS_CLOSE;
                    break;
                }
                c->out_off += (size_t)n;
            }
            if (c->st == CS_CONTINUE)
                c->st = CS_BODY;
            continue;
        case CS_BODY:
            rc = body_step(c);
            if (rc < 0)
                continue;
            if (rc > 0) {
                request_final(c);
                continue;
            }
            if (!conn_readable(c))
                return;
            rc = fill(c, c->head_end + (c->chunked || c->body_left > HEAD_BUF ? BODY_BUF
                                                                             : HEAD_BUF));
            if (rc < 0) {
                c->st = CS_CLOSE; /* broke off mid-body: request_end rolls back */
                continue;
            }
            if (rc == 0)
                return;
            continue;
        case CS_HELD:
            return;
        case CS_SEND:
            rc = send_some(c);
            if (rc < 0) {
                c->st = CS_CLOSE;
                continue;
            }
            if (rc == 0)
                return;
            response_done(c);
            if (c->st == CS_HEAD && !c->ready) {
                /* fairness: this connection's next request waits until the
                 * others that were ready with it had their turn */
                ready_push(c);
                return;
            }
            continue;
        case CS_LINGER: {
            char sink[4096];
            ssize_t n;

            if (!conn_readable(c))
                return;
            n = conn_recv(c, sink, sizeof(sink));
            if (n == -1)
                return;
            if (n <= 0 || (c->linger_bytes += (size_t)n) > LINGER_BYTES)
                c->st = CS_CLOSE;
            continue;
        }
        case CS_CLOSE:
            conn_close(c);
            return;
        }
    }
}

/* ---- workers ---- */

static void worker_date(struct worker *w)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

/* A new connection for worker w (called on any worker's thread: w's own
 * lists are only touched once w sees the connection's first event). */
static void conn_add(struct http_loop *l, int fd, const struct sockaddr *sa, socklen_t salen)
{
    struct worker *w = &l->workers[__atomic_fetch_add(&l->next_worker, 1, __ATOMIC_RELAXED) %
                                   l->nworkers];
    struct epoll_event ev;
    struct conn *c;
    int one = 1;

    if (__atomic_add_fetch(&l->conns, 1, __ATOMIC_RELAXED) > l->conn_limit ||
        !(c = calloc(1, sizeof(*c)))) {
        __atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
        close(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->fd = fd;
    if (salen <= sizeof(c->peer))
        memcpy(&c->peer, sa, salen);
    c->st = CS_HEAD;
    if (l->srv->tls) {
        void *s;
        if (berth_tls_session_new(l->srv->tls, fd, &s) < 0) {
            free(c);
            close(fd);
            __atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
            return;
        }
        c->tls = s;
        c->st = CS_HANDSHAKE;
    }
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        berth_tls_session_free(c->tls);
        free(c);
        close(fd);
        __atomic_sub_fetch(&l->conns, 1, __ATOMIC_RELAXED);
    }
}

static void accept_some(struct worker *w)
{
    struct http_loop *l = w->loop;

    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                berth_log_warn("http: accept: %s", strerror(errno));
            return;
        }
        conn_add(l, fd, (struct sockaddr *)&ss, sl);
    }
}

/* Idle timeouts, lingering closes and held answers that are due; with
 * `stopping`, idle connections close and held answers go out now. */
static void worker_timers(struct worker *w, int stopping)
{
    long long now = now_ms();
    struct conn *c, *next;

    for (size_t i = 0; i < w->nheld;) {
        c = w->held[i];
        if (stopping || now >= c->due_ms) {
            w->held[i] = w->held[--w->nheld];
            c->st = CS_SEND;
            request_final(c); /* delayed is set: sends the held answer */
            conn_run(c);
            continue;
        }
        i++;
    }
    for (c = w->lru.next; c != &w->lru; c = next) {
        next = c->next;
        if (c->st == CS_LINGER && now >= c->due_ms) {
            conn_close(c);
            continue;
        }
        if (stopping && !c->req && (c->st == CS_HEAD || c->st == CS_HANDSHAKE)) {
            conn_close(c);
            continue;
        }
        if (now - c->active_ms >= CONN_TIMEOUT_SEC * 1000LL && c->st != CS_HELD)
            conn_close(c);
    }
}

/* Run the connections queued by ready_push during the last batch (those it
 * queues again wait for the next round). */
static void run_ready(struct worker *w)
{
    size_t n = w->nready;

    if (!n)
        return;
    for (size_t i = 0; i < n; i++) {
        struct conn *c = w->ready[i];

        if (!c)
            continue;
        w->ready[i] = NULL;
        c->ready = 0;
        conn_run(c);
    }
    /* keep what was queued meanwhile, in order */
    memmove(w->ready, w->ready + n, (w->nready - n) * sizeof(*w->ready));
    w->nready -= n;
}

static int worker_timeout(struct worker *w)
{
    long long now = now_ms(), next = now + 1000;

    if (w->nready)
        return 0;

    for (size_t i = 0; i < w->nheld; i++)
        if (w->held[i]->due_ms < next)
            next = w->held[i]->due_ms;
    return next > now ? (int)(next - now) : 0;
}

/* Put connections handed to this worker that it has not seen yet on its
 * list. */
static void list_new_conns(const struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;

        if (evs[i].data.ptr != &listen_tag && evs[i].data.ptr != &event_tag && !c->listed)
            lru_touch(c);
    }
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct http_loop *l = w->loop;
    struct epoll_event evs[128];
    long long last_sweep = now_ms();
    int stopping = 0;

    worker_date(w);
    for (;;) {
        int n = epoll_wait(w->ep, evs, 128, worker_timeout(w));

        if (__atomic_load_n(&l->quit, __ATOMIC_ACQUIRE)) {
            list_new_conns(evs, n);
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            struct conn *c;

            if (p == &listen_tag) {
                if (!stopping)
                    accept_some(w);
                continue;
            }
            if (p == &event_tag) {
                uint64_t v;
                if (read(w->efd, &v, sizeof(v)) < 0) {
                    /* nothing to do: the flags below say why we woke */
                }
                continue;
            }
            c = p;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->can_read = 1;
            if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->can_write = 1;
            lru_touch(c);
            conn_run(c);
        }
        run_ready(w);
        if (!stopping && __atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
            stopping = 1;
            epoll_ctl(w->ep, EPOLL_CTL_DEL, l->lfd, NULL);
            __atomic_add_fetch(&l->listen_dropped, 1, __ATOMIC_RELEASE);
            worker_timers(w, 1);
        }
        if (w->nheld || now_ms() - last_sweep >= 1000) {
            long long now = now_ms();
            if (now - last_sweep >= 1000) {
                worker_date(w);
                last_sweep = now;
            }
            worker_timers(w, stopping);
        }
    }
    /* quit: whatever is still open ends here (uploads roll back), also
     * connections handed over whose first event was not seen yet */
    for (;;) {
        int n = epoll_wait(w->ep, evs, 128, 0);

        list_new_conns(evs, n);
        if (n < 128)
            break;
    }
    while (w->lru.next != &w->lru)
        conn_close(w->lru.next);
    return NULL;
}

/* ---- server ---- */

static void loop_free(struct http_loop *l)
{
    if (!l)
        return;
    for (unsigned i = 0; i < l->nworkers; i++) {
        struct worker *w = &l->workers[i];
        if (w->ep >= 0)
            close(w->ep);
        if (w->efd >= 0)
            close(w->efd);
        for (size_t k = 0; k < w->nspare; k++)
            free(w->spare[k]);
        free(w->held);
        free(w->ready);
    }
    free(l->workers);
    if (l->lfd >= 0)
        close(l->lfd);
    free(l);
}

static int listen_on(struct http_loop *l, const struct sockaddr_storage *sa, int v6)
{
    int one = 1, zero = 0;
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

    l->lfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->lfd < 0)
        return berth_error_set(BERTH_ERROR, "socket: %s", strerror(errno));
    /* SO_REUSEADDR: restarts bind through TIME_WAIT. No SO_REUSEPORT: a
     * second server on the same port must fail, not share it silently. */
    setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6)
        setsockopt(l->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(l->lfd, (const struct sockaddr *)sa, len) < 0 || listen(l->lfd, 4096) < 0)
        return berth_error_set(BERTH_ERROR, "%s", strerror(errno));
    return 0;
}

int berth_server_start(struct berth_server **out, const struct berth_server_config *cfg,
                       struct berth_store *st)
{
    struct berth_server *srv;
    struct http_loop *l = NULL;
    unsigned threads = cfg->threads, started = 0;
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
    srv->delays = srv->authn && berth_authn_enabled(srv->authn);
    if (cfg->tls_certificate &&
        (error = berth_tls_new(&srv->tls, cfg->tls_certificate, cfg->tls_key,
                               cfg->tls_clientcas, cfg->ntls_clientcas, cfg->tls_minimum)) < 0)
        goto done;
    if (!threads) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu > 0 ? (unsigned)ncpu : 1;
    }
    error = berth_error_set(BERTH_ERROR, "out of memory");
    if (!(l = calloc(1, sizeof(*l))))
        goto done;
    l->lfd = -1;
    l->srv = srv;
    l->conn_limit = (long)connection_limit();
    if (!(l->workers = calloc(threads, sizeof(*l->workers))))
        goto done;
    l->nworkers = threads;
    for (unsigned i = 0; i < threads; i++)
        l->workers[i].ep = l->workers[i].efd = -1;
    if ((error = listen_on(l, &srv->sa, v6)) < 0)
        goto done;
    for (unsigned i = 0; i < threads; i++) {
        struct worker *w = &l->workers[i];
        struct epoll_event ev = { 0 };

        w->loop = l;
        w->lru.next = w->lru.prev = &w->lru;
        if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            (w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
            error = berth_error_set(BERTH_ERROR, "epoll: %s", strerror(errno));
            goto done;
        }
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = &listen_tag;
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, l->lfd, &ev) < 0) {
            error = berth_error_set(BERTH_ERROR, "epoll: %s", strerror(errno));
            goto done;
        }
        ev.events = EPOLLIN;
        ev.data.ptr = &event_tag;
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev) < 0) {
            error = berth_error_set(BERTH_ERROR, "epoll: %s", strerror(errno));
            goto done;
        }
    }
    srv->loop = l;
    for (started = 0; started < threads; started++)
        if (pthread_create(&l->workers[started].thread, NULL, worker_run,
                           &l->workers[started]) != 0) {
            error = berth_error_set(BERTH_ERROR, "cannot start worker threads");
            goto done;
        }
    *out = srv;
    srv = NULL;
    l = NULL;
    error = 0;
done:
    if (l && started) {
        __atomic_store_n(&l->quit, 1, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < started; i++) {
            uint64_t one = 1;
            if (write(l->workers[i].efd, &one, sizeof(one)) < 0) {
                /* the worker still wakes within a second */
            }
            pthread_join(l->workers[i].thread, NULL);
        }
    }
    loop_free(l);
    if (srv) {
        tags_cache_free(srv->tags_cache);
        berth_tls_free(srv->tls);
    }
    free(srv);
    return error;
}

uint16_t berth_server_port(const struct berth_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (!srv || !srv->loop || getsockname(srv->loop->lfd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    return 0;
}

static void wake_all(struct http_loop *l)
{
    uint64_t one = 1;

    for (unsigned i = 0; i < l->nworkers; i++)
        if (write(l->workers[i].efd, &one, sizeof(one)) < 0) {
            /* the worker still wakes within a second */
        }
}

/* Stop accepting (the listener leaves every worker's set and closes), let
 * requests in flight finish within the grace, then end the workers. Idle
 * keep-alive connections close at once, so they never use up the grace. */
void berth_server_stop(struct berth_server *srv, unsigned grace_ms)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    struct http_loop *l;
    unsigned waited = 0;

    if (!srv)
        return;
    l = srv->loop;
    __atomic_store_n(&l->stopping, 1, __ATOMIC_RELEASE);
    wake_all(l);
    while (waited < 2000 && __atomic_load_n(&l->listen_dropped, __ATOMIC_ACQUIRE) < l->nworkers) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    waited = 0;
    while (waited < grace_ms && __atomic_load_n(&srv->inflight, __ATOMIC_RELAXED) > 0) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    __atomic_store_n(&l->quit, 1, __ATOMIC_RELEASE);
    wake_all(l);
    for (unsigned i = 0; i < l->nworkers; i++)
        pthread_join(l->workers[i].thread, NULL);
    loop_free(l);
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

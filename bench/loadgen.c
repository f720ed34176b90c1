/* loadgen — a small HTTP/1.1 keep-alive load generator for berth's benchmarks.
 * N connections over T threads (one epoll loop each); every connection repeats
 * one fixed request (any method, HEAD included) and waits for the complete
 * response: status line, Content-Length or chunked body, no body for
 * HEAD/1xx/204/304; non-2xx counts as an error. After a warm-up it measures
 * for D seconds, records latencies in a log-linear histogram and prints one
 * JSON line: {"requests":..,"rps":..,"p50_ms":..,"p99_ms":..,"errors":..,...}.
 * Usage: loadgen [-c conns] [-t threads] [-d secs] [-w warmup] [-m METHOD]
 *                [-H 'Name: value']... http://host:port/path
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Histogram: values in nanoseconds. Values below 2^SUB_BITS land in exact
 * buckets; above, each power of two is split into 2^SUB_BITS linear buckets
 * (relative error < 1/2^SUB_BITS, i.e. < 0.8%). */
#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define MAX_EXP 40 /* up to 2^40 ns, about 18 minutes */
#define NBUCKETS ((MAX_EXP - SUB_BITS + 1) * SUB)
#define RBUF (256 * 1024) /* receive buffer per thread */

typedef struct {
    uint64_t count[NBUCKETS];
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
    if (e > MAX_EXP)
        return NBUCKETS - 1;
    unsigned sub = (unsigned)((v >> (e - SUB_BITS)) & (SUB - 1));
    return (e - SUB_BITS + 1) * SUB + sub;
}

/* Midpoint of a bucket, in ns. */
static double hist_value(unsigned i)
{
    if (i < SUB)
        return (double)i;
    unsigned e = i / SUB + SUB_BITS - 1, sub = i % SUB;
    double lo = ldexp((double)(SUB + sub), (int)e - SUB_BITS);
    double width = ldexp(1.0, (int)e - SUB_BITS);
    return lo + width / 2;
}

static double hist_quantile(const hist_t *h, uint64_t total, double q)
{
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)total), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return hist_value(NBUCKETS - 1);
}

/* ---- configuration shared by all threads (read-only after main) ---- */
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static char *g_req;
static size_t g_reqlen;
static int g_is_head;
static int g_conns = 64, g_threads = 2;
static double g_duration = 5, g_warmup = 1;
static _Atomic int g_phase; /* 0 warm-up, 1 measuring, 2 stop */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- one connection: a request/response state machine ---- */
enum rstate { R_HEAD, R_BODY, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF, R_TRAILER };

typedef struct {
    int fd;
    size_t sent;       /* bytes of the request written */
    uint64_t t_start;  /* when the request's first byte went out */
    enum rstate st;
    char hdr[16384];   /* response header (and line) accumulator */
    size_t hlen;
    int status;
    uint64_t remaining; /* body or chunk bytes still to read */
    uint64_t body_bytes;
    int close_after;    /* server said Connection: close */
} conn_t;

typedef struct {
    int id, nconns;
    conn_t *conns;
    hist_t hist;
    uint64_t requests, errors, conn_errors, reconnects, body_bytes;
    double lat_sum_ns;
    int first_bad_status;
} worker_t;

static int conn_open(int ep, conn_t *c)
{
    c->fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g_addr, g_addrlen) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->sent = 0;
    c->st = R_HEAD;
    c->hlen = 0;
    c->t_start = 0;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd); /* closing removes it from the epoll set */
    c->fd = -1;
}

static void want(int ep, conn_t *c, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Parse the response header in c->hdr (NUL-terminated). Returns -1 if it is
 * not a valid HTTP/1.x response header. */
static int parse_header(conn_t *c)
{
    if (strncmp(c->hdr, "HTTP/1.", 7) != 0 || c->hlen < 12)
        return -1;
    c->status = atoi(c->hdr + 9);
    if (c->status < 100 || c->status > 599)
        return -1;
    int chunked = 0, have_len = 0;
    uint64_t len = 0;
    c->close_after = (c->hdr[7] == '0'); /* HTTP/1.0 closes by default */
    for (char *line = strstr(c->hdr, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, "Content-Length:", 15) == 0) {
            len = strtoull(l + 15, NULL, 10);
            have_len = 1;
        } else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0) {
            char *v = l + 18, *end = strstr(v, "\r\n");
            for (char *p = v; p && end && p < end; p++)
                if (strncasecmp(p, "chunked", 7) == 0)
                    chunked = 1;
        } else if (strncasecmp(l, "Connection:", 11) == 0) {
            char *v = l + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                c->close_after = 1;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                c->close_after = 0;
        }
    }
    c->body_bytes = 0;
    if (g_is_head || c->status < 200 || c->status == 204 || c->status == 304) {
        c->remaining = 0;
        c->st = R_BODY;
    } else if (chunked) {
        c->st = R_CHUNK_SIZE;
        c->hlen = 0;
    } else if (have_len) {
        c->remaining = len;
        c->st = R_BODY;
    } else {
        /* body delimited by close: not keep-alive; read until EOF */
        c->remaining = UINT64_MAX;
        c->close_after = 1;
        c->st = R_BODY;
    }
    return 0;
}

/* Feed received bytes to the parser. Returns 1 when the response is complete
 * (and sets *used to the bytes consumed), 0 if more is needed, -1 on error. */
static int feed(conn_t *c, const char *buf, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n || (c->st == R_BODY && c->remaining == 0)) {
        switch (c->st) {
        case R_HEAD:
            while (i < n) {
                if (c->hlen + 1 >= sizeof c->hdr)
                    return -1;
                c->hdr[c->hlen++] = buf[i++];
                if (c->hlen >= 4 && memcmp(c->hdr + c->hlen - 4, "\r\n\r\n", 4) == 0) {
                    c->hdr[c->hlen] = 0;
                    if (parse_header(c) < 0)
                        return -1;
                    if (c->status < 200) { /* interim 1xx: read the real one */
                        c->hlen = 0;
                        c->st = R_HEAD;
                        continue;
                    }
                    break;
                }
            }
            break;
        case R_BODY: {
            uint64_t take = n - i < c->remaining ? n - i : c->remaining;
            i += take;
            c->body_bytes += take;
            if (c->remaining != UINT64_MAX)
                c->remaining -= take;
            if (c->remaining == 0) {
                *used = i;
                return 1;
            }
            break;
        }
        case R_CHUNK_SIZE:
        case R_TRAILER:
            /* collect one line in hdr */
            while (i < n) {
                if (c->hlen + 1 >= sizeof c->hdr)
                    return -1;
                c->hdr[c->hlen++] = buf[i++];
                if (c->hlen >= 2 && c->hdr[c->hlen - 2] == '\r' && c->hdr[c->hlen - 1] == '\n') {
                    c->hdr[c->hlen] = 0;
                    if (c->st == R_TRAILER) {
                        int empty = (c->hlen == 2);
                        c->hlen = 0;
                        if (empty) {
                            *used = i;
                            return 1;
                        }
                        continue;
                    }
                    char *end;
                    unsigned long long sz = strtoull(c->hdr, &end, 16);
                    if (end == c->hdr)
                        return -1;
                    c->hlen = 0;
                    if (sz == 0) {
                        c->st = R_TRAILER;
                    } else {
                        c->remaining = sz;
                        c->st = R_CHUNK_DATA;
                    }
                    break;
                }
            }
            break;
        case R_CHUNK_DATA: {
            uint64_t take = n - i < c->remaining ? n - i : c->remaining;
            i += take;
            c->body_bytes += take;
            c->remaining -= take;
            if (c->remaining == 0) {
                c->st = R_CHUNK_CRLF;
                c->remaining = 2;
            }
            break;
        }
        case R_CHUNK_CRLF: {
            uint64_t take = n - i < c->remaining ? n - i : c->remaining;
            i += take;
            c->remaining -= take;
            if (c->remaining == 0) {
                c->st = R_CHUNK_SIZE;
                c->hlen = 0;
            }
            break;
        }
        }
    }
    *used = i;
    return 0;
}

/* Write as much of the request as the socket takes. -1 on error. */
static int send_some(int ep, conn_t *c)
{
    if (c->sent == 0)
        c->t_start = now_ns();
    while (c->sent < g_reqlen) {
        ssize_t w = send(c->fd, g_req + c->sent, g_reqlen - c->sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        c->sent += (size_t)w;
    }
    want(ep, c, EPOLLIN);
    return 0;
}

static void restart(int ep, worker_t *w, conn_t *c, int failed)
{
    conn_close(c);
    if (failed && atomic_load(&g_phase) == 1)
        w->conn_errors++;
    if (atomic_load(&g_phase) == 2)
        return;
    w->reconnects++;
    if (conn_open(ep, c) < 0) {
        w->conn_errors++;
        usleep(1000);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        exit(1);
    }
    for (int i = 0; i < w->nconns; i++) {
        w->conns[i].fd = -1;
        if (conn_open(ep, &w->conns[i]) < 0) {
            perror("connect");
            exit(1);
        }
    }
    struct epoll_event evs[256];
    char *rbuf = malloc(RBUF);
    if (!rbuf)
        exit(1);
    while (atomic_load(&g_phase) != 2) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->sent < g_reqlen) {
                if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
                    restart(ep, w, c, 1);
                    continue;
                }
                if (evs[k].events & EPOLLOUT) {
                    if (send_some(ep, c) < 0)
                        restart(ep, w, c, 1);
                }
                continue;
            }
            /* reading the response */
            for (;;) {
                ssize_t r = recv(c->fd, rbuf, RBUF, 0);
                if (r < 0) {
                    if (errno != EAGAIN)
                        restart(ep, w, c, 1);
                    break;
                }
                if (r == 0) {
                    /* EOF: completes a close-delimited body, else an error */
                    if (c->st == R_BODY && c->remaining == UINT64_MAX) {
                        c->remaining = 0;
                        goto complete;
                    }
                    restart(ep, w, c, c->sent > 0 && (c->st != R_HEAD || c->hlen > 0));
                    break;
                }
                size_t used = 0;
                int done = feed(c, rbuf, (size_t)r, &used);
                if (done < 0) {
                    restart(ep, w, c, 1);
                    break;
                }
                if (!done)
                    continue;
                if (used != (size_t)r) { /* server sent more than one response */
                    restart(ep, w, c, 1);
                    break;
                }
            complete:;
                uint64_t lat = now_ns() - c->t_start;
                if (atomic_load(&g_phase) == 1) {
                    w->hist.count[hist_index(lat)]++;
                    w->requests++;
                    w->lat_sum_ns += (double)lat;
                    w->body_bytes += c->body_bytes;
                    if (c->status < 200 || c->status > 299) {
                        w->errors++;
                        if (!w->first_bad_status)
                            w->first_bad_status = c->status;
                    }
                }
                if (c->close_after) {
                    restart(ep, w, c, 0);
                    break;
                }
                c->sent = 0;
                c->st = R_HEAD;
                c->hlen = 0;
                if (send_some(ep, c) < 0)
                    restart(ep, w, c, 1);
                else if (c->sent < g_reqlen)
                    want(ep, c, EPOLLOUT);
                break;
            }
        }
    }
    for (int i = 0; i < w->nconns; i++)
        conn_close(&w->conns[i]);
    free(rbuf);
    close(ep);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [-c conns] [-t threads] [-d secs] [-w warmup_secs] "
                    "[-m METHOD] [-H 'Name: value']... http://host:port/path\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *method = "GET";
    char extra[8192] = "";
    size_t extralen = 0;
    int opt;
    while ((opt = getopt(argc, argv, "c:t:d:w:m:H:")) != -1) {
        switch (opt) {
        case 'c': g_conns = atoi(optarg); break;
        case 't': g_threads = atoi(optarg); break;
        case 'd': g_duration = atof(optarg); break;
        case 'w': g_warmup = atof(optarg); break;
        case 'm': method = optarg; break;
        case 'H': {
            int k = snprintf(extra + extralen, sizeof extra - extralen, "%s\r\n", optarg);
            if (k < 0 || (size_t)k >= sizeof extra - extralen)
                usage();
            extralen += (size_t)k;
            break;
        }
        default: usage();
        }
    }
    if (optind != argc - 1 || g_conns < 1 || g_threads < 1 || g_duration <= 0 || g_warmup < 0)
        usage();
    if (g_threads > g_conns)
        g_threads = g_conns;

    /* parse http://host[:port]/path */
    const char *url = argv[optind];
    if (strncmp(url, "http://", 7) != 0)
        usage();
    const char *hp = url + 7, *slash = strchr(hp, '/');
    const char *path = slash ? slash : "/";
    size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
    char host[256], port[16] = "80";
    if (hplen == 0 || hplen >= sizeof host)
        usage();
    memcpy(host, hp, hplen);
    host[hplen] = 0;
    char hostport[256];
    memcpy(hostport, host, hplen + 1);
    char *colon = strrchr(host, ':');
    if (colon && !strchr(host, ']')) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(gai));
        return 1;
    }
    memcpy(&g_addr, ai->ai_addr, ai->ai_addrlen);
    g_addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);

    g_is_head = strcasecmp(method, "HEAD") == 0;
    size_t cap = strlen(method) + strlen(path) + strlen(hostport) + extralen + 64;
    g_req = malloc(cap);
    if (!g_req)
        return 1;
    int k = snprintf(g_req, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, path, hostport, extra);
    if (k < 0 || (size_t)k >= cap)
        return 1;
    g_reqlen = (size_t)k;

    worker_t *ws = calloc((size_t)g_threads, sizeof *ws);
    pthread_t *tids = calloc((size_t)g_threads, sizeof *tids);
    if (!ws || !tids)
        return 1;
    for (int i = 0; i < g_threads; i++) {
        ws[i].id = i;
        ws[i].nconns = g_conns / g_threads + (i < g_conns % g_threads);
        ws[i].conns = calloc((size_t)ws[i].nconns, sizeof(conn_t));
        if (!ws[i].conns)
            return 1;
        if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    struct timespec ts;
    ts.tv_sec = (time_t)g_warmup;
    ts.tv_nsec = (long)((g_warmup - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    uint64_t t0 = now_ns();
    atomic_store(&g_phase, 1);
    fputs("loadgen: measuring\n", stderr); /* lets a caller sample server CPU here */
    fflush(stderr);
    ts.tv_sec = (time_t)g_duration;
    ts.tv_nsec = (long)((g_duration - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    atomic_store(&g_phase, 2);
    double elapsed = (double)(now_ns() - t0) / 1e9;
    fputs("loadgen: done\n", stderr);
    fflush(stderr);
    for (int i = 0; i < g_threads; i++)
        pthread_join(tids[i], NULL);

    static hist_t all;
    uint64_t req = 0, err = 0, cerr = 0, reconn = 0, bytes = 0;
    double lat_sum = 0;
    int bad = 0;
    for (int i = 0; i < g_threads; i++) {
        for (unsigned b = 0; b < NBUCKETS; b++)
            all.count[b] += ws[i].hist.count[b];
        req += ws[i].requests;
        err += ws[i].errors;
        cerr += ws[i].conn_errors;
        reconn += ws[i].reconnects;
        bytes += ws[i].body_bytes;
        lat_sum += ws[i].lat_sum_ns;
        if (!bad)
            bad = ws[i].first_bad_status;
        free(ws[i].conns);
    }
    double maxv = 0;
    for (unsigned b = NBUCKETS; b-- > 0;)
        if (all.count[b]) {
            maxv = hist_value(b);
            break;
        }
    printf("{\"requests\":%llu,\"rps\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu,\"conn_errors\":%llu,"
           "\"reconnects\":%llu,\"first_bad_status\":%d,\"body_bytes_per_req\":%.1f,"
           "\"seconds\":%.3f,\"conns\":%d,\"threads\":%d}\n",
           (unsigned long long)req, (double)req / elapsed,
           req ? lat_sum / (double)req / 1e6 : 0.0, hist_quantile(&all, req, 0.50) / 1e6,
           hist_quantile(&all, req, 0.90) / 1e6, hist_quantile(&all, req, 0.99) / 1e6,
           hist_quantile(&all, req, 0.999) / 1e6, maxv / 1e6, (unsigned long long)(err + cerr),
           (unsigned long long)cerr, (unsigned long long)reconn,
           bad, req ? (double)bytes / (double)req : 0.0, elapsed, g_conns, g_threads);
    free(ws);
    free(tids);
    free(g_req);
    return 0;
}

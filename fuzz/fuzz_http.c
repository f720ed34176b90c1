/*
 * libFuzzer target for berth's HTTP/1.1 server (src/server/http.c: request
 * line, header fields, Content-Length / chunked bodies, Expect, keep-alive,
 * query strings) and everything behind it, through a real socket. One
 * server runs in the process (a store in a temporary directory, one worker
 * thread, started at the first input); each input is written raw to a new
 * loopback connection, the write side is shut, and the answer is read to
 * the end. Invariants: the server never crashes or hangs (every connection
 * ends within a few seconds), every answer it sends starts with an HTTP/1.1
 * status line, and after each input a fresh `GET /v2/` still gets 200.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/digest.h"
#include "server/log.h"
#include "server/server.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (256 * 1024)
#define DEADLINE_MS 5000

static uint16_t port;
static char dir[] = "/tmp/berth-fuzz-http-XXXXXX";
static struct berth_store *st;
static struct berth_server *srv;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At exit: stop the server, close the store, remove its directory (the
 * replay in `make test` runs under LeakSanitizer and leaves nothing). */
static void stop(void)
{
    berth_server_stop(srv, 1000);
    berth_store_free(st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void start(void)
{
    struct berth_store_config scfg = { 0 };
    struct berth_server_config cfg = { 0 };

    struct berth_digest d;

    /* OpenSSL registers its own exit handler when first used: use it now,
     * so that handler runs after stop() (exit handlers run in reverse). */
    berth_digest_buf(&d, BERTH_SHA256, (const uint8_t *)"", 0);
    signal(SIGPIPE, SIG_IGN);
    berth_log_level = BERTH_LOG_ERROR;
    if (!mkdtemp(dir))
        abort();
    scfg.root = dir;
    scfg.no_fsync = 1;
    if (berth_store_open(&st, &scfg) < 0)
        abort();
    cfg.addr = "127.0.0.1:0";
    cfg.delete_enabled = 1;
    cfg.threads = 1;
    if (berth_server_start(&srv, &cfg, st) < 0)
        abort();
    port = berth_server_port(srv);
    atexit(stop);
}


static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open file descriptors of this process (the server's connections are
 * among them): a leak shows here. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A new connection. Hundreds of thousands of them fill the loopback's
 * ephemeral ports with TIME_WAIT, and libFuzzer's signals can interrupt a
 * connect: a short wait and a retry are the fuzzer's business; a refusal
 * after that is the server's. */
static int dial(void)
{
    struct sockaddr_in sa = { 0 };
    long long deadline = now_ms() + DEADLINE_MS;

    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
            abort();
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        close(fd);
        if ((errno != EADDRNOTAVAIL && errno != EINTR) || now_ms() > deadline) {
            fprintf(stderr, "fuzz_http: connect: %s (%d open descriptors)\n", strerror(errno),
                    open_fds());
            abort();
        }
        usleep(10000);
    }
}

/* Send `len` bytes (the server may close early: that is an answer too),
 * shut the write side, read until the server closes. Returns the bytes
 * read (at most `cap` kept in buf); aborts when the server hangs. */
static size_t exchange(const uint8_t *p, size_t len, char *buf, size_t cap)
{
    long long deadline = now_ms() + DEADLINE_MS;
    int fd = dial();
    size_t got = 0, off = 0;

    while (off < len) {
        ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            break;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            abort();
        /* the server reads as we write; let it */
        struct pollfd pfd = { fd, POLLOUT, 0 };
        if (now_ms() > deadline || poll(&pfd, 1, 100) < 0)
            abort();
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int left = (int)(deadline - now_ms());
        char tmp[4096];
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, left) == 0) {
            fprintf(stderr, "fuzz_http: the server neither answered nor closed in %d ms\n",
                    DEADLINE_MS);
            abort();
        }
        n = recv(fd, tmp, sizeof(tmp), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        if (got < cap)
            memcpy(buf + got, tmp, (size_t)n < cap - got ? (size_t)n : cap - got);
        got += (size_t)n;
    }
    close(fd);
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char ping[] = "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[64];
    size_t n;

    if (!port)
        start();
    if (size > INPUT_MAX)
        return 0;
    n = exchange(data, size, buf, sizeof(buf));
    if (n > 0 && (n < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5'))
        abort(); /* something that is not a status line */
    n = exchange((const uint8_t *)ping, sizeof(ping) - 1, buf, sizeof(buf));
    if (n < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0)
        abort(); /* the server stopped serving */
    return 0;
}

/*
 * The floor of an upload's CPU cost on this machine, without a registry:
 * a writer thread sends 1 GiB over loopback TCP in 1 MiB write(2)s (as curl
 * does); the receiving thread, timed alone (RUSAGE_THREAD), does one of
 *   0  recv into 256 KiB + SHA-256 (berth's sha2.c) + pwrite to a file
 *   1  splice socket -> pipe -> file, SHA-256 by pread back from the cache
 *   2  splice socket -> pipe -> file, SHA-256 over an mmap of the cache
 *   3  recv + SHA-256 (no file)
 *   4  recv only
 * and prints MB/s and receiver CPU-seconds per GB (issue 3: the target of
 * 1.0 CPU-s/GB for a whole upload, docs/internals.md "Uploads"). Each mode
 * ends with fsync. Build and run from the repository root:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o /tmp/recvfloor bench/recvfloor.c \
 *      src/core/sha2.c -lpthread
 *   for m in 4 3 0 1 2; do /tmp/recvfloor $m build/recvfloor.dat; done
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/sha2.h"

#define TOTAL (1UL << 30)
#define PIECE (1 << 20)

static int port;

static void *sender(void *arg)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char *buf = malloc(PIECE);
    size_t sent = 0;

    (void)arg;
    if (!buf || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(1);
    }
    for (size_t i = 0; i < PIECE; i++)
        buf[i] = (char)(i * 7 + (i >> 12));
    while (sent < TOTAL) {
        ssize_t n = write(s, buf, PIECE);

        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    close(s);
    free(buf);
    return NULL;
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
    struct rusage r;

    getrusage(RUSAGE_THREAD, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

/* Hash [from, to) of fd from the page cache: by pread (mode 1) or mmap. */
static void hash_back(struct berth_sha256 *h, int fd, size_t from, size_t to, int mode,
                      char *buf, size_t cap)
{
    if (mode == 1) {
        while (from < to) {
            size_t k = to - from < cap ? to - from : cap;
            ssize_t n = pread(fd, buf, k, (off_t)from);

            if (n <= 0)
                exit(1);
            berth_sha256_update(h, buf, (size_t)n);
            from += (size_t)n;
        }
    } else if (to > from) {
        size_t base = from & ~(size_t)4095;
        char *m = mmap(NULL, to - base, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)base);

        if (m == MAP_FAILED)
            exit(1);
        berth_sha256_update(h, m + (from - base), to - from);
        munmap(m, to - base);
    }
}

int main(int argc, char **argv)
{
    static char buf[256 << 10];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    struct berth_sha256 h;
    pthread_t th;
    size_t got = 0;
    uint8_t d[32];
    double t0, c0, t, cpu;
    int l, c, fd, mode, one = 1;
    ssize_t n;

    if (argc != 3) {
        fprintf(stderr, "usage: %s MODE(0-4) FILE\n", argv[0]);
        return 2;
    }
    mode = atoi(argv[1]);
    l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0) {
        perror("listen");
        return 1;
    }
    port = ntohs(sa.sin_port);
    pthread_create(&th, NULL, sender, NULL);
    c = accept(l, NULL, NULL);
    if ((fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0) {
        perror(argv[2]);
        return 1;
    }
    berth_sha256_init(&h);
    t0 = now();
    c0 = thread_cpu();
    if (mode == 0 || mode == 3 || mode == 4) {
        while ((n = recv(c, buf, sizeof(buf), 0)) > 0) {
            if (mode != 4)
                berth_sha256_update(&h, buf, (size_t)n);
            if (mode == 0 && pwrite(fd, buf, (size_t)n, (off_t)got) != n)
                return 1;
            got += (size_t)n;
        }
    } else {
        int p[2];
        size_t hashed = 0;

        if (pipe(p) < 0)
            return 1;
        fcntl(p[0], F_SETPIPE_SZ, PIECE);
        while ((n = splice(c, NULL, p[1], NULL, PIECE, SPLICE_F_MOVE)) > 0) {
            while (n > 0) {
                loff_t o = (loff_t)got;
                ssize_t m = splice(p[0], NULL, fd, &o, (size_t)n, SPLICE_F_MOVE);

                if (m <= 0)
                    return 1;
                n -= m;
                got += (size_t)m;
            }
            if (got - hashed >= PIECE) {
                hash_back(&h, fd, hashed, got, mode, buf, sizeof(buf));
                hashed = got;
            }
        }
        hash_back(&h, fd, hashed, got, mode, buf, sizeof(buf));
    }
    fsync(fd);
    t = now() - t0;
    cpu = thread_cpu() - c0;
    berth_sha256_final(&h, d);
    printf("mode %d: %.0f MB/s, receiver %.2f CPU-s/GB (%zu bytes, sha256 %02x%02x...)\n", mode,
           (double)got / t / 1e6, cpu / ((double)got / 1e9), got, d[0], d[1]);
    pthread_join(th, NULL);
    unlink(argv[2]);
    return 0;
}

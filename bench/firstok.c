/* firstok — time from exec to the first "200" on GET /v2/ (berth benchmarks).
 *
 * Spawns the given command (posix_spawn, so no fork of a large parent), then
 * polls 127.0.0.1:PORT in a tight connect loop (100 us between attempts) until
 * GET /v2/ answers 200, prints {"ms":..,"cpu_ms":..,"faults":..} and stops
 * the server with SIGTERM (SIGKILL after 5 s). cpu_ms is the CPU time all the
 * server's threads used until then (schedstat, ns resolution) and faults its
 * page faults: on a shared, noisy machine these vary far less than the wall
 * time. Gives up after TIMEOUT_MS and prints {"ms":null}.
 * Usage: firstok PORT TIMEOUT_MS command [args...]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 1 if GET /v2/ on the port answers 200, 0 otherwise. */
static int probe(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok = 0;
    if (fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
        static const char req[] = "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        char buf[64];
        size_t have = 0;
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
            while (have < 12) {
                ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
                if (r <= 0)
                    break;
                have += (size_t)r;
            }
            ok = have >= 12 && memcmp(buf, "HTTP/1.", 7) == 0 && memcmp(buf + 9, "200", 3) == 0;
        }
    }
    close(fd);
    return ok;
}

/* CPU time (ms) of every thread of pid so far, from /proc/PID/task/TID/schedstat. */
static double cpu_ms(pid_t pid)
{
    char path[64];
    double total = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        char p2[384];
        unsigned long long ns;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof p2, "%s/%s/schedstat", path, e->d_name);
        FILE *f = fopen(p2, "r");
        if (f && fscanf(f, "%llu", &ns) == 1)
            total += (double)ns / 1e6;
        if (f)
            fclose(f);
    }
    closedir(d);
    return total;
}

/* Minor + major page faults of pid so far (/proc/PID/stat fields 10 and 12). */
static long faults(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    long v[12] = {0};
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt */
    if (!p || sscanf(p + 1, " %*c %ld %ld %ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2],
                     &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) != 9)
        return -1;
    return v[6] + v[8];
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: firstok PORT TIMEOUT_MS command [args...]\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double timeout = atof(argv[2]);
    pid_t pid;
    double t0 = now_ms();
    int rc = posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ);
    if (rc != 0) {
        fprintf(stderr, "firstok: spawn %s: %s\n", argv[3], strerror(rc));
        return 1;
    }
    double ms = -1;
    struct timespec pause = {.tv_nsec = 100000};
    while (now_ms() - t0 < timeout) {
        if (probe(&sa)) {
            ms = now_ms() - t0;
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = -1; /* the server exited on its own */
            break;
        }
        nanosleep(&pause, NULL);
    }
    if (ms >= 0)
        printf("{\"ms\":%.3f,\"cpu_ms\":%.3f,\"faults\":%ld}\n", ms, cpu_ms(pid), faults(pid));
    else
        printf("{\"ms\":null}\n");
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
            if (waitpid(pid, NULL, WNOHANG) == pid)
                return ms >= 0 ? 0 : 1;
            nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return ms >= 0 ? 0 : 1;
}

/* sendsrv — the loopback ceiling for berth's benchmarks.
 *
 * Serves one file with sendfile(2) to every HTTP request on 127.0.0.1:PORT
 * (one thread per connection, keep-alive, any path), so `curl -o /dev/null`
 * against it measures what the kernel's loopback can carry from page cache:
 * the best any registry's blob GET could do on this machine.
 * Usage: sendsrv PORT FILE   (runs until killed)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *g_path;

static void *serve(void *arg)
{
    int cfd = (int)(long)arg;
    char req[8192];
    size_t have = 0;
    for (;;) {
        /* read one request header (bodies are not expected) */
        char *end = NULL;
        while (!(end = memmem(req, have, "\r\n\r\n", 4))) {
            if (have == sizeof req)
                goto out;
            ssize_t r = recv(cfd, req + have, sizeof req - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        int head = strncmp(req, "HEAD ", 5) == 0;
        size_t used = (size_t)(end + 4 - req);
        memmove(req, req + used, have - used);
        have -= used;

        int fd = open(g_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            goto out;
        char hdr[256];
        int n = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: %lld\r\n\r\n",
                         (long long)st.st_size);
        if (send(cfd, hdr, (size_t)n, MSG_NOSIGNAL | (head ? 0 : MSG_MORE)) != n) {
            close(fd);
            goto out;
        }
        off_t off = 0;
        while (!head && off < st.st_size) {
            ssize_t w = sendfile(cfd, fd, &off, (size_t)(st.st_size - off));
            if (w <= 0) {
                close(fd);
                goto out;
            }
        }
        close(fd);
    }
out:
    close(cfd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sendsrv PORT FILE\n");
        return 2;
    }
    g_path = argv[2];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0) {
        perror("sendsrv: bind/listen");
        return 1;
    }
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("sendsrv: accept");
            return 1;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(long)cfd) != 0) {
            close(cfd);
            continue;
        }
        pthread_detach(t);
    }
}

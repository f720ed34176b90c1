/*
 * Progress display of blob transfers (see progress.h). State lives under one
 * mutex; a terminal display redraws all its lines in place (\r, erase line,
 * ANSI cursor-up over the lines drawn last time), throttled to 10 redraws a
 * second except when a blob finishes. Invariant: `drawn` is the number of
 * lines currently on the screen below the cursor's home line, so the next
 * redraw moves up exactly that many.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/progress.h"

#define BAR_WIDTH 24
#define MAX_LINES 16

enum mode { M_QUIET, M_PLAIN, M_TTY, M_JSON };

struct entry {
    char digest[140];
    uint64_t size, done;
    const char *state; /* NULL while in flight */
};

struct berth_progress {
    enum mode mode;
    pthread_mutex_t lock;
    struct entry *e;
    size_t n, cap;
    double start, last_draw;
    int drawn;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A JSON string literal on stdout (tags inside layouts may hold any text). */
static void put_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static const char *short_digest(const char *d)
{
    const char *colon = strchr(d, ':');

    return colon ? colon + 1 : d;
}

void berth_progress_format_bytes(char *buf, size_t size, uint64_t b)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
    double v = (double)b;
    size_t u = 0;

    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 " B", b);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

struct berth_progress *berth_progress_new(int quiet, int json)
{
    struct berth_progress *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    if (json)
        p->mode = M_JSON;
    else if (quiet)
        p->mode = M_QUIET;
    else if (isatty(STDERR_FILENO))
        p->mode = M_TTY;
    else
        p->mode = M_PLAIN;
    pthread_mutex_init(&p->lock, NULL);
    p->start = now();
    return p;
}

void berth_progress_free(struct berth_progress *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p->e);
    free(p);
}

static void bar(char *out, uint64_t done, uint64_t size)
{
    size_t fill = size ? (size_t)((double)done / (double)size * BAR_WIDTH) : BAR_WIDTH;

    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    out[0] = '[';
    for (size_t i = 0; i < BAR_WIDTH; i++)
        out[1 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    out[BAR_WIDTH + 1] = ']';
    out[BAR_WIDTH + 2] = '\0';
}

/* Redraw the whole display; caller holds the lock. */
static void draw(struct berth_progress *p, int force)
{
    double t = now();
    uint64_t done = 0, total = 0;
    char b[BAR_WIDTH + 3], s1[32], s2[32], s3[32];
    size_t first = 0;
    int lines = 0;

    if (!force && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    if (p->drawn)
        fprintf(stderr, "\033[%dA", p->drawn);
    /* Only the last MAX_LINES blobs get a line of their own. */
    if (p->n > MAX_LINES)
        first = p->n - MAX_LINES;
    for (size_t i = 0; i < p->n; i++) {
        struct entry *e = &p->e[i];

        total += e->size;
        done += e->state ? e->size : (e->done < e->size ? e->done : e->size);
        if (i < first)
            continue;
        berth_progress_format_bytes(s1, sizeof(s1), e->state ? e->size : e->done);
        berth_progress_format_bytes(s2, sizeof(s2), e->size);
        if (e->state) {
            fprintf(stderr, "\r\033[K%.12s: %-8s %s\n", short_digest(e->digest), e->state, s2);
        } else {
            bar(b, e->done, e->size);
            fprintf(stderr, "\r\033[K%.12s: %s %s / %s\n", short_digest(e->digest), b, s1, s2);
        }
        lines++;
    }
    {
        double el = t - p->start;
        double rate = el > 0.05 ? (double)done / el : 0.0;

        bar(b, done, total);
        berth_progress_format_bytes(s1, sizeof(s1), done);
        berth_progress_format_bytes(s2, sizeof(s2), total);
        berth_progress_format_bytes(s3, sizeof(s3), (uint64_t)rate);
        if (rate > 0 && done < total) {
            unsigned eta = (unsigned)((double)(total - done) / rate);

            fprintf(stderr, "\r\033[Ktotal         %s %s / %s  %s/s  ETA %u:%02u\n", b, s1, s2,
                    s3, eta / 60, eta % 60);
        } else {
            fprintf(stderr, "\r\033[Ktotal         %s %s / %s  %s/s\n", b, s1, s2, s3);
        }
        lines++;
    }
    p->drawn = lines;
    fflush(stderr);
}

int berth_progress_add(struct berth_progress *p, const char *digest, uint64_t size)
{
    int id = -1;

    if (!p)
        return -1;
    pthread_mutex_lock(&p->lock);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct entry *ne = realloc(p->e, cap * sizeof(*ne));

        if (!ne)
            goto done;
        p->e = ne;
        p->cap = cap;
    }
    memset(&p->e[p->n], 0, sizeof(p->e[p->n]));
    snprintf(p->e[p->n].digest, sizeof(p->e[p->n].digest), "%s", digest);
    p->e[p->n].size = size;
    id = (int)p->n++;
done:
    pthread_mutex_unlock(&p->lock);
    return id;
}

void berth_progress_update(struct berth_progress *p, int id, uint64_t done)
{
    if (!p || id < 0)
        return;
    pthread_mutex_lock(&p->lock);
    if ((size_t)id < p->n) {
        p->e[id].done = done;
        if (p->mode == M_TTY)
            draw(p, 0);
    }
    pthread_mutex_unlock(&p->lock);
}

void berth_progress_blob_done(struct berth_progress *p, int id, const char *action, uint64_t bytes)
{
    char sz[32];
    struct entry *e;

    if (!p || id < 0)
        return;
    pthread_mutex_lock(&p->lock);
    if ((size_t)id >= p->n)
        goto done;
    e = &p->e[id];
    e->state = action;
    e->done = e->size;
    switch (p->mode) {
    case M_TTY:
        draw(p, 1);
        break;
    case M_PLAIN:
        berth_progress_format_bytes(sz, sizeof(sz), e->size);
        fprintf(stderr, "%.12s: %s %s\n", short_digest(e->digest), action, sz);
        break;
    case M_JSON:
        printf("{\"event\":\"blob\",\"digest\":\"%s\",\"action\":\"%s\",\"bytes\":%" PRIu64 "}\n",
               e->digest, action, bytes);
        fflush(stdout);
        break;
    case M_QUIET:
        break;
    }
done:
    pthread_mutex_unlock(&p->lock);
}

void berth_progress_manifest(struct berth_progress *p, const char *digest, const char *tag)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->mode == M_JSON) {
        printf("{\"event\":\"manifest\",\"digest\":\"%s\"", digest);
        if (tag) {
            printf(",\"tag\":");
            put_json_str(tag);
        }
        printf("}\n");
        fflush(stdout);
    } else if ((p->mode == M_PLAIN || p->mode == M_TTY) && tag) {
        fprintf(stderr, "%s: tagged %.12s\n", tag, short_digest(digest));
        if (p->mode == M_TTY)
            p->drawn = 0; /* the bars stay above; start a fresh block */
    }
    pthread_mutex_unlock(&p->lock);
}

void berth_progress_finish(struct berth_progress *p, const char *digest)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->mode == M_JSON) {
        printf("{\"event\":\"done\",\"digest\":\"%s\"}\n", digest);
        fflush(stdout);
    }
    p->drawn = 0;
    pthread_mutex_unlock(&p->lock);
}

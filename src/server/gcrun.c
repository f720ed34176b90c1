/*
 * The garbage-collection runner of `berth serve` (see gcrun.h). One thread
 * per runner sleeps on a condition variable (CLOCK_MONOTONIC, so a clock
 * change never starts or delays a run) until the next scheduled run, an
 * on-demand request or the stop. Runs happen on that thread only, so "one
 * at a time" is a property of the thread, not of locking; the lock guards
 * the status that request handlers read.
 */
#include "gcrun.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "log.h"

struct berth_gcrun {
    struct berth_store *st;
    const struct berth_maint_config *mc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the thread: a request or the stop */
    pthread_cond_t done; /* waiters: a run finished */
    volatile int stop;   /* the collector's o->stop; set under lock */
    int pending;         /* a request waits for the thread */
    struct berth_gcrun_status status;
    int64_t next_mono;   /* ms, CLOCK_MONOTONIC, of the next scheduled run; 0: none */
};


static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *berth_gcrun_state_name(enum berth_gcrun_state s)
{
    switch (s) {
    case BERTH_GCRUN_RUNNING:
        return "running";
    case BERTH_GCRUN_FINISHED:
        return "finished";
    case BERTH_GCRUN_STOPPED:
        return "stopped";
    case BERTH_GCRUN_FAILED:
        return "failed";
    default:
        return "idle";
    }
}

/* Each removal at debug level: the summary line is what info shows. */
static void report(void *ctx, const char *kind, const char *repo, const char *what,
                   uint64_t bytes)
{
    const struct berth_gcrun_params *p = ctx;

    berth_log_debug("gc: %s %s %s%s%s (%llu bytes)", p->dry_run ? "would remove" : "removed",
                    kind, repo ? repo : "", repo ? " " : "", what, (unsigned long long)bytes);
}

static void log_summary(const struct berth_gcrun_status *s)
{
    const struct berth_gc_stats *x = &s->stats;

    if (s->state == BERTH_GCRUN_FAILED && s->code == BERTH_EEXISTS) {
        /* `berth gc` in another process: it does the work */
        berth_log_warn("gc #%llu (%s) skipped: %s", (unsigned long long)s->id, s->trigger,
                       s->error);
        return;
    }
    if (s->state == BERTH_GCRUN_FAILED) {
        berth_log_error("gc #%llu (%s) failed after %.2fs: %s", (unsigned long long)s->id,
                        s->trigger, s->seconds, s->error);
        return;
    }
    berth_log_info("gc #%llu (%s%s) %s in %.2fs: %s %llu tags, %llu manifests, %llu links, "
                   "%llu blobs (%llu bytes), %llu orphans, %llu uploads; live %llu blobs "
                   "(%llu bytes)",
                   (unsigned long long)s->id, s->trigger, s->params.dry_run ? ", dry run" : "",
                   s->state == BERTH_GCRUN_STOPPED ? "stopped" : "finished", s->seconds,
                   s->params.dry_run ? "would remove" : "removed",
                   (unsigned long long)x->tags, (unsigned long long)x->manifests,
                   (unsigned long long)x->links, (unsigned long long)x->blobs,
                   (unsigned long long)x->bytes, (unsigned long long)x->orphans,
                   (unsigned long long)x->uploads, (unsigned long long)x->blobs_live,
                   (unsigned long long)x->bytes_live);
}

/* One collection with the status already marked running. Called and
 * returns with the lock held; runs unlocked. */
static void run_locked(struct berth_gcrun *g)
{
    struct berth_gcrun_params p = g->status.params;
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats stats = { 0 };
    double t0 = mono_sec();
    int error;

    o.dry_run = p.dry_run;
    o.untagged = p.untagged;
    o.grace_sec = p.grace_sec;
    o.batch = g->mc->gc_batch;
    o.retention = g->mc->retention;
    o.nretention = g->mc->nretention;
    o.immutable = g->mc->immutable;
    o.nimmutable = g->mc->nimmutable;
    o.report = report;
    o.ctx = &p;
    o.stop = &g->stop;
    pthread_mutex_unlock(&g->lock);
    error = berth_gc_run(g->st, &o, &stats);
    pthread_mutex_lock(&g->lock);
    g->status.seconds = mono_sec() - t0;
    g->status.finished = (int64_t)time(NULL);
    g->status.stats = stats;
    if (error < 0) {
        g->status.state = BERTH_GCRUN_FAILED;
        g->status.code = error;
        snprintf(g->status.error, sizeof(g->status.error), "%s", berth_error_msg());
    } else {
        g->status.state = stats.stopped ? BERTH_GCRUN_STOPPED : BERTH_GCRUN_FINISHED;
    }
    log_summary(&g->status);
    pthread_cond_broadcast(&g->done);
}

/* Mark a new run as running (under the lock): requests see it at once. */
static void begin_locked(struct berth_gcrun *g, const char *trigger,
                         const struct berth_gcrun_params *p)
{
    uint64_t id = g->status.id + 1;
    int64_t next = g->status.next_run;

    memset(&g->status, 0, sizeof(g->status));
    g->status.state = BERTH_GCRUN_RUNNING;
    g->status.id = id;
    g->status.trigger = trigger;
    g->status.params = *p;
    g->status.started = (int64_t)time(NULL);
    g->status.next_run = next;
}

static void schedule_locked(struct berth_gcrun *g)
{
    if (g->mc->gc_interval_ms <= 0) {
        g->next_mono = 0;
        g->status.next_run = 0;
        return;
    }
    g->next_mono = mono_ms() + g->mc->gc_interval_ms;
    g->status.next_run = (int64_t)time(NULL) + g->mc->gc_interval_ms / 1000;
}

static void *thread_main(void *arg)
{
    struct berth_gcrun *g = arg;

    pthread_mutex_lock(&g->lock);
    schedule_locked(g);
    while (!g->stop) {
        if (g->pending) {
            g->pending = 0;
            run_locked(g);
            continue;
        }
        if (g->next_mono && mono_ms() >= g->next_mono) {
            struct berth_gcrun_params p;
            berth_gcrun_defaults(g, &p);
            begin_locked(g, "schedule", &p);
            run_locked(g);
            schedule_locked(g);
            continue;
        }
        if (g->next_mono) {
            struct timespec ts;
            ts.tv_sec = (time_t)(g->next_mono / 1000);
            ts.tv_nsec = (long)(g->next_mono % 1000) * 1000000;
            pthread_cond_timedwait(&g->wake, &g->lock, &ts);
        } else {
            pthread_cond_wait(&g->wake, &g->lock);
        }
    }
    /* a request accepted but never run: its waiters must not hang */
    if (g->pending) {
        g->pending = 0;
        g->status.state = BERTH_GCRUN_STOPPED;
        g->status.finished = (int64_t)time(NULL);
    }
    pthread_cond_broadcast(&g->done);
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int berth_gcrun_new(struct berth_gcrun **out, struct berth_store *st,
                    const struct berth_maint_config *mc)
{
    struct berth_gcrun *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;

    *out = NULL;
    if (!g)
        return berth_error_set(BERTH_ERROR, "out of memory");
    g->st = st;
    g->mc = mc;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&g->done, NULL);
    if (pthread_create(&g->thread, NULL, thread_main, g) != 0) {
        pthread_cond_destroy(&g->done);
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return berth_error_set(BERTH_ERROR, "cannot start the garbage collection thread");
    }
    *out = g;
    return 0;
}

void berth_gcrun_stop(struct berth_gcrun *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
}

void berth_gcrun_free(struct berth_gcrun *g)
{
    if (!g)
        return;
    berth_gcrun_stop(g);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->done);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

void berth_gcrun_defaults(const struct berth_gcrun *g, struct berth_gcrun_params *out)
{
    out->dry_run = 0;
    out->untagged = g->mc->gc_untagged;
    out->grace_sec = g->mc->gc_grace_ms / 1000;
}

/* The status as seen now (the running time included). Lock held. */
static void snapshot_locked(struct berth_gcrun *g, struct berth_gcrun_status *out)
{
    *out = g->status;
    if (out->state == BERTH_GCRUN_RUNNING)
        out->seconds = (double)((int64_t)time(NULL) - out->started);
}

int berth_gcrun_start(struct berth_gcrun *g, const struct berth_gcrun_params *p, int wait,
                      struct berth_gcrun_status *out)
{
    uint64_t id;
    int error = 0;

    pthread_mutex_lock(&g->lock);
    if (g->stop) {
        error = berth_error_set(BERTH_EDENIED, "the server is stopping");
        goto done;
    }
    if (g->status.state == BERTH_GCRUN_RUNNING) {
        error = berth_error_set(BERTH_EEXISTS, "garbage collection #%llu is already running",
                                (unsigned long long)g->status.id);
        goto done;
    }
    begin_locked(g, "admin", p);
    id = g->status.id;
    g->pending = 1;
    pthread_cond_signal(&g->wake);
    while (wait && g->status.id == id && g->status.state == BERTH_GCRUN_RUNNING)
        pthread_cond_wait(&g->done, &g->lock);
done:
    snapshot_locked(g, out);
    pthread_mutex_unlock(&g->lock);
    return error;
}

void berth_gcrun_status(struct berth_gcrun *g, struct berth_gcrun_status *out)
{
    pthread_mutex_lock(&g->lock);
    snapshot_locked(g, out);
    pthread_mutex_unlock(&g->lock);
}

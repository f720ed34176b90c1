/*
 * The garbage collector of `berth serve` (docs/gc.md): one runner per
 * server, a background thread that calls berth_gc_run every
 * berth.gc.interval (the first run one interval after start; 0: never) and
 * on demand from the admin endpoint. One run at a time: a request while one
 * runs is refused with the running one's status. The runner keeps the last
 * run's status and stats, logs a summary line per run and stops promptly at
 * shutdown (the collector's stop flag: it finishes its current batch).
 */
#ifndef BERTH_SERVER_GCRUN_H
#define BERTH_SERVER_GCRUN_H

#include <stdint.h>

#include "config.h"
#include "store/maint.h"

struct berth_gcrun;

enum berth_gcrun_state {
    BERTH_GCRUN_IDLE,     /* never ran */
    BERTH_GCRUN_RUNNING,
    BERTH_GCRUN_FINISHED,
    BERTH_GCRUN_STOPPED,  /* stopped early at shutdown */
    BERTH_GCRUN_FAILED
};

/* A run's parameters (the rest — batch, retention, immutable rules — come
 * from the configuration). */
struct berth_gcrun_params {
    int dry_run;
    int untagged;
    int64_t grace_sec;
};

/* One run as seen from outside: the current one while running, else the
 * last one. */
struct berth_gcrun_status {
    enum berth_gcrun_state state;
    uint64_t id;               /* 1, 2, ...; 0 before the first run */
    const char *trigger;       /* "schedule" or "admin" (a literal) */
    struct berth_gcrun_params params;
    int64_t started, finished; /* unix seconds; 0 when not yet */
    double seconds;            /* duration (so far, while running) */
    struct berth_gc_stats stats; /* zero while running */
    int code;                  /* FAILED: the BERTH_E* code (BERTH_EEXISTS: another
                                  process was collecting) */
    char error[256];           /* FAILED: why */
    int64_t next_run;          /* unix seconds of the next scheduled run; 0: none */
};

/* Start the runner's thread. `mc` (gc_interval_ms, grace, untagged, batch,
 * retention, immutable rules) is borrowed and must outlive the runner, as
 * must `st`. */
int berth_gcrun_new(struct berth_gcrun **out, struct berth_store *st,
                    const struct berth_maint_config *mc);
/* Ask a running collection to stop after its current batch and the thread
 * to end; returns at once (call before berth_server_stop, so a request
 * waiting for a run is not held for the whole collection). */
void berth_gcrun_stop(struct berth_gcrun *g);
/* Stop, join the thread, unregister, free. NULL does nothing. */
void berth_gcrun_free(struct berth_gcrun *g);

/* Defaults of an on-demand run: the configuration's. */
void berth_gcrun_defaults(const struct berth_gcrun *g, struct berth_gcrun_params *out);

/* Start a run now. With `wait`, return when it finished (its status in
 * *out). BERTH_EEXISTS when one is already running (*out has its status);
 * BERTH_EDENIED when the runner is stopping. */
int berth_gcrun_start(struct berth_gcrun *g, const struct berth_gcrun_params *p, int wait,
                      struct berth_gcrun_status *out);
void berth_gcrun_status(struct berth_gcrun *g, struct berth_gcrun_status *out);

/* "idle", "running", "finished", "stopped", "failed". */
const char *berth_gcrun_state_name(enum berth_gcrun_state s);

#endif

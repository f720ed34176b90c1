/*
 * Transfer progress for the client commands: the one display module of the
 * copy engine. On a terminal (stderr is a tty) a bar per blob and a total
 * line with bytes, rate and ETA, redrawn in place at most 10 times a second;
 * without a terminal one plain line per finished blob ("3f2a9c1b7d4e: pushed
 * 12.3 MB"); quiet prints nothing; json writes one JSON object per line on
 * stdout ({"event":"blob",...}, then {"event":"done",...}).
 * Thread safety: every function may be called from any thread (one mutex).
 */
#ifndef BERTH_PROGRESS_H
#define BERTH_PROGRESS_H

#include <stdint.h>

struct berth_progress;

/* quiet: nothing at all; json: JSON lines on stdout (wins over quiet for the
 * events, since scripts asked for them). Never fails: on OOM returns NULL,
 * and every function accepts NULL and does nothing. */
struct berth_progress *berth_progress_new(int quiet, int json);
void berth_progress_free(struct berth_progress *p);

/* Announce a blob that will be looked at (digest string, expected size);
 * returns its id for the calls below, or -1. */
int berth_progress_add(struct berth_progress *p, const char *digest, uint64_t size);
/* Bytes done so far for blob `id` in its current phase. */
void berth_progress_update(struct berth_progress *p, int id, uint64_t done);
/* Blob finished: action is "pushed", "written", "mounted" or "exists";
 * bytes: what actually moved. */
void berth_progress_blob_done(struct berth_progress *p, int id, const char *action,
                              uint64_t bytes);
/* A manifest stored at the destination (JSON event "manifest", plain line
 * only for tags). tag may be NULL. */
void berth_progress_manifest(struct berth_progress *p, const char *digest, const char *tag);
/* The copy ended with `digest` as its top manifest: final redraw, and the
 * JSON "done" event. */
void berth_progress_finish(struct berth_progress *p, const char *digest);

/* "12.3 MB" style (decimal units) into buf. */
void berth_progress_format_bytes(char *buf, size_t size, uint64_t bytes);

#endif

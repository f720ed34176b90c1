/*
 * The client's blob location cache: for "registry host + blob digest", the
 * few repositories where berth last pushed, pulled or saw that blob, so a
 * push from a local source can mount the blob from a sibling repository
 * instead of uploading it again (what docker's distribution metadata does).
 * Not installed: only src/client/ includes this header.
 */
#ifndef BERTH_BLOBCACHE_H
#define BERTH_BLOBCACHE_H

#include <stddef.h>

#define BERTH_BLOBCACHE_MAX 10000 /* entries kept; the least recently touched go first */
#define BERTH_BLOBCACHE_REPOS 4   /* repositories kept per entry, most recent first */
#define BERTH_BLOBCACHE_NAME 256  /* longest repository name kept, with its NUL */

struct berth_blobcache;

/* 1 unless BERTH_NO_BLOB_CACHE is set to something other than "" or "0". */
int berth_blobcache_enabled(void);

/* The per-user cache file: $XDG_CACHE_HOME/berth/blobs.json, else
 * $HOME/.cache/berth/blobs.json. BERTH_ENOTFOUND when neither is set,
 * BERTH_EINVALID when the path does not fit in `size`. */
int berth_blobcache_default_path(char *out, size_t size);

/* Load the cache kept at `path` (NULL: the default path). A missing,
 * unreadable or corrupt file loads as an empty cache (and is rewritten by
 * the next save). Errors: out of memory, no usable path. The caller frees
 * *out with berth_blobcache_free. */
int berth_blobcache_open(struct berth_blobcache **out, const char *path);

/* Copy into repos (most recent first) up to `max` repositories recorded for
 * the blob `digest` on `registry`; returns how many. Thread-safe. */
size_t berth_blobcache_lookup(struct berth_blobcache *c, const char *registry, const char *digest,
                              char repos[][BERTH_BLOBCACHE_NAME], size_t max);

/* Record that `repo` on `registry` holds `digest`: it becomes the entry's
 * most recent repository and the entry the most recently touched one (the
 * oldest entries beyond BERTH_BLOBCACHE_MAX are dropped). In memory only
 * until berth_blobcache_save. Thread-safe. */
int berth_blobcache_add(struct berth_blobcache *c, const char *registry, const char *digest,
                        const char *repo);

/* Write the cache back if it changed: a temp file in the same directory,
 * fsync, rename, so readers see the old file or the new one, never a mix.
 * Concurrent writers: the last rename wins. Creates the directory. */
int berth_blobcache_save(struct berth_blobcache *c);

/* NULL does nothing. */
void berth_blobcache_free(struct berth_blobcache *c);

#endif

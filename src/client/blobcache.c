/*
 * The blob location cache (see blobcache.h): one JSON file per user,
 * {"version":1,"blobs":{"<registry> <digest>":["repo", ...]}}, whose keys
 * are kept in the order they were last touched (jansson keeps insertion
 * order), so the first keys are the oldest and the first to go past the cap.
 * It is only a hint: whatever is read that does not fit is dropped, and a
 * save replaces the file atomically (temp + fsync + rename).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "client/blobcache.h"
#include "client/image_int.h"
#include "core/error.h"

#define CACHE_VERSION 1

struct berth_blobcache {
    pthread_mutex_t lock;
    char path[4096];
    json_t *blobs; /* key → array of repository names, most recent first */
    int dirty;
};

int berth_blobcache_enabled(void)
{
    const char *v = getenv("BERTH_NO_BLOB_CACHE");

    return !v || !*v || !strcmp(v, "0");
}

int berth_blobcache_default_path(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    size_t n;

    if (xdg && *xdg)
        n = (size_t)snprintf(out, size, "%s/berth/blobs.json", xdg);
    else if (home && *home)
        n = (size_t)snprintf(out, size, "%s/.cache/berth/blobs.json", home);
    else
        return berth_error_set(BERTH_ENOTFOUND, "no cache directory: neither XDG_CACHE_HOME "
                                                "nor HOME is set");
    if (n >= size)
        return berth_error_set(BERTH_EINVALID, "cache path too long");
    return 0;
}

static int make_key(char *out, size_t size, const char *registry, const char *digest)
{
    return (size_t)snprintf(out, size, "%s %s", registry, digest) < size ? 0 : -1;
}

/* Keep only well-formed entries of a loaded "blobs" object, in file order. */
static json_t *sanitize(json_t *in)
{
    json_t *out = json_object(), *v;
    const char *key;

    if (!out || !json_is_object(in))
        return out;
    json_object_foreach(in, key, v)
    {
        json_t *repos = json_array(), *it;
        size_t i;

        if (!repos)
            break;
        if (strchr(key, ' ') && json_is_array(v)) {
            json_array_foreach(v, i, it)
            {
                const char *s = json_string_value(it);

                if (json_array_size(repos) >= BERTH_BLOBCACHE_REPOS)
                    break;
                if (s && *s && strlen(s) < BERTH_BLOBCACHE_NAME)
                    json_array_append_new(repos, json_string(s));
            }
        }
        if (json_array_size(repos) == 0 || json_object_size(out) >= BERTH_BLOBCACHE_MAX) {
            json_decref(repos);
            continue;
        }
        json_object_set_new(out, key, repos);
    }
    return out;
}

int berth_blobcache_open(struct berth_blobcache **out, const char *path)
{
    struct berth_blobcache *c;
    json_t *root;
    int error;

    *out = NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    if (path) {
        if (strlen(path) >= sizeof(c->path)) {
            free(c);
            return berth_error_set(BERTH_EINVALID, "cache path too long");
        }
        snprintf(c->path, sizeof(c->path), "%s", path);
    } else if ((error = berth_blobcache_default_path(c->path, sizeof(c->path))) < 0) {
        free(c);
        return error;
    }
    root = json_load_file(c->path, 0, NULL);
    if (json_integer_value(json_object_get(root, "version")) == CACHE_VERSION)
        c->blobs = sanitize(json_object_get(root, "blobs"));
    else
        c->blobs = json_object();
    json_decref(root);
    if (!c->blobs) {
        free(c);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

size_t berth_blobcache_lookup(struct berth_blobcache *c, const char *registry, const char *digest,
                              char repos[][BERTH_BLOBCACHE_NAME], size_t max)
{
    char key[BERTH_BLOBCACHE_NAME * 2];
    json_t *arr, *it;
    size_t i, n = 0;

    if (make_key(key, sizeof(key), registry, digest) < 0)
        return 0;
    pthread_mutex_lock(&c->lock);
    arr = json_object_get(c->blobs, key);
    json_array_foreach(arr, i, it)
    {
        if (n >= max)
            break;
        snprintf(repos[n++], BERTH_BLOBCACHE_NAME, "%s", json_string_value(it));
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

int berth_blobcache_add(struct berth_blobcache *c, const char *registry, const char *digest,
                        const char *repo)
{
    char key[BERTH_BLOBCACHE_NAME * 2];
    json_t *old, *repos = NULL, *it;
    size_t i;
    int error = 0;

    if (!*repo || strlen(repo) >= BERTH_BLOBCACHE_NAME ||
        make_key(key, sizeof(key), registry, digest) < 0)
        return berth_error_set(BERTH_EINVALID, "cache key too long");
    pthread_mutex_lock(&c->lock);
    old = json_object_get(c->blobs, key);
    if (!(repos = json_array()) || json_array_append_new(repos, json_string(repo)) < 0) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    json_array_foreach(old, i, it)
    {
        const char *s = json_string_value(it);

        if (json_array_size(repos) >= BERTH_BLOBCACHE_REPOS)
            break;
        if (s && strcmp(s, repo))
            json_array_append_new(repos, json_string(s));
    }
    /* Delete, then set: the entry moves to the end, the most recent place. */
    json_object_del(c->blobs, key);
    if (json_object_set_new(c->blobs, key, repos) < 0) {
        repos = NULL;
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    repos = NULL;
    while (json_object_size(c->blobs) > BERTH_BLOBCACHE_MAX) {
        void *first = json_object_iter(c->blobs);

        json_object_del(c->blobs, json_object_iter_key(first));
    }
    c->dirty = 1;
done:
    json_decref(repos);
    pthread_mutex_unlock(&c->lock);
    return error;
}

int berth_blobcache_save(struct berth_blobcache *c)
{
    char dir[sizeof(c->path)], tmp[sizeof(c->path) + 16], *slash;
    json_t *root = NULL;
    FILE *f = NULL;
    int fd = -1, error = 0;

    tmp[0] = '\0';
    pthread_mutex_lock(&c->lock);
    if (!c->dirty)
        goto done;
    snprintf(dir, sizeof(dir), "%s", c->path);
    if ((slash = strrchr(dir, '/')) && slash != dir) {
        *slash = '\0';
        if ((error = berth_mkdir_p(dir)) < 0)
            goto done;
    }
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", c->path);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        error = berth_error_errno("cannot create '%s'", tmp);
        tmp[0] = '\0';
        goto done;
    }
    if (!(f = fdopen(fd, "w"))) {
        error = berth_error_errno("cannot open '%s'", tmp);
        goto done;
    }
    fd = -1;
    root = json_pack("{s:i, s:O}", "version", CACHE_VERSION, "blobs", c->blobs);
    if (!root || json_dumpf(root, f, JSON_COMPACT) < 0 || fflush(f) != 0 || fsync(fileno(f)) < 0) {
        error = berth_error_errno("cannot write '%s'", tmp);
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        error = berth_error_errno("cannot write '%s'", tmp);
        goto done;
    }
    f = NULL;
    if (rename(tmp, c->path) < 0) {
        error = berth_error_errno("cannot rename into '%s'", c->path);
        goto done;
    }
    tmp[0] = '\0';
    c->dirty = 0;
done:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (error < 0 && tmp[0])
        unlink(tmp);
    json_decref(root);
    pthread_mutex_unlock(&c->lock);
    return error;
}

void berth_blobcache_free(struct berth_blobcache *c)
{
    if (!c)
        return;
    json_decref(c->blobs);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

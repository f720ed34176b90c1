/*
 * Filesystem blob backend: blobs/<algo>/<first 2 hex>/<hex>, one immutable
 * file per digest, shared by every repository. A finished upload is hard
 * linked into place (rename where the filesystem has no hard links), so a
 * digest name only ever appears with complete, verified, fsync'd content;
 * the fan-out directory is fsync'd after the link so the name survives a
 * power loss. Concurrent commits of one digest all succeed: the first link
 * wins and the others find the name taken (EEXIST).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.h"
#include "blob.h"
#include "fault.h"

struct fs_backend {
    struct berth_blob_backend parent;
    char *dir;
    int no_fsync;
};

static int blob_path(char *buf, size_t size, const struct fs_backend *fs,
                     const struct berth_digest *d)
{
    const char *hex = berth_digest_hex(d);
    int n = snprintf(buf, size, "%s/%s/%.2s/%s", fs->dir, berth_digest_algo_name(d->algo), hex,
                     hex);

    if (n < 0 || (size_t)n >= size)
        return berth_error_set(BERTH_ERROR, "blob path too long under '%s'", fs->dir);
    return 0;
}

static int fsync_dir(const char *path)
{
    int fd, error = 0;

    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return berth_error_errno("cannot open directory '%s'", path);
    if (berth_fault_check("dir_fsync") < 0 || fsync(fd) < 0)
        error = berth_error_errno("cannot fsync directory '%s'", path);
    close(fd);
    return error;
}

static int fs_stat(struct berth_blob_backend *b, const struct berth_digest *d, uint64_t *size)
{
    struct fs_backend *fs = (struct fs_backend *)b;
    char path[PATH_MAX];
    struct stat sb;
    int error;

    if ((error = blob_path(path, sizeof(path), fs, d)) < 0)
        return error;
    if (stat(path, &sb) < 0) {
        if (errno == ENOENT)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                                       "blob unknown to registry: %s", d->str);
        return berth_error_errno("cannot stat blob '%s'", d->str);
    }
    *size = (uint64_t)sb.st_size;
    return 0;
}

static int fs_open(struct berth_blob_backend *b, const struct berth_digest *d, int *fd,
                   uint64_t *size)
{
    struct fs_backend *fs = (struct fs_backend *)b;
    char path[PATH_MAX];
    struct stat sb;
    int error, f;

    *fd = -1;
    if ((error = blob_path(path, sizeof(path), fs, d)) < 0)
        return error;
    if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                                       "blob unknown to registry: %s", d->str);
        return berth_error_errno("cannot open blob '%s'", d->str);
    }
    if (fstat(f, &sb) < 0) {
        error = berth_error_errno("cannot stat blob '%s'", d->str);
        close(f);
        return error;
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return 0;
}

/* mkdir that tolerates an existing directory; *created tells whether it made one. */
static int make_dir(const char *path, int *created)
{
    *created = 0;
    if (mkdir(path, 0755) == 0) {
        *created = 1;
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    return berth_error_errno("cannot create directory '%s'", path);
}

static int fs_commit(struct berth_blob_backend *b, const struct berth_digest *d, const char *src,
                     int fd, uint64_t size)
{
    struct fs_backend *fs = (struct fs_backend *)b;
    char path[PATH_MAX], fan[PATH_MAX], algo_dir[PATH_MAX];
    struct stat sb;
    int error, created;

    (void)fd;
    if ((error = blob_path(path, sizeof(path), fs, d)) < 0)
        return error;
    /* path is <dir>/<algo>/<xx>/<hex>: its parents are prefixes of it */
    memcpy(fan, path, sizeof(fan));
    *strrchr(fan, '/') = '\0';
    memcpy(algo_dir, fan, sizeof(algo_dir));
    *strrchr(algo_dir, '/') = '\0';

    if ((error = make_dir(fan, &created)) < 0)
        return error;
    if (created && !fs->no_fsync && (error = fsync_dir(algo_dir)) < 0) {
        rmdir(fan); /* or the next commit finds it and never makes it durable */
        return error;
    }

    if (berth_fault_check("blob_link") < 0 || link(src, path) < 0) {
        if (errno != EEXIST && errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
            return berth_error_errno("cannot link blob '%s' into place", d->str);
        if (errno == EEXIST) {
            /* Someone stored it first. Same digest = same bytes, unless the
             * existing file was damaged: then our verified copy replaces it.
             * Still fsync the directory before the caller acknowledges: the
             * first committer may be between its link and its fsync, or its
             * fsync may have failed, leaving the name not yet durable. */
            if (stat(path, &sb) == 0 && (uint64_t)sb.st_size == size)
                goto sync;
        }
        /* No hard links here (or a damaged copy): rename atomically replaces. */
        if (berth_fault_check("blob_link") < 0 || rename(src, path) < 0)
            return berth_error_errno("cannot move blob '%s' into place", d->str);
    }
sync:
    if (!fs->no_fsync && (error = fsync_dir(fan)) < 0)
        return error;
    return 0;
}

static int fs_remove(struct berth_blob_backend *b, const struct berth_digest *d)
{
    struct fs_backend *fs = (struct fs_backend *)b;
    char path[PATH_MAX];
    int error;

    if ((error = blob_path(path, sizeof(path), fs, d)) < 0)
        return error;
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return berth_error_set_oci(BERTH_ENOTFOUND, BERTH_OCI_BLOB_UNKNOWN,
                                       "blob unknown to registry: %s", d->str);
        return berth_error_errno("cannot remove blob '%s'", d->str);
    }
    return 0;
}

static int walk_fan(const char *algo, const char *fan_path, berth_blob_walk_cb cb, void *ctx)
{
    char digest_str[BERTH_DIGEST_STR_MAX + 8];
    struct berth_digest d;
    struct dirent *de;
    struct stat sb;
    DIR *dir;
    int error = 0, n;

    if ((dir = opendir(fan_path)) == NULL)
        return 0; /* vanished under us: nothing to report */
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        n = snprintf(digest_str, sizeof(digest_str), "%s:%s", algo, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(digest_str))
            continue;
        if (berth_digest_parse(&d, digest_str, (size_t)n) < 0)
            continue; /* not ours */
        if (fstatat(dirfd(dir), de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
            continue;
        if ((error = cb(ctx, &d, (uint64_t)sb.st_size)) < 0)
            break;
    }
    closedir(dir);
    berth_error_clear();
    return error;
}

static int fs_walk(struct berth_blob_backend *b, berth_blob_walk_cb cb, void *ctx)
{
    static const enum berth_digest_algo algos[] = { BERTH_SHA256, BERTH_SHA512 };
    struct fs_backend *fs = (struct fs_backend *)b;
    char algo_dir[PATH_MAX], fan[PATH_MAX];
    struct dirent *de;
    DIR *dir;
    size_t i;
    int error = 0;

    for (i = 0; i < sizeof(algos) / sizeof(algos[0]) && error == 0; i++) {
        const char *algo = berth_digest_algo_name(algos[i]);

        snprintf(algo_dir, sizeof(algo_dir), "%s/%s", fs->dir, algo);
        if ((dir = opendir(algo_dir)) == NULL)
            continue;
        while (error == 0 && (de = readdir(dir)) != NULL) {
            if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
                continue;
            if (snprintf(fan, sizeof(fan), "%s/%s", algo_dir, de->d_name) < (int)sizeof(fan))
                error = walk_fan(algo, fan, cb, ctx);
        }
        closedir(dir);
    }
    return error;
}

static void fs_free(struct berth_blob_backend *b)
{
    struct fs_backend *fs = (struct fs_backend *)b;

    if (!fs)
        return;
    free(fs->dir);
    free(fs);
}

int berth_blob_fs_new(struct berth_blob_backend **out, const char *dir, int no_fsync)
{
    static const enum berth_digest_algo algos[] = { BERTH_SHA256, BERTH_SHA512 };
    struct fs_backend *fs;
    char path[PATH_MAX];
    int error = 0, created, any = 0;
    size_t i;

    *out = NULL;
    if ((fs = calloc(1, sizeof(*fs))) == NULL || (fs->dir = strdup(dir)) == NULL) {
        free(fs);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    fs->no_fsync = no_fsync;
    fs->parent.stat = fs_stat;
    fs->parent.open = fs_open;
    fs->parent.commit = fs_commit;
    fs->parent.remove = fs_remove;
    fs->parent.walk = fs_walk;
    fs->parent.free = fs_free;

    if ((error = make_dir(dir, &created)) < 0)
        goto done;
    for (i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, berth_digest_algo_name(algos[i]));
        if ((error = make_dir(path, &created)) < 0)
            goto done;
        any |= created;
    }
    if (any && !no_fsync)
        error = fsync_dir(dir);
done:
    if (error < 0)
        fs_free(&fs->parent);
    else
        *out = &fs->parent;
    return error;
}

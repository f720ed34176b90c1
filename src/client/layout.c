/*
 * OCI image layout directories (image-spec image-layout.md) as a copy source
 * and destination: `oci-layout`, `index.json` (images named by the
 * org.opencontainers.image.ref.name annotation) and `blobs/<alg>/<hex>`.
 * Reading verifies every manifest and blob against its digest. Writing puts
 * each blob in a temp file, fsyncs and renames it into place, and replaces
 * index.json atomically at commit: a crash never leaves a torn layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "client/image_int.h"
#include "core/error.h"
#include "core/manifest.h"

#define REF_NAME "org.opencontainers.image.ref.name"
#define LAYOUT_FILE "{\"imageLayoutVersion\":\"1.0.0\"}"

struct layout_src {
    struct berth_image_src base;
    char dir[4096];
    json_t *index;
    int remove_on_free;
};

struct layout_dst {
    struct berth_image_dst base;
    char dir[4096];
    json_t *index;
    int remove_on_free;
};

static int blob_path(char *out, size_t size, const char *dir, const struct berth_digest *d)
{
    if ((size_t)snprintf(out, size, "%s/blobs/%s/%s", dir, berth_digest_algo_name(d->algo),
                         berth_digest_hex(d)) >= size)
        return berth_error_set(BERTH_EINVALID, "path too long in '%.64s...'", dir);
    return 0;
}

/* ---- reading ---- */

static int load_index(json_t **out, const char *dir)
{
    char path[4096 + 32];
    json_error_t jerr;
    json_t *layout, *idx;
    const char *ver;

    *out = NULL;
    snprintf(path, sizeof(path), "%s/oci-layout", dir);
    if (!(layout = json_load_file(path, 0, &jerr))) {
        if (access(path, F_OK) < 0)
            return berth_error_set(BERTH_ENOTFOUND,
                                   "'%s' is not an OCI image layout (no oci-layout)", dir);
        return berth_error_set(BERTH_EINVALID, "invalid '%s': %s", path, jerr.text);
    }
    ver = json_string_value(json_object_get(layout, "imageLayoutVersion"));
    if (!ver) {
        json_decref(layout);
        return berth_error_set(BERTH_EINVALID, "invalid '%s': no imageLayoutVersion", path);
    }
    json_decref(layout);
    snprintf(path, sizeof(path), "%s/index.json", dir);
    if (!(idx = json_load_file(path, 0, &jerr)))
        return berth_error_set(BERTH_EINVALID, "invalid '%s': %s", path, jerr.text);
    if (!json_is_array(json_object_get(idx, "manifests"))) {
        json_decref(idx);
        return berth_error_set(BERTH_EINVALID, "invalid '%s': no manifests array", path);
    }
    *out = idx;
    return 0;
}

static const char *ref_name(json_t *desc)
{
    return json_string_value(json_object_get(json_object_get(desc, "annotations"), REF_NAME));
}

/* Read a whole manifest blob (capped) and verify its digest. */
static int read_manifest(struct berth_blob_buf *out, const char *dir, const struct berth_digest *d)
{
    char path[4096 + 160];
    struct stat st;
    ssize_t n;
    size_t got = 0;
    int fd = -1, error = 0;

    memset(out, 0, sizeof(*out));
    if ((error = blob_path(path, sizeof(path), dir, d)) < 0)
        return error;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return berth_error_errno("manifest %s missing from layout: %s", d->str, path);
    if (fstat(fd, &st) < 0) {
        error = berth_error_errno("cannot stat '%s'", path);
        goto done;
    }
    if ((uint64_t)st.st_size > BERTH_MANIFEST_MAX_DEFAULT) {
        error = berth_error_set(BERTH_ETOOBIG, "manifest %s too large (%lld bytes)", d->str,
                                (long long)st.st_size);
        goto done;
    }
    if (!(out->data = malloc((size_t)st.st_size + 1))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, out->data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            error = berth_error_errno("cannot read '%s'", path);
            goto done;
        }
        got += (size_t)n;
    }
    out->len = got;
    if ((error = berth_digest_buf(&out->digest, d->algo, out->data, out->len)) < 0)
        goto done;
    if (!berth_digest_equal(&out->digest, d))
        error = berth_error_set(BERTH_EMISMATCH, "corrupt layout: %s has digest %s", path,
                                out->digest.str);
done:
    if (fd >= 0)
        close(fd);
    if (error < 0)
        berth_blob_buf_dispose(out);
    return error;
}

/* The index.json descriptor the source is pointed at. */
static int find_top(json_t **out, struct layout_src *s)
{
    json_t *arr = json_object_get(s->index, "manifests"), *it;
    const char *sel = s->base.sel;
    size_t i;

    *out = NULL;
    if (!sel[0]) {
        if (json_array_size(arr) == 1) {
            *out = json_array_get(arr, 0);
            return 0;
        }
        if (json_array_size(arr) == 0)
            return berth_error_set(BERTH_ENOTFOUND, "layout '%s' holds no image", s->dir);
        return berth_error_set(BERTH_EINVALID,
                               "layout '%s' holds %zu images: name one as oci:%s:TAG", s->dir,
                               json_array_size(arr), s->dir);
    }
    json_array_foreach(arr, i, it)
    {
        const char *name = ref_name(it);
        const char *dg = json_string_value(json_object_get(it, "digest"));

        if ((name && !strcmp(name, sel)) || (dg && !strcmp(dg, sel))) {
            *out = it;
            return 0;
        }
    }
    return berth_error_set(BERTH_ENOTFOUND, "no image named '%s' in layout '%s'", sel, s->dir);
}

static int lsrc_get_manifest(struct berth_image_src *base, const char *ref,
                             struct berth_blob_buf *out)
{
    struct layout_src *s = (struct layout_src *)base;
    struct berth_digest d;
    const char *dg, *mt = NULL;
    json_t *desc;
    int error;

    memset(out, 0, sizeof(*out));
    if (!ref) {
        if ((error = find_top(&desc, s)) < 0)
            return error;
        dg = json_string_value(json_object_get(desc, "digest"));
        mt = json_string_value(json_object_get(desc, "mediaType"));
        if (!dg)
            return berth_error_set(BERTH_EINVALID, "invalid index.json in '%s': no digest",
                                   s->dir);
    } else {
        dg = ref;
    }
    if ((error = berth_digest_parse(&d, dg, strlen(dg))) < 0)
        return error;
    if ((error = read_manifest(out, s->dir, &d)) < 0)
        return error;
    if (mt)
        snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
    return 0;
}

static int lsrc_open_blob(struct berth_image_src *base, const struct berth_digest *d, int64_t size,
                          int *fd, uint64_t *size_out, berth_progress_fn progress, void *ctx)
{
    struct layout_src *s = (struct layout_src *)base;
    char path[4096 + 160];
    struct berth_digest got;
    struct stat st;
    int f, error;

    *fd = -1;
    if ((error = blob_path(path, sizeof(path), s->dir, d)) < 0)
        return error;
    if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return berth_error_errno("blob %s missing from layout: %s", d->str, path);
    if (fstat(f, &st) < 0) {
        error = berth_error_errno("cannot stat '%s'", path);
        goto done;
    }
    if (size >= 0 && st.st_size != size) {
        error = berth_error_set(BERTH_EMISMATCH, "corrupt layout: %s is %lld bytes, expected %lld",
                                path, (long long)st.st_size, (long long)size);
        goto done;
    }
    if ((error = berth_digest_fd(&got, d->algo, f)) < 0)
        goto done;
    if (!berth_digest_equal(&got, d)) {
        error = berth_error_set(BERTH_EMISMATCH, "corrupt layout: %s has digest %s", path,
                                got.str);
        goto done;
    }
    if (progress)
        progress(ctx, (uint64_t)st.st_size);
    *fd = f;
    *size_out = (uint64_t)st.st_size;
    f = -1;
done:
    if (f >= 0)
        close(f);
    return error;
}

static int lsrc_tags(struct berth_image_src *base, berth_name_fn fn, void *ctx)
{
    struct layout_src *s = (struct layout_src *)base;
    json_t *it;
    size_t i;
    int error;

    json_array_foreach(json_object_get(s->index, "manifests"), i, it)
    {
        const char *name = ref_name(it);

        if (name && (error = fn(ctx, name)) < 0)
            return error;
    }
    return 0;
}

static void lsrc_free(struct berth_image_src *base)
{
    struct layout_src *s = (struct layout_src *)base;

    json_decref(s->index);
    if (s->remove_on_free)
        berth_rmtree(s->dir);
    free(s);
}

static const struct berth_image_src_ops layout_src_ops = {
    lsrc_get_manifest,
    lsrc_open_blob,
    lsrc_tags,
    lsrc_free,
};

int berth_layout_src_open_dir(struct berth_image_src **out, const char *dir, const char *tag,
                              int remove_on_free)
{
    struct layout_src *s;
    int error;

    *out = NULL;
    if (!(s = calloc(1, sizeof(*s))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    s->base.ops = &layout_src_ops;
    s->remove_on_free = remove_on_free;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->base.sel, sizeof(s->base.sel), "%s", tag ? tag : "");
    if ((error = load_index(&s->index, dir)) < 0) {
        lsrc_free(&s->base);
        return error;
    }
    *out = &s->base;
    return 0;
}

int berth_layout_src_open(struct berth_image_src **out, const struct berth_location *loc)
{
    int error = berth_layout_src_open_dir(out, loc->path, loc->tag, 0);

    if (error == 0)
        (*out)->loc = *loc;
    return error;
}

/* ---- writing ---- */

static int write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096 + 32];
    const char *p = data;
    int fd, error = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return berth_error_errno("cannot create '%s'", tmp);
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error = berth_error_errno("cannot write '%s'", tmp);
            goto done;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        error = berth_error_errno("cannot fsync '%s'", tmp);
        goto done;
    }
    if (rename(tmp, path) < 0)
        error = berth_error_errno("cannot rename into '%s'", path);
done:
    close(fd);
    if (error < 0)
        unlink(tmp);
    return error;
}

static int ldst_has_blob(struct berth_image_dst *base, const struct berth_digest *dg,
                         uint64_t size)
{
    struct layout_dst *d = (struct layout_dst *)base;
    char path[4096 + 160];
    struct stat st;
    int error;

    if ((error = blob_path(path, sizeof(path), d->dir, dg)) < 0)
        return error;
    if (stat(path, &st) < 0)
        return 0;
    return (uint64_t)st.st_size == size;
}

static int alg_dir(struct layout_dst *d, const struct berth_digest *dg)
{
    char path[4096 + 32];

    snprintf(path, sizeof(path), "%s/blobs/%s", d->dir, berth_digest_algo_name(dg->algo));
    return berth_mkdir_p(path);
}

static int ldst_put_blob(struct berth_image_dst *base, const struct berth_digest *dg, int fd,
                         uint64_t size, berth_progress_fn progress, void *ctx)
{
    struct layout_dst *d = (struct layout_dst *)base;
    char path[4096 + 160];
    int error;

    if ((error = alg_dir(d, dg)) < 0)
        return error;
    if ((error = blob_path(path, sizeof(path), d->dir, dg)) < 0)
        return error;
    if ((error = berth_copy_fd_to_path(path, fd, size)) < 0)
        return error;
    if (progress)
        progress(ctx, size);
    return 0;
}

static int ldst_put_manifest(struct berth_image_dst *base, const uint8_t *data, size_t len,
                             const char *media_type, const struct berth_digest *dg,
                             const char *tag, int top)
{
    struct layout_dst *d = (struct layout_dst *)base;
    char path[4096 + 160];
    json_t *arr, *desc, *it;
    size_t i;
    int error;

    if ((error = alg_dir(d, dg)) < 0)
        return error;
    if ((error = blob_path(path, sizeof(path), d->dir, dg)) < 0)
        return error;
    if ((error = write_file_atomic(path, data, len)) < 0)
        return error;
    if (!top)
        return 0;
    /* One index.json entry per name: a new image under an old name replaces it. */
    arr = json_object_get(d->index, "manifests");
    for (i = 0; i < json_array_size(arr);) {
        const char *name, *idg;

        it = json_array_get(arr, i);
        name = ref_name(it);
        idg = json_string_value(json_object_get(it, "digest"));
        if (tag ? (name && !strcmp(name, tag)) : (!name && idg && !strcmp(idg, dg->str)))
            json_array_remove(arr, i);
        else
            i++;
    }
    desc = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", dg->str, "size",
                     (json_int_t)len);
    if (!desc)
        return berth_error_set(BERTH_ERROR, "out of memory");
    if (tag)
        json_object_set_new(desc, "annotations", json_pack("{s:s}", REF_NAME, tag));
    json_array_append_new(arr, desc);
    return 0;
}

int berth_layout_dst_flush(struct berth_image_dst *base)
{
    struct layout_dst *d = (struct layout_dst *)base;
    char path[4096 + 32];
    char *text = NULL;
    int error, dfd;

    snprintf(path, sizeof(path), "%s/oci-layout", d->dir);
    if ((error = write_file_atomic(path, LAYOUT_FILE, strlen(LAYOUT_FILE))) < 0)
        return error;
    if (!(text = json_dumps(d->index, JSON_COMPACT)))
        return berth_error_set(BERTH_ERROR, "out of memory");
    snprintf(path, sizeof(path), "%s/index.json", d->dir);
    error = write_file_atomic(path, text, strlen(text));
    free(text);
    if (error < 0)
        return error;
    /* The renames are durable once the directory is. */
    if ((dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int ldst_commit(struct berth_image_dst *base)
{
    return berth_layout_dst_flush(base);
}

static void ldst_free(struct berth_image_dst *base)
{
    struct layout_dst *d = (struct layout_dst *)base;

    json_decref(d->index);
    if (d->remove_on_free)
        berth_rmtree(d->dir);
    free(d);
}

static const struct berth_image_dst_ops layout_dst_ops = {
    0,
    ldst_has_blob,
    NULL,
    ldst_put_blob,
    ldst_put_manifest,
    ldst_commit,
    ldst_free,
};

int berth_layout_dst_open_dir(struct berth_image_dst **out, const char *dir, const char *tag,
                              int remove_on_free)
{
    struct layout_dst *d;
    char path[4096 + 32];
    int error;

    *out = NULL;
    if (!(d = calloc(1, sizeof(*d))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    d->base.ops = &layout_dst_ops;
    d->remove_on_free = remove_on_free;
    snprintf(d->dir, sizeof(d->dir), "%s", dir);
    snprintf(d->base.tag, sizeof(d->base.tag), "%s", tag ? tag : "");
    snprintf(path, sizeof(path), "%s/oci-layout", dir);
    if (access(path, F_OK) == 0) {
        /* Add to an existing layout, keeping its other images. */
        if ((error = load_index(&d->index, dir)) < 0)
            goto done;
    } else {
        if ((error = berth_mkdir_p(dir)) < 0)
            goto done;
        d->index = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
                             BERTH_MT_OCI_INDEX, "manifests");
        if (!d->index) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
    }
    snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
    if ((error = berth_mkdir_p(path)) < 0)
        goto done;
    *out = &d->base;
    d = NULL;
done:
    if (d)
        ldst_free(&d->base);
    return error;
}

int berth_layout_dst_open(struct berth_image_dst **out, const struct berth_location *loc)
{
    int error = berth_layout_dst_open_dir(out, loc->path, loc->tag, 0);

    if (error == 0)
        (*out)->loc = *loc;
    return error;
}

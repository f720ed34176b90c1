/*
 * Tarballs as image endpoints, through libarchive. oci-archive is a tar of an
 * OCI layout: read by extracting to a private temp dir and using the layout
 * reader, written by building a layout in a temp dir and tarring it at
 * commit. docker-archive is the `docker save` / `docker load` format
 * (manifest.json + config + uncompressed layer tars): read by synthesizing a
 * Docker schema2 manifest over gzip-compressed layers (deterministic: no
 * timestamp, so a second push finds every blob), written by decompressing
 * layers so their tar digests are the config's diff_ids. Archive member
 * names are confined to the temp dir: no absolute paths, no "..".
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "client/image_int.h"
#include "core/error.h"
#include "core/manifest.h"
#include "core/reference.h"

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define IOBUF (1 << 16)
#define PATHLEN 4352

static int arch_error(struct archive *a, const char *what, const char *path)
{
    return berth_error_set(BERTH_ERROR, "%s '%s': %s", what, path,
                           archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

/* Normalize a relative member path in place: drop "." and empty components,
 * resolve "..". -1 when it is absolute or climbs out of the top. */
static int clean_path(char *out, size_t size, const char *in)
{
    char tmp[PATHLEN];
    char *save = NULL, *tok;
    size_t len = 0;

    if (in[0] == '/' || strlen(in) >= sizeof(tmp))
        return -1;
    snprintf(tmp, sizeof(tmp), "%s", in);
    out[0] = '\0';
    for (tok = strtok_r(tmp, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (!strcmp(tok, "."))
            continue;
        if (!strcmp(tok, "..")) {
            char *slash;

            if (len == 0)
                return -1;
            slash = strrchr(out, '/');
            len = slash ? (size_t)(slash - out) : 0;
            out[len] = '\0';
            continue;
        }
        if (len + strlen(tok) + 2 > size)
            return -1;
        if (len)
            out[len++] = '/';
        strcpy(out + len, tok);
        len += strlen(tok);
    }
    return 0;
}

static int parent_dirs(const char *file)
{
    char dir[PATHLEN * 2 + 8];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", file);
    if (!(slash = strrchr(dir, '/')))
        return 0;
    *slash = '\0';
    return berth_mkdir_p(dir);
}

struct link {
    char name[PATHLEN], target[PATHLEN];
};

/* Extract a tar into dir. Regular files and directories only; symlinks and
 * hard links inside the archive become hard links (docker save links shared
 * layers); anything else is ignored. */
static int extract(const char *file, const char *dir)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ent;
    struct link *links = NULL;
    size_t nlinks = 0;
    char name[PATHLEN], path[PATHLEN * 2];
    int r, fd, error = 0;

    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, file, IOBUF) != ARCHIVE_OK) {
        error = arch_error(a, "cannot open", file);
        goto done;
    }
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
        const char *pn = archive_entry_pathname(ent), *hl = archive_entry_hardlink(ent);
        mode_t type = archive_entry_filetype(ent);

        if (!pn || clean_path(name, sizeof(name), pn) < 0) {
            error = berth_error_set(BERTH_EINVALID, "unsafe member '%s' in '%s'", pn ? pn : "",
                                    file);
            goto done;
        }
        if (!name[0])
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (hl || type == AE_IFLNK) {
            char joined[PATHLEN * 2];
            struct link *nl;

            if (hl) {
                snprintf(joined, sizeof(joined), "%s", hl);
            } else {
                const char *t = archive_entry_symlink(ent);
                const char *slash = strrchr(name, '/');

                if (!t || t[0] == '/')
                    continue;
                snprintf(joined, sizeof(joined), "%.*s%s%s", slash ? (int)(slash - name) : 0,
                         name, slash ? "/" : "", t);
            }
            if (!(nl = realloc(links, (nlinks + 1) * sizeof(*links)))) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                goto done;
            }
            links = nl;
            snprintf(links[nlinks].name, PATHLEN, "%s", name);
            if (clean_path(links[nlinks].target, PATHLEN, joined) < 0)
                continue;
            nlinks++;
            continue;
        }
        if (type == AE_IFDIR) {
            if ((error = berth_mkdir_p(path)) < 0)
                goto done;
            continue;
        }
        if (type != AE_IFREG)
            continue;
        if ((error = parent_dirs(path)) < 0)
            goto done;
        if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
            error = berth_error_errno("cannot create '%s'", path);
            goto done;
        }
        r = archive_read_data_into_fd(a, fd);
        close(fd);
        if (r != ARCHIVE_OK) {
            error = arch_error(a, "cannot read", file);
            goto done;
        }
    }
    if (r != ARCHIVE_EOF) {
        error = arch_error(a, "cannot read", file);
        goto done;
    }
    for (size_t i = 0; i < nlinks; i++) {
        char from[PATHLEN * 2], to[PATHLEN * 2];

        snprintf(from, sizeof(from), "%s/%s", dir, links[i].target);
        snprintf(to, sizeof(to), "%s/%s", dir, links[i].name);
        if ((error = parent_dirs(to)) < 0)
            goto done;
        if (link(from, to) < 0 && errno != EEXIST && errno != ENOENT) {
            error = berth_error_errno("cannot link '%s'", to);
            goto done;
        }
    }
done:
    free(links);
    archive_read_free(a);
    return error;
}

int berth_archive_peek(const char *path, int *has_manifest_json, int *has_oci_layout)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ent;
    char name[PATHLEN];
    int error = 0;

    *has_manifest_json = *has_oci_layout = 0;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, IOBUF) != ARCHIVE_OK) {
        error = arch_error(a, "cannot open", path);
        goto done;
    }
    while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
        const char *pn = archive_entry_pathname(ent);

        if (!pn || clean_path(name, sizeof(name), pn) < 0)
            continue;
        if (!strcmp(name, "manifest.json"))
            *has_manifest_json = 1;
        else if (!strcmp(name, "oci-layout"))
            *has_oci_layout = 1;
    }
    if (!*has_manifest_json && !*has_oci_layout && archive_errno(a) != 0)
        error = arch_error(a, "cannot read", path);
done:
    archive_read_free(a);
    return error;
}

/* ---- writing tars ---- */

static int add_file(struct archive *a, const char *rel, const char *path)
{
    struct archive_entry *ent = NULL;
    char buf[IOBUF];
    struct stat st;
    int fd, error = 0;
    ssize_t n;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return berth_error_errno("cannot open '%s'", path);
    if (fstat(fd, &st) < 0) {
        error = berth_error_errno("cannot stat '%s'", path);
        goto done;
    }
    ent = archive_entry_new();
    archive_entry_set_pathname(ent, rel);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0644);
    archive_entry_set_size(ent, st.st_size);
    archive_entry_set_mtime(ent, 0, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        error = arch_error(a, "cannot write", rel);
        goto done;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (archive_write_data(a, buf, (size_t)n) != n) {
            error = arch_error(a, "cannot write", rel);
            goto done;
        }
    }
    if (n < 0)
        error = berth_error_errno("cannot read '%s'", path);
done:
    archive_entry_free(ent);
    close(fd);
    return error;
}

static int add_dir_entry(struct archive *a, const char *rel)
{
    struct archive_entry *ent = archive_entry_new();
    int error = 0;

    archive_entry_set_pathname(ent, rel);
    archive_entry_set_filetype(ent, AE_IFDIR);
    archive_entry_set_perm(ent, 0755);
    archive_entry_set_mtime(ent, 0, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK)
        error = arch_error(a, "cannot write", rel);
    archive_entry_free(ent);
    return error;
}

/* Add everything under root/rel (sorted, so the tar is reproducible). */
static int add_tree(struct archive *a, const char *root, const char *rel)
{
    struct dirent **names = NULL;
    char dir[PATHLEN * 2];
    int n, error = 0;

    snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
    if ((n = scandir(dir, &names, NULL, alphasort)) < 0)
        return berth_error_errno("cannot list '%s'", dir);
    for (int i = 0; i < n; i++) {
        char r[PATHLEN], p[PATHLEN * 3];
        struct stat st;

        if (error < 0 || !strcmp(names[i]->d_name, ".") || !strcmp(names[i]->d_name, ".."))
            continue;
        snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", names[i]->d_name);
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]->d_name);
        if (lstat(p, &st) < 0) {
            error = berth_error_errno("cannot stat '%s'", p);
        } else if (S_ISDIR(st.st_mode)) {
            if ((error = add_dir_entry(a, r)) == 0)
                error = add_tree(a, root, r);
        } else if (S_ISREG(st.st_mode) && !strstr(names[i]->d_name, ".tmp-")) {
            error = add_file(a, r, p);
        }
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return error;
}

struct tar_out {
    struct archive *a;
    char tmp[PATHLEN];
    const char *path;
    int fd;
};

static int tar_begin(struct tar_out *t, const char *path)
{
    memset(t, 0, sizeof(*t));
    t->path = path;
    t->fd = -1;
    snprintf(t->tmp, sizeof(t->tmp), "%s.tmp-XXXXXX", path);
    if ((t->fd = mkostemp(t->tmp, O_CLOEXEC)) < 0)
        return berth_error_errno("cannot create '%s'", t->tmp);
    fchmod(t->fd, 0644);
    t->a = archive_write_new();
    archive_write_set_format_pax_restricted(t->a);
    if (archive_write_open_fd(t->a, t->fd) != ARCHIVE_OK)
        return arch_error(t->a, "cannot write", t->tmp);
    return 0;
}

/* Finish (error == 0: close, fsync, rename) or abandon the tar. */
static int tar_end(struct tar_out *t, int error)
{
    if (t->a) {
        if (error == 0 && archive_write_close(t->a) != ARCHIVE_OK)
            error = arch_error(t->a, "cannot write", t->tmp);
        archive_write_free(t->a);
    }
    if (t->fd >= 0) {
        if (error == 0 && fsync(t->fd) < 0)
            error = berth_error_errno("cannot fsync '%s'", t->tmp);
        close(t->fd);
        if (error == 0 && rename(t->tmp, t->path) < 0)
            error = berth_error_errno("cannot rename into '%s'", t->path);
        if (error < 0)
            unlink(t->tmp);
    }
    return error;
}

/* ---- oci-archive ---- */

int berth_oci_archive_src_open(struct berth_image_src **out, const struct berth_location *loc)
{
    char dir[PATHLEN];
    int error;

    *out = NULL;
    if ((error = berth_tmpdir(dir, sizeof(dir))) < 0)
        return error;
    if ((error = extract(loc->path, dir)) < 0) {
        berth_rmtree(dir);
        return error;
    }
    if ((error = berth_layout_src_open_dir(out, dir, loc->tag, 1)) < 0) {
        berth_rmtree(dir);
        return error;
    }
    (*out)->loc = *loc;
    return 0;
}

struct oci_archive_dst {
    struct berth_image_dst base;
    struct berth_image_dst *layout;
    char dir[PATHLEN];
};

static int oad_has_blob(struct berth_image_dst *b, const struct berth_digest *dg, uint64_t size)
{
    struct oci_archive_dst *d = (struct oci_archive_dst *)b;

    return d->layout->ops->has_blob(d->layout, dg, size);
}

static int oad_put_blob(struct berth_image_dst *b, const struct berth_digest *dg, int fd,
                        uint64_t size, berth_progress_fn progress, void *ctx)
{
    struct oci_archive_dst *d = (struct oci_archive_dst *)b;

    return d->layout->ops->put_blob(d->layout, dg, fd, size, progress, ctx);
}

static int oad_put_manifest(struct berth_image_dst *b, const uint8_t *data, size_t len,
                            const char *mt, const struct berth_digest *dg, const char *tag, int top)
{
    struct oci_archive_dst *d = (struct oci_archive_dst *)b;

    return d->layout->ops->put_manifest(d->layout, data, len, mt, dg, tag, top);
}

static int oad_commit(struct berth_image_dst *b)
{
    struct oci_archive_dst *d = (struct oci_archive_dst *)b;
    struct tar_out t;
    int error;

    if ((error = berth_layout_dst_flush(d->layout)) < 0)
        return error;
    if ((error = tar_begin(&t, d->base.loc.path)) == 0)
        error = add_tree(t.a, d->dir, "");
    return tar_end(&t, error);
}

static void oad_free(struct berth_image_dst *b)
{
    struct oci_archive_dst *d = (struct oci_archive_dst *)b;

    berth_image_dst_free(d->layout); /* removes d->dir */
    free(d);
}

static const struct berth_image_dst_ops oci_archive_dst_ops = {
    0, oad_has_blob, NULL, oad_put_blob, oad_put_manifest, oad_commit, oad_free,
};

int berth_oci_archive_dst_open(struct berth_image_dst **out, const struct berth_location *loc)
{
    struct oci_archive_dst *d;
    int error;

    *out = NULL;
    if (!(d = calloc(1, sizeof(*d))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    d->base.ops = &oci_archive_dst_ops;
    d->base.loc = *loc;
    snprintf(d->base.tag, sizeof(d->base.tag), "%s", loc->tag);
    if ((error = berth_tmpdir(d->dir, sizeof(d->dir))) < 0) {
        free(d);
        return error;
    }
    if ((error = berth_layout_dst_open_dir(&d->layout, d->dir, loc->tag, 1)) < 0) {
        berth_rmtree(d->dir);
        free(d);
        return error;
    }
    *out = &d->base;
    return 0;
}

/* ---- gzip through libarchive's raw format ---- */

/* Compress fd `in` (from offset 0) into `out` with gzip, no timestamp or
 * name in the header: the same tar always gives the same blob. */
static int gzip_fd(int in, int out)
{
    struct archive *a = archive_write_new();
    struct archive_entry *ent = archive_entry_new();
    char buf[IOBUF];
    off_t off = 0;
    ssize_t n;
    int error = 0;

    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
    archive_write_set_bytes_in_last_block(a, 1);
    if (archive_write_open_fd(a, out) != ARCHIVE_OK) {
        error = arch_error(a, "cannot compress", "layer");
        goto done;
    }
    archive_entry_set_filetype(ent, AE_IFREG);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        error = arch_error(a, "cannot compress", "layer");
        goto done;
    }
    while ((n = pread(in, buf, sizeof(buf), off)) > 0) {
        if (archive_write_data(a, buf, (size_t)n) != n) {
            error = arch_error(a, "cannot compress", "layer");
            goto done;
        }
        off += n;
    }
    if (n < 0) {
        error = berth_error_errno("cannot read layer");
        goto done;
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        error = arch_error(a, "cannot compress", "layer");
done:
    archive_entry_free(ent);
    archive_write_free(a);
    return error;
}

/* Decompress (any filter libarchive knows, or none) fd `in` into `out`,
 * digesting the output: the layer's diff_id. */
static int gunzip_fd(int in, int out, struct berth_digest *diff_id, uint64_t *size)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ent;
    struct berth_hasher h;
    char buf[IOBUF];
    ssize_t n;
    int error = 0, hinit = 0;

    *size = 0;
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (lseek(in, 0, SEEK_SET) < 0 || archive_read_open_fd(a, in, IOBUF) != ARCHIVE_OK ||
        archive_read_next_header(a, &ent) != ARCHIVE_OK) {
        error = arch_error(a, "cannot decompress", "layer");
        goto done;
    }
    if ((error = berth_hasher_init(&h, BERTH_SHA256)) < 0)
        goto done;
    hinit = 1;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
        if ((error = berth_hasher_update(&h, buf, (size_t)n)) < 0)
            goto done;
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));

            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                error = berth_error_errno("cannot write layer");
                goto done;
            }
            w += k;
        }
        *size += (uint64_t)n;
    }
    if (n < 0) {
        error = arch_error(a, "cannot decompress", "layer");
        goto done;
    }
    error = berth_hasher_final(&h, diff_id);
done:
    if (hinit)
        berth_hasher_dispose(&h);
    archive_read_free(a);
    return error;
}

/* ---- docker-archive source ---- */

struct dblob {
    struct berth_digest digest;
    uint64_t size;
    char path[PATHLEN * 2]; /* file holding the blob bytes */
    char origin[PATHLEN];   /* member it was made from ("" for none) */
};

struct docker_src {
    struct berth_image_src base;
    char dir[PATHLEN];
    json_t *manifest; /* manifest.json */
    struct dblob *blobs;
    size_t nblobs;
    char built[256]; /* selection the manifest below was built for */
    int have;
    uint8_t *mdata;
    size_t mlen;
    struct berth_digest mdigest;
};

static int same_name(const char *a, const char *b)
{
    struct berth_ref ra, rb;
    char fa[1024], fb[1024];

    if (!strcmp(a, b))
        return 1;
    if (berth_ref_parse(&ra, a) < 0 || berth_ref_parse(&rb, b) < 0)
        return 0;
    berth_ref_format(fa, sizeof(fa), &ra);
    berth_ref_format(fb, sizeof(fb), &rb);
    return !strcmp(fa, fb);
}

static int pick_entry(json_t **out, struct docker_src *s)
{
    json_t *it, *tag;
    size_t i, j;

    *out = NULL;
    if (!s->base.sel[0]) {
        *out = json_array_get(s->manifest, 0);
        return 0;
    }
    json_array_foreach(s->manifest, i, it)
    {
        json_array_foreach(json_object_get(it, "RepoTags"), j, tag)
        {
            if (json_is_string(tag) && same_name(json_string_value(tag), s->base.sel)) {
                *out = it;
                return 0;
            }
        }
    }
    return berth_error_set(BERTH_ENOTFOUND, "no image named '%s' in '%s'", s->base.sel,
                           s->base.loc.path);
}

static int add_dblob(struct docker_src *s, const struct berth_digest *d, uint64_t size,
                     const char *path, const char *origin)
{
    struct dblob *nb;

    for (size_t i = 0; i < s->nblobs; i++)
        if (berth_digest_equal(&s->blobs[i].digest, d))
            return 0;
    if (!(nb = realloc(s->blobs, (s->nblobs + 1) * sizeof(*nb))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    s->blobs = nb;
    memset(&nb[s->nblobs], 0, sizeof(*nb));
    nb[s->nblobs].digest = *d;
    nb[s->nblobs].size = size;
    snprintf(nb[s->nblobs].path, sizeof(nb->path), "%s", path);
    snprintf(nb[s->nblobs].origin, sizeof(nb->origin), "%s", origin);
    s->nblobs++;
    return 0;
}

static int member_path(char *out, size_t size, struct docker_src *s, const char *member)
{
    char clean[PATHLEN];

    if (!member || clean_path(clean, sizeof(clean), member) < 0 || !clean[0])
        return berth_error_set(BERTH_EINVALID, "invalid member '%s' in manifest.json of '%s'",
                               member ? member : "", s->base.loc.path);
    snprintf(out, size, "%s/%s", s->dir, clean);
    return 0;
}

/* The gzip blob for a layer member: the member itself when already gzip,
 * else a compressed copy (made once per member). */
static int layer_blob(struct docker_src *s, const char *member, struct dblob **out)
{
    char src[PATHLEN * 2], gz[PATHLEN * 2];
    unsigned char magic[2] = { 0, 0 };
    struct berth_digest d;
    struct stat st;
    int in = -1, o = -1, error;

    for (size_t i = 0; i < s->nblobs; i++) {
        if (!strcmp(s->blobs[i].origin, member)) {
            *out = &s->blobs[i];
            return 0;
        }
    }
    if ((error = member_path(src, sizeof(src), s, member)) < 0)
        return error;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        return berth_error_errno("layer '%s' missing from '%s'", member, s->base.loc.path);
    if (pread(in, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        snprintf(gz, sizeof(gz), "%s", src);
    } else {
        snprintf(gz, sizeof(gz), "%s/.berth-gz-%zu", s->dir, s->nblobs);
        if ((o = open(gz, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
            error = berth_error_errno("cannot create '%s'", gz);
            goto done;
        }
        if ((error = gzip_fd(in, o)) < 0)
            goto done;
        close(in);
        in = o;
        o = -1;
    }
    if (fstat(in, &st) < 0) {
        error = berth_error_errno("cannot stat '%s'", gz);
        goto done;
    }
    if ((error = berth_digest_fd(&d, BERTH_SHA256, in)) < 0)
        goto done;
    if ((error = add_dblob(s, &d, (uint64_t)st.st_size, gz, member)) < 0)
        goto done;
    for (size_t i = 0; i < s->nblobs; i++)
        if (berth_digest_equal(&s->blobs[i].digest, &d))
            *out = &s->blobs[i];
done:
    if (in >= 0)
        close(in);
    if (o >= 0)
        close(o);
    return error;
}

/* Build the Docker schema2 manifest of the selected image. */
static int build_manifest(struct docker_src *s)
{
    json_t *entry, *layers = NULL, *root = NULL, *it;
    char cpath[PATHLEN * 2];
    struct berth_digest cd;
    struct stat st;
    char *text = NULL;
    size_t i;
    int fd = -1, error;

    if (s->have && !strcmp(s->built, s->base.sel))
        return 0;
    if ((error = pick_entry(&entry, s)) < 0)
        return error;
    if ((error = member_path(cpath, sizeof(cpath), s,
                             json_string_value(json_object_get(entry, "Config")))) < 0)
        return error;
    if ((fd = open(cpath, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
        error = berth_error_errno("config missing from '%s'", s->base.loc.path);
        goto done;
    }
    if ((error = berth_digest_fd(&cd, BERTH_SHA256, fd)) < 0)
        goto done;
    if ((error = add_dblob(s, &cd, (uint64_t)st.st_size, cpath, "")) < 0)
        goto done;
    layers = json_array();
    json_array_foreach(json_object_get(entry, "Layers"), i, it)
    {
        struct dblob *b = NULL;

        if (!json_is_string(it)) {
            error = berth_error_set(BERTH_EINVALID, "invalid Layers in manifest.json of '%s'",
                                    s->base.loc.path);
            goto done;
        }
        if ((error = layer_blob(s, json_string_value(it), &b)) < 0)
            goto done;
        json_array_append_new(layers, json_pack("{s:s, s:I, s:s}", "mediaType",
                                                MT_DOCKER_LAYER_GZIP, "size", (json_int_t)b->size,
                                                "digest", b->digest.str));
    }
    root = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:O}", "schemaVersion", 2, "mediaType",
                     BERTH_MT_DOCKER_MANIFEST, "config", "mediaType", MT_DOCKER_CONFIG, "size",
                     (json_int_t)st.st_size, "digest", cd.str, "layers", layers);
    if (!root || !(text = json_dumps(root, JSON_COMPACT))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    free(s->mdata);
    s->mdata = (uint8_t *)text;
    s->mlen = strlen(text);
    text = NULL;
    if ((error = berth_digest_buf(&s->mdigest, BERTH_SHA256, s->mdata, s->mlen)) < 0)
        goto done;
    snprintf(s->built, sizeof(s->built), "%s", s->base.sel);
    s->have = 1;
done:
    if (fd >= 0)
        close(fd);
    free(text);
    json_decref(layers);
    json_decref(root);
    return error;
}

static int dsrc_get_manifest(struct berth_image_src *b, const char *ref, struct berth_blob_buf *out)
{
    struct docker_src *s = (struct docker_src *)b;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = build_manifest(s)) < 0)
        return error;
    if (ref && strcmp(ref, s->mdigest.str))
        return berth_error_set(BERTH_ENOTFOUND, "no manifest %s in '%s'", ref, b->loc.path);
    if (!(out->data = malloc(s->mlen)))
        return berth_error_set(BERTH_ERROR, "out of memory");
    memcpy(out->data, s->mdata, s->mlen);
    out->len = s->mlen;
    out->digest = s->mdigest;
    snprintf(out->media_type, sizeof(out->media_type), "%s", BERTH_MT_DOCKER_MANIFEST);
    return 0;
}

static int dsrc_open_blob(struct berth_image_src *b, const struct berth_digest *d, int64_t size,
                          int *fd, uint64_t *size_out, berth_progress_fn progress, void *ctx)
{
    struct docker_src *s = (struct docker_src *)b;

    (void)size;
    *fd = -1;
    for (size_t i = 0; i < s->nblobs; i++) {
        if (!berth_digest_equal(&s->blobs[i].digest, d))
            continue;
        if ((*fd = open(s->blobs[i].path, O_RDONLY | O_CLOEXEC)) < 0)
            return berth_error_errno("cannot open '%s'", s->blobs[i].path);
        *size_out = s->blobs[i].size;
        if (progress)
            progress(ctx, s->blobs[i].size);
        return 0;
    }
    return berth_error_set(BERTH_ENOTFOUND, "blob %s not in '%s'", d->str, b->loc.path);
}

static int dsrc_tags(struct berth_image_src *b, berth_name_fn fn, void *ctx)
{
    struct docker_src *s = (struct docker_src *)b;
    json_t *it, *tag;
    size_t i, j;
    int error;

    json_array_foreach(s->manifest, i, it)
    {
        json_array_foreach(json_object_get(it, "RepoTags"), j, tag)
        {
            if (json_is_string(tag) && (error = fn(ctx, json_string_value(tag))) < 0)
                return error;
        }
    }
    return 0;
}

static void dsrc_free(struct berth_image_src *b)
{
    struct docker_src *s = (struct docker_src *)b;

    json_decref(s->manifest);
    berth_rmtree(s->dir);
    free(s->blobs);
    free(s->mdata);
    free(s);
}

static const struct berth_image_src_ops docker_src_ops = {
    dsrc_get_manifest,
    dsrc_open_blob,
    dsrc_tags,
    dsrc_free,
};

int berth_docker_archive_src_open(struct berth_image_src **out, const struct berth_location *loc)
{
    struct docker_src *s;
    char path[PATHLEN + 32];
    json_error_t jerr;
    int error;

    *out = NULL;
    if (!(s = calloc(1, sizeof(*s))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    s->base.ops = &docker_src_ops;
    s->base.loc = *loc;
    snprintf(s->base.sel, sizeof(s->base.sel), "%s", loc->tag);
    if ((error = berth_tmpdir(s->dir, sizeof(s->dir))) < 0) {
        free(s);
        return error;
    }
    if ((error = extract(loc->path, s->dir)) < 0)
        goto done;
    snprintf(path, sizeof(path), "%s/manifest.json", s->dir);
    if (!(s->manifest = json_load_file(path, 0, &jerr))) {
        error = berth_error_set(BERTH_EINVALID, "'%s' is not a docker-archive: manifest.json: %s",
                                loc->path, jerr.text);
        goto done;
    }
    if (!json_is_array(s->manifest) || json_array_size(s->manifest) == 0) {
        error = berth_error_set(BERTH_EINVALID, "'%s': manifest.json lists no image", loc->path);
        goto done;
    }
    *out = &s->base;
    s = NULL;
done:
    if (s)
        dsrc_free(&s->base);
    return error;
}

/* ---- docker-archive destination ---- */

struct docker_dst {
    struct berth_image_dst base;
    char dir[PATHLEN]; /* blobs by hex, and decompressed layers */
    json_t *images;    /* [{"digest","config","layers":[...],"tags":[...]}] */
};

static void dblob_path(char *out, size_t size, struct docker_dst *d, const struct berth_digest *dg)
{
    snprintf(out, size, "%s/%s-%s", d->dir, berth_digest_algo_name(dg->algo),
             berth_digest_hex(dg));
}

static int ddst_has_blob(struct berth_image_dst *b, const struct berth_digest *dg, uint64_t size)
{
    struct docker_dst *d = (struct docker_dst *)b;
    char path[PATHLEN * 2];
    struct stat st;

    dblob_path(path, sizeof(path), d, dg);
    return stat(path, &st) == 0 && (uint64_t)st.st_size == size;
}

static int ddst_put_blob(struct berth_image_dst *b, const struct berth_digest *dg, int fd,
                         uint64_t size, berth_progress_fn progress, void *ctx)
{
    struct docker_dst *d = (struct docker_dst *)b;
    char path[PATHLEN * 2];
    int error;

    dblob_path(path, sizeof(path), d, dg);
    if ((error = berth_copy_fd_to_path(path, fd, size)) < 0)
        return error;
    if (progress)
        progress(ctx, size);
    return 0;
}

/* "gallery/ui:v1" as docker prints it (docker.io/library/ dropped). */
static void repo_tag(char *out, size_t size, const char *tag)
{
    struct berth_ref r;

    if (berth_ref_parse(&r, tag) == 0 && r.tag[0])
        berth_ref_format_short(out, size, &r);
    else
        snprintf(out, size, "%s", tag);
}

static int ddst_put_manifest(struct berth_image_dst *b, const uint8_t *data, size_t len,
                             const char *mt, const struct berth_digest *dg, const char *tag,
                             int top)
{
    struct docker_dst *d = (struct docker_dst *)b;
    struct berth_manifest *m = NULL;
    json_t *img = NULL, *it, *layers;
    char name[1024];
    size_t i;
    int error;

    if (!top)
        return 0;
    if ((error = berth_manifest_parse(&m, mt, data, len)) < 0)
        return error;
    if (berth_manifest_kind_is_index(m->kind) || !m->has_config) {
        error = berth_error_set(BERTH_EINVALID, "a docker-archive holds images, not %s", mt);
        goto done;
    }
    json_array_foreach(d->images, i, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, "digest")), dg->str))
            img = it;
    }
    if (!img) {
        layers = json_array();
        for (i = 0; i < m->nlayers; i++)
            json_array_append_new(layers, json_string(m->layers[i].digest.str));
        img = json_pack("{s:s, s:s, s:o, s:[]}", "digest", dg->str, "config",
                        m->config.digest.str, "layers", layers, "tags");
        if (!img) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        json_array_append_new(d->images, img);
    }
    if (tag) {
        repo_tag(name, sizeof(name), tag);
        json_array_append_new(json_object_get(img, "tags"), json_string(name));
    }
done:
    berth_manifest_free(m);
    return error;
}

static int ddst_commit(struct berth_image_dst *b)
{
    struct docker_dst *d = (struct docker_dst *)b;
    json_t *out = json_array(), *written = json_object(), *img;
    struct tar_out t;
    char *text = NULL;
    size_t i, j;
    int error;

    if ((error = tar_begin(&t, b->loc.path)) < 0)
        goto done;
    json_array_foreach(d->images, i, img)
    {
        struct berth_digest cd;
        const char *cs = json_string_value(json_object_get(img, "config"));
        json_t *layers = json_array(), *ly;
        char path[PATHLEN * 2], rel[300];

        json_array_append_new(out, json_pack("{s:s, s:O, s:o}", "Config", "", "RepoTags",
                                             json_object_get(img, "tags"), "Layers", layers));
        if ((error = berth_digest_parse(&cd, cs, strlen(cs))) < 0)
            goto done;
        snprintf(rel, sizeof(rel), "%s.json", berth_digest_hex(&cd));
        json_object_set_new(json_array_get(out, i), "Config", json_string(rel));
        dblob_path(path, sizeof(path), d, &cd);
        if (!json_object_get(written, rel)) {
            if ((error = add_file(t.a, rel, path)) < 0)
                goto done;
            json_object_set_new(written, rel, json_true());
        }
        json_array_foreach(json_object_get(img, "layers"), j, ly)
        {
            struct berth_digest ld, diff;
            const char *ls = json_string_value(ly);
            char lay[PATHLEN * 2 + 8];
            uint64_t size;
            int in, o;

            if ((error = berth_digest_parse(&ld, ls, strlen(ls))) < 0)
                goto done;
            dblob_path(path, sizeof(path), d, &ld);
            snprintf(lay, sizeof(lay), "%s.tar", path);
            if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
                error = berth_error_errno("cannot open '%s'", path);
                goto done;
            }
            if ((o = open(lay, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
                close(in);
                error = berth_error_errno("cannot create '%s'", lay);
                goto done;
            }
            error = gunzip_fd(in, o, &diff, &size);
            close(in);
            close(o);
            if (error < 0)
                goto done;
            snprintf(rel, sizeof(rel), "%s/layer.tar", berth_digest_hex(&diff));
            json_array_append_new(layers, json_string(rel));
            if (!json_object_get(written, rel)) {
                if ((error = add_file(t.a, rel, lay)) < 0)
                    goto done;
                json_object_set_new(written, rel, json_true());
            }
            unlink(lay);
        }
    }
    {
        char path[PATHLEN + 32];
        int fd;

        if (!(text = json_dumps(out, JSON_COMPACT))) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        snprintf(path, sizeof(path), "%s/manifest.json", d->dir);
        if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
            write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
            error = berth_error_errno("cannot write '%s'", path);
            if (fd >= 0)
                close(fd);
            goto done;
        }
        close(fd);
        error = add_file(t.a, "manifest.json", path);
    }
done:
    error = tar_end(&t, error);
    free(text);
    json_decref(out);
    json_decref(written);
    return error;
}

static void ddst_free(struct berth_image_dst *b)
{
    struct docker_dst *d = (struct docker_dst *)b;

    json_decref(d->images);
    berth_rmtree(d->dir);
    free(d);
}

static const struct berth_image_dst_ops docker_dst_ops = {
    1, ddst_has_blob, NULL, ddst_put_blob, ddst_put_manifest, ddst_commit, ddst_free,
};

int berth_docker_archive_dst_open(struct berth_image_dst **out, const struct berth_location *loc)
{
    struct docker_dst *d;
    int error;

    *out = NULL;
    if (!(d = calloc(1, sizeof(*d))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    d->base.ops = &docker_dst_ops;
    d->base.loc = *loc;
    snprintf(d->base.tag, sizeof(d->base.tag), "%s", loc->tag);
    if ((error = berth_tmpdir(d->dir, sizeof(d->dir))) < 0) {
        free(d);
        return error;
    }
    d->images = json_array();
    *out = &d->base;
    return 0;
}

/*
 * The copy engine (see image.h): locations, opening the source and
 * destination adapters, and berth_image_copy — walk the top manifest
 * (index → children → config + layers), move every blob the destination
 * lacks through a small pthread pool (HEAD, then mount within one registry
 * from the source repository or one the blob cache names, else bytes), then
 * store the manifests verbatim, children before parents.
 * Invariant: a manifest is stored only after every blob and child it names
 * is at the destination, so a failed copy never leaves a dangling manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "client/blobcache.h"
#include "client/image_int.h"
#include "client/progress.h"
#include "core/error.h"
#include "core/manifest.h"

#define MAX_DEPTH 4
#define DEFAULT_PARALLEL 4
#define MAX_PARALLEL 32

/* ---- locations ---- */

static const struct {
    const char *prefix;
    enum berth_loc_kind kind;
} transports[] = {
    { "oci:", BERTH_LOC_OCI_LAYOUT },
    { "oci-archive:", BERTH_LOC_OCI_ARCHIVE },
    { "docker-archive:", BERTH_LOC_DOCKER_ARCHIVE },
};

static int parse_file_loc(struct berth_location *out, const char *s, const char *rest)
{
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);

    if (plen == 0)
        return berth_error_set(BERTH_EINVALID, "invalid location '%s': missing path", s);
    if (plen >= sizeof(out->path))
        return berth_error_set(BERTH_EINVALID, "invalid location '%s': path too long", s);
    memcpy(out->path, rest, plen);
    out->path[plen] = '\0';
    if (!colon)
        return 0;
    if (colon[1] == '\0')
        return berth_error_set(BERTH_EINVALID, "invalid location '%s': empty tag after ':'", s);
    if (strlen(colon + 1) >= sizeof(out->tag))
        return berth_error_set(BERTH_EINVALID, "invalid location '%s': tag too long", s);
    snprintf(out->tag, sizeof(out->tag), "%s", colon + 1);
    if (out->kind == BERTH_LOC_DOCKER_ARCHIVE) {
        struct berth_ref r;

        if (berth_ref_parse(&r, out->tag) < 0)
            return berth_error_set(BERTH_EINVALID, "invalid location '%s': %s", s,
                                   berth_error_msg());
        if (!r.tag[0])
            return berth_error_set(BERTH_EINVALID,
                                   "invalid location '%s': a docker-archive name needs a tag", s);
    }
    return 0;
}

static int location_parse(struct berth_location *out, const char *s, int notag)
{
    int error;

    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return berth_error_set(BERTH_EINVALID, "invalid location '': empty");
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
        size_t n = strlen(transports[i].prefix);

        if (!strncmp(s, transports[i].prefix, n)) {
            out->kind = transports[i].kind;
            return parse_file_loc(out, s, s + n);
        }
    }
    out->kind = BERTH_LOC_REGISTRY;
    if (!strncmp(s, "docker://", 9))
        s += 9;
    error = notag ? berth_ref_parse_notag(&out->ref, s) : berth_ref_parse(&out->ref, s);
    return error < 0 ? error : 0;
}

int berth_location_parse(struct berth_location *out, const char *s)
{
    return location_parse(out, s, 0);
}

int berth_location_parse_notag(struct berth_location *out, const char *s)
{
    return location_parse(out, s, 1);
}

int berth_location_detect(struct berth_location *out, const char *path)
{
    char buf[4096 + 256], *colon;
    const char *tag = NULL;
    struct stat st;
    int has_manifest = 0, has_layout = 0, error;

    memset(out, 0, sizeof(*out));
    if (strlen(path) >= sizeof(out->path))
        return berth_error_set(BERTH_EINVALID, "path too long '%.64s...'", path);
    snprintf(buf, sizeof(buf), "%s", path);
    if (stat(buf, &st) < 0) {
        /* "DIR:TAG" names an image inside a layout or archive. */
        if (!(colon = strrchr(buf, ':')) || colon == buf || !colon[1])
            return berth_error_errno("cannot open '%s'", path);
        *colon = '\0';
        tag = colon + 1;
        if (stat(buf, &st) < 0)
            return berth_error_errno("cannot open '%s'", buf);
    }
    if ((size_t)snprintf(out->path, sizeof(out->path), "%s", buf) >= sizeof(out->path))
        return berth_error_set(BERTH_EINVALID, "path too long '%.64s...'", path);
    if (tag)
        snprintf(out->tag, sizeof(out->tag), "%s", tag);
    if (S_ISDIR(st.st_mode)) {
        char lp[sizeof(buf) + 16];

        snprintf(lp, sizeof(lp), "%s/oci-layout", buf);
        if (access(lp, F_OK) < 0)
            return berth_error_set(BERTH_EINVALID,
                                   "'%s' is a directory without an oci-layout file", buf);
        out->kind = BERTH_LOC_OCI_LAYOUT;
        return 0;
    }
    if ((error = berth_archive_peek(buf, &has_manifest, &has_layout)) < 0)
        return error;
    if (has_manifest)
        out->kind = BERTH_LOC_DOCKER_ARCHIVE;
    else if (has_layout)
        out->kind = BERTH_LOC_OCI_ARCHIVE;
    else
        return berth_error_set(BERTH_EINVALID,
                               "'%s' is neither a docker-archive (manifest.json) nor an "
                               "oci-archive (oci-layout)",
                               buf);
    return 0;
}

const char *berth_image_host_platform(void)
{
#if defined(__x86_64__)
    return "linux/amd64";
#elif defined(__aarch64__)
    return "linux/arm64";
#elif defined(__arm__)
    return "linux/arm/v7";
#elif defined(__i386__)
    return "linux/386";
#elif defined(__s390x__)
    return "linux/s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "linux/ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
    return "linux/riscv64";
#else
    return "linux/amd64";
#endif
}

/* ---- opening endpoints ---- */

int berth_image_src_open(struct berth_image_src **out, const struct berth_location *loc,
                         const struct berth_registry_opts *opts)
{
    *out = NULL;
    switch (loc->kind) {
    case BERTH_LOC_REGISTRY:
        return berth_src_registry_open(out, loc, opts);
    case BERTH_LOC_OCI_LAYOUT:
        return berth_layout_src_open(out, loc);
    case BERTH_LOC_OCI_ARCHIVE:
        return berth_oci_archive_src_open(out, loc);
    case BERTH_LOC_DOCKER_ARCHIVE:
        return berth_docker_archive_src_open(out, loc);
    }
    return berth_error_set(BERTH_EINVALID, "unknown location kind");
}

void berth_image_src_free(struct berth_image_src *src)
{
    if (src)
        src->ops->free(src);
}

int berth_image_src_select(struct berth_image_src *src, const char *ref)
{
    if (ref && strlen(ref) >= sizeof(src->sel))
        return berth_error_set(BERTH_EINVALID, "reference too long '%.64s...'", ref);
    snprintf(src->sel, sizeof(src->sel), "%s", ref ? ref : "");
    return 0;
}

int berth_image_src_tags(struct berth_image_src *src, berth_name_fn fn, void *ctx)
{
    return src->ops->tags(src, fn, ctx);
}

int berth_image_dst_open(struct berth_image_dst **out, const struct berth_location *loc,
                         const struct berth_registry_opts *opts)
{
    *out = NULL;
    switch (loc->kind) {
    case BERTH_LOC_REGISTRY:
        return berth_dst_registry_open(out, loc, opts);
    case BERTH_LOC_OCI_LAYOUT:
        return berth_layout_dst_open(out, loc);
    case BERTH_LOC_OCI_ARCHIVE:
        return berth_oci_archive_dst_open(out, loc);
    case BERTH_LOC_DOCKER_ARCHIVE:
        return berth_docker_archive_dst_open(out, loc);
    }
    return berth_error_set(BERTH_EINVALID, "unknown location kind");
}

int berth_image_dst_commit(struct berth_image_dst *dst)
{
    return dst->ops->commit(dst);
}

void berth_image_dst_free(struct berth_image_dst *dst)
{
    if (dst)
        dst->ops->free(dst);
}

/* ---- temp files ---- */

static const char *tmp_base(void)
{
    const char *t = getenv("TMPDIR");

    return t && *t ? t : "/tmp";
}

int berth_tmpfile(int *fd)
{
    char path[4096];

#ifdef O_TMPFILE
    if ((*fd = open(tmp_base(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
        return 0;
#endif
    snprintf(path, sizeof(path), "%s/berth-XXXXXX", tmp_base());
    if ((*fd = mkostemp(path, O_CLOEXEC)) < 0)
        return berth_error_errno("cannot create a temp file in '%s'", tmp_base());
    unlink(path);
    return 0;
}

int berth_tmpdir(char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/berth-XXXXXX", tmp_base()) >= size)
        return berth_error_set(BERTH_EINVALID, "TMPDIR too long");
    if (!mkdtemp(out))
        return berth_error_errno("cannot create a temp directory in '%s'", tmp_base());
    return 0;
}

int berth_mkdir_p(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);

    if (len >= sizeof(buf))
        return berth_error_set(BERTH_EINVALID, "path too long '%.64s...'", dir);
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return berth_error_errno("cannot create directory '%s'", buf);
        buf[i] = i == len ? '\0' : '/';
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void berth_rmtree(const char *dir)
{
    if (dir && *dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int berth_copy_fd_to_path(const char *path, int fd, uint64_t size)
{
    char tmp[4096 + 32];
    char buf[1 << 16];
    uint64_t off = 0;
    int out = -1, error = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
        return berth_error_set(BERTH_EINVALID, "path too long '%.64s...'", path);
    if ((out = mkostemp(tmp, O_CLOEXEC)) < 0)
        return berth_error_errno("cannot create '%s'", tmp);
    while (off < size) {
        size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error = berth_error_errno("read failed");
            goto done;
        }
        if (n == 0) {
            error = berth_error_set(BERTH_EMISMATCH, "short blob: %llu of %llu bytes",
                                    (unsigned long long)off, (unsigned long long)size);
            goto done;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));

            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                error = berth_error_errno("cannot write '%s'", tmp);
                goto done;
            }
            w += k;
        }
        off += (uint64_t)n;
    }
    if (fsync(out) < 0) {
        error = berth_error_errno("cannot fsync '%s'", tmp);
        goto done;
    }
    if (rename(tmp, path) < 0)
        error = berth_error_errno("cannot rename into '%s'", path);
done:
    if (out >= 0)
        close(out);
    if (error < 0)
        unlink(tmp);
    return error;
}

/* ---- the copy engine ---- */

struct blob_job {
    struct berth_digest digest;
    int64_t size;
    int pid; /* progress id */
    const char *action;
    uint64_t moved;
};

struct mf {
    struct berth_blob_buf buf;
};

struct engine {
    struct berth_image_src *src;
    struct berth_image_dst *dst;
    const struct berth_copy_opts *opts;
    struct berth_progress *progress;
    struct berth_blobcache *cache; /* NULL: no registry endpoint, or disabled */
    struct blob_job *jobs;
    size_t njobs, jobs_cap;
    struct mf *mfs;
    size_t nmfs, mfs_cap;
    pthread_mutex_t lock;
    size_t next;
    int error;
    char errmsg[512];
};

static int oom(void)
{
    return berth_error_set(BERTH_ERROR, "out of memory");
}

static int add_blob(struct engine *e, const struct berth_descriptor *d)
{
    for (size_t i = 0; i < e->njobs; i++)
        if (berth_digest_equal(&e->jobs[i].digest, &d->digest))
            return 0;
    if (e->njobs == e->jobs_cap) {
        size_t cap = e->jobs_cap ? e->jobs_cap * 2 : 16;
        struct blob_job *nj = realloc(e->jobs, cap * sizeof(*nj));

        if (!nj)
            return oom();
        e->jobs = nj;
        e->jobs_cap = cap;
    }
    memset(&e->jobs[e->njobs], 0, sizeof(e->jobs[0]));
    e->jobs[e->njobs].digest = d->digest;
    e->jobs[e->njobs].size = d->size;
    e->jobs[e->njobs].pid = -1;
    e->njobs++;
    return 0;
}

static int have_manifest(struct engine *e, const struct berth_digest *d)
{
    for (size_t i = 0; i < e->nmfs; i++)
        if (berth_digest_equal(&e->mfs[i].buf.digest, d))
            return 1;
    return 0;
}

/* Append a manifest (taking ownership of buf's data). */
static int add_manifest(struct engine *e, struct berth_blob_buf *buf)
{
    if (e->nmfs == e->mfs_cap) {
        size_t cap = e->mfs_cap ? e->mfs_cap * 2 : 8;
        struct mf *nm = realloc(e->mfs, cap * sizeof(*nm));

        if (!nm)
            return oom();
        e->mfs = nm;
        e->mfs_cap = cap;
    }
    e->mfs[e->nmfs++].buf = *buf;
    memset(buf, 0, sizeof(*buf));
    return 0;
}

/* Walk one manifest: children first (recursively), then its blobs; the
 * manifest itself is appended after its children (post-order). */
static int walk(struct engine *e, struct berth_blob_buf *buf, int depth)
{
    struct berth_manifest *m = NULL;
    struct berth_blob_buf child;
    int error;

    memset(&child, 0, sizeof(child));
    if (depth > MAX_DEPTH)
        return berth_error_set(BERTH_EINVALID, "manifests nested more than %d deep", MAX_DEPTH);
    if ((error = berth_manifest_parse(&m, buf->media_type[0] ? buf->media_type : NULL, buf->data,
                                      buf->len)) < 0)
        goto done;
    if (!buf->media_type[0] && m->media_type)
        snprintf(buf->media_type, sizeof(buf->media_type), "%s", m->media_type);
    if (berth_manifest_kind_is_index(m->kind)) {
        for (size_t i = 0; i < m->nmanifests; i++) {
            const struct berth_descriptor *d = &m->manifests[i];

            if (have_manifest(e, &d->digest))
                continue;
            if ((error = e->src->ops->get_manifest(e->src, d->digest.str, &child)) < 0)
                goto done;
            if (!berth_digest_equal(&child.digest, &d->digest)) {
                error = berth_error_set(BERTH_EMISMATCH, "manifest %s has digest %s",
                                        d->digest.str, child.digest.str);
                goto done;
            }
            if (!child.media_type[0])
                snprintf(child.media_type, sizeof(child.media_type), "%s", d->media_type);
            if ((error = walk(e, &child, depth + 1)) < 0)
                goto done;
        }
    } else {
        if (m->has_config && (error = add_blob(e, &m->config)) < 0)
            goto done;
        for (size_t i = 0; i < m->nlayers; i++) {
            if (berth_descriptor_is_foreign(&m->layers[i]))
                continue; /* non-distributable: never pushed, fetched from its urls */
            if ((error = add_blob(e, &m->layers[i])) < 0)
                goto done;
        }
    }
    error = add_manifest(e, buf);
done:
    berth_blob_buf_dispose(&child);
    berth_manifest_free(m);
    return error;
}

/* "os/arch[/variant]" against an index entry's platform object. */
static int platform_matches(json_t *plat, const char *want)
{
    char os[64] = "", arch[64] = "", variant[64] = "";
    const char *jos, *jarch, *jvar;

    if (sscanf(want, "%63[^/]/%63[^/]/%63s", os, arch, variant) < 2)
        return 0;
    jos = json_string_value(json_object_get(plat, "os"));
    jarch = json_string_value(json_object_get(plat, "architecture"));
    jvar = json_string_value(json_object_get(plat, "variant"));
    if (!jos || !jarch || strcmp(jos, os) || strcmp(jarch, arch))
        return 0;
    return !variant[0] || (jvar && !strcmp(jvar, variant));
}

/* The child of an index that matches the platform, fetched into out. */
static int pick_platform(struct engine *e, const struct berth_blob_buf *index,
                         struct berth_blob_buf *out)
{
    json_t *root = json_loadb((const char *)index->data, index->len, 0, NULL);
    json_t *arr = json_object_get(root, "manifests");
    const char *digest = NULL, *mt = NULL;
    size_t i;
    json_t *it;
    int error;

    json_array_foreach(arr, i, it)
    {
        if (platform_matches(json_object_get(it, "platform"), e->opts->platform)) {
            digest = json_string_value(json_object_get(it, "digest"));
            mt = json_string_value(json_object_get(it, "mediaType"));
            break;
        }
    }
    if (!digest) {
        error = berth_error_set(BERTH_ENOTFOUND, "no image for platform '%s' in index %s",
                                e->opts->platform, index->digest.str);
        goto done;
    }
    if ((error = e->src->ops->get_manifest(e->src, digest, out)) < 0)
        goto done;
    if (strcmp(out->digest.str, digest)) {
        error = berth_error_set(BERTH_EMISMATCH, "manifest %s has digest %s", digest,
                                out->digest.str);
        goto done;
    }
    if (!out->media_type[0] && mt)
        snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
done:
    json_decref(root);
    return error;
}

static int is_index(const struct berth_blob_buf *b)
{
    struct berth_manifest *m = NULL;
    int r;

    if (berth_manifest_parse(&m, b->media_type[0] ? b->media_type : NULL, b->data, b->len) < 0)
        return 0;
    r = berth_manifest_kind_is_index(m->kind);
    berth_manifest_free(m);
    return r;
}

struct job_ctx {
    struct engine *e;
    struct blob_job *j;
};

static void job_progress(void *ctx, uint64_t done)
{
    struct job_ctx *c = ctx;

    berth_progress_update(c->e->progress, c->j->pid, done);
}

/* Mount from the repositories the blob cache names on the destination's
 * registry, most recent first: 1 mounted, 0 not. A mount that fails for any
 * reason (the blob left that repository, no access) only means the bytes
 * are copied, so errors are swallowed. */
static int mount_from_cache(struct engine *e, const struct berth_digest *dg)
{
    struct berth_image_dst *dst = e->dst;
    char repos[BERTH_BLOBCACHE_REPOS][BERTH_BLOBCACHE_NAME];
    size_t n;

    if (!e->cache || !dst->ops->mount_blob || !dst->registry[0])
        return 0;
    n = berth_blobcache_lookup(e->cache, dst->registry, dg->str, repos, BERTH_BLOBCACHE_REPOS);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(repos[i], dst->repo))
            continue;
        if (!strcmp(e->src->registry, dst->registry) && !strcmp(repos[i], e->src->repo))
            continue; /* tried already */
        if (dst->ops->mount_blob(dst, repos[i], dg) == 1)
            return 1;
    }
    return 0;
}

/* Remember where the blob now is (and where it came from). Best effort. */
static void remember(struct engine *e, const struct blob_job *j)
{
    if (!e->cache)
        return;
    if (e->src->registry[0])
        berth_blobcache_add(e->cache, e->src->registry, j->digest.str, e->src->repo);
    if (e->dst->registry[0])
        berth_blobcache_add(e->cache, e->dst->registry, j->digest.str, e->dst->repo);
}

static int run_job(struct engine *e, struct blob_job *j)
{
    struct berth_image_src *src = e->src;
    struct berth_image_dst *dst = e->dst;
    struct job_ctx ctx = { e, j };
    uint64_t size = 0;
    int fd = -1, r, error;

    if ((r = dst->ops->has_blob(dst, &j->digest, (uint64_t)j->size)) < 0)
        return r;
    if (r == 1) {
        j->action = "exists";
        return 0;
    }
    if (dst->ops->mount_blob && src->registry[0] && !strcmp(src->registry, dst->registry)) {
        /* A refused mount (other repository private, registry without
         * mounts) is not fatal: the bytes are copied instead. */
        if (dst->ops->mount_blob(dst, src->repo, &j->digest) == 1) {
            j->action = "mounted";
            return 0;
        }
    }
    if (mount_from_cache(e, &j->digest) == 1) {
        j->action = "mounted";
        return 0;
    }
    if ((error = src->ops->open_blob(src, &j->digest, j->size, &fd, &size, job_progress, &ctx)) <
        0)
        goto done;
    if ((error = dst->ops->put_blob(dst, &j->digest, fd, size, job_progress, &ctx)) < 0)
        goto done;
    j->action = dst->registry[0] ? "pushed" : "written";
    j->moved = size;
done:
    if (fd >= 0)
        close(fd);
    return error;
}

static void *worker(void *arg)
{
    struct engine *e = arg;

    for (;;) {
        struct blob_job *j;
        int error;

        pthread_mutex_lock(&e->lock);
        if (e->error < 0 || e->next >= e->njobs) {
            pthread_mutex_unlock(&e->lock);
            break;
        }
        j = &e->jobs[e->next++];
        pthread_mutex_unlock(&e->lock);
        if ((error = run_job(e, j)) < 0) {
            pthread_mutex_lock(&e->lock);
            if (e->error == 0) {
                e->error = error;
                /* Name the blob unless the callee's message already does. */
                if (strstr(berth_error_msg(), j->digest.str))
                    snprintf(e->errmsg, sizeof(e->errmsg), "%s", berth_error_msg());
                else
                    snprintf(e->errmsg, sizeof(e->errmsg), "blob %s: %s", j->digest.str,
                             berth_error_msg());
            }
            pthread_mutex_unlock(&e->lock);
            continue;
        }
        remember(e, j);
        berth_progress_blob_done(e->progress, j->pid, j->action, j->moved);
    }
    return NULL;
}

static int run_blobs(struct engine *e)
{
    pthread_t th[MAX_PARALLEL];
    int n = e->opts->parallel > 0 ? e->opts->parallel : DEFAULT_PARALLEL, started = 0;

    if (n > MAX_PARALLEL)
        n = MAX_PARALLEL;
    if ((size_t)n > e->njobs)
        n = (int)e->njobs;
    for (size_t i = 0; i < e->njobs; i++)
        e->jobs[i].pid = berth_progress_add(e->progress, e->jobs[i].digest.str,
                                            e->jobs[i].size > 0 ? (uint64_t)e->jobs[i].size : 0);
    for (int i = 1; i < n; i++) {
        if (pthread_create(&th[started], NULL, worker, e) != 0)
            break;
        started++;
    }
    worker(e); /* the calling thread works too */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (e->error < 0)
        return berth_error_set(e->error, "%s", e->errmsg);
    return 0;
}

static int put_manifests(struct engine *e)
{
    const struct berth_copy_opts *o = e->opts;
    struct berth_image_dst *dst = e->dst;
    int error;

    for (size_t i = 0; i < e->nmfs; i++) {
        struct berth_blob_buf *b = &e->mfs[i].buf;
        int top = i + 1 == e->nmfs;

        if (!top || (o->ntags == 0 && !dst->tag[0])) {
            if ((error = dst->ops->put_manifest(dst, b->data, b->len, b->media_type, &b->digest,
                                                NULL, top)) < 0)
                return error;
            if (top)
                berth_progress_manifest(e->progress, b->digest.str, NULL);
            continue;
        }
        if (o->ntags == 0) {
            if ((error = dst->ops->put_manifest(dst, b->data, b->len, b->media_type, &b->digest,
                                                dst->tag, 1)) < 0)
                return error;
            berth_progress_manifest(e->progress, b->digest.str, dst->tag);
            continue;
        }
        for (size_t t = 0; t < o->ntags; t++) {
            if ((error = dst->ops->put_manifest(dst, b->data, b->len, b->media_type, &b->digest,
                                                o->tags[t], 1)) < 0)
                return error;
            berth_progress_manifest(e->progress, b->digest.str, o->tags[t]);
        }
    }
    return 0;
}

int berth_image_copy(struct berth_copy_result *out, struct berth_image_src *src,
                     struct berth_image_dst *dst, const struct berth_copy_opts *opts)
{
    struct engine e;
    struct berth_blob_buf top, child;
    int error;

    memset(out, 0, sizeof(*out));
    memset(&e, 0, sizeof(e));
    memset(&top, 0, sizeof(top));
    memset(&child, 0, sizeof(child));
    e.src = src;
    e.dst = dst;
    e.opts = opts;
    pthread_mutex_init(&e.lock, NULL);
    e.progress = berth_progress_new(opts->quiet, opts->json);
    /* The cache is a hint: without one (no HOME, out of memory) copies work
     * as before. */
    if ((src->registry[0] || dst->registry[0]) && berth_blobcache_enabled() &&
        berth_blobcache_open(&e.cache, NULL) < 0)
        e.cache = NULL;

    if ((error = src->ops->get_manifest(src, NULL, &top)) < 0)
        goto done;
    if (opts->platform && is_index(&top)) {
        if ((error = pick_platform(&e, &top, &child)) < 0)
            goto done;
        berth_blob_buf_dispose(&top);
        top = child;
        memset(&child, 0, sizeof(child));
    }
    if ((error = walk(&e, &top, 0)) < 0)
        goto done;
    if (dst->ops->single_platform && is_index(&e.mfs[e.nmfs - 1].buf)) {
        error = berth_error_set(BERTH_EINVALID, "a docker-archive holds one platform and %s is a "
                                "multi-platform index: choose one with --platform",
                                e.mfs[e.nmfs - 1].buf.digest.str);
        goto done;
    }
    if ((error = run_blobs(&e)) < 0)
        goto done;
    if ((error = put_manifests(&e)) < 0)
        goto done;
    out->digest = e.mfs[e.nmfs - 1].buf.digest;
    for (size_t i = 0; i < e.njobs; i++) {
        const char *a = e.jobs[i].action;

        if (!strcmp(a, "exists"))
            out->blobs_skipped++;
        else if (!strcmp(a, "mounted"))
            out->blobs_mounted++;
        else
            out->blobs_moved++;
        out->bytes_moved += e.jobs[i].moved;
    }
    berth_progress_finish(e.progress, out->digest.str);
    /* Best effort, and only on success so a failure keeps its own message;
     * a lost hint costs one upload. */
    if (e.cache)
        berth_blobcache_save(e.cache);
done:
    berth_blobcache_free(e.cache);
    berth_blob_buf_dispose(&top);
    berth_blob_buf_dispose(&child);
    for (size_t i = 0; i < e.nmfs; i++)
        berth_blob_buf_dispose(&e.mfs[i].buf);
    free(e.mfs);
    free(e.jobs);
    berth_progress_free(e.progress);
    pthread_mutex_destroy(&e.lock);
    return error;
}

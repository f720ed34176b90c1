/*
 * A registry repository as a copy source, over the registry client
 * (registry.h). Manifests come back verified by the client; each blob is
 * downloaded into an anonymous temp file (digest and size verified while it
 * streams) so the destination can pread it, upload it in chunks and resume.
 * Thread-safe like the client: blobs may be opened from several threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/image_int.h"
#include "core/error.h"

struct reg_src {
    struct berth_image_src base;
    struct berth_registry *reg;
};

static int rsrc_get_manifest(struct berth_image_src *b, const char *ref,
                             struct berth_blob_buf *out)
{
    struct reg_src *s = (struct reg_src *)b;

    memset(out, 0, sizeof(*out));
    if (!ref)
        ref = b->sel[0] ? b->sel : berth_ref_manifest_ref(&b->loc.ref);
    if (!ref || !ref[0])
        ref = BERTH_DEFAULT_TAG;
    return berth_registry_manifest_get(s->reg, b->repo, ref, out);
}

static int rsrc_open_blob(struct berth_image_src *b, const struct berth_digest *d, int64_t size,
                          int *fd, uint64_t *size_out, berth_progress_fn progress, void *ctx)
{
    struct reg_src *s = (struct reg_src *)b;
    off_t end;
    int f, error;

    *fd = -1;
    if ((error = berth_tmpfile(&f)) < 0)
        return error;
    if ((error = berth_registry_blob_get(s->reg, b->repo, d, size, f, progress, ctx)) < 0) {
        close(f);
        return error;
    }
    if ((end = lseek(f, 0, SEEK_END)) < 0) {
        error = berth_error_errno("cannot seek temp file");
        close(f);
        return error;
    }
    *fd = f;
    *size_out = (uint64_t)end;
    return 0;
}

static int rsrc_tags(struct berth_image_src *b, berth_name_fn fn, void *ctx)
{
    struct reg_src *s = (struct reg_src *)b;

    return berth_registry_tags(s->reg, b->repo, fn, ctx);
}

static void rsrc_free(struct berth_image_src *b)
{
    struct reg_src *s = (struct reg_src *)b;

    berth_registry_free(s->reg);
    free(s);
}

static const struct berth_image_src_ops reg_src_ops = {
    rsrc_get_manifest,
    rsrc_open_blob,
    rsrc_tags,
    rsrc_free,
};

int berth_src_registry_open(struct berth_image_src **out, const struct berth_location *loc,
                            const struct berth_registry_opts *opts)
{
    struct reg_src *s;
    int error;

    *out = NULL;
    if (!(s = calloc(1, sizeof(*s))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    s->base.ops = &reg_src_ops;
    s->base.loc = *loc;
    snprintf(s->base.registry, sizeof(s->base.registry), "%s", loc->ref.registry);
    snprintf(s->base.repo, sizeof(s->base.repo), "%s", loc->ref.repository);
    if ((error = berth_registry_new(&s->reg, loc->ref.registry, opts)) < 0) {
        free(s);
        return error;
    }
    *out = &s->base;
    return 0;
}

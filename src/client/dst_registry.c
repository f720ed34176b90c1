/*
 * A registry repository as a copy destination, over the registry client
 * (registry.h): HEAD before every blob, cross-repository mounts within the
 * registry, chunked uploads from the source's fd, and manifests PUT
 * verbatim with their media type — by tag for the top image (each tag), by
 * digest for children and untagged images. Nothing to commit: every PUT is
 * final when it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/image_int.h"
#include "core/error.h"

struct reg_dst {
    struct berth_image_dst base;
    struct berth_registry *reg;
};

static int rdst_has_blob(struct berth_image_dst *b, const struct berth_digest *dg, uint64_t size)
{
    struct reg_dst *d = (struct reg_dst *)b;
    uint64_t have = 0;
    int r;

    if ((r = berth_registry_blob_exists(d->reg, b->repo, dg, &have)) <= 0)
        return r;
    return have == size || size == 0;
}

static int rdst_mount_blob(struct berth_image_dst *b, const char *from_repo,
                           const struct berth_digest *dg)
{
    struct reg_dst *d = (struct reg_dst *)b;

    return berth_registry_blob_mount(d->reg, b->repo, from_repo, dg);
}

static int rdst_put_blob(struct berth_image_dst *b, const struct berth_digest *dg, int fd,
                         uint64_t size, berth_progress_fn progress, void *ctx)
{
    struct reg_dst *d = (struct reg_dst *)b;

    return berth_registry_blob_put(d->reg, b->repo, dg, fd, size, progress, ctx);
}

static int rdst_put_manifest(struct berth_image_dst *b, const uint8_t *data, size_t len,
                             const char *mt, const struct berth_digest *dg, const char *tag,
                             int top)
{
    struct reg_dst *d = (struct reg_dst *)b;
    struct berth_digest got;
    int error;

    (void)top;
    if ((error = berth_registry_manifest_put(d->reg, b->repo, tag ? tag : dg->str, mt, data, len,
                                             &got)) < 0)
        return error;
    if (got.algo != BERTH_DIGEST_NONE && !berth_digest_equal(&got, dg))
        return berth_error_set(BERTH_EMISMATCH, "registry stored manifest %s as %s", dg->str,
                               got.str);
    return 0;
}

static int rdst_commit(struct berth_image_dst *b)
{
    (void)b;
    return 0;
}

static void rdst_free(struct berth_image_dst *b)
{
    struct reg_dst *d = (struct reg_dst *)b;

    berth_registry_free(d->reg);
    free(d);
}

static const struct berth_image_dst_ops reg_dst_ops = {
    0, rdst_has_blob, rdst_mount_blob, rdst_put_blob, rdst_put_manifest, rdst_commit, rdst_free,
};

int berth_dst_registry_open(struct berth_image_dst **out, const struct berth_location *loc,
                            const struct berth_registry_opts *opts)
{
    struct reg_dst *d;
    int error;

    *out = NULL;
    if (!(d = calloc(1, sizeof(*d))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    d->base.ops = &reg_dst_ops;
    d->base.loc = *loc;
    snprintf(d->base.registry, sizeof(d->base.registry), "%s", loc->ref.registry);
    snprintf(d->base.repo, sizeof(d->base.repo), "%s", loc->ref.repository);
    snprintf(d->base.tag, sizeof(d->base.tag), "%s", loc->ref.tag);
    if ((error = berth_registry_new(&d->reg, loc->ref.registry, opts)) < 0) {
        free(d);
        return error;
    }
    *out = &d->base;
    return 0;
}

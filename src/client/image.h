/*
 * Images as the client moves them: a source yields manifests and blobs by
 * digest, a destination takes them. Every transfer — push (OCI layout, OCI
 * archive or docker-archive → registry), pull (registry → those), cp
 * (registry → registry), tag (within a registry) — is one copy engine
 * walking the manifest (index → children → config + layers) and moving only
 * what the destination lacks: HEAD first, cross-repository mount when source
 * and destination are the same registry, bytes otherwise (the founding
 * note's "only layers the registry lacks are uploaded"). Manifest bytes are
 * copied verbatim so digests never change.
 */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/digest.h"
#include "../core/reference.h"
#include "registry.h"

/* ---- endpoints ---- */

enum berth_loc_kind {
    BERTH_LOC_REGISTRY,       /* [docker://]REF */
    BERTH_LOC_OCI_LAYOUT,     /* oci:DIR[:TAG] */
    BERTH_LOC_OCI_ARCHIVE,    /* oci-archive:FILE[:TAG] */
    BERTH_LOC_DOCKER_ARCHIVE, /* docker-archive:FILE[:REF] (docker save / docker load format) */
};

struct berth_location {
    enum berth_loc_kind kind;
    struct berth_ref ref; /* registry kind */
    char path[4096];      /* file/dir kinds */
    char tag[256];        /* file/dir kinds: the tag/name inside ("" = the only/first image) */
};

/* Parse "oci:DIR[:TAG]", "oci-archive:FILE[:TAG]", "docker-archive:FILE[:REF]",
 * "docker://REF" or a bare REF (a registry reference). BERTH_EINVALID with a
 * message otherwise. */
int berth_location_parse(struct berth_location *out, const char *s);
/* Added: like berth_location_parse, but a registry reference without tag or
 * digest keeps an empty tag (commands where that means "every tag" or "the
 * source's tag"). */
int berth_location_parse_notag(struct berth_location *out, const char *s);
/* Added: a bare filesystem path, optionally "PATH:TAG": a directory holding
 * oci-layout is an OCI layout; a tar holding manifest.json a docker-archive;
 * a tar holding oci-layout an oci-archive. BERTH_ENOTFOUND when the path does
 * not exist, BERTH_EINVALID when it is none of those. */
int berth_location_detect(struct berth_location *out, const char *path);
/* Added: "os/arch[/variant]" of this machine ("linux/amd64"). Static string. */
const char *berth_image_host_platform(void);

struct berth_image_src;
struct berth_image_dst;

int berth_image_src_open(struct berth_image_src **out, const struct berth_location *loc,
                         const struct berth_registry_opts *opts);
void berth_image_src_free(struct berth_image_src *src);
/* Added: point the source at another image: a tag (layout ref.name, archive
 * RepoTag, registry tag) or a digest; NULL/"" = the location's own. */
int berth_image_src_select(struct berth_image_src *src, const char *ref);
/* Added: every tag the source holds (registry tags list, layout ref.names,
 * docker-archive RepoTags), for --all-tags. */
int berth_image_src_tags(struct berth_image_src *src, berth_name_fn fn, void *ctx);
int berth_image_dst_open(struct berth_image_dst **out, const struct berth_location *loc,
                         const struct berth_registry_opts *opts);
/* Finish the destination (write index.json / the archive). */
int berth_image_dst_commit(struct berth_image_dst *dst);
void berth_image_dst_free(struct berth_image_dst *dst);

/* ---- the copy engine ---- */

struct berth_copy_opts {
    const char *platform; /* "os/arch[/variant]": copy only that child of an index; NULL: all */
    int parallel;         /* blobs in flight at once; 0 = 4 */
    int quiet;            /* no progress output */
    int json;             /* progress and result as JSON lines on stdout */
    /* Tags to give the copied image at the destination (registry, or the
     * tag inside a layout/archive); NULL/0 = the destination location's own. */
    const char *const *tags;
    size_t ntags;
};

struct berth_copy_result {
    struct berth_digest digest; /* of the top manifest copied */
    uint64_t bytes_moved;       /* blob bytes actually transferred */
    unsigned blobs_moved, blobs_mounted, blobs_skipped; /* skipped: already there */
};

/* Copy the image named by the source location to the destination. Progress
 * goes to stderr (a bar per layer and a total on a terminal, plain lines
 * otherwise) unless quiet. */
int berth_image_copy(struct berth_copy_result *out, struct berth_image_src *src,
                     struct berth_image_dst *dst, const struct berth_copy_opts *opts);

#endif

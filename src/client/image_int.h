/*
 * Inside the copy engine: the source and destination vtables every image
 * endpoint implements (registry, OCI layout, OCI archive, docker-archive),
 * and the helpers the adapters share (temp files and directories). A source
 * yields manifests as exact bytes and blobs as readable, verified fds; a
 * destination takes blobs from an fd and manifests as bytes. Not installed:
 * only src/client/ includes this header.
 */
#ifndef BERTH_IMAGE_INT_H
#define BERTH_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "client/image.h"

struct berth_image_src_ops {
    /* The manifest named by `ref` (a tag or "sha256:..."); NULL: the image
     * the source is pointed at (berth_image_src_select, else the location's
     * own). out->media_type may be "" when the source cannot tell; out->digest
     * is always set and verified. */
    int (*get_manifest)(struct berth_image_src *s, const char *ref, struct berth_blob_buf *out);
    /* A readable fd holding the verified blob (read with pread from 0) and
     * its size; the caller closes it. progress may be NULL. */
    int (*open_blob)(struct berth_image_src *s, const struct berth_digest *d, int64_t size,
                     int *fd, uint64_t *size_out, berth_progress_fn progress, void *ctx);
    /* Every tag the source holds (for --all-tags). */
    int (*tags)(struct berth_image_src *s, berth_name_fn fn, void *ctx);
    void (*free)(struct berth_image_src *s);
};

struct berth_image_src {
    const struct berth_image_src_ops *ops;
    struct berth_location loc;
    char registry[256]; /* registry name for cross-repository mounts; "" for files */
    char repo[256];     /* repository path inside that registry */
    char sel[256];      /* the selected image: tag or digest; "" = the only one */
};

struct berth_image_dst_ops {
    int single_platform; /* cannot hold an index (docker-archive) */
    /* 1 present, 0 absent, negative error. */
    int (*has_blob)(struct berth_image_dst *d, const struct berth_digest *dg, uint64_t size);
    /* 1 mounted from from_repo, 0 not; NULL when the destination cannot mount. */
    int (*mount_blob)(struct berth_image_dst *d, const char *from_repo,
                      const struct berth_digest *dg);
    /* Store `size` bytes read from fd (pread from 0) as blob dg. Thread-safe. */
    int (*put_blob)(struct berth_image_dst *d, const struct berth_digest *dg, int fd,
                    uint64_t size, berth_progress_fn progress, void *ctx);
    /* Store a manifest verbatim. `top`: the image the copy was asked for
     * (tagged with `tag`, or untagged when tag is NULL); children have top 0.
     * Called children before parents, one thread only. */
    int (*put_manifest)(struct berth_image_dst *d, const uint8_t *data, size_t len,
                        const char *media_type, const struct berth_digest *dg, const char *tag,
                        int top);
    int (*commit)(struct berth_image_dst *d);
    void (*free)(struct berth_image_dst *d);
};

struct berth_image_dst {
    const struct berth_image_dst_ops *ops;
    struct berth_location loc;
    char registry[256]; /* "" for files */
    char repo[256];
    char tag[256]; /* the destination's own tag ("" = none) */
};

/* Adapters (src_registry.c, dst_registry.c, layout.c, archive.c). */
int berth_src_registry_open(struct berth_image_src **out, const struct berth_location *loc,
                            const struct berth_registry_opts *opts);
int berth_dst_registry_open(struct berth_image_dst **out, const struct berth_location *loc,
                            const struct berth_registry_opts *opts);
int berth_layout_src_open(struct berth_image_src **out, const struct berth_location *loc);
int berth_layout_dst_open(struct berth_image_dst **out, const struct berth_location *loc);
int berth_oci_archive_src_open(struct berth_image_src **out, const struct berth_location *loc);
int berth_oci_archive_dst_open(struct berth_image_dst **out, const struct berth_location *loc);
int berth_docker_archive_src_open(struct berth_image_src **out,
                                  const struct berth_location *loc);
int berth_docker_archive_dst_open(struct berth_image_dst **out,
                                  const struct berth_location *loc);

/* Layout helpers shared by the archive adapters: a layout source over an
 * existing directory, and a layout destination writing into `dir`. */
int berth_layout_src_open_dir(struct berth_image_src **out, const char *dir, const char *tag,
                              int remove_on_free);
int berth_layout_dst_open_dir(struct berth_image_dst **out, const char *dir, const char *tag,
                              int remove_on_free);
/* Write index.json (and oci-layout) of a layout destination now. */
int berth_layout_dst_flush(struct berth_image_dst *d);

/* Look inside a tar (any compression): does it hold manifest.json (docker
 * save) and/or oci-layout at its top? */
int berth_archive_peek(const char *path, int *has_manifest_json, int *has_oci_layout);

/* An anonymous read/write temp file in $TMPDIR (O_TMPFILE, else mkstemp +
 * unlink). */
int berth_tmpfile(int *fd);
/* A fresh private directory in $TMPDIR; out gets its path. */
int berth_tmpdir(char *out, size_t size);
/* mkdir -p (mode 0755). */
int berth_mkdir_p(const char *dir);
/* Remove a directory tree (temp dirs only). */
void berth_rmtree(const char *dir);
/* Copy all of fd (pread from 0) into a new file at path: temp + fsync + rename. */
int berth_copy_fd_to_path(const char *path, int fd, uint64_t size);

#endif

/*
 * Manifest media types and validation (OCI image-spec manifest.md,
 * image-index.md; Docker image manifest v2 schema 2 and manifest list).
 * berth_manifest_parse() is the only place that reads a pushed manifest: it
 * checks JSON, schemaVersion, mediaType against the request Content-Type and
 * each descriptor, and extracts what the store needs (blob references, index
 * children, subject, artifactType). The bytes themselves are kept verbatim by
 * the caller: the digest is always of what was pushed.
 */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"

#define BERTH_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BERTH_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BERTH_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BERTH_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define BERTH_MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define BERTH_MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define BERTH_MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"

#define BERTH_MANIFEST_MAX_DEFAULT (4u * 1024 * 1024)

enum berth_manifest_kind {
    BERTH_MK_UNKNOWN = 0,
    BERTH_MK_OCI_MANIFEST,
    BERTH_MK_OCI_INDEX,
    BERTH_MK_DOCKER_MANIFEST,
    BERTH_MK_DOCKER_LIST,
    BERTH_MK_DOCKER_SCHEMA1 /* recognised only to refuse it */
};

/* Kind of a media type string (parameters after ';' and surrounding spaces
 * ignored, case-insensitive). BERTH_MK_UNKNOWN for anything else. */
enum berth_manifest_kind berth_manifest_kind_of(const char *media_type, size_t len);
/* 1 for an index kind (OCI index, Docker list). */
int berth_manifest_kind_is_index(enum berth_manifest_kind k);

struct berth_descriptor {
    char *media_type;     /* owned */
    struct berth_digest digest;
    int64_t size;
    char *artifact_type;  /* owned, NULL when absent */
    char *annotations;    /* owned: the "annotations" object serialized compactly, NULL when absent */
    int has_urls;         /* "urls" present and non-empty */
};

struct berth_manifest {
    enum berth_manifest_kind kind;
    char *media_type;       /* owned: effective media type (body's, else Content-Type's) */
    char *artifact_type;    /* owned: artifactType, else (image manifests) config.mediaType; NULL for none */
    char *annotations;      /* owned: top-level annotations serialized compactly, or NULL */
    int has_config;
    struct berth_descriptor config;
    struct berth_descriptor *layers;    /* image manifests: layers */
    size_t nlayers;
    struct berth_descriptor *manifests; /* indexes: children */
    size_t nmanifests;
    int has_subject;
    struct berth_descriptor subject;
};

/* Validate and parse a manifest body. `content_type` is the request's
 * Content-Type (may be NULL or empty). Rules:
 *  - body must be a JSON object, nesting at most 64 deep;
 *  - schemaVersion must be 2; schema1 (by Content-Type or body) →
 *    BERTH_EUNSUPPORTED with BERTH_OCI_MANIFEST_INVALID and a message saying
 *    schema1 is unsupported;
 *  - when both the body's mediaType and Content-Type are known kinds they
 *    must agree; the effective type is the body's, else the Content-Type's,
 *    else inferred (config → OCI manifest, manifests → OCI index);
 *  - Docker kinds require mediaType in the body;
 *  - image manifests need a valid config descriptor and a layers array
 *    (may be empty for artifacts); indexes need a manifests array;
 *  - every descriptor needs mediaType (string), digest (valid), size (>= 0
 *    integer).
 * Errors: BERTH_EINVALID with BERTH_OCI_MANIFEST_INVALID (a message naming
 * the field), BERTH_EUNSUPPORTED as above. *out is owned by the caller. */
int berth_manifest_parse(struct berth_manifest **out, const char *content_type, const uint8_t *body,
                         size_t len);
void berth_manifest_free(struct berth_manifest *m);

/* 1 when a layer may be absent from the registry: a non-distributable
 * ("foreign") media type (contains ".nondistributable." or is a Docker
 * "foreign.diff") or a descriptor with urls. */
int berth_descriptor_is_foreign(const struct berth_descriptor *d);

#endif

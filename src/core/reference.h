/*
 * Image references, the four parts of the founding note: registry domain,
 * account + repository (the repository path), tag — plus an optional digest.
 * Grammar and normalization follow Docker's (distribution/reference,
 * "normalize.go"): `image-gallery` → `docker.io/library/image-gallery:latest`,
 * `127.0.0.1:5000/gallery/ui:v1`, `name@sha256:...`, `name:tag@sha256:...`.
 * The first path component is a registry when it contains '.' or ':' or is
 * `localhost`; otherwise the registry is docker.io. Pure logic.
 */
#ifndef BERTH_REFERENCE_H
#define BERTH_REFERENCE_H

#include <stddef.h>

#include "digest.h"

#define BERTH_DEFAULT_REGISTRY "docker.io"
#define BERTH_DEFAULT_TAG "latest"

struct berth_ref {
    char registry[256];   /* "docker.io", "127.0.0.1:5000", "localhost", "[::1]:5000" */
    char repository[256]; /* "library/image-gallery", "gallery/ui" (checked by berth_name_check) */
    char tag[129];        /* "" when the reference had only a digest */
    int has_digest;
    struct berth_digest digest;
};

/* Parse and normalize. Without tag and digest the tag is "latest".
 * BERTH_EINVALID with a message naming the wrong part ("invalid reference
 * 'X': repository name must be lowercase", "...: invalid tag '...'",
 * "...: invalid digest ...", "...: invalid registry '...'"). */
int berth_ref_parse(struct berth_ref *out, const char *s);

/* Like berth_ref_parse, but leaves tag empty when none was given (for
 * commands where a missing tag means "all tags" or "keep the source's"). */
int berth_ref_parse_notag(struct berth_ref *out, const char *s);

/* "registry/repository[:tag][@digest]" in full normalized form into buf.
 * Returns the length that would have been written (snprintf rule). */
size_t berth_ref_format(char *buf, size_t size, const struct berth_ref *r);
/* The shortest form Docker would print: docker.io/library/ dropped. */
size_t berth_ref_format_short(char *buf, size_t size, const struct berth_ref *r);

/* The reference part for /v2/<name>/manifests/<reference>: the digest when
 * there is one, else the tag. Borrowed pointer into r. */
const char *berth_ref_manifest_ref(const struct berth_ref *r);

/* Host to talk to for a registry name: docker.io → registry-1.docker.io,
 * anything else unchanged. Borrowed / static string. */
const char *berth_ref_api_host(const char *registry);

/* 1 when the registry is local (localhost, 127.0.0.0/8, ::1, with any port):
 * plain HTTP is allowed there without an insecure setting, as Docker does. */
int berth_registry_is_local(const char *registry);

#endif

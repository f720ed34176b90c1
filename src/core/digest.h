/*
 * Content digests (OCI image-spec "Digests"): parsing and validation of
 * "algorithm:encoded" strings, and streaming hashing (core/sha2.c).
 * Supported algorithms: sha256 (64 lowercase hex) and sha512 (128).
 * Pure logic: no files, no sockets (berth_digest_fd only reads an fd).
 */
#ifndef BERTH_DIGEST_H
#define BERTH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

enum berth_digest_algo { BERTH_DIGEST_NONE = 0, BERTH_SHA256 = 1, BERTH_SHA512 = 2 };

#define BERTH_DIGEST_STR_MAX (7 + 128 + 1) /* "sha512:" + 128 hex + NUL */

struct berth_digest {
    enum berth_digest_algo algo;
    uint8_t len;                     /* raw length in bytes: 32 or 64 */
    uint8_t raw[64];
    char str[BERTH_DIGEST_STR_MAX];  /* canonical "sha256:<hex>" */
};

/* Parse `s` (not necessarily NUL-terminated, `len` bytes).
 * BERTH_EINVALID when it does not match the spec grammar
 *   digest ::= algorithm ":" encoded, algorithm [a-z0-9]+([+._-][a-z0-9]+)*,
 *   encoded [a-zA-Z0-9=_-]+
 * or when a known algorithm has a wrong-length / non-lowercase-hex encoding;
 * BERTH_EUNSUPPORTED for a well-formed digest of an unknown algorithm.
 * The error carries BERTH_OCI_DIGEST_INVALID. */
int berth_digest_parse(struct berth_digest *out, const char *s, size_t len);

/* Hex part of d->str (after the colon). */
const char *berth_digest_hex(const struct berth_digest *d);
/* "sha256" / "sha512" */
const char *berth_digest_algo_name(enum berth_digest_algo a);
int berth_digest_equal(const struct berth_digest *a, const struct berth_digest *b);

/* One-shot digest of a buffer. */
int berth_digest_buf(struct berth_digest *out, enum berth_digest_algo algo, const uint8_t *buf,
                     size_t len);
/* Digest of everything readable from fd starting at offset 0 (pread). */
int berth_digest_fd(struct berth_digest *out, enum berth_digest_algo algo, int fd);

/* Streaming hasher. _init allocates the hash state (_dispose frees it; ctx is
 * non-NULL exactly while initialised); _final may be called once. _copy
 * allocates a new state. Not thread-safe per object. */
struct berth_hasher {
    enum berth_digest_algo algo;
    void *ctx; /* the SHA-2 state, owned */
};
int berth_hasher_init(struct berth_hasher *h, enum berth_digest_algo algo);
int berth_hasher_update(struct berth_hasher *h, const void *buf, size_t len);
int berth_hasher_final(struct berth_hasher *h, struct berth_digest *out);
/* Copy state (for a digest of a prefix while continuing). */
int berth_hasher_copy(struct berth_hasher *dst, const struct berth_hasher *src);
void berth_hasher_dispose(struct berth_hasher *h);

#endif

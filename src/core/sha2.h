/*
 * SHA-256 and SHA-512 (FIPS 180-4), berth's own: streaming contexts that are
 * plain structs (no allocation) and one-shot helpers. SHA-256 uses the x86
 * SHA extensions when the CPU has them (chosen once at run time by cpuid),
 * portable C otherwise; SHA-512 is portable C (on x86-64 compiled a second
 * time for CPUs with BMI2). Pure computation: no errors, no I/O. Contexts are
 * not shared between threads; the functions are thread-safe on distinct
 * contexts.
 */
#ifndef BERTH_SHA2_H
#define BERTH_SHA2_H

#include <stddef.h>
#include <stdint.h>

#define BERTH_SHA256_LEN 32
#define BERTH_SHA512_LEN 64

struct berth_sha256 {
    uint32_t h[8];
    uint64_t bytes;  /* message length so far */
    uint8_t buf[64]; /* a partial block */
    size_t n;        /* bytes in buf, < 64 */
};

struct berth_sha512 {
    uint64_t h[8];
    uint64_t bytes; /* message length so far (2^64 bytes is far beyond any blob) */
    uint8_t buf[128];
    size_t n; /* bytes in buf, < 128 */
};

/* init, then update any number of times (len 0 and buf NULL are fine), then
 * final once: it writes the digest and wipes the context (init again to reuse).
 * A context may be copied with memcpy/assignment to hash a prefix and go on. */
void berth_sha256_init(struct berth_sha256 *c);
void berth_sha256_update(struct berth_sha256 *c, const void *buf, size_t len);
void berth_sha256_final(struct berth_sha256 *c, uint8_t out[BERTH_SHA256_LEN]);
void berth_sha256(uint8_t out[BERTH_SHA256_LEN], const void *buf, size_t len);

void berth_sha512_init(struct berth_sha512 *c);
void berth_sha512_update(struct berth_sha512 *c, const void *buf, size_t len);
void berth_sha512_final(struct berth_sha512 *c, uint8_t out[BERTH_SHA512_LEN]);
void berth_sha512(uint8_t out[BERTH_SHA512_LEN], const void *buf, size_t len);

/* Name of the SHA-256 block function in use: "sha-ni" or "portable". */
const char *berth_sha256_impl(void);

/* Test-only: nonzero forces the plain portable C paths of SHA-256 and SHA-512
 * (no SHA-NI, no BMI2: what other CPUs run), for differential tests and
 * benchmarks of every path; 0 restores the cpuid choice. Process-wide;
 * contexts in flight stay correct (all paths share the state layout). */
void berth_sha2_force_portable(int on);

#endif

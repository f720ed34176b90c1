/*
 * JSON Web Tokens as Docker's token authentication uses them: compact JWS
 * (RFC 7515) signed with ES256 or RS256 (RFC 7518 section 3.3/3.4), the
 * registered claims of RFC 7519 and Docker's `access` claim. Verification
 * keys come from a key set: our own signing key, the certificates of a
 * `rootcertbundle` (by libtrust key id, or as trust roots for an `x5c`
 * chain) and JWKS files. `alg: none` and every other algorithm are refused.
 */
#ifndef BERTH_JWT_H
#define BERTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "core/base64.h" /* berth_b64url_*: JWS segments */
#include "policy.h"

#define BERTH_JWT_MAX (16 * 1024)  /* bytes in a compact token */
#define BERTH_JWT_MAX_ACCESS 64    /* entries in the access claim */
#define BERTH_JWT_SKEW 60          /* seconds of clock skew allowed on exp/nbf/iat */

enum berth_jwt_alg { BERTH_JWT_ES256 = 1, BERTH_JWT_RS256 = 2 };

/* A signing key: an EC P-256 (ES256) or RSA >= 2048 bits (RS256) private key. */
struct berth_jwt_key;

/* Wrap an OpenSSL key (void * to keep <openssl/evp.h> out of this header: an
 * EVP_PKEY *). Takes its own reference. BERTH_EUNSUPPORTED for other keys. */
int berth_jwt_key_new(struct berth_jwt_key **out, void *evp_pkey);
/* Read a PEM private key from `path`. With `generate` set and no file at
 * `path`, create an EC P-256 key there first (mode 0600, O_EXCL). */
int berth_jwt_key_load(struct berth_jwt_key **out, const char *path, int generate);
void berth_jwt_key_free(struct berth_jwt_key *k);
/* The key id put in our tokens' `kid`: libtrust's fingerprint of the public
 * key (SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in
 * twelve ':'-separated groups of four), which distribution matches against
 * its rootcertbundle. Borrowed, lives as long as the key. */
const char *berth_jwt_key_kid(const struct berth_jwt_key *k);
enum berth_jwt_alg berth_jwt_key_alg(const struct berth_jwt_key *k);

/* Verification keys. Built once at startup, then read-only (thread-safe). */
struct berth_jwt_keyset;

int berth_jwt_keyset_new(struct berth_jwt_keyset **out);
void berth_jwt_keyset_free(struct berth_jwt_keyset *ks);
/* Trust the public half of `k` under its kid. */
int berth_jwt_keyset_add_key(struct berth_jwt_keyset *ks, const struct berth_jwt_key *k);
/* A PEM bundle: each certificate becomes a trust root for `x5c` chains and
 * its public key is trusted under its libtrust kid. BERTH_EINVALID when the
 * file holds no certificate. */
int berth_jwt_keyset_load_certs(struct berth_jwt_keyset *ks, const char *path);
/* A JWK Set ({"keys":[...]}, RFC 7517): EC P-256 and RSA keys, trusted under
 * their "kid" (libtrust kid when absent). Keys of other types are skipped.
 * BERTH_EINVALID when malformed or when no key is usable. */
int berth_jwt_keyset_load_jwks(struct berth_jwt_keyset *ks, const uint8_t *json, size_t len);
int berth_jwt_keyset_load_jwks_file(struct berth_jwt_keyset *ks, const char *path);

struct berth_jwt_claims {
    char *iss, *sub, *aud, *jti; /* owned; NULL when absent (aud: the matching entry) */
    char *bind;                  /* berth's "bnd" claim (refresh tokens), or NULL */
    int64_t exp, nbf, iat;       /* seconds since the epoch; 0 when absent */
    struct berth_scope *access;  /* owned array; unknown actions dropped */
    size_t naccess;
};

void berth_jwt_claims_dispose(struct berth_jwt_claims *c);

/* Sign the claims: header {"alg","typ","kid"}, `typ` e.g. "JWT". *out is a
 * new NUL-terminated string. Thread-safe. */
int berth_jwt_sign(char **out, const struct berth_jwt_key *k, const char *typ,
                   const struct berth_jwt_claims *c);

struct berth_jwt_verify_opts {
    const char *issuer;   /* required `iss` */
    const char *audience; /* required member of `aud` */
    const char *typ;      /* required header `typ`, or NULL for any (or none) */
    int64_t now;          /* seconds since the epoch; 0 means time(NULL) */
};

/* Verify a compact token of `len` bytes: structure, algorithm, the signing
 * key (x5c chain to a trusted root, else kid in the key set), signature,
 * then iss, aud, exp and nbf (BERTH_JWT_SKEW seconds of slack); exp is
 * required. Fills *out (dispose it) only on success. BERTH_EINVALID for a
 * malformed token, BERTH_EDENIED for one that fails a check; the message says
 * which check and never quotes the token. Thread-safe. */
int berth_jwt_verify(struct berth_jwt_claims *out, const struct berth_jwt_keyset *ks,
                     const char *token, size_t len, const struct berth_jwt_verify_opts *o);

#endif

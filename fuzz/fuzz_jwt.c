/*
 * libFuzzer target for berth_jwt_verify (every Bearer token a client sends
 * goes through it) and the base64url codec. Invariants: verification of
 * arbitrary input never succeeds (the key set holds a key generated here,
 * whose private half the fuzzer never sees), failures leave the claims
 * empty, and base64url decode/encode round-trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/error.h"
#include "server/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct berth_jwt_keyset *keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_jwt_verify_opts o = { "berth", "registry", NULL, 1700000000 };
    struct berth_jwt_claims c;
    uint8_t *dec;
    size_t declen;
    char *enc;
    int rc;

    if (!keys) {
        EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        struct berth_jwt_key *k;
        if (!pkey || berth_jwt_key_new(&k, pkey) < 0 || berth_jwt_keyset_new(&keys) < 0 ||
            berth_jwt_keyset_add_key(keys, k) < 0)
            abort();
        berth_jwt_key_free(k);
        EVP_PKEY_free(pkey);
    }
    rc = berth_jwt_verify(&c, keys, (const char *)data, size, &o);
    if (rc == 0)
        abort(); /* a forgery */
    if (c.sub || c.access || !berth_error_msg()[0])
        abort();

    if (berth_b64url_decode(&dec, &declen, (const char *)data, size) == 0) {
        if (berth_b64url_encode(&enc, dec, declen) < 0)
            abort();
        if (strlen(enc) != size || memcmp(enc, data, size) != 0)
            abort();
        free(enc);
        free(dec);
    }
    /* the JWKS parser sees the same bytes */
    berth_jwt_keyset_load_jwks(keys, data, size);
    return 0;
}

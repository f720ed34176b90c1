/*
 * libFuzzer target for berth_base64_decode (HTTP Basic credentials: network
 * input). Invariants: whatever is accepted is the canonical encoding of what
 * came out (OpenSSL's EVP_EncodeBlock of the output gives back the input, so
 * no two inputs decode alike); whatever is refused leaves *out_len 0 and is
 * not the canonical encoding of anything; a buffer one byte short is
 * BERTH_ETOOBIG. The same bytes through berth_b64url_decode (JWT
 * segments): whatever it accepts re-encodes (berth_b64url_encode) to the
 * input. Aborts on a violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/base64.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = BERTH_BASE64_DECODED_MAX(size), n = 1, n2;
    uint8_t *out, *enc, *ref;
    int rc;

    if (size > 65536)
        return 0;
    out = malloc(cap + 1);
    enc = malloc(size / 3 * 4 + 8);
    ref = malloc(cap + 3);
    if (!out || !enc || !ref)
        abort();
    rc = berth_base64_decode(out, &n, cap, (const char *)data, size);
    if (rc == 0) {
        if (n > cap || (size_t)EVP_EncodeBlock(enc, out, (int)n) != size ||
            memcmp(enc, data, size) != 0)
            abort();
        if (n > 0 && (berth_base64_decode(out, &n2, n - 1, (const char *)data, size) !=
                          BERTH_ETOOBIG ||
                      n2 != 0))
            abort();
    } else {
        int r;

        if (rc != BERTH_EINVALID || n != 0)
            abort();
        /* refused: then it is not what an encoder would have produced */
        r = size % 4 == 0 && size > 0 && !memchr(data, '\0', size)
                ? EVP_DecodeBlock(ref, data, (int)size)
                : -1;
        if (r >= 0) {
            size_t pad = (data[size - 1] == '=') + (data[size - 2] == '=');

            if ((size_t)r >= pad && (size_t)EVP_EncodeBlock(enc, ref, r - (int)pad) == size &&
                memcmp(enc, data, size) == 0)
                abort();
        }
    }
    {
        uint8_t *u = NULL;
        char *back = NULL;
        size_t un = 0;

        if (berth_b64url_decode(&u, &un, (const char *)data, size) == 0) {
            if (berth_b64url_encode(&back, u, un) < 0 || strlen(back) != size ||
                memcmp(back, data, size) != 0)
                abort();
        } else if (u) {
            abort();
        }
        free(u);
        free(back);
    }
    free(out);
    free(enc);
    free(ref);
    return 0;
}

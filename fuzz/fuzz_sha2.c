/*
 * libFuzzer target for src/core/sha2.c, differential against OpenSSL's EVP:
 * SHA-256 on both paths (SHA-NI when the CPU has it, and forced portable) and
 * SHA-512, each fed in pieces whose sizes come from the input, must equal
 * EVP's digest of the whole message, and so must the one-shot helpers.
 * Input: byte 0 = number of pieces - 1 (mod 8), then two bytes per piece
 * (little-endian, taken modulo what is left), the rest is the message.
 * Aborts on any mismatch.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/sha2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int sha512, const uint8_t *pieces, size_t npieces, const uint8_t *msg,
                  size_t len, const uint8_t *ref)
{
    struct berth_sha256 c256, copy256;
    struct berth_sha512 c512, copy512;
    size_t dlen = sha512 ? BERTH_SHA512_LEN : BERTH_SHA256_LEN, done = 0;
    uint8_t out[64];

    berth_sha256_init(&c256);
    berth_sha512_init(&c512);
    for (size_t i = 0; i < npieces; i++) {
        size_t left = len - done;
        size_t n = i == npieces - 1 ? left : (size_t)(pieces[2 * i] | pieces[2 * i + 1] << 8) %
                                                  (left + 1);

        if (sha512)
            berth_sha512_update(&c512, msg + done, n);
        else
            berth_sha256_update(&c256, msg + done, n);
        done += n;
    }
    /* a copy of a finished stream gives the same digest */
    copy256 = c256;
    copy512 = c512;
    if (sha512)
        berth_sha512_final(&c512, out);
    else
        berth_sha256_final(&c256, out);
    if (memcmp(out, ref, dlen) != 0)
        abort();
    if (sha512)
        berth_sha512_final(&copy512, out);
    else
        berth_sha256_final(&copy256, out);
    if (memcmp(out, ref, dlen) != 0)
        abort();
    if (sha512)
        berth_sha512(out, msg, len);
    else
        berth_sha256(out, msg, len);
    if (memcmp(out, ref, dlen) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t ref256[32], ref512[64];
    const uint8_t *pieces, *msg;
    size_t npieces, len;
    unsigned n;

    if (size < 1)
        return 0;
    npieces = (size_t)(data[0] % 8) + 1;
    if (size < 1 + 2 * npieces)
        return 0;
    pieces = data + 1;
    msg = data + 1 + 2 * npieces;
    len = size - 1 - 2 * npieces;
    if (EVP_Digest(msg, len, ref256, &n, EVP_sha256(), NULL) != 1 ||
        EVP_Digest(msg, len, ref512, &n, EVP_sha512(), NULL) != 1)
        abort();
    for (int portable = 0; portable <= 1; portable++) {
        berth_sha2_force_portable(portable);
        check(0, pieces, npieces, msg, len, ref256);
    }
    berth_sha2_force_portable(0);
    check(1, pieces, npieces, msg, len, ref512);
    return 0;
}

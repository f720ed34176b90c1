/*
 * Throughput of berth's SHA-256 (SHA-NI and portable paths) and SHA-512
 * (portable C compiled for BMI2, and plain) against OpenSSL's EVP on the same buffers: MB/s (10^6 bytes) hashing
 * 256 MiB per measurement as updates of 1 MiB, 256 KiB, 64 KiB and 16 KiB
 * into one context, best of 5 (the machine is shared and noisy).
 * Build and run from the repository root:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -o /tmp/bench-sha bench/sha.c src/core/sha2.c -lcrypto
 *   /tmp/bench-sha [MiB per run]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/sha2.h"

enum impl { B256, B256_PORTABLE, B512, B512_PORTABLE, O256, O512 };

static const char *names[] = { "berth sha256 (sha-ni)", "berth sha256 (portable)",
                               "berth sha512 (bmi2)",   "berth sha512 (portable)",
                               "openssl sha256",        "openssl sha512" };

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(enum impl impl, const uint8_t *buf, size_t upd, size_t total, uint8_t *out)
{
    struct berth_sha256 c256;
    struct berth_sha512 c512;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned n;

    berth_sha2_force_portable(impl == B256_PORTABLE || impl == B512_PORTABLE);
    berth_sha256_init(&c256);
    berth_sha512_init(&c512);
    if (impl == O256 || impl == O512)
        EVP_DigestInit_ex(md, impl == O256 ? EVP_sha256() : EVP_sha512(), NULL);
    for (size_t done = 0; done < total; done += upd) {
        switch (impl) {
        case B256:
        case B256_PORTABLE:
            berth_sha256_update(&c256, buf, upd);
            break;
        case B512:
        case B512_PORTABLE:
            berth_sha512_update(&c512, buf, upd);
            break;
        case O256:
        case O512:
            EVP_DigestUpdate(md, buf, upd);
            break;
        }
    }
    if (impl == B256 || impl == B256_PORTABLE)
        berth_sha256_final(&c256, out);
    else if (impl == B512 || impl == B512_PORTABLE)
        berth_sha512_final(&c512, out);
    else
        EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

int main(int argc, char **argv)
{
    static const size_t updates[] = { 1 << 20, 256 << 10, 64 << 10, 16 << 10 };
    static const enum impl order[] = { O256, B256, B256_PORTABLE, O512, B512, B512_PORTABLE };
    size_t total = (argc > 1 ? (size_t)atol(argv[1]) : 256) << 20;
    uint8_t *buf = malloc(1 << 20), out[64];

    for (size_t i = 0; i < 1 << 20; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    printf("berth sha256 path chosen by cpuid: %s\n", berth_sha256_impl());
    printf("%-26s %10s %10s %10s %10s   (MB/s by update size)\n", "", "1MiB", "256KiB",
           "64KiB", "16KiB");
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
        enum impl impl = order[o];

        printf("%-26s", names[impl]);
        for (size_t u = 0; u < sizeof(updates) / sizeof(updates[0]); u++) {
            double best = 1e9;

            for (int r = 0; r < 5; r++) {
                double t0 = now(), t;

                run(impl, buf, updates[u], total, out);
                if ((t = now() - t0) < best)
                    best = t;
            }
            printf(" %10.0f", total / best / 1e6);
            fflush(stdout);
        }
        printf("\n");
    }
    free(buf);
    return 0;
}

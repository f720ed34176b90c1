/*
 * Unit tests for src/core/sha2.c: the FIPS 180-2/180-4 example vectors
 * (NIST "Examples with Intermediate Values": "", "abc", the 448- and 896-bit
 * messages, a million 'a'), then a differential test against OpenSSL's EVP
 * over every length 0..2048 with random data and random update splits, for
 * the SHA-NI path (when the CPU has it) and the portable path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/sha2.h"

#define MSG448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG896                                                                                     \
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop" \
    "qrsmnopqrstnopqrstu"

struct vector {
    const char *msg; /* NULL: one million 'a' */
    const char *sha256, *sha512;
};

static const struct vector vectors[] = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877e"
      "ec2f63b931bd47417a81a538327af927da3e" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fe"
      "ebbd454d4423643ce80e2a9ac94fa54ca49f" },
    { MSG448, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea5778"
      "9ca031ad85c7a71dd70354ec631238ca3445" },
    { MSG896, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
      "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5"
      "433ac7d329eeb6dd26545e96e55b874be909" },
    { NULL, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577"
      "c31beb009c5c2c49aa2e4eadb217ad8cc09b" },
};

static uint64_t rng = 0x9e3779b97f4a7c15;

static uint32_t rnd(void)
{
    /* xorshift64*: reproducible, good enough to pick data and split points */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dULL) >> 32);
}

static void hex(char *out, const uint8_t *raw, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
}

static void check_vectors(void)
{
    for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        struct berth_sha256 c256;
        struct berth_sha512 c512;
        uint8_t d[64];
        char s[129];

        if (vectors[v].msg) {
            size_t len = strlen(vectors[v].msg);

            berth_sha256(d, vectors[v].msg, len);
            hex(s, d, 32);
            assert_string_equal(s, vectors[v].sha256);
            berth_sha512(d, vectors[v].msg, len);
            hex(s, d, 64);
            assert_string_equal(s, vectors[v].sha512);
            continue;
        }
        /* a million 'a' as 1000 updates of 1000 bytes */
        char a[1000];

        memset(a, 'a', sizeof(a));
        berth_sha256_init(&c256);
        berth_sha512_init(&c512);
        for (int i = 0; i < 1000; i++) {
            berth_sha256_update(&c256, a, sizeof(a));
            berth_sha512_update(&c512, a, sizeof(a));
        }
        berth_sha256_final(&c256, d);
        hex(s, d, 32);
        assert_string_equal(s, vectors[v].sha256);
        berth_sha512_final(&c512, d);
        hex(s, d, 64);
        assert_string_equal(s, vectors[v].sha512);
    }
}

static void test_vectors_native(void **state)
{
    (void)state;
    berth_sha2_force_portable(0);
    print_message("sha256 path: %s\n", berth_sha256_impl());
    check_vectors();
}

static void test_vectors_portable(void **state)
{
    (void)state;
    berth_sha2_force_portable(1);
    assert_string_equal(berth_sha256_impl(), "portable");
    check_vectors();
    berth_sha2_force_portable(0);
}

/* berth's digest of buf[0..len) fed in random pieces (up to 5 updates, some
 * of them empty, an occasional NULL for an empty piece) */
static void split_digest(uint8_t *out, int sha512, const uint8_t *buf, size_t len)
{
    struct berth_sha256 c256;
    struct berth_sha512 c512;
    size_t done = 0;
    int pieces = 1 + (int)(rnd() % 5);

    berth_sha256_init(&c256);
    berth_sha512_init(&c512);
    for (int i = 0; i < pieces; i++) {
        size_t n = i == pieces - 1 ? len - done : rnd() % (len - done + 1);
        const void *p = n == 0 && rnd() % 2 ? NULL : buf + done;

        if (sha512)
            berth_sha512_update(&c512, p, n);
        else
            berth_sha256_update(&c256, p, n);
        done += n;
    }
    if (sha512)
        berth_sha512_final(&c512, out);
    else
        berth_sha256_final(&c256, out);
}

static void differential(int portable)
{
    enum { MAXLEN = 2048 };
    uint8_t *buf = malloc(MAXLEN), mine[64], ref[64];
    unsigned n;

    assert_non_null(buf);
    berth_sha2_force_portable(portable);
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        for (int sha512 = 0; sha512 <= 1; sha512++) {
            size_t dlen = sha512 ? 64 : 32;

            assert_int_equal(EVP_Digest(buf, len, ref, &n, sha512 ? EVP_sha512() : EVP_sha256(),
                                        NULL),
                             1);
            assert_int_equal(n, dlen);
            if (sha512)
                berth_sha512(mine, buf, len);
            else
                berth_sha256(mine, buf, len);
            if (memcmp(mine, ref, dlen) != 0)
                fail_msg("sha%d one-shot differs at length %zu", sha512 ? 512 : 256, len);
            for (int r = 0; r < 3; r++) {
                split_digest(mine, sha512, buf, len);
                if (memcmp(mine, ref, dlen) != 0)
                    fail_msg("sha%d split differs at length %zu", sha512 ? 512 : 256, len);
            }
        }
    }
    berth_sha2_force_portable(0);
    free(buf);
}

static void test_differential_native(void **state)
{
    (void)state;
    differential(0);
}

static void test_differential_portable(void **state)
{
    (void)state;
    differential(1);
}

/* A copied context hashes a prefix while the original goes on; switching
 * paths in the middle of a message changes nothing (shared state layout). */
static void test_copy_and_switch(void **state)
{
    uint8_t buf[1000], a[32], b[32], ref[32];
    struct berth_sha256 c, prefix;
    unsigned n;

    (void)state;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)rnd();
    berth_sha256_init(&c);
    berth_sha256_update(&c, buf, 300);
    prefix = c;
    berth_sha2_force_portable(1);
    berth_sha256_update(&c, buf + 300, 333);
    berth_sha2_force_portable(0);
    berth_sha256_update(&c, buf + 633, sizeof(buf) - 633);
    berth_sha256_final(&c, a);
    EVP_Digest(buf, sizeof(buf), ref, &n, EVP_sha256(), NULL);
    assert_memory_equal(a, ref, 32);
    berth_sha256_final(&prefix, b);
    EVP_Digest(buf, 300, ref, &n, EVP_sha256(), NULL);
    assert_memory_equal(b, ref, 32);
}

/* Large single updates (many blocks per call) on both paths. */
static void test_large(void **state)
{
    size_t len = 3 * 1024 * 1024 + 77;
    uint8_t *buf = malloc(len), mine[64], ref[64];
    unsigned n;

    (void)state;
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 9));
    EVP_Digest(buf, len, ref, &n, EVP_sha256(), NULL);
    for (int portable = 0; portable <= 1; portable++) {
        berth_sha2_force_portable(portable);
        berth_sha256(mine, buf, len);
        assert_memory_equal(mine, ref, 32);
    }
    berth_sha2_force_portable(0);
    EVP_Digest(buf, len, ref, &n, EVP_sha512(), NULL);
    berth_sha512(mine, buf, len);
    assert_memory_equal(mine, ref, 64);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_native),       cmocka_unit_test(test_vectors_portable),
        cmocka_unit_test(test_differential_native),  cmocka_unit_test(test_differential_portable),
        cmocka_unit_test(test_copy_and_switch),      cmocka_unit_test(test_large),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for src/core/digest.c: known vectors first (sha256/sha512 of ""),
 * then the grammar of image-spec descriptor.md "Digests", the hasher and fd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/digest.h"
#include "core/error.h"

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA512_EMPTY                                                                               \
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff83" \
    "18d2877eec2f63b931bd47417a81a538327af927da3e"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static int parse(struct berth_digest *d, const char *s)
{
    return berth_digest_parse(d, s, strlen(s));
}

static void test_empty_vectors(void **state)
{
    struct berth_digest d;

    (void)state;
    assert_int_equal(berth_digest_buf(&d, BERTH_SHA256, NULL, 0), 0);
    assert_string_equal(d.str, SHA256_EMPTY);
    assert_int_equal(d.len, 32);
    assert_int_equal(berth_digest_buf(&d, BERTH_SHA512, (const uint8_t *)"", 0), 0);
    assert_string_equal(d.str, SHA512_EMPTY);
    assert_int_equal(d.len, 64);
    assert_int_equal(berth_digest_buf(&d, BERTH_SHA256, (const uint8_t *)"abc", 3), 0);
    assert_string_equal(d.str, SHA256_ABC);
    assert_string_equal(berth_digest_hex(&d), &SHA256_ABC[7]);
    assert_string_equal(berth_digest_algo_name(BERTH_SHA256), "sha256");
    assert_string_equal(berth_digest_algo_name(BERTH_SHA512), "sha512");
}

static void test_parse_valid(void **state)
{
    struct berth_digest a, b;

    (void)state;
    assert_int_equal(parse(&a, SHA256_EMPTY), 0);
    assert_int_equal(a.algo, BERTH_SHA256);
    assert_string_equal(a.str, SHA256_EMPTY);
    assert_int_equal(a.raw[0], 0xe3);
    assert_int_equal(a.raw[31], 0x55);
    assert_int_equal(berth_digest_buf(&b, BERTH_SHA256, NULL, 0), 0);
    assert_true(berth_digest_equal(&a, &b));
    assert_int_equal(parse(&a, SHA512_EMPTY), 0);
    assert_int_equal(a.algo, BERTH_SHA512);
    assert_string_equal(a.str, SHA512_EMPTY);
    assert_false(berth_digest_equal(&a, &b));
    /* length given explicitly: trailing bytes beyond len are ignored */
    assert_int_equal(berth_digest_parse(&a, SHA256_EMPTY "zzz", strlen(SHA256_EMPTY)), 0);
    assert_string_equal(a.str, SHA256_EMPTY);
}

static void test_parse_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "sha256",
        ":abc",
        "sha256:",
        "sha256:e3b0",
        "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ",
        "sha256::e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:xyz",
        "-sha256:abc",
        "sha+:abc",
        "sha..256:abc",
        "foo:ab/c",
        "foo:ab+c",
    };
    struct berth_digest d;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(&d, bad[i]);

        if (rc != BERTH_EINVALID)
            fail_msg("'%s' gave %d", bad[i], rc);
        assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
        assert_int_equal(d.algo, BERTH_DIGEST_NONE);
    }
    assert_int_equal(parse(&d, "sha256:xyz"), BERTH_EINVALID);
    assert_string_equal(berth_error_msg(), "invalid digest 'sha256:xyz': wrong length");
    assert_int_equal(berth_digest_parse(&d, NULL, 0), BERTH_EINVALID);
    /* an embedded NUL is not an encoded character */
    assert_int_equal(berth_digest_parse(&d, "sha256:a\0b", 10), BERTH_EINVALID);
}

static void test_parse_unsupported(void **state)
{
    struct berth_digest d;

    (void)state;
    assert_int_equal(parse(&d, "md5:d41d8cd98f00b204e9800998ecf8427e"), BERTH_EUNSUPPORTED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
    assert_int_equal(parse(&d, "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
                     BERTH_EUNSUPPORTED);
    assert_int_equal(parse(&d, "sha384:abc"), BERTH_EUNSUPPORTED);
    assert_int_equal(parse(&d, "a.b_c-d:A=_-z"), BERTH_EUNSUPPORTED);
}

static void test_hasher(void **state)
{
    struct berth_hasher h, c;
    struct berth_digest d, prefix, whole;
    int i;

    (void)state;
    assert_int_equal(berth_hasher_init(&h, BERTH_SHA256), 0);
    assert_int_equal(berth_hasher_update(&h, "a", 1), 0);
    assert_int_equal(berth_hasher_copy(&c, &h), 0);
    assert_int_equal(berth_hasher_update(&h, "bc", 2), 0);
    assert_int_equal(berth_hasher_final(&h, &d), 0);
    assert_string_equal(d.str, SHA256_ABC);
    assert_int_equal(berth_hasher_final(&c, &prefix), 0);
    assert_int_equal(berth_digest_buf(&whole, BERTH_SHA256, (const uint8_t *)"a", 1), 0);
    assert_true(berth_digest_equal(&prefix, &whole));
    berth_hasher_dispose(&h);
    berth_hasher_dispose(&c);
    berth_hasher_dispose(&c); /* twice is harmless */

    assert_int_equal(berth_hasher_init(&h, BERTH_SHA512), 0);
    for (i = 0; i < 1000; i++)
        assert_int_equal(berth_hasher_update(&h, "", 0), 0);
    assert_int_equal(berth_hasher_final(&h, &d), 0);
    assert_string_equal(d.str, SHA512_EMPTY);
    berth_hasher_dispose(&h);

    assert_int_equal(berth_hasher_init(&h, BERTH_DIGEST_NONE), BERTH_EUNSUPPORTED);
    berth_hasher_dispose(&h);
    assert_int_equal(berth_digest_buf(&d, BERTH_DIGEST_NONE, NULL, 0), BERTH_EUNSUPPORTED);
}

static void test_fd(void **state)
{
    char path[] = "/tmp/berth-test-digest-XXXXXX";
    struct berth_digest d, want;
    uint8_t *buf;
    size_t n = 3 * 1024 * 1024 + 17, i;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(berth_digest_fd(&d, BERTH_SHA256, fd), 0);
    assert_string_equal(d.str, SHA256_EMPTY);

    buf = malloc(n);
    assert_non_null(buf);
    for (i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 11));
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(berth_digest_buf(&want, BERTH_SHA512, buf, n), 0);
    assert_int_equal(berth_digest_fd(&d, BERTH_SHA512, fd), 0);
    assert_string_equal(d.str, want.str);
    free(buf);
    close(fd);

    assert_int_equal(berth_digest_fd(&d, BERTH_SHA256, -1), BERTH_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_vectors),   cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),   cmocka_unit_test(test_parse_unsupported),
        cmocka_unit_test(test_hasher),          cmocka_unit_test(test_fd),
    };

    return cmocka_run_group_tests_name("digest", tests, NULL, NULL);
}

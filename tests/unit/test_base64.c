/*
 * Unit tests for src/core/base64.c: RFC 4648 §10 test vectors, then what the
 * strict decoder refuses (Basic credentials come from the network): bad
 * characters, '=' anywhere but the end, missing or extra padding, lengths
 * not a multiple of 4, nonzero bits under the padding, too small a buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"
#include "core/error.h"

static int decode(uint8_t *out, size_t *n, size_t cap, const char *s)
{
    return berth_base64_decode(out, n, cap, s, strlen(s));
}

static void ok(const char *in, const char *want)
{
    uint8_t out[256];
    size_t n = 99;

    if (decode(out, &n, sizeof(out), in) != 0)
        fail_msg("'%s' refused: %s", in, berth_error_msg());
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void bad(const char *in)
{
    uint8_t out[256];
    size_t n = 99;

    if (decode(out, &n, sizeof(out), in) != BERTH_EINVALID)
        fail_msg("'%s' accepted or wrong error", in);
    assert_int_equal(n, 0);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    ok("", "");
    ok("Zg==", "f");
    ok("Zm8=", "fo");
    ok("Zm9v", "foo");
    ok("Zm9vYg==", "foob");
    ok("Zm9vYmE=", "fooba");
    ok("Zm9vYmFy", "foobar");
    ok("YWxpY2U6c2VjcmV0", "alice:secret");
    ok("Ym9iOmh1bnRlcjI=", "bob:hunter2");
}

static void test_alphabet(void **state)
{
    uint8_t out[3], all[48];
    size_t n;
    /* every character once: 64 characters, values 0..63 in order */
    static const char every[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    (void)state;
    assert_int_equal(decode(all, &n, sizeof(all), every), 0);
    assert_int_equal(n, 48);
    for (size_t i = 0; i < 64; i++) {
        size_t bit = 6 * i;
        unsigned v = (unsigned)((all[bit / 8] << 8 | (bit / 8 + 1 < 48 ? all[bit / 8 + 1] : 0)) >>
                                (10 - bit % 8)) & 63;

        assert_int_equal(v, i);
    }
    assert_int_equal(decode(out, &n, sizeof(out), "////"), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0] & out[1] & out[2], 0xff);
    assert_int_equal(decode(out, &n, sizeof(out), "AAAA"), 0);
    assert_int_equal(out[0] | out[1] | out[2], 0);
}

static void test_invalid_characters(void **state)
{
    char s[5];

    (void)state;
    bad("!!!!");
    bad("Zm9v YmFy");
    bad("Zm9v\nYmFy");
    bad("Zm9-");  /* base64url alphabet is not accepted */
    bad("Zm9_");
    bad("Zm\x80v");
    /* every byte outside the alphabet, in every position */
    for (int c = 0; c < 256; c++) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/' || c == '=')
            continue;
        for (int pos = 0; pos < 4; pos++) {
            uint8_t out[8];
            size_t n;

            memcpy(s, "Zm9v", 5);
            s[pos] = (char)c;
            assert_int_equal(berth_base64_decode(out, &n, sizeof(out), s, 4), BERTH_EINVALID);
        }
    }
}

static void test_padding(void **state)
{
    (void)state;
    bad("Zg");      /* unpadded */
    bad("Zg=");     /* short padding */
    bad("Zm8");
    bad("Zg===");   /* too much */
    bad("Z===");
    bad("====");
    bad("=Zg=");
    bad("Z=g=");    /* '=' in the middle */
    bad("Zg==Zg=="); /* padding before the last group */
    bad("Zm9v=Zg=");
    bad("Zm=v");
    /* RFC 4648 §3.5: nonzero bits under the padding are not canonical */
    bad("Zh==");    /* 'h' leaves 0b0001 */
    bad("Zm9=");    /* '9' leaves 0b01 */
    ok("Zg==", "f");
    ok("Zm8=", "fo");
}

static void test_length(void **state)
{
    uint8_t out[4];
    size_t n = 99;

    (void)state;
    bad("Z");
    bad("Zm9vY");
    bad("Zm9vYm");
    bad("Zm9vYmF");
    assert_int_equal(decode(out, &n, 3, "Zm9vYg=="), BERTH_ETOOBIG);
    assert_int_equal(n, 0);
    assert_int_equal(decode(out, &n, 4, "Zm9vYg=="), 0);
    assert_int_equal(n, 4);
    assert_int_equal(decode(out, &n, 3, "Zm9v"), 0);
    assert_int_equal(decode(out, &n, 0, ""), 0);
    assert_int_equal(n, 0);
    /* not NUL-terminated: only len bytes are read */
    assert_int_equal(berth_base64_decode(out, &n, sizeof(out), "Zm9vGARBAGE", 4), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "foo", 3);
}

/* Every 2-byte string round-trips through a reference encoder, and each
 * has exactly one accepted encoding. */
static void test_roundtrip(void **state)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    (void)state;
    for (uint32_t v = 0; v < 1u << 16; v++) {
        uint8_t in[2] = { (uint8_t)(v >> 8), (uint8_t)v }, out[3];
        char enc[5];
        size_t n;

        enc[0] = alpha[in[0] >> 2];
        enc[1] = alpha[(in[0] & 3) << 4 | in[1] >> 4];
        enc[2] = alpha[(in[1] & 15) << 2];
        enc[3] = '=';
        enc[4] = '\0';
        assert_int_equal(decode(out, &n, sizeof(out), enc), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(out, in, 2);
        /* the same with any nonzero bit under the padding: refused */
        for (int b = 1; b < 4; b++) {
            char alt[5];

            memcpy(alt, enc, 5);
            alt[2] = alpha[(in[1] & 15) << 2 | b];
            assert_int_equal(decode(out, &n, sizeof(out), alt), BERTH_EINVALID);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_alphabet),
        cmocka_unit_test(test_invalid_characters), cmocka_unit_test(test_padding),
        cmocka_unit_test(test_length), cmocka_unit_test(test_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

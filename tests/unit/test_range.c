/*
 * Unit tests for src/core/range.c: Range (RFC 9110 §14.1.1/§14.2) against a
 * resource size, and upload Content-Range, including overflow at 2^63.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/range.h"

static int rp(struct berth_range *r, const char *s, uint64_t size)
{
    return berth_range_parse(r, s, strlen(s), size);
}

static int crp(struct berth_range *r, const char *s)
{
    return berth_content_range_parse(r, s, strlen(s));
}

static void expect_range(const char *s, uint64_t size, uint64_t start, uint64_t end)
{
    struct berth_range r;
    int rc = rp(&r, s, size);

    if (rc != 0)
        fail_msg("'%s' on %llu gave %d: %s", s, (unsigned long long)size, rc, berth_error_msg());
    assert_int_equal(r.start, start);
    assert_int_equal(r.end, end);
}

static void expect_range_err(const char *s, uint64_t size, int code)
{
    struct berth_range r;
    int rc = rp(&r, s, size);

    if (rc != code)
        fail_msg("'%s' on %llu gave %d, want %d", s, (unsigned long long)size, rc, code);
    assert_int_equal(berth_error_oci(), BERTH_OCI_RANGE_INVALID);
}

static void test_range_valid(void **state)
{
    (void)state;
    expect_range("bytes=0-0", 10, 0, 0);
    expect_range("bytes=0-", 10, 0, 9);
    expect_range("bytes=-1", 10, 9, 9);
    expect_range("bytes=-10", 10, 0, 9);
    expect_range("bytes=-99999", 10, 0, 9);
    expect_range("bytes=0-99999", 10, 0, 9);
    expect_range("bytes=3-7", 10, 3, 7);
    expect_range("bytes=9-9", 10, 9, 9);
    expect_range("Bytes=2-", 10, 2, 9);
    expect_range("  bytes=2-3\t", 10, 2, 3);
    expect_range("bytes=0-9223372036854775807", 10, 0, 9);
    expect_range("bytes=9223372036854775806-", 9223372036854775807ull, 9223372036854775806ull,
                 9223372036854775806ull);
    expect_range("bytes=1-2,", 10, 1, 2);
    expect_range("bytes= 1-2 , ", 10, 1, 2);
}

static void test_range_errors(void **state)
{
    (void)state;
    expect_range_err("bytes=5-2", 10, BERTH_EINVALID);
    expect_range_err("bytes=10-", 10, BERTH_ERANGE);
    expect_range_err("bytes=10-20", 10, BERTH_ERANGE);
    expect_range_err("bytes=-0", 10, BERTH_ERANGE);
    expect_range_err("bytes=0-0", 0, BERTH_ERANGE);
    expect_range_err("bytes=-5", 0, BERTH_ERANGE);
    expect_range_err("bytes=0-1,3-4", 10, BERTH_EUNSUPPORTED);
    expect_range_err("bytes=0-1, -4", 10, BERTH_EUNSUPPORTED);
    expect_range_err("bytes=0-1,5-2", 10, BERTH_EINVALID);
    expect_range_err("bytes=0-1,x", 10, BERTH_EINVALID);
    expect_range_err("bytes=99999999999999999999-", 10, BERTH_EINVALID);
    expect_range_err("bytes=9223372036854775808-", 10, BERTH_EINVALID);
    expect_range_err("bytes=0-9223372036854775808", 10, BERTH_EINVALID);
    expect_range_err("bytes=-9223372036854775808", 10, BERTH_EINVALID);
    expect_range_err("", 10, BERTH_EINVALID);
    expect_range_err("bytes=", 10, BERTH_EINVALID);
    expect_range_err("bytes=,", 10, BERTH_EINVALID);
    expect_range_err("bytes=-", 10, BERTH_EINVALID);
    expect_range_err("bytes=--1", 10, BERTH_EINVALID);
    expect_range_err("bytes=1", 10, BERTH_EINVALID);
    expect_range_err("bytes=+1-2", 10, BERTH_EINVALID);
    expect_range_err("bytes=1 -2", 10, BERTH_EINVALID);
    expect_range_err("bytes= 1-2", 10, BERTH_EINVALID);
    expect_range_err("bytes =1-2", 10, BERTH_EINVALID);
    expect_range_err("bytes=0x1-2", 10, BERTH_EINVALID);
    expect_range_err("items=0-1", 10, BERTH_EINVALID);
    expect_range_err("bytes 0-1", 10, BERTH_EINVALID);
    expect_range_err("bytes=1-2-3", 10, BERTH_EINVALID);
}

static void test_range_nul(void **state)
{
    struct berth_range r;

    (void)state;
    assert_int_equal(berth_range_parse(&r, "bytes=0-1\0", 10, 10), BERTH_EINVALID);
    assert_int_equal(berth_range_parse(&r, "bytes=0-1junk", 9, 10), 0);
    assert_int_equal(r.end, 1);
    assert_int_equal(berth_range_parse(&r, NULL, 0, 10), BERTH_EINVALID);
}

static void test_content_range(void **state)
{
    struct berth_range r;

    (void)state;
    assert_int_equal(crp(&r, "0-0"), 0);
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, 0);
    assert_int_equal(crp(&r, "0-1023"), 0);
    assert_int_equal(r.end, 1023);
    assert_int_equal(crp(&r, "bytes 0-9/10"), 0);
    assert_int_equal(r.end, 9);
    assert_int_equal(crp(&r, "bytes 0-9/*"), 0);
    assert_int_equal(crp(&r, "bytes 5-9"), 0);
    assert_int_equal(r.start, 5);
    assert_int_equal(crp(&r, "  1024-2047 "), 0);
    assert_int_equal(crp(&r, "0-9223372036854775807"), 0);
    assert_int_equal(r.end, 9223372036854775807ull);

    static const char *const bad[] = {
        "5-2",      "abc",          "",          "-",         "0-",           "-5",
        "0-9/10",   "bytes 0-9/9",  "bytes 0-9/", "bytes 0-9/x", "bytes 0-9/*x", "bytes  0-9",
        "bytes=0-9", "0 - 9",       "0-9 x",     "+0-9",      "0-99999999999999999999",
        "9223372036854775808-9223372036854775809", "bytes 0-9/10/",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (crp(&r, bad[i]) != BERTH_EINVALID)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_INVALID);
    }
    assert_int_equal(berth_content_range_parse(&r, NULL, 0), BERTH_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_valid),
        cmocka_unit_test(test_range_errors),
        cmocka_unit_test(test_range_nul),
        cmocka_unit_test(test_content_range),
    };

    return cmocka_run_group_tests_name("range", tests, NULL, NULL);
}

/*
 * Unit tests for src/server/params.c: the query parameters `n`, `last`,
 * `artifactType` (RFC 6838 media types), `digest` / `mount`, `from` and the
 * repeated `tag`, with their boundaries (9 digits, 255-byte media types,
 * 127-byte halves, 64 tags) and the OCI code each failure carries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "server/params.h"

#define D256 "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_n_valid(void **state)
{
    long n = 7;

    (void)state;
    assert_int_equal(berth_param_n(NULL, 100, 1000, &n), 0);
    assert_int_equal(n, 100);
    assert_int_equal(berth_param_n(NULL, -1, -1, &n), 0);
    assert_int_equal(n, -1);
    assert_int_equal(berth_param_n("0", -1, -1, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(berth_param_n("17", -1, -1, &n), 0);
    assert_int_equal(n, 17);
    assert_int_equal(berth_param_n("007", -1, -1, &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(berth_param_n("999999999", -1, -1, &n), 0);
    assert_int_equal(n, 999999999);
    /* the cap */
    assert_int_equal(berth_param_n("1001", 100, 1000, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(berth_param_n("1000", 100, 1000, &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(berth_param_n("999", 100, 1000, &n), 0);
    assert_int_equal(n, 999);
    assert_int_equal(berth_param_n("5", 100, 0, &n), 0);
    assert_int_equal(n, 0);
}

static void test_n_invalid(void **state)
{
    static const char *const bad[] = {
        "",    "-1",  "+1", " 1", "1 ", "1.0", "0x10", "abc", "1e3", "١",
        "1000000000", "99999999999999999999999", "18446744073709551616", "\t",
    };
    long n = 42;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (berth_param_n(bad[i], 1, 1000, &n) != BERTH_EINVALID)
            fail_msg("n='%s' accepted", bad[i]);
        assert_int_equal(berth_error_oci(), BERTH_OCI_SIZE_INVALID);
        assert_int_equal(n, 42);
    }
}

static void test_last(void **state)
{
    const char *last = "x";
    char name[300];

    (void)state;
    assert_int_equal(berth_param_last(NULL, BERTH_LAST_TAG, &last), 0);
    assert_null(last);
    last = "x";
    assert_int_equal(berth_param_last("", BERTH_LAST_NAME, &last), 0);
    assert_null(last);

    assert_int_equal(berth_param_last("v1.0", BERTH_LAST_TAG, &last), 0);
    assert_string_equal(last, "v1.0");
    assert_int_equal(berth_param_last("a0", BERTH_LAST_TAG, &last), 0);
    assert_int_equal(berth_param_last("library/ubuntu", BERTH_LAST_NAME, &last), 0);
    assert_string_equal(last, "library/ubuntu");
    assert_int_equal(berth_param_last(D256, BERTH_LAST_DIGEST, &last), 0);
    assert_string_equal(last, D256);

    assert_int_equal(berth_param_last("-v1", BERTH_LAST_TAG, &last), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_TAG_INVALID);
    assert_null(last);
    assert_int_equal(berth_param_last("a/b", BERTH_LAST_TAG, &last), BERTH_EINVALID);
    assert_int_equal(berth_param_last("Upper", BERTH_LAST_NAME, &last), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_NAME_INVALID);
    assert_int_equal(berth_param_last("a//b", BERTH_LAST_NAME, &last), BERTH_EINVALID);
    assert_true(berth_param_last("sha256:abc", BERTH_LAST_DIGEST, &last) < 0);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
    assert_true(berth_param_last("v1", BERTH_LAST_DIGEST, &last) < 0);
    assert_null(last);

    memset(name, 'a', 256);
    name[256] = '\0';
    assert_int_equal(berth_param_last(name, BERTH_LAST_NAME, &last), BERTH_EINVALID);
    name[255] = '\0';
    assert_int_equal(berth_param_last(name, BERTH_LAST_NAME, &last), 0);
    name[129] = '\0';
    assert_int_equal(berth_param_last(name, BERTH_LAST_TAG, &last), BERTH_EINVALID);
    name[128] = '\0';
    assert_int_equal(berth_param_last(name, BERTH_LAST_TAG, &last), 0);
}

static void test_media_type(void **state)
{
    static const char *const ok[] = {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.example.sbom.v1",
        "text/plain",
        "a/b",
        "0/9",
        "Application/X-Foo",
        "application/vnd.a!#$&-^_.+",
        "application/vnd.cncf.helm.config.v1+json",
    };
    static const char *const bad[] = {
        "",        "application", "application/", "/json",   "a/b/c",  "a//b",
        "a/b ",    " a/b",        "a /b",         "a/b;x=y", "a/.b",   ".a/b",
        "-a/b",    "a/+b",        "a/b\t",        "a\\b/c",  "a/b*",   "a/b%20",
        "a/b=",    "é/b",         "a/b\n",        "a/(b)",
    };
    char buf[400];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (berth_media_type_check(ok[i], strlen(ok[i])) != 0)
            fail_msg("'%s' refused", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (berth_media_type_check(bad[i], strlen(bad[i])) != BERTH_EINVALID)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(berth_media_type_check(NULL, 0), BERTH_EINVALID);
    assert_int_equal(berth_media_type_check("a/b\0c", 5), BERTH_EINVALID);
    assert_int_equal(berth_media_type_check("a/bc", 3), 0); /* the length given counts */

    /* each half at most 127, the whole at most 255 */
    memset(buf, 'x', sizeof(buf));
    buf[127] = '/';
    assert_int_equal(berth_media_type_check(buf, 255), 0);
    assert_int_equal(berth_media_type_check(buf, 256), BERTH_EINVALID);
    buf[127] = 'x';
    buf[128] = '/';
    assert_int_equal(berth_media_type_check(buf, 200), BERTH_EINVALID);
    buf[128] = 'x';
    buf[10] = '/';
    assert_int_equal(berth_media_type_check(buf, 138), 0);
    assert_int_equal(berth_media_type_check(buf, 139), BERTH_EINVALID);
}

static void test_artifact_type(void **state)
{
    const char *t = "x";

    (void)state;
    assert_int_equal(berth_param_artifact_type(NULL, &t), 0);
    assert_null(t);
    t = "x";
    assert_int_equal(berth_param_artifact_type("", &t), 0);
    assert_null(t);
    assert_int_equal(berth_param_artifact_type("application/vnd.example.sig", &t), 0);
    assert_string_equal(t, "application/vnd.example.sig");
    assert_int_equal(berth_param_artifact_type("nonsense", &t), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_UNSUPPORTED);
    assert_null(t);
}

static void test_digest(void **state)
{
    struct berth_digest d;

    (void)state;
    assert_int_equal(berth_param_digest(D256, &d), 0);
    assert_string_equal(d.str, D256);
    assert_int_equal(berth_param_digest(NULL, &d), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
    assert_string_equal(berth_error_msg(), "digest parameter missing");
    assert_int_equal(berth_param_digest("", &d), BERTH_EINVALID);
    assert_true(berth_param_digest("sha256:zzz", &d) < 0);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
    assert_true(berth_param_digest("nonsense", &d) < 0);
    assert_true(berth_param_digest(D256 " ", &d) < 0);
    assert_true(berth_param_digest("SHA256:0123456789abcdef0123456789abcdef0123456789abcdef"
                                   "0123456789abcdef", &d) < 0);
}

static void test_from(void **state)
{
    (void)state;
    assert_int_equal(berth_param_from("library/ubuntu"), 0);
    assert_int_equal(berth_param_from("a"), 0);
    assert_int_equal(berth_param_from(NULL), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_NAME_INVALID);
    assert_int_equal(berth_param_from(""), BERTH_EINVALID);
    assert_int_equal(berth_param_from("A"), BERTH_EINVALID);
    assert_int_equal(berth_param_from("a/../b"), BERTH_EINVALID);
}

static void test_tags(void **state)
{
    struct berth_tag_params tp;

    (void)state;
    memset(&tp, 0, sizeof(tp));
    assert_int_equal(berth_param_tags_check(&tp), 0);
    assert_int_equal(berth_param_tag_add(&tp, "alpha"), 0);
    assert_int_equal(berth_param_tag_add(&tp, "beta"), 0);
    assert_int_equal(tp.n, 2);
    assert_string_equal(tp.tags[1], "beta");
    assert_int_equal(berth_param_tags_check(&tp), 0);
    assert_int_equal(berth_param_tag_add(&tp, NULL), 0);
    assert_string_equal(tp.tags[2], "");
    assert_int_equal(berth_param_tags_check(&tp), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_TAG_INVALID);

    memset(&tp, 0, sizeof(tp));
    assert_int_equal(berth_param_tag_add(&tp, "-nope"), 0);
    assert_int_equal(berth_param_tags_check(&tp), BERTH_EINVALID);

    memset(&tp, 0, sizeof(tp));
    for (int i = 0; i < BERTH_PARAM_TAGS_MAX; i++)
        assert_int_equal(berth_param_tag_add(&tp, "t"), 0);
    assert_false(tp.too_many);
    assert_int_equal(berth_param_tags_check(&tp), 0);
    assert_int_equal(berth_param_tag_add(&tp, "t"), BERTH_ETOOBIG);
    assert_true(tp.too_many);
    assert_int_equal(tp.n, BERTH_PARAM_TAGS_MAX);
    assert_int_equal(berth_param_tags_check(&tp), BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_TAG_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_n_valid),     cmocka_unit_test(test_n_invalid),
        cmocka_unit_test(test_last),        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_artifact_type), cmocka_unit_test(test_digest),
        cmocka_unit_test(test_from),        cmocka_unit_test(test_tags),
    };

    return cmocka_run_group_tests_name("params", tests, NULL, NULL);
}

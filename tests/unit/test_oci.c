/*
 * Unit tests for src/core/oci.c and src/core/error.c: the OCI error table,
 * the JSON error body (escaping, detail), and the thread-local error object.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/error.h"
#include "core/oci.h"

static void test_table(void **state)
{
    int c;

    (void)state;
    assert_string_equal(berth_oci_code_str(BERTH_OCI_BLOB_UNKNOWN), "BLOB_UNKNOWN");
    assert_int_equal(berth_oci_status(BERTH_OCI_BLOB_UNKNOWN), 404);
    assert_int_equal(berth_oci_status(BERTH_OCI_BLOB_UPLOAD_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_BLOB_UPLOAD_UNKNOWN), 404);
    assert_int_equal(berth_oci_status(BERTH_OCI_DIGEST_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_MANIFEST_BLOB_UNKNOWN), 404);
    assert_int_equal(berth_oci_status(BERTH_OCI_MANIFEST_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_MANIFEST_UNKNOWN), 404);
    assert_int_equal(berth_oci_status(BERTH_OCI_NAME_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_NAME_UNKNOWN), 404);
    assert_int_equal(berth_oci_status(BERTH_OCI_SIZE_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_UNAUTHORIZED), 401);
    assert_int_equal(berth_oci_status(BERTH_OCI_DENIED), 403);
    assert_int_equal(berth_oci_status(BERTH_OCI_UNSUPPORTED), 405);
    assert_int_equal(berth_oci_status(BERTH_OCI_TOOMANYREQUESTS), 429);
    assert_int_equal(berth_oci_status(BERTH_OCI_TAG_INVALID), 400);
    assert_int_equal(berth_oci_status(BERTH_OCI_RANGE_INVALID), 416);
    assert_string_equal(berth_oci_code_str(BERTH_OCI_RANGE_INVALID), "RANGE_INVALID");
    assert_int_equal(berth_oci_status(BERTH_OCI_INTERNAL), 500);
    assert_string_equal(berth_oci_code_str(BERTH_OCI_INTERNAL), "UNKNOWN");
    assert_int_equal(berth_oci_status(BERTH_OCI_UNAVAILABLE), 503);
    assert_string_equal(berth_oci_code_str(BERTH_OCI_UNAVAILABLE), "UNAVAILABLE");
    assert_string_equal(berth_oci_message(BERTH_OCI_MANIFEST_UNKNOWN), "manifest unknown");
    /* out of range falls back to INTERNAL */
    assert_int_equal(berth_oci_status((enum berth_oci_code)999), 500);
    /* spec: code contains only uppercase letters and underscores */
    for (c = BERTH_OCI_NONE; c < BERTH_OCI__COUNT; c++) {
        const char *s = berth_oci_code_str((enum berth_oci_code)c);

        assert_non_null(s);
        assert_int_equal(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"), strlen(s));
        assert_non_null(berth_oci_message((enum berth_oci_code)c));
    }
}

static void test_json(void **state)
{
    char *out = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(berth_oci_error_json(&out, &len, BERTH_OCI_BLOB_UNKNOWN, NULL, NULL), 0);
    assert_string_equal(out, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\","
                             "\"message\":\"blob unknown to registry\",\"detail\":{}}]}");
    assert_int_equal(len, strlen(out));
    free(out);

    assert_int_equal(berth_oci_error_json(&out, &len, BERTH_OCI_DIGEST_INVALID, "bad \"x\"\\\n\x01",
                                          "{\"digest\":\"sha256:x\"}"),
                     0);
    assert_string_equal(out, "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"bad "
                             "\\\"x\\\"\\\\\\n\\u0001\",\"detail\":{\"digest\":\"sha256:x\"}}]}");
    free(out);
}

static void test_json_roundtrip(void **state)
{
    static const char *const msgs[] = {
        "plain", "caf\xc3\xa9 \xe2\x82\xac", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
        "\xc0\xaf overlong", "tab\tdel\x7f", "",
    };
    json_error_t jerr;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        char *out = NULL;
        size_t len;
        json_t *root;

        assert_int_equal(berth_oci_error_json(&out, &len, BERTH_OCI_NAME_INVALID, msgs[i], "[]"),
                         0);
        root = json_loadb(out, len, 0, &jerr);
        if (!root)
            fail_msg("'%s' not JSON: %s", out, jerr.text);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(json_object_get(root, "errors"), 0),
                                              "code")),
            "NAME_INVALID");
        json_decref(root);
        free(out);
    }
}

static void test_error_object(void **state)
{
    (void)state;
    berth_error_clear();
    assert_int_equal(berth_error_code(), 0);
    assert_string_equal(berth_error_msg(), "");
    assert_int_equal(berth_error_oci(), BERTH_OCI_NONE);

    assert_int_equal(berth_error_set(BERTH_ENOTFOUND, "blob '%s' not found", "x"), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_code(), BERTH_ENOTFOUND);
    assert_string_equal(berth_error_msg(), "blob 'x' not found");
    assert_int_equal(berth_error_oci(), BERTH_OCI_NONE);

    assert_int_equal(berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID, "bad tag"),
                     BERTH_EINVALID);
    assert_int_equal(berth_error_oci(), BERTH_OCI_TAG_INVALID);
    /* a plain set clears the OCI code */
    berth_error_set(BERTH_ERROR, "x");
    assert_int_equal(berth_error_oci(), BERTH_OCI_NONE);

    errno = ENOSPC;
    assert_int_equal(berth_error_errno("write '%s'", "f"), BERTH_ENOSPC);
    assert_string_equal(berth_error_msg(), "write 'f': No space left on device");
    errno = ENOENT;
    assert_int_equal(berth_error_errno("open"), BERTH_ENOTFOUND);
    errno = EIO;
    assert_int_equal(berth_error_errno("read"), BERTH_ERROR);
    assert_int_equal(errno, EIO);

    assert_string_equal(berth_error_str(BERTH_ENOTFOUND), "not found");
    assert_string_equal(berth_error_str(12345), "unknown error");
}

static void test_error_truncation(void **state)
{
    char big[2000];

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    berth_error_set(BERTH_EINVALID, "%s", big);
    assert_int_equal(strlen(berth_error_msg()), 511);
    errno = EIO;
    berth_error_errno("%s", big);
    assert_int_equal(strlen(berth_error_msg()), 511);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_roundtrip), cmocka_unit_test(test_error_object),
        cmocka_unit_test(test_error_truncation),
    };

    return cmocka_run_group_tests_name("oci", tests, NULL, NULL);
}

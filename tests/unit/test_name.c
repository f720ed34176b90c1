/*
 * Unit tests for src/core/name.c: the distribution-spec <name> and tag
 * grammars, boundary lengths, and the messages saying what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/name.h"

static int name(const char *s)
{
    return berth_name_check(s, strlen(s));
}

static int tag(const char *s)
{
    return berth_tag_check(s, strlen(s));
}

static void test_name_valid(void **state)
{
    static const char *const ok[] = {
        "a",       "a/b",       "a-b",          "a--b",       "a__b",
        "a.b",     "a_b",       "foo/bar/baz",  "0",          "library/ubuntu",
        "a---b-c", "a.b_c__d-e", "gallery/ui", "x1/y2.z3/w-4", "127.0.0.1",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (name(ok[i]) != 0)
            fail_msg("'%s' refused: %s", ok[i], berth_error_msg());
}

static void test_name_invalid(void **state)
{
    static const char *const bad[] = {
        "",    "A",    "a/",   "/a",  "a//b", "-a",  "a-",   "a___b", "a..b", "../x",
        "a._b", "a_.b", "a-.b", "a_-b", "a/.b", "a/_b", "a b",  "a:b",  "a@b",  "Foo/bar",
        "a/B",  "_a",   ".a",   "a.",  "a_",   "a/b/", "a\tb", "a\nb", "é",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = name(bad[i]);

        if (rc != BERTH_EINVALID)
            fail_msg("'%s' gave %d", bad[i], rc);
        assert_int_equal(berth_error_oci(), BERTH_OCI_NAME_INVALID);
    }
    assert_int_equal(berth_name_check("a\0b", 3), BERTH_EINVALID);
    assert_int_equal(berth_name_check(NULL, 0), BERTH_EINVALID);
}

static void test_name_messages(void **state)
{
    (void)state;
    name("fOo");
    assert_string_equal(berth_error_msg(),
                        "invalid repository name 'fOo': uppercase letter at position 2");
    name("a//b");
    assert_string_equal(berth_error_msg(),
                        "invalid repository name 'a//b': empty path component at position 3");
    name("a/");
    assert_string_equal(berth_error_msg(), "invalid repository name 'a/': ends with '/'");
    name("a-");
    assert_string_equal(berth_error_msg(), "invalid repository name 'a-': ends with a separator");
    name("a___b");
    assert_string_equal(berth_error_msg(),
                        "invalid repository name 'a___b': misplaced separator at position 4");
}

static void test_name_length(void **state)
{
    char buf[300];

    (void)state;
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(berth_name_check(buf, 255), 0);
    assert_int_equal(berth_name_check(buf, 256), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "longer than 255"));
    /* 255 with separators and components */
    memset(buf, 'a', 255);
    buf[100] = '/';
    buf[200] = '-';
    buf[201] = '-';
    assert_int_equal(berth_name_check(buf, 255), 0);
}

static void test_tag(void **state)
{
    static const char *const ok[] = {
        "latest", "_x", "v1.0", "V1.0", "1", "_", "a-b_c.d", "2.1.3", "sha256-abc.sig", "A__..--",
    };
    static const char *const bad[] = {
        "", ".x", "-x", "a b", "a/b", "a:b", "a@b", "é", "a+b",
    };
    char buf[200];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (tag(ok[i]) != 0)
            fail_msg("'%s' refused: %s", ok[i], berth_error_msg());
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tag(bad[i]) != BERTH_EINVALID)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(berth_error_oci(), BERTH_OCI_TAG_INVALID);
    }
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(berth_tag_check(buf, 128), 0);
    assert_int_equal(berth_tag_check(buf, 129), BERTH_EINVALID);
    assert_int_equal(berth_tag_check("a\0", 2), BERTH_EINVALID);
    assert_int_equal(berth_tag_check(NULL, 0), BERTH_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),    cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_name_messages), cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_tag),
    };

    return cmocka_run_group_tests_name("name", tests, NULL, NULL);
}

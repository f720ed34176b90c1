/*
 * Unit tests for src/core/semver.c: parsing, semver.org 2.0.0 precedence
 * (the example chain from item 11 of the spec), and the alias rule of the
 * founding note: publishing 2.1.3 moves 2.1, 2 and latest unless a higher
 * full release already holds them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/semver.h"

static int cmp(const char *a, const char *b)
{
    struct berth_semver va, vb;

    if (berth_semver_parse(&va, a) != 0)
        fail_msg("'%s' refused: %s", a, berth_error_msg());
    if (berth_semver_parse(&vb, b) != 0)
        fail_msg("'%s' refused: %s", b, berth_error_msg());
    return berth_semver_cmp(&va, &vb);
}

static void test_parse(void **state)
{
    static const char *const ok[] = {
        "0", "2", "2.1", "2.1.3", "v2.1.3", "v2", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1",
        "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--", "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85", "1.0.0+21AF26D3----117B344092BD", "1.0.0+001",
        "18446744073709551615.0.0",
    };
    static const char *const bad[] = {
        "", "v", "latest", "1.", "1..2", "01", "1.02", "1.2.03", "1.2.3-", "1.2.3+", "1.2.3-01",
        "1.2.3-a..b", "1.2.3-a_b", "1.2-beta", "2-rc1", "1.2.3.4", "V1.2.3", "vv1", " 1.2.3",
        "1.2.3 ", "-1.2.3", "1.2.3-+b", "18446744073709551616.0.0", "1.2.3+a..b", "1.2.x",
    };
    struct berth_semver v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (berth_semver_parse(&v, ok[i]) != 0)
            fail_msg("'%s' refused: %s", ok[i], berth_error_msg());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (berth_semver_parse(&v, bad[i]) != BERTH_EINVALID)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(berth_semver_parse(&v, NULL), BERTH_EINVALID);

    assert_int_equal(berth_semver_parse(&v, "v2.1.3-rc.1+b7"), 0);
    assert_int_equal(v.major, 2);
    assert_int_equal(v.minor, 1);
    assert_int_equal(v.patch, 3);
    assert_true(v.has_minor && v.has_patch && v.v_prefix);
    assert_string_equal(v.prerelease, "rc.1");
    assert_int_equal(berth_semver_parse(&v, "2.1"), 0);
    assert_true(v.has_minor && !v.has_patch && !v.v_prefix);
    assert_int_equal(berth_semver_parse(&v, "7"), 0);
    assert_true(!v.has_minor && !v.has_patch);
    assert_int_equal(berth_semver_parse(&v, "latest"), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "invalid version 'latest'"));
}

static void test_order(void **state)
{
    /* semver.org item 11 examples, each strictly lower than the next */
    static const char *const chain[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.9.0", "1.10.0", "1.11.0",
        "2.0.0", "2.1.0", "2.1.1", "10.0.0",
    };
    size_t n = sizeof(chain) / sizeof(chain[0]);

    (void)state;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = cmp(chain[i], chain[j]), want = i < j ? -1 : i > j;

            if ((c > 0) - (c < 0) != want)
                fail_msg("cmp(%s, %s) = %d, want %d", chain[i], chain[j], c, want);
        }
    assert_int_equal(cmp("1.0.0+build.1", "1.0.0+build.2"), 0); /* build ignored */
    assert_int_equal(cmp("v1.2.3", "1.2.3"), 0);
    assert_int_equal(cmp("2", "2.0.0"), 0);
    assert_int_equal(cmp("2.1", "2.1.0"), 0);
    assert_true(cmp("1.0.0-2", "1.0.0-10") < 0);       /* numeric identifiers numerically */
    assert_true(cmp("1.0.0-999", "1.0.0-a") < 0);      /* numeric before alphanumeric */
    assert_true(cmp("1.0.0-a", "1.0.0-a.0") < 0);      /* more identifiers win */
    assert_true(cmp("1.0.0-Z", "1.0.0-a") < 0);        /* ASCII order */
    assert_true(cmp("1.0.0-rc.1", "1.0.0-rc.1a") < 0); /* "1" numeric < "1a" alnum */
    assert_true(cmp("1.0.0-alpha-2", "1.0.0-alpha") > 0);
    assert_true(cmp("1.0.0-99999999999999999999999", "1.0.0-100000000000000000000000") < 0);
}

/* aliases(version, existing...) must give exactly `want` (NULL-terminated). */
static void check_aliases(const char *version, const char *const *existing, size_t n,
                          const char *const *want)
{
    char out[3][129];
    int got = berth_semver_aliases(out, version, existing, n), i;

    for (i = 0; want[i]; i++) {
        if (i >= got)
            fail_msg("%s: %d aliases, want more (%s)", version, got, want[i]);
        if (strcmp(out[i], want[i]) != 0)
            fail_msg("%s: alias %d is '%s', want '%s'", version, i, out[i], want[i]);
    }
    if (got != i)
        fail_msg("%s: %d aliases, want %d", version, got, i);
}

static void test_aliases(void **state)
{
    static const char *const all[] = { "2.1", "2", "latest", NULL };
    static const char *const only_minor[] = { "2.0", NULL };
    static const char *const minor_major[] = { "2.1", "2", NULL };
    static const char *const none[] = { NULL };
    static const char *const v_all[] = { "v2.1", "v2", "latest", NULL };
    static const char *const v1_all[] = { "1.0", "1", "latest", NULL };
    static const char *const e_210[] = { "2.1.0", "latest", "2", "2.1" };
    static const char *const e_213[] = { "2.1.3", "2.1", "2", "latest" };
    static const char *const e_300[] = { "3.0.0", "latest" };
    static const char *const e_junk[] = { "latest", "stable", "9.9", "9", "3.0.0-rc.1", "x9.0.0",
                                          NULL, "2.1.2", "2.1.3" };
    static const char *const e_v[] = { "v2.1.4" };
    char out[3][129];

    (void)state;
    check_aliases("2.1.3", NULL, 0, all);
    check_aliases("2.0.9", e_210, 4, only_minor);
    check_aliases("2.1.2", e_213, 4, none);
    check_aliases("2.1.3", e_213, 4, all);       /* re-push of the same version */
    check_aliases("2.1.3+build.7", e_213, 4, all); /* build metadata: same version */
    check_aliases("2.1.4", e_300, 2, minor_major);
    /* alias-looking tags, prereleases and non-versions do not block anything */
    check_aliases("2.1.3", e_junk, 9, all);
    check_aliases("v2.1.3", NULL, 0, v_all);
    check_aliases("2.1.3", e_v, 1, none); /* the 'v' prefix does not matter for order */
    check_aliases("1.0.0", NULL, 0, v1_all);

    assert_int_equal(berth_semver_aliases(out, "2.1.3-rc.1", NULL, 0), 0);
    assert_int_equal(berth_semver_aliases(out, "2.1", NULL, 0), BERTH_EINVALID);
    assert_int_equal(berth_semver_aliases(out, "2", NULL, 0), BERTH_EINVALID);
    assert_int_equal(berth_semver_aliases(out, "latest", NULL, 0), BERTH_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_aliases),
    };

    return cmocka_run_group_tests_name("semver", tests, NULL, NULL);
}

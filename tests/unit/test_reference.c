/*
 * Unit tests for src/core/reference.c: Docker's reference grammar and
 * normalization. Vectors are taken from distribution/reference's
 * normalize_test.go and reference_test.go (inputs and expected parts only),
 * from the founding note (`image-gallery`, `127.0.0.1:5000/gallery/ui:v1`),
 * plus length limits, messages, formatting and the local-registry rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/reference.h"

#define HEX64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define D256 "sha256:" HEX64
#define D256B "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
#define D512                                                                                       \
    "sha512:" HEX64 HEX64

struct good {
    const char *in, *registry, *repository, *tag, *digest;
};

static const struct good goods[] = {
    /* normalize_test.go / docker's familiar names */
    { "ubuntu", "docker.io", "library/ubuntu", "latest", NULL },
    { "ubuntu:20.04", "docker.io", "library/ubuntu", "20.04", NULL },
    { "library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL },
    { "docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL },
    { "docker.io/library/ubuntu", "docker.io", "library/ubuntu", "latest", NULL },
    { "index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", NULL },
    { "index.docker.io/dmcgowan/myapp", "docker.io", "dmcgowan/myapp", "latest", NULL },
    { "dmcgowan/myapp", "docker.io", "dmcgowan/myapp", "latest", NULL },
    { "dmcgowan/myapp:tag", "docker.io", "dmcgowan/myapp", "tag", NULL },
    { "redis@" D256B, "docker.io", "library/redis", "", D256B },
    { "docker.io/library/busybox:latest@" D256B, "docker.io", "library/busybox", "latest", D256B },
    { "image-gallery", "docker.io", "library/image-gallery", "latest", NULL },
    { "localhost/foo", "localhost", "foo", "latest", NULL },
    { "localhost:5000/foo:bar", "localhost:5000", "foo", "bar", NULL },
    { "localhost:5000/foo/bar", "localhost:5000", "foo/bar", "latest", NULL },
    { "127.0.0.1:5000/gallery/ui:v1", "127.0.0.1:5000", "gallery/ui", "v1", NULL },
    { "[::1]:5000/x", "[::1]:5000", "x", "latest", NULL },
    { "Foo.com/bar", "Foo.com", "bar", "latest", NULL },
    { "Foo/bar", "Foo", "bar", "latest", NULL }, /* uppercase first component: a host */
    { "name:tag@" D256, "docker.io", "library/name", "tag", D256 },
    { "a/b/c/d/e", "docker.io", "a/b/c/d/e", "latest", NULL },
    { "example.com/a/b/c/d/e:1", "example.com", "a/b/c/d/e", "1", NULL },
    { "docker.io/localhost", "docker.io", "library/localhost", "latest", NULL },
    { "localhost", "docker.io", "library/localhost", "latest", NULL },
    { "localhost:5000", "docker.io", "library/localhost", "5000", NULL },
    { "registry-1.docker.io/x", "registry-1.docker.io", "x", "latest", NULL },
    /* reference_test.go */
    { "test_com", "docker.io", "library/test_com", "latest", NULL },
    { "test.com:tag", "docker.io", "library/test.com", "tag", NULL },
    { "test.com:5000", "docker.io", "library/test.com", "5000", NULL },
    { "test.com/repo:tag", "test.com", "repo", "tag", NULL },
    { "test:5000/repo", "test:5000", "repo", "latest", NULL },
    { "test:5000/repo:tag", "test:5000", "repo", "tag", NULL },
    { "test:5000/repo@" D256, "test:5000", "repo", "", D256 },
    { "test:5000/repo:tag@" D256, "test:5000", "repo", "tag", D256 },
    { "lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", NULL },
    { "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest", NULL },
    { "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux",
      "some-long-tag", NULL },
    { "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
      "test.example.com", NULL },
    { "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", NULL },
    { "xn--7o8h.com/myimage:xn--7o8h.com@" D512, "xn--7o8h.com", "myimage", "xn--7o8h.com", D512 },
    { "foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", NULL },
    { "foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", NULL },
    { "192.168.1.1", "docker.io", "library/192.168.1.1", "latest", NULL },
    { "192.168.1.1:tag", "docker.io", "library/192.168.1.1", "tag", NULL },
    { "192.168.1.1/repo", "192.168.1.1", "repo", "latest", NULL },
    { "192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", NULL },
    { "[2001:db8::1]/repo", "[2001:db8::1]", "repo", "latest", NULL },
    { "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", NULL },
    { "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", "latest", NULL },
    { "[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest", NULL },
    { "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", NULL },
    { "a-b.c-d/e__f.g-h", "a-b.c-d", "e__f.g-h", "latest", NULL },
    { "a/a---b", "docker.io", "a/a---b", "latest", NULL },
    { "x:_tag", "docker.io", "library/x", "_tag", NULL },
};

struct bad {
    const char *in, *why; /* substring the message must contain */
};

static const struct bad bads[] = {
    { "", "empty" },
    { "foo/Bar", "repository name must be lowercase" },
    { "Uppercase:tag", "repository name must be lowercase" },
    { "test:5000/Uppercase/lowercase:tag", "repository name must be lowercase" },
    { "foo:", "empty tag" },
    { "foo@", "empty digest" },
    { "foo@sha256:short", "invalid digest" },
    { "repo@sha256:ffffffffffffffffffffffffffffffffff", "invalid digest" },
    { "validname@invaliddigest:" HEX64, "digest" },
    { "foo@sha256:" HEX64 "@x", "digest" },
    { ":justtag", "missing repository name" },
    { "@" D256, "missing repository name" },
    { "-foo", "invalid repository name" },
    { "foo-", "invalid repository name" },
    { "foo//bar", "empty path component" },
    { "foo/", "ends with '/'" },
    { "/foo", "empty path component" },
    { "example.com/", "missing repository name" },
    { "example.com:notaport/x", "invalid registry 'example.com:notaport'" },
    { "example.com:/x", "empty port" },
    { "-example.com/x", "invalid registry" },
    { "example-.com/x", "invalid registry" },
    { "exa_mple.com/x", "invalid registry" },
    { "example..com/x", "invalid registry" },
    { "[2001:db8::1]", "invalid tag" },
    { "[2001:db8::1]:5000", "invalid repository name" },
    { "[2001:db8::1]:tag", "invalid" },
    { "[fe80::1%eth0]:5000/repo", "invalid registry" },
    { "[2001:db8::1/repo", "invalid registry" },
    { "[]:5000/repo", "invalid registry" },
    { "[::1]x/repo", "invalid registry" },
    { "aa/asdf$$^/aa", "invalid repository name" },
    { "a/a:tag:tag", "invalid repository name" },
    { "a:-tag", "invalid tag" },
    { "a:.tag", "invalid tag" },
    { "a: b", "invalid tag" },
    { "foo bar", "invalid repository name" },
    { "a___b", "invalid repository name" },
    { "localhost:5000/Foo", "must be lowercase" },
    { HEX64, "image id" },
};

static void check_good(const struct good *g, int notag)
{
    struct berth_ref r;
    int rc = notag ? berth_ref_parse_notag(&r, g->in) : berth_ref_parse(&r, g->in);

    if (rc != 0)
        fail_msg("'%s' refused: %s", g->in, berth_error_msg());
    if (strcmp(r.registry, g->registry) != 0)
        fail_msg("'%s': registry '%s', want '%s'", g->in, r.registry, g->registry);
    if (strcmp(r.repository, g->repository) != 0)
        fail_msg("'%s': repository '%s', want '%s'", g->in, r.repository, g->repository);
    if (!notag && strcmp(r.tag, g->tag) != 0)
        fail_msg("'%s': tag '%s', want '%s'", g->in, r.tag, g->tag);
    if (notag && !g->digest && strcmp(g->tag, "latest") == 0 && !strstr(g->in, ":latest") &&
        r.tag[0] && strcmp(r.tag, "latest") != 0)
        fail_msg("'%s': notag gave tag '%s'", g->in, r.tag);
    if (g->digest ? (!r.has_digest || strcmp(r.digest.str, g->digest) != 0) : r.has_digest)
        fail_msg("'%s': digest '%s'", g->in, r.has_digest ? r.digest.str : "(none)");
}

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        check_good(&goods[i], 0);
        check_good(&goods[i], 1);
    }
}

static void test_invalid(void **state)
{
    struct berth_ref r;

    (void)state;
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        int rc = berth_ref_parse(&r, bads[i].in);

        if (rc != BERTH_EINVALID)
            fail_msg("'%s' gave %d", bads[i].in, rc);
        if (strncmp(berth_error_msg(), "invalid reference '", 19) != 0 ||
            !strstr(berth_error_msg(), bads[i].why))
            fail_msg("'%s': message '%s' lacks '%s'", bads[i].in, berth_error_msg(),
                     bads[i].why);
        assert_int_equal(berth_ref_parse_notag(&r, bads[i].in), BERTH_EINVALID);
    }
    assert_int_equal(berth_ref_parse(&r, NULL), BERTH_EINVALID);
}

static void test_messages(void **state)
{
    struct berth_ref r;

    (void)state;
    assert_int_equal(berth_ref_parse(&r, "foo/Bar"), BERTH_EINVALID);
    assert_string_equal(berth_error_msg(),
                        "invalid reference 'foo/Bar': repository name must be lowercase");
    assert_int_equal(berth_ref_parse(&r, "example.com:notaport/x"), BERTH_EINVALID);
    assert_string_equal(berth_error_msg(), "invalid reference 'example.com:notaport/x': "
                                           "invalid registry 'example.com:notaport': "
                                           "port is not a number");
    assert_int_equal(berth_ref_parse(&r, "foo@sha256:short"), BERTH_EINVALID);
    assert_string_equal(berth_error_msg(),
                        "invalid reference 'foo@sha256:short': invalid digest 'sha256:short': "
                        "wrong length");
}

/* distribution's NameTotalLengthMax: registry + '/' + path <= 255 */
static void test_length(void **state)
{
    char buf[600], want[700];
    struct berth_ref r;

    (void)state;
    /* docker.io/library/ + 237 = 255 */
    memset(buf, 'a', 237);
    buf[237] = '\0';
    assert_int_equal(berth_ref_parse(&r, buf), 0);
    snprintf(want, sizeof(want), "library/%s", buf);
    assert_string_equal(r.repository, want);
    strcpy(buf + 237, "a");
    assert_int_equal(berth_ref_parse(&r, buf), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "longer than 255"));

    /* a 256-character name with an explicit registry */
    snprintf(buf, sizeof(buf), "example.com/");
    memset(buf + 12, 'b', 244);
    buf[256] = '\0';
    assert_int_equal(strlen(buf), 256);
    assert_int_equal(berth_ref_parse(&r, buf), BERTH_EINVALID);
    buf[255] = '\0';
    assert_int_equal(berth_ref_parse(&r, buf), 0);
    assert_int_equal(strlen(r.repository), 243);

    /* tag of 128 ok, 129 not */
    snprintf(buf, sizeof(buf), "x:");
    memset(buf + 2, 't', 128);
    buf[130] = '\0';
    assert_int_equal(berth_ref_parse(&r, buf), 0);
    assert_int_equal(strlen(r.tag), 128);
    strcpy(buf + 130, "t");
    assert_int_equal(berth_ref_parse(&r, buf), BERTH_EINVALID);

    /* a very long garbage string: message cut short, no overflow */
    memset(buf, 'Z', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    assert_int_equal(berth_ref_parse(&r, buf), BERTH_EINVALID);
    assert_true(strlen(berth_error_msg()) < 511);
}

static void test_notag(void **state)
{
    struct berth_ref r;

    (void)state;
    assert_int_equal(berth_ref_parse_notag(&r, "gallery/ui"), 0);
    assert_string_equal(r.tag, "");
    assert_int_equal(berth_ref_parse(&r, "gallery/ui"), 0);
    assert_string_equal(r.tag, "latest");
    assert_int_equal(berth_ref_parse(&r, "gallery/ui@" D256), 0);
    assert_string_equal(r.tag, "");
    assert_string_equal(berth_ref_manifest_ref(&r), D256);
    assert_int_equal(berth_ref_parse(&r, "gallery/ui:v2"), 0);
    assert_string_equal(berth_ref_manifest_ref(&r), "v2");
}

static void test_format(void **state)
{
    static const char *const cases[][3] = {
        /* input, long form, short form */
        { "ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest" },
        { "dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest", "dmcgowan/myapp:latest" },
        { "library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest" },
        { "127.0.0.1:5000/gallery/ui:v1", "127.0.0.1:5000/gallery/ui:v1",
          "127.0.0.1:5000/gallery/ui:v1" },
        { "redis@" D256B, "docker.io/library/redis@" D256B, "redis@" D256B },
        { "a:t@" D256, "docker.io/library/a:t@" D256, "a:t@" D256 },
        { "docker.io/foo.bar/x", "docker.io/foo.bar/x:latest", "docker.io/foo.bar/x:latest" },
        { "docker.io/localhost/x", "docker.io/localhost/x:latest",
          "docker.io/localhost/x:latest" },
    };
    char buf[600], small[8];
    struct berth_ref r, r2;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(berth_ref_parse(&r, cases[i][0]), 0);
        assert_int_equal(berth_ref_format(buf, sizeof(buf), &r), strlen(cases[i][1]));
        assert_string_equal(buf, cases[i][1]);
        assert_int_equal(berth_ref_parse(&r2, buf), 0);
        assert_string_equal(r2.registry, r.registry);
        assert_string_equal(r2.repository, r.repository);
        assert_int_equal(berth_ref_format_short(buf, sizeof(buf), &r), strlen(cases[i][2]));
        assert_string_equal(buf, cases[i][2]);
        assert_int_equal(berth_ref_parse(&r2, buf), 0);
        assert_string_equal(r2.registry, r.registry);
        assert_string_equal(r2.repository, r.repository);
    }
    /* snprintf rule */
    assert_int_equal(berth_ref_parse(&r, "ubuntu"), 0);
    assert_int_equal(berth_ref_format(small, sizeof(small), &r), 31);
    assert_string_equal(small, "docker.");
    assert_int_equal(berth_ref_parse_notag(&r, "ubuntu"), 0);
    berth_ref_format(buf, sizeof(buf), &r);
    assert_string_equal(buf, "docker.io/library/ubuntu");
    /* found by fuzz_reference: a short form must not read as an image id */
    assert_int_equal(berth_ref_parse_notag(&r, "library/" HEX64), 0);
    berth_ref_format_short(buf, sizeof(buf), &r);
    assert_string_equal(buf, "library/" HEX64);
    assert_int_equal(berth_ref_parse(&r, "library/" HEX64), 0);
    berth_ref_format_short(buf, sizeof(buf), &r);
    assert_string_equal(buf, HEX64 ":latest");
}

static void test_hosts(void **state)
{
    (void)state;
    assert_string_equal(berth_ref_api_host("docker.io"), "registry-1.docker.io");
    assert_string_equal(berth_ref_api_host("index.docker.io"), "registry-1.docker.io");
    assert_string_equal(berth_ref_api_host("ghcr.io"), "ghcr.io");
    assert_string_equal(berth_ref_api_host("127.0.0.1:5000"), "127.0.0.1:5000");

    assert_true(berth_registry_is_local("localhost"));
    assert_true(berth_registry_is_local("localhost:5000"));
    assert_true(berth_registry_is_local("LocalHost:5000"));
    assert_true(berth_registry_is_local("127.0.0.1:5000"));
    assert_true(berth_registry_is_local("127.1.2.3"));
    assert_true(berth_registry_is_local("[::1]:5000"));
    assert_true(berth_registry_is_local("[::1]"));
    assert_true(berth_registry_is_local("::1"));
    assert_false(berth_registry_is_local("128.0.0.1:5000"));
    assert_false(berth_registry_is_local("127.0.0.1.example.com"));
    assert_false(berth_registry_is_local("localhost.example.com:5000"));
    assert_false(berth_registry_is_local("[::2]:5000"));
    assert_false(berth_registry_is_local("docker.io"));
    assert_false(berth_registry_is_local("10.0.0.1:5000"));
    assert_false(berth_registry_is_local(""));
    assert_false(berth_registry_is_local(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_messages), cmocka_unit_test(test_length),
        cmocka_unit_test(test_notag),  cmocka_unit_test(test_format),
        cmocka_unit_test(test_hosts),
    };

    return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}

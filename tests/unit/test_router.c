/*
 * Unit tests for src/server/router.c's berth_route_match, table-driven: every
 * row of the route table, the query arguments that pick between rows, anchors
 * inside names, trailing slashes, `//`, `..`, already percent-decoded bytes,
 * 255/256-byte names, upload ids, wrong methods (405) and unknown paths (404).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "server/http.h"
#include "server/router.h"

#define D256 "sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D512 "sha512:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Query arguments present, as bits. */
enum { A_MOUNT = 1, A_DIGEST = 2, A_N = 4, A_ARTIFACT = 8, A_LAST = 16 };

static int has_arg(void *ctx, const char *key)
{
    static const char *const keys[] = { "mount", "digest", "n", "artifactType", "last" };
    unsigned bits = *(const unsigned *)ctx;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(key, keys[i]))
            return (bits >> i) & 1;
    return 0;
}

struct rcase {
    unsigned method;
    const char *path;
    unsigned args;
    unsigned status;         /* 0: matched */
    const char *id;          /* matched row, or NULL */
    enum berth_oci_code oci; /* on failure */
    const char *name;        /* matched name, or NULL for none */
    const char *ref;         /* matched reference, or NULL for none */
};

static const struct rcase cases[] = {
    /* every row */
    { M_GET, "/v2/", 0, 0, "end-1", 0, NULL, NULL },
    { M_HEAD, "/v2", 0, 0, "end-1", 0, NULL, NULL },
    { M_GET, "/v2/a/blobs/" D256, 0, 0, "end-2", 0, "a", D256 },
    { M_HEAD, "/v2/a/b/blobs/" D512, 0, 0, "end-2", 0, "a/b", D512 },
    { M_DELETE, "/v2/a/blobs/" D256, 0, 0, "end-10", 0, "a", D256 },
    { M_GET, "/v2/a/manifests/latest", 0, 0, "end-3", 0, "a", "latest" },
    { M_HEAD, "/v2/a/manifests/" D256, 0, 0, "end-3", 0, "a", D256 },
    { M_PUT, "/v2/a/manifests/v1.0", 0, 0, "end-7", 0, "a", "v1.0" },
    { M_DELETE, "/v2/a/manifests/" D256, 0, 0, "end-9", 0, "a", D256 },
    { M_POST, "/v2/a/blobs/uploads/", A_MOUNT, 0, "end-11", 0, "a", NULL },
    { M_POST, "/v2/a/blobs/uploads/", A_MOUNT | A_DIGEST, 0, "end-11", 0, "a", NULL },
    { M_POST, "/v2/a/blobs/uploads/", A_DIGEST, 0, "end-4b", 0, "a", NULL },
    { M_POST, "/v2/a/blobs/uploads/", 0, 0, "end-4a", 0, "a", NULL },
    { M_POST, "/v2/a/blobs/uploads", 0, 0, "end-4a", 0, "a", NULL },
    { M_PATCH, "/v2/a/blobs/uploads/abc-DEF_123", 0, 0, "end-5", 0, "a", "abc-DEF_123" },
    { M_PUT, "/v2/a/blobs/uploads/u1", A_DIGEST, 0, "end-6", 0, "a", "u1" },
    { M_GET, "/v2/a/blobs/uploads/u1", 0, 0, "end-13", 0, "a", "u1" },
    { M_DELETE, "/v2/a/blobs/uploads/u1", 0, 0, "end-14", 0, "a", "u1" },
    { M_GET, "/v2/a/tags/list", A_N, 0, "end-8b", 0, "a", NULL },
    { M_GET, "/v2/a/tags/list", A_LAST, 0, "end-8a", 0, "a", NULL },
    { M_GET, "/v2/a/referrers/" D256, A_ARTIFACT, 0, "end-12b", 0, "a", D256 },
    { M_GET, "/v2/a/referrers/" D256, A_N, 0, "end-12a", 0, "a", D256 },
    { M_GET, "/v2/_catalog", A_N | A_LAST, 0, "catalog", 0, NULL, NULL },
    /* anchors inside names: the rightmost one decides */
    { M_GET, "/v2/a/blobs/b/manifests/x", 0, 0, "end-3", 0, "a/blobs/b", "x" },
    { M_GET, "/v2/a/manifests/b/blobs/" D256, 0, 0, "end-2", 0, "a/manifests/b", D256 },
    { M_GET, "/v2/a/tags/list/manifests/t", 0, 0, "end-3", 0, "a/tags/list", "t" },
    { M_GET, "/v2/x/blobs/uploads/blobs/" D256, 0, 0, "end-2", 0, "x/blobs/uploads", D256 },
    { M_GET, "/v2/a/referrers/b/tags/list", 0, 0, "end-8a", 0, "a/referrers/b", NULL },
    { M_GET, "/v2/a/manifests/tags/list", 0, 0, "end-8a", 0, "a/manifests", NULL },
    { M_POST, "/v2/a/manifests/m/blobs/uploads/", 0, 0, "end-4a", 0, "a/manifests/m", NULL },
    { M_GET, "/v2/_catalog/tags/list", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/catalog/tags/list", 0, 0, "end-8a", 0, "catalog", NULL },
    /* trailing slashes */
    { M_GET, "/v2/a/tags/list/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/manifests/x/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/blobs/" D256 "/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/_catalog/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_PATCH, "/v2/a/blobs/uploads/u1/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/manifests/", 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL },
    { M_GET, "/v2/a/blobs/", 0, 400, NULL, BERTH_OCI_DIGEST_INVALID, NULL, NULL },
    /* empty components */
    { M_GET, "/v2//a/manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a//b/manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests//x", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2//manifests/x", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "//v2/", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    /* dot segments are never resolved, only refused */
    { M_GET, "/v2/../a/manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/../manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/./b/tags/list", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests/..", 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL },
    { M_GET, "/v2/a/blobs/..", 0, 400, NULL, BERTH_OCI_DIGEST_INVALID, NULL, NULL },
    { M_GET, "/v2/a/blobs/uploads/..", 0, 404, NULL, BERTH_OCI_BLOB_UPLOAD_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/../v2/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    /* percent-decoded bytes (http.c decodes before routing): what %2F, %20, %25,
     * %3A became, or a '%' that was left over */
    { M_GET, "/v2/a/b/manifests/x", 0, 0, "end-3", 0, "a/b", "x" },
    { M_GET, "/v2/a b/manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a%2fb/manifests/x", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests/x y", 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests/x%", 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests/sha256:xyz", 0, 400, NULL, BERTH_OCI_DIGEST_INVALID, NULL, NULL },
    { M_GET, "/v2/a/manifests/\xc3\xa9", 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL },
    { M_GET, "/v2/\xc3\xa9/tags/list", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/A/tags/list", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_GET, "/v2/a/blobs/sha256:ZZ", 0, 400, NULL, BERTH_OCI_DIGEST_INVALID, NULL, NULL },
    { M_GET, "/v2/a/referrers/latest", 0, 400, NULL, BERTH_OCI_DIGEST_INVALID, NULL, NULL },
    { M_PATCH, "/v2/a/blobs/uploads/a.b", 0, 404, NULL, BERTH_OCI_BLOB_UPLOAD_UNKNOWN, NULL,
      NULL },
    /* wrong methods: 405 before any name check */
    { M_POST, "/v2/", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_DELETE, "/v2/_catalog", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_PATCH, "/v2/a/blobs/" D256, 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_POST, "/v2/a/manifests/x", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_POST, "/v2/A/manifests/x", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/v2/a/blobs/uploads/", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_PUT, "/v2/a/blobs/uploads/", A_DIGEST, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_POST, "/v2/a/blobs/uploads/u1", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_PUT, "/v2/a/tags/list", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_DELETE, "/v2/a/referrers/" D256, 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_OTHER, "/v2/a/manifests/x", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { 0, "/v2/", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    /* unknown paths */
    { M_GET, "", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/v1/", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/v2x/", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/V2/", 0, 404, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_GET, "/v2/a", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/b/c", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/manifests/x", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/tags", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/tags/list2", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/_catalogx", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/a/blobs/uploads/x/y", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    /* berth's own endpoints under /v2/_berth/: no repository name starts with
     * '_', so they can never shadow one */
    { M_POST, "/v2/_berth/gc", 0, 0, "gc-run", 0, NULL, NULL },
    { M_GET, "/v2/_berth/gc", 0, 0, "gc-stat", 0, NULL, NULL },
    { M_HEAD, "/v2/_berth/gc", 0, 0, "gc-stat", 0, NULL, NULL },
    { M_DELETE, "/v2/_berth/gc", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_DELETE, "/v2/_berth/repositories/a", 0, 0, "repo-rm", 0, "a", NULL },
    { M_DELETE, "/v2/_berth/repositories/team-a/app", 0, 0, "repo-rm", 0, "team-a/app", NULL },
    /* a repository named like an API path is still just a name here */
    { M_DELETE, "/v2/_berth/repositories/a/manifests/x", 0, 0, "repo-rm", 0, "a/manifests/x",
      NULL },
    { M_GET, "/v2/_berth/repositories/a", 0, 405, NULL, BERTH_OCI_UNSUPPORTED, NULL, NULL },
    { M_DELETE, "/v2/_berth/repositories/A", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_DELETE, "/v2/_berth/repositories/a/", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
    { M_DELETE, "/v2/_berth/repositories/../a", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL,
      NULL },
    { M_DELETE, "/v2/_berth/repositories/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_DELETE, "/v2/_berth/repositories", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_POST, "/v2/_berth/gc/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_POST, "/v2/_berth/gcx", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/_berth/", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/_berth", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    { M_GET, "/v2/_berth/gc/tags/list", 0, 404, NULL, BERTH_OCI_NAME_UNKNOWN, NULL, NULL },
    /* the anchors of the spec still win for repositories whose name merely
     * contains "_berth" further in */
    { M_GET, "/v2/a/_berth/gc/tags/list", 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL },
};

static void check_case(const struct rcase *c, const char *path, size_t len)
{
    struct berth_route_match m;
    unsigned args = c->args;
    int rc = berth_route_match(c->method, path, len, has_arg, &args, &m);

    if (!c->status) {
        if (rc != 0)
            fail_msg("%s: refused %u %s (%s)", path, m.status, berth_oci_code_str(m.oci),
                     m.msg ? m.msg : "");
        assert_non_null(m.route);
        if (strcmp(m.route->id, c->id))
            fail_msg("%s: row %s, want %s", path, m.route->id, c->id);
        if (c->name) {
            assert_int_equal(m.name_len, strlen(c->name));
            assert_memory_equal(m.name, c->name, m.name_len);
        } else {
            assert_null(m.name);
        }
        if (c->ref) {
            assert_int_equal(m.ref_len, strlen(c->ref));
            assert_memory_equal(m.ref, c->ref, m.ref_len);
            assert_true(m.ref >= path && m.ref + m.ref_len <= path + len);
        } else {
            assert_null(m.ref);
        }
        return;
    }
    if (rc != -1 || m.route)
        fail_msg("%s: matched %s, want %u", path, m.route ? m.route->id : "?", c->status);
    if (m.status != c->status || m.oci != c->oci)
        fail_msg("%s: %u %s, want %u %s", path, m.status, berth_oci_code_str(m.oci), c->status,
                 berth_oci_code_str(c->oci));
    assert_non_null(m.msg);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i], cases[i].path, strlen(cases[i].path));
}

/* Every row of the route table is reached by some case above. */
static void test_every_row(void **state)
{
    static const char *const ids[] = {
        "end-1",  "end-2",  "end-3",   "end-4a",  "end-4b", "end-5",
        "end-6",  "end-7",  "end-8a",  "end-8b",  "end-9",  "end-10",
        "end-11", "end-13", "end-14",  "end-12a", "end-12b", "catalog",
        "gc-run", "gc-stat", "repo-rm",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int seen = 0;

        for (size_t j = 0; j < sizeof(cases) / sizeof(cases[0]) && !seen; j++)
            seen = cases[j].id && !strcmp(cases[j].id, ids[i]);
        if (!seen)
            fail_msg("no case for %s", ids[i]);
    }
}

/* The access column of berth's own rows: gc needs admin, deleting a
 * repository the delete action on it. */
static void test_admin_access(void **state)
{
    struct berth_route_match m;
    const char *p = "/v2/_berth/gc";

    (void)state;
    assert_int_equal(berth_route_match(M_POST, p, strlen(p), NULL, NULL, &m), 0);
    assert_int_equal(m.route->access, ADMIN);
    assert_int_equal(berth_route_match(M_GET, p, strlen(p), NULL, NULL, &m), 0);
    assert_int_equal(m.route->access, ADMIN);
    p = "/v2/_berth/repositories/a/b";
    assert_int_equal(berth_route_match(M_DELETE, p, strlen(p), NULL, NULL, &m), 0);
    assert_int_equal(m.route->access, DEL);
}

static void test_name_lengths(void **state)
{
    char path[600], name[300];
    struct rcase c = { M_GET, path, 0, 0, "end-8a", 0, name, NULL };

    (void)state;
    memset(name, 'a', 255);
    name[255] = '\0';
    snprintf(path, sizeof(path), "/v2/%s/tags/list", name);
    check_case(&c, path, strlen(path));

    /* 255 with slashes: a/a/a/... */
    for (size_t i = 1; i < 255; i += 2)
        name[i] = '/';
    snprintf(path, sizeof(path), "/v2/%s/manifests/t", name);
    c.id = "end-3";
    c.ref = "t";
    check_case(&c, path, strlen(path));

    memset(name, 'a', 256);
    name[256] = '\0';
    snprintf(path, sizeof(path), "/v2/%s/tags/list", name);
    c = (struct rcase){ M_GET, path, 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL };
    check_case(&c, path, strlen(path));
    /* a too long name is still a 405 first when the method is wrong */
    c.method = M_POST;
    c.status = 405;
    c.oci = BERTH_OCI_UNSUPPORTED;
    check_case(&c, path, strlen(path));
}

static void test_ref_lengths(void **state)
{
    char path[600], ref[200];
    struct rcase c = { M_GET, path, 0, 0, "end-3", 0, "a", ref };

    (void)state;
    memset(ref, 'T', 128);
    ref[128] = '\0';
    snprintf(path, sizeof(path), "/v2/a/manifests/%s", ref);
    check_case(&c, path, strlen(path));
    strcat(path, "T");
    c = (struct rcase){ M_GET, path, 0, 400, NULL, BERTH_OCI_TAG_INVALID, NULL, NULL };
    check_case(&c, path, strlen(path));

    /* upload ids: < BERTH_UPLOAD_ID_MAX (40) characters */
    memset(ref, 'u', 39);
    ref[39] = '\0';
    snprintf(path, sizeof(path), "/v2/a/blobs/uploads/%s", ref);
    c = (struct rcase){ M_GET, path, 0, 0, "end-13", 0, "a", ref };
    check_case(&c, path, strlen(path));
    strcat(path, "u");
    c = (struct rcase){ M_GET, path, 0, 404, NULL, BERTH_OCI_BLOB_UPLOAD_UNKNOWN, NULL, NULL };
    check_case(&c, path, strlen(path));
}

/* The length given is what counts: no reading past it, NULs are refused. */
static void test_explicit_length(void **state)
{
    static const char nul_name[] = "/v2/a\0b/manifests/x";
    static const char nul_tag[] = "/v2/a/manifests/x\0y";
    struct rcase c = { M_GET, NULL, 0, 400, NULL, BERTH_OCI_NAME_INVALID, NULL, NULL };
    const char *p = "/v2/a/manifests/xyz-and-more";
    struct berth_route_match m;

    (void)state;
    c.path = nul_name;
    check_case(&c, nul_name, sizeof(nul_name) - 1);
    c.path = nul_tag;
    c.oci = BERTH_OCI_TAG_INVALID;
    check_case(&c, nul_tag, sizeof(nul_tag) - 1);

    c = (struct rcase){ M_GET, p, 0, 0, "end-3", 0, "a", "xyz" };
    check_case(&c, p, 19);
    assert_int_equal(berth_route_match(M_GET, p, 2, NULL, NULL, &m), -1);
    assert_int_equal(m.status, 404);
    assert_int_equal(berth_route_match(M_GET, NULL, 0, NULL, NULL, &m), -1);
    assert_int_equal(m.status, 404);
}

/* Without a has_arg callback no query-selected row matches. */
static void test_no_args(void **state)
{
    struct berth_route_match m;

    (void)state;
    assert_int_equal(berth_route_match(M_POST, "/v2/a/blobs/uploads/", 20, NULL, NULL, &m), 0);
    assert_string_equal(m.route->id, "end-4a");
    assert_int_equal(berth_route_match(M_GET, "/v2/a/tags/list", 15, NULL, NULL, &m), 0);
    assert_string_equal(m.route->id, "end-8a");
}

/* The parsed digest is filled for digest references only. */
static void test_digest_out(void **state)
{
    struct berth_route_match m;
    const char *p = "/v2/a/manifests/" D256;

    (void)state;
    assert_int_equal(berth_route_match(M_GET, p, strlen(p), NULL, NULL, &m), 0);
    assert_true(m.ref_is_digest);
    assert_string_equal(m.digest.str, D256);
    p = "/v2/a/manifests/latest";
    assert_int_equal(berth_route_match(M_GET, p, strlen(p), NULL, NULL, &m), 0);
    assert_false(m.ref_is_digest);
    p = "/v2/a/referrers/" D512;
    assert_int_equal(berth_route_match(M_GET, p, strlen(p), NULL, NULL, &m), 0);
    assert_true(m.ref_is_digest);
    assert_int_equal(m.digest.algo, BERTH_SHA512);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_every_row),
        cmocka_unit_test(test_name_lengths),  cmocka_unit_test(test_ref_lengths),
        cmocka_unit_test(test_explicit_length), cmocka_unit_test(test_no_args),
        cmocka_unit_test(test_digest_out),    cmocka_unit_test(test_admin_access),
    };

    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}

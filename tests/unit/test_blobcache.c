/*
 * Unit tests for the client's blob location cache (src/client/blobcache.c):
 * add and look up (most recent repository first, at most four), save and
 * load back, the entry cap (oldest dropped), a corrupt file read as empty
 * and rewritten, the default path from XDG_CACHE_HOME / HOME, the
 * BERTH_NO_BLOB_CACHE switch, and concurrent writers leaving a whole file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client/blobcache.h"
#include "client/image_int.h"
#include "core/error.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

struct fixture {
    char dir[256];
    char path[320];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(berth_tmpdir(f->dir, sizeof(f->dir)), 0);
    snprintf(f->path, sizeof(f->path), "%s/sub/blobs.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    berth_rmtree(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_empty_lookup(void **state)
{
    struct fixture *f = *state;
    struct berth_blobcache *c = NULL;
    char repos[4][BERTH_BLOBCACHE_NAME];

    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 4), 0);
    /* nothing changed: nothing written */
    assert_int_equal(berth_blobcache_save(c), 0);
    assert_int_equal(access(f->path, F_OK), -1);
    berth_blobcache_free(c);
    berth_blobcache_free(NULL);
}

static void test_add_order_and_limit(void **state)
{
    struct fixture *f = *state;
    struct berth_blobcache *c = NULL;
    char repos[4][BERTH_BLOBCACHE_NAME];

    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "a/x"), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "b/y"), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 4), 2);
    assert_string_equal(repos[0], "b/y");
    assert_string_equal(repos[1], "a/x");
    /* seen again: moves to the front, no duplicate */
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "a/x"), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 4), 2);
    assert_string_equal(repos[0], "a/x");
    assert_string_equal(repos[1], "b/y");
    /* at most four, most recent first */
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "c"), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "d"), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "e"), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 4), 4);
    assert_string_equal(repos[0], "e");
    assert_string_equal(repos[3], "a/x");
    /* the caller's max is honoured */
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 1), 1);
    /* other registry, other digest: separate entries */
    assert_int_equal(berth_blobcache_lookup(c, "other:5000", D1, repos, 4), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D2, repos, 4), 0);
    berth_blobcache_free(c);
}

static void test_save_and_load(void **state)
{
    struct fixture *f = *state;
    struct berth_blobcache *c = NULL;
    char repos[4][BERTH_BLOBCACHE_NAME];

    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "a/x"), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D1, "b/y"), 0);
    assert_int_equal(berth_blobcache_add(c, "h:5000", D2, "a/x"), 0);
    assert_int_equal(berth_blobcache_save(c), 0);
    berth_blobcache_free(c);

    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D1, repos, 4), 2);
    assert_string_equal(repos[0], "b/y");
    assert_string_equal(repos[1], "a/x");
    assert_int_equal(berth_blobcache_lookup(c, "h:5000", D2, repos, 4), 1);
    assert_string_equal(repos[0], "a/x");
    berth_blobcache_free(c);
}

static void test_cap_drops_oldest(void **state)
{
    struct fixture *f = *state;
    struct berth_blobcache *c = NULL;
    char repos[4][BERTH_BLOBCACHE_NAME], dg[80];
    json_t *root;

    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    for (int i = 0; i < BERTH_BLOBCACHE_MAX + 5; i++) {
        snprintf(dg, sizeof(dg), "sha256:%064d", i);
        assert_int_equal(berth_blobcache_add(c, "h", dg, "r"), 0);
        if (i == 6) { /* touch entry 0 again: now newer than 1..6 */
            snprintf(dg, sizeof(dg), "sha256:%064d", 0);
            assert_int_equal(berth_blobcache_add(c, "h", dg, "r2"), 0);
        }
    }
    /* entries 1..5 went first; 0 was touched after them */
    snprintf(dg, sizeof(dg), "sha256:%064d", 1);
    assert_int_equal(berth_blobcache_lookup(c, "h", dg, repos, 4), 0);
    snprintf(dg, sizeof(dg), "sha256:%064d", 0);
    assert_int_equal(berth_blobcache_lookup(c, "h", dg, repos, 4), 2);
    assert_string_equal(repos[0], "r2");
    snprintf(dg, sizeof(dg), "sha256:%064d", BERTH_BLOBCACHE_MAX + 4);
    assert_int_equal(berth_blobcache_lookup(c, "h", dg, repos, 4), 1);
    assert_int_equal(berth_blobcache_save(c), 0);
    berth_blobcache_free(c);

    root = json_load_file(f->path, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_object_size(json_object_get(root, "blobs")), BERTH_BLOBCACHE_MAX);
    json_decref(root);
}

static void test_corrupt_file(void **state)
{
    static const char *bad[] = {
        "{\"version\":1,\"blobs\":{\"h sha256:x\":[\"a\"", /* truncated */
        "\x01\x02garbage",
        "[]",
        "{\"version\":99,\"blobs\":{}}",
        "{\"version\":1,\"blobs\":[1,2]}",
    };
    struct fixture *f = *state;
    char repos[4][BERTH_BLOBCACHE_NAME];

    assert_int_equal(berth_mkdir_p(f->dir), 0);
    snprintf(f->path, sizeof(f->path), "%s/blobs.json", f->dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct berth_blobcache *c = NULL;

        write_file(f->path, bad[i]);
        assert_int_equal(berth_blobcache_open(&c, f->path), 0);
        assert_int_equal(berth_blobcache_lookup(c, "h", "sha256:x", repos, 4), 0);
        assert_int_equal(berth_blobcache_add(c, "h", D1, "a"), 0);
        assert_int_equal(berth_blobcache_save(c), 0);
        berth_blobcache_free(c);
        /* rewritten whole */
        assert_int_equal(berth_blobcache_open(&c, f->path), 0);
        assert_int_equal(berth_blobcache_lookup(c, "h", D1, repos, 4), 1);
        berth_blobcache_free(c);
    }
    /* ill-typed entries are dropped, good ones kept */
    {
        struct berth_blobcache *c = NULL;

        write_file(f->path, "{\"version\":1,\"blobs\":{\"h " D1 "\":[\"ok\",7,\"\"],"
                            "\"h " D2 "\":\"no\",\"nospace\":[\"a\"]}}");
        assert_int_equal(berth_blobcache_open(&c, f->path), 0);
        assert_int_equal(berth_blobcache_lookup(c, "h", D1, repos, 4), 1);
        assert_string_equal(repos[0], "ok");
        assert_int_equal(berth_blobcache_lookup(c, "h", D2, repos, 4), 0);
        berth_blobcache_free(c);
    }
}

static void test_default_path_and_switch(void **state)
{
    char p[512];

    (void)state;
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    assert_int_equal(berth_blobcache_default_path(p, sizeof(p)), 0);
    assert_string_equal(p, "/x/cache/berth/blobs.json");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(berth_blobcache_default_path(p, sizeof(p)), 0);
    assert_string_equal(p, "/home/u/.cache/berth/blobs.json");
    assert_int_equal(berth_blobcache_default_path(p, 10), BERTH_EINVALID);
    unsetenv("HOME");
    assert_int_equal(berth_blobcache_default_path(p, sizeof(p)), BERTH_ENOTFOUND);

    unsetenv("BERTH_NO_BLOB_CACHE");
    assert_int_equal(berth_blobcache_enabled(), 1);
    setenv("BERTH_NO_BLOB_CACHE", "0", 1);
    assert_int_equal(berth_blobcache_enabled(), 1);
    setenv("BERTH_NO_BLOB_CACHE", "1", 1);
    assert_int_equal(berth_blobcache_enabled(), 0);
    unsetenv("BERTH_NO_BLOB_CACHE");
}

/* Several processes load, add and save over and over: whoever renames last
 * wins, and the file is always one whole, valid cache. */
static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    enum { WRITERS = 4, ROUNDS = 40 };
    pid_t pids[WRITERS];
    struct berth_blobcache *c = NULL;
    char repos[4][BERTH_BLOBCACHE_NAME];
    json_t *root;

    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            for (int i = 0; i < ROUNDS; i++) {
                struct berth_blobcache *cc = NULL;
                char repo[32], dg[80];

                snprintf(repo, sizeof(repo), "w%d/r%d", w, i);
                snprintf(dg, sizeof(dg), "sha256:%064d", w * 1000 + i);
                if (berth_blobcache_open(&cc, f->path) < 0 ||
                    berth_blobcache_add(cc, "h", D1, repo) < 0 ||
                    berth_blobcache_add(cc, "h", dg, repo) < 0 || berth_blobcache_save(cc) < 0)
                    _exit(1);
                berth_blobcache_free(cc);
            }
            _exit(0);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int st = 0;

        assert_int_equal(waitpid(pids[w], &st, 0), pids[w]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    root = json_load_file(f->path, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);
    json_decref(root);
    assert_int_equal(berth_blobcache_open(&c, f->path), 0);
    assert_true(berth_blobcache_lookup(c, "h", D1, repos, 4) >= 1);
    berth_blobcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_order_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test(test_default_path_and_switch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

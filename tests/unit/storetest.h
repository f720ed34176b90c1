/* Shared scaffolding of the unit tests that run on a real store (test_store,
 * test_gc, test_fsck, test_rules): OCI media types, a fresh store in a
 * mkdtemp directory, blob pushes and manifest puts. Header only: every test
 * file is its own binary (Makefile), and every function is static inline so
 * that a file which does not use one still builds with -Werror. */
#ifndef BERTH_TESTS_STORETEST_H
#define BERTH_TESTS_STORETEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define MT_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_IMAGE "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"

/* A store of a test, in a directory of its own. */
struct storetest {
    char dir[64];
    struct berth_store *st;
};

/* (Re)open the store in t->dir, without fsync; 0 or the error. */
static inline int storetest_open_store(struct storetest *t)
{
    struct berth_store_config cfg = { .root = t->dir, .no_fsync = 1 };

    return berth_store_open(&t->st, &cfg);
}

/* A new directory `prefix`XXXXXX (e.g. "/tmp/berth-gc-") and a store in it;
 * 0, or -1 with nothing left behind. */
static inline int storetest_open(struct storetest *t, const char *prefix)
{
    t->st = NULL;
    if (snprintf(t->dir, sizeof(t->dir), "%sXXXXXX", prefix) >= (int)sizeof(t->dir) ||
        !mkdtemp(t->dir))
        return -1;
    if (storetest_open_store(t) < 0) {
        rmdir(t->dir);
        return -1;
    }
    return 0;
}

static inline int storetest_rm_entry(const char *path, const struct stat *sb, int flag,
                                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Close the store (if open) and remove its directory. */
static inline void storetest_close(struct storetest *t)
{
    berth_store_free(t->st);
    t->st = NULL;
    nftw(t->dir, storetest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline struct berth_digest digest_of(const void *buf, size_t len)
{
    struct berth_digest d;

    assert_int_equal(berth_digest_buf(&d, BERTH_SHA256, buf, len), 0);
    return d;
}

/* Monolithic push of a blob into repo through the upload API; its digest. */
static inline struct berth_digest push_blob(struct berth_store *st, const char *repo,
                                            const char *data)
{
    struct berth_digest d = digest_of(data, strlen(data));
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u;
    uint64_t size = 0;

    assert_int_equal(berth_upload_new(st, repo, id), 0);
    assert_int_equal(berth_upload_open(&u, st, repo, id, 0), 0);
    assert_int_equal(berth_upload_write(u, data, strlen(data)), 0);
    assert_int_equal(berth_upload_commit(u, &d, &size), 0);
    assert_int_equal(size, strlen(data));
    return d;
}

/* An OCI image index over n image manifests (each said to be 100 bytes);
 * malloc'ed. */
static inline char *index_json(const struct berth_digest *children, size_t n)
{
    size_t cap = 256 + n * 160, len, i;
    char *s = malloc(cap);

    assert_non_null(s);
    len = (size_t)snprintf(s, cap,
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":[");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"mediaType\":\"" MT_IMAGE "\",\"digest\":\"%s\",\"size\":100}",
                                i ? "," : "", children[i].str);
    len += (size_t)snprintf(s + len, cap - len, "]}");
    assert_true(len < cap);
    return s;
}

/* Parse json (freed) and store it in repo under tag (NULL: by digest), each
 * tag move going through `guard` (NULL: none); the error of the put, the
 * digest in *out (may be NULL). */
static inline int put_json_guarded(struct berth_store *st, const char *repo, const char *tag,
                                   char *json,
                                   int (*guard)(void *ctx, const char *repo, const char *tag,
                                                const char *old_digest),
                                   void *guard_ctx, struct berth_digest *out)
{
    struct berth_manifest *m = NULL;
    struct berth_manifest_put req = { 0 };
    struct berth_digest d = digest_of(json, strlen(json));
    int error;

    assert_int_equal(berth_manifest_parse(&m, NULL, (const uint8_t *)json, strlen(json)), 0);
    req.repo = repo;
    req.tag = tag;
    req.m = m;
    req.body = (const uint8_t *)json;
    req.len = strlen(json);
    req.digest = &d;
    req.tag_guard = guard;
    req.guard_ctx = guard_ctx;
    error = berth_store_manifest_put(st, &req);
    berth_manifest_free(m);
    free(json);
    if (out)
        *out = d;
    return error;
}

/* put_json_guarded without a guard. */
static inline int put_json(struct berth_store *st, const char *repo, const char *tag, char *json,
                           struct berth_digest *out)
{
    return put_json_guarded(st, repo, tag, json, NULL, NULL, out);
}

#endif

/* Unit tests for src/store: upload sessions (chunks, rollback, ranges,
 * exclusive hold, restart, digest mismatch, sha512, 8 concurrent commits of
 * one blob), blob links and mounts, manifests and tags, listing and paging,
 * referrers and purge. Each test gets a fresh store in a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "store/maint.h"
#include "store/store.h"
#include "storetest.h"

struct fixture {
    struct storetest t;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f || storetest_open(&f->t, "/tmp/berth-store-") < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    storetest_close(&f->t);
    free(f);
    return 0;
}

static struct berth_digest parse_digest(const char *s)
{
    struct berth_digest d;

    assert_int_equal(berth_digest_parse(&d, s, strlen(s)), 0);
    return d;
}

static size_t count_files(const char *dir)
{
    struct dirent *de;
    size_t n = 0;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

static size_t count_uploads(const struct fixture *f)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/uploads", f->t.dir);
    return count_files(path);
}

/* ---- uploads ---- */

static void test_upload_chunks(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = digest_of("hello world", 11);
    char id[BERTH_UPLOAD_ID_MAX], buf[32];
    struct berth_upload *u;
    uint64_t off = 99, size = 0;
    int fd;

    assert_int_equal(berth_upload_new(f->t.st, "lib/a", id), 0);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_int_equal(berth_store_repo_exists(f->t.st, "lib/a"), 1);
    assert_int_equal(berth_upload_offset(f->t.st, "lib/a", id, &off), 0);
    assert_int_equal(off, 0);

    assert_int_equal(berth_upload_open(&u, f->t.st, "lib/a", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "hello ", 6), 0);
    assert_int_equal(berth_upload_size(u), 6);
    assert_int_equal(berth_upload_close(u, 1), 0);
    assert_int_equal(berth_upload_offset(f->t.st, "lib/a", id, &off), 0);
    assert_int_equal(off, 6);

    /* another repository does not see the session */
    assert_int_equal(berth_upload_offset(f->t.st, "lib/b", id, &off), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(berth_upload_open(&u, f->t.st, "lib/b", id, -1), BERTH_ENOTFOUND);
    /* ids are never paths */
    assert_int_equal(berth_upload_offset(f->t.st, "lib/a", "../berth.db", &off), BERTH_ENOTFOUND);

    assert_int_equal(berth_upload_open(&u, f->t.st, "lib/a", id, -1), 0);
    assert_int_equal(berth_upload_size(u), 6);
    assert_int_equal(berth_upload_write(u, "world", 5), 0);
    assert_int_equal(berth_upload_commit(u, &d, &size), 0);
    assert_int_equal(size, 11);

    assert_int_equal(berth_upload_offset(f->t.st, "lib/a", id, &off), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_stat(f->t.st, "lib/a", &d, &size), 0);
    assert_int_equal(size, 11);
    assert_int_equal(berth_store_blob_open(f->t.st, "lib/a", &d, &fd, &size), 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 11);
    assert_memory_equal(buf, "hello world", 11);
    close(fd);
    assert_int_equal(count_uploads(f), 0);
}

static void test_upload_mismatch(void **state)
{
    struct fixture *f = *state;
    struct berth_digest wrong = digest_of("other", 5), right = digest_of("data", 4);
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u;
    uint64_t off, size;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "data", 4), 0);
    assert_int_equal(berth_upload_commit(u, &wrong, NULL), BERTH_EMISMATCH);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DIGEST_INVALID);
    assert_non_null(strstr(berth_error_msg(), right.str));
    assert_non_null(strstr(berth_error_msg(), wrong.str));
    assert_int_equal(berth_upload_offset(f->t.st, "r", id, &off), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &wrong, &size), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &right, &size), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UNKNOWN);
    assert_int_equal(count_uploads(f), 0);
}

static void test_upload_sha512(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d, d256 = digest_of("sha512 data", 11);
    char id[BERTH_UPLOAD_ID_MAX], path[256];
    struct berth_upload *u;
    uint64_t size;

    assert_int_equal(berth_digest_buf(&d, BERTH_SHA512, (const uint8_t *)"sha512 data", 11), 0);
    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "sha512 ", 7), 0);
    assert_int_equal(berth_upload_close(u, 1), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 7), 0);
    assert_int_equal(berth_upload_write(u, "data", 4), 0);
    assert_int_equal(berth_upload_commit(u, &d, &size), 0);
    assert_int_equal(size, 11);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &d, &size), 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &d256, &size), BERTH_ENOTFOUND);
    snprintf(path, sizeof(path), "%s/blobs/sha512/%.2s/%s", f->t.dir, berth_digest_hex(&d),
             berth_digest_hex(&d));
    assert_int_equal(access(path, F_OK), 0);
}

static void test_upload_rollback(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = digest_of("12345abc", 8);
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u;
    uint64_t off;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "12345", 5), 0);
    assert_int_equal(berth_upload_close(u, 1), 0);

    /* a broken request: its bytes vanish, hash state included */
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 5), 0);
    assert_int_equal(berth_upload_write(u, "XYZXYZ", 6), 0);
    assert_int_equal(berth_upload_close(u, 0), 0);
    assert_int_equal(berth_upload_offset(f->t.st, "r", id, &off), 0);
    assert_int_equal(off, 5);

    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 5), 0);
    assert_int_equal(berth_upload_write(u, "abc", 3), 0);
    assert_int_equal(berth_upload_commit(u, &d, NULL), 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &d, &off), 0);
    assert_int_equal(off, 8);
    assert_int_equal(berth_upload_close(NULL, 1), 0);
}

static void test_upload_range(void **state)
{
    struct fixture *f = *state;
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u;
    uint64_t off;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 3), BERTH_ERANGE);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_INVALID);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "abc", 3), 0);
    assert_int_equal(berth_upload_close(u, 1), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), BERTH_ERANGE);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 4), BERTH_ERANGE);
    /* session intact and not left held */
    assert_int_equal(berth_upload_offset(f->t.st, "r", id, &off), 0);
    assert_int_equal(off, 3);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 3), 0);
    assert_int_equal(berth_upload_close(u, 1), 0);
}

static void test_upload_busy(void **state)
{
    struct fixture *f = *state;
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u, *u2;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, -1), 0);
    assert_int_equal(berth_upload_open(&u2, f->t.st, "r", id, -1), BERTH_EDENIED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_INVALID);
    assert_int_equal(berth_upload_cancel(f->t.st, "r", id), BERTH_EDENIED);
    assert_int_equal(berth_upload_close(u, 1), 0);
    assert_int_equal(berth_upload_open(&u2, f->t.st, "r", id, -1), 0);
    assert_int_equal(berth_upload_close(u2, 0), 0);
    assert_int_equal(berth_upload_cancel(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_cancel(f->t.st, "r", id), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(count_uploads(f), 0);
}

static void test_upload_restart(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = digest_of("first-second", 12);
    char id[BERTH_UPLOAD_ID_MAX], path[256];
    struct berth_upload *u;
    uint64_t off;
    int fd;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 0), 0);
    assert_int_equal(berth_upload_write(u, "first-", 6), 0);
    assert_int_equal(berth_upload_close(u, 1), 0);

    /* a crash after writing more but before acknowledging it */
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, id);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "garbage", 7), 7);
    close(fd);

    berth_store_free(f->t.st);
    f->t.st = NULL;
    assert_int_equal(storetest_open_store(&f->t), 0);

    assert_int_equal(berth_upload_offset(f->t.st, "r", id, &off), 0);
    assert_int_equal(off, 6);
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id, 6), 0);
    assert_int_equal(berth_upload_write(u, "second", 6), 0);
    assert_int_equal(berth_upload_commit(u, &d, &off), 0);
    assert_int_equal(off, 12);
    assert_int_equal(berth_store_blob_stat(f->t.st, "r", &d, &off), 0);
}

struct pusher {
    struct berth_store *st;
    const char *id;
    const uint8_t *data;
    size_t len;
    const struct berth_digest *d;
    int result;
};

static void *push_thread(void *p)
{
    struct pusher *ps = p;
    struct berth_upload *u;
    size_t off;

    ps->result = berth_upload_open(&u, ps->st, "same/blob", ps->id, 0);
    if (ps->result < 0)
        return NULL;
    for (off = 0; off < ps->len && ps->result == 0; off += 4096)
        ps->result = berth_upload_write(u, ps->data + off, 4096);
    if (ps->result == 0)
        ps->result = berth_upload_commit(u, ps->d, NULL);
    else
        berth_upload_close(u, 0);
    return NULL;
}

static void test_upload_concurrent(void **state)
{
    enum { N = 8, LEN = 256 * 1024 };
    struct fixture *f = *state;
    char ids[N][BERTH_UPLOAD_ID_MAX], path[256];
    struct pusher ps[N];
    pthread_t th[N];
    struct berth_digest d;
    uint8_t *data = malloc(LEN);
    uint64_t size;
    size_t i;

    assert_non_null(data);
    for (i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    d = digest_of(data, LEN);
    for (i = 0; i < N; i++) {
        assert_int_equal(berth_upload_new(f->t.st, "same/blob", ids[i]), 0);
        ps[i] = (struct pusher){ f->t.st, ids[i], data, LEN, &d, -100 };
    }
    for (i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, push_thread, &ps[i]), 0);
    for (i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ps[i].result, 0);
    }
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s", f->t.dir, berth_digest_hex(&d));
    assert_int_equal(count_files(path), 1);
    assert_int_equal(count_uploads(f), 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "same/blob", &d, &size), 0);
    assert_int_equal(size, LEN);
    free(data);
}

static void test_purge(void **state)
{
    struct fixture *f = *state;
    char id[BERTH_UPLOAD_ID_MAX], id2[BERTH_UPLOAD_ID_MAX], path[256];
    const char *stray = "0123abcd-0000-4000-8000-000000000000";
    const char *young = "0123abcd-0000-4000-8000-000000000001";
    struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
    struct berth_upload *u;
    uint64_t off;
    int removed = -1, fd;

    assert_int_equal(berth_upload_new(f->t.st, "r", id), 0);
    assert_int_equal(berth_upload_new(f->t.st, "r", id2), 0);
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, stray);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, young);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(berth_upload_purge(f->t.st, 3600, &removed), 0);
    assert_int_equal(removed, 1); /* only the old stray file */
    assert_int_equal(count_uploads(f), 3);

    /* everything is stale now, except the session a request holds */
    assert_int_equal(berth_upload_open(&u, f->t.st, "r", id2, 0), 0);
    assert_int_equal(berth_upload_purge(f->t.st, -10, &removed), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(berth_upload_offset(f->t.st, "r", id, &off), BERTH_ENOTFOUND);
    assert_int_equal(berth_upload_close(u, 1), 0);
    assert_int_equal(berth_upload_offset(f->t.st, "r", id2, &off), 0);
    assert_int_equal(count_uploads(f), 2); /* id2 and the young stray */
}

/* ---- blobs ---- */

static void test_blob_links(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = push_blob(f->t.st, "a", "layer data");
    struct berth_digest none = digest_of("nothing", 7);
    uint64_t size;
    int fd;

    assert_int_equal(berth_store_blob_stat(f->t.st, "a", &d, &size), 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "b", &d, &size), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UNKNOWN);
    assert_int_equal(berth_store_blob_open(f->t.st, "b", &d, &fd, &size), BERTH_ENOTFOUND);
    assert_int_equal(fd, -1);
    assert_int_equal(berth_store_repo_exists(f->t.st, "b"), 0);

    assert_int_equal(berth_store_blob_mount(f->t.st, "b", "c", &d), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_mount(f->t.st, "b", "a", &none), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_repo_exists(f->t.st, "b"), 0);
    assert_int_equal(berth_store_blob_mount(f->t.st, "b", "a", &d), 0);
    assert_int_equal(berth_store_blob_mount(f->t.st, "b", "a", &d), 0);
    assert_int_equal(berth_store_repo_exists(f->t.st, "b"), 1);
    assert_int_equal(berth_store_blob_stat(f->t.st, "b", &d, &size), 0);
    assert_int_equal(size, 10);

    assert_int_equal(berth_store_blob_unlink(f->t.st, "b", &d), 0);
    assert_int_equal(berth_store_blob_unlink(f->t.st, "b", &d), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_unlink(f->t.st, "zzz", &d), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_stat(f->t.st, "b", &d, &size), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_blob_stat(f->t.st, "a", &d, &size), 0);

    /* the same blob pushed again to another repository is stored once */
    none = push_blob(f->t.st, "c", "layer data");
    assert_true(berth_digest_equal(&d, &none));
    assert_int_equal(berth_store_blob_stat(f->t.st, "c", &d, &size), 0);
}

/* ---- manifests ---- */

/* An OCI image manifest; layer may be NULL (no layers); subject may be NULL. */
static char *image_json(const struct berth_digest *config, const char *layer_mt,
                        const struct berth_digest *layer, const char *artifact_type,
                        const char *subject)
{
    char *s = NULL, layers[512] = "", extra[512] = "";

    if (layer)
        snprintf(layers, sizeof(layers), "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":10}",
                 layer_mt, layer->str);
    if (artifact_type)
        snprintf(extra, sizeof(extra), ",\"artifactType\":\"%s\"", artifact_type);
    if (subject) {
        size_t n = strlen(extra);

        snprintf(extra + n, sizeof(extra) - n,
                 ",\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                 "\"digest\":\"%s\",\"size\":100},\"annotations\":{\"k\":\"v\"}",
                 subject);
    }
    assert_true(asprintf(&s,
                         "{\"schemaVersion\":2,\"mediaType\":"
                         "\"application/vnd.oci.image.manifest.v1+json\","
                         "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\","
                         "\"size\":2},\"layers\":[%s]%s}",
                         config->str, layers, extra) > 0);
    return s;
}

/* A repository with one image: config + layer blobs and the manifest. */
static struct berth_digest put_image(struct berth_store *st, const char *repo, const char *tag,
                                     const char *layer_data)
{
    struct berth_digest c = push_blob(st, repo, "{}");
    struct berth_digest l = push_blob(st, repo, layer_data);
    struct berth_digest d;

    assert_int_equal(put_json(st, repo, tag, image_json(&c, MT_LAYER, &l, NULL, NULL), &d), 0);
    return d;
}

static void test_manifest_blob_unknown(void **state)
{
    struct fixture *f = *state;
    struct berth_digest c = push_blob(f->t.st, "a", "{}");
    struct berth_digest missing = digest_of("missing layer", 13);

    assert_int_equal(put_json(f->t.st, "new/repo", "v1", image_json(&c, MT_LAYER, &missing, NULL,
                                                                  NULL), NULL),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_BLOB_UNKNOWN);
    /* the config is in "a", not in "new/repo": that is what it names */
    assert_non_null(strstr(berth_error_msg(), c.str));
    assert_int_equal(berth_store_repo_exists(f->t.st, "new/repo"), 0);

    assert_int_equal(put_json(f->t.st, "a", "v1", image_json(&c, MT_LAYER, &missing, NULL, NULL),
                              NULL),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_BLOB_UNKNOWN);
    assert_non_null(strstr(berth_error_msg(), missing.str));
}

static void test_manifest_foreign_layer(void **state)
{
    struct fixture *f = *state;
    struct berth_digest c = push_blob(f->t.st, "win", "{}");
    struct berth_digest l = digest_of("windows base layer", 18);
    struct berth_manifest_info info;

    assert_int_equal(
        put_json(f->t.st, "win", "ltsc",
                 image_json(&c, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", &l,
                            NULL, NULL),
                 NULL),
        0);
    assert_int_equal(berth_store_manifest_get(f->t.st, "win", "ltsc", 0, &info), 0);
    berth_manifest_info_dispose(&info);
}

static void test_index(void **state)
{
    struct fixture *f = *state;
    struct berth_digest child = digest_of("not pushed", 10), img, idx;
    struct berth_manifest_info info;

    assert_int_equal(put_json(f->t.st, "multi", "latest", index_json(&child, 1), NULL),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_UNKNOWN);
    assert_non_null(strstr(berth_error_msg(), child.str));

    img = put_image(f->t.st, "multi", NULL, "amd64 layer");
    assert_int_equal(put_json(f->t.st, "multi", "latest", index_json(&img, 1), &idx), 0);
    assert_int_equal(berth_store_manifest_get(f->t.st, "multi", "latest", 1, &info), 0);
    assert_true(berth_digest_equal(&info.digest, &idx));
    assert_string_equal(info.media_type, "application/vnd.oci.image.index.v1+json");
    berth_manifest_info_dispose(&info);
    /* the child is not in another repository */
    assert_int_equal(put_json(f->t.st, "other", "latest", index_json(&img, 1), NULL),
                     BERTH_ENOTFOUND);
}

static void test_manifest_get(void **state)
{
    struct fixture *f = *state;
    struct berth_digest c = push_blob(f->t.st, "app", "{}");
    struct berth_digest l = push_blob(f->t.st, "app", "layer one!");
    char *json = image_json(&c, MT_LAYER, &l, NULL, NULL);
    char *copy = strdup(json);
    struct berth_manifest_info info;
    struct berth_digest d, d2;
    uint64_t size;
    int fd;
    char buf[1024];

    assert_int_equal(put_json(f->t.st, "app", "v1", json, &d), 0);
    /* idempotent */
    assert_int_equal(put_json(f->t.st, "app", "v1", strdup(copy), NULL), 0);

    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "v1", 1, &info), 0);
    assert_true(berth_digest_equal(&info.digest, &d));
    assert_string_equal(info.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_int_equal(info.len, strlen(copy));
    assert_memory_equal(info.body, copy, info.len);
    berth_manifest_info_dispose(&info);

    assert_int_equal(berth_store_manifest_get(f->t.st, "app", d.str, 1, &info), 0);
    assert_memory_equal(info.body, copy, info.len);
    berth_manifest_info_dispose(&info);

    /* HEAD: no body, right length */
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "v1", 0, &info), 0);
    assert_null(info.body);
    assert_int_equal(info.len, strlen(copy));
    assert_true(berth_digest_equal(&info.digest, &d));
    berth_manifest_info_dispose(&info);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", d.str, 0, &info), 0);
    assert_null(info.body);
    assert_int_equal(info.len, strlen(copy));
    berth_manifest_info_dispose(&info);

    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "v2", 1, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_UNKNOWN);
    assert_null(info.body);
    assert_int_equal(berth_store_manifest_get(f->t.st, "nope", "v1", 1, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", c.str, 1, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "sha256:zz", 1, &info),
                     BERTH_EINVALID);

    /* a manifest is served through the blob endpoint too */
    assert_int_equal(berth_store_blob_stat(f->t.st, "app", &d, &size), 0);
    assert_int_equal(size, strlen(copy));
    assert_int_equal(berth_store_blob_open(f->t.st, "app", &d, &fd, &size), 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)strlen(copy));
    assert_memory_equal(buf, copy, size);
    close(fd);
    assert_int_equal(berth_store_blob_stat(f->t.st, "other", &d, &size), BERTH_ENOTFOUND);

    /* tag move */
    d2 = put_image(f->t.st, "app", "v1", "layer two!");
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "v1", 0, &info), 0);
    assert_true(berth_digest_equal(&info.digest, &d2));
    berth_manifest_info_dispose(&info);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", d.str, 0, &info), 0);
    berth_manifest_info_dispose(&info);
    free(copy);
}

static void test_manifest_delete(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = put_image(f->t.st, "del", "v1", "del layer!");
    struct berth_digest keep = put_image(f->t.st, "del", "keep", "keep layer");
    struct berth_manifest_info info;
    struct berth_manifest_put req = { 0 };
    const char *extra[] = { "v1.0", "latest" };

    /* more tags on d via ?tag= */
    {
        struct berth_digest c = push_blob(f->t.st, "del", "{}");
        struct berth_digest l = push_blob(f->t.st, "del", "del layer!");
        char *json = image_json(&c, MT_LAYER, &l, NULL, NULL);
        struct berth_manifest *m;

        assert_int_equal(berth_manifest_parse(&m, NULL, (const uint8_t *)json, strlen(json)), 0);
        req.repo = "del";
        req.extra_tags = extra;
        req.nextra_tags = 2;
        req.m = m;
        req.body = (const uint8_t *)json;
        req.len = strlen(json);
        req.digest = &d;
        assert_int_equal(berth_store_manifest_put(f->t.st, &req), 0);
        berth_manifest_free(m);
        free(json);
    }
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", "latest", 0, &info), 0);
    assert_true(berth_digest_equal(&info.digest, &d));
    berth_manifest_info_dispose(&info);

    assert_int_equal(berth_store_manifest_delete(f->t.st, "del", &d), 0);
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", "v1", 0, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", "v1.0", 0, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", "latest", 0, &info),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", d.str, 0, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_delete(f->t.st, "del", &d), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_UNKNOWN);
    assert_int_equal(berth_store_manifest_delete(f->t.st, "nope", &d), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "del", "keep", 0, &info), 0);
    assert_true(berth_digest_equal(&info.digest, &keep));
    berth_manifest_info_dispose(&info);
}

static void test_tag_delete(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = put_image(f->t.st, "t", "v1", "tag layer!");
    struct berth_manifest_info info;

    assert_int_equal(berth_store_tag_delete(f->t.st, "t", "v1"), 0);
    assert_int_equal(berth_store_tag_delete(f->t.st, "t", "v1"), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_UNKNOWN);
    assert_int_equal(berth_store_tag_delete(f->t.st, "nope", "v1"), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "t", "v1", 0, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "t", d.str, 0, &info), 0);
    berth_manifest_info_dispose(&info);
}

/* The tag guard refuses removing "keep" of repository "g" in every path
 * that removes tags; other tags and repositories are unaffected. */
static int guard_keep(void *ctx, const char *repo, const char *tag)
{
    (*(int *)ctx)++;
    if (!strcmp(repo, "g") && !strcmp(tag, "keep"))
        return berth_error_set_oci(BERTH_EDENIED, BERTH_OCI_DENIED, "tag %s is immutable", tag);
    return 0;
}

static void test_tag_guard(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = put_image(f->t.st, "g", "keep", "guarded layer");
    struct berth_manifest_info info;
    int calls = 0;

    berth_store_set_tag_guard(f->t.st, guard_keep, &calls);
    assert_int_equal(berth_store_tag_delete(f->t.st, "g", "keep"), BERTH_EDENIED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DENIED);
    assert_int_equal(berth_store_manifest_delete(f->t.st, "g", &d), BERTH_EDENIED);
    assert_int_equal(berth_store_repo_delete(f->t.st, "g"), BERTH_EDENIED);
    assert_int_equal(berth_store_manifest_get(f->t.st, "g", "keep", 0, &info), 0);
    berth_manifest_info_dispose(&info);
    assert_int_equal(calls, 3);
    /* an unknown tag is unknown, not refused (the guard is not asked) */
    assert_int_equal(berth_store_tag_delete(f->t.st, "g", "nope"), BERTH_ENOTFOUND);
    assert_int_equal(calls, 3);
    /* other repositories delete as before */
    put_image(f->t.st, "h", "keep", "other layer");
    assert_int_equal(berth_store_repo_delete(f->t.st, "h"), 0);
    berth_store_set_tag_guard(f->t.st, NULL, NULL);
    assert_int_equal(berth_store_tag_delete(f->t.st, "g", "keep"), 0);
}

/* ---- listing ---- */

struct names {
    char **v;
    size_t n;
    int stop_at; /* return -42 at this count, when > 0 */
};

static int collect(void *ctx, const char *s)
{
    struct names *ns = ctx;

    if (ns->stop_at > 0 && (int)ns->n == ns->stop_at)
        return -42;
    ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
    ns->v[ns->n++] = strdup(s);
    return 0;
}

static void names_clear(struct names *ns)
{
    size_t i;

    for (i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    memset(ns, 0, sizeof(*ns));
}

static void test_tags_paging(void **state)
{
    enum { NTAGS = 1000 };
    struct fixture *f = *state;
    struct berth_digest c = push_blob(f->t.st, "many", "{}");
    char *json = image_json(&c, MT_LAYER, NULL, NULL, NULL);
    struct berth_manifest_put req = { 0 };
    struct berth_digest d = digest_of(json, strlen(json));
    struct berth_manifest *m;
    char **tags = calloc(NTAGS, sizeof(*tags)), last[32] = "", want[32];
    struct names ns = { 0 };
    size_t i, total = 0, pages = 0;
    int more;

    for (i = 0; i < NTAGS; i++)
        assert_true(asprintf(&tags[i], "t%04zu", (i * 617) % NTAGS) > 0); /* shuffled */
    assert_int_equal(berth_manifest_parse(&m, NULL, (const uint8_t *)json, strlen(json)), 0);
    req.repo = "many";
    req.extra_tags = (const char *const *)tags;
    req.nextra_tags = NTAGS;
    req.m = m;
    req.body = (const uint8_t *)json;
    req.len = strlen(json);
    req.digest = &d;
    assert_int_equal(berth_store_manifest_put(f->t.st, &req), 0);
    berth_manifest_free(m);
    free(json);

    do {
        assert_int_equal(berth_store_tags(f->t.st, "many", pages ? last : NULL, 100, collect, &ns,
                                          &more),
                         0);
        assert_int_equal(ns.n, 100);
        for (i = 0; i < ns.n; i++) {
            snprintf(want, sizeof(want), "t%04zu", total + i);
            assert_string_equal(ns.v[i], want);
        }
        total += ns.n;
        snprintf(last, sizeof(last), "%s", ns.v[ns.n - 1]);
        names_clear(&ns);
        pages++;
    } while (more);
    assert_int_equal(total, NTAGS);
    assert_int_equal(pages, 10);

    assert_int_equal(berth_store_tags(f->t.st, "many", NULL, -1, collect, &ns, &more), 0);
    assert_int_equal(ns.n, NTAGS);
    assert_int_equal(more, 0);
    names_clear(&ns);
    assert_int_equal(berth_store_tags(f->t.st, "many", NULL, 0, collect, &ns, &more), 0);
    assert_int_equal(ns.n, 0);
    assert_int_equal(more, 1);
    assert_int_equal(berth_store_tags(f->t.st, "many", "t0997", 5, collect, &ns, &more), 0);
    assert_int_equal(ns.n, 2);
    assert_string_equal(ns.v[0], "t0998");
    assert_int_equal(more, 0);
    names_clear(&ns);
    assert_int_equal(berth_store_tags(f->t.st, "many", "t0999", 5, collect, &ns, NULL), 0);
    assert_int_equal(ns.n, 0);
    assert_int_equal(berth_store_tags(f->t.st, "many", "t0500", 2, collect, &ns, &more), 0);
    assert_string_equal(ns.v[0], "t0501");
    assert_int_equal(more, 1);
    names_clear(&ns);
    ns.stop_at = 3;
    assert_int_equal(berth_store_tags(f->t.st, "many", NULL, -1, collect, &ns, &more), -42);
    assert_int_equal(ns.n, 3);
    names_clear(&ns);

    assert_int_equal(berth_store_tags(f->t.st, "unknown", NULL, -1, collect, &ns, &more),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_NAME_UNKNOWN);
    for (i = 0; i < NTAGS; i++)
        free(tags[i]);
    free(tags);
}

static void test_catalog(void **state)
{
    static const char *const repos[] = { "b/x", "a", "a/b", "a-b", "B", "z/z/z", "c" };
    struct fixture *f = *state;
    struct names ns = { 0 }, page = { 0 };
    char id[BERTH_UPLOAD_ID_MAX];
    const char *last = NULL;
    size_t i;
    int more;

    for (i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
        put_image(f->t.st, repos[i], "latest", "some layer");
    push_blob(f->t.st, "blobs/only", "x");                  /* no manifest: not listed */
    assert_int_equal(berth_upload_new(f->t.st, "uploads/only", id), 0);

    assert_int_equal(berth_store_catalog(f->t.st, NULL, -1, collect, &ns, &more), 0);
    assert_int_equal(ns.n, 7);
    assert_int_equal(more, 0);
    /* byte order: uppercase first, '-' (0x2d) before '/' (0x2f) */
    assert_string_equal(ns.v[0], "B");
    assert_string_equal(ns.v[1], "a");
    assert_string_equal(ns.v[2], "a-b");
    assert_string_equal(ns.v[3], "a/b");
    assert_string_equal(ns.v[4], "b/x");
    assert_string_equal(ns.v[5], "c");
    assert_string_equal(ns.v[6], "z/z/z");

    for (i = 0; i < 3; i++) {
        assert_int_equal(berth_store_catalog(f->t.st, last, 3, collect, &page, &more), 0);
        assert_int_equal(more, i < 2);
        assert_int_equal(page.n, i < 2 ? 3 : 1);
        assert_string_equal(page.v[0], ns.v[i * 3]);
        last = ns.v[i * 3 + page.n - 1];
        names_clear(&page);
    }
    names_clear(&ns);
}

struct refs {
    size_t n;
    char digest[8][BERTH_DIGEST_STR_MAX];
    char artifact[8][64];
    int annotated;
};

static int collect_ref(void *ctx, const struct berth_referrer *r)
{
    struct refs *rs = ctx;

    assert_true(rs->n < 8);
    assert_string_equal(r->media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_true(r->size > 0);
    snprintf(rs->digest[rs->n], sizeof(rs->digest[0]), "%s", r->digest);
    snprintf(rs->artifact[rs->n], sizeof(rs->artifact[0]), "%s",
             r->artifact_type ? r->artifact_type : "");
    if (r->annotations && strcmp(r->annotations, "{\"k\":\"v\"}") == 0)
        rs->annotated++;
    rs->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_referrers(void **state)
{
    static const char *const types[] = { "application/sig", "application/sbom",
                                         "application/sig" };
    struct fixture *f = *state;
    struct berth_digest subject = put_image(f->t.st, "ref", "v1", "base layer");
    struct berth_digest c = push_blob(f->t.st, "ref", "{}"), r[3], none;
    const char *sorted[3];
    struct refs rs = { 0 };
    size_t i;
    int more;

    /* a referrer may arrive before its subject exists */
    none = digest_of("no such subject", 15);
    assert_int_equal(put_json(f->t.st, "ref", NULL,
                              image_json(&c, MT_LAYER, NULL, "application/early", none.str), NULL),
                     0);
    for (i = 0; i < 3; i++) {
        char at[64];
        struct berth_digest l;
        char data[16];

        snprintf(data, sizeof(data), "sig%zu", i);
        l = push_blob(f->t.st, "ref", data);
        snprintf(at, sizeof(at), "%s", types[i]);
        assert_int_equal(put_json(f->t.st, "ref", NULL,
                                  image_json(&c, MT_LAYER, &l, at, subject.str), &r[i]),
                         0);
        sorted[i] = r[i].str;
    }
    qsort(sorted, 3, sizeof(sorted[0]), cmp_str);

    assert_int_equal(berth_store_referrers(f->t.st, "ref", &subject, NULL, NULL, -1, collect_ref,
                                           &rs, &more),
                     0);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.annotated, 3);
    assert_int_equal(more, 0);
    for (i = 0; i < 3; i++)
        assert_string_equal(rs.digest[i], sorted[i]);

    memset(&rs, 0, sizeof(rs));
    assert_int_equal(berth_store_referrers(f->t.st, "ref", &subject, "application/sig", NULL, -1,
                                           collect_ref, &rs, &more),
                     0);
    assert_int_equal(rs.n, 2);
    assert_string_equal(rs.artifact[0], "application/sig");
    assert_string_equal(rs.artifact[1], "application/sig");
    assert_true(strcmp(rs.digest[0], rs.digest[1]) < 0);

    memset(&rs, 0, sizeof(rs));
    assert_int_equal(berth_store_referrers(f->t.st, "ref", &subject, NULL, sorted[0], 1,
                                           collect_ref, &rs, &more),
                     0);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.digest[0], sorted[1]);
    assert_int_equal(more, 1);

    memset(&rs, 0, sizeof(rs));
    assert_int_equal(berth_store_referrers(f->t.st, "ref", &none, NULL, NULL, -1, collect_ref, &rs,
                                           &more),
                     0);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.artifact[0], "application/early");
    memset(&rs, 0, sizeof(rs));
    assert_int_equal(berth_store_referrers(f->t.st, "ref", &c, NULL, NULL, -1, collect_ref, &rs,
                                           &more),
                     0);
    assert_int_equal(rs.n, 0);
    assert_int_equal(berth_store_referrers(f->t.st, "unknown", &subject, NULL, NULL, -1,
                                           collect_ref, &rs, &more),
                     0);
    assert_int_equal(rs.n, 0);

    /* deleting a referrer removes it from the list */
    assert_int_equal(berth_store_manifest_delete(f->t.st, "ref", &r[0]), 0);
    memset(&rs, 0, sizeof(rs));
    assert_int_equal(berth_store_referrers(f->t.st, "ref", &subject, NULL, NULL, -1, collect_ref,
                                           &rs, &more),
                     0);
    assert_int_equal(rs.n, 2);
    (void)parse_digest;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_sha512, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_blob_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_foreign_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referrers, setup, teardown),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}

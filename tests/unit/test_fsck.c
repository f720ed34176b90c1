/* Unit tests for src/store/fsck.c (berth_store_fsck): a clean store, then
 * each kind of damage made on disk or in the database directly (a byte
 * flipped, a file truncated or deleted, an orphan file, a manifest row or
 * an edge deleted, a blob row deleted behind its links, stray uploads);
 * each time the check finds it, a repair fixes it, a second check finds
 * nothing, and pushing the blob again through the store makes the image
 * whole. Each test gets a fresh store in a mkdtemp directory; FSCK_DEBUG=1
 * prints every problem reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/error.h"
#include "store/maint.h"
#include "store/store.h"
#include "storetest.h"

#define MAXP 32

struct found {
    char kind[32];
    char detail[1024];
    int fixed;
};

struct fixture {
    struct storetest t;
    struct found p[MAXP];
    size_t np;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f || storetest_open(&f->t, "/tmp/berth-fsck-") < 0) {
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

static void on_problem(void *ctx, const char *kind, const char *detail, int fixed)
{
    struct fixture *f = ctx;

    assert_true(f->np < MAXP);
    snprintf(f->p[f->np].kind, sizeof(f->p[f->np].kind), "%s", kind);
    snprintf(f->p[f->np].detail, sizeof(f->p[f->np].detail), "%s", detail);
    f->p[f->np].fixed = fixed;
    f->np++;
    if (getenv("FSCK_DEBUG"))
        fprintf(stderr, "  %s%s: %s\n", kind, fixed ? " (repaired)" : "", detail);
}

/* One run; the problems it reported are in f->p. */
static struct berth_fsck_stats fsck(struct fixture *f, int repair, int quick)
{
    struct berth_fsck_opts o = { .repair = repair, .quick = quick, .report = on_problem,
                                 .ctx = f };
    struct berth_fsck_stats s;

    f->np = 0;
    assert_int_equal(berth_store_fsck(f->t.st, &o, &s), 0);
    assert_int_equal(s.problems, f->np);
    return s;
}

/* The problem of this kind whose sentence contains `needle` (NULL: any). */
static const struct found *find(const struct fixture *f, const char *kind, const char *needle)
{
    size_t i;

    for (i = 0; i < f->np; i++) {
        if (strcmp(f->p[i].kind, kind) == 0 && (!needle || strstr(f->p[i].detail, needle)))
            return &f->p[i];
    }
    return NULL;
}

static void assert_clean(struct fixture *f)
{
    struct berth_fsck_stats s = fsck(f, 0, 0);

    if (f->np)
        fail_msg("unexpected %s: %s", f->p[0].kind, f->p[0].detail);
    assert_int_equal(s.problems, 0);
}

struct image {
    struct berth_digest config, layer, manifest;
};

#define CONFIG_DATA "{\"architecture\":\"amd64\",\"os\":\"linux\"}"
#define LAYER_DATA "layer bytes of the image, long enough to flip one in the middle"

static struct image put_image_layer(struct fixture *f, const char *repo, const char *tag,
                                    const char *layer)
{
    struct image img;
    char *json = NULL;

    img.config = push_blob(f->t.st, repo, CONFIG_DATA);
    img.layer = push_blob(f->t.st, repo, layer);
    assert_true(asprintf(&json,
                         "{\"schemaVersion\":2,\"mediaType\":"
                         "\"application/vnd.oci.image.manifest.v1+json\","
                         "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\","
                         "\"size\":%zu},\"layers\":[{\"mediaType\":\"" MT_LAYER "\","
                         "\"digest\":\"%s\",\"size\":%zu}]}",
                         img.config.str, strlen(CONFIG_DATA), img.layer.str,
                         strlen(layer)) > 0);
    assert_int_equal(put_json(f->t.st, repo, tag, json, &img.manifest), 0);
    return img;
}

static struct image put_image(struct fixture *f, const char *repo, const char *tag)
{
    return put_image_layer(f, repo, tag, LAYER_DATA);
}

static void blob_path(char *buf, size_t size, const struct fixture *f,
                      const struct berth_digest *d)
{
    const char *hex = berth_digest_hex(d);

    snprintf(buf, size, "%s/blobs/sha256/%.2s/%s", f->t.dir, hex, hex);
}

/* SQL on a connection of our own (foreign keys off, as sqlite3 defaults). */
static void sql(const struct fixture *f, const char *text)
{
    char path[128];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/berth.db", f->t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The image pulls: manifest by tag and every blob through the repository. */
static int image_whole(struct fixture *f, const char *repo, const char *tag,
                       const struct image *img)
{
    struct berth_manifest_info info;
    uint64_t size;

    if (berth_store_manifest_get(f->t.st, repo, tag, 0, &info) < 0)
        return 0;
    berth_manifest_info_dispose(&info);
    return berth_store_blob_stat(f->t.st, repo, &img->config, &size) == 0 &&
           berth_store_blob_stat(f->t.st, repo, &img->layer, &size) == 0;
}

/* ---- tests ---- */

static void test_clean(void **state)
{
    struct fixture *f = *state;
    struct berth_fsck_stats s;

    put_image(f, "app", "v1");
    put_image(f, "other/app", "latest");
    s = fsck(f, 0, 0);
    assert_int_equal(s.problems, 0);
    /* the config and layer bytes are the same in both repositories: stored once */
    assert_int_equal(s.blobs_checked, 2);
    assert_int_equal(s.bytes_checked, strlen(CONFIG_DATA) + strlen(LAYER_DATA));
    assert_int_equal(s.manifests_checked, 2);
    s = fsck(f, 1, 1);
    assert_int_equal(s.problems, 0);
    assert_int_equal(s.bytes_checked, 0);
}

/* Damage the layer with `damage`, check, repair, re-push: whole again. */
static void corrupt_then_heal(struct fixture *f, void (*damage)(const char *path),
                              const char *kind, int quick_sees_it)
{
    struct image img = put_image(f, "app", "v1");
    const struct found *p;
    struct berth_fsck_stats s;
    char path[256];
    struct stat sb;

    put_image(f, "mirror", "v1"); /* the same layer linked in a second repository */
    blob_path(path, sizeof(path), f, &img.layer);
    damage(path);

    s = fsck(f, 0, 0);
    assert_non_null(p = find(f, kind, img.layer.str));
    assert_int_equal(p->fixed, 0);
    /* both images are named, by repository, digest and tag */
    assert_non_null(p = find(f, "broken-image", "app@"));
    assert_non_null(strstr(p->detail, img.manifest.str));
    assert_non_null(strstr(p->detail, "app:v1"));
    assert_non_null(strstr(p->detail, img.layer.str));
    assert_non_null(find(f, "broken-image", "mirror@"));
    assert_int_equal(s.repaired, 0);
    assert_int_equal(fsck(f, 0, 1).problems > 0, quick_sees_it);
    /* a check alone changes nothing */
    assert_int_equal(fsck(f, 0, 0).problems, s.problems);

    s = fsck(f, 1, 0);
    assert_non_null(p = find(f, kind, img.layer.str));
    assert_int_equal(p->fixed, 1);
    assert_non_null(find(f, "broken-image", "app:v1"));
    assert_true(s.problems > s.repaired); /* the images need their blob again */
    assert_int_equal(stat(path, &sb), -1); /* the damaged file is gone */

    /* after the repair only the broken images remain, and nothing else */
    fsck(f, 0, 0);
    assert_int_equal(f->np, 2);
    assert_non_null(find(f, "broken-image", "app:v1"));
    assert_non_null(find(f, "broken-image", "mirror:v1"));
    assert_false(image_whole(f, "app", "v1", &img));

    /* pushing the blob again (upload commit) makes the image whole */
    push_blob(f->t.st, "app", LAYER_DATA);
    assert_true(image_whole(f, "app", "v1", &img));
    push_blob(f->t.st, "mirror", LAYER_DATA);
    assert_clean(f);
}

static void flip_byte(const char *path)
{
    int fd = open(path, O_RDWR);
    char c;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, 10), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, 10), 1);
    close(fd);
}

static void truncate_file(const char *path)
{
    assert_int_equal(truncate(path, 7), 0);
}

static void delete_file(const char *path)
{
    assert_int_equal(unlink(path), 0);
}

static void test_flipped_byte(void **state)
{
    corrupt_then_heal(*state, flip_byte, "corrupt-blob", 0);
}

static void test_truncated(void **state)
{
    corrupt_then_heal(*state, truncate_file, "corrupt-blob", 1);
}

static void test_missing(void **state)
{
    corrupt_then_heal(*state, delete_file, "missing-blob", 1);
}

static void test_orphan_file(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = digest_of("nobody's blob", 13);
    char path[256], odd[256];
    const struct found *p;
    struct stat sb;
    FILE *fp;

    put_image(f, "app", "v1");
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s", f->t.dir, berth_digest_hex(&d));
    mkdir(path, 0755);
    blob_path(path, sizeof(path), f, &d);
    assert_non_null(fp = fopen(path, "w"));
    fputs("nobody's blob", fp);
    fclose(fp);
    /* a name the store cannot have written: reported, never deleted */
    snprintf(odd, sizeof(odd), "%s/blobs/sha256/notes.txt", f->t.dir);
    assert_non_null(fp = fopen(odd, "w"));
    fclose(fp);

    fsck(f, 0, 0);
    assert_int_equal(f->np, 2);
    assert_non_null(p = find(f, "orphan-file", d.str));
    assert_non_null(find(f, "unknown-file", "sha256/notes.txt"));
    fsck(f, 1, 0);
    assert_non_null(p = find(f, "orphan-file", d.str));
    assert_int_equal(p->fixed, 1);
    assert_int_equal(find(f, "unknown-file", NULL)->fixed, 0);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(stat(odd, &sb), 0);
    unlink(odd);
    assert_clean(f);
}

static void test_dangling_tag(void **state)
{
    struct fixture *f = *state;
    struct image img = put_image(f, "app", "v1");
    struct berth_manifest_info info;
    const struct found *p;
    char q[512];

    put_image_layer(f, "app", "keep", "another layer");
    snprintf(q, sizeof(q), "DELETE FROM manifests WHERE digest = '%s'", img.manifest.str);
    sql(f, q);
    fsck(f, 0, 0);
    assert_non_null(p = find(f, "dangling-tag", "app:v1"));
    assert_non_null(strstr(p->detail, img.manifest.str));
    /* its edges were left behind too */
    assert_non_null(find(f, "extra-edge", img.manifest.str));
    fsck(f, 1, 0);
    assert_int_equal(find(f, "dangling-tag", "app:v1")->fixed, 1);
    assert_int_equal(f->np, 3); /* the tag and the two edges */
    assert_clean(f);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "v1", 0, &info), BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "app", "keep", 0, &info), 0);
    berth_manifest_info_dispose(&info);
}

static void test_missing_edge(void **state)
{
    struct fixture *f = *state;
    struct image img = put_image(f, "app", "v1");
    const struct found *p;
    char q[512];

    snprintf(q, sizeof(q), "DELETE FROM manifest_refs WHERE child = '%s'", img.layer.str);
    sql(f, q);
    snprintf(q, sizeof(q),
             "INSERT INTO manifest_refs (repo_id, parent, child, kind)"
             " SELECT repo_id, digest, 'sha256:%064d', 'blob' FROM manifests", 7);
    sql(f, q);
    fsck(f, 0, 0);
    assert_int_equal(f->np, 2);
    assert_non_null(p = find(f, "missing-edge", img.layer.str));
    assert_non_null(strstr(p->detail, "app@"));
    assert_non_null(find(f, "extra-edge", "sha256:0000000"));
    fsck(f, 1, 0);
    assert_int_equal(f->np, 2);
    assert_int_equal(find(f, "missing-edge", NULL)->fixed, 1);
    assert_int_equal(find(f, "extra-edge", NULL)->fixed, 1);
    assert_clean(f);
}

/* A blob row deleted behind its links (foreign keys off): the links
 * dangle, the file is an orphan, the image is broken. */
static void test_dangling_link(void **state)
{
    struct fixture *f = *state;
    struct image img = put_image(f, "app", "v1");
    char q[512];

    snprintf(q, sizeof(q), "DELETE FROM blobs WHERE digest = '%s'", img.layer.str);
    sql(f, q);
    fsck(f, 0, 0);
    assert_non_null(find(f, "dangling-link", img.layer.str));
    assert_non_null(find(f, "orphan-file", img.layer.str));
    assert_non_null(find(f, "broken-image", "app:v1"));
    fsck(f, 1, 0);
    assert_int_equal(find(f, "dangling-link", img.layer.str)->fixed, 1);
    assert_int_equal(find(f, "orphan-file", img.layer.str)->fixed, 1);
    push_blob(f->t.st, "app", LAYER_DATA);
    assert_true(image_whole(f, "app", "v1", &img));
    assert_clean(f);
}

/* Put an index over `child` (an image manifest in repo) under tag. */
static struct berth_digest put_index(struct fixture *f, const char *repo, const char *tag,
                                     const struct berth_digest *child)
{
    struct berth_digest d;

    assert_int_equal(put_json(f->t.st, repo, tag, index_json(child, 1), &d), 0);
    return d;
}

/* An untagged image under a tagged index: reports name the index, and an
 * index whose child is gone is found (never repaired: only a push can). */
static void test_index(void **state)
{
    struct fixture *f = *state;
    struct image img = put_image(f, "multi", NULL);
    struct berth_digest idx = put_index(f, "multi", "latest", &img.manifest);
    const struct found *p;
    char path[256], q[512], want[256];

    assert_clean(f);
    blob_path(path, sizeof(path), f, &img.layer);
    flip_byte(path);
    fsck(f, 0, 0);
    assert_non_null(p = find(f, "broken-image", img.manifest.str));
    snprintf(want, sizeof(want), "listed by index multi@%s", idx.str);
    assert_non_null(strstr(p->detail, want));

    unlink(path);
    snprintf(q, sizeof(q), "DELETE FROM manifests WHERE digest = '%s';"
                           " DELETE FROM manifest_refs WHERE parent = '%s'",
             img.manifest.str, img.manifest.str);
    sql(f, q);
    fsck(f, 1, 0);
    assert_non_null(p = find(f, "dangling-child", idx.str));
    assert_int_equal(p->fixed, 0);
    assert_non_null(find(f, "dangling-child", "multi:latest"));
    assert_non_null(find(f, "dangling-child", img.manifest.str));
    /* the blob lost with its file was repaired; the child is still missing */
    fsck(f, 0, 0);
    assert_int_equal(f->np, 1);
    assert_non_null(find(f, "dangling-child", idx.str));
}

static void test_corrupt_manifest(void **state)
{
    struct fixture *f = *state;
    struct image img = put_image(f, "app", "v1");
    char q[512];

    snprintf(q, sizeof(q), "UPDATE manifests SET body = CAST('{\"x\":1}' AS BLOB)"
                           " WHERE digest = '%s'", img.manifest.str);
    sql(f, q);
    fsck(f, 1, 0);
    assert_int_equal(f->np, 1);
    assert_non_null(find(f, "corrupt-manifest", "app@"));
    assert_int_equal(f->p[0].fixed, 0); /* only a push of the manifest can fix it */
}

static void test_stray_uploads(void **state)
{
    struct fixture *f = *state;
    char id[BERTH_UPLOAD_ID_MAX], path[256], young[256];
    const char *stray = "0123abcd-0000-4000-8000-000000000001";
    struct timeval old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
    struct stat sb;
    FILE *fp;

    /* a session whose data file vanished */
    assert_int_equal(berth_upload_new(f->t.st, "app", id), 0);
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, id);
    assert_int_equal(unlink(path), 0);
    /* an old data file no session names, and a young one (a session being
     * opened right now: left alone) */
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, stray);
    assert_non_null(fp = fopen(path, "w"));
    fputs("partial", fp);
    fclose(fp);
    assert_int_equal(utimes(path, old), 0);
    snprintf(young, sizeof(young), "%s/uploads/0123abcd-0000-4000-8000-000000000002", f->t.dir);
    assert_non_null(fp = fopen(young, "w"));
    fclose(fp);

    fsck(f, 0, 0);
    assert_int_equal(f->np, 2);
    assert_non_null(find(f, "stray-upload", id));
    assert_non_null(find(f, "stray-upload", stray));
    fsck(f, 1, 0);
    assert_int_equal(f->np, 2);
    assert_int_equal(f->p[0].fixed + f->p[1].fixed, 2);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(stat(young, &sb), 0);
    assert_clean(f);
    assert_int_equal(berth_upload_offset(f->t.st, "app", id, &(uint64_t){ 0 }), BERTH_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stray_uploads, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for OCI image layouts (src/client/layout.c) and the copy engine
 * over them: write a layout (blobs, a manifest, index.json with ref.name),
 * read it back with digests verified, copy layout → layout (then again:
 * nothing moves), and detect a corrupted blob and a missing tag.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/image_int.h"
#include "core/error.h"
#include "core/manifest.h"

struct fixture {
    char dir[64];
    char lay[128], copy[128];
    struct berth_digest config, layer, manifest;
    char mbody[1024];
};

static const char config_text[] = "{\"architecture\":\"amd64\",\"os\":\"linux\","
                                  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
static const char layer_text[] = "not really a tar, but bytes are bytes";

static int tmp_with(const char *text)
{
    int fd;

    assert_int_equal(berth_tmpfile(&fd), 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    return fd;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct berth_location loc;
    struct berth_image_dst *dst = NULL;
    int fd;

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/berth-test-layout-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->lay, sizeof(f->lay), "%s/lay", f->dir);
    snprintf(f->copy, sizeof(f->copy), "%s/copy", f->dir);
    berth_digest_buf(&f->config, BERTH_SHA256, (const uint8_t *)config_text,
                     strlen(config_text));
    berth_digest_buf(&f->layer, BERTH_SHA256, (const uint8_t *)layer_text, strlen(layer_text));
    snprintf(f->mbody, sizeof(f->mbody),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\","
             "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
             "\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
             "\"digest\":\"%s\",\"size\":%zu}]}",
             BERTH_MT_OCI_MANIFEST, f->config.str, strlen(config_text), f->layer.str,
             strlen(layer_text));
    berth_digest_buf(&f->manifest, BERTH_SHA256, (const uint8_t *)f->mbody, strlen(f->mbody));

    /* Write the layout through the destination adapter. */
    memset(&loc, 0, sizeof(loc));
    loc.kind = BERTH_LOC_OCI_LAYOUT;
    snprintf(loc.path, sizeof(loc.path), "%s", f->lay);
    snprintf(loc.tag, sizeof(loc.tag), "v1");
    assert_int_equal(berth_image_dst_open(&dst, &loc, NULL), 0);
    assert_int_equal(dst->ops->has_blob(dst, &f->config, strlen(config_text)), 0);
    fd = tmp_with(config_text);
    assert_int_equal(dst->ops->put_blob(dst, &f->config, fd, strlen(config_text), NULL, NULL), 0);
    close(fd);
    fd = tmp_with(layer_text);
    assert_int_equal(dst->ops->put_blob(dst, &f->layer, fd, strlen(layer_text), NULL, NULL), 0);
    close(fd);
    assert_int_equal(dst->ops->has_blob(dst, &f->config, strlen(config_text)), 1);
    assert_int_equal(dst->ops->put_manifest(dst, (const uint8_t *)f->mbody, strlen(f->mbody),
                                            BERTH_MT_OCI_MANIFEST, &f->manifest, "v1", 1),
                     0);
    assert_int_equal(berth_image_dst_commit(dst), 0);
    berth_image_dst_free(dst);
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

static int open_src(struct berth_image_src **out, const char *dir, const char *tag)
{
    struct berth_location loc;

    memset(&loc, 0, sizeof(loc));
    loc.kind = BERTH_LOC_OCI_LAYOUT;
    snprintf(loc.path, sizeof(loc.path), "%s", dir);
    snprintf(loc.tag, sizeof(loc.tag), "%s", tag);
    return berth_image_src_open(out, &loc, NULL);
}

static int count_tag(void *ctx, const char *name)
{
    if (!strcmp(name, "v1"))
        (*(int *)ctx)++;
    return 0;
}

static void test_read_back(void **state)
{
    struct fixture *f = *state;
    struct berth_image_src *src = NULL;
    struct berth_blob_buf b;
    char buf[128];
    uint64_t size = 0;
    int fd = -1, n = 0;

    assert_int_equal(open_src(&src, f->lay, "v1"), 0);
    assert_int_equal(src->ops->get_manifest(src, NULL, &b), 0);
    assert_int_equal(b.len, strlen(f->mbody));
    assert_memory_equal(b.data, f->mbody, b.len);
    assert_string_equal(b.digest.str, f->manifest.str);
    assert_string_equal(b.media_type, BERTH_MT_OCI_MANIFEST);
    berth_blob_buf_dispose(&b);

    assert_int_equal(src->ops->open_blob(src, &f->layer, (int64_t)strlen(layer_text), &fd, &size,
                                         NULL, NULL),
                     0);
    assert_int_equal(size, strlen(layer_text));
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)strlen(layer_text));
    assert_memory_equal(buf, layer_text, strlen(layer_text));
    close(fd);

    assert_int_equal(berth_image_src_tags(src, count_tag, &n), 0);
    assert_int_equal(n, 1);

    /* The only image is found without a tag too; an unknown tag is not. */
    assert_int_equal(berth_image_src_select(src, ""), 0);
    assert_int_equal(src->ops->get_manifest(src, NULL, &b), 0);
    berth_blob_buf_dispose(&b);
    assert_int_equal(berth_image_src_select(src, "nope"), 0);
    assert_int_equal(src->ops->get_manifest(src, NULL, &b), BERTH_ENOTFOUND);
    berth_image_src_free(src);
}

static void test_copy_twice(void **state)
{
    struct fixture *f = *state;
    struct berth_image_src *src = NULL;
    struct berth_image_dst *dst = NULL;
    struct berth_copy_opts o;
    struct berth_copy_result r;
    struct berth_location loc;
    const char *tags[] = { "copied" };

    memset(&o, 0, sizeof(o));
    o.quiet = 1;
    o.tags = tags;
    o.ntags = 1;
    memset(&loc, 0, sizeof(loc));
    loc.kind = BERTH_LOC_OCI_LAYOUT;
    snprintf(loc.path, sizeof(loc.path), "%s", f->copy);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(open_src(&src, f->lay, "v1"), 0);
        assert_int_equal(berth_image_dst_open(&dst, &loc, NULL), 0);
        assert_int_equal(berth_image_copy(&r, src, dst, &o), 0);
        assert_int_equal(berth_image_dst_commit(dst), 0);
        assert_string_equal(r.digest.str, f->manifest.str);
        if (round == 0) {
            assert_int_equal(r.blobs_moved, 2);
            assert_int_equal(r.bytes_moved, strlen(config_text) + strlen(layer_text));
        } else {
            assert_int_equal(r.blobs_moved, 0);
            assert_int_equal(r.blobs_skipped, 2);
            assert_int_equal(r.bytes_moved, 0);
        }
        berth_image_src_free(src);
        berth_image_dst_free(dst);
    }
    /* The copy reads back under its new name, verified. */
    assert_int_equal(open_src(&src, f->copy, "copied"), 0);
    {
        struct berth_blob_buf b;

        assert_int_equal(src->ops->get_manifest(src, NULL, &b), 0);
        assert_string_equal(b.digest.str, f->manifest.str);
        berth_blob_buf_dispose(&b);
    }
    berth_image_src_free(src);
}

static void test_corrupt_blob(void **state)
{
    struct fixture *f = *state;
    struct berth_image_src *src = NULL;
    struct berth_image_dst *dst = NULL;
    struct berth_copy_opts o;
    struct berth_copy_result r;
    struct berth_location loc;
    char path[256];
    uint64_t size;
    int fd;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->lay, berth_digest_hex(&f->layer));
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "N", 1, 0), 1); /* same size, other bytes */
    close(fd);

    assert_int_equal(open_src(&src, f->lay, "v1"), 0);
    assert_int_equal(src->ops->open_blob(src, &f->layer, -1, &fd, &size, NULL, NULL),
                     BERTH_EMISMATCH);
    assert_non_null(strstr(berth_error_msg(), "corrupt"));

    memset(&o, 0, sizeof(o));
    o.quiet = 1;
    memset(&loc, 0, sizeof(loc));
    loc.kind = BERTH_LOC_OCI_LAYOUT;
    snprintf(loc.path, sizeof(loc.path), "%s/copy2", f->dir);
    assert_int_equal(berth_image_dst_open(&dst, &loc, NULL), 0);
    assert_int_equal(berth_image_copy(&r, src, dst, &o), BERTH_EMISMATCH);
    assert_non_null(strstr(berth_error_msg(), f->layer.str));
    berth_image_src_free(src);
    berth_image_dst_free(dst);

    /* A corrupted manifest is caught too. */
    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->lay, berth_digest_hex(&f->manifest));
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, " ", 1, 0), 1);
    close(fd);
    assert_int_equal(open_src(&src, f->lay, "v1"), 0);
    {
        struct berth_blob_buf b;

        assert_int_equal(src->ops->get_manifest(src, NULL, &b), BERTH_EMISMATCH);
    }
    berth_image_src_free(src);
}

static void test_not_a_layout(void **state)
{
    struct fixture *f = *state;
    struct berth_image_src *src = NULL;

    assert_int_equal(open_src(&src, f->dir, ""), BERTH_ENOTFOUND);
    assert_non_null(strstr(berth_error_msg(), "oci-layout"));
    assert_null(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_layout, setup, teardown),
    };

    return cmocka_run_group_tests_name("layout", tests, NULL, NULL);
}

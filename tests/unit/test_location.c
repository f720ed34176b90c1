/*
 * Unit tests for image locations (src/client/image.c): the transports
 * oci:, oci-archive:, docker-archive:, docker:// and bare references, their
 * error messages, the notag variant, and detection of bare paths (layout
 * directory, docker-archive tar, oci-archive tar).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/image.h"
#include "core/error.h"

static void test_file_transports(void **state)
{
    struct berth_location l;

    (void)state;
    assert_int_equal(berth_location_parse(&l, "oci:/tmp/img:v1"), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_LAYOUT);
    assert_string_equal(l.path, "/tmp/img");
    assert_string_equal(l.tag, "v1");

    assert_int_equal(berth_location_parse(&l, "oci:relative/dir"), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_LAYOUT);
    assert_string_equal(l.path, "relative/dir");
    assert_string_equal(l.tag, "");

    assert_int_equal(berth_location_parse(&l, "oci-archive:img.tar:latest"), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_ARCHIVE);
    assert_string_equal(l.path, "img.tar");
    assert_string_equal(l.tag, "latest");

    /* A docker-archive name is a whole reference, colons and all. */
    assert_int_equal(berth_location_parse(&l, "docker-archive:/x/img.tar:gallery/ui:v1"), 0);
    assert_int_equal(l.kind, BERTH_LOC_DOCKER_ARCHIVE);
    assert_string_equal(l.path, "/x/img.tar");
    assert_string_equal(l.tag, "gallery/ui:v1");

    assert_int_equal(berth_location_parse(&l, "docker-archive:/x/img.tar"), 0);
    assert_string_equal(l.tag, "");
}

static void test_file_errors(void **state)
{
    struct berth_location l;

    (void)state;
    assert_int_equal(berth_location_parse(&l, "oci:"), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "missing path"));
    assert_int_equal(berth_location_parse(&l, "oci::v1"), BERTH_EINVALID);
    assert_int_equal(berth_location_parse(&l, "oci:/x:"), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "empty tag"));
    assert_int_equal(berth_location_parse(&l, "docker-archive:/x.tar:Gallery/UI:v1"),
                     BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "docker-archive:/x.tar:Gallery/UI:v1"));
    assert_int_equal(berth_location_parse(&l, ""), BERTH_EINVALID);
}

static void test_registry(void **state)
{
    struct berth_location l;

    (void)state;
    assert_int_equal(berth_location_parse(&l, "docker://127.0.0.1:5000/gallery/ui:v1"), 0);
    assert_int_equal(l.kind, BERTH_LOC_REGISTRY);
    assert_string_equal(l.ref.registry, "127.0.0.1:5000");
    assert_string_equal(l.ref.repository, "gallery/ui");
    assert_string_equal(l.ref.tag, "v1");

    assert_int_equal(berth_location_parse(&l, "image-gallery"), 0);
    assert_int_equal(l.kind, BERTH_LOC_REGISTRY);
    assert_string_equal(l.ref.registry, "docker.io");
    assert_string_equal(l.ref.repository, "library/image-gallery");
    assert_string_equal(l.ref.tag, "latest");

    assert_int_equal(berth_location_parse_notag(&l, "localhost:5000/gallery/ui"), 0);
    assert_string_equal(l.ref.registry, "localhost:5000");
    assert_string_equal(l.ref.tag, "");
    assert_int_equal(berth_location_parse_notag(&l, "oci:/d:t"), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_LAYOUT);

    assert_int_equal(berth_location_parse(&l, "Gallery/UI"), BERTH_EINVALID);
    assert_int_equal(berth_location_parse(&l, "docker://"), BERTH_EINVALID);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_detect(void **state)
{
    char dir[] = "/tmp/berth-test-loc-XXXXXX";
    char p[256], cmd[1024];
    struct berth_location l;

    (void)state;
    assert_non_null(mkdtemp(dir));

    /* a layout directory, with and without ":TAG" */
    snprintf(p, sizeof(p), "%s/lay", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/lay/oci-layout", dir);
    write_file(p, "{\"imageLayoutVersion\":\"1.0.0\"}");
    snprintf(p, sizeof(p), "%s/lay", dir);
    assert_int_equal(berth_location_detect(&l, p), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_LAYOUT);
    assert_string_equal(l.path, p);
    assert_string_equal(l.tag, "");
    snprintf(p, sizeof(p), "%s/lay:v2", dir);
    assert_int_equal(berth_location_detect(&l, p), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_LAYOUT);
    assert_string_equal(l.tag, "v2");

    /* a plain directory is not a layout */
    assert_int_equal(berth_location_detect(&l, dir), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "oci-layout"));

    /* missing */
    snprintf(p, sizeof(p), "%s/nope", dir);
    assert_int_equal(berth_location_detect(&l, p), BERTH_ENOTFOUND);

    /* tars: docker save (manifest.json) and oci-archive (oci-layout) */
    snprintf(p, sizeof(p), "%s/manifest.json", dir);
    write_file(p, "[]");
    snprintf(cmd, sizeof(cmd), "tar -C %s -cf %s/d.tar manifest.json", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "tar -C %s/lay -cf %s/o.tar oci-layout", dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(p, sizeof(p), "%s/d.tar", dir);
    assert_int_equal(berth_location_detect(&l, p), 0);
    assert_int_equal(l.kind, BERTH_LOC_DOCKER_ARCHIVE);
    snprintf(p, sizeof(p), "%s/o.tar:v1", dir);
    assert_int_equal(berth_location_detect(&l, p), 0);
    assert_int_equal(l.kind, BERTH_LOC_OCI_ARCHIVE);
    assert_string_equal(l.tag, "v1");

    /* a file that is not a tar of either */
    snprintf(p, sizeof(p), "%s/manifest.json", dir);
    assert_true(berth_location_detect(&l, p) < 0);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_host_platform(void **state)
{
    (void)state;
    assert_int_equal(strncmp(berth_image_host_platform(), "linux/", 6), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_transports), cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_registry),        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_host_platform),
    };

    return cmocka_run_group_tests_name("location", tests, NULL, NULL);
}

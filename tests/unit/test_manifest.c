/*
 * Unit tests for src/core/manifest.c: every manifest kind, the Content-Type /
 * mediaType rules, schema1 refusal, descriptor checks with field-naming
 * messages, depth limit, artifacts (subject, annotations) and foreign layers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"

#define DESC(mt, d, sz) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #sz "}"

static const char oci_manifest[] = "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST
                                   "\",\"config\":" DESC(OCI_CONFIG, D1, 7) ",\"layers\":[" DESC(
                                       OCI_LAYER, D2, 100) "," DESC(OCI_LAYER, D3, 0) "]}";

static int parse(struct berth_manifest **m, const char *ct, const char *body)
{
    return berth_manifest_parse(m, ct, (const uint8_t *)body, strlen(body));
}

static void expect_invalid(const char *ct, const char *body, const char *msg)
{
    struct berth_manifest *m = (struct berth_manifest *)1;
    int rc = parse(&m, ct, body);

    if (rc != BERTH_EINVALID)
        fail_msg("gave %d (%s) for %s", rc, berth_error_msg(), body);
    assert_null(m);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_INVALID);
    if (msg && strcmp(berth_error_msg(), msg) != 0)
        fail_msg("message '%s', want '%s'", berth_error_msg(), msg);
}

static void test_kind_of(void **state)
{
    (void)state;
    assert_int_equal(berth_manifest_kind_of(BERTH_MT_OCI_MANIFEST, strlen(BERTH_MT_OCI_MANIFEST)),
                     BERTH_MK_OCI_MANIFEST);
    assert_int_equal(berth_manifest_kind_of(" Application/VND.oci.image.index.v1+json ; x=y", 46),
                     BERTH_MK_OCI_INDEX);
    assert_int_equal(berth_manifest_kind_of(BERTH_MT_DOCKER_SCHEMA1_SIGNED,
                                            strlen(BERTH_MT_DOCKER_SCHEMA1_SIGNED)),
                     BERTH_MK_DOCKER_SCHEMA1);
    assert_int_equal(berth_manifest_kind_of("application/json", 16), BERTH_MK_UNKNOWN);
    assert_int_equal(berth_manifest_kind_of(BERTH_MT_OCI_INDEX, 10), BERTH_MK_UNKNOWN);
    assert_int_equal(berth_manifest_kind_of(NULL, 0), BERTH_MK_UNKNOWN);
    assert_true(berth_manifest_kind_is_index(BERTH_MK_DOCKER_LIST));
    assert_false(berth_manifest_kind_is_index(BERTH_MK_DOCKER_MANIFEST));
}

static void test_oci_manifest(void **state)
{
    struct berth_manifest *m = NULL;

    (void)state;
    assert_int_equal(parse(&m, BERTH_MT_OCI_MANIFEST, oci_manifest), 0);
    assert_int_equal(m->kind, BERTH_MK_OCI_MANIFEST);
    assert_string_equal(m->media_type, BERTH_MT_OCI_MANIFEST);
    assert_string_equal(m->artifact_type, OCI_CONFIG);
    assert_true(m->has_config);
    assert_string_equal(m->config.digest.str, D1);
    assert_int_equal(m->config.size, 7);
    assert_int_equal(m->nlayers, 2);
    assert_string_equal(m->layers[0].digest.str, D2);
    assert_int_equal(m->layers[0].size, 100);
    assert_string_equal(m->layers[1].media_type, OCI_LAYER);
    assert_false(m->has_subject);
    assert_null(m->annotations);
    assert_int_equal(m->nmanifests, 0);
    berth_manifest_free(m);

    /* no Content-Type, and Content-Type with parameters */
    assert_int_equal(parse(&m, NULL, oci_manifest), 0);
    berth_manifest_free(m);
    assert_int_equal(parse(&m, BERTH_MT_OCI_MANIFEST "; charset=utf-8", oci_manifest), 0);
    berth_manifest_free(m);
    /* an unrelated Content-Type: the body decides */
    assert_int_equal(parse(&m, "application/octet-stream", oci_manifest), 0);
    berth_manifest_free(m);
    berth_manifest_free(NULL);
}

static void test_inferred(void **state)
{
    struct berth_manifest *m = NULL;

    (void)state;
    assert_int_equal(parse(&m, NULL,
                           "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 7)
                           ",\"layers\":[]}"),
                     0);
    assert_int_equal(m->kind, BERTH_MK_OCI_MANIFEST);
    assert_string_equal(m->media_type, BERTH_MT_OCI_MANIFEST);
    berth_manifest_free(m);
    assert_int_equal(parse(&m, "", "{\"schemaVersion\":2,\"manifests\":[]}"), 0);
    assert_int_equal(m->kind, BERTH_MK_OCI_INDEX);
    assert_null(m->artifact_type);
    berth_manifest_free(m);
    /* Content-Type names it */
    assert_int_equal(parse(&m, BERTH_MT_OCI_INDEX, "{\"schemaVersion\":2,\"manifests\":[]}"), 0);
    assert_int_equal(m->kind, BERTH_MK_OCI_INDEX);
    berth_manifest_free(m);
    expect_invalid(NULL, "{\"schemaVersion\":2}", NULL);
}

static void test_oci_index(void **state)
{
    struct berth_manifest *m = NULL;
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":500,"
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":501,"
        "\"artifactType\":\"application/x-sbom\"}],"
        "\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

    (void)state;
    assert_int_equal(parse(&m, BERTH_MT_OCI_INDEX, body), 0);
    assert_int_equal(m->kind, BERTH_MK_OCI_INDEX);
    assert_false(m->has_config);
    assert_int_equal(m->nlayers, 0);
    assert_int_equal(m->nmanifests, 2);
    assert_string_equal(m->manifests[1].digest.str, D2);
    assert_string_equal(m->manifests[1].artifact_type, "application/x-sbom");
    assert_null(m->manifests[0].artifact_type);
    assert_null(m->artifact_type);
    assert_string_equal(m->annotations,
                        "{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}");
    berth_manifest_free(m);

    expect_invalid(BERTH_MT_OCI_INDEX,
                   "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"size\":1}]}",
                   "manifest invalid: manifests[0].digest: missing");
    expect_invalid(BERTH_MT_OCI_INDEX, "{\"schemaVersion\":2,\"manifests\":{}}",
                   "manifest invalid: manifests: must be an array");
    expect_invalid(BERTH_MT_OCI_INDEX, "{\"schemaVersion\":2}",
                   "manifest invalid: manifests: missing");
}

static void test_docker(void **state)
{
    struct berth_manifest *m = NULL;
    const char *schema2 =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST "\",\"config\":" DESC(
            "application/vnd.docker.container.image.v1+json", D1,
            1469) ",\"layers\":[" DESC("application/vnd.docker.image.rootfs.diff.tar.gzip", D2,
                                       977) "]}";
    const char *list =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_LIST "\",\"manifests\":[" DESC(
            BERTH_MT_DOCKER_MANIFEST, D1, 528) "]}";

    (void)state;
    assert_int_equal(parse(&m, BERTH_MT_DOCKER_MANIFEST, schema2), 0);
    assert_int_equal(m->kind, BERTH_MK_DOCKER_MANIFEST);
    assert_string_equal(m->artifact_type, "application/vnd.docker.container.image.v1+json");
    assert_int_equal(m->nlayers, 1);
    assert_false(berth_descriptor_is_foreign(&m->layers[0]));
    berth_manifest_free(m);
    assert_int_equal(parse(&m, BERTH_MT_DOCKER_LIST, list), 0);
    assert_int_equal(m->kind, BERTH_MK_DOCKER_LIST);
    assert_int_equal(m->nmanifests, 1);
    berth_manifest_free(m);

    /* Docker kinds need mediaType in the body */
    expect_invalid(BERTH_MT_DOCKER_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":" DESC("x", D1, 1) ",\"layers\":[]}",
                   "manifest invalid: mediaType: missing (required for Docker manifests)");
}

static void test_schema1(void **state)
{
    struct berth_manifest *m = NULL;

    (void)state;
    assert_int_equal(parse(&m, BERTH_MT_DOCKER_SCHEMA1_SIGNED, "{\"schemaVersion\":1}"),
                     BERTH_EUNSUPPORTED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_MANIFEST_INVALID);
    assert_non_null(strstr(berth_error_msg(), "schema1"));
    assert_null(m);
    assert_int_equal(parse(&m, NULL, "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}"),
                     BERTH_EUNSUPPORTED);
    assert_int_equal(parse(&m, BERTH_MT_DOCKER_SCHEMA1, ""), BERTH_EUNSUPPORTED);
    assert_int_equal(parse(&m, NULL,
                           "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_SCHEMA1 "\"}"),
                     BERTH_EUNSUPPORTED);
    assert_null(m);
}

static void test_mismatch(void **state)
{
    (void)state;
    expect_invalid(BERTH_MT_OCI_INDEX, oci_manifest,
                   "manifest invalid: mediaType '" BERTH_MT_OCI_MANIFEST
                   "' does not match Content-Type '" BERTH_MT_OCI_INDEX "'");
    expect_invalid(BERTH_MT_DOCKER_MANIFEST, oci_manifest, NULL);
    expect_invalid(NULL, "{\"schemaVersion\":2,\"mediaType\":\"application/json\",\"config\":{}}",
                   "manifest invalid: mediaType: unsupported manifest media type "
                   "'application/json'");
    expect_invalid(NULL, "{\"schemaVersion\":2,\"mediaType\":7}",
                   "manifest invalid: mediaType: must be a string");
}

static void test_structure(void **state)
{
    (void)state;
    expect_invalid(NULL, "", "manifest invalid: empty body");
    expect_invalid(NULL, "[]", "manifest invalid: body must be a JSON object");
    expect_invalid(NULL, "\"x\"", NULL);
    expect_invalid(NULL, "{", NULL);
    expect_invalid(NULL, "{\"schemaVersion\":2} x", NULL);
    expect_invalid(NULL, "{\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\"}",
                   "manifest invalid: schemaVersion: missing");
    expect_invalid(NULL, "{\"schemaVersion\":3}", "manifest invalid: schemaVersion: must be 2");
    expect_invalid(NULL, "{\"schemaVersion\":\"2\"}", "manifest invalid: schemaVersion: must be 2");
    expect_invalid(NULL, "{\"schemaVersion\":2.0}", "manifest invalid: schemaVersion: must be 2");
    expect_invalid(BERTH_MT_OCI_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}",
                   "manifest invalid: config: missing");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 1) "}",
                   "manifest invalid: layers: missing");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":[],\"layers\":[]}",
                   "manifest invalid: config: must be an object");
}

static void test_descriptors(void **state)
{
    (void)state;
#define WITH_LAYERS(l)                                                                             \
    "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 1) ",\"layers\":[" DESC(OCI_LAYER, D2, \
                                                                                    1) "," DESC(   \
        OCI_LAYER, D3, 1) "," l "]}"
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS(DESC(OCI_LAYER, "sha256:xyz", 1)),
                   "manifest invalid: layers[2].digest: invalid digest 'sha256:xyz': wrong length");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS(DESC(OCI_LAYER, D1, -1)),
                   "manifest invalid: layers[2].size: must not be negative");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS(DESC(OCI_LAYER, D1, 1.5)),
                   "manifest invalid: layers[2].size: must be an integer");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS(DESC(OCI_LAYER, D1, "1")),
                   "manifest invalid: layers[2].size: must be an integer");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   WITH_LAYERS("{\"mediaType\":\"" OCI_LAYER "\",\"digest\":\"" D1 "\"}"),
                   "manifest invalid: layers[2].size: missing");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS("{\"digest\":\"" D1 "\",\"size\":1}"),
                   "manifest invalid: layers[2].mediaType: missing");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS(DESC("", D1, 1)),
                   "manifest invalid: layers[2].mediaType: must be a non-empty string");
    expect_invalid(BERTH_MT_OCI_MANIFEST, WITH_LAYERS("7"),
                   "manifest invalid: layers[2]: must be an object");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   WITH_LAYERS(DESC(OCI_LAYER, "md5:d41d8cd98f00b204e9800998ecf8427e", 1)), NULL);
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   WITH_LAYERS("{\"mediaType\":\"x\",\"digest\":\"" D1
                               "\",\"size\":1,\"annotations\":{\"a\":1}}"),
                   "manifest invalid: layers[2].annotations['a']: must be a string");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   WITH_LAYERS("{\"mediaType\":\"x\",\"digest\":\"" D1
                               "\",\"size\":1,\"urls\":\"http://x\"}"),
                   "manifest invalid: layers[2].urls: must be an array");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 1)
                   ",\"layers\":[],\"artifactType\":5}",
                   "manifest invalid: artifactType: must be a string");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 1)
                   ",\"layers\":[],\"subject\":{}}",
                   "manifest invalid: subject.mediaType: missing");
    expect_invalid(BERTH_MT_OCI_MANIFEST,
                   "{\"schemaVersion\":2,\"config\":" DESC(OCI_CONFIG, D1, 1)
                   ",\"layers\":[],\"annotations\":[]}",
                   "manifest invalid: annotations: must be an object");
#undef WITH_LAYERS
}

static void test_depth(void **state)
{
    struct berth_manifest *m = NULL;
    char buf[512];
    size_t i, n = 0;
    const char *head = "{\"schemaVersion\":2,\"manifests\":[],\"x\":";

    (void)state;
    /* the root object is level 1: 63 more '[' make 64, allowed */
    n = (size_t)snprintf(buf, sizeof(buf), "%s", head);
    for (i = 0; i < 63; i++)
        buf[n++] = '[';
    for (i = 0; i < 63; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = '\0';
    assert_int_equal(parse(&m, NULL, buf), 0);
    berth_manifest_free(m);

    n = (size_t)snprintf(buf, sizeof(buf), "%s", head);
    for (i = 0; i < 64; i++)
        buf[n++] = '[';
    for (i = 0; i < 64; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = '\0';
    expect_invalid(NULL, buf, "manifest invalid: JSON nested deeper than 64 levels");

    /* brackets inside strings do not count */
    n = (size_t)snprintf(buf, sizeof(buf), "{\"schemaVersion\":2,\"manifests\":[],\"x\":\"");
    for (i = 0; i < 100; i++)
        buf[n++] = '[';
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\\\"{\"}");
    assert_int_equal(parse(&m, NULL, buf), 0);
    berth_manifest_free(m);
}

static void test_artifact(void **state)
{
    struct berth_manifest *m = NULL;
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.sbom.v1\","
        "\"config\":" DESC(BERTH_MT_OCI_EMPTY, EMPTY_DIGEST, 2) ","
        "\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" D2 "\",\"size\":9,"
        "\"annotations\":{\"org.opencontainers.image.title\":\"sbom.json\"}}],"
        "\"subject\":" DESC(BERTH_MT_OCI_MANIFEST, D1, 1234) ","
        "\"annotations\":{\"z\":\"1\",\"a\":\"2\",\"org.example\":\"\\u00e9\\\"\"}}";

    (void)state;
    assert_int_equal(parse(&m, BERTH_MT_OCI_MANIFEST, body), 0);
    assert_string_equal(m->artifact_type, "application/vnd.example.sbom.v1");
    assert_string_equal(m->config.media_type, BERTH_MT_OCI_EMPTY);
    assert_int_equal(m->config.size, 2);
    assert_true(m->has_subject);
    assert_string_equal(m->subject.digest.str, D1);
    assert_int_equal(m->subject.size, 1234);
    /* insertion order kept, compact */
    assert_string_equal(m->annotations,
                        "{\"z\":\"1\",\"a\":\"2\",\"org.example\":\"\xc3\xa9\\\"\"}");
    assert_string_equal(m->layers[0].annotations,
                        "{\"org.opencontainers.image.title\":\"sbom.json\"}");
    berth_manifest_free(m);

    /* an index may carry artifactType and subject too */
    assert_int_equal(parse(&m, BERTH_MT_OCI_INDEX,
                           "{\"schemaVersion\":2,\"artifactType\":\"application/x\","
                           "\"manifests\":[],\"subject\":" DESC(BERTH_MT_OCI_MANIFEST, D1, 1) "}"),
                     0);
    assert_string_equal(m->artifact_type, "application/x");
    assert_true(m->has_subject);
    berth_manifest_free(m);
}

static void test_foreign(void **state)
{
    struct berth_manifest *m = NULL;
    const char *body =
        "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_DOCKER_MANIFEST "\",\"config\":" DESC(
            "application/vnd.docker.container.image.v1+json", D1, 1) ",\"layers\":["
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
        "\"digest\":\"" D2 "\",\"size\":5,\"urls\":[\"https://example.com/l\"]},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip\","
        "\"digest\":\"" D3 "\",\"size\":5},"
        "{\"mediaType\":\"" OCI_LAYER "\",\"digest\":\"" D3 "\",\"size\":5,\"urls\":[\"u\"]},"
        "{\"mediaType\":\"" OCI_LAYER "\",\"digest\":\"" D3 "\",\"size\":5,\"urls\":[]}]}";

    (void)state;
    assert_int_equal(parse(&m, NULL, body), 0);
    assert_int_equal(m->nlayers, 4);
    assert_true(m->layers[0].has_urls);
    assert_true(berth_descriptor_is_foreign(&m->layers[0]));
    assert_true(berth_descriptor_is_foreign(&m->layers[1]));
    assert_true(berth_descriptor_is_foreign(&m->layers[2]));
    assert_false(berth_descriptor_is_foreign(&m->layers[3]));
    assert_false(berth_descriptor_is_foreign(&m->config));
    berth_manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_of),     cmocka_unit_test(test_oci_manifest),
        cmocka_unit_test(test_inferred),    cmocka_unit_test(test_oci_index),
        cmocka_unit_test(test_docker),      cmocka_unit_test(test_schema1),
        cmocka_unit_test(test_mismatch),    cmocka_unit_test(test_structure),
        cmocka_unit_test(test_descriptors), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_artifact),    cmocka_unit_test(test_foreign),
    };

    return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}

/*
 * libFuzzer target for berth_manifest_parse (every pushed manifest). The first
 * input byte picks the request Content-Type, the rest is the body. Invariants
 * checked: success yields a known non-schema1 kind with only well-formed
 * descriptors; failure yields NULL and a documented code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
    NULL,
    "",
    BERTH_MT_OCI_MANIFEST,
    BERTH_MT_OCI_INDEX,
    BERTH_MT_DOCKER_MANIFEST,
    BERTH_MT_DOCKER_LIST,
    BERTH_MT_DOCKER_SCHEMA1_SIGNED,
    "application/json; charset=utf-8",
};

static void check_descriptor(const struct berth_descriptor *d)
{
    struct berth_digest again;

    if (!d->media_type || !*d->media_type || d->size < 0)
        abort();
    if (berth_digest_parse(&again, d->digest.str, strlen(d->digest.str)) != 0 ||
        !berth_digest_equal(&again, &d->digest))
        abort();
    (void)berth_descriptor_is_foreign(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_manifest *m = NULL;
    const char *ct;
    size_t i;
    int rc;

    if (size == 0)
        return 0;
    ct = content_types[data[0] % (sizeof(content_types) / sizeof(content_types[0]))];
    rc = berth_manifest_parse(&m, ct, data + 1, size - 1);
    if (rc < 0) {
        if (m || (rc != BERTH_EINVALID && rc != BERTH_EUNSUPPORTED && rc != BERTH_ERROR))
            abort();
        if (rc != BERTH_ERROR && berth_error_oci() != BERTH_OCI_MANIFEST_INVALID)
            abort();
        return 0;
    }
    if (!m || !m->media_type || m->kind == BERTH_MK_UNKNOWN || m->kind == BERTH_MK_DOCKER_SCHEMA1)
        abort();
    if (berth_manifest_kind_of(m->media_type, strlen(m->media_type)) != m->kind)
        abort();
    if (berth_manifest_kind_is_index(m->kind)) {
        if (m->has_config || m->nlayers)
            abort();
    } else {
        if (!m->has_config || m->nmanifests || !m->artifact_type)
            abort();
        check_descriptor(&m->config);
    }
    for (i = 0; i < m->nlayers; i++)
        check_descriptor(&m->layers[i]);
    for (i = 0; i < m->nmanifests; i++)
        check_descriptor(&m->manifests[i]);
    if (m->has_subject)
        check_descriptor(&m->subject);
    berth_manifest_free(m);
    return 0;
}

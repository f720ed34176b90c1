/*
 * libFuzzer target for berth_route_match, the registry's path parser. Input:
 * one byte choosing the method (low 3 bits) and which query arguments are
 * present (next 4 bits), then the percent-decoded path. Invariants: the
 * outcome is a row or a 400/404/405 with an OCI code; a matched row allows
 * the method and has its query argument; the name is a valid repository
 * name right after "/v2/" (after "/v2/_berth/repositories/" for berth's own
 * repository deletion, where it runs to the end); the reference lies inside the path, after the
 * name and an anchor, and is a digest, a tag or an upload id as the shape says.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "server/http.h"
#include "server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned methods[] = { M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER, 0 };
static const char *const keys[] = { "mount", "digest", "n", "artifactType" };

static int has_arg(void *ctx, const char *key)
{
    unsigned bits = *(const unsigned *)ctx;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(key, keys[i]))
            return (bits >> i) & 1;
    abort(); /* the router asked about an argument no row names */
}

static void check_ref(const struct berth_route_match *m, const char *path, size_t len)
{
    const char *end = path + len;

    if (!m->ref) {
        if (m->ref_len || m->ref_is_digest)
            abort();
        if (m->shape != R_UPLOADS && m->shape != R_TAGS && m->shape != R_BASE &&
            m->shape != R_CATALOG && m->shape != R_GC && m->shape != R_REPO)
            abort();
        return;
    }
    if (m->ref < m->name + m->name_len || m->ref + m->ref_len != end ||
        m->ref_len >= BERTH_ROUTE_REF_MAX || !m->ref_len || memchr(m->ref, '/', m->ref_len))
        abort();
    if (m->ref_is_digest) {
        if (strlen(m->digest.str) != m->ref_len || memcmp(m->digest.str, m->ref, m->ref_len))
            abort();
        return;
    }
    switch (m->shape) {
    case R_MANIFEST:
        if (berth_tag_check(m->ref, m->ref_len) != 0)
            abort();
        break;
    case R_UPLOAD:
        for (size_t i = 0; i < m->ref_len; i++) {
            char c = m->ref[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_'))
                abort();
        }
        break;
    default:
        abort(); /* blobs and referrers take digests only */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_route_match m, again;
    unsigned method, args;
    const char *path;
    size_t len;
    int rc;

    if (size < 1)
        return 0;
    method = methods[data[0] & 7];
    args = (data[0] >> 3) & 15;
    path = (const char *)data + 1;
    len = size - 1;
    rc = berth_route_match(method, path, len, has_arg, &args, &m);

    if (rc != 0) {
        if (rc != -1 || m.route || !m.msg || m.oci == BERTH_OCI_NONE)
            abort();
        if (m.status != 400 && m.status != 404 && m.status != 405)
            abort();
        return 0;
    }
    if (!m.route || m.status || !(m.route->methods & method) || m.route->shape != m.shape)
        abort();
    if (m.route->query && !has_arg(&args, m.route->query))
        abort();
    if (len < 3 || memcmp(path, "/v2", 3))
        abort();
    if (m.shape == R_BASE || m.shape == R_CATALOG || m.shape == R_GC) {
        if (m.name || m.ref)
            abort();
    } else if (m.shape == R_REPO) {
        /* "/v2/_berth/repositories/<name>": the name runs to the end */
        if (len < 24 || memcmp(path + 4, "_berth/repositories/", 20) || m.name != path + 24 ||
            m.name + m.name_len != path + len || m.name_len > BERTH_NAME_MAX ||
            berth_name_check(m.name, m.name_len) != 0)
            abort();
    } else {
        if (m.name != path + 4 || m.name_len > BERTH_NAME_MAX ||
            berth_name_check(m.name, m.name_len) != 0)
            abort();
        if (m.name + m.name_len >= path + len || m.name[m.name_len] != '/')
            abort(); /* an anchor follows the name */
    }
    check_ref(&m, path, len);

    /* deterministic */
    if (berth_route_match(method, path, len, has_arg, &args, &again) != 0 ||
        again.route != m.route || again.name_len != m.name_len || again.ref != m.ref)
        abort();
    return 0;
}

/*
 * The route table of the registry API (OCI distribution-spec v1.1 "Endpoints"
 * table, one row per endpoint id) and the path parser that picks a row.
 * <name> may contain slashes, so the path shape is found by its rightmost
 * anchor; the name (and the tag, digest or upload id after the anchor) is
 * checked against the spec grammar after http.c's percent-decoding,
 * so an encoded '/' or '%' can never smuggle anything past the check.
 * Unknown shape → 404 (NAME_UNKNOWN under /v2/, UNSUPPORTED elsewhere);
 * known shape with a wrong method → 405 UNSUPPORTED. berth_route_match is
 * pure; router_dispatch copies its result into the request or answers.
 */
#include "router.h"

#include <string.h>

#include "core/error.h"
#include "handlers.h"
#include "http.h"

/* Rows are tried in order; the first whose shape, method and required query
 * argument match wins (so end-11 and end-4b come before end-4a). HEAD is
 * accepted wherever GET is (M_READ): HEAD never answers 405. The begin step
 * runs when the headers are in, before the body: it opens what the body goes
 * to (an upload session, the manifest buffer) or answers early. */
_Static_assert(BERTH_ROUTE_REF_MAX <= REF_MAX, "req->ref holds every accepted reference");

static const struct route routes[] = {
    /* spec id  methods   shape        query           begin            handler            access */
    { "end-1",   M_READ,   R_BASE,      NULL,           NULL,            h_base,            NONE },
    { "end-2",   M_READ,   R_BLOB,      NULL,           NULL,            h_blob_get,        PULL },
    { "end-10",  M_DELETE, R_BLOB,      NULL,           NULL,            h_blob_delete,     DEL },
    { "end-3",   M_READ,   R_MANIFEST,  NULL,           NULL,            h_manifest_get,    PULL },
    { "end-7",   M_PUT,    R_MANIFEST,  NULL,           h_manifest_open, h_manifest_put,    PUSH },
    { "end-9",   M_DELETE, R_MANIFEST,  NULL,           NULL,            h_manifest_delete, DEL },
    { "end-11",  M_POST,   R_UPLOADS,   "mount",        NULL,            h_upload_mount,    PUSH },
    { "end-4b",  M_POST,   R_UPLOADS,   "digest",       h_mono_open,     h_upload_mono,     PUSH },
    { "end-4a",  M_POST,   R_UPLOADS,   NULL,           NULL,            h_upload_start,    PUSH },
    { "end-5",   M_PATCH,  R_UPLOAD,    NULL,           h_patch_open,    h_upload_patch,    PUSH },
    { "end-6",   M_PUT,    R_UPLOAD,    NULL,           h_put_open,      h_upload_put,      PUSH },
    { "end-13",  M_READ,   R_UPLOAD,    NULL,           NULL,            h_upload_status,   PUSH },
    { "end-14",  M_DELETE, R_UPLOAD,    NULL,           NULL,            h_upload_cancel,   PUSH },
    { "end-8b",  M_READ,   R_TAGS,      "n",            NULL,            h_tags_list,       PULL },
    { "end-8a",  M_READ,   R_TAGS,      NULL,           NULL,            h_tags_list,       PULL },
    { "end-12b", M_READ,   R_REFERRERS, "artifactType", NULL,            h_referrers,       PULL },
    { "end-12a", M_READ,   R_REFERRERS, NULL,           NULL,            h_referrers,       PULL },
    { "catalog", M_READ,   R_CATALOG,   NULL,           NULL,            h_catalog,         LIST },
    /* berth's own (docs/gc.md) */
    { "gc-run",  M_POST,   R_GC,        NULL,           NULL,            h_gc_start,        ADMIN },
    { "gc-stat", M_READ,   R_GC,        NULL,           NULL,            h_gc_status,       ADMIN },
    { "repo-rm", M_DELETE, R_REPO,      NULL,           NULL,            h_repo_delete,     DEL },
};

static const struct anchor {
    const char *text;
    size_t len;
    enum shape shape;
} anchors[] = {
    /* longest first: at equal positions the longer anchor wins */
    { "/blobs/uploads/", 15, R_UPLOADS },
    { "/manifests/", 11, R_MANIFEST },
    { "/referrers/", 11, R_REFERRERS },
    { "/tags/list", 10, R_TAGS },
    { "/blobs/", 7, R_BLOB },
};

/* Position of the last occurrence of `needle` in s[0..len), or -1. */
static long last_index(const char *s, size_t len, const char *needle, size_t nlen)
{
    if (nlen > len)
        return -1;
    for (size_t i = len - nlen + 1; i-- > 0;)
        if (s[i] == needle[0] && !memcmp(s + i, needle, nlen))
            return (long)i;
    return -1;
}

/* Split "<name><anchor><ref>" by the rightmost anchor. 0 or -1 (no shape). */
static int split(const char *rest, size_t len, enum shape *shape, size_t *name_len,
                 const char **ref, size_t *ref_len)
{
    const struct anchor *best = NULL;
    long best_pos = -1;

    for (size_t i = 0; i < sizeof(anchors) / sizeof(anchors[0]); i++) {
        const struct anchor *a = &anchors[i];
        long pos = last_index(rest, len, a->text, a->len);

        /* tags/list is a whole suffix, not a prefix of a reference */
        if (a->shape == R_TAGS && pos >= 0 && (size_t)pos + a->len != len)
            pos = -1;
        if (pos > best_pos) {
            best_pos = pos;
            best = a;
        }
    }
    /* "<name>/blobs/uploads" without the trailing slash */
    if (len > 14 && !memcmp(rest + len - 14, "/blobs/uploads", 14) &&
        (long)(len - 14) >= best_pos) {
        best_pos = (long)(len - 14);
        *shape = R_UPLOADS;
        *name_len = (size_t)best_pos;
        *ref = rest + len;
        *ref_len = 0;
        return 0;
    }
    if (!best || best_pos <= 0)
        return -1;
    *shape = best->shape;
    *name_len = (size_t)best_pos;
    *ref = rest + best_pos + best->len;
    *ref_len = len - (size_t)best_pos - best->len;
    if (memchr(*ref, '/', *ref_len))
        return -1;
    if (*shape == R_UPLOADS && *ref_len)
        *shape = R_UPLOAD;
    return 0;
}

/* After "/v2/_berth/": "gc", or "repositories/<name>" (the name is checked
 * by the caller like any other). 0 or -1 (no such endpoint). */
static int split_own(const char *rest, size_t len, enum shape *shape, size_t *name_len)
{
    if (len == 2 && !memcmp(rest, "gc", 2)) {
        *shape = R_GC;
        return 0;
    }
    if (len > 13 && !memcmp(rest, "repositories/", 13)) {
        *shape = R_REPO;
        *name_len = len - 13;
        return 0;
    }
    return -1;
}

static int upload_id_ok(const char *s, size_t len)
{
    if (!len || len >= BERTH_UPLOAD_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Fail the match with an answer. Always -1. */
static int refuse(struct berth_route_match *out, unsigned status, enum berth_oci_code oci,
                  const char *msg)
{
    out->route = NULL;
    out->status = status;
    out->oci = oci;
    out->msg = msg;
    return -1;
}

/* Validate the reference after the anchor into out->digest. 0, or -1. */
static int check_ref(struct berth_route_match *out, const char *ref, size_t len)
{
    switch (out->shape) {
    case R_BLOB:
    case R_REFERRERS:
        if (berth_digest_parse(&out->digest, ref, len) < 0)
            return refuse(out, 400, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
        out->ref_is_digest = 1;
        break;
    case R_MANIFEST:
        if (memchr(ref, ':', len)) {
            if (berth_digest_parse(&out->digest, ref, len) < 0)
                return refuse(out, 400, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
            out->ref_is_digest = 1;
        } else if (berth_tag_check(ref, len) < 0) {
            return refuse(out, 400, BERTH_OCI_TAG_INVALID, berth_error_msg());
        }
        break;
    case R_UPLOAD:
        if (!upload_id_ok(ref, len))
            return refuse(out, (unsigned)berth_oci_status(BERTH_OCI_BLOB_UPLOAD_UNKNOWN),
                          BERTH_OCI_BLOB_UPLOAD_UNKNOWN, "unknown upload id");
        break;
    default:
        return 0;
    }
    if (len >= BERTH_ROUTE_REF_MAX) /* unreachable after the checks above */
        return refuse(out, (unsigned)berth_oci_status(BERTH_OCI_NAME_INVALID),
                      BERTH_OCI_NAME_INVALID, "reference too long");
    out->ref = ref;
    out->ref_len = len;
    return 0;
}

int berth_route_match(unsigned method, const char *path, size_t len,
                      int (*has_arg)(void *ctx, const char *key), void *ctx,
                      struct berth_route_match *out)
{
    const struct route *r = NULL;
    const char *rest, *ref = NULL;
    size_t rest_len, name_len = 0, ref_len = 0;
    int shape_seen = 0;

    memset(out, 0, sizeof(*out));
    if (!path || len < 3 || memcmp(path, "/v2", 3) != 0 || (len > 3 && path[3] != '/'))
        return refuse(out, 404, BERTH_OCI_UNSUPPORTED, "not a registry API path");
    rest = len > 3 ? path + 4 : path + 3;
    rest_len = len > 3 ? len - 4 : 0;
    if (!rest_len) {
        out->shape = R_BASE;
    } else if (rest_len == 8 && !memcmp(rest, "_catalog", 8)) {
        out->shape = R_CATALOG;
    } else if (rest_len >= 7 && !memcmp(rest, "_berth/", 7)) {
        if (split_own(rest + 7, rest_len - 7, &out->shape, &name_len) < 0)
            return refuse(out, 404, BERTH_OCI_NAME_UNKNOWN, "unknown API path");
        rest += 7 + (out->shape == R_REPO ? 13 : 0);
    } else if (split(rest, rest_len, &out->shape, &name_len, &ref, &ref_len) < 0) {
        return refuse(out, 404, BERTH_OCI_NAME_UNKNOWN, "unknown API path");
    }

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (routes[i].shape != out->shape)
            continue;
        shape_seen = 1;
        if (!(routes[i].methods & method))
            continue;
        if (routes[i].query && (!has_arg || !has_arg(ctx, routes[i].query)))
            continue;
        r = &routes[i];
        break;
    }
    if (!r)
        return refuse(out, shape_seen ? 405 : 404, BERTH_OCI_UNSUPPORTED,
                      shape_seen ? "method not allowed" : "unknown API path");

    if (out->shape != R_BASE && out->shape != R_CATALOG && out->shape != R_GC) {
        if (name_len > BERTH_NAME_MAX)
            return refuse(out, (unsigned)berth_oci_status(BERTH_OCI_NAME_INVALID),
                          BERTH_OCI_NAME_INVALID, "repository name too long");
        if (berth_name_check(rest, name_len) < 0)
            return refuse(out, 400, BERTH_OCI_NAME_INVALID, berth_error_msg());
        out->name = rest;
        out->name_len = name_len;
        if (check_ref(out, ref, ref_len) < 0)
            return -1;
    }
    out->route = r;
    return 0;
}

static int has_query_arg(void *ctx, const char *key)
{
    return req_arg(ctx, key) != NULL;
}

void router_dispatch(struct request *req, const char *url)
{
    struct berth_route_match m;

    req->route = NULL;
    if (berth_route_match(req->method, url, strlen(url), has_query_arg, req, &m) < 0) {
        respond_error(req, m.status, m.oci, m.msg);
        return;
    }
    if (m.name) {
        memcpy(req->name, m.name, m.name_len);
        req->name[m.name_len] = '\0';
    }
    if (m.ref) {
        memcpy(req->ref, m.ref, m.ref_len);
        req->ref[m.ref_len] = '\0';
    }
    req->ref_is_digest = m.ref_is_digest;
    if (m.ref_is_digest)
        req->digest = m.digest;
    req->route = m.route;
}

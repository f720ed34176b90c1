/*
 * The route table of the registry API (OCI distribution-spec v1.1 "Endpoints"
 * table, one row per endpoint id) and the path parser that picks a row.
 * <name> may contain slashes, so the path shape is found by its rightmost
 * anchor; the name (and the tag, digest or upload id after the anchor) is
 * checked against the spec grammar after libmicrohttpd's percent-decoding,
 * so an encoded '/' or '%' can never smuggle anything past the check.
 * Unknown shape → 404 (NAME_UNKNOWN under /v2/, UNSUPPORTED elsewhere);
 * known shape with a wrong method → 405 UNSUPPORTED.
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

/* Validate the reference after the anchor into req->ref / req->digest.
 * 0, or -1 after answering. */
static int check_ref(struct request *req, enum shape shape, const char *ref, size_t len)
{
    int err;

    switch (shape) {
    case R_BLOB:
    case R_REFERRERS:
        if ((err = berth_digest_parse(&req->digest, ref, len)) < 0) {
            respond_error(req, 400, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
            return -1;
        }
        req->ref_is_digest = 1;
        break;
    case R_MANIFEST:
        if (memchr(ref, ':', len)) {
            if ((err = berth_digest_parse(&req->digest, ref, len)) < 0) {
                respond_error(req, 400, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
                return -1;
            }
            req->ref_is_digest = 1;
        } else if ((err = berth_tag_check(ref, len)) < 0) {
            respond_error(req, 400, BERTH_OCI_TAG_INVALID, berth_error_msg());
            return -1;
        }
        break;
    case R_UPLOAD:
        if (!upload_id_ok(ref, len)) {
            respond_oci(req, BERTH_OCI_BLOB_UPLOAD_UNKNOWN, "unknown upload id");
            return -1;
        }
        break;
    default:
        return 0;
    }
    if (len >= sizeof(req->ref)) { /* unreachable after the checks above */
        respond_oci(req, BERTH_OCI_NAME_INVALID, "reference too long");
        return -1;
    }
    memcpy(req->ref, ref, len);
    req->ref[len] = '\0';
    return 0;
}

void router_dispatch(struct request *req, const char *url)
{
    const struct route *r = NULL;
    const char *rest, *ref = NULL;
    size_t len, name_len = 0, ref_len = 0;
    enum shape shape;
    int shape_seen = 0, err;

    req->route = NULL;
    if (strncmp(url, "/v2", 3) != 0 || (url[3] != '/' && url[3] != '\0')) {
        respond_error(req, 404, BERTH_OCI_UNSUPPORTED, "not a registry API path");
        return;
    }
    rest = url[3] ? url + 4 : url + 3;
    len = strlen(rest);
    if (!len) {
        shape = R_BASE;
    } else if (!strcmp(rest, "_catalog")) {
        shape = R_CATALOG;
    } else if (split(rest, len, &shape, &name_len, &ref, &ref_len) < 0) {
        respond_error(req, 404, BERTH_OCI_NAME_UNKNOWN, "unknown API path");
        return;
    }

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (routes[i].shape != shape)
            continue;
        shape_seen = 1;
        if (!(routes[i].methods & req->method))
            continue;
        if (routes[i].query && !req_arg(req, routes[i].query))
            continue;
        r = &routes[i];
        break;
    }
    if (!r) {
        respond_error(req, shape_seen ? 405 : 404, BERTH_OCI_UNSUPPORTED,
                      shape_seen ? "method not allowed" : "unknown API path");
        return;
    }

    if (shape != R_BASE && shape != R_CATALOG) {
        if (name_len > BERTH_NAME_MAX) {
            respond_oci(req, BERTH_OCI_NAME_INVALID, "repository name too long");
            return;
        }
        if ((err = berth_name_check(rest, name_len)) < 0) {
            respond_error(req, 400, BERTH_OCI_NAME_INVALID, berth_error_msg());
            return;
        }
        memcpy(req->name, rest, name_len);
        req->name[name_len] = '\0';
        if (check_ref(req, shape, ref, ref_len) < 0)
            return;
    }
    req->route = r;
}

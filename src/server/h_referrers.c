/*
 * end-12a/12b `GET /v2/<name>/referrers/<digest>[?artifactType=]`
 * (distribution-spec v1.1 "Listing Referrers"): an OCI image index of the
 * manifests whose `subject` is <digest>, always 200 (an empty index for an
 * unknown digest or repository: oras and crane probe with sha256:000…0).
 * Filtering is announced with `OCI-Filters-Applied: artifactType`. Paging
 * with `n`/`last` (last = the last digest given) and a `Link` like tags;
 * without `n`, every referrer. A malformed artifactType, `n` or `last`
 * (params.c) is a 400.
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/manifest.h"
#include "handlers.h"
#include "http.h"
#include "params.h"

struct ref_ctx {
    struct sbuf *b;
    size_t count;
    char last[BERTH_DIGEST_STR_MAX];
};

static int referrer_item(void *ctx, const struct berth_referrer *r)
{
    struct ref_ctx *c = ctx;
    struct sbuf *b = c->b;

    if (c->count++)
        sbuf_put(b, ",", 1);
    sbuf_puts(b, "{\"mediaType\":");
    sbuf_json_str(b, r->media_type ? r->media_type : "");
    sbuf_puts(b, ",\"digest\":");
    sbuf_json_str(b, r->digest);
    sbuf_puts(b, ",\"size\":");
    sbuf_u64(b, r->size > 0 ? (uint64_t)r->size : 0);
    if (r->artifact_type) {
        sbuf_puts(b, ",\"artifactType\":");
        sbuf_json_str(b, r->artifact_type);
    }
    if (r->annotations && *r->annotations) {
        sbuf_puts(b, ",\"annotations\":");
        sbuf_puts(b, r->annotations);
    }
    sbuf_put(b, "}", 1);
    snprintf(c->last, sizeof(c->last), "%s", r->digest);
    return b->oom ? BERTH_ERROR : 0;
}

void h_referrers(struct request *req)
{
    const char *artifact_type;
    struct sbuf b = { 0 }, link = { 0 };
    struct ref_ctx ctx;
    const char *last;
    long n;
    int more = 0, err;

    if (berth_param_artifact_type(req_arg(req, "artifactType"), &artifact_type) < 0) {
        respond_error(req, HTTP_BAD_REQUEST, berth_error_oci(), berth_error_msg());
        return;
    }
    if (paging_args(req, -1, -1, &n, &last) < 0)
        return;
    memset(&ctx, 0, sizeof(ctx));
    ctx.b = &b;
    sbuf_puts(&b, "{\"schemaVersion\":2,\"mediaType\":\"" BERTH_MT_OCI_INDEX
                  "\",\"manifests\":[");
    err = berth_store_referrers(req->srv->st, req->name, &req->digest, artifact_type, last, n,
                                referrer_item, &ctx, &more);
    if (err < 0) {
        sbuf_dispose(&b);
        respond_berr(req, err, BERTH_OCI_INTERNAL);
        return;
    }
    sbuf_puts(&b, "]}");
    sbuf_respond(&b, req, BERTH_MT_OCI_INDEX);
    if (artifact_type)
        add_header(req, "OCI-Filters-Applied", "artifactType");
    if (more && n > 0 && ctx.count) {
        sbuf_puts(&link, "</v2/");
        sbuf_puts(&link, req->name);
        sbuf_puts(&link, "/referrers/");
        sbuf_puts(&link, req->digest.str);
        sbuf_puts(&link, "?n=");
        sbuf_u64(&link, (uint64_t)n);
        sbuf_puts(&link, "&last=");
        sbuf_query_value(&link, ctx.last);
        if (artifact_type) {
            sbuf_puts(&link, "&artifactType=");
            sbuf_query_value(&link, artifact_type);
        }
        sbuf_puts(&link, ">; rel=\"next\"");
        if (!link.oom)
            add_header(req, "Link", link.p);
        sbuf_dispose(&link);
    }
}

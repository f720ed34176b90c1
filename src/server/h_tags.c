/*
 * Listings (distribution-spec "Listing tags", end-8a/8b; and distribution's
 * `GET /v2/_catalog`): JSON built in one growing buffer from the store's
 * indexed, lexically ordered walks. Paging: `n` (count) and `last`
 * (exclusive); when more remain, `Link: <...?n=&last=>; rel="next"`.
 * Tags: all of them without `n`. Catalog: 100 without `n`, at most 1000 per
 * page (distribution's defaults).
 */
#include <microhttpd.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "handlers.h"
#include "http.h"

#define CATALOG_PAGE_DEFAULT 100
#define CATALOG_PAGE_MAX 1000
#define LAST_MAX 1024 /* a `last` longer than any name or tag can only be noise */

int paging_args(struct request *req, long def, long max, long *n, const char **last)
{
    const char *s = req_arg(req, "n");
    long v = 0;

    *last = req_arg(req, "last");
    if (*last && (!**last || strlen(*last) > LAST_MAX))
        *last = NULL;
    if (!s) {
        *n = def;
        return 0;
    }
    if (!*s || strlen(s) > 9 || strspn(s, "0123456789") != strlen(s)) {
        respond_oci(req, BERTH_OCI_SIZE_INVALID, "invalid page size 'n': want an integer >= 0");
        return -1;
    }
    for (; *s; s++)
        v = v * 10 + (*s - '0');
    *n = (max >= 0 && v > max) ? max : v;
    return 0;
}

struct list_ctx {
    struct sbuf *b;
    size_t count;
    char last[LAST_MAX + 1];
};

static int list_item(void *ctx, const char *s)
{
    struct list_ctx *c = ctx;
    size_t len = strlen(s);

    if (c->count++)
        sbuf_put(c->b, ",", 1);
    sbuf_json_str(c->b, s);
    if (len > LAST_MAX)
        len = LAST_MAX;
    memcpy(c->last, s, len);
    c->last[len] = '\0';
    return c->b->oom ? BERTH_ERROR : 0;
}

/* Link to the next page: "</v2/<path>?n=<n>&last=<last>>; rel=\"next\"". */
static void next_link(struct request *req, const char *path, long n, const char *last)
{
    struct sbuf link = { 0 };

    sbuf_puts(&link, "</v2/");
    sbuf_puts(&link, path);
    sbuf_puts(&link, "?n=");
    sbuf_u64(&link, (uint64_t)n);
    sbuf_puts(&link, "&last=");
    sbuf_query_value(&link, last);
    sbuf_puts(&link, ">; rel=\"next\"");
    if (!link.oom)
        add_header(req, "Link", link.p);
    sbuf_dispose(&link);
}

void h_tags_list(struct request *req)
{
    struct sbuf b = { 0 };
    struct list_ctx ctx;
    const char *last;
    char path[BERTH_NAME_MAX + 16];
    long n;
    int more = 0, err;

    if (paging_args(req, -1, -1, &n, &last) < 0)
        return;
    memset(&ctx, 0, sizeof(ctx));
    ctx.b = &b;
    sbuf_puts(&b, "{\"name\":");
    sbuf_json_str(&b, req->name);
    sbuf_puts(&b, ",\"tags\":[");
    err = berth_store_tags(req->srv->st, req->name, last, n, list_item, &ctx, &more);
    if (err < 0) {
        sbuf_dispose(&b);
        respond_berr(req, err, BERTH_OCI_NAME_UNKNOWN);
        return;
    }
    sbuf_puts(&b, "]}");
    sbuf_respond(&b, req, "application/json");
    if (more && n > 0 && ctx.count) {
        memcpy(path, req->name, strlen(req->name) + 1);
        strcat(path, "/tags/list");
        next_link(req, path, n, ctx.last);
    }
}

void h_catalog(struct request *req)
{
    struct sbuf b = { 0 };
    struct list_ctx ctx;
    const char *last;
    long n;
    int more = 0, err;

    if (paging_args(req, CATALOG_PAGE_DEFAULT, CATALOG_PAGE_MAX, &n, &last) < 0)
        return;
    memset(&ctx, 0, sizeof(ctx));
    ctx.b = &b;
    sbuf_puts(&b, "{\"repositories\":[");
    err = berth_store_catalog(req->srv->st, last, n, list_item, &ctx, &more);
    if (err < 0) {
        sbuf_dispose(&b);
        respond_berr(req, err, BERTH_OCI_INTERNAL);
        return;
    }
    sbuf_puts(&b, "]}");
    sbuf_respond(&b, req, "application/json");
    if (more && n > 0 && ctx.count)
        next_link(req, "_catalog", n, ctx.last);
}

/*
 * Listings (distribution-spec "Listing tags", end-8a/8b; and distribution's
 * `GET /v2/_catalog`): JSON built in one growing buffer from the store's
 * indexed, lexically ordered walks. Paging: `n` (count) and `last`
 * (exclusive; a tag or a name, params.c); when more remain, `Link: <...?n=&last=>; rel="next"`.
 * Tags: all of them without `n`. Catalog: 100 without `n`, at most 1000 per
 * page (distribution's defaults).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "authn.h"
#include "core/error.h"
#include "core/name.h"
#include "handlers.h"
#include "http.h"
#include "params.h"
#include "router.h"

#define CATALOG_PAGE_DEFAULT 100
#define CATALOG_PAGE_MAX 1000
#define LAST_MAX BERTH_NAME_MAX /* the longest `last` a listing hands out */

/* `last` is a cursor of the route's own kind: a tag, a repository name, a
 * referrer digest (params.c checks its grammar). */
int paging_args(struct request *req, long def, long max, long *n, const char **last)
{
    enum berth_last_kind kind = BERTH_LAST_TAG;

    if (req->route && req->route->shape == R_CATALOG)
        kind = BERTH_LAST_NAME;
    else if (req->route && req->route->shape == R_REFERRERS)
        kind = BERTH_LAST_DIGEST;
    if (berth_param_n(req_arg(req, "n"), def, max, n) < 0 ||
        berth_param_last(req_arg(req, "last"), kind, last) < 0) {
        respond_error(req, HTTP_BAD_REQUEST, berth_error_oci(), berth_error_msg());
        return -1;
    }
    return 0;
}

struct list_ctx {
    struct sbuf *b;
    size_t count;
    char last[LAST_MAX + 1]; /* last walked, shown or not: the next page starts after it */
    struct berth_authn *authn; /* catalog: hide what `user` may not pull; NULL shows all */
    const char *user;
};

static int list_item(void *ctx, const char *s)
{
    struct list_ctx *c = ctx;
    size_t len = strlen(s);

    if (len > LAST_MAX)
        len = LAST_MAX;
    memcpy(c->last, s, len);
    c->last[len] = '\0';
    if (c->authn && !berth_authn_can_pull(c->authn, c->user, s))
        return 0;
    if (c->count++)
        sbuf_put(c->b, ",", 1);
    sbuf_json_str(c->b, s);
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

/*
 * Full tag lists (no `n`, no `last`: what clients and the benchmark ask
 * for), kept serialized per repository and valid for one store tag
 * generation. A 10,000-tag list (220 KB) cost ~1.2 ms of CPU to build even
 * after sbuf_json_str's span copies, 40% of it SQLite stepping the index;
 * served from here it costs ~0.05 ms (tags/list 10k: ~500 → ~20,000
 * req/CPU-s). Responses share the cached bytes by reference count: a copy
 * per request was 9% of the cached path's CPU in perf (18k → 21k req/CPU-s
 * without it). Any tag write anywhere bumps the
 * generation, so every entry is rebuilt on its next request. A few entries,
 * each at most ENTRY_MAX, bound the memory.
 */
#define CACHE_ENTRIES 4
#define ENTRY_MAX (4u << 20)

struct tags_blob {
    long refs; /* the cache's slot and each response using it (atomic) */
    size_t len;
    char data[];
};

struct tags_entry {
    char name[BERTH_NAME_MAX + 1];
    uint64_t gen;
    struct tags_blob *blob; /* NULL: empty slot */
};

struct tags_cache {
    pthread_mutex_t lock;
    unsigned next; /* slot replaced next (round robin) */
    struct tags_entry e[CACHE_ENTRIES];
};

static void blob_release(void *cls)
{
    struct tags_blob *b = cls;

    if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(b);
}

struct tags_cache *tags_cache_new(void)
{
    struct tags_cache *c = calloc(1, sizeof(*c));

    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void tags_cache_free(struct tags_cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < CACHE_ENTRIES; i++)
        blob_release(c->e[i].blob);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The cached list of `name` at generation `gen`, with a reference taken
 * for the caller, or NULL. */
static struct tags_blob *cache_get(struct tags_cache *c, const char *name, uint64_t gen)
{
    struct tags_blob *b = NULL;

    if (!c)
        return NULL;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < CACHE_ENTRIES; i++) {
        struct tags_entry *e = &c->e[i];

        if (e->blob && e->gen == gen && !strcmp(e->name, name)) {
            b = e->blob;
            __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return b;
}

static void cache_put(struct tags_cache *c, const char *name, uint64_t gen, const char *json,
                      size_t len)
{
    struct tags_entry *e = NULL;
    struct tags_blob *b, *old = NULL;

    if (!c || len > ENTRY_MAX || strlen(name) > BERTH_NAME_MAX ||
        (b = malloc(sizeof(*b) + len)) == NULL)
        return;
    b->refs = 1;
    b->len = len;
    memcpy(b->data, json, len);
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < CACHE_ENTRIES && !e; i++) {
        if (c->e[i].blob && !strcmp(c->e[i].name, name))
            e = &c->e[i]; /* this repository's older list */
    }
    if (!e) {
        e = &c->e[c->next];
        c->next = (c->next + 1) % CACHE_ENTRIES;
    }
    if (e->blob && e->gen > gen) {
        old = b; /* a newer list got there first */
    } else {
        old = e->blob;
        memcpy(e->name, name, strlen(name) + 1);
        e->gen = gen;
        e->blob = b;
    }
    pthread_mutex_unlock(&c->lock);
    blob_release(old);
}

void h_tags_list(struct request *req)
{
    struct sbuf b = { 0 };
    struct list_ctx ctx;
    const char *last;
    char path[BERTH_NAME_MAX + 16];
    struct tags_blob *cached;
    uint64_t gen;
    long n;
    int more = 0, err, full;

    if (paging_args(req, -1, -1, &n, &last) < 0)
        return;
    full = n < 0 && !last;
    gen = berth_store_tags_gen(req->srv->st); /* before the walk: see store.h */
    if (full && (cached = cache_get(req->srv->tags_cache, req->name, gen)) != NULL) {
        respond_shared(req, HTTP_OK, cached->data, cached->len, blob_release, cached,
                       "application/json");
        return;
    }
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
    if (full && !b.oom)
        cache_put(req->srv->tags_cache, req->name, gen, b.p, b.len);
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
    ctx.authn = req->srv->authn;
    ctx.user = req->user;
    sbuf_puts(&b, "{\"repositories\":[");
    err = berth_store_catalog(req->srv->st, last, n, list_item, &ctx, &more);
    if (err < 0) {
        sbuf_dispose(&b);
        respond_berr(req, err, BERTH_OCI_INTERNAL);
        return;
    }
    sbuf_puts(&b, "]}");
    sbuf_respond(&b, req, "application/json");
    if (more && n > 0 && ctx.last[0]) /* a page of hidden names still links on */
        next_link(req, "_catalog", n, ctx.last);
}

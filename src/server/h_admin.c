/*
 * berth's own endpoints under /v2/_berth/ (docs/gc.md): start and watch a
 * garbage collection, delete a whole repository. The collection runs on
 * the server's runner thread (gcrun.c); these handlers only ask it and
 * answer with its status as JSON. Authorization happened before (http.c):
 * the gc endpoints need the admin action (loopback clients only when no
 * auth is configured), a repository deletion the delete action on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "core/error.h"
#include "gcrun.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "rules.h"
#include "store/maint.h"

#define JSON_TYPE "application/json"

static void put_time(struct sbuf *b, const char *key, int64_t t)
{
    char buf[40];
    time_t tt = (time_t)t;
    struct tm tm;

    sbuf_puts(b, ",");
    sbuf_json_str(b, key);
    if (!t) {
        sbuf_puts(b, ":null");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), ":\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    sbuf_puts(b, buf);
}

static void put_u64(struct sbuf *b, const char *key, uint64_t v)
{
    sbuf_puts(b, ",");
    sbuf_json_str(b, key);
    sbuf_puts(b, ":");
    sbuf_u64(b, v);
}

static void put_bool(struct sbuf *b, const char *key, int v)
{
    sbuf_puts(b, ",");
    sbuf_json_str(b, key);
    sbuf_puts(b, v ? ":true" : ":false");
}

/* The status object of docs/gc.md. */
static void status_json(struct sbuf *b, const struct berth_gcrun_status *s)
{
    const struct berth_gc_stats *x = &s->stats;
    char num[48];

    sbuf_puts(b, "{\"state\":");
    sbuf_json_str(b, berth_gcrun_state_name(s->state));
    put_u64(b, "id", s->id);
    if (s->id) {
        sbuf_puts(b, ",\"trigger\":");
        sbuf_json_str(b, s->trigger);
        put_bool(b, "dry_run", s->params.dry_run);
        put_bool(b, "untagged", s->params.untagged);
        put_u64(b, "grace_seconds", (uint64_t)(s->params.grace_sec > 0 ? s->params.grace_sec : 0));
        put_time(b, "started", s->started);
        put_time(b, "finished", s->finished);
        snprintf(num, sizeof(num), ",\"seconds\":%.3f", s->seconds);
        sbuf_puts(b, num);
        put_u64(b, "tags", x->tags);
        put_u64(b, "manifests", x->manifests);
        put_u64(b, "links", x->links);
        put_u64(b, "blobs", x->blobs);
        put_u64(b, "orphans", x->orphans);
        put_u64(b, "uploads", x->uploads);
        put_u64(b, "bytes_freed", x->bytes);
        put_u64(b, "blobs_live", x->blobs_live);
        put_u64(b, "bytes_live", x->bytes_live);
        if (s->state == BERTH_GCRUN_FAILED) {
            sbuf_puts(b, ",\"error\":");
            sbuf_json_str(b, s->error);
        }
    }
    put_time(b, "next_run", s->next_run);
    sbuf_puts(b, "}\n");
}

static void respond_status(struct request *req, unsigned status,
                           const struct berth_gcrun_status *s)
{
    struct sbuf b = { 0 };

    status_json(&b, s);
    if (b.oom || !b.p) {
        sbuf_dispose(&b);
        respond_oci(req, BERTH_OCI_INTERNAL, "out of memory");
        return;
    }
    respond_take(req, status, b.p, b.len, JSON_TYPE);
}

static struct berth_gcrun *runner(struct request *req)
{
    struct berth_gcrun *g = req->srv->gcrun;

    if (!g)
        respond_error(req, HTTP_SERVICE_UNAVAILABLE, BERTH_OCI_UNAVAILABLE,
                      "garbage collection is not available in this server");
    return g;
}

/* A boolean query argument: absent → keep *v; "1"/"true" → 1, "0"/"false" → 0. */
static int bool_arg(struct request *req, const char *key, int *v)
{
    const char *s = req_arg(req, key);

    if (!s)
        return 0;
    if (!strcmp(s, "1") || !strcmp(s, "true") || !*s)
        *v = 1;
    else if (!strcmp(s, "0") || !strcmp(s, "false"))
        *v = 0;
    else
        return -1;
    return 0;
}

void h_gc_start(struct request *req)
{
    struct berth_gcrun *g = runner(req);
    struct berth_gcrun_params p;
    struct berth_gcrun_status s;
    const char *grace;
    char msg[300];
    int wait = 0, error;
    int64_t ms;

    if (!g)
        return;
    berth_gcrun_defaults(g, &p);
    if (bool_arg(req, "dry-run", &p.dry_run) < 0 || bool_arg(req, "untagged", &p.untagged) < 0 ||
        bool_arg(req, "wait", &wait) < 0) {
        respond_error(req, HTTP_BAD_REQUEST, BERTH_OCI_UNSUPPORTED,
                      "dry-run, untagged and wait take 1, true, 0 or false");
        return;
    }
    if ((grace = req_arg(req, "grace")) != NULL) {
        if (berth_duration_parse(&ms, grace) < 0 || ms < 0) {
            snprintf(msg, sizeof(msg), "invalid grace '%.200s' (a duration: 0s, 30m, 24h)",
                     grace);
            respond_error(req, HTTP_BAD_REQUEST, BERTH_OCI_UNSUPPORTED, msg);
            return;
        }
        p.grace_sec = ms / 1000;
    }
    error = berth_gcrun_start(g, &p, wait, &s);
    if (error == BERTH_EEXISTS ||
        (error == 0 && s.state == BERTH_GCRUN_FAILED && s.code == BERTH_EEXISTS)) {
        /* 409: the caller asks again later; GET shows the running one */
        respond_error(req, HTTP_CONFLICT, BERTH_OCI_UNAVAILABLE,
                      error ? berth_error_msg() : s.error);
        return;
    }
    if (error < 0) {
        respond_error(req, HTTP_SERVICE_UNAVAILABLE, BERTH_OCI_UNAVAILABLE,
                      berth_error_msg());
        return;
    }
    if (wait && s.state == BERTH_GCRUN_FAILED) {
        respond_error(req, HTTP_INTERNAL_SERVER_ERROR, BERTH_OCI_INTERNAL, s.error);
        return;
    }
    respond_status(req, wait ? HTTP_OK : HTTP_ACCEPTED, &s);
}

void h_gc_status(struct request *req)
{
    struct berth_gcrun *g = runner(req);
    struct berth_gcrun_status s;

    if (!g)
        return;
    berth_gcrun_status(g, &s);
    respond_status(req, HTTP_OK, &s);
}

void h_repo_delete(struct request *req)
{
    int err;

    if (!req->srv->delete_enabled) {
        respond_error(req, HTTP_METHOD_NOT_ALLOWED, BERTH_OCI_UNSUPPORTED,
                      "deletes are disabled on this registry");
        return;
    }
    /* a tag an immutable rule protects refuses the deletion inside its
     * transaction (the store's tag guard, set by cmd_serve.c) */
    if ((err = berth_store_repo_delete(req->srv->st, req->name)) < 0) {
        respond_berr(req, err, BERTH_OCI_NAME_UNKNOWN);
        return;
    }
    berth_log_info("repository '%s' deleted%s%s", req->name, req->user[0] ? " by " : "",
                   req->user);
    respond_empty(req, HTTP_ACCEPTED);
}

/*
 * Manifests (distribution-spec "Pulling manifests", "Pushing manifests",
 * "Deleting manifests"): end-3 GET/HEAD, end-7 PUT, end-9 DELETE
 * /v2/<name>/manifests/<tag|digest>. A manifest is served as the exact bytes
 * pushed with the Content-Type pushed; its digest is always computed over
 * those bytes. The PUT body is buffered (http.c caps it at the configured
 * limit → 413 SIZE_INVALID), validated by core/manifest and stored whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/manifest.h"
#include "core/name.h"
#include "handlers.h"
#include "http.h"
#include "params.h"
#include "rules.h"

void h_manifest_get(struct request *req)
{
    struct berth_manifest_info info;
    char etag[BERTH_DIGEST_STR_MAX + 2];
    const int head = req->method == M_HEAD;
    int err;

    err = berth_store_manifest_get(req->srv->st, req->name, req->ref, !head, &info);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_MANIFEST_UNKNOWN);
        return;
    }
    if (head) {
        respond_head(req, HTTP_OK, info.len);
    } else {
        respond_take(req, HTTP_OK, info.body, info.len, NULL);
        info.body = NULL;
    }
    snprintf(etag, sizeof(etag), "\"%s\"", info.digest.str);
    add_header(req, "Content-Type",
               info.media_type ? info.media_type : BERTH_MT_OCI_MANIFEST);
    add_header(req, "Docker-Content-Digest", info.digest.str);
    add_header(req, "ETag", etag);
    berth_manifest_info_dispose(&info);
}

void h_manifest_open(struct request *req)
{
    req->body_mode = BODY_MANIFEST;
}

/* Collect every ?tag= (req_arg would give the first only). */
static int collect_tag(void *cls, const char *key, const char *value)
{
    if (strcmp(key, "tag") != 0)
        return 0;
    return berth_param_tag_add(cls, value) < 0 ? -1 : 0;
}

/* The ?tag= parameters: at most BERTH_PARAM_TAGS_MAX, only on a push by
 * digest, each a valid tag. 0, or -1 after answering 400 TAG_INVALID. */
static int extra_tags(struct request *req, struct berth_tag_params *tl)
{
    memset(tl, 0, sizeof(*tl));
    req_args_each(req, collect_tag, tl);
    if (tl->too_many) {
        respond_oci(req, BERTH_OCI_TAG_INVALID, "too many tag parameters");
        return -1;
    }
    if (tl->n && !req->ref_is_digest) {
        respond_oci(req, BERTH_OCI_TAG_INVALID, "tag parameters need a push by digest");
        return -1;
    }
    if (berth_param_tags_check(tl) < 0) {
        respond_oci(req, BERTH_OCI_TAG_INVALID, berth_error_msg());
        return -1;
    }
    return 0;
}

/* A Content-Type naming no manifest kind is refused (as distribution does),
 * except the generic ones some clients send, which leave the kind to the
 * body's mediaType. */
static int content_type_ok(const char *ct)
{
    static const char *const generic[] = { "application/json", "text/plain",
                                           "application/octet-stream" };
    size_t len;

    if (!ct)
        return 1;
    len = strcspn(ct, ";");
    while (len && (ct[len - 1] == ' ' || ct[len - 1] == '\t'))
        len--;
    if (!len || berth_manifest_kind_of(ct, len) != BERTH_MK_UNKNOWN)
        return 1;
    for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
        if (strlen(generic[i]) == len && !strncasecmp(ct, generic[i], len))
            return 1;
    return 0;
}

/* A quota covering the repository (rules.h) refuses a manifest new to it
 * whose bytes would exceed it: the last point a push can be stopped, so
 * one whose blobs came in without a length is still refused here. 0, or -1
 * after answering 403. */
static int manifest_quota_refused(struct request *req, const struct berth_maint_config *mc,
                                  const struct berth_digest *d)
{
    struct berth_manifest_info info;
    int err;

    if (!berth_rules_repo_has_quota(mc, req->name))
        return 0;
    err = berth_store_manifest_get(req->srv->st, req->name, d->str, 0, &info);
    if (err == 0) {
        berth_manifest_info_dispose(&info);
        return 0; /* already stored: re-tagging adds nothing */
    }
    if (err == BERTH_ENOTFOUND)
        err = berth_rules_check_quota(mc, req->srv->st, req->name, req->body_len, "manifest",
                                      NULL);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_DENIED);
        return -1;
    }
    return 0;
}

void h_manifest_put(struct request *req)
{
    const struct berth_maint_config *mc = req->srv->maint;
    struct berth_manifest *m = NULL;
    struct berth_manifest_put put;
    const char *ct = req_header(req, "Content-Type");
    struct berth_digest d;
    struct berth_tag_params tl;
    char location[BERTH_NAME_MAX + BERTH_DIGEST_STR_MAX + 32];
    int err;

    if (extra_tags(req, &tl) < 0)
        goto done;
    if (!content_type_ok(ct)) {
        respond_oci(req, BERTH_OCI_MANIFEST_INVALID, "unsupported manifest media type");
        goto done;
    }
    err = berth_digest_buf(&d, req->ref_is_digest ? req->digest.algo : BERTH_SHA256,
                           req->body, req->body_len);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_INTERNAL);
        goto done;
    }
    if (req->ref_is_digest && !berth_digest_equal(&d, &req->digest)) {
        respond_oci(req, BERTH_OCI_DIGEST_INVALID, "manifest digest does not match the reference");
        goto done;
    }
    err = berth_manifest_parse(&m, ct, req->body, req->body_len);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_MANIFEST_INVALID);
        goto done;
    }

    if (manifest_quota_refused(req, mc, &d) < 0)
        goto done;

    memset(&put, 0, sizeof(put));
    if (berth_rules_repo_has_immutable(mc, req->name)) {
        put.tag_guard = berth_rules_tag_guard;
        put.guard_ctx = (void *)(uintptr_t)mc;
    }
    put.repo = req->name;
    put.tag = req->ref_is_digest ? NULL : req->ref;
    put.extra_tags = tl.n ? tl.tags : NULL;
    put.nextra_tags = tl.n;
    put.m = m;
    put.body = req->body;
    put.len = req->body_len;
    put.digest = &d;
    if ((err = berth_store_manifest_put(req->srv->st, &put)) < 0) {
        respond_berr(req, err, BERTH_OCI_MANIFEST_INVALID);
        goto done;
    }

    respond_empty(req, HTTP_CREATED);
    snprintf(location, sizeof(location), "/v2/%s/manifests/%s", req->name, d.str);
    add_header(req, "Location", location);
    add_header(req, "Docker-Content-Digest", d.str);
    for (size_t i = 0; i < tl.n; i++)
        add_header(req, "OCI-Tag", tl.tags[i]);
    if (m->has_subject)
        add_header(req, "OCI-Subject", m->subject.digest.str);
done:
    berth_manifest_free(m);
}

void h_manifest_delete(struct request *req)
{
    int err;

    if (!req->srv->delete_enabled) {
        respond_error(req, HTTP_METHOD_NOT_ALLOWED, BERTH_OCI_UNSUPPORTED,
                      "deletes are disabled on this registry");
        return;
    }
    /* an immutable tag refuses inside the store's transaction (the tag
     * guard cmd_serve.c sets): DENIED naming the rule */
    if (req->ref_is_digest)
        err = berth_store_manifest_delete(req->srv->st, req->name, &req->digest);
    else
        err = berth_store_tag_delete(req->srv->st, req->name, req->ref);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_MANIFEST_UNKNOWN);
        return;
    }
    respond_empty(req, HTTP_ACCEPTED);
}

/*
 * Blob uploads (distribution-spec "Pushing blobs"): end-4a/4b POST, end-11
 * mount, end-5 PATCH, end-6 PUT, end-13 GET and end-14 DELETE on
 * /v2/<name>/blobs/uploads/[<id>]. Bodies stream straight into the session
 * (http.c calls berth_upload_write per piece of body it reads): a layer never
 * sits in memory. The begin step opens the session when the headers arrive;
 * the handler closes it (keep=1) or commits it; anything else — a failure,
 * a broken connection — rolls the chunk back (http.c, keep=0).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "core/range.h"
#include "handlers.h"
#include "http.h"
#include "params.h"
#include "rules.h"

#define LOCATION_MAX (BERTH_NAME_MAX + BERTH_DIGEST_STR_MAX + 32)

/* Location, Docker-Upload-UUID and Range of a session holding `offset`
 * bytes. Range is "0-<last>" without "bytes=" (docker parses it that way),
 * "0-0" when empty as distribution does. */
static void session_headers(struct request *req, const char *id, uint64_t offset)
{
    char location[LOCATION_MAX], range[48];

    snprintf(location, sizeof(location), "/v2/%s/blobs/uploads/%s", req->name, id);
    snprintf(range, sizeof(range), "0-%" PRIu64, offset ? offset - 1 : 0);
    add_header(req, "Location", location);
    add_header(req, "Docker-Upload-UUID", id);
    add_header(req, "Range", range);
}

static void blob_created(struct request *req, const struct berth_digest *d)
{
    char location[LOCATION_MAX];

    snprintf(location, sizeof(location), "/v2/%s/blobs/%s", req->name, d->str);
    respond_empty(req, HTTP_CREATED);
    add_header(req, "Location", location);
    add_header(req, "Docker-Content-Digest", d->str);
}

/* Parse the ?digest= parameter into req->digest. 0, or -1 after 400. */
static int digest_arg(struct request *req)
{
    if (berth_param_digest(req_arg(req, "digest"), &req->digest) < 0) {
        respond_error(req, HTTP_BAD_REQUEST, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
        return -1;
    }
    return 0;
}

/* ---- quotas (rules.h) ----
 * Checked where no byte has been written yet: in the begin step, from the
 * Content-Length, before the session is even opened; a body without a
 * length is checked at commit, before the blob is placed (the session is
 * then cancelled). A repository no quota covers pays nothing. */

/* 1 when the repository already links blob d: storing it again adds nothing. */
static int already_linked(struct request *req, const struct berth_digest *d)
{
    uint64_t size;

    return d && berth_store_blob_stat(req->srv->st, req->name, d, &size) == 0;
}

/* 0 when `adding` bytes fit every quota covering the repository; else the
 * error (BERTH_EDENIED: over a quota) after answering it. */
static int quota_refused(struct request *req, const struct berth_maint_config *mc,
                         uint64_t adding, const char *what, const struct berth_digest *d)
{
    int err = berth_rules_check_quota(mc, req->srv->st, req->name, adding, what, d);

    if (err < 0)
        respond_berr(req, err, BERTH_OCI_DENIED);
    return err < 0 ? err : 0;
}

/* Before the body: `offset` bytes already in the session plus the
 * announced Content-Length. Blob d (NULL: not known yet) already linked
 * adds nothing. 0, or the error after answering. */
static int quota_before_body(struct request *req, uint64_t offset, const struct berth_digest *d)
{
    const struct berth_maint_config *mc = req->srv->maint;
    const char *cl = req_header(req, "Content-Length");
    unsigned long long len;
    char *end;

    if (!cl || !berth_rules_repo_has_quota(mc, req->name))
        return 0;
    len = strtoull(cl, &end, 10);
    if (end == cl || *end || already_linked(req, d))
        return 0;
    return quota_refused(req, mc, len > UINT64_MAX - offset ? UINT64_MAX : offset + len,
                         "upload", d);
}

/* At commit, for every body (also those without a length): the whole blob,
 * unless the repository already has it. On refusal the session is
 * cancelled (its data deleted). 0, or -1 after answering. */
static int quota_at_commit(struct request *req)
{
    const struct berth_maint_config *mc = req->srv->maint;
    int err;

    if (!berth_rules_repo_has_quota(mc, req->name) || already_linked(req, &req->digest))
        return 0;
    err = quota_refused(req, mc, berth_upload_size(req->upload), "upload", &req->digest);
    if (err == 0)
        return 0;
    /* nothing is placed; a failed check (not a refusal) only drops this chunk */
    berth_upload_close(req->upload, 0);
    req->upload = NULL;
    if (err == BERTH_EDENIED)
        berth_upload_cancel(req->srv->st, req->name, req->ref);
    return -1;
}

void h_upload_start(struct request *req)
{
    char id[BERTH_UPLOAD_ID_MAX];
    int err;

    if ((err = berth_upload_new(req->srv->st, req->name, id)) < 0) {
        respond_berr(req, err, BERTH_OCI_NAME_UNKNOWN);
        return;
    }
    respond_empty(req, HTTP_ACCEPTED);
    session_headers(req, id, 0);
}

/* A mount adds the blob's size unless the repository has it already; a
 * blob `from` does not have is left to the upload that follows. */
static int mount_quota_refused(struct request *req, const char *from,
                               const struct berth_digest *d)
{
    const struct berth_maint_config *mc = req->srv->maint;
    uint64_t size;

    if (!berth_rules_repo_has_quota(mc, req->name) || already_linked(req, d) ||
        berth_store_blob_stat(req->srv->st, from, d, &size) < 0)
        return 0;
    return quota_refused(req, mc, size, "mount", d);
}

/* end-11: link the blob from another repository; when that is not possible
 * (no `from`, invalid `from`, blob not there) open a normal session. */
void h_upload_mount(struct request *req)
{
    const char *from = req_arg(req, "from");
    struct berth_digest d;
    int err;

    if (berth_param_digest(req_arg(req, "mount"), &d) < 0) {
        respond_error(req, HTTP_BAD_REQUEST, BERTH_OCI_DIGEST_INVALID, berth_error_msg());
        return;
    }
    /* mount_denied: the caller may not pull `from`; the spec's answer is a
     * plain upload session, not an error that would tell `from` exists. */
    if (!req->mount_denied && berth_param_from(from) == 0) {
        if (mount_quota_refused(req, from, &d) < 0)
            return;
        err = berth_store_blob_mount(req->srv->st, req->name, from, &d);
        if (err == 0) {
            blob_created(req, &d);
            return;
        }
        if (err != BERTH_ENOTFOUND && err != BERTH_EINVALID && err != BERTH_EDENIED) {
            respond_berr(req, err, BERTH_OCI_BLOB_UNKNOWN);
            return;
        }
    }
    berth_error_clear();
    h_upload_start(req);
}

/* end-4b: a new session, opened for the whole body. */
void h_mono_open(struct request *req)
{
    char id[BERTH_UPLOAD_ID_MAX];
    int err;

    if (digest_arg(req) < 0 || quota_before_body(req, 0, &req->digest) < 0)
        return;
    if ((err = berth_upload_new(req->srv->st, req->name, id)) < 0) {
        respond_berr(req, err, BERTH_OCI_NAME_UNKNOWN);
        return;
    }
    if ((err = berth_upload_open(&req->upload, req->srv->st, req->name, id, -1)) < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
        berth_upload_cancel(req->srv->st, req->name, id);
        return;
    }
    /* the route has no reference: keep the session id where the chunk
     * routes have theirs, for quota_at_commit's cancel */
    snprintf(req->ref, sizeof(req->ref), "%s", id);
    req->body_mode = BODY_UPLOAD;
}

static void commit(struct request *req)
{
    int err;

    if (quota_at_commit(req) < 0)
        return;
    err = berth_upload_commit(req->upload, &req->digest, NULL);
    req->upload = NULL; /* freed by commit in every case */
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_INVALID);
        return;
    }
    blob_created(req, &req->digest);
}

void h_upload_mono(struct request *req)
{
    commit(req);
}

/* Open the session for a chunk: with a Content-Range its start must be the
 * session's offset (416 otherwise, session untouched) and a Content-Length
 * must agree with it. */
static void open_chunk(struct request *req)
{
    const char *cr = req_header(req, "Content-Range");
    const char *cl = req_header(req, "Content-Length");
    struct berth_range r;
    uint64_t offset;
    int64_t expect = -1;
    int err;

    if (cr) {
        if (berth_content_range_parse(&r, cr, strlen(cr)) < 0 || r.start > INT64_MAX) {
            respond_error(req, HTTP_RANGE_NOT_SATISFIABLE, BERTH_OCI_BLOB_UPLOAD_INVALID,
                          berth_error_msg());
            goto range_error;
        }
        req->has_range = 1;
        req->range_len = r.end - r.start + 1;
        if (cl && strtoull(cl, NULL, 10) != req->range_len) {
            respond_error(req, HTTP_RANGE_NOT_SATISFIABLE, BERTH_OCI_BLOB_UPLOAD_INVALID,
                          "Content-Length does not match Content-Range");
            goto range_error;
        }
        expect = (int64_t)r.start;
    }
    err = berth_upload_open(&req->upload, req->srv->st, req->name, req->ref, expect);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
        if (err == BERTH_ERANGE)
            goto range_error;
        return;
    }
    req->chunk_start = berth_upload_size(req->upload);
    req->body_mode = BODY_UPLOAD;
    return;

range_error:
    /* tell the client where the session stands so it can resume */
    if (berth_upload_offset(req->srv->st, req->name, req->ref, &offset) == 0)
        session_headers(req, req->ref, offset);
}

/* Bytes the session holds (they count against a quota before they are a
 * blob); 0 for an unknown session, which open_chunk then answers. */
static uint64_t session_offset(struct request *req)
{
    uint64_t offset = 0;

    if (berth_upload_offset(req->srv->st, req->name, req->ref, &offset) < 0) {
        berth_error_clear();
        return 0;
    }
    return offset;
}

void h_patch_open(struct request *req)
{
    if (berth_rules_repo_has_quota(req->srv->maint, req->name) &&
        quota_before_body(req, session_offset(req), NULL) < 0)
        return;
    open_chunk(req);
}

void h_put_open(struct request *req)
{
    int err;

    if (digest_arg(req) < 0)
        return;
    /* the upload's last request: refused, it can never complete, so its
     * data goes now rather than at the next purge */
    if (berth_rules_repo_has_quota(req->srv->maint, req->name) &&
        (err = quota_before_body(req, session_offset(req), &req->digest)) < 0) {
        if (err == BERTH_EDENIED)
            berth_upload_cancel(req->srv->st, req->name, req->ref);
        return;
    }
    open_chunk(req);
}

/* With a Content-Range, the chunk must have been exactly that long. 0, or
 * -1 after answering 416 (the chunk is rolled back by http.c). */
static int check_chunk(struct request *req)
{
    uint64_t got = berth_upload_size(req->upload) - req->chunk_start;

    if (req->has_range && got != req->range_len) {
        respond_error(req, HTTP_RANGE_NOT_SATISFIABLE, BERTH_OCI_BLOB_UPLOAD_INVALID,
                      "chunk length does not match Content-Range");
        session_headers(req, req->ref, req->chunk_start);
        return -1;
    }
    return 0;
}

void h_upload_patch(struct request *req)
{
    uint64_t offset;
    int err;

    if (check_chunk(req) < 0)
        return;
    offset = berth_upload_size(req->upload);
    err = berth_upload_close(req->upload, 1);
    req->upload = NULL;
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_INVALID);
        return;
    }
    respond_empty(req, HTTP_ACCEPTED);
    session_headers(req, req->ref, offset);
}

void h_upload_put(struct request *req)
{
    if (check_chunk(req) < 0)
        return;
    commit(req);
}

void h_upload_status(struct request *req)
{
    uint64_t offset;
    int err;

    if ((err = berth_upload_offset(req->srv->st, req->name, req->ref, &offset)) < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
        return;
    }
    respond_empty(req, HTTP_NO_CONTENT);
    session_headers(req, req->ref, offset);
}

void h_upload_cancel(struct request *req)
{
    int err;

    if ((err = berth_upload_cancel(req->srv->st, req->name, req->ref)) < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
        return;
    }
    respond_empty(req, HTTP_NO_CONTENT);
}

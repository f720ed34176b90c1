/*
 * Blob reads and deletes (distribution-spec "Pulling blobs", "Deleting
 * blobs"): end-2 GET/HEAD and end-10 DELETE /v2/<name>/blobs/<digest>.
 * GET sends the file with sendfile (http.c closes the fd), never through memory;
 * HEAD only stats it. A single `Range` is honoured with 206 (RFC 9110
 * §14.2); an unsatisfiable or malformed one is 416 with a Content-Range of
 * "bytes *" over the size; a multi-range request gets the whole blob (200),
 * as RFC 9110 allows.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/range.h"
#include "handlers.h"
#include "http.h"

static void blob_headers(struct request *req)
{
    char etag[BERTH_DIGEST_STR_MAX + 2];

    snprintf(etag, sizeof(etag), "\"%s\"", req->digest.str);
    add_header(req, "Docker-Content-Digest", req->digest.str);
    add_header(req, "Content-Type", "application/octet-stream");
    add_header(req, "Accept-Ranges", "bytes");
    add_header(req, "ETag", etag);
    add_header(req, "Cache-Control", "max-age=31536000");
}

void h_blob_get(struct request *req)
{
    struct berth_store *st = req->srv->st;
    const int head = req->method == M_HEAD;
    const char *range_hdr = req_header(req, "Range");
    struct berth_range range = { 0, 0 };
    char content_range[64];
    uint64_t size = 0, len;
    unsigned status = HTTP_OK;
    int fd = -1, err;

    if (head)
        err = berth_store_blob_stat(st, req->name, &req->digest, &size);
    else
        err = berth_store_blob_open(st, req->name, &req->digest, &fd, &size);
    if (err < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UNKNOWN);
        return;
    }
    if (size)
        range.end = size - 1;
    if (range_hdr) {
        err = berth_range_parse(&range, range_hdr, strlen(range_hdr), size);
        if (err == 0) {
            status = HTTP_PARTIAL_CONTENT;
        } else if (err == BERTH_EUNSUPPORTED) {
            range.start = 0;
            range.end = size ? size - 1 : 0;
        } else {
            if (fd >= 0)
                close(fd);
            respond_error(req, HTTP_RANGE_NOT_SATISFIABLE, BERTH_OCI_RANGE_INVALID,
                          berth_error_msg());
            snprintf(content_range, sizeof(content_range), "bytes */%" PRIu64, size);
            add_header(req, "Content-Range", content_range);
            return;
        }
    }
    len = size ? range.end - range.start + 1 : 0;
    if (head)
        respond_head(req, status, len);
    else
        respond_fd(req, status, fd, range.start, len);
    if (status == HTTP_PARTIAL_CONTENT) {
        snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 range.start, range.end, size);
        add_header(req, "Content-Range", content_range);
    }
    blob_headers(req);
}

void h_blob_delete(struct request *req)
{
    int err;

    if (!req->srv->delete_enabled) {
        respond_error(req, HTTP_METHOD_NOT_ALLOWED, BERTH_OCI_UNSUPPORTED,
                      "deletes are disabled on this registry");
        return;
    }
    if ((err = berth_store_blob_unlink(req->srv->st, req->name, &req->digest)) < 0) {
        respond_berr(req, err, BERTH_OCI_BLOB_UNKNOWN);
        return;
    }
    respond_empty(req, HTTP_ACCEPTED);
}

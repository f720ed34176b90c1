/*
 * HTTP byte ranges: the `Range` request header of a blob GET (RFC 9110 §14.2,
 * one range only) and the `Content-Range` header of a chunked upload PATCH
 * (distribution-spec: "<start>-<end>", also accepting "bytes <start>-<end>/<len|*>").
 */
#ifndef BERTH_RANGE_H
#define BERTH_RANGE_H

#include <stddef.h>
#include <stdint.h>

struct berth_range {
    uint64_t start; /* first byte */
    uint64_t end;   /* last byte, inclusive */
};

/* Parse a Range header value against a resource of `size` bytes:
 * "bytes=a-b" (b clipped to size-1), "bytes=a-", "bytes=-n" (last n bytes).
 * 0 and *out on success; BERTH_ERANGE (→416) when unsatisfiable
 * (a >= size, n == 0, empty resource); BERTH_EINVALID (→416) when malformed
 * (b < a, garbage, overflow); BERTH_EUNSUPPORTED when several ranges are
 * asked (the caller answers 200 with the whole body, as RFC 9110 allows). */
int berth_range_parse(struct berth_range *out, const char *hdr, size_t len, uint64_t size);

/* Parse an upload Content-Range value: "a-b" or "bytes a-b/total" or
 * "bytes a-b/<star>" (the complete length unknown). b >= a. 0 or BERTH_EINVALID. */
int berth_content_range_parse(struct berth_range *out, const char *hdr, size_t len);

#endif

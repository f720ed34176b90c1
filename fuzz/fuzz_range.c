/*
 * libFuzzer target for the Range and Content-Range parsers (both are request
 * headers). Invariants checked: a parsed Range lies within the resource
 * (start <= end < size) for several sizes, and a parsed Content-Range has
 * start <= end <= 2^63-1; failures use only the documented codes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t sizes[] = { 0, 1, 10, 1024, 9223372036854775807ull };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_range r;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        rc = berth_range_parse(&r, (const char *)data, size, sizes[i]);
        if (rc == 0) {
            if (r.start > r.end || r.end >= sizes[i])
                abort();
        } else if (rc != BERTH_EINVALID && rc != BERTH_ERANGE && rc != BERTH_EUNSUPPORTED) {
            abort();
        } else if (berth_error_oci() != BERTH_OCI_RANGE_INVALID) {
            abort();
        }
    }
    rc = berth_content_range_parse(&r, (const char *)data, size);
    if (rc == 0) {
        if (r.start > r.end || r.end > (uint64_t)INT64_MAX)
            abort();
    } else if (rc != BERTH_EINVALID) {
        abort();
    }
    return 0;
}

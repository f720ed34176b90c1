/*
 * libFuzzer target for berth_digest_parse (every digest in a URL, header or
 * manifest goes through it). Invariants checked: a digest that parses
 * re-serializes to the same string and re-parses equal; failures leave it empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_digest d, again, h;
    int rc;

    rc = berth_digest_parse(&d, (const char *)data, size);
    if (rc == 0) {
        if (d.algo != BERTH_SHA256 && d.algo != BERTH_SHA512)
            abort();
        if (strlen(d.str) != size || memcmp(d.str, data, size) != 0)
            abort();
        if (d.len != (d.algo == BERTH_SHA256 ? 32 : 64))
            abort();
        if (berth_digest_parse(&again, d.str, strlen(d.str)) != 0 ||
            !berth_digest_equal(&d, &again))
            abort();
        if (strcmp(berth_digest_hex(&d), d.str + strlen(berth_digest_algo_name(d.algo)) + 1) != 0)
            abort();
    } else {
        if (rc != BERTH_EINVALID && rc != BERTH_EUNSUPPORTED)
            abort();
        if (berth_error_oci() != BERTH_OCI_DIGEST_INVALID || d.algo != BERTH_DIGEST_NONE)
            abort();
    }

    /* Whatever we hash must come back as a parseable canonical digest. */
    if (berth_digest_buf(&h, size % 2 ? BERTH_SHA512 : BERTH_SHA256, data, size) != 0)
        abort();
    if (berth_digest_parse(&again, h.str, strlen(h.str)) != 0 || !berth_digest_equal(&h, &again))
        abort();
    return 0;
}

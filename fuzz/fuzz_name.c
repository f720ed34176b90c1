/*
 * libFuzzer target for berth_name_check and berth_tag_check (they run on
 * every request path). Invariants checked against the spec regexes: accepted
 * names are <= 255 bytes of [a-z0-9._/-], start and end alphanumeric, have no
 * empty component; accepted tags are <= 128 bytes and never start with '.' or '-'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lower_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void check_name(const uint8_t *s, size_t len)
{
    size_t i;
    int rc = berth_name_check((const char *)s, len);

    if (rc != 0) {
        if (rc != BERTH_EINVALID || berth_error_oci() != BERTH_OCI_NAME_INVALID)
            abort();
        return;
    }
    if (len == 0 || len > 255 || !lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
        abort();
    for (i = 0; i < len; i++) {
        uint8_t c = s[i];

        if (!lower_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/')
            abort();
        /* every non-alnum is followed by a permitted continuation */
        if (c == '/' && !lower_alnum(s[i + 1]))
            abort();
        if (c == '.' && !lower_alnum(s[i + 1]))
            abort();
        if (c == '_' && i + 2 < len && s[i + 1] == '_' && s[i + 2] == '_')
            abort();
        if ((c == '/' || c == '.' || c == '_' || c == '-') && i > 0 && s[i - 1] == '/')
            abort();
    }
}

static void check_tag(const uint8_t *s, size_t len)
{
    size_t i;
    int rc = berth_tag_check((const char *)s, len);

    if (rc != 0) {
        if (rc != BERTH_EINVALID || berth_error_oci() != BERTH_OCI_TAG_INVALID)
            abort();
        return;
    }
    if (len == 0 || len > 128 || s[0] == '.' || s[0] == '-')
        abort();
    for (i = 0; i < len; i++)
        if (!(lower_alnum(s[i]) || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '.' || s[i] == '_' ||
              s[i] == '-'))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_name(data, size);
    check_tag(data, size);
    return 0;
}

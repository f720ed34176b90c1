/*
 * The OCI error table (distribution-spec "Error Codes", code-1 … code-15) and
 * its JSON rendering. One row per enum berth_oci_code; the row order must
 * match the enum (checked at compile time by the array size). Handlers never
 * hand-write error JSON: berth_oci_error_json() escapes the message itself.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/oci.h"

struct oci_row {
    const char *code;
    int status;
    const char *message;
};

static const struct oci_row table[] = {
    [BERTH_OCI_NONE] = { "UNKNOWN", 500, "unknown error" },
    [BERTH_OCI_BLOB_UNKNOWN] = { "BLOB_UNKNOWN", 404, "blob unknown to registry" },
    [BERTH_OCI_BLOB_UPLOAD_INVALID] = { "BLOB_UPLOAD_INVALID", 400, "blob upload invalid" },
    [BERTH_OCI_BLOB_UPLOAD_UNKNOWN] = { "BLOB_UPLOAD_UNKNOWN", 404,
                                        "blob upload unknown to registry" },
    [BERTH_OCI_DIGEST_INVALID] = { "DIGEST_INVALID", 400,
                                   "provided digest did not match uploaded content" },
    /* distribution-spec §Endpoints lists 404 as the failure status of end-7 (PUT manifest) and
     * code-5 carries no status of its own, so 404; distribution itself answers 400. */
    [BERTH_OCI_MANIFEST_BLOB_UNKNOWN] = { "MANIFEST_BLOB_UNKNOWN", 404,
                                          "blob unknown to registry" },
    [BERTH_OCI_MANIFEST_INVALID] = { "MANIFEST_INVALID", 400, "manifest invalid" },
    [BERTH_OCI_MANIFEST_UNKNOWN] = { "MANIFEST_UNKNOWN", 404, "manifest unknown" },
    [BERTH_OCI_NAME_INVALID] = { "NAME_INVALID", 400, "invalid repository name" },
    [BERTH_OCI_NAME_UNKNOWN] = { "NAME_UNKNOWN", 404, "repository name not known to registry" },
    [BERTH_OCI_SIZE_INVALID] = { "SIZE_INVALID", 400,
                                 "provided length did not match content length" },
    [BERTH_OCI_UNAUTHORIZED] = { "UNAUTHORIZED", 401, "authentication required" },
    [BERTH_OCI_DENIED] = { "DENIED", 403, "requested access to the resource is denied" },
    [BERTH_OCI_UNSUPPORTED] = { "UNSUPPORTED", 405, "the operation is unsupported" },
    [BERTH_OCI_TOOMANYREQUESTS] = { "TOOMANYREQUESTS", 429, "too many requests" },
    /* Not in the OCI table: the historical API spec (detail.md) and distribution. */
    [BERTH_OCI_TAG_INVALID] = { "TAG_INVALID", 400, "manifest tag did not match URI" },
    [BERTH_OCI_RANGE_INVALID] = { "RANGE_INVALID", 416, "invalid content range" },
    [BERTH_OCI_INTERNAL] = { "UNKNOWN", 500, "unknown error" },
    [BERTH_OCI_UNAVAILABLE] = { "UNAVAILABLE", 503, "service unavailable" },
};

_Static_assert(sizeof(table) / sizeof(table[0]) == BERTH_OCI__COUNT, "oci table out of sync");

static const struct oci_row *row(enum berth_oci_code c)
{
    if ((unsigned)c >= BERTH_OCI__COUNT)
        c = BERTH_OCI_INTERNAL;
    return &table[c];
}

const char *berth_oci_code_str(enum berth_oci_code c)
{
    return row(c)->code;
}

int berth_oci_status(enum berth_oci_code c)
{
    return row(c)->status;
}

const char *berth_oci_message(enum berth_oci_code c)
{
    return row(c)->message;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4), 0 when malformed. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    size_t n, i;
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (n > avail)
        return 0;
    for (i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlongs, surrogates and code points above U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* Write the JSON string literal for s into buf (when non-NULL); return its length.
 * RFC 8259 §7: '"', '\\' and controls are escaped; malformed UTF-8 becomes U+FFFD. */
static size_t escape(char *buf, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s), o = 0, n;

#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (buf)                                                                                   \
            buf[o] = (char)(ch);                                                                   \
        o++;                                                                                       \
    } while (0)

    PUT('"');
    while (left > 0) {
        unsigned char c = *p;

        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT(c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c == '\t') {
            PUT('\\');
            PUT('t');
        } else if (c < 0x20 || c == 0x7f) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 0xf]);
        } else if ((n = utf8_len(p, left)) == 0) {
            PUT(0xef); /* U+FFFD replacement character */
            PUT(0xbf);
            PUT(0xbd);
        } else {
            size_t i;

            for (i = 0; i < n; i++)
                PUT(p[i]);
            p += n - 1;
            left -= n - 1;
        }
        p++;
        left--;
    }
    PUT('"');
#undef PUT
    return o;
}

int berth_oci_error_json(char **out, size_t *outlen, enum berth_oci_code c, const char *message,
                         const char *detail_json)
{
    static const char p1[] = "{\"errors\":[{\"code\":\"";
    static const char p2[] = "\",\"message\":";
    static const char p3[] = ",\"detail\":";
    static const char p4[] = "}]}";
    const char *code = berth_oci_code_str(c);
    size_t mlen, dlen, total, o = 0;
    char *buf;

    *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!message)
        message = berth_oci_message(c);
    if (!detail_json || !*detail_json)
        detail_json = "{}";
    mlen = escape(NULL, message);
    dlen = strlen(detail_json);
    total = sizeof(p1) - 1 + strlen(code) + sizeof(p2) - 1 + mlen + sizeof(p3) - 1 + dlen +
            sizeof(p4) - 1;
    if ((buf = malloc(total + 1)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory rendering error body");

    memcpy(buf + o, p1, sizeof(p1) - 1);
    o += sizeof(p1) - 1;
    memcpy(buf + o, code, strlen(code));
    o += strlen(code);
    memcpy(buf + o, p2, sizeof(p2) - 1);
    o += sizeof(p2) - 1;
    o += escape(buf + o, message);
    memcpy(buf + o, p3, sizeof(p3) - 1);
    o += sizeof(p3) - 1;
    memcpy(buf + o, detail_json, dlen);
    o += dlen;
    memcpy(buf + o, p4, sizeof(p4) - 1);
    o += sizeof(p4) - 1;
    buf[o] = '\0';

    *out = buf;
    if (outlen)
        *outlen = o;
    return 0;
}

/*
 * Strict base64 decoding (see base64.h): RFC 4648 §4 alphabet, padded,
 * canonical. Characters are mapped to their 6-bit values by arithmetic on
 * the character instead of a 256-entry table, so decoding a password does
 * not touch memory at addresses that depend on its characters.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/base64.h"
#include "core/error.h"

/* -1 when (lo <= c <= hi), else 0, without a branch: both differences are
 * negative only inside the range, and they are small enough that shifting
 * their AND right by 8 leaves all ones or all zeros. */
#define IN_RANGE(c, lo, hi) ((((lo) - 1 - (c)) & ((c) - (hi) - 1)) >> 8)

/* 0..63 for a character of the alphabet, -1 for anything else ('=' too).
 * `url`: RFC 4648 §5's alphabet ('-' and '_' for 62 and 63). */
static int32_t value_of(uint8_t ch, int url)
{
    int32_t c = ch, v = -1, c62 = url ? '-' : '+', c63 = url ? '_' : '/';

    v += IN_RANGE(c, 'A', 'Z') & (c - 'A' + 1);
    v += IN_RANGE(c, 'a', 'z') & (c - 'a' + 26 + 1);
    v += IN_RANGE(c, '0', '9') & (c - '0' + 52 + 1);
    v += IN_RANGE(c, c62, c62) & (62 + 1);
    v += IN_RANGE(c, c63, c63) & (63 + 1);
    return v;
}

/* Decode the `len` significant characters of `in` (no padding): groups of
 * four, the last one of two or three characters with zero unused bits. */
static int decode(uint8_t *out, size_t *out_len, size_t cap, const uint8_t *in, size_t len,
                  int url)
{
    size_t rem = len % 4, n = len / 4 * 3 + (rem ? rem - 1 : 0), o = 0;

    *out_len = 0;
    if (rem == 1)
        return berth_error_set(BERTH_EINVALID, "invalid base64: a lone character at the end");
    if (n > cap)
        return berth_error_set(BERTH_ETOOBIG, "base64 decodes to %zu bytes, more than %zu", n,
                               cap);
    for (size_t i = 0; i < len; i += 4) {
        size_t k = len - i < 4 ? len - i : 4; /* 2, 3 or 4 characters */
        int32_t a = value_of(in[i], url), b = value_of(in[i + 1], url);
        int32_t c = k > 2 ? value_of(in[i + 2], url) : 0;
        int32_t d = k > 3 ? value_of(in[i + 3], url) : 0;
        uint32_t w;

        if ((a | b | c | d) < 0)
            return berth_error_set(BERTH_EINVALID, "invalid base64: bad character in group %zu",
                                   i / 4 + 1);
        w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        /* RFC 4648 §3.5: the bits under the padding must be zero */
        if ((k == 2 && (w & 0xffff)) || (k == 3 && (w & 0xff)))
            return berth_error_set(BERTH_EINVALID, "invalid base64: nonzero bits before padding");
        out[o++] = (uint8_t)(w >> 16);
        if (k > 2)
            out[o++] = (uint8_t)(w >> 8);
        if (k > 3)
            out[o++] = (uint8_t)w;
    }
    *out_len = o;
    return 0;
}

int berth_base64_decode(uint8_t *out, size_t *out_len, size_t cap, const char *s, size_t len)
{
    const uint8_t *in = (const uint8_t *)s;
    size_t pad = 0;

    *out_len = 0;
    if (len % 4)
        return berth_error_set(BERTH_EINVALID, "invalid base64: length %zu is not a multiple of 4",
                               len);
    if (len > 0 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    return decode(out, out_len, cap, in, len - pad, 0);
}

/* ---- base64url without padding (RFC 7515 §2: JSON Web Tokens) ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int berth_b64url_encode(char **out, const uint8_t *data, size_t len)
{
    char *s = malloc(len / 3 * 4 + 5), *p;
    size_t i;

    if (!s)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (i = 0, p = s; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *p++ = b64url[v >> 18];
        *p++ = b64url[(v >> 12) & 63];
        *p++ = b64url[(v >> 6) & 63];
        *p++ = b64url[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *p++ = b64url[v >> 18];
        *p++ = b64url[(v >> 12) & 63];
        if (i + 1 < len)
            *p++ = b64url[(v >> 6) & 63];
    }
    *p = '\0';
    *out = s;
    return 0;
}

int berth_b64url_decode(uint8_t **out, size_t *outlen, const char *s, size_t len)
{
    uint8_t *d = malloc(len / 4 * 3 + 3);
    int error;

    *out = NULL;
    if (!d)
        return berth_error_set(BERTH_ERROR, "out of memory");
    if ((error = decode(d, outlen, len / 4 * 3 + 3, (const uint8_t *)s, len, 1)) < 0) {
        free(d);
        return error;
    }
    *out = d;
    return 0;
}

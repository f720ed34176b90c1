/*
 * Strict base64 decoding (see base64.h): RFC 4648 §4 alphabet, padded,
 * canonical. Characters are mapped to their 6-bit values by arithmetic on
 * the character instead of a 256-entry table, so decoding a password does
 * not touch memory at addresses that depend on its characters.
 */
#include <stdint.h>

#include "core/base64.h"
#include "core/error.h"

/* -1 when (lo <= c <= hi), else 0, without a branch: both differences are
 * negative only inside the range, and they are small enough that shifting
 * their AND right by 8 leaves all ones or all zeros. */
#define IN_RANGE(c, lo, hi) ((((lo) - 1 - (c)) & ((c) - (hi) - 1)) >> 8)

/* 0..63 for a character of the alphabet, -1 for anything else ('=' too). */
static int32_t value_of(uint8_t ch)
{
    int32_t c = ch, v = -1;

    v += IN_RANGE(c, 'A', 'Z') & (c - 'A' + 1);
    v += IN_RANGE(c, 'a', 'z') & (c - 'a' + 26 + 1);
    v += IN_RANGE(c, '0', '9') & (c - '0' + 52 + 1);
    v += IN_RANGE(c, '+', '+') & (62 + 1);
    v += IN_RANGE(c, '/', '/') & (63 + 1);
    return v;
}

int berth_base64_decode(uint8_t *out, size_t *out_len, size_t cap, const char *s, size_t len)
{
    const uint8_t *in = (const uint8_t *)s;
    size_t pad = 0, n, o = 0;

    *out_len = 0;
    if (len % 4)
        return berth_error_set(BERTH_EINVALID, "invalid base64: length %zu is not a multiple of 4",
                               len);
    if (len == 0)
        return 0;
    if (in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    n = len / 4 * 3 - pad;
    if (n > cap)
        return berth_error_set(BERTH_ETOOBIG, "base64 decodes to %zu bytes, more than %zu", n,
                               cap);
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int32_t a = value_of(in[i]), b = value_of(in[i + 1]);
        int32_t c = last && pad == 2 ? 0 : value_of(in[i + 2]);
        int32_t d = last && pad >= 1 ? 0 : value_of(in[i + 3]);
        uint32_t w;

        if ((a | b | c | d) < 0)
            return berth_error_set(BERTH_EINVALID, "invalid base64: bad character in group %zu",
                                   i / 4 + 1);
        w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        /* RFC 4648 §3.5: the bits under the padding must be zero */
        if ((pad == 2 && last && (w & 0xffff)) || (pad == 1 && last && (w & 0xff)))
            return berth_error_set(BERTH_EINVALID, "invalid base64: nonzero bits before padding");
        out[o++] = (uint8_t)(w >> 16);
        if (!(last && pad == 2))
            out[o++] = (uint8_t)(w >> 8);
        if (!(last && pad >= 1))
            out[o++] = (uint8_t)w;
    }
    *out_len = o;
    return 0;
}

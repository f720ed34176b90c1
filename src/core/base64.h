/*
 * Base64 decoding (RFC 4648 §4, the standard alphabet with padding), as
 * HTTP Basic credentials use it (RFC 7617 §2). Strict: nothing but the
 * alphabet, the length a multiple of 4, '=' only as the last one or two
 * characters, and the unused bits of the last group zero (the canonical
 * encoding, RFC 4648 §3.5), so each byte string has exactly one accepted
 * encoding. No whitespace or line breaks are skipped.
 */
#ifndef BERTH_BASE64_H
#define BERTH_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that decoding `len` characters can produce, at most. */
#define BERTH_BASE64_DECODED_MAX(len) ((len) / 4 * 3)

/* Decode `s` (`len` characters, not necessarily NUL-terminated) into `out`
 * (room for `cap` bytes); *out_len is the decoded length. "" decodes to 0
 * bytes. BERTH_EINVALID when `s` is not strict base64 (the message never
 * quotes the input: it may be a password); BERTH_ETOOBIG when the result
 * would not fit in `cap`. On failure *out_len is 0 and `out` may hold part
 * of the result: a caller decoding secrets wipes it either way. The time
 * taken depends on `len` and on where decoding fails, not on the values of
 * the characters of valid input (no table lookups). */
int berth_base64_decode(uint8_t *out, size_t *out_len, size_t cap, const char *s, size_t len);

/* base64url without padding (RFC 4648 §5, as JSON Web Tokens use it, RFC
 * 7515 §2), for jwt.c. Encode: a malloc'd NUL-terminated string. Decode:
 * the same strictness as above (only the URL alphabet, no '=', a length
 * that is not 1 mod 4, zero unused bits) into a malloc'd buffer; *out is
 * NULL on failure. */
int berth_b64url_encode(char **out, const uint8_t *data, size_t len);
int berth_b64url_decode(uint8_t **out, size_t *outlen, const char *s, size_t len);

#endif

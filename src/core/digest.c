/*
 * Content digests (OCI image-spec descriptor.md "Digests"): a hand-written
 * parser for "algorithm:encoded", the canonical string form, and hashing with
 * berth's own SHA-2 (sha2.c; no libcrypto in the server). Invariant: a struct berth_digest that came out of this module
 * always has algo, len, raw and str in agreement (str is the lowercase hex of raw).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/digest.h"
#include "core/error.h"
#include "core/sha2.h"

#define FD_BUF_SIZE (1024 * 1024)

static const char hexdigits[] = "0123456789abcdef";

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_encoded_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '=' || c == '_' || c == '-';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Length of a string to quote in a message: long garbage is cut short. */
static int quote_len(size_t len)
{
    return len > 160 ? 160 : (int)len;
}

static int invalid(const char *s, size_t len, const char *why)
{
    return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_DIGEST_INVALID,
                               "invalid digest '%.*s': %s", quote_len(len), s, why);
}

/*
 * image-spec descriptor.md "Digests":
 *   algorithm-component ::= [a-z0-9]+
 *   algorithm-separator ::= [+._-]
 *   algorithm           ::= algorithm-component (algorithm-separator algorithm-component)*
 *   encoded             ::= [a-zA-Z0-9=_-]+
 */
static int check_algorithm(const char *s, size_t len)
{
    size_t i;
    int need_alnum = 1;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (is_lower_alnum(c)) {
            need_alnum = 0;
        } else if (c == '+' || c == '.' || c == '_' || c == '-') {
            if (need_alnum)
                return -1;
            need_alnum = 1;
        } else {
            return -1;
        }
    }
    return need_alnum ? -1 : 0;
}

static void set_str(struct berth_digest *d)
{
    const char *name = berth_digest_algo_name(d->algo);
    size_t n = strlen(name), i;

    memcpy(d->str, name, n);
    d->str[n++] = ':';
    for (i = 0; i < d->len; i++) {
        d->str[n++] = hexdigits[d->raw[i] >> 4];
        d->str[n++] = hexdigits[d->raw[i] & 0xf];
    }
    d->str[n] = '\0';
}

int berth_digest_parse(struct berth_digest *out, const char *s, size_t len)
{
    const char *colon, *enc;
    size_t alen, elen, i, want;
    enum berth_digest_algo algo;

    memset(out, 0, sizeof(*out));
    colon = s ? memchr(s, ':', len) : NULL;
    if (!colon)
        return invalid(s ? s : "", s ? len : 0, "missing ':'");
    alen = (size_t)(colon - s);
    enc = colon + 1;
    elen = len - alen - 1;
    if (check_algorithm(s, alen) < 0)
        return invalid(s, len, "malformed algorithm");
    if (elen == 0)
        return invalid(s, len, "empty encoded part");
    for (i = 0; i < elen; i++)
        if (!is_encoded_char(enc[i]))
            return invalid(s, len, "bad character in encoded part");

    if (alen == 6 && memcmp(s, "sha256", 6) == 0) {
        algo = BERTH_SHA256;
        want = 32;
    } else if (alen == 6 && memcmp(s, "sha512", 6) == 0) {
        algo = BERTH_SHA512;
        want = 64;
    } else {
        return berth_error_set_oci(BERTH_EUNSUPPORTED, BERTH_OCI_DIGEST_INVALID,
                                   "unsupported digest algorithm '%.*s'", quote_len(alen), s);
    }
    /* image-spec "Registered algorithms": encoded MUST be lowercase hex of the right length. */
    if (elen != want * 2)
        return invalid(s, len, "wrong length");
    for (i = 0; i < want; i++) {
        int hi = hexval(enc[2 * i]), lo = hexval(enc[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return invalid(s, len, "not lowercase hex");
        out->raw[i] = (uint8_t)(hi << 4 | lo);
    }
    out->algo = algo;
    out->len = (uint8_t)want;
    set_str(out);
    return 0;
}

const char *berth_digest_hex(const struct berth_digest *d)
{
    const char *colon = strchr(d->str, ':');

    return colon ? colon + 1 : d->str;
}

const char *berth_digest_algo_name(enum berth_digest_algo a)
{
    switch (a) {
    case BERTH_SHA256:
        return "sha256";
    case BERTH_SHA512:
        return "sha512";
    case BERTH_DIGEST_NONE:
        break;
    }
    return "none";
}

int berth_digest_equal(const struct berth_digest *a, const struct berth_digest *b)
{
    return a->algo == b->algo && a->len == b->len && memcmp(a->raw, b->raw, a->len) == 0;
}

/* The state behind berth_hasher.ctx: one allocation per hasher. */
union hash_state {
    struct berth_sha256 sha256;
    struct berth_sha512 sha512;
};

static int check_algo(enum berth_digest_algo algo)
{
    if (algo != BERTH_SHA256 && algo != BERTH_SHA512)
        return berth_error_set(BERTH_EUNSUPPORTED, "unsupported digest algorithm %d", (int)algo);
    return 0;
}

static void finish(struct berth_digest *out, enum berth_digest_algo algo)
{
    out->algo = algo;
    out->len = algo == BERTH_SHA256 ? BERTH_SHA256_LEN : BERTH_SHA512_LEN;
    set_str(out);
}

int berth_hasher_init(struct berth_hasher *h, enum berth_digest_algo algo)
{
    union hash_state *st;
    int error;

    h->algo = BERTH_DIGEST_NONE;
    h->ctx = NULL;
    if ((error = check_algo(algo)) < 0)
        return error;
    if ((st = malloc(sizeof(*st))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory creating a hash context");
    if (algo == BERTH_SHA256)
        berth_sha256_init(&st->sha256);
    else
        berth_sha512_init(&st->sha512);
    h->algo = algo;
    h->ctx = st;
    return 0;
}

int berth_hasher_update(struct berth_hasher *h, const void *buf, size_t len)
{
    union hash_state *st = h->ctx;

    if (!st)
        return berth_error_set(BERTH_ERROR, "hasher not initialised");
    if (h->algo == BERTH_SHA256)
        berth_sha256_update(&st->sha256, buf, len);
    else
        berth_sha512_update(&st->sha512, buf, len);
    return 0;
}

int berth_hasher_final(struct berth_hasher *h, struct berth_digest *out)
{
    union hash_state *st = h->ctx;

    memset(out, 0, sizeof(*out));
    if (!st)
        return berth_error_set(BERTH_ERROR, "hasher not initialised");
    if (h->algo == BERTH_SHA256)
        berth_sha256_final(&st->sha256, out->raw);
    else
        berth_sha512_final(&st->sha512, out->raw);
    finish(out, h->algo);
    return 0;
}

int berth_hasher_copy(struct berth_hasher *dst, const struct berth_hasher *src)
{
    union hash_state *st;

    dst->algo = BERTH_DIGEST_NONE;
    dst->ctx = NULL;
    if (!src->ctx)
        return berth_error_set(BERTH_ERROR, "hasher not initialised");
    if ((st = malloc(sizeof(*st))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory creating a hash context");
    memcpy(st, src->ctx, sizeof(*st));
    dst->algo = src->algo;
    dst->ctx = st;
    return 0;
}

void berth_hasher_dispose(struct berth_hasher *h)
{
    if (!h)
        return;
    free(h->ctx);
    h->ctx = NULL;
    h->algo = BERTH_DIGEST_NONE;
}

int berth_digest_buf(struct berth_digest *out, enum berth_digest_algo algo, const uint8_t *buf,
                     size_t len)
{
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = check_algo(algo)) < 0)
        return error;
    if (algo == BERTH_SHA256)
        berth_sha256(out->raw, buf, len);
    else
        berth_sha512(out->raw, buf, len);
    finish(out, algo);
    return 0;
}

int berth_digest_fd(struct berth_digest *out, enum berth_digest_algo algo, int fd)
{
    struct berth_hasher h = { BERTH_DIGEST_NONE, NULL };
    uint8_t *buf = NULL;
    off_t off = 0;
    ssize_t n;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = berth_hasher_init(&h, algo)) < 0)
        goto done;
    if ((buf = malloc(FD_BUF_SIZE)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory allocating a read buffer");
        goto done;
    }
    for (;;) {
        n = pread(fd, buf, FD_BUF_SIZE, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            error = berth_error_errno("read at offset %lld", (long long)off);
            goto done;
        }
        if (n == 0)
            break;
        if ((error = berth_hasher_update(&h, buf, (size_t)n)) < 0)
            goto done;
        off += n;
    }
    error = berth_hasher_final(&h, out);
done:
    free(buf);
    berth_hasher_dispose(&h);
    return error;
}

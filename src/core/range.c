/*
 * HTTP byte ranges (see range.h): the Range request header of a blob GET
 * (RFC 9110 §14.1.1, §14.2) and the Content-Range of a chunked upload PATCH
 * (distribution-spec "Pushing a blob in chunks"; RFC 9110 §14.4 form).
 * Invariant: every number is 1*DIGIT parsed without overflow into [0, 2^63-1];
 * a successful Range parse yields start <= end < size.
 */
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/range.h"

#define NUM_MAX ((uint64_t)INT64_MAX)

/* A byte-range-spec as written, before it meets the resource size. */
struct spec {
    int suffix;    /* "-n" */
    int has_last;  /* "a-b" rather than "a-" */
    uint64_t first;
    uint64_t last; /* or the suffix length */
};

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int quote_len(size_t len)
{
    return len > 120 ? 120 : (int)len;
}

/* 1*DIGIT at s[*i..len), at most 2^63-1. Advances *i. -1 when absent or too large. */
static int parse_num(const char *s, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;

    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        unsigned d = (unsigned)(s[*i] - '0');

        if (v > (NUM_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*i)++;
    }
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

static int lower_eq(const char *s, size_t len, const char *lit)
{
    size_t i;

    for (i = 0; i < len && lit[i]; i++) {
        char c = s[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return i == len && lit[i] == '\0';
}

/* RFC 9110 §14.1.1: int-range = first-pos "-" [ last-pos ]; suffix-range = "-" suffix-length.
 * The whole of s[0..len) must be the spec; no whitespace inside. */
static int parse_spec(struct spec *sp, const char *s, size_t len)
{
    size_t i = 0;

    sp->suffix = 0;
    sp->has_last = 0;
    sp->first = sp->last = 0;
    if (len > 0 && s[0] == '-') {
        i = 1;
        if (parse_num(s, len, &i, &sp->last) < 0 || i != len)
            return -1;
        sp->suffix = 1;
        return 0;
    }
    if (parse_num(s, len, &i, &sp->first) < 0 || i >= len || s[i] != '-')
        return -1;
    i++;
    if (i == len)
        return 0;
    if (parse_num(s, len, &i, &sp->last) < 0 || i != len)
        return -1;
    sp->has_last = 1;
    return 0;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_ows((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

static int range_err(int code, const char *hdr, size_t len, const char *why)
{
    return berth_error_set_oci(code, BERTH_OCI_RANGE_INVALID, "invalid range '%.*s': %s",
                               quote_len(len), hdr, why);
}

int berth_range_parse(struct berth_range *out, const char *hdr, size_t len, uint64_t size)
{
    const char *s = hdr, *set;
    size_t n = len, setlen, i, elems = 0, nlist = 0, start;
    struct spec sp;

    out->start = out->end = 0;
    if (!hdr)
        return range_err(BERTH_EINVALID, "", 0, "empty");
    trim(&s, &n);
    /* ranges-specifier = range-unit "=" range-set; range units are case-insensitive. */
    if (n < 6 || !lower_eq(s, 5, "bytes") || s[5] != '=')
        return range_err(BERTH_EINVALID, hdr, len, "expected 'bytes='");
    set = s + 6;
    setlen = n - 6;

    /* range-set = 1#range-spec: list elements split on ',' with OWS around them (RFC 9110
     * §5.6.1); empty elements are allowed by the list rule but at least one must be real. */
    if (!memchr(set, ',', setlen)) {
        /* a single range-spec: no whitespace inside "bytes=..." */
        if (parse_spec(&sp, set, setlen) < 0)
            return range_err(BERTH_EINVALID, hdr, len, "malformed byte range");
        elems = 1;
    }
    for (i = 0, start = 0; elems == 0 && i <= setlen; i++) {
        const char *e;
        size_t elen;

        if (i < setlen && set[i] != ',')
            continue;
        e = set + start;
        elen = i - start;
        start = i + 1;
        trim(&e, &elen);
        if (elen == 0)
            continue;
        if (parse_spec(&sp, e, elen) < 0)
            return range_err(BERTH_EINVALID, hdr, len, "malformed byte range");
        if (sp.has_last && sp.last < sp.first)
            return range_err(BERTH_EINVALID, hdr, len, "last byte before first byte");
        nlist++;
    }
    if (nlist > 0)
        elems = nlist;
    if (elems == 0)
        return range_err(BERTH_EINVALID, hdr, len, "no byte range");
    if (elems > 1)
        return range_err(BERTH_EUNSUPPORTED, hdr, len, "multiple ranges");

    /* RFC 9110 §14.1.2: an int-range with last < first is invalid; satisfiable only when
     * first < size; a suffix-range is satisfiable only when its length is non-zero. */
    if (sp.suffix) {
        if (sp.last == 0)
            return range_err(BERTH_ERANGE, hdr, len, "zero-length suffix");
        if (size == 0)
            return range_err(BERTH_ERANGE, hdr, len, "empty resource");
        out->start = sp.last >= size ? 0 : size - sp.last;
        out->end = size - 1;
        return 0;
    }
    if (sp.has_last && sp.last < sp.first)
        return range_err(BERTH_EINVALID, hdr, len, "last byte before first byte");
    if (sp.first >= size)
        return range_err(BERTH_ERANGE, hdr, len, "first byte beyond the end");
    out->start = sp.first;
    out->end = (sp.has_last && sp.last < size - 1) ? sp.last : size - 1;
    return 0;
}

static int content_range_err(const char *hdr, size_t len, const char *why)
{
    return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_BLOB_UPLOAD_INVALID,
                               "invalid content range '%.*s': %s", quote_len(len), hdr, why);
}

int berth_content_range_parse(struct berth_range *out, const char *hdr, size_t len)
{
    const char *s = hdr;
    size_t n = len, i = 0;
    uint64_t a, b, total;

    out->start = out->end = 0;
    if (!hdr)
        return content_range_err("", 0, "empty");
    trim(&s, &n);
    /* RFC 9110 §14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range ) */
    if (n >= 6 && lower_eq(s, 5, "bytes") && s[5] == ' ')
        i = 6;
    if (parse_num(s, n, &i, &a) < 0 || i >= n || s[i] != '-')
        return content_range_err(hdr, len, "expected '<start>-<end>'");
    i++;
    if (parse_num(s, n, &i, &b) < 0)
        return content_range_err(hdr, len, "expected '<start>-<end>'");
    if (b < a)
        return content_range_err(hdr, len, "end before start");
    if (i < n) {
        /* only the "bytes " form carries a complete-length */
        if (s[0] < '0' || s[0] > '9') {
            if (s[i] != '/' || i + 1 >= n)
                return content_range_err(hdr, len, "expected '/<length>' or '/*'");
            i++;
            if (s[i] == '*' && i + 1 == n)
                i++;
            else if (parse_num(s, n, &i, &total) < 0 || i != n)
                return content_range_err(hdr, len, "malformed complete length");
            else if (b >= total)
                return content_range_err(hdr, len, "end beyond complete length");
        }
        if (i != n)
            return content_range_err(hdr, len, "trailing characters");
    }
    out->start = a;
    out->end = b;
    return 0;
}

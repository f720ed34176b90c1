/*
 * Version tags (semver.h): parsing `[v]MAJOR[.MINOR[.PATCH]][-pre][+build]`,
 * semver.org 2.0.0 precedence (section 11: numeric identifiers compare
 * numerically and sort before alphanumeric ones; a longer identifier list
 * wins when all shared ones are equal; a prerelease sorts before its
 * release), and the alias rule: publishing 2.1.3 moves 2.1, 2 and latest,
 * each only when no higher full release among the existing tags holds it.
 * Pure logic; the 'v' prefix is ignored when comparing.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/semver.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static int invalid(const char *tag, const char *why)
{
    return berth_error_set(BERTH_EINVALID, "invalid version '%.64s': %s", tag, why);
}

/* A numeric part without leading zeros (semver.org item 2); advances *p. */
static int parse_number(unsigned long *out, const char **p)
{
    const char *s = *p;
    unsigned long v = 0;

    if (!is_digit(*s))
        return -1;
    if (s[0] == '0' && is_digit(s[1]))
        return -1;
    for (; is_digit(*s); s++) {
        if (v > (ULONG_MAX - (unsigned long)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    *out = v;
    *p = s;
    return 0;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-] up to `end`; numeric
 * ones without leading zeros when `strict_numeric` (prerelease, item 9). */
static int check_idents(const char *s, const char *end, int strict_numeric)
{
    const char *start = s;

    for (;;) {
        const char *id = s;
        int numeric = 1;

        for (; s < end && *s != '.'; s++) {
            if (!is_ident_char(*s))
                return -1;
            if (!is_digit(*s))
                numeric = 0;
        }
        if (s == id)
            return -1;
        if (strict_numeric && numeric && s - id > 1 && id[0] == '0')
            return -1;
        if (s == end)
            return s > start ? 0 : -1;
        s++; /* '.' */
    }
}

int berth_semver_parse(struct berth_semver *out, const char *tag)
{
    const char *p = tag, *pre, *plus;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (!tag)
        return berth_error_set(BERTH_EINVALID, "invalid version: none given");
    if (*p == 'v') {
        out->v_prefix = 1;
        p++;
    }
    if (parse_number(&out->major, &p) < 0)
        return invalid(tag, "expected MAJOR[.MINOR[.PATCH]]");
    if (*p == '.') {
        p++;
        if (parse_number(&out->minor, &p) < 0)
            return invalid(tag, "bad minor version");
        out->has_minor = 1;
        if (*p == '.') {
            p++;
            if (parse_number(&out->patch, &p) < 0)
                return invalid(tag, "bad patch version");
            out->has_patch = 1;
        }
    }
    if (*p == '\0')
        return 0;
    if (!out->has_patch || (*p != '-' && *p != '+'))
        return invalid(tag, "unexpected characters after the version numbers");
    plus = strchr(p, '+');
    if (*p == '-') {
        pre = p + 1;
        len = (size_t)((plus ? plus : pre + strlen(pre)) - pre);
        if (check_idents(pre, pre + len, 1) < 0)
            return invalid(tag, "bad prerelease");
        if (len >= sizeof(out->prerelease))
            return invalid(tag, "prerelease too long");
        memcpy(out->prerelease, pre, len);
        out->prerelease[len] = '\0';
    }
    if (plus && check_idents(plus + 1, plus + 1 + strlen(plus + 1), 0) < 0)
        return invalid(tag, "bad build metadata");
    return 0;
}

static int cmp_ulong(unsigned long a, unsigned long b)
{
    return a < b ? -1 : a > b;
}

/* One prerelease identifier against another (semver.org item 11.4). */
static int cmp_ident(const char *a, size_t alen, const char *b, size_t blen)
{
    int an = 1, bn = 1, c;

    for (size_t i = 0; i < alen; i++)
        an &= is_digit(a[i]);
    for (size_t i = 0; i < blen; i++)
        bn &= is_digit(b[i]);
    if (an && bn) {
        /* no leading zeros: the longer number is the larger */
        if (alen != blen)
            return alen < blen ? -1 : 1;
        c = memcmp(a, b, alen);
        return c < 0 ? -1 : c > 0;
    }
    if (an != bn)
        return an ? -1 : 1;
    c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

int berth_semver_cmp(const struct berth_semver *a, const struct berth_semver *b)
{
    const char *pa = a->prerelease, *pb = b->prerelease;
    int c;

    if ((c = cmp_ulong(a->major, b->major)) != 0 || (c = cmp_ulong(a->minor, b->minor)) != 0 ||
        (c = cmp_ulong(a->patch, b->patch)) != 0)
        return c;
    if (!*pa || !*pb)
        return !*pa && !*pb ? 0 : (*pa ? -1 : 1);
    for (;;) {
        size_t la = strcspn(pa, "."), lb = strcspn(pb, ".");

        if ((c = cmp_ident(pa, la, pb, lb)) != 0)
            return c;
        pa += la;
        pb += lb;
        if (!*pa || !*pb)
            return !*pa && !*pb ? 0 : (*pa ? 1 : -1);
        pa++;
        pb++;
    }
}

static int is_full_release(const struct berth_semver *v)
{
    return v->has_minor && v->has_patch && !v->prerelease[0];
}

int berth_semver_aliases(char out[3][129], const char *version, const char *const *existing,
                         size_t nexisting)
{
    struct berth_semver v, e;
    int blocked_minor = 0, blocked_major = 0, blocked_latest = 0, n = 0;
    const char *pfx;
    int error;

    if ((error = berth_semver_parse(&v, version)) < 0)
        return error;
    if (!v.has_patch)
        return invalid(version, "not a full MAJOR.MINOR.PATCH version");
    if (v.prerelease[0])
        return 0;
    for (size_t i = 0; i < nexisting; i++) {
        if (!existing[i] || berth_semver_parse(&e, existing[i]) < 0 || !is_full_release(&e))
            continue; /* only tags that are full release versions count */
        if (berth_semver_cmp(&e, &v) <= 0)
            continue;
        blocked_latest = 1;
        if (e.major == v.major) {
            blocked_major = 1;
            if (e.minor == v.minor)
                blocked_minor = 1;
        }
    }
    berth_error_clear();
    pfx = v.v_prefix ? "v" : "";
    if (!blocked_minor)
        snprintf(out[n++], 129, "%s%lu.%lu", pfx, v.major, v.minor);
    if (!blocked_major)
        snprintf(out[n++], 129, "%s%lu", pfx, v.major);
    if (!blocked_latest)
        snprintf(out[n++], 129, "latest");
    return n;
}

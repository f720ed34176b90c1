/*
 * libFuzzer target for the query-parameter parsers of src/server/params.c,
 * each run on the input as one NUL-terminated value (and the media type
 * check on the raw bytes). Invariants: an accepted `n` is 1..9 digits whose
 * value prints back to the same number and respects the cap; an accepted
 * `last`, artifactType, digest or `from` satisfies its grammar, checked here
 * independently; repeated `tag` values (split at '&') are all valid tags.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "server/params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void check_n(const char *s)
{
    static const long caps[] = { -1, 0, 1, 1000, 999999999 };
    char back[32];
    long n = -5, n2 = -5;

    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        if (berth_param_n(s, 3, caps[i], &n) != 0) {
            if (berth_error_oci() != BERTH_OCI_SIZE_INVALID || n != -5)
                abort();
            continue;
        }
        if (!*s || strlen(s) > BERTH_PARAM_N_DIGITS || strspn(s, "0123456789") != strlen(s))
            abort();
        if (n < 0 || (caps[i] >= 0 && n > caps[i]))
            abort();
        if (caps[i] < 0 || n < caps[i]) { /* not capped: the value round-trips */
            snprintf(back, sizeof(back), "%ld", n);
            if (strtol(s, NULL, 10) != n || berth_param_n(back, 3, caps[i], &n2) != 0 || n2 != n)
                abort();
        }
    }
}

static void check_last(const char *s)
{
    const char *last;
    size_t len = strlen(s);

    if (berth_param_last(s, BERTH_LAST_TAG, &last) == 0 && last) {
        if (last != s || len > BERTH_TAG_MAX || s[0] == '.' || s[0] == '-')
            abort();
        for (size_t i = 0; i < len; i++)
            if (!alnum((unsigned char)s[i]) && !strchr("._-", s[i]))
                abort();
    }
    if (berth_param_last(s, BERTH_LAST_NAME, &last) == 0 && last) {
        if (last != s || len > BERTH_NAME_MAX || !lower_alnum((unsigned char)s[0]) ||
            !lower_alnum((unsigned char)s[len - 1]) || strstr(s, "//"))
            abort();
        for (size_t i = 0; i < len; i++)
            if (!lower_alnum((unsigned char)s[i]) && !strchr("._-/", s[i]))
                abort();
    }
    if (berth_param_last(s, BERTH_LAST_DIGEST, &last) == 0 && last) {
        if (last != s || !strchr(s, ':') || len >= BERTH_DIGEST_STR_MAX)
            abort();
    }
    if (!*s && (berth_param_last(s, BERTH_LAST_NAME, &last) != 0 || last))
        abort();
}

/* Independent RFC 6838 check: restricted-name "/" restricted-name. */
static int media_type_ok(const uint8_t *s, size_t len)
{
    size_t slash = 0, half = 0;
    int slashes = 0;

    if (len > 255)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/') {
            if (++slashes > 1 || half == 0 || half > 127)
                return 0;
            slash = i;
            half = 0;
            continue;
        }
        if (half == 0 && !alnum(s[i]))
            return 0;
        if (!alnum(s[i]) && !(s[i] && strchr("!#$&-^_.+", s[i])))
            return 0;
        half++;
    }
    return slashes == 1 && half > 0 && half <= 127 && slash > 0;
}

static void check_media(const uint8_t *data, size_t size, const char *s)
{
    const char *t;
    int ok = media_type_ok(data, size);

    if ((berth_media_type_check((const char *)data, size) == 0) != ok)
        abort();
    if (berth_param_artifact_type(s, &t) == 0) {
        if (*s && (t != s || !media_type_ok((const uint8_t *)s, strlen(s))))
            abort();
        if (!*s && t)
            abort();
    } else if (berth_error_oci() != BERTH_OCI_UNSUPPORTED || t) {
        abort();
    }
}

static void check_digest_from(const char *s)
{
    struct berth_digest d;

    if (berth_param_digest(s, &d) == 0) {
        if (strcmp(d.str, s) || (d.algo != BERTH_SHA256 && d.algo != BERTH_SHA512))
            abort();
    } else if (berth_error_oci() != BERTH_OCI_DIGEST_INVALID) {
        abort();
    }
    if (berth_param_from(s) == 0 && berth_name_check(s, strlen(s)) != 0)
        abort();
}

/* Values split at '&', as repeated ?tag= would arrive. */
static void check_tags(char *s)
{
    struct berth_tag_params tp;
    char *save = NULL, *v;
    size_t given = 0;

    memset(&tp, 0, sizeof(tp));
    for (v = strtok_r(s, "&", &save); v; v = strtok_r(NULL, "&", &save)) {
        given++;
        if (berth_param_tag_add(&tp, v) != 0 && (!tp.too_many || given <= BERTH_PARAM_TAGS_MAX))
            abort();
    }
    if (tp.n > BERTH_PARAM_TAGS_MAX || tp.n != (given > 64 ? 64 : given))
        abort();
    if (berth_param_tags_check(&tp) == 0) {
        if (tp.too_many)
            abort();
        for (size_t i = 0; i < tp.n; i++)
            if (berth_tag_check(tp.tags[i], strlen(tp.tags[i])) != 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_n(s);
    check_last(s);
    check_media(data, size, s);
    check_digest_from(s);
    check_tags(s); /* last: it cuts s up */
    free(s);
    return 0;
}

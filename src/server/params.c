/*
 * Query parameters of the registry API (see params.h): each a small pure
 * check over one NUL-terminated value as http.c hands it over
 * (percent-decoded). Nothing here allocates; accepted values are returned
 * as the caller's own pointers. Grammars: distribution-spec for names, tags
 * and digests, RFC 6838 section 4.2 restricted-name for media types.
 */
#include "params.h"

#include <string.h>

#include "core/error.h"
#include "core/name.h"

#define RESTRICTED_NAME_MAX 127

int berth_param_n(const char *s, long def, long max, long *n)
{
    long v = 0;
    size_t len;

    if (!s) {
        *n = def;
        return 0;
    }
    len = strlen(s);
    if (!len || len > BERTH_PARAM_N_DIGITS || strspn(s, "0123456789") != len)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_SIZE_INVALID,
                                   "invalid page size 'n': want an integer >= 0");
    for (; *s; s++)
        v = v * 10 + (*s - '0'); /* at most 9 digits: fits a 32-bit long */
    *n = (max >= 0 && v > max) ? max : v;
    return 0;
}

int berth_param_last(const char *s, enum berth_last_kind kind, const char **last)
{
    struct berth_digest d;
    int err = 0;

    *last = NULL;
    if (!s || !*s)
        return 0;
    switch (kind) {
    case BERTH_LAST_TAG:
        err = berth_tag_check(s, strlen(s));
        break;
    case BERTH_LAST_NAME:
        err = berth_name_check(s, strlen(s));
        break;
    case BERTH_LAST_DIGEST:
        err = berth_digest_parse(&d, s, strlen(s));
        break;
    }
    if (err < 0)
        return err;
    *last = s;
    return 0;
}

static int restricted_char(unsigned char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return !first && c && strchr("!#$&-^_.+", c) != NULL;
}

/* Length of the restricted-name at s[0..len), or 0 when it does not start one. */
static size_t restricted_name(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && restricted_char((unsigned char)s[i], i == 0))
        i++;
    return i;
}

int berth_media_type_check(const char *s, size_t len)
{
    size_t type, sub;

    if (!s || !len || len > BERTH_MEDIA_TYPE_MAX)
        goto bad;
    type = restricted_name(s, len);
    if (!type || type > RESTRICTED_NAME_MAX || type == len || s[type] != '/')
        goto bad;
    sub = restricted_name(s + type + 1, len - type - 1);
    if (!sub || sub > RESTRICTED_NAME_MAX || type + 1 + sub != len)
        goto bad;
    return 0;
bad:
    return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_UNSUPPORTED,
                               "invalid media type: want type/subtype (RFC 6838)");
}

int berth_param_artifact_type(const char *s, const char **type)
{
    int err;

    *type = NULL;
    if (!s || !*s)
        return 0;
    if ((err = berth_media_type_check(s, strlen(s))) < 0)
        return berth_error_set_oci(err, BERTH_OCI_UNSUPPORTED,
                                   "invalid artifactType: want a media type type/subtype");
    *type = s;
    return 0;
}

int berth_param_digest(const char *s, struct berth_digest *d)
{
    if (!s || !*s)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_DIGEST_INVALID,
                                   "digest parameter missing");
    return berth_digest_parse(d, s, strlen(s));
}

int berth_param_from(const char *s)
{
    if (!s)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                                   "from parameter missing");
    return berth_name_check(s, strlen(s));
}

int berth_param_tag_add(struct berth_tag_params *tp, const char *value)
{
    if (tp->n == BERTH_PARAM_TAGS_MAX) {
        tp->too_many = 1;
        return berth_error_set_oci(BERTH_ETOOBIG, BERTH_OCI_TAG_INVALID,
                                   "too many tag parameters");
    }
    tp->tags[tp->n++] = value ? value : "";
    return 0;
}

int berth_param_tags_check(const struct berth_tag_params *tp)
{
    int err;

    if (tp->too_many)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID,
                                   "too many tag parameters");
    for (size_t i = 0; i < tp->n; i++)
        if ((err = berth_tag_check(tp->tags[i], strlen(tp->tags[i]))) < 0)
            return err;
    return 0;
}

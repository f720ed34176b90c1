/*
 * Repository name and tag checks (distribution-spec "Pulling manifests": the
 * <name> and <reference> grammars; see name.h). Both are single-pass state
 * machines over the bytes, no regex engine: they run on every request.
 * Invariant: 0 is returned only for strings the spec regexes match in full.
 */
#include <stdint.h>

#include "core/error.h"
#include "core/name.h"

/* Where the name matcher stands after the bytes seen so far. */
enum state {
    S_START, /* start of a path component: an [a-z0-9] must come */
    S_ALNUM, /* inside a run of [a-z0-9]: anything may follow */
    S_DOT,   /* after '.' */
    S_US1,   /* after '_' */
    S_US2,   /* after '__' */
    S_DASH   /* after one or more '-' */
};

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int quote_len(size_t len)
{
    return len > 300 ? 300 : (int)len;
}

static int name_err(const char *name, size_t len, const char *why, size_t pos)
{
    return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                               "invalid repository name '%.*s': %s at position %zu",
                               quote_len(len), name, why, pos + 1);
}

static const char *describe(char c)
{
    if (c >= 'A' && c <= 'Z')
        return "uppercase letter";
    if (c == '/')
        return "empty path component";
    if (c == '.' || c == '_' || c == '-')
        return "misplaced separator";
    return "invalid character";
}

int berth_name_check(const char *name, size_t len)
{
    enum state st = S_START;
    size_t i;

    if (!name || len == 0)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                                   "invalid repository name '': empty");
    if (len > BERTH_NAME_MAX)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                                   "invalid repository name '%.*s...': longer than %d characters",
                                   64, name, BERTH_NAME_MAX);

    for (i = 0; i < len; i++) {
        char c = name[i];

        if (is_lower_alnum(c)) {
            st = S_ALNUM;
            continue;
        }
        switch (c) {
        case '.':
            if (st != S_ALNUM)
                return name_err(name, len, describe(c), i);
            st = S_DOT;
            break;
        case '_':
            if (st == S_ALNUM)
                st = S_US1;
            else if (st == S_US1)
                st = S_US2;
            else
                return name_err(name, len, describe(c), i);
            break;
        case '-':
            if (st != S_ALNUM && st != S_DASH)
                return name_err(name, len, describe(c), i);
            st = S_DASH;
            break;
        case '/':
            if (st != S_ALNUM)
                return name_err(name, len, st == S_START ? "empty path component"
                                                         : "separator before '/'", i);
            st = S_START;
            break;
        default:
            return name_err(name, len, describe(c), i);
        }
    }
    if (st == S_START)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                                   "invalid repository name '%.*s': ends with '/'",
                                   quote_len(len), name);
    if (st != S_ALNUM)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_NAME_INVALID,
                                   "invalid repository name '%.*s': ends with a separator",
                                   quote_len(len), name);
    return 0;
}

static int is_tag_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int berth_tag_check(const char *tag, size_t len)
{
    size_t i;

    if (!tag || len == 0)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID, "invalid tag '': empty");
    if (len > BERTH_TAG_MAX)
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID,
                                   "invalid tag '%.*s...': longer than %d characters", 64, tag,
                                   BERTH_TAG_MAX);
    /* distribution-spec: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */
    if (tag[0] == '.' || tag[0] == '-')
        return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID,
                                   "invalid tag '%.*s': must not start with '%c'", (int)len, tag,
                                   tag[0]);
    for (i = 0; i < len; i++)
        if (!is_tag_char(tag[i]))
            return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_TAG_INVALID,
                                       "invalid tag '%.*s': invalid character at position %zu",
                                       (int)len, tag, i + 1);
    return 0;
}

/*
 * Image references (reference.h), written from the grammar documented in
 * distribution/reference (reference.go) and its normalization rules
 * (normalize.go):  reference := name [":" tag] ["@" digest],
 * name := [domain "/"] path, domain := host [":" port], host := domain-name |
 * "[" IPv6 "]". The first path component is a domain when it contains '.' or
 * ':', is "localhost", or has an uppercase letter; otherwise the registry is
 * docker.io, and a one-component path there gets "library/". The path and tag
 * are checked by core/name.c. Invariant: a parsed reference formats (long or
 * short form) to a string that parses back to the same parts.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/name.h"
#include "core/reference.h"

#define LEGACY_REGISTRY "index.docker.io"
#define OFFICIAL_PREFIX "library/"
#define QUOTE_MAX 120

/* BERTH_EINVALID with "invalid reference 'S': <why>"; long input is cut short. */
static int ref_err(const char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int ref_err(const char *s, const char *fmt, ...)
{
    char why[400];
    size_t len = strlen(s);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return berth_error_set(BERTH_EINVALID, "invalid reference '%.*s%s': %s",
                           len > QUOTE_MAX ? QUOTE_MAX : (int)len, s,
                           len > QUOTE_MAX ? "..." : "", why);
}

/* The callee's message (name, tag or digest check), prefixed with the reference. */
static int ref_err_callee(const char *s)
{
    char why[400];

    snprintf(why, sizeof(why), "%s", berth_error_msg());
    return ref_err(s, "%s", why);
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int has_upper(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return 1;
    return 0;
}

/* ":" [0-9]+ at p (len bytes, p[0] == ':'), or NULL. */
static const char *check_port(const char *p, size_t len)
{
    if (len == 1)
        return "empty port";
    for (size_t i = 1; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return "port is not a number";
    return NULL;
}

/* Why `d` (len bytes) is not domain := host [":" port], or NULL when it is. */
static const char *check_domain(const char *d, size_t len)
{
    size_t i = 0, start;

    if (len == 0)
        return "empty host";
    if (d[0] == '[') {
        /* "[" [a-fA-F0-9:]+ "]" [":" port] */
        for (i = 1; i < len && d[i] != ']'; i++)
            if (!is_hex(d[i]) && d[i] != ':')
                return "invalid character in IPv6 address";
        if (i == len)
            return "missing ']' after IPv6 address";
        if (i == 1)
            return "empty IPv6 address";
        i++;
        if (i == len)
            return NULL;
        if (d[i] != ':')
            return "unexpected character after IPv6 address";
        return check_port(d + i, len - i);
    }
    /* component ('.' component)*, component := [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
    for (;;) {
        start = i;
        while (i < len && (is_alnum(d[i]) || d[i] == '-'))
            i++;
        if (i == start)
            return i < len && d[i] != '.' && d[i] != ':' ? "invalid character in host"
                                                         : "empty host component";
        if (d[start] == '-' || d[i - 1] == '-')
            return "host component starts or ends with '-'";
        if (i == len)
            return NULL;
        if (d[i] == ':')
            return check_port(d + i, len - i);
        if (d[i] != '.')
            return "invalid character in host";
        i++;
    }
}

/* Docker refuses a bare 64-hex string as a name: it is an image id. */
static int is_image_id(const char *s, size_t len)
{
    if (len != 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int parse(struct berth_ref *out, const char *s, int default_tag)
{
    const char *at, *slash, *colon = NULL, *name_end, *first_end, *path;
    size_t len, name_len, path_len, i;
    const char *why;
    int add_library = 0;

    memset(out, 0, sizeof(*out));
    if (!s)
        return berth_error_set(BERTH_EINVALID, "invalid reference: none given");
    len = strlen(s);
    if (len == 0)
        return ref_err(s, "empty");
    if (is_image_id(s, len))
        return ref_err(s, "a 64-character hexadecimal string is an image id, not a name");

    /* "@" digest: neither the name nor the tag may contain '@' */
    at = strchr(s, '@');
    name_end = at ? at : s + len;
    if (at) {
        int rc = berth_digest_parse(&out->digest, at + 1, len - (size_t)(at + 1 - s));

        if (rc < 0) {
            if (at[1] == '\0')
                return ref_err(s, "empty digest after '@'");
            return ref_err_callee(s);
        }
        out->has_digest = 1;
    }

    /* ":" tag: the last ':' after the last '/' of the name part */
    slash = NULL;
    for (const char *p = s; p < name_end; p++)
        if (*p == '/')
            slash = p;
    for (const char *p = slash ? slash + 1 : s; p < name_end; p++)
        if (*p == ':')
            colon = p;
    if (colon) {
        size_t tag_len = (size_t)(name_end - colon - 1);

        if (tag_len == 0)
            return ref_err(s, "empty tag after ':'");
        if (berth_tag_check(colon + 1, tag_len) < 0)
            return ref_err_callee(s);
        memcpy(out->tag, colon + 1, tag_len);
        out->tag[tag_len] = '\0';
        name_end = colon;
    }
    name_len = (size_t)(name_end - s);
    if (name_len == 0)
        return ref_err(s, "missing repository name");

    /* domain "/" path, or a path on docker.io */
    first_end = memchr(s, '/', name_len);
    path = s;
    if (first_end) {
        size_t flen = (size_t)(first_end - s);

        if ((flen == 9 && memcmp(s, "localhost", 9) == 0) || memchr(s, '.', flen) ||
            memchr(s, ':', flen) || has_upper(s, flen)) {
            if ((why = check_domain(s, flen)) != NULL)
                return ref_err(s, "invalid registry '%.*s': %s", (int)flen, s, why);
            if (flen == strlen(LEGACY_REGISTRY) && memcmp(s, LEGACY_REGISTRY, flen) == 0) {
                snprintf(out->registry, sizeof(out->registry), "%s", BERTH_DEFAULT_REGISTRY);
            } else {
                if (flen >= sizeof(out->registry))
                    return ref_err(s, "registry longer than %zu characters",
                                   sizeof(out->registry) - 1);
                memcpy(out->registry, s, flen);
                out->registry[flen] = '\0';
            }
            path = first_end + 1;
        }
    }
    if (path == s)
        snprintf(out->registry, sizeof(out->registry), "%s", BERTH_DEFAULT_REGISTRY);
    path_len = (size_t)(name_end - path);
    if (path_len == 0)
        return ref_err(s, "missing repository name after the registry");

    /* normalize.go checks case before the grammar, for a clearer message */
    if (has_upper(path, path_len))
        return ref_err(s, "repository name must be lowercase");
    if (berth_name_check(path, path_len) < 0)
        return ref_err_callee(s);
    if (strcmp(out->registry, BERTH_DEFAULT_REGISTRY) == 0 && !memchr(path, '/', path_len))
        add_library = 1;

    /* reference.go NameTotalLengthMax: the whole normalized name */
    i = strlen(out->registry) + 1 + (add_library ? strlen(OFFICIAL_PREFIX) : 0) + path_len;
    if (i > BERTH_NAME_MAX)
        return ref_err(s, "name longer than %d characters (%zu with the registry)", BERTH_NAME_MAX,
                       i);
    snprintf(out->repository, sizeof(out->repository), "%s%.*s",
             add_library ? OFFICIAL_PREFIX : "", (int)path_len, path);

    if (!out->tag[0] && !out->has_digest && default_tag)
        snprintf(out->tag, sizeof(out->tag), "%s", BERTH_DEFAULT_TAG);
    return 0;
}

int berth_ref_parse(struct berth_ref *out, const char *s)
{
    return parse(out, s, 1);
}

int berth_ref_parse_notag(struct berth_ref *out, const char *s)
{
    return parse(out, s, 0);
}

static size_t format(char *buf, size_t size, const char *registry, const char *repository,
                     const struct berth_ref *r)
{
    int n = snprintf(buf, size, "%s%s%s%s%s%s%s", registry, registry[0] ? "/" : "", repository,
                     r->tag[0] ? ":" : "", r->tag, r->has_digest ? "@" : "",
                     r->has_digest ? r->digest.str : "");

    return n < 0 ? 0 : (size_t)n;
}

size_t berth_ref_format(char *buf, size_t size, const struct berth_ref *r)
{
    return format(buf, size, r->registry, r->repository, r);
}

size_t berth_ref_format_short(char *buf, size_t size, const struct berth_ref *r)
{
    const char *repo = r->repository, *slash;
    size_t flen;

    if (strcmp(r->registry, BERTH_DEFAULT_REGISTRY) != 0)
        return format(buf, size, r->registry, repo, r);
    /* Drop docker.io only when the first component would not read as a
     * registry again ("docker.io/foo.bar/x" stays whole). */
    slash = strchr(repo, '/');
    flen = slash ? (size_t)(slash - repo) : strlen(repo);
    if (slash && ((flen == 9 && memcmp(repo, "localhost", 9) == 0) || memchr(repo, '.', flen)))
        return format(buf, size, r->registry, repo, r);
    /* "library/" goes too, unless what is left would read as an image id */
    if (strncmp(repo, OFFICIAL_PREFIX, strlen(OFFICIAL_PREFIX)) == 0 &&
        !strchr(repo + strlen(OFFICIAL_PREFIX), '/') &&
        (r->tag[0] || r->has_digest ||
         !is_image_id(repo + strlen(OFFICIAL_PREFIX), strlen(repo + strlen(OFFICIAL_PREFIX)))))
        repo += strlen(OFFICIAL_PREFIX);
    return format(buf, size, "", repo, r);
}

const char *berth_ref_manifest_ref(const struct berth_ref *r)
{
    return r->has_digest ? r->digest.str : r->tag;
}

const char *berth_ref_api_host(const char *registry)
{
    if (strcmp(registry, BERTH_DEFAULT_REGISTRY) == 0 || strcmp(registry, LEGACY_REGISTRY) == 0)
        return "registry-1.docker.io";
    return registry;
}

int berth_registry_is_local(const char *registry)
{
    char host[256];
    const char *end;
    size_t hlen;
    unsigned char addr[16];

    if (!registry)
        return 0;
    if (registry[0] == '[') {
        if ((end = strchr(registry, ']')) == NULL)
            return 0;
        registry++;
    } else {
        end = strchr(registry, ':');
        if (!end || strchr(end + 1, ':'))
            end = registry + strlen(registry); /* no port, or a bare IPv6 address */
    }
    hlen = (size_t)(end - registry);
    if (hlen == 0 || hlen >= sizeof(host))
        return 0;
    memcpy(host, registry, hlen);
    host[hlen] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char loop6[16] = { [15] = 1 };

        return memcmp(addr, loop6, 16) == 0;
    }
    return 0;
}

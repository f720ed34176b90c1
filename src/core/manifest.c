/*
 * Manifest validation (OCI image-spec manifest.md, image-index.md,
 * descriptor.md; Docker image manifest v2 schema 2 and manifest list). The one
 * reader of pushed manifest bytes: checks structure, media types and every
 * descriptor, and copies out what the store needs. Invariant: on success every
 * descriptor in the result has a media type, a valid digest and a size >= 0;
 * on failure *out is NULL and nothing leaks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/manifest.h"

#define MAX_DEPTH 64
#define PATH_MAX_LEN 64

static const struct {
    const char *type;
    enum berth_manifest_kind kind;
} kinds[] = {
    { BERTH_MT_OCI_MANIFEST, BERTH_MK_OCI_MANIFEST },
    { BERTH_MT_OCI_INDEX, BERTH_MK_OCI_INDEX },
    { BERTH_MT_DOCKER_MANIFEST, BERTH_MK_DOCKER_MANIFEST },
    { BERTH_MT_DOCKER_LIST, BERTH_MK_DOCKER_LIST },
    { BERTH_MT_DOCKER_SCHEMA1, BERTH_MK_DOCKER_SCHEMA1 },
    { BERTH_MT_DOCKER_SCHEMA1_SIGNED, BERTH_MK_DOCKER_SCHEMA1 },
};

static int quote_len(size_t len)
{
    return len > 200 ? 200 : (int)len;
}

static int invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* BERTH_EINVALID / MANIFEST_INVALID with "manifest invalid: " before the message. */
static int invalid(const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return berth_error_set_oci(BERTH_EINVALID, BERTH_OCI_MANIFEST_INVALID, "manifest invalid: %s",
                               msg);
}

static int unsupported_schema1(void)
{
    return berth_error_set_oci(BERTH_EUNSUPPORTED, BERTH_OCI_MANIFEST_INVALID,
                               "manifest invalid: Docker schema1 manifests are unsupported");
}

static int ci_eq(const char *a, size_t alen, const char *lit)
{
    size_t i;

    for (i = 0; i < alen && lit[i]; i++) {
        char c = a[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return i == alen && lit[i] == '\0';
}

enum berth_manifest_kind berth_manifest_kind_of(const char *media_type, size_t len)
{
    const char *semi;
    size_t i;

    if (!media_type)
        return BERTH_MK_UNKNOWN;
    /* RFC 9110 §8.3.1: media-type = type "/" subtype parameters; OWS around. */
    if ((semi = memchr(media_type, ';', len)) != NULL)
        len = (size_t)(semi - media_type);
    while (len > 0 && (media_type[0] == ' ' || media_type[0] == '\t')) {
        media_type++;
        len--;
    }
    while (len > 0 && (media_type[len - 1] == ' ' || media_type[len - 1] == '\t'))
        len--;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (ci_eq(media_type, len, kinds[i].type))
            return kinds[i].kind;
    return BERTH_MK_UNKNOWN;
}

int berth_manifest_kind_is_index(enum berth_manifest_kind k)
{
    return k == BERTH_MK_OCI_INDEX || k == BERTH_MK_DOCKER_LIST;
}

static const char *kind_type(enum berth_manifest_kind k)
{
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].kind == k)
            return kinds[i].type;
    return NULL;
}

int berth_descriptor_is_foreign(const struct berth_descriptor *d)
{
    if (d->has_urls)
        return 1;
    if (!d->media_type)
        return 0;
    /* image-spec layer.md "Non-distributable layers"; Docker schema2 "foreign" layers. */
    return strstr(d->media_type, ".nondistributable.") != NULL ||
           strstr(d->media_type, "application/vnd.docker.image.rootfs.foreign.diff") != NULL;
}

/* Nesting depth of JSON text, counted on brackets outside strings. A cheap bound checked
 * before jansson recurses (its own limit is 2048). */
static int depth_ok(const uint8_t *p, size_t len)
{
    size_t i, depth = 0;
    int in_str = 0;

    for (i = 0; i < len; i++) {
        uint8_t c = p[i];

        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH)
                return 0;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d)
        memcpy(d, s, n);
    return d;
}

static int oom(void)
{
    return berth_error_set(BERTH_ERROR, "out of memory parsing manifest");
}

static void descriptor_dispose(struct berth_descriptor *d)
{
    free(d->media_type);
    free(d->artifact_type);
    free(d->annotations);
    memset(d, 0, sizeof(*d));
}

/* annotations: a string-to-string map (image-spec annotations.md). Copied out compactly. */
static int parse_annotations(char **out, json_t *obj, const char *path)
{
    const char *key;
    json_t *v;

    *out = NULL;
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return invalid("%s%sannotations: must be an object", path, *path ? "." : "");
    json_object_foreach(obj, key, v) {
        if (!json_is_string(v))
            return invalid("%s%sannotations['%.*s']: must be a string", path, *path ? "." : "",
                           quote_len(strlen(key)), key);
    }
    if ((*out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        return oom();
    return 0;
}

static int opt_string(char **out, json_t *obj, const char *field, const char *path)
{
    json_t *v = json_object_get(obj, field);

    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return invalid("%s%s%s: must be a string", path, *path ? "." : "", field);
    if ((*out = xstrdup(json_string_value(v))) == NULL)
        return oom();
    return 0;
}

/* image-spec descriptor.md "Properties": mediaType, digest and size are REQUIRED. */
static int parse_descriptor(struct berth_descriptor *d, json_t *obj, const char *path)
{
    json_t *mt, *dg, *sz, *urls;
    const char *s;
    char why[BERTH_DIGEST_STR_MAX + 160];
    size_t i;
    int error;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(obj)) {
        error = invalid("%s: must be an object", path);
        goto done;
    }
    mt = json_object_get(obj, "mediaType");
    if (!mt) {
        error = invalid("%s.mediaType: missing", path);
        goto done;
    }
    if (!json_is_string(mt) || json_string_length(mt) == 0) {
        error = invalid("%s.mediaType: must be a non-empty string", path);
        goto done;
    }
    if ((d->media_type = xstrdup(json_string_value(mt))) == NULL) {
        error = oom();
        goto done;
    }

    dg = json_object_get(obj, "digest");
    if (!dg) {
        error = invalid("%s.digest: missing", path);
        goto done;
    }
    if (!json_is_string(dg)) {
        error = invalid("%s.digest: must be a string", path);
        goto done;
    }
    s = json_string_value(dg);
    if (berth_digest_parse(&d->digest, s, json_string_length(dg)) < 0) {
        snprintf(why, sizeof(why), "%s", berth_error_msg());
        error = invalid("%s.digest: %s", path, why);
        goto done;
    }

    sz = json_object_get(obj, "size");
    if (!sz) {
        error = invalid("%s.size: missing", path);
        goto done;
    }
    if (!json_is_integer(sz)) {
        error = invalid("%s.size: must be an integer", path);
        goto done;
    }
    if (json_integer_value(sz) < 0) {
        error = invalid("%s.size: must not be negative", path);
        goto done;
    }
    d->size = (int64_t)json_integer_value(sz);

    if ((error = opt_string(&d->artifact_type, obj, "artifactType", path)) < 0)
        goto done;
    if ((error = parse_annotations(&d->annotations, json_object_get(obj, "annotations"), path)) <
        0)
        goto done;

    if ((urls = json_object_get(obj, "urls")) != NULL) {
        if (!json_is_array(urls)) {
            error = invalid("%s.urls: must be an array", path);
            goto done;
        }
        for (i = 0; i < json_array_size(urls); i++) {
            if (!json_is_string(json_array_get(urls, i))) {
                error = invalid("%s.urls[%zu]: must be a string", path, i);
                goto done;
            }
        }
        d->has_urls = json_array_size(urls) > 0;
    }
    error = 0;
done:
    if (error < 0)
        descriptor_dispose(d);
    return error;
}

static int parse_descriptor_array(struct berth_descriptor **out, size_t *count, json_t *root,
                                  const char *field)
{
    json_t *arr = json_object_get(root, field);
    struct berth_descriptor *list = NULL;
    char path[PATH_MAX_LEN];
    size_t i, n;
    int error = 0;

    *out = NULL;
    *count = 0;
    if (!arr)
        return invalid("%s: missing", field);
    if (!json_is_array(arr))
        return invalid("%s: must be an array", field);
    n = json_array_size(arr);
    if (n == 0)
        return 0;
    if ((list = calloc(n, sizeof(*list))) == NULL)
        return oom();
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s[%zu]", field, i);
        if ((error = parse_descriptor(&list[i], json_array_get(arr, i), path)) < 0)
            goto done;
    }
done:
    if (error < 0) {
        while (i-- > 0)
            descriptor_dispose(&list[i]);
        free(list);
        return error;
    }
    *out = list;
    *count = n;
    return 0;
}

void berth_manifest_free(struct berth_manifest *m)
{
    size_t i;

    if (!m)
        return;
    free(m->media_type);
    free(m->artifact_type);
    free(m->annotations);
    descriptor_dispose(&m->config);
    for (i = 0; i < m->nlayers; i++)
        descriptor_dispose(&m->layers[i]);
    free(m->layers);
    for (i = 0; i < m->nmanifests; i++)
        descriptor_dispose(&m->manifests[i]);
    free(m->manifests);
    descriptor_dispose(&m->subject);
    free(m);
}

/* Settle the manifest kind from the body's mediaType and the request Content-Type. */
static int resolve_kind(enum berth_manifest_kind *out, json_t *root, const char *content_type)
{
    enum berth_manifest_kind ct_kind = BERTH_MK_UNKNOWN, body_kind = BERTH_MK_UNKNOWN;
    json_t *mt = json_object_get(root, "mediaType");
    const char *body_mt = NULL;

    if (content_type && *content_type)
        ct_kind = berth_manifest_kind_of(content_type, strlen(content_type));
    if (mt) {
        if (!json_is_string(mt))
            return invalid("mediaType: must be a string");
        body_mt = json_string_value(mt);
        body_kind = berth_manifest_kind_of(body_mt, json_string_length(mt));
        if (body_kind == BERTH_MK_DOCKER_SCHEMA1)
            return unsupported_schema1();
        if (body_kind == BERTH_MK_UNKNOWN)
            return invalid("mediaType: unsupported manifest media type '%.*s'",
                           quote_len(strlen(body_mt)), body_mt);
    }
    /* image-spec manifest.md / image-index.md: mediaType, when present, must match the
     * Content-Type the manifest was pushed with (distribution-spec "Pushing Manifests"). */
    if (body_kind != BERTH_MK_UNKNOWN && ct_kind != BERTH_MK_UNKNOWN && body_kind != ct_kind)
        return invalid("mediaType '%.*s' does not match Content-Type '%.*s'",
                       quote_len(strlen(body_mt)), body_mt, quote_len(strlen(content_type)),
                       content_type);
    if (body_kind != BERTH_MK_UNKNOWN)
        *out = body_kind;
    else if (ct_kind != BERTH_MK_UNKNOWN)
        *out = ct_kind;
    else if (json_object_get(root, "config"))
        *out = BERTH_MK_OCI_MANIFEST;
    else if (json_object_get(root, "manifests"))
        *out = BERTH_MK_OCI_INDEX;
    else
        return invalid("cannot determine the manifest type: no mediaType, Content-Type, "
                       "config or manifests");
    /* Docker schema2 and manifest list: mediaType is REQUIRED in the body. */
    if ((*out == BERTH_MK_DOCKER_MANIFEST || *out == BERTH_MK_DOCKER_LIST) && !body_mt)
        return invalid("mediaType: missing (required for Docker manifests)");
    return 0;
}

int berth_manifest_parse(struct berth_manifest **out, const char *content_type, const uint8_t *body,
                         size_t len)
{
    struct berth_manifest *m = NULL;
    json_t *root = NULL, *sv, *subject;
    json_error_t jerr;
    int error;

    *out = NULL;
    if (content_type && *content_type &&
        berth_manifest_kind_of(content_type, strlen(content_type)) == BERTH_MK_DOCKER_SCHEMA1)
        return unsupported_schema1();
    if (!body || len == 0)
        return invalid("empty body");
    if (!depth_ok(body, len))
        return invalid("JSON nested deeper than %d levels", MAX_DEPTH);
    if ((root = json_loadb((const char *)body, len, 0, &jerr)) == NULL)
        return invalid("malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                       jerr.text);
    if (!json_is_object(root)) {
        error = invalid("body must be a JSON object");
        goto done;
    }

    /* image-spec manifest.md: schemaVersion REQUIRED, MUST be 2 (1 is Docker schema1). */
    sv = json_object_get(root, "schemaVersion");
    if (json_is_integer(sv) && json_integer_value(sv) == 1) {
        error = unsupported_schema1();
        goto done;
    }
    if (!sv) {
        error = invalid("schemaVersion: missing");
        goto done;
    }
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        error = invalid("schemaVersion: must be 2");
        goto done;
    }

    if ((m = calloc(1, sizeof(*m))) == NULL) {
        error = oom();
        goto done;
    }
    if ((error = resolve_kind(&m->kind, root, content_type)) < 0)
        goto done;
    if ((m->media_type = xstrdup(kind_type(m->kind))) == NULL) {
        error = oom();
        goto done;
    }

    if (berth_manifest_kind_is_index(m->kind)) {
        if ((error = parse_descriptor_array(&m->manifests, &m->nmanifests, root, "manifests")) <
            0)
            goto done;
    } else {
        json_t *config = json_object_get(root, "config");

        if (!config) {
            error = invalid("config: missing");
            goto done;
        }
        if ((error = parse_descriptor(&m->config, config, "config")) < 0)
            goto done;
        m->has_config = 1;
        if ((error = parse_descriptor_array(&m->layers, &m->nlayers, root, "layers")) < 0)
            goto done;
    }

    /* image-spec 1.1 manifest.md / image-index.md: artifactType and subject, both OPTIONAL. */
    if ((subject = json_object_get(root, "subject")) != NULL) {
        if ((error = parse_descriptor(&m->subject, subject, "subject")) < 0)
            goto done;
        m->has_subject = 1;
    }
    if ((error = opt_string(&m->artifact_type, root, "artifactType", "")) < 0)
        goto done;
    if (!m->artifact_type && m->has_config &&
        (m->artifact_type = xstrdup(m->config.media_type)) == NULL) {
        error = oom();
        goto done;
    }
    if ((error = parse_annotations(&m->annotations, json_object_get(root, "annotations"), "")) <
        0)
        goto done;

    *out = m;
    m = NULL;
    error = 0;
done:
    berth_manifest_free(m);
    json_decref(root);
    return error;
}

/*
 * `berth inspect REF`: what a reference names. For an index, its platforms
 * and their digests; for an image, the config's os/arch, creation time,
 * entrypoint, command, environment and labels, and the layers with their
 * sizes and a total. --raw prints the manifest bytes exactly as served (the
 * digest is of those bytes), --json a JSON object, --platform picks one
 * image out of an index. Output to stdout, diagnostics to stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"
#include "core/manifest.h"
#include "core/reference.h"

#define CONFIG_MAX (16u * 1024 * 1024)
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

static const char usage_text[] =
    "usage: berth inspect REF [--raw] [--json] [--platform OS/ARCH[/VARIANT]]\n"
    "\n"
    "Show what an image reference names: for a multi-platform index its\n"
    "platforms; for an image its config (os/arch, created, entrypoint, env,\n"
    "labels) and layers with sizes.\n"
    "\n"
    "options:\n"
    "      --raw        print the manifest exactly as the registry serves it\n"
    "      --json       print a JSON object\n"
    "      --platform P inspect the image for platform P inside an index\n"
    "      --insecure   allow plain HTTP and unverified TLS for this registry\n"
    "  -q, --quiet      no diagnostics beyond errors\n"
    "  -h, --help       show this help\n";

/* "os/arch[/variant]" of an index entry's platform object into buf. */
static void platform_str(char *buf, size_t size, json_t *p)
{
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    const char *var = json_string_value(json_object_get(p, "variant"));

    snprintf(buf, size, "%s/%s%s%s", os ? os : "?", arch ? arch : "?", var ? "/" : "",
             var ? var : "");
}

static void human_size(char *buf, size_t size, uint64_t n)
{
    if (n < 1000)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else if (n < 1000 * 1000)
        snprintf(buf, size, "%.1f kB", (double)n / 1e3);
    else if (n < 1000ull * 1000 * 1000)
        snprintf(buf, size, "%.1f MB", (double)n / 1e6);
    else
        snprintf(buf, size, "%.2f GB", (double)n / 1e9);
}

/* The child of an index for `want` ("os/arch" matches any variant). */
static int pick_platform(struct berth_digest *out, json_t *index, const char *want)
{
    json_t *list = json_object_get(index, "manifests"), *e;
    size_t i, wl = strlen(want);
    char p[300];

    json_array_foreach(list, i, e) {
        const char *d = json_string_value(json_object_get(e, "digest"));
        platform_str(p, sizeof(p), json_object_get(e, "platform"));
        if (d && (strcmp(p, want) == 0 || (strncmp(p, want, wl) == 0 && p[wl] == '/')))
            return berth_digest_parse(out, d, strlen(d));
    }
    return berth_error_set(BERTH_ENOTFOUND, "no image for platform '%s' in the index", want);
}

static void print_list(const char *label, json_t *arr)
{
    char *s = arr && !json_is_null(arr) ? json_dumps(arr, JSON_COMPACT) : NULL;

    if (s)
        printf("%-12s%s\n", label, s);
    free(s);
}

static int show_index(const char *name, const struct berth_blob_buf *b, json_t *root, int json)
{
    json_t *list = json_object_get(root, "manifests"), *e, *out = NULL, *arr = NULL;
    char p[300];
    size_t i;
    int error = 0;

    if (!json) {
        printf("%-12s%s\n%-12s%s\n%-12s%s\nPlatforms:\n", "Reference:", name, "Digest:",
               b->digest.str, "Media type:", b->media_type);
        json_array_foreach(list, i, e) {
            const char *d = json_string_value(json_object_get(e, "digest"));
            json_t *plat = json_object_get(e, "platform");
            if (json_is_object(plat))
                platform_str(p, sizeof(p), plat);
            else
                snprintf(p, sizeof(p), "%s", "(no platform)");
            printf("  %-20s %s\n", p, d ? d : "?");
        }
        return 0;
    }
    if ((arr = json_array()) == NULL)
        goto oom;
    json_array_foreach(list, i, e) {
        json_t *plat = json_object_get(e, "platform"), *item;
        platform_str(p, sizeof(p), plat);
        item = json_pack("{s:O*, s:O*, s:O*}", "digest", json_object_get(e, "digest"),
                         "mediaType", json_object_get(e, "mediaType"), "size",
                         json_object_get(e, "size"));
        if (!item)
            goto oom;
        if (json_is_object(plat))
            json_object_set_new(item, "platform", json_string(p));
        json_array_append_new(arr, item);
    }
    out = json_pack("{s:s, s:s, s:s, s:O}", "reference", name, "digest", b->digest.str,
                    "mediaType", b->media_type, "manifests", arr);
    if (!out || json_dumpf(out, stdout, JSON_INDENT(2)) < 0)
        goto oom;
    putchar('\n');
    goto done;
oom:
    error = berth_error_set(BERTH_ERROR, "out of memory");
done:
    json_decref(arr);
    json_decref(out);
    return error;
}

static int show_image(struct berth_registry *r, const char *repo, const char *name,
                      const struct berth_blob_buf *b, int json)
{
    struct berth_manifest *m = NULL;
    uint8_t *cfgbuf = NULL;
    size_t cfglen = 0;
    json_t *cfg = NULL, *cc = NULL, *out = NULL, *layers = NULL;
    uint64_t total = 0;
    char plat[300] = "", sz[32];
    const char *created = NULL;
    int error;

    if ((error = berth_manifest_parse(&m, b->media_type, b->data, b->len)) < 0)
        goto done;
    if (m->has_config && (strcmp(m->config.media_type, MT_OCI_CONFIG) == 0 ||
                          strcmp(m->config.media_type, MT_DOCKER_CONFIG) == 0)) {
        if ((error = berth_registry_blob_get_buf(r, repo, &m->config.digest, CONFIG_MAX, &cfgbuf,
                                                 &cfglen)) < 0)
            goto done;
        if ((cfg = json_loadb((const char *)cfgbuf, cfglen, 0, NULL)) == NULL) {
            error = berth_error_set(BERTH_EINVALID, "image config %s is not JSON",
                                    m->config.digest.str);
            goto done;
        }
        platform_str(plat, sizeof(plat), cfg);
        created = json_string_value(json_object_get(cfg, "created"));
        cc = json_object_get(cfg, "config");
    }
    for (size_t i = 0; i < m->nlayers; i++)
        total += (uint64_t)m->layers[i].size;

    if (!json) {
        json_t *env = json_object_get(cc, "Env"), *labels = json_object_get(cc, "Labels"), *v;
        const char *k;
        size_t i;

        printf("%-12s%s\n%-12s%s\n%-12s%s\n", "Reference:", name, "Digest:", b->digest.str,
               "Media type:", b->media_type);
        if (m->artifact_type && !cfg)
            printf("%-12s%s\n", "Artifact:", m->artifact_type);
        if (plat[0])
            printf("%-12s%s\n", "Platform:", plat);
        if (created)
            printf("%-12s%s\n", "Created:", created);
        print_list("Entrypoint:", json_object_get(cc, "Entrypoint"));
        print_list("Cmd:", json_object_get(cc, "Cmd"));
        if (json_array_size(env)) {
            printf("Env:\n");
            json_array_foreach(env, i, v) {
                printf("  %s\n", json_string_value(v) ? json_string_value(v) : "");
            }
        }
        if (json_object_size(labels)) {
            printf("Labels:\n");
            json_object_foreach(labels, k, v) {
                printf("  %s=%s\n", k, json_string_value(v) ? json_string_value(v) : "");
            }
        }
        printf("Layers:\n");
        for (i = 0; i < m->nlayers; i++) {
            human_size(sz, sizeof(sz), (uint64_t)m->layers[i].size);
            printf("  %s  %10s  %s\n", m->layers[i].digest.str, sz, m->layers[i].media_type);
        }
        human_size(sz, sizeof(sz), total);
        printf("%-12s%zu layer%s, %s (%llu bytes)\n", "Total:", m->nlayers,
               m->nlayers == 1 ? "" : "s", sz, (unsigned long long)total);
        goto done;
    }
    if ((layers = json_array()) == NULL)
        goto oom;
    for (size_t i = 0; i < m->nlayers; i++)
        if (json_array_append_new(layers, json_pack("{s:s, s:I, s:s}", "digest",
                                                    m->layers[i].digest.str, "size",
                                                    (json_int_t)m->layers[i].size, "mediaType",
                                                    m->layers[i].media_type)) < 0)
            goto oom;
    out = json_pack("{s:s, s:s, s:s, s:O, s:I}", "reference", name, "digest", b->digest.str,
                    "mediaType", b->media_type, "layers", layers, "size", (json_int_t)total);
    if (!out)
        goto oom;
    if (m->has_config)
        json_object_set_new(out, "config", json_string(m->config.digest.str));
    if (m->artifact_type)
        json_object_set_new(out, "artifactType", json_string(m->artifact_type));
    if (plat[0])
        json_object_set_new(out, "platform", json_string(plat));
    if (created)
        json_object_set_new(out, "created", json_string(created));
    if (json_is_array(json_object_get(cc, "Entrypoint")))
        json_object_set(out, "entrypoint", json_object_get(cc, "Entrypoint"));
    if (json_is_array(json_object_get(cc, "Cmd")))
        json_object_set(out, "cmd", json_object_get(cc, "Cmd"));
    if (json_is_array(json_object_get(cc, "Env")))
        json_object_set(out, "env", json_object_get(cc, "Env"));
    if (json_is_object(json_object_get(cc, "Labels")))
        json_object_set(out, "labels", json_object_get(cc, "Labels"));
    if (json_dumpf(out, stdout, JSON_INDENT(2)) < 0)
        goto oom;
    putchar('\n');
    goto done;
oom:
    error = berth_error_set(BERTH_ERROR, "out of memory");
done:
    json_decref(out);
    json_decref(layers);
    json_decref(cfg);
    free(cfgbuf);
    berth_manifest_free(m);
    return error;
}

int cmd_inspect(int argc, char **argv)
{
    enum { OPT_RAW = 256, OPT_JSON, OPT_PLATFORM, OPT_INSECURE };
    static const struct option opts[] = {
        { "raw", no_argument, NULL, OPT_RAW },
        { "json", no_argument, NULL, OPT_JSON },
        { "platform", required_argument, NULL, OPT_PLATFORM },
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts = { 0 };
    struct berth_registry *r = NULL;
    struct berth_ref ref;
    struct berth_blob_buf b = { 0 }, child = { 0 };
    struct berth_digest cd;
    const struct berth_blob_buf *shown;
    const char *platform = NULL;
    json_t *root = NULL;
    char name[700];
    int raw = 0, json = 0, c, rc = 1, is_index;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case OPT_RAW:
            raw = 1;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case OPT_PLATFORM:
            platform = optarg;
            break;
        case OPT_INSECURE:
            ropts.insecure = 1;
            break;
        case 'q':
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (argc - optind != 1 || (raw && json)) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (berth_ref_parse(&ref, argv[optind]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    berth_ref_format(name, sizeof(name), &ref);
    if (berth_registry_new(&r, ref.registry, &ropts) < 0 ||
        berth_registry_manifest_get(r, ref.repository, berth_ref_manifest_ref(&ref), &b) < 0)
        goto fail;
    shown = &b;
    is_index = berth_manifest_kind_is_index(berth_manifest_kind_of(b.media_type,
                                                                   strlen(b.media_type)));
    if (is_index || !raw) {
        if ((root = json_loadb((const char *)b.data, b.len, 0, NULL)) == NULL) {
            berth_error_set(BERTH_EINVALID, "%s: manifest is not JSON", name);
            goto fail;
        }
    }
    if (is_index && platform) {
        if (pick_platform(&cd, root, platform) < 0 ||
            berth_registry_manifest_get(r, ref.repository, cd.str, &child) < 0)
            goto fail;
        shown = &child;
        snprintf(name, sizeof(name), "%s/%s@%s", ref.registry, ref.repository, cd.str);
        json_decref(root);
        if ((root = json_loadb((const char *)child.data, child.len, 0, NULL)) == NULL) {
            berth_error_set(BERTH_EINVALID, "%s: manifest is not JSON", name);
            goto fail;
        }
        is_index = berth_manifest_kind_is_index(
            berth_manifest_kind_of(child.media_type, strlen(child.media_type)));
    }
    if (raw) {
        if (fwrite(shown->data, 1, shown->len, stdout) != shown->len)
            goto done;
    } else if (is_index) {
        if (show_index(name, shown, root, json) < 0)
            goto fail;
    } else if (show_image(r, ref.repository, name, shown, json) < 0) {
        goto fail;
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "berth: %s\n", berth_error_msg());
done:
    json_decref(root);
    berth_blob_buf_dispose(&child);
    berth_blob_buf_dispose(&b);
    berth_registry_free(r);
    return rc;
}

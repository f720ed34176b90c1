/*
 * `berth push SOURCE REF`: upload an image from an OCI layout, an OCI
 * archive or a `docker save` tarball to a registry, moving only the blobs the
 * registry lacks. --all-tags pushes every tag the source holds (the founding
 * exercise: push every tag of gallery/ui). Prints the pushed digest on
 * stdout; progress and messages go to stderr. Exit 0 / 1 failed / 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client/image.h"
#include "commands.h"
#include "core/error.h"

static const char usage_text[] =
    "usage: berth push [options] SOURCE REF\n"
    "\n"
    "Push a local image to a registry; only blobs the registry lacks are uploaded.\n"
    "\n"
    "SOURCE is one of:\n"
    "  oci:DIR[:TAG]                  an OCI image layout directory\n"
    "  oci-archive:FILE[:TAG]         a tar of an OCI image layout\n"
    "  docker-archive:FILE[:NAME]     a 'docker save' tarball (NAME: one of its RepoTags)\n"
    "  PATH[:TAG]                     detected: a directory with oci-layout, or a tar\n"
    "                                 holding manifest.json (docker) or oci-layout (OCI)\n"
    "Without TAG the source must hold exactly one image (docker-archive: the first).\n"
    "REF is [REGISTRY/]REPOSITORY[:TAG] (tag default 'latest').\n"
    "\n"
    "options:\n"
    "  --all-tags             push every tag in SOURCE to REF's repository under the\n"
    "                         same tag names (REF then has no tag)\n"
    "  --platform OS/ARCH[/VARIANT]\n"
    "                         from a multi-platform index push only that image\n"
    "                         (default: the whole index)\n"
    "  -j, --parallel N       blobs in flight at once (default 4)\n"
    "  --insecure             allow plain HTTP and unverified TLS for the registry\n"
    "  -q, --quiet            no progress output\n"
    "  --json                 progress and result as JSON lines on stdout\n"
    "  -h, --help             show this help\n"
    "\n"
    "Prints the digest of the pushed manifest (one 'TAG DIGEST' line per tag with\n"
    "--all-tags). Docker-archive layers are pushed gzip-compressed under a Docker\n"
    "schema2 manifest; the config (and so the image ID) is unchanged.\n";

enum { OPT_ALL_TAGS = 256, OPT_PLATFORM };

struct tag_list {
    char **v;
    size_t n;
};

static int collect(void *ctx, const char *name)
{
    struct tag_list *l = ctx;
    char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));

    if (!nv || !(nv[l->n] = strdup(name))) {
        if (nv)
            l->v = nv;
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    l->v = nv;
    l->n++;
    return 0;
}

/* The tag part of a source's name: "gallery/ui:v1" → "v1"; layout names as they are. */
static const char *tag_part(const char *name)
{
    const char *colon = strrchr(name, ':');

    if (colon && !strchr(colon, '/'))
        return colon + 1;
    return name;
}

static int parse_source(struct berth_location *out, const char *s)
{
    if (!strncmp(s, "oci:", 4) || !strncmp(s, "oci-archive:", 12) ||
        !strncmp(s, "docker-archive:", 15))
        return berth_location_parse(out, s);
    return berth_location_detect(out, s);
}

int cmd_push(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all-tags", no_argument, NULL, OPT_ALL_TAGS },
        { "platform", required_argument, NULL, OPT_PLATFORM },
        { "parallel", required_argument, NULL, 'j' },
        { "insecure", no_argument, NULL, BERTH_OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts;
    struct berth_copy_opts copts;
    struct berth_copy_result res;
    struct berth_location src_loc, dst_loc;
    struct berth_image_src *src = NULL;
    struct berth_image_dst *dst = NULL;
    struct tag_list tags = { NULL, 0 };
    struct berth_cli_common co = { 0 };
    int cr, c, all_tags = 0, rc = 1, error;

    memset(&ropts, 0, sizeof(ropts));
    memset(&copts, 0, sizeof(copts));
    optind = 1;
    while ((c = berth_getopt(argc, argv, "j:qh", longopts)) != -1) {
        switch (c) {
        case OPT_ALL_TAGS:
            all_tags = 1;
            break;
        case OPT_PLATFORM:
            copts.platform = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            if ((cr = berth_cli_common_opt(&co, c, optarg)) > 0)
                break;
            if (cr == 0)
                fputs(usage_text, stderr);
            return 2;
        }
    }
    ropts.insecure = co.insecure;
    copts.quiet = co.quiet;
    copts.json = co.json;
    copts.parallel = co.parallel;
    if (argc - optind != 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (parse_source(&src_loc, argv[optind]) < 0 ||
        berth_location_parse_notag(&dst_loc, argv[optind + 1]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (src_loc.kind == BERTH_LOC_REGISTRY) {
        fprintf(stderr, "berth: push takes a local image; use 'berth cp' between registries\n");
        return 2;
    }
    if (dst_loc.kind != BERTH_LOC_REGISTRY) {
        fprintf(stderr, "berth: push goes to a registry; use 'berth cp' between local formats\n");
        return 2;
    }
    if (all_tags && (dst_loc.ref.tag[0] || dst_loc.ref.has_digest || src_loc.tag[0])) {
        fprintf(stderr, "berth: with --all-tags neither SOURCE nor REF names a tag\n");
        return 2;
    }
    if (!all_tags && !dst_loc.ref.tag[0] && !dst_loc.ref.has_digest)
        snprintf(dst_loc.ref.tag, sizeof(dst_loc.ref.tag), "%s", BERTH_DEFAULT_TAG);

    if ((error = berth_image_src_open(&src, &src_loc, &ropts)) < 0)
        goto done;
    if ((error = berth_image_dst_open(&dst, &dst_loc, &ropts)) < 0)
        goto done;
    if (!all_tags) {
        if ((error = berth_image_copy(&res, src, dst, &copts)) < 0)
            goto done;
        if (!copts.json)
            printf("%s\n", res.digest.str);
    } else {
        if ((error = berth_image_src_tags(src, collect, &tags)) < 0)
            goto done;
        if (tags.n == 0) {
            error = berth_error_set(BERTH_ENOTFOUND, "'%s' holds no tagged image", src_loc.path);
            goto done;
        }
        for (size_t i = 0; i < tags.n; i++) {
            const char *t = tag_part(tags.v[i]);

            copts.tags = &t;
            copts.ntags = 1;
            if ((error = berth_image_src_select(src, tags.v[i])) < 0 ||
                (error = berth_image_copy(&res, src, dst, &copts)) < 0)
                goto done;
            if (!copts.json)
                printf("%s %s\n", t, res.digest.str);
        }
    }
    if ((error = berth_image_dst_commit(dst)) < 0)
        goto done;
    rc = 0;
done:
    if (error < 0)
        fprintf(stderr, "berth: %s\n", berth_error_msg());
    for (size_t i = 0; i < tags.n; i++)
        free(tags.v[i]);
    free(tags.v);
    berth_image_src_free(src);
    berth_image_dst_free(dst);
    return rc;
}

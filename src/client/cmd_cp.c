/*
 * `berth cp SRC DST`: copy an image between any two locations — registry to
 * registry above all, but OCI layouts and archives on either side too. Only
 * missing blobs move; within one registry they are mounted across
 * repositories. --all-tags copies every tag of the source; an index source
 * is narrowed to this machine's platform unless --all-platforms (skopeo's
 * default and --all). Exit 0 / 1 failed / 2 usage.
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
    "usage: berth cp [options] SRC DST\n"
    "\n"
    "Copy an image. Only blobs DST lacks are moved; between repositories of one\n"
    "registry they are mounted, so no bytes move at all.\n"
    "\n"
    "SRC and DST are registry references ([docker://][REGISTRY/]REPOSITORY[:TAG]) or\n"
    "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME].\n"
    "Without a tag DST takes SRC's tag (or 'latest' when SRC is an untagged local\n"
    "image); a registry SRC without a tag means 'latest'.\n"
    "\n"
    "options:\n"
    "  --all-tags             copy every tag of SRC (SRC and DST name no tag)\n"
    "  --all-platforms        copy a multi-platform index whole, every platform\n"
    "  --platform OS/ARCH[/VARIANT]\n"
    "                         copy only that platform's image from an index\n"
    "                         (default without either: this machine's platform,\n"
    "                         and the copy is then that image, not the index)\n"
    "  -j, --parallel N       blobs in flight at once (default 4)\n"
    "  --insecure             allow plain HTTP and unverified TLS for both registries\n"
    "  -q, --quiet            no progress output\n"
    "  --json                 progress and result as JSON lines on stdout\n"
    "  -h, --help             show this help\n"
    "\n"
    "Prints the digest copied ('TAG DIGEST' per tag with --all-tags).\n";

enum { OPT_ALL_TAGS = 256, OPT_ALL_PLATFORMS, OPT_PLATFORM };

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

static const char *tag_part(const char *name)
{
    const char *colon = strrchr(name, ':');

    if (colon && !strchr(colon, '/'))
        return colon + 1;
    return name;
}

static const char *loc_tag(const struct berth_location *l)
{
    return l->kind == BERTH_LOC_REGISTRY ? l->ref.tag : l->tag;
}

/* The name DST gives a copied image whose source tag is `tag`: a
 * docker-archive wants a whole reference, the others just the tag. */
static const char *dst_name(char *buf, size_t size, const struct berth_location *src,
                            const struct berth_location *dst, const char *tag)
{
    if (dst->kind != BERTH_LOC_DOCKER_ARCHIVE || strchr(tag, ':') || strchr(tag, '/'))
        return tag;
    if (src->kind == BERTH_LOC_REGISTRY) {
        struct berth_ref r = src->ref;

        r.has_digest = 0;
        snprintf(r.tag, sizeof(r.tag), "%s", tag);
        berth_ref_format_short(buf, size, &r);
        return buf;
    }
    return tag;
}

int cmd_cp(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "all-tags", no_argument, NULL, OPT_ALL_TAGS },
        { "all-platforms", no_argument, NULL, OPT_ALL_PLATFORMS },
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
    char name[1024];
    const char *tag;
    struct berth_cli_common co = { 0 };
    int cr, c, all_tags = 0, all_platforms = 0, rc = 1, error;

    memset(&ropts, 0, sizeof(ropts));
    memset(&copts, 0, sizeof(copts));
    optind = 1;
    while ((c = berth_getopt(argc, argv, "j:qh", longopts)) != -1) {
        switch (c) {
        case OPT_ALL_TAGS:
            all_tags = 1;
            break;
        case OPT_ALL_PLATFORMS:
            all_platforms = 1;
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
    if (berth_location_parse_notag(&src_loc, argv[optind]) < 0 ||
        berth_location_parse_notag(&dst_loc, argv[optind + 1]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (all_platforms && copts.platform) {
        fprintf(stderr, "berth: --all-platforms and --platform exclude each other\n");
        return 2;
    }
    if (!all_platforms && !copts.platform)
        copts.platform = berth_image_host_platform();
    if (all_tags && (loc_tag(&src_loc)[0] || loc_tag(&dst_loc)[0] ||
                     (src_loc.kind == BERTH_LOC_REGISTRY && src_loc.ref.has_digest))) {
        fprintf(stderr, "berth: with --all-tags neither SRC nor DST names a tag\n");
        return 2;
    }
    if (!all_tags && src_loc.kind == BERTH_LOC_REGISTRY && !src_loc.ref.tag[0] &&
        !src_loc.ref.has_digest)
        snprintf(src_loc.ref.tag, sizeof(src_loc.ref.tag), "%s", BERTH_DEFAULT_TAG);

    if ((error = berth_image_src_open(&src, &src_loc, &ropts)) < 0)
        goto done;
    if ((error = berth_image_dst_open(&dst, &dst_loc, &ropts)) < 0)
        goto done;
    if (!all_tags) {
        /* DST's own tag wins; else SRC's; else (by digest) none. */
        if (!loc_tag(&dst_loc)[0] && loc_tag(&src_loc)[0]) {
            tag = dst_name(name, sizeof(name), &src_loc, &dst_loc, tag_part(loc_tag(&src_loc)));
            copts.tags = &tag;
            copts.ntags = 1;
        } else if (!loc_tag(&dst_loc)[0] && dst_loc.kind == BERTH_LOC_REGISTRY &&
                   !dst_loc.ref.has_digest && src_loc.kind != BERTH_LOC_REGISTRY) {
            tag = BERTH_DEFAULT_TAG; /* a local image pushed without names: 'latest' */
            copts.tags = &tag;
            copts.ntags = 1;
        }
        if ((error = berth_image_copy(&res, src, dst, &copts)) < 0)
            goto done;
        if (!copts.json)
            printf("%s\n", res.digest.str);
    } else {
        if ((error = berth_image_src_tags(src, collect, &tags)) < 0)
            goto done;
        if (tags.n == 0) {
            error = berth_error_set(BERTH_ENOTFOUND, "'%s' holds no tag", argv[optind]);
            goto done;
        }
        for (size_t i = 0; i < tags.n; i++) {
            tag = dst_name(name, sizeof(name), &src_loc, &dst_loc, tag_part(tags.v[i]));
            copts.tags = &tag;
            copts.ntags = 1;
            if ((error = berth_image_src_select(src, tags.v[i])) < 0 ||
                (error = berth_image_copy(&res, src, dst, &copts)) < 0)
                goto done;
            if (!copts.json)
                printf("%s %s\n", tag_part(tags.v[i]), res.digest.str);
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

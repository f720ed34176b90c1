/*
 * `berth pull REF DEST`: download an image from a registry into an OCI
 * layout, an OCI archive or a `docker save` tarball (for `docker load`).
 * Multi-platform indexes are kept whole unless --platform picks one; a
 * docker-archive holds one platform, so it defaults to this machine's.
 * Prints the pulled digest on stdout. Exit 0 / 1 failed / 2 usage.
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
    "usage: berth pull [options] REF DEST\n"
    "\n"
    "Pull an image from a registry into a local format, verifying every digest.\n"
    "\n"
    "REF is [REGISTRY/]REPOSITORY[:TAG][@DIGEST] (tag default 'latest').\n"
    "DEST is one of:\n"
    "  oci:DIR[:TAG]                  an OCI image layout directory (created, or added to)\n"
    "  oci-archive:FILE[:TAG]         a tar of an OCI image layout\n"
    "  docker-archive:FILE[:NAME]     a 'docker save' tarball for 'docker load'\n"
    "  DIR                            same as oci:DIR\n"
    "Without TAG/NAME the image is named after REF (its tag; docker-archive: the\n"
    "whole reference).\n"
    "\n"
    "options:\n"
    "  --platform OS/ARCH[/VARIANT]\n"
    "                         from a multi-platform index pull only that image\n"
    "                         (default: the whole index; docker-archive: this machine's)\n"
    "  -j, --parallel N       blobs in flight at once (default 4)\n"
    "  --insecure             allow plain HTTP and unverified TLS for the registry\n"
    "  -q, --quiet            no progress output\n"
    "  --json                 progress and result as JSON lines on stdout\n"
    "  -h, --help             show this help\n";

enum { OPT_PLATFORM = 256 };

int cmd_pull(int argc, char **argv)
{
    static const struct option longopts[] = {
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
    char name[1024];
    const char *tag = NULL;
    struct berth_cli_common co = { 0 };
    int cr, c, rc = 1, error;

    memset(&ropts, 0, sizeof(ropts));
    memset(&copts, 0, sizeof(copts));
    optind = 1;
    while ((c = berth_getopt(argc, argv, "j:qh", longopts)) != -1) {
        switch (c) {
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
    if (berth_location_parse(&src_loc, argv[optind]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (src_loc.kind != BERTH_LOC_REGISTRY) {
        fprintf(stderr, "berth: pull takes a registry reference; use 'berth cp' for local "
                        "formats\n");
        return 2;
    }
    {
        const char *d = argv[optind + 1];
        char buf[4096 + 8];

        if (strncmp(d, "oci:", 4) && strncmp(d, "oci-archive:", 12) &&
            strncmp(d, "docker-archive:", 15) && strncmp(d, "docker://", 9)) {
            snprintf(buf, sizeof(buf), "oci:%s", d);
            d = buf;
        }
        if (berth_location_parse(&dst_loc, d) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            return 2;
        }
    }
    if (dst_loc.kind == BERTH_LOC_REGISTRY) {
        fprintf(stderr, "berth: pull writes a local format; use 'berth cp' between registries\n");
        return 2;
    }
    if (!dst_loc.tag[0]) {
        /* Name the image after the reference it came from. */
        if (dst_loc.kind == BERTH_LOC_DOCKER_ARCHIVE) {
            struct berth_ref r = src_loc.ref;

            r.has_digest = 0;
            if (r.tag[0]) {
                berth_ref_format_short(name, sizeof(name), &r);
                tag = name;
            }
        } else if (src_loc.ref.tag[0]) {
            tag = src_loc.ref.tag;
        }
    }
    if (tag) {
        copts.tags = &tag;
        copts.ntags = 1;
    }
    if (dst_loc.kind == BERTH_LOC_DOCKER_ARCHIVE && !copts.platform)
        copts.platform = berth_image_host_platform();

    if ((error = berth_image_src_open(&src, &src_loc, &ropts)) < 0)
        goto done;
    if ((error = berth_image_dst_open(&dst, &dst_loc, &ropts)) < 0)
        goto done;
    if ((error = berth_image_copy(&res, src, dst, &copts)) < 0)
        goto done;
    if ((error = berth_image_dst_commit(dst)) < 0)
        goto done;
    if (!copts.json)
        printf("%s\n", res.digest.str);
    rc = 0;
done:
    if (error < 0)
        fprintf(stderr, "berth: %s\n", berth_error_msg());
    berth_image_src_free(src);
    berth_image_dst_free(dst);
    return rc;
}

/*
 * `berth digest REF`: the digest of the manifest a reference names, from a
 * HEAD request (Docker-Content-Digest), without downloading the manifest
 * (unless the registry sends no digest header: then it is fetched and
 * hashed). The digest goes to stdout alone, for scripts.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"
#include "core/reference.h"

static const char usage_text[] =
    "usage: berth digest REF\n"
    "\n"
    "Print the manifest digest of an image reference, e.g.\n"
    "  berth digest localhost:5000/gallery/ui:v1\n"
    "\n"
    "options:\n"
    "      --insecure  allow plain HTTP and unverified TLS for this registry\n"
    "  -q, --quiet     no diagnostics beyond errors\n"
    "  -h, --help      show this help\n";

int cmd_digest(int argc, char **argv)
{
    enum { OPT_INSECURE = 256 };
    static const struct option opts[] = {
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts = { 0 };
    struct berth_registry *r = NULL;
    struct berth_ref ref;
    struct berth_digest d;
    int c, rc = 1;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
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
    if (argc - optind != 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (berth_ref_parse(&ref, argv[optind]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (berth_registry_new(&r, ref.registry, &ropts) < 0 ||
        berth_registry_manifest_head(r, ref.repository, berth_ref_manifest_ref(&ref), &d, NULL,
                                     NULL, 0) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        goto done;
    }
    printf("%s\n", d.str);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    berth_registry_free(r);
    return rc;
}

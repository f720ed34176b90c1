/*
 * `berth tag SRC DST...`: give an image more names in a registry without
 * downloading it. Within one registry the manifest is copied verbatim and
 * its blobs mounted across repositories (HEAD first); across registries it
 * becomes a copy. --semver: tagging 2.1.3 also moves 2.1, 2 and latest, each
 * only when no higher release already holds it (berth_semver_aliases).
 * Exit 0 / 1 failed / 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client/image.h"
#include "commands.h"
#include "core/error.h"
#include "core/semver.h"

static const char usage_text[] =
    "usage: berth tag [options] SRC DST...\n"
    "\n"
    "Give the image SRC more names. In the same registry only the manifest is\n"
    "written (blobs are mounted across repositories, nothing is downloaded);\n"
    "in another registry the image is copied.\n"
    "\n"
    "SRC is [REGISTRY/]REPOSITORY[:TAG][@DIGEST]; each DST is a full reference\n"
    "[REGISTRY/]REPOSITORY[:TAG] or ':TAG' for another tag in SRC's repository.\n"
    "\n"
    "options:\n"
    "  --semver               a DST tag MAJOR.MINOR.PATCH (e.g. 2.1.3 or v2.1.3) also\n"
    "                         moves MAJOR.MINOR, MAJOR and latest in DST's repository,\n"
    "                         each only if no higher release already holds it\n"
    "                         (a prerelease such as 2.2.0-rc1 moves nothing)\n"
    "  --insecure             allow plain HTTP and unverified TLS for the registries\n"
    "  -q, --quiet            no progress output\n"
    "  --json                 progress and result as JSON lines on stdout\n"
    "  -h, --help             show this help\n"
    "\n"
    "Prints every name given, with the digest.\n";

enum { OPT_SEMVER = 256 };

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

static void tag_list_free(struct tag_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The tags already in DST's repository (none when it does not exist yet). */
static int existing_tags(struct tag_list *out, const struct berth_location *dst,
                         const struct berth_registry_opts *ropts)
{
    struct berth_image_src *s = NULL;
    int error;

    if ((error = berth_image_src_open(&s, dst, ropts)) < 0)
        return error;
    error = berth_image_src_tags(s, collect, out);
    berth_image_src_free(s);
    if (error == BERTH_ENOTFOUND) {
        berth_error_clear();
        error = 0;
    }
    return error;
}

static int parse_dst(struct berth_location *out, const struct berth_location *src, const char *s)
{
    if (s[0] == ':') {
        *out = *src;
        out->ref.has_digest = 0;
        if (strlen(s + 1) >= sizeof(out->ref.tag) || !s[1])
            return berth_error_set(BERTH_EINVALID, "invalid tag '%s'", s + 1);
        snprintf(out->ref.tag, sizeof(out->ref.tag), "%s", s + 1);
        /* Validate through the reference grammar. */
        {
            char buf[1024];
            struct berth_ref r;

            berth_ref_format(buf, sizeof(buf), &out->ref);
            if (berth_ref_parse(&r, buf) < 0)
                return berth_error_code();
        }
        return 0;
    }
    if (berth_location_parse(out, s) < 0)
        return berth_error_code();
    if (out->kind != BERTH_LOC_REGISTRY || out->ref.has_digest)
        return berth_error_set(BERTH_EINVALID, "invalid name '%s': tag names a registry "
                               "reference with a tag", s);
    return 0;
}

static int tag_one(const struct berth_location *dst_loc, struct berth_image_src *src,
                   const struct berth_registry_opts *ropts, const struct berth_copy_opts *base,
                   int semver)
{
    struct berth_copy_opts copts = *base;
    struct berth_copy_result res;
    struct berth_image_dst *dst = NULL;
    struct tag_list have = { NULL, 0 };
    char aliases[3][129], full[1024];
    const char *names[4];
    size_t n = 0;
    int error, na = 0;

    names[n++] = dst_loc->ref.tag;
    if (semver) {
        if ((error = existing_tags(&have, dst_loc, ropts)) < 0)
            goto done;
        if ((na = berth_semver_aliases(aliases, dst_loc->ref.tag,
                                       (const char *const *)have.v, have.n)) < 0) {
            error = na;
            goto done;
        }
        for (int i = 0; i < na; i++)
            names[n++] = aliases[i];
    }
    copts.tags = names;
    copts.ntags = n;
    if ((error = berth_image_dst_open(&dst, dst_loc, ropts)) < 0)
        goto done;
    if ((error = berth_image_copy(&res, src, dst, &copts)) < 0)
        goto done;
    if ((error = berth_image_dst_commit(dst)) < 0)
        goto done;
    if (!copts.json) {
        for (size_t i = 0; i < n; i++) {
            struct berth_ref r = dst_loc->ref;

            snprintf(r.tag, sizeof(r.tag), "%s", names[i]);
            berth_ref_format(full, sizeof(full), &r);
            printf("%s %s\n", full, res.digest.str);
        }
    }
done:
    tag_list_free(&have);
    berth_image_dst_free(dst);
    return error;
}

int cmd_tag(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "semver", no_argument, NULL, OPT_SEMVER },
        { "insecure", no_argument, NULL, BERTH_OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts;
    struct berth_copy_opts copts;
    struct berth_location src_loc, *dsts = NULL;
    struct berth_image_src *src = NULL;
    struct berth_cli_common co = { 0 };
    int c, semver = 0, ndst, rc = 1, error = 0;

    memset(&ropts, 0, sizeof(ropts));
    memset(&copts, 0, sizeof(copts));
    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", longopts)) != -1) {
        switch (c) {
        case OPT_SEMVER:
            semver = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            if (berth_cli_common_opt(&co, c, optarg) > 0)
                break;
            fputs(usage_text, stderr);
            return 2;
        }
    }
    ropts.insecure = co.insecure;
    copts.quiet = co.quiet;
    copts.json = co.json;
    if (argc - optind < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (berth_location_parse(&src_loc, argv[optind]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (src_loc.kind != BERTH_LOC_REGISTRY) {
        fprintf(stderr, "berth: tag works on registry images; use 'berth push' or 'berth cp'\n");
        return 2;
    }
    ndst = argc - optind - 1;
    if (!(dsts = calloc((size_t)ndst, sizeof(*dsts)))) {
        fprintf(stderr, "berth: out of memory\n");
        return 1;
    }
    for (int i = 0; i < ndst; i++) {
        if (parse_dst(&dsts[i], &src_loc, argv[optind + 1 + i]) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            free(dsts);
            return 2;
        }
        /* Check every version before tagging anything. */
        if (semver) {
            struct berth_semver v;

            if (berth_semver_parse(&v, dsts[i].ref.tag) < 0 || !v.has_patch) {
                fprintf(stderr, "berth: --semver: '%s' is not a version MAJOR.MINOR.PATCH\n",
                        dsts[i].ref.tag);
                free(dsts);
                return 2;
            }
        }
    }
    if ((error = berth_image_src_open(&src, &src_loc, &ropts)) < 0)
        goto done;
    for (int i = 0; i < ndst; i++)
        if ((error = tag_one(&dsts[i], src, &ropts, &copts, semver)) < 0)
            goto done;
    rc = 0;
done:
    if (error < 0)
        fprintf(stderr, "berth: %s\n", berth_error_msg());
    berth_image_src_free(src);
    free(dsts);
    return rc;
}

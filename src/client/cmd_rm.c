/*
 * `berth rm REF...`: delete tags or manifests. A tag is deleted with
 * DELETE /v2/<name>/manifests/<tag>; registries that refuse tag deletion
 * (distribution 2.x answers 400/405) only delete manifests by digest, which
 * removes every tag on them, so that needs --force. A digest reference
 * deletes the manifest. --all-tags empties a repository (the founding
 * exercise's cleanup): the tags are grouped by digest and each manifest is
 * deleted once. --repo deletes a whole repository with berth's
 * DELETE /v2/_berth/repositories/<name> (docs/gc.md); other registries get
 * the --all-tags treatment, which may leave untagged manifests behind.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"
#include "core/oci.h"
#include "core/reference.h"

static const char usage_text[] =
    "usage: berth rm REF... [--all-tags | --repo] [--force]\n"
    "\n"
    "Delete tags or manifests from a registry.\n"
    "  berth rm localhost:5000/gallery/ui:v1          delete the tag v1\n"
    "  berth rm localhost:5000/gallery/ui@sha256:...  delete a manifest (and its tags)\n"
    "  berth rm --all-tags localhost:5000/gallery/ui  delete every tag of the repository\n"
    "  berth rm --repo localhost:5000/gallery/ui      delete the whole repository\n"
    "\n"
    "options:\n"
    "      --all-tags  REF is a repository: delete all its tags (by manifest digest)\n"
    "      --repo      REF is a repository: delete it with everything in it (berth);\n"
    "                  on other registries, delete every tagged manifest instead\n"
    "  -f, --force     when the registry cannot delete a single tag, delete the\n"
    "                  manifest it points to (which removes every tag on it)\n"
    "      --insecure  allow plain HTTP and unverified TLS for this registry\n"
    "  -q, --quiet     print nothing on success\n"
    "  -h, --help      show this help\n";

struct tag_list {
    char **tags;
    size_t n;
};

static int collect(void *ctx, const char *name)
{
    struct tag_list *l = ctx;
    char **tmp = realloc(l->tags, (l->n + 1) * sizeof(*tmp));

    if (!tmp)
        return berth_error_set(BERTH_ERROR, "out of memory");
    l->tags = tmp;
    if ((l->tags[l->n] = strdup(name)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    l->n++;
    return 0;
}

/* The registry refused to delete a tag as such (rather than failing). */
static int tag_delete_refused(void)
{
    long st = berth_registry_last_status();
    enum berth_oci_code oci = berth_error_oci();

    return st == 405 || oci == BERTH_OCI_UNSUPPORTED ||
           (st == 400 && (oci == BERTH_OCI_DIGEST_INVALID || oci == BERTH_OCI_NONE));
}

static int same_manifest(const struct berth_digest *a, const struct berth_digest *b)
{
    return a->algo != BERTH_DIGEST_NONE && berth_digest_equal(a, b);
}

static int rm_all_tags(struct berth_registry *r, const struct berth_ref *ref, int quiet)
{
    struct tag_list l = { 0 };
    struct berth_digest *digests = NULL;
    size_t i, j;
    int error = 0, failed = 0;

    if ((error = berth_registry_tags(r, ref->repository, collect, &l)) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        goto done;
    }
    if (l.n == 0) {
        if (!quiet)
            fprintf(stderr, "berth: %s/%s has no tags\n", ref->registry, ref->repository);
        goto done;
    }
    if ((digests = calloc(l.n, sizeof(*digests))) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        goto done;
    }
    for (i = 0; i < l.n; i++) {
        if (berth_registry_manifest_head(r, ref->repository, l.tags[i], &digests[i], NULL, NULL,
                                         0) < 0) {
            if (berth_error_code() != BERTH_ENOTFOUND) {
                fprintf(stderr, "berth: %s\n", berth_error_msg());
                failed = 1;
            }
            digests[i].algo = BERTH_DIGEST_NONE; /* gone meanwhile or unreadable: skip */
        }
    }
    for (i = 0; i < l.n; i++) {
        if (digests[i].algo == BERTH_DIGEST_NONE)
            continue;
        for (j = 0; j < i; j++)
            if (same_manifest(&digests[j], &digests[i]))
                break;
        if (j < i)
            continue; /* this manifest is already deleted */
        if (berth_registry_manifest_delete(r, ref->repository, digests[i].str) < 0 &&
            berth_error_code() != BERTH_ENOTFOUND) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            failed = 1;
            continue;
        }
        if (quiet)
            continue;
        printf("Deleted %s/%s@%s (tags:", ref->registry, ref->repository, digests[i].str);
        for (j = i; j < l.n; j++)
            if (same_manifest(&digests[j], &digests[i]))
                printf(" %s", l.tags[j]);
        printf(")\n");
    }
    error = failed ? BERTH_ERROR : 0;
done:
    for (i = 0; i < l.n; i++)
        free(l.tags[i]);
    free(l.tags);
    free(digests);
    return error;
}

/* The registry has no repository deletion: 405, or a 404 that is not
 * berth's "no such repository" (NAME_UNKNOWN). */
static int repo_delete_unsupported(void)
{
    long st = berth_registry_last_status();

    return st == 405 || (st == 404 && berth_error_oci() != BERTH_OCI_NAME_UNKNOWN);
}

static int rm_repo(struct berth_registry *r, const struct berth_ref *ref, int quiet)
{
    int error;

    if ((error = berth_registry_repo_delete(r, ref->repository)) == 0) {
        if (!quiet)
            printf("Deleted repository %s/%s\n", ref->registry, ref->repository);
        return 0;
    }
    if (!repo_delete_unsupported()) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return berth_error_code() ? berth_error_code() : BERTH_ERROR;
    }
    if (!quiet)
        fprintf(stderr, "berth: %s cannot delete a repository; deleting every tagged manifest "
                        "of %s instead (untagged manifests may remain)\n",
                ref->registry, ref->repository);
    return rm_all_tags(r, ref, quiet);
}

static int rm_one(struct berth_registry *r, const struct berth_ref *ref, const char *arg,
                  int force, int quiet)
{
    struct berth_digest d;

    if (ref->has_digest) {
        if (berth_registry_manifest_delete(r, ref->repository, ref->digest.str) < 0)
            goto fail;
        if (!quiet)
            printf("Deleted %s/%s@%s\n", ref->registry, ref->repository, ref->digest.str);
        return 0;
    }
    if (berth_registry_manifest_delete(r, ref->repository, ref->tag) == 0) {
        if (!quiet)
            printf("Untagged %s/%s:%s\n", ref->registry, ref->repository, ref->tag);
        return 0;
    }
    if (!tag_delete_refused())
        goto fail;
    if (berth_registry_manifest_head(r, ref->repository, ref->tag, &d, NULL, NULL, 0) < 0)
        goto fail;
    if (!force) {
        fprintf(stderr,
                "berth: registry '%s' does not delete single tags; 'berth rm --force %s' "
                "deletes manifest %s and with it every tag that points to it\n",
                ref->registry, arg, d.str);
        return BERTH_EDENIED;
    }
    if (berth_registry_manifest_delete(r, ref->repository, d.str) < 0)
        goto fail;
    if (!quiet)
        printf("Deleted %s/%s@%s (was %s)\n", ref->registry, ref->repository, d.str, ref->tag);
    return 0;
fail:
    fprintf(stderr, "berth: %s\n", berth_error_msg());
    return berth_error_code() ? berth_error_code() : BERTH_ERROR;
}

int cmd_rm(int argc, char **argv)
{
    enum { OPT_ALL = 256, OPT_INSECURE, OPT_REPO };
    static const struct option opts[] = {
        { "all-tags", no_argument, NULL, OPT_ALL },
        { "repo", no_argument, NULL, OPT_REPO },
        { "force", no_argument, NULL, 'f' },
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts = { 0 };
    struct berth_ref *refs = NULL;
    int all = 0, repo = 0, force = 0, quiet = 0, c, rc = 0, n;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "fqh", opts)) != -1) {
        switch (c) {
        case OPT_ALL:
            all = 1;
            break;
        case OPT_REPO:
            repo = 1;
            break;
        case 'f':
            force = 1;
            break;
        case OPT_INSECURE:
            ropts.insecure = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if ((n = argc - optind) < 1 || (all && repo)) {
        fputs(usage_text, stderr);
        return 2;
    }
    if ((refs = calloc((size_t)n, sizeof(*refs))) == NULL) {
        fprintf(stderr, "berth: out of memory\n");
        return 1;
    }
    /* check every argument before deleting anything */
    for (int i = 0; i < n; i++) {
        const char *arg = argv[optind + i];
        if (berth_ref_parse_notag(&refs[i], arg) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            rc = 2;
        } else if ((all || repo) && (refs[i].tag[0] || refs[i].has_digest)) {
            fprintf(stderr, "berth: %s takes a repository, not '%s'\n",
                    repo ? "--repo" : "--all-tags", arg);
            rc = 2;
        } else if (!all && !repo && !refs[i].tag[0] && !refs[i].has_digest) {
            fprintf(stderr, "berth: '%s' names no tag or digest; give one, or use --all-tags "
                            "or --repo\n",
                    arg);
            rc = 2;
        }
    }
    if (rc)
        goto done;
    for (int i = 0; i < n; i++) {
        struct berth_registry *r = NULL;
        int error;
        if (berth_registry_new(&r, refs[i].registry, &ropts) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            rc = 1;
            continue;
        }
        if (repo)
            error = rm_repo(r, &refs[i], quiet);
        else if (all)
            error = rm_all_tags(r, &refs[i], quiet);
        else
            error = rm_one(r, &refs[i], argv[optind + i], force, quiet);
        if (error < 0)
            rc = 1;
        berth_registry_free(r);
    }
done:
    free(refs);
    return rc;
}

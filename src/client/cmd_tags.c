/*
 * `berth tags REPO`: the tags of a repository (GET /v2/<name>/tags/list,
 * following Link pages), one per line in the order the registry gives
 * (lexical for berth and distribution), or a JSON object with --json.
 * REPO is a reference without tag or digest: localhost:5000/gallery/ui.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"
#include "core/reference.h"

static const char usage_text[] =
    "usage: berth tags REPOSITORY [--json]\n"
    "\n"
    "List the tags of a repository, one per line, e.g.\n"
    "  berth tags localhost:5000/gallery/ui\n"
    "\n"
    "options:\n"
    "      --json      print {\"repository\": ..., \"tags\": [...]}\n"
    "      --insecure  allow plain HTTP and unverified TLS for this registry\n"
    "  -q, --quiet     no diagnostics beyond errors\n"
    "  -h, --help      show this help\n";

static int print_name(void *ctx, const char *name)
{
    (void)ctx;
    printf("%s\n", name);
    return 0;
}

static int add_name(void *ctx, const char *name)
{
    return json_array_append_new(ctx, json_string(name)) == 0
               ? 0
               : berth_error_set(BERTH_ERROR, "out of memory");
}

int cmd_tags(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "insecure", no_argument, NULL, BERTH_OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts = { 0 };
    struct berth_registry *r = NULL;
    struct berth_ref ref;
    json_t *tags = NULL, *obj = NULL;
    char name[600];
    struct berth_cli_common co = { 0 };
    int c, rc = 1;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
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
    if (argc - optind != 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (berth_ref_parse_notag(&ref, argv[optind]) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 2;
    }
    if (ref.tag[0] || ref.has_digest) {
        fprintf(stderr, "berth: '%s' names an image; give the repository without tag or digest\n",
                argv[optind]);
        return 2;
    }
    if (berth_registry_new(&r, ref.registry, &ropts) < 0)
        goto fail;
    if (co.json) {
        snprintf(name, sizeof(name), "%s/%s", ref.registry, ref.repository);
        if ((tags = json_array()) == NULL)
            goto done;
        if (berth_registry_tags(r, ref.repository, add_name, tags) < 0)
            goto fail;
        if ((obj = json_pack("{s:s, s:O}", "repository", name, "tags", tags)) == NULL ||
            json_dumpf(obj, stdout, JSON_INDENT(2)) < 0)
            goto done;
        putchar('\n');
    } else if (berth_registry_tags(r, ref.repository, print_name, NULL) < 0) {
        goto fail;
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "berth: %s\n", berth_error_msg());
done:
    json_decref(obj);
    json_decref(tags);
    berth_registry_free(r);
    return rc;
}

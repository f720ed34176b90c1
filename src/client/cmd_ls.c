/*
 * `berth ls REGISTRY`: the repositories a registry holds (GET /v2/_catalog,
 * following Link pages), one per line in the registry's order, or a JSON
 * array with --json. Registries that restrict the catalog (Docker Hub) answer
 * with an error, reported as such.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"

static const char usage_text[] =
    "usage: berth ls REGISTRY [--json]\n"
    "\n"
    "List the repositories of a registry (its catalog), one per line.\n"
    "REGISTRY is a host name with an optional port: localhost:5000, ghcr.io.\n"
    "\n"
    "options:\n"
    "      --json      print a JSON array of repository names\n"
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

int cmd_ls(int argc, char **argv)
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
    json_t *list = NULL;
    char registry[256];
    const char *arg;
    struct berth_cli_common co = { 0 };
    int c, rc = 1;
    size_t n;

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
    arg = argv[optind];
    if (strncasecmp(arg, "https://", 8) == 0)
        arg += 8;
    else if (strncasecmp(arg, "http://", 7) == 0)
        arg += 7;
    n = strcspn(arg, "/");
    if (n == 0 || n >= sizeof(registry) || arg[n + strspn(arg + n, "/")] != '\0') {
        fprintf(stderr, "berth: '%s' is not a registry name (host[:port])\n", argv[optind]);
        return 2;
    }
    memcpy(registry, arg, n);
    registry[n] = '\0';

    if (berth_registry_new(&r, registry, &ropts) < 0)
        goto fail;
    if (co.json) {
        if ((list = json_array()) == NULL)
            goto done;
        if (berth_registry_catalog(r, add_name, list) < 0)
            goto fail;
        if (json_dumpf(list, stdout, JSON_INDENT(2)) < 0)
            goto done;
        putchar('\n');
    } else if (berth_registry_catalog(r, print_name, NULL) < 0) {
        goto fail;
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "berth: %s\n", berth_error_msg());
done:
    json_decref(list);
    berth_registry_free(r);
    return rc;
}

/*
 * `berth ref NAME...`: parse each image reference with Docker's grammar and
 * normalization (core/reference.c) and print its parts — registry, account
 * (path components before the last), repository (the last), tag, digest —
 * as a text block per name, or one JSON object per line with --json.
 * Exit 0 when every name is valid, 1 when any is not, 2 on usage errors.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "core/error.h"
#include "core/reference.h"

static const char usage_text[] =
    "usage: berth ref [--json] NAME...\n"
    "\n"
    "Show the parts of image references, normalized the way Docker does:\n"
    "'image-gallery' is docker.io/library/image-gallery:latest.\n"
    "\n"
    "options:\n"
    "  --json      one JSON object per line (missing parts are null)\n"
    "  -h, --help  show this help\n"
    "\n"
    "A name is [REGISTRY/]PATH[:TAG][@DIGEST]. The first path component is the\n"
    "registry when it contains '.' or ':' or is 'localhost' (e.g. 127.0.0.1:5000,\n"
    "registry.example.com, localhost:5000); otherwise the registry is docker.io.\n"
    "Use '--' before names that start with '-'.\n";

/* Borrowed pointers into the reference's repository, split at the last '/'. */
struct parts {
    char account[256];
    const char *repository;
};

static void split(struct parts *p, const struct berth_ref *r)
{
    const char *slash = strrchr(r->repository, '/');

    if (!slash) {
        p->account[0] = '\0';
        p->repository = r->repository;
        return;
    }
    snprintf(p->account, sizeof(p->account), "%.*s", (int)(slash - r->repository),
             r->repository);
    p->repository = slash + 1;
}

static const char *or_none(const char *s)
{
    return *s ? s : "(none)";
}

static void print_text(const struct berth_ref *r, const char *full, const struct parts *p)
{
    printf("reference:  %s\n", full);
    printf("registry:   %s\n", r->registry);
    printf("account:    %s\n", or_none(p->account));
    printf("repository: %s\n", p->repository);
    printf("tag:        %s\n", or_none(r->tag));
    printf("digest:     %s\n", r->has_digest ? r->digest.str : "(none)");
}

static json_t *str_or_null(const char *s)
{
    return *s ? json_string(s) : json_null();
}

static int print_json(const struct berth_ref *r, const char *full, const char *familiar,
                      const struct parts *p)
{
    json_t *o = json_object();
    char *text = NULL;
    int error = -1;

    if (!o)
        goto done;
    if (json_object_set_new(o, "reference", json_string(full)) < 0 ||
        json_object_set_new(o, "familiar", json_string(familiar)) < 0 ||
        json_object_set_new(o, "registry", json_string(r->registry)) < 0 ||
        json_object_set_new(o, "name", json_string(r->repository)) < 0 ||
        json_object_set_new(o, "account", str_or_null(p->account)) < 0 ||
        json_object_set_new(o, "repository", json_string(p->repository)) < 0 ||
        json_object_set_new(o, "tag", str_or_null(r->tag)) < 0 ||
        json_object_set_new(o, "digest",
                            r->has_digest ? json_string(r->digest.str) : json_null()) < 0)
        goto done;
    if ((text = json_dumps(o, JSON_COMPACT)) == NULL)
        goto done;
    printf("%s\n", text);
    error = 0;
done:
    free(text);
    json_decref(o);
    return error;
}

int cmd_ref(int argc, char **argv)
{
    enum { OPT_JSON = 256 };
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, c, status = 0, blocks = 0;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "+h", opts)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "berth: ref: no reference given\n");
        fputs(usage_text, stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        struct berth_ref r;
        struct parts p;
        char full[1024], familiar[1024];

        if (berth_ref_parse(&r, argv[i]) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            status = 1;
            continue;
        }
        berth_ref_format(full, sizeof(full), &r);
        berth_ref_format_short(familiar, sizeof(familiar), &r);
        split(&p, &r);
        if (json) {
            if (print_json(&r, full, familiar, &p) < 0) {
                fprintf(stderr, "berth: out of memory\n");
                status = 1;
            }
        } else {
            if (blocks++)
                putchar('\n');
            print_text(&r, full, &p);
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "berth: ref: cannot write output\n");
        return 1;
    }
    return status;
}

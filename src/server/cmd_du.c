/*
 * `berth du`: storage used per repository, per namespace (a name's first
 * path component) and in total, with the quota of each rule that applies
 * (docs/policies.md). It opens the store directly and only reads the
 * metadata, so it is safe while `berth serve` runs on the same store.
 * "dedup" counts a blob once however many repositories link it; "total"
 * once per repository — their difference is what sharing saves.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "storecmd.h"
#include "core/error.h"
#include "core/name.h"
#include "rules.h"
#include "store/maint.h"
#include "store/store.h"


static const char usage_text[] =
    "usage: berth du [options] [REPOSITORY | NAMESPACE/]\n"
    "\n"
    "Show the storage used per repository, per namespace and in total, and the\n"
    "quotas that apply (berth.quotas). Reads the store directly: safe while\n"
    "`berth serve` runs on it.\n"
    "\n"
    "options:\n"
    "  --config FILE   the server's YAML configuration (storage root, berth.quotas)\n"
    "  --root DIR      data directory (storage.filesystem.rootdirectory)\n"
    "      --json      exact byte counts as JSON\n"
    "  -h, --help      show this help\n"
    "\n"
    "dedup counts a blob once however many repositories hold it; total counts it\n"
    "once per repository.\n";

struct du {
    struct berth_store *st;
    const struct berth_maint_config *mc;
    int json;
    json_t *repos, *namespaces; /* --json */
    /* the last namespace usage looked up: repositories come in name order,
     * so one query serves all of a namespace's lines */
    char memo_scope[BERTH_NAME_MAX + 2];
    struct berth_usage memo;
};

static int scope_usage(struct du *d, const char *scope, struct berth_usage *out)
{
    int error;

    if (d->memo_scope[0] && !strcmp(d->memo_scope, scope)) {
        *out = d->memo;
        return 0;
    }
    if ((error = berth_store_usage(d->st, scope, out)) < 0)
        return error;
    snprintf(d->memo_scope, sizeof(d->memo_scope), "%s", scope);
    d->memo = *out;
    return 0;
}

static const char *hs(char *buf, size_t size, uint64_t v)
{
    return berth_human_size(buf, size, v);
}

/* The quotas applying to `repo` (JSON array), with usage of each scope
 * (`own`: the repository's). */
static int quotas_json(struct du *d, const char *repo, const struct berth_usage *own,
                       json_t **out)
{
    char scope[BERTH_NAME_MAX + 2];
    struct berth_usage u;
    size_t i, start = 0;
    int error;

    *out = json_array();
    while (berth_rules_quota_next(d->mc, repo, start, &i, scope, sizeof(scope))) {
        start = i + 1;
        if (!strcmp(scope, repo))
            u = *own;
        else if ((error = scope_usage(d, scope, &u)) < 0)
            return error;
        json_array_append_new(*out, json_pack("{s:s, s:s, s:I, s:I}", "scope", scope, "kind",
                                              d->mc->quotas[i].namespace ? "namespace"
                                                                         : "repository",
                                              "limit", (json_int_t)d->mc->quotas[i].limit,
                                              "used", (json_int_t)u.dedup));
    }
    return 0;
}

/* "used/limit" of the quota rules whose scope is exactly `scope` (a
 * repository rule for a repository line, a namespace rule for a namespace
 * line), "-" when none. */
static void quota_text(struct du *d, const char *probe, const char *scope, uint64_t used,
                       char *buf, size_t size)
{
    char rule_scope[BERTH_NAME_MAX + 2], a[32], b[32];
    size_t i, start = 0;

    snprintf(buf, size, "-");
    while (berth_rules_quota_next(d->mc, probe, start, &i, rule_scope, sizeof(rule_scope))) {
        start = i + 1;
        if (strcmp(rule_scope, scope) != 0)
            continue;
        snprintf(buf, size, "%s/%s%s", hs(a, sizeof(a), used),
                 hs(b, sizeof(b), d->mc->quotas[i].limit),
                 used > d->mc->quotas[i].limit ? " (over)" : "");
        return;
    }
}

static void row_text(const char *name, const struct berth_usage *u, const char *quota)
{
    char a[32], b[32];

    printf("%-40s %12s %12s %7llu %9llu %6llu  %s\n", name, hs(a, sizeof(a), u->dedup),
           hs(b, sizeof(b), u->total), (unsigned long long)u->blobs,
           (unsigned long long)u->manifests, (unsigned long long)u->tags, quota);
}

static json_t *usage_json(const char *name, const struct berth_usage *u)
{
    return json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "name", name, "dedup",
                     (json_int_t)u->dedup, "total", (json_int_t)u->total, "blobs",
                     (json_int_t)u->blobs, "manifests", (json_int_t)u->manifests, "tags",
                     (json_int_t)u->tags, "repositories", (json_int_t)u->repositories);
}

static int show_repo(struct du *d, const char *repo, const struct berth_usage *u)
{
    char quota[96];
    json_t *j, *q;
    int error;

    if (!d->json) {
        quota_text(d, repo, repo, u->dedup, quota, sizeof(quota));
        row_text(repo, u, quota);
        return 0;
    }
    if ((error = quotas_json(d, repo, u, &q)) < 0) {
        json_decref(q);
        return error;
    }
    j = usage_json(repo, u);
    json_object_set_new(j, "quotas", q);
    json_array_append_new(d->repos, j);
    return 0;
}

static int each_repo(void *ctx, const char *repo, const struct berth_usage *u)
{
    return show_repo(ctx, repo, u);
}

/* Namespaces of the repositories shown: one usage query each. */
struct ns_list {
    char **v;
    size_t n;
};

static int collect_ns(void *ctx, const char *repo, const struct berth_usage *u)
{
    struct ns_list *l = ctx;
    const char *slash = strchr(repo, '/');
    size_t nl;
    char **p;

    (void)u;
    if (!slash)
        return 0;
    nl = (size_t)(slash - repo) + 1;
    if (l->n && strlen(l->v[l->n - 1]) == nl && !strncmp(l->v[l->n - 1], repo, nl))
        return 0;
    if ((p = realloc(l->v, (l->n + 1) * sizeof(*p))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    l->v = p;
    if ((l->v[l->n] = strndup(repo, nl)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    l->n++;
    return 0;
}

static int show_namespaces(struct du *d, const char *prefix)
{
    struct ns_list l = { NULL, 0 };
    struct berth_usage u;
    char quota[96], probe[BERTH_NAME_MAX + 3];
    int error;

    if ((error = berth_store_usage_each(d->st, prefix, collect_ns, &l)) < 0)
        goto done;
    if (!d->json && l.n)
        printf("\n%-40s %12s %12s %7s %9s %6s  %s\n", "NAMESPACE", "DEDUP", "TOTAL", "BLOBS",
               "MANIFESTS", "TAGS", "QUOTA");
    for (size_t i = 0; i < l.n; i++) {
        if ((error = scope_usage(d, l.v[i], &u)) < 0)
            goto done;
        /* a namespace rule applies to every repository under it: probe with one */
        snprintf(probe, sizeof(probe), "%sx", l.v[i]);
        if (!d->json) {
            quota_text(d, probe, l.v[i], u.dedup, quota, sizeof(quota));
            row_text(l.v[i], &u, quota);
        } else {
            json_t *j = usage_json(l.v[i], &u), *q = json_array();
            char scope[BERTH_NAME_MAX + 2];
            size_t k, start = 0;

            while (berth_rules_quota_next(d->mc, probe, start, &k, scope, sizeof(scope))) {
                start = k + 1;
                if (d->mc->quotas[k].namespace && !strcmp(scope, l.v[i]))
                    json_array_append_new(q, json_pack("{s:I, s:I}", "limit",
                                                       (json_int_t)d->mc->quotas[k].limit,
                                                       "used", (json_int_t)u.dedup));
            }
            json_object_set_new(j, "quotas", q);
            json_array_append_new(d->namespaces, j);
        }
    }
done:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return error;
}

static int run(struct du *d, const char *arg)
{
    const int ns_arg = arg && *arg && arg[strlen(arg) - 1] == '/';
    struct berth_usage total;
    json_t *top;
    int error;

    if (!d->json)
        printf("%-40s %12s %12s %7s %9s %6s  %s\n", "REPOSITORY", "DEDUP", "TOTAL", "BLOBS",
               "MANIFESTS", "TAGS", "QUOTA");
    if (arg && !ns_arg) {
        if ((error = berth_store_usage(d->st, arg, &total)) < 0)
            return error;
        if (!total.repositories)
            return berth_error_set(BERTH_ENOTFOUND, "repository '%s' not found", arg);
        if ((error = show_repo(d, arg, &total)) < 0)
            return error;
    } else {
        if ((error = berth_store_usage_each(d->st, arg, each_repo, d)) < 0 ||
            (error = show_namespaces(d, arg)) < 0 ||
            (error = berth_store_usage(d->st, arg, &total)) < 0)
            return error;
    }
    if (!d->json) {
        printf("\n");
        row_text("TOTAL", &total, "");
        return 0;
    }
    top = json_pack("{s:O, s:O, s:o}", "repositories", d->repos, "namespaces", d->namespaces,
                    "total", usage_json(arg, &total));
    json_dumpf(top, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(top);
    return 0;
}

int cmd_du(int argc, char **argv)
{
    enum { OPT_CONFIG = 256, OPT_ROOT };
    static const struct option opts[] = {
        { "config", required_argument, NULL, OPT_CONFIG },
        { "root", required_argument, NULL, OPT_ROOT },
        { "json", no_argument, NULL, BERTH_OPT_JSON },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *root = NULL, *arg = NULL;
    struct berth_config cfg;
    struct du d = { 0 };
    int c, rc = 1;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_ROOT:
            root = optarg;
            break;
        case BERTH_OPT_JSON:
            d.json = 1;
            break;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind < argc)
        arg = argv[optind++];
    if (optind < argc || (arg && (!*arg || strlen(arg) > BERTH_NAME_MAX))) {
        fputs(usage_text, stderr);
        return 2;
    }

    if (berth_storecmd_config(&cfg, config, root) < 0) {
        fprintf(stderr, "berth: du: %s\n", berth_error_msg());
        rc = 2;
        goto done;
    }
    if (berth_storecmd_open(&d.st, cfg.root) < 0) {
        fprintf(stderr, "berth: du: %s\n", berth_error_msg());
        goto done;
    }
    d.mc = &cfg.maint;
    d.repos = json_array();
    d.namespaces = json_array();
    if (run(&d, arg) < 0) {
        fprintf(stderr, "berth: du: %s\n", berth_error_msg());
        goto done;
    }
    rc = 0;
done:
    json_decref(d.repos);
    json_decref(d.namespaces);
    berth_store_free(d.st);
    berth_config_dispose(&cfg);
    return rc;
}

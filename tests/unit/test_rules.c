/* Unit tests for the policies: rule matching and messages (src/server/rules.c),
 * quota checks, usage and tags_of (src/store/usage.c), the tag guard of a
 * manifest put, retention (src/store/retention.c) and the cross-process tag
 * generation (src/store/store.c) — every store test on a real store in a
 * mkdtemp directory, with rules parsed from YAML as `berth serve` does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <unistd.h>

#include "core/error.h"
#include "core/name.h"
#include "server/config.h"
#include "server/rules.h"
#include "store/maint.h"
#include "store/store.h"
#include "storetest.h"

static const char rules_yaml[] = "berth:\n"
                                 "  immutabletags:\n"
                                 "    - repositories: \"team/**\"\n"
                                 "      tags: \"v*.*.*\"\n"
                                 "    - repositories: \"prod/*\"\n"
                                 "      tags: \"*\"\n"
                                 "    - tags: \"release-*\"\n"
                                 "  quotas:\n"
                                 "    - namespace: team-a\n"
                                 "      limit: 10KiB\n"
                                 "    - repositories: \"team-a/big\"\n"
                                 "      limit: 1MiB\n"
                                 "    - repositories: \"small/*\"\n"
                                 "      limit: 100\n";

static void load(struct berth_config *cfg, const char *yaml)
{
    berth_config_init(cfg);
    assert_int_equal(berth_config_parse(cfg, (const uint8_t *)yaml, strlen(yaml), NULL, NULL), 0);
}

/* ---- a store per test ---- */

struct fixture {
    struct storetest t;
    struct berth_config cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f || storetest_open(&f->t, "/tmp/berth-rules-") < 0) {
        free(f);
        return -1;
    }
    load(&f->cfg, rules_yaml);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    storetest_close(&f->t);
    berth_config_dispose(&f->cfg);
    free(f);
    return 0;
}

static char *image_json(const struct berth_digest *config, const struct berth_digest *layer)
{
    char *s = NULL;

    assert_true(asprintf(&s,
                         "{\"schemaVersion\":2,\"mediaType\":"
                         "\"application/vnd.oci.image.manifest.v1+json\","
                         "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\","
                         "\"size\":2},\"layers\":[{\"mediaType\":\"" MT_LAYER "\","
                         "\"digest\":\"%s\",\"size\":10}]}",
                         config->str, layer->str) > 0);
    return s;
}

struct guard_log {
    int calls, refuse;
    char tag[64], old[80];
};

static int guard(void *ctx, const char *repo, const char *tag, const char *old)
{
    struct guard_log *g = ctx;

    (void)repo;
    g->calls++;
    snprintf(g->tag, sizeof(g->tag), "%s", tag);
    snprintf(g->old, sizeof(g->old), "%s", old);
    return g->refuse ? berth_error_set(BERTH_EDENIED, "refused by the guard") : 0;
}

/* An image whose layer is `layer` (config "{}"): its manifest digest. */
static struct berth_digest put_image(struct berth_store *st, const char *repo, const char *tag,
                                     const char *layer)
{
    struct berth_digest c = push_blob(st, repo, "{}"), l = push_blob(st, repo, layer), d;

    assert_int_equal(put_json(st, repo, tag, image_json(&c, &l), &d), 0);
    return d;
}

static size_t manifest_len(const char *layer)
{
    struct berth_digest c = digest_of("{}", 2), l = digest_of(layer, strlen(layer));
    char *j = image_json(&c, &l);
    size_t n = strlen(j);

    free(j);
    return n;
}

/* ---- matching and messages ---- */

static void test_immutable_matching(void **state)
{
    struct berth_config cfg;
    size_t i = 99;
    (void)state;

    load(&cfg, rules_yaml);
    assert_non_null(berth_rules_immutable(&cfg.maint, "team/app", "v1.2.3", &i));
    assert_int_equal(i, 0);
    assert_non_null(berth_rules_immutable(&cfg.maint, "team/x/y", "v10.0.1", &i));
    assert_null(berth_rules_immutable(&cfg.maint, "team/app", "v1.2", NULL));
    assert_null(berth_rules_immutable(&cfg.maint, "team/app", "latest", NULL));
    assert_null(berth_rules_immutable(&cfg.maint, "other/app", "v1.2.3", NULL));
    /* "prod/<one level>": every tag, latest included */
    assert_non_null(berth_rules_immutable(&cfg.maint, "prod/web", "latest", &i));
    assert_int_equal(i, 1);
    assert_null(berth_rules_immutable(&cfg.maint, "prod/web/x", "latest", NULL));
    /* repositories defaults to every repository */
    assert_non_null(berth_rules_immutable(&cfg.maint, "a", "release-7", &i));
    assert_int_equal(i, 2);
    assert_null(berth_rules_immutable(NULL, "a", "release-7", NULL));

    assert_int_equal(berth_rules_check_immutable(&cfg.maint, "other/app", "v1.2.3"), 0);
    assert_int_equal(berth_rules_check_immutable(&cfg.maint, "team/app", "v1.2.3"),
                     BERTH_EDENIED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DENIED);
    assert_string_equal(berth_error_msg(), "tag \"v1.2.3\" of team/app is immutable "
                                           "(berth.immutabletags[0]: repositories \"team/**\", "
                                           "tags \"v*.*.*\")");
    assert_int_equal(berth_rules_check_immutable(&cfg.maint, "x", "release-1"), BERTH_EDENIED);
    assert_string_equal(berth_error_msg(), "tag \"release-1\" of x is immutable "
                                           "(berth.immutabletags[2]: tags \"release-*\")");
    assert_int_equal(berth_rules_repo_has_immutable(&cfg.maint, "team/app"), 1);
    assert_int_equal(berth_rules_repo_has_immutable(&cfg.maint, "anything"), 1); /* rule 2 */
    berth_config_dispose(&cfg);

    load(&cfg, "berth:\n  immutabletags:\n    - repositories: \"prod/*\"\n      tags: v*\n");
    assert_int_equal(berth_rules_repo_has_immutable(&cfg.maint, "prod/a"), 1);
    assert_int_equal(berth_rules_repo_has_immutable(&cfg.maint, "dev/a"), 0);
    berth_config_dispose(&cfg);
}

static void test_quota_matching(void **state)
{
    char scope[BERTH_NAME_MAX + 2];
    struct berth_config cfg;
    size_t i;
    (void)state;

    load(&cfg, rules_yaml);
    /* team-a/big: the namespace rule, then its own */
    assert_int_equal(berth_rules_quota_next(&cfg.maint, "team-a/big", 0, &i, scope,
                                            sizeof(scope)), 1);
    assert_int_equal(i, 0);
    assert_string_equal(scope, "team-a/");
    assert_int_equal(berth_rules_quota_next(&cfg.maint, "team-a/big", 1, &i, scope,
                                            sizeof(scope)), 1);
    assert_int_equal(i, 1);
    assert_string_equal(scope, "team-a/big");
    assert_int_equal(berth_rules_quota_next(&cfg.maint, "team-a/big", 2, &i, scope,
                                            sizeof(scope)), 0);
    /* nested repositories are in the namespace; look-alikes are not */
    assert_int_equal(berth_rules_repo_has_quota(&cfg.maint, "team-a/x/y"), 1);
    assert_int_equal(berth_rules_repo_has_quota(&cfg.maint, "team-ab/x"), 0);
    assert_int_equal(berth_rules_repo_has_quota(&cfg.maint, "team-a"), 0);
    assert_int_equal(berth_rules_repo_has_quota(&cfg.maint, "small/a"), 1);
    assert_int_equal(berth_rules_repo_has_quota(&cfg.maint, "small/a/b"), 0);
    assert_int_equal(berth_rules_repo_has_quota(NULL, "small/a"), 0);
    berth_config_dispose(&cfg);
}

static void test_human_size(void **state)
{
    char b[32];
    (void)state;

    assert_string_equal(berth_human_size(b, sizeof(b), 0), "0 B");
    assert_string_equal(berth_human_size(b, sizeof(b), 1023), "1023 B");
    assert_string_equal(berth_human_size(b, sizeof(b), 1024), "1.0 KiB");
    assert_string_equal(berth_human_size(b, sizeof(b), 1536), "1.5 KiB");
    assert_string_equal(berth_human_size(b, sizeof(b), 10ULL << 20), "10.0 MiB");
    assert_string_equal(berth_human_size(b, sizeof(b), 9728ULL << 10), "9.5 MiB");
    assert_string_equal(berth_human_size(b, sizeof(b), 3ULL << 40), "3.0 TiB");
}

/* ---- usage ---- */

static void test_usage_and_tags_of(void **state)
{
    struct fixture *f = *state;
    static const char shared[] = "a layer both repositories have";
    struct berth_digest a, b;
    struct berth_usage u;
    size_t la = manifest_len("only in one"), lb = manifest_len(shared);

    a = put_image(f->t.st, "team-a/one", "v1", "only in one");
    push_blob(f->t.st, "team-a/one", shared);
    b = put_image(f->t.st, "team-a/two", "v1", shared);
    assert_int_equal(put_json(f->t.st, "team-a/two", "v2", index_json(&b, 1), NULL), 0);
    put_image(f->t.st, "solo", "latest", "solo layer");

    assert_int_equal(berth_store_usage(f->t.st, "team-a/one", &u), 0);
    assert_int_equal(u.dedup, 2 + 11 + strlen(shared) + la);
    assert_int_equal(u.total, u.dedup);
    assert_int_equal(u.blobs, 3);
    assert_int_equal(u.manifests, 1);
    assert_int_equal(u.tags, 1);
    assert_int_equal(u.repositories, 1);

    /* the namespace: "{}" and the shared layer once in dedup, twice in total */
    assert_int_equal(berth_store_usage(f->t.st, "team-a/", &u), 0);
    assert_int_equal(u.repositories, 2);
    assert_int_equal(u.blobs, 3);
    assert_int_equal(u.manifests, 3);
    assert_int_equal(u.tags, 3);
    {
        uint64_t idx;
        struct berth_manifest_info mi;

        assert_int_equal(berth_store_manifest_get(f->t.st, "team-a/two", "v2", 0, &mi), 0);
        idx = mi.len;
        berth_manifest_info_dispose(&mi);
        assert_int_equal(u.total, (2 + 11 + strlen(shared) + la) + (2 + strlen(shared) + lb) +
                                      idx);
        assert_int_equal(u.dedup, u.total - 2 - strlen(shared));
    }
    assert_int_equal(berth_store_usage(f->t.st, NULL, &u), 0);
    assert_int_equal(u.repositories, 3);
    assert_int_equal(u.tags, 4);
    assert_int_equal(berth_store_usage(f->t.st, "nope", &u), 0);
    assert_int_equal(u.repositories + u.dedup + u.total, 0);
    assert_int_equal(berth_store_usage(f->t.st, "team-a", &u), 0); /* exact name, not a prefix */
    assert_int_equal(u.repositories, 0);

    /* blob in scope */
    {
        struct berth_digest s = digest_of(shared, strlen(shared));
        struct berth_digest only = digest_of("only in one", 11);

        assert_int_equal(berth_store_blob_in_scope(f->t.st, "team-a/", &s), 1);
        assert_int_equal(berth_store_blob_in_scope(f->t.st, "team-a/two", &only), 0);
        assert_int_equal(berth_store_blob_in_scope(f->t.st, "team-a/", &only), 1);
        assert_int_equal(berth_store_blob_in_scope(f->t.st, "solo", &only), 0);
        assert_int_equal(berth_store_blob_in_scope(f->t.st, NULL, &only), 1);
    }
    (void)a;
}

struct names {
    char v[8][32];
    int n;
};

static int collect(void *ctx, const char *s)
{
    struct names *n = ctx;

    snprintf(n->v[n->n++ & 7], sizeof(n->v[0]), "%s", s);
    return 0;
}

struct each {
    char names[8][32];
    struct berth_usage u[8];
    int n;
};

static int each_cb(void *ctx, const char *repo, const struct berth_usage *u)
{
    struct each *e = ctx;

    snprintf(e->names[e->n & 7], sizeof(e->names[0]), "%s", repo);
    e->u[e->n++ & 7] = *u;
    return 0;
}

static void test_usage_each_and_tags_of(void **state)
{
    struct fixture *f = *state;
    struct names n = { .n = 0 };
    struct each e = { .n = 0 };
    struct berth_digest d, unknown = digest_of("x", 1);

    d = put_image(f->t.st, "ns/b", "v1", "layer b");
    put_image(f->t.st, "ns/a", "v1", "layer a");
    put_image(f->t.st, "nsx", "v1", "layer x");
    {
        char *j = NULL;
        struct berth_manifest_info mi;

        assert_int_equal(berth_store_manifest_get(f->t.st, "ns/b", "v1", 1, &mi), 0);
        j = strndup((const char *)mi.body, mi.len);
        berth_manifest_info_dispose(&mi);
        assert_int_equal(put_json(f->t.st, "ns/b", "stable", j, NULL), 0);
    }

    assert_int_equal(berth_store_usage_each(f->t.st, "ns/", each_cb, &e), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.names[0], "ns/a");
    assert_string_equal(e.names[1], "ns/b");
    assert_int_equal(e.u[1].tags, 2);
    assert_int_equal(e.u[1].manifests, 1);
    assert_int_equal(e.u[1].blobs, 2);
    assert_int_equal(e.u[1].dedup, 2 + 7 + manifest_len("layer b"));
    e.n = 0;
    assert_int_equal(berth_store_usage_each(f->t.st, NULL, each_cb, &e), 0);
    assert_int_equal(e.n, 3);
    assert_string_equal(e.names[2], "nsx");

    assert_int_equal(berth_store_tags_of(f->t.st, "ns/b", &d, collect, &n), 0);
    assert_int_equal(n.n, 2);
    assert_string_equal(n.v[0], "stable");
    assert_string_equal(n.v[1], "v1");
    n.n = 0;
    assert_int_equal(berth_store_tags_of(f->t.st, "ns/a", &d, collect, &n), 0);
    assert_int_equal(berth_store_tags_of(f->t.st, "nope", &d, collect, &n), 0);
    assert_int_equal(berth_store_tags_of(f->t.st, "ns/b", &unknown, collect, &n), 0);
    assert_int_equal(n.n, 0);
}

static void test_quota_check(void **state)
{
    struct fixture *f = *state;
    struct berth_digest one;

    /* 10 KiB for the team-a namespace */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "team-a/x", 10240, "upload",
                                             NULL), 0);
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "team-a/x", 10241, "upload",
                                             NULL), BERTH_EDENIED);
    assert_int_equal(berth_error_oci(), BERTH_OCI_DENIED);
    assert_string_equal(berth_error_msg(), "quota exceeded for team-a/ (namespace quota 10.0 "
                                           "KiB): 0 B used, this upload adds 10.0 KiB");
    {
        char big[6000];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        one = push_blob(f->t.st, "team-a/one", big);
    }
    /* the namespace is shared by its repositories */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "team-a/two", 5000, "mount",
                                             NULL), BERTH_EDENIED);
    assert_string_equal(berth_error_msg(), "quota exceeded for team-a/ (namespace quota 10.0 "
                                           "KiB): 5.9 KiB used, this mount adds 4.9 KiB");
    /* a blob the namespace already holds is not charged again */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "team-a/two", 5999, "mount",
                                             &one), 0);
    /* team-a/big: within the namespace's 10 KiB but its own rule is 1 MiB: both apply */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "team-a/big", 5000,
                                             "upload", NULL), BERTH_EDENIED);
    assert_non_null(strstr(berth_error_msg(), "for team-a/ (namespace"));
    /* a repositories rule: each matching repository has its own limit */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "small/a", 101, "manifest",
                                             NULL), BERTH_EDENIED);
    assert_string_equal(berth_error_msg(), "quota exceeded for small/a (repository quota 100 "
                                           "B): 0 B used, this manifest adds 101 B");
    /* no rule: nothing checked */
    assert_int_equal(berth_rules_check_quota(&f->cfg.maint, f->t.st, "free/a", UINT64_MAX,
                                             "upload", NULL), 0);
}

/* ---- the tag guard ---- */

static void test_tag_guard(void **state)
{
    struct fixture *f = *state;
    struct guard_log g = { 0 };
    struct berth_digest c = push_blob(f->t.st, "r", "{}"), l1 = push_blob(f->t.st, "r", "one");
    struct berth_digest l2 = push_blob(f->t.st, "r", "two"), d1, d2;
    struct berth_manifest_info mi;

    /* creating a tag, and re-pushing the same digest, never asks */
    assert_int_equal(put_json_guarded(f->t.st, "r", "v1", image_json(&c, &l1), guard, &g, &d1), 0);
    assert_int_equal(put_json_guarded(f->t.st, "r", "v1", image_json(&c, &l1), guard, &g, NULL), 0);
    assert_int_equal(g.calls, 0);
    /* moving asks, with the old digest; a refusal leaves everything as it was */
    g.refuse = 1;
    assert_int_equal(put_json_guarded(f->t.st, "r", "v1", image_json(&c, &l2), guard, &g, &d2),
                     BERTH_EDENIED);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.tag, "v1");
    assert_string_equal(g.old, d1.str);
    assert_int_equal(berth_store_manifest_get(f->t.st, "r", "v1", 0, &mi), 0);
    assert_string_equal(mi.digest.str, d1.str);
    berth_manifest_info_dispose(&mi);
    /* the whole put was rolled back: the new manifest is not stored either */
    assert_int_equal(berth_store_manifest_get(f->t.st, "r", d2.str, 0, &mi), BERTH_ENOTFOUND);
    g.refuse = 0;
    assert_int_equal(put_json_guarded(f->t.st, "r", "v1", image_json(&c, &l2), guard, &g, NULL), 0);
    assert_int_equal(g.calls, 2);
    assert_int_equal(berth_store_manifest_get(f->t.st, "r", "v1", 0, &mi), 0);
    assert_string_equal(mi.digest.str, d2.str);
    berth_manifest_info_dispose(&mi);

    /* the rules' guard: berth.immutabletags[0] covers v*.*.* under team/ */
    c = push_blob(f->t.st, "team/app", "{}");
    l1 = push_blob(f->t.st, "team/app", "one");
    l2 = push_blob(f->t.st, "team/app", "two");
    {
        struct berth_manifest *m = NULL;
        struct berth_manifest_put req = { 0 };
        char *j1 = image_json(&c, &l1), *j2 = image_json(&c, &l2);
        struct berth_digest e1 = digest_of(j1, strlen(j1)), e2 = digest_of(j2, strlen(j2));

        req.repo = "team/app";
        req.tag = "v1.2.3";
        req.tag_guard = berth_rules_tag_guard;
        req.guard_ctx = &f->cfg.maint;
        assert_int_equal(berth_manifest_parse(&m, NULL, (uint8_t *)j1, strlen(j1)), 0);
        req.m = m, req.body = (uint8_t *)j1, req.len = strlen(j1), req.digest = &e1;
        assert_int_equal(berth_store_manifest_put(f->t.st, &req), 0);
        berth_manifest_free(m);
        assert_int_equal(berth_manifest_parse(&m, NULL, (uint8_t *)j2, strlen(j2)), 0);
        req.m = m, req.body = (uint8_t *)j2, req.len = strlen(j2), req.digest = &e2;
        assert_int_equal(berth_store_manifest_put(f->t.st, &req), BERTH_EDENIED);
        assert_int_equal(berth_error_oci(), BERTH_OCI_DENIED);
        assert_non_null(strstr(berth_error_msg(), "tag \"v1.2.3\" of team/app is immutable"));
        req.tag = "latest"; /* mutable */
        assert_int_equal(berth_store_manifest_put(f->t.st, &req), 0);
        berth_manifest_free(m);
        free(j1);
        free(j2);
    }
}

/* ---- retention ---- */

struct report_log {
    char lines[32][160];
    int n;
};

static void report(void *ctx, const char *kind, const char *repo, const char *what,
                   uint64_t bytes)
{
    struct report_log *r = ctx;

    snprintf(r->lines[r->n++ & 31], sizeof(r->lines[0]), "%s %s %s %llu", kind,
             repo ? repo : "-", what, (unsigned long long)bytes);
}

static int has_line(const struct report_log *r, const char *prefix)
{
    for (int i = 0; i < r->n && i < 32; i++)
        if (!strncmp(r->lines[i], prefix, strlen(prefix)))
            return 1;
    return 0;
}

static void tag_list(struct berth_store *st, const char *repo, char *out, size_t size)
{
    struct names n = { .n = 0 };

    out[0] = '\0';
    assert_int_equal(berth_store_tags(st, repo, NULL, -1, collect, &n, NULL), 0);
    for (int i = 0; i < n.n && i < 8; i++) {
        strncat(out, n.v[i], size - strlen(out) - 1);
        if (i + 1 < n.n)
            strncat(out, ",", size - strlen(out) - 1);
    }
}

/* Run SQL on the store's database through a connection of its own (as
 * another process would): ages tags, moves counters. */
static void exec_sql(struct fixture *f, const char *sql)
{
    char path[128];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/berth.db", f->t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static const char retention_yaml[] = "berth:\n"
                                     "  retention:\n"
                                     "    - repositories: \"keep/*\"\n"
                                     "      tags: \"^v\"\n"
                                     "      protect: \"-stable$\"\n"
                                     "      keep: 2\n"
                                     "    - repositories: \"age/*\"\n"
                                     "      olderthan: 1h\n"
                                     "    - repositories: \"**\"\n"
                                     "      keep: 1\n"
                                     "      olderthan: 1h\n"
                                     "  immutabletags:\n"
                                     "    - repositories: \"keep/*\"\n"
                                     "      tags: \"v1\"\n";

static void gc_opts(struct berth_gc_opts *o, const struct berth_config *cfg,
                    struct report_log *log, int dry)
{
    memset(o, 0, sizeof(*o));
    o->dry_run = dry;
    o->retention = cfg->maint.retention;
    o->nretention = cfg->maint.nretention;
    o->immutable = cfg->maint.immutable;
    o->nimmutable = cfg->maint.nimmutable;
    o->report = report;
    o->ctx = log;
}

static void test_retention_keep_protect_immutable(void **state)
{
    struct fixture *f = *state;
    struct berth_config cfg;
    struct berth_gc_opts o;
    struct berth_gc_stats stats = { 0 };
    struct report_log log = { .n = 0 };
    struct berth_digest d[6], child;
    struct berth_manifest_info mi;
    char tags[256], line[200];

    load(&cfg, retention_yaml);
    d[1] = put_image(f->t.st, "keep/app", "v1", "1");          /* immutable */
    d[2] = put_image(f->t.st, "keep/app", "v2", "2");
    d[3] = put_image(f->t.st, "keep/app", "v3", "3");
    d[4] = put_image(f->t.st, "keep/app", "v4", "4");
    d[5] = put_image(f->t.st, "keep/app", "v5-stable", "5");  /* protected */
    put_image(f->t.st, "keep/app", "latest", "6");            /* not managed (tags ^v) */
    /* v2's manifest is also "other" (unmanaged): it keeps its manifest */
    assert_int_equal(berth_store_manifest_get(f->t.st, "keep/app", "v2", 1, &mi), 0);
    assert_int_equal(put_json(f->t.st, "keep/app", "other", strndup((char *)mi.body, mi.len),
                              NULL), 0);
    berth_manifest_info_dispose(&mi);
    /* v3's manifest is a child of an index of the repository: it stays */
    assert_int_equal(put_json(f->t.st, "keep/app", NULL, index_json(&d[3], 1), &child), 0);
    /* order by update time: v4 newest ... v1 oldest (ties would go by name) */
    exec_sql(f, "UPDATE tags SET updated = updated - 100 WHERE name = 'v3';"
                "UPDATE tags SET updated = updated - 200 WHERE name = 'v2';"
                "UPDATE tags SET updated = updated - 300 WHERE name = 'v1';");

    /* dry run: reports, changes nothing */
    gc_opts(&o, &cfg, &log, 1);
    assert_int_equal(berth_retention_apply(f->t.st, &o, &stats), 0);
    tag_list(f->t.st, "keep/app", tags, sizeof(tags));
    assert_string_equal(tags, "latest,other,v1,v2,v3,v4,v5-stable");
    /* managed: v2, v3, v4 (v1 immutable, v5-stable protected); v4 and v3 kept */
    assert_int_equal(stats.tags, 1);
    assert_true(has_line(&log, "tag keep/app v2 0"));
    snprintf(line, sizeof(line), "tag keep/app v3 ");
    assert_false(has_line(&log, line));
    assert_int_equal(stats.manifests, 0);

    /* the same for real */
    log.n = 0;
    memset(&stats, 0, sizeof(stats));
    gc_opts(&o, &cfg, &log, 0);
    assert_int_equal(berth_retention_apply(f->t.st, &o, &stats), 0);
    tag_list(f->t.st, "keep/app", tags, sizeof(tags));
    assert_string_equal(tags, "latest,other,v1,v3,v4,v5-stable");
    /* v2's manifest keeps "other": not deleted */
    assert_int_equal(stats.manifests, 0);
    assert_int_equal(berth_store_manifest_get(f->t.st, "keep/app", d[2].str, 0, &mi), 0);
    berth_manifest_info_dispose(&mi);
    /* idempotent */
    memset(&stats, 0, sizeof(stats));
    assert_int_equal(berth_retention_apply(f->t.st, &o, &stats), 0);
    assert_int_equal(stats.tags + stats.manifests, 0);
    (void)d[5];
    berth_config_dispose(&cfg);
}

/* Everything a run reports, sorted: a dry run must predict a real one. */
struct full_log {
    char lines[128][160];
    int n;
};

static void full_report(void *ctx, const char *kind, const char *repo, const char *what,
                        uint64_t bytes)
{
    struct full_log *l = ctx;

    assert_true(l->n < 128);
    snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s %s %s %llu", kind, repo ? repo : "-",
             what, (unsigned long long)bytes);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* With retention, a dry run predicts exactly what the real run removes:
 * the tags, the manifests they leave, and — through them — the links and
 * blobs only those manifests used (shared ones stay). */
static void test_dry_run_predicts_retention(void **state)
{
    struct fixture *f = *state;
    struct berth_config cfg;
    struct berth_gc_opts o;
    struct berth_gc_stats dry = { 0 }, real = { 0 };
    static struct full_log dl, rl;
    struct berth_digest child;

    load(&cfg, retention_yaml);
    put_image(f->t.st, "age/app", "a", "shared layer");
    put_image(f->t.st, "age/app", "b", "only b uses this");
    put_image(f->t.st, "age/app", "c", "shared layer"); /* fresh: kept */
    child = put_image(f->t.st, "age/app", "d", "d's layer");
    assert_int_equal(put_json(f->t.st, "age/app", "idx", index_json(&child, 1), NULL), 0);
    put_image(f->t.st, "keep/app", "v2", "v2 layer");
    put_image(f->t.st, "keep/app", "v3", "v3 layer");
    put_image(f->t.st, "keep/app", "v4", "v4 layer");
    exec_sql(f, "UPDATE tags SET updated = updated - 7200 WHERE name IN ('a', 'b', 'd', 'idx');"
                "UPDATE tags SET updated = updated - 300 WHERE name = 'v2';");

    dl.n = rl.n = 0;
    gc_opts(&o, &cfg, NULL, 1);
    o.report = full_report;
    o.ctx = &dl;
    assert_int_equal(berth_gc_run(f->t.st, &o, &dry), 0);
    gc_opts(&o, &cfg, NULL, 0);
    o.report = full_report;
    o.ctx = &rl;
    assert_int_equal(berth_gc_run(f->t.st, &o, &real), 0);

    /* something of every kind went: tags a, b, d, idx and v2; the
     * manifests of b, idx, d (released by idx, whatever the order) and v2
     * (a's is c's too: it stays); their links and the blobs nothing else
     * uses (the shared layer stays) */
    assert_int_equal(real.tags, 5);
    assert_int_equal(real.manifests, 4);
    assert_true(real.links > 0 && real.blobs > 0);
    qsort(dl.lines, (size_t)dl.n, sizeof(dl.lines[0]), cmp_line);
    qsort(rl.lines, (size_t)rl.n, sizeof(rl.lines[0]), cmp_line);
    assert_int_equal(dl.n, rl.n);
    for (int i = 0; i < rl.n; i++)
        assert_string_equal(dl.lines[i], rl.lines[i]);
    assert_int_equal(dry.bytes, real.bytes);
    assert_int_equal(dry.blobs_live, real.blobs_live);
    berth_config_dispose(&cfg);
}

static void test_retention_age_and_manifests(void **state)
{
    struct fixture *f = *state;
    struct berth_config cfg;
    struct berth_gc_opts o;
    struct berth_gc_stats stats = { 0 };
    struct report_log log = { .n = 0 };
    struct berth_digest old1, old2, fresh, child, idx;
    struct berth_manifest_info mi;
    char tags[256], line[200];

    load(&cfg, retention_yaml);
    old1 = put_image(f->t.st, "age/app", "a", "a");
    old2 = put_image(f->t.st, "age/app", "b", "b");
    fresh = put_image(f->t.st, "age/app", "c", "c");
    child = put_image(f->t.st, "age/app", "d", "d");
    assert_int_equal(put_json(f->t.st, "age/app", "idx", index_json(&child, 1), &idx), 0);
    exec_sql(f, "UPDATE tags SET updated = updated - 7200 WHERE name IN ('a', 'b', 'd');");
    /* other repositories fall to the catch-all rule: keep 1 AND older than 1h */
    put_image(f->t.st, "misc", "x", "x");
    put_image(f->t.st, "misc", "y", "y");
    exec_sql(f, "UPDATE tags SET updated = updated - 7200 WHERE name = 'x';");

    gc_opts(&o, &cfg, &log, 0);
    assert_int_equal(berth_retention_apply(f->t.st, &o, &stats), 0);
    tag_list(f->t.st, "age/app", tags, sizeof(tags));
    assert_string_equal(tags, "c,idx");
    /* a, b (and misc's x) left their manifests untagged: deleted; d's stays
     * (a child of idx) */
    assert_int_equal(stats.manifests, 3);
    assert_int_equal(berth_store_manifest_get(f->t.st, "age/app", old1.str, 0, &mi),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "age/app", old2.str, 0, &mi),
                     BERTH_ENOTFOUND);
    assert_int_equal(berth_store_manifest_get(f->t.st, "age/app", child.str, 0, &mi), 0);
    berth_manifest_info_dispose(&mi);
    snprintf(line, sizeof(line), "manifest age/app %s %zu", old1.str, manifest_len("a"));
    assert_true(has_line(&log, line));
    /* misc: y is the 1 kept; x is outside it and old: removed */
    tag_list(f->t.st, "misc", tags, sizeof(tags));
    assert_string_equal(tags, "y");
    assert_int_equal(stats.tags, 4); /* a, b, d, x */
    (void)fresh;
    (void)idx;
    berth_config_dispose(&cfg);
}

/* ---- tag generation across store handles (another process) ---- */

static void test_tags_gen_cross_process(void **state)
{
    struct fixture *f = *state;
    struct berth_store_config sc = { .root = f->t.dir, .no_fsync = 1 };
    struct berth_store *other = NULL;
    struct berth_config cfg;
    struct berth_gc_opts o;
    struct berth_gc_stats stats = { 0 };
    uint64_t g0, g1, g2;

    put_image(f->t.st, "p/app", "v1", "1");
    put_image(f->t.st, "p/app", "v2", "2");
    assert_int_equal(berth_store_open(&other, &sc), 0);
    g0 = berth_store_tags_gen(f->t.st);
    assert_int_equal(berth_store_tags_gen(other), g0); /* one counter, in the database */
    assert_int_equal(berth_store_tags_gen(f->t.st), g0); /* stable while nothing changes */
    /* a blob upload is not a tag change */
    push_blob(other, "p/app", "unrelated");
    assert_int_equal(berth_store_tags_gen(f->t.st), g0);
    /* a tag deleted through the other handle: this one sees a new generation */
    assert_int_equal(berth_store_tag_delete(other, "p/app", "v1"), 0);
    g1 = berth_store_tags_gen(f->t.st);
    assert_true(g1 != g0);
    /* retention run by the other handle (`berth gc`) too */
    load(&cfg, "berth:\n  retention:\n    - repositories: \"p/*\"\n      keep: 0\n");
    gc_opts(&o, &cfg, NULL, 0);
    o.report = NULL;
    assert_int_equal(berth_retention_apply(other, &o, &stats), 0);
    assert_int_equal(stats.tags, 1);
    g2 = berth_store_tags_gen(f->t.st);
    assert_true(g2 != g1);
    assert_int_equal(berth_store_tags_gen(f->t.st), g2);
    /* a process killed between its commit and its shared bump: the database
     * counter moved alone; the generation follows within a second */
    exec_sql(f, "UPDATE counters SET value = value + 1 WHERE name = 'tags'");
    for (int i = 0; i < 150 && berth_store_tags_gen(f->t.st) == g2; i++)
        usleep(10 * 1000);
    assert_true(berth_store_tags_gen(f->t.st) != g2);
    berth_config_dispose(&cfg);
    berth_store_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_immutable_matching),
        cmocka_unit_test(test_quota_matching),
        cmocka_unit_test(test_human_size),
        cmocka_unit_test_setup_teardown(test_usage_and_tags_of, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_each_and_tags_of, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_keep_protect_immutable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_age_and_manifests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_predicts_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_gen_cross_process, setup, teardown),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}

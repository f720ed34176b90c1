/* Unit tests for src/server/config.c: distribution's key names, REGISTRY_*
 * overrides, durations and sizes, unknown keys reported, bad YAML refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "server/config.h"
#include "server/log.h"

struct warns {
    int n;
    char last[512];
};

static void warn_cb(void *ctx, const char *msg)
{
    struct warns *w = ctx;
    w->n++;
    strncpy(w->last, msg, sizeof(w->last) - 1);
}

static int parse(struct berth_config *cfg, const char *yaml, struct warns *w)
{
    return berth_config_parse(cfg, (const uint8_t *)yaml, strlen(yaml), warn_cb, w);
}

static void test_defaults(void **state)
{
    struct berth_config cfg;
    (void)state;
    berth_config_init(&cfg);
    assert_string_equal(cfg.addr, "0.0.0.0:5000");
    assert_string_equal(cfg.root, "./var/berth");
    assert_int_equal(cfg.delete_enabled, 1);
    assert_int_equal(cfg.purge_age_ms, 24LL * 3600 * 1000);
    assert_int_equal(cfg.manifest_max, 4 * 1024 * 1024);
    berth_config_dispose(&cfg);
}

static void test_distribution_config(void **state)
{
    /* The shape of distribution's own cmd/registry/config-example.yml. */
    static const char yaml[] = "version: 0.1\n"
                               "log:\n"
                               "  level: debug\n"
                               "  fields:\n"
                               "    service: registry\n"
                               "storage:\n"
                               "  cache:\n"
                               "    blobdescriptor: inmemory\n"
                               "  filesystem:\n"
                               "    rootdirectory: /var/lib/registry\n"
                               "  delete:\n"
                               "    enabled: false\n"
                               "  maintenance:\n"
                               "    uploadpurging:\n"
                               "      enabled: true\n"
                               "      age: 168h\n"
                               "      interval: 24h\n"
                               "      dryrun: false\n"
                               "http:\n"
                               "  addr: :5000\n"
                               "  headers:\n"
                               "    X-Content-Type-Options: [nosniff]\n";
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(parse(&cfg, yaml, &w), 0);
    assert_string_equal(cfg.addr, ":5000");
    assert_string_equal(cfg.root, "/var/lib/registry");
    assert_int_equal(cfg.delete_enabled, 0);
    assert_int_equal(cfg.log_level, BERTH_LOG_DEBUG);
    assert_int_equal(cfg.purge_age_ms, 168LL * 3600 * 1000);
    assert_int_equal(cfg.purge_interval_ms, 24LL * 3600 * 1000);
    /* log.fields.service, storage.cache.blobdescriptor, http.headers.X-... */
    assert_int_equal(w.n, 3);
    assert_non_null(strstr(w.last, "http.headers.X-Content-Type-Options"));
    berth_config_dispose(&cfg);
}

static void test_env_overrides(void **state)
{
    static char e0[] = "PATH=/bin", e1[] = "REGISTRY_HTTP_ADDR=127.0.0.1:6000",
                e2[] = "REGISTRY_STORAGE_DELETE_ENABLED=false",
                e3[] = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/tmp/x", e4[] = "REGISTRY_NOPE=1",
                e5[] = "REGISTRY_AUTH_FILE=/run/user/0/containers/auth.json";
    char *env[] = { e0, e1, e2, e3, e4, e5, NULL };
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(berth_config_env(&cfg, env, warn_cb, &w), 0);
    assert_string_equal(cfg.addr, "127.0.0.1:6000");
    assert_string_equal(cfg.root, "/tmp/x");
    assert_int_equal(cfg.delete_enabled, 0);
    assert_int_equal(w.n, 1); /* podman's REGISTRY_AUTH_FILE is not ours: no warning */
    assert_non_null(strstr(w.last, "REGISTRY_NOPE"));
    berth_config_dispose(&cfg);
}

static void test_bad_values(void **state)
{
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(parse(&cfg, "storage:\n  delete:\n    enabled: maybe\n", &w), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "storage.delete.enabled"));
    assert_int_equal(parse(&cfg, "log:\n  level: loud\n", &w), BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "version: 0.2\n", &w), BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "http: [1, 2\n", &w), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "line"));
    assert_int_equal(parse(&cfg, "- a\n- b\n", &w), BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "just a string\n", &w), BERTH_EINVALID);
    assert_int_equal(
        parse(&cfg, "storage:\n  maintenance:\n    uploadpurging:\n      age: soon\n", &w),
        BERTH_EINVALID);
    /* Empty document: nothing set, no error. */
    assert_int_equal(parse(&cfg, "", &w), 0);
    berth_config_dispose(&cfg);
}

static void test_durations(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(berth_duration_parse(&ms, "24h"), 0);
    assert_int_equal(ms, 24LL * 3600 * 1000);
    assert_int_equal(berth_duration_parse(&ms, "1m30s"), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(berth_duration_parse(&ms, "500ms"), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(berth_duration_parse(&ms, "2s"), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(berth_duration_parse(&ms, "1.5h"), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(berth_duration_parse(&ms, "30"), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(berth_duration_parse(&ms, ""), BERTH_EINVALID);
    assert_int_equal(berth_duration_parse(&ms, "h"), BERTH_EINVALID);
    assert_int_equal(berth_duration_parse(&ms, "5x"), BERTH_EINVALID);
    assert_int_equal(berth_duration_parse(&ms, "-5s"), BERTH_EINVALID);
    assert_int_equal(berth_duration_parse(&ms, "1s2"), BERTH_EINVALID);
}

static void test_sizes(void **state)
{
    uint64_t n;
    (void)state;
    assert_int_equal(berth_size_parse(&n, "4MiB"), 0);
    assert_int_equal(n, 4 * 1024 * 1024);
    assert_int_equal(berth_size_parse(&n, "4MB"), 0);
    assert_int_equal(n, 4000000);
    assert_int_equal(berth_size_parse(&n, "1024"), 0);
    assert_int_equal(n, 1024);
    assert_int_equal(berth_size_parse(&n, "512k"), 0);
    assert_int_equal(n, 512 * 1024);
    assert_int_equal(berth_size_parse(&n, "x"), BERTH_EINVALID);
    assert_int_equal(berth_size_parse(&n, "99999999999999999999"), BERTH_EINVALID);
    assert_int_equal(berth_size_parse(&n, "20000000000GiB"), BERTH_EINVALID);
}

static void test_auth_and_tls(void **state)
{
    static const char yaml[] = "http:\n"
                               "  tls:\n"
                               "    certificate: /etc/berth/cert.pem\n"
                               "    key: /etc/berth/key.pem\n"
                               "    clientcas: [/etc/berth/ca1.pem, /etc/berth/ca2.pem]\n"
                               "    minimumtls: tls1.3\n"
                               "auth:\n"
                               "  htpasswd:\n"
                               "    realm: my-registry\n"
                               "    path: /etc/berth/htpasswd\n"
                               "  token:\n"
                               "    builtin: true\n"
                               "    realm: https://reg.example/token\n"
                               "    service: reg.example\n"
                               "    expiration: 10m\n"
                               "  throttle:\n"
                               "    failures: 10\n"
                               "    lockout: 2m\n"
                               "  access:\n"
                               "    groups:\n"
                               "      team-a: [alice, bob]\n"
                               "      ops: carol\n"
                               "    rules:\n"
                               "      - repository: team-a/*\n"
                               "        users: [group:team-a]\n"
                               "        actions: [pull, push]\n"
                               "      - repositories: ['*/public', library/**]\n"
                               "        users: anonymous\n"
                               "        actions: pull\n";
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;

    berth_config_init(&cfg);
    assert_string_equal(cfg.auth.htpasswd_realm, "berth");
    assert_int_equal(cfg.auth.token_expiration_ms, 300000);
    assert_int_equal(cfg.auth.throttle_failures, 5);
    assert_int_equal(cfg.auth.throttle_lockout_ms, 60000);
    assert_int_equal(cfg.tls.minimum, 12);
    assert_int_equal(parse(&cfg, yaml, &w), 0);
    assert_int_equal(w.n, 0);
    assert_string_equal(cfg.tls.certificate, "/etc/berth/cert.pem");
    assert_string_equal(cfg.tls.key, "/etc/berth/key.pem");
    assert_int_equal(cfg.tls.nclientcas, 2);
    assert_string_equal(cfg.tls.clientcas[1], "/etc/berth/ca2.pem");
    assert_int_equal(cfg.tls.minimum, 13);
    assert_string_equal(cfg.auth.htpasswd_realm, "my-registry");
    assert_string_equal(cfg.auth.htpasswd_path, "/etc/berth/htpasswd");
    assert_int_equal(cfg.auth.token_builtin, 1);
    assert_string_equal(cfg.auth.token_realm, "https://reg.example/token");
    assert_string_equal(cfg.auth.token_service, "reg.example");
    assert_int_equal(cfg.auth.token_expiration_ms, 600000);
    assert_int_equal(cfg.auth.throttle_failures, 10);
    assert_int_equal(cfg.auth.throttle_lockout_ms, 120000);
    assert_int_equal(cfg.auth.ngroups, 2);
    assert_string_equal(cfg.auth.groups[0].name, "team-a");
    assert_int_equal(cfg.auth.groups[0].nmembers, 2);
    assert_int_equal(cfg.auth.groups[1].nmembers, 1);
    assert_string_equal(cfg.auth.groups[1].members[0], "carol");
    assert_int_equal(cfg.auth.nrules, 2);
    assert_string_equal(cfg.auth.rules[0].repositories[0], "team-a/*");
    assert_int_equal(cfg.auth.rules[0].actions, BERTH_ACT_PULL | BERTH_ACT_PUSH);
    assert_int_equal(cfg.auth.rules[1].nrepositories, 2);
    assert_string_equal(cfg.auth.rules[1].users[0], "anonymous");
    assert_int_equal(cfg.auth.rules[1].actions, BERTH_ACT_PULL);
    /* a second document replaces the lists */
    assert_int_equal(parse(&cfg, "http:\n  tls:\n    clientcas: /ca.pem\n", &w), 0);
    assert_int_equal(cfg.tls.nclientcas, 1);
    berth_config_dispose(&cfg);
}

static void test_auth_errors(void **state)
{
    static char e1[] = "REGISTRY_AUTH_HTPASSWD_PATH=/h", e2[] = "REGISTRY_HTTP_TLS_CLIENTCAS=/c",
                e3[] = "REGISTRY_AUTH_TOKEN_BUILTIN=yes";
    char *env[] = { e1, e2, e3, NULL };
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;

    berth_config_init(&cfg);
    assert_int_equal(berth_config_env(&cfg, env, warn_cb, &w), 0);
    assert_int_equal(w.n, 0);
    assert_string_equal(cfg.auth.htpasswd_path, "/h");
    assert_int_equal(cfg.tls.nclientcas, 1);
    assert_int_equal(cfg.auth.token_builtin, 1);
    assert_int_equal(berth_config_set(&cfg, "auth.access.rules", "x", NULL, NULL),
                     BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "http:\n  tls:\n    minimumtls: tls1.0\n", &w),
                     BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "auth:\n  access:\n    rules:\n      - repository: a\n"
                                 "        user: [x]\n        actions: [pull]\n", &w),
                     BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "unknown rule key 'user'"));
    assert_int_equal(parse(&cfg, "auth:\n  access:\n    rules:\n      - repository: a\n"
                                 "        users: [x]\n        actions: [pull, fly]\n", &w),
                     BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "unknown action 'fly'"));
    assert_int_equal(parse(&cfg, "auth:\n  access:\n    rules:\n      - repository: a\n",
                           &w), BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "auth:\n  access:\n    rules: {a: b}\n", &w),
                     BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "auth:\n  access:\n    groups: [a]\n", &w), BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "http:\n  tls:\n    clientcas: [[a]]\n", &w),
                     BERTH_EINVALID);
    assert_int_equal(parse(&cfg, "auth:\n  throttle:\n    failures: many\n", &w),
                     BERTH_EINVALID);
    berth_config_dispose(&cfg);
}

/* ---- berth.gc.*, berth.retention, berth.immutabletags, berth.quotas ---- */

static void test_maint_defaults_and_scalars(void **state)
{
    static const char yaml[] = "berth:\n"
                               "  gc:\n"
                               "    interval: 0\n"
                               "    grace: 30m\n"
                               "    untagged: true\n"
                               "    batch: 100\n";
    char e1[] = "REGISTRY_BERTH_GC_INTERVAL=2d", e2[] = "REGISTRY_BERTH_GC_GRACE=0s";
    char *env[] = { e1, e2, NULL };
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(cfg.maint.gc_interval_ms, 24LL * 3600 * 1000);
    assert_int_equal(cfg.maint.gc_grace_ms, 24LL * 3600 * 1000);
    assert_int_equal(cfg.maint.gc_untagged, 0);
    assert_int_equal(cfg.maint.gc_batch, 500);
    assert_int_equal(cfg.maint.nretention + cfg.maint.nimmutable + cfg.maint.nquotas, 0);
    assert_int_equal(parse(&cfg, yaml, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(cfg.maint.gc_interval_ms, 0); /* 0 disables scheduled runs */
    assert_int_equal(cfg.maint.gc_grace_ms, 30LL * 60 * 1000);
    assert_int_equal(cfg.maint.gc_untagged, 1);
    assert_int_equal(cfg.maint.gc_batch, 100);
    assert_int_equal(berth_config_env(&cfg, env, warn_cb, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(cfg.maint.gc_interval_ms, 2LL * 86400 * 1000);
    assert_int_equal(cfg.maint.gc_grace_ms, 0);
    assert_int_equal(berth_config_set(&cfg, "berth.gc.batch", "7", NULL, NULL), 0);
    assert_int_equal(cfg.maint.gc_batch, 7);
    assert_int_equal(berth_config_set(&cfg, "berth.gc.batch", "0", NULL, NULL), BERTH_EINVALID);
    assert_int_equal(berth_config_set(&cfg, "berth.gc.untagged", "sometimes", NULL, NULL),
                     BERTH_EINVALID);
    assert_int_equal(berth_config_set(&cfg, "berth.gc.interval", "soon", NULL, NULL),
                     BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "berth.gc.interval"));
    /* list keys only come from the file */
    assert_int_equal(berth_config_set(&cfg, "berth.quotas", "1", NULL, NULL), BERTH_EINVALID);
    berth_config_dispose(&cfg);
}

static void test_days(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(berth_duration_parse(&ms, "30d"), 0);
    assert_int_equal(ms, 30LL * 86400 * 1000);
    assert_int_equal(berth_duration_parse(&ms, "1d12h"), 0);
    assert_int_equal(ms, 36LL * 3600 * 1000);
}

static void test_maint_rules(void **state)
{
    static const char yaml[] = "berth:\n"
                               "  retention:\n"
                               "    - repositories: \"team-a/**\"\n"
                               "      tags: \"^v[0-9]+\"\n"
                               "      protect: \"-stable$\"\n"
                               "      keep: 5\n"
                               "      olderthan: 30d\n"
                               "    - repositories: \"**\"\n"
                               "      olderthan: 72h\n"
                               "  immutabletags:\n"
                               "    - tags: \"v*.*.*\"\n"
                               "    - repositories: \"prod/*\"\n"
                               "      tags: \"*\"\n"
                               "  quotas:\n"
                               "    - namespace: team-a/\n"
                               "      limit: 10GiB\n"
                               "    - repositories: \"scratch/*\"\n"
                               "      limit: 512MiB\n";
    const struct berth_maint_config *m;
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(parse(&cfg, yaml, &w), 0);
    assert_int_equal(w.n, 0);
    m = &cfg.maint;
    assert_int_equal(m->nretention, 2);
    assert_string_equal(m->retention[0].repositories, "team-a/**");
    assert_string_equal(m->retention[0].tags, "^v[0-9]+");
    assert_string_equal(m->retention[0].protect, "-stable$");
    assert_int_equal(m->retention[0].keep, 5);
    assert_int_equal(m->retention[0].older_than_sec, 30LL * 86400);
    assert_null(m->retention[1].tags);
    assert_null(m->retention[1].protect);
    assert_int_equal(m->retention[1].keep, -1); /* no count limit */
    assert_int_equal(m->retention[1].older_than_sec, 72LL * 3600);
    assert_int_equal(m->nimmutable, 2);
    assert_string_equal(m->immutable[0].repositories, "**"); /* the default */
    assert_string_equal(m->immutable[0].tags, "v*.*.*");
    assert_string_equal(m->immutable[1].repositories, "prod/*");
    assert_int_equal(m->nquotas, 2);
    assert_string_equal(m->quotas[0].namespace, "team-a"); /* trailing '/' dropped */
    assert_null(m->quotas[0].repositories);
    assert_int_equal(m->quotas[0].limit, 10ULL << 30);
    assert_string_equal(m->quotas[1].repositories, "scratch/*");
    assert_int_equal(m->quotas[1].limit, 512ULL << 20);
    /* a second document replaces the lists (no leak: ASan build) */
    assert_int_equal(parse(&cfg, "berth:\n  quotas:\n    - namespace: x\n      limit: 1k\n", &w),
                     0);
    assert_int_equal(cfg.maint.nquotas, 1);
    berth_config_dispose(&cfg);
}

/* Tag filters people write stay within the regex budget. */
static void test_maint_regex_budget(void **state)
{
    static const char *const ok[] = {
        "^v[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$", "^(latest|stable|main)$",
        "^release-[a-z0-9._-]+$", "^(pr|mr)-[0-9]+(-[a-f0-9]{7,40})?$", "[]a]+x{2,}",
    };
    char yaml[512];
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct berth_config cfg;

        berth_config_init(&cfg);
        snprintf(yaml, sizeof(yaml), "berth:\n  retention:\n    - repositories: a\n"
                 "      tags: '%s'\n      keep: 1\n", ok[i]);
        if (berth_config_parse(&cfg, (const uint8_t *)yaml, strlen(yaml), NULL, NULL) != 0)
            fail_msg("%s refused: %s", ok[i], berth_error_msg());
        berth_config_dispose(&cfg);
    }
}

/* Each bad rule is refused naming the key and the rule's index. */
static void test_maint_rule_errors(void **state)
{
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        { "berth:\n  retention:\n    - tags: x\n", "berth.retention[0]': 'repositories' is "
                                                  "required" },
        { "berth:\n  retention:\n    - repositories: a\n    - repositories: b\n      tags: "
          "\"v[\"\n", "berth.retention[1]': invalid tags regex" },
        { "berth:\n  retention:\n    - repositories: a\n      protect: \"(\"\n",
          "berth.retention[0]': invalid protect regex" },
        /* glibc's regcomp would need gigabytes for these (fuzz_config found it) */
        { "berth:\n  retention:\n    - repositories: a\n      tags: \"^v[0-9]+++++++++++++++"
          "+++++++++++++++++++++)$\"\n", "tags regex too complex" },
        { "berth:\n  retention:\n    - repositories: a\n      protect: \"a{1,255}{1,255}\"\n",
          "protect regex too complex" },
        { "berth:\n  retention:\n    - repositories: a\n      tags: \"((((((((((((a)+)+)+)+)+)+)+"
          ")+)+)+)+)+)+\"\n", "tags regex too complex" },
        { "berth:\n  retention:\n    - repositories: a\n      keep: -1\n", "keep must be" },
        { "berth:\n  retention:\n    - repositories: a\n      olderthan: later\n",
          "invalid olderthan" },
        { "berth:\n  retention:\n    - repositories: a\n      protekt: x\n",
          "unknown key 'protekt'" },
        { "berth:\n  retention:\n    repositories: a\n", "expected a list of rules" },
        { "berth:\n  retention:\n    - just-a-string\n", "each rule is a mapping" },
        { "berth:\n  immutabletags:\n    - repositories: a\n", "berth.immutabletags[0]': "
                                                              "'tags' is required" },
        { "berth:\n  quotas:\n    - limit: 1k\n", "exactly one of" },
        { "berth:\n  quotas:\n    - namespace: a\n      repositories: b\n      limit: 1k\n",
          "exactly one of" },
        { "berth:\n  quotas:\n    - namespace: a\n", "'limit' is required" },
        { "berth:\n  quotas:\n    - namespace: a\n      limit: lots\n", "invalid limit" },
        { "berth:\n  quotas:\n    - namespace: a/b\n      limit: 1k\n", "one path component" },
        { "berth:\n  quotas:\n    - namespace: a\n      namespace: b\n      limit: 1k\n",
          "given twice" },
    };
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        berth_config_init(&cfg);
        assert_int_equal(parse(&cfg, bad[i].yaml, &w), BERTH_EINVALID);
        if (!strstr(berth_error_msg(), bad[i].want))
            fail_msg("case %zu: '%s' does not contain '%s'", i, berth_error_msg(), bad[i].want);
        berth_config_dispose(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_distribution_config),
        cmocka_unit_test(test_env_overrides), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_durations),    cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_auth_and_tls), cmocka_unit_test(test_auth_errors),
        cmocka_unit_test(test_maint_defaults_and_scalars), cmocka_unit_test(test_days),
        cmocka_unit_test(test_maint_rules), cmocka_unit_test(test_maint_rule_errors),
        cmocka_unit_test(test_maint_regex_budget),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

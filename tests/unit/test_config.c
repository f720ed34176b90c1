/* Unit tests for src/server/config.c: distribution's key names, REGISTRY_*
 * overrides, durations and sizes, unknown keys reported, bad YAML refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
                e3[] = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/tmp/x", e4[] = "REGISTRY_NOPE=1";
    char *env[] = { e0, e1, e2, e3, e4, NULL };
    struct berth_config cfg;
    struct warns w = { 0 };
    (void)state;
    berth_config_init(&cfg);
    assert_int_equal(berth_config_env(&cfg, env, warn_cb, &w), 0);
    assert_string_equal(cfg.addr, "127.0.0.1:6000");
    assert_string_equal(cfg.root, "/tmp/x");
    assert_int_equal(cfg.delete_enabled, 0);
    assert_int_equal(w.n, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_distribution_config),
        cmocka_unit_test(test_env_overrides), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_durations),    cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_auth_and_tls), cmocka_unit_test(test_auth_errors),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

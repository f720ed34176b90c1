/* Unit tests for src/server/authn.c, configured through config.c as an
 * operator would: exact WWW-Authenticate challenges (Basic and Bearer with
 * scopes), 401 vs 403, anonymous pull on public patterns, tokens of the
 * built-in server, mounts, catalog filtering and throttling to 429. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/error.h"
#include "server/authn.h"
#include "server/config.h"

/* alice:secret, bob:hunter2 (htpasswd -nbB -C 4) */
#define USERS                                                                                      \
    "alice:$2y$04$XDSNrIW4TEk.XRv3lbM5S.spuy8T287vkVqY5r2OLQXTsyGbZCa6G\n"                         \
    "bob:$2y$04$VmVRf6kxxbc08NRPHYZKXOz9rTN13uE1EzrN9p7PKL5fyQ3r9FxL6\n"
#define BASIC_ALICE "Basic YWxpY2U6c2VjcmV0"   /* alice:secret */
#define BASIC_BOB "Basic Ym9iOmh1bnRlcjI="     /* bob:hunter2 */
#define BASIC_WRONG "Basic YWxpY2U6d3Jvbmc="   /* alice:wrong */

static char dir[64];

static const char policy_yaml[] = "  access:\n"
                                  "    groups:\n"
                                  "      team-a: [alice]\n"
                                  "    rules:\n"
                                  "      - repository: team-a/*\n"
                                  "        users: [group:team-a]\n"
                                  "        actions: [pull, push, delete]\n"
                                  "      - repository: [team-a/*, '*/public']\n"
                                  "        users: [bob]\n"
                                  "        actions: [pull]\n"
                                  "      - repository: '*/public'\n"
                                  "        users: [anonymous]\n"
                                  "        actions: [pull]\n"
                                  "      - users: [alice]\n"
                                  "        actions: [catalog]\n";

static struct berth_authn *make(const char *auth_yaml)
{
    struct berth_config cfg;
    struct berth_authn *a;
    char yaml[4096], path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/htpasswd", dir);
    f = fopen(path, "w");
    fputs(USERS, f);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "storage:\n  filesystem:\n    rootdirectory: %s\n"
             "auth:\n  htpasswd:\n    realm: test-realm\n    path: %s\n%s%s",
             dir, path, auth_yaml, policy_yaml);
    berth_config_init(&cfg);
    if (berth_config_parse(&cfg, (const uint8_t *)yaml, strlen(yaml), NULL, NULL) < 0)
        fail_msg("config: %s", berth_error_msg());
    if (berth_authn_new(&a, &cfg, NULL, NULL) < 0)
        fail_msg("authn: %s", berth_error_msg());
    berth_config_dispose(&cfg);
    return a;
}

static void check(struct berth_authn *a, struct berth_authn_result *out, enum berth_access acc,
                  const char *repo, const char *from, const char *authz, const char *addr)
{
    struct berth_authn_req req = { "GET", acc, repo, from, authz, addr ? addr : "192.0.2.1",
                                   "reg.example:5000", 1 };
    assert_int_equal(berth_authn_check(a, &req, out), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/berth-test-authn-%d", (int)getpid());
    mkdir(dir, 0700);
    return 0;
}

static int teardown(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof(path), "%s/htpasswd", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/token-key.pem", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_basic_mode(void **state)
{
    struct berth_authn *a = make("  throttle:\n    failures: 3\n    lockout: 30s\n");
    struct berth_authn_result r;
    (void)state;

    assert_int_equal(berth_authn_enabled(a), 1);
    assert_int_equal(berth_authn_has_token_server(a), 0);
    /* GET /v2/ challenges without credentials */
    check(a, &r, BERTH_ACCESS_NONE, NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.code, BERTH_OCI_UNAUTHORIZED);
    assert_string_equal(r.www_authenticate, "Basic realm=\"test-realm\"");
    check(a, &r, BERTH_ACCESS_NONE, NULL, NULL, BASIC_BOB, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.user, "bob");
    /* push: alice yes, bob 403, anonymous 401 */
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", NULL, BASIC_ALICE, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.user, "alice");
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", NULL, BASIC_BOB, NULL);
    assert_int_equal(r.status, 403);
    assert_int_equal(r.code, BERTH_OCI_DENIED);
    assert_string_equal(r.user, "bob");
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    /* anonymous pull on */
    check(a, &r, BERTH_ACCESS_PULL, "x/public", NULL, NULL, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.user, "");
    check(a, &r, BERTH_ACCESS_PULL, "x/private", NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    /* catalog */
    check(a, &r, BERTH_ACCESS_CATALOG, NULL, NULL, BASIC_ALICE, NULL);
    assert_int_equal(r.status, 0);
    check(a, &r, BERTH_ACCESS_CATALOG, NULL, NULL, BASIC_BOB, NULL);
    assert_int_equal(r.status, 403);
    assert_int_equal(berth_authn_can_pull(a, "bob", "team-a/app"), 1);
    assert_int_equal(berth_authn_can_pull(a, "bob", "team-b/app"), 0);
    assert_int_equal(berth_authn_can_pull(a, "", "y/public"), 1);
    assert_int_equal(berth_authn_can_pull(a, NULL, "team-a/app"), 0);
    /* mount: needs pull on from */
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", "team-b/base", BASIC_ALICE, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.mount_from_allowed, 0);
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", "z/public", BASIC_ALICE, NULL);
    assert_int_equal(r.mount_from_allowed, 1);
    /* malformed Basic is a failed login */
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, "Basic !!!!", "198.51.100.9");
    assert_int_equal(r.status, 401);

    /* throttling: 3 failures, then 429 even with the right password */
    for (int i = 0; i < 3; i++) {
        check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_WRONG, "203.0.113.5");
        assert_int_equal(r.status, 401);
        assert_string_equal(r.message, "invalid username or password");
        assert_string_equal(r.user, "");
    }
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_ALICE, "203.0.113.5");
    assert_int_equal(r.status, 429);
    assert_int_equal(r.code, BERTH_OCI_TOOMANYREQUESTS);
    assert_true(r.retry_after > 0 && r.retry_after <= 30);
    /* other addresses and anonymous requests are not affected */
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_ALICE, "203.0.113.6");
    assert_int_equal(r.status, 0);
    check(a, &r, BERTH_ACCESS_PULL, "x/public", NULL, NULL, "203.0.113.5");
    assert_int_equal(r.status, 0);
    /* IPv6 is counted per /64 */
    for (int i = 0; i < 3; i++)
        check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_WRONG, i ? "2001:db8::1"
                                                                           : "2001:db8::2");
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_ALICE, "2001:db8::ffff");
    assert_int_equal(r.status, 429);
    berth_authn_free(a);
    berth_authn_free(NULL);
}

/* A token from the built-in server for `user`/`pass` and the scopes. */
static char *get_token(struct berth_authn *a, const char *authz, const char *form)
{
    struct berth_token_params p;
    struct berth_token_response r;
    json_t *j;
    char *tok;

    berth_token_params_init(&p);
    assert_int_equal(berth_token_params_parse_form(&p, form, strlen(form)), 0);
    assert_int_equal(berth_authn_token(a, &r, &p, 0, authz, "192.0.2.1"), 0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    tok = malloc(strlen(json_string_value(json_object_get(j, "token"))) + 8);
    sprintf(tok, "Bearer %s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    berth_token_response_dispose(&r);
    berth_token_params_dispose(&p);
    return tok;
}

static void test_builtin_tokens(void **state)
{
    struct berth_authn *a = make("  token:\n    builtin: true\n    service: reg\n"
                                 "    issuer: berth-test\n");
    struct berth_authn_result r;
    struct stat st;
    char path[128], *tok;
    (void)state;

    assert_int_equal(berth_authn_has_token_server(a), 1);
    snprintf(path, sizeof(path), "%s/token-key.pem", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    check(a, &r, BERTH_ACCESS_NONE, NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.www_authenticate,
                        "Bearer realm=\"https://reg.example:5000/token\",service=\"reg\"");
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, NULL, NULL);
    assert_string_equal(r.www_authenticate,
                        "Bearer realm=\"https://reg.example:5000/token\",service=\"reg\","
                        "scope=\"repository:team-a/app:pull\"");
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", "team-a/base", NULL, NULL);
    assert_string_equal(r.www_authenticate,
                        "Bearer realm=\"https://reg.example:5000/token\",service=\"reg\","
                        "scope=\"repository:team-a/app:pull,push repository:team-a/base:pull\"");
    check(a, &r, BERTH_ACCESS_DELETE, "team-a/app", NULL, NULL, NULL);
    assert_non_null(strstr(r.www_authenticate, "scope=\"repository:team-a/app:delete\""));
    check(a, &r, BERTH_ACCESS_CATALOG, NULL, NULL, NULL, NULL);
    assert_non_null(strstr(r.www_authenticate, "scope=\"registry:catalog:*\""));
    /* Basic is not accepted on the registry API in token mode */
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, BASIC_ALICE, NULL);
    assert_int_equal(r.status, 401);
    /* anonymous pull of a public repository works without a token */
    check(a, &r, BERTH_ACCESS_PULL, "x/public", NULL, NULL, NULL);
    assert_int_equal(r.status, 0);

    tok = get_token(a, BASIC_ALICE,
                    "scope=repository:team-a/app:pull,push&scope=repository:team-a/base:pull");
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", "team-a/base", tok, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.user, "alice");
    assert_int_equal(r.mount_from_allowed, 1);
    check(a, &r, BERTH_ACCESS_NONE, NULL, NULL, tok, NULL);
    assert_int_equal(r.status, 0);
    /* not in the token but allowed by policy: fetch another token */
    check(a, &r, BERTH_ACCESS_DELETE, "team-a/app", NULL, tok, NULL);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.www_authenticate, ",error=\"insufficient_scope\""));
    free(tok);

    /* bob asked for push, the token has pull only and the policy says no: 403 */
    tok = get_token(a, BASIC_BOB, "scope=repository:team-a/app:pull,push");
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL, tok, NULL);
    assert_int_equal(r.status, 0);
    check(a, &r, BERTH_ACCESS_PUSH, "team-a/app", NULL, tok, NULL);
    assert_int_equal(r.status, 403);
    assert_int_equal(r.code, BERTH_OCI_DENIED);
    free(tok);

    /* a forged or foreign token: 401 invalid_token */
    check(a, &r, BERTH_ACCESS_PULL, "team-a/app", NULL,
          "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", NULL);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.www_authenticate, ",error=\"invalid_token\""));
    berth_authn_free(a);
}

static void test_token_endpoint_throttle(void **state)
{
    struct berth_authn *a = make("  token:\n    builtin: true\n"
                                 "  throttle:\n    failures: 2\n");
    struct berth_token_params p;
    struct berth_token_response r;
    (void)state;

    berth_token_params_init(&p);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(berth_authn_token(a, &r, &p, 0, BASIC_WRONG, "192.0.2.50"), 0);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.www_authenticate, "Basic realm=\"test-realm\"");
        berth_token_response_dispose(&r);
    }
    assert_int_equal(berth_authn_token(a, &r, &p, 0, BASIC_ALICE, "192.0.2.50"), 0);
    assert_int_equal(r.status, 429);
    assert_true(r.retry_after > 0);
    berth_token_response_dispose(&r);
    /* anonymous token requests still work */
    assert_int_equal(berth_authn_token(a, &r, &p, 0, NULL, "192.0.2.50"), 0);
    assert_int_equal(r.status, 200);
    berth_token_response_dispose(&r);
    berth_token_params_dispose(&p);
    berth_authn_free(a);
}

static void test_no_auth_and_bad_config(void **state)
{
    struct berth_config cfg;
    struct berth_authn *a;
    struct berth_authn_result r;
    struct berth_authn_req req = { "DELETE", BERTH_ACCESS_DELETE, "x/y", NULL, NULL, "::1",
                                   NULL, 0 };
    struct berth_token_params p;
    struct berth_token_response tr;
    (void)state;

    berth_config_init(&cfg);
    assert_int_equal(berth_authn_new(&a, &cfg, NULL, NULL), 0);
    assert_int_equal(berth_authn_enabled(a), 0);
    assert_int_equal(berth_authn_check(a, &req, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(berth_authn_can_pull(a, NULL, "x/y"), 1);
    berth_token_params_init(&p);
    assert_int_equal(berth_authn_token(a, &tr, &p, 0, NULL, "::1"), BERTH_ENOTFOUND);
    berth_authn_free(a);

    /* external token server without its trust anchors */
    assert_int_equal(berth_config_set(&cfg, "auth.token.realm", "https://auth/token", NULL, NULL),
                     0);
    assert_int_equal(berth_authn_new(&a, &cfg, NULL, NULL), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "rootcertbundle or jwks"));
    /* builtin without users */
    assert_int_equal(berth_config_set(&cfg, "auth.token.builtin", "true", NULL, NULL), 0);
    assert_int_equal(berth_authn_new(&a, &cfg, NULL, NULL), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "auth.htpasswd.path"));
    /* a realm that would break the challenge */
    assert_int_equal(berth_config_set(&cfg, "auth.htpasswd.realm", "a\"b", NULL, NULL), 0);
    assert_int_equal(berth_authn_new(&a, &cfg, NULL, NULL), BERTH_EINVALID);
    berth_config_dispose(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_endpoint_throttle, setup, teardown),
        cmocka_unit_test(test_no_auth_and_bad_config),
    };
    return cmocka_run_group_tests_name("authn", tests, NULL, NULL);
}

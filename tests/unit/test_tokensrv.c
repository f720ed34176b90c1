/* Unit tests for src/server/tokensrv.c: Docker's GET flow with Basic, the
 * OAuth2 POST flows (password, refresh_token), offline tokens, bad and
 * unknown credentials, denied scopes giving empty access, malformed
 * requests, and the form parser. Tokens are checked with jwt.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "server/tokensrv.h"

#define S(x) ((char *)(x))
/* `htpasswd -nbB -C 4 alice secret` and `... bob hunter2` */
#define USERS                                                                                      \
    "alice:$2y$04$XDSNrIW4TEk.XRv3lbM5S.spuy8T287vkVqY5r2OLQXTsyGbZCa6G\n"                         \
    "bob:$2y$04$VmVRf6kxxbc08NRPHYZKXOz9rTN13uE1EzrN9p7PKL5fyQ3r9FxL6\n"

struct fixture {
    char path[64];
    struct berth_htpasswd *users;
    struct berth_policy *policy;
    struct berth_jwt_key *key;
    struct berth_jwt_keyset *keys;
    struct berth_tokensrv *ts;
};

static int setup(void **state)
{
    static char *r1_repos[] = { S("team-a/*") }, *r1_users[] = { S("alice") };
    static char *r2_repos[] = { S("team-a/*"), S("*/public") }, *r2_users[] = { S("bob") };
    static char *r3_repos[] = { S("*/public") }, *r3_users[] = { S("anonymous") };
    struct berth_policy_rule rules[] = {
        { r1_repos, 1, r1_users, 1, BERTH_ACT_ALL },
        { r2_repos, 2, r2_users, 1, BERTH_ACT_PULL },
        { r3_repos, 1, r3_users, 1, BERTH_ACT_PULL },
    };
    struct berth_tokensrv_config cfg = { "berth-test", "registry.test", "test-realm", 300,
                                         86400 };
    struct fixture *f = calloc(1, sizeof(*f));
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *fp;

    snprintf(f->path, sizeof(f->path), "/tmp/berth-test-ts-%d", (int)getpid());
    fp = fopen(f->path, "w");
    fputs(USERS, fp);
    fclose(fp);
    assert_int_equal(berth_htpasswd_new(&f->users, f->path, NULL, NULL), 0);
    assert_int_equal(berth_policy_new(&f->policy, NULL, 0, rules, 3), 0);
    assert_int_equal(berth_jwt_key_new(&f->key, pkey), 0);
    EVP_PKEY_free(pkey);
    assert_int_equal(berth_jwt_keyset_new(&f->keys), 0);
    assert_int_equal(berth_jwt_keyset_add_key(f->keys, f->key), 0);
    assert_int_equal(berth_tokensrv_new(&f->ts, &cfg, f->key, f->users, f->policy), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    berth_tokensrv_free(f->ts);
    berth_jwt_keyset_free(f->keys);
    berth_jwt_key_free(f->key);
    berth_policy_free(f->policy);
    berth_htpasswd_free(f->users);
    unlink(f->path);
    free(f);
    return 0;
}

/* Run one request given as a form string. */
static void run(struct fixture *f, struct berth_token_response *r, const char *form, int post,
                const char *user, const char *pass)
{
    struct berth_token_params p;
    berth_token_params_init(&p);
    assert_int_equal(berth_token_params_parse_form(&p, form, strlen(form)), 0);
    assert_int_equal(berth_tokensrv_handle(f->ts, r, &p, post, user, (const uint8_t *)pass,
                                           pass ? strlen(pass) : 0),
                     0);
    berth_token_params_dispose(&p);
}

/* The verified claims of the "token" of a 200 answer. */
static json_t *body_of(const struct berth_token_response *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void claims_of(struct fixture *f, struct berth_jwt_claims *c, json_t *body)
{
    const char *tok = json_string_value(json_object_get(body, "token"));
    struct berth_jwt_verify_opts o = { "berth-test", "registry.test", "JWT", 0 };
    assert_non_null(tok);
    assert_string_equal(tok, json_string_value(json_object_get(body, "access_token")));
    assert_int_equal(berth_jwt_verify(c, f->keys, tok, strlen(tok), &o), 0);
}

static void test_get_basic(void **state)
{
    struct fixture *f = *state;
    struct berth_token_response r;
    struct berth_jwt_claims c;
    json_t *j;

    run(f, &r, "service=registry.test&scope=repository%3Ateam-a%2Fapp%3Apull%2Cpush&account=alice",
        0, "alice", "secret");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.user, "alice");
    j = body_of(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 300);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "issued_at"))), 20);
    assert_null(json_object_get(j, "refresh_token"));
    claims_of(f, &c, j);
    assert_string_equal(c.sub, "alice");
    assert_int_equal(c.naccess, 1);
    assert_string_equal(c.access[0].name, "team-a/app");
    assert_int_equal(c.access[0].actions, BERTH_ACT_PULL | BERTH_ACT_PUSH);
    assert_true(c.exp - c.iat == 300);
    berth_jwt_claims_dispose(&c);
    json_decref(j);
    berth_token_response_dispose(&r);
}

static void test_denied_scope_and_anonymous(void **state)
{
    struct fixture *f = *state;
    struct berth_token_response r;
    struct berth_jwt_claims c;
    json_t *j;

    /* bob may only pull team-a; other/x not at all: entries stay, empty */
    run(f, &r, "scope=repository:team-a/app:pull,push&scope=repository:other/x:pull", 0, "bob",
        "hunter2");
    assert_int_equal(r.status, 200);
    j = body_of(&r);
    claims_of(f, &c, j);
    assert_int_equal(c.naccess, 2);
    assert_int_equal(c.access[0].actions, BERTH_ACT_PULL);
    assert_string_equal(c.access[1].name, "other/x");
    assert_int_equal(c.access[1].actions, 0);
    assert_non_null(strstr(r.body, "\"token\""));
    berth_jwt_claims_dispose(&c);
    json_decref(j);
    berth_token_response_dispose(&r);

    /* anonymous: public pull only, sub "" */
    run(f, &r, "scope=repository:x/public:pull,push registry:catalog:*", 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.user, "");
    j = body_of(&r);
    claims_of(f, &c, j);
    assert_string_equal(c.sub, "");
    assert_int_equal(c.naccess, 2);
    assert_int_equal(c.access[0].actions, BERTH_ACT_PULL);
    assert_int_equal(c.access[1].actions, 0);
    berth_jwt_claims_dispose(&c);
    json_decref(j);
    berth_token_response_dispose(&r);
}

static void test_bad_credentials(void **state)
{
    struct fixture *f = *state;
    struct berth_token_response r;

    run(f, &r, "scope=repository:team-a/app:pull", 0, "alice", "wrong");
    assert_int_equal(r.status, 401);
    assert_int_equal(r.bad_credentials, 1);
    assert_string_equal(r.www_authenticate, "Basic realm=\"test-realm\"");
    assert_string_equal(r.body, "{\"error\":\"invalid_grant\","
                                "\"error_description\":\"invalid username or password\"}");
    berth_token_response_dispose(&r);
    run(f, &r, "", 0, "mallory", "secret");
    assert_int_equal(r.status, 401);
    berth_token_response_dispose(&r);
    run(f, &r, "grant_type=password&username=alice&password=nope&client_id=x", 1, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.www_authenticate, "");
    berth_token_response_dispose(&r);
}

static void test_post_flows(void **state)
{
    struct fixture *f = *state;
    struct berth_token_response r;
    struct berth_jwt_claims c;
    char form[8192];
    json_t *j;
    const char *refresh;

    run(f, &r,
        "grant_type=password&username=alice&password=secret&client_id=containerd"
        "&scope=repository%3Ateam-a%2Fapp%3Apull",
        1, NULL, NULL);
    assert_int_equal(r.status, 200);
    j = body_of(&r);
    assert_null(json_object_get(j, "refresh_token")); /* not asked for */
    json_decref(j);
    berth_token_response_dispose(&r);

    run(f, &r,
        "grant_type=password&username=alice&password=secret&client_id=docker"
        "&access_type=offline&service=registry.test",
        1, NULL, NULL);
    assert_int_equal(r.status, 200);
    j = body_of(&r);
    refresh = json_string_value(json_object_get(j, "refresh_token"));
    assert_non_null(refresh);
    /* a refresh token is not an access token */
    {
        struct berth_jwt_verify_opts o = { "berth-test", "registry.test", NULL, 0 };
        assert_int_equal(berth_jwt_verify(&c, f->keys, refresh, strlen(refresh), &o),
                         BERTH_EDENIED);
    }
    snprintf(form, sizeof(form),
             "grant_type=refresh_token&refresh_token=%s&client_id=docker"
             "&scope=repository:team-a/app:push",
             refresh);
    json_decref(j);
    berth_token_response_dispose(&r);
    run(f, &r, form, 1, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.user, "alice");
    j = body_of(&r);
    claims_of(f, &c, j);
    assert_string_equal(c.sub, "alice");
    assert_int_equal(c.access[0].actions, BERTH_ACT_PUSH);
    berth_jwt_claims_dispose(&c);
    json_decref(j);
    berth_token_response_dispose(&r);

    /* an access token is not a refresh token */
    run(f, &r, "scope=repository:team-a/app:pull", 0, "alice", "secret");
    j = body_of(&r);
    snprintf(form, sizeof(form), "grant_type=refresh_token&refresh_token=%s",
             json_string_value(json_object_get(j, "token")));
    json_decref(j);
    berth_token_response_dispose(&r);
    run(f, &r, form, 1, NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_int_equal(r.bad_credentials, 1);
    berth_token_response_dispose(&r);

    /* GET offline_token=true */
    run(f, &r, "offline_token=true", 0, "bob", "hunter2");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"refresh_token\""));
    berth_token_response_dispose(&r);
    /* ...but never for anonymous */
    run(f, &r, "offline_token=true", 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "\"refresh_token\""));
    berth_token_response_dispose(&r);
}

static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    struct berth_token_response r;
    static const char *const bad_post[] = {
        "username=alice&password=secret",
        "grant_type=client_credentials",
        "grant_type=password&username=alice",
        "grant_type=refresh_token",
    };
    for (size_t i = 0; i < sizeof(bad_post) / sizeof(bad_post[0]); i++) {
        run(f, &r, bad_post[i], 1, NULL, NULL);
        assert_int_equal(r.status, 400);
        berth_token_response_dispose(&r);
    }
    run(f, &r, "service=elsewhere", 0, "alice", "secret");
    assert_int_equal(r.status, 400);
    berth_token_response_dispose(&r);
    run(f, &r, "scope=repository:nope", 0, "alice", "secret");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "invalid_scope"));
    berth_token_response_dispose(&r);
    run(f, &r, "account=bob", 0, "alice", "secret");
    assert_int_equal(r.status, 400);
    berth_token_response_dispose(&r);
    (void)state;
}

static void test_form_parser(void **state)
{
    struct berth_token_params p;
    static const char form[] = "grant_type=password&username=al%69ce&password=a+b%2Bc%26"
                               "&scope=repository:a:pull+repository:b:push&scope=x:y:z"
                               "&unknown=1&username=second&&=&novalue";
    char many[4096] = "";
    (void)state;

    berth_token_params_init(&p);
    assert_int_equal(berth_token_params_parse_form(&p, form, strlen(form)), 0);
    assert_string_equal(p.grant_type, "password");
    assert_string_equal(p.username, "alice");
    assert_string_equal(p.password, "a b+c&");
    assert_int_equal(p.nscopes, 3);
    assert_string_equal(p.scopes[1], "repository:b:push");
    berth_token_params_dispose(&p);

    berth_token_params_init(&p);
    assert_int_equal(berth_token_params_parse_form(&p, "a=%4", 4), BERTH_EINVALID);
    assert_int_equal(berth_token_params_parse_form(&p, "a=%00", 5), BERTH_EINVALID);
    assert_int_equal(berth_token_params_parse_form(&p, "a=%zz", 5), BERTH_EINVALID);
    for (int i = 0; i < 40; i++)
        strcat(many, "scope=a:b:c&");
    assert_int_equal(berth_token_params_parse_form(&p, many, strlen(many)), BERTH_ETOOBIG);
    berth_token_params_dispose(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_scope_and_anonymous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_flows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test(test_form_parser),
    };
    return cmocka_run_group_tests_name("tokensrv", tests, NULL, NULL);
}

/*
 * Unit tests for src/client/auth.c: WWW-Authenticate parsing (RFC 7235
 * vectors, Docker Hub's real challenge, several challenges in one header,
 * escapes, garbage), token responses (token vs access_token, expires_in,
 * issued_at), scope strings, Basic values, and the token flow over a fake
 * transport (GET with Basic, anonymous GET, OAuth2 POST fallback, refresh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/auth.h"
#include "core/error.h"

static int parse(struct berth_challenge **c, size_t *n, const char *s)
{
    return berth_auth_parse_challenges(c, n, s, strlen(s));
}

static void test_basic(void **state)
{
    struct berth_challenge *c;
    size_t n;

    (void)state;
    assert_int_equal(parse(&c, &n, "Basic realm=\"x\""), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].scheme, "basic");
    assert_int_equal(c[0].nparams, 1);
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "x");
    assert_string_equal(berth_challenge_param(&c[0], "REALM"), "x");
    assert_null(berth_challenge_param(&c[0], "service"));
    berth_challenges_free(c, n);

    /* unquoted token value, odd spacing, uppercase scheme */
    assert_int_equal(parse(&c, &n, "  BASIC   realm = test ,charset=\"UTF-8\""), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].scheme, "basic");
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "test");
    assert_string_equal(berth_challenge_param(&c[0], "charset"), "UTF-8");
    berth_challenges_free(c, n);
}

static void test_docker_hub(void **state)
{
    struct berth_challenge *c;
    size_t n;

    (void)state;
    assert_int_equal(parse(&c, &n,
                           "Bearer realm=\"https://auth.docker.io/token\","
                           "service=\"registry.docker.io\","
                           "scope=\"repository:library/ubuntu:pull\""),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].scheme, "bearer");
    assert_int_equal(c[0].nparams, 3);
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "https://auth.docker.io/token");
    assert_string_equal(berth_challenge_param(&c[0], "service"), "registry.docker.io");
    assert_string_equal(berth_challenge_param(&c[0], "scope"), "repository:library/ubuntu:pull");
    assert_ptr_equal(berth_challenge_find(c, n, "Bearer"), &c[0]);
    assert_null(berth_challenge_find(c, n, "basic"));
    berth_challenges_free(c, n);
}

static void test_insufficient_scope(void **state)
{
    struct berth_challenge *c;
    size_t n;

    (void)state;
    assert_int_equal(parse(&c, &n,
                           "Bearer realm=\"https://auth.example/token\",service=\"reg\","
                           "scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\""),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(berth_challenge_param(&c[0], "scope"), "repository:a/b:pull,push");
    assert_string_equal(berth_challenge_param(&c[0], "error"), "insufficient_scope");
    berth_challenges_free(c, n);
}

static void test_several(void **state)
{
    struct berth_challenge *c;
    size_t n;

    (void)state;
    /* RFC 7235 4.1's example of two challenges in one header */
    assert_int_equal(parse(&c, &n,
                           "Newauth realm=\"apps\", type=1, title=\"Login to \\\"apps\\\"\", "
                           "Basic realm=\"simple\""),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].scheme, "newauth");
    assert_int_equal(c[0].nparams, 3);
    assert_string_equal(berth_challenge_param(&c[0], "type"), "1");
    assert_string_equal(berth_challenge_param(&c[0], "title"), "Login to \"apps\"");
    assert_string_equal(c[1].scheme, "basic");
    assert_string_equal(berth_challenge_param(&c[1], "realm"), "simple");
    assert_ptr_equal(berth_challenge_find(c, n, "basic"), &c[1]);
    berth_challenges_free(c, n);

    /* bare schemes, token68, empty list elements */
    assert_int_equal(parse(&c, &n, "Negotiate, , NTLM abc+/def==, Bearer realm=\"r\""), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].scheme, "negotiate");
    assert_int_equal(c[0].nparams, 0);
    assert_null(c[0].token68);
    assert_string_equal(c[1].scheme, "ntlm");
    assert_string_equal(c[1].token68, "abc+/def==");
    assert_string_equal(berth_challenge_param(&c[2], "realm"), "r");
    berth_challenges_free(c, n);
    /* "realm=" with nothing after it is a token68 (padding), not a param */
    assert_int_equal(parse(&c, &n, "Basic realm="), 0);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].token68, "realm=");
    assert_int_equal(c[0].nparams, 0);
    berth_challenges_free(c, n);
}

static void test_escapes(void **state)
{
    struct berth_challenge *c;
    size_t n;

    (void)state;
    assert_int_equal(parse(&c, &n, "Basic realm=\"a\\\\b\\\"c\\d\""), 0);
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "a\\b\"cd");
    berth_challenges_free(c, n);
    /* a comma inside a quoted string does not end the param */
    assert_int_equal(parse(&c, &n, "Bearer scope=\"repository:a:pull,push\",realm=\"x\""), 0);
    assert_int_equal(n, 1);
    assert_string_equal(berth_challenge_param(&c[0], "scope"), "repository:a:pull,push");
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "x");
    berth_challenges_free(c, n);
    /* not NUL-terminated input: only len bytes are read */
    assert_int_equal(berth_auth_parse_challenges(&c, &n, "Basic realm=\"x\"GARBAGE", 15), 0);
    assert_string_equal(berth_challenge_param(&c[0], "realm"), "x");
    berth_challenges_free(c, n);
}

static void test_garbage(void **state)
{
    static const char *bad[] = {
        "Basic realm=\"unterminated",
        "Basic a=b c",
        "Basic realm=\"x\" junk",
        "=foo",
        "\"quoted\"",
        "Basic realm=\"a\" , =x",
        "Bas\x01ic realm=x",
        "Basic realm=\"ctl\x01\"",
        "Basic realm=\"x\"\"y\"",
    };
    struct berth_challenge *c;
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = (struct berth_challenge *)&n; /* must be reset to NULL */
        if (parse(&c, &n, bad[i]) != BERTH_EINVALID)
            fail_msg("accepted '%s'", bad[i]);
        assert_null(c);
        assert_int_equal(n, 0);
    }
    /* empty and whitespace-only headers hold no challenge */
    assert_int_equal(parse(&c, &n, ""), 0);
    assert_int_equal(n, 0);
    assert_int_equal(parse(&c, &n, " , ,"), 0);
    assert_int_equal(n, 0);
    berth_challenges_free(c, n);
}

static void test_limits(void **state)
{
    char buf[4096];
    struct berth_challenge *c;
    size_t n, len = 0;

    (void)state;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%sp%d=v", i ? "," : "Basic ", i);
    assert_int_equal(parse(&c, &n, buf), BERTH_ETOOBIG);
    len = 0;
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%sS%d", i ? ", " : "", i);
    assert_int_equal(parse(&c, &n, buf), BERTH_ETOOBIG);
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(berth_auth_parse_challenges(&c, &n, buf, BERTH_AUTH_HEADER_MAX + 1),
                     BERTH_ETOOBIG);
}

static int token(struct berth_token *t, const char *json)
{
    return berth_auth_token_parse(t, (const uint8_t *)json, strlen(json));
}

static void test_token_parse(void **state)
{
    struct berth_token t;

    (void)state;
    assert_int_equal(token(&t, "{\"token\":\"abc\",\"expires_in\":300,"
                               "\"issued_at\":\"2024-01-02T03:04:05Z\"}"),
                     0);
    assert_string_equal(t.token, "abc");
    assert_null(t.refresh_token);
    assert_int_equal(t.expires_in, 300);
    assert_int_equal(t.issued_at, 1704164645);
    berth_token_dispose(&t);
    assert_null(t.token);

    /* access_token (OAuth2), default expiry, fractional issued_at with offset */
    assert_int_equal(token(&t, "{\"access_token\":\"xyz\",\"refresh_token\":\"r\","
                               "\"issued_at\":\"2024-01-02T05:04:05.123+02:00\"}"),
                     0);
    assert_string_equal(t.token, "xyz");
    assert_string_equal(t.refresh_token, "r");
    assert_int_equal(t.expires_in, 60);
    assert_int_equal(t.issued_at, 1704164645);
    berth_token_dispose(&t);

    /* both: "token" wins; expires_in below the spec's minimum becomes 60 */
    assert_int_equal(token(&t, "{\"token\":\"a\",\"access_token\":\"b\",\"expires_in\":5}"), 0);
    assert_string_equal(t.token, "a");
    assert_int_equal(t.expires_in, 60);
    berth_token_dispose(&t);
    /* empty token falls back to access_token */
    assert_int_equal(token(&t, "{\"token\":\"\",\"access_token\":\"b\"}"), 0);
    assert_string_equal(t.token, "b");
    berth_token_dispose(&t);

    assert_int_equal(token(&t, "{}"), BERTH_EINVALID);
    assert_int_equal(token(&t, "{\"token\":1}"), BERTH_EINVALID);
    assert_int_equal(token(&t, "[\"token\"]"), BERTH_EINVALID);
    assert_int_equal(token(&t, "not json"), BERTH_EINVALID);
    assert_int_equal(berth_auth_token_parse(&t, NULL, 0), BERTH_EINVALID);
    assert_null(t.token);
}

static void test_scope(void **state)
{
    char buf[128];

    (void)state;
    assert_int_equal(berth_auth_scope(buf, sizeof(buf), "library/ubuntu", "pull"), 30);
    assert_string_equal(buf, "repository:library/ubuntu:pull");
    berth_auth_scope(buf, sizeof(buf), "gallery/ui", "pull,push");
    assert_string_equal(buf, "repository:gallery/ui:pull,push");
    berth_auth_scope(buf, sizeof(buf), "gallery/ui", NULL);
    assert_string_equal(buf, "repository:gallery/ui:pull");
    berth_auth_scope(buf, sizeof(buf), NULL, NULL);
    assert_string_equal(buf, "registry:catalog:*");
}

static void test_basic_value(void **state)
{
    char buf[64];

    (void)state;
    assert_int_equal(berth_auth_basic_value(buf, sizeof(buf), "user", "pass"), 0);
    assert_string_equal(buf, "Basic dXNlcjpwYXNz");
    /* RFC 7617's example */
    assert_int_equal(berth_auth_basic_value(buf, sizeof(buf), "Aladdin", "open sesame"), 0);
    assert_string_equal(buf, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_int_equal(berth_auth_basic_value(buf, 10, "user", "pass"), BERTH_ETOOBIG);
}

/* ---- the token flow over a fake transport ---- */

struct fake {
    int calls;
    char method[2][8], url[2][512], form[2][512];
    int had_user[2];
    long status[2]; /* answers per call */
    const char *body[2];
};

static int fake_http(void *ctx, const char *method, const char *url, const char *user,
                     const char *pass, const char *form, long *status, uint8_t **body,
                     size_t *len)
{
    struct fake *f = ctx;
    int i = f->calls++;

    (void)pass;
    assert_true(i < 2);
    snprintf(f->method[i], sizeof(f->method[i]), "%s", method);
    snprintf(f->url[i], sizeof(f->url[i]), "%s", url);
    snprintf(f->form[i], sizeof(f->form[i]), "%s", form ? form : "");
    f->had_user[i] = user != NULL;
    *status = f->status[i];
    *len = strlen(f->body[i]);
    *body = (uint8_t *)strdup(f->body[i]);
    return 0;
}

static void test_flow(void **state)
{
    struct berth_challenge *c;
    struct berth_creds creds = { "user", "p&ss word" };
    struct berth_token t;
    const char *scopes[] = { "repository:a/b:pull,push", "repository:c:pull" };
    size_t n;

    (void)state;
    assert_int_equal(parse(&c, &n, "Bearer realm=\"https://auth.example/token\",service=\"r s\""),
                     0);

    /* anonymous GET */
    struct fake f1 = { .status = { 200 }, .body = { "{\"token\":\"T1\"}" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 1, NULL, fake_http, &f1), 0);
    assert_string_equal(t.token, "T1");
    assert_int_equal(f1.calls, 1);
    assert_string_equal(f1.method[0], "GET");
    assert_string_equal(f1.url[0], "https://auth.example/token?service=r%20s"
                                   "&scope=repository%3Aa%2Fb%3Apull%2Cpush");
    assert_false(f1.had_user[0]);
    berth_token_dispose(&t);

    /* GET with Basic, two scopes (a mount) */
    struct fake f2 = { .status = { 200 }, .body = { "{\"access_token\":\"T2\"}" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 2, &creds, fake_http, &f2), 0);
    assert_string_equal(t.token, "T2");
    assert_true(f2.had_user[0]);
    assert_non_null(strstr(f2.url[0], "&scope=repository%3Ac%3Apull"));
    berth_token_dispose(&t);

    /* GET answered 405: OAuth2 POST with the password */
    struct fake f3 = { .status = { 405, 200 }, .body = { "", "{\"access_token\":\"T3\"}" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 2, &creds, fake_http, &f3), 0);
    assert_string_equal(t.token, "T3");
    assert_int_equal(f3.calls, 2);
    assert_string_equal(f3.method[1], "POST");
    assert_string_equal(f3.url[1], "https://auth.example/token");
    assert_non_null(strstr(f3.form[1], "grant_type=password"));
    assert_non_null(strstr(f3.form[1], "client_id=berth"));
    assert_non_null(strstr(f3.form[1], "username=user&password=p%26ss%20word"));
    assert_non_null(strstr(f3.form[1], "scope=repository%3Aa%2Fb%3Apull%2Cpush%20repository"));
    berth_token_dispose(&t);

    /* identity token: straight to the refresh_token grant */
    struct berth_creds idt = { "<token>", "R" };
    struct fake f4 = { .status = { 200 }, .body = { "{\"access_token\":\"T4\"}" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 1, &idt, fake_http, &f4), 0);
    assert_string_equal(f4.method[0], "POST");
    assert_non_null(strstr(f4.form[0], "grant_type=refresh_token"));
    assert_non_null(strstr(f4.form[0], "refresh_token=R"));
    berth_token_dispose(&t);

    /* refused credentials: EDENIED, and the password is not in the message */
    struct fake f5 = { .status = { 401 }, .body = { "{\"details\":\"incorrect username\"}" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 1, &creds, fake_http, &f5),
                     BERTH_EDENIED);
    assert_non_null(strstr(berth_error_msg(), "incorrect username"));
    assert_null(strstr(berth_error_msg(), "p&ss"));
    assert_null(t.token);

    /* a 404 without a password is not retried as a POST */
    struct fake f6 = { .status = { 404 }, .body = { "" } };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 1, NULL, fake_http, &f6),
                     BERTH_ERROR);
    assert_int_equal(f6.calls, 1);
    berth_challenges_free(c, n);

    /* a realm that is not http(s) is refused before any request */
    assert_int_equal(parse(&c, &n, "Bearer realm=\"file:///etc/passwd\""), 0);
    struct fake f7 = { 0 };
    assert_int_equal(berth_auth_fetch_token(&t, &c[0], scopes, 1, NULL, fake_http, &f7),
                     BERTH_EINVALID);
    assert_int_equal(f7.calls, 0);
    berth_challenges_free(c, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),        cmocka_unit_test(test_docker_hub),
        cmocka_unit_test(test_insufficient_scope), cmocka_unit_test(test_several),
        cmocka_unit_test(test_escapes),      cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_token_parse),
        cmocka_unit_test(test_scope),        cmocka_unit_test(test_basic_value),
        cmocka_unit_test(test_flow),
    };

    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}

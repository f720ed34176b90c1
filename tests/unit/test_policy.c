/* Unit tests for src/server/policy.c: the glob table of docs/auth.md, scope
 * strings (types, classes, names with ':', malformed ones), action words,
 * the decisions of an access policy with groups, "*" and "anonymous", the
 * admin action and the loopback test of the admin endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "server/policy.h"

#define S(x) ((char *)(x))

static void test_glob(void **state)
{
    static const struct {
        const char *pattern, *name;
        int match;
    } cases[] = {
        { "team-a/*", "team-a/app", 1 },    { "team-a/*", "team-a/x/y", 0 },
        { "team-a/*", "team-a", 0 },        { "team-a/*", "team-b/app", 0 },
        { "team-a/**", "team-a/x/y", 1 },   { "team-a/**", "team-a/app", 1 },
        { "*/public", "x/public", 1 },      { "*/public", "a/b/public", 0 },
        { "**/public", "a/b/public", 1 },   { "*/public", "public", 0 },
        { "*", "alpine", 1 },               { "*", "library/alpine", 0 },
        { "**", "library/alpine", 1 },      { "lib?", "libs", 1 },
        { "lib?", "lib/", 0 },              { "alpine", "alpine", 1 },
        { "alpine", "alpine2", 0 },         { "a*b*c", "axxbyyc", 1 },
        { "a*b*c", "axxbyy", 0 },           { "***", "a/b", 1 },
        { "", "", 1 },                      { "", "a", 0 },
    };
    char longp[300];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (berth_glob_match(cases[i].pattern, cases[i].name) != cases[i].match)
            fail_msg("glob '%s' vs '%s': expected %d", cases[i].pattern, cases[i].name,
                     cases[i].match);
    }
    /* a pathological pattern stays fast (linear space, quadratic time) */
    assert_int_equal(berth_glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                     0);
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(berth_glob_match(longp, longp), 0); /* over BERTH_PATTERN_MAX */
}

static void test_scope_parse(void **state)
{
    struct berth_scope s;
    char buf[256];
    (void)state;

    assert_int_equal(berth_scope_parse(&s, "repository:a/b:pull,push", 24), 0);
    assert_string_equal(s.type, "repository");
    assert_string_equal(s.rclass, "");
    assert_string_equal(s.name, "a/b");
    assert_int_equal(s.actions, BERTH_ACT_PULL | BERTH_ACT_PUSH);
    berth_scope_format(buf, sizeof(buf), &s);
    assert_string_equal(buf, "repository:a/b:pull,push");

    assert_int_equal(berth_scope_parse(&s, "registry:catalog:*", 18), 0);
    assert_string_equal(s.type, "registry");
    assert_string_equal(s.name, "catalog");
    assert_int_equal(s.actions, BERTH_ACT_CATALOG);
    berth_scope_format(buf, sizeof(buf), &s);
    assert_string_equal(buf, "registry:catalog:*");

    /* names may hold ':' (host:port) */
    assert_int_equal(berth_scope_parse(&s, "repository:host:5000/x:pull", 27), 0);
    assert_string_equal(s.name, "host:5000/x");
    assert_int_equal(s.actions, BERTH_ACT_PULL);

    /* resource class */
    assert_int_equal(berth_scope_parse(&s, "repository(plugin):a/b:pull", 27), 0);
    assert_string_equal(s.type, "repository");
    assert_string_equal(s.rclass, "plugin");
    berth_scope_format(buf, sizeof(buf), &s);
    assert_string_equal(buf, "repository(plugin):a/b:pull");

    /* "*" on a repository is pull,push,delete; unknown words dropped */
    assert_int_equal(berth_scope_parse(&s, "repository:a:*", 14), 0);
    assert_int_equal(s.actions, BERTH_ACT_PULL | BERTH_ACT_PUSH | BERTH_ACT_DELETE);
    assert_int_equal(berth_scope_parse(&s, "repository:a:fly,pull", 21), 0);
    assert_int_equal(s.actions, BERTH_ACT_PULL);
    assert_int_equal(berth_scope_parse(&s, "repository:a:catalog", 20), 0);
    assert_int_equal(s.actions, 0);

    /* malformed */
    static const char *const bad[] = {
        "", "repository", "repository:a", ":a:pull", "repository::pull", "repository:a:",
        "repository():a:pull", "repository(x:a:pull", "repo)x:a:pull", "repository:a b:pull",
        "repository:a\"b:pull", "repository((x)):a:pull",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (berth_scope_parse(&s, bad[i], strlen(bad[i])) != BERTH_EINVALID)
            fail_msg("scope '%s' accepted", bad[i]);
        assert_string_equal(s.name, "");
    }
    /* not NUL-terminated: only len bytes are read */
    assert_int_equal(berth_scope_parse(&s, "repository:a:pullXXXX", 17), 0);
    assert_int_equal(s.actions, BERTH_ACT_PULL);
}

static void test_actions(void **state)
{
    char buf[64];
    (void)state;
    assert_int_equal(berth_action_parse("pull", 4), BERTH_ACT_PULL);
    assert_int_equal(berth_action_parse("delete", 6), BERTH_ACT_DELETE);
    assert_int_equal(berth_action_parse("*", 1), BERTH_ACT_ALL);
    assert_int_equal(berth_action_parse("pul", 3), 0);
    berth_actions_format(buf, sizeof(buf), BERTH_ACT_PULL | BERTH_ACT_DELETE);
    assert_string_equal(buf, "pull,delete");
    berth_actions_format(buf, sizeof(buf), 0);
    assert_string_equal(buf, "");
}

static struct berth_policy *example_policy(void)
{
    static char *team_a[] = { S("alice"), S("bob") };
    static char *r1_repos[] = { S("team-a/*") }, *r1_users[] = { S("group:team-a") };
    static char *r2_repos[] = { S("*/public"), S("library/**") };
    static char *r2_users[] = { S("anonymous") };
    static char *r3_repos[] = { S("shared/*") }, *r3_users[] = { S("*") };
    static char *r4_users[] = { S("carol") };
    static char *r5_repos[] = { S("team-a/app") }, *r5_users[] = { S("carol") };
    struct berth_policy_group groups[] = { { (char *)"team-a", team_a, 2 } };
    struct berth_policy_rule rules[] = {
        { r1_repos, 1, r1_users, 1, BERTH_ACT_PULL | BERTH_ACT_PUSH | BERTH_ACT_DELETE },
        { r2_repos, 2, r2_users, 1, BERTH_ACT_PULL },
        { r3_repos, 1, r3_users, 1, BERTH_ACT_PULL | BERTH_ACT_PUSH },
        { NULL, 0, r4_users, 1, BERTH_ACT_CATALOG },
        { r5_repos, 1, r5_users, 1, BERTH_ACT_PULL },
    };
    struct berth_policy *p;
    assert_int_equal(berth_policy_new(&p, groups, 1, rules, 5), 0);
    return p;
}

static void test_policy_decisions(void **state)
{
    struct berth_policy *p = example_policy();
    struct berth_scope s;
    (void)state;

    assert_int_equal(berth_policy_allowed(p, "alice", "team-a/app", BERTH_ACT_PUSH), 1);
    assert_int_equal(berth_policy_allowed(p, "bob", "team-a/app", BERTH_ACT_DELETE), 1);
    assert_int_equal(berth_policy_allowed(p, "alice", "team-a/x/y", BERTH_ACT_PULL), 0);
    assert_int_equal(berth_policy_allowed(p, "carol", "team-a/app", BERTH_ACT_PULL), 1);
    assert_int_equal(berth_policy_allowed(p, "carol", "team-a/app", BERTH_ACT_PUSH), 0);
    assert_int_equal(berth_policy_allowed(p, "carol", "team-a/other", BERTH_ACT_PULL), 0);
    /* anonymous rules apply to everyone */
    assert_int_equal(berth_policy_allowed(p, NULL, "x/public", BERTH_ACT_PULL), 1);
    assert_int_equal(berth_policy_allowed(p, "dave", "library/a/b", BERTH_ACT_PULL), 1);
    assert_int_equal(berth_policy_allowed(p, NULL, "x/public", BERTH_ACT_PUSH), 0);
    assert_int_equal(berth_policy_allowed(p, NULL, "team-a/app", BERTH_ACT_PULL), 0);
    /* "*" is any authenticated user, not anonymous */
    assert_int_equal(berth_policy_allowed(p, "dave", "shared/x", BERTH_ACT_PUSH), 1);
    assert_int_equal(berth_policy_allowed(p, NULL, "shared/x", BERTH_ACT_PULL), 0);
    /* catalog: only carol */
    assert_int_equal(berth_policy_actions(p, "carol", NULL), BERTH_ACT_CATALOG);
    assert_int_equal(berth_policy_actions(p, "alice", NULL), 0);
    assert_int_equal(berth_policy_allowed(p, "alice", "team-a/app",
                                          BERTH_ACT_PULL | BERTH_ACT_PUSH), 1);

    /* grants for requested scopes */
    berth_scope_parse(&s, "repository:team-a/app:pull,push,delete", 38);
    assert_int_equal(berth_policy_grant(p, "carol", &s), BERTH_ACT_PULL);
    assert_int_equal(berth_policy_grant(p, "alice", &s), s.actions);
    assert_int_equal(berth_policy_grant(p, NULL, &s), 0);
    berth_scope_parse(&s, "registry:catalog:*", 18);
    assert_int_equal(berth_policy_grant(p, "carol", &s), BERTH_ACT_CATALOG);
    assert_int_equal(berth_policy_grant(p, "alice", &s), 0);
    berth_scope_parse(&s, "repository(plugin):team-a/app:pull", 34);
    assert_int_equal(berth_policy_grant(p, "alice", &s), 0);
    berth_scope_parse(&s, "repository:Team-A/App:pull", 26); /* invalid name */
    assert_int_equal(berth_policy_grant(p, "alice", &s), 0);
    berth_policy_free(p);
}

static void test_policy_defaults_and_errors(void **state)
{
    static char *repos[] = { S("a/*") }, *users[] = { S("group:nope") }, *empty[] = { S("") };
    struct berth_policy_rule bad_group = { repos, 1, users, 1, BERTH_ACT_PULL };
    struct berth_policy_rule bad_pat = { empty, 1, users, 1, BERTH_ACT_PULL };
    struct berth_policy_rule no_repo = { NULL, 0, users, 1, BERTH_ACT_PULL };
    struct berth_policy *p;
    (void)state;

    /* no rules: authenticated users may do everything, anonymous nothing */
    assert_int_equal(berth_policy_new(&p, NULL, 0, NULL, 0), 0);
    assert_int_equal(berth_policy_actions(p, "x", "any/repo"), BERTH_ACT_ALL);
    assert_int_equal(berth_policy_actions(p, NULL, "any/repo"), 0);
    berth_policy_free(p);
    berth_policy_free(NULL);

    assert_int_equal(berth_policy_new(&p, NULL, 0, &bad_group, 1), BERTH_EINVALID);
    assert_non_null(strstr(berth_error_msg(), "unknown group 'nope'"));
    assert_null(p);
    assert_int_equal(berth_policy_new(&p, NULL, 0, &bad_pat, 1), BERTH_EINVALID);
    assert_int_equal(berth_policy_new(&p, NULL, 0, &no_repo, 1), BERTH_EINVALID);
}

/* The admin action: registry-wide like the catalog, granted only by rules
 * that name it ("*" and "no rules" never include it), "registry:admin:*" in
 * tokens. */
static void test_admin(void **state)
{
    static char *ops[] = { S("ops") }, *all_repos[] = { S("**") }, *any[] = { S("*") };
    static char *dev[] = { S("dev") };
    struct berth_policy_rule rules[] = {
        { NULL, 0, ops, 1, BERTH_ACT_ADMIN },
        { all_repos, 1, any, 1, BERTH_ACT_ALL },
        { all_repos, 1, dev, 1, BERTH_ACT_ALL | BERTH_ACT_DELETE },
    };
    struct berth_policy *p;
    struct berth_scope s;
    (void)state;

    assert_int_equal(berth_action_parse("admin", 5), BERTH_ACT_ADMIN);
    assert_int_equal(berth_action_parse("*", 1) & BERTH_ACT_ADMIN, 0);
    assert_int_equal(berth_policy_new(&p, NULL, 0, rules, 3), 0);
    assert_int_equal(berth_policy_actions(p, "ops", NULL), BERTH_ACT_ADMIN | BERTH_ACT_CATALOG);
    assert_int_equal(berth_policy_allowed(p, "ops", NULL, BERTH_ACT_ADMIN), 1);
    assert_int_equal(berth_policy_allowed(p, "ops", "any/repo", BERTH_ACT_ADMIN), 1);
    assert_int_equal(berth_policy_allowed(p, "dev", NULL, BERTH_ACT_ADMIN), 0);
    assert_int_equal(berth_policy_allowed(p, "dev", "a", BERTH_ACT_DELETE), 1);
    assert_int_equal(berth_policy_allowed(p, NULL, NULL, BERTH_ACT_ADMIN), 0);

    /* token scopes: the "*" of a registry scope, whatever else is asked */
    assert_int_equal(berth_scope_parse(&s, "registry:admin:*", 16), 0);
    assert_int_equal(s.actions, BERTH_ACT_CATALOG);
    assert_int_equal(berth_policy_grant(p, "ops", &s), BERTH_ACT_CATALOG);
    assert_int_equal(berth_policy_grant(p, "dev", &s), 0);
    assert_int_equal(berth_policy_grant(p, NULL, &s), 0);
    /* a catalog grant is not an admin grant and the other way round */
    assert_int_equal(berth_scope_parse(&s, "registry:catalog:*", 18), 0);
    assert_int_equal(berth_policy_grant(p, "ops", &s), BERTH_ACT_CATALOG);
    /* admin is never a repository action */
    assert_int_equal(berth_scope_parse(&s, "repository:a:admin,pull", 23), 0);
    assert_int_equal(s.actions, BERTH_ACT_PULL);
    assert_int_equal(berth_policy_grant(p, "ops", &s), BERTH_ACT_PULL);
    berth_policy_free(p);

    /* no rules: every authenticated user may do everything but admin */
    assert_int_equal(berth_policy_new(&p, NULL, 0, NULL, 0), 0);
    assert_int_equal(berth_policy_allowed(p, "x", NULL, BERTH_ACT_ADMIN), 0);
    berth_policy_free(p);
}

static void test_loopback(void **state)
{
    static const char *const yes[] = { "127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1" };
    static const char *const no[] = { "192.0.2.2", "10.0.0.1", "128.0.0.1", "::", "::2",
                                      "::ffff:192.0.2.2", "2001:db8::1", "-", "", "localhost",
                                      "127.0.0.1x" };
    (void)state;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!berth_addr_is_loopback(yes[i]))
            fail_msg("%s is loopback", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (berth_addr_is_loopback(no[i]))
            fail_msg("%s is not loopback", no[i]);
    assert_int_equal(berth_addr_is_loopback(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_scope_parse),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_policy_decisions),
        cmocka_unit_test(test_policy_defaults_and_errors),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}

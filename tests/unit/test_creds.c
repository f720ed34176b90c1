/*
 * Unit tests for src/client/creds.c in a temporary HOME/DOCKER_CONFIG:
 * config.json round trips (mode 0600, directory 0700, unknown keys kept),
 * the key forms docker writes ("https://index.docker.io/v1/", schemes,
 * paths), identity tokens, podman's auth.json, and credential helpers
 * (credHelpers and credsStore) through a shell-script `docker-credential-test`.
 */
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

#include "client/creds.h"
#include "core/error.h"

static char tmp[256], cfgdir[300], cfg[320], helperdir[300], authfile[300];

/* Stores each server URL's JSON in $HELPER_DIR, answers like docker's helpers. */
static const char helper_script[] =
    "#!/bin/sh\n"
    "key() { printf %s \"$1\" | tr -c 'A-Za-z0-9.' _; }\n"
    "case \"$1\" in\n"
    "get) read -r url; f=\"$HELPER_DIR/$(key \"$url\")\"\n"
    "     if [ -f \"$f\" ]; then cat \"$f\"; else\n"
    "     echo 'credentials not found in native keychain'; exit 1; fi ;;\n"
    "store) json=$(cat)\n"
    "     url=$(printf %s \"$json\" | sed -n 's/.*\"ServerURL\":\"\\([^\"]*\\)\".*/\\1/p')\n"
    "     printf %s \"$json\" > \"$HELPER_DIR/$(key \"$url\")\" ;;\n"
    "erase) read -r url; f=\"$HELPER_DIR/$(key \"$url\")\"\n"
    "     if [ -f \"$f\" ]; then rm \"$f\"; else\n"
    "     echo 'credentials not found in native keychain'; exit 1; fi ;;\n"
    "*) echo \"unknown action $1\"; exit 1 ;;\n"
    "esac\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_file(const char *path)
{
    unlink(path);
}

static json_t *load(const char *path)
{
    json_t *j = json_load_file(path, 0, NULL);

    assert_non_null(j);
    return j;
}

static int setup(void **state)
{
    char bin[300], script[340], path[4096];

    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/berth-creds-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(cfgdir, sizeof(cfgdir), "%s/dockercfg/nested", tmp);
    snprintf(cfg, sizeof(cfg), "%s/config.json", cfgdir);
    snprintf(helperdir, sizeof(helperdir), "%s/helper", tmp);
    snprintf(authfile, sizeof(authfile), "%s/auth.json", tmp);
    snprintf(bin, sizeof(bin), "%s/bin", tmp);
    snprintf(script, sizeof(script), "%s/docker-credential-test", bin);
    if (mkdir(bin, 0700) < 0 || mkdir(helperdir, 0700) < 0)
        return -1;
    write_file(script, helper_script);
    chmod(script, 0755);
    snprintf(path, sizeof(path), "%s:%s", bin, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    setenv("HOME", tmp, 1);
    setenv("DOCKER_CONFIG", cfgdir, 1);
    setenv("REGISTRY_AUTH_FILE", authfile, 1);
    setenv("HELPER_DIR", helperdir, 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* each test starts without config.json and auth.json */
static int reset(void **state)
{
    (void)state;
    rm_file(cfg);
    rm_file(authfile);
    return 0;
}

static struct berth_creds mk(const char *user, const char *pass)
{
    struct berth_creds c;

    memset(&c, 0, sizeof(c));
    snprintf(c.username, sizeof(c.username), "%s", user);
    snprintf(c.password, sizeof(c.password), "%s", pass);
    return c;
}

static void expect(const char *registry, const char *user, const char *pass)
{
    struct berth_creds c;

    if (berth_creds_get(&c, registry) != 0)
        fail_msg("no credentials for '%s': %s", registry, berth_error_msg());
    assert_string_equal(c.username, user);
    assert_string_equal(c.password, pass);
    berth_creds_clear(&c);
    assert_int_equal(c.username[0], 0);
}

static void test_paths(void **state)
{
    char want[400];

    (void)state;
    assert_string_equal(berth_creds_config_path(), cfg);
    unsetenv("DOCKER_CONFIG");
    snprintf(want, sizeof(want), "%s/.docker/config.json", tmp);
    assert_string_equal(berth_creds_config_path(), want);
    setenv("DOCKER_CONFIG", cfgdir, 1);
}

static void test_roundtrip(void **state)
{
    struct berth_creds c = mk("alice", "pa:ss wörd"), got;
    struct stat st;
    json_t *j;

    (void)state;
    assert_int_equal(berth_creds_get(&got, "localhost:5000"), BERTH_ENOTFOUND);
    assert_int_equal(berth_creds_store("localhost:5000", &c), 0);
    assert_int_equal(stat(cfg, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cfgdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    expect("localhost:5000", "alice", "pa:ss wörd");
    expect("http://localhost:5000/v2/", "alice", "pa:ss wörd");
    assert_int_equal(berth_creds_get(&got, "localhost:5001"), BERTH_ENOTFOUND);

    j = load(cfg);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(j, "auths"), "localhost:5000"), "auth")),
        "YWxpY2U6cGE6c3Mgd8O2cmQ=");
    json_decref(j);

    /* overwrite, then erase twice */
    c = mk("bob", "x");
    assert_int_equal(berth_creds_store("localhost:5000", &c), 0);
    expect("localhost:5000", "bob", "x");
    assert_int_equal(berth_creds_erase("localhost:5000"), 0);
    assert_int_equal(berth_creds_get(&got, "localhost:5000"), BERTH_ENOTFOUND);
    assert_int_equal(berth_creds_erase("localhost:5000"), BERTH_ENOTFOUND);
    assert_int_equal(stat(cfg, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* bad input */
    c = mk("a:b", "x");
    assert_int_equal(berth_creds_store("localhost:5000", &c), BERTH_EINVALID);
    c = mk("", "x");
    assert_int_equal(berth_creds_store("localhost:5000", &c), BERTH_EINVALID);
    assert_int_equal(berth_creds_get(&got, ""), BERTH_EINVALID);
}

static void test_unknown_keys(void **state)
{
    struct berth_creds c = mk("u", "p");
    json_t *j, *other;

    (void)state;
    mkdir(cfgdir, 0700);
    write_file(cfg, "{\"psFormat\": \"table {{.ID}}\", \"proxies\": {\"default\": "
                    "{\"httpProxy\": \"http://p:3128\"}}, \"auths\": {\"other.io\": "
                    "{\"auth\": \"bzpw\", \"email\": \"e@x\"}, \"reg.io\": {\"auth\": "
                    "\"b2xkOm9sZA==\", \"email\": \"keep@me\", \"identitytoken\": \"\"}}}");
    assert_int_equal(berth_creds_store("reg.io", &c), 0);
    assert_int_equal(berth_creds_store("new.io", &c), 0);
    j = load(cfg);
    assert_string_equal(json_string_value(json_object_get(j, "psFormat")), "table {{.ID}}");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(j, "proxies"), "default"), "httpProxy")),
        "http://p:3128");
    other = json_object_get(json_object_get(j, "auths"), "other.io");
    assert_string_equal(json_string_value(json_object_get(other, "email")), "e@x");
    assert_string_equal(json_string_value(json_object_get(other, "auth")), "bzpw");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "auths"), "reg.io"), "email")),
                        "keep@me");
    json_decref(j);
    expect("reg.io", "u", "p");
    expect("new.io", "u", "p");
    expect("other.io", "o", "p"); /* "bzpw" = base64 "o:p" */

    /* a broken file is an error, never overwritten */
    write_file(cfg, "{\"auths\": ");
    assert_int_equal(berth_creds_store("reg.io", &c), BERTH_EINVALID);
    assert_int_equal(berth_creds_get(&c, "reg.io"), BERTH_EINVALID);
}

static void test_key_forms(void **state)
{
    struct berth_creds c = mk("new", "pw"), got;
    json_t *j;

    (void)state;
    mkdir(cfgdir, 0700);
    write_file(cfg, "{\"auths\": {"
                    "\"https://index.docker.io/v1/\": {\"auth\": \"aHViOmh1YnB3\"},"
                    "\"https://myreg.example.com:5000\": {\"auth\": \"YWI6Yw==\"},"
                    "\"ghcr.io/v2/some/path\": {\"auth\": \"YWI6Yw\"},"
                    "\"http://plain.local:8080/\": {\"username\": \"pu\", \"password\": \"pp\"},"
                    "\"tok.io\": {\"auth\": \"dTo=\", \"identitytoken\": \"tok-123\"},"
                    "\"bad.io\": {\"auth\": \"!!!\"},"
                    "\"nocolon.io\": {\"auth\": \"bm9jb2xvbg==\"},"
                    "\"empty.io\": {}"
                    "}}");
    expect("docker.io", "hub", "hubpw");
    expect("index.docker.io", "hub", "hubpw");
    expect("https://index.docker.io/v1/", "hub", "hubpw");
    expect("myreg.example.com:5000", "ab", "c");
    expect("ghcr.io", "ab", "c"); /* unpadded base64 */
    expect("plain.local:8080", "pu", "pp");
    expect("tok.io", "<token>", "tok-123");
    assert_int_equal(berth_creds_get(&got, "bad.io"), BERTH_EINVALID);
    assert_int_equal(berth_creds_get(&got, "nocolon.io"), BERTH_EINVALID);
    assert_int_equal(berth_creds_get(&got, "empty.io"), BERTH_ENOTFOUND);
    assert_int_equal(berth_creds_get(&got, "myreg.example.com"), BERTH_ENOTFOUND);

    /* storing docker.io updates docker's own key, not a new one */
    assert_int_equal(berth_creds_store("docker.io", &c), 0);
    j = load(cfg);
    assert_null(json_object_get(json_object_get(j, "auths"), "docker.io"));
    assert_non_null(json_object_get(json_object_get(j, "auths"), "https://index.docker.io/v1/"));
    json_decref(j);
    expect("docker.io", "new", "pw");

    /* identity tokens are stored as such */
    c = mk("<token>", "refresh-xyz");
    assert_int_equal(berth_creds_store("tok.io", &c), 0);
    expect("tok.io", "<token>", "refresh-xyz");

    /* erase removes every key naming the host */
    assert_int_equal(berth_creds_erase("docker.io"), 0);
    assert_int_equal(berth_creds_get(&got, "docker.io"), BERTH_ENOTFOUND);

    /* fresh config: docker.io goes under docker's key */
    rm_file(cfg);
    c = mk("hub2", "pw2");
    assert_int_equal(berth_creds_store("docker.io", &c), 0);
    j = load(cfg);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "auths"),
                                            "https://index.docker.io/v1/"),
                            "auth")),
                        "aHViMjpwdzI=");
    json_decref(j);
}

static void test_podman(void **state)
{
    struct berth_creds c = mk("dock", "er"), got;

    (void)state;
    write_file(authfile, "{\"auths\": {\"quay.io\": {\"auth\": \"cG9kOm1hbg==\"},"
                         "\"reg.example.com/team/app\": {\"auth\": \"cG9kOm1hbg==\"}}}");
    expect("quay.io", "pod", "man");
    expect("reg.example.com", "pod", "man");
    /* config.json comes first */
    assert_int_equal(berth_creds_store("quay.io", &c), 0);
    expect("quay.io", "dock", "er");
    /* podman's file is never written */
    assert_int_equal(berth_creds_erase("quay.io"), 0);
    expect("quay.io", "pod", "man");
    assert_int_equal(berth_creds_erase("quay.io"), BERTH_ENOTFOUND);
    write_file(authfile, "not json");
    assert_int_equal(berth_creds_get(&got, "quay.io"), BERTH_EINVALID);
    rm_file(authfile);
    assert_int_equal(berth_creds_get(&got, "quay.io"), BERTH_ENOTFOUND);
}

static void test_helpers(void **state)
{
    struct berth_creds c = mk("helper-user", "s3cret\"\\x"), got;
    char path[400];
    json_t *j;

    (void)state;
    mkdir(cfgdir, 0700);
    write_file(cfg, "{\"credHelpers\": {\"helped.example.com\": \"test\"},"
                    "\"auths\": {\"plain.io\": {\"auth\": \"cDpx\"}}}");
    assert_int_equal(berth_creds_store("helped.example.com", &c), 0);
    snprintf(path, sizeof(path), "%s/helped.example.com", helperdir);
    assert_int_equal(access(path, F_OK), 0);
    j = load(cfg);
    assert_null(json_object_get(json_object_get(j, "auths"), "helped.example.com"));
    json_decref(j);
    expect("helped.example.com", "helper-user", "s3cret\"\\x");
    expect("plain.io", "p", "q"); /* no helper for that host: the file */
    assert_int_equal(berth_creds_erase("helped.example.com"), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(berth_creds_get(&got, "helped.example.com"), BERTH_ENOTFOUND);
    assert_int_equal(berth_creds_erase("helped.example.com"), BERTH_ENOTFOUND);

    /* credsStore for everything; not-found falls back to auths */
    write_file(cfg, "{\"credsStore\": \"test\", \"auths\": {\"plain.io\": {\"auth\": \"cDpx\"}}}");
    assert_int_equal(berth_creds_store("docker.io", &c), 0);
    snprintf(path, sizeof(path), "%s/https___index.docker.io_v1_", helperdir);
    assert_int_equal(access(path, F_OK), 0);
    expect("docker.io", "helper-user", "s3cret\"\\x");
    expect("index.docker.io", "helper-user", "s3cret\"\\x");
    expect("plain.io", "p", "q");
    assert_int_equal(berth_creds_erase("docker.io"), 0);
    assert_int_equal(berth_creds_get(&got, "docker.io"), BERTH_ENOTFOUND);

    /* identity tokens through a helper */
    c = mk("<token>", "tok");
    assert_int_equal(berth_creds_store("t.io", &c), 0);
    expect("t.io", "<token>", "tok");

    /* a helper that is not installed is an error, with its name */
    write_file(cfg, "{\"credsStore\": \"no-such-helper-berth\"}");
    assert_int_equal(berth_creds_get(&got, "docker.io"), BERTH_ERROR);
    assert_non_null(strstr(berth_error_msg(), "docker-credential-no-such-helper-berth"));
    assert_int_equal(berth_creds_store("docker.io", &c), BERTH_ERROR);
    write_file(cfg, "{\"credsStore\": \"../evil\"}");
    assert_int_equal(berth_creds_get(&got, "docker.io"), BERTH_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_paths, reset),
        cmocka_unit_test_setup(test_roundtrip, reset),
        cmocka_unit_test_setup(test_unknown_keys, reset),
        cmocka_unit_test_setup(test_key_forms, reset),
        cmocka_unit_test_setup(test_podman, reset),
        cmocka_unit_test_setup(test_helpers, reset),
    };

    return cmocka_run_group_tests_name("creds", tests, setup, teardown);
}

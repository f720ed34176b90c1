/* Unit tests for src/server/htpasswd.c: a real `htpasswd -B` line, $2b$
 * hashes made here, refused hash types with their messages, comments and
 * blank lines, reload after the file changes, the verification cache and
 * the password binding of refresh tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <crypt.h>

#include "core/error.h"
#include "server/htpasswd.h"

/* `htpasswd -nbB -C 4 alice secret` (apache2-utils 2.4) */
#define ALICE "alice:$2y$04$XDSNrIW4TEk.XRv3lbM5S.spuy8T287vkVqY5r2OLQXTsyGbZCa6G"

struct warns {
    int n;
    char all[4096];
};

static void warn_cb(void *ctx, const char *msg)
{
    struct warns *w = ctx;
    w->n++;
    strncat(w->all, msg, sizeof(w->all) - strlen(w->all) - 2);
    strcat(w->all, "\n");
}

static void bcrypt(char *out, size_t size, const char *prefix, unsigned long cost,
                   const char *pass)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)));
    snprintf(out, size, "%s", crypt_r(pass, salt, cd));
    free(cd);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int verify(struct berth_htpasswd *h, const char *user, const char *pass)
{
    return berth_htpasswd_verify(h, user, (const uint8_t *)pass, strlen(pass));
}

static void test_parse_and_verify(void **state)
{
    char path[] = "/tmp/berth-test-htpasswd-XXXXXX", bob[128], text[2048];
    struct berth_htpasswd *h;
    struct warns w = { 0 };
    (void)state;

    close(mkstemp(path));
    bcrypt(bob, sizeof(bob), "$2b$", 4, "hunter2");
    snprintf(text, sizeof(text),
             "# users\n\n" ALICE "\n"
             "bob:%s\r\n"
             "carol:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"
             "dave:$apr1$abc$0123456789012345678901\n"
             "eve:plaintext\n"
             "no colon here\n",
             bob);
    write_file(path, text);
    assert_int_equal(berth_htpasswd_new(&h, path, warn_cb, &w), 0);
    assert_int_equal(berth_htpasswd_count(h), 2);
    assert_int_equal(w.n, 4);
    assert_non_null(strstr(w.all, "line 5: user 'carol' has a {SHA} (SHA-1) hash; only bcrypt"));
    assert_non_null(strstr(w.all, "line 6: user 'dave' has a $apr1$ (MD5) hash"));
    assert_non_null(strstr(w.all, "line 7: user 'eve' has a plain text"));
    assert_non_null(strstr(w.all, "line 8: not a 'user:hash' line"));
    assert_null(strstr(w.all, "plaintext")); /* never the hash itself */

    assert_int_equal(verify(h, "alice", "secret"), 0);
    assert_int_equal(verify(h, "alice", "Secret"), BERTH_EDENIED);
    assert_string_equal(berth_error_msg(), "invalid username or password");
    assert_int_equal(verify(h, "bob", "hunter2"), 0);
    assert_int_equal(verify(h, "bob", "hunter"), BERTH_EDENIED);
    assert_int_equal(verify(h, "carol", "x"), BERTH_EDENIED);
    assert_int_equal(verify(h, "eve", "plaintext"), BERTH_EDENIED);
    assert_int_equal(verify(h, "nobody", "secret"), BERTH_EDENIED);
    assert_string_equal(berth_error_msg(), "invalid username or password");
    assert_int_equal(berth_htpasswd_verify(h, "alice", (const uint8_t *)"secret\0x", 8),
                     BERTH_EDENIED);
    assert_int_equal(berth_htpasswd_has_user(h, "alice", NULL), 1);
    assert_int_equal(berth_htpasswd_has_user(h, "carol", NULL), 0);
    berth_htpasswd_free(h);
    berth_htpasswd_free(NULL);
    unlink(path);
    assert_int_equal(berth_htpasswd_new(&h, path, NULL, NULL), BERTH_ENOTFOUND);
}

static void test_reload(void **state)
{
    char path[] = "/tmp/berth-test-htpasswd-XXXXXX", line[256], bind1[17], bind2[17];
    char frank[128];
    struct berth_htpasswd *h;
    struct warns w = { 0 };
    (void)state;

    close(mkstemp(path));
    write_file(path, ALICE "\n");
    assert_int_equal(berth_htpasswd_new(&h, path, warn_cb, &w), 0);
    assert_int_equal(verify(h, "alice", "secret"), 0);
    assert_int_equal(berth_htpasswd_has_user(h, "alice", bind1), 1);

    bcrypt(frank, sizeof(frank), "$2y$", 4, "pw-frank");
    snprintf(line, sizeof(line), "frank:%s\n", frank);
    write_file(path, line);
    sleep(1); /* the file is looked at no more than once a second */
    usleep(100 * 1000);
    assert_int_equal(verify(h, "frank", "pw-frank"), 0);
    /* alice is gone, even though her password was cached */
    assert_int_equal(verify(h, "alice", "secret"), BERTH_EDENIED);
    assert_non_null(strstr(w.all, "reloaded: 1 users"));

    /* alice back with another password: her binding changes */
    bcrypt(frank, sizeof(frank), "$2y$", 4, "new-secret");
    snprintf(line, sizeof(line), "alice:%s\n", frank);
    write_file(path, line);
    sleep(1);
    usleep(100 * 1000);
    assert_int_equal(berth_htpasswd_has_user(h, "alice", bind2), 1);
    assert_string_not_equal(bind1, bind2);
    assert_int_equal(strlen(bind2), 16);

    /* a vanished file keeps the previous users, with a warning */
    unlink(path);
    sleep(1);
    usleep(100 * 1000);
    assert_int_equal(verify(h, "alice", "new-secret"), 0);
    assert_non_null(strstr(w.all, "keeping the previous 1 users"));
    berth_htpasswd_free(h);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_cache(void **state)
{
    char path[] = "/tmp/berth-test-htpasswd-XXXXXX", hash[128], line[256];
    struct berth_htpasswd *h;
    struct timespec t0;
    double first, second;
    (void)state;

    close(mkstemp(path));
    bcrypt(hash, sizeof(hash), "$2y$", 10, "slow");
    snprintf(line, sizeof(line), "zed:%s\n", hash);
    write_file(path, line);
    assert_int_equal(berth_htpasswd_new(&h, path, NULL, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(verify(h, "zed", "slow"), 0);
    first = ms_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(verify(h, "zed", "slow"), 0);
    second = ms_since(&t0);
    print_message("bcrypt cost 10: %.1f ms, cached: %.3f ms\n", first, second);
    assert_true(second * 10 < first);
    /* a wrong password is never served from the cache */
    assert_int_equal(verify(h, "zed", "slow!"), BERTH_EDENIED);
    berth_htpasswd_free(h);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_verify),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests_name("htpasswd", tests, NULL, NULL);
}

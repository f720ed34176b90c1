/* Unit tests for src/server/selfsign.c: generate a CA and a server
 * certificate, check the SANs (DNS and IP), the 10-year validity, key file
 * mode, that the server certificate verifies against the CA for TLS server
 * use, that a second call reuses the files, and bad host lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/error.h"
#include "server/selfsign.h"

static char tmpl[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpl, sizeof(tmpl), "/tmp/berth-selfsign-XXXXXX");
    return mkdtemp(tmpl) ? 0 : -1;
}

static int teardown(void **state)
{
    char p[256];
    const char *names[] = { "tls/ca.crt", "tls/server.crt", "tls/server.key", "tls" };

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpl, names[i]);
        remove(p);
    }
    rmdir(tmpl);
    return 0;
}

static X509 *load(const char *dir, const char *name)
{
    char p[256];
    FILE *f;
    X509 *x;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_non_null(f = fopen(p, "r"));
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void test_generate(void **state)
{
    char dir[128], p[256];
    X509 *ca, *crt, *again;
    X509_STORE *store;
    X509_STORE_CTX *ctx;
    struct stat sb;
    time_t in9y = time(NULL) + 9L * 365 * 86400, in11y = time(NULL) + 11L * 365 * 86400;
    int created = -1;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tls", tmpl);
    assert_int_equal(berth_selfsign_ensure(dir, "127.0.0.1,localhost,reg.example", &created),
                     0);
    assert_int_equal(created, 1);
    snprintf(p, sizeof(p), "%s/server.key", dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    ca = load(dir, "ca.crt");
    crt = load(dir, "server.crt");
    /* SANs */
    assert_int_equal(X509_check_host(crt, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(crt, "reg.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(crt, "127.0.0.1", 0), 1);
    assert_int_not_equal(X509_check_host(crt, "other.example", 0, 0, NULL), 1);
    assert_int_not_equal(X509_check_ip_asc(crt, "127.0.0.2", 0), 1);
    /* validity: about 10 years, both */
    assert_true(X509_cmp_time(X509_get0_notAfter(ca), &in9y) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(ca), &in11y) < 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(crt), &in9y) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(crt), &in11y) < 0);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(crt)) < 0);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_check_ca(crt), 0);

    /* chain: server certificate → CA, for a TLS server */
    assert_non_null(store = X509_STORE_new());
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_non_null(ctx = X509_STORE_CTX_new());
    assert_int_equal(X509_STORE_CTX_init(ctx, store, crt, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    /* a second start reuses the files */
    assert_int_equal(berth_selfsign_ensure(dir, "127.0.0.1,localhost", &created), 0);
    assert_int_equal(created, 0);
    again = load(dir, "server.crt");
    assert_int_equal(X509_cmp(crt, again), 0);
    X509_free(again);
    X509_free(ca);
    X509_free(crt);
}

static void test_bad_hosts(void **state)
{
    char dir[128];
    int created = -1;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/tls", tmpl);
    assert_int_equal(berth_selfsign_ensure(dir, "", &created), BERTH_EINVALID);
    assert_int_equal(berth_selfsign_ensure(dir, "a,,b", &created), BERTH_EINVALID);
    assert_int_equal(berth_selfsign_ensure(dir, "a b", &created), BERTH_EINVALID);
    assert_int_equal(berth_selfsign_ensure(dir, "x/../y", &created), BERTH_EINVALID);
    assert_int_equal(created, 0);
    assert_int_not_equal(access(dir, F_OK), 0); /* nothing made */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_hosts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

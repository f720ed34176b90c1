/* Unit tests for src/server/jwt.c: base64url vectors (RFC 4648 section 10),
 * ES256 and RS256 round trips, and every refusal: expired, not yet valid,
 * wrong key, audience, issuer, type, `alg: none`, HS256, tampered payload
 * and signature; kid and x5c against a rootcertbundle; JWKS. */
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
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "server/jwt.h"

static struct berth_jwt_key *make_key(const char *type)
{
    EVP_PKEY *pkey = !strcmp(type, "EC") ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                         : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    struct berth_jwt_key *k;
    assert_non_null(pkey);
    assert_int_equal(berth_jwt_key_new(&k, pkey), 0);
    EVP_PKEY_free(pkey);
    return k;
}

static struct berth_jwt_keyset *keyset_of(const struct berth_jwt_key *k)
{
    struct berth_jwt_keyset *ks;
    assert_int_equal(berth_jwt_keyset_new(&ks), 0);
    assert_int_equal(berth_jwt_keyset_add_key(ks, k), 0);
    return ks;
}

static char *sign_claims(const struct berth_jwt_key *k, int64_t now, int64_t exp_in)
{
    struct berth_scope acc[2];
    struct berth_jwt_claims c = { 0 };
    char *tok;

    berth_scope_parse(&acc[0], "repository:team-a/app:pull,push", 31);
    berth_scope_parse(&acc[1], "registry:catalog:*", 18);
    c.iss = (char *)"berth";
    c.sub = (char *)"alice";
    c.aud = (char *)"registry";
    c.jti = (char *)"j1";
    c.iat = c.nbf = now;
    c.exp = now + exp_in;
    c.access = acc;
    c.naccess = 2;
    assert_int_equal(berth_jwt_sign(&tok, k, "JWT", &c), 0);
    return tok;
}

static const struct berth_jwt_verify_opts opts = { "berth", "registry", NULL, 0 };

static void test_b64url(void **state)
{
    static const char *const vec[][2] = { { "", "" },           { "f", "Zg" },
                                          { "fo", "Zm8" },      { "foo", "Zm9v" },
                                          { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
                                          { "foobar", "Zm9vYmFy" } };
    static const uint8_t bin[] = { 0xfb, 0xff, 0xfe };
    char *e;
    uint8_t *d;
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        assert_int_equal(berth_b64url_encode(&e, (const uint8_t *)vec[i][0], strlen(vec[i][0])),
                         0);
        assert_string_equal(e, vec[i][1]);
        free(e);
        assert_int_equal(berth_b64url_decode(&d, &n, vec[i][1], strlen(vec[i][1])), 0);
        assert_int_equal(n, strlen(vec[i][0]));
        assert_memory_equal(d, vec[i][0], n);
        free(d);
    }
    assert_int_equal(berth_b64url_encode(&e, bin, 3), 0);
    assert_string_equal(e, "-__-");
    free(e);
    assert_int_equal(berth_b64url_decode(&d, &n, "Zg==", 4), BERTH_EINVALID);
    assert_int_equal(berth_b64url_decode(&d, &n, "Z+8", 3), BERTH_EINVALID);
    assert_int_equal(berth_b64url_decode(&d, &n, "Zh", 2), BERTH_EINVALID); /* stray bits */
    assert_int_equal(berth_b64url_decode(&d, &n, "Z", 1), BERTH_EINVALID);
}

static void roundtrip(const char *type, enum berth_jwt_alg alg)
{
    struct berth_jwt_key *k = make_key(type);
    struct berth_jwt_keyset *ks = keyset_of(k);
    struct berth_jwt_claims c;
    char *tok = sign_claims(k, time(NULL), 300);

    assert_int_equal(berth_jwt_key_alg(k), alg);
    assert_int_equal(strlen(berth_jwt_key_kid(k)), 59);
    assert_int_equal(berth_jwt_verify(&c, ks, tok, strlen(tok), &opts), 0);
    assert_string_equal(c.iss, "berth");
    assert_string_equal(c.sub, "alice");
    assert_string_equal(c.aud, "registry");
    assert_string_equal(c.jti, "j1");
    assert_int_equal(c.naccess, 2);
    assert_string_equal(c.access[0].type, "repository");
    assert_string_equal(c.access[0].name, "team-a/app");
    assert_int_equal(c.access[0].actions, BERTH_ACT_PULL | BERTH_ACT_PUSH);
    assert_int_equal(c.access[1].actions, BERTH_ACT_CATALOG);
    berth_jwt_claims_dispose(&c);
    free(tok);
    berth_jwt_keyset_free(ks);
    berth_jwt_key_free(k);
}

static void test_es256(void **state)
{
    (void)state;
    roundtrip("EC", BERTH_JWT_ES256);
}

static void test_rs256(void **state)
{
    (void)state;
    roundtrip("RSA", BERTH_JWT_RS256);
}

static void expect_denied(const struct berth_jwt_keyset *ks, const char *tok,
                          const struct berth_jwt_verify_opts *o, const char *why)
{
    struct berth_jwt_claims c;
    int rc = berth_jwt_verify(&c, ks, tok, strlen(tok), o);
    if (rc >= 0)
        fail_msg("token accepted, expected '%s'", why);
    if (!strstr(berth_error_msg(), why))
        fail_msg("message '%s', expected '%s'", berth_error_msg(), why);
    assert_null(c.sub);
}

static void test_refusals(void **state)
{
    struct berth_jwt_key *k = make_key("EC"), *other = make_key("EC");
    struct berth_jwt_keyset *ks = keyset_of(k);
    int64_t now = time(NULL);
    struct berth_jwt_verify_opts o = opts;
    char *tok, *bad, *dot;
    (void)state;

    tok = sign_claims(k, now - 1000, 300);
    expect_denied(ks, tok, &opts, "expired");
    free(tok);
    /* within the 60 s skew: still fine */
    tok = sign_claims(k, now - 330, 300);
    o.now = now;
    {
        struct berth_jwt_claims c;
        assert_int_equal(berth_jwt_verify(&c, ks, tok, strlen(tok), &o), 0);
        berth_jwt_claims_dispose(&c);
    }
    free(tok);
    tok = sign_claims(k, now + 1000, 300);
    expect_denied(ks, tok, &opts, "not valid yet");
    free(tok);

    tok = sign_claims(other, now, 300);
    expect_denied(ks, tok, &opts, "not trusted");
    free(tok);

    tok = sign_claims(k, now, 300);
    o = opts;
    o.audience = "elsewhere";
    expect_denied(ks, tok, &o, "wrong audience");
    o = opts;
    o.issuer = "mallory";
    expect_denied(ks, tok, &o, "wrong issuer");
    o = opts;
    o.typ = "berth-refresh+jwt";
    expect_denied(ks, tok, &o, "wrong token type");

    /* tampered payload: swap in claims of another token */
    bad = strdup(tok);
    dot = strchr(bad, '.');
    dot[1] = dot[1] == 'e' ? 'f' : 'e';
    {
        struct berth_jwt_claims c;
        assert_true(berth_jwt_verify(&c, ks, bad, strlen(bad), &opts) < 0);
    }
    free(bad);
    /* tampered signature */
    bad = strdup(tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    expect_denied(ks, bad, &opts, "bad signature");
    free(bad);
    /* truncated and oversized */
    {
        struct berth_jwt_claims c;
        assert_int_equal(berth_jwt_verify(&c, ks, tok, 20, &opts), BERTH_EINVALID);
        assert_int_equal(berth_jwt_verify(&c, ks, tok, BERTH_JWT_MAX + 1, &opts),
                         BERTH_EINVALID);
    }
    free(tok);
    berth_jwt_keyset_free(ks);
    berth_jwt_key_free(k);
    berth_jwt_key_free(other);
}

/* A token with a chosen header and claims and a garbage signature. */
static char *forge(const char *header, const char *claims, const char *sig)
{
    char *h, *c, *out;
    assert_int_equal(berth_b64url_encode(&h, (const uint8_t *)header, strlen(header)), 0);
    assert_int_equal(berth_b64url_encode(&c, (const uint8_t *)claims, strlen(claims)), 0);
    out = malloc(strlen(h) + strlen(c) + strlen(sig) + 3);
    sprintf(out, "%s.%s.%s", h, c, sig);
    free(h);
    free(c);
    return out;
}

static void test_alg_none_and_hs256(void **state)
{
    struct berth_jwt_key *k = make_key("RSA");
    struct berth_jwt_keyset *ks = keyset_of(k);
    char claims[256], header[256], *tok;
    (void)state;

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"berth\",\"aud\":\"registry\",\"sub\":\"root\",\"exp\":%lld}",
             (long long)time(NULL) + 300);
    tok = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, "");
    {
        struct berth_jwt_claims c;
        assert_true(berth_jwt_verify(&c, ks, tok, strlen(tok), &opts) < 0);
    }
    free(tok);
    tok = forge("{\"alg\":\"none\"}", claims, "AAAA");
    expect_denied(ks, tok, &opts, "algorithm not allowed");
    free(tok);
    snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"kid\":\"%s\"}", berth_jwt_key_kid(k));
    tok = forge(header, claims, "AAAA");
    expect_denied(ks, tok, &opts, "algorithm not allowed");
    free(tok);
    /* ES256 claimed with the RSA key's kid: the key type must match */
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", berth_jwt_key_kid(k));
    tok = forge(header, claims, "AAAA");
    expect_denied(ks, tok, &opts, "not trusted");
    free(tok);
    tok = forge("{\"alg\":\"RS256\"}", claims, "AAAA");
    expect_denied(ks, tok, &opts, "names no key");
    free(tok);
    snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"kid\":\"%s\",\"crit\":[\"x\"]}",
             berth_jwt_key_kid(k));
    tok = forge(header, claims, "AAAA");
    expect_denied(ks, tok, &opts, "critical");
    free(tok);
    berth_jwt_keyset_free(ks);
    berth_jwt_key_free(k);
}

/* A self-signed certificate for the key, written as a PEM bundle. */
static X509 *self_signed(EVP_PKEY *pkey)
{
    X509 *x = X509_new();
    X509_NAME *name;
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"token", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    return x;
}

static void test_rootcertbundle(void **state)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = self_signed(pkey);
    struct berth_jwt_key *k;
    struct berth_jwt_keyset *ks;
    struct berth_jwt_claims c;
    char path[] = "/tmp/berth-test-bundle-XXXXXX", header[4096], claims[256], *tok, *b64der;
    unsigned char *der = NULL;
    int derlen;
    FILE *f;
    (void)state;

    assert_int_equal(berth_jwt_key_new(&k, pkey), 0);
    f = fdopen(mkstemp(path), "w");
    PEM_write_X509(f, cert);
    fclose(f);
    assert_int_equal(berth_jwt_keyset_new(&ks), 0);
    assert_int_equal(berth_jwt_keyset_load_certs(ks, path), 0);
    /* by kid (libtrust fingerprint of the certificate's key) */
    tok = sign_claims(k, time(NULL), 300);
    assert_int_equal(berth_jwt_verify(&c, ks, tok, strlen(tok), &opts), 0);
    berth_jwt_claims_dispose(&c);
    free(tok);

    /* by x5c (no kid): a chain whose root is in the bundle; signed by hand
     * because berth_jwt_sign always writes a kid header */
    derlen = i2d_X509(cert, &der);
    b64der = malloc((size_t)derlen * 2 + 4);
    EVP_EncodeBlock((unsigned char *)b64der, der, derlen);
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"x5c\":[\"%s\"]}", b64der);
    snprintf(claims, sizeof(claims), "{\"iss\":\"berth\",\"aud\":\"registry\",\"exp\":%lld}",
             (long long)time(NULL) + 300);
    {
        /* sign header.claims with pkey, raw r||s */
        char *h, *cl, *input, *s64;
        unsigned char sig[128], raw[64];
        size_t siglen = sizeof(sig);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        const unsigned char *p = sig;
        ECDSA_SIG *es;
        berth_b64url_encode(&h, (const uint8_t *)header, strlen(header));
        berth_b64url_encode(&cl, (const uint8_t *)claims, strlen(claims));
        input = malloc(strlen(h) + strlen(cl) + 2);
        sprintf(input, "%s.%s", h, cl);
        assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) > 0);
        assert_true(EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)) > 0);
        es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        berth_b64url_encode(&s64, raw, 64);
        tok = malloc(strlen(input) + strlen(s64) + 2);
        sprintf(tok, "%s.%s", input, s64);
        ECDSA_SIG_free(es);
        EVP_MD_CTX_free(md);
        free(h);
        free(cl);
        free(input);
        free(s64);
    }
    assert_int_equal(berth_jwt_verify(&c, ks, tok, strlen(tok), &opts), 0);
    assert_null(c.sub);
    berth_jwt_claims_dispose(&c);
    free(tok);
    /* the same x5c against a key set without roots is refused */
    {
        struct berth_jwt_keyset *empty;
        assert_int_equal(berth_jwt_keyset_new(&empty), 0);
        tok = forge(header, claims, "AAAA");
        expect_denied(empty, tok, &opts, "no rootcertbundle");
        free(tok);
        berth_jwt_keyset_free(empty);
    }
    OPENSSL_free(der);
    free(b64der);
    unlink(path);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    berth_jwt_key_free(k);
    berth_jwt_keyset_free(ks);
}

static void test_jwks(void **state)
{
    struct berth_jwt_key *ec = make_key("EC");
    EVP_PKEY *pkey = NULL;
    struct berth_jwt_keyset *ks;
    struct berth_jwt_claims c;
    BIGNUM *x = NULL, *y = NULL;
    uint8_t xb[32], yb[32];
    char *x64, *y64, json[1024], *tok, path[64];
    struct berth_jwt_key *loaded;
    (void)state;

    {
        /* a key whose public point we publish as a JWK */
        EVP_PKEY *gen = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        struct berth_jwt_key *k2;
        assert_int_equal(berth_jwt_key_new(&k2, gen), 0);
        tok = sign_claims(k2, time(NULL), 300);
        assert_true(EVP_PKEY_get_bn_param(gen, OSSL_PKEY_PARAM_EC_PUB_X, &x));
        assert_true(EVP_PKEY_get_bn_param(gen, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
        BN_bn2binpad(x, xb, 32);
        BN_bn2binpad(y, yb, 32);
        berth_b64url_encode(&x64, xb, 32);
        berth_b64url_encode(&y64, yb, 32);
        snprintf(json, sizeof(json),
                 "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},"
                 "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"sig\",\"kid\":\"%s\","
                 "\"x\":\"%s\",\"y\":\"%s\"}]}",
                 berth_jwt_key_kid(k2), x64, y64);
        pkey = gen;
        berth_jwt_key_free(k2);
    }
    assert_int_equal(berth_jwt_keyset_new(&ks), 0);
    assert_int_equal(berth_jwt_keyset_load_jwks(ks, (const uint8_t *)json, strlen(json)), 0);
    assert_int_equal(berth_jwt_verify(&c, ks, tok, strlen(tok), &opts), 0);
    berth_jwt_claims_dispose(&c);
    free(tok);
    /* a token of another key is refused */
    tok = sign_claims(ec, time(NULL), 300);
    expect_denied(ks, tok, &opts, "not trusted");
    free(tok);
    assert_int_equal(berth_jwt_keyset_load_jwks(ks, (const uint8_t *)"{\"keys\":[]}", 11),
                     BERTH_EINVALID);
    assert_int_equal(berth_jwt_keyset_load_jwks(ks, (const uint8_t *)"[[[[[[[[[[[[]]]]]]]]]]]]",
                                                24),
                     BERTH_EINVALID);

    /* key files: generated with 0600, loaded again */
    snprintf(path, sizeof(path), "/tmp/berth-test-gen-%d.pem", (int)getpid());
    unlink(path);
    assert_int_equal(berth_jwt_key_load(&loaded, path, 1), 0);
    assert_int_equal(berth_jwt_key_alg(loaded), BERTH_JWT_ES256);
    {
        struct berth_jwt_key *again;
        assert_int_equal(berth_jwt_key_load(&again, path, 1), 0);
        assert_string_equal(berth_jwt_key_kid(again), berth_jwt_key_kid(loaded));
        berth_jwt_key_free(again);
    }
    berth_jwt_key_free(loaded);
    unlink(path);
    assert_int_equal(berth_jwt_key_load(&loaded, path, 0), BERTH_ENOTFOUND);

    BN_free(x);
    BN_free(y);
    free(x64);
    free(y64);
    EVP_PKEY_free(pkey);
    berth_jwt_keyset_free(ks);
    berth_jwt_key_free(ec);
}

static void test_small_rsa_refused(void **state)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    struct berth_jwt_key *k;
    (void)state;
    assert_int_equal(berth_jwt_key_new(&k, pkey), BERTH_EUNSUPPORTED);
    assert_null(k);
    EVP_PKEY_free(pkey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_rs256),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_alg_none_and_hs256),
        cmocka_unit_test(test_rootcertbundle),
        cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_small_rsa_refused),
    };
    return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}

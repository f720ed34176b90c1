/*
 * Compact JWS for Docker tokens (see jwt.h). Signing input is
 * base64url(header) '.' base64url(claims); ES256 signatures travel as raw
 * r||s (64 bytes, RFC 7518 section 3.4) and are converted to and from
 * OpenSSL's DER form here. The key used to verify is never chosen by the
 * token's `alg` alone: it is found by x5c chain or kid, and its type must
 * match the algorithm, so an RSA public key can never verify an "HS256" or
 * an ES256 forgery.
 */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/error.h"

#define JSON_MAX_DEPTH 8
#define X5C_MAX 8
#define KID_LEN 59 /* 12 groups of 4 and 11 colons */

struct berth_jwt_key {
    EVP_PKEY *pkey;
    enum berth_jwt_alg alg;
    char kid[KID_LEN + 1];
};

struct trusted {
    EVP_PKEY *pkey;
    char *kid;
};

struct berth_jwt_keyset {
    struct trusted *keys;
    size_t nkeys, cap;
    X509_STORE *roots; /* NULL until a certificate is loaded */
};

/* ---- keys ---- */

static enum berth_jwt_alg alg_of_pkey(EVP_PKEY *pkey)
{
    char group[32];

    if (EVP_PKEY_is_a(pkey, "RSA"))
        return EVP_PKEY_get_bits(pkey) >= 2048 ? BERTH_JWT_RS256 : 0;
    if (EVP_PKEY_is_a(pkey, "EC") &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) &&
        (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")))
        return BERTH_JWT_ES256;
    return 0;
}

/* libtrust's key id: base32(sha256(DER SPKI)[:30]) in groups of four. */
static int libtrust_kid(char out[KID_LEN + 1], EVP_PKEY *pkey)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    char enc[48];
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0)
        return berth_error_set(BERTH_ERROR, "cannot encode public key");
    if (!EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL)) {
        OPENSSL_free(der);
        return berth_error_set(BERTH_ERROR, "sha256 failed");
    }
    OPENSSL_free(der);
    for (size_t i = 0, o = 0; i < 30; i += 5) {
        uint64_t v = 0;
        for (size_t j = 0; j < 5; j++)
            v = v << 8 | md[i + j];
        for (int j = 7; j >= 0; j--)
            enc[o++] = b32[(v >> (j * 5)) & 31];
    }
    for (size_t g = 0, o = 0; g < 12; g++) {
        if (g)
            out[o++] = ':';
        memcpy(out + o, enc + g * 4, 4);
        o += 4;
        out[o] = '\0';
    }
    return 0;
}

int berth_jwt_key_new(struct berth_jwt_key **out, void *evp_pkey)
{
    EVP_PKEY *pkey = evp_pkey;
    struct berth_jwt_key *k;
    enum berth_jwt_alg alg = alg_of_pkey(pkey);
    int error;

    *out = NULL;
    if (!alg)
        return berth_error_set(BERTH_EUNSUPPORTED,
                               "signing key must be EC P-256 or RSA of at least 2048 bits");
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    if ((error = libtrust_kid(k->kid, pkey)) < 0) {
        free(k);
        return error;
    }
    EVP_PKEY_up_ref(pkey);
    k->pkey = pkey;
    k->alg = alg;
    *out = k;
    return 0;
}

void berth_jwt_key_free(struct berth_jwt_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *berth_jwt_key_kid(const struct berth_jwt_key *k)
{
    return k->kid;
}

enum berth_jwt_alg berth_jwt_key_alg(const struct berth_jwt_key *k)
{
    return k->alg;
}

static int generate_key(const char *path)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *f = NULL;
    int fd = -1, error = 0;

    if (!pkey)
        return berth_error_set(BERTH_ERROR, "cannot generate a signing key");
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        if (errno == EEXIST) /* another process made it first: use theirs */
            goto done;
        error = berth_error_errno("cannot create signing key '%s'", path);
        goto done;
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        error = berth_error_errno("cannot create signing key '%s'", path);
        close(fd);
        goto done;
    }
    if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        error = berth_error_set(BERTH_ERROR, "cannot write signing key '%s'", path);
        unlink(path);
    }
done:
    if (f && fclose(f) != 0 && !error)
        error = berth_error_errno("cannot write signing key '%s'", path);
    EVP_PKEY_free(pkey);
    return error;
}

int berth_jwt_key_load(struct berth_jwt_key **out, const char *path, int generate)
{
    EVP_PKEY *pkey = NULL;
    FILE *f;
    int error;

    *out = NULL;
    if (generate && access(path, F_OK) != 0 && errno == ENOENT && (error = generate_key(path)) < 0)
        return error;
    if ((f = fopen(path, "r")) == NULL)
        return berth_error_errno("cannot open signing key '%s'", path);
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey)
        return berth_error_set(BERTH_EINVALID, "'%s' holds no PEM private key", path);
    error = berth_jwt_key_new(out, pkey);
    EVP_PKEY_free(pkey);
    return error;
}

/* ---- key sets ---- */

int berth_jwt_keyset_new(struct berth_jwt_keyset **out)
{
    if ((*out = calloc(1, sizeof(**out))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    return 0;
}

void berth_jwt_keyset_free(struct berth_jwt_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->nkeys; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].kid);
    }
    free(ks->keys);
    X509_STORE_free(ks->roots);
    free(ks);
}

static int trust(struct berth_jwt_keyset *ks, EVP_PKEY *pkey, const char *kid)
{
    char computed[KID_LEN + 1];
    struct trusted *t;
    int error;

    if (!kid) {
        if ((error = libtrust_kid(computed, pkey)) < 0)
            return error;
        kid = computed;
    }
    if (ks->nkeys == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        if ((t = realloc(ks->keys, cap * sizeof(*t))) == NULL)
            return berth_error_set(BERTH_ERROR, "out of memory");
        ks->keys = t;
        ks->cap = cap;
    }
    t = &ks->keys[ks->nkeys];
    if ((t->kid = strdup(kid)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    EVP_PKEY_up_ref(pkey);
    t->pkey = pkey;
    ks->nkeys++;
    return 0;
}

int berth_jwt_keyset_add_key(struct berth_jwt_keyset *ks, const struct berth_jwt_key *k)
{
    return trust(ks, k->pkey, k->kid);
}

int berth_jwt_keyset_load_certs(struct berth_jwt_keyset *ks, const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *cert;
    size_t n = 0;
    int error = 0;

    if (!f)
        return berth_error_errno("cannot open rootcertbundle '%s'", path);
    if (!ks->roots && (ks->roots = X509_STORE_new()) == NULL) {
        fclose(f);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    while ((cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        EVP_PKEY *pkey = X509_get0_pubkey(cert);
        if (!X509_STORE_add_cert(ks->roots, cert) || !pkey || (error = trust(ks, pkey, NULL)) < 0) {
            X509_free(cert);
            error = error ? error : berth_error_set(BERTH_ERROR, "cannot use a certificate "
                                                    "of '%s'", path);
            goto done;
        }
        X509_free(cert);
        n++;
    }
    if (!n)
        error = berth_error_set(BERTH_EINVALID, "'%s' holds no PEM certificate", path);
done:
    fclose(f);
    return error;
}

static json_t *json_parse_capped(const uint8_t *s, size_t len)
{
    int depth = 0, in_str = 0;

    /* jansson allows 2048 levels; our documents need a handful */
    for (size_t i = 0; i < len; i++) {
        if (in_str) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_str = 0;
        } else if (s[i] == '"') {
            in_str = 1;
        } else if (s[i] == '{' || s[i] == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return NULL;
        } else if (s[i] == '}' || s[i] == ']') {
            depth--;
        }
    }
    return json_loadb((const char *)s, len, JSON_REJECT_DUPLICATES, NULL);
}

static int b64url_field(uint8_t **out, size_t *outlen, json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (!s)
        return BERTH_EINVALID;
    return berth_b64url_decode(out, outlen, s, strlen(s));
}

static EVP_PKEY *jwk_pkey(json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t *a = NULL, *b = NULL, pub[65];
    size_t alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;

    if (!bld || !kty)
        goto done;
    if (!strcmp(kty, "EC")) {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        if (!crv || strcmp(crv, "P-256") || b64url_field(&a, &alen, jwk, "x") < 0 ||
            b64url_field(&b, &blen, jwk, "y") < 0 || alen != 32 || blen != 32)
            goto done;
        pub[0] = 4;
        memcpy(pub + 1, a, 32);
        memcpy(pub + 33, b, 32);
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else if (!strcmp(kty, "RSA")) {
        if (b64url_field(&a, &alen, jwk, "n") < 0 || b64url_field(&b, &blen, jwk, "e") < 0 ||
            !(n = BN_bin2bn(a, (int)alen, NULL)) || !(e = BN_bin2bn(b, (int)blen, NULL)) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            goto done;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else {
        goto done;
    }
    if (!ctx || !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    if (pkey && !alg_of_pkey(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    free(a);
    free(b);
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int berth_jwt_keyset_load_jwks(struct berth_jwt_keyset *ks, const uint8_t *json, size_t len)
{
    json_t *root = json_parse_capped(json, len), *keys, *jwk;
    size_t i, used = 0;
    int error = 0;

    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        error = berth_error_set(BERTH_EINVALID, "JWKS: expected an object with a \"keys\" array");
        goto done;
    }
    json_array_foreach(keys, i, jwk) {
        const char *use = json_string_value(json_object_get(jwk, "use"));
        EVP_PKEY *pkey;
        if (use && strcmp(use, "sig") != 0)
            continue;
        if ((pkey = jwk_pkey(jwk)) == NULL)
            continue;
        error = trust(ks, pkey, json_string_value(json_object_get(jwk, "kid")));
        EVP_PKEY_free(pkey);
        if (error < 0)
            goto done;
        used++;
    }
    if (!used)
        error = berth_error_set(BERTH_EINVALID, "JWKS: no usable EC P-256 or RSA signing key");
done:
    json_decref(root);
    return error;
}

int berth_jwt_keyset_load_jwks_file(struct berth_jwt_keyset *ks, const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t len;
    int error;

    if (!f)
        return berth_error_errno("cannot open JWKS '%s'", path);
    if ((buf = malloc(1024 * 1024 + 1)) == NULL) {
        fclose(f);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    len = fread(buf, 1, 1024 * 1024 + 1, f);
    if (ferror(f) || len > 1024 * 1024)
        error = berth_error_set(BERTH_EINVALID, "cannot read JWKS '%s' (at most 1 MiB)", path);
    else if ((error = berth_jwt_keyset_load_jwks(ks, buf, len)) < 0)
        error = berth_error_set(error, "'%s': %s", path, berth_error_msg());
    fclose(f);
    free(buf);
    return error;
}

/* ---- claims ---- */

void berth_jwt_claims_dispose(struct berth_jwt_claims *c)
{
    if (!c)
        return;
    free(c->iss);
    free(c->sub);
    free(c->aud);
    free(c->jti);
    free(c->bind);
    free(c->access);
    memset(c, 0, sizeof(*c));
}

static int set_opt_str(json_t *o, const char *key, const char *v)
{
    return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

static json_t *claims_json(const struct berth_jwt_claims *c)
{
    json_t *o = json_object(), *acc = json_array();
    int bad = !o || !acc;

    bad |= set_opt_str(o, "iss", c->iss) | set_opt_str(o, "sub", c->sub ? c->sub : "");
    bad |= set_opt_str(o, "aud", c->aud) | set_opt_str(o, "jti", c->jti);
    bad |= set_opt_str(o, "bnd", c->bind);
    bad |= json_object_set_new(o, "exp", json_integer(c->exp));
    bad |= json_object_set_new(o, "nbf", json_integer(c->nbf));
    bad |= json_object_set_new(o, "iat", json_integer(c->iat));
    for (size_t i = 0; !bad && i < c->naccess; i++) {
        const struct berth_scope *s = &c->access[i];
        json_t *e = json_object(), *acts = json_array();
        char type[80];
        bad |= !e || !acts;
        if (s->rclass[0])
            snprintf(type, sizeof(type), "%s(%s)", s->type, s->rclass);
        else
            snprintf(type, sizeof(type), "%s", s->type);
        if (s->actions == BERTH_ACT_CATALOG) {
            bad |= json_array_append_new(acts, json_string("*"));
        } else {
            static const char *const words[] = { "pull", "push", "delete" };
            for (size_t j = 0; j < 3; j++)
                if (s->actions & (1u << j))
                    bad |= json_array_append_new(acts, json_string(words[j]));
        }
        bad |= json_object_set_new(e, "type", json_string(type));
        bad |= json_object_set_new(e, "name", json_string(s->name));
        bad |= json_object_set_new(e, "actions", acts);
        bad |= json_array_append_new(acc, e);
    }
    bad |= json_object_set(o, "access", acc);
    json_decref(acc);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int b64_json(char **out, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int error;

    if (!s)
        return berth_error_set(BERTH_ERROR, "out of memory");
    error = berth_b64url_encode(out, (const uint8_t *)s, strlen(s));
    free(s);
    return error;
}

static int sign_raw(uint8_t sig[512], size_t *siglen, EVP_PKEY *pkey, enum berth_jwt_alg alg,
                    const char *input, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[600];
    size_t derlen = sizeof(der);
    ECDSA_SIG *es = NULL;
    const unsigned char *p = der;
    int error = 0;

    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) <= 0 ||
        EVP_DigestSign(md, der, &derlen, (const unsigned char *)input, len) <= 0) {
        error = berth_error_set(BERTH_ERROR, "signing failed");
        goto done;
    }
    if (alg == BERTH_JWT_RS256) {
        if (derlen > 512) {
            error = berth_error_set(BERTH_ERROR, "signature too long");
            goto done;
        }
        memcpy(sig, der, derlen);
        *siglen = derlen;
        goto done;
    }
    if ((es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL ||
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32) {
        error = berth_error_set(BERTH_ERROR, "signing failed");
        goto done;
    }
    *siglen = 64;
done:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return error;
}

int berth_jwt_sign(char **out, const struct berth_jwt_key *k, const char *typ,
                   const struct berth_jwt_claims *c)
{
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", k->alg == BERTH_JWT_ES256 ? "ES256" : "RS256",
                            "typ", typ ? typ : "JWT", "kid", k->kid);
    json_t *cl = claims_json(c);
    char *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL;
    uint8_t sig[512];
    size_t siglen = 0, ilen;
    int error;

    *out = NULL;
    if ((error = b64_json(&h64, hdr)) < 0 || (error = b64_json(&c64, cl)) < 0)
        goto done;
    ilen = strlen(h64) + 1 + strlen(c64);
    if ((input = malloc(ilen + 1)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    snprintf(input, ilen + 1, "%s.%s", h64, c64);
    if ((error = sign_raw(sig, &siglen, k->pkey, k->alg, input, ilen)) < 0 ||
        (error = berth_b64url_encode(&s64, sig, siglen)) < 0)
        goto done;
    if ((*out = malloc(ilen + 1 + strlen(s64) + 1)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    sprintf(*out, "%s.%s", input, s64);
done:
    json_decref(hdr);
    json_decref(cl);
    free(h64);
    free(c64);
    free(s64);
    free(input);
    return error;
}

/* ---- verification ---- */

static int deny(const char *why)
{
    return berth_error_set(BERTH_EDENIED, "token rejected: %s", why);
}

static int verify_raw(EVP_PKEY *pkey, enum berth_jwt_alg alg, const char *input, size_t len,
                      const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int derlen, ok = 0;

    if (!md)
        goto done;
    if (alg == BERTH_JWT_ES256) {
        if (siglen != 64 || !(es = ECDSA_SIG_new()) || !(r = BN_bin2bn(sig, 32, NULL)) ||
            !(s = BN_bin2bn(sig + 32, 32, NULL)) || !ECDSA_SIG_set0(es, r, s))
            goto done;
        r = s = NULL; /* owned by es now */
        if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
            goto done;
        sig = der;
        siglen = (size_t)derlen;
    }
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) > 0 &&
         EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, len) == 1;
done:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}

/* The x5c chain: base64 (standard, padded) DER certificates, leaf first. */
static int x5c_key(EVP_PKEY **out, const struct berth_jwt_keyset *ks, json_t *x5c)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_CTX *ctx = NULL;
    X509 *leaf = NULL;
    json_t *v;
    size_t i;
    int error = 0;

    if (!ks->roots) {
        error = deny("x5c given but no rootcertbundle is configured");
        goto done;
    }
    if (!chain || !json_is_array(x5c) || json_array_size(x5c) == 0 ||
        json_array_size(x5c) > X5C_MAX) {
        error = berth_error_set(BERTH_EINVALID, "token rejected: bad x5c header");
        goto done;
    }
    json_array_foreach(x5c, i, v) {
        const char *b64 = json_string_value(v);
        size_t blen = b64 ? strlen(b64) : 0;
        unsigned char *der = NULL;
        const unsigned char *p;
        X509 *cert = NULL;
        int n;
        if (!blen || blen > 8192 || blen % 4 || (der = malloc(blen / 4 * 3 + 1)) == NULL ||
            (n = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)blen)) <= 0) {
            free(der);
            error = berth_error_set(BERTH_EINVALID, "token rejected: bad x5c certificate");
            goto done;
        }
        n -= (b64[blen - 1] == '=') + (b64[blen - 2] == '=');
        p = der;
        cert = d2i_X509(NULL, &p, n);
        free(der);
        if (!cert) {
            error = berth_error_set(BERTH_EINVALID, "token rejected: bad x5c certificate");
            goto done;
        }
        if (i == 0) {
            leaf = cert;
        } else if (!sk_X509_push(chain, cert)) {
            X509_free(cert);
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
    }
    if (!(ctx = X509_STORE_CTX_new()) || !X509_STORE_CTX_init(ctx, ks->roots, leaf, chain) ||
        X509_verify_cert(ctx) != 1) {
        error = deny("x5c chain does not lead to a trusted root");
        goto done;
    }
    if ((*out = X509_get_pubkey(leaf)) == NULL)
        error = deny("x5c leaf has no usable key");
done:
    X509_STORE_CTX_free(ctx);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return error;
}

static char *dup_json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static int get_time(int64_t *out, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 9e15)
        *out = (int64_t)json_real_value(v);
    else
        return BERTH_EINVALID;
    return 0;
}

static int parse_access(struct berth_jwt_claims *c, json_t *acc)
{
    json_t *e;
    size_t i;

    if (!acc || json_is_null(acc))
        return 0;
    if (!json_is_array(acc) || json_array_size(acc) > BERTH_JWT_MAX_ACCESS)
        return berth_error_set(BERTH_EINVALID, "token rejected: bad access claim");
    if ((c->access = calloc(json_array_size(acc) + 1, sizeof(*c->access))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    json_array_foreach(acc, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *acts = json_object_get(e, "actions"), *a;
        char scope[BERTH_SCOPE_MAX + 1];
        size_t j;
        int len;
        if (!type || !name || (acts && !json_is_array(acts)))
            return berth_error_set(BERTH_EINVALID, "token rejected: bad access claim");
        /* rebuild "type:name:x" and parse it, so claims obey the scope rules */
        len = snprintf(scope, sizeof(scope), "%s:%s:x", type, name);
        if (len < 0 || (size_t)len >= sizeof(scope) ||
            berth_scope_parse(&c->access[c->naccess], scope, (size_t)len) < 0)
            return berth_error_set(BERTH_EINVALID, "token rejected: bad access claim");
        json_array_foreach(acts, j, a) {
            const char *w = json_string_value(a);
            unsigned bit = w ? berth_action_parse(w, strlen(w)) : 0;
            if (strcmp(c->access[c->naccess].type, "registry") != 0)
                bit &= ~(unsigned)BERTH_ACT_CATALOG;
            else
                bit &= BERTH_ACT_CATALOG;
            c->access[c->naccess].actions |= bit;
        }
        c->naccess++;
    }
    return 0;
}

static int aud_matches(char **out, json_t *aud, const char *want)
{
    json_t *v;
    size_t i;

    if (json_is_string(aud)) {
        if (strcmp(json_string_value(aud), want) != 0)
            return 0;
        *out = strdup(want);
        return 1;
    }
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), want)) {
            *out = strdup(want);
            return 1;
        }
    }
    return 0;
}

int berth_jwt_verify(struct berth_jwt_claims *out, const struct berth_jwt_keyset *ks,
                     const char *token, size_t len, const struct berth_jwt_verify_opts *o)
{
    struct berth_jwt_claims c = { 0 };
    const char *dot1, *dot2;
    uint8_t *hbuf = NULL, *cbuf = NULL, *sig = NULL;
    size_t hlen, clen, siglen;
    json_t *hdr = NULL, *cl = NULL, *x5c;
    EVP_PKEY *pkey = NULL;
    const char *alg_s, *typ, *kid, *iss;
    enum berth_jwt_alg alg;
    int64_t now = o->now ? o->now : (int64_t)time(NULL);
    int error = 0;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > BERTH_JWT_MAX)
        return berth_error_set(BERTH_EINVALID, "token rejected: empty or longer than %d bytes",
                               BERTH_JWT_MAX);
    if (!(dot1 = memchr(token, '.', len)) ||
        !(dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) || dot2 + 1 == token + len) {
        error = berth_error_set(BERTH_EINVALID, "token rejected: not a signed compact JWS");
        goto done;
    }
    if (berth_b64url_decode(&hbuf, &hlen, token, (size_t)(dot1 - token)) < 0 ||
        berth_b64url_decode(&cbuf, &clen, dot1 + 1, (size_t)(dot2 - dot1 - 1)) < 0 ||
        berth_b64url_decode(&sig, &siglen, dot2 + 1, len - (size_t)(dot2 + 1 - token)) < 0 ||
        !(hdr = json_parse_capped(hbuf, hlen)) || !json_is_object(hdr) ||
        !(cl = json_parse_capped(cbuf, clen)) || !json_is_object(cl)) {
        error = berth_error_set(BERTH_EINVALID, "token rejected: malformed header or claims");
        goto done;
    }
    alg_s = json_string_value(json_object_get(hdr, "alg"));
    if (alg_s && !strcmp(alg_s, "ES256"))
        alg = BERTH_JWT_ES256;
    else if (alg_s && !strcmp(alg_s, "RS256"))
        alg = BERTH_JWT_RS256;
    else {
        error = deny("algorithm not allowed (ES256 and RS256 only)");
        goto done;
    }
    if (json_object_get(hdr, "crit")) {
        error = deny("unsupported critical header");
        goto done;
    }
    typ = json_string_value(json_object_get(hdr, "typ"));
    if (o->typ && (!typ || strcmp(typ, o->typ) != 0)) {
        error = deny("wrong token type");
        goto done;
    }
    /* the key: by x5c chain, else by kid */
    if ((x5c = json_object_get(hdr, "x5c")) != NULL) {
        if ((error = x5c_key(&pkey, ks, x5c)) < 0)
            goto done;
    } else if ((kid = json_string_value(json_object_get(hdr, "kid"))) != NULL) {
        for (size_t i = 0; i < ks->nkeys && !pkey; i++)
            if (!strcmp(ks->keys[i].kid, kid) && alg_of_pkey(ks->keys[i].pkey) == alg) {
                pkey = ks->keys[i].pkey;
                EVP_PKEY_up_ref(pkey);
            }
        if (!pkey) {
            error = deny("signing key is not trusted");
            goto done;
        }
    } else {
        error = deny("token names no key (kid or x5c)");
        goto done;
    }
    if (alg_of_pkey(pkey) != alg) {
        error = deny("key type does not match the algorithm");
        goto done;
    }
    if (!verify_raw(pkey, alg, token, (size_t)(dot2 - token), sig, siglen)) {
        error = deny("bad signature");
        goto done;
    }
    /* claims */
    if (get_time(&c.exp, cl, "exp") < 0 || get_time(&c.nbf, cl, "nbf") < 0 ||
        get_time(&c.iat, cl, "iat") < 0) {
        error = berth_error_set(BERTH_EINVALID, "token rejected: bad time claim");
        goto done;
    }
    iss = json_string_value(json_object_get(cl, "iss"));
    if (o->issuer && (!iss || strcmp(iss, o->issuer) != 0)) {
        error = deny("wrong issuer");
        goto done;
    }
    if (o->audience && !aud_matches(&c.aud, json_object_get(cl, "aud"), o->audience)) {
        error = deny("wrong audience");
        goto done;
    }
    if (!c.exp || now > c.exp + BERTH_JWT_SKEW) {
        error = deny("expired");
        goto done;
    }
    if (c.nbf && now + BERTH_JWT_SKEW < c.nbf) {
        error = deny("not valid yet");
        goto done;
    }
    c.iss = iss ? strdup(iss) : NULL;
    c.sub = dup_json_str(cl, "sub");
    c.jti = dup_json_str(cl, "jti");
    c.bind = dup_json_str(cl, "bnd");
    if ((error = parse_access(&c, json_object_get(cl, "access"))) < 0)
        goto done;
    *out = c;
    memset(&c, 0, sizeof(c));
done:
    berth_jwt_claims_dispose(&c);
    EVP_PKEY_free(pkey);
    json_decref(hdr);
    json_decref(cl);
    free(hbuf);
    free(cbuf);
    free(sig);
    return error;
}

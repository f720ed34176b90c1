/*
 * Self-signed HTTPS for a quick start: an EC P-256 CA (10 years) signs an EC
 * P-256 server certificate (10 years, serverAuth) whose subjectAltName lists
 * the host names and IP addresses given. Files are written to temporary
 * names and renamed, the key created 0600; once all three exist they are
 * reused, so a client that trusted ca.crt keeps trusting the registry.
 */
#include "selfsign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/error.h"

#define VALID_DAYS (10 * 365 + 3)
#define HOSTS_MAX 32

static int exists(const char *dir, const char *name)
{
    char p[4096];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, R_OK) == 0;
}

/* Random positive 127-bit serial. */
static int set_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return 0;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    if (!(bn = BN_bin2bn(b, sizeof(b), NULL)))
        return 0;
    ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* An unsigned certificate for `key` named `cn`, issued by `issuer` (NULL:
 * self-issued). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (!x || !X509_set_version(x, 2) || !set_serial(x) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)VALID_DAYS * 86400) ||
        !X509_set_pubkey(x, key) || !(name = X509_get_subject_name(x)) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"berth",
                                    -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                    -1, 0) ||
        !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name)) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int is_ip(const char *h)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(h);

    if (!ip)
        return 0;
    ASN1_OCTET_STRING_free(ip);
    return 1;
}

/* "a,b,1.2.3.4" → "DNS:a,DNS:b,IP:1.2.3.4" and the first name (for CN). */
static int san_list(const char *hosts, char *san, size_t san_size, char *first,
                    size_t first_size)
{
    const char *p = hosts;
    size_t len = 0;
    int n = 0;

    san[0] = first[0] = '\0';
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t hl = end ? (size_t)(end - p) : strlen(p);
        char h[256];
        int w;

        if (hl == 0 || hl >= sizeof(h) || ++n > HOSTS_MAX)
            return berth_error_set(BERTH_EINVALID, "--tls-self-signed: bad host list '%s'",
                                   hosts);
        memcpy(h, p, hl);
        h[hl] = '\0';
        if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:*") != hl)
            return berth_error_set(BERTH_EINVALID, "--tls-self-signed: bad host name '%s'", h);
        w = snprintf(san + len, san_size - len, "%s%s:%s", len ? "," : "",
                     is_ip(h) ? "IP" : "DNS", h);
        if (w < 0 || (size_t)w >= san_size - len)
            return berth_error_set(BERTH_EINVALID, "--tls-self-signed: host list too long");
        len += (size_t)w;
        if (!first[0])
            snprintf(first, first_size, "%s", h);
        p = end ? end + 1 : NULL;
    }
    if (!n)
        return berth_error_set(BERTH_EINVALID, "--tls-self-signed: no host name given");
    return 0;
}

/* Write certificate `x` (or, when NULL, private key `k`) as PEM to
 * dir/name.tmp with `mode`; commit() renames it into place. */
static int write_pem(const char *dir, const char *name, mode_t mode, X509 *x, EVP_PKEY *k)
{
    char p[4096];
    FILE *f;
    int fd, ok;

    snprintf(p, sizeof(p), "%s/%s.tmp", dir, name);
    unlink(p);
    if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)
        return berth_error_errno("cannot create '%s'", p);
    if (!(f = fdopen(fd, "w"))) {
        close(fd);
        return berth_error_errno("cannot write '%s'", p);
    }
    ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return berth_error_set(BERTH_ERROR, "cannot write '%s'", p);
    return 0;
}

static int commit(const char *dir, const char *name)
{
    char from[4096], to[4096];

    snprintf(from, sizeof(from), "%s/%s.tmp", dir, name);
    snprintf(to, sizeof(to), "%s/%s", dir, name);
    if (rename(from, to) < 0)
        return berth_error_errno("cannot rename '%s'", from);
    return 0;
}

int berth_selfsign_ensure(const char *dir, const char *hosts, int *created)
{
    char san[4096], first[256], cn[300];
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *crt = NULL;
    int err;

    *created = 0;
    if ((err = san_list(hosts, san, sizeof(san), first, sizeof(first))) < 0)
        return err;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return berth_error_errno("cannot create '%s'", dir);
    if (exists(dir, BERTH_SELFSIGN_CA) && exists(dir, BERTH_SELFSIGN_CERT) &&
        exists(dir, BERTH_SELFSIGN_KEY))
        return 0;

    err = berth_error_set(BERTH_ERROR, "cannot generate the self-signed certificates");
    snprintf(cn, sizeof(cn), "berth CA %s", first);
    if (!(cakey = EVP_EC_gen("P-256")) || !(key = EVP_EC_gen("P-256")))
        goto done;
    if (!(ca = make_cert(cakey, cn, NULL)) ||
        !add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(ca, ca, NID_subject_key_identifier, "hash") ||
        !X509_sign(ca, cakey, EVP_sha256()))
        goto done;
    if (!(crt = make_cert(key, first, ca)) ||
        !add_ext(crt, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(crt, ca, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(crt, ca, NID_ext_key_usage, "serverAuth") ||
        !add_ext(crt, ca, NID_subject_key_identifier, "hash") ||
        !add_ext(crt, ca, NID_authority_key_identifier, "keyid:always") ||
        !add_ext(crt, ca, NID_subject_alt_name, san) ||
        !X509_sign(crt, cakey, EVP_sha256()))
        goto done;
    /* The CA key is not kept: nothing else is ever signed with it. */
    if ((err = write_pem(dir, BERTH_SELFSIGN_KEY, 0600, NULL, key)) < 0 ||
        (err = write_pem(dir, BERTH_SELFSIGN_CERT, 0644, crt, NULL)) < 0 ||
        (err = write_pem(dir, BERTH_SELFSIGN_CA, 0644, ca, NULL)) < 0 ||
        (err = commit(dir, BERTH_SELFSIGN_KEY)) < 0 ||
        (err = commit(dir, BERTH_SELFSIGN_CERT)) < 0 || (err = commit(dir, BERTH_SELFSIGN_CA)) < 0)
        goto done;
    *created = 1;
    err = 0;
done:
    X509_free(ca);
    X509_free(crt);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return err;
}

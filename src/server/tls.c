/*
 * HTTPS state of `berth serve`: one GnuTLS credentials object and priority
 * cache shared by every session http.c opens. The certificate chain and key
 * are handed to GnuTLS per handshake by a certificate callback, from the "current"
 * generation; SIGHUP loads a new generation and swaps the pointer under a
 * lock. GnuTLS keeps using the pcerts and key it was given for the rest of a
 * handshake, so retired generations are kept (a few KB each) until the
 * server stops instead of being freed under a live session.
 */
#include "tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define CHAIN_MAX 16
#define PEM_MAX (1024 * 1024)

struct tls_gen {
    gnutls_pcert_st pcerts[CHAIN_MAX];
    unsigned npcerts;
    gnutls_privkey_t key;
    struct tls_gen *older;
};

struct berth_tls {
    char *cert_path, *key_path;
    char *trust;       /* joined client CA PEM, NULL without mTLS */
    const char *prio;
    gnutls_certificate_credentials_t creds;
    gnutls_priority_t prio_cache;
    pthread_mutex_t lock;
    struct tls_gen *cur; /* under lock; older generations hang off it */
};

/* The GnuTLS callback has no context pointer: the one TLS server. */
static struct berth_tls *active;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;

static int read_pem(const char *path, const char *what, gnutls_datum_t *out)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, len = 0, n;
    unsigned char *p = NULL, *q;

    if (!f)
        return berth_error_set(BERTH_EINVALID, "TLS %s '%s': %s", what, path, strerror(errno));
    for (;;) {
        if (!(q = realloc(p, cap + 1))) {
            free(p);
            fclose(f);
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
        p = q;
        n = fread(p + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        if (cap >= PEM_MAX) {
            free(p);
            fclose(f);
            return berth_error_set(BERTH_EINVALID, "TLS %s '%s': larger than 1 MiB", what,
                                   path);
        }
        cap *= 2;
    }
    if (ferror(f)) {
        free(p);
        fclose(f);
        return berth_error_set(BERTH_EINVALID, "TLS %s '%s': read error", what, path);
    }
    fclose(f);
    p[len] = '\0';
    out->data = p;
    out->size = (unsigned)len;
    return 0;
}

static void gen_free(struct tls_gen *g)
{
    while (g) {
        struct tls_gen *older = g->older;
        for (unsigned i = 0; i < g->npcerts; i++)
            gnutls_pcert_deinit(&g->pcerts[i]);
        if (g->key)
            gnutls_privkey_deinit(g->key);
        free(g);
        g = older;
    }
}

/* Parse the chain and key; a credentials object is built once only to have
 * GnuTLS check that the key belongs to the certificate. */
static int gen_load(struct tls_gen **out, const char *cert_path, const char *key_path)
{
    gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
    gnutls_certificate_credentials_t check = NULL;
    struct tls_gen *g = NULL;
    int rc, err;

    *out = NULL;
    if ((err = read_pem(cert_path, "certificate", &cert)) < 0 ||
        (err = read_pem(key_path, "key", &key)) < 0)
        goto done;
    err = berth_error_set(BERTH_ERROR, "out of memory");
    if (!(g = calloc(1, sizeof(*g))))
        goto done;
    g->npcerts = CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(g->pcerts, &g->npcerts, &cert, GNUTLS_X509_FMT_PEM,
                                           0);
    if (rc < 0) {
        g->npcerts = 0;
        err = berth_error_set(BERTH_EINVALID, "TLS certificate '%s': %s", cert_path,
                              gnutls_strerror(rc));
        goto done;
    }
    if ((rc = gnutls_privkey_init(&g->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(g->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        err = berth_error_set(BERTH_EINVALID, "TLS key '%s': %s", key_path, gnutls_strerror(rc));
        goto done;
    }
    if ((rc = gnutls_certificate_allocate_credentials(&check)) < 0 ||
        (rc = gnutls_certificate_set_x509_key_mem2(check, &cert, &key, GNUTLS_X509_FMT_PEM,
                                                   NULL, 0)) < 0) {
        err = berth_error_set(BERTH_EINVALID, "TLS certificate '%s' and key '%s': %s",
                              cert_path, key_path, gnutls_strerror(rc));
        goto done;
    }
    *out = g;
    g = NULL;
    err = 0;
done:
    if (check)
        gnutls_certificate_free_credentials(check);
    gen_free(g);
    if (key.data) {
        memset(key.data, 0, key.size);
        free(key.data);
    }
    free(cert.data);
    return err;
}

/* gnutls_certificate_retrieve_function2: the current pair for every
 * handshake (SNI is not used: one certificate). */
static int cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                   const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                   gnutls_pcert_st **pcert, unsigned int *pcert_length,
                   gnutls_privkey_t *privkey)
{
    struct tls_gen *g = NULL;

    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    pthread_mutex_lock(&active_lock);
    if (active) {
        pthread_mutex_lock(&active->lock);
        g = active->cur;
        pthread_mutex_unlock(&active->lock);
    }
    pthread_mutex_unlock(&active_lock);
    if (!g)
        return -1;
    *pcert = g->pcerts;
    *pcert_length = g->npcerts;
    *privkey = g->key;
    return 0;
}

/* The shared credentials (certificate through cert_cb, client CAs) and
 * the priority cache. */
static int creds_init(struct berth_tls *t)
{
    gnutls_datum_t d;
    int rc;

    if ((rc = gnutls_certificate_allocate_credentials(&t->creds)) < 0) {
        t->creds = NULL;
        return berth_error_set(BERTH_ERROR, "TLS credentials: %s", gnutls_strerror(rc));
    }
    gnutls_certificate_set_retrieve_function2(t->creds, cert_cb);
    if (t->trust) {
        d.data = (unsigned char *)t->trust;
        d.size = (unsigned)strlen(t->trust);
        if ((rc = gnutls_certificate_set_x509_trust_mem(t->creds, &d, GNUTLS_X509_FMT_PEM)) < 0)
            return berth_error_set(BERTH_EINVALID, "TLS client CAs: %s", gnutls_strerror(rc));
    }
    if ((rc = gnutls_priority_init(&t->prio_cache, t->prio, NULL)) < 0) {
        t->prio_cache = NULL;
        return berth_error_set(BERTH_ERROR, "TLS priorities: %s", gnutls_strerror(rc));
    }
    return 0;
}

int berth_tls_session_new(struct berth_tls *t, int fd, void **out)
{
    gnutls_session_t s;

    *out = NULL;
    if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
        return -1;
    if (gnutls_priority_set(s, t->prio_cache) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->creds) < 0) {
        gnutls_deinit(s);
        return -1;
    }
    if (t->trust)
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
    gnutls_transport_set_int(s, fd);
    *out = s;
    return 0;
}

static int join_cas(struct berth_tls *t, char *const *cas, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        gnutls_datum_t d;
        char *p;
        int err;

        if ((err = read_pem(cas[i], "client CA", &d)) < 0)
            return err;
        if (!strstr((const char *)d.data, "-----BEGIN CERTIFICATE-----")) {
            free(d.data);
            return berth_error_set(BERTH_EINVALID, "TLS client CA '%s': no PEM certificate",
                                   cas[i]);
        }
        if (!(p = realloc(t->trust, len + d.size + 2))) {
            free(d.data);
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
        t->trust = p;
        memcpy(p + len, d.data, d.size);
        len += d.size;
        if (len && p[len - 1] != '\n')
            p[len++] = '\n';
        p[len] = '\0';
        free(d.data);
    }
    return 0;
}

int berth_tls_new(struct berth_tls **out, const char *certificate, const char *key,
                  char *const *clientcas, size_t nclientcas, int minimum)
{
    struct berth_tls *t;
    int err;

    *out = NULL;
    if (!certificate || !key)
        return berth_error_set(BERTH_EINVALID, "TLS needs both http.tls.certificate and "
                                               "http.tls.key");
    if (!(t = calloc(1, sizeof(*t))))
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->prio = minimum >= 13 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                            : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    if (!(t->cert_path = strdup(certificate)) || !(t->key_path = strdup(key))) {
        err = berth_error_set(BERTH_ERROR, "out of memory");
        goto fail;
    }
    if ((err = join_cas(t, clientcas, nclientcas)) < 0 ||
        (err = gen_load(&t->cur, t->cert_path, t->key_path)) < 0 || (err = creds_init(t)) < 0)
        goto fail;
    pthread_mutex_lock(&active_lock);
    if (active) {
        pthread_mutex_unlock(&active_lock);
        err = berth_error_set(BERTH_ERROR, "only one TLS server per process");
        goto fail;
    }
    active = t;
    pthread_mutex_unlock(&active_lock);
    *out = t;
    return 0;
fail:
    berth_tls_free(t);
    return err;
}

int berth_tls_reload(struct berth_tls *t)
{
    struct tls_gen *g;
    int err;

    if ((err = gen_load(&g, t->cert_path, t->key_path)) < 0)
        return err;
    pthread_mutex_lock(&t->lock);
    g->older = t->cur;
    t->cur = g;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void berth_tls_free(struct berth_tls *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&active_lock);
    if (active == t)
        active = NULL;
    pthread_mutex_unlock(&active_lock);
    if (t->creds)
        gnutls_certificate_free_credentials(t->creds);
    if (t->prio_cache)
        gnutls_priority_deinit(t->prio_cache);
    gen_free(t->cur);
    pthread_mutex_destroy(&t->lock);
    free(t->cert_path);
    free(t->key_path);
    free(t->trust);
    free(t);
}

int berth_tls_handshake(void *session, const char **why)
{
    int rc;

    *why = NULL;
    do
        rc = gnutls_handshake((gnutls_session_t)session);
    while (rc == GNUTLS_E_INTERRUPTED);
    if (rc == GNUTLS_E_AGAIN)
        return gnutls_record_get_direction((gnutls_session_t)session) ? BERTH_TLS_WANT_WRITE
                                                                       : BERTH_TLS_WANT_READ;
    if (rc < 0) {
        *why = gnutls_strerror(rc);
        return BERTH_TLS_FAILED;
    }
    return BERTH_TLS_DONE;
}

ssize_t berth_tls_recv(void *session, void *p, size_t n)
{
    ssize_t r;

    do
        r = gnutls_record_recv((gnutls_session_t)session, p, n);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r >= 0)
        return r;
    if (r == GNUTLS_E_AGAIN)
        return -1;
    if (r == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
    return -2;
}

ssize_t berth_tls_send(void *session, const void *p, size_t n)
{
    ssize_t r;

    do
        r = gnutls_record_send((gnutls_session_t)session, p, n);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r >= 0)
        return r;
    return r == GNUTLS_E_AGAIN ? -1 : -2;
}

size_t berth_tls_pending(void *session)
{
    return gnutls_record_check_pending((gnutls_session_t)session);
}

void berth_tls_bye(void *session)
{
    gnutls_bye((gnutls_session_t)session, GNUTLS_SHUT_WR);
}

void berth_tls_session_free(void *session)
{
    if (session)
        gnutls_deinit((gnutls_session_t)session);
}

int berth_tls_client_ok(const struct berth_tls *t, void *session, const char **why)
{
    unsigned status = 0;
    int rc;

    *why = NULL;
    if (!t->trust)
        return 1;
    if (!session) {
        *why = "no TLS session";
        return 0;
    }
    rc = gnutls_certificate_verify_peers2((gnutls_session_t)session, &status);
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND) {
        *why = "client certificate required";
        return 0;
    }
    if (rc < 0 || status) {
        *why = "client certificate not trusted";
        return 0;
    }
    return 1;
}

/*
 * The executable's side of berth-tls.so: it loads the module (src/plugin.c
 * finds and dlopen()s it) and implements the APIs of server/tls.h,
 * server/jwt.h and server/selfsign.h by forwarding every call through the
 * module's ops table, so that http.c, authn.c, tokensrv.c and cmd_serve.c
 * call them as they would the real functions. A failed call's error lives
 * in the module's own thread-local error object (its copy of src/core); it
 * is copied into ours on the same thread before returning.
 *
 * Only the executable links this file; lib.a (unit tests, fuzz replays)
 * holds the real tls.c, jwt.c and selfsign.c instead.
 */
#include "tlsmod.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/error.h"
#include "plugin.h"
#include "server/selfsign.h"

/* Set once by berth_tls_module_load, at start on the main thread (before the
 * server threads), then only read. */
static const struct berth_tls_module *mod;

int berth_tls_module_load(void)
{
    const struct berth_tls_module *m;
    void *h, *sym;

    if (mod)
        return 0;
    if (!(h = berth_plugin_open(BERTH_TLS_MODULE, "HTTPS and token authentication")))
        return -1;
    if (!(sym = dlsym(h, BERTH_TLS_MODULE_SYMBOL))) {
        fprintf(stderr, "berth: %s has no %s: install berth and it from the same build\n",
                BERTH_TLS_MODULE, BERTH_TLS_MODULE_SYMBOL);
        return -1;
    }
    m = sym;
    if (m->size != sizeof(*m) || !m->version || strcmp(m->version, BERTH_VERSION) != 0) {
        fprintf(stderr, "berth: %s is version %s, this berth is %s: install both "
                        "from the same build\n", BERTH_TLS_MODULE,
                m->version ? m->version : "(unknown)", BERTH_VERSION);
        return -1;
    }
    mod = m;
    return 0;
}

/* The module for a start-up call, loading it if nobody did; NULL with the
 * error set when it cannot be loaded (the reason went to stderr). */
static const struct berth_tls_module *get(void)
{
    if (!mod && berth_tls_module_load() < 0)
        berth_error_set(BERTH_ERROR, "%s is not available", BERTH_TLS_MODULE);
    return mod;
}

/* A failed module call's error, made ours. */
static int fwd(int rc)
{
    if (rc < 0)
        berth_error_set_oci(mod->error_code(), mod->error_oci(), "%s", mod->error_msg());
    return rc;
}

#define CALL(expr) (get() ? fwd(mod->expr) : BERTH_ERROR)

/* ---- server/tls.h ---- */

int berth_tls_new(struct berth_tls **out, const char *certificate, const char *key,
                  char *const *clientcas, size_t nclientcas, int minimum)
{
    *out = NULL;
    return CALL(tls_new(out, certificate, key, clientcas, nclientcas, minimum));
}

int berth_tls_reload(struct berth_tls *t)
{
    return fwd(mod->tls_reload(t));
}

void berth_tls_free(struct berth_tls *t)
{
    if (t)
        mod->tls_free(t);
}

/* The per-connection calls: a session exists only after berth_tls_new
 * loaded the module. */
int berth_tls_session_new(struct berth_tls *t, int fd, void **session)
{
    return mod->tls_session_new(t, fd, session);
}

int berth_tls_client_ok(const struct berth_tls *t, void *session, const char **why)
{
    return mod->tls_client_ok(t, session, why);
}

int berth_tls_handshake(void *session, const char **why)
{
    return mod->tls_handshake(session, why);
}

ssize_t berth_tls_recv(void *session, void *p, size_t n)
{
    return mod->tls_recv(session, p, n);
}

ssize_t berth_tls_send(void *session, const void *p, size_t n)
{
    return mod->tls_send(session, p, n);
}

size_t berth_tls_pending(void *session)
{
    return mod->tls_pending(session);
}

void berth_tls_bye(void *session)
{
    mod->tls_bye(session);
}

void berth_tls_session_free(void *session)
{
    if (session)
        mod->tls_session_free(session);
}

/* ---- server/selfsign.h ---- */

int berth_selfsign_ensure(const char *dir, const char *hosts, int *created)
{
    return CALL(selfsign_ensure(dir, hosts, created));
}

/* ---- server/jwt.h ---- */

int berth_jwt_key_load(struct berth_jwt_key **out, const char *path, int generate)
{
    *out = NULL;
    return CALL(jwt_key_load(out, path, generate));
}

void berth_jwt_key_free(struct berth_jwt_key *k)
{
    if (k)
        mod->jwt_key_free(k);
}

const char *berth_jwt_key_kid(const struct berth_jwt_key *k)
{
    return mod->jwt_key_kid(k);
}

enum berth_jwt_alg berth_jwt_key_alg(const struct berth_jwt_key *k)
{
    return mod->jwt_key_alg(k);
}

int berth_jwt_keyset_new(struct berth_jwt_keyset **out)
{
    *out = NULL;
    return CALL(jwt_keyset_new(out));
}

void berth_jwt_keyset_free(struct berth_jwt_keyset *ks)
{
    if (ks)
        mod->jwt_keyset_free(ks);
}

int berth_jwt_keyset_add_key(struct berth_jwt_keyset *ks, const struct berth_jwt_key *k)
{
    return fwd(mod->jwt_keyset_add_key(ks, k));
}

int berth_jwt_keyset_load_certs(struct berth_jwt_keyset *ks, const char *path)
{
    return fwd(mod->jwt_keyset_load_certs(ks, path));
}

int berth_jwt_keyset_load_jwks(struct berth_jwt_keyset *ks, const uint8_t *json, size_t len)
{
    return fwd(mod->jwt_keyset_load_jwks(ks, json, len));
}

int berth_jwt_keyset_load_jwks_file(struct berth_jwt_keyset *ks, const char *path)
{
    return fwd(mod->jwt_keyset_load_jwks_file(ks, path));
}

/* Claims are disposed by the module that filled them; a zeroed struct
 * (nothing filled: the module may never have been loaded) owns nothing. */
void berth_jwt_claims_dispose(struct berth_jwt_claims *c)
{
    if (mod)
        mod->jwt_claims_dispose(c);
}

int berth_jwt_sign(char **out, const struct berth_jwt_key *k, const char *typ,
                   const struct berth_jwt_claims *c)
{
    return fwd(mod->jwt_sign(out, k, typ, c));
}

int berth_jwt_verify(struct berth_jwt_claims *out, const struct berth_jwt_keyset *ks,
                     const char *token, size_t len, const struct berth_jwt_verify_opts *o)
{
    return fwd(mod->jwt_verify(out, ks, token, len, o));
}

/*
 * The TLS module, berth-tls.so: HTTPS (GnuTLS: tls.c, selfsign.c) and JSON
 * Web Tokens (libcrypto: jwt.c) for `berth serve`, loaded only when the
 * configuration needs one of them (docs/internals.md, "Shape"). Its one
 * export is the versioned ops table below. In the executable, the APIs of
 * server/tls.h, server/jwt.h and server/selfsign.h are implemented by
 * host.c, which forwards every call through the table; unit tests and fuzz
 * replays link the real tls.c, jwt.c and selfsign.c from lib.a instead.
 */
#ifndef BERTH_TLSMOD_H
#define BERTH_TLSMOD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/oci.h"
#include "server/jwt.h"
#include "server/tls.h"

#define BERTH_TLS_MODULE "berth-tls.so"
/* The exported table; a new ABI (a field changed or removed) takes a new
 * name, and `version` must equal the executable's BERTH_VERSION. */
#define BERTH_TLS_MODULE_SYMBOL "berth_tls_module_v1"

struct berth_tls_module {
    const char *version; /* BERTH_VERSION of the build */
    size_t size;         /* sizeof(struct berth_tls_module) */

    /* The module's own thread-local error (it has its own copy of
     * src/core): read by host.c on the same thread after a failed call. */
    int (*error_code)(void);
    enum berth_oci_code (*error_oci)(void);
    const char *(*error_msg)(void);

    /* server/tls.h */
    int (*tls_new)(struct berth_tls **out, const char *certificate, const char *key,
                   char *const *clientcas, size_t nclientcas, int minimum);
    int (*tls_reload)(struct berth_tls *t);
    void (*tls_free)(struct berth_tls *t);
    int (*tls_session_new)(struct berth_tls *t, int fd, void **session);
    int (*tls_client_ok)(const struct berth_tls *t, void *session, const char **why);
    int (*tls_handshake)(void *session, const char **why);
    ssize_t (*tls_recv)(void *session, void *p, size_t n);
    ssize_t (*tls_send)(void *session, const void *p, size_t n);
    size_t (*tls_pending)(void *session);
    void (*tls_bye)(void *session);
    void (*tls_session_free)(void *session);

    /* server/selfsign.h */
    int (*selfsign_ensure)(const char *dir, const char *hosts, int *created);

    /* server/jwt.h (all but berth_jwt_key_new, which takes an OpenSSL key) */
    int (*jwt_key_load)(struct berth_jwt_key **out, const char *path, int generate);
    void (*jwt_key_free)(struct berth_jwt_key *k);
    const char *(*jwt_key_kid)(const struct berth_jwt_key *k);
    enum berth_jwt_alg (*jwt_key_alg)(const struct berth_jwt_key *k);
    int (*jwt_keyset_new)(struct berth_jwt_keyset **out);
    void (*jwt_keyset_free)(struct berth_jwt_keyset *ks);
    int (*jwt_keyset_add_key)(struct berth_jwt_keyset *ks, const struct berth_jwt_key *k);
    int (*jwt_keyset_load_certs)(struct berth_jwt_keyset *ks, const char *path);
    int (*jwt_keyset_load_jwks)(struct berth_jwt_keyset *ks, const uint8_t *json, size_t len);
    int (*jwt_keyset_load_jwks_file)(struct berth_jwt_keyset *ks, const char *path);
    void (*jwt_claims_dispose)(struct berth_jwt_claims *c);
    int (*jwt_sign)(char **out, const struct berth_jwt_key *k, const char *typ,
                    const struct berth_jwt_claims *c);
    int (*jwt_verify)(struct berth_jwt_claims *out, const struct berth_jwt_keyset *ks,
                      const char *token, size_t len, const struct berth_jwt_verify_opts *o);
};

/* Module side (module.c). */
extern const struct berth_tls_module berth_tls_module_v1;

/* Executable side (host.c): load the module now, once; later calls return
 * at once. 0, or -1 after one line on stderr (missing, unloadable, stale).
 * cmd_serve calls it at start when the configuration needs TLS or tokens;
 * the forwarding functions load it on first use otherwise (start-up paths
 * only: a session call is reached only after berth_tls_new). */
int berth_tls_module_load(void);

#endif

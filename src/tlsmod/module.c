/*
 * berth-tls.so's one export (src/tlsmod.ver): the ops table over the real
 * tls.c, selfsign.c and jwt.c linked into the module with their own copy of
 * the core pieces they use (error, oci, name, policy's scope parser).
 */
#include "tlsmod.h"

#include "commands.h"
#include "core/error.h"
#include "server/selfsign.h"

const struct berth_tls_module berth_tls_module_v1 = {
    .version = BERTH_VERSION,
    .size = sizeof(struct berth_tls_module),
    .error_code = berth_error_code,
    .error_oci = berth_error_oci,
    .error_msg = berth_error_msg,
    .tls_new = berth_tls_new,
    .tls_reload = berth_tls_reload,
    .tls_free = berth_tls_free,
    .tls_session_new = berth_tls_session_new,
    .tls_client_ok = berth_tls_client_ok,
    .tls_handshake = berth_tls_handshake,
    .tls_recv = berth_tls_recv,
    .tls_send = berth_tls_send,
    .tls_pending = berth_tls_pending,
    .tls_bye = berth_tls_bye,
    .tls_session_free = berth_tls_session_free,
    .selfsign_ensure = berth_selfsign_ensure,
    .jwt_key_load = berth_jwt_key_load,
    .jwt_key_free = berth_jwt_key_free,
    .jwt_key_kid = berth_jwt_key_kid,
    .jwt_key_alg = berth_jwt_key_alg,
    .jwt_keyset_new = berth_jwt_keyset_new,
    .jwt_keyset_free = berth_jwt_keyset_free,
    .jwt_keyset_add_key = berth_jwt_keyset_add_key,
    .jwt_keyset_load_certs = berth_jwt_keyset_load_certs,
    .jwt_keyset_load_jwks = berth_jwt_keyset_load_jwks,
    .jwt_keyset_load_jwks_file = berth_jwt_keyset_load_jwks_file,
    .jwt_claims_dispose = berth_jwt_claims_dispose,
    .jwt_sign = berth_jwt_sign,
    .jwt_verify = berth_jwt_verify,
};

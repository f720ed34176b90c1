/*
 * HTTPS for `berth serve`: the server certificate and key behind
 * libmicrohttpd's certificate callback (so SIGHUP can swap them while
 * connections stay up), the GnuTLS priority string for the minimum version,
 * the client CA bundle for mTLS and the per-request client check.
 */
#ifndef BERTH_TLS_H
#define BERTH_TLS_H

#include <stddef.h>

struct berth_tls;
struct MHD_Connection;

/* Load `certificate` (PEM chain) and `key` (PEM); `clientcas` (CA files, may
 * be 0) are joined into one PEM for MHD_OPTION_HTTPS_MEM_TRUST. minimum is
 * 12 or 13. One TLS server per process (the GnuTLS callback has no context
 * argument). Errors: BERTH_EINVALID with a message naming the file. */
int berth_tls_new(struct berth_tls **out, const char *certificate, const char *key,
                  char *const *clientcas, size_t nclientcas, int minimum);
/* Re-read the certificate and key files; on failure the current pair stays
 * and the error says why. Connections in progress are not touched. */
int berth_tls_reload(struct berth_tls *t);
void berth_tls_free(struct berth_tls *t);

const char *berth_tls_priorities(const struct berth_tls *t);
/* The joined client CA PEM, NULL without mTLS. */
const char *berth_tls_trust(const struct berth_tls *t);
/* The gnutls_certificate_retrieve_function2 to pass as
 * MHD_OPTION_HTTPS_CERT_CALLBACK (void * keeps gnutls.h out of this header). */
void *berth_tls_cert_callback(void);
/* With mTLS: 1 when the connection's client presented a certificate that
 * verifies against the client CAs, else 0 (reason in *why). Without mTLS: 1. */
int berth_tls_client_ok(const struct berth_tls *t, struct MHD_Connection *conn,
                        const char **why);

#endif

/*
 * HTTPS for `berth serve`: the server certificate and key behind a GnuTLS
 * certificate callback (so SIGHUP can swap them while connections stay up),
 * the priority string for the minimum version, the client CA bundle for
 * mTLS, one GnuTLS server session per connection (http.c drives it on its
 * non-blocking socket) and the per-request client check.
 */
#ifndef BERTH_TLS_H
#define BERTH_TLS_H

#include <stddef.h>

struct berth_tls;

/* Load `certificate` (PEM chain) and `key` (PEM); `clientcas` (CA files, may
 * be 0) become the trust list for client certificates. minimum is 12 or 13.
 * One TLS server per process (the GnuTLS certificate callback has no context
 * argument). Errors: BERTH_EINVALID with a message naming the file. */
int berth_tls_new(struct berth_tls **out, const char *certificate, const char *key,
                  char *const *clientcas, size_t nclientcas, int minimum);
/* Re-read the certificate and key files; on failure the current pair stays
 * and the error says why. Connections in progress are not touched. */
int berth_tls_reload(struct berth_tls *t);
void berth_tls_free(struct berth_tls *t);

/* A non-blocking GnuTLS server session (gnutls_session_t as void *, which
 * keeps gnutls.h out of this header) on socket `fd`, asking for a client
 * certificate when client CAs are configured. 0, or -1. The caller owns it
 * (gnutls_deinit). */
int berth_tls_session_new(struct berth_tls *t, int fd, void **session);
/* With mTLS: 1 when the session's client presented a certificate that
 * verifies against the client CAs, else 0 (reason in *why). Without mTLS: 1. */
int berth_tls_client_ok(const struct berth_tls *t, void *session, const char **why);

#endif

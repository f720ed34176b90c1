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
#include <sys/types.h>

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
 * (berth_tls_session_free). */
int berth_tls_session_new(struct berth_tls *t, int fd, void **session);
/* With mTLS: 1 when the session's client presented a certificate that
 * verifies against the client CAs, else 0 (reason in *why). Without mTLS: 1. */
int berth_tls_client_ok(const struct berth_tls *t, void *session, const char **why);

/* The session calls http.c makes, so that it needs no GnuTLS header or
 * symbol (in `berth serve` they go through the TLS module, src/tlsmod). */
enum {
    BERTH_TLS_DONE = 0,       /* handshake complete */
    BERTH_TLS_WANT_READ = 1,  /* would block: wait until the socket is readable */
    BERTH_TLS_WANT_WRITE = 2, /* would block: wait until it is writable */
    BERTH_TLS_FAILED = -1     /* handshake failed (*why says why) */
};
/* One step of the handshake (EINTR retried). */
int berth_tls_handshake(void *session, const char **why);
/* Record I/O: > 0 bytes (recv: 0 is the end of the stream, an unclean close
 * included), -1 would block, -2 error. After -1, send must be called again
 * with the same data. */
ssize_t berth_tls_recv(void *session, void *p, size_t n);
ssize_t berth_tls_send(void *session, const void *p, size_t n);
/* Bytes already decrypted and waiting in the session (no socket read). */
size_t berth_tls_pending(void *session);
/* Send close_notify (our side is done; does not wait for the peer's). */
void berth_tls_bye(void *session);
void berth_tls_session_free(void *session);

#endif

/*
 * `berth serve --tls-self-signed HOST[,HOST...]`: a private CA and a server
 * certificate for those names, made once with OpenSSL and kept under
 * <root>/tls so clients trust the same ca.crt across restarts.
 */
#ifndef BERTH_SELFSIGN_H
#define BERTH_SELFSIGN_H

/* Paths inside the directory given to berth_selfsign_ensure(). */
#define BERTH_SELFSIGN_CA "ca.crt"
#define BERTH_SELFSIGN_CERT "server.crt"
#define BERTH_SELFSIGN_KEY "server.key"

/* Make `dir` (0700) and, unless ca.crt, server.crt and server.key are all
 * there already, generate an EC P-256 CA and a server certificate (both 10
 * years) whose SANs are the comma-separated `hosts` (IP addresses become IP
 * SANs, the rest DNS names). *created tells which happened. Errors:
 * BERTH_EINVALID (bad host list), BERTH_ERROR with a message. */
int berth_selfsign_ensure(const char *dir, const char *hosts, int *created);

#endif

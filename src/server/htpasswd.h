/*
 * The user file of `auth.htpasswd`: "user:hash" lines as `htpasswd -B`
 * writes them. Only bcrypt ($2y$, $2b$, $2a$) is accepted; other hash types
 * ({SHA}, $apr1$, crypt, plain text) are refused line by line with a message
 * handed to the caller's warn callback. The file is reloaded when it
 * changes; successful verifications are cached briefly because clients send
 * Basic credentials on every request and bcrypt is slow by design.
 */
#ifndef BERTH_HTPASSWD_H
#define BERTH_HTPASSWD_H

#include <stddef.h>
#include <stdint.h>

#define BERTH_HTPASSWD_USER_MAX 255   /* bytes in a user name */
#define BERTH_HTPASSWD_PASS_MAX 1024  /* bytes in a password we will hash */
#define BERTH_HTPASSWD_CACHE_TTL 300  /* seconds a successful check is remembered */

/* Receives one human-readable message (never a secret). Called from the
 * thread that (re)loads the file; must be thread-safe. */
typedef void (*berth_htpasswd_warn_fn)(void *ctx, const char *msg);

struct berth_htpasswd;

/* Load `path`. Lines: "user:hash"; blank lines and lines starting with '#'
 * are skipped; every refused line is reported through warn (may be NULL)
 * as "htpasswd '<path>' line N: ...". A file without any usable entry loads
 * (nobody can log in) with a warning. Errors: BERTH_ENOTFOUND / BERTH_ERROR
 * when the file cannot be read, BERTH_ETOOBIG over 16 MiB. */
int berth_htpasswd_new(struct berth_htpasswd **out, const char *path,
                       berth_htpasswd_warn_fn warn, void *ctx);
void berth_htpasswd_free(struct berth_htpasswd *h);

/* Check a password (`len` bytes). Re-reads the file first when its inode,
 * size or mtime changed (looked at most once a second; a reload failure
 * keeps the previous users and warns). An unknown user costs the same bcrypt
 * run as a wrong password. 0 when the password is right; BERTH_EDENIED with
 * the message "invalid username or password" otherwise. Thread-safe. */
int berth_htpasswd_verify(struct berth_htpasswd *h, const char *user, const uint8_t *pass,
                          size_t len);

/* 1 when `user` has an entry (after the same reload check), else 0. When
 * `bind` is non-NULL, fills it with 16 hex characters derived from the
 * user's hash line, which change whenever the password does (refresh tokens
 * carry it, so a password change revokes them). Thread-safe. */
int berth_htpasswd_has_user(struct berth_htpasswd *h, const char *user, char bind[17]);

/* Number of usable entries (for a startup log line). */
size_t berth_htpasswd_count(struct berth_htpasswd *h);

#endif

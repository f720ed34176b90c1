/*
 * Registry authentication, the pure part and the token flow: parsing
 * WWW-Authenticate challenges (RFC 7235 section 4.1: several challenges per
 * header, auth-params with quoted strings and backslash escapes, schemes
 * compared case-insensitively), scope strings, Docker token responses, and
 * the token fetch itself (distribution's "Token Authentication Specification"
 * GET and its OAuth2 POST form) over a transport callback the registry client
 * supplies. Library code: never prints; secrets never enter error messages.
 */
#ifndef BERTH_AUTH_H
#define BERTH_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "creds.h"

/* Limits on what a hostile header can make us allocate. */
#define BERTH_AUTH_MAX_CHALLENGES 16
#define BERTH_AUTH_MAX_PARAMS 32
#define BERTH_AUTH_HEADER_MAX (16 * 1024)

struct berth_auth_param {
    char *name;  /* owned, lowercased (auth-param names are case-insensitive) */
    char *value; /* owned, unquoted and unescaped */
};

struct berth_challenge {
    char scheme[32]; /* lowercased: "basic", "bearer", ... */
    struct berth_auth_param *params;
    size_t nparams;
    char *token68; /* owned: a token68 instead of params, or NULL */
};

/* Parse one WWW-Authenticate header value (`len` bytes, not necessarily
 * NUL-terminated) into *out (an array of *nout challenges, owned by the
 * caller: berth_challenges_free). Several headers are parsed one at a time
 * and their challenges concatenated by the caller. BERTH_EINVALID for text
 * that is not a challenge list; BERTH_ETOOBIG over the limits above. */
int berth_auth_parse_challenges(struct berth_challenge **out, size_t *nout, const char *header,
                                size_t len);
void berth_challenges_free(struct berth_challenge *c, size_t n);

/* Value of a param (name compared case-insensitively), or NULL. Borrowed:
 * valid as long as the challenge. */
const char *berth_challenge_param(const struct berth_challenge *c, const char *name);

/* The first challenge with `scheme` ("bearer", "basic"), or NULL. */
const struct berth_challenge *berth_challenge_find(const struct berth_challenge *c, size_t n,
                                                   const char *scheme);

/* Scope strings (token spec "Requesting a Token"): "repository:NAME:ACTIONS"
 * with ACTIONS "pull", "pull,push", "delete", "*"; `repo` NULL gives the
 * catalog scope "registry:catalog:*". Returns the snprintf length. */
size_t berth_auth_scope(char *buf, size_t size, const char *repo, const char *actions);

/* A token endpoint's answer. */
struct berth_token {
    char *token;         /* owned: "token", else "access_token" */
    char *refresh_token; /* owned, or NULL */
    int64_t expires_in;  /* seconds; 60 when absent or below 60 (spec) */
    time_t issued_at;    /* parsed RFC 3339 "issued_at", else 0 */
};

/* Parse a token response body (JSON object). BERTH_EINVALID when it is not
 * JSON or holds neither "token" nor "access_token" (a string). */
int berth_auth_token_parse(struct berth_token *out, const uint8_t *body, size_t len);
/* Free and wipe. Safe on a zeroed struct. */
void berth_token_dispose(struct berth_token *t);

/* The transport the token flow runs on: perform `method` ("GET" or "POST")
 * on the absolute `url`, with Basic credentials when `user` is non-NULL and
 * a form body (application/x-www-form-urlencoded) when `form` is non-NULL.
 * Fill *status and a malloc'd *body (capped by the transport). Return 0, or
 * a negative error (with a message) for transport failures. */
typedef int (*berth_auth_http_fn)(void *ctx, const char *method, const char *url,
                                  const char *user, const char *pass, const char *form,
                                  long *status, uint8_t **body, size_t *len);

/* Fetch a Bearer token for the `nscopes` scopes from the challenge's realm:
 *  - holding an identity token (creds->username "<token>"): OAuth2 POST
 *    grant_type=refresh_token;
 *  - else GET realm?service=..&scope=.. (Basic with creds when given,
 *    anonymous otherwise); when that answers 404 or 405 and we have a
 *    password, OAuth2 POST grant_type=password (client_id=berth).
 * Errors: BERTH_EDENIED for 401/403 (bad credentials), BERTH_EINVALID for a
 * challenge without realm or a non-http(s) realm, BERTH_ERROR otherwise. */
int berth_auth_fetch_token(struct berth_token *out, const struct berth_challenge *bearer,
                           const char *const *scopes, size_t nscopes,
                           const struct berth_creds *creds, berth_auth_http_fn http, void *ctx);

/* "Basic base64(user:pass)" into buf (for an Authorization header). Returns
 * 0, or BERTH_ETOOBIG when buf is too small. The caller wipes buf. */
int berth_auth_basic_value(char *buf, size_t size, const char *user, const char *pass);

#endif

/*
 * berth's built-in token server (`auth.token.builtin`), without HTTP: the
 * parameters of Docker's "Token Authentication Specification" GET
 * (service, scope..., account, offline_token, Basic credentials) and of its
 * OAuth2 POST form (grant_type=password|refresh_token, username, password,
 * refresh_token, client_id, access_type, scope) go in; a status and a JSON
 * body come out. Users come from htpasswd, grants from the access policy.
 */
#ifndef BERTH_TOKENSRV_H
#define BERTH_TOKENSRV_H

#include <stddef.h>
#include <stdint.h>

#include "htpasswd.h"
#include "jwt.h"
#include "policy.h"

#define BERTH_TOKEN_MAX_SCOPES 32     /* scopes in one request */
#define BERTH_TOKEN_FORM_MAX (64 * 1024) /* bytes of a POST form or query string */

/* The request parameters. Strings are owned (and wiped on dispose). */
struct berth_token_params {
    char *service, *account, *grant_type, *username, *password, *refresh_token, *client_id,
        *access_type;
    int offline_token;  /* offline_token=true */
    char **scopes;      /* each "scope" value split at spaces */
    size_t nscopes;
};

void berth_token_params_init(struct berth_token_params *p);
void berth_token_params_dispose(struct berth_token_params *p);
/* Add one decoded key/value (e.g. from http.c's query argument
 * iterator, which yields repeated "scope" keys one by one). Unknown keys are
 * ignored; a repeated single-valued key keeps its first value.
 * BERTH_ETOOBIG over BERTH_TOKEN_MAX_SCOPES scopes. */
int berth_token_params_add(struct berth_token_params *p, const char *key, const char *value);
/* Parse an application/x-www-form-urlencoded body (or a raw query string)
 * of `len` bytes and add every pair. BERTH_EINVALID for bad %-escapes,
 * BERTH_ETOOBIG over BERTH_TOKEN_FORM_MAX. */
int berth_token_params_parse_form(struct berth_token_params *p, const char *form, size_t len);

struct berth_tokensrv_config {
    const char *issuer;           /* `iss` of our tokens */
    const char *service;          /* `aud`; requests naming another service get 400 */
    const char *basic_realm;      /* for the WWW-Authenticate of a 401 to GET */
    int64_t expiration;           /* seconds an access token lives */
    int64_t refresh_expiration;   /* seconds a refresh token lives */
};

struct berth_tokensrv;

/* Borrowed: key, users (NULL: only anonymous tokens), policy. They must
 * outlive the server. Strings of cfg are copied. */
int berth_tokensrv_new(struct berth_tokensrv **out, const struct berth_tokensrv_config *cfg,
                       const struct berth_jwt_key *key, struct berth_htpasswd *users,
                       const struct berth_policy *policy);
void berth_tokensrv_free(struct berth_tokensrv *ts);

/* The audience of berth's refresh tokens for `service` ("berth-refresh:" +
 * service): never equal to an access token's, so neither can stand in for
 * the other. Returns the snprintf length. */
size_t berth_tokensrv_refresh_audience(char *buf, size_t size, const char *service);

struct berth_token_response {
    int status;               /* 200, 400 or 401 (429 from berth_authn_token) */
    char *body;               /* owned JSON (OAuth2 error form on failure) */
    size_t len;
    char www_authenticate[512]; /* set with a 401 answer to GET, else "" */
    char user[BERTH_HTPASSWD_USER_MAX + 1]; /* authenticated user, "" for anonymous */
    int bad_credentials;      /* 1 when a password or refresh token was wrong */
    unsigned retry_after;     /* seconds, with a 429 */
};

void berth_token_response_dispose(struct berth_token_response *r);

/*
 * Answer one request. `post` selects the OAuth2 form flow, else the GET
 * flow; basic_user/basic_pass are the decoded Basic credentials of the
 * request (NULL when none). Success: 200 with {"token","access_token",
 * "expires_in","issued_at"} and "refresh_token" when offline access was
 * asked for (GET offline_token=true, POST access_type=offline) by an
 * authenticated user. The `access` claim holds one entry per requested
 * scope with the policy-granted actions (empty when denied: the spec's
 * answer, not an error). Wrong password, unknown user or an invalid
 * refresh token: 401 invalid_grant; malformed request: 400. Returns 0 when
 * *out holds an answer, negative for internal failures (answer 500).
 * Thread-safe.
 */
int berth_tokensrv_handle(struct berth_tokensrv *ts, struct berth_token_response *out,
                          const struct berth_token_params *p, int post, const char *basic_user,
                          const uint8_t *basic_pass, size_t basic_pass_len);

#endif

/*
 * The one entry point the HTTP layer calls for authentication and access
 * control. Built from the `auth` configuration, it answers for each request:
 * go ahead (with the user name for the access log), 401 with the exact
 * WWW-Authenticate challenge, 403 DENIED, or 429 for an address that failed
 * to log in too often. It also runs the built-in token server's /token
 * endpoint with the same throttling. No secret ever enters a message.
 */
#ifndef BERTH_AUTHN_H
#define BERTH_AUTHN_H

#include <stddef.h>

#include "config.h"
#include "core/oci.h"
#include "htpasswd.h"
#include "tokensrv.h"

/* What a route needs. Same order as router.h's `enum access`
 * (NONE, PULL, PUSH, DEL, LIST, ADMIN), so the HTTP layer may map
 * one-to-one. */
enum berth_access {
    BERTH_ACCESS_NONE = 0, /* GET /v2/: any authenticated caller */
    BERTH_ACCESS_PULL,
    BERTH_ACCESS_PUSH,
    BERTH_ACCESS_DELETE,
    BERTH_ACCESS_CATALOG,
    BERTH_ACCESS_ADMIN     /* /v2/_berth/gc: the admin action (registry:admin:*) */
};

struct berth_authn_req {
    const char *method;        /* "GET", ... (reserved; may be NULL) */
    enum berth_access access;  /* the route's access column */
    const char *repo;          /* the <name> of the path; NULL for /v2/ and the catalog */
    const char *from;          /* end-11 mount: the `from` repository, else NULL */
    const char *authorization; /* the Authorization header value, or NULL */
    const char *addr;          /* client IP address as text ("192.0.2.7", "2001:db8::1") */
    const char *host;          /* Host header, for the default token realm; may be NULL */
    int tls;                   /* the connection is HTTPS (default realm scheme) */
};

enum { BERTH_AUTHN_ALLOW = 0, BERTH_AUTHN_CHALLENGE = 401, BERTH_AUTHN_DENY = 403,
       BERTH_AUTHN_THROTTLE = 429 };

struct berth_authn_result {
    int status;                     /* BERTH_AUTHN_*: 0 to proceed, else the HTTP status */
    enum berth_oci_code code;       /* UNAUTHORIZED, DENIED or TOOMANYREQUESTS; NONE on 0 */
    char message[256];              /* for the error body; never holds a secret */
    char www_authenticate[2048];    /* with 401: the WWW-Authenticate value to send */
    unsigned retry_after;           /* with 429: seconds for Retry-After */
    unsigned delay_ms;              /* with 401 for wrong Basic credentials: hold the answer
                                       this long (250 ms per earlier failure from the address
                                       in the window, at most 2 s); 0 otherwise */
    char user[BERTH_HTPASSWD_USER_MAX + 1]; /* for the access log; "" anonymous */
    int mount_from_allowed;         /* end-11: the caller may pull `from`; when 0, answer the
                                       mount with a plain upload session (202) */
};

struct berth_authn;

/* Build from the configuration: loads htpasswd, the signing key (generated
 * into <root>/token-key.pem, mode 0600, when builtin and no key is given),
 * the rootcertbundle / JWKS of an external token server, and the policy.
 * Modes: nothing configured: everyone may do everything; auth.htpasswd
 * alone: Basic; auth.token.builtin: berth's own tokens (users from htpasswd);
 * auth.token.realm without builtin: an external token server. warn receives
 * htpasswd line problems and reloads (thread-safe callback, may be NULL).
 * BERTH_EINVALID with a message naming the key for incomplete settings. */
int berth_authn_new(struct berth_authn **out, const struct berth_config *cfg,
                    berth_htpasswd_warn_fn warn, void *ctx);
void berth_authn_free(struct berth_authn *a);

/* 1 when any authentication is configured (else every check allows). */
int berth_authn_enabled(const struct berth_authn *a);
/* 1 when the built-in token server runs (the HTTP layer routes /token). */
int berth_authn_has_token_server(const struct berth_authn *a);

/*
 * Decide one request, after routing and before the handler (for uploads,
 * before any body is read). Always fills *out and returns 0; negative only
 * for internal failures (answer 500). Thread-safe.
 *  - Basic credentials are checked against htpasswd (Basic mode), Bearer
 *    tokens against the trusted keys (token modes); a request without
 *    credentials is anonymous and gets what the policy gives "anonymous".
 *  - 401 when the caller is not (validly) authenticated and lacks the
 *    access, with the challenge naming exactly the scope needed
 *    ("repository:team-a/app:pull,push", plus "repository:<from>:pull" for
 *    a mount, space-separated; "registry:catalog:*", "registry:admin:*");
 *    GET /v2/ always challenges an unauthenticated caller, so `docker
 *    login` works.
 *  - 403 DENIED when authenticated but the policy says no (with tokens of
 *    the built-in server too: the policy is asked again, and a token that
 *    merely lacks a scope the policy would grant gets a 401
 *    insufficient_scope challenge instead, so the client fetches a new one).
 *  - 429 when the address is locked out after repeated password failures
 *    (only requests carrying Basic credentials are refused).
 *  - A 401 for a wrong password carries delay_ms > 0 when the address
 *    already failed in the window: the HTTP layer holds the answer that long
 *    (without blocking a worker), slowing password guessing before lockout.
 */
int berth_authn_check(struct berth_authn *a, const struct berth_authn_req *req,
                      struct berth_authn_result *out);

/* For filtering the catalog and tag lists: 1 when `user` ("" or NULL:
 * anonymous) may pull `repo`. Always 1 without auth or with an external
 * token server (its tokens carry no per-repository view of the catalog). */
int berth_authn_can_pull(const struct berth_authn *a, const char *user, const char *repo);

/* The /token endpoint of the built-in token server (GET, or POST with the
 * form already parsed into `p`). `authorization` is the request's header
 * (Basic credentials for GET), `addr` the client address for throttling.
 * Fills *out (dispose it): status, JSON body, WWW-Authenticate for a 401,
 * Retry-After for a 429. BERTH_ENOTFOUND when no built-in token server is
 * configured (answer 404); other negatives: 500. Thread-safe. */
int berth_authn_token(struct berth_authn *a, struct berth_token_response *out,
                      const struct berth_token_params *p, int post, const char *authorization,
                      const char *addr);

#endif

/*
 * Authentication and access decisions for the HTTP layer (see authn.h).
 * One mode is chosen at startup from the configuration: none, Basic against
 * htpasswd, tokens of the built-in server, or tokens of an external server.
 * Every request resolves to (who, what they may do on the repository) and
 * is compared with what the route needs. Password failures are counted per
 * address (IPv6 per /64) in a small fixed table with LRU eviction; after
 * `auth.throttle.failures` in a minute the address gets 429 for the lockout.
 */
#include "authn.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/base64.h"
#include "core/error.h"
#include "jwt.h"
#include "policy.h"

#define THROTTLE_SLOTS 256
#define THROTTLE_WINDOW 60
#define AUTH_HEADER_MAX 8192
/* A wrong password is answered 250 ms later per earlier failure, at most 2 s. */
#define AUTH_DELAY_STEP_MS 250u
#define AUTH_DELAY_MAX_MS 2000u

enum mode { MODE_NONE, MODE_BASIC, MODE_BUILTIN, MODE_EXTERNAL };

struct slot {
    char key[INET6_ADDRSTRLEN];
    unsigned failures;
    time_t window_start, locked_until, last;
};

struct berth_authn {
    enum mode mode;
    char *basic_realm, *token_realm, *service, *issuer;
    struct berth_htpasswd *users;
    struct berth_policy *policy;
    struct berth_jwt_key *key;
    struct berth_jwt_keyset *keys;
    struct berth_tokensrv *tokensrv;
    unsigned max_failures;
    time_t lockout;
    pthread_mutex_t lock; /* guards slots */
    struct slot slots[THROTTLE_SLOTS];
};

/* ---- construction ---- */

/* A value we put between quotes in a challenge must not need escaping. */
static int check_quotable(const char *key, const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f)
            return berth_error_set(BERTH_EINVALID, "config '%s': quotes, backslashes and "
                                   "control characters are not allowed", key);
    return 0;
}

static char *dup_or(const char *v, const char *dflt)
{
    return strdup(v ? v : dflt);
}

void berth_authn_free(struct berth_authn *a)
{
    if (!a)
        return;
    berth_tokensrv_free(a->tokensrv);
    berth_jwt_keyset_free(a->keys);
    berth_jwt_key_free(a->key);
    berth_policy_free(a->policy);
    berth_htpasswd_free(a->users);
    free(a->basic_realm);
    free(a->token_realm);
    free(a->service);
    free(a->issuer);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static int load_token_keys(struct berth_authn *a, const struct berth_config *cfg)
{
    const struct berth_auth_config *ac = &cfg->auth;
    char path[4096];
    int error;

    if ((error = berth_jwt_keyset_new(&a->keys)) < 0)
        return error;
    if (a->mode == MODE_EXTERNAL) {
        if (ac->token_rootcertbundle &&
            (error = berth_jwt_keyset_load_certs(a->keys, ac->token_rootcertbundle)) < 0)
            return error;
        if (ac->token_jwks &&
            (error = berth_jwt_keyset_load_jwks_file(a->keys, ac->token_jwks)) < 0)
            return error;
        return 0;
    }
    if (ac->token_signingkey)
        snprintf(path, sizeof(path), "%s", ac->token_signingkey);
    else if ((size_t)snprintf(path, sizeof(path), "%s/token-key.pem", cfg->root) >= sizeof(path))
        return berth_error_set(BERTH_EINVALID, "storage root path too long");
    if ((error = berth_jwt_key_load(&a->key, path, !ac->token_signingkey)) < 0)
        return error;
    return berth_jwt_keyset_add_key(a->keys, a->key);
}

int berth_authn_new(struct berth_authn **out, const struct berth_config *cfg,
                    berth_htpasswd_warn_fn warn, void *ctx)
{
    const struct berth_auth_config *ac = &cfg->auth;
    struct berth_authn *a = calloc(1, sizeof(*a));
    int error = 0;

    *out = NULL;
    if (!a)
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_init(&a->lock, NULL);
    if (ac->token_builtin)
        a->mode = MODE_BUILTIN;
    else if (ac->token_realm)
        a->mode = MODE_EXTERNAL;
    else if (ac->htpasswd_path)
        a->mode = MODE_BASIC;
    a->max_failures = ac->throttle_failures;
    a->lockout = (time_t)((ac->throttle_lockout_ms + 999) / 1000);
    if (!(a->basic_realm = dup_or(ac->htpasswd_realm, "berth")) ||
        !(a->service = dup_or(ac->token_service, "berth")) ||
        !(a->issuer = dup_or(ac->token_issuer, "berth")) ||
        (ac->token_realm && !(a->token_realm = strdup(ac->token_realm)))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((error = check_quotable("auth.htpasswd.realm", a->basic_realm)) < 0 ||
        (error = check_quotable("auth.token.service", a->service)) < 0 ||
        (a->token_realm && (error = check_quotable("auth.token.realm", a->token_realm)) < 0))
        goto done;
    if (a->mode == MODE_BUILTIN && !ac->htpasswd_path) {
        error = berth_error_set(BERTH_EINVALID, "config 'auth.token.builtin' needs "
                                "'auth.htpasswd.path' for its users");
        goto done;
    }
    if (a->mode == MODE_EXTERNAL &&
        (!ac->token_service || !ac->token_issuer ||
         (!ac->token_rootcertbundle && !ac->token_jwks))) {
        error = berth_error_set(BERTH_EINVALID, "config 'auth.token': an external token server "
                                "needs realm, service, issuer and rootcertbundle or jwks");
        goto done;
    }
    if (a->mode == MODE_NONE) {
        if (ac->nrules && warn)
            warn(ctx, "auth.access rules are ignored: no authentication is configured");
        goto done;
    }
    if ((a->mode == MODE_BASIC || a->mode == MODE_BUILTIN) &&
        (error = berth_htpasswd_new(&a->users, ac->htpasswd_path, warn, ctx)) < 0)
        goto done;
    if ((error = berth_policy_new(&a->policy, ac->groups, ac->ngroups, ac->rules, ac->nrules)) <
        0)
        goto done;
    if (a->mode == MODE_EXTERNAL && ac->nrules && warn)
        warn(ctx, "auth.access rules are ignored with an external token server: its tokens "
                  "decide");
    if (a->mode == MODE_BUILTIN || a->mode == MODE_EXTERNAL) {
        if ((error = load_token_keys(a, cfg)) < 0)
            goto done;
    }
    if (a->mode == MODE_BUILTIN) {
        struct berth_tokensrv_config tc = { a->issuer, a->service, a->basic_realm,
                                            (ac->token_expiration_ms + 999) / 1000,
                                            (ac->token_refresh_ms + 999) / 1000 };
        if ((error = berth_tokensrv_new(&a->tokensrv, &tc, a->key, a->users, a->policy)) < 0)
            goto done;
    }
done:
    if (error < 0)
        berth_authn_free(a);
    else
        *out = a;
    return error;
}

int berth_authn_enabled(const struct berth_authn *a)
{
    return a->mode != MODE_NONE;
}

int berth_authn_has_token_server(const struct berth_authn *a)
{
    return a->tokensrv != NULL;
}

/* ---- throttling ---- */

static time_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* IPv4 as is; IPv6 by its /64, since one host usually owns a whole /64. */
static void throttle_key(char out[INET6_ADDRSTRLEN], const char *addr)
{
    unsigned char v6[16];

    if (addr && inet_pton(AF_INET6, addr, v6) == 1 &&
        !(memcmp(v6, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)) {
        memset(v6 + 8, 0, 8);
        inet_ntop(AF_INET6, v6, out, INET6_ADDRSTRLEN);
        return;
    }
    snprintf(out, INET6_ADDRSTRLEN, "%s", addr ? addr : "");
}

/* The slot for `key`; with `create`, evicting the least recently used. */
static struct slot *find_slot(struct berth_authn *a, const char *key, int create, time_t now)
{
    struct slot *lru = &a->slots[0];

    for (size_t i = 0; i < THROTTLE_SLOTS; i++) {
        struct slot *s = &a->slots[i];
        if (s->key[0] && !strcmp(s->key, key))
            return s;
        if (s->last < lru->last)
            lru = s;
    }
    if (!create)
        return NULL;
    memset(lru, 0, sizeof(*lru));
    snprintf(lru->key, sizeof(lru->key), "%s", key);
    lru->window_start = now;
    lru->last = now;
    return lru;
}

/* Seconds the address stays locked, 0 when it is not. */
static unsigned throttle_locked(struct berth_authn *a, const char *addr)
{
    char key[INET6_ADDRSTRLEN];
    time_t now = mono_now();
    struct slot *s;
    unsigned left = 0;

    if (!a->max_failures)
        return 0;
    throttle_key(key, addr);
    pthread_mutex_lock(&a->lock);
    if ((s = find_slot(a, key, 0, now)) != NULL && s->locked_until > now)
        left = (unsigned)(s->locked_until - now);
    pthread_mutex_unlock(&a->lock);
    return left;
}

/* Count a success (resets) or a failure; returns the failures the address
 * had in the window before this one. */
static unsigned throttle_record(struct berth_authn *a, const char *addr, int failed)
{
    char key[INET6_ADDRSTRLEN];
    time_t now = mono_now();
    struct slot *s;
    unsigned before = 0;

    if (!a->max_failures)
        return 0;
    throttle_key(key, addr);
    pthread_mutex_lock(&a->lock);
    s = find_slot(a, key, failed, now);
    if (s && !failed) {
        s->failures = 0;
    } else if (s) {
        s->last = now;
        if (now - s->window_start >= THROTTLE_WINDOW) {
            s->window_start = now;
            s->failures = 0;
        }
        before = s->failures;
        if (++s->failures >= a->max_failures) {
            s->locked_until = now + (a->lockout > 0 ? a->lockout : 1);
            s->failures = 0;
            s->window_start = now;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return before;
}

/* ---- credentials ---- */

/* "Basic base64(user:pass)" → user and pass (pass is not NUL-terminated). */
static int parse_basic(const char *value, char user[BERTH_HTPASSWD_USER_MAX + 1],
                       uint8_t *pass, size_t *passlen)
{
    unsigned char dec[AUTH_HEADER_MAX];
    size_t len = strlen(value), n = 0;
    const char *colon;

    while (*value == ' ')
        value++, len--;
    while (len && value[len - 1] == ' ')
        len--;
    /* strict RFC 4648 §4: padded, canonical, nothing outside the alphabet */
    if (!len || len > AUTH_HEADER_MAX / 4 * 3 ||
        berth_base64_decode(dec, &n, sizeof(dec), value, len) < 0) {
        explicit_bzero(dec, sizeof(dec));
        return -1;
    }
    if (!(colon = memchr(dec, ':', n)) || colon == (char *)dec ||
        (size_t)(colon - (char *)dec) > BERTH_HTPASSWD_USER_MAX ||
        n - (size_t)(colon + 1 - (char *)dec) > BERTH_HTPASSWD_PASS_MAX ||
        memchr(dec, '\0', (size_t)(colon - (char *)dec))) {
        explicit_bzero(dec, sizeof(dec));
        return -1;
    }
    memcpy(user, dec, (size_t)(colon - (char *)dec));
    user[colon - (char *)dec] = '\0';
    *passlen = n - (size_t)(colon + 1 - (char *)dec);
    memcpy(pass, colon + 1, *passlen);
    explicit_bzero(dec, sizeof(dec));
    return 0;
}

/* The value after "<scheme> " when the header uses that scheme, else NULL. */
static const char *scheme_value(const char *h, const char *scheme)
{
    size_t n = strlen(scheme);

    if (!h || strncasecmp(h, scheme, n) != 0 || h[n] != ' ')
        return NULL;
    return h + n + 1;
}

static unsigned needed_actions(enum berth_access acc)
{
    switch (acc) {
    case BERTH_ACCESS_PULL:
        return BERTH_ACT_PULL;
    case BERTH_ACCESS_PUSH:
        return BERTH_ACT_PUSH;
    case BERTH_ACCESS_DELETE:
        return BERTH_ACT_DELETE;
    case BERTH_ACCESS_CATALOG:
        return BERTH_ACT_CATALOG;
    case BERTH_ACCESS_ADMIN:
        return BERTH_ACT_ADMIN;
    default:
        return 0;
    }
}

/* What a verified token grants on `repo` (NULL: the catalog bit only). */
static unsigned token_actions(const struct berth_jwt_claims *c, const char *repo)
{
    unsigned acts = 0;

    for (size_t i = 0; i < c->naccess; i++) {
        const struct berth_scope *s = &c->access[i];
        if (s->rclass[0])
            continue;
        if (!strcmp(s->type, "registry") && !strcmp(s->name, "catalog"))
            acts |= s->actions & BERTH_ACT_CATALOG;
        else if (!strcmp(s->type, "registry") && !strcmp(s->name, "admin"))
            acts |= (s->actions & BERTH_ACT_CATALOG) ? BERTH_ACT_ADMIN : 0; /* its "*" */
        else if (repo && !strcmp(s->type, "repository") && !strcmp(s->name, repo))
            acts |= s->actions & ~(unsigned)BERTH_ACT_REGISTRY;
    }
    return acts;
}

/* ---- answers ---- */

static void realm_for(const struct berth_authn *a, const struct berth_authn_req *req, char *buf,
                      size_t size)
{
    const char *h = req->host;
    int ok = h && *h && strlen(h) < 256;

    if (a->token_realm) {
        snprintf(buf, size, "%s", a->token_realm);
        return;
    }
    /* builtin without a configured realm: this server's /token, by Host */
    for (const char *p = h; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr(".-:[]", *p);
    if (ok)
        snprintf(buf, size, "%s://%s/token", req->tls ? "https" : "http", h);
    else
        snprintf(buf, size, "/token");
}

static void challenge(const struct berth_authn *a, const struct berth_authn_req *req,
                      struct berth_authn_result *out, const char *error)
{
    char realm[512], scope[1200] = "";

    out->status = BERTH_AUTHN_CHALLENGE;
    out->code = BERTH_OCI_UNAUTHORIZED;
    snprintf(out->message, sizeof(out->message), "authentication required");
    if (a->mode == MODE_BASIC) {
        snprintf(out->www_authenticate, sizeof(out->www_authenticate), "Basic realm=\"%s\"",
                 a->basic_realm);
        return;
    }
    switch (req->access) {
    case BERTH_ACCESS_PULL:
        snprintf(scope, sizeof(scope), "repository:%s:pull", req->repo ? req->repo : "");
        break;
    case BERTH_ACCESS_PUSH:
        if (req->from)
            snprintf(scope, sizeof(scope), "repository:%s:pull,push repository:%s:pull",
                     req->repo ? req->repo : "", req->from);
        else
            snprintf(scope, sizeof(scope), "repository:%s:pull,push", req->repo ? req->repo : "");
        break;
    case BERTH_ACCESS_DELETE:
        snprintf(scope, sizeof(scope), "repository:%s:delete", req->repo ? req->repo : "");
        break;
    case BERTH_ACCESS_CATALOG:
        snprintf(scope, sizeof(scope), "registry:catalog:*");
        break;
    case BERTH_ACCESS_ADMIN:
        snprintf(scope, sizeof(scope), "registry:admin:*");
        break;
    default:
        break;
    }
    realm_for(a, req, realm, sizeof(realm));
    snprintf(out->www_authenticate, sizeof(out->www_authenticate),
             "Bearer realm=\"%s\",service=\"%s\"%s%s%s%s%s", realm, a->service,
             scope[0] ? ",scope=\"" : "", scope, scope[0] ? "\"" : "", error ? ",error=" : "",
             error ? error : "");
}

static void denied(struct berth_authn_result *out)
{
    out->status = BERTH_AUTHN_DENY;
    out->code = BERTH_OCI_DENIED;
    snprintf(out->message, sizeof(out->message), "requested access to the resource is denied");
}

static void throttled(struct berth_authn_result *out, unsigned left)
{
    out->status = BERTH_AUTHN_THROTTLE;
    out->code = BERTH_OCI_TOOMANYREQUESTS;
    out->retry_after = left ? left : 1;
    snprintf(out->message, sizeof(out->message),
             "too many failed login attempts; retry after %u seconds", out->retry_after);
}

int berth_authn_check(struct berth_authn *a, const struct berth_authn_req *req,
                      struct berth_authn_result *out)
{
    struct berth_jwt_claims claims = { 0 };
    const char *basic = NULL, *bearer = NULL, *user = NULL;
    uint8_t pass[BERTH_HTPASSWD_PASS_MAX];
    size_t passlen = 0;
    unsigned need = needed_actions(req->access), acts = 0, from_acts = 0;
    int authed = 0, have_claims = 0;
    unsigned left, before;

    memset(out, 0, sizeof(*out));
    if (a->mode == MODE_NONE) {
        out->mount_from_allowed = 1;
        return 0;
    }
    if (req->authorization && strlen(req->authorization) <= AUTH_HEADER_MAX) {
        basic = scheme_value(req->authorization, "Basic");
        bearer = scheme_value(req->authorization, "Bearer");
    }
    if (basic && a->mode == MODE_BASIC) {
        if ((left = throttle_locked(a, req->addr)) != 0) {
            throttled(out, left);
            return 0;
        }
        if (parse_basic(basic, out->user, pass, &passlen) < 0 ||
            berth_htpasswd_verify(a->users, out->user, pass, passlen) < 0) {
            explicit_bzero(pass, sizeof(pass));
            out->user[0] = '\0';
            before = throttle_record(a, req->addr, 1);
            challenge(a, req, out, NULL);
            snprintf(out->message, sizeof(out->message), "invalid username or password");
            out->delay_ms = before >= AUTH_DELAY_MAX_MS / AUTH_DELAY_STEP_MS
                                ? AUTH_DELAY_MAX_MS
                                : before * AUTH_DELAY_STEP_MS;
            return 0;
        }
        explicit_bzero(pass, sizeof(pass));
        throttle_record(a, req->addr, 0);
        user = out->user;
        authed = 1;
    } else if (bearer && (a->mode == MODE_BUILTIN || a->mode == MODE_EXTERNAL)) {
        struct berth_jwt_verify_opts o = { a->issuer, a->service, NULL, 0 };
        if (berth_jwt_verify(&claims, a->keys, bearer, strlen(bearer), &o) < 0) {
            challenge(a, req, out, "\"invalid_token\"");
            snprintf(out->message, sizeof(out->message), "%s", berth_error_msg());
            return 0;
        }
        have_claims = authed = 1;
        if (claims.sub && claims.sub[0] && strlen(claims.sub) < sizeof(out->user)) {
            snprintf(out->user, sizeof(out->user), "%s", claims.sub);
            user = out->user;
        }
    }

    if (have_claims) {
        acts = token_actions(&claims, req->repo);
        from_acts = req->from ? token_actions(&claims, req->from) : 0;
    } else if (a->mode != MODE_EXTERNAL) {
        acts = berth_policy_actions(a->policy, user, req->repo);
        from_acts = req->from ? berth_policy_actions(a->policy, user, req->from) : 0;
    }
    berth_jwt_claims_dispose(&claims);
    out->mount_from_allowed = (from_acts & BERTH_ACT_PULL) != 0;

    if (need == 0 ? authed : (acts & need) == need)
        return 0;
    out->mount_from_allowed = 0;
    if (!authed) {
        challenge(a, req, out, NULL);
        return 0;
    }
    if (have_claims && a->mode == MODE_BUILTIN &&
        berth_policy_allowed(a->policy, user, req->repo, need)) {
        /* the token was asked for less than the policy allows: get another */
        challenge(a, req, out, "\"insufficient_scope\"");
        return 0;
    }
    if (have_claims && a->mode == MODE_EXTERNAL) {
        challenge(a, req, out, "\"insufficient_scope\"");
        return 0;
    }
    denied(out);
    return 0;
}

int berth_authn_can_pull(const struct berth_authn *a, const char *user, const char *repo)
{
    if (a->mode == MODE_NONE || a->mode == MODE_EXTERNAL)
        return 1;
    return berth_policy_allowed(a->policy, user && *user ? user : NULL, repo, BERTH_ACT_PULL);
}

int berth_authn_token(struct berth_authn *a, struct berth_token_response *out,
                      const struct berth_token_params *p, int post, const char *authorization,
                      const char *addr)
{
    const char *basic = NULL;
    char user[BERTH_HTPASSWD_USER_MAX + 1];
    uint8_t pass[BERTH_HTPASSWD_PASS_MAX] = { 0 };
    size_t passlen = 0;
    int has_basic = 0, creds, error;
    unsigned left;

    memset(out, 0, sizeof(*out));
    if (!a->tokensrv)
        return berth_error_set(BERTH_ENOTFOUND, "no built-in token server");
    if (authorization && strlen(authorization) <= AUTH_HEADER_MAX)
        basic = scheme_value(authorization, "Basic");
    if (basic && !post) {
        if (parse_basic(basic, user, pass, &passlen) < 0) {
            out->status = 400;
            out->body = strdup("{\"error\":\"invalid_request\",\"error_description\":"
                               "\"malformed Basic credentials\"}");
            out->len = out->body ? strlen(out->body) : 0;
            return out->body ? 0 : berth_error_set(BERTH_ERROR, "out of memory");
        }
        has_basic = 1;
    }
    creds = has_basic || (post && (p->password || p->refresh_token));
    if (creds && (left = throttle_locked(a, addr)) != 0) {
        explicit_bzero(pass, sizeof(pass));
        out->status = 429;
        out->retry_after = left;
        out->body = strdup("{\"error\":\"slow_down\",\"error_description\":"
                           "\"too many failed login attempts\"}");
        out->len = out->body ? strlen(out->body) : 0;
        return out->body ? 0 : berth_error_set(BERTH_ERROR, "out of memory");
    }
    error = berth_tokensrv_handle(a->tokensrv, out, p, post, has_basic ? user : NULL, pass,
                                  passlen);
    explicit_bzero(pass, sizeof(pass));
    if (error == 0 && creds)
        throttle_record(a, addr, out->bad_credentials);
    return error;
}

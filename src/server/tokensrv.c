/*
 * The built-in token server (see tokensrv.h). Authentication is htpasswd
 * (GET with Basic, POST grant_type=password) or one of our own refresh
 * tokens (POST grant_type=refresh_token); authorization is the access policy
 * applied scope by scope, so a token never grants more than the policy did
 * at issue time. Refresh tokens are JWTs signed by the same key with their
 * own `typ` and audience, bound to the user and to a digest of the user's
 * password hash: deleting the user or changing the password revokes them.
 */
#include "tokensrv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "core/error.h"
#include "core/random.h"

#define REFRESH_TYP "berth-refresh+jwt"

struct berth_tokensrv {
    char *issuer, *service, *basic_realm;
    char refresh_aud[300];
    int64_t expiration, refresh_expiration;
    const struct berth_jwt_key *key;
    struct berth_jwt_keyset *keys; /* just our key: to verify refresh tokens */
    struct berth_htpasswd *users;
    const struct berth_policy *policy;
};

/* ---- parameters ---- */

void berth_token_params_init(struct berth_token_params *p)
{
    memset(p, 0, sizeof(*p));
}

static void free_secret(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

void berth_token_params_dispose(struct berth_token_params *p)
{
    if (!p)
        return;
    free(p->service);
    free(p->account);
    free(p->grant_type);
    free(p->username);
    free_secret(p->password);
    free_secret(p->refresh_token);
    free(p->client_id);
    free(p->access_type);
    for (size_t i = 0; i < p->nscopes; i++)
        free(p->scopes[i]);
    free(p->scopes);
    memset(p, 0, sizeof(*p));
}

static int add_scopes(struct berth_token_params *p, const char *v)
{
    while (*v) {
        const char *sp = strchr(v, ' ');
        size_t n = sp ? (size_t)(sp - v) : strlen(v);
        char **tmp;
        if (n) {
            if (p->nscopes == BERTH_TOKEN_MAX_SCOPES)
                return berth_error_set(BERTH_ETOOBIG, "more than %d scopes",
                                       BERTH_TOKEN_MAX_SCOPES);
            if ((tmp = realloc(p->scopes, (p->nscopes + 1) * sizeof(*tmp))) == NULL)
                return berth_error_set(BERTH_ERROR, "out of memory");
            p->scopes = tmp;
            if ((p->scopes[p->nscopes] = strndup(v, n)) == NULL)
                return berth_error_set(BERTH_ERROR, "out of memory");
            p->nscopes++;
        }
        v += n + (sp != NULL);
    }
    return 0;
}

int berth_token_params_add(struct berth_token_params *p, const char *key, const char *value)
{
    struct {
        const char *key;
        char **dst;
    } fields[] = {
        { "service", &p->service },         { "account", &p->account },
        { "grant_type", &p->grant_type },   { "username", &p->username },
        { "password", &p->password },       { "refresh_token", &p->refresh_token },
        { "client_id", &p->client_id },     { "access_type", &p->access_type },
    };

    if (!key || !value)
        return 0;
    if (!strcmp(key, "scope"))
        return add_scopes(p, value);
    if (!strcmp(key, "offline_token")) {
        p->offline_token |= !strcasecmp(value, "true") || !strcmp(value, "1");
        return 0;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(key, fields[i].key) != 0)
            continue;
        if (*fields[i].dst)
            return 0;
        if ((*fields[i].dst = strdup(value)) == NULL)
            return berth_error_set(BERTH_ERROR, "out of memory");
        return 0;
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode %XX and '+' into a new string; NUL bytes are refused. */
static int url_decode(char **out, const char *s, size_t n)
{
    char *d = malloc(n + 1), *o = d;

    if (!d)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                explicit_bzero(d, (size_t)(o - d));
                free(d);
                return berth_error_set(BERTH_EINVALID, "invalid %%-escape in form");
            }
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '\0') {
            free(d);
            return berth_error_set(BERTH_EINVALID, "NUL byte in form");
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    *out = d;
    return 0;
}

int berth_token_params_parse_form(struct berth_token_params *p, const char *form, size_t len)
{
    const char *end = form + len;
    int error = 0;

    if (len > BERTH_TOKEN_FORM_MAX)
        return berth_error_set(BERTH_ETOOBIG, "form larger than %d bytes", BERTH_TOKEN_FORM_MAX);
    while (form < end && !error) {
        const char *amp = memchr(form, '&', (size_t)(end - form));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(form, '=', (size_t)(pend - form));
        char *k = NULL, *v = NULL;
        if (pend > form && eq) {
            if ((error = url_decode(&k, form, (size_t)(eq - form))) == 0 &&
                (error = url_decode(&v, eq + 1, (size_t)(pend - eq - 1))) == 0)
                error = berth_token_params_add(p, k, v);
            free(k);
            free_secret(v);
        }
        form = amp ? amp + 1 : end;
    }
    return error;
}

/* ---- the server ---- */

size_t berth_tokensrv_refresh_audience(char *buf, size_t size, const char *service)
{
    return (size_t)snprintf(buf, size, "berth-refresh:%s", service);
}

void berth_tokensrv_free(struct berth_tokensrv *ts)
{
    if (!ts)
        return;
    free(ts->issuer);
    free(ts->service);
    free(ts->basic_realm);
    berth_jwt_keyset_free(ts->keys);
    free(ts);
}

int berth_tokensrv_new(struct berth_tokensrv **out, const struct berth_tokensrv_config *cfg,
                       const struct berth_jwt_key *key, struct berth_htpasswd *users,
                       const struct berth_policy *policy)
{
    struct berth_tokensrv *ts = calloc(1, sizeof(*ts));
    int error;

    *out = NULL;
    if (!ts || !(ts->issuer = strdup(cfg->issuer)) || !(ts->service = strdup(cfg->service)) ||
        !(ts->basic_realm = strdup(cfg->basic_realm ? cfg->basic_realm : "berth"))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto fail;
    }
    berth_tokensrv_refresh_audience(ts->refresh_aud, sizeof(ts->refresh_aud), cfg->service);
    ts->expiration = cfg->expiration > 0 ? cfg->expiration : 300;
    ts->refresh_expiration = cfg->refresh_expiration > 0 ? cfg->refresh_expiration : 30 * 86400;
    ts->key = key;
    ts->users = users;
    ts->policy = policy;
    if ((error = berth_jwt_keyset_new(&ts->keys)) < 0 ||
        (error = berth_jwt_keyset_add_key(ts->keys, key)) < 0)
        goto fail;
    *out = ts;
    return 0;
fail:
    berth_tokensrv_free(ts);
    return error;
}

void berth_token_response_dispose(struct berth_token_response *r)
{
    if (!r)
        return;
    if (r->body)
        explicit_bzero(r->body, r->len);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int answer_json(struct berth_token_response *out, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    if (!s)
        return berth_error_set(BERTH_ERROR, "out of memory");
    out->status = status;
    out->body = s;
    out->len = strlen(s);
    return 0;
}

/* RFC 6749 section 5.2 error answer. */
static int answer_error(struct berth_token_response *out, int status, const char *code,
                        const char *desc)
{
    return answer_json(out, status,
                       json_pack("{s:s, s:s}", "error", code, "error_description", desc));
}

static int bad_creds(struct berth_tokensrv *ts, struct berth_token_response *out, int post,
                     const char *desc)
{
    out->bad_credentials = 1;
    out->user[0] = '\0';
    if (!post)
        snprintf(out->www_authenticate, sizeof(out->www_authenticate), "Basic realm=\"%s\"",
                 ts->basic_realm);
    return answer_error(out, 401, "invalid_grant", desc);
}

static void random_hex(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[32];

    if (bytes > sizeof(r))
        bytes = sizeof(r);
    if (berth_random(r, bytes) < 0)
        memset(r, 0, sizeof(r)); /* the jti is an identifier, not a secret */
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * bytes] = '\0';
}

static int sign(char **out, const struct berth_tokensrv *ts, const char *typ, const char *aud,
                const char *user, const char *bind, struct berth_scope *access, size_t naccess,
                int64_t now, int64_t lifetime)
{
    struct berth_jwt_claims c = { 0 };
    char jti[33];

    random_hex(jti, 16);
    c.iss = ts->issuer;
    c.sub = (char *)(user ? user : "");
    c.aud = (char *)aud;
    c.jti = jti;
    c.bind = (char *)bind;
    c.iat = now;
    c.nbf = now;
    c.exp = now + lifetime;
    c.access = access;
    c.naccess = naccess;
    return berth_jwt_sign(out, ts->key, typ, &c);
}

/* A refresh token of ours for a user who still exists with the same password. */
static int check_refresh(struct berth_tokensrv *ts, char user[BERTH_HTPASSWD_USER_MAX + 1],
                         const char *token)
{
    struct berth_jwt_verify_opts o = { ts->issuer, ts->refresh_aud, REFRESH_TYP, 0 };
    struct berth_jwt_claims c;
    char bind[17];
    int ok;

    if (berth_jwt_verify(&c, ts->keys, token, strlen(token), &o) < 0)
        return 0;
    ok = c.sub && c.sub[0] && c.bind && strlen(c.sub) <= BERTH_HTPASSWD_USER_MAX && ts->users &&
         berth_htpasswd_has_user(ts->users, c.sub, bind) && !strcmp(bind, c.bind);
    if (ok)
        snprintf(user, BERTH_HTPASSWD_USER_MAX + 1, "%s", c.sub);
    berth_jwt_claims_dispose(&c);
    return ok;
}

static int check_password(struct berth_tokensrv *ts, const char *user, const uint8_t *pass,
                          size_t len)
{
    return ts->users && berth_htpasswd_verify(ts->users, user, pass, len) == 0;
}

static void rfc3339(char out[32], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int berth_tokensrv_handle(struct berth_tokensrv *ts, struct berth_token_response *out,
                          const struct berth_token_params *p, int post, const char *basic_user,
                          const uint8_t *basic_pass, size_t basic_pass_len)
{
    struct berth_scope *access = NULL;
    char *token = NULL, *refresh = NULL, issued[32], bind[17];
    const char *user = NULL;
    int64_t now = (int64_t)time(NULL);
    int offline = 0, error = 0;
    json_t *j;

    memset(out, 0, sizeof(*out));
    if (p->service && strcmp(p->service, ts->service) != 0)
        return answer_error(out, 400, "invalid_request", "unknown service");
    if (post) {
        if (!p->grant_type)
            return answer_error(out, 400, "invalid_request", "grant_type is required");
        if (!strcmp(p->grant_type, "password")) {
            if (!p->username || !p->password)
                return answer_error(out, 400, "invalid_request",
                                    "username and password are required");
            if (!check_password(ts, p->username, (const uint8_t *)p->password,
                                strlen(p->password)))
                return bad_creds(ts, out, post, "invalid username or password");
            snprintf(out->user, sizeof(out->user), "%s", p->username);
            offline = p->access_type && !strcmp(p->access_type, "offline");
        } else if (!strcmp(p->grant_type, "refresh_token")) {
            if (!p->refresh_token)
                return answer_error(out, 400, "invalid_request", "refresh_token is required");
            if (!check_refresh(ts, out->user, p->refresh_token))
                return bad_creds(ts, out, post, "invalid refresh token");
        } else {
            return answer_error(out, 400, "unsupported_grant_type",
                                "grant_type must be password or refresh_token");
        }
    } else {
        if (basic_user) {
            if (!check_password(ts, basic_user, basic_pass, basic_pass_len))
                return bad_creds(ts, out, post, "invalid username or password");
            snprintf(out->user, sizeof(out->user), "%s", basic_user);
        }
        offline = p->offline_token;
    }
    if (out->user[0])
        user = out->user;
    if (p->account && user && strcmp(p->account, user) != 0)
        return answer_error(out, 400, "invalid_request", "account does not match the user");
    offline &= user != NULL;

    if ((access = calloc(p->nscopes + 1, sizeof(*access))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (size_t i = 0; i < p->nscopes; i++) {
        if (berth_scope_parse(&access[i], p->scopes[i], strlen(p->scopes[i])) < 0) {
            char desc[300];
            snprintf(desc, sizeof(desc), "%s", berth_error_msg());
            free(access);
            return answer_error(out, 400, "invalid_scope", desc);
        }
        access[i].actions = berth_policy_grant(ts->policy, user, &access[i]);
    }
    if ((error = sign(&token, ts, "JWT", ts->service, user, NULL, access, p->nscopes, now,
                      ts->expiration)) < 0)
        goto done;
    if (offline) {
        if (!berth_htpasswd_has_user(ts->users, user, bind)) {
            error = bad_creds(ts, out, post, "invalid username or password");
            goto done;
        }
        if ((error = sign(&refresh, ts, REFRESH_TYP, ts->refresh_aud, user, bind, NULL, 0, now,
                          ts->refresh_expiration)) < 0)
            goto done;
    }
    rfc3339(issued, now);
    j = json_pack("{s:s, s:s, s:I, s:s}", "token", token, "access_token", token, "expires_in",
                  (json_int_t)ts->expiration, "issued_at", issued);
    if (j && refresh && json_object_set_new(j, "refresh_token", json_string(refresh)) < 0) {
        json_decref(j);
        j = NULL;
    }
    error = answer_json(out, 200, j);
done:
    free(access);
    free_secret(token);
    free_secret(refresh);
    return error;
}

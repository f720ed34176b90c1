/*
 * Registry authentication: the WWW-Authenticate parser (RFC 7235 section
 * 4.1 and 2.1: comma-separated challenges, each a scheme followed by a
 * token68 or auth-params whose values are tokens or quoted strings), scope
 * strings, token responses, and distribution's token flow (GET with Basic or
 * anonymous, OAuth2 POST form) run over the caller's transport callback.
 * Invariant: passwords and tokens only ever travel to the transport; no
 * error message built here contains one.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"
#include "core/error.h"

#define TOKEN_MIN_EXPIRES 60
#define FORM_MAX (16 * 1024)

/* ---- challenge parsing ---- */

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_t68char(unsigned char c)
{
    return isalnum(c) || (c && strchr("-._~+/", c) != NULL);
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

struct cursor {
    const char *s;
    size_t len, pos;
};

static int at_end(const struct cursor *c)
{
    return c->pos >= c->len;
}

static unsigned char peek(const struct cursor *c)
{
    return at_end(c) ? 0 : (unsigned char)c->s[c->pos];
}

static void skip_ws(struct cursor *c)
{
    while (!at_end(c) && is_ws(peek(c)))
        c->pos++;
}

static size_t token_len(const struct cursor *c)
{
    size_t n = 0;

    while (c->pos + n < c->len && is_tchar((unsigned char)c->s[c->pos + n]))
        n++;
    return n;
}

static char *dup_lower(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A quoted-string at the cursor ('"' already checked): unescape into *out. */
static int parse_quoted(struct cursor *c, char **out)
{
    char *buf;
    size_t n = 0;

    c->pos++; /* opening quote */
    if ((buf = malloc(c->len - c->pos + 1)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    while (!at_end(c)) {
        unsigned char ch = peek(c);
        if (ch == '"') {
            c->pos++;
            buf[n] = '\0';
            *out = buf;
            return 0;
        }
        if (ch == '\\') {
            c->pos++;
            if (at_end(c))
                break;
            ch = peek(c);
        }
        if (ch == '\0' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
            free(buf);
            return berth_error_set(BERTH_EINVALID, "control character in quoted string");
        }
        buf[n++] = (char)ch;
        c->pos++;
    }
    free(buf);
    return berth_error_set(BERTH_EINVALID, "unterminated quoted string in challenge");
}

static int add_param(struct berth_challenge *ch, char *name, char *value)
{
    struct berth_auth_param *p;

    if (ch->nparams >= BERTH_AUTH_MAX_PARAMS) {
        free(name);
        free(value);
        return berth_error_set(BERTH_ETOOBIG, "too many auth-params in challenge");
    }
    if ((p = realloc(ch->params, (ch->nparams + 1) * sizeof(*p))) == NULL) {
        free(name);
        free(value);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    ch->params = p;
    p[ch->nparams].name = name;
    p[ch->nparams].value = value;
    ch->nparams++;
    return 0;
}

/* 1 when the cursor (just after a scheme and its spaces) holds a token68:
 * token68 characters, optional '=' padding, then the end or a comma. */
static int looks_token68(const struct cursor *c, size_t *n)
{
    size_t i = c->pos;

    while (i < c->len && is_t68char((unsigned char)c->s[i]))
        i++;
    if (i == c->pos)
        return 0;
    while (i < c->len && c->s[i] == '=')
        i++;
    *n = i - c->pos;
    while (i < c->len && is_ws((unsigned char)c->s[i]))
        i++;
    return i == c->len || c->s[i] == ',';
}

/* Auth-params after a scheme, up to the end or the next challenge (a token
 * not followed by '='), where the cursor is left. */
static int parse_params(struct cursor *c, struct berth_challenge *ch)
{
    int error;

    for (;;) {
        size_t start, n;
        char *name, *value = NULL;

        while (!at_end(c) && (is_ws(peek(c)) || peek(c) == ','))
            c->pos++;
        if (at_end(c))
            return 0;
        start = c->pos;
        if ((n = token_len(c)) == 0)
            return berth_error_set(BERTH_EINVALID, "unexpected character in challenge");
        c->pos += n;
        skip_ws(c);
        if (peek(c) != '=') {
            c->pos = start; /* the next challenge's scheme */
            return 0;
        }
        c->pos++;
        skip_ws(c);
        if (peek(c) == '"') {
            if ((error = parse_quoted(c, &value)) < 0)
                return error;
        } else {
            size_t vn = token_len(c);
            if (vn == 0)
                return berth_error_set(BERTH_EINVALID, "auth-param without a value");
            if ((value = dup_n(c->s + c->pos, vn)) == NULL)
                return berth_error_set(BERTH_ERROR, "out of memory");
            c->pos += vn;
        }
        if ((name = dup_lower(c->s + start, n)) == NULL) {
            free(value);
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
        if ((error = add_param(ch, name, value)) < 0)
            return error;
        skip_ws(c);
        if (at_end(c))
            return 0;
        if (peek(c) != ',')
            return berth_error_set(BERTH_EINVALID, "expected ',' between auth-params");
    }
}

int berth_auth_parse_challenges(struct berth_challenge **out, size_t *nout, const char *header,
                                size_t len)
{
    struct cursor c = { header, len, 0 };
    struct berth_challenge *list = NULL, *tmp, *ch;
    size_t n = 0, sn, t68;
    int error = 0;

    *out = NULL;
    *nout = 0;
    if (len > BERTH_AUTH_HEADER_MAX)
        return berth_error_set(BERTH_ETOOBIG, "WWW-Authenticate header too long");
    for (;;) {
        while (!at_end(&c) && (is_ws(peek(&c)) || peek(&c) == ','))
            c.pos++;
        if (at_end(&c))
            break;
        if ((sn = token_len(&c)) == 0) {
            error = berth_error_set(BERTH_EINVALID, "invalid auth-scheme in challenge");
            goto done;
        }
        if (sn >= sizeof(list->scheme)) {
            error = berth_error_set(BERTH_EINVALID, "auth-scheme too long");
            goto done;
        }
        if (n >= BERTH_AUTH_MAX_CHALLENGES) {
            error = berth_error_set(BERTH_ETOOBIG, "too many challenges");
            goto done;
        }
        if ((tmp = realloc(list, (n + 1) * sizeof(*list))) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        list = tmp;
        ch = &list[n++];
        memset(ch, 0, sizeof(*ch));
        for (size_t i = 0; i < sn; i++)
            ch->scheme[i] = (char)tolower((unsigned char)header[c.pos + i]);
        c.pos += sn;
        if (!at_end(&c) && !is_ws(peek(&c)) && peek(&c) != ',') {
            error = berth_error_set(BERTH_EINVALID, "invalid auth-scheme in challenge");
            goto done;
        }
        skip_ws(&c);
        if (at_end(&c) || peek(&c) == ',')
            continue;
        if (looks_token68(&c, &t68)) {
            if ((ch->token68 = dup_n(header + c.pos, t68)) == NULL) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                goto done;
            }
            c.pos += t68;
            continue;
        }
        if ((error = parse_params(&c, ch)) < 0)
            goto done;
    }
    *out = list;
    *nout = n;
    list = NULL;
done:
    if (list)
        berth_challenges_free(list, n);
    return error;
}

void berth_challenges_free(struct berth_challenge *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < c[i].nparams; j++) {
            free(c[i].params[j].name);
            free(c[i].params[j].value);
        }
        free(c[i].params);
        free(c[i].token68);
    }
    free(c);
}

const char *berth_challenge_param(const struct berth_challenge *c, const char *name)
{
    for (size_t i = 0; i < c->nparams; i++)
        if (strcasecmp(c->params[i].name, name) == 0)
            return c->params[i].value;
    return NULL;
}

const struct berth_challenge *berth_challenge_find(const struct berth_challenge *c, size_t n,
                                                   const char *scheme)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(c[i].scheme, scheme) == 0)
            return &c[i];
    return NULL;
}

size_t berth_auth_scope(char *buf, size_t size, const char *repo, const char *actions)
{
    int n;

    if (!repo)
        n = snprintf(buf, size, "registry:catalog:*");
    else
        n = snprintf(buf, size, "repository:%s:%s", repo, actions ? actions : "pull");
    return n < 0 ? 0 : (size_t)n;
}

/* ---- token responses ---- */

/* RFC 3339 date-time: 2009-11-10T23:00:00[.frac](Z|+hh:mm|-hh:mm). */
static time_t parse_rfc3339(const char *s)
{
    struct tm tm;
    const char *p;
    long off = 0;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
        return 0;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != 'z') {
        return 0;
    }
    if ((t = timegm(&tm)) == (time_t)-1)
        return 0;
    return t - off;
}

int berth_auth_token_parse(struct berth_token *out, const uint8_t *body, size_t len)
{
    json_t *root, *v;
    const char *tok = NULL;
    int error = 0;

    memset(out, 0, sizeof(*out));
    if ((root = json_loadb((const char *)body, len, 0, NULL)) == NULL || !json_is_object(root)) {
        error = berth_error_set(BERTH_EINVALID, "token response is not a JSON object");
        goto done;
    }
    v = json_object_get(root, "token");
    if (json_is_string(v) && json_string_length(v) > 0)
        tok = json_string_value(v);
    v = json_object_get(root, "access_token");
    if (!tok && json_is_string(v) && json_string_length(v) > 0)
        tok = json_string_value(v);
    if (!tok) {
        error = berth_error_set(BERTH_EINVALID, "token response holds no token");
        goto done;
    }
    if ((out->token = strdup(tok)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    v = json_object_get(root, "refresh_token");
    if (json_is_string(v) && json_string_length(v) > 0 &&
        (out->refresh_token = strdup(json_string_value(v))) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    out->expires_in = TOKEN_MIN_EXPIRES;
    v = json_object_get(root, "expires_in");
    if (json_is_integer(v) && json_integer_value(v) > TOKEN_MIN_EXPIRES)
        out->expires_in = json_integer_value(v);
    v = json_object_get(root, "issued_at");
    if (json_is_string(v))
        out->issued_at = parse_rfc3339(json_string_value(v));
done:
    if (error < 0)
        berth_token_dispose(out);
    json_decref(root);
    return error;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void berth_token_dispose(struct berth_token *t)
{
    if (!t)
        return;
    free_secret(t->token);
    free_secret(t->refresh_token);
    memset(t, 0, sizeof(*t));
}

/* ---- the token flow ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    char *tmp;

    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > FORM_MAX + 4096 || (tmp = realloc(b->p, cap)) == NULL) {
            b->oom = 1;
            return;
        }
        b->p = tmp;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void sb_esc(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_put(b, s, 1);
        } else {
            char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            sb_put(b, e, 3);
        }
    }
}

static void sb_wipe(struct sbuf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

/* Space-joined scopes for the OAuth2 form's single scope field. */
static void sb_scopes_form(struct sbuf *b, const char *const *scopes, size_t n)
{
    if (n == 0)
        return;
    sb_str(b, "&scope=");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(b, "%20");
        sb_esc(b, scopes[i]);
    }
}

/* A short description of a token server's error body, never its secrets:
 * the first {"errors":[{code,message}]} entry, or "details", or OAuth2's
 * "error"/"error_description". */
static void describe_error(char *buf, size_t size, const uint8_t *body, size_t len)
{
    json_t *root = json_loadb((const char *)body, len, 0, NULL), *e;
    const char *code = NULL, *msg = NULL;

    buf[0] = '\0';
    if (!json_is_object(root))
        goto done;
    e = json_array_get(json_object_get(root, "errors"), 0);
    if (json_is_object(e)) {
        code = json_string_value(json_object_get(e, "code"));
        msg = json_string_value(json_object_get(e, "message"));
    } else if (json_is_string(json_object_get(root, "details"))) {
        msg = json_string_value(json_object_get(root, "details"));
    } else {
        code = json_string_value(json_object_get(root, "error"));
        msg = json_string_value(json_object_get(root, "error_description"));
    }
    if (code && msg)
        snprintf(buf, size, ": %s: %.200s", code, msg);
    else if (code || msg)
        snprintf(buf, size, ": %.200s", code ? code : msg);
done:
    json_decref(root);
}

static int token_answer(struct berth_token *out, const char *realm, long status,
                        const uint8_t *body, size_t len)
{
    char why[256];
    int error;

    if (status == 200) {
        if ((error = berth_auth_token_parse(out, body, len)) < 0)
            return berth_error_set(error, "token server '%s': %s", realm, berth_error_msg());
        return 0;
    }
    describe_error(why, sizeof(why), body, len);
    if (status == 401 || status == 403)
        return berth_error_set(BERTH_EDENIED, "token server '%s' denied access (HTTP %ld)%s",
                               realm, status, why);
    return berth_error_set(BERTH_ERROR, "token server '%s' answered HTTP %ld%s", realm, status,
                           why);
}

static int oauth_post(struct berth_token *out, const char *realm, const char *service,
                      const char *const *scopes, size_t nscopes, const struct berth_creds *creds,
                      int refresh, berth_auth_http_fn http, void *ctx)
{
    struct sbuf form = { 0 };
    uint8_t *body = NULL;
    size_t len = 0;
    long status = 0;
    int error;

    sb_str(&form, refresh ? "grant_type=refresh_token" : "grant_type=password");
    sb_str(&form, "&client_id=berth&access_type=offline");
    if (service) {
        sb_str(&form, "&service=");
        sb_esc(&form, service);
    }
    sb_scopes_form(&form, scopes, nscopes);
    if (refresh) {
        sb_str(&form, "&refresh_token=");
        sb_esc(&form, creds->password);
    } else {
        sb_str(&form, "&username=");
        sb_esc(&form, creds->username);
        sb_str(&form, "&password=");
        sb_esc(&form, creds->password);
    }
    if (form.oom) {
        error = berth_error_set(BERTH_ETOOBIG, "token request too large");
        goto done;
    }
    if ((error = http(ctx, "POST", realm, NULL, NULL, form.p, &status, &body, &len)) < 0)
        goto done;
    error = token_answer(out, realm, status, body, len);
done:
    sb_wipe(&form);
    free(body);
    return error;
}

int berth_auth_fetch_token(struct berth_token *out, const struct berth_challenge *bearer,
                           const char *const *scopes, size_t nscopes,
                           const struct berth_creds *creds, berth_auth_http_fn http, void *ctx)
{
    const char *realm = berth_challenge_param(bearer, "realm");
    const char *service = berth_challenge_param(bearer, "service");
    struct sbuf url = { 0 };
    uint8_t *body = NULL;
    size_t len = 0;
    long status = 0;
    int have_pass, error;
    char sep;

    memset(out, 0, sizeof(*out));
    if (!realm || !*realm)
        return berth_error_set(BERTH_EINVALID, "bearer challenge without a realm");
    if (strncasecmp(realm, "https://", 8) != 0 && strncasecmp(realm, "http://", 7) != 0)
        return berth_error_set(BERTH_EINVALID, "bearer realm '%.200s' is not an http(s) URL",
                               realm);
    if (creds && strcmp(creds->username, "<token>") == 0)
        return oauth_post(out, realm, service, scopes, nscopes, creds, 1, http, ctx);
    have_pass = creds && creds->username[0] && creds->password[0];

    sb_str(&url, realm);
    sep = strchr(realm, '?') ? '&' : '?';
    if (service) {
        sb_put(&url, &sep, 1);
        sb_str(&url, "service=");
        sb_esc(&url, service);
        sep = '&';
    }
    for (size_t i = 0; i < nscopes; i++) {
        sb_put(&url, &sep, 1);
        sb_str(&url, "scope=");
        sb_esc(&url, scopes[i]);
        sep = '&';
    }
    if (url.oom) {
        error = berth_error_set(BERTH_ETOOBIG, "token request too large");
        goto done;
    }
    if ((error = http(ctx, "GET", url.p, have_pass ? creds->username : NULL,
                      have_pass ? creds->password : NULL, NULL, &status, &body, &len)) < 0)
        goto done;
    if ((status == 404 || status == 405) && have_pass) {
        error = oauth_post(out, realm, service, scopes, nscopes, creds, 0, http, ctx);
        goto done;
    }
    error = token_answer(out, realm, status, body, len);
done:
    sb_wipe(&url);
    free(body);
    return error;
}

int berth_auth_basic_value(char *buf, size_t size, const char *user, const char *pass)
{
    size_t ulen = strlen(user), plen = strlen(pass), raw = ulen + 1 + plen;
    unsigned char *tmp;
    int error = 0;

    if (6 + 4 * ((raw + 2) / 3) + 1 > size)
        return berth_error_set(BERTH_ETOOBIG, "credentials too long");
    if ((tmp = malloc(raw + 1)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    memcpy(tmp, user, ulen);
    tmp[ulen] = ':';
    memcpy(tmp + ulen + 1, pass, plen);
    memcpy(buf, "Basic ", 6);
    if (EVP_EncodeBlock((unsigned char *)buf + 6, tmp, (int)raw) < 0)
        error = berth_error_set(BERTH_ERROR, "base64 encoding failed");
    OPENSSL_cleanse(tmp, raw);
    free(tmp);
    return error;
}

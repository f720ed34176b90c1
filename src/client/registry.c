/*
 * The registry client (registry.h) on libcurl: one easy handle per thread
 * (pthread key), connections, DNS and TLS sessions shared through a CURLSH
 * guarded by locks. Every call goes through perform(): pick the scheme
 * (HTTPS; plain HTTP only for local or insecure registries, found by a
 * failed TLS handshake and remembered), add credentials (Basic, or a Bearer
 * token cached per scope), answer a 401 challenge once, retry 429/5xx and
 * dropped connections with backoff. Invariants: every buffer filled from the
 * network is capped; downloaded bytes are checked against their digest;
 * nothing here prints, and no secret reaches an error message.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "auth.h"
#include "commands.h"
#include "core/error.h"
#include "core/manifest.h"
#include "core/reference.h"
#include "creds.h"
#include "registry.h"

#define HEADERS_MAX (64 * 1024)      /* all header lines of one response */
#define ERROR_BODY_MAX (64 * 1024)   /* error bodies kept for the message */
#define TOKEN_BODY_MAX (1024 * 1024) /* token server answers */
#define LIST_BODY_MAX (16 * 1024 * 1024)
#define CHUNK_SIZE ((uint64_t)64 * 1024 * 1024) /* default PATCH size */
#define CHUNK_SIZE_MAX ((uint64_t)1024 * 1024 * 1024)
#define DEFAULT_RETRIES 4
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_MAX_S 60
#define LIST_PAGES_MAX 100000
#define MAX_SCOPES 4
#define URL_MAX 8192

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: " BERTH_MT_OCI_MANIFEST ", " BERTH_MT_OCI_INDEX ", " BERTH_MT_DOCKER_MANIFEST        \
    ", " BERTH_MT_DOCKER_LIST

enum scheme { S_UNKNOWN, S_HTTPS, S_HTTP };
enum auth_kind { A_UNKNOWN, A_BASIC, A_BEARER };

struct token_entry {
    char *scopes; /* space-joined, the cache key */
    char *token;
    time_t expires;
};

struct berth_registry {
    char name[256]; /* as given: "docker.io", "127.0.0.1:5000" */
    char host[256]; /* to connect to: "registry-1.docker.io" */
    int local, insecure, max_retries;
    char *ca_file;

    pthread_mutex_t lock; /* everything below */
    enum scheme scheme;
    enum auth_kind auth;
    struct berth_challenge *bearer; /* the registry's Bearer challenge (realm, service) */
    size_t nbearer;
    int creds_state; /* 0 not loaded, 1 have, -1 none */
    struct berth_creds creds;
    struct token_entry *tokens;
    size_t ntokens;
    CURL **handles;
    size_t nhandles;

    pthread_key_t key; /* this thread's CURL * */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

/* ---- requests and responses ---- */

struct sink {
    int fd;
    off_t start;
    uint64_t done;
    int64_t size_hint;
    struct berth_hasher h;
    berth_progress_fn progress;
    void *ctx;
    int failed; /* errno of a failed write, or -1 for too much data */
};

struct req {
    const char *method;
    const char *path; /* "/v2/..." or an absolute URL (Location, Link) */
    const char *what; /* subject for messages */
    const char *scopes[MAX_SCOPES];
    size_t nscopes;
    const char *accept;       /* full "Accept: ..." line or NULL */
    const char *content_type; /* value or NULL */
    char content_range[64];   /* value or "" */
    const uint8_t *buf;       /* in-memory body */
    size_t buf_len;
    int fd; /* pread body when >= 0 */
    uint64_t fd_off, fd_len;
    int has_body;
    int retry;       /* may be sent again after a dropped connection */
    int no_rewind;   /* libcurl may not resend the body itself (see on_seek) */
    size_t max_body; /* cap on a 2xx body kept in memory */
    struct sink *sink;
    char *scope_buf; /* owned: scopes a challenge added (q->scopes point into it) */
    /* state during a transfer */
    uint64_t sent;
    int sent_basic; /* this attempt carried Basic credentials (a 401 then stands) */
};

struct resp {
    long status;
    uint8_t *body;
    size_t len;
    int too_big;
    int seen; /* sink: data of the current response arrived */
    size_t header_bytes;
    char location[URL_MAX];
    char content_type[256];
    char digest[BERTH_DIGEST_STR_MAX + 8];
    char range[64];
    char link[URL_MAX];
    int64_t content_length;
    long retry_after;
    char *www_auth; /* several headers joined with ", " */
    size_t www_auth_len;
    CURLcode cc;
    char errbuf[CURL_ERROR_SIZE];
    struct req *q;
};

static void resp_reset(struct resp *s)
{
    free(s->body);
    free(s->www_auth);
    memset(s, 0, sizeof(*s));
    s->content_length = -1;
    s->retry_after = -1;
}

static void resp_dispose(struct resp *s)
{
    free(s->body);
    free(s->www_auth);
    s->body = NULL;
    s->www_auth = NULL;
}

/* ---- global and per-registry curl state ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static __thread long last_status;
static int global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    struct berth_registry *r = ctx;

    (void)h;
    (void)access;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&r->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    struct berth_registry *r = ctx;

    (void)h;
    if (data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&r->share_locks[data]);
}

static CURL *thread_handle(struct berth_registry *r)
{
    CURL *h = pthread_getspecific(r->key), **tmp;

    if (h)
        return h;
    if ((h = curl_easy_init()) == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    tmp = realloc(r->handles, (r->nhandles + 1) * sizeof(*tmp));
    if (tmp) {
        r->handles = tmp;
        r->handles[r->nhandles++] = h;
    }
    pthread_mutex_unlock(&r->lock);
    if (!tmp || pthread_setspecific(r->key, h) != 0) {
        if (tmp) {
            pthread_mutex_lock(&r->lock);
            r->nhandles--;
            pthread_mutex_unlock(&r->lock);
        }
        curl_easy_cleanup(h);
        return NULL;
    }
    return h;
}

/* ---- berth's client config: insecure-registries ---- */

static int config_path(char *buf, size_t size)
{
    const char *env = getenv("BERTH_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");

    if (env && *env)
        return snprintf(buf, size, "%s", env) < (int)size ? 0 : -1;
    if (xdg && *xdg)
        return snprintf(buf, size, "%s/berth/config.yml", xdg) < (int)size ? 0 : -1;
    if (home && *home)
        return snprintf(buf, size, "%s/.config/berth/config.yml", home) < (int)size ? 0 : -1;
    return -1;
}

/* "http://host:port/" → "host:port" for comparison. */
static int same_registry(const char *entry, const char *name)
{
    size_t n;

    if (strncasecmp(entry, "http://", 7) == 0)
        entry += 7;
    else if (strncasecmp(entry, "https://", 8) == 0)
        entry += 8;
    n = strlen(entry);
    while (n > 0 && entry[n - 1] == '/')
        n--;
    return n == strlen(name) && strncasecmp(entry, name, n) == 0;
}

/* The CA of a registry with a private certificate, found the way docker and
 * podman find it: <dir>/<registry>/ca.crt in berth's own certs.d
 * ($XDG_CONFIG_HOME/berth/certs.d, else ~/.config/berth/certs.d), then
 * /etc/containers/certs.d and /etc/docker/certs.d. `name` passed the
 * registry-name character check (no '/'), so it cannot leave the directory.
 * A found file replaces the default CA bundle for this registry only. */
static char *certs_d_ca(const char *name)
{
    char dirs[3][4096];
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    size_t n = 0;

    if (xdg && *xdg)
        snprintf(dirs[n++], sizeof(dirs[0]), "%s/berth/certs.d", xdg);
    else if (home && *home)
        snprintf(dirs[n++], sizeof(dirs[0]), "%s/.config/berth/certs.d", home);
    snprintf(dirs[n++], sizeof(dirs[0]), "/etc/containers/certs.d");
    snprintf(dirs[n++], sizeof(dirs[0]), "/etc/docker/certs.d");
    for (size_t i = 0; i < n; i++) {
        char path[sizeof(dirs) + 300];
        snprintf(path, sizeof(path), "%s/%s/ca.crt", dirs[i], name);
        if (access(path, R_OK) == 0)
            return strdup(path);
    }
    return NULL;
}

static int config_insecure(const char *name, const char *host, int *out)
{
    char path[4096];
    FILE *f;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *k, *v;
    int error = 0;

    *out = 0;
    if (config_path(path, sizeof(path)) < 0 || (f = fopen(path, "rb")) == NULL)
        return 0; /* no config: nothing is insecure */
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        error = berth_error_set(BERTH_EINVALID, "%s: line %zu: %s", path,
                                parser.problem_mark.line + 1,
                                parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return error;
    }
    root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             p < root->data.mapping.pairs.top; p++) {
            k = yaml_document_get_node(&doc, p->key);
            v = yaml_document_get_node(&doc, p->value);
            if (!k || k->type != YAML_SCALAR_NODE ||
                strcmp((const char *)k->data.scalar.value, "insecure-registries") != 0)
                continue;
            if (!v || v->type != YAML_SEQUENCE_NODE) {
                error = berth_error_set(BERTH_EINVALID, "%s: insecure-registries must be a list",
                                        path);
                break;
            }
            for (yaml_node_item_t *i = v->data.sequence.items.start;
                 i < v->data.sequence.items.top; i++) {
                yaml_node_t *e = yaml_document_get_node(&doc, *i);
                if (e && e->type == YAML_SCALAR_NODE &&
                    (same_registry((const char *)e->data.scalar.value, name) ||
                     same_registry((const char *)e->data.scalar.value, host)))
                    *out = 1;
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return error;
}

/* ---- lifecycle ---- */

int berth_registry_new(struct berth_registry **out, const char *registry,
                       const struct berth_registry_opts *opts)
{
    struct berth_registry *r = NULL;
    int error = 0, listed = 0, key_ok = 0;

    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc < 0)
        return berth_error_set(BERTH_ERROR, "libcurl initialisation failed");
    if (!registry || !*registry || strlen(registry) >= sizeof(r->name))
        return berth_error_set(BERTH_EINVALID, "invalid registry name '%.200s'",
                               registry ? registry : "");
    for (const char *p = registry; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]_", *p))
            return berth_error_set(BERTH_EINVALID, "invalid registry name '%.200s'", registry);
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&r->share_locks[i], NULL);
    snprintf(r->name, sizeof(r->name), "%s", registry);
    snprintf(r->host, sizeof(r->host), "%s", berth_ref_api_host(registry));
    r->local = berth_registry_is_local(registry);
    r->max_retries = opts && opts->max_retries > 0 ? opts->max_retries : DEFAULT_RETRIES;
    if ((error = config_insecure(r->name, r->host, &listed)) < 0)
        goto done;
    r->insecure = (opts && opts->insecure) || listed;
    if (opts && opts->ca_file && (r->ca_file = strdup(opts->ca_file)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if (!r->ca_file)
        r->ca_file = certs_d_ca(r->name);
    if (opts && opts->username) {
        snprintf(r->creds.username, sizeof(r->creds.username), "%s", opts->username);
        snprintf(r->creds.password, sizeof(r->creds.password), "%s",
                 opts->password ? opts->password : "");
        r->creds_state = 1;
    }
    if (pthread_key_create(&r->key, NULL) != 0) {
        error = berth_error_set(BERTH_ERROR, "pthread_key_create failed");
        goto done;
    }
    key_ok = 1;
    if ((r->share = curl_share_init()) == NULL) {
        error = berth_error_set(BERTH_ERROR, "curl_share_init failed");
        goto done;
    }
    curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(r->share, CURLSHOPT_USERDATA, r);
    curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    *out = r;
    r = NULL;
done:
    if (r) {
        if (key_ok)
            pthread_key_delete(r->key);
        free(r->ca_file);
        berth_creds_clear(&r->creds);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&r->share_locks[i]);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
    return error;
}

void berth_registry_free(struct berth_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nhandles; i++)
        curl_easy_cleanup(r->handles[i]);
    free(r->handles);
    pthread_key_delete(r->key);
    if (r->share)
        curl_share_cleanup(r->share);
    for (size_t i = 0; i < r->ntokens; i++) {
        free(r->tokens[i].scopes);
        OPENSSL_cleanse(r->tokens[i].token, strlen(r->tokens[i].token));
        free(r->tokens[i].token);
    }
    free(r->tokens);
    berth_challenges_free(r->bearer, r->nbearer);
    berth_creds_clear(&r->creds);
    free(r->ca_file);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&r->share_locks[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *berth_registry_name(const struct berth_registry *r)
{
    return r->name;
}

long berth_registry_last_status(void)
{
    return last_status;
}

/* ---- curl callbacks ---- */

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* 1 when the Link value names rel="next"; its URL into s->link. */
static void take_link(struct resp *s, const char *v, size_t n)
{
    const char *lt = memchr(v, '<', n), *gt, *rest;

    while (lt) {
        gt = memchr(lt, '>', n - (size_t)(lt - v));
        if (!gt)
            return;
        rest = gt + 1;
        const char *next_lt = memchr(rest, '<', n - (size_t)(rest - v));
        size_t plen = (size_t)((next_lt ? next_lt : v + n) - rest);
        if (memmem(rest, plen, "rel=\"next\"", 10) || memmem(rest, plen, "rel=next", 8)) {
            copy_value(s->link, sizeof(s->link), lt + 1, (size_t)(gt - lt - 1));
            return;
        }
        lt = next_lt;
    }
}

static int header_is(const char *line, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name);

    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    *v = line + nl + 1;
    *vn = n - nl - 1;
    while (*vn && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*vn)--;
    }
    while (*vn && ((*v)[*vn - 1] == '\r' || (*v)[*vn - 1] == '\n' || (*v)[*vn - 1] == ' '))
        (*vn)--;
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *ud)
{
    struct resp *s = ud;
    size_t n = size * nitems, vn;
    const char *v;
    char num[32];

    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or 100): forget the last one's */
        const char *sp = memchr(line, ' ', n);
        free(s->www_auth);
        s->www_auth = NULL;
        s->www_auth_len = 0;
        s->location[0] = s->content_type[0] = s->digest[0] = s->range[0] = s->link[0] = '\0';
        s->content_length = -1;
        s->retry_after = -1;
        s->len = 0;
        s->seen = 0;
        s->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    if ((s->header_bytes += n) > HEADERS_MAX)
        return 0; /* aborts the transfer */
    if (header_is(line, n, "location", &v, &vn)) {
        copy_value(s->location, sizeof(s->location), v, vn);
    } else if (header_is(line, n, "content-type", &v, &vn)) {
        copy_value(s->content_type, sizeof(s->content_type), v, vn);
    } else if (header_is(line, n, "docker-content-digest", &v, &vn)) {
        copy_value(s->digest, sizeof(s->digest), v, vn);
    } else if (header_is(line, n, "range", &v, &vn)) {
        copy_value(s->range, sizeof(s->range), v, vn);
    } else if (header_is(line, n, "link", &v, &vn)) {
        take_link(s, v, vn);
    } else if (header_is(line, n, "content-length", &v, &vn)) {
        copy_value(num, sizeof(num), v, vn);
        s->content_length = strtoll(num, NULL, 10);
    } else if (header_is(line, n, "retry-after", &v, &vn)) {
        copy_value(num, sizeof(num), v, vn);
        if (isdigit((unsigned char)num[0]))
            s->retry_after = strtol(num, NULL, 10);
    } else if (header_is(line, n, "www-authenticate", &v, &vn)) {
        char *tmp = realloc(s->www_auth, s->www_auth_len + vn + 3);
        if (!tmp)
            return 0;
        s->www_auth = tmp;
        if (s->www_auth_len) {
            memcpy(s->www_auth + s->www_auth_len, ", ", 2);
            s->www_auth_len += 2;
        }
        memcpy(s->www_auth + s->www_auth_len, v, vn);
        s->www_auth_len += vn;
        s->www_auth[s->www_auth_len] = '\0';
    }
    return n;
}

static int sink_restart(struct sink *k)
{
    int error;

    if (lseek(k->fd, k->start, SEEK_SET) < 0 || ftruncate(k->fd, k->start) < 0)
        return -1;
    berth_hasher_dispose(&k->h);
    if ((error = berth_hasher_init(&k->h, k->h.algo)) < 0)
        return -1;
    k->done = 0;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nitems, void *ud)
{
    struct resp *s = ud;
    struct sink *k = s->q->sink;
    size_t n = size * nitems, cap, off;
    uint8_t *tmp;

    if (k && (s->status == 200 || s->status == 206)) {
        if (s->status == 200 && k->done > 0 && !s->seen) {
            /* the server ignored our Range: start over */
            if (sink_restart(k) < 0) {
                k->failed = errno ? errno : EIO;
                return 0;
            }
        }
        s->seen = 1;
        if (k->size_hint >= 0 && k->done + n > (uint64_t)k->size_hint) {
            k->failed = -1;
            return 0;
        }
        for (off = 0; off < n;) {
            ssize_t w = write(k->fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                k->failed = w < 0 ? errno : EIO;
                return 0;
            }
            off += (size_t)w;
        }
        berth_hasher_update(&k->h, data, n);
        k->done += n;
        if (k->progress)
            k->progress(k->ctx, k->done);
        return n;
    }
    cap = (s->status >= 200 && s->status < 300) ? s->q->max_body : ERROR_BODY_MAX;
    if (s->len + n > cap) {
        if (s->status >= 200 && s->status < 300) {
            s->too_big = 1;
            return 0;
        }
        n = cap - s->len; /* error bodies: keep the start, drop the rest */
        if (n == 0)
            return size * nitems;
    }
    if ((tmp = realloc(s->body, s->len + n + 1)) == NULL)
        return 0;
    s->body = tmp;
    memcpy(s->body + s->len, data, n);
    s->len += n;
    s->body[s->len] = '\0';
    return size * nitems;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct req *q = ud;
    size_t want = size * nitems;
    uint64_t total = q->fd >= 0 ? q->fd_len : q->buf_len, left = total - q->sent;
    ssize_t got;

    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (q->fd >= 0) {
        do
            got = pread(q->fd, buf, want, (off_t)(q->fd_off + q->sent));
        while (got < 0 && errno == EINTR);
        if (got <= 0)
            return CURL_READFUNC_ABORT;
        want = (size_t)got;
    } else {
        memcpy(buf, q->buf + q->sent, want);
    }
    q->sent += want;
    return want;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct req *q = ud;
    uint64_t total = q->fd >= 0 ? q->fd_len : q->buf_len;

    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > total)
        return CURL_SEEKFUNC_CANTSEEK;
    /* libcurl rewinds a body to resend it by itself when a reused connection
     * dies before any response byte. For upload bodies whose caller recovers
     * on its own (q->no_rewind: PATCH chunks, blob_put's closing PUT) that
     * silent resend skips the recovery — the session status GET and a resume
     * from the registry's offset, or a new session — and a registry that kept
     * the partial chunk answers the resend with 416 (or a digest error).
     * Refuse it once bytes went out: the transfer fails with
     * CURLE_SEND_FAIL_REWIND (a dropped connection for is_transient) and the
     * caller recovers. */
    if (q->no_rewind && q->sent > 0)
        return CURL_SEEKFUNC_CANTSEEK;
    q->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- one transfer ---- */

static int build_url(char *buf, size_t size, const struct berth_registry *r, enum scheme sc,
                     const char *path)
{
    int n;

    if (strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0)
        n = snprintf(buf, size, "%s", path);
    else
        n = snprintf(buf, size, "%s://%s%s%s", sc == S_HTTP ? "http" : "https", r->host,
                     path[0] == '/' ? "" : "/", path);
    if (n < 0 || (size_t)n >= size)
        return berth_error_set(BERTH_ETOOBIG, "URL too long");
    return 0;
}

static void wipe_list(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);

    if (!n)
        return -1;
    *l = n;
    return 0;
}

/* One HTTP exchange on this thread's handle; the outcome is in s->cc and
 * s->status. `authz` is a full "Authorization: ..." line or NULL. */
static void transfer(struct berth_registry *r, CURL *h, struct req *q, struct resp *s,
                     const char *url, const char *authz)
{
    struct curl_slist *hl = NULL;
    char line[512];
    int bad = 0;
    long code = 0;

    resp_reset(s);
    s->q = q;
    q->sent = 0;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, r->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (r->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (r->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);

    bad |= add_header(&hl, "Expect:");
    if (q->accept)
        bad |= add_header(&hl, q->accept);
    if (q->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", q->content_type);
        bad |= add_header(&hl, line);
    }
    if (q->content_range[0]) {
        snprintf(line, sizeof(line), "Content-Range: %s", q->content_range);
        bad |= add_header(&hl, line);
    }
    if (q->sink && q->sink->done > 0) {
        snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)q->sink->done);
        bad |= add_header(&hl, line);
    }
    if (authz)
        bad |= add_header(&hl, authz);
    if (bad) {
        s->cc = CURLE_OUT_OF_MEMORY;
        goto done;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

    if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    } else if (strcmp(q->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    } else if (q->has_body || strcmp(q->method, "DELETE") != 0) {
        /* PUT/POST/PATCH, with a body or an explicit Content-Length: 0 */
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, q);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, q);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)(!q->has_body ? 0 : q->fd >= 0 ? q->fd_len : q->buf_len));
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    s->cc = curl_easy_perform(h);
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code)
        s->status = code;
done:
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    wipe_list(hl);
    OPENSSL_cleanse(line, sizeof(line));
}

/* ---- errors ---- */

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

static enum berth_oci_code oci_of(const char *code)
{
    for (int c = BERTH_OCI_NONE + 1; c < BERTH_OCI__COUNT; c++)
        if (strcmp(berth_oci_code_str((enum berth_oci_code)c), code) == 0)
            return (enum berth_oci_code)c;
    return BERTH_OCI_NONE;
}

static const char *status_text(long status)
{
    switch (status) {
    case 401:
        return "authentication required";
    case 403:
        return "access denied";
    case 404:
        return "not found";
    case 405:
        return "operation not supported";
    case 429:
        return "too many requests";
    default:
        return NULL;
    }
}

/* The registry's error response as a berth error: "<what>: CODE: message"
 * from the OCI error body (spec "Error Codes"), else "HTTP <status>". */
static int http_error(const struct resp *s, const char *what)
{
    enum berth_oci_code oci = BERTH_OCI_NONE;
    char detail[768] = "";
    size_t used = 0;
    json_t *root = NULL, *errs;
    int code;

    if (s->len)
        root = json_loadb((const char *)s->body, s->len, 0, NULL);
    errs = json_object_get(root, "errors");
    for (size_t i = 0; json_is_array(errs) && i < json_array_size(errs) && i < 3; i++) {
        json_t *e = json_array_get(errs, i);
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *m = json_string_value(json_object_get(e, "message"));
        int n;
        if (!c && !m)
            continue;
        if (i == 0 && c)
            oci = oci_of(c);
        n = snprintf(detail + used, sizeof(detail) - used, "%s%s%s%.200s", used ? "; " : "",
                     c ? c : "", c && m ? ": " : "", m ? m : "");
        if (n < 0 || (size_t)n >= sizeof(detail) - used)
            break;
        used += (size_t)n;
    }
    json_decref(root);
    if (!detail[0]) {
        const char *txt = status_text(s->status);
        if (txt)
            snprintf(detail, sizeof(detail), "%s (HTTP %ld)", txt, s->status);
        else
            snprintf(detail, sizeof(detail), "HTTP %ld", s->status);
    }
    sanitize(detail);
    code = s->status == 404 ? BERTH_ENOTFOUND
           : (s->status == 401 || s->status == 403) ? BERTH_EDENIED
                                                     : BERTH_ERROR;
    return berth_error_set_oci(code, oci, "%s: %s", what, detail);
}

static int is_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND: /* dropped mid-body, resend refused by on_seek */
        return 1;
    default:
        return 0;
    }
}

static int is_handshake_failure(CURLcode cc)
{
    return cc == CURLE_SSL_CONNECT_ERROR;
}

static void backoff(int attempt, long retry_after)
{
    static __thread unsigned seed;
    struct timespec ts;
    long ms;

    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&ts;
    if (retry_after >= 0) {
        ms = (retry_after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after) * 1000L;
    } else {
        ms = BACKOFF_BASE_MS << (attempt > 10 ? 10 : attempt);
        if (ms > BACKOFF_MAX_MS)
            ms = BACKOFF_MAX_MS;
        ms = ms / 2 + (long)(rand_r(&seed) % (unsigned)(ms > 1 ? ms : 1)); /* jitter: 50..150% */
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int transport_error(const struct berth_registry *r, const struct req *q,
                           const struct resp *s)
{
    const char *why = s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->cc);
    char cfg[4096] = "its config file";

    if (q->sink && q->sink->failed > 0)
        return berth_error_set(BERTH_ERROR, "%s: writing: %s", q->what, strerror(q->sink->failed));
    if (q->sink && q->sink->failed < 0)
        return berth_error_set(BERTH_EMISMATCH, "%s: more data than the expected %lld bytes",
                               q->what, (long long)q->sink->size_hint);
    if (s->too_big)
        return berth_error_set(BERTH_ETOOBIG, "%s: response larger than %zu bytes", q->what,
                               q->max_body);
    if (s->cc == CURLE_PEER_FAILED_VERIFICATION)
        return berth_error_set(BERTH_ERROR,
                               "%s: TLS certificate of '%s' not trusted (%s); put its CA in "
                               "~/.config/berth/certs.d/%s/ca.crt (or docker's or podman's "
                               "certs.d), add it to the system's trust store, or allow it "
                               "with --insecure",
                               q->what, r->host, why, r->name);
    if (is_handshake_failure(s->cc) && !r->local && !r->insecure) {
        config_path(cfg, sizeof(cfg));
        return berth_error_set(BERTH_ERROR,
                               "registry '%s' is not served over HTTPS (TLS handshake failed: %s); "
                               "berth uses plain HTTP only for localhost, 127.0.0.0/8 and ::1, "
                               "or for a registry allowed with --insecure or listed under "
                               "'insecure-registries:' in %s",
                               r->name, why, cfg);
    }
    return berth_error_set(BERTH_ERROR, "%s: %s", q->what, why);
}

/* ---- authentication ---- */

/* Credentials for this registry, looked up once (under r->lock). 1 when we
 * have some, 0 for anonymous, negative when the lookup itself failed. */
static int load_creds_locked(struct berth_registry *r)
{
    int error;

    if (r->creds_state == 0) {
        error = berth_creds_get(&r->creds, r->name);
        if (error == BERTH_ENOTFOUND) {
            berth_error_clear();
            r->creds_state = -1;
        } else if (error < 0) {
            return error;
        } else {
            r->creds_state = 1;
        }
    }
    return r->creds_state > 0;
}

static char *join_scopes(const char *const *scopes, size_t n)
{
    size_t len = 1;
    char *s;

    for (size_t i = 0; i < n; i++)
        len += strlen(scopes[i]) + 1;
    if ((s = malloc(len)) == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, scopes[i]);
    }
    return s;
}

static int cache_token(struct berth_registry *r, const char *key, const struct berth_token *t)
{
    struct token_entry *e = NULL, *tmp;
    char *tok;
    time_t now = time(NULL);

    if ((tok = strdup(t->token)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->ntokens; i++)
        if (strcmp(r->tokens[i].scopes, key) == 0)
            e = &r->tokens[i];
    if (!e) {
        char *k = strdup(key);
        tmp = k ? realloc(r->tokens, (r->ntokens + 1) * sizeof(*tmp)) : NULL;
        if (!tmp) {
            pthread_mutex_unlock(&r->lock);
            free(k);
            OPENSSL_cleanse(tok, strlen(tok));
            free(tok);
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
        r->tokens = tmp;
        e = &r->tokens[r->ntokens++];
        e->scopes = k;
    } else {
        OPENSSL_cleanse(e->token, strlen(e->token));
        free(e->token);
    }
    e->token = tok;
    /* renew a little early, so a token does not expire in flight */
    e->expires = now + t->expires_in - (t->expires_in > 40 ? 10 : t->expires_in / 4);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* auth.c's transport: the token server, with this registry's TLS settings. */
static int auth_http(void *ctx, const char *method, const char *url, const char *user,
                     const char *pass, const char *form, long *status, uint8_t **body,
                     size_t *len)
{
    struct berth_registry *r = ctx;
    struct req q = { 0 };
    struct resp s = { 0 };
    char *authz = NULL;
    CURL *h = thread_handle(r);
    int error = 0;

    *body = NULL;
    *len = 0;
    if (!h)
        return berth_error_set(BERTH_ERROR, "curl_easy_init failed");
    q.method = method;
    q.path = url;
    q.what = "token request";
    q.fd = -1;
    q.max_body = TOKEN_BODY_MAX;
    q.retry = 1;
    if (form) {
        q.content_type = "application/x-www-form-urlencoded";
        q.buf = (const uint8_t *)form;
        q.buf_len = strlen(form);
        q.has_body = 1;
    }
    if (user) {
        char basic[sizeof(r->creds.username) + sizeof(r->creds.password) * 2];
        if ((error = berth_auth_basic_value(basic, sizeof(basic), user, pass)) < 0)
            return error;
        if ((authz = malloc(strlen(basic) + 32)) == NULL) {
            OPENSSL_cleanse(basic, sizeof(basic));
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
        sprintf(authz, "Authorization: %s", basic);
        OPENSSL_cleanse(basic, sizeof(basic));
    }
    for (int attempt = 0;; attempt++) {
        transfer(r, h, &q, &s, url, authz);
        if (s.cc != CURLE_OK && is_transient(s.cc) && attempt < r->max_retries) {
            backoff(attempt, -1);
            continue;
        }
        if (s.cc == CURLE_OK && (s.status == 429 || s.status >= 500) &&
            attempt < r->max_retries) {
            backoff(attempt, s.retry_after);
            continue;
        }
        break;
    }
    if (s.cc != CURLE_OK) {
        error = berth_error_set(BERTH_ERROR, "token server: %s",
                                s.errbuf[0] ? s.errbuf : curl_easy_strerror(s.cc));
        goto done;
    }
    *status = s.status;
    *body = s.body;
    *len = s.len;
    s.body = NULL;
done:
    if (authz) {
        OPENSSL_cleanse(authz, strlen(authz));
        free(authz);
    }
    resp_dispose(&s);
    return error;
}

/* A Bearer token for the scopes: from the cache unless `force`, else from
 * the token server named by the registry's challenge. *out is malloc'd. */
static int get_token(struct berth_registry *r, const char *const *scopes, size_t n, int force,
                     char **out)
{
    struct berth_challenge ch = { .scheme = "bearer" };
    struct berth_auth_param params[2];
    struct berth_creds creds;
    struct berth_token tok = { 0 };
    const char *realm, *service;
    char *key = join_scopes(scopes, n);
    int have, error = 0;

    *out = NULL;
    memset(params, 0, sizeof(params));
    if (!key)
        return berth_error_set(BERTH_ERROR, "out of memory");
    pthread_mutex_lock(&r->lock);
    if (!force) {
        for (size_t i = 0; i < r->ntokens; i++) {
            if (strcmp(r->tokens[i].scopes, key) == 0 && r->tokens[i].expires > time(NULL)) {
                *out = strdup(r->tokens[i].token);
                break;
            }
        }
        if (*out) {
            pthread_mutex_unlock(&r->lock);
            goto done;
        }
    }
    if ((have = load_creds_locked(r)) < 0) {
        pthread_mutex_unlock(&r->lock);
        error = have;
        goto done;
    }
    creds = r->creds;
    realm = berth_challenge_find(r->bearer, r->nbearer, "bearer")
                ? berth_challenge_param(berth_challenge_find(r->bearer, r->nbearer, "bearer"),
                                        "realm")
                : NULL;
    service = berth_challenge_find(r->bearer, r->nbearer, "bearer")
                  ? berth_challenge_param(berth_challenge_find(r->bearer, r->nbearer, "bearer"),
                                          "service")
                  : NULL;
    params[0].name = (char *)"realm";
    params[0].value = realm ? strdup(realm) : NULL;
    params[1].name = (char *)"service";
    params[1].value = service ? strdup(service) : NULL;
    pthread_mutex_unlock(&r->lock);
    ch.params = params;
    ch.nparams = params[1].value ? 2 : params[0].value ? 1 : 0;
    if ((realm && !params[0].value) || (service && !params[1].value)) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto wipe;
    }
    if ((error = berth_auth_fetch_token(&tok, &ch, scopes, n, have ? &creds : NULL, auth_http,
                                        r)) < 0)
        goto wipe;
    if ((error = cache_token(r, key, &tok)) < 0)
        goto wipe;
    if ((*out = strdup(tok.token)) == NULL)
        error = berth_error_set(BERTH_ERROR, "out of memory");
wipe:
    berth_creds_clear(&creds);
    berth_token_dispose(&tok);
    free(params[0].value);
    free(params[1].value);
done:
    free(key);
    if (!error && !*out)
        error = berth_error_set(BERTH_ERROR, "out of memory");
    return error;
}

/* 1 when `path` is relative or an absolute URL on the registry's own host:
 * credentials never follow a Location or Link to another host. */
static int own_host(const struct berth_registry *r, const char *path)
{
    const char *h = strstr(path, "://");
    size_t n;

    if (!h || path[0] == '/')
        return 1;
    h += 3;
    n = strcspn(h, "/?#");
    return n == strlen(r->host) && strncasecmp(h, r->host, n) == 0;
}

/* The Authorization line for a request, or NULL when we send none. */
static int auth_line(struct berth_registry *r, struct req *q, char **out)
{
    enum auth_kind kind;
    char *tok = NULL;
    int error = 0;

    *out = NULL;
    q->sent_basic = 0;
    if (!own_host(r, q->path))
        return 0;
    pthread_mutex_lock(&r->lock);
    kind = r->auth;
    pthread_mutex_unlock(&r->lock);
    if (kind == A_BASIC) {
        char basic[sizeof(r->creds.username) + sizeof(r->creds.password) * 2];
        pthread_mutex_lock(&r->lock);
        error = load_creds_locked(r);
        if (error > 0)
            error = berth_auth_basic_value(basic, sizeof(basic), r->creds.username,
                                           r->creds.password);
        pthread_mutex_unlock(&r->lock);
        if (error == 0 && (*out = malloc(strlen(basic) + 32)) != NULL) {
            sprintf(*out, "Authorization: %s", basic);
            q->sent_basic = 1;
        } else if (error == 0)
            error = berth_error_set(BERTH_ERROR, "out of memory");
        OPENSSL_cleanse(basic, sizeof(basic));
        return error > 0 ? 0 : error;
    }
    if (kind != A_BEARER)
        return 0;
    if ((error = get_token(r, q->scopes, q->nscopes, 0, &tok)) < 0)
        return error;
    if ((*out = malloc(strlen(tok) + 32)) == NULL)
        error = berth_error_set(BERTH_ERROR, "out of memory");
    else
        sprintf(*out, "Authorization: Bearer %s", tok);
    OPENSSL_cleanse(tok, strlen(tok));
    free(tok);
    return error;
}

/* A 401 arrived: learn the challenge. 1 when the request should be sent
 * again with new credentials, 0 when the 401 stands, negative on error. */
static int answer_challenge(struct berth_registry *r, struct req *q, const struct resp *s)
{
    struct berth_challenge *ch = NULL;
    const struct berth_challenge *bearer, *basic;
    const char *scopes[MAX_SCOPES + 4];
    size_t nch = 0, n = 0;
    char *extra = NULL, *tok = NULL, *save = NULL, *p;
    int error = 0, have;

    if (!s->www_auth || berth_auth_parse_challenges(&ch, &nch, s->www_auth, s->www_auth_len) < 0) {
        berth_error_clear();
        return 0;
    }
    bearer = berth_challenge_find(ch, nch, "bearer");
    basic = berth_challenge_find(ch, nch, "basic");
    pthread_mutex_lock(&r->lock);
    have = load_creds_locked(r);
    if (have >= 0 && bearer) {
        berth_challenges_free(r->bearer, r->nbearer);
        r->bearer = ch;
        r->nbearer = nch;
        r->auth = A_BEARER;
        ch = NULL;
    } else if (have >= 0 && basic) {
        r->auth = A_BASIC;
    }
    pthread_mutex_unlock(&r->lock);
    if (have < 0) {
        error = have;
        goto done;
    }
    if (bearer) {
        /* our scopes, plus any the challenge asks for that we lack */
        const char *cs;
        for (size_t i = 0; i < q->nscopes; i++)
            scopes[n++] = q->scopes[i];
        pthread_mutex_lock(&r->lock);
        cs = berth_challenge_param(berth_challenge_find(r->bearer, r->nbearer, "bearer"), "scope");
        extra = cs ? strdup(cs) : NULL;
        pthread_mutex_unlock(&r->lock);
        for (p = extra ? strtok_r(extra, " ", &save) : NULL; p && n < MAX_SCOPES + 4;
             p = strtok_r(NULL, " ", &save)) {
            size_t i;
            for (i = 0; i < n && strcmp(scopes[i], p) != 0; i++)
                ;
            if (i == n)
                scopes[n++] = p;
        }
        if (n > q->nscopes && n <= MAX_SCOPES) {
            /* keep the widened scope list for the retry's cache key */
            for (size_t i = q->nscopes; i < n; i++)
                q->scopes[i] = scopes[i];
            q->nscopes = n;
            free(q->scope_buf);
            q->scope_buf = extra;
            extra = NULL;
        }
        if ((error = get_token(r, q->scopes, q->nscopes, 1, &tok)) < 0)
            goto done;
        error = 1;
    } else if (basic) {
        if (!have)
            error = berth_error_set(BERTH_EDENIED,
                                    "%s: authentication required; log in with 'berth login %s'",
                                    q->what, r->name);
        else
            /* Decided by what this attempt sent, not by r->auth: parallel
             * requests that went out anonymously must retry even when another
             * thread switched the registry to Basic first. */
            error = q->sent_basic ? 0 : 1;
    }
done:
    if (tok) {
        OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
    }
    free(extra);
    berth_challenges_free(ch, nch);
    return error;
}

/* ---- the request loop ---- */

/* Send q and leave the final response in s: scheme choice (HTTPS, falling
 * back to plain HTTP once for local/insecure registries whose TLS handshake
 * fails), credentials, one answer to a 401 challenge, and retries with
 * backoff on 429, 5xx and dropped connections when q->retry allows. Returns
 * 0 with any HTTP status in s->status; negative for transport failures. */
static int perform(struct berth_registry *r, struct req *q, struct resp *s)
{
    CURL *h = thread_handle(r);
    char url[URL_MAX], *authz = NULL;
    int attempt = 0, reauth = 0, probing, error;
    enum scheme sc;

    last_status = 0;
    if (!h)
        return berth_error_set(BERTH_ERROR, "curl_easy_init failed");
    for (;;) {
        pthread_mutex_lock(&r->lock);
        sc = r->scheme;
        pthread_mutex_unlock(&r->lock);
        probing = sc == S_UNKNOWN;
        if (probing)
            sc = S_HTTPS;
        if ((error = build_url(url, sizeof(url), r, sc, q->path)) < 0)
            goto done;
        if ((error = auth_line(r, q, &authz)) < 0)
            goto done;
        transfer(r, h, q, s, url, authz);
        if (authz) {
            OPENSSL_cleanse(authz, strlen(authz));
            free(authz);
            authz = NULL;
        }
        if (s->cc != CURLE_OK) {
            if (probing && is_handshake_failure(s->cc) && (r->local || r->insecure)) {
                pthread_mutex_lock(&r->lock);
                if (r->scheme == S_UNKNOWN)
                    r->scheme = S_HTTP; /* remembered: Docker's localhost rule */
                pthread_mutex_unlock(&r->lock);
                continue;
            }
            if (q->retry && is_transient(s->cc) && attempt < r->max_retries &&
                !(q->sink && q->sink->failed)) {
                backoff(attempt++, -1);
                continue;
            }
            error = transport_error(r, q, s);
            goto done;
        }
        if (probing) {
            pthread_mutex_lock(&r->lock);
            if (r->scheme == S_UNKNOWN)
                r->scheme = sc;
            pthread_mutex_unlock(&r->lock);
        }
        if (s->status == 401 && !reauth) {
            reauth = 1;
            if ((error = answer_challenge(r, q, s)) < 0)
                goto done;
            if (error == 1)
                continue;
        }
        if ((s->status == 429 || s->status >= 500) && q->retry && attempt < r->max_retries) {
            backoff(attempt++, s->retry_after);
            continue;
        }
        last_status = s->status;
        error = 0;
        goto done;
    }
done:
    free(q->scope_buf);
    q->scope_buf = NULL;
    return error;
}

/* ---- API helpers ---- */

/* A tag or digest safe to put in a URL path. */
static int check_ref(const char *ref)
{
    if (!ref || !*ref || strlen(ref) > 200)
        return berth_error_set(BERTH_EINVALID, "invalid tag or digest '%.200s'", ref ? ref : "");
    for (const char *p = ref; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-:+=", *p))
            return berth_error_set(BERTH_EINVALID, "invalid tag or digest '%.200s'", ref);
    return 0;
}

static int check_repo(const char *repo)
{
    if (!repo || !*repo || strlen(repo) > 255)
        return berth_error_set(BERTH_EINVALID, "invalid repository name '%.200s'",
                               repo ? repo : "");
    for (const char *p = repo; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p))
            return berth_error_set(BERTH_EINVALID, "invalid repository name '%.200s'", repo);
    return 0;
}

static void req_init(struct req *q, const char *method, const char *path, const char *what)
{
    memset(q, 0, sizeof(*q));
    q->method = method;
    q->path = path;
    q->what = what;
    q->fd = -1;
    q->max_body = ERROR_BODY_MAX;
    q->retry = 1;
}

/* "Content-Type: x; charset=..." → "x" */
static void bare_media_type(char *dst, size_t size, const char *ct)
{
    size_t n = strcspn(ct, ";");

    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    copy_value(dst, size, ct, n);
}

static const char *what_ref(char *buf, size_t size, const struct berth_registry *r,
                            const char *repo, const char *ref)
{
    snprintf(buf, size, "%s/%s%s%s", r->name, repo, strchr(ref, ':') ? "@" : ":", ref);
    return buf;
}

int berth_registry_ping(struct berth_registry *r)
{
    struct req q;
    struct resp s = { 0 };
    char what[300];
    int error;

    snprintf(what, sizeof(what), "registry '%s'", r->name);
    req_init(&q, "GET", "/v2/", what);
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status == 200)
        error = 0;
    else if (s.status == 404)
        error = berth_error_set(BERTH_ERROR, "%s does not speak the registry API (GET /v2/ "
                                             "answered 404)", what);
    else
        error = http_error(&s, what);
done:
    resp_dispose(&s);
    return error;
}

void berth_blob_buf_dispose(struct berth_blob_buf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* The digest a fetched manifest must have: the reference's when it is a
 * digest, else the registry's Docker-Content-Digest when it sent one. */
static int verify_manifest(struct berth_blob_buf *out, const char *ref, const struct resp *s,
                           const char *what)
{
    struct berth_digest want = { 0 };
    int have_want = 0, error;

    if (strchr(ref, ':')) {
        if ((error = berth_digest_parse(&want, ref, strlen(ref))) < 0)
            return error;
        have_want = 1;
    } else if (s->digest[0] && berth_digest_parse(&want, s->digest, strlen(s->digest)) == 0) {
        have_want = 1;
    }
    berth_error_clear();
    if ((error = berth_digest_buf(&out->digest, have_want ? want.algo : BERTH_SHA256, out->data,
                                  out->len)) < 0)
        return error;
    if (have_want && !berth_digest_equal(&want, &out->digest))
        return berth_error_set(BERTH_EMISMATCH, "%s: manifest digest is %s, expected %s", what,
                               out->digest.str, want.str);
    return 0;
}

int berth_registry_manifest_get(struct berth_registry *r, const char *repo, const char *ref,
                                struct berth_blob_buf *out)
{
    struct req q;
    struct resp s = { 0 };
    char path[600], scope[300], what[600];
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = check_repo(repo)) < 0 || (error = check_ref(ref)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    req_init(&q, "GET", path, what_ref(what, sizeof(what), r, repo, ref));
    q.scopes[q.nscopes++] = scope;
    q.accept = ACCEPT_MANIFESTS;
    q.max_body = BERTH_MANIFEST_MAX_DEFAULT;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    out->data = s.body ? s.body : malloc(1);
    out->len = s.len;
    s.body = NULL;
    if (!out->data) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    bare_media_type(out->media_type, sizeof(out->media_type), s.content_type);
    if (berth_manifest_kind_of(out->media_type, strlen(out->media_type)) == BERTH_MK_UNKNOWN) {
        /* a generic Content-Type: take the body's mediaType */
        json_t *root = json_loadb((const char *)out->data, out->len, 0, NULL);
        const char *mt = json_string_value(json_object_get(root, "mediaType"));
        if (mt)
            snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
        json_decref(root);
    }
    error = verify_manifest(out, ref, &s, what);
done:
    if (error < 0)
        berth_blob_buf_dispose(out);
    resp_dispose(&s);
    return error;
}

int berth_registry_manifest_head(struct berth_registry *r, const char *repo, const char *ref,
                                 struct berth_digest *digest, uint64_t *size, char *media_type,
                                 size_t mtlen)
{
    struct req q;
    struct resp s = { 0 };
    struct berth_blob_buf b = { 0 };
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0 || (error = check_ref(ref)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    req_init(&q, "HEAD", path, what_ref(what, sizeof(what), r, repo, ref));
    q.scopes[q.nscopes++] = scope;
    q.accept = ACCEPT_MANIFESTS;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    if (!s.digest[0] || berth_digest_parse(digest, s.digest, strlen(s.digest)) < 0 ||
        s.content_length < 0) {
        /* no usable Docker-Content-Digest: fetch and hash it ourselves */
        berth_error_clear();
        if ((error = berth_registry_manifest_get(r, repo, ref, &b)) < 0)
            goto done;
        *digest = b.digest;
        if (size)
            *size = b.len;
        if (media_type && mtlen)
            snprintf(media_type, mtlen, "%s", b.media_type);
        goto done;
    }
    if (strchr(ref, ':') && strcmp(ref, digest->str) != 0) {
        error = berth_error_set(BERTH_EMISMATCH, "%s: registry answered digest %s", what,
                                digest->str);
        goto done;
    }
    if (size)
        *size = (uint64_t)s.content_length;
    if (media_type && mtlen)
        bare_media_type(media_type, mtlen, s.content_type);
done:
    berth_blob_buf_dispose(&b);
    resp_dispose(&s);
    return error;
}

int berth_registry_manifest_put(struct berth_registry *r, const char *repo, const char *ref,
                                const char *media_type, const uint8_t *body, size_t len,
                                struct berth_digest *out_digest)
{
    struct req q;
    struct resp s = { 0 };
    struct berth_digest mine, theirs, want;
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0 || (error = check_ref(ref)) < 0)
        return error;
    if (len > BERTH_MANIFEST_MAX_DEFAULT)
        return berth_error_set(BERTH_ETOOBIG, "manifest too large (%zu bytes)", len);
    if (strchr(ref, ':')) {
        if ((error = berth_digest_parse(&want, ref, strlen(ref))) < 0)
            return error;
        if ((error = berth_digest_buf(&mine, want.algo, body, len)) < 0)
            return error;
        if (!berth_digest_equal(&mine, &want))
            return berth_error_set(BERTH_EMISMATCH, "manifest digest is %s, not %s", mine.str,
                                   want.str);
    } else if ((error = berth_digest_buf(&mine, BERTH_SHA256, body, len)) < 0) {
        return error;
    }
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    berth_auth_scope(scope, sizeof(scope), repo, "pull,push");
    req_init(&q, "PUT", path, what_ref(what, sizeof(what), r, repo, ref));
    q.scopes[q.nscopes++] = scope;
    q.content_type = media_type;
    q.buf = body;
    q.buf_len = len;
    q.has_body = 1;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 201 && s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    if (s.digest[0] && berth_digest_parse(&theirs, s.digest, strlen(s.digest)) == 0 &&
        theirs.algo == mine.algo && !berth_digest_equal(&theirs, &mine)) {
        error = berth_error_set(BERTH_EMISMATCH, "%s: registry stored digest %s, expected %s",
                                what, theirs.str, mine.str);
        goto done;
    }
    berth_error_clear();
    if (out_digest)
        *out_digest = mine;
done:
    resp_dispose(&s);
    return error;
}

int berth_registry_manifest_delete(struct berth_registry *r, const char *repo, const char *ref)
{
    struct req q;
    struct resp s = { 0 };
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0 || (error = check_ref(ref)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", repo, ref);
    berth_auth_scope(scope, sizeof(scope), repo, "delete");
    req_init(&q, "DELETE", path, what_ref(what, sizeof(what), r, repo, ref));
    q.scopes[q.nscopes++] = scope;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 202 && s.status != 200 && s.status != 204)
        error = http_error(&s, what);
done:
    resp_dispose(&s);
    return error;
}

int berth_registry_repo_delete(struct berth_registry *r, const char *repo)
{
    struct req q;
    struct resp s = { 0 };
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/_berth/repositories/%s", repo);
    berth_auth_scope(scope, sizeof(scope), repo, "delete");
    snprintf(what, sizeof(what), "%s/%s", r->name, repo);
    req_init(&q, "DELETE", path, what);
    q.scopes[q.nscopes++] = scope;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 202 && s.status != 200 && s.status != 204)
        error = http_error(&s, what);
done:
    resp_dispose(&s);
    return error;
}

/* ---- blobs ---- */

static const char *what_blob(char *buf, size_t size, const struct berth_registry *r,
                             const char *repo, const struct berth_digest *d)
{
    snprintf(buf, size, "blob %s in %s/%s", d->str, r->name, repo);
    return buf;
}

int berth_registry_blob_exists(struct berth_registry *r, const char *repo,
                               const struct berth_digest *d, uint64_t *size)
{
    struct req q;
    struct resp s = { 0 };
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, d->str);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    req_init(&q, "HEAD", path, what_blob(what, sizeof(what), r, repo, d));
    q.scopes[q.nscopes++] = scope;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status == 200) {
        if (size)
            *size = s.content_length >= 0 ? (uint64_t)s.content_length : 0;
        error = 1;
    } else if (s.status == 404) {
        error = 0;
    } else {
        error = http_error(&s, what);
    }
done:
    resp_dispose(&s);
    return error;
}

int berth_registry_blob_get(struct berth_registry *r, const char *repo,
                            const struct berth_digest *d, int64_t size_hint, int fd,
                            berth_progress_fn progress, void *ctx)
{
    struct req q;
    struct resp s = { 0 };
    struct sink k = { 0 };
    struct berth_digest got;
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0)
        return error;
    k.fd = fd;
    k.size_hint = size_hint;
    k.progress = progress;
    k.ctx = ctx;
    if ((k.start = lseek(fd, 0, SEEK_CUR)) < 0)
        k.start = 0; /* a pipe: resuming still works, restarting cannot */
    if ((error = berth_hasher_init(&k.h, d->algo)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, d->str);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    req_init(&q, "GET", path, what_blob(what, sizeof(what), r, repo, d));
    q.scopes[q.nscopes++] = scope;
    q.sink = &k;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 200 && s.status != 206) {
        error = http_error(&s, what);
        goto done;
    }
    if (size_hint >= 0 && k.done != (uint64_t)size_hint) {
        error = berth_error_set(BERTH_EMISMATCH, "%s: got %llu bytes, expected %lld", what,
                                (unsigned long long)k.done, (long long)size_hint);
        goto done;
    }
    if ((error = berth_hasher_final(&k.h, &got)) < 0)
        goto done;
    if (!berth_digest_equal(&got, d))
        error = berth_error_set(BERTH_EMISMATCH, "%s: content has digest %s", what, got.str);
done:
    berth_hasher_dispose(&k.h);
    resp_dispose(&s);
    return error;
}

int berth_registry_blob_get_buf(struct berth_registry *r, const char *repo,
                                const struct berth_digest *d, size_t max, uint8_t **out,
                                size_t *len)
{
    struct req q;
    struct resp s = { 0 };
    struct berth_digest got;
    char path[600], scope[300], what[600];
    int error;

    *out = NULL;
    *len = 0;
    if ((error = check_repo(repo)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, d->str);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    req_init(&q, "GET", path, what_blob(what, sizeof(what), r, repo, d));
    q.scopes[q.nscopes++] = scope;
    q.max_body = max;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    if ((error = berth_digest_buf(&got, d->algo, s.body, s.len)) < 0)
        goto done;
    if (!berth_digest_equal(&got, d)) {
        error = berth_error_set(BERTH_EMISMATCH, "%s: content has digest %s", what, got.str);
        goto done;
    }
    *out = s.body ? s.body : calloc(1, 1);
    *len = s.len;
    s.body = NULL;
    if (!*out)
        error = berth_error_set(BERTH_ERROR, "out of memory");
done:
    resp_dispose(&s);
    return error;
}

/* Location of an upload session into `loc` (relative paths kept as sent). */
static int take_location(char *loc, size_t size, const struct resp *s, const char *what)
{
    if (!s->location[0])
        return berth_error_set(BERTH_ERROR, "%s: registry sent no upload Location", what);
    copy_value(loc, size, s->location, strlen(s->location));
    return 0;
}

/* POST /v2/<repo>/blobs/uploads/[?query]: 202 with a session Location, or
 * 201 when the registry completed it (mount, monolithic POST). */
static int upload_start(struct berth_registry *r, const char *repo, const char *query,
                        const char *const *scopes, size_t nscopes, const uint8_t *body,
                        size_t len, const char *what, char *loc, size_t locsize, long *status)
{
    struct req q;
    struct resp s = { 0 };
    char path[1200];
    int error;

    snprintf(path, sizeof(path), "/v2/%s/blobs/uploads/%s", repo, query ? query : "");
    req_init(&q, "POST", path, what);
    for (size_t i = 0; i < nscopes && i < MAX_SCOPES; i++)
        q.scopes[q.nscopes++] = scopes[i];
    if (body) {
        q.buf = body;
        q.buf_len = len;
        q.has_body = 1;
        q.content_type = "application/octet-stream";
    }
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    *status = s.status;
    if (s.status == 202)
        error = take_location(loc, locsize, &s, what);
    else if (s.status != 201)
        error = http_error(&s, what);
done:
    resp_dispose(&s);
    return error;
}

static int with_digest(char *buf, size_t size, const char *loc, const struct berth_digest *d)
{
    int n = snprintf(buf, size, "%s%cdigest=%s", loc, strchr(loc, '?') ? '&' : '?', d->str);

    if (n < 0 || (size_t)n >= size)
        return berth_error_set(BERTH_ETOOBIG, "upload URL too long");
    return 0;
}

/* PUT <loc>?digest=..., with the rest of the blob (or nothing). */
static int upload_finish(struct berth_registry *r, const char *loc, const char *scope,
                         const struct berth_digest *d, int fd, uint64_t off, uint64_t len,
                         const uint8_t *buf, const char *what, int *dropped)
{
    struct req q;
    struct resp s = { 0 };
    struct berth_digest theirs;
    char url[URL_MAX + 200];
    int error;

    if ((error = with_digest(url, sizeof(url), loc, d)) < 0)
        return error;
    req_init(&q, "PUT", url, what);
    q.scopes[q.nscopes++] = scope;
    q.retry = 0; /* the session is consumed: a retry starts over */
    q.no_rewind = dropped != NULL; /* ... when the caller starts over */
    q.content_type = "application/octet-stream";
    if (buf) {
        q.buf = buf;
        q.buf_len = (size_t)len;
        q.has_body = 1;
    } else if (fd >= 0 && len > 0) {
        q.fd = fd;
        q.fd_off = off;
        q.fd_len = len;
        q.has_body = 1;
    }
    if ((error = perform(r, &q, &s)) < 0) {
        if (dropped)
            *dropped = is_transient(s.cc);
        goto done;
    }
    if (s.status != 201 && s.status != 204 && s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    if (s.digest[0] && berth_digest_parse(&theirs, s.digest, strlen(s.digest)) == 0 &&
        !berth_digest_equal(&theirs, d))
        error = berth_error_set(BERTH_EMISMATCH, "%s: registry stored digest %s", what,
                                theirs.str);
    else
        berth_error_clear();
done:
    resp_dispose(&s);
    return error;
}

/* "0-<last>" (or "bytes=0-<last>") → bytes held; 0 without a Range. */
static uint64_t range_held(const char *range)
{
    const char *dash;

    if (strncmp(range, "bytes=", 6) == 0)
        range += 6;
    if (!range[0] || (dash = strchr(range, '-')) == NULL)
        return 0;
    return strtoull(dash + 1, NULL, 10) + 1;
}

/* GET the session's status after a dropped PATCH: how much it holds. */
static int upload_status(struct berth_registry *r, char *loc, size_t locsize, const char *scope,
                         const char *what, uint64_t *held)
{
    struct req q;
    struct resp s = { 0 };
    int error;

    req_init(&q, "GET", loc, what);
    q.scopes[q.nscopes++] = scope;
    if ((error = perform(r, &q, &s)) < 0)
        goto done;
    if (s.status != 204 && s.status != 200) {
        error = http_error(&s, what);
        goto done;
    }
    /* An empty session answers "0-0" (distribution does, and so does berth
     * serve): that is 0 bytes held, not 1 — resuming at byte 1 gets a 416.
     * (A session of exactly 1 byte says "0-0" too; resending it from 0 is the
     * side that can fail, and only with 1-byte chunks.) */
    *held = strcmp(s.range, "0-0") == 0 || strcmp(s.range, "bytes=0-0") == 0
                ? 0
                : range_held(s.range);
    if (s.location[0])
        copy_value(loc, locsize, s.location, strlen(s.location));
done:
    resp_dispose(&s);
    return error;
}

/* The PATCH chunk size: CHUNK_SIZE, or $BERTH_CHUNK_SIZE (decimal bytes,
 * 1..CHUNK_SIZE_MAX) when set. A knob for tests (resume of a chunked upload
 * without a 64 MiB layer), not a documented user setting; anything invalid
 * means the default. Blobs no larger than this go in one closing PUT. */
static uint64_t chunk_size(void)
{
    const char *env = getenv("BERTH_CHUNK_SIZE");
    unsigned long long v;
    char *end;

    if (!env || !isdigit((unsigned char)env[0]))
        return CHUNK_SIZE;
    errno = 0;
    v = strtoull(env, &end, 10);
    if (errno || *end || v == 0 || v > CHUNK_SIZE_MAX)
        return CHUNK_SIZE;
    return (uint64_t)v;
}

static int upload_chunks(struct berth_registry *r, char *loc, size_t locsize, const char *scope,
                         int fd, uint64_t size, const char *what, berth_progress_fn progress,
                         void *ctx)
{
    struct req q;
    struct resp s = { 0 };
    uint64_t off = 0, n, held = 0, chunk = chunk_size();
    int error = 0, drops = 0;

    while (off < size) {
        n = size - off < chunk ? size - off : chunk;
        req_init(&q, "PATCH", loc, what);
        q.scopes[q.nscopes++] = scope;
        q.retry = 0; /* resumed below from the session's own offset */
        q.no_rewind = 1;
        q.content_type = "application/octet-stream";
        snprintf(q.content_range, sizeof(q.content_range), "%llu-%llu",
                 (unsigned long long)off, (unsigned long long)(off + n - 1));
        q.fd = fd;
        q.fd_off = off;
        q.fd_len = n;
        q.has_body = 1;
        error = perform(r, &q, &s);
        /* A dropped connection, or a 429/5xx (perform() does not retry a
         * PATCH: q.retry is 0), is resumed the same way: wait (Retry-After
         * when the registry sent one), ask the session what it holds. */
        if (((error < 0 && is_transient(s.cc)) ||
             (error == 0 && (s.status == 429 || s.status >= 500))) &&
            drops < r->max_retries) {
            backoff(drops++, error == 0 ? s.retry_after : -1);
            if ((error = upload_status(r, loc, locsize, scope, what, &held)) < 0)
                goto done;
            if (held > size) {
                error = berth_error_set(BERTH_ERROR, "%s: session holds %llu bytes of %llu",
                                        what, (unsigned long long)held,
                                        (unsigned long long)size);
                goto done;
            }
            off = held;
            continue;
        }
        if (error < 0)
            goto done;
        if (s.status != 202 && s.status != 204) {
            error = http_error(&s, what);
            goto done;
        }
        if ((error = take_location(loc, locsize, &s, what)) < 0)
            goto done;
        off += n;
        if (s.range[0] && range_held(s.range) != off) {
            error = berth_error_set(BERTH_ERROR, "%s: registry holds %llu bytes, sent %llu", what,
                                    (unsigned long long)range_held(s.range),
                                    (unsigned long long)off);
            goto done;
        }
        if (progress)
            progress(ctx, off);
    }
done:
    resp_dispose(&s);
    return error;
}

int berth_registry_blob_put(struct berth_registry *r, const char *repo,
                            const struct berth_digest *d, int fd, uint64_t size,
                            berth_progress_fn progress, void *ctx)
{
    char scope[300], what[600], loc[URL_MAX];
    const char *scopes[1] = { scope };
    long status = 0;
    int error = 0, dropped;

    if ((error = check_repo(repo)) < 0)
        return error;
    berth_auth_scope(scope, sizeof(scope), repo, "pull,push");
    what_blob(what, sizeof(what), r, repo, d);
    for (int attempt = 0;; attempt++) {
        if ((error = upload_start(r, repo, NULL, scopes, 1, NULL, 0, what, loc, sizeof(loc),
                                  &status)) < 0)
            return error;
        if (status == 201)
            return 0;
        dropped = 0;
        if (size <= chunk_size()) {
            /* one request: the whole blob with the closing PUT */
            error = upload_finish(r, loc, scope, d, fd, 0, size, NULL, what, &dropped);
        } else {
            error = upload_chunks(r, loc, sizeof(loc), scope, fd, size, what, progress, ctx);
            if (error == 0)
                error = upload_finish(r, loc, scope, d, -1, 0, 0, NULL, what, &dropped);
        }
        if (error == 0) {
            if (progress)
                progress(ctx, size);
            return 0;
        }
        /* a connection lost at the closing PUT: start over with a new session */
        if (!dropped || attempt >= r->max_retries)
            return error;
        backoff(attempt, -1);
    }
}

int berth_registry_blob_put_buf(struct berth_registry *r, const char *repo,
                                const struct berth_digest *d, const uint8_t *data, size_t len)
{
    char scope[300], what[600], loc[URL_MAX], query[200];
    const char *scopes[1] = { scope };
    struct berth_digest mine;
    long status = 0;
    int error;

    if ((error = check_repo(repo)) < 0)
        return error;
    if ((error = berth_digest_buf(&mine, d->algo, data, len)) < 0)
        return error;
    if (!berth_digest_equal(&mine, d))
        return berth_error_set(BERTH_EMISMATCH, "blob digest is %s, not %s", mine.str, d->str);
    berth_auth_scope(scope, sizeof(scope), repo, "pull,push");
    what_blob(what, sizeof(what), r, repo, d);
    snprintf(query, sizeof(query), "?digest=%s", d->str);
    if ((error = upload_start(r, repo, query, scopes, 1, data, len, what, loc, sizeof(loc),
                              &status)) < 0)
        return error;
    if (status == 201)
        return 0;
    /* the registry opened a session instead of taking the monolithic POST */
    return upload_finish(r, loc, scope, d, -1, 0, len, data ? data : (const uint8_t *)"", what,
                         NULL);
}

int berth_registry_blob_mount(struct berth_registry *r, const char *repo, const char *from,
                              const struct berth_digest *d)
{
    char scope[300], scope_from[300], what[600], loc[URL_MAX], query[600];
    const char *scopes[2] = { scope, scope_from };
    struct req q;
    struct resp s = { 0 };
    long status = 0;
    int error;

    if ((error = check_repo(repo)) < 0 || (error = check_repo(from)) < 0)
        return error;
    berth_auth_scope(scope, sizeof(scope), repo, "pull,push");
    berth_auth_scope(scope_from, sizeof(scope_from), from, "pull");
    what_blob(what, sizeof(what), r, repo, d);
    snprintf(query, sizeof(query), "?mount=%s&from=%s", d->str, from);
    if ((error = upload_start(r, repo, query, scopes, 2, NULL, 0, what, loc, sizeof(loc),
                              &status)) < 0)
        return error;
    if (status == 201)
        return 1;
    /* not mounted: cancel the session the registry opened instead */
    req_init(&q, "DELETE", loc, what);
    q.scopes[q.nscopes++] = scope;
    if (perform(r, &q, &s) < 0)
        berth_error_clear();
    resp_dispose(&s);
    return 0;
}

/* ---- listings ---- */

static int list_pages(struct berth_registry *r, const char *first, const char *scope,
                      const char *key, const char *what, berth_name_fn fn, void *ctx)
{
    char next[URL_MAX];
    struct req q;
    struct resp s = { 0 };
    int error = 0;

    copy_value(next, sizeof(next), first, strlen(first));
    for (int page = 0; page < LIST_PAGES_MAX && next[0]; page++) {
        json_t *root, *arr;
        req_init(&q, "GET", next, what);
        q.scopes[q.nscopes++] = scope;
        q.max_body = LIST_BODY_MAX;
        if ((error = perform(r, &q, &s)) < 0)
            goto done;
        if (s.status != 200) {
            error = http_error(&s, what);
            goto done;
        }
        root = json_loadb((const char *)s.body, s.len, 0, NULL);
        arr = json_object_get(root, key);
        if (!json_is_object(root) || (!json_is_array(arr) && !json_is_null(arr) && arr)) {
            json_decref(root);
            error = berth_error_set(BERTH_ERROR, "%s: malformed listing from the registry", what);
            goto done;
        }
        for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
            const char *name = json_string_value(json_array_get(arr, i));
            if (name && (error = fn(ctx, name)) != 0)
                break;
        }
        json_decref(root);
        if (error != 0)
            goto done;
        copy_value(next, sizeof(next), s.link, strlen(s.link));
    }
done:
    resp_dispose(&s);
    return error;
}

int berth_registry_tags(struct berth_registry *r, const char *repo, berth_name_fn fn, void *ctx)
{
    char path[600], scope[300], what[600];
    int error;

    if ((error = check_repo(repo)) < 0)
        return error;
    snprintf(path, sizeof(path), "/v2/%s/tags/list", repo);
    snprintf(what, sizeof(what), "%s/%s", r->name, repo);
    berth_auth_scope(scope, sizeof(scope), repo, "pull");
    return list_pages(r, path, scope, "tags", what, fn, ctx);
}

int berth_registry_catalog(struct berth_registry *r, berth_name_fn fn, void *ctx)
{
    char scope[300], what[300];

    snprintf(what, sizeof(what), "catalog of '%s'", r->name);
    berth_auth_scope(scope, sizeof(scope), NULL, NULL);
    return list_pages(r, "/v2/_catalog", scope, "repositories", what, fn, ctx);
}

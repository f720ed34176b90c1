/*
 * Registry credentials (creds.h), shared with docker and podman: Docker's
 * config.json ("auths" entries of base64 "user:password" or an
 * "identitytoken", "credsStore", "credHelpers"), podman's auth.json (read
 * only), and Docker credential helpers run as `docker-credential-NAME
 * get|store|erase` with JSON over pipes. Keys match by host: a scheme, a path
 * and Docker Hub's aliases ("https://index.docker.io/v1/") are ignored.
 * Invariants: config.json is only ever replaced whole (temp file, fsync,
 * rename; mode 0600) with unknown keys kept; secrets never reach a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "client/creds.h"
#include "core/error.h"

extern char **environ;

#define HUB_HOST "docker.io"
#define HUB_KEY "https://index.docker.io/v1/"
#define HELPER_OUTPUT_MAX (64 * 1024)
#define HOST_MAX 256

static char config_path[PATH_MAX];

const char *berth_creds_config_path(void)
{
    const char *dir = getenv("DOCKER_CONFIG"), *home;
    struct passwd *pw;

    if (dir && *dir) {
        snprintf(config_path, sizeof(config_path), "%s/config.json", dir);
        return config_path;
    }
    home = getenv("HOME");
    if (!home || !*home) {
        pw = getpwuid(getuid());
        home = pw && pw->pw_dir ? pw->pw_dir : ".";
    }
    snprintf(config_path, sizeof(config_path), "%s/.docker/config.json", home);
    return config_path;
}

void berth_creds_clear(struct berth_creds *c)
{
    if (c)
        explicit_bzero(c, sizeof(*c));
}

/* "https://index.docker.io/v1/" → "docker.io", "http://h:5000/x" → "h:5000".
 * An over-long key becomes "" and matches nothing. */
static void key_host(char *out, size_t size, const char *key)
{
    const char *p = key, *end;
    size_t len;

    if (strncasecmp(p, "https://", 8) == 0)
        p += 8;
    else if (strncasecmp(p, "http://", 7) == 0)
        p += 7;
    end = strchr(p, '/');
    len = end ? (size_t)(end - p) : strlen(p);
    if (len >= size) {
        out[0] = '\0';
        return;
    }
    memcpy(out, p, len);
    out[len] = '\0';
    if (strcasecmp(out, "index.docker.io") == 0 || strcasecmp(out, "registry-1.docker.io") == 0)
        snprintf(out, size, "%s", HUB_HOST);
}

static int key_matches(const char *key, const char *host)
{
    char kh[HOST_MAX];

    key_host(kh, sizeof(kh), key);
    return kh[0] && strcasecmp(kh, host) == 0;
}

/* The key in `obj` for the registry: the exact string first, then the
 * first key naming the same host. Borrowed from obj, or NULL. */
static const char *find_key(json_t *obj, const char *registry, const char *host)
{
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return NULL;
    if (json_object_get(obj, registry))
        return json_object_iter_key(json_object_iter_at(obj, registry));
    json_object_foreach(obj, key, v) {
        (void)v;
        if (key_matches(key, host))
            return key;
    }
    return NULL;
}

/* What helpers and config.json keys call a registry: Docker Hub is
 * "https://index.docker.io/v1/", anything else its host[:port]. */
static const char *server_url(const char *host)
{
    return strcmp(host, HUB_HOST) == 0 ? HUB_KEY : host;
}

/* *out: the parsed file, or an empty object when the file does not exist. */
static int load_json(json_t **out, const char *path)
{
    json_error_t jerr;
    FILE *f;

    *out = NULL;
    if ((f = fopen(path, "re")) == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            *out = json_object();
            return *out ? 0 : berth_error_set(BERTH_ERROR, "out of memory");
        }
        return berth_error_errno("cannot open '%s'", path);
    }
    *out = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!*out)
        return berth_error_set(BERTH_EINVALID, "invalid JSON in '%s': %s (line %d)", path,
                               jerr.text, jerr.line);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return berth_error_set(BERTH_EINVALID, "invalid '%s': not a JSON object", path);
    }
    return 0;
}

static int copy_field(char *dst, size_t size, const char *src, size_t len, const char *what)
{
    if (len >= size)
        return berth_error_set(BERTH_EINVALID, "%s longer than %zu bytes", what, size - 1);
    if (memchr(src, '\0', len))
        return berth_error_set(BERTH_EINVALID, "%s contains a NUL byte", what);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* base64 "user:password" (padding optional) into out. */
static int decode_auth(struct berth_creds *out, const char *b64, const char *key)
{
    size_t len = strlen(b64), plen, pad = 0;
    unsigned char *in = NULL, *dec = NULL, *colon;
    int n, error = BERTH_EINVALID;

    if (len % 4 == 1 || len > 8192) {
        berth_error_set(BERTH_EINVALID, "invalid base64 auth for '%s'", key);
        goto done;
    }
    plen = (len + 3) / 4 * 4;
    if ((in = malloc(plen + 1)) == NULL || (dec = malloc(plen / 4 * 3 + 1)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    memcpy(in, b64, len);
    memset(in + len, '=', plen - len);
    in[plen] = '\0';
    /* EVP_DecodeBlock counts padding as zero bytes: take them off again */
    while (pad < 2 && plen > pad && in[plen - 1 - pad] == '=')
        pad++;
    n = EVP_DecodeBlock(dec, in, (int)plen);
    if (n < 0 || (size_t)n < pad) {
        berth_error_set(BERTH_EINVALID, "invalid base64 auth for '%s'", key);
        goto done;
    }
    n -= (int)pad;
    if ((colon = memchr(dec, ':', (size_t)n)) == NULL) {
        berth_error_set(BERTH_EINVALID, "auth for '%s' is not user:password", key);
        goto done;
    }
    if ((error = copy_field(out->username, sizeof(out->username), (const char *)dec,
                            (size_t)(colon - dec), "username")) < 0 ||
        (error = copy_field(out->password, sizeof(out->password), (const char *)colon + 1,
                            (size_t)(dec + n - colon - 1), "password")) < 0)
        goto done;
    error = 0;
done:
    if (in)
        explicit_bzero(in, plen);
    if (dec)
        explicit_bzero(dec, plen / 4 * 3 + 1);
    free(in);
    free(dec);
    return error;
}

/* An "auths" entry: identitytoken, else auth, else username + password. */
static int entry_creds(struct berth_creds *out, json_t *entry, const char *key)
{
    const char *token = json_string_value(json_object_get(entry, "identitytoken"));
    const char *auth = json_string_value(json_object_get(entry, "auth"));
    const char *user = json_string_value(json_object_get(entry, "username"));
    const char *pass = json_string_value(json_object_get(entry, "password"));
    int error;

    if (token && *token) {
        snprintf(out->username, sizeof(out->username), "<token>");
        return copy_field(out->password, sizeof(out->password), token, strlen(token),
                          "identity token");
    }
    if (auth && *auth)
        return decode_auth(out, auth, key);
    if (user && *user && pass) {
        if ((error = copy_field(out->username, sizeof(out->username), user, strlen(user),
                                "username")) < 0)
            return error;
        return copy_field(out->password, sizeof(out->password), pass, strlen(pass), "password");
    }
    return BERTH_ENOTFOUND;
}

static int auths_get(struct berth_creds *out, json_t *root, const char *registry,
                     const char *host)
{
    json_t *auths = json_object_get(root, "auths");
    const char *key = find_key(auths, registry, host);

    if (!key || !json_is_object(json_object_get(auths, key)))
        return BERTH_ENOTFOUND;
    return entry_creds(out, json_object_get(auths, key), key);
}

/* Write all of buf to fd; SIGPIPE is blocked around it by the caller. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write to a pipe whose reader may be gone, without dying of SIGPIPE and
 * without touching the process's signal dispositions (git's approach). */
static void write_pipe(int fd, const char *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    int was_pending;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    if (write_all(fd, buf, len) < 0 && errno == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };

        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Run `docker-credential-<helper> <action>` (found on PATH), feed it `input`,
 * collect stdout and stderr (capped) into *out (NUL-terminated, caller frees)
 * and its exit status into *status (128 + signal when killed).
 */
static int run_helper(char **out, int *status, const char *helper, const char *action,
                      const char *input)
{
    char prog[256], *buf = NULL, *tmp;
    char *argv[3];
    int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, st = 0, rc, error = BERTH_ERROR;
    size_t len = 0, cap = 0;
    posix_spawn_file_actions_t fa;
    int fa_ready = 0;
    pid_t pid = -1;

    *out = NULL;
    if (!*helper || strchr(helper, '/') || strlen(helper) > 200)
        return berth_error_set(BERTH_EINVALID, "invalid credential helper name '%.200s'", helper);
    snprintf(prog, sizeof(prog), "docker-credential-%s", helper);
    argv[0] = prog;
    argv[1] = (char *)(uintptr_t)action;
    argv[2] = NULL;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
        error = berth_error_errno("pipe");
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    fa_ready = 1;
    if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 2) != 0) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    if ((rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ)) != 0) {
        pid = -1;
        if (rc == ENOENT)
            error = berth_error_set(BERTH_ERROR, "credential helper '%s' not found in PATH",
                                    prog);
        else
            error = berth_error_set(BERTH_ERROR, "cannot run credential helper '%s': %s", prog,
                                    strerror(rc));
        goto done;
    }
    close(in[0]);
    close(outp[1]);
    in[0] = outp[1] = -1;
    write_pipe(in[1], input, strlen(input));
    close(in[1]);
    in[1] = -1;

    for (;;) {
        char chunk[4096];
        ssize_t n = read(outp[0], chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (len + (size_t)n + 1 > cap) {
            if (len + (size_t)n + 1 > HELPER_OUTPUT_MAX)
                continue; /* drain, keep what fits */
            cap = len + (size_t)n + 1 > cap * 2 ? len + (size_t)n + 1 : cap * 2;
            if ((tmp = realloc(buf, cap)) == NULL)
                continue;
            buf = tmp;
        }
        memcpy(buf + len, chunk, (size_t)n);
        len += (size_t)n;
        explicit_bzero(chunk, sizeof(chunk));
    }
    if (!buf && (buf = malloc(1)) == NULL) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    buf[len] = '\0';
    error = 0;
done:
    if (pid > 0) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    if (fa_ready)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    if (error < 0) {
        if (buf)
            explicit_bzero(buf, cap);
        free(buf);
        return error;
    }
    *out = buf;
    return 0;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* A helper's non-zero exit: not found, or an error carrying its first line. */
static int helper_failed(const char *helper, const char *output, int status)
{
    size_t n;

    if (strstr(output, "credentials not found"))
        return BERTH_ENOTFOUND;
    n = strcspn(output, "\r\n");
    return berth_error_set(BERTH_ERROR,
                           "credential helper 'docker-credential-%s' failed (exit %d)%s%.*s",
                           helper, status, n ? ": " : "", (int)(n > 200 ? 200 : n), output);
}

static int helper_get(struct berth_creds *out, const char *helper, const char *host)
{
    char *output = NULL;
    json_t *resp = NULL;
    const char *user, *secret;
    int status = 0, error;

    if ((error = run_helper(&output, &status, helper, "get", server_url(host))) < 0)
        return error;
    if (status != 0) {
        error = helper_failed(helper, output, status);
        goto done;
    }
    resp = json_loads(output, 0, NULL);
    user = json_string_value(json_object_get(resp, "Username"));
    secret = json_string_value(json_object_get(resp, "Secret"));
    if (!resp || !user || !secret) {
        error = berth_error_set(BERTH_ERROR,
                                "credential helper 'docker-credential-%s' gave no credentials",
                                helper);
        goto done;
    }
    if (!*user && !*secret) {
        error = BERTH_ENOTFOUND;
        goto done;
    }
    if ((error = copy_field(out->username, sizeof(out->username), user, strlen(user),
                            "username")) < 0 ||
        (error = copy_field(out->password, sizeof(out->password), secret, strlen(secret),
                            "secret")) < 0)
        goto done;
done:
    if (resp) {
        /* wipe the secret held inside the JSON tree */
        json_t *s = json_object_get(resp, "Secret");

        if (json_is_string(s))
            explicit_bzero((char *)(uintptr_t)json_string_value(s), json_string_length(s));
    }
    json_decref(resp);
    free_secret(output);
    return error;
}

static int helper_call(const char *helper, const char *action, const char *input)
{
    char *output = NULL;
    int status = 0, error;

    if ((error = run_helper(&output, &status, helper, action, input)) < 0)
        return error;
    error = status == 0 ? 0 : helper_failed(helper, output, status);
    free_secret(output);
    return error;
}

/* credHelpers[registry], else credsStore, else NULL. Borrowed from root. */
static const char *helper_for(json_t *root, const char *registry, const char *host)
{
    json_t *helpers = json_object_get(root, "credHelpers");
    const char *key = find_key(helpers, registry, host), *name;

    if (key && (name = json_string_value(json_object_get(helpers, key))) != NULL && *name)
        return name;
    name = json_string_value(json_object_get(root, "credsStore"));
    return name && *name ? name : NULL;
}

static int podman_path(char *buf, size_t size)
{
    const char *p = getenv("REGISTRY_AUTH_FILE"), *run = getenv("XDG_RUNTIME_DIR");

    if (p && *p)
        return snprintf(buf, size, "%s", p) < (int)size ? 0 : -1;
    if (run && *run)
        return snprintf(buf, size, "%s/containers/auth.json", run) < (int)size ? 0 : -1;
    return snprintf(buf, size, "/run/containers/%u/auth.json", (unsigned)getuid()) < (int)size
               ? 0
               : -1;
}

static int normalize_registry(char *host, const char *registry)
{
    if (!registry || !*registry)
        return berth_error_set(BERTH_EINVALID, "no registry given");
    key_host(host, HOST_MAX, registry);
    if (!host[0])
        return berth_error_set(BERTH_EINVALID, "invalid registry '%.200s'", registry);
    return 0;
}

int berth_creds_get(struct berth_creds *out, const char *registry)
{
    char host[HOST_MAX], ppath[PATH_MAX];
    json_t *root = NULL, *podman = NULL, *helpers;
    const char *helper, *key, *store;
    int error;

    memset(out, 0, sizeof(*out));
    if ((error = normalize_registry(host, registry)) < 0)
        return error;
    if ((error = load_json(&root, berth_creds_config_path())) < 0)
        goto done;

    helpers = json_object_get(root, "credHelpers");
    key = find_key(helpers, registry, host);
    helper = key ? json_string_value(json_object_get(helpers, key)) : NULL;
    if (helper && *helper && (error = helper_get(out, helper, host)) != BERTH_ENOTFOUND)
        goto done;
    store = json_string_value(json_object_get(root, "credsStore"));
    if (store && *store && (error = helper_get(out, store, host)) != BERTH_ENOTFOUND)
        goto done;
    if ((error = auths_get(out, root, registry, host)) != BERTH_ENOTFOUND)
        goto done;

    error = BERTH_ENOTFOUND;
    if (podman_path(ppath, sizeof(ppath)) == 0 && access(ppath, F_OK) == 0) {
        if ((error = load_json(&podman, ppath)) < 0)
            goto done;
        error = auths_get(out, podman, registry, host);
    }
done:
    if (error == BERTH_ENOTFOUND)
        error = berth_error_set(BERTH_ENOTFOUND, "no credentials for '%s'", host);
    if (error < 0)
        berth_creds_clear(out);
    json_decref(root);
    json_decref(podman);
    return error;
}

/* mkdir -p for the directory holding `path`, new directories 0700. */
static int make_parent(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return berth_error_errno("cannot create '%s'", dir);
        *p = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return berth_error_errno("cannot create '%s'", dir);
    return 0;
}

/* Replace `path` with root: temp file beside it (0600), fsync, rename, fsync
 * the directory. A symlinked config.json is replaced at its target. */
static int save_json(json_t *root, const char *path)
{
    char target[PATH_MAX], tmp[PATH_MAX + 16], link[PATH_MAX], *text = NULL, *slash;
    ssize_t n;
    int fd = -1, dfd, error;

    snprintf(target, sizeof(target), "%s", path);
    if ((n = readlink(path, link, sizeof(link) - 1)) > 0) {
        link[n] = '\0';
        if (link[0] == '/' || (slash = strrchr(path, '/')) == NULL)
            n = snprintf(target, sizeof(target), "%s", link);
        else
            n = snprintf(target, sizeof(target), "%.*s/%s", (int)(slash - path), path, link);
        if (n >= (ssize_t)sizeof(target))
            return berth_error_set(BERTH_EINVALID, "path of '%s' too long", path);
    }
    if ((error = make_parent(target)) < 0)
        return error;
    if ((text = json_dumps(root, JSON_INDENT(1))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", target);
    if ((fd = mkstemp(tmp)) < 0) {
        error = berth_error_errno("cannot create a temporary file beside '%s'", target);
        goto done;
    }
    if (fchmod(fd, 0600) < 0 || write_all(fd, text, strlen(text)) < 0 ||
        write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        error = berth_error_errno("cannot write '%s'", tmp);
        goto done;
    }
    if (close(fd) < 0) {
        fd = -1;
        error = berth_error_errno("cannot write '%s'", tmp);
        goto done;
    }
    fd = -1;
    if (rename(tmp, target) < 0) {
        error = berth_error_errno("cannot replace '%s'", target);
        goto done;
    }
    tmp[0] = '\0';
    if ((slash = strrchr(target, '/')) != NULL) {
        *slash = '\0';
        if ((dfd = open(slash == target ? "/" : target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    error = 0;
done:
    if (fd >= 0)
        close(fd);
    if (tmp[0] && error < 0)
        unlink(tmp);
    free_secret(text);
    return error;
}

static int encode_auth(char **out, const struct berth_creds *c)
{
    size_t ulen = strlen(c->username), plen = strlen(c->password), len = ulen + 1 + plen;
    unsigned char *raw = malloc(len + 1), *enc = malloc(4 * ((len + 2) / 3) + 1);
    int error = 0;

    *out = NULL;
    if (!raw || !enc) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    memcpy(raw, c->username, ulen);
    raw[ulen] = ':';
    memcpy(raw + ulen + 1, c->password, plen);
    EVP_EncodeBlock(enc, raw, (int)len);
    *out = (char *)enc;
    enc = NULL;
done:
    if (raw)
        explicit_bzero(raw, len + 1);
    free(raw);
    free(enc);
    return error;
}

static int check_creds(const struct berth_creds *c)
{
    if (!c || !c->username[0])
        return berth_error_set(BERTH_EINVALID, "no username given");
    if (memchr(c->username, '\0', sizeof(c->username)) == NULL ||
        memchr(c->password, '\0', sizeof(c->password)) == NULL)
        return berth_error_set(BERTH_EINVALID, "credentials not NUL-terminated");
    if (strchr(c->username, ':'))
        return berth_error_set(BERTH_EINVALID, "a username must not contain ':'");
    return 0;
}

int berth_creds_store(const char *registry, const struct berth_creds *c)
{
    char host[HOST_MAX], *input = NULL, *auth = NULL;
    json_t *root = NULL, *auths, *entry, *req = NULL;
    const char *helper, *key, *path = berth_creds_config_path();
    int error;

    if ((error = normalize_registry(host, registry)) < 0 || (error = check_creds(c)) < 0)
        return error;
    if ((error = load_json(&root, path)) < 0)
        goto done;
    if ((helper = helper_for(root, registry, host)) != NULL) {
        req = json_pack("{s:s, s:s, s:s}", "ServerURL", server_url(host), "Username",
                        c->username, "Secret", c->password);
        if (!req || (input = json_dumps(req, JSON_COMPACT)) == NULL) {
            error = berth_error_set(BERTH_ERROR, "cannot encode credentials as JSON");
            goto done;
        }
        error = helper_call(helper, "store", input);
        goto done;
    }

    auths = json_object_get(root, "auths");
    if (!auths) {
        if ((auths = json_object()) == NULL || json_object_set_new(root, "auths", auths) < 0) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
    } else if (!json_is_object(auths)) {
        error = berth_error_set(BERTH_EINVALID, "invalid '%s': \"auths\" is not an object", path);
        goto done;
    }
    key = find_key(auths, registry, host);
    entry = key ? json_object_get(auths, key) : NULL;
    if (!json_is_object(entry)) {
        if ((entry = json_object()) == NULL ||
            json_object_set_new(auths, key ? key : server_url(host), entry) < 0) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
    }
    json_object_del(entry, "username");
    json_object_del(entry, "password");
    if (strcmp(c->username, "<token>") == 0) {
        json_object_del(entry, "auth");
        error = json_object_set_new(entry, "identitytoken", json_string(c->password));
    } else {
        json_object_del(entry, "identitytoken");
        if ((error = encode_auth(&auth, c)) < 0)
            goto done;
        error = json_object_set_new(entry, "auth", json_string(auth));
    }
    if (error < 0) {
        error = berth_error_set(BERTH_ERROR, "cannot store credentials as JSON");
        goto done;
    }
    error = save_json(root, path);
done:
    free_secret(auth);
    free_secret(input);
    json_decref(req);
    json_decref(root);
    return error;
}

int berth_creds_erase(const char *registry)
{
    char host[HOST_MAX];
    json_t *root = NULL, *auths, *value;
    const char *helper, *path = berth_creds_config_path(), *key;
    void *iter;
    int error, removed = 0;

    if ((error = normalize_registry(host, registry)) < 0)
        return error;
    if ((error = load_json(&root, path)) < 0)
        goto done;
    if ((helper = helper_for(root, registry, host)) != NULL) {
        error = helper_call(helper, "erase", server_url(host));
        if (error < 0 && error != BERTH_ENOTFOUND)
            goto done;
        removed = error == 0;
    }
    /* every auths key naming this registry goes, whatever its form */
    auths = json_object_get(root, "auths");
    if (json_is_object(auths)) {
        size_t before = json_object_size(auths);

        json_object_foreach_safe(auths, iter, key, value) {
            (void)value;
            if (key_matches(key, host) || strcmp(key, registry) == 0)
                json_object_del(auths, key);
        }
        if (json_object_size(auths) != before) {
            if ((error = save_json(root, path)) < 0)
                goto done;
            removed = 1;
        }
    }
    error = removed ? 0
                    : berth_error_set(BERTH_ENOTFOUND, "not logged in to '%s'", host);
done:
    json_decref(root);
    return error;
}

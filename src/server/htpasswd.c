/*
 * htpasswd users (see htpasswd.h). The table is an immutable sorted array
 * swapped whole under a rwlock on reload, so verifiers hold the read lock
 * only while they copy the hash they need. bcrypt runs through crypt_r with
 * a heap crypt_data (32 KiB: too big for a worker's stack) and its output is
 * compared in constant time. The verification cache holds salted SHA-256
 * digests of "user:password", never passwords, and is emptied on reload.
 * libcrypt is dlopen()ed at the first verification, not linked: only a
 * server with htpasswd users needs bcrypt, and every other start would map
 * and relocate it for nothing (issue 3: start time, idle RSS).
 */
#include "htpasswd.h"

#include <crypt.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "core/random.h"
#include "core/sha2.h"

#define FILE_MAX (16 * 1024 * 1024)
#define HASH_MAX 128
#define CACHE_SLOTS 256

struct entry {
    char *user;
    char hash[HASH_MAX];
};

struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct cache_slot {
    uint8_t key[32]; /* sha256(salt || user ':' password) */
    time_t expires;
};

struct berth_htpasswd {
    char *path;
    berth_htpasswd_warn_fn warn;
    void *ctx;
    pthread_rwlock_t lock; /* guards entries, nentries, stamp and the cache */
    struct entry *entries;
    size_t nentries;
    struct stamp stamp;
    time_t checked;        /* last stat(), under `lock` (write) */
    pthread_mutex_t cache_lock;
    struct cache_slot cache[CACHE_SLOTS];
    uint8_t salt[32];
};

/* A bcrypt hash of a random password: unknown users pay the same cost. */
static const char dummy_hash[] =
    "$2y$10$9Ej7RV9rUxpkQHrRfsGheeTisCS0FVQKfYpjdHoMpb.eDtYFO.5sS";

static void warnf(const struct berth_htpasswd *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warnf(const struct berth_htpasswd *h, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!h->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h->warn(h->ctx, msg);
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].user);
        explicit_bzero(e[i].hash, sizeof(e[i].hash));
    }
    free(e);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->user, ((const struct entry *)b)->user);
}

static const char *hash_kind(const char *hash)
{
    if (!strncmp(hash, "{SHA}", 5))
        return "{SHA} (SHA-1)";
    if (!strncmp(hash, "$apr1$", 6))
        return "$apr1$ (MD5)";
    if (!strncmp(hash, "$1$", 3))
        return "$1$ (MD5-crypt)";
    if (!strncmp(hash, "$5$", 3) || !strncmp(hash, "$6$", 3))
        return "SHA-crypt";
    if (strlen(hash) == 13)
        return "DES crypt or plain text";
    return "plain text or unknown";
}

static int is_bcrypt(const char *hash)
{
    size_t n = strlen(hash);

    /* $2y$NN$ + 53 characters of salt and hash */
    if (n != 60 || hash[0] != '$' || hash[1] != '2' || !strchr("ayb", hash[2]) ||
        hash[3] != '$' || hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9' ||
        hash[6] != '$')
        return 0;
    for (size_t i = 7; i < n; i++)
        if (!strchr("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", hash[i]))
            return 0;
    return 1;
}

/* Parse the file into a new sorted table. */
static int load(struct berth_htpasswd *h, struct entry **out, size_t *nout, struct stamp *st)
{
    FILE *f = fopen(h->path, "r");
    struct entry *e = NULL, *tmp;
    size_t n = 0, cap = 0, lineno = 0, linecap = 0;
    char *line = NULL;
    struct stat sb;
    ssize_t len;
    int error = 0;

    if (!f)
        return berth_error_errno("cannot open htpasswd '%s'", h->path);
    if (fstat(fileno(f), &sb) < 0) {
        error = berth_error_errno("cannot stat htpasswd '%s'", h->path);
        goto done;
    }
    if (sb.st_size > FILE_MAX) {
        error = berth_error_set(BERTH_ETOOBIG, "htpasswd '%s' is larger than 16 MiB", h->path);
        goto done;
    }
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime = sb.st_mtim;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        char *colon, *hash;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len || line[0] == '#')
            continue;
        if ((size_t)len != strlen(line) || !(colon = strchr(line, ':')) || colon == line) {
            warnf(h, "htpasswd '%s' line %zu: not a 'user:hash' line; ignored", h->path, lineno);
            continue;
        }
        *colon = '\0';
        hash = colon + 1;
        if (strlen(line) > BERTH_HTPASSWD_USER_MAX) {
            warnf(h, "htpasswd '%s' line %zu: user name too long; ignored", h->path, lineno);
            continue;
        }
        if (!is_bcrypt(hash)) {
            warnf(h, "htpasswd '%s' line %zu: user '%s' has a %s hash; only bcrypt is "
                  "accepted (htpasswd -B); ignored", h->path, lineno, line, hash_kind(hash));
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if ((tmp = realloc(e, cap * sizeof(*e))) == NULL) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                goto done;
            }
            e = tmp;
        }
        if ((e[n].user = strdup(line)) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        memcpy(e[n].hash, hash, 61);
        n++;
    }
    if (ferror(f)) {
        error = berth_error_errno("cannot read htpasswd '%s'", h->path);
        goto done;
    }
    if (n)
        qsort(e, n, sizeof(*e), cmp_entry);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(e[i].user, e[i - 1].user))
            warnf(h, "htpasswd '%s': user '%s' appears more than once; the first entry in "
                  "sorted order is used", h->path, e[i].user);
    if (!n)
        warnf(h, "htpasswd '%s' has no usable entry: nobody can log in", h->path);
    *out = e;
    *nout = n;
    e = NULL;
    n = 0;
done:
    if (line)
        explicit_bzero(line, linecap);
    free(line);
    free_entries(e, n);
    fclose(f);
    return error;
}

int berth_htpasswd_new(struct berth_htpasswd **out, const char *path,
                       berth_htpasswd_warn_fn warn, void *ctx)
{
    struct berth_htpasswd *h = calloc(1, sizeof(*h));
    int error;

    *out = NULL;
    if (!h || !(h->path = strdup(path))) {
        free(h);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    h->warn = warn;
    h->ctx = ctx;
    pthread_rwlock_init(&h->lock, NULL);
    pthread_mutex_init(&h->cache_lock, NULL);
    if ((error = berth_random(h->salt, sizeof(h->salt))) < 0)
        goto fail;
    if ((error = load(h, &h->entries, &h->nentries, &h->stamp)) < 0)
        goto fail;
    h->checked = time(NULL);
    *out = h;
    return 0;
fail:
    berth_htpasswd_free(h);
    return error;
}

void berth_htpasswd_free(struct berth_htpasswd *h)
{
    if (!h)
        return;
    free_entries(h->entries, h->nentries);
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->cache_lock);
    explicit_bzero(h->cache, sizeof(h->cache));
    free(h->path);
    free(h);
}

static int same_stamp(const struct stamp *a, const struct stat *b)
{
    return a->dev == b->st_dev && a->ino == b->st_ino && a->size == b->st_size &&
           a->mtime.tv_sec == b->st_mtim.tv_sec && a->mtime.tv_nsec == b->st_mtim.tv_nsec;
}

static void maybe_reload(struct berth_htpasswd *h)
{
    time_t now = time(NULL);
    struct entry *e = NULL;
    struct stamp st;
    struct stat sb;
    size_t n = 0;

    pthread_rwlock_rdlock(&h->lock);
    if (now == h->checked) {
        pthread_rwlock_unlock(&h->lock);
        return;
    }
    pthread_rwlock_unlock(&h->lock);

    pthread_rwlock_wrlock(&h->lock);
    if (now == h->checked) { /* another thread looked meanwhile */
        pthread_rwlock_unlock(&h->lock);
        return;
    }
    h->checked = now;
    if (stat(h->path, &sb) == 0 && same_stamp(&h->stamp, &sb)) {
        pthread_rwlock_unlock(&h->lock);
        return;
    }
    if (load(h, &e, &n, &st) < 0) {
        warnf(h, "%s; keeping the previous %zu users", berth_error_msg(), h->nentries);
        pthread_rwlock_unlock(&h->lock);
        return;
    }
    free_entries(h->entries, h->nentries);
    h->entries = e;
    h->nentries = n;
    h->stamp = st;
    pthread_mutex_lock(&h->cache_lock);
    explicit_bzero(h->cache, sizeof(h->cache));
    pthread_mutex_unlock(&h->cache_lock);
    pthread_rwlock_unlock(&h->lock);
    warnf(h, "htpasswd '%s' reloaded: %zu users", h->path, n);
}

/* Copy the user's hash out under the read lock; 0 when unknown. */
static int lookup(struct berth_htpasswd *h, const char *user, char hash[HASH_MAX])
{
    struct entry key = { (char *)user, { 0 } }, *e;

    pthread_rwlock_rdlock(&h->lock);
    e = h->nentries ? bsearch(&key, h->entries, h->nentries, sizeof(*e), cmp_entry) : NULL;
    if (e)
        memcpy(hash, e->hash, HASH_MAX);
    pthread_rwlock_unlock(&h->lock);
    return e != NULL;
}

static int cache_key(const struct berth_htpasswd *h, uint8_t key[32], const char *user,
                     const uint8_t *pass, size_t len)
{
    struct berth_sha256 md;

    berth_sha256_init(&md);
    berth_sha256_update(&md, h->salt, sizeof(h->salt));
    berth_sha256_update(&md, user, strlen(user) + 1); /* the NUL separates */
    berth_sha256_update(&md, pass, len);
    berth_sha256_final(&md, key); /* wipes md */
    return 0;
}

/* 1 when the `n` bytes at a and b are equal, 0 if not; the time taken depends
 * on n only (volatile keeps the compiler from stopping at the first difference). */
static int ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

static int cache_hit(struct berth_htpasswd *h, const uint8_t key[32], time_t now)
{
    int hit = 0;

    pthread_mutex_lock(&h->cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        hit |= (h->cache[i].expires > now) & ct_equal(h->cache[i].key, key, 32);
    pthread_mutex_unlock(&h->cache_lock);
    return hit;
}

static void cache_put(struct berth_htpasswd *h, const uint8_t key[32], time_t now)
{
    size_t victim = 0;

    pthread_mutex_lock(&h->cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (h->cache[i].expires < h->cache[victim].expires)
            victim = i;
    }
    memcpy(h->cache[victim].key, key, 32);
    h->cache[victim].expires = now + BERTH_HTPASSWD_CACHE_TTL;
    pthread_mutex_unlock(&h->cache_lock);
}

/* libxcrypt's soname (Debian's libcrypt1 since 2018, also Fedora, Arch). */
#define LIBCRYPT_SONAME "libcrypt.so.1"

typedef char *(*crypt_r_fn)(const char *, const char *, struct crypt_data *);
static crypt_r_fn crypt_fn;
static char crypt_load_error[256];

static void crypt_load(void)
{
    void *lib = dlopen(LIBCRYPT_SONAME, RTLD_NOW | RTLD_LOCAL);
    const char *err;

    if (lib && (crypt_fn = (crypt_r_fn)(uintptr_t)dlsym(lib, "crypt_r")) != NULL)
        return; /* never dlclose()d */
    err = dlerror();
    snprintf(crypt_load_error, sizeof(crypt_load_error), "%s", err ? err : "no crypt_r");
}

/* crypt_r from libcrypt, loaded once; NULL with the error set if it cannot be. */
static crypt_r_fn crypt_r_get(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, crypt_load);
    if (!crypt_fn)
        berth_error_set(BERTH_ERROR, "cannot load %s for bcrypt: %s", LIBCRYPT_SONAME,
                        crypt_load_error);
    return crypt_fn;
}

int berth_htpasswd_verify(struct berth_htpasswd *h, const char *user, const uint8_t *pass,
                          size_t len)
{
    crypt_r_fn crypt_rf;
    struct crypt_data *cd = NULL;
    char hash[HASH_MAX], *pw = NULL;
    uint8_t key[32];
    const char *res;
    time_t now = time(NULL);
    int known, keyed = 0, ok = 0, error;

    if (!user || strlen(user) > BERTH_HTPASSWD_USER_MAX || len > BERTH_HTPASSWD_PASS_MAX ||
        memchr(pass, '\0', len))
        return berth_error_set(BERTH_EDENIED, "invalid username or password");
    maybe_reload(h);
    known = lookup(h, user, hash);
    keyed = known && cache_key(h, key, user, pass, len) == 0;
    if (keyed && cache_hit(h, key, now)) {
        ok = 1;
        goto done;
    }
    if (!known)
        memcpy(hash, dummy_hash, sizeof(dummy_hash));
    if (!(crypt_rf = crypt_r_get())) {
        error = berth_error_code();
        goto out;
    }
    if (!(cd = calloc(1, sizeof(*cd))) || !(pw = malloc(len + 1))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto out;
    }
    memcpy(pw, pass, len);
    pw[len] = '\0';
    res = crypt_rf(pw, hash, cd);
    ok = known && res && res[0] != '*' && strlen(res) == strlen(hash) &&
         ct_equal(res, hash, strlen(hash));
    if (ok && keyed)
        cache_put(h, key, now);
done:
    error = ok ? 0 : berth_error_set(BERTH_EDENIED, "invalid username or password");
out:
    if (cd)
        explicit_bzero(cd, sizeof(*cd));
    if (pw)
        explicit_bzero(pw, len + 1);
    free(cd);
    free(pw);
    explicit_bzero(hash, sizeof(hash));
    explicit_bzero(key, sizeof(key));
    return error;
}

int berth_htpasswd_has_user(struct berth_htpasswd *h, const char *user, char bind[17])
{
    static const char hex[] = "0123456789abcdef";
    char hash[HASH_MAX];
    uint8_t md[BERTH_SHA256_LEN];
    int known;

    if (!user || strlen(user) > BERTH_HTPASSWD_USER_MAX)
        return 0;
    maybe_reload(h);
    known = lookup(h, user, hash);
    if (known && bind) {
        berth_sha256(md, hash, strlen(hash));
        for (size_t i = 0; i < 8; i++) {
            bind[2 * i] = hex[md[i] >> 4];
            bind[2 * i + 1] = hex[md[i] & 15];
        }
        bind[16] = '\0';
    }
    explicit_bzero(hash, sizeof(hash));
    return known;
}

size_t berth_htpasswd_count(struct berth_htpasswd *h)
{
    size_t n;

    pthread_rwlock_rdlock(&h->lock);
    n = h->nentries;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

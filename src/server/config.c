/*
 * Configuration loading for `berth serve` (see config.h for the order of
 * precedence). A YAML document is walked with libyaml's document API and each
 * scalar leaf is applied by its dotted key path through one table of known
 * keys, so the file, REGISTRY_* variables and flags share one setter each.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "core/error.h"
#include "core/manifest.h"
#include "log.h"

#define YAML_MAX_DEPTH 32
#define YAML_MAX_NODES 100000
#define CONFIG_FILE_MAX (1024 * 1024)

void berth_config_init(struct berth_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->addr = strdup("0.0.0.0:5000");
    cfg->root = strdup("./var/berth");
    cfg->delete_enabled = 1;
    cfg->log_level = BERTH_LOG_INFO;
    cfg->access_log = 1;
    cfg->purge_enabled = 1;
    cfg->purge_age_ms = 24LL * 3600 * 1000;
    cfg->purge_interval_ms = 3600LL * 1000;
    cfg->manifest_max = BERTH_MANIFEST_MAX_DEFAULT;
    cfg->auth.htpasswd_realm = strdup("berth");
    cfg->auth.token_expiration_ms = 5LL * 60 * 1000;
    cfg->auth.token_refresh_ms = 720LL * 3600 * 1000;
    cfg->auth.throttle_failures = 5;
    cfg->auth.throttle_lockout_ms = 60LL * 1000;
    cfg->tls.minimum = 12;
    cfg->maint.gc_interval_ms = 24LL * 3600 * 1000;
    cfg->maint.gc_grace_ms = 24LL * 3600 * 1000;
    cfg->maint.gc_batch = 500;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_groups(struct berth_auth_config *a)
{
    for (size_t i = 0; i < a->ngroups; i++) {
        free(a->groups[i].name);
        free_strv(a->groups[i].members, a->groups[i].nmembers);
    }
    free(a->groups);
    a->groups = NULL;
    a->ngroups = 0;
}

static void free_rules(struct berth_auth_config *a)
{
    for (size_t i = 0; i < a->nrules; i++) {
        free_strv(a->rules[i].repositories, a->rules[i].nrepositories);
        free_strv(a->rules[i].users, a->rules[i].nusers);
    }
    free(a->rules);
    a->rules = NULL;
    a->nrules = 0;
}

/* The rule strings are const in maint.h (the collector only reads them)
 * but owned by the config. */
static void free_cstr(const char *s)
{
    free((void *)(uintptr_t)s);
}

static void free_retention(struct berth_maint_config *m)
{
    for (size_t i = 0; i < m->nretention; i++) {
        free_cstr(m->retention[i].repositories);
        free_cstr(m->retention[i].tags);
        free_cstr(m->retention[i].protect);
    }
    free(m->retention);
    m->retention = NULL;
    m->nretention = 0;
}

static void free_immutable(struct berth_maint_config *m)
{
    for (size_t i = 0; i < m->nimmutable; i++) {
        free_cstr(m->immutable[i].repositories);
        free_cstr(m->immutable[i].tags);
    }
    free(m->immutable);
    m->immutable = NULL;
    m->nimmutable = 0;
}

static void free_quotas(struct berth_maint_config *m)
{
    for (size_t i = 0; i < m->nquotas; i++) {
        free_cstr(m->quotas[i].repositories);
        free_cstr(m->quotas[i].namespace);
    }
    free(m->quotas);
    m->quotas = NULL;
    m->nquotas = 0;
}

void berth_config_dispose(struct berth_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->addr);
    free(cfg->root);
    cfg->addr = cfg->root = NULL;
    free(cfg->auth.htpasswd_realm);
    free(cfg->auth.htpasswd_path);
    free(cfg->auth.token_realm);
    free(cfg->auth.token_service);
    free(cfg->auth.token_issuer);
    free(cfg->auth.token_rootcertbundle);
    free(cfg->auth.token_jwks);
    free(cfg->auth.token_signingkey);
    free_groups(&cfg->auth);
    free_rules(&cfg->auth);
    free(cfg->tls.certificate);
    free(cfg->tls.key);
    free_strv(cfg->tls.clientcas, cfg->tls.nclientcas);
    free_retention(&cfg->maint);
    free_immutable(&cfg->maint);
    free_quotas(&cfg->maint);
    memset(&cfg->auth, 0, sizeof(cfg->auth));
    memset(&cfg->tls, 0, sizeof(cfg->tls));
    memset(&cfg->maint, 0, sizeof(cfg->maint));
}

static int parse_bool(int *out, const char *key, const char *s)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return berth_error_set(BERTH_EINVALID, "config '%s': expected true or false, got '%s'", key, s);
}

int berth_duration_parse(int64_t *out_ms, const char *s)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "µs", 1e-3 }, { "ms", 1 },
                  { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
    const char *p = s;
    double total = 0;

    if (!s || !*s)
        return berth_error_set(BERTH_EINVALID, "empty duration");
    while (*p) {
        char *end;
        size_t best = 0, blen = 0;
        double v;

        if (!isdigit((unsigned char)*p) && *p != '.')
            goto bad;
        errno = 0;
        v = strtod(p, &end);
        if (end == p || errno)
            goto bad;
        p = end;
        if (!*p && p == s + strlen(s) && total == 0) {
            total = v * 1000; /* a bare number is seconds */
            break;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, ul) && ul > blen) {
                best = i;
                blen = ul;
            }
        }
        if (!blen)
            goto bad;
        total += v * units[best].ms;
        p += blen;
    }
    if (total < 0 || total > 9.2e15)
        goto bad;
    *out_ms = (int64_t)total;
    return 0;
bad:
    return berth_error_set(BERTH_EINVALID, "invalid duration '%s'", s);
}

int berth_size_parse(uint64_t *out, const char *s)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = { { "", 1 },
                  { "b", 1 },
                  { "k", 1024 },
                  { "kb", 1000 },
                  { "kib", 1024 },
                  { "m", 1024 * 1024 },
                  { "mb", 1000 * 1000 },
                  { "mib", 1024 * 1024 },
                  { "g", 1024ULL * 1024 * 1024 },
                  { "gb", 1000ULL * 1000 * 1000 },
                  { "gib", 1024ULL * 1024 * 1024 } };
    char *end;
    unsigned long long v;

    if (!s || !isdigit((unsigned char)*s))
        goto bad;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        goto bad;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcasecmp(end, units[i].unit)) {
            if (v > UINT64_MAX / units[i].mult)
                goto bad;
            *out = v * units[i].mult;
            return 0;
        }
    }
bad:
    return berth_error_set(BERTH_EINVALID, "invalid size '%s'", s ? s : "");
}

/* ---- the table of known keys ---- */

typedef int (*setter_fn)(struct berth_config *cfg, const char *key, const char *v);

static int set_str(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return berth_error_set(BERTH_ERROR, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

static int set_addr(struct berth_config *cfg, const char *key, const char *v)
{
    (void)key;
    return set_str(&cfg->addr, v);
}

static int set_root(struct berth_config *cfg, const char *key, const char *v)
{
    if (!*v)
        return berth_error_set(BERTH_EINVALID, "config '%s': empty path", key);
    return set_str(&cfg->root, v);
}

static int set_delete(struct berth_config *cfg, const char *key, const char *v)
{
    return parse_bool(&cfg->delete_enabled, key, v);
}

static int set_log_level(struct berth_config *cfg, const char *key, const char *v)
{
    int l = berth_log_level_parse(v);
    if (l < 0)
        return berth_error_set(BERTH_EINVALID, "config '%s': unknown log level '%s'", key, v);
    cfg->log_level = l;
    return 0;
}

static int set_accesslog_disabled(struct berth_config *cfg, const char *key, const char *v)
{
    int disabled;
    int error = parse_bool(&disabled, key, v);
    if (!error)
        cfg->access_log = !disabled;
    return error;
}

static int set_purge_enabled(struct berth_config *cfg, const char *key, const char *v)
{
    return parse_bool(&cfg->purge_enabled, key, v);
}

static int set_purge_dryrun(struct berth_config *cfg, const char *key, const char *v)
{
    return parse_bool(&cfg->purge_dryrun, key, v);
}

static int set_duration(int64_t *dst, const char *key, const char *v)
{
    int64_t ms;
    if (berth_duration_parse(&ms, v) < 0)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid duration '%s'", key, v);
    if (ms <= 0)
        return berth_error_set(BERTH_EINVALID, "config '%s': duration must be positive", key);
    *dst = ms;
    return 0;
}

static int set_purge_age(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration(&cfg->purge_age_ms, key, v);
}

static int set_purge_interval(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration(&cfg->purge_interval_ms, key, v);
}

static int set_manifest_max(struct berth_config *cfg, const char *key, const char *v)
{
    uint64_t n;
    if (berth_size_parse(&n, v) < 0 || n == 0 || n > 1024ULL * 1024 * 1024)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid size '%s'", key, v);
    cfg->manifest_max = n;
    return 0;
}

static int set_threads(struct berth_config *cfg, const char *key, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 0 || n > 1024)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid thread count '%s'", key, v);
    cfg->threads = (unsigned)n;
    return 0;
}

static int set_version(struct berth_config *cfg, const char *key, const char *v)
{
    (void)cfg;
    if (strcmp(v, "0.1") != 0)
        return berth_error_set(BERTH_EINVALID, "config '%s': unsupported version '%s'", key, v);
    return 0;
}

/* auth.* and http.tls.*: strings are stored by their offset in the config */
#define STR_SETTER(fn, field)                                                                      \
    static int fn(struct berth_config *cfg, const char *key, const char *v)                       \
    {                                                                                              \
        if (!*v)                                                                                   \
            return berth_error_set(BERTH_EINVALID, "config '%s': empty value", key);              \
        return set_str(&cfg->field, v);                                                            \
    }

STR_SETTER(set_htpasswd_realm, auth.htpasswd_realm)
STR_SETTER(set_htpasswd_path, auth.htpasswd_path)
STR_SETTER(set_token_realm, auth.token_realm)
STR_SETTER(set_token_service, auth.token_service)
STR_SETTER(set_token_issuer, auth.token_issuer)
STR_SETTER(set_token_rootcertbundle, auth.token_rootcertbundle)
STR_SETTER(set_token_jwks, auth.token_jwks)
STR_SETTER(set_token_signingkey, auth.token_signingkey)
STR_SETTER(set_tls_certificate, tls.certificate)
STR_SETTER(set_tls_key, tls.key)

static int set_token_builtin(struct berth_config *cfg, const char *key, const char *v)
{
    return parse_bool(&cfg->auth.token_builtin, key, v);
}

static int set_token_expiration(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration(&cfg->auth.token_expiration_ms, key, v);
}

static int set_token_refresh(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration(&cfg->auth.token_refresh_ms, key, v);
}

static int set_throttle_failures(struct berth_config *cfg, const char *key, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 0 || n > 1000000)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid count '%s'", key, v);
    cfg->auth.throttle_failures = (unsigned)n;
    return 0;
}

static int set_throttle_lockout(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration(&cfg->auth.throttle_lockout_ms, key, v);
}

static int set_minimumtls(struct berth_config *cfg, const char *key, const char *v)
{
    if (!strcasecmp(v, "tls1.2"))
        cfg->tls.minimum = 12;
    else if (!strcasecmp(v, "tls1.3"))
        cfg->tls.minimum = 13;
    else
        return berth_error_set(BERTH_EINVALID, "config '%s': expected tls1.2 or tls1.3, got "
                               "'%s'", key, v);
    return 0;
}

/* berth.gc.*: an interval or grace of 0 is meaningful (never; no grace) */
static int set_duration0(int64_t *dst, const char *key, const char *v)
{
    int64_t ms;
    if (berth_duration_parse(&ms, v) < 0)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid duration '%s'", key, v);
    *dst = ms;
    return 0;
}

static int set_gc_interval(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration0(&cfg->maint.gc_interval_ms, key, v);
}

static int set_gc_grace(struct berth_config *cfg, const char *key, const char *v)
{
    return set_duration0(&cfg->maint.gc_grace_ms, key, v);
}

static int set_gc_untagged(struct berth_config *cfg, const char *key, const char *v)
{
    return parse_bool(&cfg->maint.gc_untagged, key, v);
}

static int set_gc_batch(struct berth_config *cfg, const char *key, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > 1000000)
        return berth_error_set(BERTH_EINVALID, "config '%s': invalid batch size '%s' (1 to "
                               "1000000)", key, v);
    cfg->maint.gc_batch = (unsigned)n;
    return 0;
}

static const struct known_key {
    const char *path;
    setter_fn set;
} known_keys[] = {
    { "version", set_version },
    { "log.level", set_log_level },
    { "log.accesslog.disabled", set_accesslog_disabled },
    { "http.addr", set_addr },
    { "storage.filesystem.rootdirectory", set_root },
    { "storage.delete.enabled", set_delete },
    { "storage.maintenance.uploadpurging.enabled", set_purge_enabled },
    { "storage.maintenance.uploadpurging.age", set_purge_age },
    { "storage.maintenance.uploadpurging.interval", set_purge_interval },
    { "storage.maintenance.uploadpurging.dryrun", set_purge_dryrun },
    { "berth.manifestmaxbytes", set_manifest_max },
    { "berth.threads", set_threads },
    { "http.tls.certificate", set_tls_certificate },
    { "http.tls.key", set_tls_key },
    { "http.tls.minimumtls", set_minimumtls },
    { "auth.htpasswd.realm", set_htpasswd_realm },
    { "auth.htpasswd.path", set_htpasswd_path },
    { "auth.token.realm", set_token_realm },
    { "auth.token.service", set_token_service },
    { "auth.token.issuer", set_token_issuer },
    { "auth.token.rootcertbundle", set_token_rootcertbundle },
    { "auth.token.jwks", set_token_jwks },
    { "auth.token.builtin", set_token_builtin },
    { "auth.token.signingkey", set_token_signingkey },
    { "auth.token.expiration", set_token_expiration },
    { "auth.token.refreshexpiration", set_token_refresh },
    { "auth.throttle.failures", set_throttle_failures },
    { "auth.throttle.lockout", set_throttle_lockout },
    { "berth.gc.interval", set_gc_interval },
    { "berth.gc.grace", set_gc_grace },
    { "berth.gc.untagged", set_gc_untagged },
    { "berth.gc.batch", set_gc_batch },
};

/* ---- keys whose value is a list or a mapping ---- */

#define LIST_MAX 1024

/* A list of strings: a sequence of scalars, or one scalar. */
static int node_strings(char ***out, size_t *nout, yaml_document_t *doc, yaml_node_t *node,
                        const char *key)
{
    yaml_node_item_t *it;
    char **v;
    size_t n = 0;

    if (node->type == YAML_SCALAR_NODE) { /* "x" is ["x"], an empty value [] */
        int one = node->data.scalar.length > 0;
        if ((v = calloc(1, sizeof(*v))) == NULL)
            goto oom;
        if (one && !(v[0] = strdup((char *)node->data.scalar.value))) {
            free(v);
            goto oom;
        }
        *out = v;
        *nout = (size_t)one;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s': expected a list", key);
    it = node->data.sequence.items.start;
    if (node->data.sequence.items.top - it > LIST_MAX)
        return berth_error_set(BERTH_EINVALID, "config '%s': more than %d items", key, LIST_MAX);
    if ((v = calloc((size_t)(node->data.sequence.items.top - it) + 1, sizeof(*v))) == NULL)
        goto oom;
    for (; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (!item || item->type != YAML_SCALAR_NODE || !item->data.scalar.length ||
            strlen((char *)item->data.scalar.value) != item->data.scalar.length) {
            free_strv(v, n);
            return berth_error_set(BERTH_EINVALID, "config '%s': item %zu is not a string", key,
                                   n + 1);
        }
        if ((v[n] = strdup((char *)item->data.scalar.value)) == NULL) {
            free_strv(v, n);
            goto oom;
        }
        n++;
    }
    *out = v;
    *nout = n;
    return 0;
oom:
    return berth_error_set(BERTH_ERROR, "out of memory");
}

typedef int (*node_setter_fn)(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                              yaml_node_t *node);

static int set_clientcas(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                         yaml_node_t *node)
{
    char **v;
    size_t n;
    int error = node_strings(&v, &n, doc, node, key);
    if (error < 0)
        return error;
    free_strv(cfg->tls.clientcas, cfg->tls.nclientcas);
    cfg->tls.clientcas = v;
    cfg->tls.nclientcas = n;
    return 0;
}

static int set_groups(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                      yaml_node_t *node)
{
    struct berth_auth_config *a = &cfg->auth;
    yaml_node_pair_t *p;
    int error = 0;

    if (node->type != YAML_MAPPING_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s': expected {group: [user, ...]}", key);
    free_groups(a);
    if (node->data.mapping.pairs.top - node->data.mapping.pairs.start > LIST_MAX)
        return berth_error_set(BERTH_EINVALID, "config '%s': too many groups", key);
    a->groups = calloc((size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start) + 1,
                       sizeof(*a->groups));
    if (!a->groups)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        struct berth_policy_group *g = &a->groups[a->ngroups];
        if (!k || k->type != YAML_SCALAR_NODE || !k->data.scalar.length || !v)
            return berth_error_set(BERTH_EINVALID, "config '%s': bad group name", key);
        if ((g->name = strdup((char *)k->data.scalar.value)) == NULL)
            return berth_error_set(BERTH_ERROR, "out of memory");
        a->ngroups++;
        if ((error = node_strings(&g->members, &g->nmembers, doc, v, key)) < 0)
            return error;
    }
    return 0;
}

static int parse_actions(unsigned *out, char **words, size_t n, const char *key)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bit = berth_action_parse(words[i], strlen(words[i]));
        if (!bit)
            return berth_error_set(BERTH_EINVALID, "config '%s': unknown action '%s' (pull, "
                                   "push, delete, catalog or *)", key, words[i]);
        *out |= bit;
    }
    return 0;
}

static int set_rule(struct berth_policy_rule *r, const char *key, yaml_document_t *doc,
                    yaml_node_t *node)
{
    char **acts = NULL;
    size_t nacts = 0;
    int error = 0;

    if (node->type != YAML_MAPPING_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s': each rule is a mapping", key);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *name = k && k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "";
        if (!v)
            continue;
        if (!strcmp(name, "repository") || !strcmp(name, "repositories")) {
            if (r->repositories)
                error = berth_error_set(BERTH_EINVALID, "config '%s': repository given twice",
                                        key);
            else
                error = node_strings(&r->repositories, &r->nrepositories, doc, v, key);
        } else if (!strcmp(name, "users")) {
            if (r->users)
                error = berth_error_set(BERTH_EINVALID, "config '%s': users given twice", key);
            else
                error = node_strings(&r->users, &r->nusers, doc, v, key);
        } else if (!strcmp(name, "actions")) {
            free_strv(acts, nacts);
            acts = NULL;
            if ((error = node_strings(&acts, &nacts, doc, v, key)) == 0)
                error = parse_actions(&r->actions, acts, nacts, key);
        } else {
            /* a misspelt key in an access rule must not silently change who may do what */
            error = berth_error_set(BERTH_EINVALID, "config '%s': unknown rule key '%s' "
                                    "(repository, users, actions)", key, name);
        }
        if (error < 0)
            goto done;
    }
    if (!r->nusers || !r->actions)
        error = berth_error_set(BERTH_EINVALID, "config '%s': every rule needs users and "
                                "actions", key);
done:
    free_strv(acts, nacts);
    return error;
}

static int set_rules(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                     yaml_node_t *node)
{
    struct berth_auth_config *a = &cfg->auth;
    yaml_node_item_t *it;
    int error;

    if (node->type != YAML_SEQUENCE_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s': expected a list of rules", key);
    free_rules(a);
    it = node->data.sequence.items.start;
    if (node->data.sequence.items.top - it > LIST_MAX)
        return berth_error_set(BERTH_EINVALID, "config '%s': too many rules", key);
    a->rules = calloc((size_t)(node->data.sequence.items.top - it) + 1, sizeof(*a->rules));
    if (!a->rules)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (!item)
            continue;
        a->nrules++;
        if ((error = set_rule(&a->rules[a->nrules - 1], key, doc, item)) < 0)
            return error;
    }
    return 0;
}

/* ---- berth.retention, berth.immutabletags, berth.quotas ----
 * Lists of mappings; a message names the key and the rule's index
 * ("config 'berth.retention[1]': ..."). Unknown keys in a rule are errors:
 * a misspelt "protect" must not silently delete tags. */

/* One scalar value of a rule, copied. */
static int rule_str(const char **dst, yaml_node_t *v, const char *key, size_t idx,
                    const char *name)
{
    char *s;

    if (v->type != YAML_SCALAR_NODE || !v->data.scalar.length ||
        strlen((char *)v->data.scalar.value) != v->data.scalar.length)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': '%s' must be a non-empty "
                               "string", key, idx, name);
    if (*dst)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': '%s' given twice", key, idx,
                               name);
    if ((s = strdup((char *)v->data.scalar.value)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    *dst = s;
    return 0;
}

#define REGEX_MAX_LEN 256
#define REGEX_MAX_SIZE 2000 /* atoms after expanding repetitions */
#define REGEX_MAX_DEPTH 16

/* glibc's regcomp expands repetitions into copies of the tree, so stacked
 * or nested ones cost exponential memory: "a" followed by 20 '+' took 700 MB
 * and 2.7 s here, "a{1,255}{1,255}{1,10}" 1.5 GB (found by fuzz_config).
 * Estimate the expanded size first — each atom counts 1, a repetition
 * multiplies what it applies to (2 for * + ?, the larger bound + 1 for
 * {m,n}) — and refuse patterns over a budget no tag filter needs. Returns
 * 1 when the pattern may be compiled. */
static int regex_size_ok(const char *p)
{
    uint64_t size[REGEX_MAX_DEPTH + 1] = { 0 }, last = 0;
    int depth = 0;

    if (strlen(p) > REGEX_MAX_LEN)
        return 0;
    for (; *p; p++) {
        uint64_t mult = 0;

        if (*p == '(') {
            if (++depth > REGEX_MAX_DEPTH)
                return 0;
            size[depth] = 0;
            last = 0;
            continue;
        } else if (*p == ')' && depth > 0) {
            last = size[depth--];
        } else if (*p == '*' || *p == '+' || *p == '?') {
            mult = 2;
        } else if (*p == '{' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            unsigned long m = strtoul(p + 1, &end, 10), n = m;

            if (*end == ',' && end[1] != '}')
                n = strtoul(end + 1, &end, 10);
            else if (*end == ',')
                n = m + 1, end++;
            if (*end != '}')
                return 1; /* malformed: regcomp refuses it */
            mult = (n > m ? n : m) + 1;
            p = end;
        } else if (*p == '[') {
            /* a bracket expression is one atom; ']' first is a member */
            const char *q = p + 1 + (p[1] == '^');

            q += *q == ']';
            while (*q && *q != ']')
                q++;
            if (!*q)
                return 1;
            p = q;
            last = 1;
        } else if (*p == '|') {
            continue;
        } else {
            if (*p == '\\' && p[1])
                p++;
            last = 1;
        }
        if (mult) {
            if (last > REGEX_MAX_SIZE || mult > REGEX_MAX_SIZE)
                return 0;
            size[depth] += last * (mult - 1);
            last *= mult;
        } else {
            size[depth] += last;
        }
        if (size[depth] > REGEX_MAX_SIZE)
            return 0;
    }
    return 1;
}

static int rule_regex(const char **dst, yaml_node_t *v, const char *key, size_t idx,
                      const char *name)
{
    regex_t re;
    int error = rule_str(dst, v, key, idx, name), rc;
    char msg[128];

    if (error < 0)
        return error;
    if (!regex_size_ok(*dst))
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': %s regex too complex "
                               "(over %d characters or too many nested repetitions)",
                               key, idx, name, REGEX_MAX_LEN);
    if ((rc = regcomp(&re, *dst, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, &re, msg, sizeof(msg));
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': invalid %s regex '%s': %s",
                               key, idx, name, *dst, msg);
    }
    regfree(&re);
    return 0;
}

/* Call fn for each (name, value) of a rule mapping. */
typedef int (*rule_field_fn)(void *rule, const char *name, yaml_node_t *v, const char *key,
                             size_t idx);

static int rule_fields(void *rule, rule_field_fn fn, yaml_document_t *doc, yaml_node_t *node,
                       const char *key, size_t idx)
{
    int error;

    if (node->type != YAML_MAPPING_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': each rule is a mapping", key,
                               idx);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *name = k && k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "";

        if (!v)
            continue;
        if ((error = fn(rule, name, v, key, idx)) < 0)
            return error;
    }
    return 0;
}

/* Allocate room for a list of `size`-byte rules: n items + 1 (never 0). */
/* A finished rule `idx` of `key`: fill defaults, refuse missing keys. */
typedef int (*rule_done_fn)(void *rule, const char *key, size_t idx);

/* Parse `node`, a list of rule mappings, into a new zeroed array of
 * `size`-byte rules (*out, set before any rule is parsed): each rule gets
 * `init` (may be NULL), every key through `field`, then `done`. *n counts
 * each rule begun, so the caller's free also frees a half-parsed one. */
static int rule_items(void **out, size_t *n, size_t size, yaml_document_t *doc,
                      yaml_node_t *node, const char *key, void (*init)(void *rule),
                      rule_field_fn field, rule_done_fn done)
{
    ptrdiff_t count;
    int error;

    if (node->type != YAML_SEQUENCE_NODE)
        return berth_error_set(BERTH_EINVALID, "config '%s': expected a list of rules", key);
    count = node->data.sequence.items.top - node->data.sequence.items.start;
    if (count > LIST_MAX)
        return berth_error_set(BERTH_EINVALID, "config '%s': too many rules", key);
    if ((*out = calloc((size_t)count + 1, size)) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (yaml_node_item_t *it = node->data.sequence.items.start;
         it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        void *rule = (char *)*out + *n * size;

        if (!item)
            continue;
        if (init)
            init(rule);
        (*n)++;
        if ((error = rule_fields(rule, field, doc, item, key, *n - 1)) < 0 ||
            (error = done(rule, key, *n - 1)) < 0)
            return error;
    }
    return 0;
}

static int retention_field(void *rule, const char *name, yaml_node_t *v, const char *key,
                           size_t idx)
{
    struct berth_retention_rule *r = rule;
    const char *val = v->type == YAML_SCALAR_NODE ? (char *)v->data.scalar.value : "";
    int64_t ms;
    char *end;
    long n;

    if (!strcmp(name, "repositories"))
        return rule_str(&r->repositories, v, key, idx, name);
    if (!strcmp(name, "tags") || !strcmp(name, "protect"))
        return rule_regex(!strcmp(name, "tags") ? &r->tags : &r->protect, v, key, idx, name);
    if (!strcmp(name, "keep")) {
        n = strtol(val, &end, 10);
        if (v->type != YAML_SCALAR_NODE || end == val || *end || n < 0 || n > 1000000000L)
            return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': keep must be a count "
                                   "(0 or more), got '%s'", key, idx, val);
        r->keep = n;
        return 0;
    }
    if (!strcmp(name, "olderthan")) {
        if (v->type != YAML_SCALAR_NODE || berth_duration_parse(&ms, val) < 0)
            return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': invalid olderthan "
                                   "duration '%s' (e.g. 30d, 72h)", key, idx, val);
        r->older_than_sec = ms / 1000;
        return 0;
    }
    return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': unknown key '%s' (repositories, "
                           "tags, protect, keep, olderthan)", key, idx, name);
}

static void retention_init(void *rule)
{
    ((struct berth_retention_rule *)rule)->keep = -1;
}

static int retention_done(void *rule, const char *key, size_t idx)
{
    if (!((struct berth_retention_rule *)rule)->repositories)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': 'repositories' is required",
                               key, idx);
    return 0;
}

static int set_retention(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                         yaml_node_t *node)
{
    struct berth_maint_config *m = &cfg->maint;
    void *list = NULL;
    int error;

    free_retention(m);
    error = rule_items(&list, &m->nretention, sizeof(*m->retention), doc, node, key,
                       retention_init, retention_field, retention_done);
    m->retention = list;
    return error;
}

static int immutable_field(void *rule, const char *name, yaml_node_t *v, const char *key,
                           size_t idx)
{
    struct berth_immutable_rule *r = rule;

    if (!strcmp(name, "repositories"))
        return rule_str(&r->repositories, v, key, idx, name);
    if (!strcmp(name, "tags"))
        return rule_str(&r->tags, v, key, idx, name);
    return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': unknown key '%s' (repositories, "
                           "tags)", key, idx, name);
}

static int immutable_done(void *rule, const char *key, size_t idx)
{
    struct berth_immutable_rule *r = rule;

    if (!r->tags)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': 'tags' is required", key,
                               idx);
    if (!r->repositories && (r->repositories = strdup("**")) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    return 0;
}

static int set_immutable(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                         yaml_node_t *node)
{
    struct berth_maint_config *m = &cfg->maint;
    void *list = NULL;
    int error;

    free_immutable(m);
    error = rule_items(&list, &m->nimmutable, sizeof(*m->immutable), doc, node, key, NULL,
                       immutable_field, immutable_done);
    m->immutable = list;
    return error;
}

static int quota_field(void *rule, const char *name, yaml_node_t *v, const char *key,
                       size_t idx)
{
    struct berth_quota_rule *r = rule;
    const char *val = v->type == YAML_SCALAR_NODE ? (char *)v->data.scalar.value : "";
    int error;

    if (!strcmp(name, "repositories"))
        return rule_str(&r->repositories, v, key, idx, name);
    if (!strcmp(name, "namespace")) {
        if ((error = rule_str(&r->namespace, v, key, idx, name)) < 0)
            return error;
        /* "team-a/" and "team-a" name the same namespace */
        if (r->namespace[strlen(r->namespace) - 1] == '/')
            ((char *)(uintptr_t)r->namespace)[strlen(r->namespace) - 1] = '\0';
        if (!*r->namespace || strchr(r->namespace, '/'))
            return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': namespace must be one "
                                   "path component, like \"team-a\"", key, idx);
        return 0;
    }
    if (!strcmp(name, "limit")) {
        if (v->type != YAML_SCALAR_NODE || berth_size_parse(&r->limit, val) < 0 || !r->limit)
            return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': invalid limit '%s' "
                                   "(a size such as 10GiB)", key, idx, val);
        return 0;
    }
    return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': unknown key '%s' (repositories, "
                           "namespace, limit)", key, idx, name);
}

static int quota_done(void *rule, const char *key, size_t idx)
{
    struct berth_quota_rule *r = rule;

    if (!r->repositories == !r->namespace)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': give exactly one of "
                               "'repositories' and 'namespace'", key, idx);
    if (!r->limit)
        return berth_error_set(BERTH_EINVALID, "config '%s[%zu]': 'limit' is required", key,
                               idx);
    return 0;
}

static int set_quotas(struct berth_config *cfg, const char *key, yaml_document_t *doc,
                      yaml_node_t *node)
{
    struct berth_maint_config *m = &cfg->maint;
    void *list = NULL;
    int error;

    free_quotas(m);
    error = rule_items(&list, &m->nquotas, sizeof(*m->quotas), doc, node, key, NULL,
                       quota_field, quota_done);
    m->quotas = list;
    return error;
}

static const struct node_key {
    const char *path;
    node_setter_fn set;
    int scalar_ok; /* berth_config_set may give it one string */
} node_keys[] = {
    { "http.tls.clientcas", set_clientcas, 1 },
    { "auth.access.groups", set_groups, 0 },
    { "auth.access.rules", set_rules, 0 },
    { "berth.retention", set_retention, 0 },
    { "berth.immutabletags", set_immutable, 0 },
    { "berth.quotas", set_quotas, 0 },
};

static const struct node_key *find_node_key(const char *path)
{
    for (size_t i = 0; i < sizeof(node_keys) / sizeof(node_keys[0]); i++)
        if (!strcasecmp(path, node_keys[i].path))
            return &node_keys[i];
    return NULL;
}

static void warn_unknown(berth_config_warn_fn warn, void *ctx, const char *what, const char *key)
{
    char msg[512];
    if (!warn)
        return;
    snprintf(msg, sizeof(msg), "%s '%s' is not supported by berth; ignored", what, key);
    warn(ctx, msg);
}

int berth_config_set(struct berth_config *cfg, const char *key, const char *value,
                     berth_config_warn_fn warn, void *ctx)
{
    const struct node_key *nk;

    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
        if (!strcasecmp(key, known_keys[i].path))
            return known_keys[i].set(cfg, known_keys[i].path, value);
    if ((nk = find_node_key(key)) != NULL) {
        yaml_node_t one;
        if (!nk->scalar_ok)
            return berth_error_set(BERTH_EINVALID, "config '%s' can only be set in the "
                                   "configuration file", nk->path);
        memset(&one, 0, sizeof(one));
        one.type = YAML_SCALAR_NODE;
        one.data.scalar.value = (yaml_char_t *)value;
        one.data.scalar.length = strlen(value);
        return nk->set(cfg, nk->path, NULL, &one);
    }
    warn_unknown(warn, ctx, "config key", key);
    return 0;
}

/* ---- YAML ---- */

struct walk {
    struct berth_config *cfg;
    yaml_document_t *doc;
    berth_config_warn_fn warn;
    void *ctx;
    unsigned visits; /* aliases can make a small file a huge tree: cap the walk */
};

static int walk_node(struct walk *w, yaml_node_t *node, char *path, size_t plen, int depth)
{
    if (!node)
        return 0;
    if (++w->visits > YAML_MAX_NODES)
        return berth_error_set(BERTH_EINVALID, "config: too many nodes (alias expansion?)");
    if (depth > YAML_MAX_DEPTH)
        return berth_error_set(BERTH_EINVALID, "config: nesting too deep at '%s'", path);
    if (plen) {
        const struct node_key *nk = find_node_key(path);
        if (nk && node->type == YAML_SCALAR_NODE && !node->data.scalar.length &&
            !node->data.scalar.style)
            return 0;
        if (nk)
            return nk->set(w->cfg, nk->path, w->doc, node);
    }
    switch (node->type) {
    case YAML_SCALAR_NODE:
        if (!plen)
            return berth_error_set(BERTH_EINVALID, "config: expected a mapping at the top");
        /* An empty value (`filesystem:` with nothing under it) sets nothing. */
        if (node->data.scalar.length == 0 && !node->data.scalar.style)
            return 0;
        if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
            return berth_error_set(BERTH_EINVALID, "config '%s': NUL byte in value", path);
        return berth_config_set(w->cfg, path, (const char *)node->data.scalar.value, w->warn,
                                w->ctx);
    case YAML_SEQUENCE_NODE:
        if (plen)
            warn_unknown(w->warn, w->ctx, "config key", path);
        else
            return berth_error_set(BERTH_EINVALID, "config: expected a mapping at the top");
        return 0;
    case YAML_MAPPING_NODE:
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
            size_t klen;
            int error;

            if (!k || k->type != YAML_SCALAR_NODE)
                return berth_error_set(BERTH_EINVALID, "config: non-scalar key under '%s'",
                                       plen ? path : "(top)");
            klen = k->data.scalar.length;
            if (plen + 1 + klen + 1 > 512)
                return berth_error_set(BERTH_EINVALID, "config: key path too long");
            if (plen)
                path[plen] = '.';
            memcpy(path + plen + (plen ? 1 : 0), k->data.scalar.value, klen);
            path[plen + (plen ? 1 : 0) + klen] = '\0';
            error = walk_node(w, yaml_document_get_node(w->doc, p->value), path,
                              plen + (plen ? 1 : 0) + klen, depth + 1);
            path[plen] = '\0';
            if (error < 0)
                return error;
        }
        return 0;
    default:
        return 0;
    }
}

int berth_config_parse(struct berth_config *cfg, const uint8_t *yaml, size_t len,
                       berth_config_warn_fn warn, void *ctx)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    char path[512] = "";
    struct walk w = { cfg, &doc, warn, ctx, 0 };
    int error;

    if (!yaml_parser_initialize(&parser))
        return berth_error_set(BERTH_ERROR, "out of memory");
    yaml_parser_set_input_string(&parser, yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        error = berth_error_set(BERTH_EINVALID, "config: %s at line %zu column %zu",
                                parser.problem ? parser.problem : "malformed YAML",
                                parser.problem_mark.line + 1, parser.problem_mark.column + 1);
        yaml_parser_delete(&parser);
        return error;
    }
    error = walk_node(&w, yaml_document_get_root_node(&doc), path, 0, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return error;
}

int berth_config_load(struct berth_config *cfg, const char *path, berth_config_warn_fn warn,
                      void *ctx)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0;
    int error;

    if (!f)
        return berth_error_errno("cannot open config '%s'", path);
    buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    len = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f))
        error = berth_error_errno("cannot read config '%s'", path);
    else if (len > CONFIG_FILE_MAX)
        error = berth_error_set(BERTH_ETOOBIG, "config '%s' is larger than 1 MiB", path);
    else
        error = berth_config_parse(cfg, buf, len, warn, ctx);
    fclose(f);
    free(buf);
    return error;
}

int berth_config_env(struct berth_config *cfg, char *const *envp, berth_config_warn_fn warn,
                     void *ctx)
{
    static const char prefix[] = "REGISTRY_";

    for (; envp && *envp; envp++) {
        const char *e = *envp, *eq = strchr(e, '=');
        char key[256];
        size_t klen;
        int error;

        if (strncmp(e, prefix, sizeof(prefix) - 1) || !eq)
            continue;
        /* podman's and skopeo's own variable (their credentials file), set
         * in many shells that also run a registry: not a registry key */
        if (!strncmp(e, "REGISTRY_AUTH_FILE=", 19))
            continue;
        e += sizeof(prefix) - 1;
        klen = (size_t)(eq - e);
        if (!klen || klen >= sizeof(key))
            continue;
        /* REGISTRY_STORAGE_DELETE_ENABLED → storage.delete.enabled */
        for (size_t i = 0; i < klen; i++)
            key[i] = e[i] == '_' ? '.' : (char)tolower((unsigned char)e[i]);
        key[klen] = '\0';
        if ((error = berth_config_set(cfg, key, eq + 1, NULL, NULL)) < 0)
            return error;
        {
            int known = find_node_key(key) != NULL;
            for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
                known |= !strcasecmp(key, known_keys[i].path);
            if (!known) {
                char name[300];
                snprintf(name, sizeof(name), "REGISTRY_%.*s", (int)klen, e);
                warn_unknown(warn, ctx, "environment variable", name);
            }
        }
    }
    return 0;
}

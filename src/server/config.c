/*
 * Configuration loading for `berth serve` (see config.h for the order of
 * precedence). A YAML document is walked with libyaml's document API and each
 * scalar leaf is applied by its dotted key path through one table of known
 * keys, so the file, REGISTRY_* variables and flags share one setter each.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
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
}

void berth_config_dispose(struct berth_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->addr);
    free(cfg->root);
    cfg->addr = cfg->root = NULL;
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
                  { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
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
};

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
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
        if (!strcasecmp(key, known_keys[i].path))
            return known_keys[i].set(cfg, known_keys[i].path, value);
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
            int known = 0;
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

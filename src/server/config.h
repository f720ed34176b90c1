/*
 * The configuration of `berth serve`: defaults, then the YAML file (with
 * distribution's config.yml key names, so an operator's existing file works),
 * then REGISTRY_* environment overrides (distribution's rule: the key path in
 * upper case joined by '_'), then command-line flags. Keys berth does not
 * support are reported through the warn callback, never silently ignored.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../store/maint.h"
#include "policy.h"

/* auth.*: who may log in and what they may do (docs/auth.md). */
struct berth_auth_config {
    char *htpasswd_realm;           /* auth.htpasswd.realm, default "berth" */
    char *htpasswd_path;            /* auth.htpasswd.path; NULL: no htpasswd users */
    char *token_realm;              /* auth.token.realm: URL clients get tokens from */
    char *token_service;            /* auth.token.service, default "berth" when builtin */
    char *token_issuer;             /* auth.token.issuer, default "berth" when builtin */
    char *token_rootcertbundle;     /* auth.token.rootcertbundle (external token server) */
    char *token_jwks;               /* auth.token.jwks (external token server) */
    int token_builtin;              /* auth.token.builtin: berth issues the tokens */
    char *token_signingkey;         /* auth.token.signingkey; NULL: <root>/token-key.pem */
    int64_t token_expiration_ms;    /* auth.token.expiration, default 5m */
    int64_t token_refresh_ms;       /* auth.token.refreshexpiration, default 720h */
    struct berth_policy_group *groups; /* auth.access.groups: {name: [user, ...]} */
    size_t ngroups;
    struct berth_policy_rule *rules;   /* auth.access.rules: [{repository, users, actions}] */
    size_t nrules;
    unsigned throttle_failures;     /* auth.throttle.failures per minute and address, default 5;
                                       0 disables throttling */
    int64_t throttle_lockout_ms;    /* auth.throttle.lockout, default 60s */
};

/* http.tls.*: HTTPS (distribution's keys). */
struct berth_tls_config {
    char *certificate;              /* http.tls.certificate: PEM chain; NULL: plain HTTP */
    char *key;                      /* http.tls.key: PEM private key */
    char **clientcas;               /* http.tls.clientcas: CA files; client certificates */
    size_t nclientcas;              /* are required when non-empty */
    int minimum;                    /* http.tls.minimumtls: 12 (tls1.2, default) or 13 */
};

/* berth.gc.*, berth.retention, berth.immutabletags, berth.quotas (docs/gc.md).
 * The rule strings are owned (malloc'd) by the config. */
struct berth_maint_config {
    int64_t gc_interval_ms;   /* berth.gc.interval, default 24h; 0: no scheduled runs */
    int64_t gc_grace_ms;      /* berth.gc.grace, default 24h */
    int gc_untagged;          /* berth.gc.untagged, default 0 */
    unsigned gc_batch;        /* berth.gc.batch, default 500 */
    struct berth_retention_rule *retention;  /* berth.retention: [{repositories, tags,
                                                protect, keep, olderthan}] */
    size_t nretention;
    struct berth_immutable_rule *immutable;  /* berth.immutabletags: [{repositories, tags}] */
    size_t nimmutable;
    struct berth_quota_rule *quotas;         /* berth.quotas: [{repositories | namespace,
                                                limit}] */
    size_t nquotas;
};

struct berth_config {
    char *addr;                /* http.addr, default "0.0.0.0:5000" */
    char *root;                /* storage.filesystem.rootdirectory, default "./var/berth" */
    int delete_enabled;        /* storage.delete.enabled, default 1 */
    int log_level;             /* log.level (BERTH_LOG_*), default info */
    int access_log;            /* !log.accesslog.disabled, default 1 */
    int purge_enabled;         /* storage.maintenance.uploadpurging.enabled, default 1 */
    int64_t purge_age_ms;      /* .age, default 24h (168h in distribution; we expire sooner) */
    int64_t purge_interval_ms; /* .interval, default 1h */
    int purge_dryrun;          /* .dryrun, default 0 */
    uint64_t manifest_max;     /* berth.manifestmaxbytes, default 4 MiB */
    unsigned threads;          /* berth.threads, default 0 = one per CPU */
    struct berth_auth_config auth;
    struct berth_tls_config tls;
    struct berth_maint_config maint;
};

typedef void (*berth_config_warn_fn)(void *ctx, const char *msg);

void berth_config_init(struct berth_config *cfg);
void berth_config_dispose(struct berth_config *cfg);

/* Apply a YAML document. Unknown keys go to warn (may be NULL); bad values
 * and malformed YAML fail with BERTH_EINVALID and a message naming the key
 * or the line. */
int berth_config_parse(struct berth_config *cfg, const uint8_t *yaml, size_t len,
                       berth_config_warn_fn warn, void *ctx);
int berth_config_load(struct berth_config *cfg, const char *path, berth_config_warn_fn warn,
                      void *ctx);
/* Apply REGISTRY_* variables from `envp` (NULL-terminated "K=V" strings). */
int berth_config_env(struct berth_config *cfg, char *const *envp, berth_config_warn_fn warn,
                     void *ctx);
/* Set one key by its dotted path ("storage.delete.enabled") from a string.
 * A list key (http.tls.clientcas) gets a one-item list; auth.access.groups
 * and auth.access.rules can only be set from the file (BERTH_EINVALID). */
int berth_config_set(struct berth_config *cfg, const char *key, const char *value,
                     berth_config_warn_fn warn, void *ctx);

/* Go-style duration ("24h", "1m30s", "500ms", "2s"; a bare number is
 * seconds) → milliseconds. BERTH_EINVALID when malformed. */
int berth_duration_parse(int64_t *out_ms, const char *s);
/* Size with optional unit (1024, "4MiB", "4MB", "512k") → bytes. */
int berth_size_parse(uint64_t *out, const char *s);

#endif

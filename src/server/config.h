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
/* Set one key by its dotted path ("storage.delete.enabled") from a string. */
int berth_config_set(struct berth_config *cfg, const char *key, const char *value,
                     berth_config_warn_fn warn, void *ctx);

/* Go-style duration ("24h", "1m30s", "500ms", "2s"; a bare number is
 * seconds) → milliseconds. BERTH_EINVALID when malformed. */
int berth_duration_parse(int64_t *out_ms, const char *s);
/* Size with optional unit (1024, "4MiB", "4MB", "512k") → bytes. */
int berth_size_parse(uint64_t *out, const char *s);

#endif

/* Configuration and store opening for gc, du and fsck (storecmd.h). */
#include "storecmd.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

extern char **environ;

static void warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "berth: warning: %s\n", msg);
}

int berth_storecmd_config(struct berth_config *cfg, const char *config, const char *root)
{
    int error;

    berth_config_init(cfg);
    if (config && (error = berth_config_load(cfg, config, warn_cb, NULL)) < 0)
        return error;
    if ((error = berth_config_env(cfg, environ, warn_cb, NULL)) < 0)
        return error;
    if (root &&
        (error = berth_config_set(cfg, "storage.filesystem.rootdirectory", root, warn_cb,
                                  NULL)) < 0)
        return error;
    return 0;
}

int berth_storecmd_open(struct berth_store **out, const char *root)
{
    struct berth_store_config scfg = { 0 };
    char db[4096];
    struct stat sb;

    *out = NULL;
    if ((size_t)snprintf(db, sizeof(db), "%s/berth.db", root) >= sizeof(db) ||
        stat(root, &sb) < 0 || !S_ISDIR(sb.st_mode) || stat(db, &sb) < 0)
        return berth_error_set(BERTH_ENOTFOUND, "no store at '%s' (use --root or --config)",
                               root);
    scfg.root = root;
    return berth_store_open(out, &scfg);
}

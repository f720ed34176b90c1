/*
 * What the commands that work on a store directly (`berth gc`, `du`,
 * `fsck`) share: the configuration read the way `berth serve` reads it (the
 * --config file, REGISTRY_* variables, then --root), and opening a store
 * that must already exist — berth_store_open creates one, which on a
 * mistyped path would only hide the mistake. Warnings go to stderr.
 */
#ifndef BERTH_SERVER_STORECMD_H
#define BERTH_SERVER_STORECMD_H

#include "config.h"
#include "store/store.h"

/* berth_config_init, then file (when `config`), environment, `root` (when
 * set). On failure the error is set and cfg must still be disposed. */
int berth_storecmd_config(struct berth_config *cfg, const char *config, const char *root);
/* Open the store at `root`. BERTH_ENOTFOUND "no store at '<root>' (use
 * --root or --config)" when it holds no berth.db. */
int berth_storecmd_open(struct berth_store **out, const char *root);

#endif

/*
 * Registry credentials shared with docker and podman: Docker's config.json
 * ($DOCKER_CONFIG/config.json, else ~/.docker/config.json: "auths" with
 * base64 "user:password", "credsStore", "credHelpers"), podman's auth.json
 * ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, read
 * only), and Docker credential helpers (`docker-credential-NAME get|store|
 * erase`, JSON on stdin/stdout). Passwords are never logged or printed.
 */
#ifndef BERTH_CREDS_H
#define BERTH_CREDS_H

#include <stddef.h>

struct berth_creds {
    char username[256];
    char password[4096]; /* or an identity token when username is "<token>" */
};

/* Look up credentials for `registry` ("docker.io" also matches Docker's
 * "https://index.docker.io/v1/" key; keys may carry a scheme or a path).
 * Order: credHelpers[registry], credsStore, config.json auths, podman
 * auth.json. BERTH_ENOTFOUND when none (anonymous access then). */
int berth_creds_get(struct berth_creds *out, const char *registry);
/* Save: through the configured helper when there is one, else base64 into
 * config.json (created 0600, written atomically: temp file + rename, other
 * keys preserved). */
int berth_creds_store(const char *registry, const struct berth_creds *c);
/* Remove (logout). BERTH_ENOTFOUND when there was nothing to remove. */
int berth_creds_erase(const char *registry);

/* Path of the config.json in use (for messages). Static buffer. */
const char *berth_creds_config_path(void);

/* Wipe a credentials struct (explicit_bzero). */
void berth_creds_clear(struct berth_creds *c);

#endif

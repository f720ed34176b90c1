/*
 * Repository names and tags (OCI distribution-spec "Pulling manifests"):
 *   name  [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *         at most BERTH_NAME_MAX characters in all (distribution's limit);
 *   tag   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * Hand-written matchers, no regex engine: these run on every request.
 */
#ifndef BERTH_NAME_H
#define BERTH_NAME_H

#include <stddef.h>

#define BERTH_NAME_MAX 255
#define BERTH_TAG_MAX 128

/* 0, or BERTH_EINVALID with BERTH_OCI_NAME_INVALID and a message saying why. */
int berth_name_check(const char *name, size_t len);
/* 0, or BERTH_EINVALID with BERTH_OCI_TAG_INVALID. */
int berth_tag_check(const char *tag, size_t len);

#endif

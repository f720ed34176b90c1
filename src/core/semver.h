/*
 * Version tags: `[v]MAJOR.MINOR.PATCH[-prerelease][+build]` (semver.org 2.0.0
 * precedence rules) and the founding note's rule that publishing 2.1.3 also
 * moves 2.1, 2 and latest — each only if no higher version already holds it.
 * Pure logic.
 */
#ifndef BERTH_SEMVER_H
#define BERTH_SEMVER_H

#include <stddef.h>

struct berth_semver {
    unsigned long major, minor, patch;
    int has_minor, has_patch; /* "2" and "2.1" parse too (as alias tags) */
    char prerelease[129];     /* "" when none */
    int v_prefix;             /* written with a leading 'v' */
};

/* 0, or BERTH_EINVALID when `tag` is not a version. */
int berth_semver_parse(struct berth_semver *out, const char *tag);
/* semver precedence: <0, 0, >0. Missing minor/patch count as 0. Build
 * metadata is ignored; a prerelease sorts before its release. */
int berth_semver_cmp(const struct berth_semver *a, const struct berth_semver *b);

/* The alias tags a full release version moves: for "2.1.3" → "2.1", "2",
 * "latest" (with the same 'v' prefix style: "v2.1.3" → "v2.1", "v2").
 * A prerelease moves nothing. `existing` is the list of tags already in the
 * repository: an alias is left out when a higher full release among them
 * already belongs to it (pushing 2.0.9 after 2.1.0 moves 2.0 but not 2 or
 * latest). Writes up to 3 tags into out (each up to 129 bytes), returns the
 * count, or BERTH_EINVALID when `version` is not a full MAJOR.MINOR.PATCH. */
int berth_semver_aliases(char out[3][129], const char *version, const char *const *existing,
                         size_t nexisting);

#endif

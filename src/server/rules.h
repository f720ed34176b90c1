/*
 * The push-time policies of the configuration (docs/policies.md):
 * immutable tags (`berth.immutabletags`) and storage quotas
 * (`berth.quotas`). Pure matching plus the checks the HTTP handlers make;
 * every refusal is BERTH_EDENIED with BERTH_OCI_DENIED (403) and a message
 * naming the rule. Retention is applied by the collector (maint.h).
 */
#ifndef BERTH_RULES_H
#define BERTH_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct berth_store;

/* The first immutable rule covering `tag` of `repo` (repositories: glob of
 * policy.h, NULL = "**"; tags: fnmatch glob), its index in *index; NULL
 * when none. m may be NULL. */
const struct berth_immutable_rule *berth_rules_immutable(const struct berth_maint_config *m,
                                                         const char *repo, const char *tag,
                                                         size_t *index);
/* 1 when some immutable rule's repository pattern matches `repo` (pushes
 * to other repositories skip the tag guard entirely). */
int berth_rules_repo_has_immutable(const struct berth_maint_config *m, const char *repo);
/* 0, or BERTH_EDENIED (DENIED) when `tag` of `repo` is immutable:
 * `tag "v1.2.3" of team/app is immutable (berth.immutabletags[0]: tags "v*.*.*")`. */
int berth_rules_check_immutable(const struct berth_maint_config *m, const char *repo,
                                const char *tag);
/* berth_store_set_tag_guard's guard (ctx: the struct berth_maint_config):
 * berth_rules_check_immutable, so no tag delete, manifest delete by digest
 * or repository delete removes an immutable tag. */
int berth_rules_tag_removal_guard(void *ctx, const char *repo, const char *tag);
/* berth_manifest_put's tag_guard (store.h) with ctx = the maint config:
 * refuses moving an immutable tag. */
int berth_rules_tag_guard(void *ctx, const char *repo, const char *tag, const char *old_digest);

/* 1 when a quota rule applies to `repo` (a repositories glob matching it,
 * or a namespace that is its first path component). */
int berth_rules_repo_has_quota(const struct berth_maint_config *m, const char *repo);
/* For each quota rule applying to `repo`: its scope ("team-a/app" for a
 * repositories rule, "team-a/" for a namespace) into scope (size
 * BERTH_NAME_MAX + 2) and its index. Returns the number of rules found
 * after `start` (call with start = the last index + 1), 0 when no more. */
int berth_rules_quota_next(const struct berth_maint_config *m, const char *repo, size_t start,
                           size_t *index, char *scope, size_t scope_size);

/* 0 when storing `adding` more bytes in `repo` keeps every applying quota;
 * BERTH_EDENIED (DENIED) otherwise: `quota exceeded for team-a/ (namespace
 * quota 10.0 MiB): 9.5 MiB used, this upload adds 1.0 MiB` (`what` is
 * "upload", "mount", "manifest"). With blob `d` (may be NULL), a scope
 * that already links it is not charged again (usage is deduplicated).
 * Other errors from the store. */
int berth_rules_check_quota(const struct berth_maint_config *m, struct berth_store *st,
                            const char *repo, uint64_t adding, const char *what,
                            const struct berth_digest *d);

/* "512 B", "1.5 KiB", "10.0 MiB", "2.3 GiB", "1.0 TiB" into buf. */
const char *berth_human_size(char *buf, size_t size, uint64_t bytes);

#endif

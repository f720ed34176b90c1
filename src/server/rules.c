/*
 * Immutable tags and quotas (rules.h). Rules are few (tens), so matching is
 * a linear scan over the configuration; a repository no rule covers pays
 * one glob match per rule and nothing else (no usage query, no tag lookup).
 */
#include "rules.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "policy.h"
#include "store/maint.h"

static const char *imm_repos(const struct berth_immutable_rule *r)
{
    return r->repositories ? r->repositories : "**";
}

const struct berth_immutable_rule *berth_rules_immutable(const struct berth_maint_config *m,
                                                         const char *repo, const char *tag,
                                                         size_t *index)
{
    for (size_t i = 0; m && i < m->nimmutable; i++) {
        const struct berth_immutable_rule *r = &m->immutable[i];

        if (r->tags && berth_glob_match(imm_repos(r), repo) && fnmatch(r->tags, tag, 0) == 0) {
            if (index)
                *index = i;
            return r;
        }
    }
    return NULL;
}

int berth_rules_repo_has_immutable(const struct berth_maint_config *m, const char *repo)
{
    for (size_t i = 0; m && i < m->nimmutable; i++)
        if (m->immutable[i].tags && berth_glob_match(imm_repos(&m->immutable[i]), repo))
            return 1;
    return 0;
}

int berth_rules_check_immutable(const struct berth_maint_config *m, const char *repo,
                                const char *tag)
{
    const struct berth_immutable_rule *r;
    size_t i = 0;

    if ((r = berth_rules_immutable(m, repo, tag, &i)) == NULL)
        return 0;
    if (r->repositories && strcmp(r->repositories, "**") != 0)
        return berth_error_set_oci(BERTH_EDENIED, BERTH_OCI_DENIED,
                                   "tag \"%s\" of %s is immutable (berth.immutabletags[%zu]: "
                                   "repositories \"%s\", tags \"%s\")", tag, repo, i,
                                   r->repositories, r->tags);
    return berth_error_set_oci(BERTH_EDENIED, BERTH_OCI_DENIED,
                               "tag \"%s\" of %s is immutable (berth.immutabletags[%zu]: tags "
                               "\"%s\")", tag, repo, i, r->tags);
}

int berth_rules_tag_removal_guard(void *ctx, const char *repo, const char *tag)
{
    return berth_rules_check_immutable(ctx, repo, tag);
}

int berth_rules_tag_guard(void *ctx, const char *repo, const char *tag, const char *old_digest)
{
    (void)old_digest;
    return berth_rules_check_immutable(ctx, repo, tag);
}

/* ---- quotas ---- */

/* 1 when quota rule r applies to repo; its scope into buf. */
static int quota_applies(const struct berth_quota_rule *r, const char *repo, char *scope,
                         size_t size)
{
    size_t nl;

    if (r->repositories) {
        if (!berth_glob_match(r->repositories, repo))
            return 0;
        snprintf(scope, size, "%s", repo);
        return 1;
    }
    if (!r->namespace)
        return 0;
    nl = strlen(r->namespace);
    if (strncmp(repo, r->namespace, nl) != 0 || repo[nl] != '/')
        return 0;
    snprintf(scope, size, "%s/", r->namespace);
    return 1;
}

int berth_rules_quota_next(const struct berth_maint_config *m, const char *repo, size_t start,
                           size_t *index, char *scope, size_t scope_size)
{
    for (size_t i = start; m && i < m->nquotas; i++) {
        if (quota_applies(&m->quotas[i], repo, scope, scope_size)) {
            *index = i;
            return 1;
        }
    }
    return 0;
}

int berth_rules_repo_has_quota(const struct berth_maint_config *m, const char *repo)
{
    char scope[BERTH_NAME_MAX + 2];
    size_t i;

    return berth_rules_quota_next(m, repo, 0, &i, scope, sizeof(scope));
}

int berth_rules_check_quota(const struct berth_maint_config *m, struct berth_store *st,
                            const char *repo, uint64_t adding, const char *what,
                            const struct berth_digest *d)
{
    char scope[BERTH_NAME_MAX + 2], lim[32], used[32], add[32];
    struct berth_usage u;
    size_t i, start = 0;
    int error;

    while (berth_rules_quota_next(m, repo, start, &i, scope, sizeof(scope))) {
        const struct berth_quota_rule *r = &m->quotas[i];

        start = i + 1;
        if (d && (error = berth_store_blob_in_scope(st, scope, d)) != 0) {
            if (error < 0)
                return error;
            continue;
        }
        if ((error = berth_store_usage(st, scope, &u)) < 0)
            return error;
        if (u.dedup <= r->limit && adding <= r->limit - u.dedup)
            continue;
        return berth_error_set_oci(BERTH_EDENIED, BERTH_OCI_DENIED,
                                   "quota exceeded for %s (%s quota %s): %s used, this %s "
                                   "adds %s", scope, r->namespace ? "namespace" : "repository",
                                   berth_human_size(lim, sizeof(lim), r->limit),
                                   berth_human_size(used, sizeof(used), u.dedup), what,
                                   berth_human_size(add, sizeof(add), adding));
    }
    return 0;
}

const char *berth_human_size(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)bytes;
    size_t u = 0;

    if (bytes < 1024) {
        snprintf(buf, size, "%" PRIu64 " B", bytes);
        return buf;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

/*
 * Access control: the actions of the registry (pull, push, delete, catalog),
 * the scope strings of Docker's token specification ("repository:team-a/app:
 * pull,push", "registry:catalog:*"), repository glob patterns and the policy
 * of the `auth.access` configuration (groups and additive rules). Pure
 * functions over immutable data: safe to share between threads once built.
 */
#ifndef BERTH_POLICY_H
#define BERTH_POLICY_H

#include <stddef.h>

/* Actions are bits, so a grant is a set. BERTH_ACT_ADMIN (garbage
 * collection endpoints, docs/gc.md) is registry-wide like the catalog and is
 * never part of "*": a rule grants it only by naming it. */
enum {
    BERTH_ACT_PULL = 1,
    BERTH_ACT_PUSH = 2,
    BERTH_ACT_DELETE = 4,
    BERTH_ACT_CATALOG = 8,
    BERTH_ACT_ALL = 15,
    BERTH_ACT_ADMIN = 16
};

/* The actions that ignore a rule's repositories. */
#define BERTH_ACT_REGISTRY (BERTH_ACT_CATALOG | BERTH_ACT_ADMIN)

/* Limits on what a request or a token can make us hold. */
#define BERTH_SCOPE_MAX 1024       /* bytes in one scope string */
#define BERTH_SCOPE_NAME_MAX 512   /* bytes in its resource name */
#define BERTH_PATTERN_MAX 255      /* bytes in a repository pattern */

/* "pull" → BERTH_ACT_PULL ..., "admin" → BERTH_ACT_ADMIN; "*" →
 * BERTH_ACT_ALL (without admin); 0 when unknown. `len` bytes, not
 * NUL-terminated. */
unsigned berth_action_parse(const char *s, size_t len);
/* "pull,push" style list of the bits in `actions` (catalog alone gives "*",
 * the token spec's catalog action). Returns the snprintf length. */
size_t berth_actions_format(char *buf, size_t size, unsigned actions);

/*
 * One scope of the token spec ("Requesting a Token"):
 *   resourcetype[(class)]:resourcename:action[,action...]
 * The name may itself hold ':' (a "host:5000/x" name), so the type ends at
 * the first ':' and the actions start after the last one. Unknown action
 * words are dropped (they can never be granted); `actions` may end up 0.
 * A "registry" scope has one action, "*", recorded as BERTH_ACT_CATALOG
 * whatever its name: "registry:catalog:*" and "registry:admin:*" (the token
 * form of BERTH_ACT_ADMIN) both parse to BERTH_ACT_CATALOG, so tokens carry
 * them as the token spec writes them.
 */
struct berth_scope {
    char type[32];                      /* "repository", "registry", ... */
    char rclass[32];                    /* "plugin" in "repository(plugin)", or "" */
    char name[BERTH_SCOPE_NAME_MAX + 1];
    unsigned actions;                   /* BERTH_ACT_* bits */
};

/* Parse `len` bytes. BERTH_EINVALID (message quoting the scope) when the
 * structure is wrong: fewer than two ':', empty type/name/actions, bad class,
 * control characters or over the limits above. */
int berth_scope_parse(struct berth_scope *out, const char *s, size_t len);
/* "type[(class)]:name:actions" with berth_actions_format. Returns the
 * snprintf length. */
size_t berth_scope_format(char *buf, size_t size, const struct berth_scope *s);

/*
 * Repository glob: `*` matches any run of characters except '/', `**` any
 * run including '/', `?` one character except '/'; everything else matches
 * itself. So "team-a/" followed by `*` matches "team-a/app" but not
 * "team-a/x/y", followed by `**` both; `*` followed by "/public" matches
 * "x/public" only (docs/auth.md has the table). The whole name must match.
 * Linear-space dynamic programming: no pathological inputs.
 * Returns 1 or 0 (0 also for a pattern over BERTH_PATTERN_MAX or a name over
 * 1024 bytes).
 */
int berth_glob_match(const char *pattern, const char *name);

/* The configuration form of the policy (owned by struct berth_config). */
struct berth_policy_group {
    char *name;
    char **members;
    size_t nmembers;
};

struct berth_policy_rule {
    char **repositories; /* glob patterns; ignored for the catalog action */
    size_t nrepositories;
    char **users;        /* "alice", "group:team-a", "*" (any authenticated user),
                            "anonymous" (everyone, logged in or not) */
    size_t nusers;
    unsigned actions;    /* BERTH_ACT_* bits */
};

struct berth_policy;

/* Build a policy (copies everything). Rules are additive: a user may do the
 * union of the actions of every rule that names them and matches the
 * repository; there are no deny rules, so order does not matter. With no
 * rules at all, every authenticated user may do everything and anonymous
 * users nothing. BERTH_EINVALID for a rule naming an undefined group or an
 * invalid pattern. */
int berth_policy_new(struct berth_policy **out, const struct berth_policy_group *groups,
                     size_t ngroups, const struct berth_policy_rule *rules, size_t nrules);
void berth_policy_free(struct berth_policy *p);

/* The actions `user` (NULL: anonymous) may take on `repo`; BERTH_ACT_CATALOG
 * and BERTH_ACT_ADMIN are included when any of the user's rules grants them,
 * whatever `repo` is (`repo` may be NULL to ask about those alone). Without
 * rules an authenticated user gets BERTH_ACT_ALL: never admin. */
unsigned berth_policy_actions(const struct berth_policy *p, const char *user, const char *repo);
/* 1 when every bit of `actions` is allowed, else 0. */
int berth_policy_allowed(const struct berth_policy *p, const char *user, const char *repo,
                         unsigned actions);
/* The subset of a requested scope the policy grants: repository scopes with
 * a class-less, valid repository name get the allowed part of their actions;
 * "registry:catalog" gets BERTH_ACT_CATALOG when the catalog is allowed,
 * "registry:admin" gets BERTH_ACT_CATALOG (its "*") when admin is allowed;
 * anything else gets 0. */
unsigned berth_policy_grant(const struct berth_policy *p, const char *user,
                            const struct berth_scope *s);

/* 1 when `addr` (text form, as the HTTP layer logs it) is a loopback
 * address: 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. Without any auth
 * configured the admin endpoints answer only to these (docs/gc.md). */
int berth_addr_is_loopback(const char *addr);

#endif

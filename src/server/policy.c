/*
 * Access control (see policy.h): action words, scope strings of Docker's
 * token specification, repository globs and the rule table of `auth.access`.
 * A built policy is immutable, so lookups take no lock. Rules only ever add
 * actions; the decision for (user, repository) is the union of the matching
 * rules, computed by a linear scan (a policy has tens of rules, not
 * thousands).
 */
#include "policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"

#define GLOB_NAME_MAX 1024

static const struct {
    const char *word;
    unsigned bit;
} action_words[] = {
    { "pull", BERTH_ACT_PULL },
    { "push", BERTH_ACT_PUSH },
    { "delete", BERTH_ACT_DELETE },
    { "catalog", BERTH_ACT_CATALOG },
    { "admin", BERTH_ACT_ADMIN },
    { "*", BERTH_ACT_ALL },
};

unsigned berth_action_parse(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(action_words) / sizeof(action_words[0]); i++)
        if (strlen(action_words[i].word) == len && !memcmp(s, action_words[i].word, len))
            return action_words[i].bit;
    return 0;
}

size_t berth_actions_format(char *buf, size_t size, unsigned actions)
{
    size_t n = 0;
    int r;

    if (size)
        buf[0] = '\0';
    if (actions == BERTH_ACT_CATALOG)
        return (size_t)snprintf(buf, size, "*");
    for (size_t i = 0; i < 3; i++) {
        if (!(actions & action_words[i].bit))
            continue;
        r = snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "%s%s",
                     n ? "," : "", action_words[i].word);
        n += (size_t)r;
    }
    return n;
}

static int valid_scope_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

int berth_scope_parse(struct berth_scope *out, const char *s, size_t len)
{
    const char *first, *last, *paren, *p, *end = s + len;
    size_t tlen, nlen;

    memset(out, 0, sizeof(*out));
    if (len == 0 || len > BERTH_SCOPE_MAX)
        goto bad;
    for (size_t i = 0; i < len; i++)
        if (!valid_scope_char((unsigned char)s[i]))
            goto bad;
    first = memchr(s, ':', len);
    last = first;
    for (p = first; p && p < end; p = memchr(p + 1, ':', (size_t)(end - p - 1)))
        last = p;
    if (!first || last == first)
        goto bad;
    /* type, with an optional "(class)" */
    tlen = (size_t)(first - s);
    paren = memchr(s, '(', tlen);
    if (paren) {
        size_t clen = (size_t)(first - paren) - 2;
        if (first[-1] != ')' || clen == 0 || clen >= sizeof(out->rclass) ||
            memchr(paren + 1, '(', clen) || memchr(paren + 1, ')', clen))
            goto bad;
        memcpy(out->rclass, paren + 1, clen);
        tlen = (size_t)(paren - s);
    }
    if (tlen == 0 || tlen >= sizeof(out->type) || memchr(s, ')', tlen))
        goto bad;
    memcpy(out->type, s, tlen);
    nlen = (size_t)(last - first) - 1;
    if (nlen == 0 || nlen > BERTH_SCOPE_NAME_MAX)
        goto bad;
    memcpy(out->name, first + 1, nlen);
    if (last + 1 == end)
        goto bad;
    /* actions: comma-separated words, unknown ones dropped */
    for (p = last + 1; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *wend = comma ? comma : end;
        out->actions |= berth_action_parse(p, (size_t)(wend - p));
        p = comma ? comma + 1 : end;
    }
    /* "*" on a repository means its three actions, catalog and admin are
     * not among them */
    if (strcmp(out->type, "registry") != 0)
        out->actions &= ~(unsigned)BERTH_ACT_REGISTRY;
    else
        out->actions &= BERTH_ACT_CATALOG;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return berth_error_set(BERTH_EINVALID, "invalid scope '%.*s'", len > 200 ? 200 : (int)len,
                           s);
}

size_t berth_scope_format(char *buf, size_t size, const struct berth_scope *s)
{
    char acts[64];

    berth_actions_format(acts, sizeof(acts), s->actions);
    if (s->rclass[0])
        return (size_t)snprintf(buf, size, "%s(%s):%s:%s", s->type, s->rclass, s->name, acts);
    return (size_t)snprintf(buf, size, "%s:%s:%s", s->type, s->name, acts);
}

/* ---- globs ---- */

enum { G_LIT, G_STAR, G_DSTAR, G_QMARK };

int berth_glob_match(const char *pattern, const char *name)
{
    /* row[j]: pattern tokens from the current one on match name[j..] */
    unsigned char next[GLOB_NAME_MAX + 2], cur[GLOB_NAME_MAX + 2];
    unsigned char kind[BERTH_PATTERN_MAX];
    char lit[BERTH_PATTERN_MAX];
    size_t nt = 0, ns = strlen(name), plen = strlen(pattern);

    if (plen > BERTH_PATTERN_MAX || ns > GLOB_NAME_MAX)
        return 0;
    for (size_t i = 0; i < plen; i++) {
        if (pattern[i] == '*' && pattern[i + 1] == '*') {
            while (pattern[i + 1] == '*')
                i++;
            kind[nt++] = G_DSTAR;
        } else if (pattern[i] == '*') {
            kind[nt++] = G_STAR;
        } else if (pattern[i] == '?') {
            kind[nt++] = G_QMARK;
        } else {
            lit[nt] = pattern[i];
            kind[nt++] = G_LIT;
        }
    }
    memset(next, 0, ns + 1);
    next[ns] = 1; /* the empty pattern matches the empty rest */
    for (size_t t = nt; t-- > 0;) {
        for (size_t j = ns + 1; j-- > 0;) {
            unsigned char m = 0;
            int more = j < ns;
            switch (kind[t]) {
            case G_LIT:
                m = more && name[j] == lit[t] && next[j + 1];
                break;
            case G_QMARK:
                m = more && name[j] != '/' && next[j + 1];
                break;
            case G_STAR:
                m = next[j] || (more && name[j] != '/' && cur[j + 1]);
                break;
            case G_DSTAR:
                m = next[j] || (more && cur[j + 1]);
                break;
            }
            cur[j] = m;
        }
        memcpy(next, cur, ns + 1);
    }
    return next[0];
}

/* ---- the policy ---- */

struct berth_policy {
    struct berth_policy_group *groups;
    size_t ngroups;
    struct berth_policy_rule *rules;
    size_t nrules;
};

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int dup_strv(char ***out, char *const *v, size_t n)
{
    char **c = calloc(n ? n : 1, sizeof(*c));
    if (!c)
        return berth_error_set(BERTH_ERROR, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((c[i] = strdup(v[i])) == NULL) {
            free_strv(c, i);
            return berth_error_set(BERTH_ERROR, "out of memory");
        }
    }
    *out = c;
    return 0;
}

void berth_policy_free(struct berth_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ngroups; i++) {
        free(p->groups[i].name);
        free_strv(p->groups[i].members, p->groups[i].nmembers);
    }
    for (size_t i = 0; i < p->nrules; i++) {
        free_strv(p->rules[i].repositories, p->rules[i].nrepositories);
        free_strv(p->rules[i].users, p->rules[i].nusers);
    }
    free(p->groups);
    free(p->rules);
    free(p);
}

static const struct berth_policy_group *find_group(const struct berth_policy *p,
                                                   const char *name)
{
    for (size_t i = 0; i < p->ngroups; i++)
        if (!strcmp(p->groups[i].name, name))
            return &p->groups[i];
    return NULL;
}

int berth_policy_new(struct berth_policy **out, const struct berth_policy_group *groups,
                     size_t ngroups, const struct berth_policy_rule *rules, size_t nrules)
{
    struct berth_policy *p = calloc(1, sizeof(*p));
    int error = 0;

    *out = NULL;
    if (!p || !(p->groups = calloc(ngroups ? ngroups : 1, sizeof(*p->groups))) ||
        !(p->rules = calloc(nrules ? nrules : 1, sizeof(*p->rules)))) {
        error = berth_error_set(BERTH_ERROR, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ngroups; i++, p->ngroups++) {
        if (!(p->groups[i].name = strdup(groups[i].name)) ||
            (error = dup_strv(&p->groups[i].members, groups[i].members, groups[i].nmembers)) <
                0) {
            free(p->groups[i].name);
            error = error ? error : berth_error_set(BERTH_ERROR, "out of memory");
            goto done;
        }
        p->groups[i].nmembers = groups[i].nmembers;
    }
    for (size_t i = 0; i < nrules; i++) {
        struct berth_policy_rule *r = &p->rules[i];
        if ((error = dup_strv(&r->repositories, rules[i].repositories,
                              rules[i].nrepositories)) < 0)
            goto done;
        if ((error = dup_strv(&r->users, rules[i].users, rules[i].nusers)) < 0) {
            free_strv(r->repositories, rules[i].nrepositories);
            goto done;
        }
        r->nrepositories = rules[i].nrepositories;
        r->nusers = rules[i].nusers;
        r->actions = rules[i].actions;
        p->nrules = i + 1; /* owned by p from here on, freed with it on failure */
        for (size_t j = 0; j < r->nrepositories; j++)
            if (!r->repositories[j][0] || strlen(r->repositories[j]) > BERTH_PATTERN_MAX) {
                error = berth_error_set(BERTH_EINVALID, "auth.access rule %zu: invalid "
                                        "repository pattern '%.64s'", i + 1, r->repositories[j]);
                goto done;
            }
        for (size_t j = 0; j < r->nusers; j++)
            if (!strncmp(r->users[j], "group:", 6) && !find_group(p, r->users[j] + 6)) {
                error = berth_error_set(BERTH_EINVALID, "auth.access rule %zu: unknown group "
                                        "'%.64s'", i + 1, r->users[j] + 6);
                goto done;
            }
        if ((r->actions & ~(unsigned)BERTH_ACT_REGISTRY) && !r->nrepositories) {
            error = berth_error_set(BERTH_EINVALID, "auth.access rule %zu: no repository", i + 1);
            goto done;
        }
    }
    *out = p;
    p = NULL;
done:
    berth_policy_free(p);
    return error;
}

static int in_group(const struct berth_policy_group *g, const char *user)
{
    for (size_t i = 0; i < g->nmembers; i++)
        if (!strcmp(g->members[i], user))
            return 1;
    return 0;
}

static int names_user(const struct berth_policy *p, const struct berth_policy_rule *r,
                      const char *user)
{
    for (size_t i = 0; i < r->nusers; i++) {
        const char *u = r->users[i];
        if (!strcmp(u, "anonymous"))
            return 1;
        if (!user)
            continue;
        if (!strcmp(u, "*") || !strcmp(u, user))
            return 1;
        if (!strncmp(u, "group:", 6)) {
            const struct berth_policy_group *g = find_group(p, u + 6);
            if (g && in_group(g, user))
                return 1;
        }
    }
    return 0;
}

unsigned berth_policy_actions(const struct berth_policy *p, const char *user, const char *repo)
{
    unsigned acts = 0;

    if (!p->nrules)
        return user ? BERTH_ACT_ALL : 0;
    for (size_t i = 0; i < p->nrules; i++) {
        const struct berth_policy_rule *r = &p->rules[i];
        if (!names_user(p, r, user))
            continue;
        acts |= r->actions & BERTH_ACT_REGISTRY;
        if (!repo)
            continue;
        for (size_t j = 0; j < r->nrepositories; j++)
            if (berth_glob_match(r->repositories[j], repo)) {
                acts |= r->actions;
                break;
            }
    }
    if (!repo)
        acts &= BERTH_ACT_REGISTRY;
    return acts;
}

int berth_policy_allowed(const struct berth_policy *p, const char *user, const char *repo,
                         unsigned actions)
{
    return (berth_policy_actions(p, user, repo) & actions) == actions;
}

unsigned berth_policy_grant(const struct berth_policy *p, const char *user,
                            const struct berth_scope *s)
{
    if (s->rclass[0])
        return 0;
    if (!strcmp(s->type, "registry") && !strcmp(s->name, "catalog"))
        return berth_policy_actions(p, user, NULL) & s->actions & BERTH_ACT_CATALOG;
    /* registry:admin:* — the "*" of a registry scope is the catalog bit */
    if (!strcmp(s->type, "registry") && !strcmp(s->name, "admin")) {
        if (!(berth_policy_actions(p, user, NULL) & BERTH_ACT_ADMIN))
            return 0;
        return s->actions & BERTH_ACT_CATALOG;
    }
    if (strcmp(s->type, "repository") != 0 || berth_name_check(s->name, strlen(s->name)) < 0)
        return 0;
    return berth_policy_actions(p, user, s->name) & s->actions &
           (unsigned)(BERTH_ACT_PULL | BERTH_ACT_PUSH | BERTH_ACT_DELETE);
}

int berth_addr_is_loopback(const char *addr)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (!addr)
        return 0;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return 0;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

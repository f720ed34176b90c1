/*
 * Retention (`berth.retention`, maint.h, docs/policies.md): per
 * repository, the first rule whose `repositories` glob matches decides
 * which tags go; a manifest left with no tag and no index of the repository
 * pointing at it goes with its last tag, so the next sweep frees its blobs.
 * Each repository is changed inside one write transaction that decides
 * again under the lock: a tag pushed meanwhile is either seen (and ranked)
 * or pushed after the decision.
 */
#include <fnmatch.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/error.h"
#include "../server/policy.h"
#include "maint.h"
#include "store_int.h"

struct tag_row {
    char *name;
    char *digest;
    int64_t updated;
    int remove;
    int drop; /* its manifest goes too (set on the first removed row of a digest) */
};

struct tag_list {
    struct tag_row *v;
    size_t n, cap;
};

/* A rule's regexes, compiled once per run. */
struct compiled {
    regex_t tags, protect;
    int has_tags, has_protect, ready;
};

struct run {
    struct berth_store *st;
    const struct berth_gc_opts *o;
    struct berth_gc_stats *out;
    struct compiled *re; /* one per rule */
    int64_t now;
};

static void tag_list_dispose(struct tag_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].digest);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int tag_list_add(struct tag_list *l, const char *name, const char *digest,
                        int64_t updated)
{
    struct tag_row *r;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;

        if ((r = realloc(l->v, cap * sizeof(*r))) == NULL)
            return berth_error_set(BERTH_ERROR, "out of memory");
        l->v = r;
        l->cap = cap;
    }
    r = &l->v[l->n];
    r->name = strdup(name ? name : "");
    r->digest = strdup(digest ? digest : "");
    r->updated = updated;
    r->remove = 0;
    r->drop = 0;
    if (!r->name || !r->digest) {
        free(r->name);
        free(r->digest);
        return berth_error_set(BERTH_ERROR, "out of memory");
    }
    l->n++;
    return 0;
}

/* 1 when an immutable rule covers `tag` of `repo`: retention never removes it. */
static int is_immutable(const struct berth_gc_opts *o, const char *repo, const char *tag)
{
    for (size_t i = 0; i < o->nimmutable; i++) {
        const struct berth_immutable_rule *r = &o->immutable[i];

        if (r->tags && berth_glob_match(r->repositories ? r->repositories : "**", repo) &&
            fnmatch(r->tags, tag, 0) == 0)
            return 1;
    }
    return 0;
}

static int compile_rule(struct compiled *c, const struct berth_retention_rule *r, size_t i)
{
    if (c->ready)
        return 0;
    if (r->tags) {
        if (regcomp(&c->tags, r->tags, REG_EXTENDED | REG_NOSUB) != 0)
            return berth_error_set(BERTH_EINVALID, "berth.retention[%zu]: invalid tags regex "
                                   "'%s'", i, r->tags);
        c->has_tags = 1;
    }
    if (r->protect) {
        if (regcomp(&c->protect, r->protect, REG_EXTENDED | REG_NOSUB) != 0)
            return berth_error_set(BERTH_EINVALID, "berth.retention[%zu]: invalid protect "
                                   "regex '%s'", i, r->protect);
        c->has_protect = 1;
    }
    c->ready = 1;
    return 0;
}

static void compiled_dispose(struct compiled *c)
{
    if (c->has_tags)
        regfree(&c->tags);
    if (c->has_protect)
        regfree(&c->protect);
}

/* Index of the first rule matching `repo`, or -1. */
static long rule_for(const struct berth_gc_opts *o, const char *repo)
{
    for (size_t i = 0; i < o->nretention; i++)
        if (o->retention[i].repositories && berth_glob_match(o->retention[i].repositories, repo))
            return (long)i;
    return -1;
}

/* Every tag of the repository, most recently updated first (ties: by name,
 * so the order, and thus the decision, is stable). */
static int load_tags(struct run *run, int64_t repo_id, struct tag_list *out)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, run->st->db,
                           "SELECT name, digest, updated FROM tags WHERE repo_id = ?1"
                           " ORDER BY updated DESC, name DESC");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0) {
        while ((error = berth_db_step(s)) == 1) {
            error = tag_list_add(out, (const char *)sqlite3_column_text(s, 0),
                                 (const char *)sqlite3_column_text(s, 1),
                                 sqlite3_column_int64(s, 2));
            if (error < 0)
                break;
        }
    }
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

/* Mark the tags rule `ri` removes (maint.h: outside the `keep` newest
 * managed tags AND older than `older_than_sec`). */
static void decide(struct run *run, long ri, const char *repo, struct tag_list *tags)
{
    const struct berth_retention_rule *r = &run->o->retention[ri];
    const struct compiled *c = &run->re[ri];
    long rank = 0;

    if (r->keep < 0 && r->older_than_sec <= 0)
        return;
    for (size_t i = 0; i < tags->n; i++) {
        struct tag_row *t = &tags->v[i];
        int old_enough, outside;

        if (c->has_tags && regexec(&c->tags, t->name, 0, NULL, 0) != 0)
            continue;
        if (c->has_protect && regexec(&c->protect, t->name, 0, NULL, 0) == 0)
            continue;
        if (is_immutable(run->o, repo, t->name))
            continue;
        outside = r->keep < 0 || rank >= r->keep;
        old_enough = r->older_than_sec <= 0 || run->now - t->updated > r->older_than_sec;
        rank++;
        t->remove = outside && old_enough;
    }
}

static int exec_repo_text(struct run *run, const char *sql, int64_t repo_id, const char *v)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, run->st->db, sql)) < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, v)) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

/* 1 when manifest `digest` is already marked to go. */
static int dropped(const struct tag_list *tags, const char *digest)
{
    for (size_t i = 0; i < tags->n; i++)
        if (tags->v[i].drop && !strcmp(tags->v[i].digest, digest))
            return 1;
    return 0;
}

/* 1 when an index of the repository that stays lists manifest `digest`
 * (an index this same pass drops holds nothing). */
static int held_by_index(struct run *run, int64_t repo_id, const char *digest,
                         const struct tag_list *tags)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, run->st->db,
                           "SELECT parent FROM manifest_refs WHERE repo_id = ?1 AND child = ?2"
                           " AND kind = 'manifest'");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, digest)) == 0) {
        while ((error = berth_db_step(s)) == 1)
            if (!dropped(tags, (const char *)sqlite3_column_text(s, 0)))
                break;
    }
    sqlite3_finalize(s);
    return error;
}

/* Size of manifest `digest` of the repository: 1 found, 0 absent. */
static int manifest_size(struct run *run, int64_t repo_id, const char *digest, uint64_t *size)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, run->st->db,
                           "SELECT size FROM manifests WHERE repo_id = ?1 AND digest = ?2");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, digest)) == 0 && (error = berth_db_step(s)) == 1)
        *size = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return error;
}

/* 1 when `digest` keeps a tag that is not removed (tags holds them all). */
static int still_tagged(const struct tag_list *tags, const char *digest)
{
    for (size_t i = 0; i < tags->n; i++)
        if (!tags->v[i].remove && !strcmp(tags->v[i].digest, digest))
            return 1;
    return 0;
}

/* 1 when an earlier removed tag already handled `digest`'s manifest. */
static int seen_before(const struct tag_list *tags, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (tags->v[j].remove && !strcmp(tags->v[j].digest, tags->v[i].digest))
            return 1;
    return 0;
}

static int create_dry_table(struct run *run)
{
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, run->st->db, BERTH_GC_DRY_GONE_TABLE)) < 0)
        return error;
    error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

/* Dry run: note a tag (name) or manifest (digest) as gone for the dry
 * queries of gc.c, which read the store as if they were (gc.c: DRY_GONE). */
static int dry_note(struct run *run, int64_t repo_id, const char *name, const char *digest)
{
    sqlite3_stmt *s;
    int error;

    error = berth_db_query(&s, run->st->db, "INSERT INTO temp.gc_dry_gone (repo_id, name, digest)"
                                            " VALUES (?1, ?2, ?3)");
    if (error < 0)
        return error;
    if ((error = berth_db_bind_int(s, 1, repo_id)) == 0 &&
        (error = berth_db_bind_text(s, 2, name)) == 0 &&
        (error = berth_db_bind_text(s, 3, digest)) == 0)
        error = berth_db_step(s);
    sqlite3_finalize(s);
    return error < 0 ? error : 0;
}

static void report(struct run *run, const char *kind, const char *repo, const char *what,
                   uint64_t bytes)
{
    if (run->o->report)
        run->o->report(run->o->ctx, kind, repo, what, bytes);
}

/* Remove the marked tags, then the manifests they leave untagged. */
static int apply(struct run *run, int64_t repo_id, const char *repo, struct tag_list *tags)
{
    const int dry = run->o->dry_run;
    uint64_t size;
    int error;

    for (size_t i = 0; i < tags->n; i++) {
        if (!tags->v[i].remove)
            continue;
        if (!dry && (error = exec_repo_text(run, "DELETE FROM tags WHERE repo_id = ?1"
                                            " AND name = ?2", repo_id, tags->v[i].name)) < 0)
            return error;
        if (dry && (error = dry_note(run, repo_id, tags->v[i].name, NULL)) < 0)
            return error;
        report(run, "tag", repo, tags->v[i].name, 0);
        run->out->tags++;
    }
    /* The manifests left untagged go unless an index that stays lists
     * them: to a fixed point, so the order of the tags does not matter (an
     * index dropped here releases its children) and a dry run decides as
     * the real one does. */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < tags->n; i++) {
            const char *dg = tags->v[i].digest;

            if (!tags->v[i].remove || tags->v[i].drop || seen_before(tags, i) ||
                still_tagged(tags, dg))
                continue;
            if ((error = held_by_index(run, repo_id, dg, tags)) < 0)
                return error;
            if (error == 0)
                tags->v[i].drop = changed = 1;
        }
    }
    for (size_t i = 0; i < tags->n; i++) {
        const char *dg = tags->v[i].digest;

        if (!tags->v[i].drop)
            continue;
        size = 0;
        if ((error = manifest_size(run, repo_id, dg, &size)) < 0)
            return error;
        if (error == 0)
            continue; /* a dangling tag: nothing to delete */
        if (!dry && ((error = exec_repo_text(run, "DELETE FROM manifests WHERE repo_id = ?1"
                                             " AND digest = ?2", repo_id, dg)) < 0 ||
                     (error = exec_repo_text(run, "DELETE FROM manifest_refs WHERE"
                                             " repo_id = ?1 AND parent = ?2", repo_id, dg)) < 0))
            return error;
        if (dry && (error = dry_note(run, repo_id, NULL, dg)) < 0)
            return error;
        report(run, "manifest", repo, dg, size);
        run->out->manifests++;
    }
    return 0;
}

/* Load the repository's tags and mark those the rule removes; *removed
 * counts them. */
static int plan(struct run *run, int64_t repo_id, const char *repo, long ri,
                struct tag_list *tags, size_t *removed)
{
    int error;

    tag_list_dispose(tags);
    *removed = 0;
    if ((error = load_tags(run, repo_id, tags)) < 0)
        return error;
    decide(run, ri, repo, tags);
    for (size_t i = 0; i < tags->n; i++)
        *removed += tags->v[i].remove != 0;
    return 0;
}

/* One repository. Decided first without a lock (most repositories have
 * nothing to remove, and a write transaction each would queue behind
 * pushes for nothing), then decided again and changed inside one write
 * transaction, so a tag pushed meanwhile is ranked, never lost. */
static int apply_repo(struct run *run, int64_t repo_id, const char *repo, long ri)
{
    struct tag_list tags = { 0 };
    size_t removed;
    int error;

    if ((error = plan(run, repo_id, repo, ri, &tags, &removed)) < 0 || !removed)
        goto out;
    if (run->o->dry_run) {
        error = apply(run, repo_id, repo, &tags);
        goto out;
    }
    if ((error = berth_db_begin(run->st->db)) < 0)
        goto out;
    if ((error = plan(run, repo_id, repo, ri, &tags, &removed)) < 0)
        goto done;
    if (removed && ((error = apply(run, repo_id, repo, &tags)) < 0 ||
                    (error = berth_store_tags_touch(run->st)) < 0))
        goto done;
    error = berth_db_commit(run->st->db);
done:
    if (error < 0)
        berth_db_rollback(run->st->db);
    berth_store_tags_changed(run->st);
out:
    tag_list_dispose(&tags);
    return error;
}

struct repo_row {
    int64_t id;
    char *name;
};

static int load_repos(struct run *run, struct repo_row **out, size_t *nout)
{
    struct repo_row *v = NULL, *p;
    size_t n = 0, cap = 0;
    sqlite3_stmt *s;
    int error;

    if ((error = berth_db_query(&s, run->st->db,
                                "SELECT id, name FROM repositories ORDER BY name")) < 0)
        return error;
    while ((error = berth_db_step(s)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if ((p = realloc(v, cap * sizeof(*v))) == NULL) {
                error = berth_error_set(BERTH_ERROR, "out of memory");
                break;
            }
            v = p;
        }
        v[n].id = sqlite3_column_int64(s, 0);
        if ((v[n].name = strdup((const char *)sqlite3_column_text(s, 1))) == NULL) {
            error = berth_error_set(BERTH_ERROR, "out of memory");
            break;
        }
        n++;
    }
    sqlite3_finalize(s);
    *out = v;
    *nout = n;
    return error < 0 ? error : 0;
}

int berth_retention_apply(struct berth_store *st, const struct berth_gc_opts *o,
                          struct berth_gc_stats *out)
{
    struct run run = { st, o, out, NULL, (int64_t)time(NULL) };
    struct repo_row *repos = NULL;
    size_t nrepos = 0, i;
    int error = 0;

    if (!o->nretention)
        return 0;
    if ((run.re = calloc(o->nretention, sizeof(*run.re))) == NULL)
        return berth_error_set(BERTH_ERROR, "out of memory");
    if (o->dry_run && (error = create_dry_table(&run)) < 0)
        goto done;
    if ((error = load_repos(&run, &repos, &nrepos)) < 0)
        goto done;
    for (i = 0; i < nrepos; i++) {
        long ri = rule_for(o, repos[i].name);

        if (o->stop && *o->stop) {
            out->stopped = 1;
            break;
        }
        if (ri < 0)
            continue;
        if ((error = compile_rule(&run.re[ri], &o->retention[ri], (size_t)ri)) < 0 ||
            (error = apply_repo(&run, repos[i].id, repos[i].name, ri)) < 0)
            goto done;
    }
done:
    for (i = 0; i < nrepos; i++)
        free(repos[i].name);
    free(repos);
    for (i = 0; i < o->nretention; i++)
        compiled_dispose(&run.re[i]);
    free(run.re);
    return error;
}

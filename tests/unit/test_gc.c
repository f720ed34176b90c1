/* Unit tests for src/store/gc.c: garbage collection frees exactly the
 * unreachable blobs (multi-platform index, referrers, layers shared across
 * repositories), grace period, dry run, repository deletion, one run at a
 * time, resuming a stopped run, and pushes racing a collection in a loop.
 * Each test gets a fresh store in a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include "core/error.h"
#include "store/maint.h"
#include "store/store.h"
#include "storetest.h"

struct fixture {
    struct storetest t;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f || storetest_open(&f->t, "/tmp/berth-gc-") < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    storetest_close(&f->t);
    free(f);
    return 0;
}

/* Monolithic push of a blob; 0, or the error of a step that failed
 * (a collection may purge the session or sweep in between). */
static int try_push_blob(struct berth_store *st, const char *repo, const char *data,
                         struct berth_digest *out)
{
    struct berth_digest d = digest_of(data, strlen(data));
    char id[BERTH_UPLOAD_ID_MAX];
    struct berth_upload *u;
    int error;

    if ((error = berth_upload_new(st, repo, id)) < 0 ||
        (error = berth_upload_open(&u, st, repo, id, 0)) < 0)
        return error;
    if ((error = berth_upload_write(u, data, strlen(data))) < 0) {
        berth_upload_close(u, 0);
        return error;
    }
    if ((error = berth_upload_commit(u, &d, NULL)) < 0)
        return error;
    if (out)
        *out = d;
    return 0;
}

/* An OCI image manifest with `n` layers and an optional subject. */
static char *image_json(const struct berth_digest *config, const struct berth_digest *layers,
                        size_t n, const struct berth_digest *subject)
{
    size_t cap = 512 + n * 160, len, i;
    char *s = malloc(cap);

    assert_non_null(s);
    len = (size_t)snprintf(s, cap,
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_IMAGE "\","
                           "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\","
                           "\"size\":2},\"layers\":[",
                           config->str);
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"mediaType\":\"" MT_LAYER "\",\"digest\":\"%s\",\"size\":10}",
                                i ? "," : "", layers[i].str);
    if (subject)
        len += (size_t)snprintf(s + len, cap - len,
                                "],\"subject\":{\"mediaType\":\"" MT_IMAGE "\",\"digest\":\"%s\","
                                "\"size\":100}}",
                                subject->str);
    else
        len += (size_t)snprintf(s + len, cap - len, "]}");
    assert_true(len < cap);
    return s;
}

/* An image of a config and one layer, pushed into repo. */
static struct berth_digest put_image(struct berth_store *st, const char *repo, const char *tag,
                                     const char *config, const char *layer,
                                     const struct berth_digest *subject)
{
    struct berth_digest c = push_blob(st, repo, config);
    struct berth_digest l = push_blob(st, repo, layer);
    struct berth_digest d;

    assert_int_equal(put_json(st, repo, tag, image_json(&c, &l, 1, subject), &d), 0);
    return d;
}

static int file_exists(const struct fixture *f, const char *data)
{
    struct berth_digest d = digest_of(data, strlen(data));
    char path[256];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", f->t.dir, d.str + 7, d.str + 7);
    return stat(path, &sb) == 0;
}

static int has_manifest(const struct fixture *f, const char *repo, const struct berth_digest *d)
{
    struct berth_manifest_info info;
    int error = berth_store_manifest_get(f->t.st, repo, d->str, 0, &info);

    berth_manifest_info_dispose(&info);
    assert_true(error == 0 || error == BERTH_ENOTFOUND);
    return error == 0;
}

/* What a run reported, one "kind what" line each. */
struct log {
    char lines[64][200];
    size_t n;
    const char *block_kind;   /* report of this kind: signal `entered`, wait for `release` */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, release;
    volatile int *stop_on_blob; /* set to 1 at the first "blob" */
};

static void on_report(void *ctx, const char *kind, const char *repo, const char *what,
                      uint64_t bytes)
{
    struct log *l = ctx;

    (void)bytes;
    if (l->n < 64)
        snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s %s%s%s", kind, repo ? repo : "",
                 repo ? " " : "", what);
    if (l->stop_on_blob && strcmp(kind, "blob") == 0)
        *l->stop_on_blob = 1;
    if (l->block_kind && strcmp(kind, l->block_kind) == 0) {
        pthread_mutex_lock(&l->lock);
        l->entered = 1;
        pthread_cond_broadcast(&l->cond);
        while (!l->release)
            pthread_cond_wait(&l->cond, &l->lock);
        pthread_mutex_unlock(&l->lock);
    }
}

static int logged(const struct log *l, const char *line)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->lines[i], line) == 0)
            return 1;
    }
    return 0;
}

static int gc(struct fixture *f, int dry, int untagged, int64_t grace, struct berth_gc_stats *st,
              struct log *l)
{
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats dummy;

    o.dry_run = dry;
    o.untagged = untagged;
    o.grace_sec = grace;
    o.report = l ? on_report : NULL;
    o.ctx = l;
    return berth_gc_run(f->t.st, &o, st ? st : &dummy);
}

/* (i) a multi-platform index: its children live through it, and go with it */
static void test_gc_index(void **state)
{
    struct fixture *f = *state;
    struct berth_digest kids[2], idx, kids2[2], idx2;
    struct berth_gc_stats s;
    char line[200];

    kids[0] = put_image(f->t.st, "multi", NULL, "{\"os\":\"m-amd64\"}", "m amd64 layer", NULL);
    kids[1] = put_image(f->t.st, "multi", NULL, "{\"os\":\"m-arm64\"}", "m arm64 layer", NULL);
    assert_int_equal(put_json(f->t.st, "multi", "latest", index_json(kids, 2), &idx), 0);
    /* the same shape, with one child also tagged on its own */
    kids2[0] = put_image(f->t.st, "multi2", "amd64", "{\"os\":\"n-amd64\"}", "n amd64 layer", NULL);
    kids2[1] = put_image(f->t.st, "multi2", NULL, "{\"os\":\"n-arm64\"}", "n arm64 layer", NULL);
    assert_int_equal(put_json(f->t.st, "multi2", "latest", index_json(kids2, 2), &idx2), 0);

    /* tagged index: nothing to free, even collecting untagged manifests */
    assert_int_equal(gc(f, 0, 1, 0, &s, NULL), 0);
    assert_int_equal(s.manifests + s.links + s.blobs + s.orphans, 0);
    assert_int_equal(s.blobs_live, 8);

    assert_int_equal(berth_store_tag_delete(f->t.st, "multi", "latest"), 0);
    assert_int_equal(berth_store_tag_delete(f->t.st, "multi2", "latest"), 0);
    /* without --untagged an untagged index and its children stay */
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.manifests + s.blobs, 0);
    assert_true(has_manifest(f, "multi", &idx));

    struct log l = { .n = 0 };

    assert_int_equal(gc(f, 0, 1, 0, &s, &l), 0);
    /* multi: index + both children + their 4 blobs; multi2: index + the
     * untagged child + its 2 blobs */
    assert_int_equal(s.manifests, 5);
    assert_int_equal(s.blobs, 6);
    assert_int_equal(s.links, 6);
    assert_int_equal(s.blobs_live, 2);
    snprintf(line, sizeof(line), "manifest multi %s", idx.str);
    assert_true(logged(&l, line));
    snprintf(line, sizeof(line), "manifest multi %s", kids[1].str);
    assert_true(logged(&l, line));
    assert_false(has_manifest(f, "multi", &idx));
    assert_false(has_manifest(f, "multi", &kids[0]));
    assert_false(has_manifest(f, "multi2", &idx2));
    assert_false(has_manifest(f, "multi2", &kids2[1]));
    assert_true(has_manifest(f, "multi2", &kids2[0]));
    assert_false(file_exists(f, "m amd64 layer"));
    assert_false(file_exists(f, "m arm64 layer"));
    assert_false(file_exists(f, "{\"os\":\"m-amd64\"}"));
    assert_false(file_exists(f, "n arm64 layer"));
    assert_true(file_exists(f, "n amd64 layer"));
    assert_true(file_exists(f, "{\"os\":\"n-amd64\"}"));

    /* a second run finds nothing more */
    assert_int_equal(gc(f, 0, 1, 0, &s, NULL), 0);
    assert_int_equal(s.manifests + s.links + s.blobs + s.orphans, 0);
}

/* (ii) referrers: collected once their subject is gone, kept while it lives */
static void test_gc_referrers(void **state)
{
    struct fixture *f = *state;
    struct berth_digest live_subject, dead_subject, keep, gone, chained;
    struct berth_gc_stats s;
    uint64_t size;

    live_subject = put_image(f->t.st, "r", "v1", "{\"s\":1}", "subject one", NULL);
    dead_subject = put_image(f->t.st, "r", "v2", "{\"s\":2}", "subject two", NULL);
    keep = put_image(f->t.st, "r", NULL, "{\"sig\":1}", "signature one", &live_subject);
    gone = put_image(f->t.st, "r", NULL, "{\"sig\":2}", "signature two", &dead_subject);
    /* a referrer of a referrer goes with it */
    chained = put_image(f->t.st, "r", NULL, "{\"sig\":3}", "signature three", &gone);

    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.manifests + s.blobs, 0);

    assert_int_equal(berth_store_manifest_delete(f->t.st, "r", &dead_subject), 0);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.manifests, 2);
    assert_int_equal(s.blobs, 6); /* the dead subject's 2 and the referrers' 4 */
    assert_false(has_manifest(f, "r", &gone));
    assert_false(has_manifest(f, "r", &chained));
    assert_true(has_manifest(f, "r", &keep));
    assert_true(has_manifest(f, "r", &live_subject));
    assert_false(file_exists(f, "signature two"));
    assert_false(file_exists(f, "signature three"));
    assert_false(file_exists(f, "subject two"));
    assert_true(file_exists(f, "signature one"));
    assert_true(file_exists(f, "subject one"));
    {
        struct berth_digest l = digest_of("signature one", 13);

        assert_int_equal(berth_store_blob_stat(f->t.st, "r", &l, &size), 0);
    }
}

/* (iii) a layer shared by two repositories stays until neither uses it */
static void test_gc_shared_layer(void **state)
{
    struct fixture *f = *state;
    struct berth_digest a = put_image(f->t.st, "team/a", "v1", "{\"a\":1}", "shared layer", NULL);
    struct berth_digest b = put_image(f->t.st, "team/b", "v1", "{\"b\":1}", "shared layer", NULL);
    struct berth_digest l = digest_of("shared layer", 12);
    struct berth_gc_stats s;
    uint64_t size;

    assert_int_equal(berth_store_manifest_delete(f->t.st, "team/a", &a), 0);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.blobs, 1); /* a's config */
    assert_int_equal(s.links, 2);
    assert_false(file_exists(f, "{\"a\":1}"));
    assert_true(file_exists(f, "shared layer"));
    assert_int_equal(berth_store_blob_stat(f->t.st, "team/b", &l, &size), 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "team/a", &l, &size), BERTH_ENOTFOUND);

    assert_int_equal(berth_store_manifest_delete(f->t.st, "team/b", &b), 0);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.blobs, 2);
    assert_false(file_exists(f, "shared layer"));
    assert_int_equal(s.blobs_live, 0);
    assert_int_equal(s.bytes_live, 0);
}

/* (iv) an unreferenced fresh blob survives the grace period */
static void test_gc_grace(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = push_blob(f->t.st, "g", "in-flight layer");
    struct berth_gc_stats s;
    uint64_t size;

    assert_int_equal(gc(f, 0, 1, 3600, &s, NULL), 0);
    assert_int_equal(s.links + s.blobs, 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "g", &d, &size), 0);
    assert_int_equal(s.blobs_live, 1);
    assert_int_equal(s.bytes_live, 15);

    assert_int_equal(gc(f, 0, 1, 0, &s, NULL), 0);
    assert_int_equal(s.links, 1);
    assert_int_equal(s.blobs, 1);
    assert_int_equal(s.bytes, 15);
    assert_int_equal(berth_store_blob_stat(f->t.st, "g", &d, &size), BERTH_ENOTFOUND);
    assert_false(file_exists(f, "in-flight layer"));

    /* pushed again: stored again */
    push_blob(f->t.st, "g", "in-flight layer");
    assert_int_equal(berth_store_blob_stat(f->t.st, "g", &d, &size), 0);
    assert_true(file_exists(f, "in-flight layer"));
}

/* (v) a dry run reports what the real run removes, and changes nothing */
static void test_gc_dry_run(void **state)
{
    struct fixture *f = *state;
    struct berth_digest kids[1], idx, ref, img, stray;
    struct berth_gc_stats dry, real;
    struct log ld = { .n = 0 }, lr = { .n = 0 };
    uint64_t size;
    size_t i;

    img = put_image(f->t.st, "d", "keep", "{\"d\":0}", "kept layer", NULL);
    kids[0] = put_image(f->t.st, "d", NULL, "{\"d\":1}", "child layer", NULL);
    assert_int_equal(put_json(f->t.st, "d", "idx", index_json(kids, 1), &idx), 0);
    assert_int_equal(berth_store_tag_delete(f->t.st, "d", "idx"), 0);
    ref = put_image(f->t.st, "d", NULL, "{\"d\":2}", "ref layer", &idx);
    stray = push_blob(f->t.st, "d", "never referenced");

    assert_int_equal(gc(f, 1, 1, 0, &dry, &ld), 0);
    assert_int_equal(dry.manifests, 3);
    assert_int_equal(dry.blobs, 5);
    assert_int_equal(dry.links, 5);
    assert_int_equal(dry.blobs_live, 2);
    /* nothing changed */
    assert_true(has_manifest(f, "d", &idx));
    assert_true(has_manifest(f, "d", &ref));
    assert_int_equal(berth_store_blob_stat(f->t.st, "d", &stray, &size), 0);
    assert_true(file_exists(f, "child layer"));

    assert_int_equal(gc(f, 0, 1, 0, &real, &lr), 0);
    assert_int_equal(real.manifests, dry.manifests);
    assert_int_equal(real.links, dry.links);
    assert_int_equal(real.blobs, dry.blobs);
    assert_int_equal(real.bytes, dry.bytes);
    assert_int_equal(real.blobs_live, dry.blobs_live);
    assert_int_equal(real.bytes_live, dry.bytes_live);
    assert_int_equal(lr.n, ld.n);
    for (i = 0; i < ld.n; i++)
        assert_true(logged(&lr, ld.lines[i]));
    assert_true(has_manifest(f, "d", &img));
    assert_false(has_manifest(f, "d", &ref));
    assert_false(file_exists(f, "child layer"));
    assert_true(file_exists(f, "kept layer"));
}

/* (vi) deleting a repository, then collecting, frees its unique blobs */
static void test_gc_repo_delete(void **state)
{
    struct fixture *f = *state;
    struct berth_digest l = digest_of("shared xy", 9), d = digest_of("late data", 9);
    struct berth_upload *held, *closing;
    char id[BERTH_UPLOAD_ID_MAX], id2[BERTH_UPLOAD_ID_MAX], path[256];
    struct berth_gc_stats s;
    struct stat sb;
    uint64_t size;

    put_image(f->t.st, "x", "v1", "{\"x\":1}", "shared xy", NULL);
    put_image(f->t.st, "x", "v2", "{\"x\":2}", "only x", NULL);
    put_image(f->t.st, "y", "v1", "{\"y\":1}", "shared xy", NULL);
    /* two sessions held by requests while the repository goes */
    assert_int_equal(berth_upload_new(f->t.st, "x", id), 0);
    assert_int_equal(berth_upload_open(&held, f->t.st, "x", id, 0), 0);
    assert_int_equal(berth_upload_write(held, "late data", 9), 0);
    assert_int_equal(berth_upload_new(f->t.st, "x", id2), 0);
    assert_int_equal(berth_upload_open(&closing, f->t.st, "x", id2, 0), 0);
    assert_int_equal(berth_upload_write(closing, "partial", 7), 0);

    assert_int_equal(berth_store_repo_delete(f->t.st, "x"), 0);
    assert_int_equal(berth_store_repo_exists(f->t.st, "x"), 0);
    assert_int_equal(berth_store_repo_delete(f->t.st, "x"), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_NAME_UNKNOWN);
    snprintf(path, sizeof(path), "%s/uploads/%s", f->t.dir, id);
    assert_int_equal(stat(path, &sb), -1);

    /* the held sessions fail cleanly, storing nothing */
    assert_int_equal(berth_upload_commit(held, &d, NULL), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(berth_upload_close(closing, 1), BERTH_ENOTFOUND);
    assert_int_equal(berth_error_oci(), BERTH_OCI_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(berth_upload_open(&closing, f->t.st, "x", id2, -1), BERTH_ENOTFOUND);

    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    /* x's two configs and its unique layer, and the late blob placed by
     * nothing (its commit failed before placing it) */
    assert_int_equal(s.blobs, 3);
    assert_int_equal(s.orphans, 0);
    assert_false(file_exists(f, "only x"));
    assert_false(file_exists(f, "late data"));
    assert_true(file_exists(f, "shared xy"));
    assert_int_equal(berth_store_blob_stat(f->t.st, "y", &l, &size), 0);
    /* the name can be pushed again from scratch */
    put_image(f->t.st, "x", "v1", "{\"x\":1}", "only x", NULL);
}

struct gc_thread {
    struct fixture *f;
    struct log *l;
    int error;
    struct berth_gc_stats s;
};

static void *gc_main(void *p)
{
    struct gc_thread *t = p;

    t->error = gc(t->f, 0, 0, 0, &t->s, t->l);
    return NULL;
}

/* (vii) one collection at a time, across threads and processes */
static void test_gc_exclusive(void **state)
{
    struct fixture *f = *state;
    struct log l = { .n = 0, .block_kind = "blob" };
    struct gc_thread t = { f, &l, 1, { 0 } };
    struct berth_gc_stats s;
    char path[128];
    pthread_t th;
    int fd;

    pthread_mutex_init(&l.lock, NULL);
    pthread_cond_init(&l.cond, NULL);
    push_blob(f->t.st, "e", "garbage");
    assert_int_equal(pthread_create(&th, NULL, gc_main, &t), 0);
    pthread_mutex_lock(&l.lock);
    while (!l.entered)
        pthread_cond_wait(&l.cond, &l.lock);
    pthread_mutex_unlock(&l.lock);

    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), BERTH_EEXISTS);
    assert_string_equal(berth_error_msg(), "garbage collection already running");
    assert_int_equal(gc(f, 1, 0, 0, &s, NULL), BERTH_EEXISTS);

    pthread_mutex_lock(&l.lock);
    l.release = 1;
    pthread_cond_broadcast(&l.cond);
    pthread_mutex_unlock(&l.lock);
    pthread_join(th, NULL);
    assert_int_equal(t.error, 0);
    assert_int_equal(t.s.blobs, 1);

    /* another process holding the lock (`berth gc` next to `berth serve`) */
    snprintf(path, sizeof(path), "%s/gc.lock", f->t.dir);
    assert_true((fd = open(path, O_RDWR)) >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), BERTH_EEXISTS);
    close(fd);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    pthread_cond_destroy(&l.cond);
    pthread_mutex_destroy(&l.lock);
}

/* (viii) a run stopped after its first batch; the next one finishes */
static void test_gc_resume(void **state)
{
    struct fixture *f = *state;
    volatile int stop = 0;
    struct log l = { .n = 0, .stop_on_blob = &stop };
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats s;
    char data[32];
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(data, sizeof(data), "garbage %d", i);
        push_blob(f->t.st, "s", data);
    }
    for (i = 0; i < 3; i++) { /* untagged images: one manifest per batch */
        char config[32];

        snprintf(config, sizeof(config), "{\"s\":%d}", i);
        snprintf(data, sizeof(data), "untagged layer %d", i);
        put_image(f->t.st, "s", NULL, config, data, NULL);
    }
    o.untagged = 1;
    o.batch = 1;
    o.report = on_report;
    o.ctx = &l;
    o.stop = &stop;
    assert_int_equal(berth_gc_run(f->t.st, &o, &s), 0);
    assert_int_equal(s.stopped, 1);
    assert_int_equal(s.manifests, 3);
    assert_int_equal(s.links, 11);
    assert_int_equal(s.blobs, 1);

    stop = 0;
    l.stop_on_blob = NULL;
    assert_int_equal(berth_gc_run(f->t.st, &o, &s), 0);
    assert_int_equal(s.stopped, 0);
    assert_int_equal(s.manifests + s.links, 0);
    assert_int_equal(s.blobs, 10);
    assert_int_equal(s.blobs_live, 0);
    for (i = 0; i < 5; i++) {
        snprintf(data, sizeof(data), "garbage %d", i);
        assert_false(file_exists(f, data));
    }
}

/* Make every upload session look idle for `sec` seconds. */
static void backdate_uploads(struct fixture *f, int sec)
{
    char path[256], sql[128];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/berth.db", f->t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "UPDATE uploads SET updated = updated - %d", sec);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Orphan files (no row) and expired upload sessions go too. */
static void test_gc_orphans_uploads(void **state)
{
    struct fixture *f = *state;
    struct berth_digest d = digest_of("orphan bytes", 12);
    char path[256], id[BERTH_UPLOAD_ID_MAX];
    struct berth_gc_stats s;
    struct log l = { .n = 0 };
    uint64_t off;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s", f->t.dir, d.str + 7);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", f->t.dir, d.str + 7, d.str + 7);
    assert_non_null(fp = fopen(path, "w"));
    fputs("orphan bytes", fp);
    fclose(fp);
    assert_int_equal(berth_upload_new(f->t.st, "u", id), 0);

    assert_int_equal(gc(f, 1, 0, 0, &s, &l), 0);
    assert_int_equal(s.orphans, 1);
    assert_true(file_exists(f, "orphan bytes"));

    /* a session is stale once idle for the grace period, and never before
     * 10 minutes: with grace 0 a fresh one stays */
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.orphans, 1);
    assert_int_equal(s.uploads, 0);
    assert_false(file_exists(f, "orphan bytes"));
    assert_int_equal(berth_upload_offset(f->t.st, "u", id, &off), 0);
    backdate_uploads(f, 601);
    assert_int_equal(gc(f, 0, 0, 3600, &s, NULL), 0);
    assert_int_equal(s.uploads, 0);
    assert_int_equal(berth_upload_offset(f->t.st, "u", id, &off), 0);

    l.n = 0;
    assert_int_equal(gc(f, 0, 0, 0, &s, &l), 0);
    assert_int_equal(s.uploads, 1);
    snprintf(path, sizeof(path), "upload u %s", id);
    assert_true(logged(&l, path));
    assert_int_equal(berth_upload_offset(f->t.st, "u", id, &off), BERTH_ENOTFOUND);
}

/* kill -9 in the middle of a sweep (BERTH_FAULTS=gc_sweep:k3 in a child
 * process running a collection on the same store), then a run finishes. */
static void test_gc_killed(void **state)
{
    struct fixture *f = *state;
    struct berth_digest img = put_image(f->t.st, "k", "v1", "{\"k\":1}", "live layer", NULL);
    char data[32], exe[4096];
    struct berth_gc_stats s;
    struct log l = { .n = 0 };
    ssize_t n;
    int i, left = 0, status;
    pid_t pid;

    for (i = 0; i < 5; i++) {
        snprintf(data, sizeof(data), "doomed %d", i);
        push_blob(f->t.st, "k", data);
    }
    assert_true((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0);
    exe[n] = '\0';
    if ((pid = fork()) == 0) {
        setenv("BERTH_FAULTS", "gc_sweep:k3", 1);
        execl(exe, exe, "--gc-child", f->t.dir, (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* the first batch (2 blobs) committed; the second died after removing
     * one file, its row deletions lost */
    for (i = 0; i < 5; i++) {
        snprintf(data, sizeof(data), "doomed %d", i);
        left += file_exists(f, data);
    }
    assert_int_equal(left, 2);

    assert_int_equal(gc(f, 0, 0, 0, &s, &l), 0);
    assert_int_equal(s.blobs, 3); /* one of them with its file already gone */
    assert_int_equal(s.links, 0);
    for (i = 0; i < 5; i++) {
        snprintf(data, sizeof(data), "doomed %d", i);
        assert_false(file_exists(f, data));
    }
    assert_true(has_manifest(f, "k", &img));
    assert_true(file_exists(f, "live layer"));
    assert_int_equal(s.blobs_live, 2);
}

/* The child of test_gc_killed: one collection, batches of 2. */
static int gc_child(const char *root)
{
    struct berth_store_config cfg = { .root = root, .no_fsync = 1 };
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats s;
    struct berth_store *st;
    int error;

    if (berth_store_open(&st, &cfg) < 0)
        return 2;
    o.batch = 2;
    error = berth_gc_run(st, &o, &s);
    berth_store_free(st);
    return error < 0 ? 3 : 0; /* never reached with gc_sweep:k3 */
}

/* A version 1 database (before garbage collection) is upgraded in place:
 * its links get a full grace period from the upgrade. */
static void test_gc_migrate(void **state)
{
    struct fixture *f = *state;
    struct berth_store_config cfg = { .root = f->t.dir, .no_fsync = 1 };
    struct berth_digest d = push_blob(f->t.st, "old", "pushed before the upgrade");
    struct berth_gc_stats s;
    char path[128];
    sqlite3_stmt *q;
    sqlite3 *db;
    uint64_t size;

    berth_store_free(f->t.st);
    f->t.st = NULL;
    snprintf(path, sizeof(path), "%s/berth.db", f->t.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE repo_blobs DROP COLUMN linked;"
                                  "DROP TABLE counters; PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(berth_store_open(&f->t.st, &cfg), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT user_version FROM pragma_user_version),"
                                        " (SELECT value FROM counters WHERE name = 'tags'),"
                                        " (SELECT linked FROM repo_blobs)",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 2);
    assert_int_equal(sqlite3_column_int(q, 1), 0);
    assert_true(sqlite3_column_int64(q, 2) >= (sqlite3_int64)time(NULL) - 5);
    sqlite3_finalize(q);
    sqlite3_close(db);

    assert_int_equal(gc(f, 0, 0, 3600, &s, NULL), 0);
    assert_int_equal(s.links + s.blobs, 0);
    assert_int_equal(berth_store_blob_stat(f->t.st, "old", &d, &size), 0);
    assert_int_equal(gc(f, 0, 0, 0, &s, NULL), 0);
    assert_int_equal(s.blobs, 1);
}

/* ---- pushes racing collections ---- */

#define PUSHERS 3
#define ROUNDS 40
#define MIN_CYCLES 30

struct race {
    struct fixture *f;
    volatile int done;
    unsigned long pushes, retries, cycles;
    pthread_mutex_t lock;
    char failure[512]; /* the first thing that went wrong in a thread */
};

struct pusher {
    struct race *r;
    int n;
};

/* Threads record a failure (the main thread asserts on it): a cmocka
 * assertion must not fire outside the test's own thread. */
static void race_fail(struct race *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void race_fail(struct race *r, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&r->lock);
    if (!r->failure[0]) {
        va_start(ap, fmt);
        vsnprintf(r->failure, sizeof(r->failure), fmt, ap);
        va_end(ap);
    }
    r->done = 1;
    pthread_mutex_unlock(&r->lock);
}

/* The tagged manifest's blobs are there, linked, with the right bytes:
 * 0, or -1 with *why set. */
static int check_tag(struct berth_store *st, const char *repo, const char *tag, char *why,
                     size_t len)
{
    struct berth_manifest_info info;
    struct berth_manifest *m = NULL;
    struct berth_digest got;
    uint8_t buf[256];
    uint64_t size;
    size_t i;
    ssize_t n;
    int fd, error;

    if ((error = berth_store_manifest_get(st, repo, tag, 1, &info)) < 0 ||
        (error = berth_manifest_parse(&m, NULL, info.body, info.len)) < 0) {
        snprintf(why, len, "%s:%s: %s", repo, tag, berth_error_msg());
        berth_manifest_info_dispose(&info);
        return -1;
    }
    for (i = 0; i <= m->nlayers && error == 0; i++) {
        const struct berth_digest *d = i ? &m->layers[i - 1].digest : &m->config.digest;

        if (berth_store_blob_open(st, repo, d, &fd, &size) < 0) {
            snprintf(why, len, "%s:%s: blob %s: %s", repo, tag, d->str, berth_error_msg());
            error = -1;
            break;
        }
        n = read(fd, buf, sizeof(buf));
        close(fd);
        if (n != (ssize_t)size || berth_digest_buf(&got, BERTH_SHA256, buf, (size_t)n) < 0 ||
            !berth_digest_equal(&got, d)) {
            snprintf(why, len, "%s:%s: blob %s has wrong bytes", repo, tag, d->str);
            error = -1;
        }
    }
    berth_manifest_free(m);
    berth_manifest_info_dispose(&info);
    return error;
}

static void verify_tags(struct fixture *f)
{
    char repo[16], tag[16], why[512] = "";
    int p;

    for (p = 0; p < PUSHERS; p++) {
        snprintf(repo, sizeof(repo), "race/%d", p % 2);
        snprintf(tag, sizeof(tag), "t%d", p);
        if (check_tag(f->t.st, repo, tag, why, sizeof(why)) < 0)
            fail_msg("%s", why);
    }
}

/* Push config + shared layer + own layer and tag the manifest, starting
 * over whenever the collector took something from under the push. */
static int push_round(struct race *r, int n, int round)
{
    char repo[16], tag[16], config[64], own[64];
    struct berth_digest c, layers[2];
    int error, tries = 0;

    snprintf(repo, sizeof(repo), "race/%d", n % 2);
    snprintf(tag, sizeof(tag), "t%d", n);
    snprintf(config, sizeof(config), "{\"pusher\":%d,\"round\":%d}", n, round);
    /* the same layer comes back every other round, after the collector
     * could take it: a push racing the sweep of that very blob */
    snprintf(own, sizeof(own), "layer of %d round %d", n, round % 2);
    for (;;) {
        if ((error = try_push_blob(r->f->t.st, repo, config, &c)) == 0 &&
            (error = try_push_blob(r->f->t.st, repo, "layer everyone shares", &layers[0])) == 0 &&
            (error = try_push_blob(r->f->t.st, repo, own, &layers[1])) == 0 &&
            (error = put_json(r->f->t.st, repo, tag, image_json(&c, layers, 2, NULL), NULL)) == 0)
            break;
        /* told to upload again (a session purged, a link swept); nothing else */
        if (error != BERTH_ENOTFOUND || ++tries == 1000) {
            race_fail(r, "pusher %d round %d: %s", n, round, berth_error_msg());
            return -1;
        }
        pthread_mutex_lock(&r->lock);
        r->retries++;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    r->pushes++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void *pusher_main(void *p)
{
    struct pusher *pu = p;
    struct race *r = pu->r;
    char repo[16], tag[16], why[512];
    int i;

    snprintf(repo, sizeof(repo), "race/%d", pu->n % 2);
    snprintf(tag, sizeof(tag), "t%d", pu->n);
    /* at least ROUNDS, and on until the collector ran MIN_CYCLES times */
    for (i = 0; i < ROUNDS || (__atomic_load_n(&r->cycles, __ATOMIC_RELAXED) < MIN_CYCLES &&
                               i < 20 * ROUNDS);
         i++) {
        if (r->failure[0] || push_round(r, pu->n, i) < 0)
            break;
        /* only this thread moves this tag: it must pull completely now */
        if (check_tag(r->f->t.st, repo, tag, why, sizeof(why)) < 0) {
            race_fail(r, "after round %d: %s", i, why);
            break;
        }
    }
    return NULL;
}

static void *collector_main(void *p)
{
    struct race *r = p;
    struct berth_gc_opts o = { 0 };
    struct berth_gc_stats s;

    o.untagged = 1;
    while (!r->done) {
        if (berth_gc_run(r->f->t.st, &o, &s) < 0) {
            race_fail(r, "collection: %s", berth_error_msg());
            break;
        }
        __atomic_add_fetch(&r->cycles, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_gc_race(void **state)
{
    struct fixture *f = *state;
    struct race r = { .f = f };
    struct pusher pu[PUSHERS];
    pthread_t th[PUSHERS], col;
    struct berth_gc_stats s;
    int i;

    pthread_mutex_init(&r.lock, NULL);
    assert_int_equal(pthread_create(&col, NULL, collector_main, &r), 0);
    for (i = 0; i < PUSHERS; i++) {
        pu[i].r = &r;
        pu[i].n = i;
        assert_int_equal(pthread_create(&th[i], NULL, pusher_main, &pu[i]), 0);
    }
    for (i = 0; i < PUSHERS; i++)
        pthread_join(th[i], NULL);
    r.done = 1;
    pthread_join(col, NULL);
    print_message("race: %lu pushes, %lu retries, %lu collections\n", r.pushes, r.retries,
                  r.cycles);
    if (r.failure[0])
        fail_msg("%s", r.failure);
    assert_true(r.pushes >= PUSHERS * ROUNDS);
    assert_true(r.cycles >= MIN_CYCLES);
    verify_tags(f);

    /* one more collection leaves exactly the tagged images */
    assert_int_equal(gc(f, 0, 1, 0, &s, NULL), 0);
    verify_tags(f);
    assert_int_equal(s.blobs_live, 2 * PUSHERS + 1);
    pthread_mutex_destroy(&r.lock);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--gc-child") == 0)
        return gc_child(argv[2]);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gc_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_referrers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_shared_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_repo_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_orphans_uploads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_race, setup, teardown),
    };

    return cmocka_run_group_tests_name("gc", tests, NULL, NULL);
}

/*
 * Internal to src/server: the request handlers, one file per API area
 * (h_base.c, h_blobs.c, h_uploads.c, h_manifests.c, h_tags.c,
 * h_referrers.c, h_admin.c). router.c's table names them; each answers through the
 * respond_*() helpers of http.h.
 */
#ifndef BERTH_SERVER_HANDLERS_H
#define BERTH_SERVER_HANDLERS_H

struct request;

void h_base(struct request *req);             /* end-1 */

void h_blob_get(struct request *req);         /* end-2 (GET and HEAD) */
void h_blob_delete(struct request *req);      /* end-10 */

void h_upload_start(struct request *req);     /* end-4a */
void h_mono_open(struct request *req);        /* end-4b: headers in */
void h_upload_mono(struct request *req);      /* end-4b */
void h_upload_mount(struct request *req);     /* end-11 */
void h_patch_open(struct request *req);       /* end-5: headers in */
void h_put_open(struct request *req);         /* end-6: headers in */
void h_upload_patch(struct request *req);     /* end-5 */
void h_upload_put(struct request *req);       /* end-6 */
void h_upload_status(struct request *req);    /* end-13 */
void h_upload_cancel(struct request *req);    /* end-14 */

void h_manifest_get(struct request *req);     /* end-3 (GET and HEAD) */
void h_manifest_open(struct request *req);    /* end-7: headers in */
void h_manifest_put(struct request *req);     /* end-7 */
void h_manifest_delete(struct request *req);  /* end-9 */

void h_tags_list(struct request *req);        /* end-8a, end-8b */
void h_catalog(struct request *req);          /* /v2/_catalog */

void h_referrers(struct request *req);        /* end-12a, end-12b */

/* h_admin.c: berth's own endpoints (docs/gc.md) */
void h_gc_start(struct request *req);         /* POST /v2/_berth/gc */
void h_gc_status(struct request *req);        /* GET /v2/_berth/gc */
void h_repo_delete(struct request *req);      /* DELETE /v2/_berth/repositories/<name> */

/* Paging parameters of the listing endpoints (h_tags.c): `n` (a decimal
 * count; absent → def, above max → max; max < 0: no cap) and `last`.
 * Answers 400 and returns -1 when `n` is not a non-negative integer. */
int paging_args(struct request *req, long def, long max, long *n, const char **last);
/* The cache of full tag lists h_tags_list keeps (h_tags.c). */
struct tags_cache *tags_cache_new(void);
void tags_cache_free(struct tags_cache *c);

#endif

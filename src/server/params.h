/*
 * Internal to src/server: the query parameters of the registry API as small
 * pure functions (no sockets, no request), so each can be unit-tested
 * and fuzzed alone: `n` (page size), `last` (paging cursor: a tag, a name or
 * a digest), `artifactType` (a media type), `digest` / `mount` (digests),
 * `from` (a repository name) and the repeated `tag`. Each returns 0 or a
 * negative BERTH_E* code with the thread's error (message and OCI code) set.
 */
#ifndef BERTH_SERVER_PARAMS_H
#define BERTH_SERVER_PARAMS_H

#include <stddef.h>

#include "core/digest.h"

/* `n` is 1..9 decimal digits (so at most 999,999,999: no overflow). */
#define BERTH_PARAM_N_DIGITS 9
/* A media type is at most this long (RFC 6838: 127 per half, plus '/'). */
#define BERTH_MEDIA_TYPE_MAX 255
/* How many ?tag= a manifest PUT may carry. */
#define BERTH_PARAM_TAGS_MAX 64

/* `n`: absent (NULL) → def; otherwise decimal digits only, and above max
 * → max (max < 0: no cap). BERTH_EINVALID with SIZE_INVALID otherwise. */
int berth_param_n(const char *s, long def, long max, long *n);

/* What a `last` cursor must be. */
enum berth_last_kind { BERTH_LAST_TAG, BERTH_LAST_NAME, BERTH_LAST_DIGEST };

/* `last`: absent or empty → *last = NULL; else it must be a valid tag, name
 * or digest (TAG_INVALID, NAME_INVALID, DIGEST_INVALID) and *last = s. */
int berth_param_last(const char *s, enum berth_last_kind kind, const char **last);

/* A media type `type/subtype` (RFC 6838 restricted-name on each side: a
 * letter or digit, then letters, digits and !#$&-^_.+; each side at most
 * 127, the whole at most BERTH_MEDIA_TYPE_MAX). 0 or BERTH_EINVALID. */
int berth_media_type_check(const char *s, size_t len);

/* `artifactType`: absent or empty → *type = NULL; else a media type
 * (BERTH_EINVALID with UNSUPPORTED otherwise) and *type = s. */
int berth_param_artifact_type(const char *s, const char **type);

/* `digest` and `mount`: present, non-empty and a digest, parsed into *d
 * (BERTH_EINVALID or BERTH_EUNSUPPORTED with DIGEST_INVALID otherwise). */
int berth_param_digest(const char *s, struct berth_digest *d);

/* `from`: present and a valid repository name (NAME_INVALID otherwise). */
int berth_param_from(const char *s);

/* The repeated `tag` parameter, collected in order. */
struct berth_tag_params {
    const char *tags[BERTH_PARAM_TAGS_MAX];
    size_t n;
    int too_many; /* more than BERTH_PARAM_TAGS_MAX were given */
};

/* Add one value (NULL counts as ""). 0, or BERTH_ETOOBIG (too_many set). */
int berth_param_tag_add(struct berth_tag_params *tp, const char *value);
/* Every collected tag valid, and not too many: 0, else BERTH_EINVALID with
 * TAG_INVALID naming the first offender. */
int berth_param_tags_check(const struct berth_tag_params *tp);

#endif

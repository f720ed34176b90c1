/*
 * The OCI distribution-spec error codes (spec "Error Codes" table) and the
 * one table that maps each to its HTTP status and JSON body. Handlers never
 * hand-write error JSON: they call berth_oci_error_json().
 */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H

#include <stddef.h>

enum berth_oci_code {
    BERTH_OCI_NONE = 0,
    BERTH_OCI_BLOB_UNKNOWN,          /* 404 */
    BERTH_OCI_BLOB_UPLOAD_INVALID,   /* 400 (416 for a bad chunk offset, chosen by caller) */
    BERTH_OCI_BLOB_UPLOAD_UNKNOWN,   /* 404 */
    BERTH_OCI_DIGEST_INVALID,        /* 400 */
    BERTH_OCI_MANIFEST_BLOB_UNKNOWN, /* 404 (spec end-7 failure status; distribution uses 400) */
    BERTH_OCI_MANIFEST_INVALID,      /* 400 */
    BERTH_OCI_MANIFEST_UNKNOWN,      /* 404 */
    BERTH_OCI_NAME_INVALID,          /* 400 */
    BERTH_OCI_NAME_UNKNOWN,          /* 404 */
    BERTH_OCI_SIZE_INVALID,          /* 400 (413 for a manifest over the limit, chosen by caller) */
    BERTH_OCI_UNAUTHORIZED,          /* 401 */
    BERTH_OCI_DENIED,                /* 403 */
    BERTH_OCI_UNSUPPORTED,           /* 405 (distribution) — 415 for media types chosen by caller */
    BERTH_OCI_TOOMANYREQUESTS,       /* 429 */
    BERTH_OCI_TAG_INVALID,           /* 400 */
    BERTH_OCI_RANGE_INVALID,         /* 416 (distribution's code for bad Range) */
    BERTH_OCI_INTERNAL,              /* 500, code "UNKNOWN" */
    BERTH_OCI_UNAVAILABLE,           /* 503, code "UNAVAILABLE" (e.g. disk full: 507 chosen by caller) */
    BERTH_OCI__COUNT
};

/* The spec's code string ("BLOB_UNKNOWN", ...). */
const char *berth_oci_code_str(enum berth_oci_code c);
/* Default HTTP status for the code. */
int berth_oci_status(enum berth_oci_code c);
/* Default message for the code (the spec's "message" column). */
const char *berth_oci_message(enum berth_oci_code c);

/* Render {"errors":[{"code":"...","message":"...","detail":...}]} into a new
 * malloc'd NUL-terminated string (*out, length in *outlen). `message` may be
 * NULL (the default is used); `detail_json` is raw JSON inserted as the
 * detail value, or NULL for an empty object {}. Returns 0 or BERTH_ERROR. */
int berth_oci_error_json(char **out, size_t *outlen, enum berth_oci_code c, const char *message,
                         const char *detail_json);

#endif

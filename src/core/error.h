/*
 * Error reporting for berth: functions return 0 on success or a negative
 * BERTH_E* code; the human-readable message (and, where the failure maps to
 * one, the OCI distribution error code) lives in a thread-local error object.
 * `return berth_error_set(...)` reads well. Library code never prints.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include "oci.h"

enum {
    BERTH_OK = 0,
    BERTH_ERROR = -1,        /* system or unexpected failure (I/O, sqlite, OOM) */
    BERTH_ENOTFOUND = -2,    /* the thing asked for does not exist */
    BERTH_EINVALID = -3,     /* malformed input */
    BERTH_EMISMATCH = -4,    /* digest or size did not match */
    BERTH_ETOOBIG = -5,      /* over a configured limit */
    BERTH_EDENIED = -6,      /* not allowed */
    BERTH_EEXISTS = -7,      /* already exists */
    BERTH_ERANGE = -8,       /* offset/range not satisfiable */
    BERTH_ENOSPC = -9,       /* disk full */
    BERTH_EUNSUPPORTED = -10 /* valid but not supported (schema1, unknown algorithm) */
};

/* Set the thread's error: code, no OCI code, printf-style message.
 * Returns `code`. Messages are lowercase, no trailing period. */
int berth_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, also naming the OCI error code the HTTP layer should answer with. */
int berth_error_set_oci(int code, enum berth_oci_code oci, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set from errno after a failed system call: ENOSPC/EDQUOT → BERTH_ENOSPC,
 * ENOENT → BERTH_ENOTFOUND, else BERTH_ERROR. Message "<what>: strerror". */
int berth_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last error of this thread. Message is "" when none; valid until the next
 * berth_error_* call on this thread. */
int berth_error_code(void);
enum berth_oci_code berth_error_oci(void); /* BERTH_OCI_NONE when not set */
const char *berth_error_msg(void);
void berth_error_clear(void);

/* Short name of a BERTH_E* code, e.g. "not found". */
const char *berth_error_str(int code);

#endif

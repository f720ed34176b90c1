/*
 * Thread-local error object (see error.h): every failing berth function
 * records a BERTH_E* code, an optional OCI error code and a message here, then
 * returns the code. Invariant: the message buffer is always NUL-terminated and
 * truncated (never overflowed) at ERROR_MSG_MAX - 1 bytes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define ERROR_MSG_MAX 512

struct error_state {
    int code;
    enum berth_oci_code oci;
    char msg[ERROR_MSG_MAX];
};

static _Thread_local struct error_state err;

static void set_msg(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void set_msg(const char *fmt, va_list ap)
{
    if (vsnprintf(err.msg, sizeof(err.msg), fmt, ap) < 0)
        err.msg[0] = '\0';
}

int berth_error_set(int code, const char *fmt, ...)
{
    va_list ap;

    err.code = code;
    err.oci = BERTH_OCI_NONE;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    return code;
}

int berth_error_set_oci(int code, enum berth_oci_code oci, const char *fmt, ...)
{
    va_list ap;

    err.code = code;
    err.oci = oci;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    return code;
}

int berth_error_errno(const char *fmt, ...)
{
    int saved = errno;
    char ebuf[128];
    const char *estr;
    size_t n;
    va_list ap;

    switch (saved) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        err.code = BERTH_ENOSPC;
        break;
    case ENOENT:
        err.code = BERTH_ENOTFOUND;
        break;
    default:
        err.code = BERTH_ERROR;
        break;
    }
    err.oci = BERTH_OCI_NONE;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);

    /* strerror_r is the GNU variant under _GNU_SOURCE: it may return ebuf or a static string. */
    estr = strerror_r(saved, ebuf, sizeof(ebuf));
    n = strlen(err.msg);
    if (n < sizeof(err.msg) - 1)
        snprintf(err.msg + n, sizeof(err.msg) - n, ": %s", estr);
    errno = saved;
    return err.code;
}

int berth_error_code(void)
{
    return err.code;
}

enum berth_oci_code berth_error_oci(void)
{
    return err.oci;
}

const char *berth_error_msg(void)
{
    return err.msg;
}

void berth_error_clear(void)
{
    err.code = BERTH_OK;
    err.oci = BERTH_OCI_NONE;
    err.msg[0] = '\0';
}

const char *berth_error_str(int code)
{
    switch (code) {
    case BERTH_OK:
        return "ok";
    case BERTH_ERROR:
        return "error";
    case BERTH_ENOTFOUND:
        return "not found";
    case BERTH_EINVALID:
        return "invalid";
    case BERTH_EMISMATCH:
        return "mismatch";
    case BERTH_ETOOBIG:
        return "too big";
    case BERTH_EDENIED:
        return "denied";
    case BERTH_EEXISTS:
        return "exists";
    case BERTH_ERANGE:
        return "range not satisfiable";
    case BERTH_ENOSPC:
        return "no space";
    case BERTH_EUNSUPPORTED:
        return "unsupported";
    default:
        return "unknown error";
    }
}

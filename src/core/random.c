/* See random.h. */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include "core/error.h"
#include "core/random.h"

int berth_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_errno("cannot read random bytes");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * libFuzzer target for the htpasswd parser: the input is the file (through
 * a memfd, no disk). Invariants: loading never fails for readable input,
 * refused lines are reported through the callback, and no password but the
 * right one verifies (the fuzzer cannot invert bcrypt, so "wrong" never does).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "server/htpasswd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    if (!msg[0])
        abort();
}

/* Verify only when every bcrypt cost in the file is 04 (a fuzzed "$2y$31$"
 * would take hours) and alice is a known user: an unknown user pays a dummy
 * bcrypt at the real cost (timing safety), which held the target to ~25
 * execs/s. */
static int cheap(const uint8_t *data, size_t size)
{
    if (!memmem(data, size, "alice:", 6))
        return 0;
    for (size_t i = 0; i + 6 < size; i++)
        if (data[i] == '$' && data[i + 1] == '2' && data[i + 3] == '$' &&
            (data[i + 4] != '0' || data[i + 5] != '4'))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_htpasswd *h;
    char path[64];
    int fd = memfd_create("htpasswd", MFD_CLOEXEC);

    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (berth_htpasswd_new(&h, path, warn_cb, NULL) < 0)
        abort();
    if (berth_htpasswd_has_user(h, "alice", NULL) == 1 && cheap(data, size) &&
        berth_htpasswd_verify(h, "alice", (const uint8_t *)"wrong", 5) == 0)
        abort();
    berth_htpasswd_free(h);
    close(fd);
    return 0;
}

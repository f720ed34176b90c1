/* Fuzz target: the YAML configuration parser (src/server/config.c). Any
 * input must give 0 or a negative code with a message, never a crash, and
 * leave the configuration with its strings set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_config cfg;
    int rc;

    berth_config_init(&cfg);
    rc = berth_config_parse(&cfg, data, size, warn_cb, NULL);
    if (rc < 0 && !berth_error_msg()[0])
        abort();
    if (!cfg.addr || !cfg.root)
        abort();
    berth_config_dispose(&cfg);
    return 0;
}

/*
 * libFuzzer target for berth_auth_parse_challenges (every WWW-Authenticate
 * header a registry sends goes through it) and the token response parser.
 * Invariants checked: failures leave no output; successes stay within the
 * limits, have lowercase non-empty schemes and NUL-free params, and every
 * param can be looked up by its own name.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/auth.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_challenge *c = (struct berth_challenge *)1;
    struct berth_token t;
    size_t n = 99;
    int rc;

    rc = berth_auth_parse_challenges(&c, &n, (const char *)data, size);
    if (rc < 0) {
        if (c != NULL || n != 0)
            abort();
        if (rc != BERTH_EINVALID && rc != BERTH_ETOOBIG && rc != BERTH_ERROR)
            abort();
    } else {
        if (n > BERTH_AUTH_MAX_CHALLENGES || (n > 0 && c == NULL))
            abort();
        for (size_t i = 0; i < n; i++) {
            if (!c[i].scheme[0] || c[i].nparams > BERTH_AUTH_MAX_PARAMS)
                abort();
            for (const char *p = c[i].scheme; *p; p++)
                if (isupper((unsigned char)*p))
                    abort();
            if (c[i].token68 && c[i].nparams)
                abort();
            for (size_t j = 0; j < c[i].nparams; j++) {
                const char *v = berth_challenge_param(&c[i], c[i].params[j].name);
                if (!v || !c[i].params[j].name[0] || strlen(c[i].params[j].value) > size)
                    abort();
            }
            if (berth_challenge_find(c, n, c[i].scheme) == NULL)
                abort();
        }
        berth_challenges_free(c, n);
    }

    /* the same bytes as a token server's answer */
    rc = berth_auth_token_parse(&t, data, size);
    if (rc == 0) {
        if (!t.token || !t.token[0] || t.expires_in < 60)
            abort();
    } else if (t.token || t.refresh_token) {
        abort();
    }
    berth_token_dispose(&t);
    return 0;
}

/*
 * libFuzzer target for the scope parser (every `scope` parameter of a token
 * request and every `access` claim goes through it), the token form parser
 * and the repository glob. Invariants: a parsed scope formats back into a
 * string that parses to the same scope; failures leave it empty; glob
 * matching of arbitrary pattern/name pairs terminates and a name matches
 * itself used as a pattern when it holds no wildcard.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "server/policy.h"
#include "server/tokensrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct berth_scope s, again;
    struct berth_token_params p;
    char buf[BERTH_SCOPE_MAX + 64], *pat, *name;
    const uint8_t *nl;
    size_t n;

    if (berth_scope_parse(&s, (const char *)data, size) == 0) {
        n = berth_scope_format(buf, sizeof(buf), &s);
        if (s.actions && (n >= sizeof(buf) || berth_scope_parse(&again, buf, n) != 0 ||
                          memcmp(&s, &again, sizeof(s)) != 0))
            abort();
    } else if (s.type[0] || s.name[0] || s.actions) {
        abort();
    }

    berth_token_params_init(&p);
    berth_token_params_parse_form(&p, (const char *)data, size);
    berth_token_params_dispose(&p);

    /* pattern '\n' name */
    nl = memchr(data, '\n', size);
    if (!nl)
        return 0;
    pat = strndup((const char *)data, (size_t)(nl - data));
    name = strndup((const char *)nl + 1, size - (size_t)(nl - data) - 1);
    if (!pat || !name)
        abort();
    berth_glob_match(pat, name);
    if (!strpbrk(name, "*?") && strlen(name) <= BERTH_PATTERN_MAX && !berth_glob_match(name, name))
        abort();
    free(pat);
    free(name);
    return 0;
}

/*
 * libFuzzer target for berth_ref_parse / berth_ref_parse_notag (references
 * come from the command line and from manifests and registries' answers).
 * Invariants: a rejected input is BERTH_EINVALID with an "invalid reference"
 * message; an accepted one has a registry, a repository that passes
 * berth_name_check, and its long and short formats parse back to the same parts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/name.h"
#include "core/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct berth_ref *a, const struct berth_ref *b)
{
    return strcmp(a->registry, b->registry) == 0 && strcmp(a->repository, b->repository) == 0 &&
           strcmp(a->tag, b->tag) == 0 && a->has_digest == b->has_digest &&
           (!a->has_digest || strcmp(a->digest.str, b->digest.str) == 0);
}

static void check(const char *s, int notag)
{
    struct berth_ref r, again;
    char buf[1024];
    size_t n;
    int rc = notag ? berth_ref_parse_notag(&r, s) : berth_ref_parse(&r, s);

    if (rc != 0) {
        if (rc != BERTH_EINVALID || strncmp(berth_error_msg(), "invalid reference", 17) != 0)
            abort();
        return;
    }
    if (!r.registry[0] || berth_name_check(r.repository, strlen(r.repository)) != 0)
        abort();
    if (strlen(r.registry) + 1 + strlen(r.repository) > 255)
        abort();
    if (!notag && !r.tag[0] && !r.has_digest)
        abort();
    if (strcmp(berth_ref_manifest_ref(&r), r.has_digest ? r.digest.str : r.tag) != 0)
        abort();

    n = berth_ref_format(buf, sizeof(buf), &r);
    if (n >= sizeof(buf) || strlen(buf) != n)
        abort();
    if ((notag ? berth_ref_parse_notag(&again, buf) : berth_ref_parse(&again, buf)) != 0 ||
        !same(&r, &again))
        abort();
    n = berth_ref_format_short(buf, sizeof(buf), &r);
    if (n >= sizeof(buf))
        abort();
    if ((notag ? berth_ref_parse_notag(&again, buf) : berth_ref_parse(&again, buf)) != 0 ||
        !same(&r, &again))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size > 4096)
        return 0;
    if ((s = malloc(size + 1)) == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0'; /* an embedded NUL just ends the string early */
    check(s, 0);
    check(s, 1);
    (void)berth_registry_is_local(s);
    free(s);
    return 0;
}

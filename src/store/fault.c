/*
 * Fault injection (see fault.h): parses BERTH_FAULTS once into a small table
 * of rules and answers berth_fault_check() for the store's failure sites.
 * Invariant: with BERTH_FAULTS unset every check returns 0 after reading one
 * static flag; with it set, the decision for the Nth call of a site depends
 * only on the rules, the seed and N, never on timing or thread.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#define RULES_MAX 16
#define SITE_MAX 32
#define NOSPC_SUFFIX "_nospc"

enum { UNREAD, OFF, ON };

struct rule {
    char site[SITE_MAX];
    int err;        /* errno to fail with; 0: kill the process instead */
    uint64_t nth;   /* fail exactly this call (1-based); 0 with a probability */
    double p;       /* probability of failing each call */
    uint64_t salt;  /* hash of the site, mixed into the random decision */
    uint64_t calls; /* calls of the site seen by this rule (atomic) */
};

static int state = UNREAD; /* read with __atomic_load_n; written once under `once` */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct rule rules[RULES_MAX];
static size_t nrules;
static uint64_t seed;

/* splitmix64's finalizer: a well-mixed 64-bit value from any input. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* "name:N", "name:pX" (name may end in _nospc) or "name:kN" → a rule; 0 ok,
 * -1 malformed. */
static int parse_rule(struct rule *r, const char *entry, size_t len)
{
    const char *colon = memchr(entry, ':', len);
    size_t name_len, slen = strlen(NOSPC_SUFFIX);
    char num[32], *end;

    if (!colon || colon == entry || (size_t)(entry + len - colon - 1) >= sizeof(num))
        return -1;
    name_len = (size_t)(colon - entry);
    memcpy(num, colon + 1, (size_t)(entry + len - colon - 1));
    num[entry + len - colon - 1] = '\0';
    memset(r, 0, sizeof(*r));
    r->err = EIO;
    if (name_len > slen && memcmp(colon - slen, NOSPC_SUFFIX, slen) == 0) {
        r->err = ENOSPC;
        name_len -= slen;
    }
    if (name_len >= sizeof(r->site))
        return -1;
    memcpy(r->site, entry, name_len);
    r->site[name_len] = '\0';
    r->salt = hash_str(r->site);
    errno = 0;
    if (num[0] == 'p') {
        r->p = strtod(num + 1, &end);
        if (errno || end == num + 1 || *end || !(r->p >= 0.0 && r->p <= 1.0))
            return -1;
    } else {
        const char *n = num;

        if (num[0] == 'k') {
            r->err = 0;
            n++;
        }
        r->nth = strtoull(n, &end, 10);
        if (errno || end == n || *end || r->nth == 0 || n[0] == '-')
            return -1;
    }
    return 0;
}

static void load(void)
{
    const char *spec = getenv("BERTH_FAULTS");
    const char *s, *seed_str = getenv("BERTH_FAULT_SEED");
    size_t len;

    if (seed_str)
        seed = strtoull(seed_str, NULL, 10);
    for (s = spec; s && *s && nrules < RULES_MAX; s += len + (s[len] == ',')) {
        len = strcspn(s, ",");
        if (len && parse_rule(&rules[nrules], s, len) == 0)
            nrules++;
    }
    __atomic_store_n(&state, nrules ? ON : OFF, __ATOMIC_RELEASE);
}

int berth_fault_check(const char *site)
{
    uint64_t n;
    size_t i;
    int fail = 0, err = 0;

    if (__builtin_expect(__atomic_load_n(&state, __ATOMIC_RELAXED) == OFF, 1))
        return 0;
    pthread_once(&once, load);
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == OFF)
        return 0;
    for (i = 0; i < nrules; i++) {
        struct rule *r = &rules[i];

        if (strcmp(r->site, site) != 0)
            continue;
        n = __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
        if (r->nth ? n == r->nth
                   : (double)(mix(seed ^ r->salt ^ mix(n)) >> 11) * 0x1.0p-53 < r->p) {
            fail = 1;
            err = r->err;
        }
    }
    if (!fail)
        return 0;
    if (err == 0)
        raise(SIGKILL); /* a crash at a chosen point (kill -9 tests) */
    errno = err;
    return -1;
}

/*
 * Option parsing shared by the subcommands (see cli.h): getopt_long with its
 * own messages turned off and berth's "berth: <cmd>: ..." form instead.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int berth_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    char opts[128];
    const char *rest = shortopts;
    const char *bad;
    int c;

    /* A leading ':' makes getopt tell a missing value (':') from an unknown
     * option ('?'); keep a leading '+' (stop at the first operand) first. */
    if (*rest == '+') {
        snprintf(opts, sizeof(opts), "+:%s", rest + 1);
    } else {
        snprintf(opts, sizeof(opts), ":%s", rest);
    }
    opterr = 0;
    c = getopt_long(argc, argv, opts, longopts, NULL);
    if (c != '?' && c != ':')
        return c;
    bad = argv[optind - 1 < argc ? optind - 1 : argc - 1];
    if (c == ':')
        fprintf(stderr, "berth: %s: option '%s' needs a value\n", argv[0], bad);
    else if (optopt && !(bad[0] == '-' && bad[1] == '-'))
        fprintf(stderr, "berth: %s: unknown option '-%c'\n", argv[0], optopt);
    else
        fprintf(stderr, "berth: %s: unknown option '%s'\n", argv[0], bad);
    return '?';
}

int berth_cli_common_opt(struct berth_cli_common *c, int opt, const char *arg)
{
    switch (opt) {
    case BERTH_OPT_INSECURE:
        c->insecure = 1;
        return 1;
    case 'q':
        c->quiet = 1;
        return 1;
    case BERTH_OPT_JSON:
        c->json = 1;
        return 1;
    case 'j':
        c->parallel = atoi(arg);
        if (c->parallel < 1 || c->parallel > 32) {
            fprintf(stderr, "berth: --parallel takes 1 to 32\n");
            return -1;
        }
        return 1;
    }
    return 0;
}

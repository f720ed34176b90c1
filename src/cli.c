/*
 * Option parsing shared by the subcommands (see cli.h): getopt_long with its
 * own messages turned off and berth's "berth: <cmd>: ..." form instead.
 */
#include "cli.h"

#include <stdio.h>
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

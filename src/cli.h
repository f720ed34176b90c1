/*
 * Helpers shared by every subcommand's option parsing, so all commands
 * answer a bad option the same way: "berth: <cmd>: unknown option '--x'" on
 * stderr, then the caller prints its usage and exits 2.
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <getopt.h>

/* getopt_long with berth's messages: returns like getopt_long, with '?' for
 * an unknown option or a missing value (the message already printed).
 * argv[0] is the command name. */
int berth_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* The options most client commands share: --insecure, -q/--quiet, --json
 * and -j/--parallel N. A command lists the ones it takes in its longopts
 * with these codes ('q' and 'j' for the short forms). */
#define BERTH_OPT_INSECURE 0x1000
#define BERTH_OPT_JSON 0x1001

struct berth_cli_common {
    int insecure, quiet, json, parallel;
};

/* Record option opt (its value arg) in c: 1 if it was a common option, 0 if
 * not, -1 for a bad value (the message already printed; exit 2). */
int berth_cli_common_opt(struct berth_cli_common *c, int opt, const char *arg);

#endif

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

#endif

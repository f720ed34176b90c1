/* The subcommands of the berth binary: each takes argc/argv after the
 * command name (argv[0] is the command name) and returns the exit code. */
#ifndef BERTH_COMMANDS_H
#define BERTH_COMMANDS_H

#define BERTH_VERSION "0.1.0"

int cmd_serve(int argc, char **argv);   /* src/server/cmd_serve.c */
int cmd_version(int argc, char **argv); /* src/main.c */

#endif

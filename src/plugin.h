/*
 * Running a client command: the client (src/client, with libcurl, libarchive
 * and the libraries behind them) is the module berth-client.so, loaded on
 * demand so that `berth serve` never maps it (issue 3: start time, idle RSS).
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

/* The module's file name, looked for next to the real executable
 * (/proc/self/exe, symlinks resolved), then in ../lib/berth/ from there. */
#define BERTH_CLIENT_MODULE "berth-client.so"

/* Load the module and run its command `symbol` (e.g. "cmd_push") with
 * argc/argv; returns the command's exit code, or 1 after a message on stderr
 * when the module is missing, unloadable, of another version or lacks the
 * command. */
int berth_plugin_run(const char *symbol, int argc, char **argv);

#endif

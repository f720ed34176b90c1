/*
 * berth's modules, loaded on demand so that a process maps only the
 * libraries it uses (issue 3: start time, idle RSS): the client (src/client,
 * with libcurl, libarchive and the libraries behind them) is berth-client.so;
 * HTTPS and token authentication (GnuTLS, libcrypto) are berth-tls.so
 * (src/tlsmod).
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

/* The module's file name, looked for next to the real executable
 * (/proc/self/exe, symlinks resolved), then in ../lib/berth/ from there. */
#define BERTH_CLIENT_MODULE "berth-client.so"

/* dlopen() the module `file` from those places (never dlclose()d). NULL
 * after one line on stderr saying that `needed_by` (e.g. "the client
 * commands") needs it, when it is missing or does not load. The caller
 * checks its version. */
void *berth_plugin_open(const char *file, const char *needed_by);

/* Load the module and run its command `symbol` (e.g. "cmd_push") with
 * argc/argv; returns the command's exit code, or 1 after a message on stderr
 * when the module is missing, unloadable, of another version or lacks the
 * command. */
int berth_plugin_run(const char *symbol, int argc, char **argv);

#endif

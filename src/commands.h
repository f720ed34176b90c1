/* The subcommands of the berth binary: each takes argc/argv after the
 * command name (argv[0] is the command name) and returns the exit code.
 * The server-side ones are linked into the executable; the client ones
 * (src/client) live in the module berth-client.so, which src/main.c loads
 * through src/plugin.c only when one of them runs. */
#ifndef BERTH_COMMANDS_H
#define BERTH_COMMANDS_H

#define BERTH_VERSION "0.1.0"

/* in the executable */
int cmd_serve(int argc, char **argv);   /* src/server/cmd_serve.c */
int cmd_version(int argc, char **argv); /* src/main.c */
int cmd_gc(int argc, char **argv);      /* src/server/cmd_gc.c */
int cmd_du(int argc, char **argv);      /* src/server/cmd_du.c */
int cmd_fsck(int argc, char **argv);    /* src/server/cmd_fsck.c */

/* in berth-client.so (exported by src/client.ver; found with dlsym by name) */
int cmd_ref(int argc, char **argv);     /* src/client/cmd_ref.c */
int cmd_login(int argc, char **argv);   /* src/client/cmd_login.c */
int cmd_logout(int argc, char **argv);  /* src/client/cmd_login.c */
int cmd_ls(int argc, char **argv);      /* src/client/cmd_ls.c */
int cmd_tags(int argc, char **argv);    /* src/client/cmd_tags.c */
int cmd_inspect(int argc, char **argv); /* src/client/cmd_inspect.c */
int cmd_digest(int argc, char **argv);  /* src/client/cmd_digest.c */
int cmd_rm(int argc, char **argv);      /* src/client/cmd_rm.c */
int cmd_push(int argc, char **argv);    /* src/client/cmd_push.c */
int cmd_pull(int argc, char **argv);    /* src/client/cmd_pull.c */
int cmd_cp(int argc, char **argv);      /* src/client/cmd_cp.c */
int cmd_tag(int argc, char **argv);     /* src/client/cmd_tag.c */
extern const char berth_client_version[]; /* src/client/module.c: BERTH_VERSION */

#endif

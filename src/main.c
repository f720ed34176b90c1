/*
 * berth: one binary, a table of subcommands (git's commands[]). `berth serve`
 * runs the registry; the others are the client. Each command lives in its own
 * cmd_<name>.c and returns the process exit code: 0 success, 1 the operation
 * failed, 2 usage error.
 *
 * The client commands are compiled into the module berth-client.so, not into
 * this executable, so the server never loads libcurl and libarchive. Here
 * each of them is a trampoline of the same name that loads the module and
 * runs the module's cmd_<name> (src/plugin.c).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "plugin.h"

#define CLIENT_COMMAND(fn) \
    int fn(int argc, char **argv) { return berth_plugin_run(#fn, argc, argv); }

CLIENT_COMMAND(cmd_ref)
CLIENT_COMMAND(cmd_login)
CLIENT_COMMAND(cmd_logout)
CLIENT_COMMAND(cmd_ls)
CLIENT_COMMAND(cmd_tags)
CLIENT_COMMAND(cmd_inspect)
CLIENT_COMMAND(cmd_digest)
CLIENT_COMMAND(cmd_rm)
CLIENT_COMMAND(cmd_tag)
CLIENT_COMMAND(cmd_push)
CLIENT_COMMAND(cmd_pull)
CLIENT_COMMAND(cmd_cp)

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "serve", cmd_serve, "run the registry server" },
    { "version", cmd_version, "print the version" },
    { "gc", cmd_gc, "collect garbage: free blobs no image uses (safe while serving)" },
    { "du", cmd_du, "show storage used per repository and namespace" },
    { "fsck", cmd_fsck, "check (and --repair) blobs, manifests, tags and links" },
    { "ref", cmd_ref, "show the parts of an image reference" },
    { "login", cmd_login, "log in to a registry" },
    { "logout", cmd_logout, "remove saved registry credentials" },
    { "ls", cmd_ls, "list the repositories of a registry" },
    { "tags", cmd_tags, "list the tags of a repository" },
    { "inspect", cmd_inspect, "show an image's manifest, config, platforms and layers" },
    { "digest", cmd_digest, "print the manifest digest of a reference" },
    { "rm", cmd_rm, "delete tags or manifests from a registry" },
    { "tag", cmd_tag, "give a registry image more names (--semver moves 2.1, 2, latest)" },
    { "push", cmd_push, "push an OCI layout, OCI archive or docker-archive to a registry" },
    { "pull", cmd_pull, "pull an image into an OCI layout, OCI archive or docker-archive" },
    { "cp", cmd_cp, "copy an image between registries (or local formats)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: berth <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'berth <command> --help' describes a command.\n");
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("berth %s\n", BERTH_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "berth: '%s' is not a berth command; see 'berth --help'\n", argv[1]);
    return 2;
}

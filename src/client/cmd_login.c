/*
 * `berth login` and `berth logout`: save or remove registry credentials in
 * Docker's config.json (through creds.c, so docker and podman share them).
 * Login checks the credentials against the registry (GET /v2/ with the
 * Basic or token flow) before saving anything. The password comes from -p,
 * from stdin (--password-stdin) or from a terminal prompt with echo off; it
 * is wiped from memory after use and never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "client/creds.h"
#include "client/registry.h"
#include "commands.h"
#include "core/error.h"
#include "core/reference.h"

static const char login_usage[] =
    "usage: berth login [REGISTRY] [-u USER] [-p PASSWORD | --password-stdin]\n"
    "\n"
    "Log in to a registry (default docker.io). The credentials are checked\n"
    "against the registry, then saved in Docker's config.json ($DOCKER_CONFIG,\n"
    "else ~/.docker), or given to its credential helper, so docker, podman and\n"
    "berth share logins. Without -u or a password, berth asks on the terminal\n"
    "(the password is not echoed).\n"
    "\n"
    "options:\n"
    "  -u, --username USER   user name\n"
    "  -p, --password PASS   password (visible to other users: prefer --password-stdin)\n"
    "      --password-stdin  read the password from stdin\n"
    "      --insecure        allow plain HTTP and unverified TLS for this registry\n"
    "  -q, --quiet           print nothing on success\n"
    "  -h, --help            show this help\n";

static const char logout_usage[] =
    "usage: berth logout [REGISTRY]\n"
    "\n"
    "Remove the saved credentials for a registry (default docker.io).\n"
    "\n"
    "options:\n"
    "  -q, --quiet  print nothing on success\n"
    "  -h, --help   show this help\n";

/* "https://index.docker.io/v1/" → "docker.io"; "host:port/" → "host:port". */
static void registry_arg(char *out, size_t size, const char *arg)
{
    size_t n;

    if (strncasecmp(arg, "https://", 8) == 0)
        arg += 8;
    else if (strncasecmp(arg, "http://", 7) == 0)
        arg += 7;
    n = strcspn(arg, "/");
    if (n >= size)
        n = size - 1;
    memcpy(out, arg, n);
    out[n] = '\0';
    if (!strcasecmp(out, "index.docker.io") || !strcasecmp(out, "registry-1.docker.io") ||
        !strcasecmp(out, "registry.hub.docker.com"))
        snprintf(out, size, "%s", BERTH_DEFAULT_REGISTRY);
}

/* Read one line into buf without its newline. 0, or -1 at EOF/error. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    char c;
    ssize_t got;

    for (;;) {
        got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (c == '\n')
            break;
        if (n + 1 < size)
            buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (got <= 0 && n == 0) ? -1 : 0;
}

/* Ask on the terminal; with echo off for secrets. */
static int prompt(const char *question, char *buf, size_t size, int secret)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), restore = 0, rc;

    if (fd < 0)
        return -1;
    if (write(fd, question, strlen(question)) < 0) {
        close(fd);
        return -1;
    }
    if (secret && tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    rc = read_line(fd, buf, size);
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &old);
        if (write(fd, "\n", 1) < 0)
            rc = -1;
    }
    close(fd);
    return rc;
}

int cmd_login(int argc, char **argv)
{
    enum { OPT_STDIN = 256, OPT_INSECURE };
    static const struct option opts[] = {
        { "username", required_argument, NULL, 'u' },
        { "password", required_argument, NULL, 'p' },
        { "password-stdin", no_argument, NULL, OPT_STDIN },
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct berth_registry_opts ropts = { 0 };
    struct berth_registry *r = NULL;
    struct berth_creds creds;
    char registry[256];
    const char *user = NULL, *pass = NULL;
    int from_stdin = 0, quiet = 0, c, rc = 1;

    memset(&creds, 0, sizeof(creds));
    optind = 1;
    while ((c = berth_getopt(argc, argv, "u:p:qh", opts)) != -1) {
        switch (c) {
        case 'u':
            user = optarg;
            break;
        case 'p':
            pass = optarg;
            break;
        case OPT_STDIN:
            from_stdin = 1;
            break;
        case OPT_INSECURE:
            ropts.insecure = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(login_usage, stdout);
            return 0;
        default:
            fputs(login_usage, stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "berth: login takes one registry, not '%s'\n", argv[optind + 1]);
        return 2;
    }
    if (pass && from_stdin) {
        fprintf(stderr, "berth: --password and --password-stdin are mutually exclusive\n");
        return 2;
    }
    if (from_stdin && !user) {
        fprintf(stderr, "berth: --password-stdin needs --username\n");
        return 2;
    }
    registry_arg(registry, sizeof(registry), optind < argc ? argv[optind] : "docker.io");
    if (!registry[0]) {
        fprintf(stderr, "berth: empty registry name\n");
        return 2;
    }
    if (pass)
        fprintf(stderr, "berth: WARNING! Using --password on the command line is insecure; "
                        "use --password-stdin\n");

    if (user) {
        snprintf(creds.username, sizeof(creds.username), "%s", user);
    } else if (prompt("Username: ", creds.username, sizeof(creds.username), 0) < 0) {
        fprintf(stderr, "berth: no terminal to ask for a username; use -u USER\n");
        rc = 2;
        goto done;
    }
    if (pass) {
        snprintf(creds.password, sizeof(creds.password), "%s", pass);
    } else if (from_stdin) {
        if (read_line(STDIN_FILENO, creds.password, sizeof(creds.password)) < 0) {
            fprintf(stderr, "berth: no password on stdin\n");
            goto done;
        }
    } else if (prompt("Password: ", creds.password, sizeof(creds.password), 1) < 0) {
        fprintf(stderr, "berth: no terminal to ask for a password; use --password-stdin\n");
        rc = 2;
        goto done;
    }
    if (!creds.username[0] || !creds.password[0]) {
        fprintf(stderr, "berth: user name and password must not be empty\n");
        goto done;
    }

    ropts.username = creds.username;
    ropts.password = creds.password;
    if (berth_registry_new(&r, registry, &ropts) < 0 || berth_registry_ping(r) < 0) {
        fprintf(stderr, "berth: login to '%s' failed: %s\n", registry, berth_error_msg());
        goto done;
    }
    if (berth_creds_store(registry, &creds) < 0) {
        fprintf(stderr, "berth: saving credentials: %s\n", berth_error_msg());
        goto done;
    }
    if (!quiet)
        printf("Login Succeeded\n");
    rc = 0;
done:
    berth_registry_free(r);
    berth_creds_clear(&creds);
    return rc;
}

int cmd_logout(int argc, char **argv)
{
    static const struct option opts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char registry[256];
    int quiet = 0, c, error;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "qh", opts)) != -1) {
        switch (c) {
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(logout_usage, stdout);
            return 0;
        default:
            fputs(logout_usage, stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "berth: logout takes one registry, not '%s'\n", argv[optind + 1]);
        return 2;
    }
    registry_arg(registry, sizeof(registry), optind < argc ? argv[optind] : "docker.io");
    error = berth_creds_erase(registry);
    if (error == BERTH_ENOTFOUND) {
        if (!quiet)
            fprintf(stderr, "berth: not logged in to '%s'\n", registry);
        return 0;
    }
    if (error < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        return 1;
    }
    if (!quiet)
        printf("Removing login credentials for %s\n", registry);
    return 0;
}

/*
 * Loading berth's modules: berth-client.so here, berth-tls.so through
 * src/tlsmod/host.c. The client module is self-contained: it links its own
 * copy of src/core and src/cli.c, exports only cmd_* and its version
 * (src/client.ver) and is linked with -z defs, so it takes no symbol from
 * the executable. The two copies of core state (the thread-local error
 * object among them) never meet: a client command runs entirely inside the
 * module and hands back only its exit code.
 *
 * The module is never dlclose()d: libcurl and OpenSSL keep thread-local and
 * atexit state that must outlive the command (and ASan's leak report at exit
 * needs the module's symbols).
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "plugin.h"

typedef int (*command_fn)(int argc, char **argv);

/* dir: the directory of the running executable, symlinks resolved. */
static int exe_dir(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    char *slash;

    if (n <= 0)
        return -1;
    dir[n] = '\0';
    if (!(slash = strrchr(dir, '/')))
        return -1;
    *slash = '\0';
    return 0;
}

void *berth_plugin_open(const char *file, const char *needed_by)
{
    static const char *const places[] = { "", "/../lib/berth" }; /* under dir */
    char dir[PATH_MAX], path[PATH_MAX + 64];
    void *h;

    if (exe_dir(dir, sizeof dir) < 0) {
        fprintf(stderr, "berth: cannot find the berth executable's directory "
                        "(/proc/self/exe) to load %s\n", file);
        return NULL;
    }
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        snprintf(path, sizeof path, "%s%s/%s", dir, places[i], file);
        if (access(path, F_OK) < 0)
            continue;
        /* Lazy binding like the executable's own; -z defs at link time
         * already proved every symbol resolvable. */
        if (!(h = dlopen(path, RTLD_LAZY | RTLD_LOCAL)))
            fprintf(stderr, "berth: cannot load %s: %s\n", file, dlerror());
        return h;
    }
    fprintf(stderr, "berth: %s need %s next to the berth executable "
                    "(%s/%s or %s/../lib/berth/%s); it is built with berth (make)\n",
            needed_by, file, dir, file, dir, file);
    return NULL;
}

/* The loaded client module, or NULL after printing why not. */
static void *load(void)
{
    const char *version;
    void *h = berth_plugin_open(BERTH_CLIENT_MODULE, "the client commands");

    if (!h)
        return NULL;
    version = dlsym(h, "berth_client_version");
    if (!version || strcmp(version, BERTH_VERSION) != 0) {
        fprintf(stderr, "berth: %s is version %s, this berth is %s: install both "
                        "from the same build\n", BERTH_CLIENT_MODULE,
                version ? version : "(unknown)", BERTH_VERSION);
        return NULL;
    }
    return h;
}

int berth_plugin_run(const char *symbol, int argc, char **argv)
{
    void *h = load(), *sym;
    command_fn fn;

    if (!h)
        return 1;
    if (!(sym = dlsym(h, symbol))) {
        fprintf(stderr, "berth: %s has no command '%s': %s\n", BERTH_CLIENT_MODULE, symbol,
                dlerror());
        return 1;
    }
    memcpy(&fn, &sym, sizeof fn); /* ISO C has no object → function pointer cast */
    return fn(argc, argv);
}

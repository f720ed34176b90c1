/*
 * `berth serve`: read the configuration (defaults < YAML file < REGISTRY_*
 * environment < flags), open the store, start the HTTP server, then wait for
 * signals on the main thread. SIGTERM/SIGINT stop gracefully: stop accepting,
 * let in-flight requests finish (bounded), close the database. The main
 * thread also runs the periodic purge of expired upload sessions; garbage
 * collection runs on its own thread (gcrun.c).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authn.h"
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "core/error.h"
#include "gcrun.h"
#include "rules.h"
#include "log.h"
#include "selfsign.h"
#include "server.h"
#include "store/store.h"
#include "tlsmod/tlsmod.h"

extern char **environ;

#define STOP_GRACE_MS 10000

static const char usage_text[] =
    "usage: berth serve [options]\n"
    "\n"
    "Run the registry: the OCI Distribution API v1.1 / Docker Registry HTTP API v2.\n"
    "\n"
    "options:\n"
    "  --addr HOST:PORT     listen address (http.addr; default 0.0.0.0:5000)\n"
    "  --root DIR           data directory (storage.filesystem.rootdirectory;\n"
    "                       default ./var/berth)\n"
    "  --config FILE        YAML configuration with distribution's config.yml keys\n"
    "  --log-level LEVEL    error, warn, info or debug (log.level; default info)\n"
    "  --manifest-max SIZE  largest manifest accepted (berth.manifestmaxbytes;\n"
    "                       default 4MiB)\n"
    "  --threads N          worker threads (berth.threads; default one per CPU)\n"
    "  --no-delete          refuse DELETE of manifests and blobs (storage.delete.enabled)\n"
    "  --tls-self-signed HOST[,HOST...]\n"
    "                       serve HTTPS with a certificate for these names/IPs, signed\n"
    "                       by a CA made once in ROOT/tls (clients trust ROOT/tls/ca.crt)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Precedence: defaults < config file < REGISTRY_* environment variables\n"
    "(e.g. REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_DELETE_ENABLED) < flags.\n"
    "Unknown configuration keys are reported as warnings.\n";

static void warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    berth_log_warn("%s", msg);
}

static void purge_uploads(struct berth_store *st, const struct berth_config *cfg)
{
    int removed = 0;

    if (cfg->purge_dryrun) {
        berth_log_info("upload purge: dry run, nothing removed");
        return;
    }
    if (berth_upload_purge(st, cfg->purge_age_ms / 1000, &removed) < 0)
        berth_log_error("upload purge failed: %s", berth_error_msg());
    else if (removed)
        berth_log_info("upload purge: removed %d expired session%s", removed,
                       removed == 1 ? "" : "s");
}

/* --tls-self-signed: make (once) or reuse ROOT/tls and point http.tls.* at it. */
static int self_signed(struct berth_config *cfg, const char *hosts)
{
    char dir[4096], cert[4200], key[4200], ca[4200];
    int created = 0;

    snprintf(dir, sizeof(dir), "%s/tls", cfg->root);
    snprintf(cert, sizeof(cert), "%s/" BERTH_SELFSIGN_CERT, dir);
    snprintf(key, sizeof(key), "%s/" BERTH_SELFSIGN_KEY, dir);
    snprintf(ca, sizeof(ca), "%s/" BERTH_SELFSIGN_CA, dir);
    if (berth_selfsign_ensure(dir, hosts, &created) < 0 ||
        berth_config_set(cfg, "http.tls.certificate", cert, warn_cb, NULL) < 0 ||
        berth_config_set(cfg, "http.tls.key", key, warn_cb, NULL) < 0) {
        berth_log_error("tls: %s", berth_error_msg());
        return -1;
    }
    berth_log_info("tls: %s self-signed certificate for %s; clients trust the CA %s "
                   "(docker: /etc/docker/certs.d/HOST:PORT/ca.crt; podman/skopeo: --cert-dir "
                   "with ca.crt; curl: --cacert)",
                   created ? "generated a" : "reusing the", hosts, ca);
    return 0;
}

/* HTTPS and token authentication are in berth-tls.so (src/tlsmod): loaded
 * only when the configuration asks for one of them. */
static int needs_tls_module(const struct berth_config *cfg, const char *tls_hosts)
{
    return tls_hosts || cfg->tls.certificate || cfg->tls.key || cfg->tls.nclientcas ||
           cfg->auth.token_builtin || cfg->auth.token_realm;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_serve(int argc, char **argv)
{
    enum { OPT_ADDR = 256, OPT_ROOT, OPT_CONFIG, OPT_LOG, OPT_MMAX, OPT_THREADS, OPT_NODEL,
           OPT_TLSSS };
    static const struct option opts[] = {
        { "addr", required_argument, NULL, OPT_ADDR },
        { "root", required_argument, NULL, OPT_ROOT },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "log-level", required_argument, NULL, OPT_LOG },
        { "manifest-max", required_argument, NULL, OPT_MMAX },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "no-delete", no_argument, NULL, OPT_NODEL },
        { "tls-self-signed", required_argument, NULL, OPT_TLSSS },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct { const char *key, *value; } flags[8];
    size_t nflags = 0;
    const char *config_path = NULL;
    const char *tls_hosts = NULL; /* --tls-self-signed */
    struct berth_config cfg;
    struct berth_store_config scfg = { 0 };
    struct berth_server_config hcfg = { 0 };
    struct berth_store *st = NULL;
    struct berth_server *srv = NULL;
    struct berth_authn *authn = NULL;
    struct berth_gcrun *gc = NULL;
    sigset_t sigs;
    int64_t next_purge;
    int c, rc = 1;

    optind = 1;
    while ((c = berth_getopt(argc, argv, "h", opts)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_CONFIG:
            config_path = optarg;
            continue;
        case OPT_TLSSS:
            tls_hosts = optarg;
            continue;
        case OPT_ADDR:
            key = "http.addr";
            break;
        case OPT_ROOT:
            key = "storage.filesystem.rootdirectory";
            break;
        case OPT_LOG:
            key = "log.level";
            break;
        case OPT_MMAX:
            key = "berth.manifestmaxbytes";
            break;
        case OPT_THREADS:
            key = "berth.threads";
            break;
        case OPT_NODEL:
            flags[nflags].key = "storage.delete.enabled";
            flags[nflags++].value = "false";
            continue;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
        if (nflags < sizeof(flags) / sizeof(flags[0])) {
            flags[nflags].key = key;
            flags[nflags++].value = optarg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "berth: serve takes no arguments ('%s')\n", argv[optind]);
        return 2;
    }

    berth_config_init(&cfg);
    if (config_path && berth_config_load(&cfg, config_path, warn_cb, NULL) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        rc = 2;
        goto done;
    }
    if (berth_config_env(&cfg, environ, warn_cb, NULL) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg());
        rc = 2;
        goto done;
    }
    for (size_t i = 0; i < nflags; i++) {
        if (berth_config_set(&cfg, flags[i].key, flags[i].value, warn_cb, NULL) < 0) {
            fprintf(stderr, "berth: %s\n", berth_error_msg());
            rc = 2;
            goto done;
        }
    }
    berth_log_level = cfg.log_level;
    /* A missing or stale module is one line on stderr, before anything else
     * happens. */
    if (needs_tls_module(&cfg, tls_hosts) && berth_tls_module_load() < 0)
        goto done;

    /* Signals are taken synchronously by this thread only: block them before
     * any other thread starts so the server threads inherit the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    scfg.root = cfg.root;
    if (berth_store_open(&st, &scfg) < 0) {
        berth_log_error("cannot open storage at '%s': %s", cfg.root, berth_error_msg());
        goto done;
    }

    if (tls_hosts && self_signed(&cfg, tls_hosts) < 0) {
        rc = 2;
        goto done;
    }
    hcfg.addr = cfg.addr;
    hcfg.delete_enabled = cfg.delete_enabled;
    hcfg.manifest_max = (size_t)cfg.manifest_max;
    hcfg.threads = cfg.threads;
    hcfg.access_log = cfg.access_log;
    hcfg.tls_certificate = cfg.tls.certificate;
    hcfg.tls_key = cfg.tls.key;
    hcfg.tls_clientcas = cfg.tls.clientcas;
    hcfg.ntls_clientcas = cfg.tls.nclientcas;
    hcfg.tls_minimum = cfg.tls.minimum;
    /* After the store: a generated token signing key goes into its root. */
    if (berth_authn_new(&authn, &cfg, warn_cb, NULL) < 0) {
        berth_log_error("auth: %s", berth_error_msg());
        rc = 2;
        goto done;
    }
    hcfg.authn = authn;
    /* Before the server: the admin endpoint drives it. */
    if (berth_gcrun_new(&gc, st, &cfg.maint) < 0) {
        berth_log_error("gc: %s", berth_error_msg());
        goto done;
    }
    hcfg.maint = &cfg.maint;
    if (cfg.maint.nimmutable)
        berth_store_set_tag_guard(st, berth_rules_tag_removal_guard, &cfg.maint);
    hcfg.gcrun = gc;
    if (berth_server_start(&srv, &hcfg, st) < 0) {
        berth_log_error("cannot listen on '%s': %s", cfg.addr, berth_error_msg());
        goto done;
    }
    berth_log_info("berth %s listening on %s (port %u), root %s, delete %s", BERTH_VERSION,
                   cfg.addr, (unsigned)berth_server_port(srv), cfg.root,
                   cfg.delete_enabled ? "enabled" : "disabled");
    if (cfg.maint.gc_interval_ms > 0)
        berth_log_info("gc: every %llds (grace %llds%s), first run in %llds",
                       (long long)(cfg.maint.gc_interval_ms / 1000),
                       (long long)(cfg.maint.gc_grace_ms / 1000),
                       cfg.maint.gc_untagged ? ", untagged manifests too" : "",
                       (long long)(cfg.maint.gc_interval_ms / 1000));

    /* What start-up allocated and freed (configuration, a new database's
     * creation, schema parsing) goes back to the system instead of staying
     * in the idle server's heap (issue 3: idle RSS). */
    malloc_trim(0);

    /* The first purge runs right after the server is listening, not before:
     * it walks uploads/ and deletes rows (an fsync each), which is start-up
     * latency for nothing; serving while it runs is what the periodic purge
     * does anyway (sessions in use are skipped). */
    next_purge = now_ms();
    for (;;) {
        int64_t wait = cfg.purge_enabled ? next_purge - now_ms() : 3600 * 1000;
        struct timespec ts;
        int sig;

        if (wait < 0)
            wait = 0;
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (wait % 1000) * 1000000;
        sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            berth_log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) {
            if (berth_server_reload_tls(srv) == 0)
                berth_log_info("received SIGHUP: nothing to reload yet");
            continue;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (cfg.purge_enabled && now_ms() >= next_purge) {
            purge_uploads(st, &cfg);
            next_purge = now_ms() + cfg.purge_interval_ms;
        }
    }
    rc = 0;
done:
    /* a collection stops after its batch, so requests waiting on it end */
    berth_gcrun_stop(gc);
    berth_server_stop(srv, STOP_GRACE_MS);
    berth_gcrun_free(gc); /* before the store: its thread uses it */
    berth_authn_free(authn); /* after the server: requests in flight use it */
    berth_store_free(st);
    berth_config_dispose(&cfg);
    return rc;
}

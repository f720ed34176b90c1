/*
 * The HTTP side of `berth serve`: berth's own HTTP/1.1 server (http.c), the route table
 * and the handlers. cmd_serve.c reads the configuration, opens the store and
 * calls berth_server_start(); on SIGTERM/SIGINT it calls berth_server_stop().
 */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

struct berth_authn;
struct berth_gcrun;
struct berth_maint_config;

struct berth_server_config {
    const char *addr;          /* "host:port", "[v6]:port" or ":port"; default "0.0.0.0:5000" */
    int delete_enabled;        /* storage.delete.enabled: DELETE endpoints answer 405 UNSUPPORTED when 0 */
    size_t manifest_max;       /* bytes; 0 = BERTH_MANIFEST_MAX_DEFAULT */
    unsigned threads;          /* worker threads; 0 = number of CPUs */
    int access_log;            /* one line per request at info level */
    struct berth_authn *authn; /* authentication and access control (authn.h), borrowed:
                                  it must outlive the server; NULL: everyone may do everything */
    /* http.tls.*: HTTPS when tls_certificate is set (then tls_key too); borrowed */
    const char *tls_certificate, *tls_key;
    char *const *tls_clientcas; /* client certificates required when ntls_clientcas > 0 */
    size_t ntls_clientcas;
    int tls_minimum;            /* 12 or 13 */
    /* berth.immutabletags and berth.quotas (rules.h) and the garbage
     * collector the admin endpoint drives (gcrun.h); borrowed, may be NULL */
    const struct berth_maint_config *maint;
    struct berth_gcrun *gcrun;
};

struct berth_server;

/* Bind and start serving in background threads. Errors: BERTH_ERROR with a
 * message (address in use, bad address). */
int berth_server_start(struct berth_server **out, const struct berth_server_config *cfg,
                       struct berth_store *st);
/* The port actually bound (useful with port 0). */
uint16_t berth_server_port(const struct berth_server *srv);
/* Graceful stop: stop accepting, let in-flight requests finish (bounded
 * wait of `grace_ms`), then free. NULL does nothing. */
void berth_server_stop(struct berth_server *srv, unsigned grace_ms);
/* SIGHUP: re-read the TLS certificate and key; open connections keep theirs,
 * new handshakes get the new pair. Failure keeps the old pair. Logs what it
 * did. Returns 0 when TLS is off (nothing to reload), 1 reloaded, -1 failed. */
int berth_server_reload_tls(struct berth_server *srv);

#endif

/*
 * The HTTP side of `berth serve`: a libmicrohttpd daemon, the route table
 * and the handlers. cmd_serve.c reads the configuration, opens the store and
 * calls berth_server_start(); on SIGTERM/SIGINT it calls berth_server_stop().
 */
#ifndef BERTH_SERVER_H
#define BERTH_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../store/store.h"

struct berth_server_config {
    const char *addr;          /* "host:port", "[v6]:port" or ":port"; default "0.0.0.0:5000" */
    int delete_enabled;        /* storage.delete.enabled: DELETE endpoints answer 405 UNSUPPORTED when 0 */
    size_t manifest_max;       /* bytes; 0 = BERTH_MANIFEST_MAX_DEFAULT */
    unsigned threads;          /* worker threads; 0 = number of CPUs */
    int access_log;            /* one line per request at info level */
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

#endif

/*
 * The identity of berth-client.so: src/plugin.c refuses a module whose
 * version differs from the executable's (a stale module left next to a newer
 * berth would otherwise run old client code under a new version string).
 */
#include "commands.h"

const char berth_client_version[] = BERTH_VERSION;

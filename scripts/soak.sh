#!/bin/sh
# make soak: concurrent pushes, pulls, tag moves, deletes and garbage collection against
# build/berth (or $BERTH_BIN) for $SOAK_SECONDS (default 600), then a full
# consistency check. Prints operations per kind and errors; exit 1 on any.
# Knobs: SOAK_SECONDS, SOAK_THREADS (4), SOAK_REPOS (4), SOAK_SEED (1),
# SOAK_GC_INTERVAL (5 s; 0: no garbage collection), SOAK_GC_GRACE (30s).
cd "$(dirname "$0")/.." || exit 2
BERTH_BIN="${BERTH_BIN:-$PWD/build/berth}" exec /usr/bin/python3 tests/e2e/soak.py

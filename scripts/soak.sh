#!/bin/sh
# make soak: concurrent pushes, pulls, tag moves and deletes against
# build/berth (or $BERTH_BIN) for $SOAK_SECONDS (default 600), then a full
# consistency check. Prints operations per kind and errors; exit 1 on any.
# Knobs: SOAK_SECONDS, SOAK_THREADS (4), SOAK_REPOS (4), SOAK_SEED (1).
cd "$(dirname "$0")/.." || exit 2
BERTH_BIN="${BERTH_BIN:-$PWD/build/berth}" exec /usr/bin/python3 tests/e2e/soak.py

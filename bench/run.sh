#!/bin/sh
# bench/run.sh quick|full [--only berth|distribution]
# berth vs distribution (Debian docker-registry) side by side on loopback.
# Builds the C helpers (loadgen: HTTP/1.1 keep-alive load generator with HEAD
# support; sendsrv: sendfile server for the loopback ceiling; firstok: time from
# exec to the first 200) with gcc -O2 into build/bench/, then runs bench/bench.py,
# which starts both registries on fresh storage, runs the same workloads against
# each, prints the table and writes bench/results/<date>.md (quick mode:
# <date>-quick.md) plus raw samples under bench/results/raw/ (gitignored).
# quick: 1 run per figure and small sizes (under two minutes); full: 3 runs,
# 1 GiB blobs, 4 x 256 MiB image, 10,000 tags and repositories (~15+ minutes).
set -eu
cd "$(dirname "$0")/.."
mode=${1:-quick}
[ $# -gt 0 ] && shift
case "$mode" in quick|full) ;; *) echo "usage: bench/run.sh quick|full [--only berth|distribution]" >&2; exit 2 ;; esac

mkdir -p build/bench
CFLAGS="-O2 -g -Wall -Wextra -Wshadow"
for t in loadgen sendsrv firstok; do
    if [ ! -x "build/bench/$t" ] || [ "bench/$t.c" -nt "build/bench/$t" ]; then
        gcc $CFLAGS -o "build/bench/$t" "bench/$t.c" -lpthread -lm
    fi
done
for tool in skopeo curl openssl dd unshare; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/deps.sh bench)" >&2; exit 1; }
done
# 1,000 idle connections plus the load generator's sockets
ulimit -n 8192 2>/dev/null || true
exec /usr/bin/python3 bench/bench.py "$mode" "$@"

#!/bin/sh
# Build every fuzz/fuzz_*.c with clang + libFuzzer + ASan/UBSan into build-fuzz/
# and run each for ${1:-60} seconds over its seed corpus (fuzz/corpus/<target>/,
# read-only) with its dictionary (fuzz/dict/<t>.dict). New inputs are kept across
# runs in build-fuzz/corpus/<target>/ (not in git: copy a telling one into the seed
# dir by hand). A crash exits non-zero naming the artifact; turn it into a unit test.
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]   e.g. scripts/fuzz.sh 30 jwt scope
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
only="$*"
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-fuzz"
cd "$root"

if ! command -v clang >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y clang >/dev/null
    else
        echo "fuzz: clang not found (apt-get install clang, as root)" >&2
        exit 2
    fi
fi

CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fno-omit-frame-pointer -fno-sanitize-recover=all"
PKGS="gnutls jansson sqlite3 yaml-0.1 libcrypto libcurl libarchive"
PKG_CFLAGS=$(pkg-config --cflags $PKGS 2>/dev/null || true)
LIBS="$(pkg-config --libs $PKGS 2>/dev/null || true) -lcrypt -lpthread"
mkdir -p "$out/artifacts" "$out/obj"

# The library, instrumented for coverage, as an archive: each target pulls in only the
# objects it needs. A file that does not compile yet is skipped, not fatal.
rm -f "$out/lib.a" "$out"/obj/*.o
for c in src/core/*.c src/store/*.c src/server/*.c src/client/*.c; do
    [ -f "$c" ] || continue
    case "$c" in */cmd_*.c) continue ;; esac
    o="$out/obj/$(echo "$c" | tr / _ | sed 's/\.c$/.o/')"
    clang $CFLAGS $PKG_CFLAGS -fsanitize=fuzzer-no-link,address,undefined -c -o "$o" "$c" \
        2>"$o.err" || echo "fuzz: warning: $c does not compile, skipped" >&2
done
ar rcs "$out/lib.a" "$out"/obj/*.o

status=0
for src in fuzz/fuzz_*.c; do
    target=$(basename "$src" .c)
    t=${target#fuzz_}
    if [ -n "$only" ] && ! echo " $only " | grep -q " $t "; then
        continue
    fi
    echo "fuzz: building $target"
    if ! clang $CFLAGS $PKG_CFLAGS -fsanitize=fuzzer,address,undefined -o "$out/$target" \
        "$src" "$out/lib.a" $LIBS; then
        echo "fuzz: $target FAILED to build" >&2
        status=1
        continue
    fi
    corpus="$out/corpus/$target"
    seeds="fuzz/corpus/$target"
    mkdir -p "$corpus" "$seeds"
    dict=""
    [ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
    echo "fuzz: running $target for ${secs}s"
    log="$out/$target.log"
    if ! "$out/$target" $dict -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" "$corpus" "$seeds" \
        >"$log" 2>&1; then
        artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/.* to //')
        echo "fuzz: $target FAILED: artifact ${artifact:-unknown} (log $log)" >&2
        tail -40 "$log" >&2
        status=1
        continue
    fi
    execs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$log" | grep -o "[0-9]*$" || true)
    echo "fuzz: $target ok: ${execs:-?} execs, $(ls "$corpus" | wc -l) new inputs kept"
done
exit $status

#!/bin/sh
# Run every test suite of `make test` and end with one line "N passed, N failed".
#  1. unit tests (cmocka) of the normal and the ASan+UBSan build;
#  2. fuzz corpus replays (ASan+UBSan build);
#  3. end-to-end tests (pytest) against build-san/berth: raw HTTP and real clients.
# Exit status 0 only when nothing failed. E2E="-k expr" style filters go in $PYTEST_ARGS.
cd "$(dirname "$0")/.." || exit 2
passed=0
failed=0
failures=""
logdir=build/test-logs
mkdir -p "$logdir"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

count_cmocka() { # $1 = label, $2 = binary
    log="$logdir/$1.log"
    timeout 600 "$2" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1 # crashed, leaked or timed out: count it
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" != 0 ]; then
        failures="$failures $1"
        echo "FAIL $1 (exit $rc) — $log:"
        tail -30 "$log"
    else
        echo "ok   $1 ($p)"
    fi
}

for build in build build-san; do
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        count_cmocka "$build-$(basename "$t")" "$t"
    done
done

for r in build-san/fuzz/*-replay; do
    [ -x "$r" ] || continue
    name=$(basename "$r")
    if timeout 600 "$r" >"$logdir/$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name ($(tail -1 "$logdir/$name.log"))"
    else
        failed=$((failed + 1))
        failures="$failures $name"
        echo "FAIL $name"
        tail -30 "$logdir/$name.log"
    fi
done

# End to end: Debian's pytest runs under /usr/bin/python3.
xml=build/e2e-junit.xml
rm -f "$xml"
BERTH_BIN="${BERTH_BIN:-$PWD/build-san/berth}" /usr/bin/python3 -m pytest tests/e2e \
    -p no:cacheprovider -q -rfE --junitxml="$xml" $PYTEST_ARGS
rc=$?
if [ -f "$xml" ]; then
    set -- $(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f, sk)
PY
)
    passed=$((passed + $1))
    failed=$((failed + $2))
    skipped=$3
    [ "$2" != 0 ] && failures="$failures e2e"
else
    failed=$((failed + 1))
    failures="$failures e2e(no-report,exit-$rc)"
    skipped=0
fi
if [ "$rc" != 0 ] && [ "$rc" != 5 ] && [ "${2:-0}" = 0 ] && [ -f "$xml" ]; then
    failed=$((failed + 1)) # pytest itself failed (collection error, crash)
    failures="$failures e2e(exit-$rc)"
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed, ${skipped:-0} skipped"
[ "$failed" = 0 ]

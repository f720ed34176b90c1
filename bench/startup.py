#!/usr/bin/env python3
"""What `berth serve` costs before it does any work, and what a client
command costs to start (issue 3: idle RSS <= 4 MiB, start to first 200
<= 5 ms).

For each binary given (default build/berth; runs interleaved) it prints:
  - shared objects mapped by an idle `berth serve` (from /proc/PID/maps),
  - idle VmRSS, Pss and USS (private pages; /proc/PID/smaps_rollup) 0.5 s
    after the first 200, and the Pss of the largest mappings (where the
    memory goes; Pss and USS depend on what else runs and shares libraries),
  - start to first 200 on GET /v2/: median of N runs of bench/firstok on a
    fresh root (the way `make bench` measures it: the database is created),
    and on an existing root (a restart); with the server's own CPU time and
    page faults until then (bench/firstok prints them: steadier than wall
    time on a shared machine),
  - `berth ref --help` wall time: median of N runs (a client command start).

Usage: bench/startup.py [-n RUNS] [--top K] [--json] [--serve-arg=ARG...] BERTH...
Needs build/bench/firstok (bench/run.sh builds it) or FIRSTOK=path.
With --serve-arg=--tls-self-signed=127.0.0.1 (HTTPS: berth-tls.so is loaded)
the idle figures are measured over HTTPS; firstok speaks plain HTTP only, so
the start-to-first-200 rows are left out.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRSTOK = os.environ.get("FIRSTOK", os.path.join(ROOT, "build", "bench", "firstok"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE_ARGS = []  # --serve-arg: extra `berth serve` arguments (e.g. --threads 1)


def serve_cmd(berth, root, port):
    return [berth, "serve", "--addr", f"127.0.0.1:{port}", "--root", root,
            "--log-level", "warn"] + SERVE_ARGS


def tls():
    return any(a.startswith("--tls-self-signed") for a in SERVE_ARGS)


def wait_ok(proc, port, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if tls():
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2,
                                                context=ssl._create_unverified_context())
            else:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            ok = c.getresponse().status == 200
            c.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("no 200 on /v2/")


def smaps(pid):
    """{mapping path: Pss kB} and the rollup's Rss/Pss."""
    per, cur = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                cur = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Pss:":
                per[cur] = per.get(cur, 0) + int(parts[1])
    roll = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:", "Anonymous:"):
                roll[parts[0].rstrip(":")] = int(parts[1])
    return per, roll


def idle(berth, top):
    root = tempfile.mkdtemp(prefix="berth-startup-")
    port = free_port()
    proc = subprocess.Popen(serve_cmd(berth, root, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ok(proc, port)
        time.sleep(0.5)
        per, roll = smaps(proc.pid)
        with open(f"/proc/{proc.pid}/status") as f:
            st = dict(line.split(":", 1) for line in f)
        libs = sorted({p for p in per if ".so" in os.path.basename(p)})
        return {
            "shared_objects": len(libs),
            "libs": [os.path.basename(p) for p in libs],
            "VmRSS_kB": int(st["VmRSS"].split()[0]),
            "Pss_kB": roll.get("Pss"),
            "Anonymous_kB": roll.get("Anonymous"),
            "USS_kB": roll.get("Private_Clean", 0) + roll.get("Private_Dirty", 0),
            "threads": int(st["Threads"]),
            "top_pss_kB": sorted(((v, os.path.basename(k)) for k, v in per.items()),
                                 reverse=True)[:top],
        }
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def first_ok(berth, runs, root=None):
    """Start-to-first-200 times: on a fresh root each run (as make bench
    measures it: the database is created), or on the given existing root."""
    out = []
    if tls():
        return out
    for _ in range(runs):
        d = root or tempfile.mkdtemp(prefix="berth-startup-")
        port = free_port()
        r = subprocess.run([FIRSTOK, str(port), "10000"] + serve_cmd(berth, d, port),
                           capture_output=True, text=True, timeout=60)
        res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
        if not root:
            shutil.rmtree(d, ignore_errors=True)
        if res.get("ms") is not None:
            out.append(res)
    return out


def summary(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    if not v:
        return {"median": float("nan"), "min": float("nan"), "n": 0}
    return {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "n": len(v)}


def client_start(berth, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run([berth, "ref", "--help"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return [float("nan")]  # a server-only scratch build has no client
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("berth", nargs="*", default=[os.path.join(ROOT, "build", "berth")])
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for berth serve (repeat: --serve-arg=--threads --serve-arg=1)")
    a = ap.parse_args()
    SERVE_ARGS.extend(a.serve_arg)
    bins = [os.path.abspath(b) for b in a.berth]
    # Interleaved (one run of each binary in turn) so that load from other
    # processes on a shared machine hits every binary alike.
    firsts, again, clients = ({b: [] for b in bins} for _ in range(3))
    roots = {b: tempfile.mkdtemp(prefix="berth-startup-") for b in bins}
    try:
        for b in bins:
            first_ok(b, 1, roots[b])  # creates the database
        for _ in range(a.n):
            for b in bins:
                firsts[b] += first_ok(b, 1)
                again[b] += first_ok(b, 1, roots[b])
                clients[b] += client_start(b, 1)
    finally:
        for d in roots.values():
            shutil.rmtree(d, ignore_errors=True)
    for b in bins:
        res = idle(b, a.top)
        f, c = firsts[b], clients[b]
        res["first_200_existing_root_ms"] = summary(again[b], "ms")
        res["first_200_existing_root_cpu_ms"] = summary(again[b], "cpu_ms")
        res["first_200_ms"] = summary(f, "ms")
        res["first_200_cpu_ms"] = summary(f, "cpu_ms")
        res["first_200_faults"] = summary(f, "faults")
        res["ref_help_ms"] = {"median": round(statistics.median(c), 2), "min": round(min(c), 2),
                              "n": len(c)}
        if a.json:
            print(json.dumps({"berth": b, **res}))
            continue
        print(f"== {b}")
        print(f"shared objects mapped by serve: {res['shared_objects']}")
        print(f"idle VmRSS {res['VmRSS_kB'] / 1024:.1f} MiB, Pss {res['Pss_kB'] / 1024:.1f} MiB, "
              f"USS {res['USS_kB'] / 1024:.1f} MiB, anonymous {res['Anonymous_kB'] / 1024:.1f} MiB, "
              f"{res['threads']} threads")
        print("largest Pss: " + ", ".join(f"{n} {v}k" for v, n in res["top_pss_kB"]))
        w, c, pf = res["first_200_ms"], res["first_200_cpu_ms"], res["first_200_faults"]
        print(f"start to first 200 (fresh root): median {w['median']} ms (min {w['min']}, "
              f"n={w['n']}); server CPU {c['median']} ms (min {c['min']}); "
              f"{pf['median']:.0f} page faults")
        w, c = res["first_200_existing_root_ms"], res["first_200_existing_root_cpu_ms"]
        print(f"  on an existing root: median {w['median']} ms (min {w['min']}); "
              f"server CPU {c['median']} ms (min {c['min']})")
        print(f"berth ref --help: median {res['ref_help_ms']['median']} ms "
              f"(min {res['ref_help_ms']['min']}, n={res['ref_help_ms']['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Where berth spends its time on the small-request path.

Starts build/berth on a fresh root under build/bench/work, pushes one small
image (bench.py's populate, with few tags), then runs loadgen (64 connections,
2 threads) against one endpoint while `perf record -g` samples berth, and
prints the flat profile (self time); report.txt also has the call chains.
CALLGRAPH=dwarf,16384 gives call chains through libraries without frame
pointers (GnuTLS, libc).

Usage: bench/profile.py [--secs 10] [--what manifest-get|manifest-head|blob-head|v2|tags]
Output: build/bench/profile/perf.data and report.txt. Needs perf (linux-perf).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--what", default="manifest-get",
                    choices=["manifest-get", "manifest-head", "blob-head", "v2", "tags"])
    args = ap.parse_args()
    out = os.path.join(bench.BUILD, "profile")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    os.makedirs(bench.WORK, exist_ok=True)
    b = bench.Bench("quick", "berth", out)
    b.cfg = dict(b.cfg, ntags=100, nrepos=10)
    reg = b.registry("berth")
    root = b.fresh_root("berth", "profile")
    reg.start(root)
    try:
        info = b.populate(reg)
        repo = info["repo"]
        method, path, hdrs = {
            "manifest-get": ("GET", f"/v2/{repo}/manifests/{info['mdig']}", [f"Accept: {bench.ACCEPT}"]),
            "manifest-head": ("HEAD", f"/v2/{repo}/manifests/latest", [f"Accept: {bench.ACCEPT}"]),
            "blob-head": ("HEAD", f"/v2/{repo}/blobs/{info['ldig']}", []),
            "v2": ("GET", "/v2/", []),
            "tags": ("GET", f"/v2/{repo}/tags/list", []),
        }[args.what]
        cmd = [bench.LOADGEN, "-c", "64", "-t", "2", "-d", str(args.secs), "-w", "1", "-m", method]
        for h in hdrs:
            cmd += ["-H", h]
        lg = subprocess.Popen(cmd + [reg.url(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
        time.sleep(1)
        data = os.path.join(out, "perf.data")
        perf = subprocess.run(["perf", "record", "--call-graph", os.environ.get("CALLGRAPH", "fp"), "-F", "999", "-o", data, "-p", str(reg.proc.pid),
                               "--", "sleep", str(max(1, args.secs - 1))],
                              capture_output=True, text=True, timeout=args.secs + 60)
        res, _ = lg.communicate(timeout=args.secs + 60)
        print("loadgen:", res.strip())
        if perf.returncode != 0:
            print(perf.stderr)
            return
        flat = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "-g", "none",
                               "--percent-limit", "0.7", "--sort", "dso,symbol"],
                              capture_output=True, text=True, timeout=120).stdout
        chains = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "-g",
                                 "caller,0.5,callee,function,percent", "--percent-limit", "3",
                                 "--sort", "symbol"],
                                capture_output=True, text=True, timeout=120).stdout
        with open(os.path.join(out, "report.txt"), "w") as f:
            f.write(flat + "\n\n" + chains)
        print("\n".join(line for line in flat.splitlines() if line and not line.startswith("#"))[:6000])
        print("full report:", os.path.relpath(os.path.join(out, "report.txt"), bench.ROOT))
    finally:
        reg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

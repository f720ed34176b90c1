#!/usr/bin/python3
"""How long a garbage collection takes, and what it does to a push.

Starts `berth serve` ($BERTH, else build/berth) on a fresh root, keeps N
images tagged (config + one layer each) and uploads N unreferenced blobs,
then runs `berth gc --grace 0s [--batch B]` in another process while one
client keeps pushing small blobs, and prints the collection's time and the
pushes' median and worst latency during it (and before it, for scale).

    /usr/bin/python3 bench/gc.py [N_BLOBS] [BATCH]   # defaults 5000, 500
"""
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from conftest import Server  # noqa: E402
from regclient import RegClient  # noqa: E402


def pushes(c, stop, out):
    i = 0
    while not stop.is_set():
        t0 = time.monotonic()
        c.push_blob("bench/live", b"push %d %f" % (i, t0))
        out.append(time.monotonic() - t0)
        i += 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    batch = sys.argv[2] if len(sys.argv) > 2 else "500"
    binary = os.environ.get("BERTH") or os.path.join(HERE, "..", "build", "berth")
    os.environ["BERTH_BIN"] = os.path.abspath(binary)
    with tempfile.TemporaryDirectory(prefix="berth-gcbench-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        srv = Server(root, extra_args=["--log-level", "warn"]).start()
        try:
            c = RegClient(srv)
            for i in range(n // 10):
                c.make_image("bench/keep%d" % (i % 10), tag="t%d" % i, seed=i)
            for i in range(n):
                c.push_blob("bench/garbage", b"garbage %d" % i)
            before, during, stop = [], [], threading.Event()
            t = threading.Thread(target=pushes, args=(RegClient(srv), stop, before))
            t.start()
            time.sleep(2)
            stop.set()
            t.join()
            stop.clear()
            t = threading.Thread(target=pushes, args=(RegClient(srv), stop, during))
            t.start()
            t0 = time.monotonic()
            r = subprocess.run([binary, "gc", "--root", srv.root, "--grace", "0s", "--batch",
                                batch, "-q"], capture_output=True, text=True)
            secs = time.monotonic() - t0
            stop.set()
            t.join()
            if r.returncode != 0:
                raise SystemExit("berth gc failed: " + r.stderr)
            print("gc of %d unreferenced blobs (batch %s): %.2f s; %s" % (
                n, batch, secs, r.stdout.strip().splitlines()[-1] if r.stdout else ""))
            for name, v in (("before", before), ("during", during)):
                print("push latency %s gc: median %.1f ms, max %.1f ms (%d pushes)" % (
                    name, statistics.median(v) * 1e3, max(v) * 1e3, len(v)))
        finally:
            srv.stop()


if __name__ == "__main__":
    main()

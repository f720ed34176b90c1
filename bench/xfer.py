#!/usr/bin/python3
"""One registry's CPU per GB for one kind of transfer, repeated: the quick
A/B tool behind the issue 3 upload and download figures (make bench runs
the whole side-by-side set).

  python3 bench/xfer.py BERTH {mono|chunked|download} [MIB] [RUNS]

Starts BERTH serve on a fresh root under build/work/xfer, makes a random
blob of MIB MiB (default 1024, cached in build/work/xfer.blob), and per run:
mono = POST + curl PUT ?digest= of the whole file; chunked = 16 MiB PATCHes
written from memory (bench.Client.send_file) + PUT; download = curl GET of
the blob. Prints MB/s and the server's own CPU-seconds per GB. Uploads delete
the blob and run `berth gc --grace 0s` between runs. BERTH_DIRECT_IO and
other environment variables pass through to the server.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    berth, mode = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3] if len(sys.argv) > 3 else 1024) << 20
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    work = os.path.join(bench.BUILD, "work")
    root, blob = os.path.join(work, "xfer"), os.path.join(work, "xfer.blob")
    os.makedirs(work, exist_ok=True)
    subprocess.run(["rm", "-rf", root], check=True)
    dig = bench.random_file(blob, size)
    port = bench.free_port()
    p = subprocess.Popen([berth, "serve", "--addr", f"127.0.0.1:{port}", "--root", root,
                          "--log-level", "warn"])
    try:
        bench.wait_port(port)
        cl = bench.Client(port)
        url = f"http://127.0.0.1:{port}"

        def cpu():
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / bench.CLK_TCK

        def mono():
            bench.monolithic_upload(cl, url, "xfer/blob", blob, dig)

        def chunked():
            bench.chunked_upload(cl, "xfer/blob", blob, size, 16 << 20, dig)

        def download():
            subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null",
                            f"{url}/v2/xfer/blob/blobs/{dig}"], check=True)

        if mode == "download":
            mono()
        for _ in range(runs):
            c0, t0 = cpu(), time.monotonic()
            {"mono": mono, "chunked": chunked, "download": download}[mode]()
            secs, c = time.monotonic() - t0, cpu() - c0
            print(f"{mode}: {size / secs / 1e6:.0f} MB/s  {c / (size / 1e9):.2f} CPU-s/GB",
                  flush=True)
            if mode != "download":
                cl.req("DELETE", f"/v2/xfer/blob/blobs/{dig}")
                subprocess.run([berth, "gc", "--root", root, "--grace", "0s", "-q"],
                               check=True, stdout=subprocess.DEVNULL)
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()

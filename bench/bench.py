#!/usr/bin/python3
"""berth vs distribution, side by side, in one run on one machine.

Called by bench/run.sh (which builds the C helpers first). Starts berth and
Debian's docker-registry (distribution 2.8) on loopback, each with fresh
storage under build/bench/work, runs the same workloads against each and
prints one markdown table (also written to bench/results/<date>.md, raw
samples to bench/results/raw/<date-time>/):

  - skopeo push of a 4-layer image (random data, gzip-typed, --preserve-digests,
    a private blob-info cache per run) and its pull, MB/s;
  - curl monolithic upload (POST + PUT ?digest=), chunked upload (16 MiB
    PATCHes), download (curl -o /dev/null), 16 parallel downloads, MB/s;
  - loadgen (64 connections, 2 threads): manifest HEAD by tag, manifest GET by
    digest, blob HEAD, GET /v2/, tags/list of a repository with 10k tags,
    _catalog?n=100 with 10k repositories: req/s and p99;
  - memory (VmRSS idle, VmHWM after the push, RSS with 1,000 idle keep-alive
    connections) and the time from exec to the first 200 on /v2/;
  - each registry's own CPU time (utime+stime from /proc/<pid>/stat, sampled
    around every workload): CPU-seconds per GB and requests per CPU-second;
  - this machine's ceilings in the same run: sha256/sha512 of one core
    (openssl speed), loopback sendfile to curl (bench/sendsrv.c), disk write
    (dd conv=fsync).
Every figure is the median of the runs (3 in full mode, 1 in quick mode).
MB = 10^6 bytes, GB = 10^9 bytes, MiB = 2^20 bytes.

Usage: bench.py quick|full [--only berth|distribution]
"""
import argparse
import concurrent.futures
import datetime
import gzip
import hashlib
import http.client
import json
import mmap
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build", "bench")
DATA = os.path.join(BUILD, "data")      # generated inputs, kept between runs
WORK = os.path.join(BUILD, "work")      # registry storage, wiped every run
BERTH = os.environ.get("BERTH", os.path.join(ROOT, "build", "berth"))  # override to compare builds
DISTRIBUTION = "/usr/bin/docker-registry"
LOADGEN = os.path.join(BUILD, "loadgen")
SENDSRV = os.path.join(BUILD, "sendsrv")
FIRSTOK = os.path.join(BUILD, "firstok")
MiB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = OCI_MANIFEST + ", application/vnd.oci.image.index.v1+json, " \
    "application/vnd.docker.distribution.manifest.v2+json"

MODES = {
    # quick: one run, small sizes, under two minutes for both registries
    "quick": dict(runs=1, layers=4, layer_mib=32, blob_mib=256, chunk_mib=16, par_n=16,
                  par_mib=16, lg_secs=1.5, lg_warm=0.5, ntags=500, nrepos=300,
                  idle_conns=1000, starts=5, sha_secs=1),
    "full": dict(runs=3, layers=4, layer_mib=256, blob_mib=1024, chunk_mib=16, par_n=16,
                 par_mib=64, lg_secs=5, lg_warm=1, ntags=10000, nrepos=10000,
                 idle_conns=1000, starts=10, sha_secs=3),
}


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout, **kw):
    """subprocess.run with a bound and captured text output."""
    return subprocess.run(cmd, timeout=timeout, capture_output=True, text=True, **kw)


# --------------------------------------------------------------------------
# Registries under test


class Registry:
    """One registry process: start on a fresh root, CPU and memory probes."""

    def __init__(self, kind, rawdir, accesslog=False):
        self.kind, self.rawdir, self.accesslog = kind, rawdir, accesslog
        self.proc = None
        self.port = None
        self.starts = 0

    def command(self, root, port):
        if self.kind == "berth":
            cmd = [BERTH, "serve", "--addr", f"127.0.0.1:{port}", "--root", root,
                   "--log-level", "info" if self.accesslog else "warn"]
            return cmd
        cfg = root.rstrip("/") + ".yml"
        with open(cfg, "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: berth-bench-not-a-secret
""")
        return [DISTRIBUTION, "serve", cfg]

    def start(self, root):
        self.stop()
        self.port = free_port()
        self.starts += 1
        logf = open(os.path.join(self.rawdir, f"{self.kind}-{self.starts}.log"), "wb")
        self.proc = subprocess.Popen(self.command(root, self.port), stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} at start")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.kind} did not answer /v2/ within 30 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def cpu(self):
        """CPU-seconds (user+system) the registry has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def mem_mib(self, key):
        """VmRSS or VmHWM in MiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"


class Client:
    """Keep-alive HTTP client for the control-plane requests (one per thread)."""

    def __init__(self, port):
        self.port, self.c = port, None

    def conn(self):
        if self.c is None:
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self.c

    def close(self):
        if self.c:
            self.c.close()
        self.c = None

    def req(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                c = self.conn()
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                return r.status, r, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise

    def send_file(self, method, path, fd, off, n, headers):
        """Request whose body is n bytes of fd at off, written from the
        client's memory (the file mapped) as curl, skopeo and docker write
        theirs. Not sendfile(2): over loopback a sendfile sender's segments
        go out when the receiver's ACKs arrive, that is in the registry's
        softirq context, which billed ~0.5 CPU-s/GB of the client's TCP
        transmit work to the registry (measured 2026-11-27: berth chunked
        upload 1.94-2.16 CPU-s/GB with sendfile, 1.42-1.56 with this)."""
        self.close()  # a fresh connection: no half-read state
        c = self.conn()
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(n))
        c.endheaders()
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
            c.sock.sendall(memoryview(m)[off:off + n])
        r = c.getresponse()
        data = r.read()
        return r.status, r, data


def location_path(resp):
    """The Location header as a path?query on the same host."""
    loc = resp.getheader("Location")
    if not loc:
        raise RuntimeError("no Location header")
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def add_query(path, q):
    return path + ("&" if "?" in path else "?") + q


def start_upload(cl, repo):
    st, r, body = cl.req("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    if st != 202:
        raise RuntimeError(f"POST upload {repo}: {st} {body[:200]!r}")
    return location_path(r)


def upload_bytes(cl, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = start_upload(cl, repo)
    st, _, body = cl.req("PUT", add_query(loc, "digest=" + digest), body=data,
                         headers={"Content-Type": "application/octet-stream"})
    if st != 201:
        raise RuntimeError(f"PUT blob {repo}: {st} {body[:200]!r}")
    return digest


def upload_file_part(cl, repo, fd, off, n, digest):
    loc = start_upload(cl, repo)
    st, _, body = cl.send_file("PUT", add_query(loc, "digest=" + digest), fd, off, n,
                               {"Content-Type": "application/octet-stream"})
    if st != 201:
        raise RuntimeError(f"PUT blob {repo}: {st} {body[:200]!r}")


# --------------------------------------------------------------------------
# Inputs (generated offline, cached in build/bench/data)


def monolithic_upload(cl, base_url, repo, path, digest):
    """POST, then curl PUT ?digest= with the whole file as the body."""
    loc = start_upload(cl, repo)
    r = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
             "-H", "Content-Type: application/octet-stream", "-H", "Expect:",
             "-T", path, base_url + add_query(loc, "digest=" + digest)], timeout=900)
    if r.stdout.strip() != "201":
        raise RuntimeError(f"monolithic upload: {r.stdout} {r.stderr}")


def chunked_upload(cl, repo, path, size, chunk, digest):
    """POST, PATCHes of `chunk` bytes with Content-Range, then PUT ?digest=."""
    loc = start_upload(cl, repo)
    with open(path, "rb") as f:
        for off in range(0, size, chunk):
            n = min(chunk, size - off)
            st, r, body = cl.send_file("PATCH", loc, f.fileno(), off, n, {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{off}-{off + n - 1}"})
            if st != 202:
                raise RuntimeError(f"PATCH at {off}: {st} {body[:200]!r}")
            loc = location_path(r)
    st, _, body = cl.req("PUT", add_query(loc, "digest=" + digest),
                         headers={"Content-Length": "0"})
    if st != 201:
        raise RuntimeError(f"final PUT: {st} {body[:200]!r}")


def random_file(path, size):
    """A file of `size` random bytes (kept if it already has that size);
    returns its sha256 digest (cached next to it)."""
    dfile = path + ".sha256"
    if os.path.exists(path) and os.path.getsize(path) == size and os.path.exists(dfile):
        return open(dfile).read().strip()
    h = hashlib.sha256()
    with open(path + ".tmp", "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 8 * MiB))
            h.update(b)
            f.write(b)
            left -= len(b)
    os.rename(path + ".tmp", path)
    digest = "sha256:" + h.hexdigest()
    with open(dfile, "w") as f:
        f.write(digest + "\n")
    return digest


def part_digests(path, part, n):
    """sha256 of each of the n consecutive `part`-byte slices of a file (cached)."""
    cache = f"{path}.parts-{part}-{n}.json"
    if os.path.exists(cache):
        return json.load(open(cache))
    out = []
    with open(path, "rb") as f:
        for _ in range(n):
            out.append("sha256:" + hashlib.sha256(f.read(part)).hexdigest())
    json.dump(out, open(cache, "w"))
    return out


def oci_layout(layers, layer_mib):
    """An OCI image layout with `layers` layers, each a tar of one file of
    random data, gzip-compressed at level 0 (stored blocks: incompressible
    data, but a real gzip stream, so skopeo does not recompress it)."""
    d = os.path.join(DATA, f"oci-{layers}x{layer_mib}")
    if os.path.exists(os.path.join(d, "index.json")):
        return d, json.load(open(os.path.join(d, "sizes.json")))
    shutil.rmtree(d, ignore_errors=True)
    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, hexd), "wb") as f:
            f.write(data)
        return "sha256:" + hexd, len(data)

    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        size = layer_mib * MiB
        info = tarfile.TarInfo(f"layer{i}/data.bin")
        info.size, info.mtime, info.mode = size, 0, 0o644
        head = info.tobuf(format=tarfile.USTAR_FORMAT)
        pad = b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024
        diff, comp = hashlib.sha256(), hashlib.sha256()
        z = zlib.compressobj(0, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper
        tmp = os.path.join(blobs, "tmp")
        n = 0
        with open(tmp, "wb") as f:
            def emit(raw):
                nonlocal n
                diff.update(raw)
                out = z.compress(raw)
                comp.update(out)
                f.write(out)
                n += len(out)
            emit(head)
            left = size
            while left:
                b = os.urandom(min(left, 8 * MiB))
                emit(b)
                left -= len(b)
            emit(pad)
            out = z.flush()
            comp.update(out)
            f.write(out)
            n += len(out)
        os.rename(tmp, os.path.join(blobs, comp.hexdigest()))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": "sha256:" + comp.hexdigest(), "size": n})
        diff_ids.append("sha256:" + diff.hexdigest())
        total += n
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdig, csize = put(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cdig, "size": csize},
                           "layers": descs}).encode()
    mdig, msize = put(manifest)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    sizes = {"layers_bytes": total, "total_bytes": total + csize + msize}
    json.dump(sizes, open(os.path.join(d, "sizes.json"), "w"))
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": mdig, "size": msize,
             "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
    return d, sizes


# --------------------------------------------------------------------------
# Machine ceilings


def ceilings(cfg, blob, par_file, rawdir):
    out = {}
    for algo in ("sha256", "sha512"):
        r = run(["openssl", "speed", "-evp", algo, "-bytes", "1048576", "-seconds",
                 str(cfg["sha_secs"])], timeout=60)
        for line in r.stdout.splitlines():
            if line.startswith(algo):
                out[f"{algo}_MBps"] = float(line.split()[-1].rstrip("k")) / 1000
    port = free_port()
    srv = subprocess.Popen([SENDSRV, str(port), blob], start_new_session=True)
    try:
        wait_port(port)
        speeds = []
        for _ in range(3):
            r = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}",
                     f"http://127.0.0.1:{port}/x"], timeout=120)
            speeds.append(float(r.stdout) / 1e6)
        out["loopback_MBps"] = statistics.median(speeds)
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    srv = subprocess.Popen([SENDSRV, str(port), par_file], start_new_session=True)
    try:
        wait_port(port)
        speeds = []
        for _ in range(3):
            mbps, _ = parallel_curl([f"http://127.0.0.1:{port}/x"] * cfg["par_n"])
            speeds.append(mbps)
        out["loopback_par_MBps"] = statistics.median(speeds)
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    ddf = os.path.join(WORK, "dd.tmp")
    t = time.monotonic()
    run(["dd", "if=/dev/zero", f"of={ddf}", "bs=1M", f"count={cfg['blob_mib']}",
         "conv=fsync", "status=none"], timeout=300)
    out["disk_write_MBps"] = cfg["blob_mib"] * MiB / (time.monotonic() - t) / 1e6
    os.unlink(ddf)
    log("ceilings:", json.dumps({k: round(v) for k, v in out.items()}))
    return out


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"nothing listening on {port}")


def parallel_curl(urls):
    """Download all urls at once with one curl each; (MB/s overall, bytes)."""
    t = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", u],
                              stdout=subprocess.PIPE, text=True) for u in urls]
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"curl failed ({p.returncode})")
        total += int(out)
    return total / (time.monotonic() - t) / 1e6, total


# --------------------------------------------------------------------------
# Workloads


class Bench:
    def __init__(self, mode, only, rawdir):
        self.mode, self.cfg, self.rawdir = mode, MODES[mode], rawdir
        self.kinds = [only] if only else ["berth", "distribution"]
        self.samples = []
        self.extra = {}
        self.regs = []
        self.rawf = open(os.path.join(rawdir, "samples.jsonl"), "a")

    def record(self, kind, workload, run_no, **metrics):
        s = dict(registry=kind, workload=workload, run=run_no, **metrics)
        self.samples.append(s)
        self.rawf.write(json.dumps(s) + "\n")
        self.rawf.flush()
        log(kind, workload, run_no, json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                                 for k, v in metrics.items()}))

    def registry(self, kind, **kw):
        r = Registry(kind, self.rawdir, **kw)
        self.regs.append(r)
        return r

    def fresh_root(self, kind, tag):
        root = os.path.join(WORK, f"{kind}-{tag}")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root + ".yml", ignore_errors=True)
        return root

    # ---- big data: push/pull, uploads, downloads ----
    def big(self, layout, sizes, blob_a, dig_a, blob_b, dig_b, par_digs):
        cfg = self.cfg
        blob_bytes = cfg["blob_mib"] * MiB
        for run_no in range(1, cfg["runs"] + 1):
            for kind in (self.kinds if run_no % 2 else self.kinds[::-1]):
                reg = self.registry(kind)
                root = self.fresh_root(kind, f"big{run_no}")
                reg.start(root)
                try:
                    time.sleep(0.5)
                    self.record(kind, "memory idle", run_no, rss_mib=reg.mem_mib("VmRSS"))
                    self.big_run(reg, run_no, layout, sizes, blob_a, dig_a, blob_b, dig_b,
                                 par_digs, blob_bytes)
                finally:
                    reg.stop()
                    shutil.rmtree(root, ignore_errors=True)

    def measure(self, reg, fn):
        c0, t0 = reg.cpu(), time.monotonic()
        extra = fn()
        return time.monotonic() - t0, reg.cpu() - c0, extra

    def big_run(self, reg, run_no, layout, sizes, blob_a, dig_a, blob_b, dig_b, par_digs,
                blob_bytes):
        kind, cfg = reg.kind, self.cfg
        repo = "bench/big"
        dest = f"127.0.0.1:{reg.port}/{repo}:run{run_no}"
        # skopeo push and pull; the blob-info cache is private to each copy
        push = skopeo_cmd(["copy", "--dest-tls-verify=false", "--preserve-digests",
                           f"oci:{layout}:bench", f"docker://{dest}"])
        secs, cpu, _ = self.measure(reg, lambda: check(run(push, timeout=900), "skopeo push"))
        n = sizes["total_bytes"]
        self.record(kind, "skopeo push", run_no, MBps=n / secs / 1e6, cpu_s_per_GB=cpu / (n / 1e9),
                    secs=secs, cpu_s=cpu)
        self.record(kind, "memory peak during push", run_no, rss_mib=reg.mem_mib("VmHWM"))
        pulldir = os.path.join(WORK, f"pull-{kind}")
        shutil.rmtree(pulldir, ignore_errors=True)
        pull = skopeo_cmd(["copy", "--src-tls-verify=false", f"docker://{dest}",
                           f"oci:{pulldir}:bench"])
        secs, cpu, _ = self.measure(reg, lambda: check(run(pull, timeout=900), "skopeo pull"))
        shutil.rmtree(pulldir, ignore_errors=True)
        self.record(kind, "skopeo pull", run_no, MBps=n / secs / 1e6, cpu_s_per_GB=cpu / (n / 1e9),
                    secs=secs, cpu_s=cpu)

        cl = Client(reg.port)
        # monolithic upload: POST, then curl PUT ?digest= with the whole file
        def mono():
            monolithic_upload(cl, reg.url(""), repo, blob_a, dig_a)
        secs, cpu, _ = self.measure(reg, mono)
        self.record(kind, "monolithic upload", run_no, MBps=blob_bytes / secs / 1e6,
                    cpu_s_per_GB=cpu / (blob_bytes / 1e9), secs=secs, cpu_s=cpu)

        # chunked upload: PATCHes of chunk_mib with Content-Range, then PUT ?digest=
        chunk = cfg["chunk_mib"] * MiB
        def chunked():
            chunked_upload(cl, repo, blob_b, blob_bytes, chunk, dig_b)
        secs, cpu, _ = self.measure(reg, chunked)
        self.record(kind, "chunked upload", run_no, MBps=blob_bytes / secs / 1e6,
                    cpu_s_per_GB=cpu / (blob_bytes / 1e9), secs=secs, cpu_s=cpu)
        self.record(kind, "memory peak after uploads", run_no, rss_mib=reg.mem_mib("VmHWM"))

        # download of blob A
        def download():
            r = run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}",
                     reg.url(f"/v2/{repo}/blobs/{dig_a}")], timeout=900)
            if r.returncode != 0 or int(r.stdout) != blob_bytes:
                raise RuntimeError(f"download: {r.returncode} {r.stdout} {r.stderr}")
        secs, cpu, _ = self.measure(reg, download)
        self.record(kind, "download", run_no, MBps=blob_bytes / secs / 1e6,
                    cpu_s_per_GB=cpu / (blob_bytes / 1e9), secs=secs, cpu_s=cpu)

        # parallel downloads: par_n distinct blobs (slices of blob B), all at once
        part = cfg["par_mib"] * MiB
        with open(blob_b, "rb") as f:
            for i, d in enumerate(par_digs):
                upload_file_part(cl, repo, f.fileno(), i * part, part, d)
        cl.close()
        urls = [reg.url(f"/v2/{repo}/blobs/{d}") for d in par_digs]
        secs, cpu, (mbps, total) = self.measure(reg, lambda: parallel_curl(urls))
        self.record(kind, "parallel download", run_no, MBps=mbps,
                    cpu_s_per_GB=cpu / (total / 1e9), secs=secs, cpu_s=cpu)

    # ---- small requests ----
    def small(self):
        cfg = self.cfg
        for kind in self.kinds:
            reg = self.registry(kind)
            root = self.fresh_root(kind, "small")
            reg.start(root)
            try:
                info = self.populate(reg)
                self.loadgen_all(reg, info)
                self.idle_conns(reg)
                if kind == "berth":
                    # the access log's cost: the same root, log level info
                    reg.stop()
                    reg2 = self.registry(kind, accesslog=True)
                    reg2.start(root)
                    try:
                        for run_no in range(1, cfg["runs"] + 1):
                            self.loadgen(reg2, "manifest GET by digest, access log on", run_no,
                                         "GET", f"/v2/bench/small/manifests/{info['mdig']}",
                                         [f"Accept: {ACCEPT}"])
                    finally:
                        reg2.stop()
            finally:
                reg.stop()
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(root + ".yml", ignore_errors=True)

    def populate(self, reg):
        cfg = self.cfg
        cl = Client(reg.port)
        repo = "bench/small"
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = gzip.compress(os.urandom(2048))
        cdig = upload_bytes(cl, repo, config)
        ldig = upload_bytes(cl, repo, layer)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cdig, "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": ldig, "size": len(layer)}]}).encode()
        mdig = "sha256:" + hashlib.sha256(manifest).hexdigest()
        hdr = {"Content-Type": OCI_MANIFEST}
        st, _, body = cl.req("PUT", f"/v2/{repo}/manifests/latest", body=manifest, headers=hdr)
        if st != 201:
            raise RuntimeError(f"manifest PUT: {st} {body[:300]!r}")
        cl.close()
        local = threading.local()

        def client():
            if not hasattr(local, "cl"):
                local.cl = Client(reg.port)
            return local.cl

        def put_tag(i):
            st_, _, b = client().req("PUT", f"/v2/{repo}/manifests/tag{i:05d}", body=manifest,
                                     headers=hdr)
            if st_ != 201:
                raise RuntimeError(f"tag PUT: {st_} {b[:300]!r}")

        def put_repo(i):
            r = f"repos/r{i:05d}"
            for d in (cdig, ldig):
                st_, _, b = client().req("POST", f"/v2/{r}/blobs/uploads/?mount={d}&from={repo}",
                                         headers={"Content-Length": "0"})
                if st_ != 201:
                    raise RuntimeError(f"mount into {r}: {st_} {b[:300]!r}")
            st_, _, b = client().req("PUT", f"/v2/{r}/manifests/latest", body=manifest, headers=hdr)
            if st_ != 201:
                raise RuntimeError(f"manifest PUT {r}: {st_} {b[:300]!r}")

        for name, fn, n, reqs in (("tags", put_tag, cfg["ntags"], 1),
                                  ("repositories", put_repo, cfg["nrepos"], 3)):
            t = time.monotonic()
            c0 = reg.cpu()
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                for f in concurrent.futures.as_completed([ex.submit(fn, i) for i in range(n)]):
                    f.result()
            secs, cpu = time.monotonic() - t, reg.cpu() - c0
            self.record(reg.kind, f"populate {n} {name} (8 clients)", 1, rps=n * reqs / secs,
                        req_per_cpu_s=n * reqs / cpu if cpu else float("nan"), secs=secs)
        # sanity: what the list endpoints return
        st, _, body = cl.req("GET", f"/v2/{repo}/tags/list")
        ntags = len(json.loads(body).get("tags") or []) if st == 200 else None
        st, _, body = cl.req("GET", "/v2/_catalog?n=100")
        nrepos = len(json.loads(body).get("repositories") or []) if st == 200 else None
        cl.close()
        self.extra[f"{reg.kind}_tags_list_returns"] = ntags
        self.extra[f"{reg.kind}_catalog_returns"] = nrepos
        log(reg.kind, f"tags/list returns {ntags} tags, _catalog?n=100 returns {nrepos}")
        return dict(repo=repo, mdig=mdig, ldig=ldig)

    def loadgen_all(self, reg, info):
        repo = info["repo"]
        work = [
            ("manifest HEAD by tag", "HEAD", f"/v2/{repo}/manifests/latest", [f"Accept: {ACCEPT}"]),
            ("manifest GET by digest", "GET", f"/v2/{repo}/manifests/{info['mdig']}",
             [f"Accept: {ACCEPT}"]),
            ("blob HEAD", "HEAD", f"/v2/{repo}/blobs/{info['ldig']}", []),
            ("GET /v2/", "GET", "/v2/", []),
            (f"tags/list ({self.cfg['ntags']} tags)", "GET", f"/v2/{repo}/tags/list", []),
            (f"_catalog?n=100 ({self.cfg['nrepos']} repos)", "GET", "/v2/_catalog?n=100", []),
        ]
        for run_no in range(1, self.cfg["runs"] + 1):
            for name, method, path, headers in work:
                self.loadgen(reg, name, run_no, method, path, headers)

    def loadgen(self, reg, name, run_no, method, path, headers):
        cmd = [LOADGEN, "-c", "64", "-t", "2", "-d", str(self.cfg["lg_secs"]),
               "-w", str(self.cfg["lg_warm"]), "-m", method]
        for h in headers:
            cmd += ["-H", h]
        cmd.append(reg.url(path))
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c0 = c1 = None
        try:
            # loadgen says on stderr when measuring starts and ends: sample CPU there
            for line in p.stderr:
                if "measuring" in line:
                    c0 = reg.cpu()
                elif "done" in line:
                    c1 = reg.cpu()
                    break
            out, err = p.communicate(timeout=self.cfg["lg_secs"] + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
        if p.returncode != 0 or c0 is None or c1 is None:
            raise RuntimeError(f"loadgen failed: {p.returncode} {err}")
        res = json.loads(out)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        cpu = c1 - c0
        self.record(reg.kind, name, run_no, rps=res["rps"], p99_ms=res["p99_ms"],
                    p50_ms=res["p50_ms"], errors=res["errors"],
                    req_per_cpu_s=res["requests"] / cpu if cpu > 0 else float("nan"),
                    cpu_ms_per_req=cpu * 1e3 / res["requests"] if res["requests"] else float("nan"),
                    body_bytes=res["body_bytes_per_req"], first_bad_status=res["first_bad_status"],
                    server_cpu_s=cpu, loadgen_cpu_s=client_cpu,
                    secs=self.cfg["lg_secs"] + self.cfg["lg_warm"])

    def idle_conns(self, reg):
        n = self.cfg["idle_conns"]
        time.sleep(0.5)
        before = reg.mem_mib("VmRSS")
        socks, ok = [], 0
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", reg.port), timeout=10)
                s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                socks.append(s)
            for s in socks:
                ok += read_response_ok(s)
            time.sleep(1)
            after = reg.mem_mib("VmRSS")
            # still open? a keep-alive connection the server dropped reads EOF
            alive = 0
            for s in socks:
                s.setblocking(False)
                try:
                    alive += s.recv(1) != b""
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
        finally:
            for s in socks:
                s.close()
        self.record(reg.kind, f"memory with {n} idle connections", 1, rss_mib=after,
                    delta_mib=after - before, answered=ok, alive=alive)

    # ---- start time ----
    def start_time(self):
        for kind in self.kinds:
            reg = Registry(kind, self.rawdir)
            for i in range(1, self.cfg["starts"] + 1):
                root = self.fresh_root(kind, f"start{i}")
                port = free_port()
                cmd = reg.command(root, port)
                r = run([FIRSTOK, str(port), "10000"] + cmd, timeout=60)
                res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
                ms = res.get("ms")
                # cpu_ms and faults (the server's own, until the first 200) are
                # kept in the raw samples: steadier than ms on a busy machine
                extra = {k: res[k] for k in ("cpu_ms", "faults") if res.get(k) is not None}
                self.record(kind, "start to first 200", i,
                            ms=ms if ms is not None else float("nan"), **extra)
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(root + ".yml", ignore_errors=True)

    def stop_all(self):
        for r in self.regs:
            r.stop()


def skopeo_cmd(args):
    """skopeo with a private, empty blob-info cache (the cache remembers where
    blobs live and would let a later run skip uploads): as root, a tmpfs over
    /var/lib/containers/cache in a private mount namespace; otherwise a fresh
    XDG_DATA_HOME is set by the caller's environment."""
    sk = ["skopeo", "--insecure-policy"] + args
    if os.geteuid() == 0:
        return ["unshare", "-m", "sh", "-c",
                'mount -t tmpfs tmpfs /var/lib/containers/cache && exec "$@"', "sh"] + sk
    return ["env", f"XDG_DATA_HOME={os.path.join(WORK, 'xdg-' + str(time.monotonic_ns()))}"] + sk


def check(r, what):
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed: {r.stderr.strip()[-500:]}")


def read_response_ok(s):
    """Read one HTTP response (with Content-Length) from s; 1 if it was 200."""
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            b = s.recv(4096)
            if not b:
                return 0
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            b = s.recv(4096)
            if not b:
                break
            rest += b
        return int(head.split(b" ")[1] == b"200")
    except OSError:
        return 0


# --------------------------------------------------------------------------
# Summary

# (workload, metric, unit, better, target) — target: ("ratio", x) berth at least
# x times better than distribution; ("max", v) berth's value at most v;
# ("ceiling", f) berth at least f of the machine ceiling.
SMALL = ["manifest HEAD by tag", "manifest GET by digest", "blob HEAD", "GET /v2/"]


def rows(cfg):
    big = [("skopeo push", None), ("skopeo pull", None), ("monolithic upload", "upload"),
           ("chunked upload", "upload"), ("download", "download"), ("parallel download", None)]
    out = []
    for w, kind in big:
        out.append((w, "MBps", "MB/s", "higher", ("ratio", 2.5) if kind == "upload" else
                    ("ceiling", 0.9) if kind == "download" else None))
        out.append((w, "cpu_s_per_GB", "CPU-s/GB", "lower", ("max", 1.0) if kind == "upload" else None))
    lists = [f"tags/list ({cfg['ntags']} tags)", f"_catalog?n=100 ({cfg['nrepos']} repos)"]
    for w in SMALL + lists:
        small = w in SMALL
        out.append((w, "rps", "req/s", "higher", ("ratio", 20)))
        out.append((w, "p99_ms", "p99 ms", "lower", ("ratio", 20) if small else None))
        out.append((w, "req_per_cpu_s", "req/CPU-s", "higher", ("ratio", 20) if small else None))
    out.append(("manifest GET by digest, access log on", "rps", "req/s", "higher", None))
    out.append((f"populate {cfg['ntags']} tags (8 clients)", "rps", "req/s", "higher", None))
    out.append((f"populate {cfg['nrepos']} repositories (8 clients)", "rps", "req/s", "higher", None))
    out.append(("memory idle", "rss_mib", "VmRSS MiB", "lower", ("max", 4)))
    out.append(("memory peak during push", "rss_mib", "VmHWM MiB", "lower", ("max", 16)))
    out.append(("memory peak after uploads", "rss_mib", "VmHWM MiB", "lower", ("max", 16)))
    out.append((f"memory with {cfg['idle_conns']} idle connections", "delta_mib", "+MiB", "lower",
                ("max", 16)))
    out.append(("start to first 200", "ms", "ms", "lower", ("max", 5)))
    out.append(("start to first 200", "cpu_ms", "server CPU ms", "lower", None))
    out.append(("start to first 200", "faults", "page faults", "lower", None))
    return out


def ceiling_for(workload, ceil):
    """The physical ceiling of a throughput workload: (MB/s, name)."""
    if workload == "download":
        return ceil.get("loopback_MBps"), "loopback"
    if workload == "parallel download":
        return ceil.get("loopback_par_MBps"), "loopback ×16"
    if workload in ("monolithic upload", "chunked upload", "skopeo push"):
        c = min(ceil.get("sha256_MBps", 1e18), ceil.get("disk_write_MBps", 1e18),
                ceil.get("loopback_MBps", 1e18))
        return c, "min(sha256, disk, loopback)"
    if workload == "skopeo pull":
        return ceil.get("loopback_MBps"), "loopback"
    return None, None


def fmt(v):
    if v is None or v != v:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(b, ceil, mode, started, rawdir, load):
    cfg = b.cfg

    def med(kind, w, m):
        vals = [s[m] for s in b.samples if s["registry"] == kind and s["workload"] == w
                and m in s and s[m] is not None and s[m] == s[m]]
        return statistics.median(vals) if vals else None

    def errs(kind, w):
        return sum(s.get("errors", 0) for s in b.samples if s["registry"] == kind and s["workload"] == w)

    lines = []
    met = missed = 0
    verdicts = []
    lines.append("| workload | metric | berth | distribution | ratio | target | verdict | berth / ceiling |")
    lines.append("|---|---|---:|---:|---:|---|---|---:|")
    for w, m, unit, better, target in rows(cfg):
        bv, dv = med("berth", w, m), med("distribution", w, m)
        if bv is None and dv is None:
            continue
        ratio = None
        if bv is not None and dv is not None and bv > 0 and dv > 0:
            ratio = bv / dv if better == "higher" else dv / bv
        tgt, verdict = "", ""
        ceil_v, ceil_name = ceiling_for(w, ceil) if m == "MBps" else (None, None)
        frac = bv / ceil_v if (bv is not None and ceil_v) else None
        if target:
            t, x = target
            if t == "ratio":
                tgt = f"≥ {x}×"
                ok = ratio is not None and ratio >= x
                have = ratio is not None
            elif t == "max":
                tgt = f"≤ {x} {'CPU-s/GB' if unit == 'CPU-s/GB' else 'ms' if unit == 'ms' else 'MiB'}"
                ok = bv is not None and bv <= x
                have = bv is not None
            else:
                tgt = f"≥ {x:.0%} of {ceil_name}"
                ok = frac is not None and frac >= x
                have = frac is not None
            if have:
                verdict = "met" if ok else "**missed**"
                met += ok
                missed += not ok
                verdicts.append((w, unit, verdict, bv, dv, ratio, frac, tgt))
        e_b, e_d = errs("berth", w), errs("distribution", w)
        bs = fmt(bv) + (f" ({e_b} errors)" if e_b else "")
        ds = fmt(dv) + (f" ({e_d} errors)" if e_d else "")
        lines.append(f"| {w} | {unit} | {bs} | {ds} | {fmt(ratio) + '×' if ratio else '—'} | "
                     f"{tgt} | {verdict} | {f'{frac:.0%} of {ceil_name}' if frac else ''} |")
    table = "\n".join(lines)

    ceil_lines = ["| ceiling | MB/s |", "|---|---:|"]
    names = {"sha256_MBps": "sha256, one core (openssl speed -evp, 1 MiB blocks)",
             "sha512_MBps": "sha512, one core", "loopback_MBps": "loopback: sendfile → curl, one stream",
             "loopback_par_MBps": f"loopback: {cfg['par_n']} parallel curl streams",
             "disk_write_MBps": f"disk write: dd {cfg['blob_mib']} MiB conv=fsync"}
    for k, v in ceil.items():
        ceil_lines.append(f"| {names.get(k, k)} | {fmt(v)} |")

    def ver(cmd):
        try:
            return run(cmd, timeout=10).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    rev = ver(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "src"], timeout=10).stdout.strip()
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    md = f"""# berth benchmark — {started:%Y-%m-%d %H:%M} UTC ({mode})

Machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}; load average
before {load[0]}, after {load[1]} (the machine is shared: absolute figures are
noisy, the CPU-time columns and the ratios are the stable ones).
berth {rev}{' + uncommitted changes in src/' if dirty else ''}; {ver([DISTRIBUTION, '--version'])};
{ver(['skopeo', '--version'])}; {ver(['curl', '--version'])}.
Mode `{mode}`: {cfg['runs']} run(s) per figure (median); image {cfg['layers']} × {cfg['layer_mib']} MiB;
blobs {cfg['blob_mib']} MiB; chunks {cfg['chunk_mib']} MiB; {cfg['par_n']} × {cfg['par_mib']} MiB parallel;
loadgen 64 connections, 2 threads, {cfg['lg_secs']} s after {cfg['lg_warm']} s warm-up;
{cfg['ntags']} tags, {cfg['nrepos']} repositories; {cfg['starts']} starts.
Raw samples: `{os.path.relpath(rawdir, ROOT)}/samples.jsonl`.

## Machine ceilings

{chr(10).join(ceil_lines)}

## berth vs distribution

**ratio** = how many times better berth is: berth/distribution for rates
(MB/s, req/s, req/CPU-s), distribution/berth for times, latency, CPU-s/GB and
memory. CPU columns are each registry's own utime+stime over the workload.
MB = 10^6 bytes, GB = 10^9 bytes, MiB = 2^20 bytes. Upload ceiling =
min(sha256, disk, loopback); download ceiling = loopback sendfile.

{table}

Targets met: {met}, missed: {missed}.
"""
    notes = []
    for k in ("tags_list_returns", "catalog_returns"):
        vb, vd = b.extra.get("berth_" + k), b.extra.get("distribution_" + k)
        if vb is not None or vd is not None:
            notes.append(f"- {k.replace('_', ' ')}: berth {vb}, distribution {vd} entries per response")
    for s in b.samples:
        if s["workload"].startswith("memory with"):
            notes.append(f"- {s['registry']}: {s['answered']} of {cfg['idle_conns']} idle connections "
                         f"answered, {s['alive']} still open after 1 s")
    for kind in ("berth", "distribution"):
        share = [s["loadgen_cpu_s"] / s["secs"] for s in b.samples
                 if s["registry"] == kind and "loadgen_cpu_s" in s]
        srv = [s["server_cpu_s"] / cfg["lg_secs"] for s in b.samples
               if s["registry"] == kind and "server_cpu_s" in s]
        if share:
            notes.append(f"- loadgen against {kind}: the client itself used {statistics.median(share):.2f} "
                         f"cores, the registry {statistics.median(srv):.2f} cores (of {os.cpu_count()}; median)")
    if notes:
        md += "\nNotes:\n" + "\n".join(notes) + "\n"
    return md, verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--only", choices=["berth", "distribution"])
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    rawdir = os.path.join(HERE, "results", "raw", f"{started:%Y-%m-%d}",
                          f"{started:%H%M%S}-{args.mode}")
    os.makedirs(rawdir, exist_ok=True)
    os.makedirs(DATA, exist_ok=True)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    for tool in [LOADGEN, SENDSRV, FIRSTOK] + ([BERTH] if args.only != "distribution" else []) + \
            ([DISTRIBUTION] if args.only != "berth" else []):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: missing {tool}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg = MODES[args.mode]
    t_start = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[0]

    log("generating inputs (cached in build/bench/data)")
    blob_bytes = cfg["blob_mib"] * MiB
    blob_a = os.path.join(DATA, f"blob-a-{cfg['blob_mib']}M.bin")
    blob_b = os.path.join(DATA, f"blob-b-{cfg['blob_mib']}M.bin")
    dig_a, dig_b = random_file(blob_a, blob_bytes), random_file(blob_b, blob_bytes)
    if cfg["par_n"] * cfg["par_mib"] > cfg["blob_mib"]:
        sys.exit("bench: parallel blobs must fit in blob B")
    par_digs = part_digests(blob_b, cfg["par_mib"] * MiB, cfg["par_n"])
    par_file = os.path.join(DATA, f"par-{cfg['par_mib']}M.bin")
    random_file(par_file, cfg["par_mib"] * MiB)
    layout, sizes = oci_layout(cfg["layers"], cfg["layer_mib"])

    b = Bench(args.mode, args.only, rawdir)
    try:
        ceil = ceilings(cfg, blob_a, par_file, rawdir)
        with open(os.path.join(rawdir, "ceilings.json"), "w") as f:
            json.dump(ceil, f)
        b.start_time()
        b.big(layout, sizes, blob_a, dig_a, blob_b, dig_b, par_digs)
        b.small()
    finally:
        b.stop_all()
        shutil.rmtree(WORK, ignore_errors=True)
    load1 = open("/proc/loadavg").read().split()[0]
    md, _ = summarize(b, ceil, args.mode, started, rawdir, (load0, load1))
    md += f"\nTotal time {time.monotonic() - t_start:.0f} s.\n"
    print(md)
    name = f"{started:%Y-%m-%d}" + ("" if args.mode == "full" and not args.only else
                                    f"-{args.mode}" + (f"-{args.only}" if args.only else ""))
    out = os.path.join(HERE, "results", name + ".md")
    with open(out, "w") as f:
        f.write(md)
    with open(os.path.join(rawdir, "summary.md"), "w") as f:
        f.write(md)
    log("wrote", os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()

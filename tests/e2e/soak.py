#!/usr/bin/python3
"""Soak test for berth (`make soak`; SOAK_SECONDS=60 make soak for a short run).

Starts `berth serve` ($BERTH_BIN, else build/berth) on a fresh root, then
SOAK_THREADS client threads (default 4) run for SOAK_SECONDS (default 600)
against SOAK_REPOS repositories (default 4), each over its own keep-alive
connection and its own seeded random stream (SOAK_SEED, default 1):

  push       config + 1-3 layers (private random ones, plus layers from a
             shared pool that several threads push at once) + manifest,
             by monolithic POST, chunked PATCHes or a cross-repository mount,
             tagged with one of a few shared tags (so tags move) or by digest
  pull       tags/list, a tag's manifest (digest verified), every blob in it
             (sha256 and size verified)
  retag      PUT an existing manifest of the thread's own under a shared tag
  deltag     DELETE a shared tag
  delmanifest  DELETE one of the thread's own manifests by digest
  delblob    DELETE the private blobs of a manifest deleted before

Meanwhile a collector runs garbage collection every SOAK_GC_INTERVAL
seconds (default 5; 0: none) with grace SOAK_GC_GRACE (default 30s: longer
than any push takes between its blobs and its manifest), alternately through
the admin endpoint and as `berth gc` in another process.

Expected answers are exact: a 404 counts only where another thread may have
just deleted the thing (a tag, or a manifest whose owner then removed its
blobs: after a blob 404 the manifest must be gone too). Anything else is an
error. At the end, with the clients stopped: every tag in every repository
resolves to a manifest whose blobs all exist and verify; every image a
thread still holds is there by digest, every image it deleted is 404 and
its deleted blobs are 404; every file under blobs/ hashes to its name. Then
one more collection with grace 0 (clients stopped), the same check again,
and `berth fsck` must find nothing; the server stops with exit 0. Prints operations per kind and errors; exit 1 on
any error.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from conftest import ROOT, Server  # noqa: E402
from regclient import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
THREADS = int(os.environ.get("SOAK_THREADS", "4"))
NREPOS = int(os.environ.get("SOAK_REPOS", "4"))
SEED = int(os.environ.get("SOAK_SEED", "1"))
TAGS = ["latest", "stable", "t1", "t2", "t3"]
REPOS = ["soak/r%d" % i for i in range(NREPOS)]
GC_INTERVAL = float(os.environ.get("SOAK_GC_INTERVAL", "5"))
GC_GRACE = os.environ.get("SOAK_GC_GRACE", "30s")
assert GC_GRACE.endswith("s") and GC_GRACE[:-1].isdigit(), "SOAK_GC_GRACE: seconds, like 30s"
GC_GRACE_SEC = int(GC_GRACE[:-1])
TIMEOUT = 60.0
MAX_ERRORS_SHOWN = 20


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {}
        self.requests = 0
        self.expected_404 = 0
        self.errors = []

    def op(self, kind):
        with self.lock:
            self.ops[kind] = self.ops.get(kind, 0) + 1

    def req(self):
        with self.lock:
            self.requests += 1

    def gone(self):
        with self.lock:
            self.expected_404 += 1

    def error(self, msg):
        with self.lock:
            self.errors.append(msg)
        if len(self.errors) <= MAX_ERRORS_SHOWN:
            print("soak: error: %s" % msg, file=sys.stderr, flush=True)


STATS = Stats()


class Unexpected(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection; reconnects after a failure."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        if body is None and method in ("PUT", "POST", "PATCH"):
            hdrs["Content-Length"] = "0"
        for attempt in (1, 2):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            try:
                self.c.request(method, path, body=body, headers=hdrs)
                r = self.c.getresponse()
                data = r.read()
                STATS.req()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, r, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # a keep-alive connection the server closed between requests:
                # retry once on a fresh one, as every HTTP client does
                self.close()
                if attempt == 2:
                    raise Unexpected("%s %s: %r" % (method, path, e))
            except OSError as e:
                self.close()
                raise Unexpected("%s %s: %r" % (method, path, e))

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def expect(got, want, what, r=None, body=b""):
    want = want if isinstance(want, (tuple, list, set)) else (want,)
    if got not in want:
        raise Unexpected("%s: status %d, expected %s: %r" % (what, got, "/".join(map(str, want)),
                                                              body[:300]))


def rbytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def make_shared_pool():
    rng = random.Random(SEED * 7919)
    return [rbytes(rng, rng.choice((512, 4096, 65536, 300 * 1024))) for _ in range(8)]


SHARED = make_shared_pool()
SHARED_DIGESTS = {sha256(b) for b in SHARED}


class Worker(threading.Thread):
    def __init__(self, idx, port, deadline):
        super().__init__(name="soak-%d" % idx, daemon=True)
        self.idx = idx
        self.rng = random.Random(SEED * 1000 + idx)
        self.conn = Conn(port)
        self.deadline = deadline
        self.live = []      # images this thread pushed and has not deleted
        self.deleted = []   # images whose manifest it deleted (blobs still linked)
        self.purged = []    # deleted images whose private blobs it removed too
        self.nimg = 0

    # ------------------------------------------------------------ blobs

    def push_blob(self, repo, data):
        d = sha256(data)
        how = self.rng.random()
        c = self.conn
        if how < 0.5:
            st, r, body = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), data,
                                    {"Content-Type": "application/octet-stream"})
            expect(st, 201, "monolithic push of %s" % d, r, body)
        elif how < 0.6 and d in SHARED_DIGESTS:
            src = self.rng.choice(REPOS)
            st, r, body = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                                    % (repo, d, src))
            expect(st, (201, 202), "mount of %s" % d, r, body)
            if st == 202:  # not in `src` (yet): an ordinary session opened instead
                loc = r.getheader("Location")
                st, r, body = c.request("PUT", loc + ("&" if "?" in loc else "?") +
                                        "digest=" + d, data,
                                        {"Content-Type": "application/octet-stream"})
                expect(st, 201, "PUT after mount fallback of %s" % d, r, body)
            else:
                self.count("mount")
        else:
            st, r, body = c.request("POST", "/v2/%s/blobs/uploads/" % repo)
            expect(st, 202, "upload start", r, body)
            loc = r.getheader("Location")
            step = max(1, len(data) // self.rng.randint(1, 4))
            off = 0
            while off < len(data) - step:
                chunk = data[off:off + step]
                st, r, body = c.request("PATCH", loc, chunk,
                                        {"Content-Type": "application/octet-stream",
                                         "Content-Range": "%d-%d" % (off, off + len(chunk) - 1)})
                expect(st, 202, "PATCH of %s" % d, r, body)
                off += len(chunk)
                loc = r.getheader("Location")
            st, r, body = c.request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d,
                                    data[off:], {"Content-Type": "application/octet-stream"})
            expect(st, 201, "final PUT of %s" % d, r, body)
        if r.getheader("Docker-Content-Digest") != d:
            raise Unexpected("push of %s answered digest %r" % (d, r.getheader(
                "Docker-Content-Digest")))
        return d

    def get_blob(self, repo, d, size):
        """True when verified; False on a 404 (caller decides whether allowed)."""
        st, r, body = self.conn.request("GET", "/v2/%s/blobs/%s" % (repo, d))
        if st == 404:
            return False
        expect(st, 200, "GET blob %s" % d, r, body)
        if sha256(body) != d or len(body) != size:
            raise Unexpected("GET blob %s returned %d bytes hashing to %s" % (d, len(body),
                                                                              sha256(body)))
        return True

    # ------------------------------------------------------------ operations

    def count(self, kind):
        STATS.op(kind)

    def op_push(self):
        rng, repo = self.rng, self.rng.choice(REPOS)
        self.nimg += 1
        private = [rbytes(rng, rng.choice((100, 2000, 20000, 150000)))
                   for _ in range(rng.randint(1, 2))]
        shared = rng.sample(SHARED, rng.randint(0, 2))
        layers = private + shared
        rng.shuffle(layers)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "soak": [self.idx, self.nimg, rng.getrandbits(64)]}).encode()
        for blob in [config] + layers:
            self.push_blob(repo, blob)
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
             "layers": [{"mediaType": OCI_LAYER, "digest": sha256(l), "size": len(l)}
                        for l in layers]}
        body = json.dumps(m).encode()
        d = sha256(body)
        ref = rng.choice(TAGS) if rng.random() < 0.7 else d
        st, r, rbody = self.conn.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body,
                                         {"Content-Type": OCI_MANIFEST})
        expect(st, 201, "manifest PUT %s:%s" % (repo, ref), r, rbody)
        if r.getheader("Docker-Content-Digest") != d:
            raise Unexpected("manifest PUT answered digest %r, want %s"
                             % (r.getheader("Docker-Content-Digest"), d))
        self.live.append({"repo": repo, "digest": d, "body": body, "pushed": time.monotonic(),
                          "private": [(sha256(b), len(b)) for b in [config] + private]})
        self.count("push")

    def op_pull(self):
        repo = self.rng.choice(REPOS)
        st, r, body = self.conn.request("GET", "/v2/%s/tags/list" % repo)
        if st == 404:  # nothing pushed to this repository yet
            STATS.gone()
            return
        expect(st, 200, "tags/list %s" % repo, r, body)
        tags = json.loads(body).get("tags") or []
        if not tags:
            self.count("pull")
            return
        tag = self.rng.choice(tags)
        st, r, body = self.conn.request("GET", "/v2/%s/manifests/%s" % (repo, tag), None,
                                        {"Accept": OCI_MANIFEST})
        if st == 404:  # deleted or its manifest deleted since the listing
            STATS.gone()
            self.count("pull")
            return
        expect(st, 200, "GET manifest %s:%s" % (repo, tag), r, body)
        d = r.getheader("Docker-Content-Digest")
        if sha256(body) != d:
            raise Unexpected("manifest %s:%s hashes to %s, header says %s"
                             % (repo, tag, sha256(body), d))
        m = json.loads(body)
        for desc in [m["config"]] + m["layers"]:
            if not self.get_blob(repo, desc["digest"], desc["size"]):
                # only allowed when the manifest itself was deleted meanwhile
                st2, _, _ = self.conn.request("HEAD", "/v2/%s/manifests/%s" % (repo, d))
                if st2 != 404:
                    raise Unexpected("blob %s of live manifest %s@%s is 404"
                                     % (desc["digest"], repo, d))
                STATS.gone()
                break
        self.count("pull")

    def op_retag(self):
        if not self.live:
            return self.op_push()
        img = self.rng.choice(self.live)
        tag = self.rng.choice(TAGS)
        st, r, body = self.conn.request("PUT", "/v2/%s/manifests/%s" % (img["repo"], tag),
                                        img["body"], {"Content-Type": OCI_MANIFEST})
        expect(st, 201, "retag %s:%s" % (img["repo"], tag), r, body)
        self.count("retag")

    def op_deltag(self):
        repo, tag = self.rng.choice(REPOS), self.rng.choice(TAGS)
        st, r, body = self.conn.request("DELETE", "/v2/%s/manifests/%s" % (repo, tag))
        expect(st, (202, 404), "DELETE tag %s:%s" % (repo, tag), r, body)
        if st == 404:
            STATS.gone()
        self.count("deltag")

    def op_delmanifest(self):
        if len(self.live) < 3:
            return self.op_push()
        img = self.live.pop(self.rng.randrange(len(self.live)))
        st, r, body = self.conn.request("DELETE", "/v2/%s/manifests/%s"
                                        % (img["repo"], img["digest"]))
        expect(st, 202, "DELETE manifest %s@%s" % (img["repo"], img["digest"]), r, body)
        st, r, body = self.conn.request("HEAD", "/v2/%s/manifests/%s"
                                        % (img["repo"], img["digest"]))
        expect(st, 404, "HEAD of deleted manifest", r, body)
        self.deleted.append(img)
        self.count("delmanifest")

    def op_delblob(self):
        if not self.deleted:
            return self.op_pull()
        img = self.deleted.pop(0)
        # the collector removes a repository's links to blobs no manifest of
        # it uses once older than the grace period: then the blob is gone
        collected = GC_INTERVAL > 0 and time.monotonic() - img["pushed"] >= GC_GRACE_SEC
        for d, _ in img["private"]:
            st, r, body = self.conn.request("DELETE", "/v2/%s/blobs/%s" % (img["repo"], d))
            if st == 404 and collected:
                STATS.gone()
                continue
            expect(st, 202, "DELETE blob %s" % d, r, body)
            st, r, body = self.conn.request("HEAD", "/v2/%s/blobs/%s" % (img["repo"], d))
            expect(st, 404, "HEAD of deleted blob %s" % d, r, body)
        self.purged.append(img)
        self.count("delblob")

    OPS = [("push", 30), ("pull", 40), ("retag", 10), ("deltag", 5), ("delmanifest", 8),
           ("delblob", 7)]

    def run(self):
        kinds = [k for k, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        while time.monotonic() < self.deadline:
            kind = self.rng.choices(kinds, weights)[0]
            try:
                getattr(self, "op_" + kind)()
            except Unexpected as e:
                STATS.error("[%s %s] %s" % (self.name, kind, e))
            except Exception:  # a bug in the soak itself is an error too
                STATS.error("[%s %s] %s" % (self.name, kind, traceback.format_exc()))
                time.sleep(0.1)
        self.conn.close()


class Collector(threading.Thread):
    """Garbage collection while the clients run: the admin endpoint and a
    `berth gc` process on the same root, one after the other."""

    def __init__(self, binary, port, root, deadline):
        super().__init__(name="collector", daemon=True)
        self.binary, self.port, self.root, self.deadline = binary, port, root, deadline
        self.cycles = {"admin": 0, "cli": 0}
        self.freed = 0

    def admin(self, grace):
        c = Conn(self.port)
        try:
            st, r, body = c.request("POST", "/v2/_berth/gc?wait=1&grace=" + grace)
        finally:
            c.close()
        expect(st, 200, "POST /v2/_berth/gc", r, body)
        self.freed += json.loads(body)["blobs"]
        self.cycles["admin"] += 1

    def cli(self, grace):
        r = subprocess.run([self.binary, "gc", "--root", self.root, "--grace", grace, "--json",
                            "-q"], capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise Unexpected("berth gc exited %d: %s" % (r.returncode, r.stderr.strip()[:300]))
        self.freed += json.loads(r.stdout)["blobs"]
        self.cycles["cli"] += 1

    def run(self):
        n = 0
        while time.monotonic() + GC_INTERVAL < self.deadline:
            time.sleep(GC_INTERVAL)
            try:
                (self.admin if n % 2 == 0 else self.cli)(GC_GRACE)
            except Unexpected as e:
                STATS.error("[collector] %s" % e)
            except Exception:
                STATS.error("[collector] %s" % traceback.format_exc())
            n += 1


# ---------------------------------------------------------------- final check

def bad_blob_files(root):
    bad = []
    base = os.path.join(root, "blobs")
    for dp, _, fs in os.walk(base):
        for f in fs:
            rel = os.path.relpath(os.path.join(dp, f), base)
            parts = rel.split(os.sep)
            if len(parts) != 3 or parts[0] not in ("sha256", "sha512") or \
                    parts[1] != parts[2][:2]:
                bad.append(rel)
                continue
            h = hashlib.new(parts[0])
            with open(os.path.join(base, rel), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != parts[2]:
                bad.append(rel)
    return bad


def check(port, root, workers):
    """Full consistency check with every client stopped. Returns counts."""
    c = Conn(port)
    counts = {"tags": 0, "manifests": 0, "blobs": 0, "files": 0}
    st, r, body = c.request("GET", "/v2/_catalog")
    expect(st, 200, "catalog", r, body)
    repos = json.loads(body).get("repositories") or []
    seen_blobs = set()
    for repo in repos:
        st, r, body = c.request("GET", "/v2/%s/tags/list" % repo)
        expect(st, 200, "tags/list %s" % repo, r, body)
        for tag in json.loads(body).get("tags") or []:
            counts["tags"] += 1
            st, r, mbody = c.request("GET", "/v2/%s/manifests/%s" % (repo, tag), None,
                                     {"Accept": OCI_MANIFEST})
            expect(st, 200, "final: tag %s:%s does not resolve" % (repo, tag), r, mbody)
            if sha256(mbody) != r.getheader("Docker-Content-Digest"):
                raise Unexpected("final: manifest %s:%s digest mismatch" % (repo, tag))
            m = json.loads(mbody)
            for desc in [m["config"]] + m["layers"]:
                key = (repo, desc["digest"])
                if key in seen_blobs:
                    continue
                seen_blobs.add(key)
                st, r, bbody = c.request("GET", "/v2/%s/blobs/%s" % key)
                expect(st, 200, "final: blob %s of %s:%s" % (desc["digest"], repo, tag), r)
                if sha256(bbody) != desc["digest"] or len(bbody) != desc["size"]:
                    raise Unexpected("final: blob %s does not verify" % desc["digest"])
                counts["blobs"] += 1
    for w in workers:
        for img in w.live:
            st, r, body = c.request("GET", "/v2/%s/manifests/%s" % (img["repo"], img["digest"]))
            expect(st, 200, "final: live manifest %s@%s" % (img["repo"], img["digest"]), r)
            if body != img["body"]:
                raise Unexpected("final: manifest %s@%s changed" % (img["repo"], img["digest"]))
            for d, size in img["private"]:
                st, r, body = c.request("GET", "/v2/%s/blobs/%s" % (img["repo"], d))
                expect(st, 200, "final: blob %s of live image" % d, r)
                if sha256(body) != d or len(body) != size:
                    raise Unexpected("final: blob %s does not verify" % d)
            counts["manifests"] += 1
        for img in w.deleted + w.purged:
            st, r, body = c.request("HEAD", "/v2/%s/manifests/%s" % (img["repo"], img["digest"]))
            expect(st, 404, "final: deleted manifest %s@%s" % (img["repo"], img["digest"]), r)
        for img in w.purged:
            for d, _ in img["private"]:
                st, r, body = c.request("HEAD", "/v2/%s/blobs/%s" % (img["repo"], d))
                expect(st, 404, "final: deleted blob %s" % d, r)
    c.close()
    bad = bad_blob_files(root)
    if bad:
        raise Unexpected("final: %d blob files do not hash to their name: %s" % (len(bad), bad[:5]))
    counts["files"] = sum(len(fs) for _, _, fs in os.walk(os.path.join(root, "blobs")))
    return counts


def main():
    binary = os.environ.get("BERTH_BIN") or os.path.join(ROOT, "build", "berth")
    if not os.path.exists(binary):
        print("soak: no berth binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    os.environ["BERTH_BIN"] = binary
    tmp = tempfile.mkdtemp(prefix="berth-soak-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    srv = Server(root, extra_args=["--log-level", "warn"]).start()
    print("soak: %s, %d threads, %d repositories, %.0f s, seed %d, root %s"
          % (binary, THREADS, NREPOS, SECONDS, SEED, root), flush=True)
    t0 = time.monotonic()
    workers = [Worker(i, srv.port, t0 + SECONDS) for i in range(THREADS)]
    for w in workers:
        w.start()
    collector = None
    if GC_INTERVAL > 0:
        collector = Collector(binary, srv.port, root, t0 + SECONDS)
        collector.start()
    last = t0
    while any(w.is_alive() for w in workers):
        time.sleep(0.5)
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            print("soak: %4.0f s  %d requests, %d errors" % (last - t0, STATS.requests,
                                                              len(STATS.errors)), flush=True)
        if srv.proc.poll() is not None:
            STATS.error("berth exited with %d during the run" % srv.proc.returncode)
            break
    for w in workers + ([collector] if collector else []):
        w.join(TIMEOUT * 2)
        if w.is_alive():
            STATS.error("%s did not finish" % w.name)
    elapsed = time.monotonic() - t0
    during = STATS.requests
    counts = {}
    if srv.proc.poll() is None:
        try:
            counts = check(srv.port, root, workers)
            if collector:
                # nothing in flight now: everything unreachable goes, nothing
                # reachable may, and the metadata must agree with the files
                collector.admin("0s")
                counts = check(srv.port, root, workers)
                f = subprocess.run([binary, "fsck", "--root", root], capture_output=True,
                                   text=True, timeout=600)
                if f.returncode != 0:
                    raise Unexpected("final: fsck exited %d: %s" % (f.returncode,
                                                                     f.stdout[-600:]))
        except Unexpected as e:
            STATS.error(str(e))
    try:
        srv.stop()  # exit 0 required
    except AssertionError as e:
        STATS.error(str(e)[:2000])
    print("soak: %.0f s, %d requests (%.0f/s), expected 404s %d; final check %d requests" % (
        elapsed, during, during / max(elapsed, 1e-9), STATS.expected_404,
        STATS.requests - during))
    print("soak: operations: " + ", ".join("%s %d" % (k, STATS.ops.get(k, 0))
                                           for k in [k for k, _ in Worker.OPS] + ["mount"]))
    if collector:
        print("soak: garbage collection: %d cycles (%d admin endpoint, %d berth gc), %d blobs "
              "freed" % (sum(collector.cycles.values()), collector.cycles["admin"],
                         collector.cycles["cli"], collector.freed))
    if counts:
        print("soak: final check: %d tags, %d live images, %d tagged blobs verified, "
              "%d blob files verified" % (counts["tags"], counts["manifests"], counts["blobs"],
                                          counts["files"]))
    print("soak: errors: %d" % len(STATS.errors))
    if STATS.errors:
        for e in STATS.errors[:MAX_ERRORS_SHOWN]:
            print("  " + e.splitlines()[0][:400])
        print("soak: kept %s (server log %s)" % (tmp, os.path.normpath(srv.log_path)))
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GC stress (docs/gc.md): for a bounded time, worker threads push images
(shared base layers + unique layers, base layers mounted across
repositories), pull them back and delete tags and manifests, while another
thread collects garbage in a loop with grace 0s — the admin endpoint and a
`berth gc` process alternately, every third cycle with untagged manifests
too. A push that races the sweep may be told MANIFEST_BLOB_UNKNOWN (or
BLOB_UNKNOWN) and uploads again, and with grace 0s an upload session may be
collected under a monolithic upload (BLOB_UPLOAD_UNKNOWN: the upload starts
again); nothing else may ever fail. A pull of a
live tag must always succeed. At the end every tag still present pulls
completely with correct digests, the tags are exactly those the workers
kept, and after a last collection the blob files on disk are exactly the
blobs of the live images. STRESS_SECONDS (default 40) bounds the run.
"""
import json
import os
import random
import subprocess
import threading
import time

from regclient import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegClient, location_path,
                       rand_bytes, sha256)
from test_gc import berth_bin, blob_path, gc_admin, gc_cli, pull_verify

SECONDS = float(os.environ.get("STRESS_SECONDS", "40"))
WORKERS = 4
BASES = [rand_bytes(8192, 5000 + i) for i in range(3)]
RETRYABLE = ("MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN")


def error_code(r):
    try:
        return r.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError):
        return None


class Worker(threading.Thread):
    def __init__(self, srv, n, deadline, errors):
        super().__init__(name="worker-%d" % n)
        self.c = RegClient(srv)
        self.n = n
        self.repo = "stress/w%d" % n
        self.rng = random.Random(n)
        self.deadline = deadline
        self.errors = errors
        self.live = {}  # tag -> (manifest digest, blob digests)
        self.counts = {"push": 0, "retry": 0, "mount": 0, "pull": 0, "delete": 0, "untag": 0,
                       "upload-restart": 0}
        self.seq = 0

    def fail(self, what, r):
        self.errors.append("%s %s: %r" % (self.name, what, r))

    def run(self):
        try:
            while time.time() < self.deadline and not self.errors:
                op = self.rng.random()
                if op < 0.45 or len(self.live) < 2:
                    self.push()
                elif op < 0.8:
                    self.pull()
                else:
                    self.delete()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("%s: %r" % (self.name, e))

    def upload(self, data, base):
        """Mount a base layer from another worker's repository when it has
        it, else upload; the blob must be there afterwards either way."""
        d = sha256(data)
        if base:
            other = "stress/w%d" % self.rng.choice([i for i in range(WORKERS) if i != self.n])
            r = self.c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s"
                               % (self.repo, d, other))
            if r.status == 201:
                self.counts["mount"] += 1
                return True
            if r.status != 202:
                return self.fail("mount", r)
            self.c.request("DELETE", location_path(r))  # the session the mount opened
        r = self.c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (self.repo, d), body=data,
                           headers={"Content-Type": "application/octet-stream"})
        if r.status == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN":
            # grace 0s: the collector removed the session this upload had
            # just opened (sessions, too, are only protected by the grace)
            self.counts["upload-restart"] += 1
            return False
        if r.status != 201:
            self.fail("blob upload", r)
        return True

    def push(self):
        base = self.rng.choice(BASES)
        layer = rand_bytes(self.rng.randint(512, 16384))
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers",
                                        "diff_ids": [sha256(base), sha256(layer)]},
                             "worker": self.n, "seq": self.seq}).encode()
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
             "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)}
                        for b in (base, layer)]}
        body = json.dumps(m).encode()
        tag = "t%d" % self.seq
        self.seq += 1
        for attempt in range(50):
            if not (self.upload(config, False) and self.upload(base, True) and
                    self.upload(layer, False)):
                if self.errors:
                    return
                continue
            r = self.c.put_manifest(self.repo, tag, body)
            if r.status == 201:
                break
            if r.status != 404 or error_code(r) not in RETRYABLE:
                return self.fail("manifest put", r)
            self.counts["retry"] += 1  # told to upload again: the sweep won the race
        else:
            return self.fail("manifest put", "50 attempts")
        self.counts["push"] += 1
        self.live[tag] = (sha256(body), {sha256(config), sha256(base), sha256(layer)})

    def pull(self):
        tag = self.rng.choice(sorted(self.live))
        digest, blobs = self.live[tag]
        got = pull_verify(self.c, self.repo, tag)
        if got != blobs | {digest}:
            self.fail("pull %s" % tag, got)
        self.counts["pull"] += 1

    def delete(self):
        tag = self.rng.choice(sorted(self.live))
        digest, _ = self.live[tag]
        if self.rng.random() < 0.5:
            # the manifest, with every tag on it (each tag here has its own)
            r = self.c.delete("/v2/%s/manifests/%s" % (self.repo, digest))
            self.counts["delete"] += 1
        else:
            # the tag alone: the manifest stays until an untagged collection
            r = self.c.delete("/v2/%s/manifests/%s" % (self.repo, tag))
            self.counts["untag"] += 1
        if r.status != 202:
            return self.fail("delete %s" % tag, r)
        del self.live[tag]


class Collector(threading.Thread):
    def __init__(self, srv, deadline, errors):
        super().__init__(name="collector")
        self.srv = srv
        self.c = RegClient(srv)
        self.deadline = deadline
        self.errors = errors
        self.cycles = {"admin": 0, "cli": 0}
        self.freed = 0

    def run(self):
        i = 0
        try:
            while time.time() < self.deadline and not self.errors:
                untagged = i % 3 == 2
                if i % 2 == 0:
                    q = {"grace": "0s"}
                    if untagged:
                        q["untagged"] = "1"
                    r = gc_admin(self.c, **q)
                    if r.status != 200 or r.json()["state"] != "finished":
                        self.errors.append("admin gc: %r" % r)
                        return
                    self.freed += r.json()["blobs"]
                    self.cycles["admin"] += 1
                else:
                    args = ["--grace", "0s", "--json", "-q"] + (["--untagged"] if untagged else [])
                    r = gc_cli(self.srv.root, *args, check=False, timeout=120)
                    if r.returncode != 0:
                        self.errors.append("berth gc: exit %d: %s" % (r.returncode, r.stderr))
                        return
                    self.freed += json.loads(r.stdout)["blobs"]
                    self.cycles["cli"] += 1
                i += 1
                time.sleep(random.random() * 0.1)  # let some pushes through whole
        except Exception as e:  # noqa: BLE001
            self.errors.append("collector: %r" % e)


def test_gc_stress(server_factory):
    srv = server_factory(config="berth:\n  gc:\n    interval: 0s\n")
    c = RegClient(srv)
    errors = []
    t0 = time.time()
    deadline = t0 + SECONDS
    workers = [Worker(srv, n, deadline, errors) for n in range(WORKERS)]
    collector = Collector(srv, deadline, errors)
    for t in workers + [collector]:
        t.start()
    for t in workers + [collector]:
        t.join()
    elapsed = time.time() - t0
    assert not errors, "\n".join(errors[:10])

    totals = {}
    for w in workers:
        for k, v in w.counts.items():
            totals[k] = totals.get(k, 0) + v
    print("\nGC stress: %.0f s, %d GC cycles (%d admin, %d berth gc), %d blobs freed; %s"
          % (elapsed, sum(collector.cycles.values()), collector.cycles["admin"],
             collector.cycles["cli"], collector.freed,
             ", ".join("%d %s" % (v, k) for k, v in sorted(totals.items()))))
    assert collector.cycles["admin"] >= 2 and collector.cycles["cli"] >= 2, collector.cycles
    assert totals["push"] >= 20 and totals["pull"] >= 10, totals

    # every tag still present pulls completely; the tags are the ones kept
    live_blobs = set()
    for w in workers:
        tags = sorted(c.get("/v2/%s/tags/list" % w.repo).json()["tags"] or [])
        assert tags == sorted(w.live), (w.repo, tags, sorted(w.live))
        for tag, (digest, blobs) in w.live.items():
            assert pull_verify(c, w.repo, tag) == blobs | {digest}
            live_blobs |= blobs
    for d in live_blobs:
        assert os.path.exists(blob_path(srv.root, d)), d

    # one more collection (untagged too): the files left are exactly the live blobs
    gc_cli(srv.root, "--grace", "0s", "--untagged", "-q")
    on_disk = set()
    for dp, _, fs in os.walk(os.path.join(srv.root, "blobs")):
        for f in fs:
            on_disk.add("%s:%s" % (os.path.basename(os.path.dirname(dp)), f))
    assert on_disk == live_blobs, ("left over: %s; missing: %s"
                                   % (sorted(on_disk - live_blobs)[:5],
                                      sorted(live_blobs - on_disk)[:5]))
    for w in workers:
        for tag in w.live:
            pull_verify(c, w.repo, tag)
    # and the metadata agrees with the files: fsck finds nothing to report
    f = subprocess.run([berth_bin(), "fsck", "--root", srv.root], capture_output=True,
                       text=True, timeout=120)
    assert f.returncode == 0, (f.stdout, f.stderr)

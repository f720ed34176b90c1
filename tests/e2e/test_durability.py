"""Durability: upload sessions across restarts, 8 parallel pushes of one blob,
kill -9 during pushes, upload purging. Servers come from server_factory (or,
for the kill -9 scenario that several tests inspect, conftest.Server directly)."""
import hashlib
import json
import os
import random
import re
import tempfile
import threading
import time

import pytest

from conftest import Server, free_port
from regclient import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegClient, assert_error,
                       location_path, rand_bytes, sha256, uniq)

HEX_RE = re.compile(r"^[0-9a-f]{64,128}$")


def blob_files(root):
    """Every regular file under <root>/blobs, as paths relative to it."""
    out = []
    base = os.path.join(root, "blobs")
    for dp, _, fs in os.walk(base):
        for f in fs:
            out.append(os.path.relpath(os.path.join(dp, f), base))
    return out


def file_digest_ok(root, rel):
    """blobs/<algo>/<xx>/<hex>: the content hashes to <hex>."""
    parts = rel.split(os.sep)
    if len(parts) != 3 or parts[0] not in ("sha256", "sha512") or not HEX_RE.match(parts[2]) \
            or parts[1] != parts[2][:2]:
        return False
    h = hashlib.new(parts[0])
    with open(os.path.join(root, "blobs", rel), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == parts[2]


def upload_files(root, needle=None):
    out = []
    for dp, _, fs in os.walk(os.path.join(root, "uploads")):
        for f in fs:
            p = os.path.join(dp, f)
            if needle is None or needle in p:
                out.append(p)
    return out


# ---------------------------------------------------------------- restart mid-upload (end-5/6/13)

def chunked_upload_across_restart(server_factory):
    s = server_factory()
    c = RegClient(s)
    repo = uniq("dur")
    data = rand_bytes(300 * 1024, seed=21)
    loc, _ = c.start_upload(repo)
    r = c.patch_chunk(loc, data[:100000], start=0)
    assert r.status == 202, r
    r = c.patch_chunk(location_path(r), data[100000:200000], start=100000)
    assert r.status == 202, r
    loc = location_path(r)
    s.restart()
    return s, c, repo, data, loc


def test_restart_session_status_preserved(server_factory):
    s, c, repo, data, loc = chunked_upload_across_restart(server_factory)
    r = c.get(loc)
    assert r.status == 204, r
    assert r.header("Range") == "0-199999"


def test_restart_session_continues_and_completes(server_factory):
    s, c, repo, data, loc = chunked_upload_across_restart(server_factory)
    r = c.patch_chunk(loc, data[200000:], start=200000)
    assert r.status == 202, r
    assert r.header("Range") == "0-%d" % (len(data) - 1)
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    got = c.get("/v2/%s/blobs/%s" % (repo, sha256(data)))
    assert got.status == 200 and got.body == data


def test_restart_keeps_blobs_manifests_tags(server_factory):
    s = server_factory()
    c = RegClient(s)
    repo = uniq("dur")
    img = c.make_image(repo, tag="kept")
    s.restart()
    r = c.get("/v2/%s/manifests/kept" % repo)
    assert r.status == 200 and r.body == img["body"]
    for d, b in zip(img["layer_digests"], img["layers"]):
        assert c.get("/v2/%s/blobs/%s" % (repo, d)).body == b
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == ["kept"]


# ---------------------------------------------------------------- 8 parallel pushes of one blob (end-4a/5/6)

def parallel_push(c, repos, data, n=8):
    d = sha256(data)
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            loc, _ = c.start_upload(repos[i])
            r = c.patch_chunk(loc, data[:len(data) // 2], start=0)
            assert r.status == 202, r
            loc = location_path(r)
            barrier.wait(timeout=30)
            results[i] = c.finish_upload(loc, d, data[len(data) // 2:])
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return d, results


def test_parallel_same_blob_same_repo_all_201(server_factory):
    s = server_factory()
    c = RegClient(s)
    repo = uniq("par")
    data = rand_bytes(2 * 1024 * 1024, seed=31)
    d, results = parallel_push(c, [repo] * 8, data)
    assert [getattr(r, "status", r) for r in results] == [201] * 8, results
    assert all(r.header("Docker-Content-Digest") == d for r in results)
    assert c.get("/v2/%s/blobs/%s" % (repo, d)).body == data


def test_parallel_same_blob_many_repos_all_201_and_readable(server_factory):
    s = server_factory()
    c = RegClient(s)
    repos = [uniq("par") for _ in range(8)]
    data = rand_bytes(2 * 1024 * 1024, seed=32)
    d, results = parallel_push(c, repos, data)
    assert [getattr(r, "status", r) for r in results] == [201] * 8, results
    for repo in repos:
        r = c.get("/v2/%s/blobs/%s" % (repo, d))
        assert r.status == 200 and sha256(r.body) == d


def test_parallel_same_blob_stored_once(server_factory):
    s = server_factory()
    c = RegClient(s)
    repos = [uniq("par") for _ in range(4)] * 2
    data = rand_bytes(2 * 1024 * 1024, seed=33)
    d, results = parallel_push(c, repos, data)
    assert [getattr(r, "status", r) for r in results] == [201] * 8, results
    hexd = d.split(":")[1]
    files = blob_files(s.root)
    assert [f for f in files if hexd in f] == [os.path.join("sha256", hexd[:2], hexd)], files
    # nothing else (no temp files) left in the blob store
    assert all(file_digest_ok(s.root, f) for f in files), files


def test_parallel_pushes_leave_no_upload_files(server_factory):
    s = server_factory()
    c = RegClient(s)
    data = rand_bytes(512 * 1024, seed=34)
    d, results = parallel_push(c, [uniq("par") for _ in range(8)], data)
    assert [getattr(r, "status", r) for r in results] == [201] * 8, results
    assert upload_files(s.root) == []


# ---------------------------------------------------------------- kill -9 during pushes

class CrashRun:
    pass


def pusher(c, w, stop, acked, lock):
    """Loop: push a layer (monolithic or chunked), a config, a manifest under a fresh tag."""
    repo = "crash/w%d" % w
    i = 0
    while not stop.is_set():
        i += 1
        try:
            # worker 0 pushes bigger layers so the kill often lands mid-body
            layer = os.urandom(random.randint(100000, 600000) if w == 0 else random.randint(1, 20000))
            if i % 3 == 0:
                dl = c.push_blob_chunked(repo, layer, chunk=4096)
            else:
                dl = c.push_blob(repo, layer)
            with lock:
                acked["blobs"].append((repo, dl, layer))
            config = json.dumps({"w": w, "i": i, "n": os.urandom(4).hex()}).encode()
            dc = c.push_blob(repo, config)
            with lock:
                acked["blobs"].append((repo, dc, config))
            m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"mediaType": OCI_CONFIG, "digest": dc, "size": len(config)},
                 "layers": [{"mediaType": OCI_LAYER, "digest": dl, "size": len(layer)}]}
            body = json.dumps(m).encode()
            tag = "t%d" % i
            dm = c.push_manifest(repo, tag, body)
            with lock:
                acked["tags"].append((repo, tag, dm, body))
        except Exception:  # noqa: BLE001 - the server was killed under us
            return


@pytest.fixture(scope="module")
def crash_run():
    tmp = tempfile.TemporaryDirectory(prefix="berth-e2e-")
    root = os.path.join(tmp.name, "root")
    os.makedirs(root)
    s = Server(root).start()
    c = RegClient(s, timeout=5)
    rnd = random.Random(4242)
    acked = {"blobs": [], "tags": []}
    lock = threading.Lock()
    stop = threading.Event()
    ts = [threading.Thread(target=pusher, args=(c, w, stop, acked, lock)) for w in range(4)]
    for t in ts:
        t.start()
    time.sleep(rnd.uniform(1.0, 3.0))
    s.kill9()
    stop.set()
    for t in ts:
        t.join(15)
    run = CrashRun()
    run.server, run.client, run.root = s, c, root
    run.blobs, run.tags = list(acked["blobs"]), list(acked["tags"])
    run.alive_threads = [t for t in ts if t.is_alive()]
    s.port = free_port()
    try:
        s.start()
        run.start_error = None
    except Exception as e:  # noqa: BLE001
        run.start_error = e
    yield run
    try:
        if s.proc:
            s.stop()
    finally:
        tmp.cleanup()


def test_kill9_server_restarts(crash_run):
    assert crash_run.start_error is None, crash_run.start_error
    assert crash_run.client.alive()


def test_kill9_clients_did_not_hang(crash_run):
    assert not crash_run.alive_threads


def test_kill9_pushes_were_acknowledged(crash_run):
    """Sanity: the run got far enough to be meaningful."""
    assert len(crash_run.tags) >= 4, (len(crash_run.blobs), len(crash_run.tags))


def test_kill9_acknowledged_blobs_survive(crash_run):
    assert crash_run.start_error is None
    c = crash_run.client
    bad = []
    for repo, d, data in crash_run.blobs:
        r = c.get("/v2/%s/blobs/%s" % (repo, d))
        if r.status != 200 or r.body != data:
            bad.append((repo, d, r.status, len(r.body), len(data)))
    assert not bad, bad[:10]


def test_kill9_acknowledged_tags_survive(crash_run):
    assert crash_run.start_error is None
    c = crash_run.client
    bad = []
    for repo, tag, d, body in crash_run.tags:
        r = c.get("/v2/%s/manifests/%s" % (repo, tag))
        if r.status != 200 or r.body != body or r.header("Docker-Content-Digest") != d:
            bad.append((repo, tag, d, r.status))
    assert not bad, bad[:10]


def test_kill9_acknowledged_tags_listed(crash_run):
    assert crash_run.start_error is None
    c = crash_run.client
    want = {}
    for repo, tag, _, _ in crash_run.tags:
        want.setdefault(repo, set()).add(tag)
    for repo, tags in want.items():
        r = c.get("/v2/%s/tags/list" % repo)
        assert r.status == 200, r
        assert tags <= set(r.json()["tags"])


def test_kill9_no_corrupt_blob_files(crash_run):
    files = blob_files(crash_run.root)
    assert files
    bad = [f for f in files if not file_digest_ok(crash_run.root, f)]
    assert not bad, bad[:10]


def test_kill9_new_pushes_work_after_restart(crash_run):
    assert crash_run.start_error is None
    c = crash_run.client
    repo = "crash/after"
    img = c.make_image(repo, tag="after")
    assert c.get("/v2/%s/manifests/after" % repo).body == img["body"]
    # the same repositories the killed clients used are writable too
    c.make_image("crash/w0", tag="after")


# ---------------------------------------------------------------- graceful stop, concurrent tags

def test_sigterm_finishes_in_flight_upload(server_factory):
    """SIGTERM while a body trickles in: the request completes (201), exit code 0."""
    import signal
    import socket
    s = server_factory()
    c = RegClient(s)
    repo = uniq("term")
    data = rand_bytes(40000, seed=51)
    out = {}

    def trickle():
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        try:
            sock.sendall(("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n"
                          % (repo, sha256(data), len(data))).encode())
            for i in range(0, len(data), 4000):
                sock.sendall(data[i:i + 4000])
                time.sleep(0.05)
            raw = b""
            while True:
                ch = sock.recv(65536)
                if not ch:
                    break
                raw += ch
            out["raw"] = raw
        except OSError as e:
            out["err"] = e
        finally:
            sock.close()

    t = threading.Thread(target=trickle)
    t.start()
    time.sleep(0.2)
    s.proc.send_signal(signal.SIGTERM)
    t.join(20)
    rc = s.proc.wait(timeout=30)
    s.proc = None
    s.log.close()
    assert rc == 0, s.read_log()[-3000:]
    assert out.get("raw", b"").startswith(b"HTTP/1.1 201"), out
    s.port = free_port()
    s.start()
    assert c.get("/v2/%s/blobs/%s" % (repo, sha256(data))).body == data


def test_concurrent_pushes_same_tag(server_factory):
    """8 clients push different manifests under one tag: the tag resolves to one of them."""
    s = server_factory()
    c = RegClient(s)
    repo = uniq("race")
    imgs = [c.make_image(repo) for _ in range(8)]
    barrier = threading.Barrier(8)
    results = [None] * 8

    def worker(i):
        try:
            barrier.wait(timeout=30)
            results[i] = c.put_manifest(repo, "hot", imgs[i]["body"]).status
        except Exception as e:  # noqa: BLE001
            results[i] = e

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results == [201] * 8, results
    r = c.get("/v2/%s/manifests/hot" % repo)
    assert r.status == 200
    assert r.body in [i["body"] for i in imgs]
    assert r.header("Docker-Content-Digest") == sha256(r.body)
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == ["hot"]


def test_concurrent_delete_and_push_no_5xx(server_factory):
    s = server_factory()
    c = RegClient(s)
    repo = uniq("race")
    img = c.make_image(repo, tag="v0")
    errors = []

    def pusher():
        for i in range(30):
            r = c.put_manifest(repo, "t%d" % i, img["body"])
            if r.status >= 500:
                errors.append(r)

    def deleter():
        for i in range(30):
            r = c.delete("/v2/%s/manifests/t%d" % (repo, i))
            if r.status >= 500:
                errors.append(r)
            r = c.delete("/v2/%s/manifests/%s" % (repo, img["digest"]))
            if r.status >= 500:
                errors.append(r)

    ts = [threading.Thread(target=pusher), threading.Thread(target=deleter)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    r = c.get("/v2/%s/tags/list" % repo)
    assert r.status in (200, 404)
    if r.status == 200:
        for t in r.json()["tags"] or []:
            assert c.get("/v2/%s/manifests/%s" % (repo, t)).status == 200, t


# ---------------------------------------------------------------- upload purging

def purge_config(root, age, interval, dryrun=False):
    return """version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: true
      age: %s
      interval: %s
      dryrun: %s
""" % (root, age, interval, "true" if dryrun else "false")


def partial_session(c):
    loc, r = c.start_upload(uniq("purge"))
    uuid = r.header("Docker-Upload-UUID")
    r = c.patch_chunk(loc, b"p" * 5000, start=0)
    assert r.status == 202, r
    return location_path(r), uuid


def test_upload_purge_expires_old_session(server_factory, tmp_path):
    root = str(tmp_path / "root")
    s = server_factory(config=purge_config(root, "2s", "1s"), root=root)
    c = RegClient(s)
    loc, uuid = partial_session(c)
    deadline = time.time() + 10
    while time.time() < deadline and c.get(loc).status != 404:
        time.sleep(0.25)
    assert_error(c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_purge_removes_files(server_factory, tmp_path):
    root = str(tmp_path / "root")
    s = server_factory(config=purge_config(root, "2s", "1s"), root=root)
    c = RegClient(s)
    loc, uuid = partial_session(c)
    deadline = time.time() + 10
    while time.time() < deadline and (c.get(loc).status != 404 or upload_files(root)):
        time.sleep(0.25)
    assert upload_files(root) == []


def test_upload_purge_dryrun_keeps_session(server_factory, tmp_path):
    root = str(tmp_path / "root")
    s = server_factory(config=purge_config(root, "1s", "1s", dryrun=True), root=root)
    c = RegClient(s)
    loc, uuid = partial_session(c)
    time.sleep(3.5)
    r = c.get(loc)
    assert r.status == 204, r
    assert r.header("Range") == "0-4999"


def test_upload_purge_keeps_young_session(server_factory, tmp_path):
    root = str(tmp_path / "root")
    s = server_factory(config=purge_config(root, "1h", "1s"), root=root)
    c = RegClient(s)
    loc, uuid = partial_session(c)
    time.sleep(3)
    r = c.get(loc)
    assert r.status == 204, r
    r = c.finish_upload(loc, sha256(b"p" * 5000))
    assert r.status == 201, r

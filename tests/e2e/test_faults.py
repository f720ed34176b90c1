"""Faults: injected I/O failures, a full disk, slow and abusive clients.

1. Torture (curl's torture mode, sqlite's fault simulator): for each failure
   site of the store, start berth with BERTH_FAULTS=<site>:N for N = 1, 2, ...
   and run one fixed push (blob by POST, blob in chunks, tagged manifest)
   until a run sees no failure. Every failing request must answer a JSON
   error (500, or 507 for ENOSPC); then the server still serves, no partial
   or wrong blob is visible (HEAD 404, every file under blobs/ hashes to its
   name), and retrying the step succeeds. A fault at startup must make berth
   exit 1 with a message. Each server must stop cleanly (exit 0: ASan clean).
2. A full disk: berth's root on an 8 MiB tmpfs.
3. Slow clients, 1,000 connections, clients that vanish mid-transfer,
   oversized headers, bodies, paths and request lines; a client vanishing
   mid-PATCH releases its session at once (the FIN that arrives with the last
   body bytes is seen), and 1,100 slow clients do not lock others out (the
   connection limit follows the raised file-descriptor limit).
Deterministic: fixed seeds, bounded loops, a timeout on every socket.
"""
import hashlib
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import Server
from regclient import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegClient, assert_error,
                       location_path, parse_raw_response, rand_bytes, sha256, uniq,
                       with_query)

HEX_RE = re.compile(r"^[0-9a-f]{64,128}$")
SOCK_TIMEOUT = 10.0


# ---------------------------------------------------------------- helpers

def bad_blob_files(root):
    """Files under <root>/blobs whose path is not blobs/<algo>/<xx>/<hex> with
    content hashing to <hex> (partial, damaged or stray files)."""
    bad = []
    base = os.path.join(root, "blobs")
    for dp, _, fs in os.walk(base):
        for f in fs:
            rel = os.path.relpath(os.path.join(dp, f), base)
            parts = rel.split(os.sep)
            if len(parts) != 3 or parts[0] not in ("sha256", "sha512") or \
                    not HEX_RE.match(parts[2]) or parts[1] != parts[2][:2]:
                bad.append(rel)
                continue
            h = hashlib.new(parts[0])
            with open(os.path.join(base, rel), "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != parts[2]:
                bad.append(rel)
    return bad


def assert_fault_error(r, statuses=(500,)):
    """A failed request: the expected 5xx status and the spec's JSON error
    with a message."""
    assert r.status in statuses, r
    errs = assert_error(r, r.status)
    assert any(e["message"] for e in errs), r


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_until(pred, timeout=5.0, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- 1. torture

class Push:
    """The fixed workload of a torture run: three steps, each retried once."""

    def __init__(self, c, seed, statuses):
        self.c = c
        self.statuses = statuses  # of a failing request
        self.repo = "torture/img"
        self.a = rand_bytes(3000, seed)                      # by monolithic POST
        self.b = rand_bytes(24 * 1024, seed + 1)             # in three chunks
        self.da, self.db = sha256(self.a), sha256(self.b)
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": self.da, "size": len(self.a)},
             "layers": [{"mediaType": OCI_LAYER, "digest": self.db, "size": len(self.b)}]}
        self.manifest = json.dumps(m).encode()
        self.dm = sha256(self.manifest)

    def blob_a(self):
        """One request: a failure is that request's answer."""
        return [self.c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (self.repo, self.da),
                               body=self.a, headers={"Content-Type": "application/octet-stream"})]

    def blob_b(self):
        """POST, PATCH, PATCH, PUT with the last chunk. A failed PATCH must
        leave the session's offset where it was, and resending it works."""
        c, out = self.c, []
        r = c.request("POST", "/v2/%s/blobs/uploads/" % self.repo)
        out.append(r)
        if r.status != 202:
            return out
        loc = location_path(r)
        third = len(self.b) // 3
        for off in (0, third):
            chunk = self.b[off:off + third]
            r = c.patch_chunk(loc, chunk, start=off)
            out.append(r)
            if r.status != 202:
                assert_fault_error(r, self.statuses)
                s = c.get(loc)
                assert s.status == 204, s
                assert s.header("Range") == ("0-%d" % (off - 1) if off else "0-0"), s
                r = c.patch_chunk(loc, chunk, start=off)  # the fault passed
                assert r.status == 202, r
            loc = location_path(r)
        r = c.request("PUT", with_query(loc, digest=self.db), body=self.b[2 * third:],
                      headers={"Content-Type": "application/octet-stream",
                               "Content-Range": "%d-%d" % (2 * third, len(self.b) - 1)})
        out.append(r)
        if r.status != 201:
            # the session either still holds the first two chunks or is gone
            s = c.get(loc)
            assert (s.status == 204 and s.header("Range") == "0-%d" % (2 * third - 1)) or \
                s.status == 404, s
        return out

    def manifest_put(self):
        return [self.c.put_manifest(self.repo, "v1", self.manifest)]

    def absent(self, step):
        """What a failed step must not have made visible."""
        c = self.c
        if step == "blob_a":
            r = c.head("/v2/%s/blobs/%s" % (self.repo, self.da))
        elif step == "blob_b":
            r = c.head("/v2/%s/blobs/%s" % (self.repo, self.db))
        else:
            r = c.head("/v2/%s/manifests/v1" % self.repo)
        assert r.status == 404, r


def torture_run(tmp, env, statuses):
    """One server under `env`. Returns the number of failed requests (0: the
    fault never fired); -1 when berth refused to start (checked here)."""
    root = os.path.join(tmp, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    s = Server(root, env=env)
    try:
        s.start()
    except RuntimeError:
        # a fault while opening the store: a clean exit 1 with the reason
        assert s.proc.returncode == 1, s.read_log()
        assert "error cannot open storage" in s.read_log(), s.read_log()
        s.log.close()
        return -1
    failures = 0
    try:
        c = RegClient(s, timeout=SOCK_TIMEOUT)
        p = Push(c, 7, statuses)
        for step in ("blob_a", "blob_b", "manifest_put"):
            for attempt in (1, 2):
                rs = getattr(p, step)()
                bad = [r for r in rs if r.status >= 300]
                failures += len(bad)
                for r in bad:
                    assert_fault_error(r, statuses)
                if rs[-1].status == 201:
                    break  # done (perhaps after resending a failed chunk)
                assert attempt == 1, "retry after the fault failed: %r" % bad
                assert c.alive()
                p.absent(step)
                assert bad_blob_files(root) == []
        # everything is there and exact
        r = c.get("/v2/%s/manifests/v1" % p.repo)
        assert r.status == 200 and r.body == p.manifest, r
        assert r.header("Docker-Content-Digest") == p.dm, r
        for d, data in ((p.da, p.a), (p.db, p.b)):
            r = c.get("/v2/%s/blobs/%s" % (p.repo, d))
            assert r.status == 200 and r.body == data, r
        assert bad_blob_files(root) == []
    finally:
        s.stop()  # exit 0 required: no leak or crash on any error path
    return failures


# site name in BERTH_FAULTS, expected statuses of the failing request
TORTURE = [
    ("upload_write", (500,)),
    ("upload_write_nospc", (507,)),
    ("upload_fsync", (500,)),
    ("blob_link", (500,)),
    ("dir_fsync", (500,)),
    ("db_commit", (500,)),
    ("db_commit_nospc", (507,)),
]


@pytest.mark.parametrize("site,statuses", TORTURE, ids=[t[0] for t in TORTURE])
def test_fault_torture(site, statuses):
    fired = 0
    with tempfile.TemporaryDirectory(prefix="berth-fault-") as tmp:
        for n in range(1, 40):
            got = torture_run(tmp, {"BERTH_FAULTS": "%s:%d" % (site, n)}, statuses)
            if got == 0:
                break  # the Nth call never happens in this workload: all done
            fired += 1
        else:
            pytest.fail("%s: still failing after 39 calls" % site)
    print("%s: %d runs with an injected fault" % (site, fired))
    assert fired >= 1, "site %s never fired" % site


def test_fault_random_writes_seeded(server_factory):
    """p0.3 on every write and commit site with a fixed seed: every push
    either succeeds or fails with a JSON 5xx, and retries get everything in."""
    s = server_factory(env={"BERTH_FAULTS": "upload_write:p0.3,upload_fsync:p0.1,"
                                            "blob_link:p0.1,db_commit:p0.1",
                            "BERTH_FAULT_SEED": "42"})
    c = RegClient(s, timeout=SOCK_TIMEOUT)
    repo = "random/faults"
    failed = 0
    for i in range(20):
        data = rand_bytes(2000 + i, seed=100 + i)
        d = sha256(data)
        for attempt in range(30):
            r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
                          headers={"Content-Type": "application/octet-stream"})
            if r.status == 201:
                break
            assert_fault_error(r)
            failed += 1
            assert c.head("/v2/%s/blobs/%s" % (repo, d)).status == 404
        else:
            pytest.fail("blob %d never got in" % i)
        assert c.get("/v2/%s/blobs/%s" % (repo, d)).body == data
    assert failed > 0  # with p0.3 over 20 pushes the faults did fire
    assert bad_blob_files(s.root) == []


# ---------------------------------------------------------------- 2. disk full

@pytest.fixture
def small_tmpfs():
    d = tempfile.mkdtemp(prefix="berth-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %s" %
                    (r.stderr.strip() or r.returncode))
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=False)
        os.rmdir(d)


def test_disk_full(small_tmpfs):
    filler = os.path.join(small_tmpfs, "filler")
    with open(filler, "wb") as f:  # taken first, given back at the end
        f.write(b"\0" * (2 << 20))
    root = os.path.join(small_tmpfs, "root")
    os.makedirs(root)
    s = Server(root)
    logdir = tempfile.mkdtemp(prefix="berth-log-")
    s.log_path = os.path.join(logdir, "berth.log")  # off the full disk
    s.start()
    try:
        c = RegClient(s, timeout=SOCK_TIMEOUT)
        img = c.make_image("full/img", tag="v1", layers=[rand_bytes(200 * 1024, seed=5)])
        pushed, failed = [], None
        for i in range(20):
            data = rand_bytes(1 << 20, seed=1000 + i)
            d = sha256(data)
            r = c.request("POST", "/v2/full/img/blobs/uploads/?digest=%s" % d, body=data,
                          headers={"Content-Type": "application/octet-stream"})
            if r.status != 201:
                failed = (r, data, d)
                break
            pushed.append((d, data))
        assert failed, "8 MiB never filled up"
        r, data, d = failed
        assert_fault_error(r, (507, 500))
        # reads keep working; nothing partial is visible
        assert c.alive()
        g = c.get("/v2/full/img/manifests/v1")
        assert g.status == 200 and g.body == img["body"], g
        for bd, bdata in [(img["layer_digests"][0], img["layers"][0])] + pushed:
            g = c.get("/v2/full/img/blobs/%s" % bd)
            assert g.status == 200 and g.body == bdata, g
        assert c.head("/v2/full/img/blobs/%s" % d).status == 404
        assert bad_blob_files(root) == []
        # a chunked push hits the wall too, and leaves its session intact
        loc, _ = c.start_upload("full/img")
        r = c.patch_chunk(loc, data, start=0)
        if r.status != 202:  # (it may fit after all: freed pages, a smaller WAL)
            assert_fault_error(r, (507, 500))
            st = c.get(loc)
            assert st.status == 204 and st.header("Range") == "0-0", st
        assert c.request("DELETE", loc).status == 204
        # space returns: the push that failed now succeeds
        os.unlink(filler)
        r = c.request("POST", "/v2/full/img/blobs/uploads/?digest=%s" % d, body=data,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status == 201, r
        assert c.get("/v2/full/img/blobs/%s" % d).body == data
        assert bad_blob_files(root) == []
    finally:
        s.stop()
        shutil.rmtree(logdir, ignore_errors=True)


# ---------------------------------------------------------------- 3. slow and abusive clients

@pytest.fixture(scope="module")
def srv():
    tmp = tempfile.TemporaryDirectory(prefix="berth-e2e-")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by berth
    r = os.path.join(tmp.name, "root")
    os.makedirs(r)
    s = Server(r).start()
    yield s
    try:
        s.stop()
    finally:
        tmp.cleanup()


@pytest.fixture
def c(srv):
    return RegClient(srv, timeout=SOCK_TIMEOUT)


def test_slowloris_does_not_starve(srv, c):
    """50 clients sending a request one byte per second; a normal client
    still gets GET /v2/ in under a second, every time."""
    req = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n"
    socks = []
    for _ in range(50):
        sk = socket.create_connection(("127.0.0.1", srv.port), timeout=SOCK_TIMEOUT)
        socks.append(sk)
    stop = threading.Event()

    def drip():
        i = 0
        while not stop.is_set() and i < len(req) - 4:  # never completes the request
            for sk in socks:
                try:
                    sk.send(req[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(1.0)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        worst = 0.0
        for _ in range(8):
            t0 = time.monotonic()
            r = c.request("GET", "/v2/", timeout=5)
            dt = time.monotonic() - t0
            assert r.status == 200, r
            worst = max(worst, dt)
            time.sleep(0.4)
        assert worst < 1.0, "GET /v2/ took %.3f s beside 50 slow clients" % worst
    finally:
        stop.set()
        t.join(5)
        for sk in socks:
            sk.close()


def test_slowloris_beyond_connection_limit(server_factory):
    s = server_factory(extra_args=["--log-level", "warn"])
    socks = []
    try:
        for _ in range(1100):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=SOCK_TIMEOUT)
            sk.send(b"G")
            socks.append(sk)
        time.sleep(0.3)
        r = RegClient(s).request("GET", "/v2/", timeout=2)
        assert r.status == 200, r
    finally:
        for sk in socks:
            sk.close()


def test_thousand_concurrent_connections(srv):
    """1,000 connections open at once, each sends GET /v2/: all answer 200."""
    n = 1000
    sel = selectors.DefaultSelector()
    req = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    conns = {}
    for _ in range(n):
        sk = socket.socket()
        sk.setblocking(False)
        sk.connect_ex(("127.0.0.1", srv.port))
        conns[sk] = {"out": req, "in": b""}
        sel.register(sk, selectors.EVENT_WRITE)
    done = {}
    deadline = time.monotonic() + 60
    try:
        while len(done) < n and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1.0):
                sk, st = key.fileobj, conns[key.fileobj]
                if ev & selectors.EVENT_WRITE:
                    try:
                        k = sk.send(st["out"])
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        done[sk] = "send: %s" % e
                        sel.unregister(sk)
                        continue
                    st["out"] = st["out"][k:]
                    if not st["out"]:
                        sel.modify(sk, selectors.EVENT_READ)
                else:
                    try:
                        chunk = sk.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as e:
                        chunk = b""
                        st["err"] = str(e)
                    if chunk:
                        st["in"] += chunk
                    else:
                        status, _, _ = parse_raw_response(st["in"])
                        done[sk] = status or st.get("err", "closed")
                        sel.unregister(sk)
    finally:
        sel.close()
        for sk in conns:
            sk.close()
    statuses = {}
    for v in done.values():
        statuses[v] = statuses.get(v, 0) + 1
    assert len(done) == n, "only %d of %d finished in 60 s: %r" % (len(done), n, statuses)
    assert statuses == {200: n}, statuses
    assert RegClient(srv).alive()


def raw_conn(srv):
    return socket.create_connection(("127.0.0.1", srv.port), timeout=SOCK_TIMEOUT)


def read_response(sk, timeout=SOCK_TIMEOUT):
    """Read until the server closes or a whole response with Content-Length
    arrived; (status, headers, body) or (None, ...) when it only closed."""
    sk.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sk.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        status, hdrs, rest = parse_raw_response(buf)
        if status is not None and hdrs.get("Content-Length") is not None and \
                len(rest) >= int(hdrs.get("Content-Length")):
            break
    return parse_raw_response(buf)


def send_half_patch(srv, loc, start, rest, pause):
    """PATCH announcing `rest`, send half of it, (pause,) close."""
    sk = raw_conn(srv)
    sk.sendall(("PATCH %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Range: %d-%d\r\nContent-Length: %d\r\n\r\n"
                % (loc, start, start + len(rest) - 1, len(rest))).encode() +
               rest[:len(rest) // 2])
    if pause:
        time.sleep(pause)
    sk.close()


def patch_when_free(c, loc, chunk, start, timeout):
    """PATCH, retrying while the session is still held by the vanished
    request (400 "in use by another request")."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.patch_chunk(loc, chunk, start=start)
        if r.status != 400 or b"in use" not in r.body or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_disconnect_mid_upload(srv, c):
    """A client vanishes halfway through a PATCH body (three times): the
    acknowledged offset stays, nothing partial is stored, the session then
    goes on. The close comes after the data (see the next test for why)."""
    repo = uniq("faults")
    data = rand_bytes(1 << 20, seed=11)
    loc, _ = c.start_upload(repo)
    r = c.patch_chunk(loc, data[:100000], start=0)
    assert r.status == 202, r
    loc = location_path(r)
    for _ in range(3):
        send_half_patch(srv, loc, 100000, data[100000:], pause=0.3)
        st = c.get(loc)
        assert st.status == 204 and st.header("Range") == "0-99999", st
    r = patch_when_free(c, loc, data[100000:], 100000, timeout=5)
    assert r.status == 202, r
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    assert c.get("/v2/%s/blobs/%s" % (repo, sha256(data))).body == data
    assert bad_blob_files(srv.root) == []
    assert c.alive()


def test_disconnect_mid_upload_releases_session_promptly(server_factory):
    s = server_factory()
    c = RegClient(s, timeout=SOCK_TIMEOUT)
    data = rand_bytes(256 * 1024, seed=13)
    try:
        for i in range(5):
            loc, _ = c.start_upload(uniq("faults"))
            send_half_patch(s, loc, 0, data, pause=0)  # data and FIN in one go
            st = c.get(loc)
            assert st.status == 204 and st.header("Range") == "0-0", st
            r = patch_when_free(c, loc, data, 0, timeout=2)
            assert r.status == 202, "attempt %d: session held 2 s after the close: %r" % (i, r)
    finally:
        s.kill9()  # a stuck request would hold a clean stop for its 10 s grace


def test_disconnect_mid_download(srv, c):
    repo = uniq("faults")
    data = rand_bytes(16 << 20, seed=12)
    d = c.push_blob_streamed(repo, data)
    base = open_fds(srv.proc.pid)
    for _ in range(5):
        sk = raw_conn(srv)
        sk.sendall(("GET /v2/%s/blobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                    % (repo, d)).encode())
        got = 0
        while got < (1 << 20):
            chunk = sk.recv(65536)
            assert chunk, "server closed early"
            got += len(chunk)
        sk.close()
    assert c.alive()
    r = c.get("/v2/%s/blobs/%s" % (repo, d))
    assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == d.split(":")[1]
    # the aborted responses' blob fds are closed again
    assert wait_until(lambda: open_fds(srv.proc.pid) <= base + 2), \
        "fds: %d before, %d after" % (base, open_fds(srv.proc.pid))


@pytest.mark.parametrize("shape", ["many", "one"])
def test_oversized_headers(srv, c, shape):
    """100 KiB of headers: as 100 headers of 1 KiB, or as one of 100 KiB."""
    if shape == "many":
        hdrs = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(100))
    else:
        hdrs = b"X-Pad: " + b"a" * (100 * 1024) + b"\r\n"
    sk = raw_conn(srv)
    try:
        sk.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hdrs + b"\r\n")
        status, _, _ = read_response(sk)
    finally:
        sk.close()
    assert status is not None and 400 <= status < 500, status
    assert c.alive()


def test_oversized_manifest_content_length(srv, c):
    """10 MiB announced: 413 before the body is read."""
    sk = raw_conn(srv)
    try:
        sk.sendall(("PUT /v2/%s/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
                    % (uniq("faults"), OCI_MANIFEST, 10 << 20)).encode())
        status, hdrs, body = read_response(sk)
    finally:
        sk.close()
    assert status == 413, (status, body)
    assert json.loads(body)["errors"][0]["code"] == "SIZE_INVALID"
    assert c.alive()


def test_oversized_manifest_chunked(srv, c):
    """10 MiB in chunked encoding (no size up front): 413 too."""
    body = b"x" * (10 << 20)
    r = c.request("PUT", "/v2/%s/manifests/v1" % uniq("faults"),
                  body=[body[i:i + (256 << 10)] for i in range(0, len(body), 256 << 10)],
                  headers={"Content-Type": OCI_MANIFEST}, chunked=True, timeout=30)
    assert_error(r, 413, "SIZE_INVALID")
    assert c.alive()


def test_ten_thousand_segment_path(srv, c):
    path = "/v2/" + "a/" * 10000 + "manifests/latest"
    r = c.get(path)
    assert 400 <= r.status < 500, r
    r = c.get("/v2/" + "a/" * 10000 + "tags/list")
    assert 400 <= r.status < 500, r
    assert c.alive()


def test_one_mib_request_line(srv, c):
    sk = raw_conn(srv)
    status = None
    try:
        try:
            sk.sendall(b"GET /v2/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before reading it all
        status, _, _ = read_response(sk)
    finally:
        sk.close()
    # an answer, if it got through before the close, is a 4xx
    assert status is None or 400 <= status < 500, status
    assert c.alive()

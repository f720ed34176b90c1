"""berth's client under transport faults, and the Docker engine reading and
writing berth's docker-archives.

A FaultRelay (threads + sockets on 127.0.0.1) sits between `berth` and a real
`berth serve` and injects one fault, once:

  * cut a request body: after N bytes of the body of the k-th matching
    request (a PATCH chunk), close both sides — `berth push` must ask the
    session where it stands (GET .../blobs/uploads/<id>) and resume with a
    PATCH from the registry's offset;
  * cut a response body: after N bytes of a blob GET's 200 body — `berth pull`
    must resume with `Range: bytes=N-` and still verify the digest;
  * flip one byte of a blob GET's body — the digest mismatch is detected,
    exit 1, nothing lands under the destination's blobs/;
  * answer 503 with Retry-After itself (the registry never sees it) — the
    client waits at least Retry-After seconds and sends the request again.

BERTH_CHUNK_SIZE (read by src/client/registry.c, a test knob) makes a 3 MiB
layer go up in 1 MiB PATCH chunks instead of one PUT.
"""
import hashlib
import http.client
import os
import re
import select
import socket
import threading
import time

import pytest

import imagegen
from clients import docker  # noqa: F401  (fixture)
from test_client_common import berth, fails

MiB = 1024 * 1024
CHUNK = MiB
CHUNK_ENV = {"BERTH_CHUNK_SIZE": str(CHUNK)}


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# the fault-injecting relay

class Fault:
    """One fault, applied once to the `nth` request matching method + path_re.

    kind: "cut-request" (close both sides after `at` body bytes of the request),
          "cut-response" (close both sides after `at` bytes of a 200 body),
          "flip-response" (xor byte `at` of a 200 body with 0xff),
          "503" (the relay answers 503 + Retry-After: `at` without forwarding).
    """

    def __init__(self, kind, method, path_re, at, nth=1):
        self.kind, self.method, self.path_re, self.at, self.nth = kind, method, path_re, at, nth
        self.seen = 0
        self.fired = False


class FaultRelay:
    """TCP relay to `upstream` ("host:port") that records requests and applies
    one Fault. Requests are parsed with Content-Length framing (what libcurl
    sends berth's uploads with); responses only around the faulted request:
    libcurl does not pipeline, so once a request is read every earlier
    response on that connection has gone through."""

    HEAD_MAX = 64 * 1024

    def __init__(self, upstream, fault):
        self.upstream = upstream.rsplit(":", 1)
        self.fault = fault
        self.lock = threading.Lock()
        self.requests = []  # (method, target, {header: value}) in arrival order
        self.conns = []
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        self.closed = True
        self.lsock.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass

    def matching(self, method, path_re):
        with self.lock:
            return [r for r in self.requests if r[0] == method and re.search(path_re, r[1])]

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    # ---- one connection

    def _take(self, method, target):
        """The fault kind if this request is the one to fault, else None."""
        f = self.fault
        with self.lock:
            if f.fired or f.method != method or not re.search(f.path_re, target):
                return None
            f.seen += 1
            if f.seen != f.nth:
                return None
            f.fired = True
            return f.kind

    def _conn(self, c):
        try:
            u = socket.create_connection((self.upstream[0], int(self.upstream[1])), timeout=30)
        except OSError:
            c.close()
            return
        with self.lock:
            self.conns += [c, u]
        st = {"head": b"", "left": 0, "cut": None, "swallow": False, "resp": None}
        try:
            while not self.closed:
                r, _, _ = select.select([c, u], [], [], 30)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is c:
                        if not self._from_client(st, data, c, u):
                            return
                    elif not self._from_server(st, data, c):
                        return
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    def _from_client(self, st, data, c, u):
        """Forward client bytes; False to drop the connection."""
        i = 0
        while i < len(data):
            if st.get("raw"):
                u.sendall(data[i:])
                return True
            if st["left"] == 0:  # reading a request head
                st["head"] += data[i:]
                i = len(data)
                if not st["head"][:1].isupper():
                    # not HTTP/1.x (the client's TLS probe): pass it through
                    st["raw"] = True
                    u.sendall(st["head"])
                    return True
                end = st["head"].find(b"\r\n\r\n")
                if end < 0:
                    if len(st["head"]) > self.HEAD_MAX:
                        return False
                    break
                head, rest = st["head"][:end + 4], st["head"][end + 4:]
                st["head"] = b""
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                hdrs = {}
                for l in lines[1:]:
                    if ":" in l:
                        k, v = l.split(":", 1)
                        hdrs[k.strip().lower()] = v.strip()
                with self.lock:
                    self.requests.append((method, target, hdrs))
                st["left"] = int(hdrs.get("content-length", "0"))
                st["cut"], st["swallow"], st["sent"] = None, False, 0
                kind = self._take(method, target)
                if kind == "503":
                    st["swallow"] = True
                else:
                    u.sendall(head)
                    if kind == "cut-request":
                        st["cut"] = self.fault.at
                    elif kind in ("cut-response", "flip-response"):
                        st["resp"] = {"kind": kind, "head": b"", "body": None}
                if st["swallow"] and st["left"] == 0:
                    self._answer_503(st, c)
                # the body bytes that came with the head
                data, i = rest, 0
                continue
            k = min(st["left"], len(data) - i)
            chunk = data[i:i + k]
            i += k
            if st["cut"] is not None and st["sent"] + k >= st["cut"]:
                u.sendall(chunk[:st["cut"] - st["sent"]])
                time.sleep(0.05)  # let the partial body reach the registry
                return False
            if not st["swallow"]:
                u.sendall(chunk)
            st["sent"] += k
            st["left"] -= k
            if st["left"] == 0 and st["swallow"]:
                self._answer_503(st, c)
        return True

    def _answer_503(self, st, c):
        st["swallow"] = False
        body = (b'{"errors":[{"code":"UNAVAILABLE","message":"injected by the test relay"}]}')
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %d\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % (self.fault.at, len(body)) + body)

    def _from_server(self, st, data, c):
        rs = st["resp"]
        if rs is None:
            c.sendall(data)
            return True
        if rs["body"] is None:  # the faulted request's response head
            rs["head"] += data
            end = rs["head"].find(b"\r\n\r\n")
            if end < 0:
                return len(rs["head"]) < self.HEAD_MAX
            head, data = rs["head"][:end + 4], rs["head"][end + 4:]
            c.sendall(head)
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                with self.lock:  # not the body we wanted (redirect...): fault the next one
                    self.fault.fired = False
                    self.fault.seen -= 1
                st["resp"] = None
                c.sendall(data)
                return True
            rs["body"] = 0
        at, off = self.fault.at, rs["body"]
        if rs["kind"] == "cut-response" and off + len(data) >= at:
            c.sendall(data[:at - off])
            time.sleep(0.05)
            return False
        if rs["kind"] == "flip-response" and off <= at < off + len(data):
            b = bytearray(data)
            b[at - off] ^= 0xFF
            data = bytes(b)
            st["resp"] = None  # done: pass the rest through
        else:
            rs["body"] = off + len(data)
        c.sendall(data)
        return True


@pytest.fixture
def relay():
    made = []

    def make(upstream, fault):
        made.append(FaultRelay(upstream, fault))
        return made[-1]

    yield make
    for r in made:
        r.close()


# --------------------------------------------------------------------------
# helpers

LOG_LINE = re.compile(r"\b(GET|HEAD|POST|PUT|PATCH|DELETE) (/v2/\S*) (\d+) (\d+) \d+ms \S+ -( aborted)?")


def server_requests(server, since=0):
    """(method, target, status, bytes, aborted) of berth serve's access log."""
    return [(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), bool(m.group(5)))
            for m in map(LOG_LINE.search, server.read_log()[since:].splitlines()) if m]


def http_blob(host, repo, digest):
    h, p = host.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=30)
    c.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, (r.status, body[:300])
    return body, r.getheader("Docker-Content-Digest")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """An OCI layout with one image: a ~3 MiB layer (three 1 MiB chunks) + a small one."""
    d = str(tmp_path_factory.mktemp("resume") / "layout")
    img = imagegen.Image([imagegen.make_layer("resume-big", 3 * MiB, nfiles=3),
                          imagegen.make_layer("resume-small", 4096)])
    info = imagegen.write_oci_layout(d, {"v1": img})
    assert img.layers[0].size > 2 * CHUNK + 1000
    return d, img, info["v1"]


def upload_session(target):
    m = re.match(r"(/v2/.+/blobs/uploads/[^/?]+)", target)
    return m and m.group(1)


def push_through_cut(registry, relay, big, repo, nth, at):
    d, img, info = big
    layer = img.layers[0]
    mark = len(registry.read_log())
    r = relay(registry.host, Fault("cut-request", "PATCH", r"/blobs/uploads/", at, nth=nth))
    ref = "%s/%s:v1" % (r.host, repo)
    out = berth("push", "-q", "oci:%s:v1" % d, ref, env=CHUNK_ENV, timeout=60)
    assert out.stdout.strip() == info["digest"]
    assert r.fault.fired, "the relay never cut a PATCH"

    # the client: PATCH k dropped, GET of the session, PATCH again from the registry's offset
    patches = r.matching("PATCH", r"/blobs/uploads/")
    held = (nth - 1) * CHUNK  # the registry rolls a broken chunk back
    ranges = [p[2].get("content-range") for p in patches]
    nchunks = -(-layer.size // CHUNK)
    assert len(patches) == nchunks + 1, ranges  # every chunk once, the cut one twice
    assert ranges[nth - 1] == ranges[nth] == "%d-%d" % (held, min(held + CHUNK, layer.size) - 1), ranges
    sess = upload_session(patches[nth - 1][1])
    assert [q for q in r.requests if q[0] == "GET" and upload_session(q[1]) == sess], r.requests

    # the registry's side of it, from its access log (query strings included)
    log = server_requests(registry, mark)
    mine = [q for q in log if upload_session(q[1]) == sess]
    kinds = [(q[0], q[2]) for q in mine]
    status_at = kinds.index(("GET", 204))
    assert kinds[status_at - 1][0] == "PATCH" and kinds[status_at - 1][1] != 202, kinds
    assert kinds[status_at + 1] == ("PATCH", 202), kinds
    puts = [q for q in mine if q[0] == "PUT"]
    assert len(puts) == 1 and puts[0][2] == 201, mine
    assert "digest=" + layer.digest in puts[0][1], puts  # ?digest= is logged
    # and the registry holds the right bytes under the right digest
    body, dcd = http_blob(registry.host, repo, layer.digest)
    assert sha(body) == layer.digest and dcd == layer.digest
    assert berth("digest", "%s/%s:v1" % (registry.host, repo)).stdout.strip() == info["digest"]


# --------------------------------------------------------------------------
# chunked upload resumed after a dropped connection

def test_push_resumes_after_patch_cut_mid_upload(registry, relay, big):
    """The 2nd PATCH is cut 300 KiB into its body: resume at 1 MiB."""
    push_through_cut(registry, relay, big, "resume/mid", nth=2, at=300 * 1024)


def test_push_resumes_after_first_patch_cut(registry, relay, big):
    """The 1st PATCH is cut: the session holds nothing (Range: 0-0) and the
    client must resend from byte 0, not from byte 1."""
    push_through_cut(registry, relay, big, "resume/first", nth=1, at=200 * 1024)


def test_push_patch_503_retried(registry, relay, big):
    """A 503 on a PATCH chunk: wait Retry-After, ask the session, go on."""
    d, img, info = big
    r = relay(registry.host, Fault("503", "PATCH", r"/blobs/uploads/", 1, nth=2))
    t0 = time.time()
    out = berth("push", "-q", "oci:%s:v1" % d, "%s/resume/patch503:v1" % r.host,
                env=CHUNK_ENV, timeout=60)
    assert out.stdout.strip() == info["digest"]
    assert r.fault.fired and time.time() - t0 >= 1.0
    body, _ = http_blob(registry.host, "resume/patch503", img.layers[0].digest)
    assert sha(body) == img.layers[0].digest


# --------------------------------------------------------------------------
# downloads resumed with Range, corrupted downloads detected

def test_pull_resumes_with_range(registry, relay, big, tmp_path):
    d, img, info = big
    layer = img.layers[0]
    berth("push", "-q", "oci:%s:v1" % d, "%s/resume/pull:v1" % registry.host)
    at = 1234567
    mark = len(registry.read_log())
    r = relay(registry.host, Fault("cut-response", "GET", re.escape(layer.digest) + "$", at))
    o = str(tmp_path / "out")
    berth("pull", "-q", "%s/resume/pull:v1" % r.host, "oci:%s:v1" % o, timeout=60)
    assert r.fault.fired
    gets = r.matching("GET", re.escape(layer.digest) + "$")
    assert [g[2].get("range") for g in gets] == [None, "bytes=%d-" % at], gets
    log = [q for q in server_requests(registry, mark) if q[1].endswith(layer.digest) and q[0] == "GET"]
    assert [q[2] for q in log] == [200, 206], log
    assert log[1][3] == layer.size - at, log  # the resumed GET sent only the rest
    assert imagegen.read_oci_layout(o)["v1"]["digest"] == info["digest"]
    data = imagegen.read_blob(o, layer.digest)
    assert sha(data) == layer.digest and data == layer.blob


def test_pull_detects_corrupted_download(registry, relay, big, tmp_path):
    d, img, info = big
    layer = img.layers[0]
    berth("push", "-q", "oci:%s:v1" % d, "%s/resume/corrupt:v1" % registry.host)
    r = relay(registry.host, Fault("flip-response", "GET", re.escape(layer.digest) + "$", 777777))
    o = str(tmp_path / "out")
    res = fails(["pull", "-q", "%s/resume/corrupt:v1" % r.host, "oci:%s:v1" % o], 1)
    assert r.fault.fired
    assert layer.digest in res.stderr and "digest" in res.stderr, res.stderr
    blobs = os.path.join(o, "blobs")
    left = [os.path.join(dp, f) for dp, _, fs in os.walk(blobs) for f in fs] if os.path.isdir(blobs) else []
    # nothing under blobs/ holds the corrupted layer (no file, no temp file)
    assert not [f for f in left if os.path.basename(f).startswith(layer.digest.split(":")[1])], left
    assert not [f for f in left if ".tmp" in f], left
    assert not os.path.exists(os.path.join(o, "index.json")) or \
        "v1" not in imagegen.read_oci_layout(o), "a tag for a failed pull"


def test_pull_blob_503_retry_after(registry, relay, big, tmp_path):
    d, img, info = big
    layer = img.layers[1]
    berth("push", "-q", "oci:%s:v1" % d, "%s/resume/r503:v1" % registry.host)
    mark = len(registry.read_log())
    r = relay(registry.host, Fault("503", "GET", re.escape(layer.digest) + "$", 2))
    o = str(tmp_path / "out")
    t0 = time.time()
    berth("pull", "-q", "%s/resume/r503:v1" % r.host, "oci:%s:v1" % o, timeout=60)
    took = time.time() - t0
    assert r.fault.fired
    assert len(r.matching("GET", re.escape(layer.digest) + "$")) == 2
    assert took >= 2.0, "did not wait Retry-After: 2 (%.2fs)" % took
    # the 503 came from the relay: the registry saw the blob GET once
    log = [q for q in server_requests(registry, mark) if q[1].endswith(layer.digest) and q[0] == "GET"]
    assert [q[2] for q in log] == [200], log
    assert imagegen.read_blob(o, layer.digest) == layer.blob


def test_push_upload_start_503_retry_after(registry, relay, tmp_path):
    img = imagegen.build_image(seed="resume-post503", layers=1, size=8 * 1024)
    d = str(tmp_path / "lay")
    info = imagegen.write_oci_layout(d, {"v1": img})
    r = relay(registry.host, Fault("503", "POST", r"/blobs/uploads/", 1))
    t0 = time.time()
    out = berth("push", "-q", "oci:%s:v1" % d, "%s/resume/post503:v1" % r.host)
    assert out.stdout.strip() == info["v1"]["digest"]
    assert r.fault.fired and time.time() - t0 >= 1.0


# --------------------------------------------------------------------------
# the Docker engine and berth's docker-archive

def test_docker_loads_berth_docker_archive(registry, docker, tmp_path):  # noqa: F811
    img = imagegen.build_image(seed="resume-docker-load", layers=2, size=16 * 1024)
    lay = str(tmp_path / "lay")
    imagegen.write_oci_layout(lay, {"v1": img})
    ref = "%s/dload/ui:v1" % registry.host
    berth("push", "-q", "oci:%s:v1" % lay, ref)
    arc = str(tmp_path / "ui.tar")
    berth("pull", "-q", ref, "docker-archive:%s" % arc)
    out = docker("load", "-i", arc).stdout
    assert "Loaded image: %s" % ref in out, out
    assert docker.image_id(ref) == img.config_digest
    tags = docker("image", "inspect", "--format", "{{json .RepoTags}}", ref).stdout
    assert ref in tags, tags
    # with a NAME: the archive carries that name instead
    arc2 = str(tmp_path / "named.tar")
    berth("pull", "-q", ref, "docker-archive:%s:gallery/ui:named" % arc2)
    out = docker("load", "-i", arc2).stdout
    assert "Loaded image: gallery/ui:named" in out, out
    assert docker.image_id("gallery/ui:named") == img.config_digest
    docker("image", "rm", "-f", ref, "gallery/ui:named")


def test_docker_save_berth_push_docker_pull(registry, docker, tmp_path):  # noqa: F811
    img = imagegen.build_image(seed="resume-docker-save", layers=2, size=16 * 1024)
    src = str(tmp_path / "src.tar")
    imagegen.write_docker_archive(src, img, ["berth-test/saved:v1"])
    docker("load", "-q", "-i", src)
    saved = str(tmp_path / "saved.tar")
    docker("save", "-o", saved, "berth-test/saved:v1")  # docker's own format
    ref = "%s/dsave/ui:v1" % registry.host
    dg = berth("push", "-q", "docker-archive:%s" % saved, ref).stdout.strip()
    assert dg.startswith("sha256:")
    docker("image", "rm", "-f", "berth-test/saved:v1")
    assert img.config_digest not in docker("images", "-q", "--no-trunc").stdout
    docker("pull", "-q", ref)
    assert docker.image_id(ref) == img.config_digest
    rd = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    assert dg in rd, rd
    docker("image", "rm", "-f", ref)

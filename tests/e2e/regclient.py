"""A small stdlib-only client for berth's end-to-end tests.

    c = RegClient(registry)                   # any object with .host/.port (read on every call)
    r = c.request("GET", "/v2/")              # -> Response; unpacks as (status, headers, body)
    status, headers, body = r
    headers.get("docker-content-digest")      # case-insensitive, first value
    headers.get_all("OCI-Tag")                # every value of a repeated header
    d = c.push_blob("repo", b"data")          # monolithic POST ?digest=  -> digest
    d = c.push_blob_chunked("repo", data, chunk=1024)
    d = c.push_manifest("repo", "v1", obj_or_bytes, media_type)
    img = c.make_image("repo", tag="v1")      # config + layers + manifest, pushed

Also: sha256/sha512 digest helpers, raw-socket requests (raw_request / raw_exchange)
for what http.client will not send (lying Content-Length, garbage paths, ...),
and assert_error(resp, status, code), the one check of the spec's error JSON.
"""
import hashlib
import http.client
import json
import os
import random
import socket
import time
import urllib.parse

API_VERSION = "registry/2.0"

# Media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_FOREIGN = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1_JSON = "application/vnd.docker.distribution.manifest.v1+json"

MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ZERO_DIGEST = "sha256:" + "0" * 64


# ---------------------------------------------------------------- digests

def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


def digest(data, algo="sha256"):
    return sha512(data) if algo == "sha512" else sha256(data)


def hex_of(d):
    return d.split(":", 1)[1]


def rand_bytes(n, seed=None):
    if seed is None:
        return os.urandom(n)
    r = random.Random(seed)
    return r.getrandbits(8 * n).to_bytes(n, "little") if n else b""


_counter = [0]


def uniq(prefix="repo"):
    """A fresh, valid repository name component sequence: prefix + counter + random."""
    _counter[0] += 1
    return "%s-%d-%s" % (prefix, _counter[0], os.urandom(3).hex())


# ---------------------------------------------------------------- responses

class Headers:
    """Case-insensitive headers keeping every value of repeated headers."""

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.pairs if k.lower() == n]

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def __getitem__(self, name):
        vals = self.get_all(name)
        if not vals:
            raise KeyError(name)
        return vals[0] if len(vals) == 1 else vals

    def __contains__(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return "Headers(%r)" % self.pairs


class Response:
    def __init__(self, method, path, status, headers, body, reason=""):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def json(self):
        return json.loads(self.body)

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        b = self.body[:300]
        return "<%s %s -> %d %r %r>" % (self.method, self.path, self.status, self.headers.pairs, b)


def location_path(resp):
    """Path (plus query) of the Location header, whether relative or absolute."""
    loc = resp.headers.get("Location")
    assert loc, "no Location header in %r" % resp
    u = urllib.parse.urlparse(loc)
    return u.path + (("?" + u.query) if u.query else "")


def with_query(path, **params):
    """Append query parameters to a path that may already have a query."""
    sep = "&" if "?" in path else "?"
    return path + sep + urllib.parse.urlencode(params)


def parse_link_next(value):
    """`</v2/x/tags/list?n=2&last=b>; rel="next"` -> the URL path+query, or None."""
    if not value:
        return None
    for part in value.split(","):
        part = part.strip()
        if not part.startswith("<"):
            continue
        url, _, params = part[1:].partition(">")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            u = urllib.parse.urlparse(url)
            return u.path + (("?" + u.query) if u.query else "")
    return None


def assert_api_version(resp):
    assert resp.headers.get("Docker-Distribution-API-Version") == API_VERSION, \
        "missing/incorrect Docker-Distribution-API-Version on %r" % resp


def assert_error(resp, status, code=None):
    """The spec's error body: {"errors":[{"code","message","detail"}]}, JSON content type.

    status: an int or a tuple of accepted ints. code: a string, a tuple of
    accepted codes, or None for any code. HEAD responses have no body: only
    the status (and API version header) are checked.
    """
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    assert resp.status in statuses, "expected status %s, got %r" % (statuses, resp)
    assert_api_version(resp)
    if resp.method == "HEAD":
        assert resp.body == b""
        return None
    ct = resp.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip() == "application/json", "error Content-Type %r in %r" % (ct, resp)
    try:
        doc = json.loads(resp.body)
    except ValueError:
        raise AssertionError("error body is not JSON: %r" % resp)
    assert isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"], \
        "no errors list: %r" % resp
    for e in doc["errors"]:
        assert isinstance(e, dict), resp
        assert isinstance(e.get("code"), str) and e["code"], resp
        assert isinstance(e.get("message"), str), resp
        assert "detail" in e, "error without detail: %r" % resp
    if code is not None:
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        got = [e["code"] for e in doc["errors"]]
        assert any(c in codes for c in got), "expected code %s, got %s in %r" % (codes, got, resp)
    return doc["errors"]


# ---------------------------------------------------------------- raw sockets

def raw_exchange(host, port, data, timeout=5.0, close_after_send=False, shutdown_write=False):
    """Send raw bytes and read everything until the server closes (or timeout).

    Returns the bytes received (possibly b""). Connection errors while sending
    are tolerated (the server may answer and close early)."""
    s = socket.create_connection((host, port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if close_after_send:
            return b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return out


def parse_raw_response(raw):
    """First HTTP response in raw bytes -> (status, Headers, rest). status None if unparsable."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, Headers([]), raw
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None, Headers([]), raw
    pairs = []
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        pairs.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
    return status, Headers(pairs), rest


def count_responses(raw):
    return raw.count(b"HTTP/1.1 ") + raw.count(b"HTTP/1.0 ")


# ---------------------------------------------------------------- client

class RegClient:
    def __init__(self, server, timeout=30.0):
        self.server = server
        self.timeout = timeout

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def port(self):
        return self.server.port

    def conn(self, timeout=None):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)

    def request(self, method, path, body=None, headers=None, timeout=None, chunked=False):
        """One request on a fresh connection. body: bytes, str, or an iterable of
        bytes (sent with Transfer-Encoding: chunked)."""
        c = self.conn(timeout)
        try:
            hdrs = dict(headers or {})
            if method in ("GET", "HEAD") and "/manifests/" in path and \
                    not any(k.lower() == "accept" for k in hdrs):
                hdrs["Accept"] = MANIFEST_ACCEPT
            if isinstance(body, str):
                body = body.encode()
            if chunked:
                data = body if not isinstance(body, (bytes, bytearray)) else [bytes(body)]
                c.request(method, path, body=iter(data), headers=hdrs, encode_chunked=True)
            else:
                if body is None and method in ("PUT", "POST", "PATCH") and \
                        not any(k.lower() == "content-length" for k in hdrs):
                    hdrs["Content-Length"] = "0"
                c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            try:
                data = r.read()
            except http.client.IncompleteRead as e:  # a lying Content-Length: keep what came
                data = e.partial
            return Response(method, path, r.status, Headers(r.getheaders()), data, r.reason)
        finally:
            c.close()

    # convenience wrappers
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def raw(self, data, **kw):
        return raw_exchange(self.host, self.port, data, **kw)

    def alive(self):
        r = self.request("GET", "/v2/", timeout=10)
        return r.status == 200

    # ------------------------------------------------------------ blobs

    def start_upload(self, repo, query=""):
        r = self.request("POST", "/v2/%s/blobs/uploads/%s" % (repo, query))
        assert r.status == 202, r
        return location_path(r), r

    def push_blob(self, repo, data, algo="sha256"):
        """Monolithic upload: POST /blobs/uploads/?digest= with the whole body.

        (REGCLIENT_BLOB_PUSH=put does POST + PUT instead: only for checking
        these tests against a registry without monolithic POST.)"""
        d = digest(data, algo)
        if os.environ.get("REGCLIENT_BLOB_PUSH") == "put":
            loc, _ = self.start_upload(repo)
            r = self.finish_upload(loc, d, data)
            assert r.status == 201, r
            return d
        r = self.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status == 201, r
        assert r.headers.get("Docker-Content-Digest") == d, r
        return d

    def patch_chunk(self, loc, data, start=None):
        hdrs = {"Content-Type": "application/octet-stream"}
        if start is not None:
            hdrs["Content-Range"] = "%d-%d" % (start, start + len(data) - 1)
        return self.request("PATCH", loc, body=data, headers=hdrs)

    def finish_upload(self, loc, d, data=None):
        return self.request("PUT", with_query(loc, digest=d), body=data,
                            headers={"Content-Type": "application/octet-stream"})

    def push_blob_chunked(self, repo, data, chunk=64 * 1024, algo="sha256", final_chunk=False):
        """POST, PATCH chunks with Content-Range, then PUT ?digest= (last chunk in
        the PUT when final_chunk). Follows the Location of every response."""
        d = digest(data, algo)
        loc, _ = self.start_upload(repo)
        off = 0
        chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
        last = chunks.pop() if final_chunk else None
        for ch in chunks:
            if not ch:
                continue
            r = self.patch_chunk(loc, ch, start=off)
            assert r.status == 202, r
            off += len(ch)
            assert r.headers.get("Range") == "0-%d" % (off - 1), r
            loc = location_path(r)
        r = self.finish_upload(loc, d, last)
        assert r.status == 201, r
        assert r.headers.get("Docker-Content-Digest") == d, r
        return d

    def push_blob_streamed(self, repo, data, chunked_te=False):
        d = sha256(data)
        loc, _ = self.start_upload(repo)
        r = self.request("PATCH", loc, body=data, chunked=chunked_te,
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status == 202, r
        r = self.finish_upload(location_path(r), d)
        assert r.status == 201, r
        return d

    # ------------------------------------------------------------ manifests

    def put_manifest(self, repo, ref, obj, media_type=OCI_MANIFEST, query=""):
        body = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()
        return self.request("PUT", "/v2/%s/manifests/%s%s" % (repo, ref, query), body=bytes(body),
                            headers={"Content-Type": media_type})

    def push_manifest(self, repo, ref, obj, media_type=OCI_MANIFEST):
        body = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()
        r = self.put_manifest(repo, ref, body, media_type)
        assert r.status == 201, r
        d = sha256(bytes(body))
        assert r.headers.get("Docker-Content-Digest") == d, r
        return d

    def make_image(self, repo, tag=None, layers=None, nlayers=1, media_type=OCI_MANIFEST,
                   push=True, annotations=None, subject=None, artifact_type=None,
                   config=None, config_media_type=None, seed=None):
        """Build (and by default push) config + layers + manifest.

        Returns a dict: manifest (obj), body (bytes), digest, size, media_type,
        config_digest, layer_digests, layers (bytes list)."""
        docker = media_type == DOCKER_MANIFEST
        if layers is None:
            layers = [rand_bytes(64 + i, None if seed is None else seed * 1000 + i)
                      for i in range(nlayers)]
        if config is None:
            config = json.dumps({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers",
                                            "diff_ids": [sha256(l) for l in layers]},
                                 "nonce": os.urandom(8).hex()}).encode()
        cmt = config_media_type or (DOCKER_CONFIG if docker else OCI_CONFIG)
        lmt = DOCKER_LAYER if docker else OCI_LAYER
        m = {"schemaVersion": 2, "mediaType": media_type}
        if artifact_type:
            m["artifactType"] = artifact_type
        m["config"] = {"mediaType": cmt, "digest": sha256(config), "size": len(config)}
        m["layers"] = [{"mediaType": lmt, "digest": sha256(l), "size": len(l)} for l in layers]
        if subject:
            m["subject"] = subject
        if annotations:
            m["annotations"] = annotations
        body = json.dumps(m, indent=2).encode()
        img = {"manifest": m, "body": body, "digest": sha256(body), "size": len(body),
               "media_type": media_type, "config": config, "config_digest": sha256(config),
               "layers": layers, "layer_digests": [sha256(l) for l in layers]}
        if push:
            self.push_blob(repo, config)
            for l in layers:
                self.push_blob(repo, l)
            d = self.push_manifest(repo, tag or img["digest"], body, media_type)
            assert d == img["digest"]
        return img

    def make_artifact(self, repo, artifact_type, subject=None, annotations=None, tag=None,
                      push=True, layers=None):
        """An OCI artifact: artifactType + the empty config ({})."""
        self.push_blob(repo, EMPTY_JSON)
        layers = layers if layers is not None else [os.urandom(32)]
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
             "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
             "layers": [{"mediaType": "application/octet-stream", "digest": sha256(l),
                         "size": len(l)} for l in layers]}
        if subject:
            m["subject"] = subject
        if annotations:
            m["annotations"] = annotations
        body = json.dumps(m).encode()
        if push:
            for l in layers:
                self.push_blob(repo, l)
            self.push_manifest(repo, tag or sha256(body), body, OCI_MANIFEST)
        return {"manifest": m, "body": body, "digest": sha256(body), "size": len(body),
                "media_type": OCI_MANIFEST}


def descriptor(img):
    """The descriptor of something make_image/make_artifact returned."""
    return {"mediaType": img["media_type"], "digest": img["digest"], "size": img["size"]}

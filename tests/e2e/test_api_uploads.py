"""Blob uploads: end-4a/4b (POST), end-5 (PATCH), end-6 (PUT), end-11 (mount), end-13 (status)."""
import re
import urllib.parse

import pytest

from regclient import (EMPTY_SHA256, RegClient, assert_api_version, assert_error, location_path,
                       rand_bytes, sha256, sha512, uniq, with_query)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


UPLOAD_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/?]+)(\?.*)?$")


def blob_path(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


# ---------------------------------------------------------------- end-4a POST

def test_post_202(c):
    r = c.request("POST", "/v2/%s/blobs/uploads/" % uniq("up"))
    assert r.status == 202, r


def test_post_location_is_upload_path(c):
    repo = uniq("up")
    r = c.request("POST", "/v2/%s/blobs/uploads/" % repo)
    m = UPLOAD_RE.match(urllib.parse.urlparse(r.header("Location")).path)
    assert m, r
    assert m.group("name") == repo


def test_post_upload_uuid_header_matches_location(c):
    r = c.request("POST", "/v2/%s/blobs/uploads/" % uniq("up"))
    uuid = r.header("Docker-Upload-UUID")
    assert uuid, r
    assert UPLOAD_RE.match(urllib.parse.urlparse(r.header("Location")).path).group("uuid") == uuid


def test_post_range_0_0(c):
    r = c.request("POST", "/v2/%s/blobs/uploads/" % uniq("up"))
    assert r.header("Range") == "0-0", r
    assert_api_version(r)


def test_post_unique_uuids(c):
    repo = uniq("up")
    seen = set()
    for _ in range(20):
        r = c.request("POST", "/v2/%s/blobs/uploads/" % repo)
        assert r.status == 202
        seen.add(r.header("Docker-Upload-UUID"))
        seen.add(location_path(r))
    assert len(seen) == 40


def test_post_invalid_name_400(c):
    r = c.request("POST", "/v2/Bad/blobs/uploads/")
    assert_error(r, 400, "NAME_INVALID")


# ---------------------------------------------------------------- end-4b monolithic POST

def test_post_monolithic_201(c):
    repo = uniq("up")
    data = b"monolithic post body"
    d = sha256(data)
    r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, d), body=data,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status == 201, r
    assert urllib.parse.urlparse(r.header("Location")).path == blob_path(repo, d)
    assert r.header("Docker-Content-Digest") == d


def test_post_monolithic_blob_readable(c):
    repo = uniq("up")
    data = b"monolithic post readable"
    d = c.push_blob(repo, data)
    r = c.get(blob_path(repo, d))
    assert r.status == 200 and r.body == data


def test_post_monolithic_wrong_digest_400(c):
    repo = uniq("up")
    data = b"some bytes"
    wrong = sha256(b"other bytes")
    r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, wrong), body=data)
    assert_error(r, 400, "DIGEST_INVALID")
    assert c.head(blob_path(repo, wrong)).status == 404
    assert c.head(blob_path(repo, sha256(data))).status == 404


def test_post_monolithic_empty_blob(c):
    repo = uniq("up")
    r = c.request("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, EMPTY_SHA256), body=b"")
    assert r.status == 201, r
    assert c.head(blob_path(repo, EMPTY_SHA256)).header("Content-Length") == "0"


def test_post_monolithic_large_roundtrip(c):
    repo = uniq("up")
    data = rand_bytes(1024 * 1024 + 333, seed=11)
    d = c.push_blob(repo, data)
    r = c.get(blob_path(repo, d))
    assert sha256(r.body) == d


# ---------------------------------------------------------------- end-5 PATCH streamed

def test_patch_streamed_202_range(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = rand_bytes(5000, seed=1)
    r = c.request("PATCH", loc, body=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 202, r
    assert r.header("Range") == "0-4999"
    assert UPLOAD_RE.match(location_path(r).split("?")[0]), r
    assert r.header("Docker-Upload-UUID")


def test_patch_streamed_then_put_no_body(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = rand_bytes(5000, seed=2)
    r = c.request("PATCH", loc, body=data)
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == sha256(data)
    assert urllib.parse.urlparse(r.header("Location")).path == blob_path(repo, sha256(data))
    assert c.get(blob_path(repo, sha256(data))).body == data


def test_patch_transfer_encoding_chunked(c):
    """docker: one PATCH, chunked transfer-encoding, no Content-Length, no Content-Range."""
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = rand_bytes(300 * 1024 + 5, seed=3)
    parts = [data[i:i + 7000] for i in range(0, len(data), 7000)]
    r = c.request("PATCH", loc, body=parts, chunked=True,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status == 202, r
    assert r.header("Range") == "0-%d" % (len(data) - 1)
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    assert c.get(blob_path(repo, sha256(data))).body == data


def test_patch_streamed_large_roundtrip(c):
    repo = uniq("up")
    data = rand_bytes(2 * 1024 * 1024 + 1, seed=4)
    d = c.push_blob_streamed(repo, data, chunked_te=True)
    assert sha256(c.get(blob_path(repo, d)).body) == d


# ---------------------------------------------------------------- end-5 PATCH with Content-Range

def test_patch_chunks_with_content_range(c):
    repo = uniq("up")
    data = rand_bytes(10000, seed=5)
    d = c.push_blob_chunked(repo, data, chunk=3000)
    assert c.get(blob_path(repo, d)).body == data


def test_patch_chunk_range_header_progresses(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.patch_chunk(loc, b"a" * 10, start=0)
    assert (r.status, r.header("Range")) == (202, "0-9"), r
    r = c.patch_chunk(location_path(r), b"b" * 5, start=10)
    assert (r.status, r.header("Range")) == (202, "0-14"), r


def test_patch_chunk_bytes_form_content_range(c):
    """'bytes a-b/*' is accepted too."""
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.request("PATCH", loc, body=b"x" * 10, headers={"Content-Range": "bytes 0-9/*"})
    assert (r.status, r.header("Range")) == (202, "0-9"), r


def test_patch_chunk_out_of_order_416(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.patch_chunk(loc, b"a" * 10, start=0)
    loc = location_path(r)
    r = c.patch_chunk(loc, b"c" * 10, start=20)
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")


def test_patch_chunk_overlap_416(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    loc = location_path(c.patch_chunk(loc, b"a" * 10, start=0))
    r = c.patch_chunk(loc, b"c" * 10, start=5)
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")


def test_patch_chunk_out_of_order_session_intact(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    loc = location_path(c.patch_chunk(loc, b"a" * 10, start=0))
    assert c.patch_chunk(loc, b"c" * 10, start=20).status == 416
    st = c.get(loc)
    assert st.status == 204, st
    assert st.header("Range") == "0-9"
    r = c.patch_chunk(loc, b"b" * 10, start=10)
    assert (r.status, r.header("Range")) == (202, "0-19"), r
    data = b"a" * 10 + b"b" * 10
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    assert c.get(blob_path(repo, sha256(data))).body == data


def test_patch_first_chunk_not_at_zero_416(c):
    loc, _ = c.start_upload(uniq("up"))
    r = c.patch_chunk(loc, b"a" * 10, start=1)
    assert_error(r, 416, "BLOB_UPLOAD_INVALID")


def test_patch_unknown_session_404(c):
    repo = uniq("up")
    c.start_upload(repo)
    r = c.request("PATCH", "/v2/%s/blobs/uploads/%s" % (repo, "0" * 32), body=b"abc")
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_session_of_other_repo_404(c):
    a, b = uniq("up-a"), uniq("up-b")
    c.start_upload(b)
    loc, _ = c.start_upload(a)
    uuid = loc.split("?")[0].rsplit("/", 1)[1]
    r = c.get("/v2/%s/blobs/uploads/%s" % (b, uuid))
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


# ---------------------------------------------------------------- end-6 PUT

def test_put_whole_blob_in_put(c):
    """containerd: POST, then the whole blob in one PUT."""
    repo = uniq("up")
    data = rand_bytes(4096, seed=7)
    loc, _ = c.start_upload(repo)
    r = c.finish_upload(loc, sha256(data), data)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == sha256(data)
    assert urllib.parse.urlparse(r.header("Location")).path == blob_path(repo, sha256(data))


def test_put_with_final_chunk(c):
    repo = uniq("up")
    data = rand_bytes(9000, seed=8)
    d = c.push_blob_chunked(repo, data, chunk=4000, final_chunk=True)
    assert c.get(blob_path(repo, d)).body == data


def test_put_without_body_after_chunks(c):
    repo = uniq("up")
    data = rand_bytes(9000, seed=9)
    d = c.push_blob_chunked(repo, data, chunk=4000, final_chunk=False)
    assert c.get(blob_path(repo, d)).body == data


def test_put_empty_session_empty_blob(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.finish_upload(loc, EMPTY_SHA256)
    assert r.status == 201, r
    assert c.get(blob_path(repo, EMPTY_SHA256)).body == b""


def test_put_wrong_digest_400(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = b"the real content"
    r = c.finish_upload(loc, sha256(b"a lie"), data)
    assert_error(r, 400, "DIGEST_INVALID")


def test_put_wrong_digest_nothing_stored(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = b"the real content 2"
    loc = location_path(c.patch_chunk(loc, data, start=0))
    c.finish_upload(loc, sha256(b"another lie"))
    assert c.head(blob_path(repo, sha256(b"another lie"))).status == 404
    assert c.head(blob_path(repo, sha256(data))).status == 404


def test_put_missing_digest_400(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.request("PUT", loc, body=b"abc")
    assert_error(r, 400, "DIGEST_INVALID")


def test_put_malformed_digest_400(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    r = c.finish_upload(loc, "sha256:nothex", b"abc")
    assert_error(r, 400, "DIGEST_INVALID")


def test_put_session_consumed_after_201(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = b"consumed"
    assert c.finish_upload(loc, sha256(data), data).status == 201
    r = c.get(loc)
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_unknown_session_404(c):
    repo = uniq("up")
    c.start_upload(repo)
    r = c.finish_upload("/v2/%s/blobs/uploads/%s" % (repo, "f" * 32), sha256(b"x"), b"x")
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_sha512_digest(c):
    repo = uniq("up")
    data = rand_bytes(7000, seed=10)
    d = sha512(data)
    loc, _ = c.start_upload(repo)
    loc = location_path(c.patch_chunk(loc, data[:3000], start=0))
    r = c.finish_upload(loc, d, data[3000:])
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == d


def test_get_blob_by_sha512(c):
    repo = uniq("up")
    data = rand_bytes(7001, seed=12)
    d = c.push_blob(repo, data, algo="sha512")
    r = c.get(blob_path(repo, d))
    assert r.status == 200, r
    assert r.body == data
    assert r.header("Docker-Content-Digest") == d


def test_put_chunked_large_roundtrip(c):
    repo = uniq("up")
    data = rand_bytes(3 * 1024 * 1024 + 7, seed=13)
    d = c.push_blob_chunked(repo, data, chunk=1024 * 1024)
    assert sha256(c.get(blob_path(repo, d)).body) == d


def test_put_same_blob_twice_both_201(c):
    repo = uniq("up")
    data = b"pushed twice"
    c.push_blob(repo, data)
    c.push_blob_chunked(repo, data, chunk=5)
    assert c.get(blob_path(repo, sha256(data))).body == data


# ---------------------------------------------------------------- end-13 GET status

def test_status_empty_session_204(c):
    loc, _ = c.start_upload(uniq("up"))
    r = c.get(loc)
    assert r.status == 204, r
    assert r.header("Range") == "0-0"
    assert UPLOAD_RE.match(location_path(r).split("?")[0])
    assert r.header("Docker-Upload-UUID")


def test_status_after_chunk(c):
    loc, _ = c.start_upload(uniq("up"))
    loc = location_path(c.patch_chunk(loc, b"z" * 123, start=0))
    r = c.get(loc)
    assert r.status == 204, r
    assert r.header("Range") == "0-122"
    assert r.body == b""


def test_status_unknown_session_404(c):
    repo = uniq("up")
    c.start_upload(repo)
    r = c.get("/v2/%s/blobs/uploads/%s" % (repo, "1" * 32))
    assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


# ---------------------------------------------------------------- end-11 mount

def test_mount_from_repo_201(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    data = b"mountable blob"
    d = c.push_blob(src, data)
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
    assert r.status == 201, r
    assert urllib.parse.urlparse(r.header("Location")).path == blob_path(dst, d)
    assert r.header("Docker-Content-Digest") == d


def test_mount_blob_visible_in_target(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    data = b"mountable blob 2"
    d = c.push_blob(src, data)
    assert c.head(blob_path(dst, d)).status == 404
    c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
    r = c.get(blob_path(dst, d))
    assert r.status == 200 and r.body == data


def test_mount_from_repo_lacking_blob_202_session(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    c.push_blob(src, b"unrelated")
    d = sha256(b"not in src")
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
    assert r.status == 202, r
    assert r.header("Range") == "0-0"
    assert r.header("Docker-Upload-UUID")
    loc = location_path(r)
    assert UPLOAD_RE.match(loc.split("?")[0])
    r = c.finish_upload(loc, d, b"not in src")
    assert r.status == 201, r


def test_mount_blob_exists_elsewhere_but_not_in_from_202(c):
    """The blob is stored (in repo X) but `from` does not have it: no mount."""
    x, src, dst = uniq("mnt-x"), uniq("mnt-src"), uniq("mnt-dst")
    d = c.push_blob(x, b"only in x")
    c.push_blob(src, b"src has something else")
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
    assert r.status == 202, r
    assert c.head(blob_path(dst, d)).status == 404


def test_mount_from_unknown_repo_202(c):
    dst = uniq("mnt-dst")
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, sha256(b"q"), uniq("ghost")))
    assert r.status == 202, r


def test_mount_without_from_202(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    d = c.push_blob(src, b"mount without from")
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s" % (dst, d))
    assert r.status == 202, r
    assert UPLOAD_RE.match(location_path(r).split("?")[0])


def test_mount_large_blob_same_digest(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    data = rand_bytes(1024 * 1024 + 1, seed=14)
    d = c.push_blob(src, data)
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
    assert r.status == 201, r
    assert sha256(c.get(blob_path(dst, d)).body) == d


# ---------------------------------------------------------------- client quirks

def test_patch_expect_100_continue(c):
    """curl sends `Expect: 100-continue` for large bodies and waits for 100."""
    import socket
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    data = rand_bytes(200000, seed=40)
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n"
                   "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                   % (loc, len(data))).encode())
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first
        s.sendall(data)
        raw = first
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    assert b"HTTP/1.1 202" in raw, raw
    assert b"\r\nRange: 0-199999\r\n" in raw, raw


def test_patch_zero_length_body(c):
    loc, _ = c.start_upload(uniq("up"))
    loc = location_path(c.patch_chunk(loc, b"abc", start=0))
    r = c.request("PATCH", loc, body=b"")
    assert r.status in (202, 400, 416), r
    st = c.get(loc)
    assert st.header("Range") == "0-2"


def test_patch_after_put_404(c):
    repo = uniq("up")
    loc, _ = c.start_upload(repo)
    assert c.finish_upload(loc, sha256(b"done"), b"done").status == 201
    assert_error(c.patch_chunk(loc, b"more", start=4), 404, "BLOB_UPLOAD_UNKNOWN")


def test_mounted_blob_usable_by_manifest(c):
    src, dst = uniq("mnt-src"), uniq("mnt-dst")
    img = c.make_image(src, tag="v1")
    for d in [img["config_digest"]] + img["layer_digests"]:
        r = c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (dst, d, src))
        assert r.status == 201, r
    assert c.put_manifest(dst, "v1", img["body"]).status == 201


def test_slow_body_in_pieces(c):
    """A body that trickles in several TCP writes is assembled intact."""
    import socket
    import time
    repo = uniq("up")
    data = rand_bytes(30000, seed=41)
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        s.sendall(("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % (repo, sha256(data), len(data))).encode())
        for i in range(0, len(data), 7000):
            s.sendall(data[i:i + 7000])
            time.sleep(0.05)
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    assert raw.startswith(b"HTTP/1.1 201"), raw
    assert c.get(blob_path(repo, sha256(data))).body == data

"""end-2: GET/HEAD /v2/<name>/blobs/<digest>, with Range."""
import pytest

from regclient import (EMPTY_SHA256, RegClient, assert_api_version, assert_error,
                       parse_raw_response, rand_bytes, sha256, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


@pytest.fixture(scope="module")
def blob(c):
    """A 1000-byte blob pushed to one repository."""
    repo = uniq("blobs")
    data = rand_bytes(1000, seed=2)
    d = c.push_blob(repo, data)
    return repo, data, d


def path(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


# ---------------------------------------------------------------- end-2 GET

def test_blob_get_body(c, blob):
    repo, data, d = blob
    r = c.get(path(repo, d))
    assert r.status == 200, r
    assert r.body == data


def test_blob_get_headers(c, blob):
    repo, data, d = blob
    r = c.get(path(repo, d))
    assert r.header("Content-Length") == str(len(data))
    assert r.header("Docker-Content-Digest") == d
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.header("Accept-Ranges") == "bytes"
    assert_api_version(r)


def test_blob_get_empty_blob(c):
    repo = uniq("blobs")
    d = c.push_blob(repo, b"")
    assert d == EMPTY_SHA256
    r = c.get(path(repo, d))
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("Content-Length") == "0"
    assert r.header("Docker-Content-Digest") == EMPTY_SHA256


def test_blob_get_unknown_404_blob_unknown(c, blob):
    repo = blob[0]
    r = c.get(path(repo, sha256(b"never pushed")))
    assert_error(r, 404, "BLOB_UNKNOWN")


def test_blob_get_unknown_repo_404(c):
    r = c.get(path(uniq("nosuchrepo"), sha256(b"never pushed")))
    assert_error(r, 404, ("BLOB_UNKNOWN", "NAME_UNKNOWN"))


def test_blob_get_invalid_digest_400(c, blob):
    r = c.get(path(blob[0], "sha256:xyz"))
    assert_error(r, 400, "DIGEST_INVALID")


def test_blob_get_short_hex_400(c, blob):
    r = c.get(path(blob[0], "sha256:" + "a" * 63))
    assert_error(r, 400, "DIGEST_INVALID")


def test_blob_get_uppercase_hex_400(c, blob):
    repo, data, d = blob
    r = c.get(path(repo, "sha256:" + d.split(":")[1].upper()))
    assert_error(r, 400, "DIGEST_INVALID")


def test_blob_get_unknown_algorithm_400(c, blob):
    r = c.get(path(blob[0], "md5:" + "0" * 32))
    assert_error(r, 400, "DIGEST_INVALID")


def test_blob_get_no_algorithm_400(c, blob):
    r = c.get(path(blob[0], "0" * 64))
    assert_error(r, (400, 404), ("DIGEST_INVALID", "BLOB_UNKNOWN"))


def test_blob_repository_isolation(c, blob):
    """A repository serves only blobs linked to it: knowing the digest is not access."""
    repo, data, d = blob
    other = uniq("blobs-other")
    c.push_blob(other, b"something else")
    r = c.get(path(other, d))
    assert_error(r, 404, "BLOB_UNKNOWN")
    assert c.head(path(other, d)).status == 404


# ---------------------------------------------------------------- end-2 HEAD

def test_blob_head_headers(c, blob):
    repo, data, d = blob
    r = c.head(path(repo, d))
    assert r.status == 200, r
    assert r.header("Content-Length") == str(len(data))
    assert r.header("Docker-Content-Digest") == d
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.header("Accept-Ranges") == "bytes"
    assert_api_version(r)


def test_blob_head_no_body(c, blob):
    repo, data, d = blob
    raw = c.raw(("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path(repo, d)).encode())
    status, headers, rest = parse_raw_response(raw)
    assert status == 200, raw
    assert headers.get("Content-Length") == str(len(data))
    assert rest == b""


def test_blob_head_then_get_same_connection(c, blob):
    """A HEAD that leaked a body would corrupt the next response on the connection."""
    repo, data, d = blob
    conn = c.conn()
    try:
        conn.request("HEAD", path(repo, d))
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        conn.request("GET", path(repo, d))
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == data
    finally:
        conn.close()


def test_blob_head_unknown_404_not_405(c, blob):
    r = c.head(path(blob[0], sha256(b"not there")))
    assert r.status == 404, r
    assert r.body == b""


def test_blob_head_invalid_digest_not_405(c, blob):
    r = c.head(path(blob[0], "sha256:xyz"))
    assert r.status == 400, r


# ---------------------------------------------------------------- end-2 Range

def ranged(c, blob, spec):
    repo, data, d = blob
    return c.get(path(repo, d), headers={"Range": spec})


def test_blob_range_a_b(c, blob):
    data = blob[1]
    r = ranged(c, blob, "bytes=10-19")
    assert r.status == 206, r
    assert r.body == data[10:20]
    assert r.header("Content-Range") == "bytes 10-19/1000"
    assert r.header("Content-Length") == "10"


def test_blob_range_first_byte(c, blob):
    r = ranged(c, blob, "bytes=0-0")
    assert r.status == 206, r
    assert r.body == blob[1][:1]
    assert r.header("Content-Range") == "bytes 0-0/1000"


def test_blob_range_open_ended(c, blob):
    data = blob[1]
    r = ranged(c, blob, "bytes=990-")
    assert r.status == 206, r
    assert r.body == data[990:]
    assert r.header("Content-Range") == "bytes 990-999/1000"


def test_blob_range_suffix(c, blob):
    data = blob[1]
    r = ranged(c, blob, "bytes=-5")
    assert r.status == 206, r
    assert r.body == data[-5:]
    assert r.header("Content-Range") == "bytes 995-999/1000"


def test_blob_range_end_clipped_to_size(c, blob):
    data = blob[1]
    r = ranged(c, blob, "bytes=900-5000")
    assert r.status == 206, r
    assert r.body == data[900:]
    assert r.header("Content-Range") == "bytes 900-999/1000"


def test_blob_range_suffix_larger_than_size(c, blob):
    r = ranged(c, blob, "bytes=-5000")
    assert r.status == 206, r
    assert r.body == blob[1]
    assert r.header("Content-Range") == "bytes 0-999/1000"


def test_blob_range_unsatisfiable_416(c, blob):
    r = ranged(c, blob, "bytes=1000-")
    assert r.status == 416, r
    assert r.header("Content-Range") == "bytes */1000"
    assert_api_version(r)


def test_blob_range_unsatisfiable_far_416(c, blob):
    r = ranged(c, blob, "bytes=5000-6000")
    assert r.status == 416, r
    assert r.header("Content-Range") == "bytes */1000"


def test_blob_range_multi_range_full_or_multipart(c, blob):
    r = ranged(c, blob, "bytes=0-1,5-6")
    assert r.status in (200, 206), r
    if r.status == 200:
        assert r.body == blob[1]
    else:
        assert r.header("Content-Type", "").startswith("multipart/byteranges")


def test_blob_range_malformed_no_5xx(c, blob):
    for spec in ("bytes=abc", "bytes=5-2", "items=0-1", "bytes=", "bytes=--1",
                 "bytes=99999999999999999999999-"):
        r = ranged(c, blob, spec)
        assert r.status in (200, 400, 416), (spec, r)
        if r.status == 200:
            assert r.body == blob[1]


def test_blob_range_head_keeps_headers(c, blob):
    repo, data, d = blob
    r = c.head(path(repo, d), headers={"Range": "bytes=0-9"})
    assert r.status in (200, 206), r
    assert r.header("Docker-Content-Digest") == d


# ---------------------------------------------------------------- end-2 larger blob

def test_blob_large_roundtrip_sha256(c):
    repo = uniq("blobs-big")
    data = rand_bytes(3 * 1024 * 1024 + 17, seed=5)
    d = c.push_blob(repo, data)
    r = c.get(path(repo, d))
    assert r.status == 200
    assert sha256(r.body) == d
    assert r.header("Content-Length") == str(len(data))


def test_blob_large_range_middle(c):
    repo = uniq("blobs-big")
    data = rand_bytes(2 * 1024 * 1024, seed=6)
    d = c.push_blob(repo, data)
    a, b = 1024 * 1024 - 3, 1024 * 1024 + 70000
    r = c.get(path(repo, d), headers={"Range": "bytes=%d-%d" % (a, b)})
    assert r.status == 206, r
    assert r.body == data[a:b + 1]
    assert r.header("Content-Range") == "bytes %d-%d/%d" % (a, b, len(data))

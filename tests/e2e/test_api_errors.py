"""Malformed input across endpoints: bad names, unknown paths, wrong methods, bad
Content-Range, truncated bodies, lying Content-Length, huge headers, garbage paths.
After each, the server still answers /v2/."""
import random
import socket
import time

import pytest

from regclient import (RegClient, assert_api_version, assert_error, location_path,
                       parse_raw_response, sha256, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


@pytest.fixture(autouse=True)
def still_alive(c):
    yield
    assert c.alive(), "server no longer answers /v2/"


# ---------------------------------------------------------------- names (all endpoints)

def test_name_uppercase_400(c):
    assert_error(c.get("/v2/Foo/tags/list"), 400, "NAME_INVALID")


def test_name_uppercase_on_manifest_put_400(c):
    r = c.request("PUT", "/v2/Foo/manifests/v1", body=b"{}",
                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert_error(r, 400, "NAME_INVALID")


def test_name_uppercase_on_blob_400(c):
    assert_error(c.get("/v2/abc/DEF/blobs/%s" % sha256(b"x")), 400, "NAME_INVALID")


def test_name_dotdot_rejected(c):
    r = c.get("/v2/../x/tags/list")
    assert_error(r, (400, 404))


def test_name_dotdot_component_rejected(c):
    r = c.get("/v2/a/../x/tags/list")
    assert_error(r, (400, 404))


def test_name_256_chars_400(c):
    name = "a" * 128 + "/" + "b" * 127
    assert len(name) == 256
    assert_error(c.get("/v2/%s/tags/list" % name), 400, "NAME_INVALID")


def test_name_255_chars_valid(c):
    name = "a" * 127 + "/" + "b" * 127
    assert len(name) == 255
    assert_error(c.get("/v2/%s/tags/list" % name), 404, "NAME_UNKNOWN")


def test_name_255_chars_push(c):
    name = "c" * 255
    c.make_image(name, tag="v1")
    assert c.get("/v2/%s/manifests/v1" % name).status == 200


def test_name_very_long_400(c):
    r = c.get("/v2/%s/tags/list" % ("a" * 5000))
    if r.status != 414:
        assert_error(r, 400, "NAME_INVALID")


def test_name_double_slash(c):
    assert_error(c.get("/v2/a//b/tags/list"), (400, 404))


def test_name_empty(c):
    assert_error(c.get("/v2//tags/list"), (400, 404))


def test_name_trailing_separator_400(c):
    assert_error(c.get("/v2/foo-/tags/list"), 400, "NAME_INVALID")


def test_name_leading_separator_400(c):
    assert_error(c.get("/v2/-foo/tags/list"), 400, "NAME_INVALID")


def test_name_triple_underscore_400(c):
    assert_error(c.get("/v2/a___b/tags/list"), 400, "NAME_INVALID")


def test_name_percent_encoded_slash(c):
    r = c.get("/v2/foo%2Fbar/tags/list")
    assert_error(r, (400, 404))


def test_name_nul_byte(c):
    assert_error(c.get("/v2/foo%00bar/tags/list"), (400, 404))


def test_name_valid_separators_ok(c):
    for name in ("a.b", "a_b", "a__b", "a---b", "a/b/c", "0/1"):
        r = c.get("/v2/%s/tags/list" % name)
        assert_error(r, 404, "NAME_UNKNOWN")


# ---------------------------------------------------------------- unknown paths / methods

@pytest.mark.parametrize("path", ["/v2/x/notathing/y", "/v2/x/blobs", "/v2/x/manifests",
                                  "/v2/x/blobs/uploads/a/b/c", "/v2/_catalog/extra",
                                  "/v2/x/tags", "/v2/x/tags/list/more"])
def test_unknown_path_404_json(c, path):
    r = c.get(path)
    assert_error(r, 404)


def test_outside_v2_404(c):
    for p in ("/", "/v1/", "/v3/", "/favicon.ico"):
        r = c.get(p)
        assert r.status == 404, (p, r)


@pytest.mark.parametrize("method,path", [
    ("POST", "/v2/x/manifests/latest"),
    ("PATCH", "/v2/x/manifests/latest"),
    ("PUT", "/v2/x/tags/list"),
    ("DELETE", "/v2/x/tags/list"),
    ("POST", "/v2/_catalog"),
    ("PUT", "/v2/"),
    ("DELETE", "/v2/"),
    ("PATCH", "/v2/x/blobs/sha256:" + "a" * 64),
    ("PUT", "/v2/x/blobs/sha256:" + "a" * 64),
    ("POST", "/v2/x/referrers/sha256:" + "a" * 64),
    ("PUT", "/v2/x/blobs/uploads/"),
])
def test_wrong_method_405(c, method, path):
    r = c.request(method, path)
    assert r.status == 405, r
    assert_api_version(r)


def test_wrong_method_405_json_body(c):
    r = c.request("POST", "/v2/x/manifests/latest")
    assert_error(r, 405)


def test_unknown_method_no_5xx(c):
    r = c.request("FROB", "/v2/")
    assert 400 <= r.status < 500, r


# ---------------------------------------------------------------- bad Content-Range

def fresh_session(c, first=b""):
    loc, _ = c.start_upload(uniq("err"))
    if first:
        r = c.patch_chunk(loc, first, start=0)
        assert r.status == 202
        loc = location_path(r)
    return loc


def offset(c, loc):
    r = c.get(loc)
    assert r.status == 204, r
    return r.header("Range")


@pytest.mark.parametrize("cr", ["abc", "5-2", "-5", "0-", "1-2-3", "0-99999999999999999999999999",
                                "bytes=0-9", ""])
def test_bad_content_range_rejected(c, cr):
    loc = fresh_session(c)
    r = c.request("PATCH", loc, body=b"0123456789", headers={"Content-Range": cr})
    if cr == "":
        # An empty header is as good as none: a streamed PATCH is fine too.
        assert r.status in (202, 400, 416), r
        return
    assert_error(r, (400, 416), "BLOB_UPLOAD_INVALID")


def test_bad_content_range_session_still_works(c):
    loc = fresh_session(c, b"abcde")
    c.request("PATCH", loc, body=b"fghij", headers={"Content-Range": "9-2"})
    assert offset(c, loc) == "0-4"
    r = c.patch_chunk(loc, b"fghij", start=5)
    assert r.status == 202 and r.header("Range") == "0-9"


def test_content_range_length_mismatch_rejected(c):
    """Content-Range says 10 bytes, Content-Length (the body) is 5."""
    loc = fresh_session(c)
    r = c.request("PATCH", loc, body=b"12345", headers={"Content-Range": "0-9"})
    assert_error(r, (400, 416), ("BLOB_UPLOAD_INVALID", "SIZE_INVALID"))
    assert offset(c, loc) == "0-0"


def test_content_range_length_mismatch_longer_body(c):
    loc = fresh_session(c)
    r = c.request("PATCH", loc, body=b"1234567890", headers={"Content-Range": "0-4"})
    assert_error(r, (400, 416), ("BLOB_UPLOAD_INVALID", "SIZE_INVALID"))
    assert offset(c, loc) == "0-0"


def test_put_digest_with_bad_content_range(c):
    loc = fresh_session(c, b"abc")
    r = c.request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + sha256(b"abcdef"),
                  body=b"def", headers={"Content-Range": "7-9"})
    assert_error(r, (400, 416), "BLOB_UPLOAD_INVALID")


# ---------------------------------------------------------------- truncated bodies

def send_truncated(c, method, path, declared, sent, extra_headers=""):
    s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n"
                   % (method, path, declared, extra_headers)).encode() + sent)
        time.sleep(0.05)
    finally:
        s.close()
    time.sleep(0.3)  # let the server notice the close


def test_truncated_chunk_patch_offset_unchanged(c):
    loc = fresh_session(c, b"0123456789")
    send_truncated(c, "PATCH", loc, 1000, b"x" * 10, "Content-Range: 10-1009\r\n")
    assert offset(c, loc) == "0-9"


def test_truncated_streamed_patch_offset_unchanged(c):
    loc = fresh_session(c, b"0123456789")
    send_truncated(c, "PATCH", loc, 1000, b"y" * 10)
    assert offset(c, loc) == "0-9"


def test_truncated_patch_session_continues(c):
    loc = fresh_session(c, b"0123456789")
    send_truncated(c, "PATCH", loc, 1000, b"x" * 10, "Content-Range: 10-1009\r\n")
    r = c.patch_chunk(loc, b"abcdefghij", start=10)
    assert r.status == 202 and r.header("Range") == "0-19", r
    data = b"0123456789abcdefghij"
    r = c.finish_upload(location_path(r), sha256(data))
    assert r.status == 201, r
    assert c.get("/v2/%s/blobs/%s" % (loc.split("/blobs/")[0][4:], sha256(data))).body == data


def test_truncated_monolithic_post_nothing_stored(c):
    repo = uniq("err")
    data = b"z" * 1000
    send_truncated(c, "POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, sha256(data)), 1000,
                   data[:10])
    assert c.head("/v2/%s/blobs/%s" % (repo, sha256(data))).status == 404


def test_truncated_manifest_put_nothing_stored(c):
    repo = uniq("err")
    send_truncated(c, "PUT", "/v2/%s/manifests/v1" % repo, 1000, b'{"schemaVersion":2,',
                   "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n")
    assert c.get("/v2/%s/manifests/v1" % repo).status == 404


def test_truncated_headers_then_close(c):
    s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Partial: ")
    s.close()


def test_content_length_not_a_number_400(c):
    raw = c.raw(b"PUT /v2/x/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
                b"Connection: close\r\n\r\n{}")
    status, _, _ = parse_raw_response(raw)
    assert status is None or 400 <= status < 500, raw


def test_content_length_and_chunked_together(c):
    loc = fresh_session(c)
    raw = c.raw(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n" % loc).encode())
    status, _, _ = parse_raw_response(raw)
    assert status is None or status < 500, raw


def test_bad_chunked_encoding_no_5xx(c):
    loc = fresh_session(c)
    raw = c.raw(("PATCH %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n" % loc).encode())
    status, _, _ = parse_raw_response(raw)
    assert status is None or 400 <= status < 500, raw


# ---------------------------------------------------------------- huge headers, long URLs

def test_huge_header_value_rejected(c):
    raw = c.raw(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (256 * 1024) +
                b"\r\nConnection: close\r\n\r\n", timeout=10)
    status, _, _ = parse_raw_response(raw)
    assert status is None or 400 <= status < 500, raw[:200]
    assert c.get("/v2/").status == 200  # a crash fails this test, not a later one


def test_many_headers(c):
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    raw = c.raw(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + hdrs + b"Connection: close\r\n\r\n", timeout=10)
    status, _, _ = parse_raw_response(raw)
    assert status is None or status in (200, 400, 413, 431), raw[:200]
    assert c.get("/v2/").status == 200  # a crash fails this test, not a later one


def test_very_long_url(c):
    raw = c.raw(b"GET /v2/" + b"a/" * 60000 + b"tags/list HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n", timeout=10)
    status, _, _ = parse_raw_response(raw)
    assert status is None or 400 <= status < 500, raw[:200]
    assert c.get("/v2/").status == 200  # a crash fails this test, not a later one


def test_long_query_string(c):
    r = c.get("/v2/?" + "q=" + "x" * 20000)
    assert r.status in (200, 400, 414, 431), r


def test_bad_digest_query_on_post(c):
    r = c.request("POST", "/v2/%s/blobs/uploads/?digest=sha256:zzz" % uniq("err"), body=b"x")
    assert_error(r, 400, "DIGEST_INVALID")


def test_bad_mount_digest(c):
    r = c.request("POST", "/v2/%s/blobs/uploads/?mount=nonsense&from=a" % uniq("err"))
    assert r.status in (202, 400), r
    if r.status == 400:
        assert_error(r, 400, "DIGEST_INVALID")


# ---------------------------------------------------------------- random garbage

def test_random_paths_no_5xx(c):
    rnd = random.Random(1234)
    alphabet = bytes(range(33, 127))
    prefixes = [b"/v2/", b"/v2/x/", b"/v2/x/blobs/", b"/v2/x/manifests/", b"/v2/x/blobs/uploads/",
                b"/v2/x/referrers/", b"/v2/_catalog?", b"/v2/x/tags/list?", b"/"]
    bad = []
    for i in range(300):
        n = rnd.randint(0, 80)
        if i % 3 == 0:
            tail = bytes(rnd.randrange(256) for _ in range(n)).replace(b"\r", b"").replace(b"\n", b"").replace(b" ", b"")
        else:
            tail = bytes(rnd.choice(alphabet) for _ in range(n))
        method = rnd.choice([b"GET", b"HEAD", b"DELETE", b"PUT", b"PATCH", b"POST"])
        req = method + b" " + rnd.choice(prefixes) + tail + \
            b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        raw = c.raw(req, timeout=5)
        status, _, _ = parse_raw_response(raw)
        if status is not None and status >= 500:
            bad.append((req, raw[:300]))
    assert not bad, bad[:5]


def test_random_bytes_as_request_no_crash(c):
    rnd = random.Random(99)
    for _ in range(40):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 300))) + b"\r\n\r\n"
        raw = c.raw(junk, timeout=2, shutdown_write=True)
        status, _, _ = parse_raw_response(raw)
        assert status is None or status < 500, (junk, raw[:200])


# ---------------------------------------------------------------- keep-alive after errors
# A server that answers an error without consuming the request body would make the
# next request on the same connection read garbage.

def same_connection(c, first, then=("GET", "/v2/", None, {})):
    conn = c.conn()
    try:
        m, p, b, h = first
        conn.request(m, p, body=b, headers=h)
        r1 = conn.getresponse()
        r1.read()
        if (r1.getheader("Connection") or "").lower() == "close":
            return r1.status, None
        m, p, b, h = then
        conn.request(m, p, body=b, headers=h)
        r2 = conn.getresponse()
        return r1.status, (r2.status, r2.read())
    finally:
        conn.close()


def test_keepalive_after_out_of_order_chunk(c):
    loc = fresh_session(c, b"0123456789")
    s1, second = same_connection(c, ("PATCH", loc, b"q" * 100000, {"Content-Range": "50-100049"}))
    assert s1 == 416
    assert second is None or second == (200, b"{}"), second


def test_keepalive_after_wrong_digest_put(c):
    loc = fresh_session(c)
    s1, second = same_connection(c, ("PUT", loc + "?digest=" + sha256(b"x"), b"y" * 100000, {}))
    assert s1 == 400
    assert second is None or second == (200, b"{}"), second


def test_keepalive_after_invalid_name_post_with_body(c):
    s1, second = same_connection(c, ("POST", "/v2/BAD/blobs/uploads/?digest=" + sha256(b"z"),
                                     b"z" * 100000, {}))
    assert s1 == 400
    assert second is None or second == (200, b"{}"), second


def test_keepalive_after_unknown_session_patch(c):
    s1, second = same_connection(c, ("PATCH", "/v2/x/blobs/uploads/" + "3" * 32, b"w" * 100000, {}))
    assert s1 == 404
    assert second is None or second == (200, b"{}"), second


def test_keepalive_after_manifest_missing_blob(c):
    body = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
            '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s",'
            '"size":1},"layers":[],"annotations":{"pad":"%s"}}' % (sha256(b"c"), "p" * 50000)).encode()
    s1, second = same_connection(c, ("PUT", "/v2/%s/manifests/v1" % uniq("err"), body,
                                     {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    assert s1 in (400, 404)
    assert second is None or second == (200, b"{}"), second


def test_keepalive_many_errors_then_success(c):
    conn = c.conn()
    try:
        for p in ("/v2/X/tags/list", "/v2/x/blobs/sha256:zz", "/v2/nope/manifests/v1",
                  "/v2/x/what", "/v2/"):
            conn.request("GET", p)
            r = conn.getresponse()
            r.read()
        assert r.status == 200
    finally:
        conn.close()

"""end-1: GET /v2/ and the headers every response carries."""
import json

import pytest

from regclient import (API_VERSION, RegClient, assert_api_version, assert_error, count_responses,
                       parse_raw_response, sha256, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


# ---------------------------------------------------------------- end-1

def test_base_get_200_empty_json(c):
    r = c.get("/v2/")
    assert r.status == 200, r
    assert json.loads(r.body) == {}
    assert r.header("Content-Type", "").split(";")[0] == "application/json"


def test_base_api_version_header(c):
    r = c.get("/v2/")
    assert r.header("Docker-Distribution-API-Version") == API_VERSION


def test_base_head_200_no_body(c):
    raw = c.raw(b"HEAD /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, rest = parse_raw_response(raw)
    assert status == 200, raw
    assert headers.get("Docker-Distribution-API-Version") == API_VERSION
    assert rest == b""


def test_base_keepalive_two_requests_one_connection(c):
    conn = c.conn()
    try:
        for _ in range(3):
            conn.request("GET", "/v2/")
            r = conn.getresponse()
            assert r.status == 200
            assert json.loads(r.read()) == {}
    finally:
        conn.close()


def test_base_pipelined_requests_answered_in_order(c):
    req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /v2/_nonexistent_/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = c.raw(req + req + last)
    assert count_responses(raw) == 3, raw
    assert raw.startswith(b"HTTP/1.1 200")


def test_base_http10_request(c):
    raw = c.raw(b"GET /v2/ HTTP/1.0\r\n\r\n")
    status, headers, rest = parse_raw_response(raw)
    assert status == 200, raw
    assert json.loads(rest) == {}


# API version header on errors and on other endpoints (end-2, end-3, end-8a, uploads)

def test_api_version_on_blob_unknown(c):
    r = c.get("/v2/%s/blobs/%s" % (uniq("base"), sha256(b"nope")))
    assert_error(r, 404, ("BLOB_UNKNOWN", "NAME_UNKNOWN"))
    assert_api_version(r)


def test_api_version_on_manifest_unknown(c):
    r = c.get("/v2/%s/manifests/latest" % uniq("base"))
    assert_error(r, 404, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"))


def test_api_version_on_name_invalid(c):
    r = c.get("/v2/UPPER/tags/list")
    assert_error(r, 400, "NAME_INVALID")


def test_api_version_on_unknown_path(c):
    r = c.get("/v2/x/notathing/y")
    assert r.status == 404, r
    assert_api_version(r)


def test_api_version_on_upload_and_blob(c):
    repo = uniq("base")
    r = c.request("POST", "/v2/%s/blobs/uploads/" % repo)
    assert r.status == 202
    assert_api_version(r)
    d = c.push_blob(repo, b"hello")
    r = c.head("/v2/%s/blobs/%s" % (repo, d))
    assert r.status == 200
    assert_api_version(r)


def test_api_version_on_catalog_and_tags(c):
    repo = uniq("base")
    c.make_image(repo, tag="v1")
    assert_api_version(c.get("/v2/_catalog"))
    assert_api_version(c.get("/v2/%s/tags/list" % repo))
    assert_api_version(c.head("/v2/%s/manifests/v1" % repo))

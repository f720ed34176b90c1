"""Manifests: end-3 (GET/HEAD) and end-7 (PUT)."""
import json
import os
import urllib.parse

import pytest

from regclient import (DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1, DOCKER_SCHEMA1_JSON,
                       EMPTY_JSON, EMPTY_JSON_DIGEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
                       OCI_LAYER, OCI_LAYER_FOREIGN, OCI_MANIFEST, RegClient, assert_api_version,
                       assert_error, descriptor, parse_raw_response, sha256, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


@pytest.fixture(scope="module")
def img(c):
    repo = uniq("man")
    i = c.make_image(repo, tag="v1", nlayers=2)
    i["repo"] = repo
    return i


def mpath(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


def manifest_for(c, repo, layers=None, config=None, push_blobs=True, **extra):
    """An OCI manifest obj whose blobs are pushed (unless push_blobs=False)."""
    layers = layers if layers is not None else [os.urandom(40)]
    config = config or json.dumps({"os": "linux", "n": os.urandom(4).hex()}).encode()
    if push_blobs:
        c.push_blob(repo, config)
        for l in layers:
            c.push_blob(repo, l)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
         "layers": [{"mediaType": OCI_LAYER, "digest": sha256(l), "size": len(l)} for l in layers]}
    m.update(extra)
    return m


# ---------------------------------------------------------------- end-7 PUT basics

def test_put_manifest_by_tag_201(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, "latest", body)
    assert r.status == 201, r
    assert_api_version(r)


def test_put_manifest_location_and_digest(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, "latest", body)
    d = sha256(body)
    assert r.header("Docker-Content-Digest") == d
    assert urllib.parse.urlparse(r.header("Location")).path == mpath(repo, d)


def test_put_manifest_by_digest_201(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, sha256(body), body)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == sha256(body)


def test_put_manifest_digest_mismatch_400(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, sha256(body + b" "), body)
    assert_error(r, 400, "DIGEST_INVALID")
    assert c.head(mpath(repo, sha256(body))).status == 404


def test_put_manifest_same_twice_idempotent(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    assert c.put_manifest(repo, "t", body).status == 201
    r = c.put_manifest(repo, "t", body)
    assert r.status == 201, r
    assert r.header("Docker-Content-Digest") == sha256(body)


def test_put_manifest_retag_moves_tag(c):
    repo = uniq("man")
    a = json.dumps(manifest_for(c, repo)).encode()
    b = json.dumps(manifest_for(c, repo)).encode()
    c.push_manifest(repo, "moving", a)
    c.push_manifest(repo, "moving", b)
    r = c.get(mpath(repo, "moving"))
    assert r.body == b
    assert c.get(mpath(repo, sha256(a))).status == 200


def test_put_manifest_exact_bytes_preserved(c):
    """Odd whitespace and key order: stored and served byte for byte, digest of those bytes."""
    repo = uniq("man")
    m = manifest_for(c, repo)
    body = ('{\n   "layers" : %s ,\t"config":%s,"mediaType":"%s",  "schemaVersion" : 2 }\n\n'
            % (json.dumps(m["layers"]), json.dumps(m["config"]), OCI_MANIFEST)).encode()
    d = c.push_manifest(repo, "odd", body)
    r = c.get(mpath(repo, "odd"))
    assert r.body == body
    assert r.header("Docker-Content-Digest") == d == sha256(body)


def test_put_manifest_oci_without_mediatype_field(c):
    """mediaType is optional (SHOULD) in an OCI image manifest body."""
    repo = uniq("man")
    m = manifest_for(c, repo)
    del m["mediaType"]
    r = c.put_manifest(repo, "nomt", json.dumps(m).encode(), OCI_MANIFEST)
    assert r.status == 201, r


def test_put_manifest_valid_tag_128_chars(c):
    repo = uniq("man")
    tag = "T" + "a" * 126 + "_"
    assert len(tag) == 128
    c.push_manifest(repo, tag, json.dumps(manifest_for(c, repo)).encode())
    assert c.get(mpath(repo, tag)).status == 200


def test_put_manifest_tag_with_dots_and_dashes(c):
    repo = uniq("man")
    tag = "_v1.2.3-rc.1__x"
    c.push_manifest(repo, tag, json.dumps(manifest_for(c, repo)).encode())
    assert c.get(mpath(repo, tag)).status == 200


def test_put_manifest_nested_repo_name(c):
    repo = "%s/sub/deeper_name.x" % uniq("man")
    c.push_manifest(repo, "v1", json.dumps(manifest_for(c, repo)).encode())
    assert c.get(mpath(repo, "v1")).status == 200


def test_put_manifest_large_3mib_accepted(c):
    """Well under the 4 MiB limit: accepted and served intact (not cut by buffer limits)."""
    repo = uniq("man")
    m = manifest_for(c, repo, annotations={"big": "x" * (3 * 1024 * 1024)})
    body = json.dumps(m).encode()
    d = c.push_manifest(repo, "big", body)
    r = c.get(mpath(repo, d))
    assert r.status == 200
    assert r.body == body


# ---------------------------------------------------------------- end-7 media types

def test_put_oci_index(c):
    repo = uniq("man")
    a = c.make_image(repo)
    b = c.make_image(repo)
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [dict(descriptor(a), platform={"architecture": "amd64", "os": "linux"}),
                         dict(descriptor(b), platform={"architecture": "arm64", "os": "linux"})]}
    body = json.dumps(idx).encode()
    d = c.push_manifest(repo, "multi", body, OCI_INDEX)
    r = c.get(mpath(repo, "multi"))
    assert r.body == body
    assert r.header("Content-Type") == OCI_INDEX
    assert r.header("Docker-Content-Digest") == d


def test_put_docker_schema2(c):
    repo = uniq("man")
    i = c.make_image(repo, tag="d2", media_type=DOCKER_MANIFEST)
    r = c.get(mpath(repo, "d2"))
    assert r.status == 200
    assert r.body == i["body"]
    assert r.header("Content-Type") == DOCKER_MANIFEST


def test_put_docker_manifest_list(c):
    repo = uniq("man")
    a = c.make_image(repo, media_type=DOCKER_MANIFEST)
    lst = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
           "manifests": [dict(descriptor(a), platform={"architecture": "amd64", "os": "linux"})]}
    body = json.dumps(lst).encode()
    c.push_manifest(repo, "list", body, DOCKER_LIST)
    r = c.get(mpath(repo, "list"))
    assert r.body == body
    assert r.header("Content-Type") == DOCKER_LIST


def test_put_oci_artifact_empty_config(c):
    repo = uniq("man")
    assert sha256(EMPTY_JSON) == EMPTY_JSON_DIGEST
    art = c.make_artifact(repo, "application/vnd.example.sbom.v1", tag="sbom")
    r = c.get(mpath(repo, "sbom"))
    assert r.status == 200, r
    assert r.body == art["body"]
    assert r.header("Content-Type") == OCI_MANIFEST


def test_put_oci_artifact_layers_only_empty_descriptor(c):
    repo = uniq("man")
    c.push_blob(repo, EMPTY_JSON)
    empty = {"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2}
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.x",
         "config": empty, "layers": [empty]}
    assert c.put_manifest(repo, "x", json.dumps(m).encode()).status == 201


def test_put_content_type_body_mismatch_400(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()  # mediaType OCI manifest
    r = c.put_manifest(repo, "mismatch", body, DOCKER_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_index_body_as_manifest_content_type_400(c):
    repo = uniq("man")
    a = c.make_image(repo)
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(a)]}
    r = c.put_manifest(repo, "x", json.dumps(idx).encode(), OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_schema1_prettyjws_unsupported(c):
    repo = uniq("man")
    body = json.dumps({"schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64",
                       "fsLayers": [], "history": [], "signatures": []}).encode()
    r = c.put_manifest(repo, "old", body, DOCKER_SCHEMA1)
    errs = assert_error(r, 400, "MANIFEST_INVALID")
    msg = " ".join(e["message"] for e in errs).lower()
    assert "unsupported" in msg or "schema1" in msg or "not supported" in msg, errs


def test_put_schema1_json_unsupported(c):
    repo = uniq("man")
    body = json.dumps({"schemaVersion": 1, "name": repo, "tag": "old", "fsLayers": [],
                       "history": []}).encode()
    r = c.put_manifest(repo, "old", body, DOCKER_SCHEMA1_JSON)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_invalid_json_400(c):
    r = c.put_manifest(uniq("man"), "bad", b'{"schemaVersion": 2, "mediaType": ', OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_empty_body_400(c):
    r = c.put_manifest(uniq("man"), "empty", b"", OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_json_array_400(c):
    r = c.put_manifest(uniq("man"), "arr", b"[1,2,3]", OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_schema_version_wrong_400(c):
    repo = uniq("man")
    m = manifest_for(c, repo, schemaVersion=3)
    r = c.put_manifest(repo, "sv3", json.dumps(m).encode())
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_schema_version_missing_400(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    del m["schemaVersion"]
    r = c.put_manifest(repo, "nosv", json.dumps(m).encode())
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_manifest_missing_config_field_400(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    del m["config"]
    r = c.put_manifest(repo, "nocfg", json.dumps(m).encode())
    assert_error(r, 400, "MANIFEST_INVALID")


def test_put_manifest_bad_layer_digest_400(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["layers"][0]["digest"] = "sha256:xyz"
    r = c.put_manifest(repo, "baddgst", json.dumps(m).encode())
    assert_error(r, 400, ("MANIFEST_INVALID", "DIGEST_INVALID"))


def test_put_unknown_content_type_rejected(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, "ct", body, "application/x-not-a-manifest")
    assert 400 <= r.status < 500, r
    assert_error(r, r.status)


# ---------------------------------------------------------------- end-7 references

def test_put_missing_layer_blob_unknown(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["layers"].append({"mediaType": OCI_LAYER, "digest": sha256(b"absent layer"), "size": 12})
    r = c.put_manifest(repo, "missing", json.dumps(m).encode())
    assert_error(r, (400, 404), "MANIFEST_BLOB_UNKNOWN")


def test_put_missing_config_blob_unknown(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["config"] = {"mediaType": OCI_CONFIG, "digest": sha256(b"absent config"), "size": 13}
    r = c.put_manifest(repo, "missingcfg", json.dumps(m).encode())
    assert_error(r, (400, 404), "MANIFEST_BLOB_UNKNOWN")


def test_put_missing_blob_nothing_stored(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["layers"].append({"mediaType": OCI_LAYER, "digest": sha256(b"absent 2"), "size": 8})
    body = json.dumps(m).encode()
    c.put_manifest(repo, "missing2", body)
    assert c.get(mpath(repo, "missing2")).status == 404
    assert c.get(mpath(repo, sha256(body))).status == 404


def test_put_blob_only_in_other_repo_blob_unknown(c):
    """Repository isolation: the layer exists, but only in another repository."""
    repo, other = uniq("man"), uniq("man-other")
    layer = os.urandom(50)
    c.push_blob(other, layer)
    m = manifest_for(c, repo)
    m["layers"].append({"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)})
    r = c.put_manifest(repo, "iso", json.dumps(m).encode())
    assert_error(r, (400, 404), "MANIFEST_BLOB_UNKNOWN")


def test_put_foreign_layer_nondistributable_accepted(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["layers"].append({"mediaType": OCI_LAYER_FOREIGN, "digest": sha256(b"windows base"),
                        "size": 12})
    r = c.put_manifest(repo, "foreign", json.dumps(m).encode())
    assert r.status == 201, r


def test_put_foreign_layer_docker_media_type_accepted(c):
    repo = uniq("man")
    i = c.make_image(repo, media_type=DOCKER_MANIFEST, push=True)
    m = dict(i["manifest"])
    m["layers"] = m["layers"] + [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                  "digest": sha256(b"foreign docker"), "size": 14,
                                  "urls": ["https://example.com/layer.tar.gz"]}]
    r = c.put_manifest(repo, "dforeign", json.dumps(m).encode(), DOCKER_MANIFEST)
    assert r.status == 201, r


def test_put_layer_with_urls_accepted(c):
    repo = uniq("man")
    m = manifest_for(c, repo)
    m["layers"].append({"mediaType": OCI_LAYER, "digest": sha256(b"remote layer"), "size": 12,
                        "urls": ["https://example.com/remote.tar.gz"]})
    r = c.put_manifest(repo, "urls", json.dumps(m).encode())
    assert r.status == 201, r


def test_put_index_missing_child_manifest_unknown(c):
    repo = uniq("man")
    a = c.make_image(repo)
    ghost = {"mediaType": OCI_MANIFEST, "digest": sha256(b"ghost manifest"), "size": 14}
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(a), ghost]}
    r = c.put_manifest(repo, "ghost", json.dumps(idx).encode(), OCI_INDEX)
    assert_error(r, (400, 404), "MANIFEST_UNKNOWN")


def test_put_index_child_in_other_repo_manifest_unknown(c):
    repo, other = uniq("man"), uniq("man-other")
    a = c.make_image(other)
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(a)]}
    r = c.put_manifest(repo, "x", json.dumps(idx).encode(), OCI_INDEX)
    assert_error(r, (400, 404), "MANIFEST_UNKNOWN")


# ---------------------------------------------------------------- end-7 tags

def test_put_tag_invalid_leading_dash(c):
    repo = uniq("man")
    r = c.put_manifest(repo, "-bad", json.dumps(manifest_for(c, repo)).encode())
    assert_error(r, 400, "TAG_INVALID")


def test_put_tag_invalid_129_chars(c):
    repo = uniq("man")
    r = c.put_manifest(repo, "a" * 129, json.dumps(manifest_for(c, repo)).encode())
    assert_error(r, 400, "TAG_INVALID")


def test_put_tag_invalid_leading_dot(c):
    repo = uniq("man")
    r = c.put_manifest(repo, ".hidden", json.dumps(manifest_for(c, repo)).encode())
    assert_error(r, 400, "TAG_INVALID")


def test_put_by_digest_with_two_tag_params(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    d = sha256(body)
    r = c.put_manifest(repo, d, body, query="?tag=alpha&tag=beta")
    assert r.status == 201, r
    assert sorted(r.headers.get_all("OCI-Tag")) == ["alpha", "beta"], r


def test_put_by_digest_tag_params_resolve(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    d = sha256(body)
    c.put_manifest(repo, d, body, query="?tag=one&tag=two")
    for t in ("one", "two"):
        r = c.get(mpath(repo, t))
        assert r.status == 200, r
        assert r.header("Docker-Content-Digest") == d


def test_put_by_digest_invalid_tag_param_400(c):
    repo = uniq("man")
    body = json.dumps(manifest_for(c, repo)).encode()
    r = c.put_manifest(repo, sha256(body), body, query="?tag=-nope")
    assert_error(r, 400, "TAG_INVALID")


# ---------------------------------------------------------------- end-7 subject

def test_put_subject_oci_subject_header(c):
    repo = uniq("man")
    base = c.make_image(repo, tag="base")
    m = manifest_for(c, repo, subject=descriptor(base), artifactType="application/vnd.example.sig")
    r = c.put_manifest(repo, sha256(json.dumps(m).encode()), json.dumps(m).encode())
    assert r.status == 201, r
    assert r.header("OCI-Subject") == base["digest"]


def test_put_subject_missing_target_allowed(c):
    repo = uniq("man")
    ghost = {"mediaType": OCI_MANIFEST, "digest": sha256(b"not pushed yet"), "size": 14}
    m = manifest_for(c, repo, subject=ghost, artifactType="application/vnd.example.sig")
    body = json.dumps(m).encode()
    r = c.put_manifest(repo, sha256(body), body)
    assert r.status == 201, r
    assert r.header("OCI-Subject") == ghost["digest"]


def test_put_without_subject_no_oci_subject_header(c):
    repo = uniq("man")
    r = c.put_manifest(repo, "plain", json.dumps(manifest_for(c, repo)).encode())
    assert r.status == 201
    assert r.header("OCI-Subject") is None


# ---------------------------------------------------------------- end-7 size limit

def test_put_manifest_over_4mib_413(c):
    repo = uniq("man")
    m = manifest_for(c, repo, annotations={"big": "y" * (4 * 1024 * 1024 + 10)})
    body = json.dumps(m).encode()
    hdr = ("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
           "Connection: close\r\n\r\n" % (mpath(repo, "huge"), OCI_MANIFEST, len(body))).encode()
    raw = c.raw(hdr + body, timeout=20)
    status, headers, rest = parse_raw_response(raw)
    assert status == 413, raw[:500]
    assert headers.get("Docker-Distribution-API-Version") == "registry/2.0"
    assert c.get(mpath(repo, "huge")).status == 404
    assert c.alive()


# ---------------------------------------------------------------- end-3 GET/HEAD

def test_get_by_tag_exact_bytes(c, img):
    r = c.get(mpath(img["repo"], "v1"))
    assert r.status == 200, r
    assert r.body == img["body"]


def test_get_by_tag_headers(c, img):
    r = c.get(mpath(img["repo"], "v1"))
    assert r.header("Content-Type") == OCI_MANIFEST
    assert r.header("Docker-Content-Digest") == img["digest"]
    assert r.header("Content-Length") == str(len(img["body"]))
    assert_api_version(r)


def test_get_by_digest(c, img):
    r = c.get(mpath(img["repo"], img["digest"]))
    assert r.status == 200
    assert r.body == img["body"]
    assert r.header("Docker-Content-Digest") == img["digest"]
    assert r.header("Content-Type") == OCI_MANIFEST


def test_get_with_accept_header(c, img):
    r = c.get(mpath(img["repo"], "v1"), headers={"Accept": "%s, %s, %s" % (
        OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST)})
    assert r.status == 200
    assert r.body == img["body"]


def test_head_by_tag_headers(c, img):
    r = c.head(mpath(img["repo"], "v1"))
    assert r.status == 200, r
    assert r.header("Docker-Content-Digest") == img["digest"]
    assert r.header("Content-Length") == str(len(img["body"]))
    assert r.header("Content-Type") == OCI_MANIFEST


def test_head_by_digest_headers(c, img):
    r = c.head(mpath(img["repo"], img["digest"]))
    assert r.status == 200, r
    assert r.header("Docker-Content-Digest") == img["digest"]
    assert r.header("Content-Length") == str(len(img["body"]))


def test_head_no_body(c, img):
    raw = c.raw(("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 % mpath(img["repo"], "v1")).encode())
    status, headers, rest = parse_raw_response(raw)
    assert status == 200
    assert headers.get("Content-Length") == str(len(img["body"]))
    assert rest == b""


def test_get_unknown_tag_404(c, img):
    assert_error(c.get(mpath(img["repo"], "nope")), 404, "MANIFEST_UNKNOWN")


def test_get_unknown_digest_404(c, img):
    assert_error(c.get(mpath(img["repo"], sha256(b"nope"))), 404, "MANIFEST_UNKNOWN")


def test_head_unknown_404_no_body(c, img):
    r = c.head(mpath(img["repo"], "nope"))
    assert r.status == 404 and r.body == b""


def test_get_unknown_repo_404(c):
    assert_error(c.get(mpath(uniq("ghost"), "latest")), 404, ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"))


def test_get_manifest_other_repo_404(c, img):
    other = uniq("man-other")
    c.make_image(other, tag="v1")
    assert_error(c.get(mpath(other, img["digest"])), 404, "MANIFEST_UNKNOWN")


def test_get_invalid_digest_reference_400(c, img):
    assert_error(c.get(mpath(img["repo"], "sha256:xyz")), 400, "DIGEST_INVALID")


def test_get_invalid_tag_reference(c, img):
    r = c.get(mpath(img["repo"], "-bad"))
    assert_error(r, (400, 404), ("TAG_INVALID", "MANIFEST_UNKNOWN"))

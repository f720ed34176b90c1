"""Deletes: end-9 (manifests), end-10 (blobs), end-14 (upload sessions); deletion disabled."""
import os

import pytest

from regclient import RegClient, assert_api_version, assert_error, location_path, sha256, uniq


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


def mpath(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


def bpath(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


# ---------------------------------------------------------------- end-9 manifests

def test_delete_manifest_by_digest_202(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    r = c.delete(mpath(repo, img["digest"]))
    assert r.status == 202, r
    assert_api_version(r)


def test_delete_manifest_by_digest_gone(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    c.delete(mpath(repo, img["digest"]))
    assert_error(c.get(mpath(repo, img["digest"])), 404, "MANIFEST_UNKNOWN")
    assert c.head(mpath(repo, img["digest"])).status == 404


def test_delete_manifest_by_digest_removes_all_tags(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    c.push_manifest(repo, "v2", img["body"])
    other = c.make_image(repo, tag="keep")
    assert c.delete(mpath(repo, img["digest"])).status == 202
    for t in ("v1", "v2"):
        assert_error(c.get(mpath(repo, t)), 404, "MANIFEST_UNKNOWN")
    assert c.get(mpath(repo, "keep")).status == 200
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == ["keep"]
    assert other


def test_delete_manifest_by_tag_202(c):
    repo = uniq("del")
    c.make_image(repo, tag="v1")
    r = c.delete(mpath(repo, "v1"))
    assert r.status == 202, r


def test_delete_manifest_by_tag_only_that_tag(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    c.push_manifest(repo, "v2", img["body"])
    c.delete(mpath(repo, "v1"))
    assert_error(c.get(mpath(repo, "v1")), 404, "MANIFEST_UNKNOWN")
    assert c.get(mpath(repo, "v2")).status == 200
    r = c.get(mpath(repo, img["digest"]))
    assert r.status == 200 and r.body == img["body"]


def test_delete_tag_removed_from_tags_list(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="a")
    c.push_manifest(repo, "b", img["body"])
    c.delete(mpath(repo, "a"))
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == ["b"]


def test_delete_unknown_manifest_digest_404(c):
    repo = uniq("del")
    c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, sha256(b"never"))), 404, "MANIFEST_UNKNOWN")


def test_delete_unknown_tag_404(c):
    repo = uniq("del")
    c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, "nosuchtag")), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_twice_second_404(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    assert c.delete(mpath(repo, img["digest"])).status == 202
    assert_error(c.delete(mpath(repo, img["digest"])), 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_invalid_digest_400(c):
    repo = uniq("del")
    c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, "sha256:xyz")), 400, "DIGEST_INVALID")


def test_delete_manifest_then_repush(c):
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    c.delete(mpath(repo, img["digest"]))
    c.push_manifest(repo, "v1", img["body"])
    r = c.get(mpath(repo, "v1"))
    assert r.status == 200 and r.body == img["body"]


def test_delete_manifest_other_repo_unaffected(c):
    a, b = uniq("del-a"), uniq("del-b")
    img = c.make_image(a, tag="v1")
    c.make_image(b, tag="v1", layers=img["layers"], config=img["config"])
    c.delete(mpath(a, img["digest"]))
    r = c.get(mpath(b, "v1"))
    assert r.status == 200 and r.body == img["body"]


# ---------------------------------------------------------------- end-10 blobs

def test_delete_blob_202(c):
    repo = uniq("del")
    d = c.push_blob(repo, b"to be deleted")
    r = c.delete(bpath(repo, d))
    assert r.status == 202, r


def test_delete_blob_then_unknown(c):
    repo = uniq("del")
    d = c.push_blob(repo, b"to be deleted 2")
    c.delete(bpath(repo, d))
    assert c.head(bpath(repo, d)).status == 404
    assert_error(c.get(bpath(repo, d)), 404, "BLOB_UNKNOWN")


def test_delete_blob_shared_storage_other_repo_keeps_it(c):
    a, b = uniq("del-a"), uniq("del-b")
    data = b"shared between two repositories"
    d = c.push_blob(a, data)
    c.push_blob(b, data)
    assert c.delete(bpath(a, d)).status == 202
    assert c.head(bpath(a, d)).status == 404
    r = c.get(bpath(b, d))
    assert r.status == 200 and r.body == data


def test_delete_blob_mounted_copy_keeps_source(c):
    a, b = uniq("del-a"), uniq("del-b")
    data = b"mounted then deleted"
    d = c.push_blob(a, data)
    assert c.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (b, d, a)).status == 201
    c.delete(bpath(b, d))
    assert c.head(bpath(b, d)).status == 404
    assert c.get(bpath(a, d)).body == data


def test_delete_blob_unknown_404(c):
    repo = uniq("del")
    c.push_blob(repo, b"x")
    assert_error(c.delete(bpath(repo, sha256(b"never there"))), 404, "BLOB_UNKNOWN")


def test_delete_blob_invalid_digest_400(c):
    repo = uniq("del")
    c.push_blob(repo, b"y")
    assert_error(c.delete(bpath(repo, "sha256:xyz")), 400, "DIGEST_INVALID")


def test_delete_blob_then_repush(c):
    repo = uniq("del")
    data = b"deleted then pushed again"
    d = c.push_blob(repo, data)
    c.delete(bpath(repo, d))
    c.push_blob(repo, data)
    assert c.get(bpath(repo, d)).body == data


# ---------------------------------------------------------------- end-14 upload sessions

def test_delete_upload_session_204(c):
    loc, _ = c.start_upload(uniq("del"))
    r = c.delete(loc)
    assert r.status == 204, r
    assert_api_version(r)


def test_delete_upload_session_then_status_404(c):
    loc, _ = c.start_upload(uniq("del"))
    loc = location_path(c.patch_chunk(loc, b"partial", start=0))
    c.delete(loc)
    assert_error(c.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(c.patch_chunk(loc, b"more", start=7), 404, "BLOB_UPLOAD_UNKNOWN")


def test_delete_upload_session_removes_partial_file(c, registry):
    loc, r = c.start_upload(uniq("del"))
    uuid = r.header("Docker-Upload-UUID")
    loc = location_path(c.patch_chunk(loc, b"p" * 4096, start=0))
    updir = os.path.join(registry.root, "uploads")

    def files():
        out = []
        for dp, _, fs in os.walk(updir):
            out += [os.path.join(dp, f) for f in fs if uuid in os.path.join(dp, f)]
        return out

    before = files()
    assert c.delete(loc).status == 204
    assert not [f for f in before if os.path.exists(f)]
    assert files() == []


def test_delete_upload_unknown_session_404(c):
    repo = uniq("del")
    c.start_upload(repo)
    assert_error(c.delete("/v2/%s/blobs/uploads/%s" % (repo, "2" * 32)), 404, "BLOB_UPLOAD_UNKNOWN")


# ---------------------------------------------------------------- deletion disabled (405 UNSUPPORTED)

DISABLED = """version: 0.1
storage:
  delete:
    enabled: false
"""

ENABLED = """version: 0.1
storage:
  delete:
    enabled: true
"""


@pytest.fixture
def disabled_cfg(server_factory):
    return RegClient(server_factory(config=DISABLED))


@pytest.fixture
def disabled_env(server_factory):
    return RegClient(server_factory(env={"REGISTRY_STORAGE_DELETE_ENABLED": "false"}))


def test_disabled_config_manifest_by_digest_405(disabled_cfg):
    c = disabled_cfg
    repo = uniq("nodel")
    img = c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, img["digest"])), 405, "UNSUPPORTED")
    assert c.get(mpath(repo, img["digest"])).status == 200
    assert c.get(mpath(repo, "v1")).status == 200


def test_disabled_config_manifest_by_tag_405(disabled_cfg):
    c = disabled_cfg
    repo = uniq("nodel")
    c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, "v1")), 405, "UNSUPPORTED")
    assert c.get(mpath(repo, "v1")).status == 200


def test_disabled_config_blob_405(disabled_cfg):
    c = disabled_cfg
    repo = uniq("nodel")
    d = c.push_blob(repo, b"cannot delete me")
    assert_error(c.delete(bpath(repo, d)), 405, "UNSUPPORTED")
    assert c.head(bpath(repo, d)).status == 200


def test_disabled_env_manifest_405(disabled_env):
    c = disabled_env
    repo = uniq("nodel")
    img = c.make_image(repo, tag="v1")
    assert_error(c.delete(mpath(repo, img["digest"])), 405, "UNSUPPORTED")


def test_disabled_env_blob_405(disabled_env):
    c = disabled_env
    repo = uniq("nodel")
    d = c.push_blob(repo, b"env says no")
    assert_error(c.delete(bpath(repo, d)), 405, "UNSUPPORTED")


def test_enabled_explicitly_in_config_202(server_factory):
    c = RegClient(server_factory(config=ENABLED))
    repo = uniq("del")
    img = c.make_image(repo, tag="v1")
    assert c.delete(mpath(repo, img["digest"])).status == 202


def test_env_overrides_config_enabled(server_factory):
    """REGISTRY_* overrides win over the file, as in distribution."""
    c = RegClient(server_factory(config=ENABLED, env={"REGISTRY_STORAGE_DELETE_ENABLED": "false"}))
    repo = uniq("nodel")
    d = c.push_blob(repo, b"override")
    assert_error(c.delete(bpath(repo, d)), 405, "UNSUPPORTED")


def test_disabled_upload_cancel_still_allowed(disabled_cfg):
    """Cancelling an upload session is not a storage delete."""
    c = disabled_cfg
    loc, _ = c.start_upload(uniq("nodel"))
    assert c.delete(loc).status == 204


def test_delete_blob_then_manifest_referencing_it_fails(c):
    repo = uniq("del")
    img = c.make_image(repo, push=False)
    c.push_blob(repo, img["config"])
    for l in img["layers"]:
        c.push_blob(repo, l)
    c.delete(bpath(repo, img["layer_digests"][0]))
    r = c.put_manifest(repo, "v1", img["body"])
    assert_error(r, (400, 404), "MANIFEST_BLOB_UNKNOWN")


def test_delete_last_tag_repo_tags_empty(c):
    repo = uniq("del")
    c.make_image(repo, tag="only")
    c.delete(mpath(repo, "only"))
    r = c.get("/v2/%s/tags/list" % repo)
    if r.status == 200:
        assert r.json()["tags"] in ([], None)
    else:
        assert_error(r, 404, "NAME_UNKNOWN")

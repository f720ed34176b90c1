"""berth push / pull / cp round trips, against berth and Debian's
docker-registry: OCI layout, OCI archive and docker-archive in and out with
identical digests, multi-platform indexes (whole and --platform), and
`berth cp` (--all-tags between two registries, berth -> docker-registry, and
the same registry where blobs are mounted, not uploaded).
"""
import gzip
import hashlib
import json
import os
import tarfile

import pytest

import imagegen
from clients import access_log, log_mark
from test_client_common import (berth, fails, http_tags_digests, json_lines,  # noqa: F401
                                reference_factory, reg, tags_of)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    base = tmp_path_factory.mktemp("transfer")
    d = str(base / "layout")
    one = imagegen.build_image(seed="xfer-one", layers=3, size=24 * 1024)
    two = imagegen.build_image(seed="xfer-two", layers=2, size=16 * 1024)
    multi = imagegen.build_multi(seed="xfer-multi", layers=2, size=8 * 1024)
    info = imagegen.write_oci_layout(d, {"v1": one, "v2": two, "multi": multi})
    return str(base), d, info


def check_layout_blobs(out, img, manifest_digest, manifest_bytes):
    assert imagegen.read_blob(out, manifest_digest) == manifest_bytes
    for dg, data in img.blobs().items():
        assert imagegen.read_blob(out, dg) == data, dg


def tar_layout(layout, path):
    with tarfile.open(path, "w") as t:
        for name in sorted(os.listdir(layout)):
            t.add(os.path.join(layout, name), arcname=name)


def untar(path, dest):
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(path) as t:
        t.extractall(dest)
    return dest


def read_docker_archive(path):
    """(config bytes, [diff ids of the layer files], manifest.json entry)."""
    with tarfile.open(path) as t:
        m = json.load(t.extractfile("manifest.json"))
        assert len(m) == 1, m
        cfg = t.extractfile(m[0]["Config"]).read()
        diffs = []
        for l in m[0]["Layers"]:
            data = t.extractfile(l).read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            diffs.append(sha(data))
    return cfg, diffs, m[0]


# --------------------------------------------------------------------------
# OCI layout

def test_oci_layout_round_trip(reg, images, tmp_path):
    base, d, info = images
    ref = "%s/rt/oci:v1" % reg.host
    out = berth("push", "oci:%s:v1" % d, ref).stdout.strip()
    assert out == info["v1"]["digest"]
    assert berth("inspect", "--raw", ref).stdout.encode() == info["v1"]["manifest"]
    o = str(tmp_path / "out")
    berth("pull", ref, "oci:%s:v1" % o)
    desc = imagegen.read_oci_layout(o)["v1"]
    assert desc["digest"] == info["v1"]["digest"]
    assert desc["mediaType"] == imagegen.MT_OCI_MANIFEST
    check_layout_blobs(o, info["v1"]["image"], info["v1"]["digest"], info["v1"]["manifest"])
    # pulled by digest into the same layout under another tag: nothing changes
    berth("pull", "%s/rt/oci@%s" % (reg.host, info["v1"]["digest"]), "oci:%s:again" % o)
    idx = imagegen.read_oci_layout(o)
    assert idx["again"]["digest"] == idx["v1"]["digest"]
    # and the pulled layout pushes back to the same digest
    assert berth("push", "-q", "oci:%s:v1" % o, "%s/rt/oci2:v1" % reg.host).stdout.strip() == \
        info["v1"]["digest"]


def test_multi_platform_index_kept_whole(reg, images, tmp_path):
    base, d, info = images
    m = info["multi"]
    ref = "%s/rt/multi:1.0" % reg.host
    assert berth("push", "-q", "oci:%s:multi" % d, ref).stdout.strip() == m["digest"]
    assert berth("inspect", "--raw", ref).stdout.encode() == m["manifest"]
    o = str(tmp_path / "whole")
    berth("pull", ref, "oci:%s:multi" % o)
    assert imagegen.read_oci_layout(o)["multi"]["digest"] == m["digest"]
    for dg, data in m["image"].blobs().items():
        assert imagegen.read_blob(o, dg) == data
    # --platform picks one image
    arm = [i for i in m["image"].images if i.arch == "arm64"][0]
    body, _ = arm.manifest()
    o2 = str(tmp_path / "arm")
    berth("pull", "--platform", "linux/arm64", ref, "oci:%s:arm" % o2)
    assert imagegen.read_oci_layout(o2)["arm"]["digest"] == sha(body)
    check_layout_blobs(o2, arm, sha(body), body)
    fails(["pull", "--platform", "linux/s390x", ref, "oci:%s:x" % (tmp_path / "none")], 1)


# --------------------------------------------------------------------------
# OCI archive

def test_oci_archive_round_trip(reg, images, tmp_path):
    base, d, info = images
    arc = str(tmp_path / "in.tar")
    tar_layout(d, arc)
    ref = "%s/rt/ociarchive:v2" % reg.host
    assert berth("push", "-q", "oci-archive:%s:v2" % arc, ref).stdout.strip() == info["v2"]["digest"]
    out = str(tmp_path / "out.tar")
    berth("pull", ref, "oci-archive:%s:v2" % out)
    o = untar(out, str(tmp_path / "x"))
    assert imagegen.read_oci_layout(o)["v2"]["digest"] == info["v2"]["digest"]
    check_layout_blobs(o, info["v2"]["image"], info["v2"]["digest"], info["v2"]["manifest"])
    # the archive berth wrote pushes back to the same digest
    assert berth("push", "-q", "oci-archive:%s:v2" % out,
                 "%s/rt/ociarchive:again" % reg.host).stdout.strip() == info["v2"]["digest"]


# --------------------------------------------------------------------------
# docker-archive (`docker save` tarballs)

def test_docker_archive_round_trip(reg, images, tmp_path):
    img = imagegen.build_image(seed="xfer-docker", layers=2, size=16 * 1024)
    arc = str(tmp_path / "saved.tar")
    imagegen.write_docker_archive(arc, img, ["image-gallery:latest"])
    ref = "%s/rt/docker:v1" % reg.host
    dg = berth("push", "-q", "docker-archive:%s" % arc, ref).stdout.strip()
    assert dg.startswith("sha256:")
    assert berth("digest", ref).stdout.strip() == dg
    # the registry holds the same config (so the same image ID) and the same diff ids
    j = json.loads(berth("inspect", "--json", ref).stdout)
    assert j["config"] == img.config_digest
    assert j["mediaType"] == imagegen.MT_DOCKER_MANIFEST
    assert len(j["layers"]) == 2
    out = str(tmp_path / "pulled.tar")
    berth("pull", ref, "docker-archive:%s" % out)
    cfg, diffs, entry = read_docker_archive(out)
    assert sha(cfg) == img.config_digest
    assert cfg == img.config
    assert diffs == [l.diff_id for l in img.layers]
    assert entry["RepoTags"], entry
    # pushing the pulled archive again gives the same manifest (same compression)
    assert berth("push", "-q", "docker-archive:%s" % out, ref).stdout.strip() == dg
    # choosing one name of a multi-name archive
    arc2 = str(tmp_path / "two-names.tar")
    imagegen.write_docker_archive(arc2, img, ["a/b:1", "a/b:2"])
    assert berth("push", "-q", "docker-archive:%s:a/b:2" % arc2,
                 "%s/rt/docker:named" % reg.host).stdout.strip() == dg


def test_pull_to_oci_from_docker_archive_push(reg, tmp_path):
    """docker-archive -> registry -> OCI layout: config and layers identical."""
    img = imagegen.build_image(seed="xfer-docker2", layers=1, size=8 * 1024)
    arc = str(tmp_path / "saved.tar")
    imagegen.write_docker_archive(arc, img, ["x/y:z"])
    ref = "%s/rt/docker2:v1" % reg.host
    dg = berth("push", "-q", "docker-archive:%s" % arc, ref).stdout.strip()
    o = str(tmp_path / "lay")
    berth("pull", ref, "oci:%s:v1" % o)
    desc = imagegen.read_oci_layout(o)["v1"]
    assert desc["digest"] == dg
    m = json.loads(imagegen.read_blob(o, dg))
    assert m["config"]["digest"] == img.config_digest
    assert imagegen.read_blob(o, img.config_digest) == img.config
    layer = imagegen.read_blob(o, m["layers"][0]["digest"])
    assert sha(gzip.decompress(layer)) == img.layers[0].diff_id


# --------------------------------------------------------------------------
# cp

def _push_gallery(host, d):
    r = berth("push", "-q", "--all-tags", "oci:%s" % d, "%s/gallery/ui" % host)
    return dict(l.split() for l in r.stdout.splitlines() if l.strip())


def test_cp_all_tags_between_two_berth_servers(server_factory, images):
    base, d, info = images
    a, b = server_factory(), server_factory()
    pushed = _push_gallery(a.host, d)
    r = berth("cp", "--all-tags", "--all-platforms", "%s/gallery/ui" % a.host,
              "%s/mirror/ui" % b.host)
    got = http_tags_digests(b.host, "mirror/ui")
    assert got == pushed == {t: info[t]["digest"] for t in ("v1", "v2", "multi")}
    for t, dg in pushed.items():
        assert "%s %s" % (t, dg) in r.stdout, r.stdout
    # again: nothing moves
    mark = log_mark(b)
    berth("cp", "-q", "--all-tags", "--all-platforms", "%s/gallery/ui" % a.host,
          "%s/mirror/ui" % b.host)
    assert not [q for q in access_log(b, mark) if q.method in ("POST", "PATCH")], \
        access_log(b, mark)


def test_cp_all_tags_berth_to_docker_registry(server_factory, reference_factory, images):
    base, d, info = images
    a = server_factory()
    ref = reference_factory()
    pushed = _push_gallery(a.host, d)
    berth("cp", "-q", "--all-tags", "--all-platforms", "%s/gallery/ui" % a.host,
          "%s/gallery/ui" % ref.host)
    assert http_tags_digests(ref.host, "gallery/ui") == pushed
    assert tags_of("%s/gallery/ui" % ref.host) == ["multi", "v1", "v2"]
    # and back from docker-registry into a fresh berth
    c = server_factory()
    berth("cp", "-q", "--all-tags", "--all-platforms", "%s/gallery/ui" % ref.host,
          "%s/gallery/ui" % c.host)
    assert http_tags_digests(c.host, "gallery/ui") == pushed


def test_cp_platform_picks_one_image(registry, images):
    base, d, info = images
    m = info["multi"]
    berth("push", "-q", "oci:%s:multi" % d, "%s/cpplat/src:multi" % registry.host)
    arm = [i for i in m["image"].images if i.arch == "arm64"][0]
    berth("cp", "-q", "--platform", "linux/arm64", "%s/cpplat/src:multi" % registry.host,
          "%s/cpplat/arm:1" % registry.host)
    assert berth("digest", "%s/cpplat/arm:1" % registry.host).stdout.strip() == \
        sha(arm.manifest()[0])


def test_cp_same_registry_mounts(reg, images):
    base, d, info = images
    berth("push", "-q", "oci:%s:v1" % d, "%s/mount/src:v1" % reg.host)
    mark = log_mark(reg)
    r = berth("cp", "--json", "%s/mount/src:v1" % reg.host, "%s/mount/dst:v1" % reg.host)
    reqs = access_log(reg, mark)
    assert berth("digest", "%s/mount/dst:v1" % reg.host).stdout.strip() == info["v1"]["digest"]
    assert not [q for q in reqs if q.method == "PATCH"], "bytes uploaded: %s" % reqs
    posts = [q for q in reqs if q.method == "POST"]
    if posts and any(q.query for q in posts):  # the server logs query strings
        assert all("mount=" in q.query for q in posts), posts
    ev = json_lines(r.stdout)
    acts = {e["digest"]: e["action"] for e in ev if e.get("event") == "blob"}
    img = info["v1"]["image"]
    assert set(acts) == {img.config_digest} | {l.digest for l in img.layers}, ev
    assert all(a in ("mounted", "exists") for a in acts.values()), acts
    assert "mounted" in acts.values(), acts


def test_cp_to_and_from_local_formats(registry, images, tmp_path):
    base, d, info = images
    berth("cp", "-q", "oci:%s:v2" % d, "%s/cplocal/ui:v2" % registry.host)
    o = str(tmp_path / "o")
    berth("cp", "-q", "%s/cplocal/ui:v2" % registry.host, "oci:%s:v2" % o)
    assert imagegen.read_oci_layout(o)["v2"]["digest"] == info["v2"]["digest"]

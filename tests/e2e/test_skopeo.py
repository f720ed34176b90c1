"""skopeo against berth: OCI layouts in and out with identical digests, --all
with a multi-platform index, inspect, list-tags, delete, registry-to-registry
copy that mounts, and copy to a second server.

BERTH_E2E_TARGET=reference runs the same tests against Debian's docker-registry.
"""
import json
import os

import pytest

import imagegen
from clients import Wiretap, skopeo, target, target_factory  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """An OCI layout: tag v1 (3 gzip'd layers), tag v2 (another image)."""
    d = str(tmp_path_factory.mktemp("oci") / "layout")
    info = imagegen.write_oci_layout(d, {
        "v1": imagegen.build_image(seed="skopeo-v1", layers=3, size=48 * 1024),
        "v2": imagegen.build_image(seed="skopeo-v2", layers=2, size=32 * 1024),
    })
    return d, info


@pytest.fixture(scope="module")
def pushed(skopeo, target, layout):
    """gallery/ui:v1 pushed from the layout (shared by several tests)."""
    d, info = layout
    ref = "docker://%s/gallery/ui:v1" % target.host
    skopeo.copy("oci:%s:v1" % d, ref, "--preserve-digests")
    return ref, info["v1"]


def blob_digests(image):
    return [image.config_digest] + [l.digest for l in image.layers]


def test_copy_oci_layout_in_and_out_identical_digests(skopeo, target, pushed, tmp_path):
    ref, v1 = pushed
    img = v1["image"]
    # the registry serves exactly the manifest bytes that were pushed
    assert skopeo.inspect(ref, raw=True).encode() == v1["manifest"]
    # ... and the config blob byte for byte
    assert skopeo.inspect(ref, raw=True, config=True).encode() == img.config

    out = str(tmp_path / "out")
    skopeo.copy(ref, "oci:%s:v1" % out, "--preserve-digests")
    desc = imagegen.read_oci_layout(out)["v1"]
    assert desc["digest"] == v1["digest"], "manifest digest changed on the way out"
    assert desc["mediaType"] == imagegen.MT_OCI_MANIFEST
    manifest = imagegen.read_blob(out, desc["digest"])
    assert manifest == v1["manifest"]
    m = json.loads(manifest)
    assert m["config"]["digest"] == img.config_digest
    assert [l["digest"] for l in m["layers"]] == [l.digest for l in img.layers]
    # every blob came back with the same bytes (skopeo verifies digests, we check bytes)
    for d in blob_digests(img):
        assert imagegen.read_blob(out, d) == img.blobs()[d], d
    got = sorted(os.listdir(os.path.join(out, "blobs", "sha256")))
    want = sorted(x.split(":")[1] for x in blob_digests(img) + [v1["digest"]])
    assert got == want


def test_inspect(skopeo, target, pushed):
    ref, v1 = pushed
    img = v1["image"]
    i = skopeo.inspect(ref)
    assert i["Digest"] == v1["digest"]
    assert i["Name"] == "%s/gallery/ui" % target.host
    assert i["Architecture"] == "amd64" and i["Os"] == "linux"
    assert i["Layers"] == [l.digest for l in img.layers]
    assert i["Labels"] == {"org.berth.test": "1"}
    assert "v1" in i["RepoTags"]
    # by digest too
    by_digest = "docker://%s/gallery/ui@%s" % (target.host, v1["digest"])
    assert skopeo.inspect(by_digest, raw=True).encode() == v1["manifest"]
    cfg = json.loads(skopeo.inspect(by_digest, config=True, raw=True))
    assert cfg["rootfs"]["diff_ids"] == [l.diff_id for l in img.layers]


def test_list_tags(skopeo, target, layout, pushed):
    d, info = layout
    repo = "docker://%s/gallery/ui" % target.host
    skopeo.copy("oci:%s:v2" % d, repo + ":v2", "--preserve-digests")
    # same manifest under a second tag: copied registry to registry
    skopeo.copy(repo + ":v1", repo + ":latest", "--preserve-digests")
    tags = skopeo.list_tags(repo)
    assert tags["Repository"] == "%s/gallery/ui" % target.host
    assert sorted(tags["Tags"]) == ["latest", "v1", "v2"]
    assert skopeo.inspect(repo + ":latest")["Digest"] == info["v1"]["digest"]
    assert skopeo.inspect(repo + ":v2")["Digest"] == info["v2"]["digest"]


def test_delete(skopeo, target, layout):
    d, info = layout
    repo = "docker://%s/gallery/tmp" % target.host
    skopeo.copy("oci:%s:v1" % d, repo + ":gone", "--preserve-digests")
    skopeo.copy("oci:%s:v2" % d, repo + ":kept", "--preserve-digests")
    assert skopeo.inspect(repo + ":gone")["Digest"] == info["v1"]["digest"]
    skopeo.delete(repo + ":gone")
    r = skopeo.inspect(repo + ":gone", check=False)
    assert r.returncode != 0, "inspect after delete still works:\n" + r.stdout
    assert "manifest unknown" in r.stderr.lower() or "not found" in r.stderr.lower(), r.stderr
    r = skopeo.inspect("%s@%s" % (repo, info["v1"]["digest"]), check=False)
    assert r.returncode != 0, "the deleted manifest is still served by digest"
    # the other tag (another manifest) is untouched
    assert skopeo.list_tags(repo)["Tags"] == ["kept"]
    assert skopeo.inspect(repo + ":kept", raw=True).encode() == info["v2"]["manifest"]


def test_copy_all_multi_platform_index(skopeo, target, tmp_path):
    src = str(tmp_path / "multi")
    multi = imagegen.build_multi(seed="skopeo-multi", layers=2, size=32 * 1024)
    info = imagegen.write_oci_layout(src, {"m1": multi})["m1"]
    ref = "docker://%s/gallery/multi:m1" % target.host
    skopeo.copy("oci:%s:m1" % src, ref, "--all", "--preserve-digests")

    # the index: same bytes, so the same digest
    assert skopeo.inspect(ref, raw=True).encode() == multi.index
    idx = json.loads(multi.index)
    assert [c["platform"]["architecture"] for c in idx["manifests"]] == ["amd64", "arm64"]
    # both platforms' manifests are there, by digest, with their own config
    for child, im in zip(idx["manifests"], multi.images):
        cref = "docker://%s/gallery/multi@%s" % (target.host, child["digest"])
        body, _ = im.manifest()
        assert skopeo.inspect(cref, raw=True).encode() == body
        assert skopeo.inspect(cref, raw=True, config=True).encode() == im.config
    # platform selection through the index
    for arch in ("amd64", "arm64"):
        i = json.loads(skopeo("--override-arch", arch, "--override-os", "linux",
                              "inspect", "--tls-verify=false", ref).stdout)
        assert i["Architecture"] == arch

    out = str(tmp_path / "multi-out")
    skopeo.copy(ref, "oci:%s:m1" % out, "--all", "--preserve-digests")
    desc = imagegen.read_oci_layout(out)["m1"]
    assert desc["digest"] == info["digest"] == multi.index_digest
    for d, data in multi.blobs().items():
        assert imagegen.read_blob(out, d) == data, d


def test_registry_to_registry_copy_mounts(skopeo, target, layout):
    """docker://HOST/mount/a:1 -> docker://HOST/mount/b:1 mounts the layers.

    The requests are recorded by a TCP wiretap in front of the registry (the
    same server; so the test does not depend on the access-log format)."""
    d, info = layout
    img = info["v1"]["image"]
    tap = Wiretap(target.host)
    try:
        a = "docker://%s/mount/a:1" % tap.host
        b = "docker://%s/mount/b:1" % tap.host
        skopeo.copy("oci:%s:v1" % d, a, "--preserve-digests")
        mark = tap.mark()
        skopeo.copy(a, b, "--preserve-digests")
        reqs = tap.since(mark)
    finally:
        tap.close()
    assert skopeo.inspect("docker://%s/mount/b:1" % target.host, raw=True).encode() == info["v1"]["manifest"]

    show = "\n".join(map(repr, reqs))
    to_b = [r for r in reqs if r.path.startswith("/v2/mount/b/")]
    mounts = [r for r in to_b if r.method == "POST" and "mount=" in r.query]
    mounted = {r.query.split("mount=")[1].split("&")[0].replace("%3A", ":").replace("%3a", ":")
               for r in mounts if r.status == 201}
    assert mounted == {l.digest for l in img.layers}, "layers not mounted from mount/a:\n" + show
    for r in mounts:
        if r.status == 201:
            assert "from=mount%2Fa" in r.query or "from=mount/a" in r.query, r
    # no layer was uploaded again: the only upload completed into b is the config
    # (c/image does not try to reuse config blobs)
    finished = [r for r in to_b if r.method == "PUT" and "/blobs/uploads/" in r.path]
    uploaded = {r.query.split("digest=")[1].split("&")[0].replace("%3A", ":").replace("%3a", ":")
                for r in finished if "digest=" in r.query}
    assert not (uploaded & {l.digest for l in img.layers}), "a layer was uploaded again:\n" + show
    assert len(finished) <= 1, show


def test_copy_to_second_server(skopeo, target, target_factory, pushed):
    ref, v1 = pushed
    other = target_factory()
    dst = "docker://%s/mirror/ui:v1" % other.host
    skopeo.copy(ref, dst, "--preserve-digests")
    assert skopeo.inspect(dst, raw=True).encode() == v1["manifest"]
    assert skopeo.inspect(dst)["Digest"] == v1["digest"]
    assert skopeo.list_tags("docker://%s/mirror/ui" % other.host)["Tags"] == ["v1"]
    # the first server is unchanged and the second has nothing else
    assert skopeo.inspect(ref)["Digest"] == v1["digest"]


def test_copy_all_as_docker_manifest_list(skopeo, target, tmp_path):
    """The same multi-platform image converted to Docker formats on the way in
    (--format v2s2): a Docker manifest list over schema2 manifests."""
    src = str(tmp_path / "multi")
    multi = imagegen.build_multi(seed="skopeo-dlist", layers=2, size=32 * 1024)
    imagegen.write_oci_layout(src, {"m": multi})
    ref = "docker://%s/gallery/dlist:m" % target.host
    skopeo.copy("oci:%s:m" % src, ref, "--all", "--format", "v2s2")
    lst = json.loads(skopeo.inspect(ref, raw=True))
    assert lst["mediaType"] == imagegen.MT_DOCKER_LIST
    assert [c["platform"]["architecture"] for c in lst["manifests"]] == ["amd64", "arm64"]
    for child, im in zip(lst["manifests"], multi.images):
        assert child["mediaType"] == imagegen.MT_DOCKER_MANIFEST
        cref = "docker://%s/gallery/dlist@%s" % (target.host, child["digest"])
        m = json.loads(skopeo.inspect(cref, raw=True))
        assert m["mediaType"] == imagegen.MT_DOCKER_MANIFEST
        assert m["config"]["digest"] == im.config_digest  # same config bytes
        assert [l["digest"] for l in m["layers"]] == [l.digest for l in im.layers]
        assert skopeo.inspect(cref, raw=True, config=True).encode() == im.config
    # a list copied registry to registry keeps its digest
    raw = skopeo.inspect(ref, raw=True).encode()
    dst = "docker://%s/gallery/dlist-copy:m" % target.host
    skopeo.copy(ref, dst, "--all", "--preserve-digests")
    assert skopeo.inspect(dst, raw=True).encode() == raw

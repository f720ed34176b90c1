"""podman against berth (root, isolated vfs storage, see clients.Podman):
pull an image pushed by skopeo, tag and push it under a new name, build FROM
scratch + COPY and push/pull it, search through /v2/_catalog.

BERTH_E2E_TARGET=reference runs the same tests against Debian's docker-registry.
"""
import io
import json
import tarfile

import pytest

import imagegen
from clients import podman, skopeo, target  # noqa: F401  (fixtures)

TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def seeded(skopeo, target, tmp_path_factory):
    """podman/src:v1 pushed by skopeo from an imagegen OCI layout."""
    d = str(tmp_path_factory.mktemp("oci") / "layout")
    img = imagegen.build_image(seed="podman-src", layers=2, size=48 * 1024)
    info = imagegen.write_oci_layout(d, {"v1": img})["v1"]
    ref = "%s/podman/src:v1" % target.host
    skopeo.copy("oci:%s:v1" % d, "docker://" + ref, "--preserve-digests")
    return ref, img, info


def test_pull(podman, seeded):
    ref, img, info = seeded
    out = podman("pull", TLS, ref).stdout.strip()
    assert out.splitlines()[-1] == img.config_digest.split(":")[1]
    assert podman.image_id(ref) == img.config_digest.split(":")[1]
    i = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert i["Digest"] == info["digest"]
    assert i["RootFS"]["Layers"] == [l.diff_id for l in img.layers]
    # pull by digest as well
    podman("pull", TLS, "%s@%s" % (ref.rsplit(":", 1)[0], info["digest"]))


def test_tag_and_push_new_name(podman, skopeo, target, seeded):
    ref, img, info = seeded
    podman("pull", TLS, ref)
    new = "%s/podman/copy:v2" % target.host
    podman("tag", ref, new)
    podman("push", TLS, new)
    pushed = skopeo.inspect("docker://" + new)
    cfg = json.loads(skopeo.inspect("docker://" + new, raw=True, config=True))
    # same image (config, so the same image id), same file system content (diff ids)
    assert skopeo.inspect("docker://" + new, raw=True, config=True).encode() == img.config
    assert cfg["rootfs"]["diff_ids"] == [l.diff_id for l in img.layers]
    assert len(pushed["Layers"]) == len(img.layers)
    assert skopeo.list_tags("docker://%s/podman/copy" % target.host)["Tags"] == ["v2"]
    # the same image pushed as a Docker schema2 manifest
    v2s2 = "%s/podman/copy:v2s2" % target.host
    podman("tag", ref, v2s2)
    podman("push", TLS, "--format", "v2s2", v2s2)
    m = json.loads(skopeo.inspect("docker://" + v2s2, raw=True))
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert m["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert json.loads(skopeo.inspect("docker://" + v2s2, raw=True, config=True))["rootfs"]["diff_ids"] == \
        [l.diff_id for l in img.layers]
    assert sorted(skopeo.list_tags("docker://%s/podman/copy" % target.host)["Tags"]) == ["v2", "v2s2"]
    # and back: drop the local copy, pull the new name, same image id
    podman("rmi", "-f", new, ref, v2s2)
    podman("pull", TLS, new)
    assert podman.image_id(new) == img.config_digest.split(":")[1]
    assert json.loads(podman("image", "inspect", new).stdout)[0]["RootFS"]["Layers"] == \
        [l.diff_id for l in img.layers]


def test_build_from_scratch_push_pull(podman, skopeo, target, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    payload = b"built by podman for berth\n" * 100
    (ctx / "file").write_bytes(payload)
    (ctx / "Containerfile").write_text("FROM scratch\nCOPY file /file\nLABEL org.berth.test=built\n")
    ref = "%s/podman/built:v1" % target.host
    podman("build", "--isolation=chroot", "-f", str(ctx / "Containerfile"), "-t", ref, str(ctx))
    built_id = podman.image_id(ref)
    digest_file = tmp_path / "digest"
    podman("push", TLS, "--digestfile", str(digest_file), ref)
    digest = digest_file.read_text().strip()
    assert digest.startswith("sha256:")

    i = skopeo.inspect("docker://" + ref)
    assert i["Digest"] == digest
    assert i["Labels"].get("org.berth.test") == "built"
    assert len(i["Layers"]) == 1

    # the layer in the registry holds our file
    out = str(tmp_path / "out")
    skopeo.copy("docker://" + ref, "oci:%s:v1" % out)
    m = json.loads(imagegen.read_blob(out, imagegen.read_oci_layout(out)["v1"]["digest"]))
    layer = imagegen.read_blob(out, m["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as t:
        assert t.extractfile("file").read() == payload

    podman("rmi", "-f", ref)
    podman("pull", TLS, ref)
    assert podman.image_id(ref) == built_id
    assert json.loads(podman("image", "inspect", ref).stdout)[0]["Digest"] == digest


def test_search_catalog(podman, skopeo, target, seeded):
    ref, img, info = seeded
    # a second repository, so the catalog has more than one entry
    skopeo.copy("docker://" + ref, "docker://%s/podman/search-me:t1" % target.host, "--preserve-digests")
    out = podman("search", TLS, "--format", "{{.Name}}", "%s/" % target.host).stdout.split()
    assert "%s/podman/src" % target.host in out, out
    assert "%s/podman/search-me" % target.host in out, out
    # the search term filters the catalog
    out = podman("search", TLS, "--format", "{{.Name}}", "%s/search-me" % target.host).stdout.split()
    assert out == ["%s/podman/search-me" % target.host], out
    # --list-tags reads /v2/<name>/tags/list
    # (podman 4.3 prints its NAME/TAG table whatever --format says)
    r = podman("search", TLS, "--list-tags", "%s/podman/search-me" % target.host)
    rows = [l.split() for l in r.stdout.splitlines() if l.strip()]
    assert rows[1:] == [["%s/podman/search-me" % target.host, "t1"]], r.stdout


def test_pull_platform_from_index(podman, skopeo, target, tmp_path):
    """An OCI index pushed by skopeo --all; podman picks the platform asked for."""
    src = str(tmp_path / "multi")
    multi = imagegen.build_multi(seed="podman-multi", layers=2, size=24 * 1024)
    imagegen.write_oci_layout(src, {"m": multi})
    ref = "%s/podman/multi:m" % target.host
    skopeo.copy("oci:%s:m" % src, "docker://" + ref, "--all", "--preserve-digests")
    for im in reversed(multi.images):  # arm64 first: not this machine's platform
        podman("pull", TLS, "--platform", "linux/" + im.arch, ref)
        assert podman.image_id(ref) == im.config_digest.split(":")[1], im.arch
        i = json.loads(podman("image", "inspect", ref).stdout)[0]
        assert i["Architecture"] == im.arch
        assert i["RootFS"]["Layers"] == [l.diff_id for l in im.layers]
        podman("rmi", "-f", ref)

"""berth's client with the other clients, both ways, against berth and
Debian's docker-registry: push with berth and pull with skopeo, podman and the
Docker engine; push with them and pull with berth. Digests must be equal.
"""
import json
import re

import pytest

import imagegen
from clients import docker, podman, skopeo  # noqa: F401  (fixtures)
from test_client_common import berth, reg  # noqa: F401
from test_client_transfer import read_docker_archive, sha


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("interop") / "layout")
    info = imagegen.write_oci_layout(d, {
        "v1": imagegen.build_image(seed="interop-v1", layers=2, size=16 * 1024),
        "multi": imagegen.build_multi(seed="interop-multi", layers=2, size=8 * 1024),
    })
    return d, info


# --------------------------------------------------------------------------
# skopeo

def test_berth_push_skopeo_pull(reg, skopeo, layout, tmp_path):
    d, info = layout
    for tag in ("v1", "multi"):
        ref = "%s/interop/skopeo-in:%s" % (reg.host, tag)
        berth("push", "-q", "oci:%s:%s" % (d, tag), ref)
        assert skopeo.inspect("docker://" + ref, raw=True).encode() == info[tag]["manifest"]
        out = str(tmp_path / tag)
        skopeo.copy("docker://" + ref, "oci:%s:%s" % (out, tag), "--preserve-digests",
                    *(["--all"] if tag == "multi" else []))
        assert imagegen.read_oci_layout(out)[tag]["digest"] == info[tag]["digest"]
    tags = skopeo.list_tags("docker://%s/interop/skopeo-in" % reg.host)["Tags"]
    assert sorted(tags) == ["multi", "v1"]


def test_skopeo_push_berth_pull(reg, skopeo, layout, tmp_path):
    d, info = layout
    for tag in ("v1", "multi"):
        ref = "%s/interop/skopeo-out:%s" % (reg.host, tag)
        skopeo.copy("oci:%s:%s" % (d, tag), "docker://" + ref, "--preserve-digests",
                    *(["--all"] if tag == "multi" else []))
        assert berth("digest", ref).stdout.strip() == info[tag]["digest"]
        out = str(tmp_path / tag)
        berth("pull", "-q", ref, "oci:%s:%s" % (out, tag))
        assert imagegen.read_oci_layout(out)[tag]["digest"] == info[tag]["digest"]
        for dg, data in info[tag]["image"].blobs().items():
            assert imagegen.read_blob(out, dg) == data
    # what skopeo deletes, berth no longer finds, and the reverse
    skopeo.delete("docker://%s/interop/skopeo-out:v1" % reg.host)
    assert berth("digest", "%s/interop/skopeo-out:v1" % reg.host, check=False).returncode == 1


# --------------------------------------------------------------------------
# podman

def test_berth_push_podman_pull(reg, podman, layout):
    d, info = layout
    img = info["v1"]["image"]
    ref = "%s/interop/podman-in:v1" % reg.host
    berth("push", "-q", "oci:%s:v1" % d, ref)
    podman("pull", "-q", "--tls-verify=false", ref)
    assert podman.image_id(ref) == img.config_digest.split(":", 1)[1]
    digests = podman("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    assert info["v1"]["digest"] in digests


def test_podman_push_berth_pull(reg, podman, tmp_path):
    img = imagegen.build_image(seed="interop-podman", layers=2, size=16 * 1024)
    arc = str(tmp_path / "img.tar")
    imagegen.write_docker_archive(arc, img, ["localhost/interop/podman:src"])
    podman("load", "-q", "-i", arc)
    ref = "%s/interop/podman-out:v1" % reg.host
    df = str(tmp_path / "digest")
    podman("push", "--tls-verify=false", "--digestfile", df, "localhost/interop/podman:src", ref)
    pushed = open(df).read().strip()
    assert berth("digest", ref).stdout.strip() == pushed
    j = json.loads(berth("inspect", "--json", ref).stdout)
    assert j["config"] == img.config_digest
    out = str(tmp_path / "lay")
    berth("pull", "-q", ref, "oci:%s:v1" % out)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == pushed
    assert imagegen.read_blob(out, img.config_digest) == img.config


# --------------------------------------------------------------------------
# Docker engine

def test_berth_push_docker_pull(reg, docker, tmp_path):
    img = imagegen.build_image(seed="interop-docker-in", layers=2, size=16 * 1024)
    arc = str(tmp_path / "img.tar")
    imagegen.write_docker_archive(arc, img, ["image-gallery:latest"])
    ref = "%s/interop/docker-in:v1" % reg.host
    dg = berth("push", "-q", "docker-archive:%s" % arc, ref).stdout.strip()
    docker("pull", "-q", ref)
    assert docker.image_id(ref) == img.config_digest
    rd = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    assert dg in rd, rd
    # an OCI image too (docker 20.10+ pulls OCI manifests)
    lay = str(tmp_path / "lay")
    info = imagegen.write_oci_layout(lay, {"v1": img})
    ref2 = "%s/interop/docker-in-oci:v1" % reg.host
    assert berth("push", "-q", "oci:%s:v1" % lay, ref2).stdout.strip() == info["v1"]["digest"]
    docker("pull", "-q", ref2)
    assert docker.image_id(ref2) == img.config_digest


def test_docker_push_berth_pull(reg, docker, tmp_path):
    img = imagegen.build_image(seed="interop-docker-out", layers=2, size=16 * 1024)
    arc = str(tmp_path / "img.tar")
    imagegen.write_docker_archive(arc, img, ["image-gallery:latest"])
    docker("load", "-q", "-i", arc)
    ref = "%s/interop/docker-out:v1" % reg.host
    docker("image", "tag", "image-gallery:latest", ref)
    out = docker("image", "push", ref).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    assert m, out
    assert berth("digest", ref).stdout.strip() == m.group(1)
    saved = str(tmp_path / "pulled.tar")
    berth("pull", "-q", ref, "docker-archive:%s" % saved)
    cfg, diffs, entry = read_docker_archive(saved)
    assert sha(cfg) == img.config_digest
    assert diffs == [l.diff_id for l in img.layers]
    # and docker loads what berth wrote: the same image ID
    docker("image", "rm", "-f", ref, "image-gallery:latest")
    docker("load", "-q", "-i", saved)
    assert img.config_digest in docker("images", "-q", "--no-trunc").stdout

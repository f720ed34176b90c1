"""The Docker engine against berth's content management: an immutable
release tag refuses a `docker push` that would move it (docker shows the
rule), `berth rm --repo` and `berth gc` free exactly the layers no image
uses while the server keeps serving, and every image still tagged pulls
back into docker with the same image id.
"""
import json

import pytest

import imagegen
from clients import docker  # noqa: F401  (fixture)
from regclient import RegClient
from test_client_common import berth
from test_gc import gc_cli, on_disk

CONFIG = """berth:
  gc:
    interval: 0s
  immutabletags:
    - repositories: "gallery/**"
      tags: "v*.*.*"
"""

MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json")


def load(docker, tmp_path, seed, name):
    img = imagegen.build_image(seed=seed, layers=2, size=32 * 1024)
    path = str(tmp_path / ("%s.tar" % seed))
    imagegen.write_docker_archive(path, img, [name])
    docker("load", "-i", path)
    return img


def blobs(c, repo, tag):
    """Config + layer digests of repo:tag as stored (docker compresses the
    layers itself on push: the registry's manifest is the truth)."""
    r = c.get("/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": MANIFEST_TYPES})
    assert r.status == 200, r
    m = json.loads(r.body)
    return [m["config"]["digest"]] + [l["digest"] for l in m["layers"]]


@pytest.fixture
def srv(server_factory):
    return server_factory(config=CONFIG)


def test_docker_immutable_tag_rm_repo_and_gc(docker, srv, tmp_path):
    c = RegClient(srv)
    a = load(docker, tmp_path, "docker-gc-a", "gc-a:latest")
    b = load(docker, tmp_path, "docker-gc-b", "gc-b:latest")
    load(docker, tmp_path, "docker-gc-t", "gc-t:latest")
    rel, latest = "%s/gallery/ui:v1.0.0" % srv.host, "%s/gallery/ui:latest" % srv.host
    tmp = "%s/gallery/tmp:v1" % srv.host

    for src, ref in (("gc-a", rel), ("gc-a", latest), ("gc-t", tmp)):
        docker("image", "tag", src, ref)
        docker("image", "push", ref)
    a_blobs, t_blobs = blobs(c, "gallery/ui", "v1.0.0"), blobs(c, "gallery/tmp", "v1")

    # moving the release tag is refused, and docker says why
    docker("image", "tag", "gc-b", rel)
    r = docker("image", "push", rel, check=False)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "immutable" in out and "v*.*.*" in out, out
    # latest stays mutable
    docker("image", "tag", "gc-b", latest)
    docker("image", "push", latest)
    b_blobs = blobs(c, "gallery/ui", "latest")
    assert blobs(c, "gallery/ui", "v1.0.0") == a_blobs

    # the release tag cannot be deleted either
    r = berth("rm", rel, check=False)
    assert r.returncode == 1 and "immutable" in r.stderr, r.stderr

    # a whole repository goes, and the collection (while serving) frees
    # exactly its layers
    r = berth("rm", "--repo", "%s/gallery/tmp" % srv.host)
    assert "Deleted repository" in r.stdout, r.stdout
    gc_cli(srv.root, "--grace", "0s", "--untagged")
    for d in t_blobs:
        assert not on_disk(srv.root, d), d
    for d in a_blobs + b_blobs:
        assert on_disk(srv.root, d), d

    # every tagged image comes back into an empty docker, same image ids
    for ref in (rel, latest, tmp, "gc-a", "gc-b", "gc-t"):
        docker("rmi", "-f", ref, check=False)
    docker("pull", rel)
    docker("pull", latest)
    assert docker.image_id(rel) == a.image_id
    assert docker.image_id(latest) == b.image_id
    r = docker("pull", tmp, check=False)
    assert r.returncode != 0, "the deleted repository still pulls"

"""The Docker engine against berth: the founding note's commands as written.

Debian's dockerd 20.10 runs without systemd (see clients.Dockerd for the
flags); loopback registries (127.0.0.1:PORT) need no insecure-registries
setting. `image-gallery` is an imagegen docker-archive loaded with
`docker load`; then `docker image tag image-gallery HOST/gallery/ui:v1`,
`docker image push`, more tags (no layer uploaded again), `docker rmi` +
`docker pull` (same image id), and a golden image built FROM it with a COPY,
pushed back reusing the base layers.

BERTH_E2E_TARGET=reference runs the same tests against Debian's docker-registry.
"""
import io
import json
import re
import tarfile

import pytest

import imagegen
from clients import Wiretap, docker, skopeo, target  # noqa: F401  (fixtures)

LAYERS = 2


@pytest.fixture(scope="module")
def gallery(docker, tmp_path_factory):
    """image-gallery:latest loaded from a docker-archive; returns the imagegen Image."""
    img = imagegen.build_image(seed="docker-gallery", layers=LAYERS, size=64 * 1024)
    path = str(tmp_path_factory.mktemp("archive") / "image-gallery.tar")
    imagegen.write_docker_archive(path, img, ["image-gallery:latest"])
    out = docker("load", "-i", path).stdout
    assert "Loaded image: image-gallery:latest" in out, out
    assert docker.image_id("image-gallery") == img.image_id
    return img


def push(docker, ref):
    """docker image push REF -> (output, manifest digest)."""
    out = docker("image", "push", ref).stdout
    m = re.search(r": digest: (sha256:[0-9a-f]{64}) size: \d+", out)
    assert m, "no digest line in the push output:\n" + out
    return out, m.group(1)


def layer_lines(out):
    """{short layer id: status} from `docker push` output (non-TTY)."""
    res = {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]{12}): (.+)$", line.strip())
        if m and m.group(2) not in ("Preparing", "Waiting"):
            res[m.group(1)] = m.group(2)
    return res


@pytest.fixture(scope="module")
def pushed_v1(docker, target, gallery):
    ref = "%s/gallery/ui:v1" % target.host
    docker("image", "tag", "image-gallery", ref)
    out, digest = push(docker, ref)
    return ref, out, digest


def test_tag_and_push(docker, skopeo, target, gallery, pushed_v1):
    ref, out, digest = pushed_v1
    st = layer_lines(out)
    assert sorted(st.values()) == ["Pushed"] * LAYERS, out
    i = skopeo.inspect("docker://" + ref)
    assert i["Digest"] == digest
    raw = json.loads(skopeo.inspect("docker://" + ref, raw=True))
    assert raw["mediaType"] == imagegen.MT_DOCKER_MANIFEST
    assert raw["config"]["digest"] == gallery.image_id, "docker pushed another config"
    # the config is the one we loaded, byte for byte (so the image id survives)
    assert skopeo.inspect("docker://" + ref, raw=True, config=True).encode() == gallery.config
    assert len(raw["layers"]) == LAYERS


def test_push_more_tags_uploads_no_layer(docker, target, gallery, pushed_v1):
    ref, _, digest = pushed_v1
    for tag in ("v2", "latest"):
        r = "%s/gallery/ui:%s" % (target.host, tag)
        docker("image", "tag", "image-gallery", r)
        out, d = push(docker, r)
        assert d == digest, "same image, another manifest digest"
        st = layer_lines(out)
        assert sorted(st.values()) == ["Layer already exists"] * LAYERS, out

    # seen on the wire: the same push through a wiretap uploads no blob
    tap = Wiretap(target.host)
    try:
        r = "%s/gallery/ui:v3" % tap.host
        docker("image", "tag", "image-gallery", r)
        out, d = push(docker, r)
        reqs = tap.since(0)
        docker("rmi", r)
    finally:
        tap.close()
    assert d == digest
    assert sorted(layer_lines(out).values()) == ["Layer already exists"] * LAYERS, out
    uploads = [q for q in reqs if q.method in ("PATCH", "PUT") and "/blobs/uploads/" in q.path]
    assert not uploads, "\n".join(map(repr, reqs))
    assert any(q.method == "PUT" and q.path == "/v2/gallery/ui/manifests/v3" and q.status == 201
               for q in reqs), "\n".join(map(repr, reqs))


def test_rmi_then_pull_same_image(docker, skopeo, target, gallery, pushed_v1):
    ref, _, digest = pushed_v1
    repo = "%s/gallery/ui" % target.host
    docker("rmi", ref)
    # the other names of the same image (image-gallery, v2, latest...) go too
    docker("rmi", "-f", gallery.image_id)
    assert docker("image", "inspect", gallery.image_id, check=False).returncode != 0, "image still there"

    out = docker("pull", ref).stdout
    assert "Digest: " + digest in out, out
    assert docker.image_id(ref) == gallery.image_id
    i = json.loads(docker("image", "inspect", ref).stdout)[0]
    assert "%s@%s" % (repo, digest) in i["RepoDigests"]
    assert i["RootFS"]["Layers"] == [l.diff_id for l in gallery.layers]
    # by digest too
    out = docker("pull", "%s@%s" % (repo, digest)).stdout
    assert "Digest: " + digest in out, out


def test_build_golden_image_reuses_base_layer(docker, skopeo, target, gallery, pushed_v1, tmp_path):
    ref, _, digest = pushed_v1
    if docker("image", "inspect", ref, check=False).returncode != 0:
        docker("pull", ref)
    ctx = tmp_path / "golden"
    ctx.mkdir()
    cert = b"-----BEGIN CERTIFICATE-----\nYmVydGggZ29sZGVuIGltYWdl\n-----END CERTIFICATE-----\n"
    (ctx / "cert.pem").write_bytes(cert)
    (ctx / "Dockerfile").write_text("FROM %s\nCOPY cert.pem /etc/ssl/certs/golden.pem\n" % ref)
    golden = "%s/golden/ui:v1" % target.host
    docker("build", "-t", golden, str(ctx))
    gi = json.loads(docker("image", "inspect", golden).stdout)[0]
    assert gi["RootFS"]["Layers"][:LAYERS] == [l.diff_id for l in gallery.layers]
    assert len(gi["RootFS"]["Layers"]) == LAYERS + 1

    out, gdigest = push(docker, golden)
    st = layer_lines(out)
    assert len(st) == LAYERS + 1, out
    assert list(st.values()).count("Pushed") == 1, "only the COPY layer is new:\n" + out
    reused = [s for s in st.values() if s in ("Mounted from gallery/ui", "Layer already exists")]
    assert len(reused) == LAYERS, "base layers not mounted/reused:\n" + out
    # docker knows the base layers are in gallery/ui on this registry: it mounts them
    assert "Mounted from gallery/ui" in out, out

    # the registry has the golden image: base layers shared with gallery/ui, plus ours
    base = json.loads(skopeo.inspect("docker://" + ref, raw=True))
    gm = json.loads(skopeo.inspect("docker://" + golden, raw=True))
    assert skopeo.inspect("docker://" + golden)["Digest"] == gdigest
    assert [l["digest"] for l in gm["layers"][:LAYERS]] == [l["digest"] for l in base["layers"]]
    out_dir = str(tmp_path / "golden-oci")
    skopeo.copy("docker://" + golden, "oci:%s:v1" % out_dir)
    m = json.loads(imagegen.read_blob(out_dir, imagegen.read_oci_layout(out_dir)["v1"]["digest"]))
    top = imagegen.read_blob(out_dir, m["layers"][-1]["digest"])
    with tarfile.open(fileobj=io.BytesIO(top), mode="r:*") as t:
        assert t.extractfile("etc/ssl/certs/golden.pem").read() == cert

    # and a docker pull of it after removing it locally gives the same image
    gid = docker.image_id(golden)
    docker("rmi", golden)
    docker("pull", golden)
    assert docker.image_id(golden) == gid


def test_pull_multi_platform_list(docker, skopeo, target, tmp_path):
    """docker pull of a Docker manifest list (pushed by skopeo) picks linux/amd64."""
    src = str(tmp_path / "multi")
    multi = imagegen.build_multi(seed="docker-multi", layers=2, size=32 * 1024)
    imagegen.write_oci_layout(src, {"m": multi})
    ref = "%s/gallery/multi:m" % target.host
    skopeo.copy("oci:%s:m" % src, "docker://" + ref, "--all", "--format", "v2s2")
    list_digest = imagegen.sha256(skopeo.inspect("docker://" + ref, raw=True).encode())
    out = docker("pull", ref).stdout
    assert "Digest: " + list_digest in out, out  # docker reports the list's digest
    amd64 = [im for im in multi.images if im.arch == "amd64"][0]
    assert docker.image_id(ref) == amd64.config_digest, out
    i = json.loads(docker("image", "inspect", ref).stdout)[0]
    assert i["Architecture"] == "amd64"
    assert i["RootFS"]["Layers"] == [l.diff_id for l in amd64.layers]
    docker("rmi", ref)

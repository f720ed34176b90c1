#!/usr/bin/python3
"""Offline test-image generator for berth's end-to-end tests (stdlib only).

Builds small, fully deterministic container images without any network:

* an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``)
  with one image, or with a multi-platform OCI image index
  (linux/amd64 + linux/arm64) -- the input of ``skopeo copy oci:DIR:TAG ...``;
* a ``docker save``-format tarball (``manifest.json``, ``repositories``,
  ``<id>.json`` config and ``<dir>/layer.tar`` per layer) for ``docker load``.

Layers are tars of pseudo-random files seeded from ``seed`` (same seed, same
bytes, same digests), compressed with gzip using mtime=0 and no file name, so
the layer digests are stable from run to run and clients such as skopeo do
not need to recompress them.

Usage as a library::

    img = imagegen.build_image(seed=1, layers=3, size=64 * 1024)
    info = imagegen.write_oci_layout("/tmp/lay", {"v1": img})
    imagegen.write_docker_archive("/tmp/img.tar", img, ["image-gallery:latest"])

and on the command line::

    python3 imagegen.py oci DIR [--tag v1] [--multi] [--layers N] [--size B] [--seed S]
    python3 imagegen.py docker-archive FILE [--name image-gallery:latest] ...
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"
FIXED_MTIME = 946684800  # 2000-01-01, inside the tar entries


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    """Stable JSON bytes (sorted keys, no whitespace)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def gzip_bytes(data, level=6):
    """gzip with mtime=0 and no embedded file name: same input, same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


class Layer:
    """One layer: the uncompressed tar (diff), its gzip (blob) and both digests."""

    def __init__(self, tar_bytes, files):
        self.tar = tar_bytes
        self.blob = gzip_bytes(tar_bytes)
        self.diff_id = sha256(self.tar)
        self.digest = sha256(self.blob)
        self.size = len(self.blob)
        self.files = files  # {path inside the image: content bytes}


def make_tar(files, dirs=()):
    """A deterministic tar of {path: bytes}; directories listed first."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in sorted(set(dirs)):
            ti = tarfile.TarInfo(d.strip("/"))
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = FIXED_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            t.addfile(ti)
        for path in sorted(files):
            data = files[path]
            ti = tarfile.TarInfo(path.strip("/"))
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = FIXED_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def parent_dirs(paths):
    out = set()
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return out


def make_layer(seed, size, nfiles=2, prefix="data"):
    """A layer of `nfiles` pseudo-random files totalling about `size` bytes."""
    rng = random.Random("berth-layer-%s" % (seed,))
    files = {}
    per = max(1, size // max(1, nfiles))
    for i in range(nfiles):
        files["%s/layer-%s/file-%d.bin" % (prefix, seed, i)] = rng.randbytes(per)
    files["%s/layer-%s/README" % (prefix, seed)] = ("layer %s of a berth test image\n" % (seed,)).encode()
    return Layer(make_tar(files, parent_dirs(files)), files)


class Image:
    """A single-platform image: config + layers; manifests derived on demand."""

    def __init__(self, layers, os_="linux", arch="amd64", variant=None, labels=None):
        self.layers = list(layers)
        self.os = os_
        self.arch = arch
        self.variant = variant
        cfg = {
            "architecture": arch,
            "os": os_,
            "created": EPOCH,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/data/README"],
                "WorkingDir": "/",
                "Labels": dict(labels or {"org.berth.test": "1"}),
            },
            "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in self.layers]},
            "history": [{"created": EPOCH, "created_by": "berth imagegen layer %d" % i}
                        for i in range(len(self.layers))],
        }
        if variant:
            cfg["variant"] = variant
        self.config = canonical_json(cfg)
        self.config_digest = sha256(self.config)

    @property
    def image_id(self):
        """What `docker images --no-trunc` / `docker inspect .Id` shows after `docker load`."""
        return self.config_digest

    def platform(self):
        p = {"architecture": self.arch, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p

    def manifest(self, docker=False):
        """(bytes, media type) of an OCI (default) or Docker schema2 manifest."""
        m = {
            "schemaVersion": 2,
            "mediaType": MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST,
            "config": {
                "mediaType": MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG,
                "digest": self.config_digest,
                "size": len(self.config),
            },
            "layers": [
                {"mediaType": MT_DOCKER_LAYER_GZIP if docker else MT_OCI_LAYER_GZIP,
                 "digest": l.digest, "size": l.size}
                for l in self.layers
            ],
        }
        return canonical_json(m), m["mediaType"]

    def blobs(self):
        out = {self.config_digest: self.config}
        for l in self.layers:
            out[l.digest] = l.blob
        return out


class MultiImage:
    """A multi-platform image: an index over several Images."""

    def __init__(self, images, docker=False):
        self.images = list(images)
        self.docker = docker
        children = []
        for im in self.images:
            body, mt = im.manifest(docker=docker)
            children.append({"mediaType": mt, "digest": sha256(body), "size": len(body),
                             "platform": im.platform()})
        idx = {"schemaVersion": 2, "mediaType": MT_DOCKER_LIST if docker else MT_OCI_INDEX,
               "manifests": children}
        self.index = canonical_json(idx)
        self.index_digest = sha256(self.index)
        self.media_type = idx["mediaType"]

    def blobs(self):
        out = {}
        for im in self.images:
            out.update(im.blobs())
            body, _ = im.manifest(docker=self.docker)
            out[sha256(body)] = body
        out[self.index_digest] = self.index
        return out


def build_image(seed=1, layers=2, size=64 * 1024, arch="amd64", nfiles=2, labels=None):
    """An image of `layers` layers of about `size` bytes each, from `seed`."""
    ls = [make_layer("%s-%d" % (seed, i), size, nfiles) for i in range(layers)]
    return Image(ls, arch=arch, labels=labels)


def build_multi(seed=1, layers=2, size=32 * 1024, arches=("amd64", "arm64"), docker=False):
    """linux/amd64 + linux/arm64: one shared base layer, then per-platform layers.

    docker=True: a Docker manifest list over Docker schema2 manifests."""
    base = make_layer("%s-base" % seed, size)
    imgs = []
    for arch in arches:
        own = [make_layer("%s-%s-%d" % (seed, arch, i), size) for i in range(max(0, layers - 1))]
        imgs.append(Image([base] + own, arch=arch))
    return MultiImage(imgs, docker=docker)


def _write_blob(root, data):
    d = sha256(data)
    p = os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
    if not os.path.exists(p):
        with open(p + ".tmp", "wb") as f:
            f.write(data)
        os.rename(p + ".tmp", p)
    return d


def write_oci_layout(root, tagged, docker=False):
    """Write an OCI image layout at `root` holding {tag: Image or MultiImage}.

    Returns {tag: {"digest", "mediaType", "size", "manifest" (bytes), ...}}.
    An existing layout's index.json is extended (tags replaced).
    """
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    idx_path = os.path.join(root, "index.json")
    entries = []
    if os.path.exists(idx_path):
        with open(idx_path) as f:
            entries = json.load(f).get("manifests", [])
    info = {}
    for tag, img in tagged.items():
        for data in img.blobs().values():
            _write_blob(root, data)
        if isinstance(img, MultiImage):
            body, mt = img.index, img.media_type
        else:
            body, mt = img.manifest(docker=docker)
        d = _write_blob(root, body)
        entries = [e for e in entries if e.get("annotations", {}).get(REF_NAME) != tag]
        entries.append({"mediaType": mt, "digest": d, "size": len(body),
                        "annotations": {REF_NAME: tag}})
        info[tag] = {"digest": d, "mediaType": mt, "size": len(body), "manifest": body, "image": img}
    with open(idx_path, "wb") as f:
        f.write(json.dumps({"schemaVersion": 2, "manifests": entries}, indent=2).encode())
    return info


def read_oci_layout(root):
    """{tag or digest: descriptor} of an OCI layout's index.json (for checks)."""
    with open(os.path.join(root, "index.json")) as f:
        idx = json.load(f)
    out = {}
    for e in idx.get("manifests", []):
        out[e.get("annotations", {}).get(REF_NAME) or e["digest"]] = e
    return out


def read_blob(root, digest):
    algo, hexd = digest.split(":", 1)
    with open(os.path.join(root, "blobs", algo, hexd), "rb") as f:
        return f.read()


def write_docker_archive(path, img, repo_tags=("image-gallery:latest",), compressed=False):
    """A `docker save` tarball of one Image for `docker load`.

    Layout (the classic docker-save format): manifest.json, repositories,
    <config hex>.json and <layer dir>/{layer.tar,VERSION,json}. Layers are
    stored uncompressed (as docker save does) unless `compressed`.
    """
    members = {}
    cfg_name = img.config_digest.split(":", 1)[1] + ".json"
    members[cfg_name] = img.config
    layer_paths = []
    parent = ""
    for i, l in enumerate(img.layers):
        # the legacy v1 layer id: chain of the diff ids, stable
        lid = hashlib.sha256((parent + " " + l.diff_id).encode()).hexdigest()
        members[lid + "/VERSION"] = b"1.0"
        v1 = {"id": lid, "created": EPOCH, "container_config": {"Cmd": None}, "os": img.os}
        if parent:
            v1["parent"] = parent
        members[lid + "/json"] = canonical_json(v1)
        members[lid + "/layer.tar"] = l.blob if compressed else l.tar
        layer_paths.append(lid + "/layer.tar")
        parent = lid
    manifest = [{"Config": cfg_name, "RepoTags": list(repo_tags), "Layers": layer_paths}]
    members["manifest.json"] = json.dumps(manifest).encode()
    repos = {}
    for rt in repo_tags:
        name, _, tag = rt.rpartition(":")
        repos.setdefault(name, {})[tag] = parent
    members["repositories"] = json.dumps(repos).encode()
    dirs = sorted({m.split("/")[0] for m in members if "/" in m})
    with open(path, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as t:
            for d in dirs:
                ti = tarfile.TarInfo(d)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                ti.mtime = FIXED_MTIME
                t.addfile(ti)
            for name in sorted(members):
                ti = tarfile.TarInfo(name)
                ti.size = len(members[name])
                ti.mode = 0o644
                ti.mtime = FIXED_MTIME
                t.addfile(ti, io.BytesIO(members[name]))
    return {"image_id": img.image_id, "repo_tags": list(repo_tags),
            "diff_ids": [l.diff_id for l in img.layers]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("oci", "docker-archive"):
        p = sub.add_parser(name)
        p.add_argument("dest")
        p.add_argument("--layers", type=int, default=2)
        p.add_argument("--size", type=int, default=64 * 1024, help="bytes per layer (approx.)")
        p.add_argument("--seed", default="1")
        if name == "oci":
            p.add_argument("--tag", default="latest")
            p.add_argument("--multi", action="store_true", help="linux/amd64 + linux/arm64 index")
            p.add_argument("--docker-media-types", action="store_true")
        else:
            p.add_argument("--name", action="append", help="repo:tag (repeatable)")
    a = ap.parse_args(argv)
    if a.cmd == "oci":
        if a.multi:
            img = build_multi(a.seed, a.layers, a.size, docker=a.docker_media_types)
        else:
            img = build_image(a.seed, a.layers, a.size)
        info = write_oci_layout(a.dest, {a.tag: img}, docker=a.docker_media_types)
        print(info[a.tag]["digest"])
    else:
        img = build_image(a.seed, a.layers, a.size)
        r = write_docker_archive(a.dest, img, a.name or ["image-gallery:latest"])
        print(r["image_id"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

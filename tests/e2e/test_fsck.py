"""`berth fsck` against a store a real `berth serve` is serving: a byte
flipped in a layer file and a layer file deleted are found and name the
image; `--repair` while the server runs makes the registry answer 404 for
the blob, so pushing the image again uploads only that blob, and the image
pulls back with every digest right. Also: --json, --config, exit 2 without
a store, and repairs racing concurrent pushes never break an image.
"""
import hashlib
import json
import os
import threading

import imagegen
from regclient import RegClient
from test_client_common import berth, json_lines

# exit 23 for a leak under ASan: never mistaken for fsck's own exit 1
ASAN = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=23"}


def fsck(*args):
    r = berth("fsck", *args, check=False, env=ASAN)
    assert r.returncode in (0, 1, 2), "fsck crashed (%d): %s" % (r.returncode, r.stderr)
    return r


def blob_file(root, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(root, "blobs", algo, hexd[:2], hexd)


def flip_byte(path, offset=100):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def push(layout, tag, ref):
    """berth push --json: {digest: action} of the blobs."""
    r = berth("push", "--json", "oci:%s:%s" % (layout, tag), ref)
    return {e["digest"]: e["action"] for e in json_lines(r.stdout) if e.get("event") == "blob"}


def pull_and_verify(ref, out, img, manifest_digest):
    """Pull into an OCI layout and check every digest and byte."""
    berth("pull", "-q", ref, "oci:%s:v1" % out)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == manifest_digest
    for dg, data in img.blobs().items():
        got = imagegen.read_blob(out, dg)
        assert "sha256:" + hashlib.sha256(got).hexdigest() == dg
        assert got == data, dg


def make_layout(tmp_path, seed):
    d = str(tmp_path / ("layout-%s" % seed))
    img = imagegen.build_image(seed=seed, layers=3, size=48 * 1024)
    info = imagegen.write_oci_layout(d, {"v1": img})
    return d, img, info["v1"]["digest"]


def damage_heal(server_factory, tmp_path, damage, kind):
    s = server_factory()
    d, img, mdg = make_layout(tmp_path, "fsck-" + kind)
    ref = "%s/fsck/app:v1" % s.host
    push(d, "v1", ref)
    assert fsck("--root", s.root).returncode == 0
    layer = img.layers[1].digest
    damage(blob_file(s.root, layer))

    r = fsck("--root", s.root)
    assert r.returncode == 1, r.stdout + r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith(kind + ":")]
    assert line and layer in line[0], r.stdout
    broken = [l for l in r.stdout.splitlines() if l.startswith("broken-image:")]
    assert broken and layer in broken[0], r.stdout
    assert "fsck/app@" + mdg in broken[0] and "fsck/app:v1" in broken[0], broken
    assert "1 repaired" not in r.stdout

    # repair while the server keeps serving
    r = fsck("--root", s.root, "--repair")
    assert r.returncode == 1, r.stdout + r.stderr  # the image needs its blob again
    assert [l for l in r.stdout.splitlines()
            if l.startswith(kind + " (repaired):") and layer in l], r.stdout
    assert not os.path.exists(blob_file(s.root, layer))
    c = RegClient(s)
    assert c.head("/v2/fsck/app/blobs/%s" % layer).status == 404
    assert c.head("/v2/fsck/app/blobs/%s" % img.layers[0].digest).status == 200

    # push again: only the damaged blob moves; then the image is whole
    acts = push(d, "v1", ref)
    assert acts[layer] == "pushed", acts
    assert all(a == "exists" for dg, a in acts.items() if dg != layer), acts
    pull_and_verify(ref, str(tmp_path / "out"), img, mdg)
    r = fsck("--root", s.root)
    assert r.returncode == 0, r.stdout
    assert "0 problems" in r.stdout


def test_flipped_byte_found_repaired_and_healed_by_push(server_factory, tmp_path):
    damage_heal(server_factory, tmp_path, flip_byte, "corrupt-blob")


def test_missing_blob_found_repaired_and_healed_by_push(server_factory, tmp_path):
    damage_heal(server_factory, tmp_path, os.unlink, "missing-blob")


def test_quick_sees_size_not_content(server_factory, tmp_path):
    s = server_factory()
    d, img, mdg = make_layout(tmp_path, "fsck-quick")
    push(d, "v1", "%s/fsck/quick:v1" % s.host)
    flip_byte(blob_file(s.root, img.layers[0].digest))
    assert fsck("--root", s.root, "--quick").returncode == 0
    assert fsck("--root", s.root).returncode == 1
    with open(blob_file(s.root, img.layers[0].digest), "ab") as f:
        f.write(b"x")
    r = fsck("--root", s.root, "--quick")
    assert r.returncode == 1 and img.layers[0].digest in r.stdout, r.stdout


def test_json_output_parses(server_factory, tmp_path):
    s = server_factory()
    d, img, mdg = make_layout(tmp_path, "fsck-json")
    push(d, "v1", "%s/fsck/json:v1" % s.host)
    flip_byte(blob_file(s.root, img.config_digest), 10)
    r = fsck("--root", s.root, "--json")
    assert r.returncode == 1
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert objs and all(isinstance(o, dict) for o in objs)
    problems = [o for o in objs if o["event"] == "problem"]
    summary = objs[-1]
    assert summary["event"] == "summary"
    assert {"corrupt-blob", "broken-image"} <= {p["kind"] for p in problems}, problems
    assert all(p["repaired"] is False for p in problems)
    assert summary["problems"] == len(problems) and summary["repaired"] == 0
    assert summary["blobs"] == 4 and summary["manifests"] == 1
    assert summary["bytes"] == sum(len(b) for b in img.blobs().values())
    assert summary["seconds"] >= 0 and summary["mb_per_s"] >= 0


def test_config_file_gives_the_root(server_factory, tmp_path):
    s = server_factory()
    d, img, mdg = make_layout(tmp_path, "fsck-config")
    push(d, "v1", "%s/fsck/config:v1" % s.host)
    os.unlink(blob_file(s.root, img.layers[2].digest))
    cfg = tmp_path / "config.yml"
    cfg.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n" % s.root)
    r = fsck("--config", str(cfg), "-q")
    assert r.returncode == 1
    assert "missing-blob" in r.stdout and "checked" not in r.stdout  # -q: no summary


def test_no_store_exits_2(tmp_path):
    r = fsck("--root", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "berth: " in r.stderr
    assert not os.path.exists(str(tmp_path / "nowhere"))  # never creates a store
    r = fsck("--root", str(tmp_path))  # a directory, but no store in it
    assert r.returncode == 2 and "no store" in r.stderr
    assert fsck("--bogus").returncode == 2


def test_repair_racing_pushes_breaks_nothing(server_factory, tmp_path):
    """fsck --repair over and over while images are pushed: it must never
    take a blob or link a push is placing (nothing to repair in a sound
    store), and every image pulls afterwards."""
    s = server_factory()
    layouts = [make_layout(tmp_path, "race-%d" % i) for i in range(6)]
    done = threading.Event()
    errors = []

    def pusher():
        try:
            for i, (d, img, mdg) in enumerate(layouts):
                push(d, "v1", "%s/race/app%d:v1" % (s.host, i))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=pusher)
    t.start()
    runs = 0
    while not done.is_set() or runs < 2:
        r = fsck("--root", s.root, "--repair")
        assert r.returncode == 0, r.stdout + r.stderr
        runs += 1
    t.join()
    assert not errors, errors
    for i, (d, img, mdg) in enumerate(layouts):
        pull_and_verify("%s/race/app%d:v1" % (s.host, i), str(tmp_path / ("o%d" % i)), img, mdg)
    assert fsck("--root", s.root).returncode == 0

"""The founding note's chapter with berth alone, against berth and against
Debian's docker-registry: the exercise (every tag of gallery/ui pushed to a
local registry, listed, then deleted), `berth tag` giving more names without
uploading, `--semver` moving 2.1 / 2 / latest, and "only the layers the
registry lacks are uploaded" (a second push uploads nothing).
"""
import pytest

import imagegen
from clients import access_log, log_mark
from test_client_common import berth, fails, http_tags_digests, json_lines, reg, tags_of  # noqa: F401

TAGS = ["latest", "v1", "v2", "v2.1"]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """gallery/ui as an OCI layout: v1 is one image, v2 = v2.1 = latest another
    that shares v1's first layer (as a rebuilt image shares its base)."""
    d = str(tmp_path_factory.mktemp("gallery") / "layout")
    v1 = imagegen.build_image(seed="gallery-v1", layers=2, size=16 * 1024)
    v2 = imagegen.Image([v1.layers[0], imagegen.make_layer("gallery-v2-app", 16 * 1024)],
                        labels={"org.berth.test": "v2"})
    info = imagegen.write_oci_layout(d, {"v1": v1, "v2": v2, "v2.1": v2, "latest": v2})
    return d, info


def uploads(reqs):
    """Requests that upload blob bytes (POST/PATCH/PUT on blobs/uploads)."""
    return [q for q in reqs if "/blobs/uploads" in q.path and q.method in ("POST", "PATCH", "PUT")]


def test_the_exercise_push_all_tags_then_delete(reg, gallery):
    d, info = gallery
    repo = "%s/gallery/ui" % reg.host
    r = berth("push", "--all-tags", "oci:%s" % d, repo)
    pushed = dict(l.split() for l in r.stdout.splitlines() if l.strip())
    assert pushed == {t: info[t]["digest"] for t in TAGS}, r.stdout
    # list: the repository and its four tags
    assert "gallery/ui" in berth("ls", reg.host).stdout.split()
    assert tags_of(repo) == TAGS
    for t in TAGS:
        assert berth("digest", "%s:%s" % (repo, t)).stdout.strip() == info[t]["digest"]
    # delete every tag in one command
    r = berth("rm", "--all-tags", repo)
    assert info["v1"]["digest"] in r.stdout and info["v2"]["digest"] in r.stdout, r.stdout
    # list again: nothing left
    r = berth("tags", repo, check=False)
    assert r.returncode in (0, 1), r
    if r.returncode == 0:
        assert r.stdout.split() == [], r.stdout
    else:
        assert "berth: " in r.stderr
    for t in TAGS:
        fails(["digest", "%s:%s" % (repo, t)], 1)


def test_the_exercise_with_berth_tag(reg, gallery):
    """The note's way: push once, then give the image its other names."""
    d, info = gallery
    repo = "%s/exercise/ui" % reg.host
    berth("push", "-q", "oci:%s:v1" % d, repo + ":v1")
    mark = log_mark(reg)
    r = berth("push", "--json", "oci:%s:v2" % d, repo + ":v2")
    ev = json_lines(r.stdout)
    blobs = {e["digest"]: e["action"] for e in ev if e.get("event") == "blob"}
    # the shared base layer is already there: only the new layer and config go up
    v2 = info["v2"]["image"]
    assert blobs[v2.layers[0].digest] == "exists", ev
    assert blobs[v2.layers[1].digest] != "exists", ev
    berth("tag", repo + ":v2", ":v2.1", ":latest")
    after = access_log(reg, mark)
    # tagging uploads no blob (the manifest only)
    tag_reqs = after[[i for i, q in enumerate(after) if "/manifests/v2" in q.path][0] + 1:]
    assert not uploads(tag_reqs), tag_reqs
    assert tags_of(repo) == TAGS
    assert berth("digest", repo + ":latest").stdout.strip() == info["v2"]["digest"]
    berth("rm", "-q", "--all-tags", repo)
    r = berth("tags", repo, check=False)
    assert r.returncode in (0, 1), r
    if r.returncode == 0:
        assert r.stdout.split() == [], r.stdout
    else:
        assert "berth: " in r.stderr
    for t in TAGS:
        fails(["digest", "%s:%s" % (repo, t)], 1)


def test_second_push_uploads_nothing(reg, gallery):
    d, info = gallery
    ref = "%s/again/ui:v1" % reg.host
    berth("push", "-q", "oci:%s:v1" % d, ref)
    mark = log_mark(reg)
    r = berth("push", "--json", "oci:%s:v1" % d, ref)
    ev = json_lines(r.stdout)
    blobs = [e for e in ev if e.get("event") == "blob"]
    img = info["v1"]["image"]
    assert sorted(e["digest"] for e in blobs) == sorted([img.config_digest] +
                                                        [l.digest for l in img.layers])
    assert all(e["action"] == "exists" for e in blobs), blobs
    assert ev[-1].get("event") == "done" and ev[-1]["digest"] == info["v1"]["digest"], ev
    reqs = access_log(reg, mark)
    assert reqs, "no access log lines"
    assert not uploads(reqs), "second push uploaded: %s" % uploads(reqs)
    # the plain output says so too
    r = berth("push", "oci:%s:v1" % d, ref)
    assert r.stdout.strip() == info["v1"]["digest"]
    assert "exists" in r.stderr and "pushed" not in r.stderr, r.stderr


def test_semver_moves(reg, tmp_path):
    """--semver: 2.1.3 moves 2.1, 2, latest; then 2.0.9 moves only 2.0;
    then 2.1.4 moves 2.1, 2 and latest."""
    d = str(tmp_path / "layout")
    imgs = {v: imagegen.build_image(seed="semver-" + v, layers=1, size=4096)
            for v in ("2.1.3", "2.0.9", "2.1.4")}
    info = imagegen.write_oci_layout(d, imgs)
    dig = {v: info[v]["digest"] for v in imgs}
    repo = "%s/semver/app" % reg.host

    def state():
        return http_tags_digests(reg.host, "semver/app")

    def release(v):
        berth("push", "-q", "oci:%s:%s" % (d, v), "%s:build-%s" % (repo, v))
        r = berth("tag", "--semver", "%s:build-%s" % (repo, v), "%s:%s" % (repo, v))
        return r.stdout

    out = release("2.1.3")
    for t in ("2.1.3", "2.1", "2", "latest"):
        assert "%s:%s %s" % (repo, t, dig["2.1.3"]) in out, out
    s = state()
    assert tags_of(repo) == sorted(s)
    assert {t: s[t] for t in ("2.1.3", "2.1", "2", "latest")} == dict.fromkeys(
        ("2.1.3", "2.1", "2", "latest"), dig["2.1.3"])

    release("2.0.9")
    s = state()
    assert s["2.0.9"] == s["2.0"] == dig["2.0.9"]
    assert s["2.1"] == s["2"] == s["latest"] == dig["2.1.3"], s

    release("2.1.4")
    s = state()
    assert s["2.1.4"] == s["2.1"] == s["2"] == s["latest"] == dig["2.1.4"], s
    assert s["2.0"] == dig["2.0.9"] and s["2.1.3"] == dig["2.1.3"]

    # an older patch never moves the aliases back
    berth("tag", "--semver", "%s:build-2.1.3" % repo, "%s:2.1.2" % repo)
    s = state()
    assert s["2.1.2"] == dig["2.1.3"]
    assert s["2.1"] == s["2"] == s["latest"] == dig["2.1.4"], s

    # not a version
    r = berth("tag", "--semver", "%s:build-2.1.3" % repo, "%s:stable" % repo, check=False)
    assert r.returncode in (1, 2) and "berth: " in r.stderr and "semver" in r.stderr


def test_tag_to_another_repository_mounts(registry, gallery):
    """berth only: tagging into another repository of the same registry moves
    no bytes (cross-repository mount or existing blobs)."""
    d, info = gallery
    berth("push", "-q", "oci:%s:v1" % d, "%s/golden/base:v1" % registry.host)
    mark = log_mark(registry)
    berth("tag", "%s/golden/base:v1" % registry.host, "%s/team/app:v1" % registry.host)
    reqs = access_log(registry, mark)
    assert not [q for q in reqs if q.method == "PATCH"], reqs
    assert [q for q in reqs if q.method == "POST" and "mount=" in q.query], reqs
    assert berth("digest", "%s/team/app:v1" % registry.host).stdout.strip() == info["v1"]["digest"]

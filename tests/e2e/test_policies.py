"""Policies (docs/policies.md), end to end against a real `berth serve` with a
config file: immutable tags, quotas (repository and namespace; refused before
any byte is stored when the length is known, at commit when it is not, at
mount and at manifest PUT), retention through `berth gc --config`, and
`berth du` (text and --json numbers checked against what was pushed). One
real client (skopeo) hits a quota and an immutable tag.
"""
import json
import os
import subprocess
import threading

import pytest

import imagegen
from clients import access_log, log_mark, skopeo  # noqa: F401  (fixture)
from conftest import berth_bin
from regclient import (RegClient, assert_error, location_path, rand_bytes, sha256, uniq,
                       with_query)

KiB = 1024


def mpath(repo, ref):
    return "/v2/%s/manifests/%s" % (repo, ref)


def bpath(repo, d):
    return "/v2/%s/blobs/%s" % (repo, d)


def uploads_in(root):
    return sorted(os.listdir(os.path.join(root, "uploads")))


def denied(r, *fragments):
    """403 with the spec's error body, code DENIED, message holding every fragment."""
    assert_error(r, 403, "DENIED")
    body = r.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    msg = body["errors"][0]["message"]
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def run_berth(*args, check=True):
    p = subprocess.run([berth_bin()] + list(args), capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, "berth %s: exit %d\n%s\n%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr)
    return p


def config_file(server, text):
    path = os.path.join(server.root, "..", "policies-%d.yml" % server.port)
    with open(path, "w") as f:
        f.write("storage:\n  filesystem:\n    rootdirectory: %s\n" % server.root + text)
    return path


# ---------------------------------------------------------------- immutable tags

IMMUTABLE = """
berth:
  immutabletags:
    - repositories: "team/**"
      tags: "v*.*.*"
"""


@pytest.fixture(scope="module")
def imm(tmp_path_factory):
    from conftest import Server
    root = str(tmp_path_factory.mktemp("imm") / "root")
    os.makedirs(root)
    s = Server(root, config=IMMUTABLE).start()
    yield s
    s.stop()


def test_immutable_move_refused_naming_the_rule(imm):
    c = RegClient(imm)
    a = c.make_image("team/app", tag="v1.2.3")
    b = c.make_image("team/app")
    r = c.put_manifest("team/app", "v1.2.3", b["body"])
    denied(r, 'tag "v1.2.3" of team/app is immutable',
           'berth.immutabletags[0]: repositories "team/**", tags "v*.*.*"')
    # the tag still points where it did
    assert c.get(mpath("team/app", "v1.2.3")).headers["Docker-Content-Digest"] == a["digest"]
    # push by digest with ?tag= is a move too
    r = c.put_manifest("team/app", b["digest"], b["body"], query="?tag=v1.2.3")
    denied(r, 'tag "v1.2.3" of team/app is immutable')
    assert c.get(mpath("team/app", "v1.2.3")).headers["Docker-Content-Digest"] == a["digest"]


def test_immutable_racing_pushes_one_wins(imm):
    # 8 clients push 8 different images under one new immutable tag at once:
    # the check runs under the store's write lock, so exactly one wins
    c = RegClient(imm)
    repo = "team/" + uniq("race")
    imgs = [c.make_image(repo) for _ in range(8)]
    results = [None] * len(imgs)
    barrier = threading.Barrier(len(imgs))

    def push(i):
        barrier.wait()
        results[i] = c.put_manifest(repo, "v9.9.9", imgs[i]["body"])

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(imgs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [i for i, r in enumerate(results) if r.status == 201]
    assert len(won) == 1, [r.status for r in results]
    for i, r in enumerate(results):
        if i not in won:
            denied(r, 'tag "v9.9.9" of %s is immutable' % repo)
    got = c.get(mpath(repo, "v9.9.9")).headers["Docker-Content-Digest"]
    assert got == imgs[won[0]]["digest"]


def test_immutable_same_digest_and_new_tags_fine(imm):
    c = RegClient(imm)
    repo = "team/" + uniq("same")
    a = c.make_image(repo, tag="v2.0.0")
    assert c.put_manifest(repo, "v2.0.0", a["body"]).status == 201   # re-push, same digest
    assert c.put_manifest(repo, "v2.0.1", a["body"]).status == 201   # creating is fine
    tags = c.get("/v2/%s/tags/list" % repo).json()["tags"]
    assert tags == ["v2.0.0", "v2.0.1"]


def test_immutable_delete_refused(imm):
    c = RegClient(imm)
    repo = "team/" + uniq("del")
    a = c.make_image(repo, tag="v1.0.0")
    denied(c.delete(mpath(repo, "v1.0.0")), 'tag "v1.0.0" of %s is immutable' % repo)
    # deleting the manifest by digest would delete the tag with it
    denied(c.delete(mpath(repo, a["digest"])), 'tag "v1.0.0"')
    assert c.get(mpath(repo, "v1.0.0")).status == 200
    # a manifest carrying only mutable tags can go
    b = c.make_image(repo, tag="dev")
    assert c.delete(mpath(repo, b["digest"])).status == 202
    assert c.delete(mpath(repo, "dev")).status == 404


def test_latest_mutable_and_other_repos_unaffected(imm):
    c = RegClient(imm)
    repo = "team/" + uniq("latest")
    c.make_image(repo, tag="latest")
    b = c.make_image(repo)
    assert c.put_manifest(repo, "latest", b["body"]).status == 201
    assert c.delete(mpath(repo, "latest")).status == 202
    # the rule covers team/** only
    other = uniq("other")
    c.make_image(other, tag="v1.2.3")
    d = c.make_image(other)
    assert c.put_manifest(other, "v1.2.3", d["body"]).status == 201
    assert c.delete(mpath(other, "v1.2.3")).status == 202


# ---------------------------------------------------------------- quotas

QUOTAS = """
berth:
  quotas:
    - repositories: "q/*"
      limit: 10KiB
    - namespace: team-a
      limit: 12KiB
"""


@pytest.fixture
def qsrv(server_factory):
    return server_factory(config=QUOTAS)


def test_quota_monolithic_refused_before_any_byte(qsrv):
    c = RegClient(qsrv)
    data = rand_bytes(20 * KiB, 1)
    d = sha256(data)
    mark = log_mark(qsrv)
    r = c.request("POST", "/v2/q/mono/blobs/uploads/?digest=%s" % d, body=data,
                  headers={"Content-Type": "application/octet-stream"})
    denied(r, "quota exceeded for q/mono (repository quota 10.0 KiB): 0 B used, "
              "this upload adds 20.0 KiB")
    # nothing stored: no session, no file, no blob
    assert uploads_in(qsrv.root) == []
    assert c.head(bpath("q/mono", d)).status == 404
    log = [x for x in access_log(qsrv, mark) if x.method == "POST"]
    assert [x.status for x in log] == [403], log
    # under the limit it goes through, and usage counts it
    small = rand_bytes(6 * KiB, 2)
    c.push_blob("q/mono", small)
    r = c.request("POST", "/v2/q/mono/blobs/uploads/?digest=%s" % sha256(rand_bytes(5 * KiB, 3)),
                  body=rand_bytes(5 * KiB, 3))
    denied(r, "6.0 KiB used, this upload adds 5.0 KiB")
    # the same blob again adds nothing: allowed
    assert c.request("POST", "/v2/q/mono/blobs/uploads/?digest=%s" % sha256(small),
                     body=small).status == 201


def test_quota_patch_with_length_refused_before_body(qsrv):
    c = RegClient(qsrv)
    loc, _ = c.start_upload("q/patch")
    r = c.patch_chunk(loc, rand_bytes(8 * KiB, 4), start=0)
    assert r.status == 202, r
    loc = location_path(r)
    # session offset counts: 8 KiB held + 4 KiB announced > 10 KiB
    r = c.patch_chunk(loc, rand_bytes(4 * KiB, 5), start=8 * KiB)
    denied(r, "quota exceeded for q/patch", "this upload adds 12.0 KiB")
    # the session is untouched: still 8 KiB
    st = c.get(loc)
    assert st.status == 204 and st.headers["Range"] == "0-%d" % (8 * KiB - 1), st


def test_quota_chunked_refused_at_commit(qsrv):
    c = RegClient(qsrv)
    data = rand_bytes(16 * KiB, 6)
    loc, _ = c.start_upload("q/chunked")
    # no Content-Length: the body goes into the session, the commit is refused
    r = c.request("PUT", with_query(loc, digest=sha256(data)),
                  body=[data[:8 * KiB], data[8 * KiB:]], chunked=True,
                  headers={"Content-Type": "application/octet-stream"})
    denied(r, "quota exceeded for q/chunked (repository quota 10.0 KiB): 0 B used, "
              "this upload adds 16.0 KiB")
    # the session was cancelled, its data deleted, no blob
    assert c.get(loc).status == 404
    assert uploads_in(qsrv.root) == []
    assert c.head(bpath("q/chunked", sha256(data))).status == 404


def test_quota_streamed_patch_then_put_refused(qsrv):
    c = RegClient(qsrv)
    data = rand_bytes(16 * KiB, 12)
    loc, _ = c.start_upload("q/streamed")
    r = c.request("PATCH", loc, body=[data[:8 * KiB], data[8 * KiB:]], chunked=True,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status == 202, r
    loc = location_path(r)
    assert len(uploads_in(qsrv.root)) == 1
    # the closing PUT announces 0 more bytes: the 16 KiB held are over, refused
    # before its (empty) body, and the session is dropped
    r = c.finish_upload(loc, sha256(data))
    denied(r, "quota exceeded for q/streamed", "this upload adds 16.0 KiB")
    assert c.get(loc).status == 404
    assert uploads_in(qsrv.root) == []


def test_quota_namespace_shared_and_mount(qsrv):
    c = RegClient(qsrv)
    one = rand_bytes(7 * KiB, 7)
    c.push_blob("team-a/one", one)
    # a second repository of the namespace shares the 12 KiB
    two = rand_bytes(7 * KiB, 8)
    r = c.request("POST", "/v2/team-a/two/blobs/uploads/?digest=%s" % sha256(two), body=two)
    denied(r, "quota exceeded for team-a/ (namespace quota 12.0 KiB): 7.0 KiB used, "
              "this upload adds 7.0 KiB")
    # a blob already in the namespace is counted once (dedup): mounting it into
    # team-a/two adds nothing to the namespace's usage, so it is allowed
    r = c.request("POST", "/v2/team-a/two/blobs/uploads/?mount=%s&from=team-a/one" % sha256(one))
    assert r.status == 201, r
    # another namespace is not affected
    c.push_blob("team-b/x", two)
    # mounting team-b's blob into team-a would exceed it
    r = c.request("POST", "/v2/team-a/two/blobs/uploads/?mount=%s&from=team-b/x" % sha256(two))
    denied(r, "quota exceeded for team-a/", "this mount adds 7.0 KiB")
    assert c.head(bpath("team-a/two", sha256(two))).status == 404


def test_quota_manifest_put_refused(qsrv):
    c = RegClient(qsrv)
    repo = "q/manifest"
    probe = c.make_image(repo, layers=[b"x"], push=False)
    # the blobs fit (100 bytes to spare), the manifest does not
    layer = rand_bytes(10 * KiB - len(probe["config"]) - 100, 9)
    img = c.make_image(repo, layers=[layer], push=False)
    assert len(img["config"]) == len(probe["config"]) and img["size"] > 100
    c.push_blob(repo, img["config"])
    c.push_blob(repo, layer)
    r = c.put_manifest(repo, "v1", img["body"])
    denied(r, "quota exceeded for q/manifest (repository quota 10.0 KiB)",
           "this manifest adds %d B" % img["size"])
    assert c.get(mpath(repo, "v1")).status == 404


def test_quota_not_applied_elsewhere(qsrv):
    c = RegClient(qsrv)
    c.push_blob("free/repo", rand_bytes(64 * KiB, 10))
    c.make_image("free/repo", tag="v1", layers=[rand_bytes(32 * KiB, 11)])


def test_skopeo_hits_quota_and_immutable_tag(server_factory, skopeo, tmp_path):  # noqa: F811
    s = server_factory(config="""
berth:
  immutabletags:
    - tags: "v*"
  quotas:
    - repositories: "small/*"
      limit: 20KiB
""")
    d = str(tmp_path / "layout")
    imagegen.write_oci_layout(d, {
        "a": imagegen.build_image(seed="pol-a", layers=2, size=32 * 1024),
        "b": imagegen.build_image(seed="pol-b", layers=1, size=4 * 1024),
        "c": imagegen.build_image(seed="pol-c", layers=1, size=4 * 1024),
    })
    r = skopeo.copy("oci:%s:a" % d, "docker://%s/small/app:v1" % s.host, check=False)
    assert r.returncode != 0
    assert "quota exceeded for small/app (repository quota 20.0 KiB)" in r.stderr, r.stderr
    skopeo.copy("oci:%s:b" % d, "docker://%s/big/app:v1" % s.host)
    r = skopeo.copy("oci:%s:c" % d, "docker://%s/big/app:v1" % s.host, check=False)
    assert r.returncode != 0
    # skopeo quotes the message inside its own: \" for "
    assert 'tag "v1" of big/app is immutable (berth.immutabletags[0]: tags "v*")' in \
        r.stderr.replace('\\"', '"'), r.stderr


# ---------------------------------------------------------------- du

def test_du_numbers(server_factory):
    s = server_factory(config="""
berth:
  quotas:
    - namespace: ns
      limit: 1MiB
""")
    c = RegClient(s)
    shared = rand_bytes(3000, 20)
    a = c.make_image("ns/a", tag="v1", layers=[shared, rand_bytes(1000, 21)])
    b = c.make_image("ns/b", tag="v1", layers=[shared])
    c.push_manifest("ns/b", "v2", b["body"])
    solo = c.make_image("solo", tag="latest", layers=[rand_bytes(500, 22)])

    def repo_bytes(img):
        return len(img["config"]) + sum(len(l) for l in img["layers"]) + img["size"]

    cfg = config_file(s, "berth:\n  quotas:\n    - namespace: ns\n      limit: 1MiB\n")
    j = json.loads(run_berth("du", "--config", cfg, "--json").stdout)
    repos = {r["name"]: r for r in j["repositories"]}
    assert sorted(repos) == ["ns/a", "ns/b", "solo"]
    for name, img, ntags in (("ns/a", a, 1), ("ns/b", b, 2), ("solo", solo, 1)):
        r = repos[name]
        assert r["dedup"] == r["total"] == repo_bytes(img), (name, r)
        assert r["blobs"] == 1 + len(img["layers"]), r
        assert r["manifests"] == 1 and r["tags"] == ntags, r
    assert repos["solo"]["quotas"] == []
    q = repos["ns/a"]["quotas"]
    assert len(q) == 1 and q[0]["scope"] == "ns/" and q[0]["limit"] == 1024 * 1024, q
    ns = {n["name"]: n for n in j["namespaces"]}
    assert list(ns) == ["ns/"]
    # the shared layer counts once in dedup, twice in total
    assert ns["ns/"]["total"] == repo_bytes(a) + repo_bytes(b)
    assert ns["ns/"]["dedup"] == repo_bytes(a) + repo_bytes(b) - len(shared)
    assert ns["ns/"]["quotas"] == [{"limit": 1024 * 1024, "used": ns["ns/"]["dedup"]}]
    assert q[0]["used"] == ns["ns/"]["dedup"]
    assert j["total"]["dedup"] == ns["ns/"]["dedup"] + repo_bytes(solo)
    assert j["total"]["total"] == ns["ns/"]["total"] + repo_bytes(solo)
    assert j["total"]["repositories"] == 3 and j["total"]["tags"] == 4
    assert j["total"]["blobs"] == 3 + 2 + 2 - 1   # a: cfg+2, b: cfg+shared, solo: cfg+1

    # one repository, a namespace (--root alone), human output
    one = json.loads(run_berth("du", "--root", s.root, "--json", "ns/b").stdout)
    assert one["total"]["dedup"] == repo_bytes(b) and one["total"]["tags"] == 2
    nsj = json.loads(run_berth("du", "--root", s.root, "--json", "ns/").stdout)
    assert [r["name"] for r in nsj["repositories"]] == ["ns/a", "ns/b"]
    assert nsj["total"]["dedup"] == ns["ns/"]["dedup"]
    assert nsj["repositories"][0]["quotas"] == []   # no config given: no quota known
    text = run_berth("du", "--config", cfg).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["REPOSITORY", "DEDUP", "TOTAL", "BLOBS", "MANIFESTS", "TAGS",
                                "QUOTA"]
    assert any(l.startswith("ns/a ") for l in lines), text
    nsline = [l for l in lines if l.startswith("ns/ ")]
    assert len(nsline) == 1 and nsline[0].rstrip().endswith("/1.0 MiB"), text
    assert any(l.startswith("TOTAL ") for l in lines), text
    # unknown repository, no store, bad usage
    assert run_berth("du", "--root", s.root, "nope", check=False).returncode == 1
    assert run_berth("du", "--root", s.root + "-missing", check=False).returncode == 1
    assert not os.path.exists(s.root + "-missing")
    assert run_berth("du", "--bogus", check=False).returncode == 2


# ---------------------------------------------------------------- retention

RETENTION = """
berth:
  gc:
    interval: 0
  retention:
    - repositories: "ret/**"
      tags: "^v"
      protect: "^v0[.]"
      keep: 2
  immutabletags:
    - repositories: "ret/frozen"
      tags: "v1"
"""


def test_retention_through_berth_gc(server_factory):
    s = server_factory(config=RETENTION)
    c = RegClient(s)
    repo, frozen = "ret/app", "ret/frozen"
    imgs = {}
    for t in ("v1", "v2", "v3", "v4", "v0.9", "latest"):
        imgs[t] = c.make_image(repo, tag=t)
    # v2's manifest also tagged "stable" (not managed): it stays with that tag
    c.push_manifest(repo, "stable", imgs["v2"]["body"])
    for t in ("v1", "v2", "v3", "v4"):
        c.make_image(frozen, tag=t)
    c.make_image("other", tag="v1")
    c.make_image("other", tag="v2")
    c.make_image("other", tag="v3")
    cfg = config_file(s, RETENTION)

    dry = run_berth("gc", "--config", cfg, "--grace", "0s", "--dry-run")
    assert "tag ret/app v1" in dry.stdout and "tag ret/app v2" in dry.stdout, dry.stdout
    assert "manifest ret/app %s" % imgs["v1"]["digest"] in dry.stdout, dry.stdout
    # tags in the same second: ties go by name, v4 and v3 are the two kept
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == \
        ["latest", "stable", "v0.9", "v1", "v2", "v3", "v4"]

    run_berth("gc", "--config", cfg, "--grace", "0s")
    assert c.get("/v2/%s/tags/list" % repo).json()["tags"] == \
        ["latest", "stable", "v0.9", "v3", "v4"]
    assert c.get(mpath(repo, imgs["v1"]["digest"])).status == 404     # untagged: deleted
    assert c.get(mpath(repo, imgs["v2"]["digest"])).status == 200     # still "stable"
    # immutable v1 is never removed (nor counted among the kept): v4, v3 kept, v2 goes
    assert c.get("/v2/%s/tags/list" % frozen).json()["tags"] == ["v1", "v3", "v4"]
    # repositories no rule covers keep everything
    assert c.get("/v2/other/tags/list").json()["tags"] == ["v1", "v2", "v3"]

"""The client's blob location cache: a push from a local source (an OCI
layout) to a second repository on the same registry mounts every blob from
the first instead of uploading it again, because berth remembers
($XDG_CACHE_HOME/berth/blobs.json) where it pushed each blob. BERTH_NO_BLOB_CACHE=1
turns that off; a cache entry naming a repository that no longer has the
blob falls back to the upload. Each test has its own XDG_CACHE_HOME.
"""
import http.client
import json
import os

import pytest

import imagegen
from clients import access_log, log_mark
from test_client_common import berth, json_lines


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("mountcache") / "layout")
    img = imagegen.build_image(seed="mountcache", layers=3, size=64 * 1024)
    info = imagegen.write_oci_layout(d, {"v1": img})
    return d, info["v1"]


@pytest.fixture
def cache_env(tmp_path):
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def blobs_of(info):
    img = info["image"]
    return sorted([img.config_digest] + [l.digest for l in img.layers])


def actions(stdout):
    return {e["digest"]: e["action"] for e in json_lines(stdout) if e.get("event") == "blob"}


def uploads_of(reqs, repo):
    return [q for q in reqs if q.path.startswith("/v2/%s/blobs/uploads" % repo)
            and (q.method in ("PATCH", "PUT") or (q.method == "POST" and "mount=" not in q.query))]


def test_second_repository_mounts_from_cache(registry, image, cache_env):
    d, info = image
    berth("push", "-q", "oci:%s:v1" % d, "%s/mc1/a:v1" % registry.host, env=cache_env)
    cache = os.path.join(cache_env["XDG_CACHE_HOME"], "berth", "blobs.json")
    saved = json.load(open(cache))["blobs"]
    for dg in blobs_of(info):
        assert saved["%s %s" % (registry.host, dg)] == ["mc1/a"], saved
    mark = log_mark(registry)
    r = berth("push", "--json", "oci:%s:v1" % d, "%s/mc1/b:v1" % registry.host, env=cache_env)
    acts = actions(r.stdout)
    assert sorted(acts) == blobs_of(info), acts
    assert all(a == "mounted" for a in acts.values()), acts
    reqs = access_log(registry, mark)
    mounts = [q for q in reqs if q.method == "POST" and "mount=" in q.query]
    assert len(mounts) == len(blobs_of(info)), reqs
    assert all("from=mc1%2Fa" in q.query or "from=mc1/a" in q.query for q in mounts), mounts
    assert not uploads_of(reqs, "mc1/b"), uploads_of(reqs, "mc1/b")
    assert berth("digest", "%s/mc1/b:v1" % registry.host).stdout.strip() == info["digest"]
    # both repositories are remembered now, the most recent first
    saved = json.load(open(cache))["blobs"]
    assert saved["%s %s" % (registry.host, blobs_of(info)[0])] == ["mc1/b", "mc1/a"], saved


def test_disabled_uploads(registry, image, cache_env):
    d, info = image
    env = dict(cache_env, BERTH_NO_BLOB_CACHE="1")
    berth("push", "-q", "oci:%s:v1" % d, "%s/mc2/a:v1" % registry.host, env=env)
    r = berth("push", "--json", "oci:%s:v1" % d, "%s/mc2/b:v1" % registry.host, env=env)
    acts = actions(r.stdout)
    assert sorted(acts) == blobs_of(info) and all(a == "pushed" for a in acts.values()), acts
    assert not os.path.exists(os.path.join(cache_env["XDG_CACHE_HOME"], "berth", "blobs.json"))


def test_stale_entry_falls_back_to_upload(registry, image, cache_env):
    d, info = image
    berth("push", "-q", "oci:%s:v1" % d, "%s/mc3/a:v1" % registry.host, env=cache_env)
    gone = info["image"].layers[0].digest
    host, port = registry.host.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("DELETE", "/v2/mc3/a/blobs/%s" % gone)
    assert c.getresponse().status == 202
    c.close()
    mark = log_mark(registry)
    r = berth("push", "--json", "oci:%s:v1" % d, "%s/mc3/b:v1" % registry.host, env=cache_env)
    acts = actions(r.stdout)
    assert acts[gone] == "pushed", acts
    assert all(a == "mounted" for dg, a in acts.items() if dg != gone), acts
    reqs = access_log(registry, mark)
    assert [q for q in reqs if q.method == "POST" and "mount=" in q.query and gone in q.query]
    assert berth("digest", "%s/mc3/b:v1" % registry.host).stdout.strip() == info["digest"]
    # a corrupt cache file is ignored, then rewritten whole
    cache = os.path.join(cache_env["XDG_CACHE_HOME"], "berth", "blobs.json")
    with open(cache, "w") as f:
        f.write("{not json")
    r = berth("push", "--json", "oci:%s:v1" % d, "%s/mc3/c:v1" % registry.host, env=cache_env)
    assert all(a == "pushed" for a in actions(r.stdout).values()), r.stdout
    assert json.load(open(cache))["version"] == 1

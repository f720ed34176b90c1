"""end-12a/12b: GET /v2/<name>/referrers/<digest>[?artifactType=]."""
import json
import urllib.parse

import pytest

from regclient import (OCI_INDEX, OCI_MANIFEST, ZERO_DIGEST, RegClient, assert_api_version,
                       assert_error, descriptor, sha256, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


SBOM = "application/vnd.example.sbom.v1+json"
SIG = "application/vnd.example.signature.v1"
EMPTY_INDEX = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def rpath(repo, d, artifact_type=None):
    p = "/v2/%s/referrers/%s" % (repo, d)
    if artifact_type:
        p += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
    return p


@pytest.fixture(scope="module")
def subject_with_two(c):
    """An image with two referrers (an SBOM and a signature) with annotations."""
    repo = uniq("ref")
    base = c.make_image(repo, tag="base")
    sbom = c.make_artifact(repo, SBOM, subject=descriptor(base),
                           annotations={"org.example.kind": "sbom", "n": "1"})
    sig = c.make_artifact(repo, SIG, subject=descriptor(base),
                          annotations={"org.example.kind": "sig"})
    return repo, base, sbom, sig


def by_digest(index):
    return {m["digest"]: m for m in index["manifests"]}


# ---------------------------------------------------------------- end-12a

def test_referrers_unknown_digest_200_empty(c, subject_with_two):
    repo = subject_with_two[0]
    r = c.get(rpath(repo, sha256(b"no such manifest")))
    assert r.status == 200, r
    assert r.json() == EMPTY_INDEX


def test_referrers_unknown_digest_exact_content_type(c, subject_with_two):
    r = c.get(rpath(subject_with_two[0], sha256(b"no such manifest")))
    assert r.header("Content-Type") == OCI_INDEX
    assert_api_version(r)


def test_referrers_zero_digest_probe_200(c, subject_with_two):
    r = c.get(rpath(subject_with_two[0], ZERO_DIGEST))
    assert r.status == 200, r
    assert r.header("Content-Type") == OCI_INDEX
    assert r.json() == EMPTY_INDEX


def test_referrers_zero_digest_probe_unknown_repo_200(c):
    """The spec: a registry supporting referrers never answers 404 to the API."""
    r = c.get(rpath(uniq("ref-ghost"), ZERO_DIGEST))
    assert r.status == 200, r
    assert r.header("Content-Type") == OCI_INDEX
    assert r.json()["manifests"] == []


def test_referrers_image_without_referrers_empty(c):
    repo = uniq("ref")
    base = c.make_image(repo, tag="lonely")
    r = c.get(rpath(repo, base["digest"]))
    assert r.status == 200
    assert r.json() == EMPTY_INDEX


def test_referrers_lists_both(c, subject_with_two):
    repo, base, sbom, sig = subject_with_two
    r = c.get(rpath(repo, base["digest"]))
    assert r.status == 200, r
    assert r.header("Content-Type") == OCI_INDEX
    idx = r.json()
    assert idx["schemaVersion"] == 2
    assert idx["mediaType"] == OCI_INDEX
    assert set(by_digest(idx)) == {sbom["digest"], sig["digest"]}


def test_referrers_descriptor_fields(c, subject_with_two):
    repo, base, sbom, sig = subject_with_two
    got = by_digest(c.get(rpath(repo, base["digest"])).json())
    for art, at, ann in ((sbom, SBOM, {"org.example.kind": "sbom", "n": "1"}),
                         (sig, SIG, {"org.example.kind": "sig"})):
        d = got[art["digest"]]
        assert d["mediaType"] == OCI_MANIFEST
        assert d["size"] == art["size"]
        assert d["artifactType"] == at
        assert d["annotations"] == ann


def test_referrers_filter_artifact_type(c, subject_with_two):
    repo, base, sbom, sig = subject_with_two
    r = c.get(rpath(repo, base["digest"], SBOM))
    assert r.status == 200, r
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom["digest"]]


def test_referrers_filter_sets_filters_applied(c, subject_with_two):
    repo, base, sbom, sig = subject_with_two
    r = c.get(rpath(repo, base["digest"], SIG))
    assert r.header("OCI-Filters-Applied") == "artifactType"
    assert r.header("Content-Type") == OCI_INDEX


def test_referrers_no_filter_no_filters_applied(c, subject_with_two):
    repo, base, _, _ = subject_with_two
    assert c.get(rpath(repo, base["digest"])).header("OCI-Filters-Applied") is None


def test_referrers_filter_no_match_empty(c, subject_with_two):
    repo, base, _, _ = subject_with_two
    r = c.get(rpath(repo, base["digest"], "application/vnd.nothing"))
    assert r.status == 200
    assert r.json()["manifests"] == []
    assert r.header("OCI-Filters-Applied") == "artifactType"


def test_referrers_invalid_digest_400(c, subject_with_two):
    assert_error(c.get(rpath(subject_with_two[0], "sha256:xyz")), 400, "DIGEST_INVALID")


def test_referrers_artifact_type_from_config_media_type(c):
    """No artifactType in the manifest: the descriptor carries config.mediaType."""
    repo = uniq("ref")
    base = c.make_image(repo, tag="b")
    cfg_mt = "application/vnd.example.config.v1+json"
    ref = c.make_image(repo, subject=descriptor(base), config=b'{"x":1}', config_media_type=cfg_mt)
    got = by_digest(c.get(rpath(repo, base["digest"])).json())
    assert got[ref["digest"]]["artifactType"] == cfg_mt


def test_referrers_index_as_referrer(c):
    repo = uniq("ref")
    base = c.make_image(repo, tag="b")
    child = c.make_image(repo)
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": SBOM,
           "manifests": [descriptor(child)], "subject": descriptor(base)}
    body = json.dumps(idx).encode()
    c.push_manifest(repo, sha256(body), body, OCI_INDEX)
    got = by_digest(c.get(rpath(repo, base["digest"])).json())
    assert got[sha256(body)]["mediaType"] == OCI_INDEX
    assert got[sha256(body)]["artifactType"] == SBOM


def test_referrers_subject_pushed_later(c):
    """A referrer pushed before its subject is listed once asked."""
    repo = uniq("ref")
    base = c.make_image(repo, push=False)
    art = c.make_artifact(repo, SIG, subject=descriptor(base))
    r = c.get(rpath(repo, base["digest"]))
    assert [m["digest"] for m in r.json()["manifests"]] == [art["digest"]]
    again = c.make_image(repo, tag="late", layers=base["layers"], config=base["config"])
    assert again["digest"] == base["digest"]
    r = c.get(rpath(repo, base["digest"]))
    assert [m["digest"] for m in r.json()["manifests"]] == [art["digest"]]


def test_referrers_repository_isolation(c, subject_with_two):
    repo, base, _, _ = subject_with_two
    other = uniq("ref-other")
    c.make_image(other, tag="x")
    r = c.get(rpath(other, base["digest"]))
    assert r.status == 200
    assert r.json()["manifests"] == []


def test_referrers_deleted_referrer_removed(c):
    repo = uniq("ref")
    base = c.make_image(repo, tag="b")
    keep = c.make_artifact(repo, SBOM, subject=descriptor(base))
    gone = c.make_artifact(repo, SIG, subject=descriptor(base))
    assert len(c.get(rpath(repo, base["digest"])).json()["manifests"]) == 2
    r = c.delete("/v2/%s/manifests/%s" % (repo, gone["digest"]))
    assert r.status == 202, r
    got = c.get(rpath(repo, base["digest"])).json()["manifests"]
    assert [m["digest"] for m in got] == [keep["digest"]]


def test_referrers_many_follow_link(c):
    """Paging, if the server pages: following Link yields every referrer once."""
    repo = uniq("ref")
    base = c.make_image(repo, tag="b")
    want = {c.make_artifact(repo, SIG, subject=descriptor(base),
                            annotations={"i": str(i)})["digest"] for i in range(12)}
    from regclient import parse_link_next
    got, url = [], rpath(repo, base["digest"])
    for _ in range(50):
        r = c.get(url)
        assert r.status == 200
        got += [m["digest"] for m in r.json()["manifests"]]
        url = parse_link_next(r.header("Link"))
        if not url:
            break
    assert sorted(got) == sorted(want)

"""end-8a/8b: GET /v2/<name>/tags/list[?n=&last=], and GET /v2/_catalog[?n=&last=]."""
import json
import re
import urllib.parse

import pytest

from regclient import (RegClient, assert_api_version, assert_error, parse_link_next, uniq)


@pytest.fixture(scope="module")
def c(registry):
    return RegClient(registry)


TAGS = ["latest", "v1", "v10", "v2", "V1", "A", "a", "a-b", "a.b", "a_b", "a__b", "0", "10", "9",
        "_x", "Z9", "z"]
SORTED = sorted(TAGS, key=lambda t: t.encode())  # byte order


@pytest.fixture(scope="module")
def tagged(c):
    """One manifest pushed under every tag in TAGS (plus a second manifest for a few)."""
    repo = uniq("list")
    img = c.make_image(repo, tag=TAGS[0])
    for t in TAGS[1:]:
        c.push_manifest(repo, t, img["body"])
    return repo


def tags_path(repo, **q):
    p = "/v2/%s/tags/list" % repo
    return p + ("?" + urllib.parse.urlencode(q) if q else "")


LINK_RE = re.compile(r'^<(?P<url>[^>]+)>;\s*rel="next"$')


def follow(c, first, key):
    """GET first, follow rel=next Links; return (all items, list of page sizes, responses)."""
    items, sizes, resps, url = [], [], [], first
    for _ in range(200):
        r = c.get(url)
        assert r.status == 200, r
        page = r.json().get(key) or []
        items += page
        sizes.append(len(page))
        resps.append(r)
        url = parse_link_next(r.header("Link"))
        if not url:
            return items, sizes, resps
    raise AssertionError("Link chain does not end")


# ---------------------------------------------------------------- end-8a tags/list

def test_tags_list_all_sorted(c, tagged):
    r = c.get(tags_path(tagged))
    assert r.status == 200, r
    body = r.json()
    assert body["name"] == tagged
    assert body["tags"] == SORTED


def test_tags_list_content_type_json(c, tagged):
    r = c.get(tags_path(tagged))
    assert r.header("Content-Type", "").split(";")[0] == "application/json"
    assert_api_version(r)


def test_tags_list_no_link_when_complete(c, tagged):
    assert c.get(tags_path(tagged)).header("Link") is None
    assert c.get(tags_path(tagged, n=1000)).header("Link") is None


def test_tags_list_n_first_page(c, tagged):
    r = c.get(tags_path(tagged, n=3))
    assert r.status == 200, r
    assert r.json()["tags"] == SORTED[:3]


def test_tags_list_n_link_header_format(c, tagged):
    r = c.get(tags_path(tagged, n=3))
    link = r.header("Link")
    assert link, r
    m = LINK_RE.match(link.strip())
    assert m, link
    u = urllib.parse.urlparse(m.group("url"))
    assert u.path == "/v2/%s/tags/list" % tagged
    q = urllib.parse.parse_qs(u.query)
    assert q["n"] == ["3"]
    assert q["last"] == [SORTED[2]]


def test_tags_list_last_exclusive(c, tagged):
    r = c.get(tags_path(tagged, last=SORTED[4]))
    assert r.status == 200
    assert r.json()["tags"] == SORTED[5:]


def test_tags_list_last_not_a_tag(c, tagged):
    """last need not be an existing tag: everything after it in byte order."""
    r = c.get(tags_path(tagged, last="a0"))
    assert r.json()["tags"] == [t for t in SORTED if t.encode() > b"a0"]


def test_tags_list_n_and_last(c, tagged):
    r = c.get(tags_path(tagged, n=2, last=SORTED[3]))
    assert r.json()["tags"] == SORTED[4:6]


def test_tags_list_last_after_everything(c, tagged):
    r = c.get(tags_path(tagged, last="zzz"))
    assert r.status == 200
    assert r.json()["tags"] == []
    assert r.header("Link") is None


def test_tags_list_n_zero_empty(c, tagged):
    r = c.get(tags_path(tagged, n=0))
    assert r.status == 200, r
    assert r.json()["tags"] == []


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17])
def test_tags_list_follow_links_collects_all(c, tagged, n):
    items, sizes, _ = follow(c, tags_path(tagged, n=n), "tags")
    assert items == SORTED
    assert all(s <= n for s in sizes)


def test_tags_list_unknown_repo_404(c):
    assert_error(c.get(tags_path(uniq("ghost"))), 404, "NAME_UNKNOWN")


def test_tags_list_invalid_name_400(c):
    assert_error(c.get("/v2/Upper/tags/list"), 400, "NAME_INVALID")


def test_tags_list_bad_n_no_5xx(c, tagged):
    for n in ("-1", "abc", "99999999999999999999999"):
        r = c.get("/v2/%s/tags/list?n=%s" % (tagged, n))
        assert r.status < 500, (n, r)
    assert c.alive()


def test_tags_list_repo_with_only_blobs(c):
    """A repository with blobs but no manifest has no tags: 404 NAME_UNKNOWN or an empty list."""
    repo = uniq("list-blobonly")
    c.push_blob(repo, b"just a blob")
    r = c.get(tags_path(repo))
    if r.status == 200:
        assert r.json()["tags"] in ([], None)
    else:
        assert_error(r, 404, "NAME_UNKNOWN")


def test_tags_list_untagged_manifest_not_listed(c):
    repo = uniq("list")
    img = c.make_image(repo, tag="only")
    c.make_image(repo)  # by digest, no tag
    assert c.get(tags_path(repo)).json()["tags"] == ["only"]
    assert img


# ---------------------------------------------------------------- catalog

@pytest.fixture(scope="module")
def catalog_repos(c, tagged):
    names = ["cat-%s/%s" % (uniq("c"), s) for s in ("b", "a", "c/d", "a-z", "a.z", "a_z")]
    for n in names:
        c.make_image(n, tag="t")
    return names


def test_catalog_lists_repos(c, catalog_repos):
    r = c.get("/v2/_catalog")
    assert r.status == 200, r
    repos = r.json()["repositories"]
    for n in catalog_repos:
        assert n in repos


def test_catalog_sorted_unique(c, catalog_repos):
    repos = c.get("/v2/_catalog").json()["repositories"]
    assert repos == sorted(set(repos), key=lambda s: s.encode())


def test_catalog_content_type_json(c, catalog_repos):
    r = c.get("/v2/_catalog")
    assert r.header("Content-Type", "").split(";")[0] == "application/json"
    assert_api_version(r)


def test_catalog_n_and_link(c, catalog_repos):
    full = c.get("/v2/_catalog").json()["repositories"]
    r = c.get("/v2/_catalog?n=2")
    assert r.json()["repositories"] == full[:2]
    link = r.header("Link")
    assert link and LINK_RE.match(link.strip()), r
    u = urllib.parse.urlparse(LINK_RE.match(link.strip()).group("url"))
    assert u.path == "/v2/_catalog"
    q = urllib.parse.parse_qs(u.query)
    assert q["n"] == ["2"] and q["last"] == [full[1]]


def test_catalog_last_exclusive(c, catalog_repos):
    full = c.get("/v2/_catalog").json()["repositories"]
    r = c.get("/v2/_catalog?" + urllib.parse.urlencode({"last": full[0]}))
    assert r.json()["repositories"] == full[1:]


def test_catalog_n_zero_empty(c, catalog_repos):
    r = c.get("/v2/_catalog?n=0")
    assert r.status == 200, r
    assert r.json()["repositories"] == []


@pytest.mark.parametrize("n", [1, 3, 4])
def test_catalog_follow_links_collects_all(c, catalog_repos, n):
    full = c.get("/v2/_catalog").json()["repositories"]
    items, sizes, _ = follow(c, "/v2/_catalog?n=%d" % n, "repositories")
    assert items == full
    assert all(s <= n for s in sizes)


def test_catalog_repo_appears_after_manifest(c, catalog_repos):
    repo = uniq("cat-late")
    c.push_blob(repo, b"blob only for now")
    assert repo not in c.get("/v2/_catalog").json()["repositories"]
    c.make_image(repo, tag="now")
    assert repo in c.get("/v2/_catalog").json()["repositories"]

"""Helpers shared by the client tests (test_client_*.py); no tests here.

  berth(*args)       run the berth client (conftest.berth_bin()) with a private
                     HOME, DOCKER_CONFIG and BERTH_CONFIG, so the machine's own
                     logins and settings never leak in; check=True asserts exit 0.
  fails(args, code)  run it expecting exit `code` and a `berth: ...` message on
                     stderr; returns the CompletedProcess.
  reg                module-scoped fixture, parametrized: berth (conftest's
                     `registry`) and Debian's docker-registry (distribution 2.8,
                     clients.ReferenceRegistry; skipped when not installed).
  Reference          docker-registry with an extra YAML config (auth ...).
  json_lines(s)      the JSON objects of a --json output, one per line.
"""
import json
import os
import shutil
import tempfile

import pytest

from clients import ReferenceRegistry, run
from conftest import berth_bin

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_home = tempfile.mkdtemp(prefix="berth-client-home-")
CLIENT_ENV = {
    "HOME": _home,
    "XDG_CONFIG_HOME": os.path.join(_home, ".config"),
    "XDG_CACHE_HOME": os.path.join(_home, ".cache"),  # the client's blob→repository cache
    "DOCKER_CONFIG": os.path.join(_home, ".docker"),
    "BERTH_CONFIG": os.path.join(_home, "berth-config.yml"),  # absent: no insecure list
    "REGISTRY_AUTH_FILE": os.path.join(_home, "auth.json"),
}


def berth(*args, env=None, check=True, input=None, timeout=120):
    e = dict(CLIENT_ENV)
    if env:
        e.update(env)
    return run([berth_bin()] + [str(a) for a in args], env=e, check=check, input=input,
               timeout=timeout)


def fails(args, code=1, env=None, input=None):
    """berth ARGS must exit `code` with a `berth: ` message on stderr."""
    r = berth(*args, env=env, check=False, input=input)
    assert r.returncode == code, "berth %s: exit %d, want %d\nstdout: %s\nstderr: %s" % (
        " ".join(map(str, args)), r.returncode, code, r.stdout, r.stderr)
    assert "berth: " in r.stderr, "no 'berth: ' message on stderr: %r" % r.stderr
    return r


def json_lines(s):
    return [json.loads(l) for l in s.splitlines() if l.strip().startswith("{")]


def tags_of(repo, env=None):
    r = berth("tags", repo, env=env)
    return sorted(l.strip() for l in r.stdout.splitlines() if l.strip())


# docker-registry whose config gets `extra` YAML appended (auth: ...)
Reference = ReferenceRegistry


@pytest.fixture(scope="module", params=["berth", "docker-registry"])
def reg(request):
    """The registry under test: berth, then Debian's docker-registry."""
    if request.param == "berth":
        yield request.getfixturevalue("registry")
        return
    tmp = tempfile.mkdtemp(prefix="berth-ref-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    r = ReferenceRegistry(root).start()
    try:
        yield r
    finally:
        r.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def reference_factory():
    """make(extra_yaml="") -> a started docker-registry; all stopped at teardown."""
    tmp = tempfile.mkdtemp(prefix="berth-ref-")
    made = []

    def make(extra=""):
        root = os.path.join(tmp, "root%d" % len(made))
        os.makedirs(root)
        made.append(Reference(root, extra))
        return made[-1].start()

    yield make
    for r in made:
        r.stop()
    shutil.rmtree(tmp, ignore_errors=True)


ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


def http_tags_digests(host, repo):
    """{tag: manifest digest} of a repository, straight over HTTP (fast checks)."""
    import http.client
    h, p = host.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=30)
    c.request("GET", "/v2/%s/tags/list" % repo)
    r = c.getresponse()
    body = r.read()
    if r.status == 404:
        return {}
    assert r.status == 200, (r.status, body)
    out = {}
    for t in json.loads(body).get("tags") or []:
        c.request("HEAD", "/v2/%s/manifests/%s" % (repo, t), headers={"Accept": ACCEPT})
        r = c.getresponse()
        r.read()
        assert r.status == 200, (t, r.status)
        out[t] = r.getheader("Docker-Content-Digest")
    c.close()
    return out

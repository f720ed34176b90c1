"""berth's client basics: `berth ref` (the note's four-part image names),
exit codes (0 ok, 1 failed, 2 usage; `berth: ...` on stderr), the HTTPS rule
and its message, and ls / tags / inspect / digest against berth and Debian's
docker-registry.
"""
import http.server
import json
import os
import socket
import subprocess
import threading

import pytest

import imagegen
from conftest import free_port
from test_client_common import berth, fails, json_lines, reg, tags_of  # noqa: F401

DIGEST = "sha256:" + "a" * 64


# --------------------------------------------------------------------------
# berth ref

@pytest.mark.parametrize("name,want", [
    # the note: registry domain, account, repository, tag (defaults: Docker Hub, latest)
    ("image-gallery", ("docker.io", "library", "image-gallery", "latest", None,
                       "docker.io/library/image-gallery:latest")),
    ("dockerid/image-gallery:v1", ("docker.io", "dockerid", "image-gallery", "v1", None,
                                   "docker.io/dockerid/image-gallery:v1")),
    ("127.0.0.1:5000/gallery/ui:v1", ("127.0.0.1:5000", "gallery", "ui", "v1", None,
                                      "127.0.0.1:5000/gallery/ui:v1")),
    ("localhost/gallery/ui", ("localhost", "gallery", "ui", "latest", None,
                              "localhost/gallery/ui:latest")),
    ("localhost:5000/ui", ("localhost:5000", None, "ui", "latest", None,
                           "localhost:5000/ui:latest")),
    ("registry.example.com/team/app/web:2.1", ("registry.example.com", "team/app", "web", "2.1",
                                               None, "registry.example.com/team/app/web:2.1")),
    ("docker.io/library/nginx", ("docker.io", "library", "nginx", "latest", None,
                                 "docker.io/library/nginx:latest")),
    ("index.docker.io/nginx", ("docker.io", "library", "nginx", "latest", None,
                               "docker.io/library/nginx:latest")),
    ("nginx@" + DIGEST, ("docker.io", "library", "nginx", None, DIGEST,
                         "docker.io/library/nginx@" + DIGEST)),
    ("nginx:1.25@" + DIGEST, ("docker.io", "library", "nginx", "1.25", DIGEST,
                              "docker.io/library/nginx:1.25@" + DIGEST)),
    ("[::1]:5000/gallery/ui:v1", ("[::1]:5000", "gallery", "ui", "v1", None,
                                  "[::1]:5000/gallery/ui:v1")),
])
def test_ref_normalizes(name, want):
    registry, account, repository, tag, digest, full = want
    j = json_lines(berth("ref", "--json", name).stdout)
    assert len(j) == 1, j
    j = j[0]
    assert (j["registry"], j["account"], j["repository"], j["tag"], j["digest"]) == \
        (registry, account, repository, tag, digest), j
    assert j["reference"] == full
    # the text form shows the same parts
    out = berth("ref", name).stdout
    assert full in out
    for label in ("registry", "account", "repository", "tag", "digest"):
        assert label in out.lower(), out


def test_ref_several_names_one_object_each():
    r = berth("ref", "--json", "image-gallery", "127.0.0.1:5000/gallery/ui:v1")
    j = json_lines(r.stdout)
    assert [x["reference"] for x in j] == ["docker.io/library/image-gallery:latest",
                                           "127.0.0.1:5000/gallery/ui:v1"]


@pytest.mark.parametrize("name,part", [
    ("gallery/UI:v1", "lowercase"),               # repository must be lowercase
    ("gallery/ui:-v1", "tag"),                     # tags cannot start with '-'
    ("gallery/ui:" + "x" * 129, "tag"),            # tags are at most 128 characters
    ("gallery/ui@sha256:1234", "digest"),          # wrong digest length
    ("gallery/ui@md5:" + "a" * 32, "digest"),       # unknown algorithm / bad digest
    ("gallery//ui", "repository"),                 # empty path component
    ("gallery/u i", "repository"),                 # a space
    ("", None),
])
def test_ref_invalid_says_which_part(name, part):
    r = fails(["ref", name], 1)
    assert name[:40] in r.stderr, r.stderr
    if part:
        assert part in r.stderr.lower(), "message should name the %s: %r" % (part, r.stderr)
    assert r.stdout == ""


# --------------------------------------------------------------------------
# exit codes

@pytest.mark.parametrize("args", [
    ["ref"],                                 # no name
    ["ref", "--no-such-flag", "x"],
    ["tags"],
    ["ls"],
    ["push", "oci:/nonexistent"],            # one operand missing
    ["pull", "127.0.0.1:1/x:y"],
    ["cp", "127.0.0.1:1/x:y"],
    ["tag", "127.0.0.1:1/x:y"],
    ["rm"],
    ["digest"],
    ["inspect"],
    ["push", "--parallel", "0", "oci:/nonexistent", "127.0.0.1:1/x"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args):
    r = berth(*args, check=False)
    assert r.returncode == 2, r
    assert r.stdout == "", "usage errors print nothing on stdout: %r" % r.stdout
    # either a `berth: ...` line or the command's usage text
    assert "berth: " in r.stderr or r.stderr.startswith("usage: berth"), r.stderr


CLIENT_COMMANDS = ["ref", "login", "logout", "ls", "tags", "inspect", "digest", "rm", "tag",
                   "push", "pull", "cp"]


def test_unknown_option_exit_2_with_berth_message():
    """Every command: exit 2, and the message is `berth: ...` (not getopt's
    `CMD: unrecognized option`)."""
    bad = []
    for cmd in CLIENT_COMMANDS:
        r = berth(cmd, "--no-such-flag", "x", "y", check=False)
        first = r.stderr.splitlines()[0] if r.stderr else ""
        if r.returncode != 2 or not first.startswith("berth: ") or r.stdout:
            bad.append("berth %s --no-such-flag: exit %d, first stderr line %r"
                       % (cmd, r.returncode, first))
    assert not bad, "\n".join(bad)


def test_no_command_exit_2_help_exit_0():
    r = berth(check=False)
    assert r.returncode == 2 and "usage" in r.stderr
    r = berth("--help")
    assert "usage" in r.stdout and "push" in r.stdout
    assert berth("version").stdout.startswith("berth ")


def test_failures_exit_1(registry, tmp_path):
    port = free_port()  # nothing listens there
    r = fails(["tags", "127.0.0.1:%d/gallery/ui" % port], 1)
    assert "127.0.0.1:%d" % port in r.stderr
    fails(["ls", "127.0.0.1:%d" % port], 1)
    # a repository that does not exist
    r = fails(["tags", "%s/no/such-repo" % registry.host], 1)
    fails(["digest", "%s/no/such-repo:v1" % registry.host], 1)
    fails(["inspect", "%s/no/such-repo:v1" % registry.host], 1)
    fails(["pull", "%s/no/such-repo:v1" % registry.host, "oci:%s" % (tmp_path / "o")], 1)
    # a source that does not exist
    fails(["push", "oci:%s:v1" % (tmp_path / "missing"), "%s/x/y:v1" % registry.host], 1)
    fails(["rm", "%s/no/such-repo:v1" % registry.host], 1)


# --------------------------------------------------------------------------
# the HTTPS rule: plain HTTP only for localhost, 127.0.0.0/8, ::1, --insecure,
# or insecure-registries in berth's config

class _PlainV2(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/v2/_catalog"):
            body = b'{"repositories":["gallery/ui"]}'
        elif self.path.rstrip("/") == "/v2":
            body = b"{}"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def _own_names():
    """Names of this machine that berth must not treat as local: the host name
    (its /etc/hosts entry; often 127.0.1.1 or 127.0.0.1 — still this machine)
    and non-loopback addresses of its own interfaces. Traffic never leaves it."""
    out = []
    name = socket.gethostname()
    try:
        addr = socket.gethostbyname(name)
        if name != "localhost" and "." not in name:
            out.append(("hostname", name, addr))
    except OSError:
        pass
    try:
        ips = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    except OSError:
        ips = []
    for ip in ips:
        if ":" not in ip and not ip.startswith("127."):
            out.append(("address", ip, ip))
            break
    return out


@pytest.fixture(params=["hostname", "address"])
def nonlocal_plain(request):
    """(registry name, ) of a plain-HTTP /v2/ server on this machine under a
    name that is not local by berth's rule."""
    found = [c for c in _own_names() if c[0] == request.param]
    if not found:
        pytest.skip("this machine has no %s that resolves to itself" % request.param)
    _, name, addr = found[0]
    srv = http.server.ThreadingHTTPServer((addr, 0), _PlainV2)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "%s:%d" % (name, srv.server_address[1])
    srv.shutdown()
    srv.server_close()


def test_https_refusal_message(nonlocal_plain, tmp_path):
    host = nonlocal_plain
    r = fails(["ls", host], 1)
    msg = r.stderr
    assert host in msg, msg
    assert "HTTPS" in msg or "TLS" in msg, msg
    assert "--insecure" in msg, msg
    assert "insecure-registries" in msg, msg
    assert "localhost" in msg and "127.0.0.0/8" in msg, msg
    assert r.stdout == ""
    # the same rule for every command
    fails(["tags", host + "/gallery/ui"], 1)
    # --insecure allows it
    assert berth("ls", "--insecure", host).stdout.split() == ["gallery/ui"]
    # and so does berth's config
    cfg = tmp_path / "config.yml"
    cfg.write_text("insecure-registries:\n  - %s\n" % host)
    assert berth("ls", host, env={"BERTH_CONFIG": str(cfg)}).stdout.split() == ["gallery/ui"]
    cfg.write_text("insecure-registries:\n  - other.example:5000\n")
    fails(["ls", host], 1, env={"BERTH_CONFIG": str(cfg)})


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_local_registries_use_plain_http(registry, name):
    host = "%s:%d" % (name, registry.port)
    berth("ls", host)


# --------------------------------------------------------------------------
# ls, tags, inspect, digest against both registries

@pytest.fixture(scope="module")
def basics_pushed(reg, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("basics") / "layout")
    info = imagegen.write_oci_layout(d, {
        "v1": imagegen.build_image(seed="basics-v1", layers=2, size=16 * 1024),
        "multi": imagegen.build_multi(seed="basics-multi", layers=2, size=8 * 1024),
    })
    berth("push", "-q", "oci:%s:v1" % d, "%s/basics/app:v1" % reg.host)
    berth("push", "-q", "oci:%s:multi" % d, "%s/basics/app:multi" % reg.host)
    return info


def test_ls_and_tags(reg, basics_pushed):
    repos = berth("ls", reg.host).stdout.split()
    assert "basics/app" in repos
    assert "basics/app" in json.loads(berth("ls", "--json", reg.host).stdout)
    assert tags_of("%s/basics/app" % reg.host) == ["multi", "v1"]
    j = json.loads(berth("tags", "--json", "%s/basics/app" % reg.host).stdout)
    assert sorted(j["tags"]) == ["multi", "v1"]


def test_digest_and_inspect(reg, basics_pushed):
    v1 = basics_pushed["v1"]
    img = v1["image"]
    ref = "%s/basics/app:v1" % reg.host
    assert berth("digest", ref).stdout.strip() == v1["digest"]
    assert berth("inspect", "--raw", ref).stdout.encode() == v1["manifest"]
    j = json.loads(berth("inspect", "--json", ref).stdout)
    assert j["digest"] == v1["digest"]
    assert j["config"] == img.config_digest
    assert [l["digest"] for l in j["layers"]] == [l.digest for l in img.layers]
    assert [l["size"] for l in j["layers"]] == [l.size for l in img.layers]
    text = berth("inspect", ref).stdout
    assert v1["digest"] in text and "linux/amd64" in text
    for l in img.layers:
        assert l.digest in text
    # by digest
    assert berth("digest", "%s/basics/app@%s" % (reg.host, v1["digest"])).stdout.strip() == v1["digest"]


def test_inspect_multi_platform(reg, basics_pushed):
    m = basics_pushed["multi"]
    ref = "%s/basics/app:multi" % reg.host
    assert berth("digest", ref).stdout.strip() == m["digest"]
    text = berth("inspect", ref).stdout
    assert "linux/amd64" in text and "linux/arm64" in text
    arm = [i for i in m["image"].images if i.arch == "arm64"][0]
    arm_digest = imagegen.sha256(arm.manifest()[0])
    j = json.loads(berth("inspect", "--json", "--platform", "linux/arm64", ref).stdout)
    assert j["digest"] == arm_digest
    assert j["config"] == arm.config_digest
    fails(["inspect", "--platform", "windows/amd64", ref], 1)

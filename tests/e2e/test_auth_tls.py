"""Auth and TLS together, as a team runs berth: `--tls-self-signed` plus
htpasswd, the built-in token server and a policy. Checked by raw HTTPS
(python ssl trusting ROOT/tls/ca.crt: the Bearer realm is https://), and with
skopeo and podman trusting ca.crt through a cert dir (no tls-verify=false),
and with berth's own client (login/push/pull).
"""
import http.client
import json
import os
import re
import shutil
import ssl
import tempfile
import urllib.parse

import pytest

import conftest
import imagegen
import regclient
from clients import podman, skopeo  # noqa: F401  (fixtures)
from test_auth import POLICY, USERS, basic, challenge
from test_client_common import berth
from test_tls import start_tls


class HTTPSAuthClient(regclient.RegClient):
    """RegClient over HTTPS (verifying against the server's CA) with one
    Authorization header on every request."""

    def __init__(self, server, cafile, authorization=None):
        super().__init__(server)
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.authorization = authorization

    def conn(self, timeout=None):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout or self.timeout)

    def request(self, method, path, body=None, headers=None, **kw):
        h = dict(headers or {})
        if self.authorization:
            h["Authorization"] = self.authorization
        return super().request(method, path, body=body, headers=h, **kw)


@pytest.fixture(scope="module")
def secure():
    """One HTTPS + htpasswd + built-in token + policy server for the module;
    yields (server, certdir holding ca.crt)."""
    import crypt
    tmp = tempfile.mkdtemp(prefix="berth-e2e-authtls-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    htpasswd = os.path.join(tmp, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write("".join("%s:%s\n" % (u, crypt.crypt(p, crypt.mksalt(
            crypt.METHOD_BLOWFISH, rounds=1 << 4))) for u, p in USERS.items()))
    cfg = ("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n"
           "  token:\n    builtin: true\n" % htpasswd) + POLICY
    s = conftest.Server(root, config=cfg, extra_args=["--tls-self-signed", "127.0.0.1,localhost"])
    try:
        start_tls(s)
        certdir = os.path.join(tmp, "certs")
        os.makedirs(certdir)
        shutil.copy(os.path.join(root, "tls", "ca.crt"), os.path.join(certdir, "ca.crt"))
        yield s, certdir
        s.stop()
    finally:
        if s.proc:
            s.stop(check=False)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("authtls-img") / "layout")
    info = imagegen.write_oci_layout(d, {"v1": imagegen.build_image(
        seed="test-auth-tls", layers=2, size=8 * 1024)})
    return d, info["v1"]


def test_https_challenge_token_push_pull(secure):
    s, certdir = secure
    ca = os.path.join(certdir, "ca.crt")
    anon = HTTPSAuthClient(s, ca)

    r = anon.get("/v2/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    c = challenge(r)
    realm = urllib.parse.urlsplit(c["realm"])
    assert c["realm"].startswith("https://"), c
    assert realm.port == s.port and realm.path == "/token", c
    assert c["realm"] == "https://%s/token" % s.host, c  # from the Host header
    assert c["service"] == "berth", c

    # the token, fetched over HTTPS from the realm with Basic
    q = urllib.parse.urlencode([("service", c["service"]),
                                ("scope", "repository:team-a/app:pull,push")])
    r = HTTPSAuthClient(s, ca, basic("alice")).get(realm.path + "?" + q)
    assert r.status == 200 and r.header("Cache-Control") == "no-store", r
    tok = r.json()["token"]
    wrong = HTTPSAuthClient(s, ca, basic("alice", "wrong")).get(realm.path + "?" + q)
    assert wrong.status == 401, wrong

    alice = HTTPSAuthClient(s, ca, "Bearer " + tok)
    assert alice.get("/v2/").status == 200
    img = alice.make_image("team-a/app", tag="v1")
    r = alice.get("/v2/team-a/app/manifests/v1")
    assert r.status == 200 and r.body == img["body"], r
    for d in img["layer_digests"]:
        r = alice.get("/v2/team-a/app/blobs/%s" % d)
        assert r.status == 200 and regclient.digest(r.body) == d, r
    # outside the token's scope: insufficient_scope
    r = alice.get("/v2/team-a/other/tags/list")
    assert r.status == 401 and challenge(r)["error"] == "insufficient_scope", r
    # Basic is not accepted on the API in token mode, over TLS either
    regclient.assert_error(HTTPSAuthClient(s, ca, basic("alice")).get("/v2/"), 401)
    assert re.search(r"PUT /v2/team-a/app/manifests/v1 201 .* alice$", s.read_log(), re.M)
    assert tok not in s.read_log() and USERS["alice"] not in s.read_log()


def test_skopeo_cert_dir_with_creds(secure, skopeo, layout, tmp_path):
    s, certdir = secure
    d, v1 = layout
    creds = "alice:" + USERS["alice"]
    ref = "docker://%s/team-a/sk:v1" % s.host
    skopeo("copy", "--dest-cert-dir", certdir, "--dest-creds", creds, "--preserve-digests",
           "oci:%s:v1" % d, ref)
    out = str(tmp_path / "out")
    skopeo("copy", "--src-cert-dir", certdir, "--src-creds", creds, ref, "oci:%s:v1" % out)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == v1["digest"]
    # the CA but no credentials: refused; credentials but no CA: refused
    r = skopeo("copy", "--src-cert-dir", certdir, ref, "oci:%s:v1" % (tmp_path / "o2"),
               check=False)
    assert r.returncode != 0 and re.search(r"unauthorized|denied|401", r.stderr, re.I), r
    r = skopeo("copy", "--src-creds", creds, ref, "oci:%s:v1" % (tmp_path / "o3"), check=False)
    assert r.returncode != 0 and "certificate" in r.stderr, r
    # reader: pull yes, push DENIED
    rcreds = "reader:" + USERS["reader"]
    skopeo("copy", "--src-cert-dir", certdir, "--src-creds", rcreds, ref,
           "oci:%s:v1" % (tmp_path / "o4"))
    r = skopeo("copy", "--dest-cert-dir", certdir, "--dest-creds", rcreds,
               "oci:%s:v1" % d, "docker://%s/team-a/reader:v1" % s.host, check=False)
    assert r.returncode != 0 and ("denied" in r.stderr.lower() or "403" in r.stderr), r


def test_podman_login_push_pull_cert_dir(secure, podman, skopeo, layout):
    s, certdir = secure
    d, v1 = layout
    creds = "alice:" + USERS["alice"]
    src = "%s/team-a/pod-src:v1" % s.host
    skopeo("copy", "--dest-cert-dir", certdir, "--dest-creds", creds, "--preserve-digests",
           "oci:%s:v1" % d, "docker://" + src)
    podman("login", "--cert-dir", certdir, "-u", "alice", "-p", USERS["alice"], s.host)
    podman("pull", "--cert-dir", certdir, src)
    new = "%s/team-a/pod:v1" % s.host
    podman("tag", src, new)
    podman("push", "--cert-dir", certdir, new)
    podman("rmi", "-f", new, src)
    podman("pull", "--cert-dir", certdir, new)
    tags = json.loads(skopeo("list-tags", "--cert-dir", certdir, "--creds", creds,
                             "docker://%s/team-a/pod" % s.host).stdout)["Tags"]
    assert tags == ["v1"]
    podman("logout", s.host)
    # logged out: the image that exists is refused by authentication (not 404)
    podman("rmi", "-f", new)
    r = podman("pull", "--cert-dir", certdir, new, check=False)
    assert r.returncode != 0 and re.search(r"unauthorized|authentication required|401|403|denied|forbidden",
                                           r.stderr, re.I), r.stderr
    assert re.search(r"PUT /v2/team-a/pod/manifests/v1 201 .* alice$", s.read_log(), re.M)


def test_berth_login_push_pull(secure, layout, tmp_path):
    """berth's client trusts a private CA the way docker and podman do: a
    ca.crt under certs.d/<registry>/ (berth's own ~/.config/berth/certs.d,
    then /etc/containers/certs.d, /etc/docker/certs.d). Without it the
    certificate is refused with a message naming that place; with it login,
    push and pull verify TLS — no --insecure."""
    s, certdir = secure
    d, v1 = layout
    xdg = tmp_path / "xdg"
    env = {"DOCKER_CONFIG": str(tmp_path / "berth-cfg"), "XDG_CONFIG_HOME": str(xdg)}
    r = berth("login", s.host, "-u", "alice", "--password-stdin", env=env,
              input=USERS["alice"] + "\n", check=False)
    assert r.returncode != 0 and "not trusted" in r.stderr, r
    assert "certs.d/%s/ca.crt" % s.host in r.stderr and "--insecure" in r.stderr, r
    assert not os.path.exists(str(tmp_path / "berth-cfg" / "config.json"))

    ca_dir = xdg / "berth" / "certs.d" / s.host
    ca_dir.mkdir(parents=True)
    shutil.copy(os.path.join(certdir, "ca.crt"), str(ca_dir / "ca.crt"))
    r = berth("login", s.host, "-u", "alice", "--password-stdin", env=env,
              input=USERS["alice"] + "\n")
    assert "Login Succeeded" in r.stdout
    ref = "%s/team-a/berth:v1" % s.host
    assert berth("push", "-q", "oci:%s:v1" % d, ref, env=env).stdout.strip() == v1["digest"]
    berth("pull", "-q", ref, "oci:%s:v1" % (tmp_path / "pulled"), env=env)
    assert imagegen.read_oci_layout(str(tmp_path / "pulled"))["v1"]["digest"] == v1["digest"]
    log = s.read_log()
    assert re.search(r"PUT /v2/team-a/berth/manifests/v1 201 .* alice$", log, re.M)
    assert re.search(r"GET /token\?\S+ 200 .* alice$", log, re.M)

"""Authentication and access control of `berth serve` (docs/auth.md): htpasswd
(Basic) and the built-in token server, checked by raw HTTP and with real
clients (berth, skopeo, podman, docker) logging in, pushing and pulling.
"""
import base64
import crypt
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

import pytest

import imagegen
import regclient
from clients import docker, podman, skopeo  # noqa: F401  (fixtures)
from test_client_common import berth

USERS = {"alice": "alice-pass", "reader": "reader-pass", "carol": "carol-pass"}

POLICY = """
  access:
    rules:
      - repository: ["team-a/**", "private/**"]
        users: [alice]
        actions: ["*"]
      - repository: team-a/**
        users: [reader]
        actions: [pull]
      - repository: carol/**
        users: [carol]
        actions: [pull, push]
      - repository: "*/public"
        users: [anonymous]
        actions: [pull]
      - repository: x/public
        users: [alice]
        actions: [push]
      - users: [alice, reader]
        actions: [catalog]
"""


def basic(user, password=None):
    pw = USERS[user] if password is None else password
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


class AuthClient(regclient.RegClient):
    """RegClient sending one Authorization header with every request."""

    def __init__(self, server, authorization=None):
        super().__init__(server)
        self.authorization = authorization

    def request(self, method, path, body=None, headers=None, **kw):
        h = dict(headers or {})
        if self.authorization:
            h["Authorization"] = self.authorization
        return super().request(method, path, body=body, headers=h, **kw)


def make_server(server_factory, tmp_path, builtin=False, extra=""):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("".join("%s:%s\n" % (u, crypt.crypt(p, crypt.mksalt(
        crypt.METHOD_BLOWFISH, rounds=1 << 4))) for u, p in USERS.items()))
    cfg = "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n" % htpasswd
    if builtin:
        cfg += "  token:\n    builtin: true\n"
    return server_factory(config=cfg + extra + POLICY)


def challenge(resp):
    """WWW-Authenticate: Bearer k="v",... -> {k: v}."""
    value = resp.header("WWW-Authenticate")
    assert value and value.startswith("Bearer "), resp
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


# --------------------------------------------------------------------------
# htpasswd (Basic) by raw HTTP

def test_basic_challenge_policy_catalog_mount(server_factory, tmp_path):
    srv = make_server(server_factory, tmp_path)
    anon, alice = AuthClient(srv), AuthClient(srv, basic("alice"))
    reader, carol = AuthClient(srv, basic("reader")), AuthClient(srv, basic("carol"))

    r = anon.get("/v2/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    assert r.header("WWW-Authenticate") == 'Basic realm="berth-test"'
    assert alice.get("/v2/").status == 200
    regclient.assert_error(AuthClient(srv, basic("alice", "wrong")).get("/v2/"), 401)

    img = alice.make_image("team-a/app", tag="v1")
    alice.make_image("private/secret", tag="v1")
    pub = alice.make_image("x/public", tag="v1")

    # a pull-only user: pull works, push is DENIED before any body is read
    assert reader.get("/v2/team-a/app/manifests/v1").status == 200
    regclient.assert_error(reader.request("POST", "/v2/team-a/app/blobs/uploads/"), 403, "DENIED")
    regclient.assert_error(reader.put_manifest("team-a/app", "v2", img["body"]), 403, "DENIED")
    regclient.assert_error(reader.get("/v2/private/secret/tags/list"), 403, "DENIED")

    # anonymous pull on */public only
    r = anon.get("/v2/x/public/manifests/v1")
    assert r.status == 200 and r.body == pub["body"], r
    r = anon.get("/v2/team-a/app/manifests/v1")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    assert r.header("WWW-Authenticate") == 'Basic realm="berth-test"'
    regclient.assert_error(anon.get("/v2/_catalog"), 401)

    # catalog and tag lists show only what the caller may pull
    assert alice.get("/v2/_catalog").json()["repositories"] == \
        ["private/secret", "team-a/app", "x/public"]
    assert reader.get("/v2/_catalog").json()["repositories"] == ["team-a/app", "x/public"]
    # paging walks past hidden names: one per page, the hidden one leaves a gap
    r = reader.get("/v2/_catalog?n=1")
    assert r.json()["repositories"] == [] and "last=private/secret" in r.header("Link"), r
    assert reader.get("/v2/team-a/app/tags/list").json()["tags"] == ["v1"]
    assert carol.get("/v2/x/public/tags/list").json()["tags"] == ["v1"]

    # mount needs pull on `from`: without it a plain session (202), with it 201
    layer = img["layer_digests"][0]
    r = carol.request("POST", "/v2/carol/app/blobs/uploads/?mount=%s&from=team-a/app" % layer)
    assert r.status == 202 and "/blobs/uploads/" in r.header("Location"), r
    r = carol.request("POST", "/v2/carol/app/blobs/uploads/?mount=%s&from=x/public" %
                      pub["layer_digests"][0])
    assert r.status == 201, r
    r = alice.request("POST", "/v2/team-a/b/blobs/uploads/?mount=%s&from=team-a/app" % layer)
    assert r.status == 201, r

    log = srv.read_log()
    assert re.search(r"GET /v2/team-a/app/manifests/v1 200 \d+ \d+ms 127\.0\.0\.1 reader", log)
    assert re.search(r"GET /v2/x/public/manifests/v1 200 \d+ \d+ms 127\.0\.0\.1 -", log)
    for secret in list(USERS.values()) + ["Basic ", "YWxpY2"]:
        assert secret not in log, secret


def test_basic_throttling(server_factory, tmp_path):
    srv = make_server(server_factory, tmp_path)
    bad = AuthClient(srv, basic("alice", "nope"))
    statuses = [bad.get("/v2/").status for _ in range(6)]
    assert statuses[:5] == [401] * 5, statuses
    r = bad.get("/v2/")
    regclient.assert_error(r, 429, "TOOMANYREQUESTS")
    assert int(r.header("Retry-After")) > 0, r
    # locked out: even the right password waits; anonymous public pulls do not
    assert AuthClient(srv, basic("alice")).get("/v2/").status == 429
    assert AuthClient(srv).get("/v2/x/public/tags/list").status == 404


def test_basic_failed_logins_slowed(server_factory, tmp_path):
    # each wrong password from an address waits 250 ms per earlier failure
    # (at most 2 s) before its 401, with the connection suspended: a worker
    # is not held, so others are answered at once meanwhile
    srv = make_server(server_factory, tmp_path, extra="  throttle:\n    failures: 10\n")
    bad = AuthClient(srv, basic("alice", "nope"))
    good = AuthClient(srv, basic("alice"))
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        r = bad.get("/v2/")
        times.append(time.monotonic() - t0)
        regclient.assert_error(r, 401, "UNAUTHORIZED")
        assert r.header("WWW-Authenticate"), r
    assert times[0] < 0.2 and times[2] >= 0.45, times
    result = {}

    def fourth():
        t0 = time.monotonic()
        result["r"] = bad.get("/v2/")
        result["t"] = time.monotonic() - t0

    t = threading.Thread(target=fourth)
    t.start()
    time.sleep(0.15)  # the 4th is held now (750 ms)
    for _ in range(4):  # more than the worker threads a small machine has
        t0 = time.monotonic()
        assert good.get("/v2/").status == 200
        assert time.monotonic() - t0 < 0.3
    assert t.is_alive(), "the held 401 came back too early"
    t.join(10)
    regclient.assert_error(result["r"], 401, "UNAUTHORIZED")
    assert result["t"] >= 0.6, result["t"]


# --------------------------------------------------------------------------
# the built-in token server by raw HTTP

def get_token(client, scopes, authorization=None, **extra):
    q = [("service", "berth")] + [("scope", s) for s in scopes] + list(extra.items())
    c = AuthClient(client.server, authorization)
    return c.get("/token?" + urllib.parse.urlencode(q))


def post_form(srv, form):
    body = urllib.parse.urlencode(form)
    return regclient.RegClient(srv).request(
        "POST", "/token", body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_token_flows(server_factory, tmp_path):
    srv = make_server(server_factory, tmp_path, builtin=True,
                      extra="    expiration: 2m\n")
    anon = AuthClient(srv)

    r = anon.get("/v2/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    c = challenge(r)
    assert c["realm"] == "http://%s/token" % srv.host and c["service"] == "berth", c
    r = anon.request("POST", "/v2/team-a/app/blobs/uploads/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    assert challenge(r)["scope"] == "repository:team-a/app:pull,push", r
    # Basic is not accepted on the API in token mode
    regclient.assert_error(AuthClient(srv, basic("alice")).get("/v2/"), 401)

    # GET /token with Basic credentials
    r = get_token(anon, ["repository:team-a/app:pull,push"], basic("alice"))
    assert r.status == 200 and r.header("Cache-Control") == "no-store", r
    doc = r.json()
    assert doc["token"] == doc["access_token"] and doc["expires_in"] == 120, doc
    assert "refresh_token" not in doc
    alice = AuthClient(srv, "Bearer " + doc["token"])
    img = alice.make_image("team-a/app", tag="v1")
    # the token names only team-a/app: elsewhere insufficient_scope
    r = alice.get("/v2/team-a/other/tags/list")
    assert r.status == 401 and challenge(r)["error"] == "insufficient_scope", r
    # wrong password: 401 with a Basic challenge
    r = get_token(anon, ["repository:team-a/app:pull"], basic("alice", "wrong"))
    assert r.status == 401 and r.json()["error"] == "invalid_grant", r
    # a pull-only user gets a token without push, then DENIED on push
    r = get_token(anon, ["repository:team-a/app:pull,push"], basic("reader"))
    reader = AuthClient(srv, "Bearer " + r.json()["token"])
    assert reader.get("/v2/team-a/app/manifests/v1").body == img["body"]
    regclient.assert_error(reader.request("POST", "/v2/team-a/app/blobs/uploads/"), 403,
                           "DENIED")
    # anonymous token: public pull only
    r = get_token(anon, ["repository:x/public:pull"])
    assert r.status == 200, r

    # the OAuth2 form as containerd sends it: password, then refresh_token
    r = post_form(srv, {"grant_type": "password", "username": "alice",
                        "password": USERS["alice"], "service": "berth",
                        "client_id": "containerd-client", "access_type": "offline",
                        "scope": "repository:team-a/app:pull"})
    assert r.status == 200, r
    doc = r.json()
    assert doc["refresh_token"] and doc["access_token"], doc
    assert AuthClient(srv, "Bearer " + doc["access_token"]).get(
        "/v2/team-a/app/manifests/v1").status == 200
    r = post_form(srv, {"grant_type": "refresh_token", "refresh_token": doc["refresh_token"],
                        "service": "berth", "client_id": "containerd-client",
                        "scope": "repository:team-a/app:pull"})
    assert r.status == 200, r
    fresh = r.json()["access_token"]
    assert AuthClient(srv, "Bearer " + fresh).get("/v2/team-a/app/tags/list").status == 200
    r = post_form(srv, {"grant_type": "refresh_token", "refresh_token": doc["refresh_token"][:-4]
                        + "AAAA", "service": "berth", "client_id": "x"})
    assert r.status == 401, r
    r = regclient.RegClient(srv).request("POST", "/token", body="grant_type=password",
                                         headers={"Content-Type": "text/plain"})
    assert r.status == 400, r

    # a token with one signature byte changed, then an expired one: 401 invalid_token
    head, payload, sig = fresh.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[5] ^= 0x01
    bad = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")])
    r = AuthClient(srv, "Bearer " + bad).get("/v2/team-a/app/tags/list")
    assert r.status == 401 and challenge(r)["error"] == "invalid_token", r
    log = srv.read_log()
    for secret in [fresh, doc["refresh_token"], USERS["alice"]]:
        assert secret not in log


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def resign(token, keyfile, **claims):
    """The token with some claims changed, signed ES256 with `keyfile` by openssl."""
    from test_client_auth import der_to_raw
    head, payload, _ = token.split(".")
    body = json.loads(unb64url(payload))
    body.update(claims)
    signing = head + "." + b64url(json.dumps(body).encode())
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile],
                         input=signing.encode(), check=True, capture_output=True).stdout
    return signing + "." + b64url(der_to_raw(der))


def test_token_expired_and_foreign_key(server_factory, tmp_path):
    """Tokens re-signed here: with berth's own key (generated into the root)
    and a future `exp` accepted, expired (beyond the 60 s skew) refused, and
    signed by another key refused."""
    srv = make_server(server_factory, tmp_path, builtin=True)
    tok = get_token(AuthClient(srv), ["repository:team-a/app:pull"], basic("alice")).json()
    tok = tok["token"]
    key = os.path.join(srv.root, "token-key.pem")
    assert os.stat(key).st_mode & 0o077 == 0
    now = int(time.time())
    ok = resign(tok, key, exp=now + 120)
    assert AuthClient(srv, "Bearer " + ok).get("/v2/team-a/app/tags/list").status == 404
    expired = resign(tok, key, iat=now - 600, nbf=now - 600, exp=now - 120)
    r = AuthClient(srv, "Bearer " + expired).get("/v2/team-a/app/tags/list")
    assert r.status == 401 and challenge(r)["error"] == "invalid_token", r
    other = str(tmp_path / "other.pem")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                    other], check=True, capture_output=True)
    r = AuthClient(srv, "Bearer " + resign(tok, other)).get("/v2/team-a/app/tags/list")
    assert r.status == 401 and challenge(r)["error"] == "invalid_token", r


# --------------------------------------------------------------------------
# real clients: login, push, pull through Basic and through tokens

@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("auth-img") / "layout")
    info = imagegen.write_oci_layout(d, {"v1": imagegen.build_image(seed="test-auth", layers=2,
                                                                     size=8 * 1024)})
    return d, info["v1"]


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_clients_login_push_pull(mode, server_factory, tmp_path, layout, skopeo, podman,
                                 docker):
    srv = make_server(server_factory, tmp_path, builtin=mode == "token")
    host = srv.host
    d, v1 = layout
    pw = USERS["alice"]

    # berth
    env = {"DOCKER_CONFIG": str(tmp_path / "berth-cfg")}
    r = berth("login", host, "-u", "alice", "--password-stdin", env=env, input=pw + "\n")
    assert "Login Succeeded" in r.stdout
    ref = "%s/team-a/app:v1" % host
    assert berth("push", "-q", "oci:%s:v1" % d, ref, env=env).stdout.strip() == v1["digest"]
    berth("pull", "-q", ref, "oci:%s:v1" % (tmp_path / "pulled"), env=env)
    assert imagegen.read_oci_layout(str(tmp_path / "pulled"))["v1"]["digest"] == v1["digest"]

    # skopeo: not logged in, refused; logged in as reader: pull yes, push no
    r = skopeo.copy("oci:%s:v1" % d, "docker://%s/team-a/sk:v1" % host, check=False)
    assert r.returncode != 0 and re.search(r"unauthorized|authentication required|401|403|denied|forbidden",
                                           r.stderr, re.I), r.stderr
    skopeo("login", "--tls-verify=false", "-u", "reader", "-p", USERS["reader"], host)
    assert skopeo.inspect("docker://" + ref)["Digest"] == v1["digest"]
    r = skopeo.copy("oci:%s:v1" % d, "docker://%s/team-a/sk:v1" % host, check=False)
    assert r.returncode != 0 and ("denied" in r.stderr.lower() or "403" in r.stderr), r.stderr
    skopeo("login", "--tls-verify=false", "-u", "alice", "-p", pw, host)
    skopeo.copy("oci:%s:v1" % d, "docker://%s/team-a/sk:v1" % host)
    skopeo("logout", host)

    # podman
    podman("login", "--tls-verify=false", "-u", "alice", "-p", pw, host)
    podman("pull", "--tls-verify=false", ref)
    podman("tag", ref, "%s/team-a/pod:v1" % host)
    podman("push", "--tls-verify=false", "%s/team-a/pod:v1" % host)
    podman("logout", host)

    # docker (loopback registries need no insecure setting)
    docker("login", "-u", "alice", "-p", pw, host)
    docker("pull", ref)
    docker("tag", ref, "%s/team-a/dock:v1" % host)
    docker("push", "%s/team-a/dock:v1" % host)
    docker("logout", host)

    alice = AuthClient(srv, basic("alice"))
    if mode == "token":
        alice.authorization = "Bearer " + get_token(
            alice, ["registry:catalog:*"], basic("alice")).json()["token"]
    assert set(alice.get("/v2/_catalog").json()["repositories"]) >= \
        {"team-a/app", "team-a/sk", "team-a/pod", "team-a/dock"}
    log = srv.read_log()
    for repo in ("app", "sk", "pod", "dock"):  # each client pushed as alice
        assert re.search(r"PUT /v2/team-a/%s/manifests/v1 201 .* alice$" % repo, log, re.M), repo
    if mode == "token":  # every client fetched tokens, none sent Basic to the API
        assert re.search(r"GET /token\?\S+ 200 .* alice$", log, re.M)
    assert pw not in log and USERS["reader"] not in log

"""Authentication that is wired into `berth serve` but was not yet proven end
to end (docs/auth.md):

- external token server mode (`auth.token.realm/service/issuer` with
  `rootcertbundle` or `jwks`): the issuer is a second berth running the
  built-in token server; registry B trusts A's key as a self-signed
  certificate or as a JWK Set, and must accept A's tokens, refuse tokens for
  another repository, signed by another key, or for another audience; and
  `berth login` against B follows B's Bearer realm to A;
- htpasswd reload without a restart (new user, changed password: the
  verification cache is dropped);
- non-bcrypt htpasswd entries refused with a clear log line that never
  quotes the hash.
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.parse
import warnings

import pytest

import imagegen
import regclient
from test_client_common import berth

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

SERVICE = "shared-registry"
ISSUER = "berth-issuer-a"
USERS = {"alice": "alice-pass-1"}


def bcrypt_line(user, password):
    return "%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH,
                                                                  rounds=1 << 4)))


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


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


def challenge(resp):
    """WWW-Authenticate: Bearer k="v",... -> {k: v}."""
    value = resp.header("WWW-Authenticate")
    assert value and value.startswith("Bearer "), resp
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), input=input, check=True,
                          capture_output=True).stdout


def der_to_raw(sig):
    """ECDSA DER signature -> r||s, 32 bytes each (JWS ES256)."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        out += sig[i + 2:i + 2 + n].lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


def resign(token, keyfile, **claims):
    """`token` with some claims replaced, signed ES256 with `keyfile` (header,
    so kid, kept)."""
    head, payload, _ = token.split(".")
    body = json.loads(unb64url(payload))
    body.update(claims)
    signing = head + "." + b64url(json.dumps(body).encode())
    der = openssl("dgst", "-sha256", "-sign", keyfile, input=signing.encode())
    return signing + "." + b64url(der_to_raw(der))


def libtrust_kid(keyfile):
    """libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240
    bits, base32, twelve ':'-separated groups of four."""
    spki = openssl("ec", "-in", keyfile, "-pubout", "-outform", "DER")
    s = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode()
    return ":".join(s[i:i + 4] for i in range(0, 48, 4))


def jwks_for(keyfile, kid):
    """A JWK Set holding the EC P-256 public key of `keyfile`."""
    spki = openssl("ec", "-in", keyfile, "-pubout", "-outform", "DER")
    point = spki[-65:]  # uncompressed point 04 || x || y ends the SPKI
    assert point[0] == 4 and len(spki) == 91
    key = {"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
           "x": b64url(point[1:33]), "y": b64url(point[33:])}
    if kid is not None:
        key["kid"] = kid
    # an unusable key of another type first: skipped, not fatal
    return json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, key]})


def token_server(server_factory, tmp_path, name):
    """A berth with the built-in token server for SERVICE/ISSUER; users: alice."""
    htpasswd = tmp_path / ("htpasswd-" + name)
    htpasswd.write_text("".join(bcrypt_line(u, p) for u, p in USERS.items()))
    cfg = ("auth:\n  htpasswd:\n    path: %s\n  token:\n    builtin: true\n"
           "    service: %s\n    issuer: %s\n" % (htpasswd, SERVICE, ISSUER))
    return server_factory(config=cfg)


def get_token(issuer, scopes, user="alice"):
    q = [("service", SERVICE)] + [("scope", s) for s in scopes]
    r = AuthClient(issuer, basic(user, USERS[user])).get("/token?" + urllib.parse.urlencode(q))
    assert r.status == 200, r
    return r.json()["token"]


def external_registry(server_factory, tmp_path, issuer, trust):
    """Registry B trusting issuer A's key by `trust`: "certs" (a self-signed
    certificate of A's key in rootcertbundle) or "jwks" (a JWK Set file, kid
    = A's libtrust kid)."""
    key = os.path.join(issuer.root, "token-key.pem")
    assert os.path.exists(key)
    cfg = ("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n"
           % (issuer.url, SERVICE, ISSUER))
    if trust == "certs":
        cert = str(tmp_path / "a-cert.pem")
        openssl("req", "-new", "-x509", "-key", key, "-subj", "/CN=berth-token", "-days", "1",
                "-out", cert)
        cfg += "    rootcertbundle: %s\n" % cert
    else:
        jwks = tmp_path / "a.jwks"
        jwks.write_text(jwks_for(key, libtrust_kid(key)))
        cfg += "    jwks: %s\n" % jwks
    return server_factory(config=cfg)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ext-img") / "layout")
    info = imagegen.write_oci_layout(d, {"v1": imagegen.build_image(seed="test-auth-ext",
                                                                     layers=2, size=4096)})
    return d, info["v1"]


# --------------------------------------------------------------------------
# external token server

@pytest.mark.parametrize("trust", ["certs", "jwks"])
def test_external_token_server(trust, server_factory, tmp_path, layout):
    a = token_server(server_factory, tmp_path, "a")
    b = external_registry(server_factory, tmp_path, a, trust)

    # B challenges with A's realm, its service and exactly the scope needed
    anon = AuthClient(b)
    r = anon.get("/v2/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    c = challenge(r)
    assert c["realm"] == a.url + "/token" and c["service"] == SERVICE, c
    r = anon.request("POST", "/v2/proj/app/blobs/uploads/")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    scope = challenge(r)["scope"]
    assert scope == "repository:proj/app:pull,push", r
    # Basic is not accepted on B's API
    regclient.assert_error(AuthClient(b, basic("alice", USERS["alice"])).get("/v2/"), 401)

    # a token from A for the scope B asked: push and pull through B
    tok = get_token(a, [scope])
    head = json.loads(unb64url(tok.split(".")[0]))
    key = os.path.join(a.root, "token-key.pem")
    assert head["alg"] == "ES256" and head["kid"] == libtrust_kid(key), head
    alice = AuthClient(b, "Bearer " + tok)
    assert alice.get("/v2/").status == 200
    img = alice.make_image("proj/app", tag="v1", nlayers=2)
    r = alice.get("/v2/proj/app/manifests/v1")
    assert r.status == 200 and r.body == img["body"], r
    r = alice.get("/v2/proj/app/blobs/" + img["layer_digests"][1])
    assert r.status == 200 and r.body == img["layers"][1], r
    assert alice.get("/v2/proj/app/tags/list").json()["tags"] == ["v1"]

    # a pull-only token: pull yes, push 401 insufficient_scope naming pull,push
    pull = AuthClient(b, "Bearer " + get_token(a, ["repository:proj/app:pull"]))
    assert pull.get("/v2/proj/app/manifests/v1").status == 200
    r = pull.request("POST", "/v2/proj/app/blobs/uploads/")
    assert r.status == 401 and challenge(r)["error"] == "insufficient_scope", r
    assert challenge(r)["scope"] == "repository:proj/app:pull,push", r

    # a token for another repository: 401 insufficient_scope
    other = AuthClient(b, "Bearer " + get_token(a, ["repository:proj/other:pull,push"]))
    r = other.get("/v2/proj/app/manifests/v1")
    regclient.assert_error(r, 401, "UNAUTHORIZED")
    c = challenge(r)
    assert c["error"] == "insufficient_scope" and c["scope"] == "repository:proj/app:pull", c
    assert c["realm"] == a.url + "/token", c

    # a token of a third berth (same service and issuer, its own key): invalid
    third = token_server(server_factory, tmp_path, "c")
    foreign = get_token(third, ["repository:proj/app:pull"])
    r = AuthClient(b, "Bearer " + foreign).get("/v2/proj/app/manifests/v1")
    assert r.status == 401 and challenge(r)["error"] == "invalid_token", r

    # A's key, other claims: another audience, another issuer, expired -> invalid;
    # the unchanged claims re-signed with A's key -> still accepted (the check
    # is on the claims, not on re-signing)
    now = int(time.time())
    same = resign(tok, key)
    assert AuthClient(b, "Bearer " + same).get("/v2/proj/app/tags/list").status == 200
    for bad in (resign(tok, key, aud="another-service"),
                resign(tok, key, aud=["another-service", "x"]),
                resign(tok, key, iss="someone-else"),
                resign(tok, key, iat=now - 900, nbf=now - 900, exp=now - 300),
                resign(tok, key, nbf=now + 600, exp=now + 900)):
        r = AuthClient(b, "Bearer " + bad).get("/v2/proj/app/tags/list")
        assert r.status == 401 and challenge(r)["error"] == "invalid_token", (bad, r)
    # an access claim with "*" (distribution's wildcard) grants push too
    star = resign(tok, key, access=[{"type": "repository", "name": "proj/star",
                                     "actions": ["*"]}])
    AuthClient(b, "Bearer " + star).make_image("proj/star", tag="s")
    # aud as a list holding the service is fine
    r = AuthClient(b, "Bearer " + resign(tok, key, aud=["x", SERVICE])).get(
        "/v2/proj/app/tags/list")
    assert r.status == 200, r

    # the catalog needs a registry:catalog:* token; the external token decides
    r = alice.get("/v2/_catalog")
    assert r.status == 401 and challenge(r)["scope"] == "registry:catalog:*", r
    cat = AuthClient(b, "Bearer " + get_token(a, ["registry:catalog:*"]))
    assert cat.get("/v2/_catalog").json()["repositories"] == ["proj/app", "proj/star"]

    # the berth client: login against B follows the realm to A, then push/pull via B
    env = {"DOCKER_CONFIG": str(tmp_path / "berth-cfg")}
    r = berth("login", b.host, "-u", "alice", "--password-stdin", env=env,
              input=USERS["alice"] + "\n")
    assert "Login Succeeded" in r.stdout, r
    d, v1 = layout
    ref = "%s/proj/cli:v1" % b.host
    assert berth("push", "-q", "oci:%s:v1" % d, ref, env=env).stdout.strip() == v1["digest"]
    out = str(tmp_path / "pulled")
    berth("pull", "-q", ref, "oci:%s:v1" % out, env=env)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == v1["digest"]
    # a wrong password: login refused (A says no)
    r = berth("login", b.host, "-u", "alice", "--password-stdin", env=env, check=False,
              input="wrong\n")
    assert r.returncode != 0, r

    blog, alog = b.read_log(), a.read_log()
    assert re.search(r"PUT /v2/proj/cli/manifests/v1 201 .* alice$", blog, re.M), blog[-3000:]
    assert re.search(r"GET /token\?\S+ 200 .* alice$", alog, re.M), alog[-3000:]
    for secret in (tok, foreign, same, USERS["alice"]):
        assert secret not in blog and secret not in alog


def test_external_jwks_without_kid(server_factory, tmp_path):
    """A JWKS key without "kid" is trusted under its libtrust kid."""
    a = token_server(server_factory, tmp_path, "a")
    key = os.path.join(a.root, "token-key.pem")
    jwks = tmp_path / "nokid.jwks"
    jwks.write_text(jwks_for(key, None))
    b = server_factory(config="auth:\n  token:\n    realm: %s/token\n    service: %s\n"
                       "    issuer: %s\n    jwks: %s\n" % (a.url, SERVICE, ISSUER, jwks))
    tok = get_token(a, ["repository:p/q:pull,push"])
    c = AuthClient(b, "Bearer " + tok)
    c.make_image("p/q", tag="t")
    assert c.get("/v2/p/q/tags/list").json()["tags"] == ["t"]


# --------------------------------------------------------------------------
# htpasswd

def basic_server(server_factory, path):
    return server_factory(config="auth:\n  htpasswd:\n    path: %s\n  throttle:\n"
                          "    failures: 0\n" % path)


def wait_status(client, want, timeout=3.0):
    """GET /v2/ until it answers `want` (the file is checked at most once a second)."""
    deadline = time.time() + timeout
    while True:
        st = client.get("/v2/").status
        if st == want or time.time() > deadline:
            return st
        time.sleep(0.1)


def test_htpasswd_reload(server_factory, tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(bcrypt_line("alice", "old-pass"))
    srv = basic_server(server_factory, path)
    alice_old = AuthClient(srv, basic("alice", "old-pass"))
    alice_new = AuthClient(srv, basic("alice", "new-pass"))
    bob = AuthClient(srv, basic("bob", "bob-pass"))
    assert alice_old.get("/v2/").status == 200
    assert alice_old.get("/v2/").status == 200  # now in the verification cache
    regclient.assert_error(bob.get("/v2/"), 401, "UNAUTHORIZED")

    # append bob: accepted without a restart
    with open(path, "a") as f:
        f.write(bcrypt_line("bob", "bob-pass"))
    t0 = time.time()
    assert wait_status(bob, 200) == 200, srv.read_log()[-2000:]
    assert time.time() - t0 < 2.5
    assert alice_old.get("/v2/").status == 200

    # change alice's password in place (same size: only the mtime differs);
    # the cached old password must stop working
    before = os.stat(path)
    lines = path.read_text().splitlines(keepends=True)
    new = bcrypt_line("alice", "new-pass")
    assert len(new) == len(lines[0])
    with open(path, "r+") as f:
        f.write(new)
    after = os.stat(path)
    assert after.st_size == before.st_size and after.st_ino == before.st_ino
    t0 = time.time()
    assert wait_status(alice_old, 401) == 401, srv.read_log()[-2000:]
    assert time.time() - t0 < 2.5
    assert alice_new.get("/v2/").status == 200
    assert bob.get("/v2/").status == 200

    # replaced by rename (a new inode): bob removed
    tmp = tmp_path / "htpasswd.new"
    tmp.write_text(new)
    os.rename(tmp, path)
    assert wait_status(bob, 401) == 401
    assert alice_new.get("/v2/").status == 200

    # the file disappears: the last users stay, a warning is logged
    os.unlink(path)
    time.sleep(1.1)
    assert alice_new.get("/v2/").status == 200
    assert bob.get("/v2/").status == 401
    log = srv.read_log()
    assert "reloaded" in log
    assert re.search(r"htpasswd '%s'.*keeping the previous 1 users" % re.escape(str(path)), log), \
        log[-2000:]
    for secret in ("old-pass", "new-pass", "bob-pass", new.split(":", 1)[1].strip()):
        assert secret not in log, secret


def test_htpasswd_non_bcrypt_refused(server_factory, tmp_path):
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"sha-pass").digest()).decode()
    apr1 = openssl("passwd", "-apr1", "-salt", "abcdefgh", "apr-pass").decode().strip()
    assert apr1.startswith("$apr1$abcdefgh$")
    path = tmp_path / "htpasswd"
    path.write_text(bcrypt_line("alice", "alice-pass") + "sha:%s\napr:%s\n" % (sha, apr1))
    srv = basic_server(server_factory, path)

    assert AuthClient(srv, basic("alice", "alice-pass")).get("/v2/").status == 200
    for user, pw in (("sha", "sha-pass"), ("apr", "apr-pass")):
        r = AuthClient(srv, basic(user, pw)).get("/v2/")
        regclient.assert_error(r, 401, "UNAUTHORIZED")
        assert r.header("WWW-Authenticate") == 'Basic realm="berth"', r

    log = srv.read_log()
    p = re.escape(str(path))
    assert re.search(r"htpasswd '%s' line 2: user 'sha' has a \{SHA\} \(SHA-1\) hash; only "
                     r"bcrypt is accepted" % p, log), log
    assert re.search(r"htpasswd '%s' line 3: user 'apr' has a \$apr1\$ \(MD5\) hash; only "
                     r"bcrypt is accepted" % p, log), log
    for secret in (sha, sha[5:], apr1, apr1.split("$")[-1], "sha-pass", "apr-pass"):
        assert secret not in log, secret

"""berth login / logout and authenticated transfers against Debian's
docker-registry: htpasswd (Basic) and the Bearer token flow (a small token
server in this file signs ES256 JWTs with openssl).

Credentials live in Docker's config.json under $DOCKER_CONFIG (a temp dir).
"""
import base64
import crypt
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest

import imagegen
from test_client_common import berth, fails, reference_factory  # noqa: F401

USER, PASSWORD = "gallery", "s3cret-pass"


def bcrypt_line(user, password):
    return "%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("auth") / "layout")
    info = imagegen.write_oci_layout(d, {"v1": imagegen.build_image(seed="auth", layers=2,
                                                                     size=8 * 1024)})
    return d, info["v1"]


def config_json(cfgdir):
    p = os.path.join(cfgdir, "config.json")
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        return json.load(f)


def login_flow(host, image, cfgdir):
    """The common part of both auth tests."""
    d, v1 = image
    env = {"DOCKER_CONFIG": cfgdir}
    ref = "%s/gallery/ui:v1" % host
    # not logged in: refused, exit 1
    r = fails(["push", "-q", "oci:%s:v1" % d, ref], 1, env=env)
    assert "401" in r.stderr or "auth" in r.stderr.lower() or "login" in r.stderr.lower(), r.stderr
    # wrong password: exit 1, a clear message, nothing saved
    r = fails(["login", host, "-u", USER, "--password-stdin"], 1, env=env, input="wrong\n")
    assert host in r.stderr, r.stderr
    assert any(w in r.stderr.lower() for w in ("unauthorized", "denied", "incorrect", "invalid",
                                                "401", "credentials")), r.stderr
    assert "wrong" not in r.stderr and "wrong" not in r.stdout  # never echoed
    assert host not in config_json(cfgdir).get("auths", {})
    # right password
    r = berth("login", host, "-u", USER, "--password-stdin", env=env, input=PASSWORD + "\n")
    assert "Login Succeeded" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    auths = config_json(cfgdir)["auths"]
    assert base64.b64decode(auths[host]["auth"]).decode() == "%s:%s" % (USER, PASSWORD)
    # the saved login serves every command
    assert berth("push", "-q", "oci:%s:v1" % d, ref, env=env).stdout.strip() == v1["digest"]
    assert berth("tags", "%s/gallery/ui" % host, env=env).stdout.split() == ["v1"]
    assert berth("digest", ref, env=env).stdout.strip() == v1["digest"]
    out = os.path.join(cfgdir, "..", "pulled-%s" % host.replace(":", "_"))
    berth("pull", "-q", ref, "oci:%s:v1" % out, env=env)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == v1["digest"]
    berth("tag", "-q", ref, ":v2", env=env)
    berth("rm", "-q", "--all-tags", "%s/gallery/ui" % host, env=env)
    # logout removes it
    r = berth("logout", host, env=env)
    assert host in r.stdout
    assert host not in config_json(cfgdir).get("auths", {})
    fails(["tags", "%s/gallery/ui" % host], 1, env=env)
    # logging out twice is not an error (as docker logout): it says so
    r = berth("logout", host, env=env)
    assert "not logged in" in r.stderr.lower(), r.stderr


def test_login_htpasswd_basic(reference_factory, image, tmp_path):
    pw = tmp_path / "htpasswd"
    pw.write_text(bcrypt_line(USER, PASSWORD))
    ref = reference_factory("auth:\n  htpasswd:\n    realm: test\n    path: %s\n" % pw)
    cfgdir = str(tmp_path / "docker-config")
    os.makedirs(cfgdir)
    login_flow(ref.host, image, cfgdir)


def test_login_password_flag_and_other_entries_kept(reference_factory, image, tmp_path):
    pw = tmp_path / "htpasswd"
    pw.write_text(bcrypt_line(USER, PASSWORD))
    ref = reference_factory("auth:\n  htpasswd:\n    realm: test\n    path: %s\n" % pw)
    cfgdir = tmp_path / "cfg"
    cfgdir.mkdir()
    other = {"auths": {"ghcr.io": {"auth": base64.b64encode(b"a:b").decode()}},
             "credHelpers": {}, "psFormat": "keep-me"}
    (cfgdir / "config.json").write_text(json.dumps(other))
    env = {"DOCKER_CONFIG": str(cfgdir)}
    r = berth("login", ref.host, "-u", USER, "-p", PASSWORD, env=env)
    assert "Login Succeeded" in r.stdout
    cfg = config_json(str(cfgdir))
    assert cfg["psFormat"] == "keep-me" and "ghcr.io" in cfg["auths"] and ref.host in cfg["auths"]
    berth("logout", ref.host, env=env)
    cfg = config_json(str(cfgdir))
    assert "ghcr.io" in cfg["auths"] and ref.host not in cfg["auths"]
    # usage errors
    r = berth("login", ref.host, "-p", "x", "--password-stdin", "-u", USER, env=env, check=False)
    assert r.returncode == 2


# --------------------------------------------------------------------------
# Bearer tokens: a token server signing ES256 JWTs (openssl does the ECDSA)

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(sig):
    """ECDSA DER signature -> r||s, 32 bytes each (JWS ES256)."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        v = sig[i + 2:i + 2 + n]
        out += v.lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


class TokenServer:
    def __init__(self, workdir, service, issuer):
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=berth-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service, self.issuer = service, issuer
        self.requests = []
        ts = self

        class H(http.server.BaseHTTPRequestHandler):
            def _answer(self, user, pw, scopes, service):
                if (user, pw) != (USER, PASSWORD) or service != ts.service:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                tok = ts.sign(user, scopes)
                body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300,
                                   "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime())}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                user = pw = None
                a = self.headers.get("Authorization", "")
                if a.startswith("Basic "):
                    user, _, pw = base64.b64decode(a[6:]).decode().partition(":")
                ts.requests.append(("GET", q))
                self._answer(user, pw, q.get("scope", []), (q.get("service") or [""])[0])

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                q = urllib.parse.parse_qs(self.rfile.read(n).decode())
                ts.requests.append(("POST", q))
                self._answer((q.get("username") or [None])[0], (q.get("password") or [None])[0],
                             q.get("scope", []), (q.get("service") or [""])[0])

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def sign(self, user, scopes):
        access = []
        for sc in scopes:
            for s in sc.split(" "):
                parts = s.split(":")
                if len(parts) >= 3:
                    access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                   "actions": parts[-1].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": "%d-%d" % (now, len(self.requests)),
                  "access": access}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing.encode(), check=True, capture_output=True).stdout
        return signing + "." + b64url(der_to_raw(der))

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def token_server(tmp_path):
    ts = TokenServer(str(tmp_path), "berth-test-registry", "berth-test-issuer")
    yield ts
    ts.close()


def test_login_bearer_token_flow(reference_factory, token_server, image, tmp_path):
    ts = token_server
    ref = reference_factory(
        "auth:\n  token:\n    realm: http://127.0.0.1:%d/token\n    service: %s\n"
        "    issuer: %s\n    rootcertbundle: %s\n" % (ts.port, ts.service, ts.issuer, ts.cert))
    cfgdir = str(tmp_path / "docker-config")
    os.makedirs(cfgdir)
    login_flow(ref.host, image, cfgdir)
    assert ts.requests, "the token server was never asked"
    # scopes were asked for the repository
    scopes = " ".join(s for _, q in ts.requests for s in q.get("scope", []))
    assert "repository:gallery/ui:" in scopes, ts.requests

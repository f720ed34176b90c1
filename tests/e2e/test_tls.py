"""HTTPS: `--tls-self-signed` (curl --cacert, plain HTTP and TLS 1.1 refused,
skopeo and podman trusting ca.crt through a cert dir, no insecure flag),
certificate reload on SIGHUP with a keep-alive connection surviving it, and
mTLS (http.tls.clientcas) accepting a client certificate and refusing a
client without one. conftest's readiness probe speaks plain HTTP, so servers
here are started with start=False and polled over TLS.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

import imagegen
from clients import run, podman, skopeo  # noqa: F401  (fixtures)
from conftest import berth_bin


def start_tls(s, timeout=20):
    """conftest.Server.start, with the readiness probe over TLS."""
    args = [berth_bin(), "serve", "--addr", s.host, "--root", s.root]
    if s.config:
        cfg = os.path.join(s.root, "..", "config-%d.yml" % s.port)
        with open(cfg, "w") as f:
            f.write(s.config)
        args += ["--config", cfg]
    args += s.extra_args
    s.log = open(s.log_path, "ab")
    s.proc = subprocess.Popen(args, stdout=s.log, stderr=s.log, env=s.env)
    ctx = ssl._create_unverified_context()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if s.proc.poll() is not None:
            raise RuntimeError("berth exited %d:\n%s" % (s.proc.returncode, s.read_log()))
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost"):
                    return s
        except (OSError, ssl.SSLError):
            time.sleep(0.05)
    raise RuntimeError("berth did not accept TLS in time:\n" + s.read_log())


def openssl(*args, **kw):
    return run(["openssl"] + list(args), **kw)


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    return crt, key


def make_leaf(d, name, ca, serial, server=True):
    """A certificate for `name` signed by ca=(crt, key); returns (crt, key)."""
    key, csr, crt = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".crt"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        if server:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", str(serial),
            "-days", "2", "-extfile", ext, "-out", crt)
    return crt, key


def get(port, ctx, path="/v2/"):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def peer_serial(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            return int(t.getpeercert()["serialNumber"], 16)


@pytest.fixture(scope="module")
def selfsigned(tmp_path_factory):
    """One `--tls-self-signed 127.0.0.1,localhost` server for the module."""
    import conftest
    d = str(tmp_path_factory.mktemp("tls"))
    root = os.path.join(d, "root")
    os.makedirs(root)
    s = start_tls(conftest.Server(root, extra_args=["--tls-self-signed", "127.0.0.1,localhost"]))
    certdir = os.path.join(d, "certs")
    os.makedirs(certdir)
    shutil.copy(os.path.join(root, "tls", "ca.crt"), os.path.join(certdir, "ca.crt"))
    yield s, certdir
    s.stop()


def test_self_signed_curl_cacert(selfsigned):
    s, certdir = selfsigned
    ca = os.path.join(certdir, "ca.crt")
    for host in ("127.0.0.1", "localhost"):
        r = run(["curl", "-sS", "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                 "https://%s:%d/v2/" % (host, s.port)])
        assert r.stdout == "200"
    assert oct(os.stat(os.path.join(s.root, "tls", "server.key")).st_mode & 0o777) == "0o600"
    assert "ca.crt" in s.read_log()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_plain_http_and_old_tls_refused(selfsigned):
    s, certdir = selfsigned
    r = run(["curl", "-sS", "-m", "5", "http://127.0.0.1:%d/v2/" % s.port], check=False)
    assert r.returncode != 0
    # same client, only the version differs: 1.2 works, 1.1 is refused
    for version, ok in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_1, False)):
        ctx = ssl.create_default_context(cafile=os.path.join(certdir, "ca.crt"))
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = version
        if ok:
            assert get(s.port, ctx)[0] == 200
        else:
            with pytest.raises((ssl.SSLError, OSError)):
                get(s.port, ctx)
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % s.port, "-tls1_1",
                "-cipher", "DEFAULT:@SECLEVEL=0", check=False, input="", timeout=15)
    assert r.returncode != 0


def test_skopeo_and_podman_with_cert_dir(selfsigned, skopeo, podman, tmp_path):
    s, certdir = selfsigned
    layout = str(tmp_path / "layout")
    img = imagegen.build_image(seed="tls-skopeo", layers=2, size=16 * 1024)
    info = imagegen.write_oci_layout(layout, {"v1": img})["v1"]
    ref = "docker://%s/tls/app:v1" % s.host
    skopeo("copy", "--dest-cert-dir", certdir, "--preserve-digests", "oci:%s:v1" % layout, ref)
    out = str(tmp_path / "out")
    skopeo("copy", "--src-cert-dir", certdir, ref, "oci:%s:v1" % out)
    assert imagegen.read_oci_layout(out)["v1"]["digest"] == info["digest"]
    # without the CA the same copy fails verification
    r = skopeo("copy", ref, "oci:%s:v1" % str(tmp_path / "out2"), check=False)
    assert r.returncode != 0 and "certificate" in r.stderr

    pref = "%s/tls/app:v1" % s.host
    podman("pull", "--cert-dir", certdir, pref)
    new = "%s/tls/copy:v1" % s.host
    podman("tag", pref, new)
    podman("push", "--cert-dir", certdir, new)
    tags = json.loads(skopeo("list-tags", "--cert-dir", certdir, "docker://%s/tls/copy" % s.host)
                      .stdout)["Tags"]
    assert tags == ["v1"]
    podman("rmi", "-f", new, pref)
    podman("pull", "--cert-dir", certdir, new)


def test_sighup_reload_keeps_connections(server_factory, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d, "ca")
    crt, key = make_leaf(d, "one", ca, 1001)
    live_crt, live_key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    shutil.copy(crt, live_crt)
    shutil.copy(key, live_key)
    cfg = "http:\n  tls:\n    certificate: %s\n    key: %s\n" % (live_crt, live_key)
    s = start_tls(server_factory(config=cfg, start=False))
    assert peer_serial(s.port, ca[0]) == 1001

    ctx = ssl.create_default_context(cafile=ca[0])
    keep = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=10)
    keep.request("GET", "/v2/")
    assert keep.getresponse().read() == b"{}"
    sock = keep.sock

    # a broken file is refused and the old pair stays
    with open(live_crt, "w") as f:
        f.write("not a certificate\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "TLS reload failed" not in s.read_log() and time.time() < deadline:
        time.sleep(0.05)
    assert "TLS reload failed" in s.read_log()
    assert peer_serial(s.port, ca[0]) == 1001

    crt2, key2 = make_leaf(d, "two", ca, 2002)
    shutil.copy(key2, live_key)
    shutil.copy(crt2, live_crt)
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and peer_serial(s.port, ca[0]) != 2002:
        time.sleep(0.05)
    assert peer_serial(s.port, ca[0]) == 2002
    assert "TLS certificate and key reloaded" in s.read_log()
    # the connection opened before the reload is the same socket and still works
    keep.request("GET", "/v2/")
    r = keep.getresponse()
    assert r.status == 200 and r.read() == b"{}"
    assert keep.sock is sock
    keep.close()


def test_mtls(server_factory, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d, "server-ca")
    crt, key = make_leaf(d, "server", ca, 11)
    clients_ca = make_ca(d, "clients-ca")
    alice = make_leaf(d, "alice", clients_ca, 12, server=False)
    other_ca = make_ca(d, "other-ca")
    mallory = make_leaf(d, "mallory", other_ca, 13, server=False)
    cfg = ("http:\n  tls:\n    certificate: %s\n    key: %s\n    clientcas:\n      - %s\n"
           % (crt, key, clients_ca[0]))
    s = start_tls(server_factory(config=cfg, start=False))

    ctx = ssl.create_default_context(cafile=ca[0])
    ctx.load_cert_chain(*alice)
    assert get(s.port, ctx) == (200, b"{}")

    ctx = ssl.create_default_context(cafile=ca[0])
    status, body = get(s.port, ctx)
    assert status == 401
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"

    ctx = ssl.create_default_context(cafile=ca[0])
    ctx.load_cert_chain(*mallory)
    try:
        status, body = get(s.port, ctx)
    except (ssl.SSLError, OSError):
        status = None  # refusing in the handshake is fine too
    assert status in (None, 401)

    r = run(["curl", "-sS", "--cacert", ca[0], "--cert", alice[0], "--key", alice[1],
             "https://127.0.0.1:%d/v2/" % s.port])
    assert r.stdout == "{}"

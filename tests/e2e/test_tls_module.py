"""berth-tls.so (HTTPS and token authentication) is loaded by `berth serve`
only when the configuration needs it: without it next to the executable a
plain server still runs, while a TLS or token configuration stops at start
with one line naming the module; a stale module is refused the same way
(docs/internals.md, "Shape")."""
import os
import shutil
import socket
import subprocess
import time
import urllib.request

from conftest import berth_bin, free_port


def lone_copy(tmp_path, module=None):
    """The berth executable alone in a directory (no modules), optionally
    with `module` copied next to it as berth-tls.so."""
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy(berth_bin(), d / "berth")
    if module:
        shutil.copy(module, d / "berth-tls.so")
    return str(d / "berth")


def serve(berth, tmp_path, *extra):
    port = free_port()
    root = str(tmp_path / "root")
    args = [berth, "serve", "--addr", "127.0.0.1:%d" % port, "--root", root] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), port


def refused(berth, tmp_path, *extra):
    p, _ = serve(berth, tmp_path, *extra)
    out, err = p.communicate(timeout=30)
    assert p.returncode != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "berth-tls.so" in lines[0]
    return lines[0]


def test_tls_without_module_is_one_line(tmp_path):
    berth = lone_copy(tmp_path)
    line = refused(berth, tmp_path, "--tls-self-signed", "127.0.0.1")
    assert "HTTPS and token authentication need berth-tls.so" in line
    assert not os.path.exists(tmp_path / "root" / "tls")


def test_token_auth_without_module_is_one_line(tmp_path):
    berth = lone_copy(tmp_path)
    cfg = tmp_path / "config.yml"
    cfg.write_text("auth:\n  token:\n    builtin: true\n")
    refused(berth, tmp_path, "--config", str(cfg))


def test_stale_module_is_refused(tmp_path):
    # a shared object without the ops table stands for a module of another ABI
    client = os.path.join(os.path.dirname(berth_bin()), "berth-client.so")
    berth = lone_copy(tmp_path, client)
    line = refused(berth, tmp_path, "--tls-self-signed", "127.0.0.1")
    assert "berth_tls_module_v1" in line


def test_plain_serve_and_maintenance_need_no_module(tmp_path):
    berth = lone_copy(tmp_path)
    assert subprocess.run([berth, "version"], capture_output=True).returncode == 0
    p, port = serve(berth, tmp_path)
    try:
        deadline = time.time() + 20
        while True:
            assert p.poll() is None, p.communicate()[1]
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.05)
        with open("/proc/%d/maps" % p.pid) as f:
            maps = f.read()
        assert "libgnutls" not in maps and "berth-tls.so" not in maps
    finally:
        p.terminate()
        p.wait(timeout=15)
    root = str(tmp_path / "root")
    for cmd in (["du"], ["fsck"], ["gc", "--dry-run"]):
        r = subprocess.run([berth] + cmd + ["--root", root], capture_output=True, text=True)
        assert "berth-tls.so" not in r.stderr, r.stderr

"""Transfer feedback of the client (issue 4, "Transfers"): on a terminal a bar
per layer and a total with bytes, rate and ETA, redrawn in place; without a
terminal one plain line per blob; nothing with --quiet; JSON lines with --json.
The terminal case runs berth on a real pseudo-terminal (pty), as a person would.
"""
import json
import os
import pty
import select
import subprocess
import time

import imagegen
from conftest import berth_bin
from test_client_common import CLIENT_ENV, berth


def layout(tmp_path, seed):
    """An OCI layout (tag "latest") of a 3-layer, ~256 KiB-a-layer image from `seed`."""
    d = str(tmp_path / ("img%d" % seed))
    imagegen.write_oci_layout(d, {"latest": imagegen.build_image(seed=seed, layers=3,
                                                                 size=256 * 1024)})
    return d


def run_on_pty(args, timeout=60):
    """Run berth with stdout and stderr on a pseudo-terminal; return (rc, output)."""
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.update(CLIENT_ENV)
    env["TERM"] = "xterm"
    p = subprocess.Popen([berth_bin()] + args, stdin=slave, stdout=slave, stderr=slave, env=env,
                         close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    return rc, out.decode(errors="replace")


def test_terminal_shows_bars_total_rate_and_redraws(registry, tmp_path):
    img = layout(tmp_path, 1)
    rc, out = run_on_pty(["push", "oci:" + img, registry.host + "/progress/tty:v1"])
    assert rc == 0, out
    assert "total" in out, out
    assert "[" in out and "]" in out, "no bar drawn:\n" + out
    assert "B/s" in out, "no transfer rate:\n" + out
    assert "\x1b[" in out, "no in-place redraw (ANSI) on a terminal:\n" + out
    assert "pushed" in out
    assert "sha256:" in out  # the digest is the result


def test_no_terminal_plain_lines(registry, tmp_path):
    img = layout(tmp_path, 2)
    r = berth("push", "oci:" + img, registry.host + "/progress/plain:v1")
    text = r.stdout + r.stderr
    assert "\x1b[" not in text and "\r" not in text, text
    blob_lines = [l for l in r.stderr.splitlines() if ": pushed " in l]
    assert len(blob_lines) >= 2, r.stderr  # config and layers, one line each
    assert r.stdout.strip().startswith("sha256:")


def test_quiet_prints_only_the_result(registry, tmp_path):
    img = layout(tmp_path, 3)
    r = berth("push", "-q", "oci:" + img, registry.host + "/progress/quiet:v1")
    assert r.stderr == "", r.stderr
    assert r.stdout.strip().startswith("sha256:")


def test_json_events(registry, tmp_path):
    img = layout(tmp_path, 4)
    r = berth("push", "--json", "oci:" + img, registry.host + "/progress/json:v1")
    events = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    blobs = [e for e in events if e.get("event") == "blob"]
    assert blobs and all(e["action"] == "pushed" for e in blobs), events
    assert all(e["digest"].startswith("sha256:") and e["bytes"] >= 0 for e in blobs)
    assert events[-1]["event"] == "done" and events[-1]["digest"].startswith("sha256:")

"""Shared fixtures for berth's end-to-end tests.

Starts the real `berth serve` on a free loopback port with a temporary root,
waits for `GET /v2/` to answer 200, and stops it with SIGTERM on teardown,
checking that it exits 0 (under ASan a leak makes that fail). The binary is
$BERTH_BIN, else build-san/berth, else build/berth.
"""
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def berth_bin():
    env = os.environ.get("BERTH_BIN")
    if env:
        return env
    for b in ("build-san/berth", "build/berth"):
        p = os.path.join(ROOT, b)
        if os.path.exists(p):
            return p
    raise RuntimeError("no berth binary: run make first")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `berth serve` process. root survives restarts."""

    def __init__(self, root, config=None, extra_args=(), env=None):
        self.root = root
        self.config = config
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23")
        self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            self.env.update(env)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(root, "..", "berth-%d.log" % self.port)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    label = "berth"

    def command(self):
        """The argv that starts this server (subclasses run other registries)."""
        args = [berth_bin(), "serve", "--addr", self.host, "--root", self.root]
        if self.config:
            cfg = os.path.join(self.root, "..", "config-%d.yml" % self.port)
            with open(cfg, "w") as f:
                f.write(self.config)
            args += ["--config", cfg]
        return args + self.extra_args

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log,
                                     env=self.env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %d:\n%s" % (self.label, self.proc.returncode,
                                                               self.read_log()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v2/")
                # 401: an `auth` config answers, challenging (test_auth.py)
                if c.getresponse().status in (200, 401):
                    c.close()
                    return self
                c.close()
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("%s did not answer /v2/ in time:\n%s" % (self.label, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, check=True):
        """SIGTERM and wait; with check, the exit code must be 0."""
        if not self.proc:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -9
        self.proc = None
        self.log.close()
        if check and rc != 0:
            raise AssertionError(self.label + " exited %d:\n%s" % (rc, self.read_log()[-8000:]))
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        self.log.close()

    def restart(self):
        self.stop()
        self.port = free_port()
        return self.start()


@pytest.fixture
def server_factory():
    """Make servers with custom config/args; all stopped (and checked) at teardown."""
    made = []
    tmp = tempfile.TemporaryDirectory(prefix="berth-e2e-")

    def make(config=None, extra_args=(), env=None, start=True, root=None):
        r = root or os.path.join(tmp.name, "root%d" % len(made))
        os.makedirs(r, exist_ok=True)
        s = Server(r, config=config, extra_args=extra_args, env=env)
        made.append(s)
        return s.start() if start else s

    yield make
    errors = []
    for s in made:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    tmp.cleanup()
    if errors:
        raise AssertionError("\n".join(errors))


@pytest.fixture(scope="module")
def registry():
    """One server shared by a test module (fresh root per module)."""
    tmp = tempfile.TemporaryDirectory(prefix="berth-e2e-")
    r = os.path.join(tmp.name, "root")
    os.makedirs(r)
    s = Server(r).start()
    yield s
    try:
        s.stop()
    finally:
        tmp.cleanup()

"""Real container clients (skopeo, podman, docker) for berth's e2e tests.

Helpers:
  run(cmd, ...)      run a command with a timeout; on failure the assertion
                     message carries the command, exit code, stdout and stderr.
  Skopeo, Podman, Docker / Dockerd
                     each client isolated from the machine's own state
                     (storage, auth file, registries.d, data roots, sockets).
  ReferenceRegistry  Debian's `docker-registry` (distribution 2.8), with the
                     same interface as conftest.Server, to check that every
                     client test also passes against the reference
                     implementation.
  access_log(server, since)
                     the requests in a server's access log (method, path with
                     query if logged, status if logged).

Fixtures (import them into a test module to use them):
  target         the registry under test, module scope: conftest's `registry`
                 (berth), or with BERTH_E2E_TARGET=reference a docker-registry.
  target_factory a factory for more registries (berth via server_factory, or
                 reference), function scope.
  skopeo, podman, docker   one isolated client each, module scope.

A client's tests are skipped only when its binary is missing; CI installs all
of them, so there they really run.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Server

TARGET = os.environ.get("BERTH_E2E_TARGET", "berth")


# --------------------------------------------------------------------------
# running commands

class CommandFailed(AssertionError):
    pass


def _tail(s, n=6000):
    s = s or ""
    return s if len(s) <= n else "...\n" + s[-n:]


def run(cmd, timeout=120, env=None, check=True, input=None, cwd=None):
    """Run `cmd` (a list) and return CompletedProcess with text stdout/stderr.

    check=True: a non-zero exit raises CommandFailed with everything needed to
    understand it. A timeout always raises (the process group is killed).
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         env=full_env, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(input=input.encode() if isinstance(input, str) else input,
                                 timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        raise CommandFailed("timed out after %ss: %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            timeout, " ".join(cmd), _tail(out.decode(errors="replace")),
            _tail(err.decode(errors="replace"))))
    res = subprocess.CompletedProcess(cmd, p.returncode, out.decode(errors="replace"),
                                      err.decode(errors="replace"))
    res.duration = time.time() - t0
    if check and res.returncode != 0:
        raise CommandFailed("command failed (exit %d, %.1fs): %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            res.returncode, res.duration, " ".join(cmd), _tail(res.stdout), _tail(res.stderr)))
    return res


def need(binary, *alternatives):
    """Path of the first binary found, else skip the test (binary missing)."""
    for b in (binary,) + alternatives:
        if os.path.isabs(b) and os.access(b, os.X_OK):
            return b
        p = shutil.which(b)
        if p:
            return p
    pytest.skip("%s is not installed (apt-get install %s)" % (binary, {
        "skopeo": "skopeo", "podman": "podman", "dockerd": "docker.io", "docker": "docker.io",
        "docker-registry": "docker-registry"}.get(os.path.basename(binary), binary)))


def unmount_under(path):
    """Lazily unmount anything mounted below `path` (deepest first)."""
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mounts") as f:
            mps = [l.split()[1].replace("\\040", " ") for l in f]
    except OSError:
        return
    for mp in sorted((m for m in mps if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rmtree(path):
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# access logs

_REQ = re.compile(r'\b(GET|HEAD|POST|PUT|PATCH|DELETE)\s+(/v2/\S*)(?:\s+HTTP/[\d.]+"?)?(?:\s+(\d{3})\b)?')


class Request:
    def __init__(self, method, target, status):
        self.method = method
        self.target = target          # path, with the query if the server logs it
        self.path = target.split("?", 1)[0]
        self.query = target.split("?", 1)[1] if "?" in target else ""
        self.status = int(status) if status else None

    def __repr__(self):
        return "%s %s %s" % (self.method, self.target, self.status)


def log_mark(server):
    """A position in the server's log; pass to access_log(since=...)."""
    return len(server.read_log())


def access_log(server, since=0):
    """Requests logged since `since` (one access-log line per request).

    Tolerant of the format: it finds `METHOD /v2/...` on a line and a 3-digit
    status after it if there is one (after an optional `HTTP/1.1"`).
    """
    # The server writes a request's line once its last byte is sent: a test
    # that has just read the response can get here first. Wait until the
    # log stops growing (30 ms; at most 1 s).
    text, deadline = server.read_log(), time.monotonic() + 1.0
    while time.monotonic() < deadline:
        time.sleep(0.03)
        later = server.read_log()
        if later == text:
            break
        text = later
    out = []
    for line in text[since:].splitlines():
        m = _REQ.search(line)
        if m:
            out.append(Request(m.group(1), m.group(2), m.group(3)))
    return out


class Wiretap:
    """A TCP relay in front of a registry that records every HTTP request.

    Clients talk to tap.host instead of the registry; tap.requests lists
    Request(method, target with query, status) in the order seen, whatever
    the server logs. It sniffs request lines (`METHOD /v2/... HTTP/1.1`) in
    the client->server bytes and status lines in the server->client bytes of
    each connection (Go clients do not pipeline, so they pair up in order).
    """

    _REQLINE = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE) (/v2/[^ \r\n]*) HTTP/1\.[01]\r\n")
    _STATUS = re.compile(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ")

    def __init__(self, upstream_host):
        import threading
        self.upstream = upstream_host.rsplit(":", 1)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.requests = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        import select
        try:
            u = socket.create_connection((self.upstream[0], int(self.upstream[1])), timeout=30)
        except OSError:
            c.close()
            return
        mine = []           # this connection's requests, waiting for a status
        cbuf = sbuf = b""   # tails kept so a line split across reads is still seen
        try:
            while True:
                r, _, _ = select.select([c, u], [], [], 60)
                if not r:
                    break
                done = False
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        done = True
                        break
                    if s is c:
                        u.sendall(data)
                        buf = cbuf + data
                        for m in self._REQLINE.finditer(buf):
                            if m.end() <= len(cbuf):
                                continue  # seen in the previous read
                            req = Request(m.group(1).decode(), m.group(2).decode(errors="replace"), None)
                            mine.append(req)
                            with self.lock:
                                self.requests.append(req)
                        cbuf = buf[-4096:]
                    else:
                        c.sendall(data)
                        buf = sbuf + data
                        for m in self._STATUS.finditer(buf):
                            if m.end() <= len(sbuf) or m.group(1).startswith(b"1"):
                                continue  # seen already, or 100 Continue
                            for req in mine:
                                if req.status is None:
                                    req.status = int(m.group(1))
                                    break
                        sbuf = buf[-64:]
                if done:
                    break
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    def since(self, n):
        with self.lock:
            return list(self.requests[n:])

    def mark(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.closed = True
        self.lsock.close()


# --------------------------------------------------------------------------
# the reference registry (distribution 2.8, Debian's docker-registry)

REFERENCE_CONFIG = """\
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %(root)s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %(host)s
"""


class ReferenceRegistry(Server):
    """Debian's docker-registry behind conftest.Server's interface (start, stop,
    restart, host, url, root, read_log). `extra` is YAML appended to the config
    (auth: ...). Its exit code on SIGTERM is not ours to check."""

    label = "docker-registry"

    def __init__(self, root, extra=""):
        super().__init__(root, env={"OTEL_SDK_DISABLED": "true"})
        self.extra = extra
        self.log_path = os.path.join(root, "..", "reference-%d.log" % self.port)

    def command(self):
        binary = need("docker-registry", "/usr/bin/docker-registry")
        cfg = os.path.join(self.root, "..", "reference-%d.yml" % self.port)
        with open(cfg, "w") as f:
            f.write(REFERENCE_CONFIG % {"root": self.root, "host": self.host} + self.extra)
        return [binary, "serve", cfg]

    def stop(self, check=True):
        return super().stop(check=False)


@pytest.fixture(scope="module")
def target(request):
    """The registry the client tests talk to (berth unless BERTH_E2E_TARGET=reference)."""
    if TARGET == "reference":
        tmp = tempfile.mkdtemp(prefix="berth-ref-")
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        r = ReferenceRegistry(root).start()
        yield r
        r.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        yield request.getfixturevalue("registry")


@pytest.fixture
def target_factory(request):
    """make() -> another started registry of the same kind as `target`."""
    if TARGET != "reference":
        sf = request.getfixturevalue("server_factory")
        yield lambda: sf()
        return
    tmp = tempfile.mkdtemp(prefix="berth-ref-")
    made = []

    def make():
        root = os.path.join(tmp, "root%d" % len(made))
        os.makedirs(root)
        made.append(ReferenceRegistry(root))
        return made[-1].start()

    yield make
    for r in made:
        r.stop()
    shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# skopeo

SYSTEM_BIC = "/var/lib/containers/cache"


class Skopeo:
    """skopeo with its own registries.d, policy and auth file; plain HTTP to loopback."""

    def __init__(self, workdir):
        self.bin = need("skopeo")
        self.dir = workdir
        self.regd = os.path.join(workdir, "registries.d")
        os.makedirs(self.regd, exist_ok=True)
        self.policy = os.path.join(workdir, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        with open(os.path.join(workdir, "auth.json"), "w") as f:
            f.write('{"auths": {}}')
        self.env = {"REGISTRY_AUTH_FILE": os.path.join(workdir, "auth.json"),
                    "TMPDIR": workdir, "HOME": workdir}

        # c/image keeps, for root, a blob-info cache at a fixed path (no flag or
        # env moves it); it remembers where blobs were seen and drives mount
        # attempts. Our images have fixed digests, so give skopeo a cache of its
        # own: a private mount namespace with a temp dir bound over that path.
        self.wrap = []
        self.cache = os.path.join(workdir, "blob-info-cache")
        os.makedirs(self.cache, exist_ok=True)
        if os.geteuid() == 0 and shutil.which("unshare"):
            try:
                os.makedirs(SYSTEM_BIC, mode=0o700, exist_ok=True)
                w = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     'mount --bind "$0" ' + SYSTEM_BIC + ' && exec "$@"', self.cache]
                if run(w + ["true"], check=False, timeout=20).returncode == 0:
                    self.wrap = w
            except OSError:
                pass

    def __call__(self, *args, timeout=120, check=True):
        return run(self.wrap + [self.bin, "--registries.d", self.regd, "--policy", self.policy]
                   + list(args), timeout=timeout, env=self.env, check=check)

    def copy(self, src, dst, *extra, check=True):
        return self("copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dst,
                    check=check)

    def inspect(self, ref, raw=False, config=False, check=True):
        args = ["inspect", "--tls-verify=false"]
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        r = self(*(args + [ref]), check=check)
        if not check:
            return r
        return r.stdout if raw else json.loads(r.stdout)

    def list_tags(self, ref):
        return json.loads(self("list-tags", "--tls-verify=false", ref).stdout)

    def delete(self, ref, check=True):
        return self("delete", "--tls-verify=false", ref, check=check)


@pytest.fixture(scope="module")
def skopeo():
    tmp = tempfile.mkdtemp(prefix="berth-skopeo-")
    try:
        yield Skopeo(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# podman

class Podman:
    """Root podman with private storage (vfs), no systemd, file events.

    Flags: --root R --runroot RR --storage-driver vfs --cgroup-manager=cgroupfs
    --events-backend=file --tmpdir T; env TMPDIR, REGISTRY_AUTH_FILE,
    BUILDAH_ISOLATION=chroot (harmless when nothing is RUN);
    --tls-verify=false on registry commands (loopback, plain HTTP).
    """

    def __init__(self, workdir):
        self.bin = need("podman")
        self.dir = workdir
        for d in ("root", "runroot", "tmp", "vartmp"):
            os.makedirs(os.path.join(workdir, d), exist_ok=True)
        self.base = [self.bin, "--root", os.path.join(workdir, "root"),
                     "--runroot", os.path.join(workdir, "runroot"),
                     "--storage-driver", "vfs", "--cgroup-manager=cgroupfs",
                     "--events-backend=file", "--tmpdir", os.path.join(workdir, "tmp")]
        # containers.conf of our own, so /etc's (e.g. cgroup_manager=systemd) does not leak in
        self.conf = os.path.join(workdir, "containers.conf")
        with open(self.conf, "w") as f:
            f.write('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        with open(os.path.join(workdir, "auth.json"), "w") as f:
            f.write('{"auths": {}}')  # podman wants REGISTRY_AUTH_FILE to exist
        self.env = {"TMPDIR": os.path.join(workdir, "vartmp"),
                    "REGISTRY_AUTH_FILE": os.path.join(workdir, "auth.json"),
                    "CONTAINERS_CONF": self.conf,
                    "BUILDAH_ISOLATION": "chroot",
                    "HOME": workdir}

    def __call__(self, *args, timeout=120, check=True, cwd=None):
        return run(self.base + list(args), timeout=timeout, env=self.env, check=check, cwd=cwd)

    def image_id(self, ref):
        return self("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def close(self):
        self("rmi", "--all", "--force", check=False, timeout=60)
        rmtree(self.dir)


@pytest.fixture(scope="module")
def podman():
    tmp = tempfile.mkdtemp(prefix="berth-podman-")
    p = None
    try:
        p = Podman(tmp)
        yield p
    finally:
        if p:
            p.close()
        else:
            rmtree(tmp)


# --------------------------------------------------------------------------
# docker

DOCKERD_FLAGS = ["--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                 "--storage-driver=vfs", "--userland-proxy=false"]


class Dockerd:
    """Debian's dockerd without systemd, everything under one temp dir.

    dockerd --config-file EMPTY.json --data-root D --exec-root E --pidfile P -H unix://SOCK
            --iptables=false --ip-forward=false --ip-masq=false --bridge=none
            --storage-driver=vfs --userland-proxy=false
    dockerd 20.10 starts (and stops) its own containerd under E when none is
    given with --containerd. The CLI talks to it with DOCKER_HOST=unix://SOCK,
    its own DOCKER_CONFIG and DOCKER_BUILDKIT=0 (classic builder: COPY-only
    Dockerfiles need no container runtime and no network).
    """

    def __init__(self, workdir):
        self.dockerd = need("dockerd", "/usr/sbin/dockerd")
        # prefer Debian's CLI (same API version as its dockerd), else any docker
        self.cli = os.environ.get("BERTH_DOCKER_CLI") or need("/usr/bin/docker", "docker")
        self.dir = workdir
        self.sock = os.path.join(workdir, "docker.sock")
        self.log_path = os.path.join(workdir, "dockerd.log")
        self.cfg = os.path.join(workdir, "cli")
        os.makedirs(self.cfg, exist_ok=True)
        self.env = {"DOCKER_HOST": "unix://" + self.sock, "DOCKER_CONFIG": self.cfg,
                    "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false", "HOME": workdir}
        self.proc = None

    def start(self, timeout=60):
        d = self.dir
        # our own (empty) daemon.json, so /etc/docker/daemon.json cannot conflict
        conf = os.path.join(d, "daemon.json")
        with open(conf, "w") as f:
            f.write("{}\n")
        args = [self.dockerd, "--config-file", conf, "--data-root", os.path.join(d, "data"),
                "--exec-root", os.path.join(d, "exec"), "--pidfile", os.path.join(d, "docker.pid"),
                "-H", "unix://" + self.sock] + DOCKERD_FLAGS
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("DOCKER_HOST", None)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env,
                                     start_new_session=True)
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dockerd exited %d: %s\n%s" % (
                    self.proc.returncode, " ".join(args), _tail(self.read_log())))
            if os.path.exists(self.sock):
                last = run([self.cli, "info", "--format", "{{.ServerVersion}} {{.Driver}}"],
                           env=self.env, check=False, timeout=20)
                if last.returncode == 0:
                    self.version = last.stdout.strip()
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("dockerd did not answer `docker info` in %ss (%s)\n%s" % (
            timeout, last and last.stderr, _tail(self.read_log())))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def __call__(self, *args, timeout=180, check=True, cwd=None):
        try:
            return run([self.cli] + list(args), timeout=timeout, env=self.env, check=check, cwd=cwd)
        except CommandFailed as e:
            raise CommandFailed("%s\n--- dockerd log (tail):\n%s" % (e, _tail(self.read_log(), 3000))) from None

    def image_id(self, ref):
        return self("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # its containerd is in the same session: make sure nothing is left
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc = None
        self.log.close()


@pytest.fixture(scope="module")
def docker():
    tmp = tempfile.mkdtemp(prefix="berth-dockerd-")
    d = Dockerd(tmp)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        rmtree(tmp)

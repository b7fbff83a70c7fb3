"""Two ways to drive a real nonod for the escape suite, with one interface.

RootMode: a user-mode nonod run by root; the test talks to it directly and
workers run as root (no capabilities).
UserMode: a system-mode nonod (root) and a client running as an unprivileged
user the suite creates; workers are dropped to that user. The client is a
small relay process started with setpriv: it holds the daemon connection as
the user and forwards bytes and SCM_RIGHTS fds over a socketpair, so the test
process speaks JSON-RPC (and receives pty masters) as if connected directly,
while the daemon sees the user's SO_PEERCRED.

Both give: client(), run(), outside() (the same program, unsandboxed, as the
worker's uid), own() (chown a path to the worker's uid) and the daemon.
"""
import array
import base64
import grp
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from nonotest import Daemon, RawClient  # noqa: E402
from users import ensure_user  # noqa: E402

TEST_USER = "nono-e2e-esc"
CANARY_ENV = "NONO_ESCAPE_CANARY"
CANARY = "canary-7f3a9c-daemon-environment"
PATH_ENV = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]

RELAY = r"""
import array, os, select, socket, sys
d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
d.connect(sys.argv[1])
t = socket.socket(fileno=0)
peer = {d: t, t: d}
while True:
    ready, _, _ = select.select([d, t], [], [])
    for s in ready:
        data, anc, _, _ = s.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
        if not data:
            sys.exit(0)
        fds = array.array("i")
        for lvl, typ, c in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(c[:len(c) - len(c) % 4])
        anc_out = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)] if fds else []
        peer[s].sendmsg([data], anc_out)
        for fd in fds:
            os.close(fd)
"""


class RelayClient(RawClient):
    """RawClient over a socketpair to a relay running as another user."""

    def __init__(self, sock, proc, timeout=60):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.proc = proc
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def recv_with_fds(client):
    """Next message from a client plus any fds that came with it."""
    fds = array.array("i")
    while b"\n" not in client.buf:
        data, anc, _, _ = client.sock.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        for lvl, typ, c in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(c[:len(c) - len(c) % 4])
        if not data:
            return None, list(fds)
        client.buf += data
    line, client.buf = client.buf.split(b"\n", 1)
    return json.loads(line), list(fds)


class Mode:
    """Common parts; subclasses set name, uid, gid, groups and start the daemon."""
    name = "?"

    def __init__(self):
        self.d = None

    def close(self):
        if self.d is not None:
            self.d.close()

    def own(self, path):
        os.chown(path, self.uid, self.gid)
        return path

    def mkdir(self, *parts, mode=0o755):
        p = os.path.join(self.d.dir, *parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return self.own(p)

    def write(self, path, data, mode=0o600):
        with open(path, "w") as f:
            f.write(data)
        os.chmod(path, mode)
        return self.own(path)

    def run(self, client, argv, cwd, policy=None, wait_ms=90000, **params):
        """A pipe-mode session to its end: (final, stdout bytes, stderr bytes)."""
        p = {"argv": argv, "cwd": cwd, "stdio": {"mode": "pipe"}, "environ": PATH_ENV,
             "timeout_ms": wait_ms}
        if policy is not None:
            p["policy"] = policy
        p.update(params)
        created = client.call("session.create", p)
        final = client.call("session.wait", {"id": created["id"], "timeout_ms": wait_ms + 30000})
        out = client.call("session.output", {"id": created["id"]})
        return (final, base64.b64decode(out["stdout"]["base64"]),
                base64.b64decode(out["stderr"]["base64"]))

    def outside_argv(self, argv):
        return argv

    def outside(self, argv, env=None, as_root=False, **kw):
        """The same program outside any session, as the worker's uid (or root)."""
        e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        e.update(env or {})
        full = argv if as_root else self.outside_argv(argv)
        return subprocess.run(full, capture_output=True, timeout=60, env=e, **kw)

    def popen_outside(self, argv, **kw):
        return subprocess.Popen(self.outside_argv(argv), env={"PATH": "/usr/bin:/bin"},
                                start_new_session=True, **kw)


class RootMode(Mode):
    name = "root"

    def __init__(self):
        super().__init__()
        self.uid, self.gid = 0, 0
        self.d = Daemon(config="shutdown_grace = 2s\n", env={CANARY_ENV: CANARY})

    def client(self):
        return self.d.client(timeout=120)


class UserMode(Mode):
    name = "user"

    def __init__(self):
        super().__init__()
        try:
            grp.getgrnam("nono")
        except KeyError:
            subprocess.run(["groupadd", "--system", "nono"], check=True)
        pw = ensure_user(TEST_USER, ["nono"])
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.d = Daemon(mode="--system", config="shutdown_grace = 2s\n", env={CANARY_ENV: CANARY})
        os.chmod(self.d.dir, 0o755)

    def outside_argv(self, argv):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", *argv]

    def client(self):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = subprocess.Popen(self.outside_argv([sys.executable, "-c", RELAY, self.d.socket]),
                                stdin=theirs.fileno(), env={"PATH": "/usr/bin:/bin"},
                                start_new_session=True)
        theirs.close()
        c = RelayClient(mine, proc, timeout=120)
        c.hello()
        return c


def make_mode(name):
    return RootMode() if name == "root" else UserMode()


def have_cc():
    return shutil.which("cc") is not None


def compile_c(src, out, shared=False):
    """Compile a small C program for an attack; returns the path."""
    d = tempfile.mkdtemp(prefix="nono-esc-cc-")
    try:
        c = os.path.join(d, "x.c")
        with open(c, "w") as f:
            f.write(src)
        args = ["cc", "-O0", "-o", out, c] + (["-shared", "-fPIC"] if shared else [])
        subprocess.run(args, check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


__all__ = ["make_mode", "recv_with_fds", "PATH_ENV", "CANARY", "CANARY_ENV"]

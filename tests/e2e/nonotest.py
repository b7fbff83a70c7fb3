"""Shared fixture for end-to-end tests: a real nonod on a temporary socket
and state directory, raw JSON-RPC clients, and cleanup even on failure.

Binaries come from the environment meson sets (NONOD, NONOCTL); a test that
cannot run here calls skip() which exits 77 (meson's SKIP) with a reason.
"""
import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

NONOD = os.environ.get("NONOD", "")
NONOCTL = os.environ.get("NONOCTL", "")


def _fixture_dir():
    """Test fixtures live outside /tmp, /run and /var/tmp: sessions in strict
    mode hide those directories (their unix sockets), and the attack tests must
    exercise Landlock on the fixtures, not find them hidden."""
    base = os.environ.get("NONO_E2E_TMP") or ("/var/lib/nono-e2e" if os.geteuid() == 0 else "")
    if not base:
        return None
    try:
        os.makedirs(base, mode=0o755, exist_ok=True)
        os.chmod(base, 0o755)
        return base
    except OSError:
        return None


tempfile.tempdir = _fixture_dir()


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


_open_daemons = set()


@atexit.register
def _close_open_daemons():
    """Whatever a test left open (it failed, or the run was stopped)."""
    for d in list(_open_daemons):
        d.close()


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so a
    test killed by a timeout never leaves a nonod behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Daemon:
    """A nonod process with its own socket, state dir and log file."""

    def __init__(self, config=None, args=(), env=None, start=True, mode="--user"):
        self.dir = tempfile.mkdtemp(prefix="nono-e2e-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "run", "nonod.sock")
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "nonod.conf")
        self.log = os.path.join(self.dir, "nonod.log")
        with open(self.config, "w") as f:
            f.write(config or "")
        self.args = [NONOD, mode, "--socket", self.socket, "--state-dir", self.state,
                     "--config", self.config, "-v", *args]
        self.env = dict(os.environ, **(env or {}))
        self.env.pop("NOTIFY_SOCKET", None)
        self.proc = None
        _open_daemons.add(self)
        if start:
            self.start()

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf,
                                     env=self.env, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nonod exited with {self.proc.returncode}:\n{self.logtext()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("nonod did not start listening:\n" + self.logtext())

    def logtext(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def close(self):
        _open_daemons.discard(self)
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, hello=True, timeout=10):
        c = RawClient(self.socket, timeout)
        if hello:
            c.hello()
        return c


class RawClient:
    """A JSON-RPC client speaking raw bytes, so tests control every byte."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv(self):
        """Next message, or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, method, params=None):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.next_id += 1
        self.send(msg)
        while True:
            r = self.recv()
            if r is None or "id" in r:
                return r

    def call(self, method, params=None):
        r = self.request(method, params)
        if r is None:
            raise AssertionError(f"{method}: connection closed")
        if "error" in r:
            raise RpcError(r["error"])
        return r["result"]

    def hello(self):
        return self.call("daemon.hello", {"protocol": [1], "client": "e2e/1"})


class RpcError(Exception):
    def __init__(self, err):
        super().__init__(f"{err.get('code')} {err.get('message')}: {err.get('data')}")
        self.code = err.get("code")
        self.kind = (err.get("data") or {}).get("kind")
        self.field = (err.get("data") or {}).get("field")
        self.detail = (err.get("data") or {}).get("detail")


def main():
    """Run the calling module's tests; exit 77 when every test skipped."""
    # meson stops a test that times out with SIGTERM: clean up on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not NONOD or not os.access(NONOD, os.X_OK):
        skip("NONOD does not name the built nonod")
    warnings.simplefilter("ignore", ResourceWarning)
    prog = unittest.main(exit=False, verbosity=2,
                         testRunner=unittest.TextTestRunner(stream=sys.stdout, verbosity=2))
    r = prog.result
    print(f"{r.testsRun - len(r.failures) - len(r.errors) - len(r.skipped)} passed, "
          f"{len(r.failures) + len(r.errors)} failed, {len(r.skipped)} skipped")
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(77)
    sys.exit(0)

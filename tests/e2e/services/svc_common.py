"""Helpers shared by the service-integration tests: a private temp tree,
a nonod child that is always reaped, and a line-oriented JSON-RPC client.

Every wait has an upper bound so a broken daemon fails the test instead of
hanging it; the bounds are hang guards, not timing assertions.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HANG_GUARD = 30.0  # seconds; only reached when something is broken
SKIP = 77


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    raise SystemExit(1)


def skip(msg):
    print("SKIP: " + msg)
    raise SystemExit(SKIP)


class TempTree:
    """A private directory tree and an environment that points every XDG
    and HOME lookup into it, so nothing outside is read or written."""

    def __init__(self, prefix):
        self.root = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.root, 0o700)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                                 "LISTEN_FDNAMES", "WATCHDOG_USEC",
                                 "WATCHDOG_PID", "NONO_SOCKET",
                                 "JOURNAL_STREAM")}
        for name, sub in (("HOME", "home"), ("XDG_RUNTIME_DIR", "run"),
                          ("XDG_STATE_HOME", "state-home"),
                          ("XDG_CONFIG_HOME", "config-home")):
            d = self.path(sub)
            os.makedirs(d, mode=0o700)
            self.env[name] = d

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Daemon:
    """A child process in its own process group, killed and reaped on
    cleanup whatever happened before."""

    def __init__(self, argv, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=HANG_GUARD * 2)
        except subprocess.TimeoutExpired:
            fail("nonod did not exit after SIGTERM")

    def terminate_and_wait(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.log.close()


def wait_for_path(path, daemon):
    deadline = time.monotonic() + HANG_GUARD
    while not os.path.exists(path):
        if not daemon.alive():
            fail("process exited (%s) before %s appeared:\n%s"
                 % (daemon.proc.returncode, path, daemon.log_text()))
        if time.monotonic() > deadline:
            fail("%s did not appear" % path)
        time.sleep(0.05)


class Client:
    """Newline-delimited JSON-RPC 2.0 over a Unix stream socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(HANG_GUARD)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_response(self, want_id):
        """The next message carrying want_id; notifications are skipped."""
        while True:
            line = self.read_line()
            if line is None:
                fail("connection closed while waiting for id %r" % (want_id,))
            try:
                msg = json.loads(line)
            except ValueError:
                fail("daemon sent a line that is not JSON: %r" % line[:200])
            if msg.get("jsonrpc") != "2.0":
                fail("reply without jsonrpc 2.0: %r" % msg)
            if "id" in msg and msg["id"] == want_id:
                return msg

    def call(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.read_response(rid)

    def close(self):
        self.sock.close()


HELLO = {"protocol": [1], "client": "test/1"}


def expect_result(msg, what):
    if "error" in msg or not isinstance(msg.get("result"), dict):
        fail("%s: expected a result object, got %r" % (what, msg))
    return msg["result"]


def expect_error(msg, code, kind, what):
    err = msg.get("error")
    if not isinstance(err, dict) or "result" in msg:
        fail("%s: expected error %d, got %r" % (what, code, msg))
    if err.get("code") != code:
        fail("%s: expected code %d, got %r" % (what, code, err))
    data = err.get("data")
    if not isinstance(data, dict) or data.get("kind") != kind:
        fail("%s: expected error.data.kind %r, got %r" % (what, kind, err))


def hello_and_status(client, what):
    """daemon.hello then daemon.status; checks both answers' shape."""
    res = expect_result(client.call("daemon.hello", HELLO), what + " hello")
    if res.get("protocol") != 1:
        fail("%s: hello chose protocol %r, want 1" % (what, res.get("protocol")))
    if not isinstance(res.get("daemon"), str) or not res["daemon"]:
        fail("%s: hello has no daemon version: %r" % (what, res))
    if not isinstance(res.get("features"), list):
        fail("%s: hello has no features list: %r" % (what, res))
    if not isinstance(res.get("limits"), dict):
        fail("%s: hello has no limits object: %r" % (what, res))
    return expect_result(client.call("daemon.status"), what + " status")

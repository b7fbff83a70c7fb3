#!/usr/bin/env python3
"""Wire protocol v1 against a real nonod: every bad input gets a clear
JSON-RPC error, and the daemon keeps serving everyone else."""
import array
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

import nonotest
from nonotest import Daemon, RawClient, RpcError

E_PARSE, E_INVALID_REQUEST, E_METHOD_NOT_FOUND, E_INVALID_PARAMS = -32700, -32600, -32601, -32602
E_HELLO_REQUIRED, E_UNSUPPORTED_PROTOCOL, E_TOO_LARGE = -32001, -32002, -32010


class ProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(config="request_timeout = 1s\n")

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.assertTrue(self.d.alive(), self.d.logtext())

    def tearDown(self):
        # Whatever a test did, the daemon still serves a fresh client.
        c = self.d.client()
        self.assertEqual(c.call("daemon.status")["protocol"], 1)
        c.close()

    def error_of(self, client, raw):
        client.send_raw(raw)
        r = client.recv()
        self.assertIsNotNone(r, f"connection closed after {raw[:60]!r}")
        self.assertIn("error", r, r)
        self.assertEqual(r["jsonrpc"], "2.0")
        return r

    # --- handshake --------------------------------------------------------

    def test_calls_before_hello_are_refused(self):
        c = self.d.client(hello=False)
        r = c.request("daemon.status")
        self.assertEqual(r["error"]["code"], E_HELLO_REQUIRED)
        self.assertEqual(r["error"]["data"]["kind"], "hello_required")
        self.assertEqual(r["id"], 1)
        c.hello()  # the connection is still usable
        self.assertEqual(c.call("daemon.status")["protocol"], 1)

    def test_hello_negotiates_highest_common_version(self):
        c = self.d.client(hello=False)
        r = c.call("daemon.hello", {"protocol": [7, 1, 3], "client": "x/1"})
        self.assertEqual(r["protocol"], 1)
        self.assertIn("features", r)
        self.assertEqual(r["limits"]["max_message"], 1 << 20)
        self.assertEqual(r["peer"]["uid"], os.getuid())

    def test_unsupported_protocol_lists_supported(self):
        c = self.d.client(hello=False)
        for versions in ([99], [], [0, -1]):
            with self.assertRaises(RpcError) as e:
                c.call("daemon.hello", {"protocol": versions})
            self.assertEqual(e.exception.code, E_UNSUPPORTED_PROTOCOL)
            self.assertEqual(e.exception.kind, "unsupported_protocol")
            self.assertIn("1", e.exception.detail)

    def test_hello_params_are_checked(self):
        c = self.d.client(hello=False)
        cases = [
            ({}, "protocol"),
            ({"protocol": "1"}, "protocol"),
            ({"protocol": [1.5]}, "protocol[0]"),
            ({"protocol": [1], "client": 5}, "client"),
            ({"protocol": [1], "client": "x" * 200}, "client"),
            ({"protocol": [1], "colour": "red"}, "colour"),
        ]
        for params, field in cases:
            with self.subTest(params=params):
                with self.assertRaises(RpcError) as e:
                    c.call("daemon.hello", params)
                self.assertEqual(e.exception.code, E_INVALID_PARAMS)
                self.assertEqual(e.exception.field, field)

    def test_hello_twice_is_refused(self):
        c = self.d.client()
        with self.assertRaises(RpcError) as e:
            c.hello()
        self.assertEqual(e.exception.code, E_INVALID_REQUEST)

    def test_status_takes_no_params(self):
        c = self.d.client()
        with self.assertRaises(RpcError) as e:
            c.call("daemon.status", {"verbose": True})
        self.assertEqual(e.exception.code, E_INVALID_PARAMS)
        self.assertEqual(e.exception.field, "verbose")

    # --- envelope ---------------------------------------------------------

    def test_malformed_json(self):
        c = self.d.client()
        for raw in [b"not json\n", b"{\n", b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"} x\n',
                    b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}{}\n', b"\xff\xfe\n",
                    b"\n", b"[" * 10000 + b"\n"]:
            with self.subTest(raw=raw[:40]):
                r = self.error_of(c, raw)
                self.assertIn(r["error"]["code"], (E_PARSE, E_INVALID_REQUEST))
                self.assertIsNone(r["id"])
        self.assertEqual(c.call("daemon.status")["protocol"], 1)

    def test_embedded_nul_is_refused(self):
        c = self.d.client()
        r = self.error_of(c, b'{"jsonrpc":"2.0","id":1,"method":"daemon.st\x00atus"}\n')
        self.assertIn(r["error"]["code"], (E_PARSE, E_INVALID_REQUEST))

    def test_non_objects_and_batches(self):
        c = self.d.client()
        for raw in [b"42\n", b'"str"\n', b"null\n", b"true\n",
                    b'[{"jsonrpc":"2.0","id":1,"method":"daemon.status"}]\n']:
            with self.subTest(raw=raw):
                r = self.error_of(c, raw)
                self.assertEqual(r["error"]["code"], E_INVALID_REQUEST)
                self.assertEqual(r["error"]["data"]["kind"], "invalid_request")

    def test_bad_envelope_members(self):
        c = self.d.client()
        base = {"jsonrpc": "2.0", "id": 9, "method": "daemon.status"}
        cases = [
            ({"jsonrpc": None}, "jsonrpc"), ({"jsonrpc": "1.0"}, "jsonrpc"),
            ({"jsonrpc": 2}, "jsonrpc"), ({"method": None}, "method"),
            ({"method": 5}, "method"), ({"method": ""}, "method"),
            ({"id": {}}, "id"), ({"id": []}, "id"), ({"id": 1.5}, "id"), ({"id": True}, "id"),
            ({"params": [1, 2]}, "params"), ({"params": "x"}, "params"),
        ]
        for change, field in cases:
            msg = dict(base)
            for k, v in change.items():
                if v is None:
                    del msg[k]
                else:
                    msg[k] = v
            with self.subTest(msg=msg):
                r = self.error_of(c, json.dumps(msg).encode() + b"\n")
                self.assertEqual(r["error"]["code"], E_INVALID_REQUEST, r)
                self.assertEqual(r["error"]["data"].get("field"), field, r)

    def test_string_and_null_ids_are_echoed(self):
        c = self.d.client()
        for ident in ["abc", "", 0, -5, 2**53, None]:
            c.send({"jsonrpc": "2.0", "id": ident, "method": "daemon.status"})
            r = c.recv()
            self.assertEqual(r["id"], ident)
            self.assertIn("result", r)

    def test_unknown_method(self):
        c = self.d.client()
        with self.assertRaises(RpcError) as e:
            c.call("daemon.shutdown_everything")
        self.assertEqual(e.exception.code, E_METHOD_NOT_FOUND)
        self.assertEqual(e.exception.kind, "method_not_found")

    def test_notifications_get_no_answer(self):
        c = self.d.client()
        c.send({"jsonrpc": "2.0", "method": "daemon.status"})
        c.send({"jsonrpc": "2.0", "method": "no.such.method"})
        r = c.request("daemon.status")
        self.assertEqual(r["id"], c.next_id - 1)  # the first message back answers the request

    def test_crlf_and_pipelining(self):
        c = self.d.client()
        c.send_raw(b"".join(
            json.dumps({"jsonrpc": "2.0", "id": i, "method": "daemon.status"}).encode() + b"\r\n"
            for i in range(100, 150)))
        self.assertEqual([c.recv()["id"] for _ in range(50)], list(range(100, 150)))

    def test_message_split_byte_by_byte(self):
        c = self.d.client()
        for b in json.dumps({"jsonrpc": "2.0", "id": 77, "method": "daemon.status"}).encode() + b"\n":
            c.send_raw(bytes([b]))
        self.assertEqual(c.recv()["id"], 77)

    # --- limits and misbehaving clients -------------------------------------

    def test_oversize_message_is_answered_then_closed(self):
        for tail in (b"", b"\n"):
            c = self.d.client()
            big = b'{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":{"x":"' + \
                b"a" * (1 << 20) + b'"}}' + tail
            try:
                c.send_raw(big)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.recv()
            self.assertEqual(r["error"]["code"], E_TOO_LARGE)
            self.assertEqual(r["error"]["data"]["kind"], "message_too_large")
            self.assertIsNone(c.recv())  # then the daemon closes: framing is lost

    def test_half_message_then_stall_is_timed_out(self):
        stalled = self.d.client()
        stalled.send_raw(b'{"jsonrpc":"2.0","id":1,"meth')
        # Others are served meanwhile.
        other = self.d.client()
        self.assertEqual(other.call("daemon.status")["protocol"], 1)
        stalled.sock.settimeout(30)
        self.assertIsNone(stalled.recv(), "a stalled half message must be dropped")
        self.assertIn("incomplete message timed out", self.d.logtext())

    def test_disconnect_mid_request(self):
        for raw in [b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}\n',
                    b'{"jsonrpc":"2.0","id":1,"meth']:
            for _ in range(50):
                c = self.d.client()
                c.send_raw(raw)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()  # RST if data is unread
        self.assertTrue(self.d.alive())

    def test_client_that_never_reads(self):
        lazy = self.d.client()
        lazy.sock.setblocking(False)
        req = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}).encode() + b"\n"
        sent = 0
        chunk = req * 2000
        # Keep writing until the daemon stops reading us: no progress for 2 s.
        deadline = time.monotonic() + 60
        stalled_since = None
        while time.monotonic() < deadline:
            try:
                sent += lazy.sock.send(chunk)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 2:
                    break
                time.sleep(0.05)
        # It read far beyond what socket buffers hold, then paused at max_output
        # (4 MiB of queued answers, about 700 KB of requests).
        self.assertGreater(sent, 512 << 10)
        # Everyone else is still served promptly.
        other = self.d.client()
        for _ in range(20):
            self.assertEqual(other.call("daemon.status")["protocol"], 1)
        lazy.close()

    def test_thousand_concurrent_clients(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 2200:
            self.skipTest("RLIMIT_NOFILE hard limit below 2200")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))
        clients = []
        try:
            for _ in range(1000):
                clients.append(self.d.client(hello=False))
            hello = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "daemon.hello",
                                "params": {"protocol": [1]}}).encode() + b"\n"
            status = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "daemon.status"}).encode() + b"\n"
            for c in clients:
                c.send_raw(hello + status)
            counts = []
            for c in clients:
                self.assertEqual(c.recv()["id"], 1)
                counts.append(c.recv()["result"]["clients"])
            self.assertGreaterEqual(max(counts), 1000)
        finally:
            for c in clients:
                c.close()

    def test_threads_hammering(self):
        errors = []

        def worker():
            try:
                c = self.d.client()
                for _ in range(200):
                    c.call("daemon.status")
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        ts = [threading.Thread(target=worker) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])

    # --- file descriptors ---------------------------------------------------

    def test_unclaimed_fds_are_closed(self):
        c = self.d.client()
        r, w = os.pipe()
        msg = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "daemon.status"}).encode() + b"\n"
        c.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))])
        os.close(w)
        self.assertEqual(c.recv()["id"], 5)
        # The daemon dropped its copy of the write end: reading sees EOF, not a hang.
        os.set_blocking(r, False)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.assertEqual(os.read(r, 1), b"")
                break
            except BlockingIOError:
                self.assertLess(time.monotonic(), deadline, "daemon kept the passed fd")
                time.sleep(0.05)
        os.close(r)

    def test_too_many_fds_closes_connection(self):
        c = self.d.client()
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(40)]
        msg = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "daemon.status"}).encode() + b"\n"
        try:
            c.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            self.assertIsNone(c.recv())
        finally:
            for fd in fds:
                os.close(fd)
        self.assertIn("too many file descriptors", self.d.logtext())


class FuseFdTest(unittest.TestCase):
    """A client passes nonod a descriptor of a file on its own FUSE file
    system whose server never answers FLUSH: every close() of it waits for
    that server. nonod closed passed descriptors on its event loop, so one
    request carrying one such fd froze nonod for everyone. Now clients'
    descriptors are closed on a thread per uid, a FUSE file is refused as
    it arrives (naming why), and a uid whose closes are held passes no
    more. (The server is made by root here; fusermount gives users the
    same.)"""

    def setUp(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("mounting a FUSE file system needs root and /dev/fuse")
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.d = Daemon(env={"ASAN_OPTIONS": asan})
        self.addCleanup(self.d.close)  # last: after the server is gone
        self.mnt = os.path.join(self.d.dir, "fuse")
        os.mkdir(self.mnt)
        self.fds = []
        self.addCleanup(self.close_fds)
        here = os.path.dirname(os.path.abspath(__file__))
        self.srv = subprocess.Popen([sys.executable, os.path.join(here, "fuse_noflush.py"),
                                     self.mnt], stdout=subprocess.PIPE)
        self.addCleanup(lambda: subprocess.run(["umount", "-l", self.mnt], check=False))
        self.addCleanup(lambda: (self.srv.kill(), self.srv.wait()))  # first: aborts the flushes
        if self.srv.stdout.readline() != b"mounted\n":
            self.skipTest("cannot mount a FUSE file system here")

    def close_fds(self):
        for f in self.fds:
            try:
                os.close(f)
            except OSError:  # ENOTCONN: the flush of an aborted connection
                pass

    def fuse_fd(self):
        f = os.open(os.path.join(self.mnt, "f"), os.O_WRONLY | os.O_CLOEXEC)
        self.fds.append(f)  # our own close waits too, until the server is gone
        return f

    def send_with_fd(self, c, req, fd):
        socket.send_fds(c.sock, [json.dumps(req).encode() + b"\n"], [fd])
        return c.recv()

    def assert_answering(self):
        c = self.d.client(timeout=10)
        self.assertIn("version", c.call("daemon.status"))
        c.close()

    def test_fuse_fd_with_any_request(self):
        c = self.d.client()
        m = self.send_with_fd(c, {"jsonrpc": "2.0", "id": 1, "method": "daemon.status"},
                              self.fuse_fd())
        self.assertIn("result", m)
        self.assert_answering()  # the previous code: no answer at all

    def test_fuse_fd_as_session_stdio(self):
        c = self.d.client()
        f = self.fuse_fd()
        m = self.send_with_fd(c, {"jsonrpc": "2.0", "id": 2, "method": "session.create",
                                  "params": {"argv": ["true"], "cwd": "/",
                                             "stdio": {"mode": "fds", "fds": [0, 0, 0]}}}, f)
        self.assertEqual(m["error"]["data"]["kind"], "invalid_params", m)
        self.assertEqual(m["error"]["data"]["field"], "fds", m)
        self.assertIn("FUSE", m["error"]["data"]["detail"])
        self.assert_answering()
        # Control: an ordinary file as stdio is taken.
        with open(os.path.join(self.d.dir, "out"), "w") as out:
            m = self.send_with_fd(c, {"jsonrpc": "2.0", "id": 3, "method": "session.create",
                                      "params": {"argv": ["true"], "cwd": "/",
                                                 "stdio": {"mode": "fds", "fds": [0, 0, 0]}}},
                                  out.fileno())
        self.assertIn("result", m, m)

    def test_held_closes_stop_that_uid_passing_fds(self):
        """Every close of these waits: after 64 of them this uid's
        descriptors are dropped by the kernel unopened (its connection is
        closed, saying why), while nonod keeps answering."""
        f = self.fuse_fd()
        c = self.d.client()
        for i in range(70):
            m = self.send_with_fd(c, {"jsonrpc": "2.0", "id": 10 + i, "method": "daemon.status"},
                                  f)
            if m is None:
                break
        self.assertIsNone(m, "the connection was never closed")
        self.assertIn("earlier ones of this uid are still being closed", self.d.logtext())
        self.assert_answering()
        r, w = os.pipe()
        self.fds += [r, w]
        c2 = self.d.client()
        self.assertIsNone(self.send_with_fd(c2, {"jsonrpc": "2.0", "id": 1,
                                                 "method": "daemon.status"}, r))


if __name__ == "__main__":
    nonotest.main()

#!/usr/bin/env python3
"""nonod's life: start-up checks, one daemon per socket, stale sockets,
file modes, config validation and reload, clean stop."""
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import time
import unittest

import nonotest
from nonotest import Daemon, NONOD


def wait_for(pred, timeout=15, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.close()

    def daemon(self, **kw):
        d = Daemon(**kw)
        self.daemons.append(d)
        return d

    def test_sigterm_stops_cleanly_and_removes_socket(self):
        d = self.daemon()
        c = d.client()
        self.assertEqual(c.call("daemon.status")["mode"], "user")
        self.assertEqual(d.stop(), 0, d.logtext())
        self.assertFalse(os.path.exists(d.socket))
        self.assertIsNone(c.recv())
        db = sqlite3.connect(os.path.join(d.state, "nonod.db"))
        reason = db.execute("SELECT stop_reason FROM daemon_runs ORDER BY id DESC").fetchone()[0]
        self.assertEqual(reason, "SIGTERM")

    def test_sigterm_stops_sessions_gracefully_then_hard(self):
        d = self.daemon(config="shutdown_grace = 1s\n")
        ws = os.path.join(d.dir, "ws")
        os.makedirs(ws)
        c = d.client()
        env = ["PATH=/usr/bin:/bin"]
        polite = c.call("session.create", {"argv": ["sleep", "300"], "cwd": ws, "environ": env})
        ignores_term = c.call("session.create", {"argv": ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
                                             "cwd": ws, "environ": env})
        time.sleep(0.3)  # let the trap be installed
        self.assertEqual(d.stop(), 0, d.logtext())
        for pid in (polite["pid"], ignores_term["pid"]):
            self.assertFalse(os.path.exists(f"/proc/{pid}/status") and
                             "zombie" not in open(f"/proc/{pid}/status").read(), "worker outlived nonod")
        db = sqlite3.connect(os.path.join(d.state, "nonod.db"))
        rows = dict(db.execute("SELECT id, end_reason FROM sessions").fetchall())
        self.assertEqual(rows[polite["id"]], "stopped by daemon shutdown")
        self.assertEqual(rows[ignores_term["id"]], "stopped by daemon shutdown")
        sig = dict(db.execute("SELECT id, exit_signal FROM sessions").fetchall())
        self.assertEqual(sig[polite["id"]], signal.SIGTERM)
        self.assertEqual(sig[ignores_term["id"]], signal.SIGKILL)

    def test_restart_keeps_the_proxy_ca(self):
        """The CA made on first use is sealed in the vault; after a restart
        the daemon loads it (this path once crashed nonod) and sessions
        trust the same CA."""
        from sessions import PATH_ENV, exit_code, run
        d = self.daemon()
        ws = os.path.join(d.dir, "ws")
        os.makedirs(ws)
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE"]},
               "network": {"allow": ["example.com:443"]},
               "env": {"pass": ["PATH"]}}

        def ca_bundle():
            c = d.client()
            final, out, err = run(c, ["sh", "-c", 'cat "$SSL_CERT_FILE"'], ws, policy=pol)
            c.close()
            self.assertEqual(exit_code(final), 0, err.decode() + d.logtext()[-2000:])
            last = out.split(b"-----BEGIN CERTIFICATE-----")[-1]
            self.assertIn(b"-----END CERTIFICATE-----", last)
            return last

        first = ca_bundle()
        self.assertEqual(d.stop(), 0, d.logtext())
        d.start()
        self.assertEqual(ca_bundle(), first)
        self.assertTrue(d.alive(), d.logtext())

    def test_second_daemon_on_same_socket_refuses(self):
        d = self.daemon()
        second = subprocess.run(d.args, capture_output=True, timeout=20, env=d.env)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(b"already serving", second.stderr)
        # The first one is unaffected.
        self.assertEqual(d.client().call("daemon.status")["protocol"], 1)

    def test_stale_socket_is_replaced(self):
        d = self.daemon(start=False)
        os.makedirs(os.path.dirname(d.socket), mode=0o700, exist_ok=True)
        s = socket.socket(socket.AF_UNIX)
        s.bind(d.socket)  # bound, never listening, then abandoned: stale
        s.close()
        d.start()
        self.assertEqual(d.client().call("daemon.status")["protocol"], 1)
        self.assertIn("removing stale socket", d.logtext())

    def test_refuses_to_replace_a_non_socket(self):
        d = self.daemon(start=False)
        os.makedirs(os.path.dirname(d.socket), mode=0o700, exist_ok=True)
        with open(d.socket, "w") as f:
            f.write("precious")
        r = subprocess.run(d.args, capture_output=True, timeout=20, env=d.env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"not a socket", r.stderr)
        with open(d.socket) as f:
            self.assertEqual(f.read(), "precious")

    def test_refuses_a_socket_dir_writable_by_others(self):
        d = self.daemon(start=False)
        os.makedirs(os.path.dirname(d.socket), exist_ok=True)
        os.chmod(os.path.dirname(d.socket), 0o777)
        r = subprocess.run(d.args, capture_output=True, timeout=20, env=d.env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"not writable by others", r.stderr)

    def test_file_modes_user_mode(self):
        d = self.daemon()
        self.assertEqual(stat.S_IMODE(os.stat(d.socket).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(d.state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d.state, "nonod.db")).st_mode), 0o600)

    def test_file_modes_system_mode(self):
        if os.geteuid() != 0:
            self.skipTest("system mode needs root")
        d = self.daemon(mode="--system")
        st = os.stat(d.socket)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(d.client().call("daemon.status")["mode"], "system")

    def test_state_dir_permissions_are_tightened(self):
        d = self.daemon(start=False)
        os.makedirs(d.state, mode=0o755)
        os.chmod(d.state, 0o755)
        d.start()
        self.assertEqual(stat.S_IMODE(os.stat(d.state).st_mode), 0o700)

    def test_check_config(self):
        d = self.daemon(start=False)
        cases = [
            ("max_clients = 10\nlog_level = debug\nrequest_timeout = 500ms\n", 0, b"valid"),
            ("colour = blue\n", 78, b"unknown key 'colour'"),
            ("max_clients = lots\n", 78, b"max_clients: 'lots' is not a positive whole number"),
            ("max_message_size = 12Q\n", 78, b"max_message_size"),
            ("max_message_size = 10\n", 78, b"between 4K"),
            ("request_timeout = soon\n", 78, b"request_timeout"),
            ("log_level = loud\n", 78, b"log_level"),
            ("admin_group = no-such-group-xyz\n", 78, b"no-such-group-xyz"),
            ("just some words\n", 78, b"expected 'key = value'"),
            ("# comment\n\n  max_clients = 5  \n", 0, b"valid"),
        ]
        for text, code, needle in cases:
            with self.subTest(text=text):
                with open(d.config, "w") as f:
                    f.write(text)
                r = subprocess.run([NONOD, "--config", d.config, "--check-config"],
                                   capture_output=True, timeout=20)
                self.assertEqual(r.returncode, code, r.stderr)
                self.assertIn(needle, r.stdout + r.stderr)
                if code:
                    self.assertIn(d.config.encode(), r.stderr)  # names the file

    def test_missing_explicit_config_is_an_error(self):
        r = subprocess.run([NONOD, "--config", "/nonexistent/nonod.conf", "--check-config"],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"No such file", r.stderr)

    def test_bad_config_at_startup_exits_nonzero(self):
        d = self.daemon(start=False, config="max_clients = -1\n")
        r = subprocess.run(d.args, capture_output=True, timeout=20, env=d.env)
        self.assertEqual(r.returncode, 78)
        self.assertIn(b"max_clients", r.stderr)
        self.assertFalse(os.path.exists(d.socket))

    def test_bad_arguments(self):
        for args in (["--bogus"], ["--user", "--system"], ["extra"]):
            r = subprocess.run([NONOD, *args], capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 2, args)

    def test_reload_applies_good_config_and_keeps_old_on_bad(self):
        d = self.daemon(config="max_clients = 3\n")
        held = [d.client() for _ in range(3)]
        over = nonotest.RawClient(d.socket)
        r = over.recv()
        self.assertEqual(r["error"]["data"]["kind"], "limit_exceeded")
        # Raise the limit by reload.
        with open(d.config, "w") as f:
            f.write("max_clients = 10\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in d.logtext(), what="reload")
        extra = d.client()
        self.assertEqual(extra.call("daemon.status")["clients"], 4)
        # A bad config is refused and the running one kept.
        with open(d.config, "w") as f:
            f.write("max_clients = nope\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in d.logtext(), what="refusal")
        more = [d.client() for _ in range(5)]  # 4 + 5 <= 10: still the reloaded limit
        self.assertTrue(d.alive())
        for c in held + more + [extra]:
            c.close()

    def test_client_from_other_uid_cannot_connect_in_user_mode(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch uid")
        d = self.daemon()
        os.chmod(d.dir, 0o755)
        os.chmod(os.path.dirname(d.socket), 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "python3", "-c",
                            f"import socket; s=socket.socket(socket.AF_UNIX); s.connect({d.socket!r})"],
                           capture_output=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Permission denied", r.stderr)


if __name__ == "__main__":
    nonotest.main()

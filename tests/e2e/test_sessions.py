#!/usr/bin/env python3
"""Sessions against a real nonod: create/list/get/wait/signal/kill/output,
stdio modes, exec failures, bad input, user isolation, and refusal of
requests that come from inside a session."""
import array
import json
import os
import signal
import socket
import subprocess
import time
import unittest

import nonotest
from nonotest import Daemon, RpcError
from sessions import PATH_ENV, exit_code, run

E_INVALID_PARAMS, E_NOT_FOUND, E_PERMISSION, E_POLICY, E_EXEC, E_TIMEOUT = \
    -32602, -32003, -32000, -32005, -32011, -32013


class SessionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(config="shutdown_grace = 2s\n")
        cls.ws = os.path.join(cls.d.dir, "ws")
        os.makedirs(cls.ws)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()

    def test_true_and_false(self):
        final, _, _ = run(self.c, ["true"], self.ws)
        self.assertEqual(final["state"], "exited")
        self.assertEqual(exit_code(final), 0)
        final, _, _ = run(self.c, ["sh", "-c", "exit 7"], self.ws)
        self.assertEqual(exit_code(final), 7)
        self.assertEqual(final["end_reason"], "exited")
        self.assertIn("rusage", final)

    def test_output_and_environment(self):
        final, out, err = run(self.c, ["sh", "-c", "echo out; echo err >&2; env"], self.ws,
                              environ=PATH_ENV + ["LD_PRELOAD=/tmp/evil.so", "AWS_SECRET_ACCESS_KEY=x",
                                                  "NODE_OPTIONS=--require=/tmp/x.js"])
        self.assertEqual(exit_code(final), 0)
        self.assertTrue(out.startswith(b"out\n"))
        self.assertEqual(err, b"err\n")
        env = dict(l.split("=", 1) for l in out.decode().splitlines()[1:] if "=" in l)
        self.assertNotIn("LD_PRELOAD", env)
        self.assertNotIn("AWS_SECRET_ACCESS_KEY", env)
        self.assertNotIn("NODE_OPTIONS", env)
        self.assertEqual(env["NONO_SESSION"], final["id"])
        self.assertTrue(env["TMPDIR"].startswith("/tmp/nono-"))
        # The daemon's own environment never reaches a worker.
        self.assertNotIn("NONOD", env)

    def test_output_complete_at_exit(self):
        # A program that fills its pipe with one write and exits at once:
        # its exit is noticed while most of those bytes are still in the
        # pipe. session.wait and session.output must carry all of them.
        for i in range(10):
            final, out, _ = run(self.c, ["dd", "if=/dev/zero", "bs=65536", "count=1",
                                         "status=none"], self.ws)
            self.assertEqual(exit_code(final), 0)
            self.assertEqual(len(out), 65536, f"run {i}")

    def test_policy_env_pass_and_set(self):
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE"]},
               "env": {"pass": ["PATH", "KEEP_ME"], "set": {"GREETING": "hello"}}}
        _, out, _ = run(self.c, ["sh", "-c", "echo $KEEP_ME $GREETING $LANG"], self.ws, policy=pol,
                        environ=PATH_ENV + ["KEEP_ME=kept"])
        self.assertEqual(out, b"kept hello\n")

    def test_private_tmpdir_is_removed(self):
        final, out, _ = run(self.c, ["sh", "-c", "echo data > $TMPDIR/f && echo $TMPDIR"], self.ws)
        self.assertEqual(exit_code(final), 0)
        tmp = out.decode().strip()
        deadline = time.monotonic() + 60  # removed off the loop, right after the exit
        while os.path.lexists(tmp) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertFalse(os.path.lexists(tmp), "the session TMPDIR must go with the session")

    def test_host_tmp_is_not_exposed(self):
        marker = f"/tmp/nono-e2e-marker-{os.getpid()}"
        with open(marker, "w") as f:
            f.write("host tmp")
        try:
            final, out, err = run(self.c, ["cat", marker], self.ws)
            self.assertNotEqual(exit_code(final), 0)
            self.assertNotIn(b"host tmp", out)
            # Strict mode hides /tmp entirely; elsewhere Landlock refuses it.
            self.assertRegex(err, rb"No such file or directory|Permission denied")
        finally:
            os.unlink(marker)

    def test_unix_sockets_in_tmp_and_run_are_out_of_reach(self):
        # Landlock does not restrict connect() to pathname sockets; strict mode
        # hides /tmp, /run and /var/tmp instead (tmux, agents, X11, docker).
        probe = ("import socket, sys\n"
                 "s = socket.socket(socket.AF_UNIX)\n"
                 "try:\n s.connect(sys.argv[1]); print('CONNECTED')\n"
                 "except OSError as e: print('refused', e.errno)\n")
        for d in ("/tmp", "/run"):
            path = os.path.join(d, f"nono-e2e-sock-{os.getpid()}")
            srv = socket.socket(socket.AF_UNIX)
            srv.bind(path)
            srv.listen(1)
            try:
                with self.subTest(dir=d):
                    # Control: the same program outside a session connects.
                    outside = subprocess.run(["python3", "-c", probe, path], capture_output=True)
                    self.assertIn(b"CONNECTED", outside.stdout)
                    final, out, err = run(self.c, ["python3", "-c", probe, path], self.ws)
                    rep = final["enforcement"]["features"]["unix_pathname_sockets"]
                    if "hidden behind an empty tmpfs" not in rep["detail"] or rep["detail"].startswith("0 of"):
                        self.skipTest("no mount namespace here: " + rep["detail"])
                    self.assertIn(b"refused", out, err)
            finally:
                srv.close()
                os.unlink(path)

    def test_exec_failures_are_clear(self):
        cases = [
            (["no-such-program-xyz"], "argv[0]", "not found"),
            (["/nonexistent/prog"], "argv[0]", "not found"),
            (["/etc/hostname"], "argv[0]", "not executable"),
        ]
        for argv, field, words in cases:
            with self.subTest(argv=argv):
                with self.assertRaises(RpcError) as e:
                    self.c.call("session.create", {"argv": argv, "cwd": self.ws, "environ": PATH_ENV})
                self.assertEqual(e.exception.code, E_EXEC)
                self.assertEqual(e.exception.field, field)
                self.assertIn(words, e.exception.detail)

    def test_bad_input(self):
        big = ["x" * 1000] * 900  # under the message limit, over nothing else
        cases = [
            ({"argv": []}, E_INVALID_PARAMS, "argv"),
            ({"argv": [""] , "cwd": "/"}, E_INVALID_PARAMS, "argv"),
            ({"argv": "true", "cwd": "/"}, E_INVALID_PARAMS, "argv"),
            ({"argv": [1], "cwd": "/"}, E_INVALID_PARAMS, "argv[0]"),
            ({"argv": ["true"]}, E_INVALID_PARAMS, "cwd"),
            ({"argv": ["true"], "cwd": "relative"}, E_INVALID_PARAMS, "cwd"),
            ({"argv": ["true"], "cwd": "/nonexistent-dir"}, E_INVALID_PARAMS, "cwd"),
            ({"argv": ["true"], "cwd": "/etc/hostname"}, E_INVALID_PARAMS, "cwd"),
            ({"argv": ["true"], "cwd": "/", "environ": ["NOEQUALS"]}, E_INVALID_PARAMS, "environ"),
            ({"argv": ["true"], "cwd": "/", "stdio": {"mode": "telepathy"}}, E_INVALID_PARAMS, "stdio.mode"),
            ({"argv": ["true"], "cwd": "/", "stdio": {"mode": "fds", "fds": [0, 1, 2]}}, E_INVALID_PARAMS, "fds"),
            ({"argv": ["true"], "cwd": "/", "stdio": {"mode": "fds"}}, E_INVALID_PARAMS, "stdio.fds"),
            ({"argv": ["true"], "cwd": "/", "policy": 5}, E_INVALID_PARAMS, "policy"),
            ({"argv": ["true"], "cwd": "/", "policy": {"version": 1, "filesystem": {"raed": []}}},
             E_POLICY, "policy.filesystem.raed"),
            ({"argv": ["true"], "cwd": "/", "policy": "version: 1\nnetwork: {allow: [nohost]}\n"},
             E_POLICY, None),
            ({"argv": ["true"], "cwd": "/", "policy_file": "/nonexistent.yaml"}, E_INVALID_PARAMS, "policy_file"),
            ({"argv": ["true"], "cwd": "/", "policy": {"version": 1,
              "filesystem": {"read": ["/definitely/not/here"]}}}, E_POLICY, None),
            ({"argv": ["true"], "cwd": "/", "labels": {"a": 1}}, E_INVALID_PARAMS, "labels"),
            # /dev/stdout -> /proc/self/fd/1 would be nonod's own fd, not the worker's.
            ({"argv": ["true"], "cwd": "/", "policy": {"version": 1, "filesystem": {"read": ["/dev/stdout"]}}},
             E_POLICY, "policy"),
            ({"argv": ["true"], "cwd": "/", "policy": {"version": 1, "filesystem": {"read": ["/proc/self/fd"]}}},
             E_POLICY, "policy"),
            ({"argv": ["true"], "cwd": "/", "bogus": 1}, E_INVALID_PARAMS, "bogus"),
            ({"argv": ["true"], "cwd": "/", "environ": big}, E_INVALID_PARAMS, "environ"),
        ]
        for params, code, field in cases:
            with self.subTest(params=str(params)[:80]):
                with self.assertRaises(RpcError) as e:
                    self.c.call("session.create", params)
                self.assertEqual(e.exception.code, code, e.exception)
                if field is not None:
                    self.assertEqual(e.exception.field, field, e.exception)
        self.assertTrue(self.d.alive())

    def test_huge_argv(self):
        final, out, _ = run(self.c, ["sh", "-c", 'echo $#', "sh"] + ["a" * 100] * 3000, self.ws)
        self.assertEqual(out, b"3000\n")

    def test_optional_missing_path_is_skipped(self):
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE", {"path": "/not/here", "optional": True}]}}
        final, _, _ = run(self.c, ["true"], self.ws, policy=pol)
        self.assertEqual(exit_code(final), 0)

    def test_yaml_policy_text_and_file(self):
        text = "version: 1\nfilesystem:\n  read: [$WORKSPACE]\n"
        final, _, _ = run(self.c, ["true"], self.ws, policy=text)
        self.assertEqual(exit_code(final), 0)
        path = os.path.join(self.d.dir, "p.yaml")
        with open(path, "w") as f:
            f.write(text)
        final, _, _ = run(self.c, ["true"], self.ws, policy_file=path)
        self.assertEqual(exit_code(final), 0)
        # The session names the policy by the digest policy.validate gives it.
        self.assertEqual(final["policy_digest"], self.c.call("policy.validate", {"policy": text})["digest"])

    def test_list_get_labels(self):
        s = self.c.call("session.create", {"argv": ["sleep", "30"], "cwd": self.ws, "environ": PATH_ENV,
                                           "labels": {"task": "t1"}})
        try:
            ids = [x["id"] for x in self.c.call("session.list")["sessions"]]
            self.assertIn(s["id"], ids)
            got = self.c.call("session.get", {"id": s["id"]})
            self.assertEqual(got["state"], "running")
            self.assertEqual(got["labels"], {"task": "t1"})
        finally:
            self.c.call("session.kill", {"id": s["id"]})
        final = self.c.call("session.wait", {"id": s["id"]})
        self.assertEqual(final["end_reason"], "killed by session.kill")
        hist = self.c.call("session.list", {"history": True})["history"]
        self.assertIn(s["id"], [h["id"] for h in hist])
        with self.assertRaises(RpcError) as e:
            self.c.call("session.get", {"id": "s-doesnotexist"})
        self.assertEqual(e.exception.code, E_NOT_FOUND)

    def test_wait_timeout(self):
        s = self.c.call("session.create", {"argv": ["sleep", "30"], "cwd": self.ws, "environ": PATH_ENV})
        with self.assertRaises(RpcError) as e:
            self.c.call("session.wait", {"id": s["id"], "timeout_ms": 100})
        self.assertEqual(e.exception.code, E_TIMEOUT)
        self.c.call("session.signal", {"id": s["id"], "signal": "TERM"})
        final = self.c.call("session.wait", {"id": s["id"]})
        self.assertEqual(final["status"]["signal"], signal.SIGTERM)

    def test_signal_validation(self):
        s = self.c.call("session.create", {"argv": ["sleep", "30"], "cwd": self.ws, "environ": PATH_ENV})
        for bad in ("NOPE", 0, 999, 1.5, None):
            with self.assertRaises(RpcError):
                self.c.call("session.signal", {"id": s["id"], "signal": bad})
        self.c.call("session.signal", {"id": s["id"], "signal": "SIGKILL"})
        self.assertEqual(self.c.call("session.wait", {"id": s["id"]})["status"]["signal"], 9)

    def test_kill_takes_the_whole_tree(self):
        # A double-forked daemonized grandchild must die with the session.
        pidfile = os.path.join(self.ws, "grandchild.pid")
        s = self.c.call("session.create", {
            "argv": ["sh", "-c", f"(setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' &) ; sleep 300"],
            "cwd": self.ws, "environ": PATH_ENV})
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile) or not open(pidfile).read().strip():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        gc = int(open(pidfile).read())
        os.kill(gc, 0)  # alive now
        self.c.call("session.kill", {"id": s["id"]})
        self.c.call("session.wait", {"id": s["id"]})
        deadline = time.monotonic() + 10
        while True:
            try:
                os.kill(gc, 0)
                with open(f"/proc/{gc}/stat") as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break
            except (ProcessLookupError, FileNotFoundError):
                break
            self.assertLess(time.monotonic(), deadline, "grandchild survived session.kill")
            time.sleep(0.05)

    def test_leader_exit_kills_leftovers(self):
        pidfile = os.path.join(self.ws, "bg.pid")
        final, _, _ = run(self.c, ["sh", "-c", f"sleep 300 & echo $! > {pidfile}"], self.ws)
        bg = int(open(pidfile).read())
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{bg}") and "Z" not in open(f"/proc/{bg}/stat").read().split(") ")[1][:1]:
            self.assertLess(time.monotonic(), deadline, "background process outlived its session")
            time.sleep(0.05)

    def test_wall_time_limit(self):
        final, _, _ = run(self.c, ["sleep", "30"], self.ws, timeout_ms=200, wait_ms=20000)
        self.assertEqual(final["end_reason"], "wall time limit")
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE"]}, "limits": {"wall": "1s"}}
        final, _, _ = run(self.c, ["sleep", "30"], self.ws, policy=pol)
        self.assertEqual(final["end_reason"], "wall time limit")

    def test_stdio_fds_mode(self):
        r, w = os.pipe()
        msg = {"jsonrpc": "2.0", "id": 99, "method": "session.create",
               "params": {"argv": ["sh", "-c", "echo via-fds; echo to-err >&2"], "cwd": self.ws,
                          "environ": PATH_ENV, "stdio": {"mode": "fds", "fds": [0, 1, 1]}}}
        nul = os.open("/dev/null", os.O_RDONLY)
        self.c.sock.sendmsg([json.dumps(msg).encode() + b"\n"],
                            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [nul, w]))])
        os.close(nul)
        os.close(w)
        resp = self.c.recv()
        self.assertIn("result", resp, resp)
        self.c.call("session.wait", {"id": resp["result"]["id"]})
        with os.fdopen(r, "rb") as f:
            self.assertEqual(f.read(), b"via-fds\nto-err\n")

    def test_fds_belong_to_the_message_they_came_with(self):
        # A pipelined request without fds, then one with fds, usually arrive in
        # one read: the fds must go to the second message, not the first.
        for _ in range(20):
            r, w = os.pipe()
            first = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}).encode() + b"\n"
            second = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "session.create",
                                 "params": {"argv": ["true"], "cwd": self.ws, "environ": PATH_ENV,
                                            "stdio": {"mode": "fds", "fds": [0, 0, 0]}}}).encode() + b"\n"
            self.c.sock.sendall(first)
            self.c.sock.sendmsg([second], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))])
            os.close(w)
            a, b = self.c.recv(), self.c.recv()
            self.assertEqual(a["id"], 1)
            self.assertIn("result", b, b)
            self.c.call("session.wait", {"id": b["result"]["id"]})
            os.close(r)

    def test_nonod_connection_cannot_be_passed_in(self):
        other = self.d.client()
        msg = {"jsonrpc": "2.0", "id": 5, "method": "session.create",
               "params": {"argv": ["true"], "cwd": self.ws, "stdio": {"mode": "fds", "fds": [0, 0, 0]}}}
        self.c.sock.sendmsg([json.dumps(msg).encode() + b"\n"],
                            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [other.sock.fileno()]))])
        r = self.c.recv()
        self.assertEqual(r["error"]["code"], E_PERMISSION, r)

    def test_pty_mode_returns_master(self):
        msg = {"jsonrpc": "2.0", "id": 7, "method": "session.create",
               "params": {"argv": ["sh", "-c", "tty; echo done"], "cwd": self.ws, "environ": PATH_ENV,
                          "stdio": {"mode": "pty"}}}
        self.c.send(msg)
        data, anc, _, _ = self.c.sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        fds = array.array("i")
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - len(cdata) % 4])
        self.assertEqual(len(fds), 1, "the pty master comes with the reply")
        resp = json.loads(data.split(b"\n")[0])
        out = b""
        while b"done" not in out:
            try:
                chunk = os.read(fds[0], 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(fds[0])
        self.assertIn(b"/dev/pts/", out)
        self.c.call("session.wait", {"id": resp["result"]["id"]})

    def test_requests_from_inside_a_session_are_refused(self):
        probe = ("import socket,json,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                 "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.hello\",\"params\":{\"protocol\":[1]}}\\n')\n"
                 "print(s.recv(4096).decode())\n")
        final, out, err = run(self.c, ["python3", "-c", probe, self.d.socket], self.ws)
        self.assertIn(b"permission_denied", out, out + err)
        self.assertIn(b"inside a sandboxed session", out)


if __name__ == "__main__":
    nonotest.main()

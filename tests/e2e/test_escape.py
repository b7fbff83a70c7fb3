#!/usr/bin/env python3
"""The session-level escape suite: each case runs a real attacking program
inside a real session of a real nonod and asserts the kernel's answer, beside
a control that runs the same program where the policy allows it (or outside
any session) and shows it succeeds. Every case runs twice: as root (user-mode
daemon) and as an unprivileged user the suite creates (system-mode daemon,
the client connects through a relay running as that user).

Library-level attacks live in tests/unit/sandbox; here the daemon's whole
path is under test: policy resolution, spawn, credentials, namespaces,
limits and the daemon's own refusal of session peers.
"""
import base64
import errno
import fcntl
import json
import os
import pty
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "escape"))

import nonotest  # noqa: E402
from attacks import PRELOAD_C, SUID_C, parse, probe_argv  # noqa: E402
from harness import (CANARY, CANARY_ENV, PATH_ENV, compile_c, have_cc, make_mode,  # noqa: E402
                     recv_with_fds)

DENIED = {"EPERM", "EACCES"}
SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY----- nono-escape-stand-in"


def policy(read=(), write=(), deny=(), **extra):
    p = {"version": 1, "filesystem": {"read": ["$WORKSPACE", *read], "write": ["$WORKSPACE", *write]}}
    if deny:
        p["filesystem"]["deny"] = list(deny)
    p.update(extra)
    return p


def host_address():
    """A non-loopback IPv4 address of this host (no traffic leaves the host)."""
    with open("/proc/net/fib_trie") as f:
        lines = f.read().splitlines()
    for i, l in enumerate(lines):
        if "/32 host LOCAL" in l and i > 0:
            addr = lines[i - 1].split()[-1]
            if not addr.startswith("127."):
                return addr
    return None


class EscapeCases:
    """The cases; subclasses pick the mode (root or unprivileged user)."""
    MODE = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the escape suite needs root (it creates a test user, "
                                    "setuid files and a system-mode daemon)")
        cls.m = make_mode(cls.MODE)

    @classmethod
    def tearDownClass(cls):
        if not hasattr(cls, "m"):
            return
        rc = cls.m.d.stop()
        log = cls.m.d.logtext()
        cls.m.close()
        # Under -Db_sanitize the daemon reports memory errors and leaks here.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError(f"nonod ({cls.MODE} mode) reported '{marker}':\n{log[-4000:]}")
        if rc != 0:
            raise AssertionError(f"nonod ({cls.MODE} mode) exited with {rc}:\n{log[-3000:]}")

    def setUp(self):
        self.extra = []
        self.addCleanup(self.reap_extra)
        self.c = self.m.client()
        self.addCleanup(self.c.close)
        name = self.id().rsplit(".", 1)[-1].replace("test_", "")
        self.ws = self.m.mkdir("ws-" + name)
        self.home = self.m.mkdir("home-" + name)
        self.ssh = self.m.mkdir("home-" + name, ".ssh", mode=0o700)
        self.key = self.m.write(os.path.join(self.ssh, "id_rsa"), SECRET_KEY)
        self.notes = self.m.write(os.path.join(self.home, "notes.txt"), "allowed notes", 0o644)

    def reap_extra(self):
        for p in self.extra:
            if p.poll() is None:
                p.kill()
            p.wait()

    def tearDown(self):
        self.assertTrue(self.m.d.alive(), "nonod died:\n" + self.m.d.logtext()[-3000:])

    # ---- helpers ---------------------------------------------------------------

    def run_s(self, argv, pol=None, cwd=None, **kw):
        return self.m.run(self.c, argv, cwd or self.ws, policy=pol, **kw)

    def probe(self, ops, pol=None, **kw):
        final, out, err = self.run_s(probe_argv(ops), pol, **kw)
        try:
            return parse(out), final
        except AssertionError:
            raise AssertionError(f"probe failed in session: {final.get('status')} {err!r}")

    def probe_outside(self, ops, as_root=False):
        r = self.m.outside(probe_argv(ops), as_root=as_root)
        try:
            return parse(r.stdout)
        except AssertionError:
            raise AssertionError(f"probe failed outside: {r.returncode} {r.stderr!r}")

    def assert_all(self, res, allowed, what):
        for k, v in res.items():
            self.assertIn(v, allowed, f"{what}: {k} -> {v} (all: {res})")

    def sh(self, script, pol=None, **kw):
        final, out, err = self.run_s(["sh", "-c", script], pol, **kw)
        return final, out.decode(errors="replace"), err.decode(errors="replace")

    # ---- filesystem ------------------------------------------------------------

    def test_read_outside_policy(self):
        final, out, err = self.sh(f"cat {self.key}")
        self.assertNotEqual(final["status"].get("code"), 0)
        self.assertIn("Permission denied", err)
        self.assertNotIn("PRIVATE KEY", out)
        final, out, err = self.sh(f"cat {self.key}", policy(read=[self.home]))
        self.assertIn(SECRET_KEY, out, err)

    def test_daemon_state_dir(self):
        # nonod's database, vault master key file and CA live in its state dir.
        # No policy may open them: a user-mode nonod shares its uid with the
        # worker, and a policy that reads $HOME (an ancestor of
        # $XDG_STATE_HOME/nono) must still not reach them: every session gets
        # a deny carve-out for nonod's own files. As with every Landlock
        # carve-out, the directory's entry names stay listable when a parent
        # is readable (READ_DIR is inherited); their contents never open.
        files = [os.path.join(r, f) for r, _, fs in os.walk(self.m.d.state) for f in fs]
        self.assertTrue(files, "the daemon keeps state files")
        script = "; ".join(f"cat '{f}'" for f in files) + "; exit 0"
        for name, pol in (("default", None), ("policy reads an ancestor", policy(read=[self.m.d.dir]))):
            with self.subTest(policy=name):
                final, out, err = self.sh(script, pol)
                self.assertEqual(out[:200], "", f"the worker read nonod's state dir {self.m.d.state} "
                                 f"(files {[os.path.basename(f) for f in files]}); stderr: {err[:300]}")
                self.assertEqual(err.count("Permission denied"), len(files), err)
        r = self.m.outside(["sh", "-c", script], as_root=True)
        self.assertIn(b"SQLite format 3", r.stdout, "control: the files are there and readable outside")

    def test_etc_shadow(self):
        final, out, err = self.sh("cat /etc/shadow")
        self.assertIn("/etc/shadow: Permission denied", err)
        self.assertEqual(out, "")
        # The policy allows it: root's worker reads it; a user's worker is
        # still refused by its own (dropped) credentials.
        final, out, err = self.sh("cat /etc/shadow", policy(read=["/etc/shadow"]))
        if self.m.uid == 0:
            self.assertIn("root:", out, err)
        else:
            self.assertIn("/etc/shadow: Permission denied", err)
            self.assertEqual(self.m.outside(["cat", "/etc/shadow"]).returncode, 1)
        self.assertEqual(self.m.outside(["cat", "/etc/shadow"], as_root=True).returncode, 0)

    def test_write_outside(self):
        out_dir = self.m.mkdir("outside-write")
        existing = self.m.write(os.path.join(out_dir, "existing"), "original", 0o644)
        script = (f"echo pwned > {out_dir}/new; echo pwned > {existing}; truncate -s 0 {existing}; "
                  f"chmod 777 {existing}; touch -d 2001-01-01 {existing}; rm -f {existing}; exit 0")
        for pol in (None, policy(read=[out_dir])):
            with self.subTest(policy="none" if pol is None else "read-only"):
                final, out, err = self.sh(script, pol)
                self.assertFalse(os.path.exists(os.path.join(out_dir, "new")), err)
                with open(existing) as f:
                    self.assertEqual(f.read(), "original", err)
                st = os.stat(existing)
                self.assertEqual(st.st_mode & 0o777, 0o644, "chmod outside the policy worked")
                self.assertGreater(st.st_mtime, 1e9 + 1e8, "utimes outside the policy worked")
                self.assertGreaterEqual(err.count("Permission denied") + err.count("Read-only file system"),
                                        6, err)
        final, out, err = self.sh(f"echo ok > {out_dir}/new", policy(read=[out_dir], write=[out_dir]))
        with open(os.path.join(out_dir, "new")) as f:
            self.assertEqual(f.read(), "ok\n", err)

    def test_symlink_tricks(self):
        planted = os.path.join(self.ws, "planted")
        os.symlink(self.key, planted)
        os.lchown(planted, self.m.uid, self.m.gid)
        os.symlink(self.home, os.path.join(self.ws, "homelink"))
        script = (f"cat {planted}; cat {self.ws}/homelink/.ssh/id_rsa; "
                  f"ln -s {self.key} {self.ws}/mine && cat {self.ws}/mine; exit 0")
        final, out, err = self.sh(script)
        self.assertNotIn("PRIVATE KEY", out)
        self.assertEqual(err.count("Permission denied"), 3, err)
        final, out, err = self.sh(script.replace(f" {self.ws}/mine &&", f" {self.ws}/mine2 &&")
                                  .replace(f"cat {self.ws}/mine;", f"cat {self.ws}/mine2;"),
                                  policy(read=[self.home]))
        self.assertEqual(out.count(SECRET_KEY), 3, err)

    def test_hardlink(self):
        out_dir = self.m.mkdir("outside-link")
        secret = self.m.write(os.path.join(out_dir, "secret"), "hardlinked secret")
        mine = self.m.write(os.path.join(self.ws, "mine"), "my own file")
        final, out, err = self.sh(f"ln {secret} {self.ws}/hl; cat {self.ws}/hl; "
                                  f"ln {mine} {self.ws}/mine-link && cat {self.ws}/mine-link")
        self.assertFalse(os.path.exists(os.path.join(self.ws, "hl")), err)
        self.assertNotIn("hardlinked secret", out)
        self.assertRegex(err, r"ln: failed to create hard link .*(Permission denied|Invalid cross-device link)")
        # Controls: a link inside the workspace works in the same session, and
        # the same ln works outside a session for the same uid.
        self.assertEqual(out, "my own file", err)
        r = self.m.outside(["sh", "-c", f"ln {secret} {self.ws}/hl && cat {self.ws}/hl"])
        self.assertEqual(r.stdout, b"hardlinked secret", r.stderr)

    def test_rename_out(self):
        out_dir = self.m.mkdir("outside-rename")
        f = self.m.write(os.path.join(self.ws, "data"), "workspace data", 0o644)
        for pol in (None, policy(read=[out_dir])):
            final, out, err = self.sh(f"mv {f} {out_dir}/data", pol)
            self.assertTrue(os.path.exists(f), err)
            self.assertFalse(os.path.exists(os.path.join(out_dir, "data")), err)
            self.assertRegex(err, r"Permission denied|Invalid cross-device link|Read-only file system")
        final, out, err = self.sh(f"mv {f} {out_dir}/data", policy(read=[out_dir], write=[out_dir]))
        self.assertTrue(os.path.exists(os.path.join(out_dir, "data")), err)

    def test_dotdot_traversal(self):
        rel = os.path.relpath(self.key, self.ws)
        paths = [rel, f"{self.ws}/../{os.path.basename(self.home)}/.ssh/id_rsa",
                 f"/proc/self/cwd/{rel}", f"/proc/self/root{self.key}", f"./././{rel}"]
        script = "; ".join(f"cat '{p}'" for p in paths) + "; exit 0"
        final, out, err = self.sh(script)
        self.assertNotIn("PRIVATE KEY", out)
        self.assertEqual(err.count("Permission denied"), len(paths), err)
        final, out, err = self.sh(script, policy(read=[self.home]))
        self.assertEqual(out.count(SECRET_KEY), len(paths), err)

    def test_deny_carved_out_of_allowed_dir(self):
        deny = policy(read=[self.home], write=[self.home], deny=[self.ssh])
        script = (f"cat {self.notes}; cat {self.key}; cp {self.key} {self.ws}/stolen; "
                  f"mv {self.ssh} {self.home}/moved; cat {self.home}/moved/id_rsa; "
                  f"ln -s {self.key} {self.home}/.ssh-link; cat {self.home}/.ssh-link; "
                  f"python3 -c 'import os; fd=os.open(\"{self.key}\", os.O_PATH); "
                  f"print(open(f\"/proc/self/fd/{{fd}}\").read())'; exit 0")
        final, out, err = self.sh(script, deny)
        self.assertIn("allowed notes", out, err)  # the allowed part of the same directory
        self.assertNotIn("PRIVATE KEY", out, err)
        self.assertTrue(os.path.isdir(self.ssh), "the denied directory was moved")
        self.assertFalse(os.path.exists(os.path.join(self.ws, "stolen")))
        self.assertGreaterEqual(err.count("Permission denied"), 4, err)
        final, out, err = self.sh(script, policy(read=[self.home], write=[self.home]))
        self.assertIn(SECRET_KEY, out, err)
        self.assertFalse(os.path.isdir(self.ssh), "control: the move works when not denied")

    # ---- other processes -------------------------------------------------------

    def addr_of(self, pid):
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                a, perms = line.split()[:2]
                if perms.startswith("r"):
                    return int(a.split("-")[0], 16)
        raise AssertionError("no readable mapping")

    def process_ops(self, pid, sig):
        return {
            "environ": f"assert {CANARY!r}.encode() in read('/proc/{pid}/environ', 1 << 20) or "
                       f"{pid} != {self.m.d.proc.pid}",
            "mem": f"open('/proc/{pid}/mem', 'rb').close()",
            "ptrace": f"ptrace_seize({pid})",
            "vm_readv": f"vm_read({pid}, {self.addr_of(pid)})",
            "kill": f"os.kill({pid}, {int(sig)})",
        }

    def test_nonod_proc_ptrace_and_signals(self):
        pid = self.m.d.proc.pid
        ops = self.process_ops(pid, signal.SIGCONT)
        ops["kill0"] = f"os.kill({pid}, 0)"
        res, _ = self.probe(ops)
        self.assert_all(res, DENIED, "session -> nonod")
        self.assertEqual(res["ptrace"], "EPERM")
        self.assertEqual(res["vm_readv"], "EPERM")
        self.assertEqual(res["kill"], "EPERM")
        # Control: the same program outside any session (root, so it can).
        ctl = self.probe_outside(ops, as_root=True)
        self.assert_all(ctl, {"ok"}, "control outside -> nonod")
        self.assertTrue(self.m.d.alive())

    def test_other_session(self):
        a = self.c.call("session.create", {"argv": ["sleep", "120"], "cwd": self.ws, "environ": PATH_ENV,
                                           "timeout_ms": 120000})
        try:
            pid = self.c.call("session.get", {"id": a["id"]})["pid"]
            ops = self.process_ops(pid, signal.SIGTERM)
            ops["kill0"] = f"os.kill({pid}, 0)"
            res, _ = self.probe(ops)
            self.assert_all(res, DENIED, "session B -> session A")
            self.assertEqual(res["kill"], "EPERM")
            self.assertEqual(self.c.call("session.get", {"id": a["id"]})["state"], "running")
            # Control 1: a signal to its own child works inside a session.
            own = {"own_child": "p = os.fork()\nif p == 0:\n    os.pause()\n"
                                "os.kill(p, 15); os.waitpid(p, 0)"}
            self.assertEqual(self.probe(own)[0], {"own_child": "ok"})
            # Control 2: the same program as the same uid outside: all of it works.
            ctl = self.probe_outside(ops)
            self.assert_all(ctl, {"ok"}, "control outside -> session A")
            final = self.c.call("session.wait", {"id": a["id"], "timeout_ms": 60000})
            self.assertEqual(final["status"].get("signal"), signal.SIGTERM)
        finally:
            try:
                self.c.call("session.kill", {"id": a["id"]})
            except Exception:
                pass

    def test_other_sessions_tmpdir(self):
        a = self.c.call("session.create", {
            "argv": ["sh", "-c", "echo session-a-private > $TMPDIR/private && exec sleep 120"],
            "cwd": self.ws, "environ": PATH_ENV, "timeout_ms": 120000})
        try:
            private = f"/tmp/nono-{a['id']}/private"
            deadline = time.monotonic() + 30
            while not os.path.exists(private):
                self.assertLess(time.monotonic(), deadline, "session A never wrote its TMPDIR")
                time.sleep(0.05)
            final, out, err = self.sh(f"cat {private}; ls /tmp/nono-{a['id']}; exit 0")
            self.assertNotIn("session-a-private", out)
            # Refused by Landlock, or (strict mode) not even visible: /tmp is hidden.
            self.assertEqual(err.count("Permission denied") + err.count("No such file or directory"),
                             2, err)
            # Control: the same uid reads it outside a session.
            r = self.m.outside(["cat", private])
            self.assertEqual(r.stdout, b"session-a-private\n", r.stderr)
        finally:
            self.c.call("session.kill", {"id": a["id"]})
            self.c.call("session.wait", {"id": a["id"], "timeout_ms": 60000})

    def test_signals_to_outside_processes(self):
        victim = self.m.popen_outside(["sleep", "120"])
        self.extra.append(victim)
        stopped = self.m.popen_outside(["sleep", "120"])
        self.extra.append(stopped)
        for p in (victim, stopped):  # setpriv has dropped to the uid and run sleep
            wait_for(lambda: open(f"/proc/{p.pid}/comm").read().strip() == "sleep", "exec of sleep")
        stopped.send_signal(signal.SIGSTOP)
        wait_state(stopped.pid, "T")
        # kill(-1, SIGCONT) reaches every process the caller may signal; the
        # stopped process shows whether it got through. (Never a fatal signal
        # to -1: a broken sandbox must not take the host down with it.)
        ops = {"term": f"os.kill({victim.pid}, 15)", "everyone": "os.kill(-1, signal.SIGCONT)"}
        res, _ = self.probe(ops)
        self.assertEqual(res["term"], "EPERM", res)
        self.assertIsNone(victim.poll(), "a process outside the session was killed")
        self.assertEqual(proc_state(stopped.pid), "T", "kill(-1) from a session reached the host")
        # Control: the same program outside, as the same uid, aimed at the
        # two processes by pid (kill(-1) outside would reach every process of
        # the uid, or of the host as root).
        ctl = self.probe_outside({"term": ops["term"], "everyone": f"os.kill({stopped.pid}, signal.SIGCONT)"})
        self.assertEqual(ctl, {"term": "ok", "everyone": "ok"})
        self.assertEqual(victim.wait(30), -signal.SIGTERM)
        wait_state(stopped.pid, "S")

    # ---- network ---------------------------------------------------------------

    def test_tcp_ports_and_hosts(self):
        host_ip = host_address()
        lst = socket.socket()
        lst.bind(("0.0.0.0", 0))
        lst.listen(16)
        port = lst.getsockname()[1]
        go = os.path.join(self.ws, "go.json")
        ops = {"wait": "import time\nfor _ in range(1200):\n    if os.path.exists('go.json'): break\n"
                       "    time.sleep(0.05)\nP = json.load(open('go.json'))",
               "loopback_other_port": "connect(socket.AF_INET, ('127.0.0.1', P['port']))",
               "proxy_port": "connect(socket.AF_INET, ('127.0.0.1', P['proxy']))"}
        if host_ip:
            ops["host_other_port"] = "connect(socket.AF_INET, (P['host'], P['port']))"
            ops["host_proxy_port"] = "connect(socket.AF_INET, (P['host'], P['proxy']))"
        pol = policy(network={"allow": ["example.com:443"]}, limits={"wall": "90s"})
        s = self.c.call("session.create", {"argv": probe_argv(ops), "cwd": self.ws, "environ": PATH_ENV,
                                           "stdio": {"mode": "pipe"}, "policy": pol})
        info = self.c.call("session.get", {"id": s["id"]})
        proxy = info["proxy_port"]
        # A host listener on the session's proxy port: in strict mode it must
        # not be reachable from the session (its proxy is inside its netns).
        hl = socket.socket()
        hl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            hl.bind(("0.0.0.0", proxy))
            hl.listen(16)
            hl.setblocking(False)
        except OSError:
            hl.close()
            hl = None
        try:
            with open(go + ".tmp", "w") as f:
                json.dump({"port": port, "proxy": proxy, "host": host_ip}, f)
            os.chown(go + ".tmp", self.m.uid, self.m.gid)
            os.rename(go + ".tmp", go)
            self.c.call("session.wait", {"id": s["id"], "timeout_ms": 120000})
            out = self.c.call("session.output", {"id": s["id"]})
            res = parse(base64.b64decode(out["stdout"]["base64"]))
            self.assertEqual(res["loopback_other_port"], "EACCES", res)  # Landlock
            self.assertEqual(res["proxy_port"], "ok", res)  # the one way out
            if host_ip:
                self.assertEqual(res["host_other_port"], "EACCES", res)
                if info["network"] == "strict":
                    self.assertEqual(res["host_proxy_port"], "ENETUNREACH", res)
                else:
                    self.assertIn("not enforced", json.dumps(info["enforcement"]))
            if hl is not None and info["network"] == "strict":
                with self.assertRaises(BlockingIOError, msg="the host's listener got a connection"):
                    hl.accept()
            # Control: the same connects from outside reach the host listeners.
            ctl_ops = {k: v for k, v in ops.items() if k != "proxy_port" and
                       (k != "host_proxy_port" or hl is not None)}
            ctl = self.m.outside(probe_argv(ctl_ops), cwd=self.ws)
            self.assert_all(parse(ctl.stdout), {"ok"}, "control outside")
        finally:
            lst.close()
            if hl is not None:
                hl.close()

    def test_udp_raw_netlink_sockets(self):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        port = rx.getsockname()[1]
        ops = {"udp": f"udp_send(('127.0.0.1', {port}))",
               "udp_dns": "udp_send(('127.0.0.1', 53))",
               "udp6": "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()",
               "raw_icmp": "socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()",
               "packet": "socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()",
               "netlink": "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()"}
        try:
            for name, pol in (("none", None),
                              ("proxy", policy(network={"allow": ["example.com:443"]}))):
                with self.subTest(network=name):
                    res, final = self.probe(ops, pol)
                    self.assert_all(res, {"EPERM", "EACCES", "EAFNOSUPPORT"}, f"network {name}")
            with self.assertRaises(socket.timeout):
                rx.settimeout(0.2)
                rx.recv(100)
            rx.settimeout(10)
            ctl = self.probe_outside(ops, as_root=True)
            self.assert_all(ctl, {"ok"}, "control outside")
            self.assertEqual(rx.recv(100), b"nono-escape-udp")
        finally:
            rx.close()

    def test_abstract_unix_socket(self):
        name = f"\0nono-escape-{os.getpid()}-{self.m.name}"
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(name)
        srv.listen(16)
        try:
            ops = {"outside": f"connect(socket.AF_UNIX, {name!r})"}
            inner = {"inner": "s = socket.socket(socket.AF_UNIX); s.bind('\\0nono-inner-%d' % os.getpid());"
                              " s.listen(1); connect(socket.AF_UNIX, '\\0nono-inner-%d' % os.getpid())"}
            res, _ = self.probe({**ops, **inner})
            self.assertEqual(res, {"outside": "EPERM", "inner": "ok"})
            self.assertEqual(self.probe_outside(ops), {"outside": "ok"})
        finally:
            srv.close()

    def test_pathname_unix_socket(self):
        # Landlock (ABI <= 7) cannot stop connect() to a pathname socket, e.g.
        # an ssh-agent in /tmp or docker.sock: either the kernel refuses, or
        # the session must say that this is not enforced.
        d = self.m.mkdir("agent-dir", mode=0o700)
        path = os.path.join(d, "agent.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(16)
        self.m.own(path)
        try:
            ops = {"agent": f"connect(socket.AF_UNIX, {path!r})"}
            res, final = self.probe(ops)
            if res["agent"] == "ok":
                rep = final["enforcement"]["features"]["unix_pathname_sockets"]
                self.assertFalse(rep["enforced"], "connected, yet reported as enforced")
            else:
                self.assertIn(res["agent"], DENIED)
            self.assertEqual(self.probe_outside(ops), {"agent": "ok"})
        finally:
            srv.close()

    def test_nonod_control_socket(self):
        hello = (b'{"jsonrpc":"2.0","id":1,"method":"daemon.hello","params":{"protocol":[1]}}\n')
        ops = {"hello": f"s = socket.socket(socket.AF_UNIX); s.connect({self.m.d.socket!r});"
                        f" s.sendall({hello!r}); r = s.recv(4096); assert b'\"result\"' in r, r"}
        res, _ = self.probe(ops)
        self.assertIn("permission_denied", res["hello"])
        self.assertIn("inside a sandboxed session", res["hello"])
        self.assertEqual(self.probe_outside(ops), {"hello": "ok"})

    # ---- kernel interfaces -------------------------------------------------------

    def test_keyctl_io_uring_bpf(self):
        ops = {"keyctl": "keyctl_session()", "add_key": "add_key()", "io_uring": "io_uring()",
               "bpf": "bpf_map()", "perf": "perf_open()",
               "userfaultfd": "os.close(sc(323, 0))"}
        res, _ = self.probe(ops)
        self.assert_all(res, {"EPERM", "ENOSYS"}, "session")
        ctl = self.probe_outside(ops, as_root=True)
        self.assert_all(ctl, {"ok"}, "control outside (root)")

    def test_mount_unshare_chroot(self):
        mnt = self.m.mkdir(os.path.basename(self.ws), "mnt")
        ops = {"unshare_user": "unshare(0x10000000)", "unshare_mount": "unshare(0x20000)",
               "unshare_net": "unshare(0x40000000)", "unshare_pid": "unshare(0x20000000)",
               "mount": f"mount_tmpfs({mnt!r})", "chroot": f"chroot({self.ws!r})",
               "clone_newuser": "in_child(lambda: sc(56, 0x10000000 | 17, 0, 0, 0, 0) and os._exit(0))"}
        res, _ = self.probe(ops)
        self.assert_all(res, {"EPERM"}, "session")
        _, out, err = self.sh("unshare -U -r true && echo UNSHARED; unshare -m true && echo UNSHARED; exit 0")
        self.assertNotIn("UNSHARED", out, err)
        self.assertIn("Operation not permitted", err)
        ctl = self.probe_outside(ops, as_root=True)
        self.assert_all(ctl, {"ok"}, "control outside (root)")
        self.assertFalse(os.path.ismount(mnt), "the control's mount leaked into the host namespace")

    def test_tty_injection(self):
        script = ("import errno, fcntl, json, os, select, termios, tty\n"
                  "tty.setcbreak(0)\n"
                  "r = {}\n"
                  "for name, req, arg in (('TIOCSTI', termios.TIOCSTI, b'Q'), ('TIOCLINUX', 0x541C, bytes([6]))):\n"
                  "    try:\n"
                  "        fcntl.ioctl(0, req, arg); r[name] = 'ok'\n"
                  "    except OSError as e:\n"
                  "        r[name] = errno.errorcode[e.errno]\n"
                  "ready = select.select([0], [], [], 1.0)[0]\n"
                  "r['read'] = os.read(0, 100).decode() if ready else ''\n"
                  "print(json.dumps(r))\n")
        msg = {"jsonrpc": "2.0", "id": 77, "method": "session.create",
               "params": {"argv": ["python3", "-c", script], "cwd": self.ws, "environ": PATH_ENV,
                          "stdio": {"mode": "pty"}, "timeout_ms": 60000}}
        self.c.send(msg)
        resp, fds = recv_with_fds(self.c)
        self.assertIn("result", resp, resp)
        self.assertEqual(len(fds), 1, "the pty master comes with the reply")
        out = read_all(fds[0])
        os.close(fds[0])
        self.c.call("session.wait", {"id": resp["result"]["id"], "timeout_ms": 60000})
        res = json.loads([l for l in out.decode().splitlines() if l.startswith("{")][-1])
        self.assertEqual(res, {"TIOCSTI": "EPERM", "TIOCLINUX": "EPERM", "read": ""}, out)
        # Control: the same program on a pty outside a session injects.
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen(self.m.outside_argv([sys.executable, "-c", script]),
                                 stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                 preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
            os.close(slave)
            slave = -1
            out = read_all(master)
            p.wait(30)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        ctl = json.loads([l for l in out.decode().splitlines() if l.startswith("{")][-1])
        self.assertEqual(ctl["TIOCSTI"], "ok", out)
        self.assertEqual(ctl["read"], "Q", out)
        self.assertNotEqual(ctl["TIOCLINUX"], "EPERM", out)  # the driver answers, not a filter

    def test_other_terminals(self):
        # A terminal outside the session: another session's pty, and a stand-in
        # for the user's login terminal (a pty the user owns). Opening them
        # would let a session type into their screens or race for keystrokes.
        # (Fails today: the base profile grants /dev/pts read-write, and DAC
        # lets the same uid open its own ptys. A private devpts instance in the
        # session's mount namespace, or no /dev/pts rule, would close it.)
        msg = {"jsonrpc": "2.0", "id": 78, "method": "session.create",
               "params": {"argv": ["sh", "-c", "tty; exec sleep 120"], "cwd": self.ws, "environ": PATH_ENV,
                          "stdio": {"mode": "pty"}, "timeout_ms": 120000}}
        self.c.send(msg)
        resp, fds = recv_with_fds(self.c)
        self.assertIn("result", resp, resp)
        a_master = fds[0]
        login_master, login_slave = pty.openpty()
        try:
            os.fchown(login_slave, self.m.uid, -1)
            login_name = os.ttyname(login_slave)
            a_name = b""
            while b"\n" not in a_name:
                a_name += os.read(a_master, 100)
            a_name = a_name.decode().split()[0]
            self.assertTrue(a_name.startswith("/dev/pts/"), a_name)
            ops = {"other_session": f"os.write(os.open({a_name!r}, os.O_WRONLY | os.O_NOCTTY), b'SPOOF-A')",
                   "login_tty": f"os.write(os.open({login_name!r}, os.O_WRONLY | os.O_NOCTTY), b'SPOOF-L')",
                   "keystrokes": f"f = os.open({login_name!r}, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)\n"
                                 f"print('STOLE', os.read(f, 100))"}
            os.write(login_master, b"typed-password\n")  # what the user typed, not yet read
            res, _ = self.probe(ops)
            seen = {"other_session": drain(a_master), "login_tty": drain(login_master)}
            self.assertEqual(res, {"other_session": "EACCES", "login_tty": "EACCES", "keystrokes": "EACCES"},
                             f"a session opened terminals outside it; they showed {seen}")
            self.assertNotIn(b"SPOOF", seen["other_session"] + seen["login_tty"])
            # Control: the same program outside a session, as the same uid.
            drain(login_master)
            os.write(login_master, b"typed-password\n")
            self.assertEqual(self.probe_outside(ops), {"other_session": "ok", "login_tty": "ok", "keystrokes": "ok"})
            self.assertIn(b"SPOOF-A", drain(a_master))
        finally:
            # kill before closing A's master: the hangup would end it first
            self.c.call("session.kill", {"id": resp["result"]["id"]})
            self.c.call("session.wait", {"id": resp["result"]["id"], "timeout_ms": 60000})
            os.close(login_master)
            os.close(login_slave)
            os.close(a_master)

    # ---- privilege -------------------------------------------------------------

    def test_setuid_binary_no_new_privs(self):
        targets = []
        idcopy = os.path.join(self.ws, "id-suid")
        shutil.copy("/usr/bin/id", idcopy)
        targets.append(idcopy)
        if have_cc():
            targets.append(compile_c(SUID_C, os.path.join(self.ws, "suid-report")))
        for t in targets:
            os.chown(t, 0, 0)
            os.chmod(t, 0o4755)
        final, out, err = self.sh("; ".join(targets))
        # id prints euid= only when it differs from the real uid.
        id_line = out.splitlines()[0]
        self.assertTrue(id_line.startswith(f"uid={self.m.uid}("), out + err)
        self.assertNotIn("euid=", id_line, "the setuid bit took effect inside the session")
        if have_cc():
            self.assertIn(f"ruid={self.m.uid} euid={self.m.uid}\n", out, err)
            cap = [l for l in out.splitlines() if l.startswith("CapEff:")]
            self.assertEqual(cap, ["CapEff:\t0000000000000000"], out + err)
        # Control: the same files run by an unprivileged uid outside a session.
        uid = self.m.uid if self.m.uid != 0 else 65534
        for t in targets:
            r = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", t],
                               capture_output=True, timeout=30)
            self.assertIn(b"euid=0", r.stdout, r)
            if t.endswith("suid-report"):
                self.assertNotIn(b"CapEff:\t0000000000000000", r.stdout)

    def test_ld_preload_and_environment(self):
        if not have_cc():
            self.skipTest("cc is not installed: cannot build the LD_PRELOAD library")
        so = compile_c(PRELOAD_C, os.path.join(self.ws, "evil.so"), shared=True)
        os.chmod(so, 0o755)
        hooks = [f"LD_PRELOAD={so}", f"LD_LIBRARY_PATH={self.ws}", "GCONV_PATH=/tmp",
                 "PYTHONSTARTUP=/tmp/x.py", "NODE_OPTIONS=--require=/tmp/x.js", "BASH_ENV=/tmp/x.sh",
                 "ENV=/tmp/x.sh", "BASH_FUNC_ls%%=() { echo hijacked; }", "SSH_AUTH_SOCK=/tmp/agent",
                 "AWS_SECRET_ACCESS_KEY=leak-me"]
        cmd = ["sh", "-c", "env; tr '\\0' '\\n' < /proc/self/environ"]
        # Policies cannot name patterns; the daemon's default pass list has
        # LC_* (hooks never match a pattern). A policy that names other vars:
        named = policy(env={"pass": ["PATH", "HOME", "LANG"], "set": {"GREETING": "hi"}})
        for name, pol in (("default", None), ("named", named)):
            with self.subTest(policy=name):
                final, out, err = self.run_s(cmd, pol, environ=PATH_ENV + hooks)
                self.assertEqual(final["status"].get("code"), 0, err)
                self.assertNotIn(b"PRELOAD-HOOK-RAN", err + out)
                for h in hooks:
                    self.assertNotIn(b"\n" + h.split("=")[0].encode() + b"=", b"\n" + out, h)
                self.assertNotIn(b"AWS_SECRET_ACCESS_KEY", out)
                self.assertNotIn(CANARY.encode(), out)
                self.assertNotIn(CANARY_ENV.encode(), out)
        # Controls: the library hooks a program outside a session, and inside
        # one when the policy names the hook exactly (the documented opt-in),
        # so it is the scrubbing that stops it above, not a broken library.
        r = self.m.outside(["true"], env={"LD_PRELOAD": so})
        self.assertIn(b"PRELOAD-HOOK-RAN", r.stderr, "control: the library hooks outside")
        final, out, err = self.run_s(["true"], policy(env={"pass": ["PATH", "LD_PRELOAD"]}),
                                     environ=PATH_ENV + hooks)
        self.assertIn(b"PRELOAD-HOOK-RAN", err, "control: named exactly, the hook passes")

    # ---- limits and load ---------------------------------------------------------

    def test_fork_bomb_is_contained(self):
        bomb = ("import errno, os, sys\n"
                "n, err = 0, 'none'\n"
                "for _ in range(400):\n"
                "    try:\n"
                "        p = os.fork()\n"
                "    except OSError as e:\n"
                "        err = errno.errorcode[e.errno]; break\n"
                "    if p == 0:\n"
                "        os.pause(); os._exit(0)\n"
                "    n += 1\n"
                "print(n, err, flush=True)\n")
        pol = policy(limits={"pids": 64, "wall": "60s"})
        s = self.c.call("session.create", {"argv": ["true"], "cwd": self.ws, "environ": PATH_ENV,
                                           "policy": pol})
        limits = self.c.call("session.wait", {"id": s["id"], "timeout_ms": 60000})["limits"]
        how = limits["pids"]["enforced_by"]
        self.assertEqual(limits["pids"]["value"], 64)
        if how is None:
            self.assertEqual(self.m.uid, 0, "an unprivileged session must have its pids limit enforced")
            self.skipTest("no cgroup pids controller here and the kernel exempts root from "
                          "RLIMIT_NPROC: the session reports the pids limit as not enforced")
        final, out, err = self.run_s(["python3", "-c", bomb, "nono-fork-bomb"], pol)
        n, why = out.decode().split()
        self.assertLess(int(n), 64, f"forked {n} processes under pids: 64 ({how})")
        print(f"\n  [{self.m.name}] fork bomb: {n} forks, then {why} ({how})", end=" ", flush=True)
        self.assertEqual(why, "EAGAIN", err)
        # The daemon still works, and the leftovers went with the session.
        self.assertIn("pid", self.c.call("daemon.status"))
        deadline = time.monotonic() + 30
        while any_process_with("nono-fork-bomb"):
            self.assertLess(time.monotonic(), deadline, "fork bomb children outlived the session")
            time.sleep(0.1)

    def pipelined(self, conns, method, params_by_conn):
        """Send every request of each connection at once, then collect the
        replies: {conn index: [reply, ...]} (notifications skipped)."""
        for i, c in enumerate(conns):
            c.send_raw(b"".join(json.dumps({"jsonrpc": "2.0", "id": 10000 + k, "method": method,
                                            "params": p}).encode() + b"\n"
                                for k, p in enumerate(params_by_conn[i])))
        replies = {}
        for i, c in enumerate(conns):
            replies[i] = []
            while len(replies[i]) < len(params_by_conn[i]):
                r = c.recv()
                self.assertIsNotNone(r, f"the daemon closed a connection during {method}")
                if "id" in r:
                    replies[i].append(r)
        return replies

    def test_thousand_sessions_at_once(self):
        n_conn, per = 4, 250
        nonod_fds = lambda: len(os.listdir(f"/proc/{self.m.d.proc.pid}/fd"))  # noqa: E731
        fd_before = nonod_fds()
        t0 = time.monotonic()
        conns = [self.m.client() for _ in range(n_conn)]
        try:
            create = {"argv": ["sleep", "600"], "cwd": self.ws, "environ": PATH_ENV, "timeout_ms": 300000}
            got = self.pipelined(conns, "session.create", [[create] * per] * n_conn)
            errors = [r["error"] for rs in got.values() for r in rs if "error" in r]
            self.assertEqual(errors, [], f"{len(errors)} creates failed, first: {errors[:1]}")
            ids = {i: [r["result"]["id"] for r in rs] for i, rs in got.items()}
            t_created = time.monotonic() - t0
            # All of them at once, and the daemon still answers a newcomer.
            status = self.m.client()
            try:
                self.assertIn("pid", status.call("daemon.status"))
                running = [s for s in status.call("session.list")["sessions"] if s["state"] == "running"]
            finally:
                status.close()
            self.assertEqual(len(running), n_conn * per)
            fd_peak = nonod_fds()
            got = self.pipelined(conns, "session.kill", [[{"id": sid} for sid in ids[i]] for i in ids])
            self.assertEqual([r for rs in got.values() for r in rs if "error" in r], [])
            got = self.pipelined(conns, "session.wait",
                                 [[{"id": sid, "timeout_ms": 120000} for sid in ids[i]] for i in ids])
            ends = {}
            for rs in got.values():
                for r in rs:
                    self.assertIn("result", r, r)
                    ends[r["result"]["end_reason"]] = ends.get(r["result"]["end_reason"], 0) + 1
            self.assertEqual(ends, {"killed by session.kill": n_conn * per})
            left = [s["id"] for s in self.c.call("session.list")["sessions"] if s["state"] != "exited"]
            self.assertEqual(left, [])
            print(f"\n  [{self.m.name}] {n_conn * per} sessions created in {t_created:.1f}s over {n_conn} "
                  f"pipelined connections, {len(running)} running at once, all killed and reaped after "
                  f"{time.monotonic() - t0:.1f}s; nonod fds {fd_before} before, {fd_peak} under load",
                  end=" ", flush=True)
        finally:
            for c in conns:
                c.close()
        # Ended sessions stay in memory (with their pidfd) until the next
        # session.create trims them to SESSIONS_KEEP_ENDED (256): the daemon's
        # fds must come back to that bound, not grow with the load.
        final, _, _ = self.run_s(["true"])
        self.assertEqual(final["status"].get("code"), 0)
        self.assertLessEqual(nonod_fds(), fd_before + 256 + 16, f"nonod fds: {fd_before} before the load")


def read_all(fd):
    out = b""
    while True:
        try:
            r, _, _ = select.select([fd], [], [], 60)
            if not r:
                break
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def drain(fd):
    """What a pty master has to read right now (the writer already returned)."""
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_for(cond, what):
    deadline = time.monotonic() + 30
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_state(pid, state):
    deadline = time.monotonic() + 30
    while proc_state(pid) != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} never reached state {state}: it is {proc_state(pid)}")
        time.sleep(0.02)


def any_process_with(marker):
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        return True
            except OSError:
                pass
    return False


class AsRoot(EscapeCases, unittest.TestCase):
    MODE = "root"


class AsUser(EscapeCases, unittest.TestCase):
    MODE = "user"


# ---- a worker caught between clone and exec ------------------------------------

PRE_EXEC_ATTACK = r"""
import ctypes, os, signal, subprocess, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
me = os.getuid()

def attack(pid):
    r = {}
    for name in ("mem", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                r[name] = "opened"
                f.read(64)
                r[name] = "read"
        except OSError as e:
            r.setdefault(name, e.errno)
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        r["ptrace"] = "attached"
        libc.ptrace(17, pid, None, None)       # PTRACE_DETACH
    else:
        r["ptrace"] = ctypes.get_errno()
    return r

def held():
    # Stopped processes of ours still named nonod: clones not yet exec'd.
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if st["Name"].strip() == "nonod" and st["State"].split()[0] == "T" \
                and int(st["Uid"].split()[0]) == me:
            yield int(d)

stop = []
def stopper():
    while not stop:
        try:
            os.kill(-1, signal.SIGSTOP)
        except OSError:
            pass
t = threading.Thread(target=stopper)
t.start()
attacks, n, end = {}, 0, time.monotonic() + 4
try:
    while time.monotonic() < end:
        c.send({"jsonrpc": "2.0", "id": n + 10, "method": "session.create",
                "params": {"argv": ["/bin/true"], "cwd": WS, "environ": PATH_ENV}})
        n += 1
        for pid in held():
            if pid not in attacks:
                attacks[pid] = attack(pid)
        time.sleep(0.002)
finally:
    stop.append(1)
    t.join()
# Control: the same attacks on an ordinary process of ours work.
p = subprocess.Popen(["sleep", "30"])
time.sleep(0.2)
out["control"] = attack(p.pid)
p.kill()
out["attacks"] = attacks
"""


class PreExecWorker(unittest.TestCase):
    """In system mode a worker that drops to its user's uid is a copy of
    nonod until it exec's (it never shares nonod's address space: see
    spawn_may_share_mm in session-spawn.c). Its user stops it there
    (kill(-1, SIGSTOP) in a loop) and tries to read it: ptrace,
    /proc/PID/mem, /proc/PID/environ. Each is refused, because the copy is
    not dumpable; the same attacks on an ordinary process of the user work
    (control). None of the held workers may share nonod's memory."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("system mode and another user need root")
        from users import as_user, ensure_group, ensure_user
        self.as_user = as_user
        ensure_group("nono")
        self.u = ensure_user("nono-e2e-a", ["nono"])
        self.d = nonotest.Daemon(mode="--system")
        os.chmod(self.d.dir, 0o755)
        self.ws = os.path.join(self.d.dir, "ws")
        os.makedirs(self.ws)
        os.chown(self.ws, self.u.pw_uid, self.u.pw_gid)

    def tearDown(self):
        subprocess.run(["pkill", "-KILL", "-u", self.u.pw_name], check=False)
        self.d.close()

    def test_pre_exec_worker_memory_unreadable(self):
        out = self.as_user(self, self.d, self.u, f"WS = {self.ws!r}\n" + PRE_EXEC_ATTACK,
                           timeout=60)
        ctl = out["control"]
        self.assertEqual((ctl["environ"], ctl["ptrace"]), ("read", "attached"), ctl)
        self.assertEqual(ctl["mem"] in ("opened", "read"), True, ctl)
        held = {int(k): v for k, v in out["attacks"].items()}
        if not held:
            self.skipTest("no worker was caught before its exec in 4 s")
        for pid, r in held.items():
            self.assertIn(r["mem"], (errno.EACCES, errno.EPERM), (pid, r))
            self.assertIn(r["environ"], (errno.EACCES, errno.EPERM), (pid, r))
            self.assertEqual(r["ptrace"], errno.EPERM, (pid, r))
        # Which of them shared nonod's memory (kcmp KCMP_VM, as root)?
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        shared = [pid for pid in held
                  if libc.syscall(312, self.d.proc.pid, pid, 1, 0, 0) == 0]  # x86_64 kcmp
        sys.stderr.write(f"pre-exec workers caught: {len(held)}, sharing nonod's memory: "
                         f"{len(shared)}; every read refused\n")
        if os.uname().machine == "x86_64":
            self.assertEqual(shared, [], "a worker of another user shares nonod's memory")


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    nonotest.main()

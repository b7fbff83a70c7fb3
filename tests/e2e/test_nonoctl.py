#!/usr/bin/env python3
"""nonoctl against a real nonod: `nonoctl run` as a drop-in prefix for real
tools (sh, python3, git, node, curl, make) under the base profile, its exit
codes (0/N/128+N/125/126/127), signal forwarding, stdio piping, the
--allow-read grant with its control case, ps/wait/kill with --json, secrets
entering through stdin and never showing up in any output, local policy
checks, usage errors, and a daemon that is down."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import nonotest
from nonotest import Daemon, NONOCTL

SECRET = "s3cr3t-VALUE-9f8e7d-never-printed"


def nonoctl(d, *args, inp=None, cwd=None, timeout=60, env=None):
    e = dict(os.environ, NONO_SOCKET=d.socket if d else "/nonexistent/nonod.sock")
    e.update(env or {})
    return subprocess.run([NONOCTL, *args], input=inp, cwd=cwd, env=e, timeout=timeout,
                          capture_output=True)


class NonoctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not NONOCTL or not os.access(NONOCTL, os.X_OK):
            nonotest.skip("NONOCTL does not name the built nonoctl")
        cls.d = Daemon(config="shutdown_grace = 2s\n")

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.ws = tempfile.mkdtemp(prefix="ws-", dir=self.d.dir)
        os.chmod(self.ws, 0o755)

    def tearDown(self):
        shutil.rmtree(self.ws, ignore_errors=True)

    def run_ctl(self, *args, **kw):
        kw.setdefault("cwd", self.ws)
        return nonoctl(self.d, *args, **kw)

    def assertRc(self, r, rc):
        self.assertEqual(r.returncode, rc, f"stdout={r.stdout!r} stderr={r.stderr!r}")

    # ---- drop-in prefix for real tools ----

    def test_sh_exit_codes(self):
        r = self.run_ctl("run", "--", "sh", "-c", "echo hello; exit 0")
        self.assertRc(r, 0)
        self.assertEqual(r.stdout, b"hello\n")
        self.assertRc(self.run_ctl("run", "--", "sh", "-c", "exit 7"), 7)
        self.assertRc(self.run_ctl("run", "--", "sh", "-c", "kill -KILL $$"), 128 + 9)
        self.assertRc(self.run_ctl("run", "--", "sh", "-c", "kill -USR1 $$"), 128 + 10)

    def test_not_found_and_not_executable(self):
        r = self.run_ctl("run", "--", "no-such-command-xyz")
        self.assertRc(r, 127)
        self.assertIn(b"not found", r.stderr)
        path = os.path.join(self.ws, "notexec")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(path, 0o644)
        r = self.run_ctl("run", "--", path)
        self.assertRc(r, 126)
        self.assertTrue(r.stderr.startswith(b"nonoctl: "), r.stderr)

    def test_python(self):
        # The system python: one under $HOME (pyenv) is outside the base profile.
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
        if py is None:
            self.skipTest("no /usr/bin/python3")
        r = self.run_ctl("run", "--", py, "-c",
                         "import os,sys; open('out.txt','w').write('py'); sys.exit(3)")
        self.assertRc(r, 3)
        with open(os.path.join(self.ws, "out.txt")) as f:
            self.assertEqual(f.read(), "py")

    def test_git(self):
        script = ("git init -q . && git config user.email a@b && git config user.name t && "
                  "echo x > f && git add f && git commit -qm one && git log --oneline | wc -l")
        r = self.run_ctl("run", "--", "sh", "-c", script,
                         env={"HOME": self.ws, "GIT_CONFIG_NOSYSTEM": "1"})
        self.assertRc(r, 0)
        self.assertEqual(r.stdout.strip(), b"1")
        self.assertTrue(os.path.isdir(os.path.join(self.ws, ".git", "objects")))

    def test_node(self):
        node = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)
        if node is None:
            self.skipTest("node is not installed")
        r = self.run_ctl("run", "--", node, "-e",
                         "require('fs').writeFileSync('n.txt','js'); process.exit(5)")
        self.assertRc(r, 5)
        with open(os.path.join(self.ws, "n.txt")) as f:
            self.assertEqual(f.read(), "js")

    def test_curl(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        with open(os.path.join(self.ws, "page.txt"), "w") as f:
            f.write("local page\n")
        r = self.run_ctl("run", "--", "curl", "-sS", "file://" + self.ws + "/page.txt")
        self.assertRc(r, 0)
        self.assertEqual(r.stdout, b"local page\n")
        # Control: without network rules a TCP connect is refused by the
        # sandbox (a local listener makes the host reachable otherwise).
        import socket as s
        srv = s.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        try:
            url = f"http://127.0.0.1:{port}/"
            r = self.run_ctl("run", "--", "curl", "-sS", "--max-time", "5", url)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            ok = subprocess.run(["curl", "-sS", "--max-time", "1", url], capture_output=True)
            self.assertNotEqual(ok.returncode, 7, "control: listener unreachable outside")
        finally:
            srv.close()

    def test_make(self):
        if shutil.which("make") is None:
            self.skipTest("make is not installed")
        with open(os.path.join(self.ws, "Makefile"), "w") as f:
            f.write("all: out.txt\nout.txt:\n\techo built > $@\n")
        r = self.run_ctl("run", "--", "make", "-s")
        self.assertRc(r, 0)
        with open(os.path.join(self.ws, "out.txt")) as f:
            self.assertEqual(f.read(), "built\n")

    # ---- stdio, signals, grants ----

    def test_stdin_stdout_pipe(self):
        r = self.run_ctl("run", "--", "cat", inp=b"hi\n")
        self.assertRc(r, 0)
        self.assertEqual(r.stdout, b"hi\n")
        p = subprocess.run(f"echo hi | {NONOCTL} run -- cat | tr a-z A-Z", shell=True,
                           cwd=self.ws, capture_output=True, timeout=60,
                           env=dict(os.environ, NONO_SOCKET=self.d.socket))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"HI\n")

    def test_signal_forwarding(self):
        env = dict(os.environ, NONO_SOCKET=self.d.socket)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            p = subprocess.Popen([NONOCTL, "run", "--", "sh", "-c", "echo started; exec sleep 60"],
                                 cwd=self.ws, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                self.assertEqual(p.stdout.readline(), b"started\n")
                p.send_signal(sig)
                self.assertEqual(p.wait(30), 128 + sig, f"signal {sig}")
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_wall_timeout(self):
        r = self.run_ctl("run", "--timeout", "200ms", "--", "sleep", "60")
        self.assertRc(r, 128 + 9)

    def test_terminal_passes_through(self):
        rc, out = self._pty_run([NONOCTL, "run", "--", "sh", "-c",
                                 "test -t 0 && test -t 1 && echo on-a-tty"], b"")
        self.assertEqual(rc, 0, out)
        self.assertIn(b"on-a-tty", out)

    def test_allow_read_outside_workspace(self):
        outside = tempfile.mkdtemp(prefix="outside-", dir=self.d.dir)
        try:
            with open(os.path.join(outside, "data"), "w") as f:
                f.write("outside data\n")
            target = os.path.join(outside, "data")
            r = self.run_ctl("run", "--", "cat", target)  # control: denied
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn(b"outside data", r.stdout)
            r = self.run_ctl("run", "--allow-read", outside, "--", "cat", target)
            self.assertRc(r, 0)
            self.assertEqual(r.stdout, b"outside data\n")
            r = self.run_ctl("run", "--allow-read", outside, "--", "sh", "-c",
                             f"echo x > {outside}/new")
            self.assertNotEqual(r.returncode, 0, "read grant must not allow writing")
            self.assertFalse(os.path.exists(os.path.join(outside, "new")))
        finally:
            shutil.rmtree(outside, ignore_errors=True)

    def test_allow_write_and_network_flags(self):
        outside = tempfile.mkdtemp(prefix="out-w-", dir=self.d.dir)
        try:
            r = self.run_ctl("run", "--", "sh", "-c", f"echo x > {outside}/f")
            self.assertNotEqual(r.returncode, 0)  # control
            r = self.run_ctl("run", "--allow-write", outside, "--", "sh", "-c", f"echo x > {outside}/f")
            self.assertRc(r, 0)
            self.assertTrue(os.path.exists(os.path.join(outside, "f")))
        finally:
            shutil.rmtree(outside, ignore_errors=True)
        # --inject also allows its host; the same host given twice is fine.
        r = self.run_ctl("run", "--allow-host", "api.example.com:443", "--inject",
                         "api.example.com:Authorization=Bearer ${secret:none}", "--",
                         "sh", "-c", "echo $HTTPS_PROXY")
        self.assertRc(r, 0)
        self.assertRegex(r.stdout.decode(), r"^http://([^@\s]+@)?127\.0\.0\.1:\d+\n$")
        for bad in (["--inject", "no-header"], ["--allow-host", "bad host:1"],
                    ["--allow-host", "h.com:99999"]):
            r = self.run_ctl("run", *bad, "--", "true")
            self.assertRc(r, 125)
            self.assertTrue(r.stderr.startswith(b"nonoctl: run: "), r.stderr)

    def test_environment_filtered_by_policy(self):
        env = {"E2E_TOKEN_VAR": "not-for-the-worker", "LD_PRELOAD": "/nonexistent/x.so"}
        r = self.run_ctl("run", "--", "env", env=env)
        self.assertRc(r, 0)
        self.assertNotIn(b"E2E_TOKEN_VAR", r.stdout)
        self.assertNotIn(b"LD_PRELOAD", r.stdout)
        self.assertIn(b"PATH=", r.stdout)
        pol = os.path.join(self.ws, "env.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nfilesystem: {read: [$WORKSPACE]}\nenv: {pass: [PATH, E2E_TOKEN_VAR]}\n")
        r = self.run_ctl("run", "--policy", pol, "--", "env", env=env)
        self.assertRc(r, 0)
        self.assertIn(b"E2E_TOKEN_VAR=not-for-the-worker", r.stdout)

    def test_policy_file_and_bad_policy(self):
        pol = os.path.join(self.ws, "p.yaml")
        with open(pol, "w") as f:
            f.write("version: 1\nfilesystem:\n  read: [$WORKSPACE]\n  write: [$WORKSPACE]\n")
        r = self.run_ctl("run", "--policy", pol, "--", "sh", "-c", "echo ok > w.txt")
        self.assertRc(r, 0)
        with open(pol, "w") as f:
            f.write("version: 1\nfilesystem:\n  raed: [/usr]\n")
        r = self.run_ctl("run", "--policy", pol, "--", "true")
        self.assertRc(r, 125)
        self.assertIn(f"{pol}:3:".encode(), r.stderr)

    # ---- ps / wait / kill ----

    def test_ps_wait_kill_json(self):
        env = dict(os.environ, NONO_SOCKET=self.d.socket)
        p = subprocess.Popen([NONOCTL, "run", "--label", "t=pswk", "--", "sleep", "60"],
                             cwd=self.ws, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            sid = None
            for _ in range(200):
                r = self.run_ctl("--json", "ps")
                self.assertRc(r, 0)
                for s in json.loads(r.stdout)["sessions"]:
                    if s.get("labels", {}).get("t") == "pswk" and s["state"] == "running":
                        sid = s["id"]
                if sid:
                    break
                time.sleep(0.05)
            self.assertIsNotNone(sid, "session never showed up in ps")
            r = self.run_ctl("ps")
            self.assertIn(sid.encode(), r.stdout)
            r = self.run_ctl("wait", sid, "--timeout", "100ms")
            self.assertRc(r, 124)
            r = self.run_ctl("--json", "kill", sid)
            self.assertRc(r, 0)
            json.loads(r.stdout)
            r = self.run_ctl("--json", "wait", sid)
            self.assertRc(r, 128 + 9)
            self.assertEqual(json.loads(r.stdout)["id"], sid)
            self.assertEqual(p.wait(30), 128 + 9)
            r = self.run_ctl("--json", "ps", "--history")
            self.assertRc(r, 0)
            self.assertIn(sid, [s["id"] for s in json.loads(r.stdout).get("history", [])])
            r = self.run_ctl("wait", "s-0000000000000000")
            self.assertRc(r, 125)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()

    # ---- secrets ----

    def test_secret_via_stdin_never_shown(self):
        r = self.run_ctl("secret", "set", "e2e_token", inp=(SECRET + "\n").encode())
        self.assertRc(r, 0)
        outputs = [r.stdout + r.stderr]
        r = self.run_ctl("secret", "list")
        self.assertRc(r, 0)
        self.assertIn(b"e2e_token", r.stdout)
        outputs.append(r.stdout + r.stderr)
        r = self.run_ctl("--json", "secret", "list")
        self.assertRc(r, 0)
        self.assertIn("e2e_token", [s["name"] for s in json.loads(r.stdout)])
        outputs.append(r.stdout)
        for args in (["ps", "--history"], ["--json", "ps", "--history"], ["status"]):
            r = self.run_ctl(*args)
            outputs.append(r.stdout + r.stderr)
        for o in outputs:
            self.assertNotIn(SECRET.encode(), o)
        self.assertNotIn(SECRET, self.d.logtext())
        r = self.run_ctl("secret", "rm", "e2e_token")
        self.assertRc(r, 0)
        r = self.run_ctl("--json", "secret", "list")
        self.assertNotIn("e2e_token", [s["name"] for s in json.loads(r.stdout)])
        self.assertRc(self.run_ctl("secret", "set", "empty", inp=b""), 1)

    def _pty_run(self, argv, typed):
        """argv on a fresh pty; type `typed` after the first output; all output."""
        import pty
        import select
        master, slave = pty.openpty()
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=self.ws,
                             env=dict(os.environ, NONO_SOCKET=self.d.socket),
                             start_new_session=True)
        os.close(slave)
        out, sent = b"", False
        try:
            while True:
                if not sent and out and typed:
                    os.write(master, typed)
                    sent = True
                r, _, _ = select.select([master], [], [], 30)
                if not r:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            return p.wait(30), out
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)

    def test_secret_prompt_without_echo(self):
        value = b"typed-" + SECRET.encode()
        rc, out = self._pty_run([NONOCTL, "secret", "set", "e2e_tty"], value + b"\n")
        self.assertEqual(rc, 0, out)
        self.assertIn(b"Secret value", out)
        self.assertNotIn(value, out)
        r = self.run_ctl("--json", "secret", "list")
        self.assertIn("e2e_tty", [s["name"] for s in json.loads(r.stdout)])
        self.run_ctl("secret", "rm", "e2e_tty")
        # Control: a program that does not turn echo off shows what was typed.
        rc, out = self._pty_run(["sh", "-c", "echo go; head -n1 >/dev/null"], value + b"\n")
        self.assertIn(value, out)

    # ---- local policy check, usage, daemon down ----

    def test_policy_check(self):
        good = os.path.join(self.ws, "good.json")
        with open(good, "w") as f:
            f.write('{"version": 1, "filesystem": {"read": ["/usr"]}}')
        r = nonoctl(None, "policy", "check", good)
        self.assertRc(r, 0)
        self.assertRegex(r.stdout.decode(), r": valid, digest [0-9a-f]{64}\n$")
        r = nonoctl(None, "--json", "policy", "check", good)
        self.assertRc(r, 0)
        j = json.loads(r.stdout)
        self.assertEqual(len(j["digest"]), 64)
        self.assertEqual(j["policy"]["version"], 1)
        bad = os.path.join(self.ws, "bad.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\nnetwork:\n  allow: [\"api.github.com:99999\"]\n")
        r = nonoctl(None, "policy", "check", bad)
        self.assertRc(r, 1)
        self.assertRegex(r.stderr.decode(), "^" + bad + r":3:\d+: network\.allow\[0\]")

    def test_usage_errors(self):
        for args in (["run"], ["run", "--bogus", "--", "true"], ["run", "--timeout", "x", "--", "true"],
                     ["wait"], ["kill", "a", "b"], ["secret"], ["secret", "frob"],
                     ["policy", "check"], ["no-such-command"]):
            r = nonoctl(None, *args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stderr!r}")

    def test_daemon_down(self):
        r = nonoctl(None, "run", "--", "true", cwd=self.ws)
        self.assertRc(r, 125)
        self.assertTrue(r.stderr.startswith(b"nonoctl: "))
        self.assertRc(nonoctl(None, "status"), 69)
        r = nonoctl(None, "secret", "set", "x", inp=SECRET.encode())
        self.assertRc(r, 69)
        self.assertNotIn(SECRET.encode(), r.stdout + r.stderr)
        self.assertRc(nonoctl(None, "wait", "s-0000000000000000"), 125)

    def test_daemon_dies_during_run(self):
        d2 = Daemon()
        worker = None
        try:
            env = dict(os.environ, NONO_SOCKET=d2.socket)
            p = subprocess.Popen([NONOCTL, "run", "--", "sh", "-c", "echo up; exec sleep 60"],
                                 cwd=self.ws, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                self.assertEqual(p.stdout.readline(), b"up\n")
                c = d2.client()
                worker = c.call("session.list")["sessions"][0]["pid"]
                c.close()
                d2.proc.kill()
                d2.proc.wait()
                self.assertEqual(p.wait(30), 125)
                os.killpg(worker, signal.SIGKILL)  # it holds our stderr open
                worker = None
                self.assertIn(b"lost the connection to nonod", p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()
        finally:
            d2.close()
            if worker:  # the daemon was killed: end its worker (by its own pgid)
                try:
                    os.killpg(worker, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def test_snapshot_first_then_undo(self):
        ws = os.path.join(self.d.dir, "snapws")
        os.makedirs(ws, exist_ok=True)
        with open(os.path.join(ws, "precious.txt"), "w") as f:
            f.write("keep me\n")
        r = subprocess.run([NONOCTL, "--socket", self.d.socket, "run", "--workspace", ws, "--snapshot", "--",
                            "sh", "-c", f"rm {ws}/precious.txt"], capture_output=True, timeout=120, cwd=ws)
        self.assertRc(r, 0)
        self.assertFalse(os.path.exists(os.path.join(ws, "precious.txt")))
        m = re.search(rb"snapshot ([0-9a-f]{12}) taken", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        c = self.d.client()
        c.call("snapshot.restore", {"snapshot": m.group(1).decode()})
        with open(os.path.join(ws, "precious.txt")) as f:
            self.assertEqual(f.read(), "keep me\n")
        # The daemon took it for the session, and one at exit too.
        m2 = re.search(rb"snapshot diff ([0-9a-f]{12}) ([0-9a-f]{12})", r.stderr)
        self.assertIsNotNone(m2, r.stderr)
        self.assertEqual(m2.group(1), m.group(1))

    def test_example_policies_run(self):
        """docs/policies/ examples work as written (they are what users copy)."""
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "policies")
        ws = os.path.join(self.d.dir, "examplews")
        os.makedirs(os.path.join(ws, "build"), exist_ok=True)
        for name in ("agent-default.yaml", "offline-build.json", "claude-code.yaml"):
            r = self.run_ctl("run", "--policy", os.path.join(docs, name), "--", "sh", "-c", "echo ran",
                             cwd=ws)
            if name == "claude-code.yaml" and not os.path.isdir(os.path.expanduser("~/.claude")):
                self.assertRc(r, 125)  # a required path is missing: named, nothing runs
                self.assertIn(b".claude", r.stderr)
                continue
            self.assertRc(r, 0)
            self.assertEqual(r.stdout, b"ran\n", name)
            if name == "agent-default.yaml":  # on_start: the daemon took a baseline
                self.assertRegex(r.stderr, rb"snapshot [0-9a-f]{12} taken")

    def test_verify_signature_needs_feature(self):
        r = self.run_ctl("run", "--verify-signature", "--", "true")
        self.assertRc(r, 125)
        self.assertIn(b"not supported by this nonod yet", r.stderr)


if __name__ == "__main__":
    nonotest.main()

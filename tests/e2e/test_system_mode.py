#!/usr/bin/env python3
"""System mode as root, driven by two unprivileged users: workers run as
their caller (groups and capabilities dropped), a user sees and touches only
their own sessions, and the socket admits only the nono group."""
import grp
import os
import subprocess
import sys
import unittest

import nonotest
from nonotest import Daemon
from sessions import run
from users import as_user, ensure_group, ensure_user

USERS = ("nono-e2e-a", "nono-e2e-b")


class SystemModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("system mode needs root")
        ensure_group("nono")
        cls.a = ensure_user(USERS[0], ["nono"])
        cls.b = ensure_user(USERS[1], ["nono"])
        cls.outsider = ensure_user("nono-e2e-out")
        cls.d = Daemon(mode="--system")
        os.chmod(cls.d.dir, 0o755)
        cls.ws = os.path.join(cls.d.dir, "ws-a")
        os.makedirs(cls.ws)
        os.chown(cls.ws, cls.a.pw_uid, cls.a.pw_gid)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "d"):
            cls.d.close()

    def as_user(self, user, body):
        return as_user(self, self.d, user, body)

    def test_socket_mode_and_group(self):
        st = os.stat(self.d.socket)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam("nono").gr_gid)

    def test_outsider_cannot_connect(self):
        r = subprocess.run(["setpriv", f"--reuid={self.outsider.pw_uid}", f"--regid={self.outsider.pw_gid}",
                            "--init-groups", sys.executable, "-c",
                            f"import socket; socket.socket(socket.AF_UNIX).connect({self.d.socket!r})"],
                           capture_output=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Permission denied", r.stderr)

    def test_worker_runs_as_caller_without_privilege(self):
        out = self.as_user(self.a, f"""
final, so, se = run(c, ["sh", "-c", "id -u; id -g; id -G; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"], {self.ws!r})
out['stdout'] = so.decode(); out['peer'] = c.call('daemon.status')['mode']
""")
        lines = out["stdout"].splitlines()
        self.assertEqual(int(lines[0]), self.a.pw_uid)
        self.assertEqual(int(lines[1]), self.a.pw_gid)
        self.assertNotIn("0", lines[2].split(), "root group must not survive")
        caps = dict(l.split(":\t") for l in lines[3:])
        self.assertEqual(int(caps["CapEff"], 16), 0)
        self.assertEqual(int(caps["CapBnd"], 16), 0)
        self.assertEqual(int(caps["CapAmb"], 16), 0)
        self.assertEqual(caps["NoNewPrivs"].strip(), "1")
        self.assertEqual(caps["Seccomp"].strip(), "2")

    def test_refused_while_workers_would_be_ptraceable(self):
        # fs.suid_dumpable=1 would let a user ptrace their worker (a copy of
        # nonod until its exec) after it drops to their uid: nonod refuses
        # other users' sessions then and says why; 0 (the control) works.
        path = "/proc/sys/fs/suid_dumpable"
        with open(path) as f:
            old = f.read().strip()
        body = f"""
attempt('r', lambda: c.call("session.create", {{"argv": ["true"], "cwd": {self.ws!r},
                                                "environ": PATH_ENV, "stdio": {{"mode": "pipe"}}}}))
if 'id' in out['r']:
    c.call("session.wait", {{"id": out['r']['id'], "timeout_ms": 60000}})
"""
        try:
            with open(path, "w") as f:
                f.write("1")
            refused = self.as_user(self.a, body)["r"]
        finally:
            with open(path, "w") as f:
                f.write(old)
        self.assertEqual(refused.get("error"), "sandbox_feature_unavailable", refused)
        self.assertIn("suid_dumpable", refused["detail"])
        if old != "1":
            self.assertIn("id", self.as_user(self.a, body)["r"])

    def test_users_only_see_their_own_sessions(self):
        mine = self.as_user(self.a, f"""
s = c.call('session.create', {{'argv': ['sleep', '60'], 'cwd': {self.ws!r}, 'environ': PATH_ENV}})
out['id'] = s['id']
""")
        sid = mine["id"]
        theirs = self.as_user(self.b, f"""
out['list'] = [x['id'] for x in c.call('session.list')['sessions']]
attempt('get', lambda: c.call('session.get', {{'id': {sid!r}}}))
attempt('kill', lambda: c.call('session.kill', {{'id': {sid!r}}}))
attempt('signal', lambda: c.call('session.signal', {{'id': {sid!r}, 'signal': 9}}))
attempt('wait', lambda: c.call('session.wait', {{'id': {sid!r}, 'timeout_ms': 10}}))
attempt('all', lambda: c.call('session.list', {{'all_users': True}}))
""")
        self.assertNotIn(sid, theirs["list"])
        for k in ("get", "kill", "signal", "wait"):
            self.assertEqual(theirs[k]["error"], "not_found", k)
        self.assertEqual(theirs["all"]["error"], "permission_denied")
        # Still running, and its owner can end it.
        mine = self.as_user(self.a, f"""
out['state'] = c.call('session.get', {{'id': {sid!r}}})['state']
c.call('session.kill', {{'id': {sid!r}}})
out['end'] = c.call('session.wait', {{'id': {sid!r}}})['end_reason']
""")
        self.assertEqual(mine["state"], "running")
        self.assertEqual(mine["end"], "killed by session.kill")

    def test_user_cannot_read_another_users_files_or_root_files(self):
        secret = os.path.join(self.d.dir, "b-secret")
        with open(secret, "w") as f:
            f.write("b's secret")
        os.chown(secret, self.b.pw_uid, self.b.pw_gid)
        os.chmod(secret, 0o600)
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE", self.d.dir]}}
        out = self.as_user(self.a, f"""
final, so, se = run(c, ["sh", "-c", "cat {secret}; cat /etc/shadow; ls {self.d.state}"], {self.ws!r}, policy={pol!r})
out['stdout'] = so.decode(); out['stderr'] = se.decode()
""")
        self.assertNotIn("b's secret", out["stdout"])
        self.assertEqual(out["stderr"].count("Permission denied"), 3, out["stderr"])

    def test_stopped_worker_cannot_freeze_nonod(self):
        """A user stops their workers between clone and exec, as fast as
        they are made (kill(-1, SIGSTOP) in a loop): nonod keeps answering
        everyone else, and keeps starting sessions."""
        try:
            out = as_user(self, self.d, self.a, f"""
import threading, os, signal, time
stop = []
def stopper():
    while not stop:
        try:
            os.kill(-1, signal.SIGSTOP)
        except OSError:
            pass
t = threading.Thread(target=stopper)
t.start()
n, end = 0, time.monotonic() + 4
try:
    while time.monotonic() < end:
        c.send({{"jsonrpc": "2.0", "id": n + 10, "method": "session.create",
                "params": {{"argv": ["/bin/true"], "cwd": {self.ws!r}, "environ": PATH_ENV}}}})
        n += 1
        time.sleep(0.002)
finally:
    stop.append(1)
    t.join()
out["sent"] = n
""", timeout=30)
            self.assertGreater(out["sent"], 0)
            root = self.d.client(timeout=15)
            self.assertEqual(root.call("daemon.status")["mode"], "system")
            final, _, _ = run(root, ["true"], self.ws)
            self.assertEqual(final["state"], "exited")
        finally:
            subprocess.run(["pkill", "-KILL", "-u", self.a.pw_name], check=False)


if __name__ == "__main__":
    nonotest.main()

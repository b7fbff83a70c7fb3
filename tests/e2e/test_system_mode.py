#!/usr/bin/env python3
"""System mode as root, driven by two unprivileged users: workers run as
their caller (groups and capabilities dropped), a user sees and touches only
their own sessions, and the socket admits only the nono group."""
import grp
import json
import os
import re
import subprocess
import sys
import time
import unittest

import nonotest
from nonotest import Daemon
from sessions import PATH_ENV, run
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



# A user's client that pipelines session.create requests and reports every
# answer it gets within `wait` seconds (the held starts never answer).
HOLDER = """
import json, socket, time
n, expect = %(n)d, %(expect)d
for i in range(n):
    c.send({"jsonrpc": "2.0", "id": 1000 + i, "method": "session.create",
            "params": {"argv": ["/bin/true"], "cwd": %(ws)r, "environ": PATH_ENV,
                       "policy": %(pol)r}})
print("sent", flush=True)
answers = {}
c.sock.settimeout(%(wait)d)
try:
    while len(answers) < expect:
        m = c.recv()
        if m is None:
            break
        if m.get("id", 0) >= 1000:
            answers[m["id"]] = m.get("error") or {"result": m["result"]["id"]}
except socket.timeout:
    pass
out["answers"] = [answers[k] for k in sorted(answers)]
"""


class SpawnerHoldTest(unittest.TestCase):
    """A user holds spawner threads in the kernel: the policy of each of
    their sessions names a path on an allow_other FUSE mount whose server
    never answers (not even FUSE_INIT), so the compile's fstat on the
    spawner thread waits forever. Earlier, once every thread was held, the
    next start was compiled on the event loop and froze nonod for every
    user. Now a user holds at most their share of the threads; their
    further starts wait in a bounded queue and fail with limit_exceeded
    ("resource exhausted") after the deadline, or at once beyond the
    queue's bound; nonod keeps answering, and root's and another user's
    sessions start. Control: the same sessions start while the path is an
    ordinary directory.

    The mount is made by root with user_id/group_id of the attacker and
    allow_other: what `fusermount -o allow_other` gives an unprivileged
    user where /etc/fuse.conf has user_allow_other (not set on this
    machine, and a test should not change it)."""

    USER_THREADS = 4   # SPAWN_USER_THREADS (daemon/session-spawn.c)
    QUEUED = 60        # more than the share: these wait in the queue
    # (The queue's bound, SPAWN_QUEUE_USER = 2048, is not reached here: how
    # many starts arrive before the first ones expire depends on speed.)

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("system mode and another user need root")
        if not os.path.exists("/dev/fuse"):
            self.skipTest("no /dev/fuse: cannot make a file system that never answers")
        ensure_group("nono")
        self.a = ensure_user(USERS[0], ["nono"])
        self.b = ensure_user(USERS[1], ["nono"])
        # In sanitizer builds: LeakSanitizer stops every thread with ptrace
        # at exit, and a thread waiting on a FUSE server that never answers
        # cannot stop, so the leak check would wait forever (a release nonod
        # exits: exit_group ends such threads).
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.d = Daemon(mode="--system", env={"ASAN_OPTIONS": asan})
        self.addCleanup(self.d.close)
        os.chmod(self.d.dir, 0o755)
        self.ws = os.path.join(self.d.dir, "ws-a")
        os.makedirs(self.ws)
        os.chown(self.ws, self.a.pw_uid, self.a.pw_gid)
        # Not an entry of a directory that nonod's own deny carve-outs walk
        # (the state dir, socket dir and config are in d.dir): that walk
        # stats every sibling, and would wait on the mount for any policy
        # whose allowed paths contain those: sandbox/fsrules.c
        # fs_split_entry, a separate issue (it holds a thread, not the loop).
        self.mnt = os.path.join(self.d.dir, "fuse-a", "m")
        os.makedirs(self.mnt)
        for p in (self.mnt, os.path.dirname(self.mnt)):
            os.chown(p, self.a.pw_uid, self.a.pw_gid)
        self.fuse_fds = []
        self.addCleanup(self.unhang)  # before the daemon's close (cleanups run last first)
        self.pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE", self.mnt]}}

    def hang(self, path=None):
        """Mount at path (self.mnt) a FUSE file system of user a that never answers."""
        import ctypes
        path = path or self.mnt
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = (f"fd={fd},rootmode=40000,user_id={self.a.pw_uid},group_id={self.a.pw_gid},"
                "allow_other").encode()
        if libc.mount(b"nono-e2e-hang", path.encode(), b"fuse", 2 | 4, opts) != 0:  # nosuid, nodev
            e = ctypes.get_errno()
            os.close(fd)
            self.skipTest(f"cannot mount a FUSE file system: {os.strerror(e)}")
        self.fuse_fds.append((fd, path))

    def unhang(self):
        """Closing the device aborts the connection: every waiter gets
        ENOTCONN. Then the mount goes (lazily: nothing may touch it)."""
        import ctypes
        while self.fuse_fds:
            fd, path = self.fuse_fds.pop()
            os.close(fd)
            ctypes.CDLL(None, use_errno=True).umount2(path.encode(), 2)  # MNT_DETACH

    def start_as_a(self, body, stderr=subprocess.PIPE):
        """Run client body as user a in the background; killed at cleanup."""
        from users import CLIENT, HERE
        code = CLIENT % {"here": HERE, "sock": self.d.socket, "timeout": 60, "body": body}
        p = subprocess.Popen(["setpriv", f"--reuid={self.a.pw_uid}", f"--regid={self.a.pw_gid}",
                              "--init-groups", sys.executable, "-c", code],
                             stdout=subprocess.PIPE, stderr=stderr,
                             env={"PATH": os.environ["PATH"]}, cwd="/")
        self.addCleanup(lambda: (p.kill(), p.wait()) if p.poll() is None else None)
        return p

    def holder(self, n, expect, wait):
        """Start HOLDER as user a in the background."""
        return self.start_as_a(HOLDER % {"n": n, "expect": expect, "ws": self.ws,
                                         "pol": self.pol, "wait": wait})

    @staticmethod
    def result(p):
        so, se = p.communicate(timeout=180)
        if p.returncode != 0:
            raise AssertionError(se.decode())
        return json.loads(so.decode().splitlines()[-1])

    def fds(self):
        """nonod's descriptors that a start holds: its stdio (null mode),
        its error pipe, its cgroup."""
        n = {"/dev/null": 0, "pipe": 0, "cgroup": 0}
        for f in os.listdir(f"/proc/{self.d.proc.pid}/fd"):
            try:
                t = os.readlink(f"/proc/{self.d.proc.pid}/fd/{f}")
            except OSError:
                continue
            if t == "/dev/null":
                n[t] += 1
            elif t.startswith("pipe:"):
                n["pipe"] += 1
            elif t.startswith("/sys/fs/cgroup/") and "nono" in t:
                n["cgroup"] += 1
        return n

    def wait_log(self, needle, count, timeout=60):
        """Until the log has count lines with needle (bounded: a hang fails)."""
        end = time.monotonic() + timeout
        while self.d.logtext().count(needle) < count:
            self.assertLess(time.monotonic(), end, f"log never had {count}x {needle!r}:\n"
                            + self.d.logtext()[-3000:])
            time.sleep(0.05)

    def test_held_spawner_threads_do_not_freeze_nonod(self):
        n = self.USER_THREADS + self.QUEUED
        # Control: the same sessions, pipelined, start while the path answers.
        out = self.result(self.holder(n, n, 60))
        started = [a for a in out["answers"] if "result" in a]
        self.assertEqual(len(started), n, out)
        fds_before = self.fds()

        self.hang()
        p = self.holder(n, n - self.USER_THREADS, 60)
        self.assertEqual(p.stdout.readline(), b"sent\n")
        # nonod answers someone else within a few seconds (the old fallback
        # compiled the ninth start on the loop: this timed out).
        root = self.d.client(timeout=20)
        self.assertEqual(root.call("daemon.status")["mode"], "system")
        # Every start beyond the share is queued (or refused) by now.
        self.wait_log("waits for a spawner thread", self.QUEUED)
        final, _, _ = run(root, ["/bin/true"], self.ws)
        self.assertEqual((final["state"], final["status"].get("code")), ("exited", 0), final)
        other = as_user(self, self.d, self.b, f"""
final, so, se = run(c, ["/bin/true"], {self.d.dir!r})
out['final'] = final
""", timeout=30)
        self.assertEqual(other["final"]["status"].get("code"), 0, other)

        out = self.result(p)
        answers = out["answers"]
        self.assertEqual(len(answers), n - self.USER_THREADS, answers)  # the held never answer
        self.assertFalse([a for a in answers if "result" in a], answers)
        kinds = {a["data"]["kind"] for a in answers}
        self.assertEqual(kinds, {"limit_exceeded"}, answers)
        details = [a["data"]["detail"] for a in answers]
        self.assertTrue(all(d.startswith("resource exhausted: ") for d in details), details)
        expired = [d for d in details if "took no new start for" in d]
        self.assertEqual(len(expired), self.QUEUED, details)
        self.assertIn(f"uid {self.a.pw_uid} holds {self.USER_THREADS} of its share of {self.USER_THREADS}", expired[0])
        # The queued starts gave back what the loop had prepared for them;
        # only the held ones keep theirs (stdio, error pipe, cgroup).
        fds = self.fds()
        held = self.USER_THREADS
        # (a held compile has /dev/null open too: the base policy allows it)
        self.assertLessEqual(fds["/dev/null"], fds_before["/dev/null"] + 4 * held, fds)
        self.assertEqual(fds["pipe"], fds_before["pipe"] + 2 * held, fds)
        self.assertLessEqual(fds["cgroup"], fds_before["cgroup"] + held, fds)
        # nonod still answers the attacker too.
        self.assertEqual(root.call("daemon.status")["mode"], "system")

        # Shutdown with the starts still held in the kernel: nonod stops,
        # answers nobody wrongly, and removes their TMPDIRs and cgroups.
        self.assertEqual(self.d.stop(timeout=120), 0, self.d.logtext()[-3000:])
        log = self.d.logtext()
        given_up = re.findall(r"session (s-[0-9a-f]+): start given up at shutdown", log)
        self.assertEqual(len(given_up), self.USER_THREADS, log[-3000:])
        for sid in given_up:
            self.assertFalse(os.path.exists(f"/tmp/nono-{sid}"), sid)
            self.assertNotIn(f"{sid}: rmdir", log)

    def test_held_snapshot_jobs_are_bounded(self):
        """Snapshot operations run as jobs, a thread each (with a database
        connection and descriptors). A user who holds them (workspaces on
        their own FUSE mounts that never answer) and pipelines more made
        one thread per request: 500 requests, 500 threads and ~3,800
        descriptors in root's nonod. Worse, snapshot.create resolved and
        stat()ed the workspace on the event loop, as root: the first
        create of a workspace on such a mount froze nonod for everyone
        (the previous code fails here: no answer at all). Now the job
        resolves it, with the client's rights; an owner runs at most 4 jobs, 16
        run in all, and further ones wait in a queue of at most 64 per
        owner; beyond it the answer is limit_exceeded at once. Another
        user's snapshot and root's status are answered meanwhile, and the
        queued jobs run once the held ones end."""
        held, queued, extra = 4, 64, 10  # SNAP_JOBS_PER_UID, SNAP_JOBS_QUEUED_PER_UID
        mounts = []
        for i in range(held):
            m = os.path.join(self.d.dir, "fuse-a", f"ws{i}")
            os.makedirs(m)
            os.chown(m, self.a.pw_uid, self.a.pw_gid)
            mounts.append(m)
        threads0 = len(os.listdir(f"/proc/{self.d.proc.pid}/task"))
        for m in mounts:
            self.hang(m)
        wss = mounts + [self.ws] * (queued + extra)
        body = f"""
import socket
for i, ws in enumerate({wss!r}):
    c.send({{"jsonrpc": "2.0", "id": 1000 + i, "method": "snapshot.create",
            "params": {{"workspace": ws}}}})
answers = {{}}
def collect(n, wait):
    c.sock.settimeout(wait)
    try:
        while len(answers) < n:
            m = c.recv()
            if m is None:
                break
            answers[m["id"]] = m["error"]["data"] if "error" in m else "ok"
    except socket.timeout:
        pass
collect({extra}, 60)
print(json.dumps(answers), flush=True)
collect({len(wss)}, 120)
out["answers"] = answers
"""
        p = self.start_as_a(body)
        first = json.loads(p.stdout.readline() or "{}")
        # The ones past the queue are refused at once, and only those.
        self.assertEqual(len(first), extra, first)
        self.assertEqual({a["kind"] for a in first.values()}, {"limit_exceeded"}, first)
        self.assertTrue(all(a["detail"].startswith("cannot start the snapshot job: resource "
                                                   "exhausted") for a in first.values()), first)
        self.assertEqual(sorted(int(k) for k in first),
                         list(range(1000 + held + queued, 1000 + len(wss))))
        # nonod holds a bounded number of threads, answers root, and runs
        # another user's snapshot.
        self.assertLessEqual(len(os.listdir(f"/proc/{self.d.proc.pid}/task")), threads0 + held)
        root = self.d.client(timeout=10)
        self.assertEqual(root.call("daemon.status")["mode"], "system")
        wsb = os.path.join(self.d.dir, "ws-b")
        os.makedirs(wsb)
        with open(os.path.join(wsb, "f"), "w") as f:
            f.write("b")
        os.chown(wsb, self.b.pw_uid, self.b.pw_gid)
        os.chown(os.path.join(wsb, "f"), self.b.pw_uid, self.b.pw_gid)
        other = as_user(self, self.d, self.b, f"""
attempt("snap", lambda: c.call("snapshot.create", {{"workspace": {wsb!r}}}))
""", timeout=60)
        self.assertIn("id", other["snap"].get("snapshot", {}), other)
        # The held jobs end (ENOTCONN); the queued ones then run, in turn.
        self.unhang()
        so, se = p.communicate(timeout=240)
        self.assertEqual(p.returncode, 0, se.decode())
        answers = json.loads(so.decode().splitlines()[-1])["answers"]
        self.assertEqual(len(answers), len(wss), answers)
        queued_ok = [a for k, a in answers.items()
                     if held <= int(k) - 1000 < held + queued and a == "ok"]
        self.assertGreaterEqual(len(queued_ok), 1, answers)  # the first in line ran
        self.assertEqual(root.call("daemon.status")["mode"], "system")

    def test_policy_file_on_fuse_mount(self):
        """A policy_file on the user's FUSE mount that never answers: nonod
        read it on the event loop (with the user's fsuid), and the open
        froze nonod for everyone. It is read on a thread now, 4 at most per
        user: the fifth is refused at once, and nonod answers root and runs
        another user's session from a policy file (control)."""
        self.hang()
        pf = os.path.join(self.mnt, "p.yaml")
        out = as_user(self, self.d, self.a, f"""
import socket
for i in range(5):
    c.send({{"jsonrpc": "2.0", "id": 100 + i, "method": "session.create",
            "params": {{"argv": ["/bin/true"], "cwd": {self.ws!r}, "policy_file": {pf!r}}}}})
c.sock.settimeout(20)
try:
    m = c.recv()
    out["answer"] = m
except socket.timeout:
    out["answer"] = None
""", timeout=60)
        a = out["answer"]
        self.assertIsNotNone(a, "no answer at all")
        self.assertEqual(a["id"], 104, a)
        self.assertEqual(a["error"]["data"]["kind"], "limit_exceeded", a)
        self.assertIn("resource exhausted", a["error"]["data"]["detail"])
        root = self.d.client(timeout=10)
        self.assertEqual(root.call("daemon.status")["mode"], "system")
        pb = os.path.join(self.d.dir, "pb.yaml")
        with open(pb, "w") as f:
            f.write("version: 1\nfilesystem:\n  read: [$WORKSPACE]\n")
        other = as_user(self, self.d, self.b, f"""
final, so, se = run(c, ["/bin/true"], {self.d.dir!r}, policy_file={pb!r})
out['final'] = final
""", timeout=30)
        self.assertEqual(other["final"]["status"].get("code"), 0, other)

    def test_mount_in_tmpdir_at_session_end(self):
        """The user owns their session's TMPDIR, so they can mount a FUSE
        file system in it from outside the sandbox. When the session ends
        nonod removes the TMPDIR on its event loop: rmtree opens entries
        with RESOLVE_NO_XDEV before any stat, so it stops at the mount
        point without asking the server anything (a stat or plain open
        there waited on it forever, and nonod stopped answering)."""
        s = as_user(self, self.d, self.a, f"""
out['s'] = c.call("session.create", {{"argv": ["sleep", "2"], "cwd": {self.ws!r},
                                      "environ": PATH_ENV}})
""", timeout=30)["s"]
        # What user a does with fusermount -o allow_other, in their own directory.
        self.mnt = f"/tmp/nono-{s['id']}/m"
        os.mkdir(self.mnt)
        os.chown(self.mnt, self.a.pw_uid, self.a.pw_gid)
        self.hang()
        c = self.d.client()
        self.assertEqual(c.call("session.wait", {"id": s["id"], "timeout_ms": 60000})["state"],
                         "exited")
        root = self.d.client(timeout=5)
        self.assertEqual(root.call("daemon.status")["mode"], "system")

    def test_carve_out_beside_a_hung_mount(self):
        """Root's policy allows the directory that holds user a's hanging
        mount, with a deny carved out of it: the compile walks every entry
        there, the mount included. Its type comes from cached attributes
        (statx AT_STATX_DONT_SYNC), so the walk never waits on a's server,
        and root's session runs (a plain stat held root's start forever).
        Control: the same policy before the mount hangs."""
        parent = os.path.dirname(self.mnt)
        with open(os.path.join(parent, "secret"), "w") as f:
            f.write("denied")
        pol = {"version": 1, "filesystem": {"read": ["$WORKSPACE", parent],
                                            "deny": [os.path.join(parent, "secret")]}}
        root = self.d.client(timeout=30)
        argv = ["sh", "-c", f"cat {parent}/secret; ls {parent} >/dev/null && echo listed"]
        final, out, _ = run(root, argv, self.ws, policy=pol)  # control
        self.assertEqual(out, b"listed\n", final)
        self.hang()
        final, out, _ = run(root, argv, self.ws, policy=pol)
        self.assertEqual(final["state"], "exited", final)
        self.assertEqual(out, b"listed\n", final)  # the deny still holds

    def user_sends(self, body):
        """Run body as user a in the background (it may wait forever on
        the mount); killed at cleanup."""
        p = self.start_as_a(body + "\nprint('sent', flush=True)\nimport time; time.sleep(600)",
                            stderr=subprocess.DEVNULL)
        self.assertEqual(p.stdout.readline(), b"sent\n")

    def test_cwd_on_fuse_mount(self):
        """A cwd on the user's allow_other FUSE mount that never answers:
        the cwd and workspace are checked on a spawner thread with the
        user's fsuid, never stat()ed on the event loop (which froze nonod)."""
        self.hang()
        self.user_sends(f"""
c.send({{"jsonrpc": "2.0", "id": 7, "method": "session.create",
        "params": {{"argv": ["/bin/true"], "cwd": {self.mnt!r}, "environ": PATH_ENV}}}})
""")
        root = self.d.client(timeout=10)
        self.assertEqual(root.call("daemon.status")["mode"], "system")

    def test_stdio_fd_on_fuse_mount(self):
        """An O_PATH fd of the user's hanging FUSE mount passed as stdio:
        fstat() on it would be a FUSE_GETATTR that never returns (it froze
        the event loop); take_stdio asks getsockopt(SO_PEERCRED) only,
        which touches no file system (ENOTSOCK for a non-socket)."""
        self.hang()
        self.user_sends(f"""
import array, os, socket
p = os.open({self.mnt!r}, os.O_PATH)
msg = {{"jsonrpc": "2.0", "id": 7, "method": "session.create",
       "params": {{"argv": ["/bin/true"], "cwd": {self.ws!r}, "environ": PATH_ENV,
                  "stdio": {{"mode": "fds", "fds": [0, 0, 0]}}}}}}
c.sock.sendmsg([json.dumps(msg).encode() + b"\\n"],
               [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [p]))])
""")
        root = self.d.client(timeout=10)
        self.assertEqual(root.call("daemon.status")["mode"], "system")


if __name__ == "__main__":
    nonotest.main()

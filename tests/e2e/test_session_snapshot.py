#!/usr/bin/env python3
"""Automatic snapshots of a session's workspace (policy snapshot.on_start /
on_exit) through a real nonod: the baseline holds the workspace as it was
before the worker ran, the exit snapshot holds what the worker left, both
ids are on the session, in session.exited and in the history, restore to
the baseline undoes the run, excludes are honoured, and a baseline that
cannot be taken stops the session from starting (fail closed). nonoctl run
--snapshot prints both ids."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import nonotest
from nonotest import NONOCTL, Daemon, RpcError
from sessions import PATH_ENV, exit_code, run
from users import SystemFixture

E_POLICY = -32005

WRECK = "echo wrecked > a.txt; rm -f b.txt; mkdir -p new; echo n > new/n; echo c > cache/c"


def policy(**snap):
    return {"version": 1,
            "filesystem": {"read": ["$WORKSPACE", "$TMPDIR"], "write": ["$WORKSPACE", "$TMPDIR"]},
            "snapshot": snap}


class SessionSnapshotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.c = self.d.client()
        self.ws = tempfile.mkdtemp(prefix="ws-", dir=self.d.dir)
        for name, data in (("a.txt", "original a\n"), ("b.txt", "original b\n")):
            with open(os.path.join(self.ws, name), "w") as f:
                f.write(data)
        os.mkdir(os.path.join(self.ws, "cache"))

    def tearDown(self):
        self.c.close()
        shutil.rmtree(self.ws, ignore_errors=True)

    def read(self, name):
        with open(os.path.join(self.ws, name)) as f:
            return f.read()

    def test_start_and_exit_snapshots_undo_the_run(self):
        final, _, _ = run(self.c, ["sh", "-c", WRECK], self.ws,
                          policy=policy(on_start=True, on_exit=True, exclude=["cache"]))
        self.assertEqual(exit_code(final), 0)
        self.assertEqual(final["state"], "exited")
        snaps = final["snapshots"]
        self.assertEqual(snaps["workspace"], self.ws)
        self.assertRegex(snaps["start"], r"^[0-9a-f]{12}$")
        self.assertRegex(snaps["exit"], r"^[0-9a-f]{12}$")
        self.assertNotEqual(snaps["start"], snaps["exit"])
        self.assertNotIn("exit_error", snaps)

        listed = {s["id"]: s for s in self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"]}
        self.assertIn(snaps["start"], listed)
        self.assertIn(snaps["exit"], listed)
        self.assertIn(final["id"], listed[snaps["start"]]["label"])
        self.assertIn("start", listed[snaps["start"]]["label"])

        # The exit snapshot saw exactly what the worker did (cache/ is excluded).
        diff = self.c.call("snapshot.diff", {"from": snaps["start"], "to": snaps["exit"]})
        changed = {c["path"]: c["kind"] for c in diff["changes"]}
        self.assertEqual(changed, {"a.txt": "modified", "b.txt": "removed",
                                   "new": "added", "new/n": "added"}, diff)

        # Rolling back to the baseline undoes the run, and leaves cache/ alone.
        self.c.call("snapshot.restore", {"snapshot": snaps["start"]})
        self.assertEqual(self.read("a.txt"), "original a\n")
        self.assertEqual(self.read("b.txt"), "original b\n")
        self.assertFalse(os.path.exists(os.path.join(self.ws, "new")))
        self.assertEqual(self.read("cache/c"), "c\n")

        # The ids are kept in the session history.
        hist = self.c.call("session.list", {"history": True})["history"]
        row = next(h for h in hist if h["id"] == final["id"])
        self.assertEqual(row.get("snapshot_start"), snaps["start"])
        self.assertEqual(row.get("snapshot_exit"), snaps["exit"])

    def test_baseline_is_taken_before_exec(self):
        """The worker deletes a file at once: the baseline still has it."""
        final, _, _ = run(self.c, ["rm", "a.txt"], self.ws, policy=policy(on_start=True))
        self.assertEqual(exit_code(final), 0)
        self.assertFalse(os.path.exists(os.path.join(self.ws, "a.txt")))
        self.assertNotIn("exit", final["snapshots"])
        self.c.call("snapshot.restore", {"snapshot": final["snapshots"]["start"], "paths": ["a.txt"]})
        self.assertEqual(self.read("a.txt"), "original a\n")

    def test_exit_snapshot_waits_for_the_whole_tree(self):
        """A background child still writing when the leader exits is killed
        first: the exit snapshot and the live tree agree afterwards."""
        final, _, _ = run(self.c, ["sh", "-c", "(sleep 0.3; echo late > late.txt) & exit 0"],
                          self.ws, policy=policy(on_exit=True))
        self.assertEqual(exit_code(final), 0)
        diff = self.c.call("snapshot.diff", {"from": final["snapshots"]["exit"]})
        self.assertEqual(diff["changes"], [])
        self.assertFalse(os.path.exists(os.path.join(self.ws, "late.txt")))

    def test_failed_baseline_refuses_to_start(self):
        marker = os.path.join(self.ws, "ran")
        missing = os.path.join(self.ws, "does-not-exist")
        with self.assertRaises(RpcError) as cm:
            run(self.c, ["touch", marker], self.ws,
                policy=dict(policy(on_start=True, workspace=missing)))
        self.assertEqual(cm.exception.field, "policy.snapshot")
        self.assertIn("not started", cm.exception.detail)
        self.assertFalse(os.path.exists(marker), "nothing may run without the baseline")
        # $TMPDIR is the session's own and gone at exit: not a workspace.
        with self.assertRaises(RpcError) as cm:
            run(self.c, ["true"], self.ws, policy=policy(on_start=True, workspace="$TMPDIR/x"))
        self.assertEqual(cm.exception.code, E_POLICY)
        self.assertEqual(cm.exception.field, "policy.snapshot.workspace")
        # The daemon is unaffected.
        final, _, _ = run(self.c, ["true"], self.ws)
        self.assertEqual(exit_code(final), 0)
        self.assertNotIn("snapshots", final)

    def test_failed_start_takes_no_exit_snapshot(self):
        before = self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"]
        with self.assertRaises(RpcError):
            run(self.c, ["/nonexistent/prog"], self.ws, policy=policy(on_exit=True))
        after = self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"]
        self.assertEqual(len(before), len(after))

    def test_daemon_stop_takes_the_exit_snapshot(self):
        """SIGTERM to nonod stops the session, and its exit snapshot is still
        taken and recorded before nonod exits."""
        d = Daemon(config="shutdown_grace = 2s\n")
        self.addCleanup(d.close)
        c = d.client()
        s = c.call("session.create", {"argv": ["sh", "-c", "echo during > a.txt; sleep 300"],
                                      "cwd": self.ws, "environ": PATH_ENV,
                                      "policy": policy(on_start=True, on_exit=True)})
        for _ in range(200):
            if self.read("a.txt") == "during\n":
                break
            time.sleep(0.02)
        self.assertEqual(d.stop(), 0, d.logtext())
        d.start()
        c = d.client()
        hist = c.call("session.list", {"history": True})["history"]
        row = next(h for h in hist if h["id"] == s["id"])
        self.assertEqual(row["end_reason"], "stopped by daemon shutdown")
        self.assertEqual(row["snapshot_start"], s["snapshots"]["start"])
        self.assertRegex(row.get("snapshot_exit") or "", r"^[0-9a-f]{12}$", d.logtext()[-3000:])
        diff = c.call("snapshot.diff", {"from": row["snapshot_start"], "to": row["snapshot_exit"]})
        self.assertEqual([(x["path"], x["kind"]) for x in diff["changes"]], [("a.txt", "modified")])
        self.assertTrue(c.call("snapshot.verify")["ok"])

    def test_daemon_stop_gives_up_a_long_exit_snapshot(self):
        """A worker that leaves a huge file behind cannot hold nonod's
        shutdown: after the grace the exit snapshot is given up, recorded as
        such, nothing half-made is committed, and the store verifies. (The
        file has a byte of data every 2 MiB over 64 GiB: holes shorter than
        a chunk are read like data, so it takes long to read, for 128 MiB
        on disk. A plain sparse file is snapshotted in no time now.)"""
        d = Daemon(config="shutdown_grace = 1s\n")
        self.addCleanup(d.close)
        c = d.client()
        make = ("f = open('huge', 'wb')\n"
                "for i in range(0, 64 << 30, 2 << 20):\n"
                "    f.seek(i); f.write(b'x')\n")
        s = c.call("session.create", {"argv": ["python3", "-c", make],
                                      "cwd": self.ws, "environ": PATH_ENV,
                                      "policy": policy(on_exit=True)})
        for _ in range(600):
            if c.call("session.get", {"id": s["id"]})["state"] == "finishing":
                break
            time.sleep(0.05)
        self.assertEqual(c.call("session.get", {"id": s["id"]})["state"], "finishing")
        self.assertEqual(d.stop(timeout=60), 0, d.logtext()[-2000:])
        self.assertIn("given up", d.logtext())
        d.start()
        c = d.client()
        row = next(h for h in c.call("session.list", {"history": True})["history"]
                   if h["id"] == s["id"])
        self.assertNotIn("snapshot_exit", row)
        self.assertEqual(c.call("snapshot.list", {"workspace": self.ws})["snapshots"], [])
        self.assertTrue(c.call("snapshot.verify")["ok"])

    def test_abandoned_create_starts_nothing(self):
        """A client that goes away while its baseline is being taken gets no
        session: nobody would know its id."""
        with open(os.path.join(self.ws, "big"), "wb") as f:
            f.write(os.urandom(64 << 20))  # makes the baseline outlast the disconnect
        marker = os.path.join(self.ws, "ran")
        c = self.d.client()
        c.send({"jsonrpc": "2.0", "id": 1, "method": "session.create",
                "params": {"argv": ["touch", marker], "cwd": self.ws, "environ": PATH_ENV,
                           "policy": policy(on_start=True)}})
        c.close()
        for _ in range(600):  # until the baseline's completion has been handled
            if "abandoned" in self.d.logtext() or self.c.call("session.list")["sessions"]:
                break
            time.sleep(0.05)
        self.assertIn("abandoned", self.d.logtext())
        self.assertTrue(self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"])
        self.assertEqual(self.c.call("session.list")["sessions"], [])
        self.assertFalse(os.path.exists(marker))

    def test_nonoctl_run_snapshot(self):
        if not NONOCTL:
            self.skipTest("NONOCTL is not set")
        env = dict(os.environ, NONO_SOCKET=self.d.socket)
        r = subprocess.run([NONOCTL, "run", "--snapshot", "--",
                            "sh", "-c", "echo changed > a.txt"],
                           cwd=self.ws, env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + self.d.logtext()[-2000:])
        self.assertEqual(self.read("a.txt"), "changed\n")
        self.assertRegex(r.stderr, r"snapshot [0-9a-f]{12} taken; undo the run with: "
                                   r"nonoctl snapshot restore [0-9a-f]{12}")
        self.assertRegex(r.stderr, r"nonoctl snapshot diff [0-9a-f]{12} [0-9a-f]{12}")
        start = r.stderr.split("snapshot restore ")[1].split()[0]
        subprocess.run([NONOCTL, "snapshot", "restore", start], env=env,
                       check=True, capture_output=True, timeout=60)
        self.assertEqual(self.read("a.txt"), "original a\n")


class SessionSnapshotSystemTest(SystemFixture):
    """System mode: the snapshots go to the calling user's own store and are
    taken with that user's rights."""

    def test_own_store_own_rights(self):
        ws = tempfile.mkdtemp(prefix="sysws-", dir=self.d.dir)
        self.addCleanup(shutil.rmtree, ws, True)
        os.chmod(ws, 0o700)
        with open(os.path.join(ws, "f.txt"), "w") as f:
            f.write("before\n")
        for p in (ws, os.path.join(ws, "f.txt")):
            os.chown(p, self.a.pw_uid, self.a.pw_gid)
        pol = policy(on_start=True, on_exit=True)
        out = self.as_user(self.a, f"""
s = c.call("session.create", {{"argv": ["sh", "-c", "echo after > f.txt"], "cwd": {ws!r},
                               "environ": {PATH_ENV!r}, "policy": {pol!r}}})
out["final"] = c.call("session.wait", {{"id": s["id"], "timeout_ms": 60000}})
out["mine"] = [x["id"] for x in c.call("snapshot.list", {{}})["snapshots"]]
""")
        snaps = out["final"]["snapshots"]
        self.assertIn(snaps["start"], out["mine"])
        self.assertIn(snaps["exit"], out["mine"])
        # Another user sees neither and cannot restore them.
        other = self.as_user(self.b, f"""
out["theirs"] = [x["id"] for x in c.call("snapshot.list", {{}})["snapshots"]]
attempt("restore", lambda: c.call("snapshot.restore", {{"snapshot": {snaps["start"]!r}}}))
""")
        self.assertNotIn(snaps["start"], other["theirs"])
        self.assertEqual(other["restore"]["error"], "not_found")
        # The owner rolls back; the file stays theirs.
        self.as_user(self.a, f"""
c.call("snapshot.restore", {{"snapshot": {snaps["start"]!r}}})
""")
        with open(os.path.join(ws, "f.txt")) as f:
            self.assertEqual(f.read(), "before\n")
        self.assertEqual(os.stat(os.path.join(ws, "f.txt")).st_uid, self.a.pw_uid)
        # A workspace the user cannot read: no baseline, so no session.
        secret = tempfile.mkdtemp(prefix="rootonly-", dir=self.d.dir)
        self.addCleanup(shutil.rmtree, secret, True)
        os.chmod(secret, 0o700)
        pol2 = policy(on_start=True, workspace=secret)
        denied = self.as_user(self.a, f"""
attempt("create", lambda: c.call("session.create", {{"argv": ["true"], "cwd": {ws!r},
        "environ": {PATH_ENV!r}, "policy": {pol2!r}}}))
""")
        self.assertEqual(denied["create"]["field"], "policy.snapshot")
        self.assertEqual(denied["create"]["error"], "permission_denied")


if __name__ == "__main__":
    nonotest.main()

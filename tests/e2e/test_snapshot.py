#!/usr/bin/env python3
"""Snapshots through a real nonod and real files: create -> change -> diff
shows exactly the changes -> restore brings back content, modes, symlinks,
empty dirs and mtimes byte for byte (names with newlines and invalid UTF-8
included), removes what the snapshot lacks, leaves excluded paths alone, and
can itself be undone from the safety snapshot. Bad params name their field.
As root with a system-mode daemon: users cannot touch each other's
workspaces or snapshots, restored files belong to the workspace owner, and a
directory swapped for a symlink to a decoy (root-owned, or the user's own
outside the workspace) is never written through, with the control case.
The daemon answers daemon.status while a 200 MB snapshot runs, and sends
snapshot.progress meanwhile. nonoctl snapshot * with and without --json.
A 16 TiB sparse file is snapshotted, verified, diffed and restored without
reading or writing its holes, and restores sparse."""
import ctypes
import json
import os
import pty
import select
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

import nonotest
from nonotest import Daemon, NONOCTL, RpcError
from users import SystemFixture

T0 = 1_600_000_000_123_456_789  # an mtime in ns, far from "now"


# ---- helpers ----

def manifest(root, skip=(b"node_modules",)):
    """{relpath bytes: (type, mode, mtime_ns, content/target)}; root's own
    entry is left out (restore cannot set it), skip names are not entered."""
    out = {}
    root = os.fsencode(root)

    def walk(rel):
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full)):
            r = os.path.join(rel, name) if rel else name
            if name in skip:
                continue
            p = os.path.join(root, r)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[r] = ("l", 0, st.st_mtime_ns, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[r] = ("d", stat.S_IMODE(st.st_mode), st.st_mtime_ns, None)
                walk(r)
            else:
                with open(p, "rb") as f:
                    out[r] = ("f", stat.S_IMODE(st.st_mode), st.st_mtime_ns, f.read())
    walk(b"")
    return out


def tree_bytes(root):
    """Everything under root (for excluded subtrees and decoys), no mtimes."""
    out = {}
    for dp, dns, fns in os.walk(os.fsencode(root)):
        for n in sorted(dns + fns):
            p = os.path.join(dp, n)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, os.fsencode(root))] = (st.st_mode, st.st_uid, data)
    return out


def write(path, data, mode=0o644, mtime=T0):
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime, mtime))


def changes(res):
    """{(path bytes, kind)} of a diff/restore result."""
    out = set()
    for c in res["changes"]:
        p = bytes.fromhex(c["path_hex"]) if "path_hex" in c else c["path"].encode()
        out.add((p, c["kind"]))
    return out


def call_collect(c, method, params):
    """Call, returning (result, progress notifications of this request)."""
    rid = c.next_id
    c.next_id += 1
    c.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    notes = []
    while True:
        m = c.recv()
        if m is None:
            raise AssertionError(f"{method}: connection closed")
        if "id" not in m:
            if m.get("method") == "snapshot.progress" and m["params"].get("request") == rid:
                notes.append(m["params"])
            continue
        if "error" in m:
            raise RpcError(m["error"])
        return m["result"], notes


def nonoctl(d, *args, cwd=None, env=None, timeout=120):
    e = dict(os.environ, NONO_SOCKET=d.socket if d else "/nonexistent/nonod.sock")
    e.update(env or {})
    return subprocess.run([NONOCTL, *args], cwd=cwd, env=e, timeout=timeout,
                          capture_output=True)


def populate(ws):
    """The reference workspace (see test_roundtrip for what changes)."""
    write(os.path.join(ws, "a.txt"), b"alpha\n")
    write(os.path.join(ws, "exec.sh"), b"#!/bin/sh\necho hi\n", 0o755)
    write(os.path.join(ws, "priv"), b"p", 0o600)
    write(os.path.join(ws, "new\nline.txt"), b"nl")
    write(os.path.join(os.fsencode(ws), b"bad\xffname"), b"bad")
    write(os.path.join(ws, "sub", "deep", "f.txt"), b"deep", 0o640)
    write(os.path.join(ws, "sub", "g"), b"g" * 100000)
    write(os.path.join(ws, "tofile", "x"), b"x")
    write(os.path.join(ws, "node_modules", "m.js"), b"orig")
    write(os.path.join(ws, "sub", "node_modules", "n.js"), b"orig-n")
    os.symlink("a.txt", os.path.join(ws, "link"))
    os.symlink("does/not/exist", os.path.join(ws, "dangling"))
    os.mkdir(os.path.join(ws, "empty"), 0o750)
    os.chmod(os.path.join(ws, "empty"), 0o750)
    for d in ("sub/deep", "sub", "tofile", "empty"):
        os.utime(os.path.join(ws, d), ns=(T0 + 7, T0 + 7))
    os.utime(os.path.join(ws, "link"), ns=(T0 + 3, T0 + 3), follow_symlinks=False)


# ---- user mode: content, bad input, responsiveness, nonoctl ----

class StoreFixture(unittest.TestCase):
    """A user-mode nonod with a snapshot store, and a fresh workspace per test."""
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        c = cls.d.client(hello=False)
        if "snapshots" not in c.hello()["features"]:
            cls.d.close()
            raise unittest.SkipTest("the daemon has no snapshot store")
        c.close()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def setUp(self):
        self.ws = tempfile.mkdtemp(prefix="ws-", dir=self.d.dir)
        self.c = self.d.client(timeout=120)

    def tearDown(self):
        self.c.close()
        shutil.rmtree(self.ws, ignore_errors=True)


class SnapshotTest(StoreFixture):
    def create(self, **kw):
        res, notes = call_collect(self.c, "snapshot.create", dict(workspace=self.ws, **kw))
        return res["snapshot"], notes

    def test_roundtrip(self):
        ws, bws = self.ws, os.fsencode(self.ws)
        populate(ws)
        before = manifest(ws)
        snap, notes = self.create(label="before", exclude=["node_modules"])
        self.assertEqual(len(snap["id"]), 12)
        self.assertEqual(snap["exclude"], ["node_modules"])
        self.assertTrue(notes, "snapshot.progress during create")
        self.assertEqual(changes(self.c.call("snapshot.diff", {"from": snap["id"]})), set())

        # Change everything that can change.
        write(os.path.join(ws, "a.txt"), b"ALPHA!\n")
        os.chmod(os.path.join(ws, "priv"), 0o644)
        os.utime(os.path.join(ws, "exec.sh"), ns=(T0 + 999, T0 + 999))  # mtime only
        os.unlink(os.path.join(ws, "new\nline.txt"))
        write(os.path.join(bws, b"bad\xffname"), b"BAD")
        os.unlink(os.path.join(ws, "link"))
        os.symlink("exec.sh", os.path.join(ws, "link"))
        os.unlink(os.path.join(ws, "dangling"))
        os.rmdir(os.path.join(ws, "empty"))
        shutil.rmtree(os.path.join(ws, "sub", "deep"))
        write(os.path.join(ws, "sub", "new.txt"), b"new")
        write(os.path.join(ws, "newdir", "z"), b"z")
        shutil.rmtree(os.path.join(ws, "tofile"))
        write(os.path.join(ws, "tofile"), b"now a file")
        write(os.path.join(bws, b"added\xfe\n"), b"added")
        write(os.path.join(ws, "node_modules", "m.js"), b"changed")
        write(os.path.join(ws, "node_modules", "extra.js"), b"extra")
        write(os.path.join(ws, "sub", "node_modules", "n.js"), b"changed-n")
        excluded = {p: tree_bytes(os.path.join(ws, *p)) for p in
                    (("node_modules",), ("sub", "node_modules"))}
        modified = manifest(ws)

        expect = {(b"a.txt", "modified"), (b"priv", "modified"),
                  (b"new\nline.txt", "removed"), (b"bad\xffname", "modified"),
                  (b"link", "modified"), (b"dangling", "removed"), (b"empty", "removed"),
                  (b"sub/deep", "removed"), (b"sub/deep/f.txt", "removed"),
                  (b"sub/new.txt", "added"), (b"newdir", "added"), (b"newdir/z", "added"),
                  (b"tofile", "type_changed"), (b"added\xfe\n", "added")}
        d = self.c.call("snapshot.diff", {"from": snap["id"]})
        self.assertEqual(changes(d), expect)
        self.assertEqual(d["total"], len(expect))
        self.assertFalse(d["truncated"])

        res, notes = call_collect(self.c, "snapshot.restore", {"snapshot": snap["id"]})
        self.assertEqual(manifest(ws), before)
        for p, t in excluded.items():
            self.assertEqual(tree_bytes(os.path.join(ws, *p)), t, "excluded path touched")
        safety = res["safety_snapshot"]["id"]
        self.assertNotEqual(safety, snap["id"])
        self.assertEqual(changes(self.c.call("snapshot.diff", {"from": snap["id"]})), set())
        # snapshot <-> snapshot diff is the same change set, reversed.
        back = changes(self.c.call("snapshot.diff", {"from": safety, "to": snap["id"]}))
        flip = {"added": "removed", "removed": "added"}
        self.assertEqual(back, {(p, flip.get(k, k)) for p, k in expect})

        # Undo the restore from its safety snapshot.
        call_collect(self.c, "snapshot.restore", {"snapshot": safety})
        self.assertEqual(manifest(ws), modified)
        for p, t in excluded.items():
            self.assertEqual(tree_bytes(os.path.join(ws, *p)), t)

        # Restoring only some paths leaves the others as they are.
        res, _ = call_collect(self.c, "snapshot.restore",
                              {"snapshot": snap["id"], "paths": ["a.txt", "sub/deep"]})
        now = manifest(ws)
        self.assertEqual(now[b"a.txt"], before[b"a.txt"])
        self.assertEqual(now[b"sub/deep/f.txt"], before[b"sub/deep/f.txt"])
        self.assertEqual(now[b"tofile"], modified[b"tofile"])
        self.assertEqual(now[b"sub/new.txt"], modified[b"sub/new.txt"])
        self.assertNotIn(b"empty", now)

    def test_list_delete_verify_gc(self):
        write(os.path.join(self.ws, "f"), b"1")
        s1, _ = self.create(label="one")
        write(os.path.join(self.ws, "f"), b"2" * 50000)
        s2, _ = self.create(label="two")
        other = tempfile.mkdtemp(prefix="ws-other-", dir=self.d.dir)
        try:
            s3, _ = call_collect(self.c, "snapshot.create", {"workspace": other})
            mine = [s["id"] for s in self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"]]
            self.assertEqual(sorted(mine), sorted([s1["id"], s2["id"]]))
            allids = [s["id"] for s in self.c.call("snapshot.list")["snapshots"]]
            self.assertIn(s3["snapshot"]["id"], allids)
        finally:
            shutil.rmtree(other, ignore_errors=True)
        v = self.c.call("snapshot.verify")
        self.assertTrue(v["ok"], v)
        self.assertEqual(v["missing"] + v["corrupt"], 0)
        self.c.call("snapshot.delete", {"snapshot": s1["id"]})
        with self.assertRaises(RpcError) as e:
            self.c.call("snapshot.delete", {"snapshot": s1["id"]})
        self.assertEqual(e.exception.kind, "not_found")
        g = self.c.call("snapshot.gc", {"keep_last": 1})
        self.assertGreaterEqual(g["objects_deleted"], 1)
        left = [s["id"] for s in self.c.call("snapshot.list", {"workspace": self.ws})["snapshots"]]
        self.assertEqual(left, [s2["id"]])
        self.assertTrue(self.c.call("snapshot.verify")["ok"])
        call_collect(self.c, "snapshot.restore", {"snapshot": s2["id"]})
        with open(os.path.join(self.ws, "f"), "rb") as f:
            self.assertEqual(f.read(), b"2" * 50000)

    def test_bad_input_names_the_field(self):
        f = os.path.join(self.ws, "file")
        write(f, b"x")
        cases = [
            ("snapshot.create", {}, "invalid_params", "workspace"),
            ("snapshot.create", {"workspace": "relative/path"}, "invalid_params", "workspace"),
            ("snapshot.create", {"workspace": self.ws + "/missing"}, "not_found", "workspace"),
            ("snapshot.create", {"workspace": f}, "invalid_params", "workspace"),
            ("snapshot.create", {"workspace": 42}, "invalid_params", "workspace"),
            ("snapshot.create", {"workspace": self.ws, "exclude": "x"}, "invalid_params", "exclude"),
            ("snapshot.create", {"workspace": self.ws, "exclude": [1]}, "invalid_params",
             "exclude[0]"),
            ("snapshot.create", {"workspace": self.ws, "label": "x" * 1000}, "invalid_params", "label"),
            ("snapshot.create", {"workspace": self.ws, "allow_unreadable": "yes"},
             "invalid_params", "allow_unreadable"),
            ("snapshot.diff", {}, "invalid_params", "from"),
            ("snapshot.diff", {"from": "0123456789abc"}, "invalid_params", "from"),
            ("snapshot.diff", {"from": "000000000000", "to": []}, "invalid_params", "to"),
            ("snapshot.restore", {"snapshot": None}, "invalid_params", "snapshot"),
            ("snapshot.restore", {"snapshot": "x", "paths": "a"}, "invalid_params", "paths"),
            ("snapshot.delete", {"snapshot": {}}, "invalid_params", "snapshot"),
            ("snapshot.gc", {"keep_last": 0}, "invalid_params", "keep_last"),
            ("snapshot.gc", {"keep_within": -5}, "invalid_params", "keep_within"),
            ("snapshot.list", {"owner": -1}, "invalid_params", "owner"),
        ]
        for method, params, kind, field in cases:
            with self.subTest(method=method, params=params):
                with self.assertRaises(RpcError) as e:
                    self.c.call(method, params)
                self.assertEqual((e.exception.kind, e.exception.field), (kind, field),
                                 e.exception.detail)
        # Unknown ids: not_found, naming the param, and the detail names the id.
        for method, params, field in (("snapshot.diff", {"from": "000000000000"}, "from"),
                                      ("snapshot.restore", {"snapshot": "000000000000"}, "snapshot"),
                                      ("snapshot.delete", {"snapshot": "000000000000"}, "snapshot")):
            with self.subTest(method=method):
                with self.assertRaises(RpcError) as e:
                    self.c.call(method, params)
                self.assertEqual(e.exception.kind, "not_found")
                self.assertEqual(e.exception.field, field)
                self.assertIn("000000000000", e.exception.detail)
        # ".." in restore paths never leaves the workspace.
        s, _ = self.create()
        with self.assertRaises(RpcError) as e:
            self.c.call("snapshot.restore", {"snapshot": s["id"], "paths": ["../x"]})
        self.assertEqual(e.exception.kind, "invalid_params")
        self.assertIn("paths[0]", e.exception.detail)
        # params that are not an object
        r = self.c.request("snapshot.list", ["x"])
        self.assertIn("error", r)
        self.assertEqual(self.c.call("daemon.status")["pid"], self.d.proc.pid)

    def test_responsive_during_large_snapshot(self):
        big = os.path.join(self.ws, "big")
        os.mkdir(big)
        for i in range(20):  # 200 MB of random data
            with open(os.path.join(big, f"r{i}"), "wb") as f:
                for _ in range(10):
                    f.write(os.urandom(1 << 20))
        other = self.d.client()
        try:
            self.c.send({"jsonrpc": "2.0", "id": 100, "method": "snapshot.create",
                         "params": {"workspace": self.ws}})
            self.c.send({"jsonrpc": "2.0", "id": 101, "method": "daemon.status"})
            order, notes = [], 0
            while 100 not in order:
                m = self.c.recv()
                self.assertIsNotNone(m, "connection closed")
                if "id" in m:
                    self.assertNotIn("error", m, m)
                    order.append(m["id"])
                    if m["id"] == 101:
                        # A second connection is served meanwhile, too.
                        self.assertIn("pid", other.call("daemon.status"))
                        order.append("other")
                elif m.get("method") == "snapshot.progress":
                    self.assertEqual(m["params"]["request"], 100)
                    self.assertEqual(m["params"]["op"], "create")
                    notes += 1
            self.assertEqual(order, [101, "other", 100], "status must not wait for the snapshot")
            self.assertGreaterEqual(notes, 1, "snapshot.progress during create")
        finally:
            other.close()
            shutil.rmtree(big, ignore_errors=True)

    # ---- nonoctl ----

    def ctl(self, *args, rc=0, **kw):
        kw.setdefault("cwd", self.ws)
        r = nonoctl(self.d, *args, **kw)
        self.assertEqual(r.returncode, rc, f"{args}: stdout={r.stdout!r} stderr={r.stderr!r}")
        return r

    def test_nonoctl(self):
        if not NONOCTL or not os.access(NONOCTL, os.X_OK):
            self.skipTest("NONOCTL does not name the built nonoctl")
        write(os.path.join(self.ws, "a"), b"one")
        write(os.path.join(self.ws, "skip", "s"), b"s")
        r = self.ctl("snapshot", "create", "--label", "cli", "--exclude", "skip")
        self.assertRegex(r.stdout, rb"^snapshot [0-9a-f]{12} of ")
        self.assertEqual(r.stderr, b"", "no progress bar when stderr is not a terminal")
        j = json.loads(self.ctl("--json", "snapshot", "create", self.ws).stdout)
        sid2 = j["snapshot"]["id"]
        lst = json.loads(self.ctl("--json", "snapshot", "list", ".").stdout)["snapshots"]
        sid = [s["id"] for s in lst if s["label"] == "cli"][0]
        text = self.ctl("snapshot", "list").stdout
        self.assertIn(sid.encode(), text)
        self.assertIn(b"cli", text)

        write(os.path.join(self.ws, "a"), b"two")
        write(os.path.join(os.fsencode(self.ws), b"evil\nM\tforged"), b"x")
        write(os.path.join(os.fsencode(self.ws), b"csi\xc2\x9b31m\xff"), b"x")  # C1 CSI
        write(os.path.join(os.fsencode(self.ws), b"c1\xc2\x9b"), b"x")  # valid UTF-8, but C1
        write(os.path.join(self.ws, "caf\u00e9 ok"), b"x")
        out = self.ctl("snapshot", "diff", sid).stdout
        self.assertEqual(sorted(out.splitlines()),
                         [b'A\t"c1\\302\\233"', b'A\t"csi\\302\\23331m\\377"', b'A\t"evil\\nM\\tforged"',
                          "A\tcaf\u00e9 ok".encode(), b"M\ta"])
        dj = json.loads(self.ctl("--json", "snapshot", "diff", sid, sid2).stdout)
        # sid excluded "skip", sid2 did not.
        self.assertEqual(changes(dj), {(b"skip", "added"), (b"skip/s", "added")})
        r = self.ctl("snapshot", "diff", "--patch", sid)
        self.assertIn(b"diff --git a/a b/a\n", r.stdout)

        out = self.ctl("snapshot", "restore", sid).stdout
        self.assertIn(b"M\ta\n", out)
        self.assertRegex(out, rb"safety snapshot [0-9a-f]{12}")
        with open(os.path.join(self.ws, "a"), "rb") as f:
            self.assertEqual(f.read(), b"one")
        self.assertEqual(sorted(os.listdir(self.ws)), ["a", "skip"])
        rj = json.loads(self.ctl("--json", "snapshot", "restore", sid, "a").stdout)
        self.assertEqual(rj["changes"], [])
        self.assertIn("safety_snapshot", rj)

        self.assertIn(b"0 missing, 0 corrupt", self.ctl("snapshot", "verify").stdout)
        self.assertTrue(json.loads(self.ctl("--json", "snapshot", "verify").stdout)["ok"])
        self.assertIn(b"removed", self.ctl("snapshot", "rm", sid2).stdout)
        self.ctl("--json", "snapshot", "rm", rj["safety_snapshot"]["id"])
        r = self.ctl("snapshot", "rm", sid2, rc=1)
        self.assertIn(b"not_found", r.stderr)
        self.assertIn(b"deleted", self.ctl("snapshot", "gc", "--keep-within", "1d").stdout)
        g = json.loads(self.ctl("--json", "snapshot", "gc", "--keep-last", "5").stdout)
        self.assertIn("bytes_freed", g)

        # Errors: usage (2, no daemon needed), daemon (1), unreachable (69).
        for args in (("snapshot",), ("snapshot", "frob"), ("snapshot", "rm"),
                     ("snapshot", "diff"), ("snapshot", "create", "a", "b"),
                     ("snapshot", "gc", "--keep-last", "0"),
                     ("snapshot", "gc", "--keep-within", "soon"),
                     ("snapshot", "list", "--label", "x"), ("snapshot", "verify", "x")):
            r = nonoctl(None, *args, cwd=self.ws)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        r = self.ctl("snapshot", "create", os.path.join(self.ws, "a"), rc=1)
        self.assertIn(b"field workspace", r.stderr)
        r = self.ctl("snapshot", "create", "missing-dir", rc=1)
        self.assertIn(b"not_found, field workspace", r.stderr)
        r = self.ctl("snapshot", "restore", "000000000000", rc=1)
        self.assertIn(b"not_found", r.stderr)
        r = nonoctl(None, "snapshot", "list", cwd=self.ws)
        self.assertEqual(r.returncode, 69, r.stderr)

    def test_nonoctl_progress_bar_on_a_terminal(self):
        if not NONOCTL or not os.access(NONOCTL, os.X_OK):
            self.skipTest("NONOCTL does not name the built nonoctl")
        for i in range(4):
            with open(os.path.join(self.ws, f"r{i}"), "wb") as f:
                f.write(os.urandom(8 << 20))
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([NONOCTL, "snapshot", "create", self.ws],
                                 stdout=subprocess.PIPE, stderr=slave,
                                 env=dict(os.environ, NONO_SOCKET=self.d.socket))
            os.close(slave)
            slave = -1
            err = b""
            while True:
                ready, _, _ = select.select([master], [], [], 120)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the last writer closed the pty
                    break
                if not chunk:
                    break
                err += chunk
            out, _ = p.communicate(timeout=120)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(b"create", err)
        self.assertIn(b"files", err)
        self.assertTrue(err.endswith(b"\r\x1b[K"), err[-40:])  # the bar is cleared
        self.assertRegex(out, rb"^snapshot [0-9a-f]{12} of ")


# ---- a hostile daemon: nonoctl must not let its strings reach the terminal ----

ESC_SNAP = {"id": "abc\x1b[2J", "workspace": "/w\x1b]0;pwned\x07", "label": "l\u009b31m",
            "created": 2 ** 62, "exclude": [],
            "stats": {"files": -5, "bytes": -(2 ** 63), "new_bytes": 2 ** 63 - 1, "dirs": "x"}}
HOSTILE = {
    "snapshot.list": {"snapshots": [ESC_SNAP, 7, {"id": None}]},
    "snapshot.create": {"snapshot": ESC_SNAP},
    "snapshot.diff": {"changes": [{"path": "a\x1b[31m", "kind": "added\x1b"},
                                  {"path": "x", "path_hex": "1b5b324a"},
                                  {"path": "\u009b2J", "path_hex": "zz"}, {"kind": 3}, 5],
                      "total": -1, "truncated": True},
    "snapshot.restore": {"changes": "nope", "safety_snapshot": {"id": "\x1b[2J"}},
    "snapshot.verify": {"ok": True, "missing": 1, "corrupt": "x"},
    "snapshot.gc": {"bytes_freed": -1},
}
PROGRESS = [{"op": "create\x1b[2J", "files_done": -1, "files_total": -(2 ** 63),
             "bytes_done": 2 ** 63 - 1, "bytes_total": 1},
            {"op": 5, "bytes_done": -7, "bytes_total": -(2 ** 63)}, {}]


class HungFilesystemTest(unittest.TestCase):
    """A workspace holding a FUSE mount whose server never answers (not even
    FUSE_INIT): the snapshot job reading it is stuck in the kernel for
    good. nonod must still exit on SIGTERM, abandoning that job (it used to
    wait for it forever). Control: the same daemon stops at once without it."""

    def setUp(self):
        # Sanitizer builds: LeakSanitizer stops every thread with ptrace at
        # exit, and a thread waiting on the FUSE server cannot stop, so the
        # leak check would wait forever (a release nonod exits: exit_group
        # ends such threads).
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.d = Daemon(env={"ASAN_OPTIONS": asan})
        self.addCleanup(self.d.close)
        c = self.d.client(hello=False)
        if "snapshots" not in c.hello()["features"]:
            self.skipTest("the daemon has no snapshot store")
        c.close()
        self.ws = tempfile.mkdtemp(prefix="ws-", dir=self.d.dir)
        self.fuse_fd = None

    def hang(self, mnt):
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            self.skipTest(f"no /dev/fuse: {e}")
        opts = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}".encode()
        if libc.mount(b"nono-e2e-hang", mnt.encode(), b"fuse", 2 | 4, opts) != 0:
            e = ctypes.get_errno()
            os.close(fd)
            self.skipTest(f"cannot mount a FUSE file system: {os.strerror(e)}")
        self.fuse_fd = fd

        def unhang():  # closing the device aborts the connection; then unmount
            os.close(fd)
            libc.umount2(mnt.encode(), 2)  # MNT_DETACH
        self.addCleanup(unhang)

    def stuck_on_fuse(self):
        """Whether a thread of nonod waits on the FUSE server."""
        for t in os.listdir(f"/proc/{self.d.proc.pid}/task"):
            try:
                with open(f"/proc/{self.d.proc.pid}/task/{t}/wchan") as f:
                    w = f.read()
                if "fuse" in w or "request_wait_answer" in w:
                    return True
            except OSError:
                pass
        return False

    def test_stop_with_a_snapshot_stuck_on_a_hung_filesystem(self):
        if os.geteuid() != 0:
            self.skipTest("mounting FUSE needs root")
        with open(os.path.join(self.ws, "f"), "w") as f:
            f.write("x")
        mnt = os.path.join(self.ws, "m")
        os.mkdir(mnt)
        self.hang(mnt)
        c = self.d.client(timeout=30)
        c.send({"jsonrpc": "2.0", "id": 1, "method": "snapshot.create",
                "params": {"workspace": self.ws}})
        deadline = time.monotonic() + 30
        while not self.stuck_on_fuse() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(self.stuck_on_fuse(), "the snapshot never reached the mount")
        self.assertIn("pid", self.d.client().call("daemon.status"))  # the loop is free
        rc = self.d.stop(timeout=60)
        self.assertEqual(rc, 0, self.d.logtext()[-3000:])
        self.assertIn("abandoned at exit", self.d.logtext())

    def test_control_stop_without_a_stuck_job(self):
        with open(os.path.join(self.ws, "f"), "w") as f:
            f.write("x")
        c = self.d.client(timeout=60)
        call_collect(c, "snapshot.create", {"workspace": self.ws})
        self.assertEqual(self.d.stop(timeout=60), 0, self.d.logtext()[-3000:])
        self.assertNotIn("abandoned", self.d.logtext())


class FakeDaemon:
    """Answers hello, then every request with HOSTILE[method], preceded by
    hostile snapshot.progress notifications."""

    def __init__(self, dirpath):
        self.path = os.path.join(dirpath, "fake.sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rb")
                for line in f:
                    req = json.loads(line)
                    if req["method"] == "daemon.hello":
                        res = {"protocol": 1, "daemon": "9.9.9", "features": ["snapshots"],
                               "limits": {"max_message": 1048576}}
                    else:
                        for p in PROGRESS:
                            n = {"jsonrpc": "2.0", "method": "snapshot.progress", "params": p}
                            conn.sendall(json.dumps(n).encode() + b"\n")
                        res = HOSTILE.get(req["method"], {})
                    conn.sendall(json.dumps({"jsonrpc": "2.0", "id": req["id"],
                                             "result": res}).encode() + b"\n")

    def close(self):
        self.srv.shutdown(socket.SHUT_RDWR)
        self.srv.close()


class HostileDaemonTest(unittest.TestCase):
    def setUp(self):
        if not NONOCTL or not os.access(NONOCTL, os.X_OK):
            self.skipTest("NONOCTL does not name the built nonoctl")
        self.dir = tempfile.mkdtemp(prefix="nono-fake-")
        self.fake = FakeDaemon(self.dir)

    def tearDown(self):
        self.fake.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tty(self, *args):
        """nonoctl with stderr on a pty (so the progress bar is drawn)."""
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([NONOCTL, "--socket", self.fake.path, *args], cwd=self.dir,
                                 stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = -1
            err = b""
            while select.select([master], [], [], 60)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                err += chunk
            out, _ = p.communicate(timeout=60)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        return p.returncode, out, err

    def test_no_escape_reaches_the_terminal(self):
        for args, rc in ((("snapshot", "list"), 0), (("snapshot", "create", "."), 0),
                         (("snapshot", "diff", "abc"), 0), (("snapshot", "restore", "abc"), 0),
                         (("snapshot", "verify"), 1), (("snapshot", "gc"), 0)):
            with self.subTest(args=args):
                code, out, err = self.run_tty(*args)
                self.assertEqual(code, rc, (out, err))
                # Only our own "erase line" sequence may be on stderr.
                clean_err = err.replace(b"\r\x1b[K", b"")
                self.assertNotIn(b"runtime error", err)  # UBSan builds
                for stream in (out, clean_err):
                    self.assertNotIn(b"\x1b", stream)
                    self.assertNotIn(b"\x07", stream)
                    self.assertNotIn("\u009b".encode(), stream)
        code, out, _ = self.run_tty("snapshot", "diff", "abc")
        self.assertIn(b'"\\033[2J"', out)  # path_hex wins, quoted


# ---- system mode as root: ownership and the symlink swap ----

class SnapshotSystemTest(SystemFixture):
    def test_users_cannot_touch_each_other(self):
        wa, wb = self.userdir("wa", self.a), self.userdir("wb", self.b)
        write(os.path.join(wb, "b.txt"), b"b's")
        write(os.path.join(wa, "keep", "k"), b"k")
        self.chown_tree(wa, self.a)
        self.chown_tree(wb, self.b)
        b = self.as_user(self.b, f"out['id'] = c.call('snapshot.create', {{'workspace': {wb!r}}})['snapshot']['id']")
        sid = b["id"]
        a = self.as_user(self.a, f"""
attempt('create', lambda: c.call('snapshot.create', {{'workspace': {wb!r}}}))
out['list'] = [s['id'] for s in c.call('snapshot.list')['snapshots']]
attempt('list_b', lambda: c.call('snapshot.list', {{'owner': {self.b.pw_uid}}}))
attempt('diff', lambda: c.call('snapshot.diff', {{'from': {sid!r}}}))
attempt('restore', lambda: c.call('snapshot.restore', {{'snapshot': {sid!r}}}))
attempt('delete', lambda: c.call('snapshot.delete', {{'snapshot': {sid!r}}}))
attempt('verify_b', lambda: c.call('snapshot.verify', {{'owner': {self.b.pw_uid}}}))
attempt('gc_b', lambda: c.call('snapshot.gc', {{'owner': {self.b.pw_uid}}}))
""")
        self.assertEqual((a["create"]["error"], a["create"]["field"]),
                         ("permission_denied", "workspace"))
        self.assertNotIn(sid, a["list"])
        for k in ("list_b", "verify_b", "gc_b"):
            self.assertEqual((a[k]["error"], a[k]["field"]), ("permission_denied", "owner"), k)
        for k in ("diff", "restore", "delete"):
            self.assertIn(a[k].get("error"), ("not_found", "permission_denied"), k)
        # B's snapshot is intact and B can still use it.
        b = self.as_user(self.b, f"out['list'] = [s['id'] for s in c.call('snapshot.list')['snapshots']]")
        self.assertIn(sid, b["list"])
        # root (admin) may act on B's store by owner.
        c = self.d.client()
        try:
            ids = [s["id"] for s in c.call("snapshot.list", {"owner": self.b.pw_uid})["snapshots"]]
            self.assertIn(sid, ids)
        finally:
            c.close()

    def test_restore_creates_files_as_the_owner(self):
        wa = self.userdir("wa", self.a)
        write(os.path.join(wa, "f"), b"f")
        write(os.path.join(wa, "d", "g"), b"g")
        os.mkdir(os.path.join(wa, "e"))
        self.chown_tree(wa, self.a)
        out = self.as_user(self.a, f"out['id'] = c.call('snapshot.create', {{'workspace': {wa!r}}})['snapshot']['id']")
        shutil.rmtree(os.path.join(wa, "d"))
        os.rmdir(os.path.join(wa, "e"))
        os.unlink(os.path.join(wa, "f"))
        self.as_user(self.a, f"c.call('snapshot.restore', {{'snapshot': {out['id']!r}}})")
        for rel in ("f", "d", "d/g", "e"):
            st = os.lstat(os.path.join(wa, rel))
            self.assertEqual((st.st_uid, st.st_gid), (self.a.pw_uid, self.a.pw_gid), rel)
        with open(os.path.join(wa, "d", "g"), "rb") as f:
            self.assertEqual(f.read(), b"g")

    def test_symlink_swap_is_not_followed(self):
        wa = self.userdir("wa", self.a)
        write(os.path.join(wa, "conf", "settings"), b"good\n")
        write(os.path.join(wa, "conf", "gone"), b"gone\n")
        self.chown_tree(wa, self.a)
        # Decoys: a root-owned directory (stand-in for /etc), and one of A's
        # own outside the workspace (only the no-follow walk protects that).
        decoy_root = os.path.join(self.tmp, "etc")
        write(os.path.join(decoy_root, "settings"), b"root decoy\n")
        write(os.path.join(decoy_root, "passwd"), b"root:x:0:0\n")
        decoy_user = self.userdir("home-a", self.a)
        write(os.path.join(decoy_user, "settings"), b"user decoy\n")
        write(os.path.join(decoy_user, "authorized_keys"), b"ssh-ed25519 AAAA\n")
        self.chown_tree(decoy_user, self.a)
        sid = self.as_user(self.a, f"out['id'] = c.call('snapshot.create', {{'workspace': {wa!r}}})['snapshot']['id']")["id"]
        restore = f"out['r'] = c.call('snapshot.restore', {{'snapshot': {sid!r}}})"

        # Control: without the swap, restore writes conf/settings.
        write(os.path.join(wa, "conf", "settings"), b"changed\n")
        os.chown(os.path.join(wa, "conf", "settings"), self.a.pw_uid, self.a.pw_gid)
        self.as_user(self.a, restore)
        with open(os.path.join(wa, "conf", "settings"), "rb") as f:
            self.assertEqual(f.read(), b"good\n")

        for decoy in (decoy_root, decoy_user):
            with self.subTest(decoy=decoy):
                snap_before = tree_bytes(decoy)
                shutil.rmtree(os.path.join(wa, "conf"))
                os.symlink(decoy, os.path.join(wa, "conf"))
                os.lchown(os.path.join(wa, "conf"), self.a.pw_uid, self.a.pw_gid)
                out = self.as_user(self.a, restore)
                self.assertEqual(tree_bytes(decoy), snap_before, "restore wrote through the symlink")
                self.assertIn(["conf", "type_changed"],
                              [[c["path"], c["kind"]] for c in out["r"]["changes"]])
                conf = os.path.join(wa, "conf")
                self.assertFalse(os.path.islink(conf))
                with open(os.path.join(conf, "settings"), "rb") as f:
                    self.assertEqual(f.read(), b"good\n")
                self.assertEqual(os.lstat(conf).st_uid, self.a.pw_uid)

    def test_symlink_swap_race(self):
        """While restores run, a thread keeps exchanging the workspace's conf
        directory with a symlink to A's own decoy outside the workspace
        (renameat2 RENAME_EXCHANGE, atomic): whatever the interleaving, the
        decoy is never written. The restores may fail; that is allowed."""
        libc = ctypes.CDLL(None, use_errno=True)
        if not hasattr(libc, "renameat2"):
            self.skipTest("libc has no renameat2")
        wa = self.userdir("wa", self.a)
        names = [f"f{i}" for i in range(50)]
        for n in names:
            write(os.path.join(wa, "conf", n), b"good " + n.encode())
        self.chown_tree(wa, self.a)
        decoy = self.userdir("home-a", self.a)
        for n in names:
            write(os.path.join(decoy, n), b"decoy")
        self.chown_tree(decoy, self.a)
        swap = os.path.join(self.tmp, "swap")
        os.symlink(decoy, swap)
        before = tree_bytes(decoy)
        sid = self.as_user(self.a, f"out['id'] = c.call('snapshot.create', {{'workspace': {wa!r}}})['snapshot']['id']")["id"]
        stop = threading.Event()
        flips = [0]

        def flipper():
            a, b = os.fsencode(os.path.join(wa, "conf")), os.fsencode(swap)
            while not stop.is_set():
                if libc.renameat2(-100, a, -100, b, 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
                    flips[0] += 1

        results = []
        for _ in range(5):
            real = os.path.join(wa, "conf")
            if os.path.islink(real):
                real = swap
            for n in names:  # make every file differ so restore must rewrite it
                p = os.path.join(real, n)
                if os.path.lexists(p):
                    write(p, b"changed")
                    os.chown(p, self.a.pw_uid, self.a.pw_gid)
            t = threading.Thread(target=flipper)
            t.start()
            try:
                out = self.as_user(self.a, f"attempt('r', lambda: c.call('snapshot.restore', {{'snapshot': {sid!r}}}))")
            finally:
                stop.set()
                t.join()
                stop.clear()
            results.append(out["r"].get("detail", "ok") if "error" in out["r"] else "ok")
            self.assertEqual(tree_bytes(decoy), before, "restore wrote through the swapped symlink")
        self.assertGreater(flips[0], 0)
        print(f"swap race: {flips[0]} exchanges, restores: {results}")


# ---- snapshot.read and nonoctl snapshot diff --patch ----

def content_manifest(root):
    """manifest() without mtimes: what a patch can carry (type, mode, bytes)."""
    out = {}
    for p, (t, mode, _mtime, data) in manifest(root).items():
        if t == "f":
            mode = 0o755 if mode & 0o100 else 0o644  # git keeps the x bit only
        out[p] = (t, mode if t != "d" else 0, data)
    return out


def read_all(c, sid, path=None, path_hex=None, step=None):
    """snapshot.read paged to eof: (first answer, bytes)."""
    import base64
    data, off, first = b"", 0, None
    while True:
        p = {"snapshot": sid, "offset": off}
        if path_hex is not None:
            p["path_hex"] = path_hex
        else:
            p["path"] = path
        if step is not None:
            p["length"] = step
        r = c.call("snapshot.read", p)
        first = first or r
        chunk = base64.b64decode(r["data"], validate=True)
        assert len(chunk) == r["length"] and r["offset"] == off, r
        data += chunk
        off += len(chunk)
        if r["eof"]:
            return first, data


class SnapshotPatchTest(StoreFixture):

    def ctl(self, *args, rc=0, **kw):
        r = nonoctl(self.d, *args, cwd=self.ws, **kw)
        self.assertEqual(r.returncode, rc, r.stderr.decode(errors="replace"))
        self.assertNotIn(b"runtime error", r.stderr)  # UBSan builds
        return r

    def snap(self):
        res, _ = call_collect(self.c, "snapshot.create", {"workspace": self.ws})
        return res["snapshot"]["id"]

    def restore(self, sid):
        call_collect(self.c, "snapshot.restore", {"snapshot": sid})

    def apply(self, tool, patch):
        if shutil.which(tool[0]) is None:
            self.skipTest(f"{tool[0]} is not installed")
        r = subprocess.run(tool, input=patch, cwd=self.ws, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, (tool, r.stdout, r.stderr, patch))

    def populate_text(self):
        ws = self.ws
        write(os.path.join(ws, "a.txt"), b"".join(b"line %d\n" % i for i in range(40)))
        write(os.path.join(ws, "nonl"), b"first\nlast, no newline")
        write(os.path.join(ws, "dir with space", "name with space.txt"), b"s1\ns2\n")
        write(os.path.join(ws, "gone.txt"), b"to be removed\n")
        write(os.path.join(ws, "run.sh"), b"#!/bin/sh\necho run\n")
        write(os.path.join(ws, "caf\u00e9.txt"), b"unicode name\n")
        os.symlink("a.txt", os.path.join(ws, "link"))
        os.symlink("/etc/passwd", os.path.join(ws, "abs-link"))

    def modify_text(self):
        ws = self.ws
        lines = [b"line %d\n" % i for i in range(40)]
        lines[3] = b"CHANGED 3\n"
        del lines[20]
        lines.insert(30, b"inserted\n")
        write(os.path.join(ws, "a.txt"), b"".join(lines) + b"tail\n")
        write(os.path.join(ws, "nonl"), b"first\nlast, still no newline")
        write(os.path.join(ws, "dir with space", "name with space.txt"), b"s1\ns2\ns3")
        os.unlink(os.path.join(ws, "gone.txt"))
        os.chmod(os.path.join(ws, "run.sh"), 0o755)
        write(os.path.join(ws, "caf\u00e9.txt"), b"unicode name, edited\n")
        os.unlink(os.path.join(ws, "link"))
        os.symlink("nonl", os.path.join(ws, "link"))
        write(os.path.join(ws, "new", "deep", "file.txt"), b"brand new\n")
        write(os.path.join(ws, "empty-new"), b"")
        os.symlink("new/deep", os.path.join(ws, "new-link"))
        write(os.path.join(ws, "ends-without-newline"), b"x")

    def test_patch_applies_with_patch_and_git(self):
        self.populate_text()
        sid = self.snap()
        before = content_manifest(self.ws)
        self.modify_text()
        after = content_manifest(self.ws)
        p = self.ctl("snapshot", "diff", sid, "--patch").stdout
        self.assertIn(b"\\ No newline at end of file", p)
        self.assertIn(b"+++ b/dir with space/name with space.txt\t\n", p)
        self.assertIn(b"old mode 100644\nnew mode 100755\n", p)
        self.assertIn(b"diff --git a/link b/link\nindex ", p)
        self.assertNotIn(b"abs-link", p)  # unchanged
        self.assertNotIn(b"root:", p)     # /etc/passwd was never read
        # snapshot <-> snapshot gives the same patch as snapshot <-> live.
        sid2 = self.snap()
        self.assertEqual(self.ctl("snapshot", "diff", "--patch", sid, sid2).stdout, p)
        # The reverse patch undoes it.
        rev = self.ctl("snapshot", "diff", "--patch", sid2, sid).stdout
        for tool in (["patch", "-p1", "--no-backup-if-mismatch", "-s"],
                     ["git", "apply", "--unsafe-paths", "-"]):
            with self.subTest(tool=tool[0]):
                self.restore(sid)
                self.assertEqual(content_manifest(self.ws), before)
                self.apply(tool, p)
                self.assertEqual(content_manifest(self.ws), after)
                self.apply(tool, rev)
                self.assertEqual(content_manifest(self.ws), before)
        # No change, no patch.
        self.restore(sid)
        self.assertEqual(self.ctl("snapshot", "diff", "--patch", sid).stdout, b"")

    def test_patch_quoted_names_apply(self):
        names = [b"tab\there", b'quo"te', b"back\\slash", b"new\nline", b"lat\xe9",
                 b"caf\xc3\xa9 \xc2\x9b"]
        bws = os.fsencode(self.ws)
        for n in names:
            write(os.path.join(bws, n), n + b"\n")
        sid = self.snap()
        for n in names:
            write(os.path.join(bws, n), n + b"\nmore\n")
        write(os.path.join(bws, b"added\tnew"), b"x\n")
        after = content_manifest(self.ws)
        p = self.ctl("snapshot", "diff", "--patch", sid).stdout
        self.assertIn(b'diff --git "a/new\\nline" "b/new\\nline"\n', p)
        self.assertIn(b'+++ "b/lat\\351"\n', p)
        for tool in (["patch", "-p1", "--no-backup-if-mismatch", "-s"], ["git", "apply", "-"]):
            with self.subTest(tool=tool[0]):
                self.restore(sid)
                self.apply(tool, p)
                self.assertEqual(content_manifest(self.ws), after)

    def test_binary_symlink_json_and_limits(self):
        ws = self.ws
        write(os.path.join(ws, "blob.bin"), b"\x00\x01\x02binary" * 100)
        write(os.path.join(ws, "late-nul.txt"), b"a" * 9000 + b"\x00")
        write(os.path.join(ws, "big.txt"), b"big line\n" * 600000)  # 5.4 MB
        os.symlink("target-one", os.path.join(ws, "sym"))
        sid = self.snap()
        write(os.path.join(ws, "blob.bin"), b"\x00\x01\x02BINARY" * 100)
        write(os.path.join(ws, "late-nul.txt"), b"b" * 9000 + b"\x00")
        write(os.path.join(ws, "big.txt"), b"big line\n" * 600001)
        os.unlink(os.path.join(ws, "sym"))
        os.symlink("target-two", os.path.join(ws, "sym"))
        os.mkdir(os.path.join(ws, "newdir"))
        r = self.ctl("snapshot", "diff", "--patch", sid)
        p = r.stdout
        self.assertIn(b"2 files are binary or too large", r.stderr)
        self.assertIn(b"Binary files a/blob.bin and b/blob.bin differ\n", p)
        self.assertIn(b"-aaaa", p)  # a NUL past the first 8 KiB: text, as git says
        self.assertIn(b"Files a/big.txt and b/big.txt differ (file too large to diff)\n", p)
        self.assertIn(b"--- a/sym\n+++ b/sym\n@@ -1 +1 @@\n-target-one\n\\ No newline at end "
                      b"of file\n+target-two\n\\ No newline at end of file\n", p)
        self.assertIn(b"index ", p)
        j = json.loads(self.ctl("--json", "snapshot", "diff", "--patch", sid).stdout)
        by = {c["path"]: c for c in j["changes"]}
        self.assertEqual(set(by), {"blob.bin", "late-nul.txt", "big.txt", "sym", "newdir"})
        self.assertIn("Binary files", by["blob.bin"]["patch"])
        self.assertIn("+target-two", by["sym"]["patch"])
        self.assertEqual(by["newdir"]["patch"], "")
        self.assertNotIn("patch_base64", by["sym"])
        # Not UTF-8 content: an exact copy rides along in base64.
        write(os.path.join(ws, "latin1.txt"), b"caf\xe9\n")
        sid2 = self.snap()
        write(os.path.join(ws, "latin1.txt"), b"na\xefve\n")
        j = json.loads(self.ctl("--json", "snapshot", "diff", "--patch", sid2).stdout)
        c = [c for c in j["changes"] if c["path"] == "latin1.txt"][0]
        import base64
        self.assertIn(b"-caf\xe9\n+na\xefve\n", base64.b64decode(c["patch_base64"]))
        self.assertIn("\ufffd", c["patch"])

    def test_type_change_to_directory_is_reported(self):
        write(os.path.join(self.ws, "x"), b"file\n")
        sid = self.snap()
        os.unlink(os.path.join(self.ws, "x"))
        write(os.path.join(self.ws, "x", "inner"), b"inner\n")
        r = self.ctl("snapshot", "diff", "--patch", sid, rc=1)
        self.assertIn(b"deleted file mode 100644", r.stdout)
        self.assertIn(b"only the file side", r.stderr)

    def test_terminal_never_gets_control_bytes(self):
        write(os.path.join(self.ws, "evil.txt"), b"safe\n")
        sid = self.snap()
        write(os.path.join(self.ws, "evil.txt"), b"\x1b]0;pwned\x07\x1b[2J\xc2\x9b31m\n")
        # To a pipe the patch is exact (it must apply).
        p = self.ctl("snapshot", "diff", "--patch", sid).stdout
        self.assertIn(b"+\x1b]0;pwned\x07", p)
        # To a terminal, escapes are shown, not sent.
        pid, fd = pty.fork()
        if pid == 0:
            os.environ["NONO_SOCKET"] = self.d.socket
            os.chdir(self.ws)
            os.execv(NONOCTL, [NONOCTL, "snapshot", "diff", "--patch", sid])
        out = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        self.assertNotIn(b"\xc2\x9b", out)
        self.assertIn(b"\\x1b]0;pwned", out)

    def test_read_pages_and_never_touches_the_live_tree(self):
        ws = self.ws
        big = os.urandom(3 * 1024 * 1024 + 12345)  # several CDC chunks
        write(os.path.join(ws, "big.bin"), big)
        write(os.path.join(ws, "small"), b"small content\n", 0o640)
        write(os.path.join(os.fsencode(ws), b"odd\xffname"), b"odd")
        os.symlink("/etc/passwd", os.path.join(ws, "passwd-link"))
        os.mkfifo(os.path.join(ws, "fifo"))
        write(os.path.join(ws, "d", "inner"), b"inner")
        sid = self.snap()
        # The live tree changes; the snapshot's bytes do not.
        write(os.path.join(ws, "small"), b"live, not snapshot\n")
        shutil.rmtree(os.path.join(ws, "d"))
        os.symlink("/etc", os.path.join(ws, "d"))
        first, data = read_all(self.c, sid, "big.bin")
        self.assertEqual(data, big)
        self.assertEqual((first["kind"], first["size"]), ("file", len(big)))
        self.assertLessEqual(first["length"], 512 * 1024)
        _, data = read_all(self.c, sid, "big.bin", step=100003)  # odd pages across chunks
        self.assertEqual(data, big)
        for off in (0, 1, 262143, 1048576, len(big) - 1, len(big)):
            r = self.c.call("snapshot.read", {"snapshot": sid, "path": "big.bin",
                                              "offset": off, "length": 70000})
            import base64
            self.assertEqual(base64.b64decode(r["data"]), big[off:off + 70000], off)
            self.assertEqual(r["eof"], off + 70000 >= len(big))
        first, data = read_all(self.c, sid, "small")
        self.assertEqual((data, first["mode"], first["kind"]), (b"small content\n", 0o640, "file"))
        first, data = read_all(self.c, sid, "passwd-link")
        self.assertEqual((first["kind"], data), ("symlink", b"/etc/passwd"))
        first, data = read_all(self.c, sid, path_hex=b"odd\xffname".hex())
        self.assertEqual(data, b"odd")
        _, data = read_all(self.c, sid, "d/inner")  # d is a symlink to /etc now
        self.assertEqual(data, b"inner")
        r = self.c.call("snapshot.read", {"snapshot": sid, "path": "small", "length": 0})
        self.assertEqual((r["data"], r["length"], r["eof"], r["size"]), ("", 0, False, 14))

    def test_read_from_inside_a_session_is_refused(self):
        from sessions import run
        write(os.path.join(self.ws, "s.txt"), b"SNAPSHOT-CONTENT\n")
        sid = self.snap()
        probe = ("import socket,json,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f=s.makefile('rb')\n"
                 "for m in ({'method':'daemon.hello','params':{'protocol':[1]}},\n"
                 "          {'method':'snapshot.read','params':{'snapshot':sys.argv[2],"
                 "'path':'s.txt'}}):\n"
                 "    s.sendall(json.dumps(dict(m, jsonrpc='2.0', id=1)).encode()+b'\\n')\n"
                 "    print(f.readline().decode(), flush=True)\n")
        # The control case: the same request from outside a session succeeds.
        r = self.c.call("snapshot.read", {"snapshot": sid, "path": "s.txt"})
        self.assertEqual(r["data"], "U05BUFNIT1QtQ09OVEVOVAo=")
        final, out, err = run(self.c, ["python3", "-c", probe, self.d.socket, sid], self.ws)
        self.assertIn(b"permission_denied", out, out + err)
        self.assertNotIn(b"U05BUFNIT1Q", out)

    def test_read_bad_input_names_the_field(self):
        write(os.path.join(self.ws, "f"), b"0123456789")
        write(os.path.join(self.ws, "d", "x"), b"x")
        os.symlink("d", os.path.join(self.ws, "dl"))
        os.mkfifo(os.path.join(self.ws, "fifo"))
        sid = self.snap()
        S = {"snapshot": sid}
        cases = [
            ({"snapshot": "000000000000", "path": "f"}, "not_found", "snapshot"),
            ({"snapshot": "zz", "path": "f"}, "not_found", "snapshot"),
            ({"snapshot": "0123456789abc", "path": "f"}, "invalid_params", "snapshot"),
            ({"path": "f"}, "invalid_params", "snapshot"),
            (S, "invalid_params", "path"),
            (dict(S, path="missing"), "not_found", "path"),
            (dict(S, path="d/missing"), "not_found", "path"),
            (dict(S, path="f/below-a-file"), "not_found", "path"),
            (dict(S, path="dl/x"), "not_found", "path"),  # never through a symlink
            (dict(S, path="d"), "invalid_params", "path"),
            (dict(S, path="fifo"), "invalid_params", "path"),
            (dict(S, path="../etc/passwd"), "invalid_params", "path"),
            (dict(S, path="d/../f"), "invalid_params", "path"),
            (dict(S, path="./f"), "invalid_params", "path"),
            (dict(S, path="d//x"), "invalid_params", "path"),
            (dict(S, path="d/x/"), "invalid_params", "path"),
            (dict(S, path="/etc/passwd"), "invalid_params", "path"),
            (dict(S, path=self.ws + "/f"), "invalid_params", "path"),
            (dict(S, path=""), "invalid_params", "path"),
            (dict(S, path="f\u0000x"), "invalid_params", "path"),
            (dict(S, path="x" * 5000), "invalid_params", "path"),
            (dict(S, path=7), "invalid_params", "path"),
            (dict(S, path="f", path_hex="66"), "invalid_params", "path"),
            (dict(S, path_hex="6"), "invalid_params", "path_hex"),
            (dict(S, path_hex="6600"), "invalid_params", "path_hex"),
            (dict(S, path_hex="zz"), "invalid_params", "path_hex"),
            (dict(S, path_hex="2e2e2f6574632f706173737764"), "invalid_params", "path"),
            (dict(S, path="f", offset=-1), "invalid_params", "offset"),
            (dict(S, path="f", offset=11), "invalid_params", "offset"),
            (dict(S, path="f", offset=2**62), "invalid_params", "offset"),
            (dict(S, path="f", offset=1.5), "invalid_params", "offset"),
            (dict(S, path="f", length=-1), "invalid_params", "length"),
            (dict(S, path="f", length=10**9), "invalid_params", "length"),
            (dict(S, path="f", length=2**63 - 1), "invalid_params", "length"),
            (dict(S, path="f", length="10"), "invalid_params", "length"),
            (dict(S, path="f", owner=-1), "invalid_params", "owner"),
            (dict(S, path="f", extra=1), "invalid_params", "extra"),
        ]
        for params, kind, field in cases:
            with self.subTest(params=params):
                with self.assertRaises(RpcError) as e:
                    self.c.call("snapshot.read", params)
                self.assertEqual((e.exception.kind, e.exception.field), (kind, field),
                                 e.exception.detail)
        # A hostile name comes back printable (and the answer still parses).
        with self.assertRaises(RpcError) as e:
            self.c.call("snapshot.read", dict(S, path_hex=b"x\xff\x1b[2J\xc2\x9bcaf\xc3\xa9".hex()))
        self.assertEqual((e.exception.kind, e.exception.field), ("not_found", "path"))
        self.assertIn("x\\xff\\x1b[2J\\xc2\\x9bcaf\u00e9", e.exception.detail)
        # The control case: the same file reads fine, and so does the end.
        r = self.c.call("snapshot.read", dict(S, path="f", offset=10))
        self.assertEqual((r["data"], r["eof"]), ("", True))
        self.assertEqual(read_all(self.c, sid, "f")[1], b"0123456789")
        self.assertEqual(self.c.call("daemon.status")["pid"], self.d.proc.pid)


class SnapshotReadSystemTest(SystemFixture):
    """As root, system mode: a user reads only their own snapshots."""

    def test_other_users_snapshots_are_out_of_reach(self):
        wa = self.userdir("wa", self.a)
        write(os.path.join(wa, "secret.txt"), b"a's secret\n", 0o600)
        self.chown_tree(wa, self.a)
        a = self.as_user(self.a, f"""
out['id'] = c.call('snapshot.create', {{'workspace': {wa!r}}})['snapshot']['id']
out['own'] = c.call('snapshot.read', {{'snapshot': out['id'], 'path': 'secret.txt'}})['data']
""")
        sid = a["id"]
        import base64
        self.assertEqual(base64.b64decode(a["own"]), b"a's secret\n")
        b = self.as_user(self.b, f"""
attempt('read', lambda: c.call('snapshot.read', {{'snapshot': {sid!r}, 'path': 'secret.txt'}}))
attempt('owner', lambda: c.call('snapshot.read', {{'snapshot': {sid!r}, 'path': 'secret.txt',
                                                   'owner': {self.a.pw_uid}}}))
""")
        self.assertEqual((b["read"]["error"], b["read"]["field"]), ("not_found", "snapshot"))
        self.assertEqual((b["owner"]["error"], b["owner"]["field"]), ("permission_denied", "owner"))
        self.assertNotIn("secret", json.dumps(b))
        # root (admin) may read a user's store by owner.
        c = self.d.client()
        try:
            r = c.call("snapshot.read", {"snapshot": sid, "path": "secret.txt",
                                         "owner": self.a.pw_uid})
            self.assertEqual(base64.b64decode(r["data"]), b"a's secret\n")
            with self.assertRaises(RpcError) as e:
                c.call("snapshot.read", {"snapshot": sid, "path": "secret.txt"})
            self.assertEqual(e.exception.kind, "not_found")  # root's own store
        finally:
            c.close()
        # nonoctl as user a: the patch of a's own change.
        write(os.path.join(wa, "secret.txt"), b"a's secret, edited\n", 0o600)
        os.chown(os.path.join(wa, "secret.txt"), self.a.pw_uid, self.a.pw_gid)
        r = subprocess.run(["setpriv", f"--reuid={self.a.pw_uid}", f"--regid={self.a.pw_gid}",
                            "--init-groups", NONOCTL, "snapshot", "diff", "--patch", sid],
                           capture_output=True, timeout=120, cwd="/",
                           env={"PATH": os.environ["PATH"], "NONO_SOCKET": self.d.socket})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"-a's secret\n+a's secret, edited\n", r.stdout)


# ---- sparse files: holes are neither read nor written ----

TIB = 1 << 40


def io_counts(pid):
    """(rchar, wchar) of a process, or None when /proc/PID/io is closed to us."""
    try:
        with open(f"/proc/{pid}/io") as f:
            kv = dict(line.split(": ") for line in f.read().splitlines())
        return int(kv["rchar"]), int(kv["wchar"])
    except (OSError, KeyError, ValueError):
        return None


def data_regions(path):
    """[(start, end)] of a file's data, from SEEK_DATA/SEEK_HOLE (holes unread)."""
    out, off = [], 0
    with open(path, "rb") as f:
        fd = f.fileno()
        while True:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == 6:  # ENXIO: no data past off
                    return out
                raise
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h))
            off = h


class SparseFileTest(StoreFixture):
    """A workspace file of 16 TiB (ext4's largest, 16 TiB - 4 KiB, here) with
    a few KB at its start, at an odd offset in the middle and at its last
    byte: nonod snapshots, verifies, diffs and restores it without reading or
    writing the holes (its rchar/wchar stay small: counts, not timings), the
    restored file is sparse with the same islands (compared through SEEK_DATA
    maps), and diff --patch calls it too large instead of reading it."""

    def islands(self, size):
        return [(0, os.urandom(4096)), (size // 2 + 12345, os.urandom(5000)),
                (size - 3001, os.urandom(3001))]

    def make_huge(self, path):
        with open(path, "wb") as f:
            for size in (16 * TIB, 16 * TIB - 4096):
                try:
                    f.truncate(size)
                    break
                except OSError as e:
                    if e.errno != 27:  # EFBIG: past this filesystem's largest file
                        raise
            else:
                self.skipTest("the workspace's filesystem cannot hold a 16 TiB file")
        isl = self.islands(size)
        with open(path, "r+b") as f:
            for off, data in isl:
                f.seek(off)
                f.write(data)
        os.utime(path, ns=(T0, T0))
        return size, isl

    def check_file(self, path, size, isl):
        st = os.stat(path)
        self.assertEqual(st.st_size, size)
        self.assertLess(st.st_blocks * 512, 1 << 20, "not sparse")
        regions = data_regions(path)
        self.assertLess(sum(e - s for s, e in regions), 1 << 20)
        with open(path, "rb") as f:
            for off, data in isl:
                f.seek(off)
                self.assertEqual(f.read(len(data)), data)
            for s, e in regions:  # outside the islands, data regions hold zeros
                f.seek(s)
                buf = bytearray(f.read(e - s))
                for off, data in isl:
                    lo, hi = max(off, s), min(off + len(data), e)
                    if lo < hi:
                        buf[lo - s:hi - s] = bytes(hi - lo)
                self.assertEqual(buf.count(0), len(buf), (s, e))

    def io(self):
        return io_counts(self.d.proc.pid)

    def assert_io_small(self, before, what, limit=256 << 20):
        after = self.io()
        if before is None or after is None:
            return  # /proc/PID/io unreadable: the call finishing at all is the check
        self.assertLess(after[0] - before[0], limit, f"{what} read {after[0] - before[0]}")
        self.assertLess(after[1] - before[1], limit, f"{what} wrote {after[1] - before[1]}")

    def test_16_tib_sparse_file(self):
        path = os.path.join(self.ws, "huge")
        write(os.path.join(self.ws, "small"), b"small\n")
        size, isl = self.make_huge(path)
        before = self.io()
        res, _ = call_collect(self.c, "snapshot.create", {"workspace": self.ws})
        sid = res["snapshot"]["id"]
        self.assert_io_small(before, "snapshot")
        v = self.c.call("snapshot.verify")
        self.assertEqual((v["ok"], v["missing"], v["corrupt"]), (True, 0, 0), v)
        import base64
        off, data = isl[1]
        r = self.c.call("snapshot.read", {"snapshot": sid, "path": "huge",
                                          "offset": off - 100, "length": len(data) + 300})
        self.assertEqual(base64.b64decode(r["data"]), bytes(100) + data + bytes(200))
        self.assertEqual(r["size"], size)

        # Changed in the middle: diff to live names it, diff --patch does not read it.
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(b"CHANGED")
        before = self.io()
        self.assertEqual(changes(self.c.call("snapshot.diff", {"from": sid})),
                         {(b"huge", "modified")})
        self.assert_io_small(before, "diff to live")
        r = nonoctl(self.d, "snapshot", "diff", "--patch", sid, cwd=self.ws)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Files a/huge and b/huge differ (file too large to diff)\n", r.stdout)

        # Restore over the changed file, and over no file at all.
        for damage in ("changed", "removed"):
            if damage == "removed":
                os.unlink(path)
            before = self.io()
            res, _ = call_collect(self.c, "snapshot.restore", {"snapshot": sid})
            self.assert_io_small(before, "restore")
            self.assertEqual(changes(res), {(b"huge", "modified" if damage == "changed"
                                             else "added")})
            self.check_file(path, size, isl)
            self.assertEqual(os.stat(path).st_mtime_ns, T0)
        # Unchanged now: a restore rewrites nothing.
        res, _ = call_collect(self.c, "snapshot.restore", {"snapshot": sid})
        self.assertEqual(changes(res), set())
        with open(os.path.join(self.ws, "small"), "rb") as f:
            self.assertEqual(f.read(), b"small\n")

    def test_sparse_and_dense_copies_hash_equal(self):
        """~40 MiB with holes and data vs the same bytes written densely."""
        dense = tempfile.mkdtemp(prefix="ws-dense-", dir=self.d.dir)
        try:
            layout = [(0, os.urandom(300 * 1024 + 7)), (9 * 2**20 + 123, os.urandom(2 * 2**20)),
                      (17 * 2**20 + 5, os.urandom(10)), (30 * 2**20 + 1, os.urandom(2**20))]
            size = 40 * 2**20 + 777
            full = bytearray(size)
            with open(os.path.join(self.ws, "f"), "wb") as f:
                for off, data in layout:
                    f.seek(off)
                    f.write(data)
                    full[off:off + len(data)] = data
                f.truncate(size)
            write(os.path.join(dense, "f"), bytes(full))
            os.utime(os.path.join(self.ws, "f"), ns=(T0, T0))
            self.assertLess(os.stat(os.path.join(self.ws, "f")).st_blocks * 512, 8 * 2**20)
            roots = []
            for ws in (self.ws, dense):
                res, _ = call_collect(self.c, "snapshot.create", {"workspace": ws})
                roots.append(res["snapshot"]["root"])
            self.assertEqual(roots[0], roots[1])
        finally:
            shutil.rmtree(dense, ignore_errors=True)


if __name__ == "__main__":
    if not os.environ.get("NONOD"):
        nonotest.skip("NONOD does not name the built nonod")
    nonotest.main()

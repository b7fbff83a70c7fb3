#!/usr/bin/env python3
"""Crash safety through the real daemon: nonod is SIGKILLed at a random
moment while it snapshots, restores or collects garbage, again and again
(NONO_SNAP_CRASH_ITERS, default 20; NONO_SNAP_CRASH_SEED). After every
restart snapshot.verify finds nothing missing or corrupt, and committed
snapshots restore byte for byte to the state they were taken of (the
library-level loop with many more kills is tests/unit/snap/test-snap-crash.c)."""
import hashlib
import os
import random
import shutil
import signal
import stat
import tempfile
import time
import unittest

import nonotest
from nonotest import Daemon

T0 = 1_600_000_000_000_000_000


def write_state(ws, k):
    """Deterministic workspace state k: small files, a chunked file, a link."""
    for name in os.listdir(ws):
        p = os.path.join(ws, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    for j in range(40):
        d = os.path.join(ws, "d%d" % (j % 4))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "f%02d" % j)
        with open(p, "wb") as f:
            f.write(b"state %d file %d\n" % (k if j % 3 else 0, j) * (j + 1))
        os.utime(p, ns=(T0 + j, T0 + j))
    rnd = random.Random(1000 + k)
    big = bytearray(random.Random(7).randbytes(6 * 1024 * 1024))
    off = rnd.randrange(len(big) - 4096)
    big[off:off + 4096] = bytes([k]) * 4096
    with open(os.path.join(ws, "big.bin"), "wb") as f:
        f.write(big)
    os.symlink("d%d/f01" % (k % 4), os.path.join(ws, "link"))


def manifest(ws):
    """{relpath: (type, mode, mtime of non-dirs, sha256 or link target)}."""
    out = {}
    for dp, dns, fns in os.walk(ws):
        for n in dns + fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, ws)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), None, None)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, st.st_mtime_ns, os.readlink(p))
            else:
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_mtime_ns, h)
    return out


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        c = self.d.client(hello=False)
        if "snapshots" not in c.hello()["features"]:
            c.close()
            self.d.close()
            raise unittest.SkipTest("the daemon has no snapshot store")
        c.close()
        self.ws = tempfile.mkdtemp(prefix="ws-crash-", dir=self.d.dir)

    def tearDown(self):
        self.d.close()  # removes self.ws too: it lives in the daemon's dir

    def kill_and_restart(self):
        os.killpg(self.d.proc.pid, signal.SIGKILL)
        self.d.proc.wait()
        self.d.logf.close()
        self.d.start()

    def learn(self, c, known, state):
        """Map snapshots committed since the last look to the state they hold."""
        for s in c.call("snapshot.list", {"workspace": self.ws})["snapshots"]:
            if s["id"] not in known:
                known[s["id"]] = state
        live = {s["id"] for s in c.call("snapshot.list", {"workspace": self.ws})["snapshots"]}
        for sid in list(known):
            if sid not in live:
                del known[sid]  # collected by gc (keep_last)

    def restore_check(self, c, known, sid):
        before = manifest(self.ws)
        c.call("snapshot.restore", {"snapshot": sid})
        self.assertEqual(manifest(self.ws), known[sid], f"restore of {sid}")
        self.learn(c, known, before)  # the safety snapshot holds the state before

    def test_kill9_loop(self):
        iters = int(os.environ.get("NONO_SNAP_CRASH_ITERS", "20"))
        rnd = random.Random(int(os.environ.get("NONO_SNAP_CRASH_SEED", "6")))
        known = {}  # committed snapshot id -> manifest of what it holds
        kills = {"create": 0, "restore": 0, "gc": 0}
        cut = 0  # creates the kill interrupted (no snapshot with their label)
        for it in range(iters):
            write_state(self.ws, rnd.randrange(4))
            state = manifest(self.ws)
            c = self.d.client(timeout=120)
            op = rnd.choice(["create", "create", "restore", "gc"])
            if op == "restore" and known:
                params = {"snapshot": rnd.choice(sorted(known))}
            elif op == "gc":
                params = {"keep_last": 3}
            else:
                op, params = "create", {"workspace": self.ws, "label": "it%d" % it}
            c.send({"jsonrpc": "2.0", "id": 1, "method": "snapshot." + op, "params": params})
            time.sleep(rnd.uniform(0, 0.15))
            self.kill_and_restart()
            kills[op] += 1
            c.close()

            c = self.d.client(timeout=120)
            v = c.call("snapshot.verify")
            self.assertEqual(v["missing"] + v["corrupt"], 0, f"iteration {it} after {op}: {v}")
            # What committed before the kill holds this iteration's state: a
            # create of it, or a restore's safety snapshot taken of it.
            self.learn(c, known, state)
            labels = {x["label"] for x in c.call("snapshot.list", {"workspace": self.ws})["snapshots"]}
            cut += op == "create" and params["label"] not in labels
            for sid in rnd.sample(sorted(known), min(2, len(known))):
                if sid in known:
                    self.restore_check(c, known, sid)
            c.close()
        print(f"kills: {kills}, creates cut short: {cut}, snapshots kept: {len(known)}")
        c = self.d.client(timeout=120)
        g = c.call("snapshot.gc", {"keep_last": 2})
        self.assertGreaterEqual(g["objects_deleted"], 0)
        v = c.call("snapshot.verify")
        self.assertEqual(v["missing"] + v["corrupt"] + v["unreferenced"], 0, v)
        c.close()


if __name__ == "__main__":
    nonotest.main()

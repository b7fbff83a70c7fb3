#!/usr/bin/env python3
"""A session's TMPDIR goes with the session, whatever the session left in it.

The attack: the sandboxed program builds a 1,000-deep directory chain in
$TMPDIR (9,000 bytes of path, past PATH_MAX, and past the 256 levels where
the old recursive remover gave up and leaked the tree), plus a symlink to a
directory outside holding a canary, a directory with mode 000 and a name
with a newline. After the session ends the TMPDIR must be gone entirely and
the canary untouched. The control: a session that leaves one file.

Both as root (user-mode daemon) and as an unprivileged user (system-mode
daemon: the TMPDIR belongs to the user, and nonod removes it with the user's
rights, so root's files the user moved in are not removed on their behalf).
"""
import base64
import os
import shutil
import tempfile
import threading
import time
import unittest

import nonotest
from nonotest import Daemon
from sessions import exit_code, run
from users import SystemFixture, as_user

DEPTH = 1000
NAME = "d" * 8

# Runs inside the session; argv[1] is the outside directory.
PROGRAM = f"""
import os, sys
t = os.environ["TMPDIR"]
os.chdir(t)
os.symlink(sys.argv[1], "out-top")
for i in range({DEPTH}):
    os.mkdir({NAME!r}, 0o755)
    os.chdir({NAME!r})
    if i % 100 == 0:
        with open("f", "w") as f:
            f.write("x")
os.symlink(sys.argv[1], "out")
with open("new\\nline", "w") as f:
    f.write("x")
os.mkdir("locked")
with open("locked/f", "w") as f:
    f.write("x")
os.chmod("locked/f", 0)
os.chmod("locked", 0)
print(t)
"""

WIDE = ("import os; t = os.environ['TMPDIR']\n"
        "for i in range(20000): os.mkdir(f'{t}/d{i}')\n"
        "print(t)")

CONTROL = "import os; open(os.environ['TMPDIR'] + '/f', 'w').write('x'); print(os.environ['TMPDIR'])"


def wait_gone(path, client, timeout=120):
    """The daemon removes the TMPDIR after it answers session.wait: one more
    round trip orders us after that, then poll in case it ever moves off the
    event loop."""
    client.call("session.list")
    deadline = time.monotonic() + timeout
    while os.path.lexists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not os.path.lexists(path)


def close_daemon(d):
    """Stop d; under -Db_sanitize nonod reports memory errors and leaks here."""
    rc = d.stop()
    log = d.logtext()
    d.close()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in log:
            raise AssertionError(f"nonod reported '{marker}':\n{log[-4000:]}")
    if rc != 0:
        raise AssertionError(f"nonod exited with {rc}:\n{log[-3000:]}")


class Checks:
    """The cases; subclasses say how a session is run."""

    def outside(self):
        d = tempfile.mkdtemp(prefix="outside-", dir=self.base)
        os.chmod(d, 0o755)
        with open(os.path.join(d, "canary"), "w") as f:
            f.write("precious")
        os.mkdir(os.path.join(d, "sub"))
        with open(os.path.join(d, "sub", "canary"), "w") as f:
            f.write("precious")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def check_outside(self, d):
        for p in ("canary", "sub/canary"):
            with open(os.path.join(d, p)) as f:
                self.assertEqual(f.read(), "precious", p)

    def test_control_tmpdir_with_a_file_is_removed(self):
        code, out, err = self.session(["python3", "-c", CONTROL])
        self.assertEqual(code, 0, err)
        tmp = out.decode().strip()
        self.assertTrue(tmp.startswith("/tmp/nono-"), tmp)
        self.assertTrue(wait_gone(tmp, self.c), f"{tmp} left behind")

    def test_deep_chain_and_symlinks_out_are_removed(self):
        outside = self.outside()
        code, out, err = self.session(["python3", "-c", PROGRAM, outside])
        self.assertEqual(code, 0, err)
        tmp = out.decode().strip()
        self.assertTrue(tmp.startswith("/tmp/nono-"), tmp)
        self.assertTrue(wait_gone(tmp, self.c),
                        f"{tmp} left behind:\n" + self.d.logtext()[-2000:])
        self.check_outside(outside)
        self.assertNotIn("rmtree", self.d.logtext())


class RootTmpdirTest(Checks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.base = cls.d.dir
        cls.ws = os.path.join(cls.d.dir, "ws")
        os.makedirs(cls.ws)

    @classmethod
    def tearDownClass(cls):
        close_daemon(cls.d)

    def setUp(self):
        self.c = self.d.client()

    def test_a_big_tmpdir_does_not_hold_the_loop(self):
        """20,000 directories take seconds to delete (about 20 s on this
        disk); nonod removes them on a thread of its own, so it answers
        while the TMPDIR is still being emptied. On the old code the loop
        did the removal first, and the TMPDIR was gone by the answer."""
        code, out, err = self.session(["python3", "-c", WIDE])
        self.assertEqual(code, 0, err)
        tmp = out.decode().strip()
        self.assertTrue(tmp.startswith("/tmp/nono-"), tmp)
        self.c.call("daemon.status")  # answered while the removal runs
        self.assertTrue(os.path.lexists(tmp), "removed before nonod answered")
        self.assertTrue(wait_gone(tmp, self.c), f"{tmp} left behind")

    def tearDown(self):
        self.c.close()

    def session(self, argv):
        final, out, err = run(self.c, argv, self.ws)
        return exit_code(final), out, err


class UserTmpdirTest(Checks, SystemFixture):
    """The TMPDIR belongs to an unprivileged user; nonod (root) removes it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = cls.a
        cls.base = cls.d.dir
        cls.ws = os.path.join(cls.d.dir, "ws-a")
        os.makedirs(cls.ws)
        os.chown(cls.ws, cls.user.pw_uid, cls.user.pw_gid)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "d"):
            close_daemon(cls.d)  # also fails on sanitizer reports

    def setUp(self):
        super().setUp()
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()
        super().tearDown()

    def test_root_files_moved_in_are_not_removed(self):
        """Attack: something of root's that the user can rename into their
        TMPDIR (here a root-owned sticky scratch directory with root's files,
        placed by the test while the session runs). nonod removes the TMPDIR
        with the user's rights, so what the user could not delete stays; the
        user's own files go, a mode-000 directory of theirs too. Removing as
        root (the previous code) deleted root's files."""
        prog = ("import os, time; t = os.environ['TMPDIR']\n"
                "os.makedirs(t + '/locked/in'); open(t + '/locked/in/f', 'w').close()\n"
                "os.chmod(t + '/locked/in', 0); os.chmod(t + '/locked', 0)\n"
                "open(t + '/ready', 'w').close()\n"
                "while not os.path.exists(t + '/go'): time.sleep(0.02)\n"
                "print(t)")
        before = set(os.listdir("/tmp"))
        box = {}
        th = threading.Thread(target=lambda: box.update(r=self.session(["python3", "-c", prog])))
        th.start()
        tmp = None
        deadline = time.monotonic() + 120
        while tmp is None and th.is_alive() and time.monotonic() < deadline:
            for n in set(os.listdir("/tmp")) - before:
                p = os.path.join("/tmp", n)
                if n.startswith("nono-") and os.path.exists(os.path.join(p, "ready")):
                    tmp = p
            time.sleep(0.02)
        self.assertIsNotNone(tmp, "the session's TMPDIR did not appear")
        self.addCleanup(shutil.rmtree, tmp, True)
        moved = os.path.join(tmp, "moved-in")
        os.mkdir(moved)
        os.chmod(moved, 0o1777)
        os.mkdir(os.path.join(moved, "rootdir"))
        for f in ("roots", "rootdir/f"):
            with open(os.path.join(moved, f), "w") as fh:
                fh.write("precious")
        open(os.path.join(tmp, "go"), "w").close()
        th.join(300)
        code, out, err = box["r"]
        self.assertEqual(code, 0, err)
        self.assertEqual(out.decode().strip(), tmp)
        self.c.call("session.list")
        left = lambda: os.listdir(tmp) if os.path.isdir(tmp) else []
        deadline = time.monotonic() + 120
        while left() != ["moved-in"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(left(), ["moved-in"], "root's directory not left in place:\n" +
                         self.d.logtext()[-2000:])
        for f in ("roots", "rootdir/f"):
            with open(os.path.join(moved, f)) as fh:
                self.assertEqual(fh.read(), "precious", f)
        self.assertEqual(os.stat(moved).st_mode & 0o7777, 0o1777)

    def session(self, argv):
        out = as_user(self, self.d, self.user, f"""
import base64
final, so, se = run(c, {argv!r}, {self.ws!r})
st = final["status"]
out['code'] = st["code"] if st.get("exited") else 128 + st["signal"]
out['out'] = base64.b64encode(so).decode(); out['err'] = base64.b64encode(se).decode()
""", timeout=300)
        return out["code"], base64.b64decode(out["out"]), base64.b64decode(out["err"])


if __name__ == "__main__":
    nonotest.main()

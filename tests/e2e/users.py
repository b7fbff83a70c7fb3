"""Test users and running a client as one of them (system-mode tests, root only)."""
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest

from nonotest import Daemon

HERE = os.path.dirname(os.path.abspath(__file__))

# A script run as the user: `c` is a connected client, `attempt(name, fn)`
# records fn()'s result or its error, `out` is printed as JSON at the end.
CLIENT = r"""
import json, sys
sys.path.insert(0, %(here)r)
from nonotest import RawClient, RpcError
from sessions import run, PATH_ENV
c = RawClient(%(sock)r, %(timeout)d); c.hello()
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except RpcError as e:
        out[name] = {"error": e.kind, "field": e.field, "detail": e.detail}
%(body)s
print(json.dumps(out))
"""


def ensure_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True)
    for g in groups:
        subprocess.run(["usermod", "-a", "-G", g, name], check=True)
    return pwd.getpwnam(name)


def as_user(test, daemon, user, body, timeout=120):
    """Run body (see CLIENT) as user against daemon; its `out` as a dict."""
    code = CLIENT % {"here": HERE, "sock": daemon.socket, "timeout": timeout, "body": body}
    r = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                        "--init-groups", sys.executable, "-c", code],
                       capture_output=True, timeout=timeout + 60,
                       env={"PATH": os.environ["PATH"]}, cwd="/")
    test.assertEqual(r.returncode, 0, r.stderr.decode() + daemon.logtext()[-3000:])
    return json.loads(r.stdout.decode().splitlines()[-1])


class SystemFixture(unittest.TestCase):
    """As root: a system-mode nonod, two test users, a temp dir per test."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("system mode and other users need root")
        ensure_group("nono")
        cls.a = ensure_user("nono-e2e-a", ["nono"])
        cls.b = ensure_user("nono-e2e-b", ["nono"])
        cls.d = Daemon(mode="--system")
        os.chmod(cls.d.dir, 0o755)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "d"):
            cls.d.close()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sys-", dir=self.d.dir)
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def userdir(self, name, user):
        p = os.path.join(self.tmp, name)
        os.makedirs(p)
        os.chown(p, user.pw_uid, user.pw_gid)
        return p

    def as_user(self, user, body):
        return as_user(self, self.d, user, body, timeout=300)

    def chown_tree(self, root, user):
        for dp, dns, fns in os.walk(root):
            for n in dns + fns:
                os.lchown(os.path.join(dp, n), user.pw_uid, user.pw_gid)

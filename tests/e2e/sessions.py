"""Helpers for tests that run real sessions through a real nonod."""
import base64
import os
import pwd

from nonotest import RpcError

PATH_ENV = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]


def run(client, argv, cwd, policy=None, wait_ms=60000, **params):
    """Create a pipe-mode session, wait for it, return (final state, stdout, stderr)."""
    p = {"argv": argv, "cwd": cwd, "stdio": {"mode": "pipe"}, "environ": PATH_ENV}
    if policy is not None:
        p["policy"] = policy
    p.update(params)
    created = client.call("session.create", p)
    final = client.call("session.wait", {"id": created["id"], "timeout_ms": wait_ms})
    out = client.call("session.output", {"id": created["id"]})
    return (final, base64.b64decode(out["stdout"]["base64"]),
            base64.b64decode(out["stderr"]["base64"]))


def exit_code(final):
    st = final["status"]
    return st["code"] if st.get("exited") else 128 + st["signal"]


def nobody():
    """An unprivileged uid/gid that exists on the machine."""
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


def writable_tmpdir(base, uid, gid, name):
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    os.chown(d, uid, gid)
    os.chmod(d, 0o755)
    return d

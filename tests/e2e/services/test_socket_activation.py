#!/usr/bin/env python3
"""nonod under systemd socket activation (systemd-socket-activate).

systemd-socket-activate binds the socket, waits for the first connection,
then execs nonod in its own pid with LISTEN_FDS=1. The test checks that
nonod serves the inherited socket (the first connection, queued before
nonod even ran, is answered; later connections too), that it did not bind
a socket of its own instead, that the protocol rules hold on it (no call
before hello), and that SIGTERM ends it with status 0 and leaves the
socket file, which belongs to the service manager, in place.

It also hands nonod sockets it must refuse, and checks that it fails
closed (exits non-zero without serving, no crash): a datagram socket, and
two sockets where nonod takes exactly one.

usage: test_socket_activation.py NONOD
"""
import os
import shutil
import socket
import sys

from svc_common import (Client, Daemon, TempTree, expect_error, fail,
                        hello_and_status, skip, wait_for_path)


def passenv_args():
    """systemd-socket-activate gives the child a fresh environment: hand
    through the variables that keep nonod inside the temp tree."""
    out = []
    for var in ("HOME", "XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        out += ["-E", var]
    return out


def refused(activate, nonod, what, listen_args, trigger):
    """nonod handed unacceptable sockets must exit non-zero on its own."""
    tree = TempTree("nono-sockact-bad-")
    daemon = None
    try:
        args = []
        for kind, name in listen_args:
            args += (["-d"] if kind == "dgram" else []) + ["-l", tree.path(name)]
        daemon = Daemon([activate] + args + passenv_args() +
                        [nonod, "--user", "--state-dir", tree.path("state")],
                        tree.env, tree.path("nonod.log"))
        first = tree.path(listen_args[0][1])
        wait_for_path(first, daemon)
        trigger(first)
        rc = daemon.wait_exit()
        if rc <= 0:
            fail("%s: nonod exited %d, want a non-zero exit of its own:\n%s"
                 % (what, rc, daemon.log_text()))
    finally:
        if daemon is not None:
            daemon.cleanup()
        tree.cleanup()


def send_datagram(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(b"{}\n", path)
    finally:
        s.close()


def connect_stream(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()


def main():
    if len(sys.argv) != 2:
        fail("usage: test_socket_activation.py NONOD")
    nonod = os.path.abspath(sys.argv[1])
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        skip("systemd-socket-activate not installed (package systemd)")

    tree = TempTree("nono-sockact-")
    daemon = None
    clients = []
    try:
        sock = tree.path("nonod.sock")
        state = tree.path("state")
        daemon = Daemon([activate, "-l", sock] + passenv_args() +
                        [nonod, "--user", "--state-dir", state],
                        tree.env, tree.path("nonod.log"))
        wait_for_path(sock, daemon)

        # First connection: this is what makes systemd-socket-activate exec
        # nonod, so the request sits in the socket before nonod exists.
        first = Client(sock)
        clients.append(first)
        expect_error(first.call("daemon.status"), -32001, "hello_required",
                     "status before hello")
        status = hello_and_status(first, "first connection")

        # A second connection: nonod keeps accepting on the inherited fd.
        second = Client(sock)
        clients.append(second)
        hello_and_status(second, "second connection")

        # It used the passed socket and made none of its own.
        own = os.path.join(tree.env["XDG_RUNTIME_DIR"], "nono", "nonod.sock")
        if os.path.exists(own):
            fail("nonod bound %s although it was handed a socket" % own)
        if "pid" in status and status["pid"] != daemon.pid:
            fail("status pid %r is not the activated process %d"
                 % (status.get("pid"), daemon.pid))

        for c in clients:
            c.close()
        clients = []
        rc = daemon.terminate_and_wait()
        if rc != 0:
            fail("nonod exited %d after SIGTERM, want 0:\n%s"
                 % (rc, daemon.log_text()))
        # The socket file belongs to the service manager, which keeps
        # listening across restarts: nonod must not delete it on exit.
        if not os.path.exists(sock):
            fail("nonod removed the socket it was handed (%s)" % sock)
        refused(activate, nonod, "datagram socket", [("dgram", "d.sock")],
                send_datagram)
        refused(activate, nonod, "two sockets",
                [("stream", "a.sock"), ("stream", "b.sock")], connect_stream)
        print("ok: socket activation, hello/status, SIGTERM -> exit 0; "
              "datagram and two-socket activation refused")
    except BaseException as e:
        if daemon is not None and not (isinstance(e, SystemExit) and
                                       e.code in (0, None)):
            print("--- nonod output ---\n" + daemon.log_text(), file=sys.stderr)
        raise
    finally:
        for c in clients:
            c.close()
        if daemon is not None:
            daemon.cleanup()
        tree.cleanup()


if __name__ == "__main__":
    main()

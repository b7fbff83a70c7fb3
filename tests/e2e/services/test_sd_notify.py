#!/usr/bin/env python3
"""nonod's sd_notify protocol, as a Type=notify unit with WatchdogSec= sees it.

The test binds the datagram socket systemd would (NOTIFY_SOCKET) and sets
WATCHDOG_USEC, starts nonod on a private socket, and checks:
  - READY=1 arrives, and only once the control socket already answers
    (a connection made right after READY=1 completes hello/status);
  - WATCHDOG=1 pings arrive;
  - SIGHUP (ExecReload=) gives RELOADING=1 then READY=1, also when the new
    config is invalid: then the old one stays, STATUS= says so, and the
    daemon keeps serving;
  - SIGTERM produces STOPPING=1, exit status 0, and no stale socket.

usage: test_sd_notify.py NONOD
"""
import os
import signal
import socket
import sys
import time

from svc_common import (HANG_GUARD, Client, Daemon, TempTree, fail,
                        hello_and_status)

WATCHDOG_USEC = 2000000


class NotifyListener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.seen = []

    def wait_for(self, assignment, daemon, prefix=False):
        """Collect datagrams until one has the line `assignment` (or, with
        prefix, a line starting with it); returns that datagram's lines."""
        deadline = time.monotonic() + HANG_GUARD
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("no %s from nonod; got %r\n%s"
                     % (assignment, self.seen, daemon.log_text()))
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                if not daemon.alive() and assignment != "STOPPING=1":
                    fail("nonod exited (%s) before %s:\n%s"
                         % (daemon.proc.returncode, assignment,
                            daemon.log_text()))
                continue
            lines = data.decode("utf-8", "replace").split("\n")
            self.seen.append(lines)
            if any(l == assignment or (prefix and l.startswith(assignment))
                   for l in lines):
                return lines

    def close(self):
        self.sock.close()


def main():
    if len(sys.argv) != 2:
        fail("usage: test_sd_notify.py NONOD")
    nonod = os.path.abspath(sys.argv[1])

    tree = TempTree("nono-notify-")
    daemon = None
    listener = None
    client = None
    try:
        listener = NotifyListener(tree.path("notify.sock"))
        env = dict(tree.env)
        env["NOTIFY_SOCKET"] = tree.path("notify.sock")
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        sock = tree.path("nonod.sock")
        conf = tree.path("nonod.conf")
        with open(conf, "w") as f:
            f.write("log_level = info\n")
        daemon = Daemon([nonod, "--user", "--socket", sock,
                         "--state-dir", tree.path("state"), "--config", conf],
                        env, tree.path("nonod.log"))

        listener.wait_for("READY=1", daemon)
        # Ready means ready: the socket exists and serves right now.
        if not os.path.exists(sock):
            fail("READY=1 sent before %s exists" % sock)
        client = Client(sock)
        hello_and_status(client, "after READY=1")
        client.close()
        client = None

        listener.wait_for("WATCHDOG=1", daemon)

        # Reload with a valid config, then with a broken one.
        with open(conf, "w") as f:
            f.write("log_level = debug\n")
        daemon.proc.send_signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1", daemon)
        listener.wait_for("READY=1", daemon)
        with open(conf, "w") as f:
            f.write("this is not = a valid key\n")
        daemon.proc.send_signal(signal.SIGHUP)
        listener.wait_for("RELOADING=1", daemon)
        listener.wait_for("READY=1", daemon)
        listener.wait_for("STATUS=serving; last reload refused", daemon,
                          prefix=True)
        client = Client(sock)
        hello_and_status(client, "after a refused reload")
        client.close()
        client = None

        daemon.proc.send_signal(signal.SIGTERM)
        listener.wait_for("STOPPING=1", daemon)
        rc = daemon.wait_exit()
        if rc != 0:
            fail("nonod exited %d after SIGTERM, want 0:\n%s"
                 % (rc, daemon.log_text()))
        # A socket nonod bound itself is its own to remove.
        if os.path.exists(sock):
            fail("nonod left its socket %s behind" % sock)
        print("ok: READY=1 after the socket serves, WATCHDOG=1, reloads "
              "(valid and refused), STOPPING=1 on SIGTERM, exit 0")
    except BaseException as e:
        if daemon is not None and not (isinstance(e, SystemExit) and
                                       e.code in (0, None)):
            print("--- nonod output ---\n" + daemon.log_text(), file=sys.stderr)
        raise
    finally:
        if client is not None:
            client.close()
        if listener is not None:
            listener.close()
        if daemon is not None:
            daemon.cleanup()
        tree.cleanup()


if __name__ == "__main__":
    main()

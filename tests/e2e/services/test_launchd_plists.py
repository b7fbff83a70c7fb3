#!/usr/bin/env python3
"""The launchd plists, parsed with plistlib: well-formed, the keys launchd
needs, and a "Sockets" entry named exactly as the code asks
launch_activate_socket() for (ACTIVATION_LAUNCHD_SOCKET_NAME in
daemon/activation-launchd.h, read from the header so the two cannot drift).

usage: test_launchd_plists.py SBINDIR DAEMON.plist AGENT.plist HEADER
"""
import plistlib
import re
import sys

from svc_common import fail


def load(path):
    with open(path, "rb") as f:
        text = f.read()
    if re.search(rb"@[A-Za-z_]+@", text):
        fail("%s: unsubstituted @VAR@ left" % path)
    try:
        return plistlib.loads(text, fmt=plistlib.FMT_XML)
    except Exception as e:  # plistlib raises several types
        fail("%s: not a valid XML plist: %s" % (path, e))


def socket_name_from_header(header):
    with open(header) as f:
        m = re.search(r'#define\s+ACTIVATION_LAUNCHD_SOCKET_NAME\s+"([^"]+)"',
                      f.read())
    if m is None:
        fail("%s: no ACTIVATION_LAUNCHD_SOCKET_NAME" % header)
    return m.group(1)


def check_common(p, path, label, mode_arg, sbindir, sock_name):
    def need(key, typ):
        if not isinstance(p.get(key), typ):
            fail("%s: %s missing or not %s: %r"
                 % (path, key, typ.__name__, p.get(key)))
        return p[key]

    if need("Label", str) != label:
        fail("%s: Label %r, want %r" % (path, p["Label"], label))
    args = need("ProgramArguments", list)
    if args != [sbindir + "/nonod", mode_arg]:
        fail("%s: ProgramArguments %r" % (path, args))
    ka = need("KeepAlive", dict)
    if ka.get("SuccessfulExit") is not False:
        fail("%s: KeepAlive should restart on crash only: %r" % (path, ka))
    socks = need("Sockets", dict)
    if list(socks) != [sock_name]:
        fail("%s: Sockets has %r; the code asks for %r"
             % (path, list(socks), sock_name))
    s = socks[sock_name]
    if s.get("SockFamily") != "Unix" or s.get("SockType") != "stream":
        fail("%s: socket is not a Unix stream socket: %r" % (path, s))
    return s


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    sbindir, daemon_path, agent_path, header = sys.argv[1:]
    name = socket_name_from_header(header)
    if name != "Listeners":
        fail("socket name %r, want Listeners" % name)

    d = load(daemon_path)
    s = check_common(d, daemon_path, "org.nono.nonod", "--system", sbindir,
                     name)
    if s.get("SockPathName") != "/var/run/nono/nonod.sock":
        fail("%s: SockPathName %r" % (daemon_path, s.get("SockPathName")))
    if s.get("SockPathMode") != 0o660:
        fail("%s: SockPathMode %r, want 432 (0660)"
             % (daemon_path, s.get("SockPathMode")))
    # launchd wants a numeric gid here; the site adds it (see the plist).
    if "SockPathGroup" in s and not isinstance(s["SockPathGroup"], int):
        fail("%s: SockPathGroup must be a numeric gid: %r"
             % (daemon_path, s["SockPathGroup"]))
    if not str(d.get("StandardErrorPath", "")).startswith("/var/log/"):
        fail("%s: StandardErrorPath %r" % (daemon_path,
                                           d.get("StandardErrorPath")))

    a = load(agent_path)
    s = check_common(a, agent_path, "org.nono.nonod.agent", "--user", sbindir,
                     name)
    # Per-user socket: launchd picks a private 0700 directory and exports
    # the path as NONO_SOCKET; a fixed SockPathName would be shared by all
    # users' agents.
    if s.get("SecureSocketWithKey") != "NONO_SOCKET" or "SockPathName" in s:
        fail("%s: want SecureSocketWithKey NONO_SOCKET and no SockPathName: %r"
             % (agent_path, s))
    if s.get("SockPathMode") != 0o600:
        fail("%s: SockPathMode %r, want 384 (0600)"
             % (agent_path, s.get("SockPathMode")))
    err = a.get("StandardErrorPath")
    if err is not None and (err.startswith("/tmp") or
                            err.startswith("/private/tmp")):
        fail("%s: log in a shared directory: %r" % (agent_path, err))
    print("ok: both plists parse; Sockets key %r matches the code" % name)


if __name__ == "__main__":
    main()

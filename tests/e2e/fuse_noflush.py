#!/usr/bin/env python3
"""A hostile FUSE server over raw /dev/fuse, for the tests: one file 'f'
that opens and takes writes, but whose FLUSH is never answered, so every
close() of it waits until this server goes away (its connection is then
aborted). Usage, as root: fuse_noflush.py MOUNTPOINT; prints "mounted"."""
import ctypes
import os
import struct
import sys

mnt = sys.argv[1]
fd = os.open("/dev/fuse", os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
if libc.mount(b"noflush", mnt.encode(), b"fuse", 6, opts) != 0:
    sys.exit("mount: " + os.strerror(ctypes.get_errno()))
print("mounted", flush=True)


def attr(ino, mode, size):
    # ino size blocks atime mtime ctime atimensec mtimensec ctimensec mode nlink uid gid rdev blksize flags
    return struct.pack("<QQQQQQIIIIIIIIII", ino, size, 0, 0, 0, 0, 0, 0, 0, mode, 1, 0, 0, 0, 4096, 0)



def reply(unique, body=b"", err=0):
    os.write(fd, struct.pack("<IiQ", 16 + len(body), err, unique) + body)



while True:
    try:
        req = os.read(fd, 1 << 20)
    except OSError:
        break
    ln, op, unique, nodeid = struct.unpack_from("<IIQQ", req)
    if op == 26:  # INIT
        major, minor = struct.unpack_from("<II", req, 40)
        body = struct.pack("<IIIIHHIIHHII", 7, 31, 65536, 0, 16, 12, 4096, 1, 32, 0, 0, 0) + b"\0" * 24
        reply(unique, body)
    elif op == 1:  # LOOKUP
        name = req[40:].split(b"\0")[0]
        if name == b"f":
            reply(unique, struct.pack("<QQQQII", 2, 0, 60, 60, 0, 0) + attr(2, 0o100666, 0))
        else:
            reply(unique, err=-2)
    elif op == 3:  # GETATTR
        mode = 0o40755 if nodeid == 1 else 0o100666
        reply(unique, struct.pack("<QII", 60, 0, 0) + attr(nodeid, mode, 0))
    elif op in (14, 27):  # OPEN, OPENDIR
        reply(unique, struct.pack("<QII", 1, 0, 0))
    elif op == 16:  # WRITE
        size = struct.unpack_from("<QQI", req, 40)[2]
        reply(unique, struct.pack("<II", size, 0))
    elif op == 25:  # FLUSH: never answered
        pass
    elif op in (18, 29):  # RELEASE, RELEASEDIR
        reply(unique)
    elif op in (2, 42):  # FORGET, BATCH_FORGET: no reply
        pass
    else:
        reply(unique, err=-38)

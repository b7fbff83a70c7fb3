"""The attacking program: `python3 -c PROBE '{"name": "code", ...}'`.

Each named operation is a line of Python run with the helpers below; the
probe prints one JSON object mapping each name to "ok" (it worked) or the
errno name the kernel answered (EPERM, EACCES, ...). Operations that would
change the probe itself (unshare, chroot, mount) run in a forked child. The
same probe runs inside a session (the attack) and outside one (the control),
so a broken probe fails the control instead of passing the attack.
"""

PROBE = r'''
import ctypes, errno, json, os, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
_keep = []

def buf(b):
    x = ctypes.create_string_buffer(b, len(b) + 1) if isinstance(b, bytes) else ctypes.create_string_buffer(b)
    _keep.append(x)
    return ctypes.addressof(x)

def sc(nr, *a):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

def in_child(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except OSError as e:
            os._exit(e.errno or 255)
        except BaseException:
            os._exit(254)
    _, st = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(st)
    if code != 0:
        raise OSError(code, os.strerror(code))

def read(path, n=4096):
    with open(path, "rb") as f:
        return f.read(n)

def ptrace_seize(pid):
    sc(101, 0x4206, pid, 0, 0)          # PTRACE_SEIZE: attaches without stopping

def first_readable(pid):
    for line in open(f"/proc/{pid}/maps"):
        a, perms = line.split()[:2]
        if perms.startswith("r"):
            return int(a.split("-")[0], 16)
    raise OSError(errno.ENOENT, "no readable mapping")

def vm_read(pid, addr=None):
    if addr is None:
        addr = first_readable(pid)
    local = ctypes.create_string_buffer(16)
    liov = (ctypes.c_void_p * 2)(ctypes.addressof(local), 16)
    riov = (ctypes.c_void_p * 2)(addr, 16)
    sc(310, pid, ctypes.addressof(liov), 1, ctypes.addressof(riov), 1, 0)

def keyctl_session():
    sc(250, 0, -3, 1)                   # KEYCTL_GET_KEYRING_ID, session keyring, create

def add_key():
    sc(248, buf(b"user"), buf(b"nono-esc"), buf(b"x"), 1, -2)   # process keyring

def io_uring():
    params = ctypes.create_string_buffer(120)
    os.close(sc(425, 4, ctypes.addressof(params)))

def bpf_map():
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, (ctypes.c_uint32 * 4)(2, 4, 4, 1), 16)  # ARRAY, key 4, value 4, 1 entry
    os.close(sc(321, 0, ctypes.addressof(attr), 128))

def perf_open():
    attr = ctypes.create_string_buffer(128)
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(1, 128), 8)   # PERF_TYPE_SOFTWARE, size; CPU_CLOCK
    os.close(sc(298, ctypes.addressof(attr), 0, -1, -1, 0))  # this process, any cpu

def connect(family, addr, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    try:
        s.settimeout(10)
        s.connect(addr)
    finally:
        s.close()

def udp_send(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"nono-escape-udp", addr)
    finally:
        s.close()

def unshare(flags):
    in_child(lambda: sc(272, flags))

def mount_tmpfs(target):
    def go():
        try:
            sc(272, 0x20000)                                   # CLONE_NEWNS, if it is allowed
            sc(165, 0, buf(b"/"), 0, 0x4000 | 0x40000, 0)      # MS_REC|MS_PRIVATE
        except OSError:
            pass
        sc(165, buf(b"none"), buf(target.encode()), buf(b"tmpfs"), 0, 0)
    in_child(go)

def chroot(path):
    in_child(lambda: os.chroot(path))

res = {}
for name, code in json.loads(sys.argv[1]).items():
    try:
        exec(code)
        res[name] = "ok"
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        res[name] = "exception: " + repr(e)
print(json.dumps(res), flush=True)
'''


def probe_argv(ops):
    """argv that runs the probe over ops ({name: python statement})."""
    import json
    return ["python3", "-c", PROBE, json.dumps(ops)]


def parse(out):
    """The probe's JSON result from its stdout."""
    import json
    lines = [l for l in out.decode(errors="replace").splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError(f"probe printed no result: {out!r}")
    return json.loads(lines[-1])


# A setuid reporter: real and effective uid and effective capabilities.
SUID_C = r'''
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char line[256]; FILE *f = fopen("/proc/self/status", "r");
    printf("ruid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "CapEff:", 7) == 0) fputs(line, stdout);
    return 0;
}
'''

# An LD_PRELOAD library that announces itself.
PRELOAD_C = r'''
#include <unistd.h>
__attribute__((constructor)) static void hooked(void) {
    static const char m[] = "PRELOAD-HOOK-RAN\n";
    write(2, m, sizeof m - 1);
}
'''

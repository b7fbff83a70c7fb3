/*
 * The built-in base profile: what common toolchains (sh, bash, python3, git,
 * node/npm, curl, make, gcc) need to start and run on Debian/Ubuntu, merged
 * into a policy unless it says `base: none`. A data table, nothing else.
 *
 * Deliberately absent: $HOME (the policy grants what it wants from it), /tmp
 * (each session gets a private $TMPDIR), /run (sockets of other services:
 * dbus, docker, the nono socket itself), /var (spools, logs, databases),
 * /root, /home, /srv, /mnt, /media, /boot, /etc/shadow and other /etc
 * secrets: only named /etc entries are readable, /dev/shm (shared with every
 * other process of the user: a policy that needs POSIX semaphores, e.g.
 * python multiprocessing, grants it), /etc/machine-id (a stable host id).
 * Time zones (/usr/share/zoneinfo) and locales (/usr/lib/locale) come with /usr.
 *
 * /proc is readable: tools read /proc/self/..., /proc/cpuinfo, /proc/meminfo.
 * Other processes' /proc/PID/environ, mem, maps and fd are guarded by the
 * kernel's ptrace access mode checks, and the sandbox cannot ptrace anyone
 * outside its own domain (Landlock restricts ptrace to the same or a nested
 * domain since ABI 1; seccomp also denies ptrace). Processes of other users
 * are further protected by plain DAC.
 *
 * Optional entries are skipped when the path does not exist on this host.
 */
#include "policy.h"

#define R POLICY_FS_READ
#define RW (POLICY_FS_READ | POLICY_FS_WRITE)

const struct policy_base_entry policy_base_profile[] = {
	/* Programs and libraries (read + execute). */
	{ "/usr", R, false, "binaries, libraries, interpreters, headers" },
	{ "/bin", R, true, "merged-/usr symlink or real dir" },
	{ "/sbin", R, true, "merged-/usr symlink or real dir" },
	{ "/lib", R, true, "dynamic loader, libc" },
	{ "/lib64", R, true, "x86-64 dynamic loader" },
	{ "/lib32", R, true, "multilib" },
	{ "/libx32", R, true, "multilib" },
	/* Dynamic loader and libc configuration. */
	{ "/etc/ld.so.cache", R, true, "ld.so" },
	{ "/etc/ld.so.conf", R, true, "ld.so, ldconfig -p" },
	{ "/etc/ld.so.conf.d", R, true, "ld.so" },
	{ "/etc/ld.so.preload", R, true, "ld.so checks it on every exec" },
	{ "/etc/nsswitch.conf", R, true, "getpwuid, getaddrinfo" },
	{ "/etc/passwd", R, true, "whoami, git, ssh, python getpass" },
	{ "/etc/group", R, true, "id, ls -l" },
	{ "/etc/hosts", R, true, "name resolution" },
	{ "/etc/host.conf", R, true, "name resolution" },
	{ "/etc/resolv.conf", R, true, "name resolution" },
	{ "/etc/gai.conf", R, true, "getaddrinfo ordering" },
	{ "/etc/protocols", R, true, "getprotobyname (python socket)" },
	{ "/etc/services", R, true, "getservbyname" },
	{ "/etc/localtime", R, true, "time zone" },
	{ "/etc/timezone", R, true, "time zone name (Debian)" },
	{ "/etc/locale.alias", R, true, "setlocale" },
	{ "/etc/locale.conf", R, true, "setlocale (systemd)" },
	{ "/etc/default/locale", R, true, "setlocale (Debian)" },
	/* TLS trust. */
	{ "/etc/ssl", R, true, "CA certificates, openssl.cnf" },
	{ "/etc/ca-certificates", R, true, "CA certificates" },
	{ "/etc/ca-certificates.conf", R, true, "CA certificates" },
	{ "/etc/pki", R, true, "CA certificates (Fedora layout)" },
	/* Tools. */
	{ "/etc/alternatives", R, true, "Debian alternatives symlinks (python, editor, cc)" },
	{ "/etc/gitconfig", R, true, "git system config" },
	{ "/etc/mime.types", R, true, "python mimetypes" },
	{ "/etc/magic", R, true, "file(1)" },
	{ "/etc/magic.mime", R, true, "file(1)" },
	{ "/etc/python3", R, true, "python3 site config" },
	{ "/etc/python3.11", R, true, "python3 site config (Debian 12)" },
	{ "/etc/npmrc", R, true, "npm global config" },
	{ "/etc/bash.bashrc", R, true, "interactive bash" },
	{ "/etc/profile", R, true, "login shells" },
	{ "/etc/profile.d", R, true, "login shells" },
	{ "/etc/inputrc", R, true, "readline" },
	{ "/etc/terminfo", R, true, "ncurses" },
	{ "/etc/environment", R, true, "pam-less shells read it in some setups" },
	{ "/etc/os-release", R, true, "platform detection (pip, node-gyp)" },
	{ "/etc/debian_version", R, true, "platform detection" },
	/* Devices. */
	{ "/dev/null", RW, false, "everything" },
	{ "/dev/zero", RW, false, "dd, mmap" },
	{ "/dev/full", RW, true, "tests" },
	{ "/dev/random", R, false, "entropy" },
	{ "/dev/urandom", R, false, "entropy" },
	{ "/dev/tty", RW, true, "the controlling terminal (pty stdio mode)" },
	/* Not /dev/pts: with it a worker could open any terminal its uid owns
	 * (other sessions', the user's login shell) to spoof output or read
	 * typed input. A session's own terminal works through the fds it was
	 * given and /dev/tty. New ptys inside would need a private devpts
	 * instance in the session's mount namespace (not built yet). */
	{ "/dev/ptmx", RW, true, "opening new pseudo-terminals (script, expect)" },
	/* No /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr: they are symlinks into
	 * /proc/self, which the daemon would resolve to its own fds while
	 * compiling. /proc below already covers them for the worker. */
	/* Kernel interfaces, read-only. See the note on /proc at the top. */
	{ "/proc", R, false, "/proc/self, cpuinfo, meminfo" },
	{ "/sys/devices/system/cpu", R, true, "nproc, os.cpu_count()" },
	{ "/sys/fs/cgroup", R, true, "runtimes sizing themselves to their cgroup (node, JVM, go)" },
};

const size_t policy_base_profile_len =
	sizeof(policy_base_profile) / sizeof(policy_base_profile[0]);

/*
 * Host capability probe for kernel enforcement: Landlock ABI and the rights
 * it implies, seccomp filters, no_new_privs, namespaces (tried for real in a
 * forked child), cgroup v2 delegation, and the pidfd family. See probe.h.
 */
#include "probe.h"

#include "landlock-abi.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static void probe_landlock(struct sandbox_features *f)
{
	int abi = sandbox_ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	f->landlock_abi = abi > 0 ? abi : 0;
	f->ll_fs = f->landlock_abi >= 1;
	f->ll_fs_refer = f->landlock_abi >= 2;
	f->ll_fs_truncate = f->landlock_abi >= 3;
	f->ll_net_tcp = f->landlock_abi >= 4;
	f->ll_fs_ioctl_dev = f->landlock_abi >= 5;
	f->ll_scope_abstract_unix = f->landlock_abi >= 6;
	f->ll_scope_signal = f->landlock_abi >= 6;
}

static void probe_seccomp(struct sandbox_features *f)
{
	uint32_t action = SECCOMP_RET_ERRNO;

	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0)
		f->seccomp_filter = true;
	else if (errno == ENOSYS || errno == EINVAL)
		/* Pre-4.14 kernels: a NULL filter gives EFAULT when supported. */
		f->seccomp_filter = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) == -1 &&
				    errno == EFAULT;
	f->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0;
}

static bool probe_has_cap_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return false;
	return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

/* Reads a small integer sysctl; returns dflt when the file is absent. */
static long probe_read_long(const char *path, long dflt)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return dflt;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

enum { NS_NET = 1, NS_MNT = 2, NS_VIA_USERNS = 4 };

/* Child side: only async-signal-safe calls; reports a bitmask byte. */
static void __attribute__((noreturn)) probe_ns_child(int wfd)
{
	unsigned char r = 0;

	if (unshare(CLONE_NEWNET) == 0)
		r |= NS_NET;
	if (unshare(CLONE_NEWNS) == 0)
		r |= NS_MNT;
	if (r == 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) == 0)
		r = NS_NET | NS_MNT | NS_VIA_USERNS;
	if (write(wfd, &r, 1) != 1)
		_exit(1);
	_exit(0);
}

static void probe_namespaces(struct sandbox_features *f)
{
	int p[2];
	unsigned char r = 0;
	ssize_t n;
	pid_t pid;

	f->cap_sys_admin = probe_has_cap_sys_admin();
	f->userns_sysctl = probe_read_long("/proc/sys/user/max_user_namespaces", 0) > 0 &&
			   probe_read_long("/proc/sys/kernel/unprivileged_userns_clone", 1) != 0;
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		probe_ns_child(p[1]);
	}
	close(p[1]);
	if (pid > 0) {
		do
			n = read(p[0], &r, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			r = 0;
		/* A daemon's SIGCHLD handler may reap it first; that is fine. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	f->netns = (r & NS_NET) != 0;
	f->mountns = (r & NS_MNT) != 0;
	f->ns_via_userns = (r & NS_VIA_USERNS) != 0;
}

static bool probe_is_cgroup2(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* Finds "0::/path" in /proc/self/cgroup. */
static bool probe_own_cgroup(char *out, size_t outlen)
{
	char line[PATH_MAX + 16];
	bool found = false;
	FILE *fp = fopen("/proc/self/cgroup", "re");

	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		found = snprintf(out, outlen, "%s", line + 3) < (int)outlen;
		break;
	}
	fclose(fp);
	return found;
}

static void probe_cgroup_controllers(struct sandbox_features *f)
{
	char path[PATH_MAX + 32], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", f->cgroup2_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *save = NULL, *tok = strtok_r(buf, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		if (strcmp(tok, "memory") == 0)
			f->cg_memory = true;
		else if (strcmp(tok, "pids") == 0)
			f->cg_pids = true;
		else if (strcmp(tok, "cpu") == 0)
			f->cg_cpu = true;
	}
}

static void probe_cgroup2(struct sandbox_features *f)
{
	static const char *const mounts[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	char own[PATH_MAX];

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		if (probe_is_cgroup2(mounts[i])) {
			snprintf(f->cgroup2_mount, sizeof(f->cgroup2_mount), "%s", mounts[i]);
			f->cgroup2 = true;
			break;
		}
	}
	if (!f->cgroup2 || !probe_own_cgroup(own, sizeof(own)))
		return;
	if (snprintf(f->cgroup2_dir, sizeof(f->cgroup2_dir), "%s%s", f->cgroup2_mount,
		     strcmp(own, "/") == 0 ? "" : own) >= (int)sizeof(f->cgroup2_dir)) {
		f->cgroup2_dir[0] = '\0';
		return;
	}
	f->cgroup2_writable = access(f->cgroup2_dir, W_OK) == 0;
	probe_cgroup_controllers(f);
}

static void probe_pidfd(struct sandbox_features *f)
{
	int sv[2], pfd = -1;
	socklen_t len = sizeof(pfd);
	struct clone_args args;
	long r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		if (getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pfd, &len) == 0 && pfd >= 0) {
			f->so_peerpidfd = true;
			close(pfd);
		}
		close(sv[0]);
		close(sv[1]);
	}
	pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pfd >= 0) {
		f->pidfd_open = true;
		close(pfd);
	}
	/*
	 * CLONE_INTO_CGROUP with a descriptor that cannot be open (INT_MAX):
	 * a kernel that knows the flag fails with EBADF before creating a
	 * process; one that does not fails with EINVAL/ENOSYS.
	 */
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = INT32_MAX;
	r = syscall(SYS_clone3, &args, sizeof(args));
	if (r == 0)
		_exit(0);  /* cannot happen; never run parent code twice */
	if (r > 0) {
		waitpid((pid_t)r, NULL, 0);
		f->clone_into_cgroup = true;
	} else {
		f->clone_into_cgroup = errno == EBADF && f->cgroup2;
	}
}

void sandbox_probe_fill(struct sandbox_features *out)
{
	memset(out, 0, sizeof(*out));
	probe_landlock(out);
	probe_seccomp(out);
	probe_namespaces(out);
	probe_cgroup2(out);
	probe_pidfd(out);
}

static struct sandbox_features probe_cache;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_init(void)
{
	sandbox_probe_fill(&probe_cache);
}

const struct sandbox_features *sandbox_probe(void)
{
	pthread_once(&probe_once, probe_init);
	return &probe_cache;
}

static int probe_add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

#define ADD_BOOL(o, k, b) (rc |= probe_add((o), (k), json_object_new_boolean(b)))

static struct json_object *probe_landlock_json(const struct sandbox_features *f)
{
	struct json_object *o = json_object_new_object();
	int rc = 0;

	if (!o)
		return NULL;
	rc |= probe_add(o, "abi", json_object_new_int(f->landlock_abi));
	ADD_BOOL(o, "fs", f->ll_fs);
	ADD_BOOL(o, "fs_refer", f->ll_fs_refer);
	ADD_BOOL(o, "fs_truncate", f->ll_fs_truncate);
	ADD_BOOL(o, "fs_ioctl_dev", f->ll_fs_ioctl_dev);
	ADD_BOOL(o, "net_tcp", f->ll_net_tcp);
	ADD_BOOL(o, "scope_abstract_unix", f->ll_scope_abstract_unix);
	ADD_BOOL(o, "scope_signal", f->ll_scope_signal);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *probe_ns_json(const struct sandbox_features *f)
{
	struct json_object *o = json_object_new_object();
	int rc = 0;

	if (!o)
		return NULL;
	ADD_BOOL(o, "cap_sys_admin", f->cap_sys_admin);
	ADD_BOOL(o, "userns_sysctl", f->userns_sysctl);
	ADD_BOOL(o, "net", f->netns);
	ADD_BOOL(o, "mount", f->mountns);
	ADD_BOOL(o, "via_userns", f->ns_via_userns);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *probe_cgroup_json(const struct sandbox_features *f)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ctl = json_object_new_array();
	int rc = 0;

	if (!o || !ctl) {
		json_object_put(o);
		json_object_put(ctl);
		return NULL;
	}
	if (f->cg_memory)
		json_object_array_add(ctl, json_object_new_string("memory"));
	if (f->cg_pids)
		json_object_array_add(ctl, json_object_new_string("pids"));
	if (f->cg_cpu)
		json_object_array_add(ctl, json_object_new_string("cpu"));
	ADD_BOOL(o, "available", f->cgroup2);
	rc |= probe_add(o, "mount", f->cgroup2 ? json_object_new_string(f->cgroup2_mount)
					       : json_object_new_null());
	rc |= probe_add(o, "dir", f->cgroup2_dir[0] ? json_object_new_string(f->cgroup2_dir)
						    : json_object_new_null());
	ADD_BOOL(o, "writable", f->cgroup2_writable);
	rc |= probe_add(o, "controllers", ctl);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *sandbox_features_to_json(const struct sandbox_features *f)
{
	struct json_object *o = json_object_new_object();
	int rc = 0;

	if (!o)
		return NULL;
	rc |= probe_add(o, "landlock", probe_landlock_json(f));
	ADD_BOOL(o, "seccomp_filter", f->seccomp_filter);
	ADD_BOOL(o, "no_new_privs", f->no_new_privs);
	rc |= probe_add(o, "namespaces", probe_ns_json(f));
	rc |= probe_add(o, "cgroup2", probe_cgroup_json(f));
	ADD_BOOL(o, "so_peerpidfd", f->so_peerpidfd);
	ADD_BOOL(o, "pidfd_open", f->pidfd_open);
	ADD_BOOL(o, "clone_into_cgroup", f->clone_into_cgroup);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

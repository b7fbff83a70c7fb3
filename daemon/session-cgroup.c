/* cgroup v2 for sessions: a subtree beside nonod, one leaf per session. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "probe.h"
#include "session-cgroup.h"

static char *root;           /* .../nono.sessions, or NULL */
static bool has_memory, has_pids;

/* Empty session cgroups kept for reuse: mkdir/rmdir in cgroupfs cost more
 * than the rest of a session start. */
#define POOL_MAX 16
static char *pool[POOL_MAX];
static int pool_n;
static unsigned long pool_seq;

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[4200];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Read a small cgroup file into buf (NUL-terminated); false if absent or empty. */
static bool read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

static bool file_has_word(const char *dir, const char *name, const char *word)
{
	char buf[512], *tok, *save;

	if (!read_file(dir, name, buf, sizeof(buf)))
		return false;
	for (tok = strtok_r(buf, " \n", &save); tok != NULL; tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, word) == 0)
			return true;
	return false;
}

void session_cgroup_init(void)
{
	const struct sandbox_features *f = sandbox_probe();
	const char *ctl[] = { "memory", "pids" };
	char *dir = NULL;

	if (!f->cgroup2 || !f->cgroup2_writable || f->cgroup2_dir[0] == '\0') {
		log_info("no writable cgroup v2 tree: sessions use rlimits and /proc walks");
		return;
	}
	/* Controllers flow down only through subtree_control; a cgroup that holds
	 * processes (nonod) cannot pass them on unless it is the root, so nonod
	 * moves into a leaf of its own first when it needs to. */
	for (size_t i = 0; i < 2; i++) {
		char plus[32];

		if (!file_has_word(f->cgroup2_dir, "cgroup.controllers", ctl[i]))
			continue;
		snprintf(plus, sizeof(plus), "+%s", ctl[i]);
		if (write_file(f->cgroup2_dir, "cgroup.subtree_control", plus) == -EBUSY) {
			char leaf[4200];

			snprintf(leaf, sizeof(leaf), "%s/nonod", f->cgroup2_dir);
			if ((mkdir(leaf, 0755) == 0 || errno == EEXIST) &&
			    write_file(leaf, "cgroup.procs", "0") == 0)
				write_file(f->cgroup2_dir, "cgroup.subtree_control", plus);
		}
	}
	if (asprintf(&dir, "%s/nono.sessions", f->cgroup2_dir) < 0)
		return;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		log_warn("mkdir %s: sessions use rlimits and /proc walks", dir);
		free(dir);
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		char plus[32];

		if (!file_has_word(dir, "cgroup.controllers", ctl[i]))
			continue;
		snprintf(plus, sizeof(plus), "+%s", ctl[i]);
		if (write_file(dir, "cgroup.subtree_control", plus) == 0) {
			if (i == 0)
				has_memory = true;
			else
				has_pids = true;
		}
	}
	root = dir;
	log_info("session cgroups under %s (controllers:%s%s)", root,
		 has_memory ? " memory" : "", has_pids ? " pids" : "");
}

bool session_cgroup_available(void)
{
	return root != NULL;
}

bool session_cgroup_has(const char *controller)
{
	if (strcmp(controller, "memory") == 0)
		return has_memory;
	if (strcmp(controller, "pids") == 0)
		return has_pids;
	return false;
}

/* Set (or, with 0, lift) a limit; a pooled cgroup may carry an old one. */
static int set_limit(const char *dir, const char *file, uint64_t v)
{
	char val[32];

	if (v == 0)
		snprintf(val, sizeof(val), "max");
	else
		snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	return write_file(dir, file, val);
}

static char *cgroup_take(void)
{
	char *dir = NULL;

	if (pool_n > 0)
		return pool[--pool_n];
	if (asprintf(&dir, "%s/c%lu-%ld", root, ++pool_seq, (long)getpid()) < 0)
		return NULL;
	if (mkdir(dir, 0755) < 0) {
		log_warn("mkdir %s", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int session_cgroup_create(const char *id, uint64_t memory_bytes, uint64_t pids,
			  char **path, int *dirfd)
{
	char *dir;
	int fd, rc;

	*path = NULL;
	*dirfd = -1;
	if (root == NULL)
		return -ENOTSUP;
	if ((dir = cgroup_take()) == NULL)
		return -EIO;
	if (has_memory) {
		if ((rc = set_limit(dir, "memory.max", memory_bytes)) < 0)
			goto fail;
		/* A memory limit must not spill into swap; without swap
		 * accounting the file is absent, which is fine. */
		rc = write_file(dir, "memory.swap.max", memory_bytes != 0 ? "0" : "max");
		if (rc < 0 && rc != -ENOENT)
			goto fail;
	}
	if (has_pids && (rc = set_limit(dir, "pids.max", pids)) < 0)
		goto fail;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	*path = dir;
	*dirfd = fd;
	return 0;
fail:
	errno = -rc;
	log_warn("cgroup limits for session %s in %s", id, dir);
	rmdir(dir);
	free(dir);
	return rc;
}

int session_cgroup_signal(const char *path, int sig)
{
	char file[4200], buf[64];
	FILE *f;
	int n = 0;

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	f = fopen(file, "re");
	if (f == NULL)
		return -errno;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		pid_t pid = (pid_t)atoi(buf);

		if (pid > 1 && kill(pid, sig) == 0)
			n++;
	}
	fclose(f);
	return n;
}

static bool cgroup_empty(const char *path);

int session_cgroup_kill(const char *path)
{
	if (cgroup_empty(path))
		return 0;
	/* cgroup.kill (Linux 5.14) kills atomically, even processes forking meanwhile. */
	if (write_file(path, "cgroup.kill", "1") == 0)
		return 1;
	for (int i = 0; i < 100 && session_cgroup_signal(path, SIGKILL) > 0; i++)
		;
	return 1;
}

/* Populated? (cgroup.events "populated 0" once every process has left.) */
static bool cgroup_empty(const char *path)
{
	char buf[256];

	return read_file(path, "cgroup.events", buf, sizeof(buf)) && strstr(buf, "populated 0") != NULL;
}

void session_cgroup_release(char *path, bool reusable)
{
	/* A cgroup that has seen cgroup.kill may kill later arrivals on some
	 * kernels: only never-killed, empty ones go back to the pool. */
	if (reusable && pool_n < POOL_MAX && cgroup_empty(path)) {
		pool[pool_n++] = path;
		return;
	}
	session_cgroup_remove(path);
	free(path);
}

void session_cgroup_fini(void)
{
	while (pool_n > 0) {
		char *p = pool[--pool_n];
		rmdir(p);
		free(p);
	}
	free(root);
	root = NULL;
}

void session_cgroup_remove(const char *path)
{
	/* Killed processes leave the cgroup as they exit; give them a moment. */
	for (int i = 0; i < 200; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY)
			break;
		usleep(1000);
	}
	log_warn("rmdir %s", path);
}

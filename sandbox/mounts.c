/*
 * Strict mode's read-only view of the filesystem: in a private mount
 * namespace, every mount becomes read-only and nosuid (mount_setattr with
 * AT_RECURSIVE on "/"), except the WRITE paths, which are first bind-mounted
 * onto themselves and then made writable again. Landlock has no right for
 * chmod/chown/utimes/xattr; a read-only mount refuses them (EROFS).
 * Not covered: metadata of entries inside a WRITE path (including denied
 * ones carved out of it), which stay on a writable mount.
 */
#include "internal.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef ST_RDONLY
#define ST_RDONLY 1
#endif

int sandbox_mounts_compile(const struct sandbox_spec *spec, struct sandbox_compiled *c,
			   char *errbuf, size_t errlen)
{
	const struct sandbox_features *f = sandbox_probe();
	char res[PATH_MAX];

	if (!spec->readonly_mounts) {
		sandbox_report_add(&c->report, "metadata", false,
				   "chmod/chown/utimes/xattr are not restricted by Landlock");
		return 0;
	}
	if (!f->cap_sys_admin || !f->mountns) {
		if (!spec->best_effort)
			return sandbox_err(errbuf, errlen, -EOPNOTSUPP,
					   "sandbox feature unavailable: read-only mounts need "
					   "CAP_SYS_ADMIN and mount namespaces");
		sandbox_report_add(&c->report, "metadata", false,
				   "no mount namespace: chmod/chown/utimes/xattr not restricted");
		return 0;
	}
	c->rw_paths = calloc(SANDBOX_MAX_RW_MOUNTS + 1, sizeof(char *));
	if (!c->rw_paths)
		return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
	for (size_t i = 0; i < spec->npaths; i++) {
		const struct sandbox_path_rule *r = &spec->paths[i];

		if (r->access != SANDBOX_WRITE)
			continue;
		if (!realpath(r->path, res)) {
			if (errno == ENOENT && (r->flags & SANDBOX_PATH_OPTIONAL))
				continue;
			return sandbox_err(errbuf, errlen, -errno, "mounts: %s", r->path);
		}
		if (c->nrw >= SANDBOX_MAX_RW_MOUNTS)
			return sandbox_err(errbuf, errlen, -E2BIG, "mounts: more than %d WRITE paths",
					   SANDBOX_MAX_RW_MOUNTS);
		c->rw_paths[c->nrw] = strdup(res);
		if (!c->rw_paths[c->nrw])
			return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
		c->nrw++;
	}
	c->mounts_ro = true;
	sandbox_report_add(&c->report, "metadata", true,
			   "private mount namespace: read-only and nosuid except %zu WRITE paths",
			   c->nrw);
	return 0;
}

int sandbox_mounts_enter(const struct sandbox_compiled *c)
{
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
	struct mount_attr rw = { .attr_clr = MOUNT_ATTR_RDONLY };

	if (!c->mounts_ro)
		return 0;
	if (unshare(CLONE_NEWNS) != 0)
		return -errno;
	if (syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -errno;
	for (size_t i = 0; i < c->nrw; i++)
		if (syscall(SYS_mount, c->rw_paths[i], c->rw_paths[i], NULL, MS_BIND | MS_REC,
			    NULL) != 0)
			return -errno;
	if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) != 0)
		return -errno;
	for (size_t i = 0; i < c->nrw; i++)
		if (syscall(SYS_mount_setattr, AT_FDCWD, c->rw_paths[i], AT_RECURSIVE, &rw,
			    sizeof(rw)) != 0)
			return -errno;
	return 0;
}

bool sandbox_mounts_verify(const struct sandbox_compiled *c)
{
	struct statfs sf;

	if (!c->mounts_ro)
		return true;
	return statfs("/", &sf) == 0 && (sf.f_flags & ST_RDONLY);
}

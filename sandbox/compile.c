/*
 * sandbox_compile(): everything the forked child needs, built in the parent
 * (Landlock ruleset, seccomp program, envp, rlimits, credentials), checked
 * against what the kernel offers (fail closed unless best_effort), with a
 * report of what is and is not enforced.
 */
#include "env.h"
#include "internal.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sandbox_err(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errbuf || errlen == 0)
		return err;
	va_start(ap, fmt);
	n = vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(errbuf + n, errlen - (size_t)n, ": %s", strerror(-err));
	return err;
}

void sandbox_report_add(struct sandbox_report *r, const char *feature, bool enforced,
			const char *fmt, ...)
{
	struct sandbox_report_item *it;
	va_list ap;

	if (r->n >= SANDBOX_REPORT_MAX)
		return;
	it = &r->items[r->n++];
	it->feature = feature;
	it->enforced = enforced;
	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
}

/* Landlock features: name, ABI that brings it, whether this spec needs it. */
struct ll_feature {
	const char *name;
	int abi;
	bool needed;
	const char *what;
};

static int compile_check_landlock(const struct sandbox_spec *spec, int abi,
				  struct sandbox_report *r, char *errbuf, size_t errlen)
{
	const struct ll_feature feats[] = {
		{ "landlock.fs", 1, true, "filesystem access rules" },
		{ "landlock.fs_refer", 2, true, "link/rename across directories" },
		{ "landlock.fs_truncate", 3, true, "truncate" },
		{ "landlock.net_tcp", 4, spec->net == SANDBOX_NET_PROXY,
		  spec->net == SANDBOX_NET_NONE ? "TCP bind/connect denied (also by seccomp)"
						: "TCP connect only to the allowed ports, no bind" },
		{ "landlock.fs_ioctl_dev", 5, true, "ioctl on devices" },
		{ "landlock.scope_abstract_unix", 6, true,
		  "no connect to abstract unix sockets outside the sandbox" },
		{ "landlock.scope_signal", 6, true, "no signals to processes outside the sandbox" },
	};

	for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++) {
		const struct ll_feature *f = &feats[i];

		if (abi >= f->abi) {
			sandbox_report_add(r, f->name, true, "%s", f->what);
			continue;
		}
		if (f->needed && !spec->best_effort) {
			if (errbuf && errlen)
				snprintf(errbuf, errlen,
					 "sandbox feature unavailable: %s (%s) needs Landlock ABI %d, "
					 "kernel has %d", f->name, f->what, f->abi, abi);
			return -EOPNOTSUPP;
		}
		sandbox_report_add(r, f->name, false, "needs Landlock ABI %d, kernel has %d%s",
				   f->abi, abi, f->needed ? " (best effort)" : "");
	}
	return 0;
}

static int compile_landlock(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
			    const struct sandbox_features *f, struct sandbox_compiled *c,
			    char *errbuf, size_t errlen)
{
	int rc;

	if (f->landlock_abi < 1)
		return 0;
	rc = sandbox_fs_compile(spec, paths, f->landlock_abi, &c->ruleset_fd, &c->verify_fd,
				&c->report, errbuf, errlen);
	if (rc == 0 && c->verify_fd < 0)
		sandbox_report_add(&c->report, "landlock.verify", false,
				   "every probe directory is allowed: restriction not re-checked");
	return rc;
}

static int compile_network(const struct sandbox_spec *spec, struct sandbox_compiled *c,
			   char *errbuf, size_t errlen)
{
	char ports[96] = "";
	size_t off = 0;

	for (size_t i = 0; i < spec->nports && off < sizeof(ports); i++)
		off += (size_t)snprintf(ports + off, sizeof(ports) - off, "%s%u", i ? "," : "",
					spec->ports[i]);
	switch (spec->net) {
	case SANDBOX_NET_NONE:
		sandbox_report_add(&c->report, "network", true,
				   "no inet sockets (seccomp); unix sockets only");
		return 0;
	case SANDBOX_NET_PROXY:
		sandbox_report_add(&c->report, "network", true,
				   "TCP connect to ports %s only, no bind or listen; UDP/raw/"
				   "netlink sockets and TCP Fast Open denied (seccomp)", ports);
		sandbox_report_add(&c->report, "network.destination_host", false,
				   "Landlock matches ports on any host: destination hosts on port(s) "
				   "%s are not enforced by the kernel", ports);
		return 0;
	case SANDBOX_NET_NETNS:
		if (spec->netns_fd < 0)
			return sandbox_err(errbuf, errlen, -EINVAL, "network: netns mode without a netns fd");
		c->netns_fd = fcntl(spec->netns_fd, F_DUPFD_CLOEXEC, 3);
		if (c->netns_fd < 0)
			return sandbox_err(errbuf, errlen, -errno, "network: dup netns fd");
		sandbox_report_add(&c->report, "network", true,
				   "private network namespace with loopback only; TCP ports %s", ports);
		return 0;
	}
	return sandbox_err(errbuf, errlen, -EINVAL, "network: bad mode %d", (int)spec->net);
}

static int compile_seccomp(const struct sandbox_spec *spec, const struct sandbox_features *f,
			   struct sandbox_compiled *c, char *errbuf, size_t errlen)
{
	int rc;

	if (!f->seccomp_filter) {
		if (!spec->best_effort) {
			if (errbuf && errlen)
				snprintf(errbuf, errlen,
					 "sandbox feature unavailable: seccomp filter (kernel lacks "
					 "SECCOMP_SET_MODE_FILTER)");
			return -EOPNOTSUPP;
		}
		sandbox_report_add(&c->report, "seccomp", false, "kernel lacks seccomp filters");
		return 0;
	}
	rc = sandbox_seccomp_build(spec->net, &c->prog);
	if (rc == -EOPNOTSUPP && spec->best_effort) {
		sandbox_report_add(&c->report, "seccomp", false, "no filter for this architecture");
		return 0;
	}
	if (rc < 0)
		return sandbox_err(errbuf, errlen, rc, "seccomp filter");
	sandbox_report_add(&c->report, "seccomp", true,
			   "baseline filter, %u instructions", (unsigned)c->prog.len);
	return 0;
}

static void compile_rlimit(struct sandbox_compiled *c, int res, uint64_t v)
{
	if (c->nrlimits >= SANDBOX_MAX_RLIMITS)
		return;
	c->rlimits[c->nrlimits].resource = res;
	c->rlimits[c->nrlimits].lim.rlim_cur = (rlim_t)v;
	c->rlimits[c->nrlimits].lim.rlim_max = (rlim_t)v;
	c->nrlimits++;
}

static void compile_limits(const struct sandbox_spec *spec, struct sandbox_compiled *c)
{
	const struct sandbox_limits *l = &spec->limits;

	compile_rlimit(c, RLIMIT_CORE, 0);
	if (l->as)
		compile_rlimit(c, RLIMIT_AS, l->as);
	if (l->data)
		compile_rlimit(c, RLIMIT_DATA, l->data);
	if (l->nproc)
		compile_rlimit(c, RLIMIT_NPROC, l->nproc);
	if (l->nofile)
		compile_rlimit(c, RLIMIT_NOFILE, l->nofile);
	if (l->cpu)
		compile_rlimit(c, RLIMIT_CPU, l->cpu);
	if (l->fsize)
		compile_rlimit(c, RLIMIT_FSIZE, l->fsize);
	sandbox_report_add(&c->report, "rlimits", true, "%zu limits (core 0)%s", c->nrlimits,
			   l->nproc ? "; nproc counts every process of the uid, not the session" : "");
}

static int compile_creds(const struct sandbox_spec *spec, struct sandbox_compiled *c,
			 char *errbuf, size_t errlen)
{
	const struct sandbox_creds *cr = &spec->creds;

	if (!cr->set) {
		sandbox_report_add(&c->report, "credentials", geteuid() != 0,
				   geteuid() != 0 ? "runs as the caller (uid %u)"
						  : "runs as uid %u with no capabilities",
				   (unsigned)geteuid());
		return 0;
	}
	if (cr->ngroups > SANDBOX_MAX_GROUPS || (cr->ngroups && !cr->groups))
		return sandbox_err(errbuf, errlen, -EINVAL, "credentials: bad group list");
	if (cr->uid == (uid_t)-1 || cr->gid == (gid_t)-1)
		return sandbox_err(errbuf, errlen, -EINVAL, "credentials: uid/gid -1");
	if (geteuid() != 0 && (cr->uid != geteuid() || cr->gid != getegid()))
		return sandbox_err(errbuf, errlen, -EPERM,
				   "credentials: dropping to uid %u needs root", (unsigned)cr->uid);
	c->creds_set = true;
	c->uid = cr->uid;
	c->gid = cr->gid;
	c->ngroups = cr->ngroups;
	if (cr->ngroups)
		memcpy(c->groups, cr->groups, cr->ngroups * sizeof(gid_t));
	sandbox_report_add(&c->report, "credentials", true, "uid %u gid %u, %zu groups",
			   (unsigned)cr->uid, (unsigned)cr->gid, cr->ngroups);
	return 0;
}

int sandbox_compile(const struct sandbox_spec *spec, struct sandbox_compiled **out,
		    char *errbuf, size_t errlen)
{
	return sandbox_compile_with(spec, sandbox_probe(), out, errbuf, errlen);
}

int sandbox_compile_with(const struct sandbox_spec *spec, const struct sandbox_features *f,
			 struct sandbox_compiled **out, char *errbuf, size_t errlen)
{
	struct sandbox_paths paths = { 0 };
	struct sandbox_compiled *c;
	int rc;

	*out = NULL;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!spec || (spec->npaths && !spec->paths) || (spec->nports && !spec->ports))
		return sandbox_err(errbuf, errlen, -EINVAL, "sandbox spec");
	c = calloc(1, sizeof(*c));
	if (!c)
		return sandbox_err(errbuf, errlen, -ENOMEM, "sandbox");
	c->ruleset_fd = c->verify_fd = c->netns_fd = -1;
	c->report.landlock_abi = f->landlock_abi;
	c->report.best_effort = spec->best_effort;
	if (!f->no_new_privs && !spec->best_effort) {
		rc = -EOPNOTSUPP;
		snprintf(errbuf, errlen, "sandbox feature unavailable: no_new_privs");
		goto fail;
	}
	sandbox_report_add(&c->report, "no_new_privs", f->no_new_privs, "setuid/file caps inert");
	rc = compile_network(spec, c, errbuf, errlen);
	if (rc == 0)
		rc = compile_check_landlock(spec, f->landlock_abi, &c->report, errbuf, errlen);
	if (rc == 0)
		rc = sandbox_paths_resolve(spec, &paths, &c->report, errbuf, errlen);
	if (rc == 0)
		rc = compile_landlock(spec, &paths, f, c, errbuf, errlen);
	if (rc == 0)
		rc = compile_seccomp(spec, f, c, errbuf, errlen);
	if (rc == 0)
		rc = compile_creds(spec, c, errbuf, errlen);
	if (rc == 0)
		rc = sandbox_mounts_compile(spec, &paths, c, errbuf, errlen);
	if (rc == 0 && spec->cwd) {
		if (spec->cwd[0] != '/')
			rc = sandbox_err(errbuf, errlen, -EINVAL, "cwd %s: not absolute", spec->cwd);
		else if (!(c->cwd = strdup(spec->cwd)))
			rc = sandbox_err(errbuf, errlen, -ENOMEM, "cwd");
	}
	if (rc == 0)
		rc = sandbox_env_build(&spec->env, &c->envp, errbuf, errlen);
	sandbox_paths_release(&paths);
	if (rc < 0)
		goto fail;
	compile_limits(spec, c);
	if (!c->mounts_ro || !spec->hide_shared_dirs)
		sandbox_report_add(&c->report, "unix_pathname_sockets", false,
				   "connect() to pathname unix sockets is not restricted by Landlock");
	*out = c;
	return 0;
fail:
	sandbox_compiled_free(c);
	return rc;
}

char *const *sandbox_compiled_envp(const struct sandbox_compiled *c)
{
	return c->envp;
}

const struct sandbox_report *sandbox_compiled_report(const struct sandbox_compiled *c)
{
	return &c->report;
}

size_t sandbox_compiled_fds(const struct sandbox_compiled *c, int fds[SANDBOX_ENTER_FDS])
{
	size_t n = 0;

	if (c->ruleset_fd >= 0)
		fds[n++] = c->ruleset_fd;
	if (c->verify_fd >= 0)
		fds[n++] = c->verify_fd;
	if (c->netns_fd >= 0)
		fds[n++] = c->netns_fd;
	return n;
}

void sandbox_compiled_free(struct sandbox_compiled *c)
{
	if (!c)
		return;
	if (c->ruleset_fd >= 0)
		close(c->ruleset_fd);
	if (c->verify_fd >= 0)
		close(c->verify_fd);
	if (c->netns_fd >= 0)
		close(c->netns_fd);
	free(c->prog.filter);
	sandbox_env_free(c->envp);
	sandbox_env_free(c->rw_paths);  /* same shape: NULL-terminated strings */
	for (size_t m = 0; m < SANDBOX_MAX_MASKS && c->masks[m] != NULL; m++) {
		free(c->masks[m]);
		sandbox_env_free(c->mask_keep[m]);
	}
	free(c->cwd);
	free(c);
}

/* Policy -> sandbox_spec: the single mapping used by nonod and libnono. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "from-policy.h"

const char *const sandbox_default_env_pass[] = {
	"PATH", "HOME", "LANG", "LANGUAGE", "LC_*", "TERM", "COLORTERM", "TZ",
	"USER", "LOGNAME", "NO_COLOR",
};
const size_t sandbox_default_env_pass_len =
	sizeof(sandbox_default_env_pass) / sizeof(sandbox_default_env_pass[0]);

void sandbox_spec_buf_free(struct sandbox_spec_buf *buf)
{
	if (buf == NULL)
		return;
	free(buf->paths);
	free(buf->pass);
	for (size_t i = 0; i < buf->nset; i++)
		free(buf->set[i]);
	free(buf->set);
	memset(buf, 0, sizeof(*buf));
}

static enum sandbox_access from_policy_access(unsigned access)
{
	if (access & POLICY_FS_DENY)
		return SANDBOX_DENY;
	if (access & POLICY_FS_WRITE)
		return SANDBOX_WRITE;
	return SANDBOX_READ;
}

static int from_policy_fs(const struct policy *p, struct sandbox_spec_buf *buf)
{
	buf->paths = calloc(p->n_fs > 0 ? p->n_fs : 1, sizeof(*buf->paths));
	if (buf->paths == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_fs; i++) {
		struct sandbox_path_rule *o = &buf->paths[buf->npaths++];

		o->path = p->fs[i].path;
		o->access = from_policy_access(p->fs[i].access);
		o->flags = p->fs[i].optional ? SANDBOX_PATH_OPTIONAL : 0;
	}
	return 0;
}

static int from_policy_env(const struct policy *p, struct sandbox_spec_buf *buf)
{
	const char *const *names = (const char *const *)p->env_pass;
	size_t n = p->n_env_pass;

	if (n == 0) {
		names = sandbox_default_env_pass;
		n = sandbox_default_env_pass_len;
	}
	buf->pass = calloc(n, sizeof(*buf->pass));
	if (buf->pass == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		buf->pass[buf->npass++] = names[i];
	buf->set = calloc(p->n_env_set > 0 ? p->n_env_set : 1, sizeof(*buf->set));
	if (buf->set == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_env_set; i++) {
		if (asprintf(&buf->set[buf->nset], "%s=%s", p->env_set[i].name,
			     p->env_set[i].value) < 0)
			return -ENOMEM;
		buf->nset++;
	}
	return 0;
}

static void from_policy_point(const struct sandbox_spec_buf *buf, struct sandbox_spec *spec)
{
	spec->paths = buf->paths;
	spec->npaths = buf->npaths;
	spec->env.pass = buf->pass;
	spec->env.npass = buf->npass;
	spec->env.set = (const char *const *)buf->set;
	spec->env.nset = buf->nset;
}

int sandbox_spec_from_policy(const struct policy *p, struct sandbox_spec_buf *buf,
			     struct sandbox_spec *spec)
{
	const struct policy_limits *l;
	int r;

	if (p == NULL || buf == NULL || spec == NULL || !p->resolved)
		return -EINVAL;
	memset(buf, 0, sizeof(*buf));
	memset(spec, 0, sizeof(*spec));
	spec->net = SANDBOX_NET_NONE;
	spec->netns_fd = -1;
	r = from_policy_fs(p, buf);
	if (r == 0)
		r = from_policy_env(p, buf);
	if (r < 0) {
		sandbox_spec_buf_free(buf);
		return r;
	}
	from_policy_point(buf, spec);
	l = &p->limits;
	if (l->memory_set)
		spec->limits.as = l->memory_bytes;
	if (l->pids_set)
		spec->limits.nproc = l->pids;
	if (l->files_set)
		spec->limits.nofile = l->files;
	if (l->cpu_set)
		spec->limits.cpu = l->cpu_seconds;
	spec->best_effort = p->enforcement == POLICY_ENFORCE_BEST_EFFORT;
	return 0;
}

int sandbox_spec_buf_add_path(struct sandbox_spec_buf *buf, struct sandbox_spec *spec,
			      const char *path, enum sandbox_access access, unsigned int flags)
{
	struct sandbox_path_rule *n = realloc(buf->paths, (buf->npaths + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	buf->paths = n;
	buf->paths[buf->npaths++] = (struct sandbox_path_rule){ .path = path, .access = access,
								 .flags = flags };
	from_policy_point(buf, spec);
	return 0;
}

int sandbox_spec_buf_setenv(struct sandbox_spec_buf *buf, struct sandbox_spec *spec,
			    const char *name, const char *value)
{
	char **n = realloc(buf->set, (buf->nset + 1) * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	buf->set = n;
	if (asprintf(&buf->set[buf->nset], "%s=%s", name, value) < 0)
		return -ENOMEM;
	buf->nset++;
	from_policy_point(buf, spec);
	return 0;
}

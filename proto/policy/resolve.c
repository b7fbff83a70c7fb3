/*
 * Variable expansion ($WORKSPACE, $HOME, $TMPDIR at the start of a path) and
 * merging of the built-in base profile. Both work on copies and swap them in
 * only on success, so a failed call leaves the policy as it was.
 *
 * After parsing, a path is either absolute or "$VAR" + "" | "/rest", with
 * the rest already lexically normal (no "..", ".", "//", trailing "/").
 * A variable's value must be an absolute path without ".."; it is
 * normalized the same way, so the concatenation is normal too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct var {
	const char *name;
	char *value; /* normalized, or NULL */
};

static int var_init(struct var *v, const char *name, const char *raw, const char *field,
		    struct policy_error *err)
{
	const char *msg;

	v->name = name;
	v->value = NULL;
	if (!raw)
		return 0;
	if (raw[0] != '/')
		return policy_fail(err, field, NULL, "must be an absolute path");
	if ((msg = policy_check_path(raw, &v->value)))
		return policy_fail(err, field, NULL, "%s", msg);
	return 0;
}

/* Expand one path into a new string (*out), or fail naming field. */
static int expand(const char *path, const struct var *vars, const char *field,
		  char **out, struct policy_error *err)
{
	const struct var *v = NULL;
	const char *rest;
	size_t n;

	*out = NULL;
	if (path[0] != '$') {
		*out = strdup(path);
		return *out ? 0 : policy_oom(err);
	}
	for (int i = 0; i < 3; i++) {
		n = strlen(vars[i].name);
		if (!strncmp(path + 1, vars[i].name, n) && (path[1 + n] == '/' || !path[1 + n]))
			v = &vars[i];
	}
	if (!v)
		return policy_fail(err, field, NULL, "unknown variable in %s", path);
	if (!v->value)
		return policy_fail(err, field, NULL, "$%s is not set for this session", v->name);
	rest = path + 1 + strlen(v->name);
	n = strlen(v->value) + strlen(rest);
	if (n > POLICY_MAX_PATH)
		return policy_fail(err, field, NULL, "path longer than %d bytes after expansion",
				   POLICY_MAX_PATH);
	*out = malloc(n + 1);
	if (!*out)
		return policy_oom(err);
	if (!strcmp(v->value, "/") && *rest)
		strcpy(*out, rest);
	else
		strcat(strcpy(*out, v->value), rest);
	return 0;
}

/* Is the path absolute, or its leading variable set? */
static bool var_is_set(const char *path, const struct var *vars)
{
	if (path[0] != '$')
		return true;
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(vars[i].name);

		if (!strncmp(path + 1, vars[i].name, n) && (path[1 + n] == '/' || !path[1 + n]))
			return vars[i].value != NULL;
	}
	return false;
}

int policy_resolve(struct policy *p, const struct policy_vars *vars,
		   struct policy_error *err)
{
	static const struct policy_vars none;
	struct var v[3] = { 0 };
	struct policy_fs_rule *fs = NULL;
	char *ws = NULL, field[64];
	size_t done = 0;
	int r;

	if (err)
		memset(err, 0, sizeof(*err));
	if (p->resolved)
		return policy_fail(err, "", NULL, "policy already resolved"), -EALREADY;
	if (!vars)
		vars = &none;
	if ((r = var_init(&v[0], "WORKSPACE", vars->workspace, "vars.workspace", err)) < 0 ||
	    (r = var_init(&v[1], "HOME", vars->home, "vars.home", err)) < 0 ||
	    (r = var_init(&v[2], "TMPDIR", vars->tmpdir, "vars.tmpdir", err)) < 0)
		goto out;
	fs = calloc(p->n_fs ? p->n_fs : 1, sizeof(*fs));
	if (!fs) {
		r = policy_oom(err);
		goto out;
	}
	for (; done < p->n_fs; done++) {
		fs[done] = p->fs[done];
		snprintf(field, sizeof(field), "%s[%u]", policy_origin_name(p->fs[done].origin_list),
			 p->fs[done].origin_index);
		if ((r = expand(p->fs[done].path, v, field, &fs[done].path, err)) < 0)
			goto out;
	}
	/* A snapshot workspace that cannot be expanded only matters when the
	 * policy asks for automatic snapshots; otherwise the session simply has
	 * no snapshot workspace (NULL). */
	if (p->snapshot.workspace &&
	    (p->snapshot.on_start || p->snapshot.on_exit || var_is_set(p->snapshot.workspace, v)) &&
	    (r = expand(p->snapshot.workspace, v, "snapshot.workspace", &ws, err)) < 0)
		goto out;
	{
		struct policy tmp = { .fs = fs, .n_fs = p->n_fs };

		if ((r = policy_normalize_fs(&tmp, err)) < 0)
			goto out;
		for (size_t i = 0; i < p->n_fs; i++)
			free(p->fs[i].path);
		free(p->fs);
		p->fs = tmp.fs;
		p->n_fs = tmp.n_fs;
	}
	fs = NULL;
	free(p->snapshot.workspace);
	p->snapshot.workspace = ws;
	ws = NULL;
	p->resolved = true;
	r = 0;
out:
	if (fs) {
		for (size_t i = 0; i < done; i++)
			free(fs[i].path);
		free(fs);
	}
	free(ws);
	for (int i = 0; i < 3; i++)
		free(v[i].value);
	return r;
}

int policy_expand_path(const char *path, const struct policy_vars *vars, const char *field,
		       char **out, struct policy_error *err)
{
	static const struct policy_vars none;
	struct var v[3] = { 0 };
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!vars)
		vars = &none;
	if ((r = var_init(&v[0], "WORKSPACE", vars->workspace, "vars.workspace", err)) == 0 &&
	    (r = var_init(&v[1], "HOME", vars->home, "vars.home", err)) == 0 &&
	    (r = var_init(&v[2], "TMPDIR", vars->tmpdir, "vars.tmpdir", err)) == 0)
		r = expand(path, v, field, out, err);
	for (int i = 0; i < 3; i++)
		free(v[i].value);
	return r;
}

static bool has_path(const struct policy *p, const char *path)
{
	size_t lo = 0, hi = p->n_fs;

	while (lo < hi) { /* p->fs is sorted by path */
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(p->fs[mid].path, path);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int policy_merge_base(struct policy *p)
{
	struct policy tmp = { 0 };
	size_t n = p->n_fs;

	if (p->base != POLICY_BASE_DEFAULT || p->base_merged)
		return 0;
	tmp.fs = calloc(p->n_fs + policy_base_profile_len, sizeof(*tmp.fs));
	if (!tmp.fs)
		return POLICY_ENOMEM;
	memcpy(tmp.fs, p->fs, p->n_fs * sizeof(*p->fs));
	/* A path the policy names itself (allowed or denied) keeps the policy's rule. */
	for (size_t i = 0; i < policy_base_profile_len; i++) {
		const struct policy_base_entry *b = &policy_base_profile[i];

		if (has_path(p, b->path))
			continue;
		tmp.fs[n] = (struct policy_fs_rule){
			.path = strdup(b->path), .access = b->access, .optional = b->optional,
			.from_base = true, .origin_list = 3, .origin_index = (uint32_t)i,
		};
		if (!tmp.fs[n].path) {
			for (size_t j = p->n_fs; j < n; j++)
				free(tmp.fs[j].path);
			free(tmp.fs);
			return POLICY_ENOMEM;
		}
		n++;
	}
	tmp.n_fs = n;
	policy_normalize_fs(&tmp, NULL); /* cannot fail: no base path is denied */
	free(p->fs);
	p->fs = tmp.fs;
	p->n_fs = tmp.n_fs;
	p->base_merged = true;
	return 0;
}

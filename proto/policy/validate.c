/*
 * Policy tree -> struct policy: the strict schema (version 1) for the
 * top level, filesystem, env, limits and snapshot sections (network is in
 * network.c). Unknown keys and wrong types are errors naming their path.
 * The key tables below are the single source of the schema's property
 * names; tests/unit/policy compares them with policy.schema.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char *const keys_top[] = { "version", "filesystem", "network", "env", "limits",
					 "snapshot", "enforcement", "base", NULL };
static const char *const keys_fs[] = { "read", "write", "deny", NULL };
static const char *const keys_fs_path[] = { "path", "optional", NULL };
static const char *const keys_net[] = { "allow", "allow_private", "inject", "routes", NULL };
static const char *const keys_inject[] = { "host", "header", "value", NULL };
static const char *const keys_route[] = { "name", "upstream", "header", "value", "env", NULL };
static const char *const keys_env[] = { "pass", "set", NULL };
static const char *const keys_limits[] = { "memory", "pids", "wall", "files", "cpu", NULL };
static const char *const keys_snapshot[] = { "workspace", "exclude", "on_start", "on_exit", NULL };

const struct policy_keyset policy_keysets[] = {
	{ "", keys_top },
	{ "filesystem", keys_fs },
	{ "filesystem.path", keys_fs_path },
	{ "network", keys_net },
	{ "network.inject", keys_inject },
	{ "network.routes", keys_route },
	{ "env", keys_env },
	{ "limits", keys_limits },
	{ "snapshot", keys_snapshot },
	{ NULL, NULL },
};

#define MAX_PIDS 4194304u
#define MAX_FILES 1048576u

/* Member `key` of obj with type t, or NULL when absent; <0 on a type error. */
static int member(struct policy_vctx *c, struct json_object *obj, const char *key,
		  json_type t, struct json_object **out)
{
	size_t mark;
	int r;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, out))
		return 0;
	mark = policy_vpush_key(c, key);
	r = policy_vtype(c, *out, t);
	if (r == 0)
		policy_vpop(c, mark);
	return r;
}

static int fs_entry(struct policy_vctx *c, struct json_object *e, uint8_t list, size_t idx)
{
	static const unsigned access[] = { POLICY_FS_READ, POLICY_FS_WRITE, POLICY_FS_DENY };
	struct policy_fs_rule *rule = &c->p->fs[c->p->n_fs];
	struct json_object *path = e, *opt = NULL;
	const char *msg;
	int r;

	if (json_object_is_type(e, json_type_object)) {
		if ((r = policy_vkeys(c, e, "filesystem.path")) < 0 ||
		    (r = member(c, e, "optional", json_type_boolean, &opt)) < 0 ||
		    (r = member(c, e, "path", json_type_string, &path)) < 0)
			return r;
		if (!path)
			return policy_vfail(c, e, "missing key \"path\"");
		policy_vpush_key(c, "path");
	} else if (!json_object_is_type(e, json_type_string))
		return policy_vfail(c, e, "expected a path or {path, optional}");
	if ((msg = policy_check_path(json_object_get_string(path), &rule->path)))
		return policy_vfail(c, path, "%s", msg);
	rule->access = access[list];
	rule->optional = opt && json_object_get_boolean(opt);
	rule->origin_list = list;
	rule->origin_index = (uint32_t)idx;
	c->p->n_fs++;
	return 0;
}

static int v_filesystem(struct policy_vctx *c, struct json_object *fs)
{
	static const char *const lists[] = { "read", "write", "deny" };
	struct json_object *arr[3];
	size_t total = 0;
	int r;

	if ((r = policy_vkeys(c, fs, "filesystem")) < 0)
		return r;
	for (int i = 0; i < 3; i++) {
		if ((r = member(c, fs, lists[i], json_type_array, &arr[i])) < 0)
			return r;
		total += arr[i] ? json_object_array_length(arr[i]) : 0;
	}
	c->p->fs = calloc(total ? total : 1, sizeof(*c->p->fs));
	if (!c->p->fs)
		return policy_oom(c->err);
	for (uint8_t i = 0; i < 3; i++) {
		size_t m1 = policy_vpush_key(c, lists[i]);

		for (size_t j = 0; arr[i] && j < json_object_array_length(arr[i]); j++) {
			size_t m2 = policy_vpush_idx(c, j);

			if ((r = fs_entry(c, json_object_array_get_idx(arr[i], j), i, j)) < 0)
				return r;
			policy_vpop(c, m2);
		}
		policy_vpop(c, m1);
	}
	return policy_normalize_fs(c->p, c->err);
}

static int env_var_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_env_var *)a)->name,
		      ((const struct policy_env_var *)b)->name);
}

static int v_env(struct policy_vctx *c, struct json_object *env)
{
	struct policy *p = c->p;
	struct json_object *pass, *set;
	const char *msg;
	int r;

	if ((r = policy_vkeys(c, env, "env")) < 0 ||
	    (r = member(c, env, "pass", json_type_array, &pass)) < 0 ||
	    (r = member(c, env, "set", json_type_object, &set)) < 0)
		return r;
	if (pass) {
		size_t m1 = policy_vpush_key(c, "pass"), n = json_object_array_length(pass);

		p->env_pass = calloc(n ? n : 1, sizeof(char *));
		if (!p->env_pass)
			return policy_oom(c->err);
		for (size_t i = 0; i < n; i++) {
			struct json_object *v = json_object_array_get_idx(pass, i);
			size_t m2 = policy_vpush_idx(c, i);

			if ((r = policy_vtype(c, v, json_type_string)) < 0)
				return r;
			if ((msg = policy_check_env_name(json_object_get_string(v))))
				return policy_vfail(c, v, "%s", msg);
			if (policy_env_reserved(json_object_get_string(v)))
				return policy_vfail(c, v, "this variable is set by nono");
			if (!(p->env_pass[p->n_env_pass++] = strdup(json_object_get_string(v))))
				return policy_oom(c->err);
			policy_vpop(c, m2);
		}
		policy_sort_strings(p->env_pass, &p->n_env_pass);
		policy_vpop(c, m1);
	}
	if (set) {
		size_t m1 = policy_vpush_key(c, "set"), n = (size_t)json_object_object_length(set);

		p->env_set = calloc(n ? n : 1, sizeof(*p->env_set));
		if (!p->env_set)
			return policy_oom(c->err);
		json_object_object_foreach(set, k, v) {
			struct policy_env_var *ev = &p->env_set[p->n_env_set];
			size_t m2 = policy_vpush_key(c, k);

			if ((msg = policy_check_env_name(k)))
				return policy_vfail(c, v, "%s", msg);
			if (policy_env_reserved(k))
				return policy_vfail(c, v, "this variable is set by nono");
			if ((r = policy_vtype(c, v, json_type_string)) < 0)
				return r;
			if ((msg = policy_check_text(json_object_get_string(v), POLICY_MAX_VALUE)))
				return policy_vfail(c, v, "%s", msg);
			if (strstr(json_object_get_string(v), "${secret:"))
				return policy_vfail(c, v, "secrets cannot be placed in the environment");
			for (size_t i = 0; i < p->n_env_pass; i++)
				if (!strcmp(p->env_pass[i], k))
					return policy_vfail(c, v, "also listed in env.pass");
			ev->name = strdup(k);
			ev->value = strdup(json_object_get_string(v));
			p->n_env_set++;
			if (!ev->name || !ev->value)
				return policy_oom(c->err);
			policy_vpop(c, m2);
		}
		qsort(p->env_set, p->n_env_set, sizeof(*p->env_set), env_var_cmp);
		policy_vpop(c, m1);
	}
	return 0;
}

static int v_limits(struct policy_vctx *c, struct json_object *lim)
{
	struct policy_limits *l = &c->p->limits;
	struct json_object *v;
	const char *msg = NULL;
	int r;

	if ((r = policy_vkeys(c, lim, "limits")) < 0)
		return r;
	json_object_object_foreach(lim, k, val) {
		size_t mark = policy_vpush_key(c, k);

		v = val;
		if (!strcmp(k, "memory") && !(msg = policy_parse_size(v, &l->memory_bytes)))
			l->memory_set = true;
		else if (!strcmp(k, "wall") && !(msg = policy_parse_duration(v, &l->wall_seconds)))
			l->wall_set = true;
		else if (!strcmp(k, "cpu") && !(msg = policy_parse_duration(v, &l->cpu_seconds)))
			l->cpu_set = true;
		else if (!strcmp(k, "pids") && !(msg = policy_parse_count(v, MAX_PIDS, &l->pids)))
			l->pids_set = true;
		else if (!strcmp(k, "files") && !(msg = policy_parse_count(v, MAX_FILES, &l->files)))
			l->files_set = true;
		if (msg) {
			if (!strcmp(msg, "out of range"))
				return policy_vfail(c, v, "out of range (1 to %u)",
						    !strcmp(k, "pids") ? MAX_PIDS : MAX_FILES);
			return policy_vfail(c, v, "%s", msg);
		}
		policy_vpop(c, mark);
	}
	return 0;
}

static int v_snapshot(struct policy_vctx *c, struct json_object *snap)
{
	struct policy_snapshot *s = &c->p->snapshot;
	struct json_object *ws, *ex, *on_start, *on_exit;
	const char *msg;
	char *norm;
	int r;

	if ((r = policy_vkeys(c, snap, "snapshot")) < 0 ||
	    (r = member(c, snap, "workspace", json_type_string, &ws)) < 0 ||
	    (r = member(c, snap, "exclude", json_type_array, &ex)) < 0 ||
	    (r = member(c, snap, "on_start", json_type_boolean, &on_start)) < 0 ||
	    (r = member(c, snap, "on_exit", json_type_boolean, &on_exit)) < 0)
		return r;
	s->on_start = on_start && json_object_get_boolean(on_start);
	s->on_exit = on_exit && json_object_get_boolean(on_exit);
	if (ws) {
		size_t mark = policy_vpush_key(c, "workspace");

		if ((msg = policy_check_path(json_object_get_string(ws), &norm)))
			return policy_vfail(c, ws, "%s", msg);
		free(s->workspace);
		s->workspace = norm;
		policy_vpop(c, mark);
	}
	if (ex) {
		size_t m1 = policy_vpush_key(c, "exclude"), n = json_object_array_length(ex);

		s->exclude = calloc(n ? n : 1, sizeof(char *));
		if (!s->exclude)
			return policy_oom(c->err);
		for (size_t i = 0; i < n; i++) {
			struct json_object *v = json_object_array_get_idx(ex, i);
			size_t m2 = policy_vpush_idx(c, i);

			if ((r = policy_vtype(c, v, json_type_string)) < 0)
				return r;
			if ((msg = policy_check_glob(json_object_get_string(v))))
				return policy_vfail(c, v, "%s", msg);
			if (!(s->exclude[s->n_exclude++] = strdup(json_object_get_string(v))))
				return policy_oom(c->err);
			policy_vpop(c, m2);
		}
		policy_sort_strings(s->exclude, &s->n_exclude);
		policy_vpop(c, m1);
	}
	return 0;
}

static int v_choice(struct policy_vctx *c, struct json_object *root, const char *key,
		    const char *a, const char *b, int *out)
{
	struct json_object *v;
	int r;

	if ((r = member(c, root, key, json_type_string, &v)) < 0 || !v)
		return r;
	if (!strcmp(json_object_get_string(v), a))
		*out = 0;
	else if (!strcmp(json_object_get_string(v), b))
		*out = 1;
	else {
		policy_vpush_key(c, key);
		return policy_vfail(c, v, "expected \"%s\" or \"%s\"", a, b);
	}
	return 0;
}

/* A section: absent is fine, present must be a mapping. */
static int v_section(struct policy_vctx *c, struct json_object *root, const char *key,
		     int (*fn)(struct policy_vctx *, struct json_object *))
{
	struct json_object *v;
	size_t mark;
	int r;

	if ((r = member(c, root, key, json_type_object, &v)) < 0 || !v)
		return r;
	mark = policy_vpush_key(c, key);
	if ((r = fn(c, v)) < 0)
		return r;
	policy_vpop(c, mark);
	return 0;
}

static int v_root(struct policy_vctx *c, struct json_object *root)
{
	struct json_object *ver;
	int r, enf = 0, base = 0;

	if (!json_object_is_type(root, json_type_object))
		return policy_vfail(c, root, "a policy is a mapping with \"version: 1\"");
	if ((r = policy_vkeys(c, root, "")) < 0 ||
	    (r = member(c, root, "version", json_type_int, &ver)) < 0)
		return r;
	if (!ver)
		return policy_vfail(c, root, "missing key \"version\"");
	if (json_object_get_int64(ver) != 1) {
		policy_vpush_key(c, "version");
		return policy_vfail(c, ver, "unsupported version (this nono reads version 1)");
	}
	c->p->version = 1;
	if ((r = v_choice(c, root, "enforcement", "strict", "best_effort", &enf)) < 0 ||
	    (r = v_choice(c, root, "base", "default", "none", &base)) < 0)
		return r;
	c->p->enforcement = enf ? POLICY_ENFORCE_BEST_EFFORT : POLICY_ENFORCE_STRICT;
	c->p->base = base ? POLICY_BASE_NONE : POLICY_BASE_DEFAULT;
	if ((r = v_section(c, root, "filesystem", v_filesystem)) < 0 ||
	    (r = v_section(c, root, "env", v_env)) < 0 ||
	    (r = v_section(c, root, "network", policy_validate_network)) < 0 ||
	    (r = v_section(c, root, "limits", v_limits)) < 0 ||
	    (r = v_section(c, root, "snapshot", v_snapshot)) < 0)
		return r;
	if (!c->p->snapshot.workspace && !(c->p->snapshot.workspace = strdup("$WORKSPACE")))
		return policy_oom(c->err);
	return 0;
}

int policy_from_json(struct json_object *root, struct policy **out,
		     struct policy_error *err)
{
	struct policy_vctx c = { .err = err };
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	c.p = calloc(1, sizeof(*c.p));
	if (!c.p)
		return policy_oom(err);
	r = v_root(&c, root);
	if (r < 0) {
		policy_free(c.p);
		return r;
	}
	*out = c.p;
	return 0;
}

int policy_parse(const char *buf, size_t len, struct policy **out,
		 struct policy_error *err)
{
	struct json_object *root;
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if ((r = policy_load_text(buf, len, &root, err)) < 0)
		return r;
	r = policy_from_json(root, out, err);
	json_object_put(root);
	return r;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_fs; i++)
		free(p->fs[i].path);
	free(p->fs);
	policy_free_network(p);
	for (size_t i = 0; i < p->n_env_pass; i++)
		free(p->env_pass[i]);
	free(p->env_pass);
	for (size_t i = 0; i < p->n_env_set; i++) {
		free(p->env_set[i].name);
		free(p->env_set[i].value);
	}
	free(p->env_set);
	free(p->snapshot.workspace);
	for (size_t i = 0; i < p->snapshot.n_exclude; i++)
		free(p->snapshot.exclude[i]);
	free(p->snapshot.exclude);
	free(p);
}

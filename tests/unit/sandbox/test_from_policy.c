/*
 * Unit tests for sandbox_spec_from_policy(): the policy -> sandbox_spec
 * mapping (fs access levels, optional flag, env pass/set and its default
 * list, rlimits, best_effort), refusal of unresolved policies, and the
 * compiled environment actually dropping what the policy does not pass.
 */
#include "from-policy.h"
#include "env.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../check-run.h"

static struct policy *load(const char *text, bool resolve)
{
	struct policy_vars vars = { "/work/ws", "/home/u", "/tmp/t" };
	struct policy_error perr;
	struct policy *p = NULL;

	ck_assert_msg(policy_parse(text, strlen(text), &p, &perr) == 0, "%s: %s", perr.path,
		      perr.message);
	if (resolve)
		ck_assert_msg(policy_resolve(p, &vars, &perr) == 0, "%s", perr.message);
	return p;
}

static const struct sandbox_path_rule *rule(const struct sandbox_spec *s, const char *path)
{
	for (size_t i = 0; i < s->npaths; i++)
		if (strcmp(s->paths[i].path, path) == 0)
			return &s->paths[i];
	return NULL;
}

static bool has_pass(const struct sandbox_spec *s, const char *name)
{
	for (size_t i = 0; i < s->env.npass; i++)
		if (strcmp(s->env.pass[i], name) == 0)
			return true;
	return false;
}

START_TEST(fs_rules_map)
{
	struct policy *p = load("{\"version\":1,\"base\":\"none\",\"filesystem\":{"
				"\"read\":[\"/usr\",\"$WORKSPACE\"],\"write\":[\"$TMPDIR\"],"
				"\"deny\":[\"$HOME/.ssh\"]}}", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;
	const struct sandbox_path_rule *r;

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_eq(spec.npaths, p->n_fs);
	r = rule(&spec, "/usr");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->access, SANDBOX_READ);
	r = rule(&spec, "/work/ws");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->access, SANDBOX_READ);
	r = rule(&spec, "/tmp/t");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->access, SANDBOX_WRITE);
	r = rule(&spec, "/home/u/.ssh");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->access, SANDBOX_DENY);
	ck_assert_int_eq(spec.net, SANDBOX_NET_NONE);
	ck_assert_int_eq(spec.netns_fd, -1);
	ck_assert(!spec.best_effort);
	sandbox_spec_buf_free(&buf);
	ck_assert_ptr_null(buf.paths);
	sandbox_spec_buf_free(&buf); /* twice is fine */
	sandbox_spec_buf_free(NULL);
	policy_free(p);
}
END_TEST

START_TEST(base_profile_optional)
{
	struct policy *p = load("{\"version\":1}", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;
	size_t optional = 0;

	ck_assert_int_eq(policy_merge_base(p), 0);
	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_gt(spec.npaths, 0);
	for (size_t i = 0; i < p->n_fs; i++) {
		ck_assert_str_eq(spec.paths[i].path, p->fs[i].path);
		ck_assert_uint_eq(spec.paths[i].flags & SANDBOX_PATH_OPTIONAL,
				  p->fs[i].optional ? SANDBOX_PATH_OPTIONAL : 0);
		optional += p->fs[i].optional;
	}
	ck_assert_uint_gt(optional, 0);
	sandbox_spec_buf_free(&buf);
	policy_free(p);
}
END_TEST

START_TEST(env_default_and_set)
{
	struct policy *p = load("{\"version\":1,\"env\":{\"set\":{\"FOO\":\"bar baz\"}}}", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;
	char *const from[] = { "PATH=/bin", "LC_ALL=C", "SECRET_TOKEN=x", "LD_PRELOAD=/e.so", NULL };
	char **envp = NULL, eb[128];

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_eq(spec.env.npass, sandbox_default_env_pass_len);
	ck_assert(has_pass(&spec, "PATH"));
	ck_assert(has_pass(&spec, "LC_*"));
	ck_assert(has_pass(&spec, "NO_COLOR"));
	ck_assert(!has_pass(&spec, "SECRET_TOKEN"));
	ck_assert_uint_eq(spec.env.nset, 1);
	ck_assert_str_eq(spec.env.set[0], "FOO=bar baz");
	ck_assert_int_eq(sandbox_spec_buf_setenv(&buf, &spec, "TMPDIR", "/tmp/x"), 0);
	ck_assert_uint_eq(spec.env.nset, 2);
	ck_assert_str_eq(spec.env.set[1], "TMPDIR=/tmp/x");
	/* What the worker would get: the secret-looking variable and the
	 * loader hook are gone, the passed and set ones are there. */
	spec.env.from = from;
	ck_assert_int_eq(sandbox_env_build(&spec.env, &envp, eb, sizeof(eb)), 0);
	for (char **e = envp; *e != NULL; e++) {
		ck_assert_msg(strncmp(*e, "SECRET_TOKEN=", 13) != 0, "leaked %s", *e);
		ck_assert_msg(strncmp(*e, "LD_PRELOAD=", 11) != 0, "leaked %s", *e);
	}
	sandbox_env_free(envp);
	sandbox_spec_buf_free(&buf);
	policy_free(p);
}
END_TEST

START_TEST(env_pass_named)
{
	struct policy *p = load("{\"version\":1,\"env\":{\"pass\":[\"PATH\",\"MY_VAR\"]}}", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_eq(spec.env.npass, 2);
	ck_assert(has_pass(&spec, "MY_VAR"));
	ck_assert(!has_pass(&spec, "HOME"));
	sandbox_spec_buf_free(&buf);
	policy_free(p);
}
END_TEST

START_TEST(limits_and_best_effort)
{
	struct policy *p = load("version: 1\nenforcement: best_effort\n"
				"limits: {memory: 2G, pids: 64, files: 100, cpu: 30s, wall: 1h}\n", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_eq(spec.limits.as, 2ull << 30);
	ck_assert_uint_eq(spec.limits.nproc, 64);
	ck_assert_uint_eq(spec.limits.nofile, 100);
	ck_assert_uint_eq(spec.limits.cpu, 30);
	ck_assert_uint_eq(spec.limits.data, 0);
	ck_assert_uint_eq(spec.limits.fsize, 0);
	ck_assert(spec.best_effort);
	sandbox_spec_buf_free(&buf);
	policy_free(p);
}
END_TEST

START_TEST(no_limits_left_unchanged)
{
	struct policy *p = load("{\"version\":1}", true);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), 0);
	ck_assert_uint_eq(spec.limits.as, 0);
	ck_assert_uint_eq(spec.limits.nproc, 0);
	ck_assert_uint_eq(spec.limits.nofile, 0);
	ck_assert_uint_eq(spec.limits.cpu, 0);
	sandbox_spec_buf_free(&buf);
	policy_free(p);
}
END_TEST

START_TEST(unresolved_refused)
{
	struct policy *p = load("{\"version\":1,\"filesystem\":{\"read\":[\"$WORKSPACE\"]}}", false);
	struct sandbox_spec_buf buf = { 0 };
	struct sandbox_spec spec;

	ck_assert_int_eq(sandbox_spec_from_policy(p, &buf, &spec), -EINVAL);
	ck_assert_int_eq(sandbox_spec_from_policy(NULL, &buf, &spec), -EINVAL);
	ck_assert_ptr_null(buf.paths);
	policy_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_from_policy");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, fs_rules_map);
	tcase_add_test(tc, base_profile_optional);
	tcase_add_test(tc, env_default_and_set);
	tcase_add_test(tc, env_pass_named);
	tcase_add_test(tc, limits_and_best_effort);
	tcase_add_test(tc, no_limits_left_unchanged);
	tcase_add_test(tc, unresolved_refused);
	suite_add_tcase(s, tc);
	return check_run(s);
}

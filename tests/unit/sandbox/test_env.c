/* Unit tests for sandbox_env_build(): pass/set semantics and hook stripping. */
#include "env.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "../check-run.h"

static char *const src[] = {
	"PATH=/usr/bin", "HOME=/home/u", "LANG=C.UTF-8", "LC_ALL=C", "LC_TIME=C",
	"LD_PRELOAD=/tmp/evil.so", "LD_LIBRARY_PATH=/tmp", "BASH_ENV=/tmp/x",
	"NODE_OPTIONS=--require /tmp/x.js", "PYTHONSTARTUP=/tmp/x.py", "GCONV_PATH=/tmp",
	"BASH_FUNC_ls%%=() { evil; }", "PATH=/second", "SSH_AUTH_SOCK=/run/agent", "NOEQUALS", "1BAD=x", NULL,
};

static const char *find(char **env, const char *name)
{
	size_t n = strlen(name);

	for (; env && *env; env++)
		if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static size_t count(char **env)
{
	size_t n = 0;

	while (env && env[n])
		n++;
	return n;
}

START_TEST(test_exact_names)
{
	const char *pass[] = { "PATH", "LANG", "MISSING" };
	struct sandbox_env_spec s = { .pass = pass, .npass = 3, .from = src };
	char **env;

	ck_assert_int_eq(sandbox_env_build(&s, &env, NULL, 0), 0);
	ck_assert_str_eq(find(env, "PATH"), "/usr/bin");  /* first wins, like getenv */
	ck_assert_str_eq(find(env, "LANG"), "C.UTF-8");
	ck_assert_uint_eq(count(env), 2);
	sandbox_env_free(env);
}
END_TEST

START_TEST(test_patterns_skip_hooks)
{
	const char *pass[] = { "*" };
	struct sandbox_env_spec s = { .pass = pass, .npass = 1, .from = src };
	char **env;

	ck_assert_int_eq(sandbox_env_build(&s, &env, NULL, 0), 0);
	ck_assert_ptr_nonnull(find(env, "HOME"));
	ck_assert_ptr_nonnull(find(env, "LC_TIME"));
	ck_assert_ptr_null(find(env, "LD_PRELOAD"));
	ck_assert_ptr_null(find(env, "LD_LIBRARY_PATH"));
	ck_assert_ptr_null(find(env, "BASH_ENV"));
	ck_assert_ptr_null(find(env, "NODE_OPTIONS"));
	ck_assert_ptr_null(find(env, "PYTHONSTARTUP"));
	ck_assert_ptr_null(find(env, "GCONV_PATH"));
	ck_assert_ptr_null(find(env, "SSH_AUTH_SOCK"));
	ck_assert_ptr_null(find(env, "1BAD"));
	for (char **e = env; *e; e++)
		ck_assert_msg(strncmp(*e, "BASH_FUNC_", 10) != 0, "%s", *e);
	sandbox_env_free(env);
}
END_TEST

START_TEST(test_prefix_pattern)
{
	const char *pass[] = { "LC_*", "LD_*" };
	struct sandbox_env_spec s = { .pass = pass, .npass = 2, .from = src };
	char **env;

	ck_assert_int_eq(sandbox_env_build(&s, &env, NULL, 0), 0);
	ck_assert_uint_eq(count(env), 2);  /* LC_ALL, LC_TIME; LD_* are hooks */
	sandbox_env_free(env);
}
END_TEST

START_TEST(test_exact_hook_passes)
{
	const char *pass[] = { "LD_PRELOAD" };
	const char *set[] = { "NODE_OPTIONS=--max-old-space-size=100", "X=1", "X=2" };
	struct sandbox_env_spec s = { .pass = pass, .npass = 1, .set = set, .nset = 3,
				      .from = src };
	char **env;

	ck_assert_int_eq(sandbox_env_build(&s, &env, NULL, 0), 0);
	ck_assert_str_eq(find(env, "LD_PRELOAD"), "/tmp/evil.so");
	ck_assert_str_eq(find(env, "NODE_OPTIONS"), "--max-old-space-size=100");
	ck_assert_str_eq(find(env, "X"), "2");
	ck_assert_uint_eq(count(env), 3);
	sandbox_env_free(env);
}
END_TEST

START_TEST(test_invalid)
{
	const char *bad_pass[] = { "A=B" };
	const char *bad_set[] = { "NOEQUALS" };
	const char *bad_name[] = { "9X=1" };
	struct sandbox_env_spec s = { .pass = bad_pass, .npass = 1, .from = src };
	char err[128];
	char **env = (char **)1;

	ck_assert_int_eq(sandbox_env_build(&s, &env, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(env);
	ck_assert_ptr_nonnull(strstr(err, "A=B"));
	s = (struct sandbox_env_spec){ .set = bad_set, .nset = 1, .from = src };
	ck_assert_int_eq(sandbox_env_build(&s, &env, err, sizeof(err)), -EINVAL);
	s = (struct sandbox_env_spec){ .set = bad_name, .nset = 1, .from = src };
	ck_assert_int_eq(sandbox_env_build(&s, &env, err, sizeof(err)), -EINVAL);
	/* the value of a bad pair never appears in the message */
	ck_assert_ptr_null(strstr(err, "9X=1"));
}
END_TEST

START_TEST(test_empty_and_free_null)
{
	struct sandbox_env_spec s = { .from = src };
	char **env;

	ck_assert_int_eq(sandbox_env_build(&s, &env, NULL, 0), 0);
	ck_assert_ptr_nonnull(env);
	ck_assert_ptr_null(env[0]);
	sandbox_env_free(env);
	sandbox_env_free(NULL);
	ck_assert(sandbox_env_is_hook("LD_AUDIT", 8));
	ck_assert(!sandbox_env_is_hook("PATH", 4));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_env");
	TCase *tc = tcase_create("env");

	tcase_add_test(tc, test_exact_names);
	tcase_add_test(tc, test_patterns_skip_hooks);
	tcase_add_test(tc, test_prefix_pattern);
	tcase_add_test(tc, test_exact_hook_passes);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_empty_and_free_null);
	suite_add_tcase(s, tc);
	return check_run(s);
}

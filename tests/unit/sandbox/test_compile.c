/*
 * sandbox_compile() without forking: spec validation with clear messages,
 * fail-closed on missing kernel features (played with an older ABI), the
 * report and its JSON, and no fd leaks.
 */
#include "harness.h"
#include "internal.h"
#include "probe.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../check-run.h"

static int compile_err(struct harness_spec *hs, char *err, size_t len)
{
	struct sandbox_compiled *c = (struct sandbox_compiled *)1;
	int rc = sandbox_compile(&hs->spec, &c, err, len);

	if (rc == 0)
		sandbox_compiled_free(c);
	else
		ck_assert_ptr_null(c);
	return rc;
}

static const struct sandbox_report_item *item(const struct sandbox_report *r, const char *f)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->items[i].feature, f) == 0)
			return &r->items[i];
	return NULL;
}

START_TEST(test_bad_paths)
{
	struct harness_spec hs;
	char err[256];

	harness_spec_init(&hs);
	harness_spec_add(&hs, "relative/path", SANDBOX_READ);
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "relative/path"));

	harness_spec_init(&hs);
	harness_spec_add(&hs, "/nonexistent-nono/x", SANDBOX_READ);
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "open /nonexistent-nono/x: No such file or directory");

	harness_spec_init(&hs);
	harness_spec_add(&hs, hp(H.ws, "missing/../../x"), SANDBOX_DENY);
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);

	harness_spec_init(&hs);
	hs.rules[0].access = (enum sandbox_access)42;
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_optional_and_outside_deny)
{
	struct harness_spec hs;
	struct sandbox_compiled *c;
	const struct sandbox_report_item *it;
	char err[256];

	harness_spec_init(&hs);
	harness_spec_add(&hs, "/nonexistent-nono/opt", SANDBOX_READ);
	hs.rules[hs.spec.npaths - 1].flags = SANDBOX_PATH_OPTIONAL;
	harness_spec_add(&hs, H.secret, SANDBOX_DENY);            /* outside: no-op */
	harness_spec_add(&hs, hp(H.ws, "not/yet/there"), SANDBOX_DENY);  /* validated */
	ck_assert_msg(sandbox_compile(&hs.spec, &c, err, sizeof(err)) == 0, "%s", err);
	it = item(sandbox_compiled_report(c), "landlock.optional_path");
	ck_assert_ptr_nonnull(it);
	ck_assert(!it->enforced);
	ck_assert_ptr_nonnull(strstr(it->detail, "/nonexistent-nono/opt"));
	sandbox_compiled_free(c);
}
END_TEST

START_TEST(test_network_spec)
{
	struct harness_spec hs;
	char err[256];

	harness_spec_init(&hs);
	hs.spec.net = SANDBOX_NET_NETNS;
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "netns"));
	harness_spec_init(&hs);
	hs.spec.net = SANDBOX_NET_PROXY;
	hs.spec.nports = 1;
	hs.ports[0] = 0;
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);
	harness_spec_init(&hs);
	hs.spec.net = (enum sandbox_net_mode)9;
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_fail_closed_old_abi)
{
	struct sandbox_features f = *sandbox_probe();
	struct harness_spec hs;
	struct sandbox_compiled *c = NULL;
	const struct sandbox_report_item *it;
	char err[256];

	harness_spec_init(&hs);
	hs.spec.net = SANDBOX_NET_PROXY;
	hs.ports[0] = 8080;
	hs.spec.nports = 1;
	f.landlock_abi = 3;
	ck_assert_int_eq(sandbox_compile_with(&hs.spec, &f, &c, err, sizeof(err)), -EOPNOTSUPP);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "landlock.net_tcp") && strstr(err, "ABI 4"), "%s", err);

	hs.spec.best_effort = true;
	ck_assert_msg(sandbox_compile_with(&hs.spec, &f, &c, err, sizeof(err)) == 0, "%s", err);
	it = item(sandbox_compiled_report(c), "landlock.net_tcp");
	ck_assert(it && !it->enforced);
	it = item(sandbox_compiled_report(c), "landlock.scope_signal");
	ck_assert(it && !it->enforced);
	it = item(sandbox_compiled_report(c), "landlock.fs_truncate");
	ck_assert(it && it->enforced);
	sandbox_compiled_free(c);

	hs.spec.best_effort = false;
	f.landlock_abi = 0;
	ck_assert_int_eq(sandbox_compile_with(&hs.spec, &f, &c, err, sizeof(err)), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(err, "landlock.fs "));
	f = *sandbox_probe();
	f.seccomp_filter = false;
	ck_assert_int_eq(sandbox_compile_with(&hs.spec, &f, &c, err, sizeof(err)), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(err, "seccomp"));
}
END_TEST

START_TEST(test_report_json)
{
	struct harness_spec hs;
	struct sandbox_compiled *c;
	struct json_object *o, *feats, *x, *en;
	char err[256];

	harness_spec_init(&hs);
	hs.spec.net = SANDBOX_NET_PROXY;
	hs.ports[0] = 3128;
	hs.spec.nports = 1;
	ck_assert_msg(sandbox_compile(&hs.spec, &c, err, sizeof(err)) == 0, "%s", err);
	o = sandbox_report_to_json(sandbox_compiled_report(c));
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "features", &feats));
	ck_assert(json_object_object_get_ex(feats, "seccomp", &x));
	ck_assert(json_object_object_get_ex(x, "enforced", &en));
	ck_assert(json_object_get_boolean(en));
	ck_assert(json_object_object_get_ex(feats, "network.destination_host", &x));
	ck_assert(json_object_object_get_ex(x, "enforced", &en));
	ck_assert(!json_object_get_boolean(en));
	ck_assert(json_object_object_get_ex(feats, "metadata", &x));
	json_object_put(o);
	ck_assert_ptr_nonnull(sandbox_compiled_envp(c));
	sandbox_compiled_free(c);
	sandbox_compiled_free(NULL);
	ck_assert_str_eq(sandbox_step_name(SANDBOX_STEP_LANDLOCK), "landlock_restrict_self");
}
END_TEST

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

START_TEST(test_no_fd_leak)
{
	struct harness_spec hs;
	struct sandbox_compiled *c;
	char err[256];
	int before = count_fds();

	harness_spec_init(&hs);
	harness_spec_add(&hs, H.home, SANDBOX_READ);
	harness_spec_add(&hs, hp(H.home, ".ssh"), SANDBOX_DENY);
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(sandbox_compile(&hs.spec, &c, err, sizeof(err)) == 0, "%s", err);
		sandbox_compiled_free(c);
		ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), 0);
	}
	harness_spec_add(&hs, "/nonexistent-nono", SANDBOX_READ);
	ck_assert_int_eq(compile_err(&hs, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* sandbox_spec_dup(): the copy compiles the same after everything the
 * original pointed to has been overwritten (what a spawner thread relies on). */
START_TEST(test_spec_dup)
{
	struct harness_spec hs;
	struct sandbox_spec *d;
	struct sandbox_compiled *c;
	char err[256], from0[] = "KEEP_ME=1", from1[] = "PATH=/usr/bin";
	char *from[] = { from0, from1, NULL };
	const char *pass[] = { "KEEP_ME", "PATH" };
	char *const *envp;
	bool seen = false;

	harness_spec_init(&hs);
	hs.spec.env.from = from;
	hs.spec.env.pass = pass;
	hs.spec.env.npass = 2;
	d = sandbox_spec_dup(&hs.spec);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->npaths, hs.spec.npaths);
	memset(hs.paths, 'x', sizeof(hs.paths));   /* the original's strings are gone */
	memset(from0, 'y', sizeof(from0) - 1);
	pass[0] = "NOPE";
	ck_assert_msg(sandbox_compile(d, &c, err, sizeof(err)) == 0, "%s", err);
	for (envp = sandbox_compiled_envp(c); *envp != NULL; envp++)
		seen |= strcmp(*envp, "KEEP_ME=1") == 0;
	ck_assert_msg(seen, "the copied environment was not used");
	sandbox_compiled_free(c);
	sandbox_spec_dup_free(d);
	sandbox_spec_dup_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_compile");
	TCase *tc = tcase_create("compile");

	if (sandbox_probe()->landlock_abi < 6 || !sandbox_probe()->seccomp_filter) {
		fprintf(stderr, "SKIP: needs Landlock ABI >= 6 and seccomp\n");
		return 77;
	}
	tcase_add_unchecked_fixture(tc, harness_setup, harness_teardown);
	tcase_add_test(tc, test_bad_paths);
	tcase_add_test(tc, test_optional_and_outside_deny);
	tcase_add_test(tc, test_network_spec);
	tcase_add_test(tc, test_fail_closed_old_abi);
	tcase_add_test(tc, test_report_json);
	tcase_add_test(tc, test_no_fd_leak);
	tcase_add_test(tc, test_spec_dup);
	suite_add_tcase(s, tc);
	return check_run(s);
}

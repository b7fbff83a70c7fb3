/* Unit tests for sandbox/probe.c: the probe agrees with the running kernel. */
#include "probe.h"

#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include "../check-run.h"

START_TEST(test_probe_cached)
{
	const struct sandbox_features *a = sandbox_probe();
	const struct sandbox_features *b = sandbox_probe();

	ck_assert_ptr_eq(a, b);
	ck_assert_int_ge(a->landlock_abi, 0);
	/* Rights follow the ABI monotonically. */
	ck_assert(!a->ll_fs_refer || a->ll_fs);
	ck_assert(!a->ll_net_tcp || a->ll_fs_truncate);
	ck_assert(!a->ll_scope_signal || a->ll_fs_ioctl_dev);
}
END_TEST

START_TEST(test_probe_matches_fill)
{
	struct sandbox_features f;

	sandbox_probe_fill(&f);
	ck_assert_int_eq(f.landlock_abi, sandbox_probe()->landlock_abi);
	ck_assert_int_eq(f.seccomp_filter, sandbox_probe()->seccomp_filter);
	ck_assert_int_eq(f.netns, sandbox_probe()->netns);
	/* Every kernel we build on (>= 5.10) has these. */
	ck_assert(f.no_new_privs);
	ck_assert(f.seccomp_filter);
	ck_assert(f.pidfd_open);
	if (f.cgroup2)
		ck_assert(f.cgroup2_mount[0] == '/');
}
END_TEST

START_TEST(test_probe_json)
{
	const struct sandbox_features *f = sandbox_probe();
	struct json_object *o = sandbox_features_to_json(f), *ll, *abi, *cg, *ctl;

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "landlock", &ll));
	ck_assert(json_object_object_get_ex(ll, "abi", &abi));
	ck_assert_int_eq(json_object_get_int(abi), f->landlock_abi);
	ck_assert(json_object_object_get_ex(o, "cgroup2", &cg));
	ck_assert(json_object_object_get_ex(cg, "controllers", &ctl));
	ck_assert(json_object_is_type(ctl, json_type_array));
	ck_assert(json_object_object_get_ex(o, "clone_into_cgroup", NULL));
	ck_assert(json_object_object_get_ex(o, "so_peerpidfd", NULL));
	json_object_put(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_probe");
	TCase *tc = tcase_create("probe");

	tcase_add_test(tc, test_probe_cached);
	tcase_add_test(tc, test_probe_matches_fill);
	tcase_add_test(tc, test_probe_json);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * activation_launchd_fds(): outside macOS it must fail cleanly with
 * -ENOTSUP and leave the outputs empty, so the daemon falls through to
 * sd_listen_fds()/its own socket. (On macOS, run by hand outside launchd,
 * it must report -ESRCH: not started by launchd.)
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "activation-launchd.h"
#include "../../unit/check-run.h"

START_TEST(test_outside_launchd)
{
	int sentinel = 42;
	int *fds = &sentinel;
	size_t n = 7;
	int r = activation_launchd_fds(ACTIVATION_LAUNCHD_SOCKET_NAME, &fds, &n);

#ifdef __APPLE__
	ck_assert_int_eq(r, -ESRCH);
#else
	ck_assert_int_eq(r, -ENOTSUP);
#endif
	ck_assert_ptr_null(fds);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_socket_name)
{
	ck_assert_str_eq(ACTIVATION_LAUNCHD_SOCKET_NAME, "Listeners");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("activation-launchd");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_outside_launchd);
	tcase_add_test(tc, test_socket_name);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/* frame_scan: LF search, the max / max+1 boundary, CRLF and empty lines. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "../check-run.h"

START_TEST(test_one_message)
{
	size_t n = 99;

	ck_assert_int_eq(frame_scan("{}\n{\"a\":1}\n", 11, 16, &n), FRAME_OK);
	ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(test_need_more)
{
	size_t n = 99;

	ck_assert_int_eq(frame_scan("{\"a\":", 5, 16, &n), FRAME_NEED_MORE);
	ck_assert_int_eq(frame_scan("", 0, 16, &n), FRAME_NEED_MORE);
	/* exactly max bytes without LF: the LF may still come */
	ck_assert_int_eq(frame_scan("0123456789abcdef", 16, 16, &n), FRAME_NEED_MORE);
	ck_assert_uint_eq(n, 99);
}
END_TEST

START_TEST(test_exactly_max)
{
	size_t n = 0;

	ck_assert_int_eq(frame_scan("0123456789abcdef\n", 17, 16, &n), FRAME_OK);
	ck_assert_uint_eq(n, 16);
}
END_TEST

START_TEST(test_max_plus_one)
{
	size_t n = 0;

	/* max+1 bytes and no LF among them: framing is lost */
	ck_assert_int_eq(frame_scan("0123456789abcdefg", 17, 16, &n), FRAME_TOO_LONG);
	/* a message of max+1 bytes is too long even if its LF is buffered */
	ck_assert_int_eq(frame_scan("0123456789abcdefg\n", 18, 16, &n), FRAME_TOO_LONG);
}
END_TEST

START_TEST(test_lf_beyond_window_not_read)
{
	/* The LF after max+1 bytes is never considered. */
	char *buf = malloc(1 << 20);
	size_t n = 0;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'x', 1 << 20);
	buf[(1 << 20) - 1] = '\n';
	ck_assert_int_eq(frame_scan(buf, 1 << 20, 4096, &n), FRAME_TOO_LONG);
	free(buf);
}
END_TEST

START_TEST(test_crlf_kept)
{
	size_t n = 0;

	ck_assert_int_eq(frame_scan("{}\r\n", 4, 16, &n), FRAME_OK);
	ck_assert_uint_eq(n, 3); /* the CR is part of the message (JSON whitespace) */
}
END_TEST

START_TEST(test_empty_line)
{
	size_t n = 99;

	ck_assert_int_eq(frame_scan("\n{}\n", 4, 16, &n), FRAME_OK);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_max_zero)
{
	size_t n = 99;

	ck_assert_int_eq(frame_scan("\n", 1, 0, &n), FRAME_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(frame_scan("x", 1, 0, &n), FRAME_TOO_LONG);
	ck_assert_int_eq(frame_scan("", 0, 0, &n), FRAME_NEED_MORE);
}
END_TEST

START_TEST(test_exact_buffer_no_overread)
{
	/* A heap buffer of exactly len bytes: ASan catches any overread. */
	char *buf = malloc(8);
	size_t n = 0;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, "abcdefgh", 8);
	ck_assert_int_eq(frame_scan(buf, 8, (size_t)-1, &n), FRAME_NEED_MORE);
	ck_assert_int_eq(frame_scan(buf, 8, 100, &n), FRAME_NEED_MORE);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-frame");
	TCase *tc = tcase_create("frame");

	tcase_add_test(tc, test_one_message);
	tcase_add_test(tc, test_need_more);
	tcase_add_test(tc, test_exactly_max);
	tcase_add_test(tc, test_max_plus_one);
	tcase_add_test(tc, test_lf_beyond_window_not_read);
	tcase_add_test(tc, test_crlf_kept);
	tcase_add_test(tc, test_empty_line);
	tcase_add_test(tc, test_max_zero);
	tcase_add_test(tc, test_exact_buffer_no_overread);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

/* The UTF-8 validator against the RFC 3629 boundary cases. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "../check-run.h"

static const char *const good[] = {
	"", "ascii", "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
	"\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf",
	"caf\xc3\xa9 \xf0\x9f\x98\x80",
};

static const char *const bad[] = {
	"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x7f", "\xc2\xc0",
	"\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xe1\x80",
	"\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
	"\xf8\x88\x80\x80\x80", "\xfe", "\xff", "\xf0\x90\x80",
};

START_TEST(test_good)
{
	ck_assert_msg(utf8_valid(good[_i], strlen(good[_i])), "good case %d", _i);
}
END_TEST

START_TEST(test_bad)
{
	ck_assert_msg(!utf8_valid(bad[_i], strlen(bad[_i])), "bad case %d", _i);
}
END_TEST

START_TEST(test_prefix)
{
	ck_assert_uint_eq(utf8_valid_prefix("ab\xc3\xa9\xc3", 5), 4);
	ck_assert_uint_eq(utf8_valid_prefix("ab\xf0\x9f\x98", 5), 2);
	ck_assert_uint_eq(utf8_valid_prefix("\xff" "abc", 4), 0);
	/* NUL is a valid code point here; callers forbid it separately */
	ck_assert_uint_eq(utf8_valid_prefix("a\0b", 3), 3);
}
END_TEST

START_TEST(test_no_overread)
{
	/* a lead byte at the very end of a heap buffer: ASan catches overreads */
	char *p = malloc(1);

	ck_assert_ptr_nonnull(p);
	p[0] = '\xf0';
	ck_assert(!utf8_valid(p, 1));
	free(p);
}
END_TEST

START_TEST(test_path_hex)
{
	char *p = path_from_hex("6161ff0a62");

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "aa\xff\nb");
	free(p);
	p = path_from_hex("2F746D70");
	ck_assert_str_eq(p, "/tmp");
	free(p);
	ck_assert_ptr_null(path_from_hex(""));       /* empty */
	ck_assert_ptr_null(path_from_hex("616"));    /* odd */
	ck_assert_ptr_null(path_from_hex("6g"));     /* not hex */
	ck_assert_ptr_null(path_from_hex("610062")); /* a NUL byte would cut the path */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-utf8");
	TCase *tc = tcase_create("utf8");

	tcase_add_loop_test(tc, test_good, 0, (int)(sizeof(good) / sizeof(good[0])));
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_prefix);
	tcase_add_test(tc, test_no_overread);
	tcase_add_test(tc, test_path_hex);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

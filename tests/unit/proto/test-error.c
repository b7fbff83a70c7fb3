/* The error table: every code has a kind and message, lookups round-trip. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "../check-run.h"

static const int all_codes[] = {
	NONO_E_PARSE, NONO_E_INVALID_REQUEST, NONO_E_METHOD_NOT_FOUND,
	NONO_E_INVALID_PARAMS, NONO_E_INTERNAL, NONO_E_PERMISSION_DENIED,
	NONO_E_HELLO_REQUIRED, NONO_E_UNSUPPORTED_PROTOCOL, NONO_E_NOT_FOUND,
	NONO_E_ALREADY_EXISTS, NONO_E_POLICY_INVALID, NONO_E_SANDBOX_UNAVAILABLE,
	NONO_E_SIGNATURE_INVALID, NONO_E_LIMIT_EXCEEDED, NONO_E_BACKEND_UNAVAILABLE,
	NONO_E_MESSAGE_TOO_LARGE, NONO_E_EXEC_FAILED, NONO_E_BUSY, NONO_E_TIMEOUT,
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

START_TEST(test_table_complete)
{
	for (size_t i = 0; i < NCODES; i++) {
		int c = all_codes[i];
		const char *kind = proto_error_kind(c);

		ck_assert_msg(proto_error_known(c), "code %d missing", c);
		ck_assert_int_eq(proto_error_code(kind), c);
		ck_assert_str_ne(proto_error_message(c), "");
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(kind, proto_error_kind(all_codes[j]));
		/* application codes stay in the reserved range */
		ck_assert(c <= -32000 && c >= -32768);
	}
}
END_TEST

START_TEST(test_kinds)
{
	ck_assert_str_eq(proto_error_kind(NONO_E_PERMISSION_DENIED), "permission_denied");
	ck_assert_str_eq(proto_error_kind(NONO_E_SANDBOX_UNAVAILABLE),
			 "sandbox_feature_unavailable");
	ck_assert_str_eq(proto_error_kind(NONO_E_MESSAGE_TOO_LARGE), "message_too_large");
	ck_assert_str_eq(proto_error_kind(NONO_E_HELLO_REQUIRED), "hello_required");
}
END_TEST

START_TEST(test_unknown)
{
	ck_assert(!proto_error_known(0));
	ck_assert(!proto_error_known(-32099));
	ck_assert(!proto_error_known(42));
	ck_assert_str_eq(proto_error_kind(12345), "internal_error");
	ck_assert_str_eq(proto_error_message(12345), "Internal error");
	ck_assert_int_eq(proto_error_code("no_such_kind"), 0);
	ck_assert_int_eq(proto_error_code(NULL), 0);
	ck_assert_int_eq(proto_error_code(""), 0);
}
END_TEST

START_TEST(test_set_truncates)
{
	struct rpc_error err;
	char big[2000];

	memset(big, 'f', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(rpc_error_set(&err, NONO_E_NOT_FOUND, big, "%s-%s", big, big),
			 NONO_E_NOT_FOUND);
	ck_assert_int_eq(err.code, NONO_E_NOT_FOUND);
	ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
	ck_assert_uint_eq(strlen(err.detail), sizeof(err.detail) - 1);
}
END_TEST

START_TEST(test_set_null_and_clear)
{
	struct rpc_error err;

	ck_assert_int_eq(rpc_error_set(NULL, NONO_E_BUSY, "x", "y"), NONO_E_BUSY);
	rpc_error_set(&err, NONO_E_BUSY, NULL, "no %s", "field");
	ck_assert_str_eq(err.field, "");
	ck_assert_str_eq(err.detail, "no field");
	/* a field containing '%' is copied literally, not formatted */
	rpc_error_set(&err, NONO_E_BUSY, "%s%n", "d");
	ck_assert_str_eq(err.field, "%s%n");
	rpc_error_clear(&err);
	ck_assert_int_eq(err.code, 0);
	ck_assert_str_eq(err.field, "");
	ck_assert_str_eq(err.detail, "");
	rpc_error_clear(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-error");
	TCase *tc = tcase_create("error");

	tcase_add_test(tc, test_table_complete);
	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_unknown);
	tcase_add_test(tc, test_set_truncates);
	tcase_add_test(tc, test_set_null_and_clear);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

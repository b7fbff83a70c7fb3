/* rpc_parse_response: the client side is just as strict with what it reads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "../check-run.h"

static int parse(const char *s, struct rpc_response *resp, struct rpc_error *err)
{
	rpc_error_clear(err);
	return rpc_parse_response(s, strlen(s), resp, err);
}

START_TEST(test_result)
{
	struct rpc_response r;
	struct rpc_error err;

	ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1}}",
			       &r, &err), 0);
	ck_assert_int_eq(r.type, RPC_MSG_RESULT);
	ck_assert_int_eq(json_object_get_int(r.id), 1);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(r.result, "protocol")), 1);
	rpc_response_free(&r);
	ck_assert_ptr_null(r.root);
	rpc_response_free(NULL);

	/* result null is a result */
	ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":null}", &r, &err), 0);
	ck_assert_int_eq(r.type, RPC_MSG_RESULT);
	ck_assert_ptr_null(r.result);
	rpc_response_free(&r);
}
END_TEST

START_TEST(test_error)
{
	struct rpc_response r;
	struct rpc_error err;

	ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32001,"
			       "\"message\":\"Hello required\",\"data\":{\"kind\":\"hello_required\","
			       "\"field\":\"x.y\",\"detail\":\"say hello\"}}}", &r, &err), 0);
	ck_assert_int_eq(r.type, RPC_MSG_ERROR);
	ck_assert_ptr_null(r.id);
	ck_assert_int_eq(r.error.code, NONO_E_HELLO_REQUIRED);
	ck_assert_str_eq(r.error.field, "x.y");
	ck_assert_str_eq(r.error.detail, "say hello");
	ck_assert_str_eq(r.message, "Hello required");
	rpc_response_free(&r);

	/* data is optional */
	ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32601,"
			       "\"message\":\"nope\"}}", &r, &err), 0);
	ck_assert_int_eq(r.error.code, -32601);
	ck_assert_str_eq(r.error.field, "");
	rpc_response_free(&r);
}
END_TEST

START_TEST(test_long_strings_truncated)
{
	size_t n = 5000;
	char *big = malloc(n + 200);
	struct rpc_response r;
	struct rpc_error err;
	size_t k;

	ck_assert_ptr_nonnull(big);
	k = (size_t)sprintf(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32603,"
			    "\"message\":\"");
	/* 2-byte characters so that truncation lands inside one */
	for (size_t i = 0; i < n / 2; i++) {
		big[k++] = '\xc3';
		big[k++] = '\xa9';
	}
	strcpy(big + k, "\"}}");
	ck_assert_int_eq(parse(big, &r, &err), 0);
	ck_assert_uint_le(strlen(r.message), sizeof(r.message) - 1);
	ck_assert_uint_eq(strlen(r.message) % 2, 0);
	rpc_response_free(&r);
	free(big);
}
END_TEST

START_TEST(test_notification)
{
	struct rpc_response r;
	struct rpc_error err;

	ck_assert_int_eq(parse("{\"jsonrpc\":\"2.0\",\"method\":\"session.exited\","
			       "\"params\":{\"id\":\"s1\",\"status\":0}}", &r, &err), 0);
	ck_assert_int_eq(r.type, RPC_MSG_NOTIFICATION);
	ck_assert_str_eq(r.method, "session.exited");
	ck_assert_ptr_nonnull(r.params);
	ck_assert_ptr_null(r.id);
	rpc_response_free(&r);
}
END_TEST

static const char *const bad_responses[] = {
	"",
	"not json",
	"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]",
	"42",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}garbage",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":NaN}",
	"{\"id\":1,\"result\":1}",
	"{\"jsonrpc\":\"2.1\",\"id\":1,\"result\":1}",
	"{\"jsonrpc\":\"2.0\",\"result\":1}",                        /* no id */
	"{\"jsonrpc\":\"2.0\",\"id\":1}",                            /* neither */
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"\"}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}",
	"{\"jsonrpc\":\"2.0\",\"id\":true,\"result\":1}",
	"{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":1}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"extra\":0}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"x\"}}",      /* no code */
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"x\"}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"x\"}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":4294967296,\"message\":\"x\"}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",              /* no message */
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":5}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"data\":[]}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"data\":{\"kind\":1}}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"data\":{\"other\":\"y\"}}}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"junk\":1}}",
	"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}",           /* server request */
	"{\"jsonrpc\":\"2.0\",\"method\":\"\"}",
	"{\"jsonrpc\":\"2.0\",\"method\":5}",
	"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":[1]}",
	"{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"result\":1}",
};

START_TEST(test_bad_response)
{
	struct rpc_response r;
	struct rpc_error err;
	int rc = parse(bad_responses[_i], &r, &err);

	ck_assert_msg(rc == NONO_E_PARSE || rc == NONO_E_INVALID_REQUEST,
		      "case %d accepted: %s", _i, bad_responses[_i]);
	ck_assert_int_eq(err.code, rc);
	ck_assert_ptr_null(r.root);
	rpc_response_free(&r);
}
END_TEST

START_TEST(test_deep_response)
{
	size_t n = 10000;
	char *s = malloc(n + 64);
	struct rpc_response r;
	struct rpc_error err;
	size_t k;

	ck_assert_ptr_nonnull(s);
	k = (size_t)sprintf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":");
	memset(s + k, '[', n - k);
	ck_assert_int_eq(rpc_parse_response(s, n, &r, &err), NONO_E_PARSE);
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-response");
	TCase *tc = tcase_create("response");

	tcase_add_test(tc, test_result);
	tcase_add_test(tc, test_error);
	tcase_add_test(tc, test_long_strings_truncated);
	tcase_add_test(tc, test_notification);
	tcase_add_loop_test(tc, test_bad_response, 0,
			    (int)(sizeof(bad_responses) / sizeof(bad_responses[0])));
	tcase_add_test(tc, test_deep_response);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * The documents agree with the code: proto/openrpc.json's x-error-codes and
 * proto/PROTOCOL.md's error table list exactly the codes, kinds and
 * messages of the C error table, and every OpenRPC param is machine-checkable.
 * argv[1] = openrpc.json, argv[2] = PROTOCOL.md.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "error.h"
#include "../check-run.h"

static const char *openrpc_path, *protocol_path;

static const int all_codes[] = {
	NONO_E_PARSE, NONO_E_INVALID_REQUEST, NONO_E_METHOD_NOT_FOUND,
	NONO_E_INVALID_PARAMS, NONO_E_INTERNAL, NONO_E_PERMISSION_DENIED,
	NONO_E_HELLO_REQUIRED, NONO_E_UNSUPPORTED_PROTOCOL, NONO_E_NOT_FOUND,
	NONO_E_ALREADY_EXISTS, NONO_E_POLICY_INVALID, NONO_E_SANDBOX_UNAVAILABLE,
	NONO_E_SIGNATURE_INVALID, NONO_E_LIMIT_EXCEEDED, NONO_E_BACKEND_UNAVAILABLE,
	NONO_E_MESSAGE_TOO_LARGE, NONO_E_EXEC_FAILED, NONO_E_BUSY, NONO_E_TIMEOUT,
};
#define NCODES (sizeof(all_codes) / sizeof(all_codes[0]))

START_TEST(test_openrpc_errors)
{
	struct json_object *doc = json_object_from_file(openrpc_path);
	struct json_object *codes;

	ck_assert_msg(doc != NULL, "cannot parse %s", openrpc_path);
	ck_assert(json_object_object_get_ex(doc, "x-error-codes", &codes));
	ck_assert_uint_eq(json_object_array_length(codes), NCODES);
	for (size_t i = 0; i < json_object_array_length(codes); i++) {
		struct json_object *e = json_object_array_get_idx(codes, i);
		int code = json_object_get_int(json_object_object_get(e, "code"));

		ck_assert_msg(proto_error_known(code), "unknown code %d", code);
		ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "kind")),
				 proto_error_kind(code));
		ck_assert_str_eq(json_object_get_string(json_object_object_get(e, "message")),
				 proto_error_message(code));
	}
	json_object_put(doc);
}
END_TEST

START_TEST(test_openrpc_params_checkable)
{
	struct json_object *doc = json_object_from_file(openrpc_path);
	struct json_object *methods;

	ck_assert_ptr_nonnull(doc);
	ck_assert(json_object_object_get_ex(doc, "methods", &methods));
	ck_assert_uint_ge(json_object_array_length(methods), 2);
	for (size_t i = 0; i < json_object_array_length(methods); i++) {
		struct json_object *m = json_object_array_get_idx(methods, i);
		struct json_object *params, *p, *v, *schema;

		ck_assert(json_object_is_type(json_object_object_get(m, "name"), json_type_string));
		ck_assert(json_object_object_get_ex(m, "params", &params));
		ck_assert(json_object_object_get_ex(m, "result", &v));
		for (size_t j = 0; j < json_object_array_length(params); j++) {
			p = json_object_array_get_idx(params, j);
			ck_assert(json_object_is_type(json_object_object_get(p, "name"),
						      json_type_string));
			ck_assert(json_object_is_type(json_object_object_get(p, "required"),
						      json_type_boolean));
			ck_assert(json_object_object_get_ex(p, "schema", &schema));
			/* A type, or a list of types for params that take several. */
			v = json_object_object_get(schema, "type");
			ck_assert(json_object_is_type(v, json_type_string) ||
				  (json_object_is_type(v, json_type_array) &&
				   json_object_array_length(v) > 0));
		}
	}
	json_object_put(doc);
}
END_TEST

START_TEST(test_protocol_md_errors)
{
	FILE *f = fopen(protocol_path, "r");
	static char text[1 << 16];
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", protocol_path);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	for (size_t i = 0; i < NCODES; i++) {
		char row[128];

		snprintf(row, sizeof(row), "| %d | `%s` |", all_codes[i],
			 proto_error_kind(all_codes[i]));
		ck_assert_msg(strstr(text, row) != NULL, "PROTOCOL.md lacks row %s", row);
	}
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("proto-docs");
	TCase *tc = tcase_create("docs");

	if (argc != 3) {
		fprintf(stderr, "usage: %s openrpc.json PROTOCOL.md\n", argv[0]);
		return 77;
	}
	openrpc_path = argv[1];
	protocol_path = argv[2];
	tcase_add_test(tc, test_openrpc_errors);
	tcase_add_test(tc, test_openrpc_params_checkable);
	tcase_add_test(tc, test_protocol_md_errors);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

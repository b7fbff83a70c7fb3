/* params_check: unknown/missing members, types, nested paths, ranges, UTF-8. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "../check-run.h"

static const struct param_spec limits_spec[] = {
	{ .name = "memory", .type = PARAM_INT, .min = 1, .max = 1 << 30 },
	{ .name = "pids", .type = PARAM_INT },
	{ NULL },
};

static const struct param_spec spec[] = {
	{ .name = "name", .type = PARAM_STRING, .required = true, .max = 8 },
	{ .name = "count", .type = PARAM_INT, .min = -5, .max = 5 },
	{ .name = "flag", .type = PARAM_BOOL },
	{ .name = "limits", .type = PARAM_OBJECT, .sub = limits_spec },
	{ .name = "free", .type = PARAM_OBJECT },
	{ .name = "list", .type = PARAM_ARRAY, .max = 3 },
	{ .name = "tags", .type = PARAM_STRING_ARRAY },
	{ .name = "protocol", .type = PARAM_INT_ARRAY, .max = 4 },
	{ .name = "any", .type = PARAM_ANY },
	{ NULL },
};

/* Parse json (a params object) and check it; returns the code, fills field. */
static int check_json(const char *json, const struct param_spec *sp, char *field)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	struct rpc_error err;
	int r;

	ck_assert_ptr_nonnull(tok);
	o = json_tokener_parse_ex(tok, json, (int)strlen(json));
	ck_assert_msg(json_tokener_get_error(tok) == json_tokener_success, "bad test json %s", json);
	json_tokener_free(tok);
	rpc_error_clear(&err);
	r = params_check(o, sp, &err);
	ck_assert_int_eq(err.code, r);
	if (r != 0)
		ck_assert_str_ne(err.detail, "");
	strcpy(field, err.field);
	json_object_put(o);
	return r;
}

struct pcase {
	const char *json;
	int code;
	const char *field;
};

static const struct pcase cases[] = {
	{ "{\"name\":\"ok\"}", 0, "" },
	{ "{\"name\":\"12345678\",\"count\":-5,\"flag\":false,\"limits\":{\"memory\":1},"
	  "\"free\":{\"x\":[1]},\"list\":[1,\"a\",null],\"tags\":[\"a\",\"\xc3\xa9\"],"
	  "\"protocol\":[1,2],\"any\":null}", 0, "" },
	{ "{}", NONO_E_INVALID_PARAMS, "name" },                         /* missing */
	{ "{\"name\":\"a\",\"bogus\":1}", NONO_E_INVALID_PARAMS, "bogus" }, /* unknown */
	{ "{\"name\":null}", NONO_E_INVALID_PARAMS, "name" },
	{ "{\"name\":1}", NONO_E_INVALID_PARAMS, "name" },
	{ "{\"name\":\"123456789\"}", NONO_E_INVALID_PARAMS, "name" },  /* max_len */
	{ "{\"name\":\"a\\u0000b\"}", NONO_E_INVALID_PARAMS, "name" },  /* NUL */
	{ "{\"name\":\"a\",\"count\":\"1\"}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"count\":1.0}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"count\":1e0}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"count\":6}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"count\":-6}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"count\":true}", NONO_E_INVALID_PARAMS, "count" },
	{ "{\"name\":\"a\",\"flag\":1}", NONO_E_INVALID_PARAMS, "flag" },
	{ "{\"name\":\"a\",\"flag\":\"true\"}", NONO_E_INVALID_PARAMS, "flag" },
	{ "{\"name\":\"a\",\"limits\":[]}", NONO_E_INVALID_PARAMS, "limits" },
	{ "{\"name\":\"a\",\"limits\":{\"memory\":0}}", NONO_E_INVALID_PARAMS, "limits.memory" },
	{ "{\"name\":\"a\",\"limits\":{\"memory\":1.5}}", NONO_E_INVALID_PARAMS, "limits.memory" },
	{ "{\"name\":\"a\",\"limits\":{\"cpu\":1}}", NONO_E_INVALID_PARAMS, "limits.cpu" },
	/* min == max == 0: no range, but still int64 only */
	{ "{\"name\":\"a\",\"limits\":{\"pids\":-9223372036854775808}}", 0, "" },
	{ "{\"name\":\"a\",\"limits\":{\"pids\":9223372036854775808}}", NONO_E_INVALID_PARAMS,
	  "limits.pids" },
	{ "{\"name\":\"a\",\"limits\":{\"pids\":184467440737095516150}}", NONO_E_INVALID_PARAMS,
	  "limits.pids" },
	{ "{\"name\":\"a\",\"free\":1}", NONO_E_INVALID_PARAMS, "free" },
	{ "{\"name\":\"a\",\"list\":{}}", NONO_E_INVALID_PARAMS, "list" },
	{ "{\"name\":\"a\",\"list\":[1,2,3,4]}", NONO_E_INVALID_PARAMS, "list" },
	{ "{\"name\":\"a\",\"tags\":[\"a\",1]}", NONO_E_INVALID_PARAMS, "tags[1]" },
	{ "{\"name\":\"a\",\"tags\":[\"a\",\"b\\u0000\"]}", NONO_E_INVALID_PARAMS, "tags[1]" },
	{ "{\"name\":\"a\",\"protocol\":[1,\"2\"]}", NONO_E_INVALID_PARAMS, "protocol[1]" },
	{ "{\"name\":\"a\",\"protocol\":[1.0]}", NONO_E_INVALID_PARAMS, "protocol[0]" },
	{ "{\"name\":\"a\",\"protocol\":[1,2,3,4,5]}", NONO_E_INVALID_PARAMS, "protocol" },
	{ "{\"name\":\"a\",\"protocol\":1}", NONO_E_INVALID_PARAMS, "protocol" },
};

START_TEST(test_cases)
{
	const struct pcase *c = &cases[_i];
	char field[128];
	int r = check_json(c->json, spec, field);

	ck_assert_msg(r == c->code, "%s: got %d", c->json, r);
	ck_assert_msg(strcmp(field, c->field) == 0, "%s: field %s", c->json, field);
}
END_TEST

START_TEST(test_null_spec_and_params)
{
	char field[128];
	struct rpc_error err;

	/* no spec: only {} or absent params */
	ck_assert_int_eq(check_json("{}", NULL, field), 0);
	ck_assert_int_eq(check_json("{\"x\":1}", NULL, field), NONO_E_INVALID_PARAMS);
	ck_assert_str_eq(field, "x");
	ck_assert_int_eq(params_check(NULL, NULL, &err), 0);
	/* absent params still need the required members */
	ck_assert_int_eq(params_check(NULL, spec, &err), NONO_E_INVALID_PARAMS);
	ck_assert_str_eq(err.field, "name");
}
END_TEST

START_TEST(test_invalid_utf8)
{
	/* Built in-process (not through the tokener), so the bytes reach params_check. */
	static const char *const bad[] = {
		"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\x80", "a\xc3(",
	};
	struct rpc_error err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = json_object_new_object();
		struct json_object *arr = json_object_new_array();

		json_object_object_add(o, "name", json_object_new_string(bad[i]));
		ck_assert_int_eq(params_check(o, spec, &err), NONO_E_INVALID_PARAMS);
		ck_assert_str_eq(err.field, "name");
		json_object_object_add(o, "name", json_object_new_string("ok"));
		json_object_array_add(arr, json_object_new_string(bad[i]));
		json_object_object_add(o, "tags", arr);
		ck_assert_int_eq(params_check(o, spec, &err), NONO_E_INVALID_PARAMS);
		ck_assert_str_eq(err.field, "tags[0]");
		json_object_put(o);
	}
}
END_TEST

START_TEST(test_long_path_truncated)
{
	/* a hostile 1000-byte key: field is truncated, never overflowed */
	char json[1200];
	char field[128];

	strcpy(json, "{\"name\":\"a\",\"");
	memset(json + strlen(json), 'k', 1000);
	strcpy(json + 13 + 1000, "\":1}");
	ck_assert_int_eq(check_json(json, spec, field), NONO_E_INVALID_PARAMS);
	ck_assert_uint_eq(strlen(field), 127);
}
END_TEST

START_TEST(test_getters)
{
	struct json_object *o = json_tokener_parse(
		"{\"name\":\"n\",\"count\":3,\"flag\":true,\"limits\":{\"memory\":7},\"any\":null}");

	ck_assert_str_eq(params_str(o, "name", "d"), "n");
	ck_assert_str_eq(params_str(o, "count", "d"), "d");
	ck_assert_str_eq(params_str(o, "missing", "d"), "d");
	ck_assert_ptr_null(params_str(o, "missing", NULL));
	ck_assert_int_eq(params_int(o, "count", -1), 3);
	ck_assert_int_eq(params_int(o, "name", -1), -1);
	ck_assert_int_eq(params_int(o, "limits.memory", -1), 7);
	ck_assert_int_eq(params_int(o, "limits.nope", -1), -1);
	ck_assert_int_eq(params_int(o, "name.x", -1), -1);
	ck_assert(params_bool(o, "flag", false));
	ck_assert(!params_bool(o, "count", false));
	ck_assert_ptr_null(params_get(o, "any"));
	ck_assert_ptr_nonnull(params_get(o, "limits"));
	ck_assert_ptr_null(params_get(NULL, "name"));
	ck_assert_int_eq(params_int(NULL, "x", 5), 5);
	json_object_put(o);
}
END_TEST

START_TEST(test_type_names)
{
	ck_assert_str_eq(param_type_name(PARAM_STRING), "string");
	ck_assert_str_eq(param_type_name(PARAM_INT), "integer");
	ck_assert_str_eq(param_type_name(PARAM_BOOL), "boolean");
	ck_assert_str_eq(param_type_name(PARAM_OBJECT), "object");
	ck_assert_str_eq(param_type_name(PARAM_ARRAY), "array");
	ck_assert_str_eq(param_type_name(PARAM_STRING_ARRAY), "array");
	ck_assert_str_eq(param_type_name(PARAM_INT_ARRAY), "array");
	ck_assert_str_eq(param_type_name(PARAM_ANY), "any");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-params");
	TCase *tc = tcase_create("params");

	tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_null_spec_and_params);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_long_path_truncated);
	tcase_add_test(tc, test_getters);
	tcase_add_test(tc, test_type_names);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}

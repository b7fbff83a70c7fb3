/*
 * policy.validate (daemon/method-policy.c) driven directly through its
 * method table: parameter spec checked by proto's params_check, text and
 * object forms give the same digest, errors carry the offending key's path
 * in data.field, variables expand, and bad parameter types are refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "methods.h"
#include "policy.h"
#include "../check-run.h"

extern const struct method policy_methods[];

static const struct peer user = { .uid = 1000, .gid = 1000, .pid = 1 };

/* Run the method like rpc.c does: params_check, then the handler. */
static int call(struct json_object *params, struct json_object **result, struct rpc_error *err)
{
	const struct method *m = &policy_methods[0];
	struct rpc_call c = { .peer = &user, .params = params };
	int r;

	ck_assert_str_eq(m->name, "policy.validate");
	ck_assert_int_eq(m->auth, AUTH_USER);
	memset(err, 0, sizeof(*err));
	*result = NULL;
	r = params_check(params, m->params, err);
	if (r < 0)
		return r;
	return m->fn(&c, result, err);
}

static struct json_object *params_text(const char *text)
{
	struct json_object *p = json_object_new_object();

	json_object_object_add(p, "policy", json_object_new_string(text));
	return p;
}

static const char text[] =
	"version: 1\nfilesystem: {read: [$WORKSPACE], deny: [$HOME/.ssh]}\n"
	"network: {allow: [\"api.example.com:443\"], inject: [{host: api.example.com, "
	"header: Authorization, value: \"Bearer ${secret:tok}\"}]}\n";

START_TEST(test_valid_text_and_object)
{
	struct json_object *p = params_text(text), *res, *res2, *v;
	struct rpc_error err;
	char want[65];
	struct policy *pol;
	struct policy_error pe;

	ck_assert_int_eq(call(p, &res, &err), 0);
	ck_assert(json_object_object_get_ex(res, "valid", &v) && json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(res, "resolved", &v) && !json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(res, "digest", &v));
	ck_assert_int_eq(policy_parse(text, strlen(text), &pol, &pe), 0);
	ck_assert_int_eq(policy_digest(pol, want), 0);
	ck_assert_str_eq(json_object_get_string(v), want);
	policy_free(pol);

	/* The normalized object, sent back as a policy, has the same digest. */
	ck_assert(json_object_object_get_ex(res, "normalized", &v));
	json_object_put(p);
	p = json_object_new_object();
	json_object_object_add(p, "policy", json_object_get(v));
	ck_assert_int_eq(call(p, &res2, &err), 0);
	ck_assert(json_object_object_get_ex(res2, "digest", &v));
	ck_assert_str_eq(json_object_get_string(v), want);
	json_object_put(res2);
	json_object_put(res);
	json_object_put(p);
}
END_TEST

START_TEST(test_invalid_policy)
{
	struct json_object *p = params_text("version: 1\nnetwork:\n  allow: [\"a.example:443\"]\n"
					    "  inject:\n    - {host: a.example, hedaer: X, value: v}\n");
	struct json_object *res;
	struct rpc_error err;

	ck_assert_int_eq(call(p, &res, &err), NONO_E_POLICY_INVALID);
	ck_assert_ptr_null(res);
	ck_assert_int_eq(err.code, NONO_E_POLICY_INVALID);
	ck_assert_str_eq(err.field, "network.inject[0].hedaer");
	ck_assert_ptr_nonnull(strstr(err.detail, "line 5"));
	ck_assert_ptr_nonnull(strstr(err.detail, "unknown key"));
	json_object_put(p);
}
END_TEST

START_TEST(test_vars)
{
	struct json_object *p = params_text(text), *vars = json_object_new_object(), *res, *v;
	struct rpc_error err;
	const char *s;

	json_object_object_add(vars, "workspace", json_object_new_string("/w"));
	json_object_object_add(vars, "home", json_object_new_string("/home/u"));
	json_object_object_add(p, "vars", vars);
	ck_assert_int_eq(call(p, &res, &err), 0);
	ck_assert(json_object_object_get_ex(res, "resolved", &v) && json_object_get_boolean(v));
	s = json_object_to_json_string_ext(res, JSON_C_TO_STRING_NOSLASHESCAPE);
	ck_assert_ptr_nonnull(strstr(s, "/home/u/.ssh"));
	json_object_put(res);

	/* A variable with ".." names vars.home. */
	json_object_object_add(vars, "home", json_object_new_string("/home/../etc"));
	ck_assert_int_eq(call(p, &res, &err), NONO_E_POLICY_INVALID);
	ck_assert_str_eq(err.field, "vars.home");
	/* A variable the policy needs but the caller did not give. */
	json_object_object_del(vars, "home");
	ck_assert_int_eq(call(p, &res, &err), NONO_E_POLICY_INVALID);
	ck_assert_str_eq(err.field, "filesystem.deny[0]");
	json_object_put(p);
}
END_TEST

START_TEST(test_bad_params)
{
	struct json_object *p = json_object_new_object(), *res;
	struct rpc_error err;

	json_object_object_add(p, "policy", json_object_new_int(1));
	ck_assert_int_eq(call(p, &res, &err), NONO_E_INVALID_PARAMS);
	ck_assert_str_eq(err.field, "policy");
	json_object_put(p);

	p = params_text("version: 1\n");
	json_object_object_add(p, "extra", json_object_new_int(1));
	ck_assert_int_eq(call(p, &res, &err), NONO_E_INVALID_PARAMS);
	json_object_put(p);

	p = json_object_new_object();
	ck_assert_int_eq(call(p, &res, &err), NONO_E_INVALID_PARAMS); /* policy missing */
	json_object_put(p);

	p = params_text("version: 1\n");
	json_object_object_add(p, "vars", json_object_new_string("/w"));
	ck_assert_int_eq(call(p, &res, &err), NONO_E_INVALID_PARAMS);
	json_object_put(p);
}
END_TEST

START_TEST(test_too_large)
{
	size_t n = POLICY_MAX_TEXT + 1;
	char *big = malloc(n + 1);
	struct json_object *p, *res;
	struct rpc_error err;

	memset(big, ' ', n);
	memcpy(big, "version: 1\n#", 12);
	big[n] = '\0';
	p = params_text(big);
	ck_assert_int_lt(call(p, &res, &err), 0);
	ck_assert_str_eq(err.field, "policy");
	ck_assert_ptr_nonnull(strstr(err.detail, "larger than"));
	json_object_put(p);
	free(big);
}
END_TEST

static Suite *method_suite(void)
{
	Suite *s = suite_create("policy-method");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_valid_text_and_object);
	tcase_add_test(tc, test_invalid_policy);
	tcase_add_test(tc, test_vars);
	tcase_add_test(tc, test_bad_params);
	tcase_add_test(tc, test_too_large);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(method_suite());
}

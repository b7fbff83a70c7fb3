/*
 * rpc_parse_request against every class of hostile input, and the builders
 * (make_request/result/error, serialize) in a round trip.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "../check-run.h"

struct bad_case {
	const char *name;
	const char *json;
	size_t len;       /* 0 = strlen(json) */
	int code;
	const char *field; /* expected err.field */
	const char *id;    /* expected recovered id as JSON, NULL = none */
};

#define REQ(x) "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\"" x "}"

static const struct bad_case bad_cases[] = {
	{ "empty", "", 0, NONO_E_PARSE, "", NULL },
	{ "whitespace only", " \r\t", 0, NONO_E_PARSE, "", NULL },
	{ "malformed", "{\"jsonrpc\":", 0, NONO_E_PARSE, "", NULL },
	{ "unterminated string", "{\"a\":\"b", 0, NONO_E_PARSE, "", NULL },
	{ "single quotes", "{'jsonrpc':'2.0'}", 0, NONO_E_PARSE, "", NULL },
	{ "trailing comma", REQ(","), 0, NONO_E_PARSE, "", NULL },
	{ "comment", REQ("/* c */"), 0, NONO_E_PARSE, "", NULL },
	{ "trailing garbage", REQ(",\"id\":1") "x", 0, NONO_E_PARSE, "", NULL },
	{ "two objects", REQ(",\"id\":1") "{}", 0, NONO_E_PARSE, "", NULL },
	{ "embedded NUL", REQ(",\"id\":1") "\0 ", sizeof(REQ(",\"id\":1")) + 1,
	  NONO_E_PARSE, "", NULL },
	{ "NUL inside string", "{\"jsonrpc\":\"2.0\",\"method\":\"a\0b\"}",
	  sizeof("{\"jsonrpc\":\"2.0\",\"method\":\"a\0b\"}") - 1, NONO_E_PARSE, "", NULL },
	{ "raw control char", REQ(",\"params\":{\"a\":\"\x01\"}"), 0, NONO_E_PARSE, "", NULL },
	{ "invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}", 0, NONO_E_PARSE, "", NULL },
	{ "overlong UTF-8", "{\"jsonrpc\":\"2.0\",\"method\":\"\xc0\xaf\"}", 0,
	  NONO_E_PARSE, "", NULL },
	{ "NaN", REQ(",\"params\":{\"x\":NaN}"), 0, NONO_E_PARSE, "", NULL },
	{ "Infinity", REQ(",\"params\":{\"x\":[-Infinity]}"), 0, NONO_E_PARSE, "", NULL },
	{ "huge double", REQ(",\"params\":{\"x\":1e999}"), 0, NONO_E_PARSE, "", NULL },
	{ "leading zero", REQ(",\"id\":01"), 0, NONO_E_PARSE, "", NULL },
	{ "number", "1", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "string", "\"daemon.status\"", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "null", "null", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "true", "true", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "batch", "[" REQ(",\"id\":1") "]", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "empty batch", "[]", 0, NONO_E_INVALID_REQUEST, "", NULL },
	{ "missing jsonrpc", "{\"method\":\"a\",\"id\":1}", 0, NONO_E_INVALID_REQUEST,
	  "jsonrpc", "1" },
	{ "jsonrpc 1.0", "{\"jsonrpc\":\"1.0\",\"method\":\"a\",\"id\":1}", 0,
	  NONO_E_INVALID_REQUEST, "jsonrpc", "1" },
	{ "jsonrpc number", "{\"jsonrpc\":2.0,\"method\":\"a\",\"id\":\"x\"}", 0,
	  NONO_E_INVALID_REQUEST, "jsonrpc", "\"x\"" },
	{ "jsonrpc with NUL", "{\"jsonrpc\":\"2.0\\u0000\",\"method\":\"a\"}", 0,
	  NONO_E_INVALID_REQUEST, "jsonrpc", NULL },
	{ "missing method", "{\"jsonrpc\":\"2.0\",\"id\":7}", 0, NONO_E_INVALID_REQUEST,
	  "method", "7" },
	{ "method number", "{\"jsonrpc\":\"2.0\",\"method\":1,\"id\":7}", 0,
	  NONO_E_INVALID_REQUEST, "method", "7" },
	{ "method null", "{\"jsonrpc\":\"2.0\",\"method\":null,\"id\":7}", 0,
	  NONO_E_INVALID_REQUEST, "method", "7" },
	{ "method object", "{\"jsonrpc\":\"2.0\",\"method\":{},\"id\":7}", 0,
	  NONO_E_INVALID_REQUEST, "method", "7" },
	{ "method empty", "{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":7}", 0,
	  NONO_E_INVALID_REQUEST, "method", "7" },
	{ "method escaped NUL", "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\\u0000x\",\"id\":7}",
	  0, NONO_E_INVALID_REQUEST, "method", "7" },
	{ "id 1.5", REQ(",\"id\":1.5"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id 1.0", REQ(",\"id\":1.0"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id 1e2", REQ(",\"id\":1e2"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id true", REQ(",\"id\":true"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id object", REQ(",\"id\":{}"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id array", REQ(",\"id\":[]"), 0, NONO_E_INVALID_REQUEST, "id", NULL },
	{ "id > int64", REQ(",\"id\":9223372036854775808"), 0, NONO_E_INVALID_REQUEST,
	  "id", NULL },
	{ "id huge", REQ(",\"id\":99999999999999999999999999"), 0, NONO_E_INVALID_REQUEST,
	  "id", NULL },
	{ "id string with NUL", REQ(",\"id\":\"a\\u0000\""), 0, NONO_E_INVALID_REQUEST,
	  "id", NULL },
	{ "params array", REQ(",\"params\":[1,2],\"id\":3"), 0, NONO_E_INVALID_REQUEST,
	  "params", "3" },
	{ "params string", REQ(",\"params\":\"x\",\"id\":3"), 0, NONO_E_INVALID_REQUEST,
	  "params", "3" },
	{ "params null", REQ(",\"params\":null,\"id\":3"), 0, NONO_E_INVALID_REQUEST,
	  "params", "3" },
	{ "unknown member", REQ(",\"extra\":1,\"id\":3"), 0, NONO_E_INVALID_REQUEST,
	  "extra", "3" },
	{ "result in request", REQ(",\"result\":{},\"id\":3"), 0, NONO_E_INVALID_REQUEST,
	  "result", "3" },
};

START_TEST(test_bad_request)
{
	const struct bad_case *c = &bad_cases[_i];
	size_t len = c->len ? c->len : strlen(c->json);
	struct rpc_request req;
	struct rpc_error err;
	struct json_object *id = (struct json_object *)1;

	rpc_error_clear(&err);
	ck_assert_msg(rpc_parse_request(c->json, len, &req, &err, &id) == c->code,
		      "%s: got %d (%s)", c->name, err.code, err.detail);
	ck_assert_int_eq(err.code, c->code);
	ck_assert_msg(strcmp(err.field, c->field) == 0, "%s: field '%s'", c->name, err.field);
	ck_assert_str_ne(err.detail, "");
	ck_assert_ptr_null(req.root);
	ck_assert_ptr_null(req.method);
	if (c->id == NULL) {
		ck_assert_msg(id == NULL, "%s: id recovered", c->name);
	} else {
		ck_assert_ptr_nonnull(id);
		ck_assert_str_eq(json_object_to_json_string(id), c->id);
	}
	json_object_put(id);
	rpc_request_free(&req); /* no-op on a zeroed request */
}
END_TEST

static char *nested(size_t levels)
{
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{\"x\":";
	size_t hl = sizeof(head) - 1;
	char *s = malloc(hl + 2 * levels + 3);

	ck_assert_ptr_nonnull(s);
	memcpy(s, head, hl);
	memset(s + hl, '[', levels);
	memset(s + hl + levels, ']', levels);
	memcpy(s + hl + 2 * levels, "}}", 3);
	return s;
}

START_TEST(test_depth)
{
	struct rpc_request req;
	struct rpc_error err;
	char *ok = nested(62);     /* 62 arrays + params + root = 64 levels */
	char *deep = nested(63);
	char *bomb = nested(10000);

	ck_assert_int_eq(rpc_parse_request(ok, strlen(ok), &req, &err, NULL), 0);
	rpc_request_free(&req);
	ck_assert_int_eq(rpc_parse_request(deep, strlen(deep), &req, &err, NULL), NONO_E_PARSE);
	ck_assert_int_eq(rpc_parse_request(bomb, strlen(bomb), &req, &err, NULL), NONO_E_PARSE);
	ck_assert_ptr_null(req.root);
	free(ok);
	free(deep);
	free(bomb);
}
END_TEST

START_TEST(test_bare_open_brackets)
{
	size_t n = 10000;
	char *s = malloc(n);
	struct rpc_request req;
	struct rpc_error err;

	ck_assert_ptr_nonnull(s);
	memset(s, '[', n);
	ck_assert_int_eq(rpc_parse_request(s, n, &req, &err, NULL), NONO_E_PARSE);
	memset(s, '{', n);
	ck_assert_int_eq(rpc_parse_request(s, n, &req, &err, NULL), NONO_E_PARSE);
	free(s);
}
END_TEST

START_TEST(test_good_request)
{
	const char *m = " {\"jsonrpc\":\"2.0\",\"method\":\"daemon.hello\",\"id\":\"abc\","
			"\"params\":{\"protocol\":[1],\"client\":\"t/1\"}}\r";
	struct rpc_request req;
	struct rpc_error err;
	struct json_object *id = (struct json_object *)1;

	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, &id), 0);
	ck_assert_ptr_null(id);
	ck_assert_str_eq(req.method, "daemon.hello");
	ck_assert_str_eq(json_object_get_string(req.id), "abc");
	ck_assert(json_object_is_type(req.params, json_type_object));
	ck_assert(!rpc_request_is_notification(&req));
	rpc_request_free(&req);
	ck_assert_ptr_null(req.root);
	rpc_request_free(&req);
	rpc_request_free(NULL);
}
END_TEST

START_TEST(test_ids)
{
	struct rpc_request req;
	struct rpc_error err;
	const char *m;

	m = REQ(",\"id\":-9223372036854775808");
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL), 0);
	ck_assert(json_object_get_int64(req.id) == INT64_MIN);
	rpc_request_free(&req);

	m = REQ(",\"id\":9223372036854775807");
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL), 0);
	ck_assert(json_object_get_int64(req.id) == INT64_MAX);
	rpc_request_free(&req);

	/* id null: a request that gets an answer with id null */
	m = REQ(",\"id\":null");
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL), 0);
	ck_assert_ptr_null(req.id);
	ck_assert(!rpc_request_is_notification(&req));
	rpc_request_free(&req);

	/* no id: a notification; no params: NULL */
	m = REQ("");
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL), 0);
	ck_assert_ptr_null(req.id);
	ck_assert_ptr_null(req.params);
	ck_assert(rpc_request_is_notification(&req));
	rpc_request_free(&req);
}
END_TEST

START_TEST(test_method_length)
{
	char m[400];
	char name[200];
	struct rpc_request req;
	struct rpc_error err;

	memset(name, 'm', 128);
	name[128] = '\0';
	snprintf(m, sizeof(m), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}", name);
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL), 0);
	rpc_request_free(&req);
	name[128] = 'm';
	name[129] = '\0';
	snprintf(m, sizeof(m), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}", name);
	ck_assert_int_eq(rpc_parse_request(m, strlen(m), &req, &err, NULL),
			 NONO_E_INVALID_REQUEST);
	ck_assert_str_eq(err.field, "method");
}
END_TEST

START_TEST(test_unterminated_buffer)
{
	/* buf is not NUL-terminated: len is authoritative (ASan checks reads). */
	const char *m = REQ(",\"id\":12345");
	size_t n = strlen(m);
	char *buf = malloc(n);
	struct rpc_request req;
	struct rpc_error err;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, m, n);
	ck_assert_int_eq(rpc_parse_request(buf, n, &req, &err, NULL), 0);
	ck_assert_int_eq(json_object_get_int(req.id), 12345);
	rpc_request_free(&req);
	/* a prefix cut inside the number is incomplete JSON */
	ck_assert_int_eq(rpc_parse_request(buf, n - 3, &req, &err, NULL), NONO_E_PARSE);
	free(buf);
}
END_TEST

/* Builders: serialize, then parse the bytes back as the other side would. */
START_TEST(test_round_trip_request)
{
	struct json_object *id = json_object_new_int(42);
	struct json_object *params = json_object_new_object();
	struct json_object *msg;
	struct rpc_request req;
	struct rpc_error err;
	size_t len;
	char *s;

	json_object_object_add(params, "path", json_object_new_string("/a/b"));
	msg = rpc_make_request(id, "session.create", params);
	ck_assert_ptr_nonnull(msg);
	s = rpc_serialize(msg, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	ck_assert_int_eq(s[len - 1], '\n');
	ck_assert_ptr_null(memchr(s, '\n', len - 1));
	ck_assert_ptr_nonnull(strstr(s, "\"/a/b\"")); /* no slash escaping */
	ck_assert_int_eq(rpc_parse_request(s, len - 1, &req, &err, NULL), 0);
	ck_assert_str_eq(req.method, "session.create");
	ck_assert_int_eq(json_object_get_int(req.id), 42);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(req.params, "path")),
			 "/a/b");
	rpc_request_free(&req);
	free(s);
	json_object_put(msg);
	json_object_put(id);

	/* notification without params */
	msg = rpc_make_request(NULL, "x.y", NULL);
	s = rpc_serialize(msg, &len);
	ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"method\":\"x.y\"}\n");
	free(s);
	json_object_put(msg);

	/* NULL method: params are still released (ASan/LSan check) */
	ck_assert_ptr_null(rpc_make_request(NULL, NULL, json_object_new_object()));
	ck_assert_ptr_null(rpc_serialize(NULL, &len));
}
END_TEST

START_TEST(test_make_result)
{
	struct json_object *id = json_object_new_string("q");
	struct json_object *msg;
	char *s;

	msg = rpc_make_result(id, NULL);
	s = rpc_serialize(msg, NULL);
	ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"result\":{}}\n");
	free(s);
	json_object_put(msg);
	json_object_put(id);

	msg = rpc_make_result(NULL, json_object_new_int(3));
	s = rpc_serialize(msg, NULL);
	ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":3}\n");
	free(s);
	json_object_put(msg);
}
END_TEST

START_TEST(test_make_error)
{
	struct rpc_error err;
	struct json_object *msg, *id = json_object_new_int(9);
	char *s;

	rpc_error_set(&err, NONO_E_NOT_FOUND, "id", "no session %s", "s1");
	msg = rpc_make_error(id, &err);
	s = rpc_serialize(msg, NULL);
	ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32003,"
			    "\"message\":\"Not found\",\"data\":{\"kind\":\"not_found\","
			    "\"field\":\"id\",\"detail\":\"no session s1\"}}}\n");
	free(s);
	json_object_put(msg);
	json_object_put(id);

	/* empty field and detail are omitted; unknown codes become internal */
	rpc_error_set(&err, 12345, NULL, "%s", "");
	msg = rpc_make_error(NULL, &err);
	s = rpc_serialize(msg, NULL);
	ck_assert_str_eq(s, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
			    "\"message\":\"Internal error\",\"data\":{\"kind\":\"internal_error\"}}}\n");
	free(s);
	json_object_put(msg);

	msg = rpc_make_error(NULL, NULL);
	ck_assert_ptr_nonnull(msg);
	json_object_put(msg);
}
END_TEST

START_TEST(test_make_error_utf8_cut)
{
	/* A detail truncated inside a multibyte character must not go out as invalid UTF-8. */
	struct rpc_error err;
	struct json_object *msg;
	struct rpc_response resp;
	struct rpc_error perr;
	char *s;
	size_t len;

	rpc_error_clear(&err);
	err.code = NONO_E_INVALID_PARAMS;
	memset(err.detail, 'a', sizeof(err.detail));
	/* last two bytes: the first half of "é" then no terminator at all */
	err.detail[sizeof(err.detail) - 1] = '\xc3';
	memcpy(err.field, "caf\xc3", 5);
	msg = rpc_make_error(NULL, &err);
	s = rpc_serialize(msg, &len);
	ck_assert_int_eq(rpc_parse_response(s, len, &resp, &perr), 0);
	ck_assert_int_eq(resp.type, RPC_MSG_ERROR);
	ck_assert_str_eq(resp.error.field, "caf");
	ck_assert_uint_eq(strlen(resp.error.detail), sizeof(err.detail) - 1);
	rpc_response_free(&resp);
	free(s);
	json_object_put(msg);
}
END_TEST

START_TEST(test_serialize_escapes)
{
	/* Strings with LF/NUL/control bytes never break framing. */
	struct json_object *o = json_object_new_object();
	char *s;
	size_t len;

	json_object_object_add(o, "k", json_object_new_string_len("a\nb\0c\x01", 6));
	s = rpc_serialize(o, &len);
	ck_assert_ptr_null(memchr(s, '\n', len - 1));
	ck_assert_str_eq(s, "{\"k\":\"a\\nb\\u0000c\\u0001\"}\n");
	free(s);
	json_object_put(o);
}
END_TEST

/* Memory amplification: many tiny values are refused, long strings are not. */
START_TEST(test_value_limit)
{
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"a\":";
	size_t n = 200000, hl = sizeof(head) - 1, k;
	char *s = malloc(hl + 3 * n + 16);
	struct rpc_request req;
	struct rpc_error err;

	ck_assert_ptr_nonnull(s);
	memcpy(s, head, hl);
	k = hl;
	s[k++] = '[';
	for (size_t i = 0; i < n; i++) {
		memcpy(s + k, "[],", 3);
		k += 3;
	}
	memcpy(s + k, "[]]}}", 6);
	ck_assert_int_eq(rpc_parse_request(s, strlen(s), &req, &err, NULL), NONO_E_LIMIT_EXCEEDED);
	ck_assert_ptr_null(req.root);

	/* the same number of commas and brackets inside a string is one value */
	k = hl;
	s[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		memcpy(s + k, i % 2 ? "[,{" : "\\\",", 3);
		k += 3;
	}
	memcpy(s + k, "\"}}", 4);
	ck_assert_int_eq(rpc_parse_request(s, strlen(s), &req, &err, NULL), 0);
	rpc_request_free(&req);
	free(s);
}
END_TEST

/* Deterministic mutation fuzzing: any outcome but a crash, leak or bad code. */
START_TEST(test_mutations)
{
	static const char seed[] =
		"{\"jsonrpc\":\"2.0\",\"method\":\"daemon.hello\",\"id\":\"a\\u00e9\","
		"\"params\":{\"protocol\":[1,2],\"client\":\"t/1\",\"x\":{\"y\":[null,true,-1.5e3]}}}";
	static const char alphabet[] = "{}[]\",:\\0123456789.eE+-tfnu \t\r\x01\xc3\xa9\xff\x80";
	unsigned int rng = 12345;
	char buf[sizeof(seed) + 8];

	for (int iter = 0; iter < 5000; iter++) {
		struct rpc_request req;
		struct rpc_response resp;
		struct rpc_error err;
		struct json_object *id = NULL;
		size_t len = sizeof(seed) - 1;
		int r;

		memcpy(buf, seed, len);
		for (int k = 0; k < 1 + iter % 4 && len > 0; k++) {
			rng = rng * 1103515245u + 12345u;
			size_t pos = (rng >> 8) % len;

			rng = rng * 1103515245u + 12345u;
			if ((rng >> 16) % 7 == 0)
				len = pos; /* truncate */
			else
				buf[pos] = alphabet[(rng >> 8) % (sizeof(alphabet) - 1)];
		}
		r = rpc_parse_request(buf, len, &req, &err, &id);
		ck_assert(r == 0 || proto_error_known(r));
		if (r == 0) {
			ck_assert_ptr_nonnull(req.method);
			ck_assert(req.params == NULL ||
				  json_object_is_type(req.params, json_type_object));
		}
		json_object_put(id);
		rpc_request_free(&req);
		r = rpc_parse_response(buf, len, &resp, &err);
		ck_assert(r == 0 || proto_error_known(r));
		rpc_response_free(&resp);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-rpc");
	TCase *tc = tcase_create("request");
	TCase *tb = tcase_create("builders");

	tcase_add_loop_test(tc, test_bad_request, 0,
			    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_bare_open_brackets);
	tcase_add_test(tc, test_good_request);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_method_length);
	tcase_add_test(tc, test_unterminated_buffer);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_value_limit);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	tcase_add_test(tb, test_round_trip_request);
	tcase_add_test(tb, test_make_result);
	tcase_add_test(tb, test_make_error);
	tcase_add_test(tb, test_make_error_utf8_cut);
	tcase_add_test(tb, test_serialize_escapes);
	tcase_set_timeout(tb, 120);
	suite_add_tcase(s, tb);
	return check_run(s);
}

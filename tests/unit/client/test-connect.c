/*
 * libnono: connecting and the hello handshake against a scripted daemon:
 * what the client sends, what it accepts, and every way the daemon (or its
 * absence) can make the handshake fail.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "harness.h"
#include "../check-run.h"

START_TEST(test_hello_ok)
{
	struct harness h;
	struct json_object *req, *v;
	int before = h_count_fds();

	h_open(&h);
	ck_assert_int_eq(nono_client_protocol(h.c), 1);
	ck_assert_str_eq(nono_client_daemon_version(h.c), "9.8.7");
	ck_assert(nono_client_has_feature(h.c, "x"));
	ck_assert(!nono_client_has_feature(h.c, "y"));
	ck_assert_uint_eq(nono_client_max_message(h.c), 4096);
	ck_assert_str_eq(nono_client_socket_path(h.c), h.path);
	ck_assert(h_is_cloexec(nono_client_get_fd(h.c)));
	ck_assert_ptr_nonnull(strstr(nono_client_hello_json(h.c), "\"daemon\":\"9.8.7\""));

	/* What went on the wire. */
	req = json_tokener_parse(h.hello_req);
	ck_assert_ptr_nonnull(req);
	ck_assert(json_object_object_get_ex(req, "method", &v));
	ck_assert_str_eq(json_object_get_string(v), "daemon.hello");
	ck_assert(json_object_object_get_ex(req, "id", &v));
	ck_assert_int_eq(json_object_get_int(v), 1);
	ck_assert(json_object_object_get_ex(req, "params", &v));
	ck_assert_str_eq(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			 "{\"protocol\":[1],\"client\":\"test/1\"}");
	json_object_put(req);
	h_stop(&h);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

START_TEST(test_connect_missing_socket)
{
	nono_client *c = (nono_client *)1;
	nono_error *err = NULL;
	int r = nono_client_connect("/nonexistent/nono/nonod.sock", NULL, &c, &err);

	ck_assert_int_eq(r, NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(nono_error_code(err), NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_str_eq(nono_error_kind(err), "connection");
	ck_assert_int_eq(nono_error_errno(err), ENOENT);
	ck_assert(!nono_error_is_remote(err));
	ck_assert_str_eq(nono_error_detail(err),
			 "cannot connect to /nonexistent/nono/nonod.sock: No such file or directory");
	nono_error_free(err);

	/* err may be NULL: the code alone. */
	ck_assert_int_eq(nono_client_connect("/nonexistent", NULL, &c, NULL),
			 NONO_E_BACKEND_UNAVAILABLE);
}
END_TEST

START_TEST(test_connect_path_too_long)
{
	char path[300];
	nono_client *c = NULL;
	nono_error *err = NULL;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(nono_client_connect(path, NULL, &c, &err), NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_int_eq(nono_error_errno(err), ENAMETOOLONG);
	nono_error_free(err);
}
END_TEST

START_TEST(test_connect_not_a_socket)
{
	nono_client *c = NULL;
	nono_error *err = NULL;

	ck_assert_int_eq(nono_client_connect("/dev/null", NULL, &c, &err),
			 NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_int_eq(nono_error_errno(err), ECONNREFUSED);
	nono_error_free(err);
}
END_TEST

/* The daemon reads the hello and hangs up. Also: no SIGPIPE. */
START_TEST(test_hello_eof)
{
	struct harness h;
	nono_error *err = NULL;
	int before = h_count_fds();

	signal(SIGPIPE, SIG_DFL);
	h_start(&h, NULL);
	ck_assert_int_eq(h_connect(&h, &err), NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_ptr_null(h.c);
	ck_assert_str_eq(nono_error_kind(err), "connection");
	ck_assert_str_eq(nono_error_detail(err), "nonod closed the connection");
	nono_error_free(err);
	h_stop(&h);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

START_TEST(test_hello_remote_error)
{
	struct harness h;
	nono_error *err = NULL;

	h_start(&h, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32002,"
		    "\"message\":\"Unsupported protocol\",\"data\":{\"kind\":"
		    "\"unsupported_protocol\",\"field\":\"protocol\",\"detail\":"
		    "\"supported: [2]\"}}}\n");
	ck_assert_int_eq(h_connect(&h, &err), NONO_E_UNSUPPORTED_PROTOCOL);
	ck_assert(nono_error_is_remote(err));
	ck_assert_str_eq(nono_error_kind(err), "unsupported_protocol");
	ck_assert_str_eq(nono_error_field(err), "protocol");
	ck_assert_str_eq(nono_error_detail(err), "supported: [2]");
	ck_assert_str_eq(nono_error_message(err), "Unsupported protocol");
	nono_error_free(err);
	h_stop(&h);
}
END_TEST

/* Hello results a client must refuse, with the code it must refuse them with. */
static const struct {
	const char *reply;
	int code;
} bad_hellos[] = {
	{ "garbage\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"daemon\":\"1\"}}\n",
	  NONO_E_UNSUPPORTED_PROTOCOL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":2,\"daemon\":\"1\"}}\n",
	  NONO_E_UNSUPPORTED_PROTOCOL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":\"1\",\"daemon\":\"1\"}}\n",
	  NONO_E_UNSUPPORTED_PROTOCOL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1}}\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":7}}\n",
	  NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"1\","
	  "\"limits\":{\"max_message\":1}}}\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"1\","
	  "\"limits\":{\"max_message\":99999999999}}}\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"1\","
	  "\"limits\":{\"max_message\":4096.5}}}\n", NONO_E_PARSE },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"1\","
	  "\"features\":\"x\"}}\n", NONO_E_PARSE },
	/* A reply to a request never sent. */
	{ "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n", NONO_E_PARSE },
	/* Invalid UTF-8 in a string. */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol\":1,\"daemon\":\"\xff\"}}\n",
	  NONO_E_PARSE },
};

START_TEST(test_hello_bad_results)
{
	struct harness h;
	nono_error *err = NULL;
	int before = h_count_fds();

	h_start(&h, bad_hellos[_i].reply);
	ck_assert_int_eq(h_connect(&h, &err), bad_hellos[_i].code);
	ck_assert_ptr_null(h.c);
	ck_assert_str_eq(nono_error_kind(err), "protocol");
	ck_assert(!nono_error_is_remote(err));
	nono_error_free(err);
	h_stop(&h);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

START_TEST(test_connect_bad_args)
{
	nono_error *err = NULL;
	char name[200];

	ck_assert_int_eq(nono_client_connect("/x", NULL, NULL, &err), NONO_E_INVALID_PARAMS);
	ck_assert_str_eq(nono_error_kind(err), "invalid_argument");
	nono_error_free(err);

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	nono_client *c = NULL;
	ck_assert_int_eq(nono_client_connect("/x", name, &c, NULL), NONO_E_INVALID_PARAMS);
	nono_client_free(NULL);
	nono_error_free(NULL);
}
END_TEST

START_TEST(test_default_socket)
{
	char buf[256], tiny[8];

	setenv("NONO_SOCKET", "/tmp/custom.sock", 1);
	ck_assert_str_eq(nono_default_socket(buf, sizeof(buf)), "/tmp/custom.sock");
	ck_assert_ptr_null(nono_default_socket(tiny, sizeof(tiny)));
	ck_assert_int_eq(errno, ENAMETOOLONG);
	setenv("NONO_SOCKET", "", 1);
	if (geteuid() == 0) {
		ck_assert_str_eq(nono_default_socket(buf, sizeof(buf)), NONO_SYSTEM_SOCKET);
	} else {
		setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
		ck_assert_ptr_nonnull(nono_default_socket(buf, sizeof(buf)));
		ck_assert(strcmp(buf, "/run/user/4242/nono/nonod.sock") == 0 ||
			  strcmp(buf, NONO_SYSTEM_SOCKET) == 0);
		unsetenv("XDG_RUNTIME_DIR");
		ck_assert_str_eq(nono_default_socket(buf, sizeof(buf)), NONO_SYSTEM_SOCKET);
	}
	unsetenv("NONO_SOCKET");
}
END_TEST

static Suite *connect_suite(void)
{
	Suite *s = suite_create("client-connect");
	TCase *tc = tcase_create("connect");

	tcase_add_unchecked_fixture(tc, h_global_setup, h_global_teardown);
	tcase_add_test(tc, test_hello_ok);
	tcase_add_test(tc, test_connect_missing_socket);
	tcase_add_test(tc, test_connect_path_too_long);
	tcase_add_test(tc, test_connect_not_a_socket);
	tcase_add_test(tc, test_hello_eof);
	tcase_add_test(tc, test_hello_remote_error);
	tcase_add_loop_test(tc, test_hello_bad_results, 0,
			    (int)(sizeof(bad_hellos) / sizeof(bad_hellos[0])));
	tcase_add_test(tc, test_connect_bad_args);
	tcase_add_test(tc, test_default_socket);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(connect_suite());
}

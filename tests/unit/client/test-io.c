/*
 * libnono: blocking calls against a (possibly hostile) daemon. Each test
 * holds the daemon's end of the socket and writes exact bytes: split
 * replies, notifications before the reply, error replies, 25 kinds of
 * garbage, embedded NUL, deep nesting, oversize lines and requests, bad
 * params, EOF mid-message, id-less errors, the typed status call, and
 * mutated replies.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <json-c/json.h>

#include "harness.h"
#include "../check-run.h"

START_TEST(test_call_roundtrip)
{
	struct harness h;
	char *res = NULL;
	char *line;

	h_open(&h);
	h_write(&h, RESULT(2, "{\"a\":[1,2],\"s\":\"x/y\"}"));
	ck_assert_int_eq(nono_client_call(h.c, "daemon.status", "{\"k\": \"v\"}", &res, NULL), 0);
	ck_assert_str_eq(res, "{\"a\":[1,2],\"s\":\"x/y\"}");
	free(res);
	line = h_read_line(&h);
	ck_assert_str_eq(line, "{\"jsonrpc\":\"2.0\",\"method\":\"daemon.status\","
			 "\"params\":{\"k\":\"v\"},\"id\":2}");
	free(line);
	h_stop(&h);
}
END_TEST


/* Blocking call, the reply written byte by byte before the call reads it. */
START_TEST(test_split_blocking)
{
	static const char reply[] = RESULT(2, "{\"n\":12345}");
	struct harness h;
	char *res = NULL;

	h_open(&h);
	h_write_bytes(&h, reply, sizeof(reply) - 1);
	ck_assert_int_eq(nono_client_call(h.c, "x.y", NULL, &res, NULL), 0);
	ck_assert_str_eq(res, "{\"n\":12345}");
	free(res);
	h_stop(&h);
}
END_TEST


/* Notifications before the reply are queued, not run inside the call. */
START_TEST(test_notifications_before_reply)
{
	struct harness h;
	struct notes ns = { 0 };
	char *res = NULL;

	h_open(&h);
	nono_client_set_notify_cb(h.c, h_on_notify, &ns);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"method\":\"session.exited\",\"params\":{\"id\":\"s1\"}}\n"
		    "{\"jsonrpc\":\"2.0\",\"method\":\"snapshot.progress\"}\n"
		    RESULT(2, "{}"));
	ck_assert_int_eq(nono_client_call(h.c, "daemon.status", NULL, &res, NULL), 0);
	ck_assert_str_eq(res, "{}");
	free(res);
	ck_assert_int_eq(ns.n, 0);
	ck_assert_uint_eq(nono_client_pending(h.c), 2);
	ck_assert_int_eq(nono_client_dispatch(h.c), 2);
	ck_assert_int_eq(ns.n, 2);
	ck_assert_str_eq(ns.text[0], "session.exited {\"id\":\"s1\"}");
	ck_assert_str_eq(ns.text[1], "snapshot.progress {}");
	ck_assert_uint_eq(nono_client_pending(h.c), 0);

	/* Without a callback they are dropped at dispatch. */
	nono_client_set_notify_cb(h.c, NULL, NULL);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"method\":\"n.x\"}\n");
	ck_assert_int_eq(nono_client_dispatch(h.c), 1);
	ck_assert_int_eq(ns.n, 2);
	h_stop(&h);
}
END_TEST

START_TEST(test_error_reply)
{
	struct harness h;
	nono_error *err = NULL;
	char *res = (char *)1;

	h_open(&h);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32003,\"message\":"
		    "\"Not found\",\"data\":{\"kind\":\"not_found\",\"field\":\"id\","
		    "\"detail\":\"no session s9\"}}}\n");
	ck_assert_int_eq(nono_client_call(h.c, "session.kill", "{\"id\":\"s9\"}", &res, &err),
			 NONO_E_NOT_FOUND);
	ck_assert_ptr_null(res);
	ck_assert(nono_error_is_remote(err));
	ck_assert_int_eq(nono_error_code(err), NONO_E_NOT_FOUND);
	ck_assert_str_eq(nono_error_kind(err), "not_found");
	ck_assert_str_eq(nono_error_field(err), "id");
	ck_assert_str_eq(nono_error_detail(err), "no session s9");
	ck_assert_str_eq(nono_error_message(err), "Not found");
	nono_error *dup = nono_error_dup(err);
	ck_assert_str_eq(nono_error_detail(dup), "no session s9");
	nono_error_free(dup);
	nono_error_free(err);

	/* An error without data: kind from the code, detail from the message. */
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32000,\"message\":\"nope\"}}\n");
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err), NONO_E_PERMISSION_DENIED);
	ck_assert_str_eq(nono_error_kind(err), "permission_denied");
	ck_assert_str_eq(nono_error_detail(err), "nope");
	nono_error_free(err);

	/* The connection survives a daemon error. */
	h_write(&h, RESULT(4, "{}"));
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, NULL), 0);
	h_stop(&h);
}
END_TEST

/* Things a hostile daemon may send in place of a reply: each must fail the
 * call with a protocol error and kill the connection, never crash. */
static const char *const garbage[] = {
	"garbage\n",
	"{\n",
	"[]\n",
	"[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}]\n",
	"null\n",
	"\"str\"\n",
	"{}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2}\n",
	"{\"jsonrpc\":\"1.0\",\"id\":2,\"result\":{}}\n",
	"{\"id\":2,\"result\":{}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{},\"error\":{\"code\":1,\"message\":\"\"}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":\"2\",\"result\":{}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2.0,\"result\":{}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}} trailing\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":\"bad\"}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":\"x\",\"message\":\"m\"}}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32000,\"message\":\"m\",\"data\":[1]}}\n",
	"{\"jsonrpc\":\"2.0\",\"method\":\"\"}\n",
	"{\"jsonrpc\":\"2.0\",\"method\":7}\n",
	"{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":[1]}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"\xc3\x28\"}\n",
	"{\"jsonrpc\":\"2.0\",\"id\":18446744073709551617,\"result\":{}}\n",
	"\x01\x02\x03\n",
};

START_TEST(test_garbage)
{
	struct harness h;
	nono_error *err = NULL;
	struct seen s = { 0 };
	int before = h_count_fds();

	h_open(&h);
	h_write(&h, garbage[_i]);
	ck_assert_int_lt(nono_client_call(h.c, "daemon.status", NULL, NULL, &err), 0);
	ck_assert_msg(strcmp(nono_error_kind(err), "protocol") == 0, "case %d: kind %s (%s)",
		      _i, nono_error_kind(err), nono_error_detail(err));
	nono_error_free(err);
	/* Dead: every later call fails at once, async ones too. */
	ck_assert_int_lt(nono_client_call(h.c, "daemon.status", NULL, NULL, &err), 0);
	ck_assert_str_eq(nono_error_kind(err), "protocol");
	nono_error_free(err);
	ck_assert_int_lt(nono_client_call_async(h.c, "a.b", NULL, NULL, 0, h_on_reply, &s, NULL), 0);
	ck_assert_int_lt(nono_client_dispatch(h.c), 0);
	ck_assert_int_eq(s.calls, 0);
	h_stop(&h);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

/* A message with an embedded NUL byte. */
START_TEST(test_embedded_nul)
{
	static const char msg[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"a\":\"x\0y\"}}\n";
	struct harness h;
	nono_error *err = NULL;

	h_open(&h);
	ck_assert_int_eq(write(h.sfd, msg, sizeof(msg) - 1), (ssize_t)sizeof(msg) - 1);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err), NONO_E_PARSE);
	ck_assert_str_eq(nono_error_kind(err), "protocol");
	nono_error_free(err);
	h_stop(&h);
}
END_TEST

/* Nesting far beyond the parser's depth limit. */
START_TEST(test_deep_nesting)
{
	struct harness h;
	nono_error *err = NULL;
	char msg[4000];
	size_t n;

	n = (size_t)snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":");
	memset(msg + n, '[', 2000);
	n += 2000;
	memcpy(msg + n, "\n", 2);
	h_open(&h);
	h_write(&h, msg);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err), NONO_E_PARSE);
	nono_error_free(err);
	h_stop(&h);
}
END_TEST

/* A line longer than the negotiated max_message (4096). */
START_TEST(test_oversize_line)
{
	struct harness h;
	nono_error *err = NULL;
	char *big = malloc(6000);

	memset(big, 'x', 5999);
	big[5999] = '\0';
	h_open(&h);
	h_write(&h, big); /* no LF at all: the client must not wait for one */
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err),
			 NONO_E_MESSAGE_TOO_LARGE);
	ck_assert_str_eq(nono_error_kind(err), "protocol");
	nono_error_free(err);
	free(big);
	h_stop(&h);
}
END_TEST

/* A request over the daemon's max_message is refused locally; the
 * connection stays usable. */
START_TEST(test_oversize_request)
{
	struct harness h;
	nono_error *err = NULL;
	char *params = malloc(5000);

	snprintf(params, 5000, "{\"s\":\"%04990d\"}", 0);
	h_open(&h);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", params, NULL, &err),
			 NONO_E_MESSAGE_TOO_LARGE);
	ck_assert_str_eq(nono_error_kind(err), "invalid_argument");
	nono_error_free(err);
	h_write(&h, RESULT(3, "{}"));
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, NULL), 0);
	h_expect_request(&h, "a.b", 3);
	free(params);
	h_stop(&h);
}
END_TEST

START_TEST(test_bad_params)
{
	static const char *const bad[] = { "[1]", "{", "{} x", "1", "", "{}{}", "\"s\"" };
	struct harness h;
	nono_error *err = NULL;

	h_open(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(nono_client_call(h.c, "a.b", bad[i], NULL, &err),
				 NONO_E_INVALID_PARAMS);
		ck_assert_str_eq(nono_error_kind(err), "invalid_argument");
		nono_error_free(err);
	}
	ck_assert_int_eq(nono_client_call(h.c, "", NULL, NULL, NULL), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(nono_client_call(h.c, NULL, NULL, NULL, NULL), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(nono_client_call(NULL, "a.b", NULL, NULL, NULL), NONO_E_INVALID_PARAMS);
	ck_assert_int_eq(nono_client_call_async(h.c, "a.b", NULL, NULL, 0, NULL, NULL, NULL),
			 NONO_E_INVALID_PARAMS);
	/* Nothing reached the daemon; the next id is still 2. */
	h_write(&h, RESULT(2, "{}"));
	ck_assert_int_eq(nono_client_call(h.c, "a.b", "  {\"a\":1}\n", NULL, NULL), 0);
	h_expect_request(&h, "a.b", 2);
	h_stop(&h);
}
END_TEST

/* EOF in the middle of a message; and no SIGPIPE on the next write. */
START_TEST(test_eof_mid_message)
{
	struct harness h;
	nono_error *err = NULL;

	signal(SIGPIPE, SIG_DFL);
	h_open(&h);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"id\":2,");
	shutdown(h.sfd, SHUT_WR);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err),
			 NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_str_eq(nono_error_kind(err), "connection");
	ck_assert_str_eq(nono_error_detail(err),
			 "nonod closed the connection in the middle of a message");
	nono_error_free(err);
	close(h.sfd);
	h.sfd = -1;
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, NULL),
			 NONO_E_BACKEND_UNAVAILABLE);
	h_stop(&h);
}
END_TEST


/* An error with id null (the daemon could not parse a request) ends the connection. */
START_TEST(test_null_id_error)
{
	struct harness h;
	nono_error *err = NULL;

	h_open(&h);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32010,\"message\":"
		    "\"Message too large\",\"data\":{\"kind\":\"message_too_large\"}}}\n");
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, &err), NONO_E_MESSAGE_TOO_LARGE);
	ck_assert(nono_error_is_remote(err));
	nono_error_free(err);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, NULL), NONO_E_MESSAGE_TOO_LARGE);
	h_stop(&h);
}
END_TEST









START_TEST(test_status_typed)
{
	struct harness h;
	nono_status *st = NULL;
	nono_error *err = NULL;

	h_open(&h);
	h_write(&h, RESULT(2, "{\"version\":\"1.2.3\",\"protocol\":1,\"mode\":\"system\","
			      "\"pid\":42,\"uptime_ms\":90061000,\"socket\":\"/run/nono/nonod.sock\","
			      "\"state_dir\":\"/var/lib/nono\",\"clients\":3,"
			      "\"sandbox\":{\"landlock_abi\":7}}"));
	ck_assert_int_eq(nono_client_status(h.c, &st, &err), 0);
	ck_assert_str_eq(nono_status_version(st), "1.2.3");
	ck_assert_int_eq(nono_status_protocol(st), 1);
	ck_assert_str_eq(nono_status_mode(st), "system");
	ck_assert_int_eq(nono_status_pid(st), 42);
	ck_assert_uint_eq(nono_status_uptime_ms(st), 90061000);
	ck_assert_str_eq(nono_status_socket(st), "/run/nono/nonod.sock");
	ck_assert_str_eq(nono_status_state_dir(st), "/var/lib/nono");
	ck_assert_uint_eq(nono_status_clients(st), 3);
	ck_assert_str_eq(nono_status_sandbox_json(st), "{\"landlock_abi\":7}");
	nono_status_free(st);
	h_expect_request(&h, "daemon.status", 2);

	/* Wrong types degrade to empty values, never crash. */
	h_write(&h, RESULT(3, "{\"version\":7,\"pid\":\"x\",\"clients\":-5,\"sandbox\":[]}"));
	ck_assert_int_eq(nono_client_status(h.c, &st, &err), 0);
	ck_assert_str_eq(nono_status_version(st), "");
	ck_assert_int_eq(nono_status_pid(st), 0);
	ck_assert_uint_eq(nono_status_clients(st), 0);
	ck_assert_str_eq(nono_status_sandbox_json(st), "{}");
	nono_status_free(st);

	h_write(&h, RESULT(4, "[]"));
	ck_assert_int_eq(nono_client_status(h.c, &st, &err), NONO_E_PARSE);
	ck_assert_ptr_null(st);
	nono_error_free(err);
	nono_status_free(NULL);
	h_stop(&h);
}
END_TEST

/*
 * Mutation fuzzing (deterministic seed): flip bytes of a valid reply and
 * append a LF. Each outcome must be a clean success with valid JSON or a
 * clean error, never a crash, a hang (the timeout bounds a reply that was
 * mutated into something the client keeps waiting past) or an fd leak.
 */
START_TEST(test_mutated_replies)
{
	static const char valid[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"a\":[1,\"x\",true],"
				    "\"b\":{\"c\":null,\"d\":-1.5e3}}}";
	unsigned int seed = 12345;
	int before = h_count_fds(), ok = 0, failed = 0;

	for (int iter = 0; iter < 300; iter++) {
		struct harness h;
		char msg[sizeof(valid) + 1];
		char *res = NULL;
		nono_error *err = NULL;
		int flips = 1 + rand_r(&seed) % 4;

		memcpy(msg, valid, sizeof(valid));
		for (int f = 0; f < flips; f++)
			msg[rand_r(&seed) % (sizeof(valid) - 1)] ^= (char)(1 + rand_r(&seed) % 255);
		h_open(&h);
		nono_client_set_timeout(h.c, 2000);
		h_write(&h, msg);
		h_write(&h, "\n");
		if (nono_client_call(h.c, "a.b", NULL, &res, &err) == 0) {
			struct json_object *o = json_tokener_parse(res);

			ck_assert_ptr_nonnull(o);
			json_object_put(o);
			free(res);
			ok++;
		} else {
			ck_assert_ptr_nonnull(err);
			nono_error_free(err);
			failed++;
		}
		h_stop(&h);
	}
	ck_assert_int_eq(ok + failed, 300);
	ck_assert_int_gt(failed, 0);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

static Suite *io_suite(void)
{
	Suite *s = suite_create("client-io");
	TCase *tc = tcase_create("io");

	tcase_add_unchecked_fixture(tc, h_global_setup, h_global_teardown);
	tcase_add_test(tc, test_call_roundtrip);
	tcase_add_test(tc, test_split_blocking);
	tcase_add_test(tc, test_notifications_before_reply);
	tcase_add_test(tc, test_error_reply);
	tcase_add_loop_test(tc, test_garbage, 0, (int)(sizeof(garbage) / sizeof(garbage[0])));
	tcase_add_test(tc, test_embedded_nul);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_oversize_line);
	tcase_add_test(tc, test_oversize_request);
	tcase_add_test(tc, test_bad_params);
	tcase_add_test(tc, test_eof_mid_message);
	tcase_add_test(tc, test_null_id_error);
	tcase_add_test(tc, test_status_typed);
	tcase_add_test(tc, test_mutated_replies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(io_suite());
}

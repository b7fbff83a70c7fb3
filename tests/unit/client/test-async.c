/*
 * libnono: the event-loop API. Replies dribbled in byte by byte across
 * dispatches, several replies in one read, pending calls failed when the
 * daemon goes away, timeouts with late replies, and reentrancy: freeing the
 * client or making a blocking call from inside a callback; reading while
 * a send waits for buffer space.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "harness.h"
#include "../check-run.h"

/* A reply dribbled in one byte per write, dispatched after every byte. */
START_TEST(test_split_byte_by_byte)
{
	static const char reply[] = RESULT(2, "{\"ok\":true}");
	struct harness h;
	struct seen s = { 0 };

	h_open(&h);
	ck_assert_int_eq(nono_client_call_async(h.c, "daemon.status", NULL, NULL, 0, h_on_reply,
						&s, NULL), 0);
	h_expect_request(&h, "daemon.status", 2);
	for (size_t i = 0; i < sizeof(reply) - 1; i++) {
		ck_assert_int_eq(s.calls, 0);
		h_write_bytes(&h, reply + i, 1);
		ck_assert_int_ge(nono_client_dispatch(h.c), 0);
	}
	ck_assert_int_eq(s.calls, 1);
	ck_assert_str_eq(s.result[0], "{\"ok\":true}");
	ck_assert_uint_eq(nono_client_pending(h.c), 0);
	h_stop(&h);
}
END_TEST

/* Two replies in one write, in the opposite order of the calls. */
START_TEST(test_two_in_one_write)
{
	struct harness h;
	struct seen a = { 0 }, b = { 0 };

	h_open(&h);
	ck_assert_int_eq(nono_client_call_async(h.c, "m.a", NULL, NULL, 0, h_on_reply, &a, NULL), 0);
	ck_assert_int_eq(nono_client_call_async(h.c, "m.b", "{}", NULL, 0, h_on_reply, &b, NULL), 0);
	h_expect_request(&h, "m.a", 2);
	h_expect_request(&h, "m.b", 3);
	h_write(&h, RESULT(3, "{\"who\":\"b\"}") RESULT(2, "{\"who\":\"a\"}"));
	ck_assert_int_eq(nono_client_dispatch(h.c), 2);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_str_eq(a.result[0], "{\"who\":\"a\"}");
	ck_assert_str_eq(b.result[0], "{\"who\":\"b\"}");
	ck_assert_int_eq(nono_client_dispatch(h.c), 0);
	h_stop(&h);
}
END_TEST

/* The daemon goes away with async calls pending: their callbacks get the error. */
START_TEST(test_dead_fails_async)
{
	struct harness h;
	struct seen s = { 0 };

	h_open(&h);
	ck_assert_int_eq(nono_client_call_async(h.c, "a.b", NULL, NULL, 0, h_on_reply, &s, NULL), 0);
	ck_assert_int_eq(nono_client_call_async(h.c, "a.c", NULL, NULL, 0, h_on_reply, &s, NULL), 0);
	close(h.sfd);
	h.sfd = -1;
	ck_assert_int_eq(nono_client_dispatch(h.c), NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_int_eq(s.calls, 2);
	ck_assert_int_eq(s.code[0], NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_int_eq(s.code[1], NONO_E_BACKEND_UNAVAILABLE);
	h_stop(&h);
}
END_TEST

/* A timed-out call's late reply is dropped; the connection stays usable. */
START_TEST(test_timeout_then_late_reply)
{
	struct harness h;
	nono_error *err = NULL;
	char *res = NULL;

	h_open(&h);
	nono_client_set_timeout(h.c, 1);
	ck_assert_int_eq(nono_client_call(h.c, "slow.call", NULL, NULL, &err), NONO_E_TIMEOUT);
	ck_assert_str_eq(nono_error_kind(err), "timeout");
	nono_error_free(err);
	nono_client_set_timeout(h.c, -1);
	h_write(&h, RESULT(2, "{\"late\":1}") RESULT(3, "{\"on\":\"time\"}"));
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, &res, NULL), 0);
	ck_assert_str_eq(res, "{\"on\":\"time\"}");
	free(res);
	ck_assert_uint_eq(nono_client_pending(h.c), 0);
	h_stop(&h);
}
END_TEST

static void free_in_cb(nono_client *c, const char *result_json, const nono_error *err,
		       int *fds, size_t nfds, void *userdata)
{
	(*(int *)userdata)++;
	nono_client_free(c);
}

/* nono_client_free from inside a callback: freed after dispatch, rest dropped. */
START_TEST(test_free_in_callback)
{
	struct harness h;
	int calls = 0;

	h_open(&h);
	ck_assert_int_eq(nono_client_call_async(h.c, "a.b", NULL, NULL, 0, free_in_cb, &calls,
						NULL), 0);
	ck_assert_int_eq(nono_client_call_async(h.c, "a.c", NULL, NULL, 0, free_in_cb, &calls,
						NULL), 0);
	h_write(&h, RESULT(2, "{}") RESULT(3, "{}"));
	ck_assert_int_eq(nono_client_dispatch(h.c), NONO_E_BACKEND_UNAVAILABLE);
	ck_assert_int_eq(calls, 1);
	h.c = NULL; /* already freed */
	h_stop(&h);
}
END_TEST

/* A blocking call from inside a notification callback. The daemon's reply
 * is written from the callback, before the request: it stays in the socket
 * until the call reads it (a reply read before its request was sent would
 * be a protocol error). */
struct inner {
	struct harness *h;
	char *res;
};

static void call_in_cb(nono_client *c, const char *method, const char *params_json,
		       int *fds, size_t nfds, void *userdata)
{
	struct inner *in = userdata;

	h_write(in->h, RESULT(2, "{\"inner\":true}"));
	ck_assert_int_eq(nono_client_call(c, "inner.call", NULL, &in->res, NULL), 0);
}

START_TEST(test_call_in_callback)
{
	struct harness h;
	struct inner in = { .h = &h };

	h_open(&h);
	nono_client_set_notify_cb(h.c, call_in_cb, &in);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"method\":\"n.x\"}\n");
	ck_assert_int_eq(nono_client_dispatch(h.c), 1);
	ck_assert_str_eq(in.res, "{\"inner\":true}");
	free(in.res);
	h_expect_request(&h, "inner.call", 2);
	h_stop(&h);
}
END_TEST

/*
 * The daemon is not reading and our socket buffer is full: while the send
 * waits it must keep reading (so a daemon blocked writing to us cannot
 * deadlock with us), and with a timeout set it gives up instead of hanging.
 */
START_TEST(test_send_blocked_reads)
{
	struct harness h;
	struct notes ns = { 0 };
	struct seen s = { 0 };
	nono_error *err = NULL;
	char params[4000];
	int small = 1, r = 0;

	snprintf(params, sizeof(params), "{\"pad\":\"%03900d\"}", 0);
	h_open(&h);
	nono_client_set_notify_cb(h.c, h_on_notify, &ns);
	ck_assert_int_eq(setsockopt(nono_client_get_fd(h.c), SOL_SOCKET, SO_SNDBUF, &small,
				    sizeof(small)), 0);
	h_write(&h, "{\"jsonrpc\":\"2.0\",\"method\":\"n.meanwhile\"}\n");
	nono_client_set_timeout(h.c, 1);
	for (int i = 0; i < 10000 && r == 0; i++)
		r = nono_client_call_async(h.c, "a.b", params, NULL, 0, h_on_reply, &s, &err);
	ck_assert_int_eq(r, NONO_E_TIMEOUT);
	ck_assert_str_eq(nono_error_kind(err), "timeout");
	nono_error_free(err);
	/* The notification was read while the send waited. */
	ck_assert_uint_ge(nono_client_pending(h.c), 1);
	nono_client_dispatch(h.c);
	ck_assert_int_eq(ns.n, 1);
	ck_assert_str_eq(ns.text[0], "n.meanwhile {}");
	h_stop(&h);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("client-async");
	TCase *tc = tcase_create("async");

	tcase_add_unchecked_fixture(tc, h_global_setup, h_global_teardown);
	tcase_add_test(tc, test_split_byte_by_byte);
	tcase_add_test(tc, test_two_in_one_write);
	tcase_add_test(tc, test_dead_fails_async);
	tcase_add_test(tc, test_timeout_then_late_reply);
	tcase_add_test(tc, test_free_in_callback);
	tcase_add_test(tc, test_call_in_callback);
	tcase_add_test(tc, test_send_blocked_reads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(make_suite());
}

/*
 * libnono: file descriptors over the control socket. fds sent with a
 * request, fds returned with a reply (CLOEXEC, usable), attribution of a
 * batch to the message it came with, closing fds nobody takes, and more
 * fds than a message may carry.
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

static int make_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC);
}

/* An fd passed back with the reply reaches the caller, CLOEXEC and usable. */
START_TEST(test_fd_passed_back)
{
	struct harness h;
	int p[2], sent[1], *out = NULL;
	size_t nout = 0;
	char buf[8] = { 0 };
	char *res = NULL;
	int before = h_count_fds();

	ck_assert_int_eq(make_pipe(p), 0);
	h_open(&h);
	sent[0] = p[0];
	h_write_fds(&h, RESULT(2, "{\"stdio\":{\"fds\":[0]}}"), sent, 1);
	close(p[0]);
	ck_assert_int_eq(nono_client_call_fds(h.c, "session.start", NULL, NULL, 0, &res, &out,
					      &nout, NULL), 0);
	ck_assert_str_eq(res, "{\"stdio\":{\"fds\":[0]}}");
	ck_assert_uint_eq(nout, 1);
	ck_assert(h_is_cloexec(out[0]));
	ck_assert_int_eq(write(p[1], "hi", 2), 2);
	ck_assert_int_eq(read(out[0], buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "hi");
	close(out[0]);
	close(p[1]);
	free(out);
	free(res);
	h_stop(&h);
	ck_assert_int_eq(h_count_fds(), before);
}
END_TEST

/* fds the caller sends arrive with the request. */
START_TEST(test_fd_sent)
{
	struct harness h;
	int p[2], got[NONO_MAX_FDS_PER_MESSAGE];
	size_t ngot = 0;
	int trunc = 0;
	char buf[4096];
	ssize_t n;

	ck_assert_int_eq(make_pipe(p), 0);
	h_open(&h);
	h_write(&h, RESULT(2, "{}"));
	ck_assert_int_eq(nono_client_call_fds(h.c, "session.start", "{\"fds\":[0,1]}", p, 2,
					      NULL, NULL, NULL, NULL), 0);
	n = fdpass_recv(h.sfd, buf, sizeof(buf), got, &ngot, NONO_MAX_FDS_PER_MESSAGE, &trunc);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(ngot, 2);
	ck_assert_int_eq(trunc, 0);
	/* The caller keeps its own fds. */
	ck_assert_int_eq(write(p[1], "z", 1), 1);
	ck_assert_int_eq(read(got[0], buf, 1), 1);
	fdpass_close_all(got, ngot);
	close(p[0]);
	close(p[1]);
	h_stop(&h);
}
END_TEST

/* Two replies buffered together; the fd belongs to the second one only. */
START_TEST(test_fd_goes_to_its_message)
{
	struct harness h;
	struct seen a = { 0 }, b = { 0 };
	int p[2];

	ck_assert_int_eq(make_pipe(p), 0);
	h_open(&h);
	ck_assert_int_eq(nono_client_call_async(h.c, "m.a", NULL, NULL, 0, h_on_reply, &a, NULL), 0);
	ck_assert_int_eq(nono_client_call_async(h.c, "m.b", NULL, NULL, 0, h_on_reply, &b, NULL), 0);
	h_write(&h, RESULT(2, "{}"));
	h_write_fds(&h, RESULT(3, "{\"fds\":[0]}"), &p[0], 1);
	while (a.calls + b.calls < 2)
		ck_assert_int_ge(nono_client_dispatch(h.c), 0);
	ck_assert_uint_eq(a.nfds[0], 0);
	ck_assert_uint_eq(b.nfds[0], 1);
	ck_assert(h_is_cloexec(b.kept_fd));
	close(b.kept_fd);
	close(p[0]);
	close(p[1]);
	h_stop(&h);
}
END_TEST

/* fds nobody takes (a notification without a callback, a blocking call
 * without out_fds) are closed: the pipe's write end then sees EPIPE. */
START_TEST(test_unwanted_fds_closed)
{
	struct harness h;
	int p[2], q[2];
	int before;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(make_pipe(p), 0);
	ck_assert_int_eq(make_pipe(q), 0);
	h_open(&h);
	before = h_count_fds();
	h_write_fds(&h, "{\"jsonrpc\":\"2.0\",\"method\":\"n.fd\",\"params\":{\"fds\":[0]}}\n",
		    &p[0], 1);
	h_write_fds(&h, RESULT(2, "{}"), &q[0], 1);
	close(p[0]);
	close(q[0]);
	ck_assert_int_eq(nono_client_call(h.c, "a.b", NULL, NULL, NULL), 0);
	ck_assert_int_eq(write(q[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(nono_client_dispatch(h.c), 1);
	ck_assert_int_eq(write(p[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(h_count_fds(), before - 2);
	close(p[1]);
	close(q[1]);
	h_stop(&h);
}
END_TEST

/* More fds than one message may carry: refused, none leaked. */
START_TEST(test_too_many_fds)
{
	struct harness h;
	int fds[20], before;
	nono_error *err = NULL;

	h_open(&h);
	before = h_count_fds();
	for (int i = 0; i < 20; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	{
		/* fdpass_send caps at 16, so build the control message by hand. */
		static const char msg[] = RESULT(2, "{}");
		char cbuf[CMSG_SPACE(sizeof(fds))];
		struct iovec iov = { .iov_base = (void *)msg, .iov_len = sizeof(msg) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
		ck_assert_int_gt(sendmsg(h.sfd, &mh, 0), 0);
	}
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	ck_assert_int_lt(nono_client_call(h.c, "a.b", NULL, NULL, &err), 0);
	ck_assert_str_eq(nono_error_kind(err), "protocol");
	nono_error_free(err);
	ck_assert_int_eq(h_count_fds(), before);
	h_stop(&h);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("client-fds");
	TCase *tc = tcase_create("fds");

	tcase_add_unchecked_fixture(tc, h_global_setup, h_global_teardown);
	tcase_add_test(tc, test_fd_passed_back);
	tcase_add_test(tc, test_fd_sent);
	tcase_add_test(tc, test_fd_goes_to_its_message);
	tcase_add_test(tc, test_unwanted_fds_closed);
	tcase_add_test(tc, test_too_many_fds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(make_suite());
}

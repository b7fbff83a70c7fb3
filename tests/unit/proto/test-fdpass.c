/*
 * fdpass over a socketpair: fds arrive and are close-on-exec, too many or a
 * truncated control message closes what came (no fd leaks: the process's
 * open fd count is compared before and after), plain errors are -errno.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fdpass.h"
#include "nono-protocol.h"
#include "../check-run.h"

static int sv[2] = { -1, -1 };

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
	fdpass_close_all(sv, 2);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static void open_nulls(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	ck_assert_int_eq(fstat(a, &sa), 0);
	ck_assert_int_eq(fstat(b, &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Raw sendmsg with n fds (n may exceed what fdpass_send allows). */
static void raw_send(int sock, const int *fds, size_t n)
{
	size_t space = CMSG_SPACE(sizeof(int) * n);
	char *ctl = calloc(1, space);
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = space };
	struct cmsghdr *c;

	ck_assert_ptr_nonnull(ctl);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	ck_assert_int_eq(sendmsg(sock, &msg, 0), 1);
	free(ctl);
}

START_TEST(test_fds_arrive_cloexec)
{
	int pfd[2], out[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds = 0;
	int trunc = 0;
	char buf[16];

	ck_assert_int_eq(pipe(pfd), 0); /* without O_CLOEXEC on purpose */
	ck_assert_int_eq(fdpass_send(sv[0], "hello\n", 6, pfd, 2), 6);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds, 16, &trunc), 6);
	ck_assert_int_eq(memcmp(buf, "hello\n", 6), 0);
	ck_assert_uint_eq(nfds, 2);
	ck_assert_int_eq(trunc, 0);
	for (size_t i = 0; i < 2; i++) {
		ck_assert(fcntl(out[i], F_GETFD) & FD_CLOEXEC);
		ck_assert(same_file(out[i], pfd[i]));
	}
	/* the received write end really works */
	ck_assert_int_eq(write(out[1], "z", 1), 1);
	ck_assert_int_eq(read(pfd[0], buf, 1), 1);
	ck_assert_int_eq(buf[0], 'z');
	fdpass_close_all(out, nfds);
	ck_assert_int_eq(out[0], -1);
	fdpass_close_all(pfd, 2);
}
END_TEST

START_TEST(test_many_fds)
{
	int in[NONO_MAX_FDS_PER_MESSAGE], out[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds = 0;
	int trunc = 0;
	char buf[4];

	open_nulls(in, NONO_MAX_FDS_PER_MESSAGE);
	ck_assert_int_eq(fdpass_send(sv[0], "m", 1, in, NONO_MAX_FDS_PER_MESSAGE), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds,
				     NONO_MAX_FDS_PER_MESSAGE, &trunc), 1);
	ck_assert_uint_eq(nfds, NONO_MAX_FDS_PER_MESSAGE);
	ck_assert_int_eq(trunc, 0);
	fdpass_close_all(out, nfds);
	fdpass_close_all(in, NONO_MAX_FDS_PER_MESSAGE);
}
END_TEST

START_TEST(test_append)
{
	/* fds from a second read are appended after the first ones */
	int a, b, out[4] = { -1, -1, -1, -1 };
	size_t nfds = 0;
	int trunc = 0;
	char buf[4];

	open_nulls(&a, 1);
	open_nulls(&b, 1);
	ck_assert_int_eq(fdpass_send(sv[0], "1", 1, &a, 1), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, 1, out, &nfds, 4, &trunc), 1);
	ck_assert_int_eq(fdpass_send(sv[0], "2", 1, &b, 1), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, 1, out, &nfds, 4, &trunc), 1);
	ck_assert_uint_eq(nfds, 2);
	ck_assert(same_file(out[0], a));
	ck_assert_int_eq(out[2], -1);
	fdpass_close_all(out, 4);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_beyond_cap_closed)
{
	int in[8], out[3];
	size_t nfds = 0;
	int trunc = 0;
	char buf[4];
	int before;

	open_nulls(in, 8);
	before = count_fds();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, in, 8), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds, 3, &trunc), 1);
	ck_assert_uint_eq(nfds, 3);
	ck_assert_int_eq(trunc, 1);
	ck_assert_int_eq(count_fds(), before + 3); /* the other 5 were closed */
	fdpass_close_all(out, nfds);
	ck_assert_int_eq(count_fds(), before);
	fdpass_close_all(in, 8);
}
END_TEST

START_TEST(test_ctrunc_closes_all)
{
	/* A hostile peer sends more fds than our control buffer holds. */
	enum { N = 3 * NONO_MAX_FDS_PER_MESSAGE };
	int in[N], out[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds = 0;
	int trunc = 0;
	char buf[4];
	int before;

	open_nulls(in, N);
	raw_send(sv[0], in, N);
	fdpass_close_all(in, N); /* only the in-flight copies remain */
	before = count_fds();
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds,
				     NONO_MAX_FDS_PER_MESSAGE, &trunc), 1);
	ck_assert_int_eq(trunc, 1);
	ck_assert_uint_eq(nfds, 0);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_no_room_closes)
{
	/* fds == NULL / cap 0: whatever arrives is closed, truncated may be NULL */
	int in[2];
	size_t nfds = 0;
	char buf[4];
	int before, trunc = 0;

	open_nulls(in, 2);
	before = count_fds();
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, in, 2), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), NULL, &nfds, 0, &trunc), 1);
	ck_assert_int_eq(trunc, 1);
	ck_assert_int_eq(fdpass_send(sv[0], "y", 1, in, 2), 1);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), NULL, NULL, 0, NULL), 1);
	ck_assert_int_eq(count_fds(), before);
	fdpass_close_all(in, 2);
}
END_TEST

START_TEST(test_send_errors)
{
	int in[NONO_MAX_FDS_PER_MESSAGE + 1];
	int bad = -1;

	open_nulls(in, NONO_MAX_FDS_PER_MESSAGE + 1);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, in, NONO_MAX_FDS_PER_MESSAGE + 1), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "", 0, in, 1), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 1), -EINVAL);
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, &bad, 1), -EBADF);
	ck_assert_int_eq(fdpass_send(-1, "x", 1, NULL, 0), -EBADF);
	fdpass_close_all(in, NONO_MAX_FDS_PER_MESSAGE + 1);
}
END_TEST

START_TEST(test_epipe_no_signal)
{
	/* MSG_NOSIGNAL: a vanished peer is -EPIPE, not a SIGPIPE death */
	close(sv[1]);
	sv[1] = -1;
	ck_assert_int_eq(fdpass_send(sv[0], "x", 1, NULL, 0), -EPIPE);
}
END_TEST

START_TEST(test_eof_and_eagain)
{
	char buf[4];
	size_t nfds = 0;
	int trunc = 0;

	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), NULL, &nfds, 0, &trunc), -EAGAIN);
	ck_assert_int_eq(fdpass_send(sv[0], "ab", 2, NULL, 0), 2);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), NULL, &nfds, 0, &trunc), 2);
	ck_assert_int_eq(trunc, 0);
	shutdown(sv[0], SHUT_WR);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), NULL, &nfds, 0, &trunc), 0);
}
END_TEST

START_TEST(test_fds_end_read)
{
	/* The documented ownership rule: fds end the read they arrive in. */
	int a, out[2];
	size_t nfds = 0;
	int trunc = 0;
	char buf[64];

	open_nulls(&a, 1);
	ck_assert_int_eq(fdpass_send(sv[0], "{\"a\":1}\n", 8, NULL, 0), 8);
	ck_assert_int_eq(fdpass_send(sv[0], "{\"b\":2}\n", 8, &a, 1), 8);
	ck_assert_int_eq(fdpass_send(sv[0], "{\"c\":3}\n", 8, NULL, 0), 8);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds, 2, &trunc), 16);
	ck_assert_uint_eq(nfds, 1);
	ck_assert_int_eq(memcmp(buf + 8, "{\"b\":2}\n", 8), 0);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof(buf), out, &nfds, 2, &trunc), 8);
	ck_assert_uint_eq(nfds, 1);
	fdpass_close_all(out, nfds);
	close(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto-fdpass");
	TCase *tc = tcase_create("fdpass");

	signal(SIGPIPE, SIG_DFL);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fds_arrive_cloexec);
	tcase_add_test(tc, test_many_fds);
	tcase_add_test(tc, test_append);
	tcase_add_test(tc, test_beyond_cap_closed);
	tcase_add_test(tc, test_ctrunc_closes_all);
	tcase_add_test(tc, test_no_room_closes);
	tcase_add_test(tc, test_send_errors);
	tcase_add_test(tc, test_epipe_no_signal);
	tcase_add_test(tc, test_eof_and_eagain);
	tcase_add_test(tc, test_fds_end_read);
	tcase_set_timeout(tc, 120); /* not a timing assertion: ASan on a busy machine */
	suite_add_tcase(s, tc);
	return check_run(s);
}
